// The search benchmark's data set: a deterministic (seeded) five-level mCSD hierarchy.
//   1 country -> 10 regions -> 100 districts -> 1,000 sub-districts (jurisdictions: a
//   Location + Organization pair each) -> N facilities (Location + Organization pairs).
// Every facility Location is ~1.2 KB of JSON. The same seed always gives the same resources,
// the same query variants and the same expected results, so nothing needs caching.

export const FACILITY_SYSTEM = 'https://bench.mahali.example/facility';
export const MCSD_TYPES =
  'https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types';
export const ROLE_CODES = 'http://terminology.hl7.org/CodeSystem/v3-RoleCode';
export const MCSD_SD = 'https://profiles.ihe.net/ITI/mCSD/StructureDefinition/';
export const ORG_TYPE = 'http://terminology.hl7.org/CodeSystem/organization-type';
export const PHYS = 'http://terminology.hl7.org/CodeSystem/location-physical-type';

// mulberry32: small, fast, good enough for test data
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (arr) => arr[Math.floor(next() * arr.length)];
  return next;
}

const SYLLABLES = [
  'ba', 'be', 'bo', 'bu', 'da', 'di', 'do', 'fa', 'fe', 'ga', 'go', 'ha', 'ja', 'ka', 'ke', 'ki',
  'ko', 'ku', 'la', 'le', 'li', 'lo', 'lu', 'ma', 'me', 'mi', 'mo', 'mu', 'na', 'ne', 'ni', 'no',
  'nya', 'nga', 'ngo', 'mba', 'mbo', 'ndi', 'nda', 'pa', 'pe', 'ra', 're', 'ri', 'ro', 'ru',
  'sa', 'se', 'si', 'so', 'su', 'ta', 'te', 'ti', 'to', 'tu', 'wa', 'we', 'ya', 'yo', 'za', 'zi',
  'kwa', 'shi', 'cha', 'chi',
];

export function word(r, min, max) {
  const n = min + r.int(max - min + 1);
  let w = '';
  for (let i = 0; i < n; i++) w += r.pick(SYLLABLES);
  return w[0].toUpperCase() + w.slice(1);
}

// Facility kinds by v3 RoleCode: [name suffix, alias abbreviation, display]
export const KINDS = {
  HOSP: { display: 'Hospital', names: [['Hospital', 'H'], ['District Hospital', 'DH'], ['General Hospital', 'GH']] },
  OF: { display: 'Outpatient facility', names: [['Health Centre', 'HC'], ['Clinic', 'CL'], ['Health Post', 'HP'], ['Dispensary', 'DSP']] },
  PHARM: { display: 'Pharmacy', names: [['Pharmacy', 'PH'], ['Community Pharmacy', 'CPH']] },
  MBL: { display: 'Mobile Unit', names: [['Mobile Clinic', 'MC'], ['Outreach Unit', 'OU']] },
};
export const CODES = ['HOSP', 'OF', 'PHARM', 'MBL'];
export const SERVICES = [
  'outpatient consultations', 'maternal and child health', 'immunisation', 'family planning',
  'HIV testing and counselling', 'TB diagnosis and treatment', 'malaria testing and treatment',
  'laboratory', 'minor surgery', 'antenatal care', 'nutrition screening', 'dental care',
  'emergency obstetric care', 'dispensing of essential medicines', 'eye care', 'mental health',
];

export const pad = (n, w) => String(n).padStart(w, '0');
export const facilityIdentifier = (i) => 'F' + pad(i, 7); // F0001234
export const round6 = (x) => Math.round(x * 1e6) / 1e6;

/** The mCSD facility Organization of a generated facility (both data sets use the same shape). */
export function facilityOrganization({ id, ident, status, name, alias, phone, address, partOf }) {
  const org = {
    resourceType: 'Organization',
    id,
    meta: { profile: [MCSD_SD + 'IHE.mCSD.FacilityOrganization'] },
    identifier: [{ use: 'official', system: FACILITY_SYSTEM, value: ident }],
    active: status === 'active',
    type: [
      { coding: [{ system: MCSD_TYPES, code: 'facility', display: 'Facility' }] },
      { coding: [{ system: ORG_TYPE, code: 'prov', display: 'Healthcare Provider' }] },
    ],
    name,
    alias: [alias],
    telecom: [{ system: 'phone', value: phone, use: 'work' }],
    address: [address],
  };
  if (partOf) org.partOf = { reference: `Organization/${partOf}` };
  return org;
}

function jurisdiction(level, key, name, parent, pos, stateName) {
  const locId = `loc-${key}`;
  const orgId = `org-${key}`;
  const org = {
    resourceType: 'Organization',
    id: orgId,
    meta: { profile: [MCSD_SD + 'IHE.mCSD.JurisdictionOrganization'] },
    identifier: [{ system: 'https://bench.mahali.example/jurisdiction', value: key.toUpperCase() }],
    active: true,
    type: [
      { coding: [{ system: MCSD_TYPES, code: 'jurisdiction', display: 'Jurisdiction' }] },
      { coding: [{ system: ORG_TYPE, code: 'govt', display: 'Government' }] },
    ],
    name: `${name} ${level} Health Office`,
  };
  if (parent) org.partOf = { reference: `Organization/${parent.orgId}` };
  const loc = {
    resourceType: 'Location',
    id: locId,
    meta: { profile: [MCSD_SD + 'IHE.mCSD.JurisdictionLocation'] },
    identifier: [{ system: 'https://bench.mahali.example/jurisdiction', value: key.toUpperCase() }],
    status: 'active',
    name: `${name} ${level}`,
    mode: 'instance',
    type: [{ coding: [{ system: MCSD_TYPES, code: 'jurisdiction', display: 'Jurisdiction' }] }],
    physicalType: { coding: [{ system: PHYS, code: 'jdn', display: 'Jurisdiction' }] },
    position: { longitude: round6(pos[0]), latitude: round6(pos[1]) },
    managingOrganization: { reference: `Organization/${orgId}` },
  };
  if (stateName) loc.address = { type: 'physical', state: stateName, country: 'BN' };
  if (parent) loc.partOf = { reference: `Location/${parent.locId}` };
  return { level, key, name, locId, orgId, org, loc, pos };
}

// The whole data set. facilities: how many (default 100,000; 100 per sub-district at the
// default). Returns { levels: [[pair...] x 5], facilities: [meta...] } where each pair has
// org and loc resources (parents come in earlier levels).
export function generate({ facilities = 100000, seed = 20260421 } = {}) {
  const r = rng(seed);
  const usedNames = new Set();
  const uniqueName = (min, max) => {
    for (;;) {
      const w = word(r, min, max);
      if (!usedNames.has(w)) {
        usedNames.add(w);
        return w;
      }
    }
  };
  const country = jurisdiction('Country', 'country', 'Benchland', null, [35, 0], null);
  const regions = [];
  const districts = [];
  const subs = [];
  for (let i = 0; i < 10; i++) {
    const name = uniqueName(2, 3);
    // regions: a 5 x 2 grid of 2-degree boxes over lon 30..40, lat -2..2
    const box = [30 + (i % 5) * 2, -2 + Math.floor(i / 5) * 2];
    const j = jurisdiction('Region', `r${pad(i + 1, 2)}`, name, country, [box[0] + 1, box[1] + 1], `${name} Region`);
    j.box = box;
    j.size = 2;
    regions.push(j);
  }
  for (let i = 0; i < 100; i++) {
    const reg = regions[Math.floor(i / 10)];
    const k = i % 10;
    const box = [reg.box[0] + (k % 5) * 0.4, reg.box[1] + Math.floor(k / 5) * 1.0];
    const name = uniqueName(2, 3);
    const j = jurisdiction('District', `d${pad(i + 1, 3)}`, name, reg, [box[0] + 0.2, box[1] + 0.5], `${reg.name} Region`);
    j.box = box;
    j.region = reg;
    districts.push(j);
  }
  for (let i = 0; i < 1000; i++) {
    const dis = districts[Math.floor(i / 10)];
    const k = i % 10;
    const box = [dis.box[0] + (k % 5) * 0.08, dis.box[1] + Math.floor(k / 5) * 0.5];
    const name = uniqueName(2, 3);
    const j = jurisdiction('Chiefdom', `s${pad(i + 1, 4)}`, name, dis, [box[0] + 0.04, box[1] + 0.25], `${dis.region.name} Region`);
    j.box = box;
    j.district = dis;
    j.region = dis.region;
    // ~20 towns per sub-district: facilities in the same town share its name
    j.towns = Array.from({ length: 20 }, () => word(r, 2, 3));
    subs.push(j);
  }

  const facs = [];
  const facMeta = [];
  for (let i = 1; i <= facilities; i++) {
    const sub = subs[Math.floor(((i - 1) * subs.length) / facilities)];
    const code = CODES[r.int(4)];
    const kind = KINDS[code];
    const [suffix, abbr] = r.pick(kind.names);
    const town = r.pick(sub.towns);
    const name = `${town} ${suffix}`;
    const alias = `${town} ${abbr}`;
    const x = r();
    const status = x < 0.9 ? 'active' : x < 0.97 ? 'inactive' : 'suspended';
    const ident = facilityIdentifier(i);
    const locId = `loc-f${pad(i, 7)}`;
    const orgId = `org-f${pad(i, 7)}`;
    const lon = round6(sub.box[0] + r() * 0.08);
    const lat = round6(sub.box[1] + r() * 0.5);
    const phone = `+255 7${r.int(10)} ${pad(r.int(1000000), 6)}`;
    const email = `${town.toLowerCase()}.${abbr.toLowerCase()}${i}@health.bench.example`;
    const services = [];
    while (services.length < 3) {
      const s = r.pick(SERVICES);
      if (!services.includes(s)) services.push(s);
    }
    const street = `${1 + r.int(200)} ${word(r, 2, 3)} Road`;
    const address = {
      use: 'work',
      type: 'physical',
      line: [street],
      city: town,
      district: `${sub.district.name} District`,
      state: `${sub.region.name} Region`,
      country: 'BN',
    };
    const org = facilityOrganization({ id: orgId, ident, status, name, alias, phone, address, partOf: sub.orgId });
    const loc = {
      resourceType: 'Location',
      id: locId,
      meta: { profile: [MCSD_SD + 'IHE.mCSD.FacilityLocation'] },
      identifier: [{ system: FACILITY_SYSTEM, value: ident }],
      status,
      name,
      alias: [alias],
      description:
        `${kind.display} in ${town}, ${sub.name} Chiefdom, ${sub.district.name} District. ` +
        `Services: ${services.join(', ')}.`,
      type: [
        { coding: [{ system: MCSD_TYPES, code: 'facility', display: 'Facility' }] },
        { coding: [{ system: ROLE_CODES, code, display: kind.display }] },
      ],
      telecom: [
        { system: 'phone', value: phone },
        { system: 'email', value: email },
      ],
      address,
      physicalType: { coding: [{ system: PHYS, code: 'bu' }] },
      position: { longitude: lon, latitude: lat },
      managingOrganization: { reference: `Organization/${orgId}` },
      partOf: { reference: `Location/${sub.locId}` },
    };
    facs.push({ org, loc });
    facMeta.push({ i, ident, locId, orgId, name, alias, code, status, region: sub.region.key });
  }
  return {
    levels: [[country], regions, districts, subs, facs],
    regions,
    jurisdictions: [country, ...regions, ...districts, ...subs],
    facilities: facMeta,
  };
}

// The query variants of each scenario with what each must answer (total and entries on the
// first page of 50), chosen deterministically from the data set.
export function variants(ds, { perScenario = 100, seed = 7 } = {}) {
  const r = rng(seed);
  const n = ds.facilities.length;
  const pickFacilities = (k) => {
    const seen = new Set();
    const out = [];
    while (out.length < Math.min(k, n)) {
      const f = ds.facilities[r.int(n)];
      if (!seen.has(f.i)) {
        seen.add(f.i);
        out.push(f);
      }
    }
    return out;
  };
  const enc = encodeURIComponent;
  const page = (total) => Math.min(50, total);
  const sc = {};

  sc.identifier = pickFacilities(perScenario).map((f) => ({
    query: `identifier=${enc(FACILITY_SYSTEM + '|' + f.ident)}`,
    total: 1,
    entries: 1,
  }));

  // name: the first 4 letters of a facility's name; matches are Locations whose name or alias
  // starts with them, case-insensitively (the jurisdictions' names count too)
  const names = [];
  for (const j of ds.jurisdictions) names.push([j.loc.name.toLowerCase()]);
  for (const f of ds.facilities) names.push([f.name.toLowerCase(), f.alias.toLowerCase()]);
  const prefixes = [];
  const seenPrefix = new Set();
  for (let guard = 0; prefixes.length < Math.min(perScenario, n) && guard < 100000; guard++) {
    const p = ds.facilities[r.int(n)].name.slice(0, 4);
    if (!seenPrefix.has(p.toLowerCase())) {
      seenPrefix.add(p.toLowerCase());
      prefixes.push(p);
    }
  }
  sc.name = prefixes.map((p) => {
    const lp = p.toLowerCase();
    const total = names.filter((vs) => vs.some((v) => v.startsWith(lp))).length;
    return { query: `name=${enc(p)}`, total, entries: page(total) };
  });

  // type_status: each RoleCode with status=active (there are only four codes)
  sc.type_status = CODES.map((c) => {
    const total = ds.facilities.filter((f) => f.code === c && f.status === 'active').length;
    return { query: `type=${enc(ROLE_CODES + '|' + c)}&status=active`, total, entries: page(total) };
  });

  // partof_below: every region (there are ten); below = its districts, sub-districts, facilities
  sc.partof_below = ds.regions.map((reg) => {
    const total = 10 + 100 + ds.facilities.filter((f) => f.region === reg.key).length;
    return { query: `partof:below=${enc(reg.locId)}`, total, entries: page(total) };
  });

  // include: a facility by identifier plus its managing Organization
  sc.include = pickFacilities(perScenario).map((f) => ({
    query: `identifier=${enc(FACILITY_SYSTEM + '|' + f.ident)}&_include=${enc('Location:organization')}`,
    total: 1,
    entries: 2,
  }));
  return sc;
}
