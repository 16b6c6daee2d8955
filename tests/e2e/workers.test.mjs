// Health workers (issue 6, parts 1 and 2): Practitioner and PractitionerRole in depth, names in
// any script, HR upserts, the $staffing operation, and the iHRIS demo bundles.
//
//   in depth     a Practitioner with a national id and licences from two regulators,
//                qualifications (issuer, period), postings (PractitionerRole: period, active,
//                location, organization, specialty, code): round trip, every search parameter,
//                _include=PractitionerRole:practitioner; anonymous → 401
//   names        accents, apostrophes (straight and curly), hyphens, Amharic, Arabic, Chinese,
//                Cyrillic, Korean, decomposed (NFD) spellings: stored as sent; `name` / `given` / `family`
//                match from the start of a name part, ignoring case and accents (and
//                apostrophe shape: ’ is '), :exact is exact (NFC and NFD spellings of one
//                name are the same name), :contains inside a part. Punctuation is kept:
//                `obrien` does not find O'Brien (`o'brien`, `o’brien` and `brien` with
//                :contains do)
//   upserts      PUT Practitioner?identifier=licence creates, updates (same id, version 2), a
//                repeat is a no-op; two matches → 412; a transaction with a conditional PUT of a
//                Practitioner (fullUrl urn:uuid) and a PractitionerRole referring to that urn
//   staffing     Location/{id}/$staffing and Organization/{id}/$staffing on a hand-made set:
//                active, ended, future and open periods, inactive postings, several codings,
//                text-only roles, includeBelow; 401 / 404 / 410 / 400 / 405; metadata
//   iHRIS        ../shared/data (skipped with the reason when absent): the Practitioner and
//                PractitionerRole bundles through the API (the 1000-entry cap, each invalid
//                entry named exactly in a transaction and in a batch), through `mahali import
//                fhir`, then $staffing against counts computed here from the raw files. Prints
//                `ihris: ...` and `staffing: ...` lines with the figures.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, SHARED_DIR, assertOutcome, createDatabase, dropDatabase, e2eSkipReason, run, runOk, sample, useServer } from './lib/server.mjs';
import { runSearch, sorted } from './lib/searchset.mjs';

const skip = e2eSkipReason();
const DATA = path.join(SHARED_DIR, 'data');
const HW = path.join(DATA, 'health_workers');
const MCSD = path.join(DATA, 'fhir_mcsd');
const dataSkip =
  skip || (existsSync(path.join(HW, 'ihris_demo_bundle-Practitioner.json')) ? undefined : `the iHRIS demo bundles are not here: ${HW} is absent (checkouts without ../shared/data skip them)`);

const NID = 'https://nid.gov.example/national-id';
const NMC = 'https://nmc.example.org/fhir/NamingSystem/licence'; // nursing and midwifery council
const MDC = 'https://mdc.example.org/fhir/NamingSystem/licence'; // medical and dental council
const POSTING = 'https://hr.moh.example/fhir/NamingSystem/posting';
const ROLE = 'http://terminology.hl7.org/CodeSystem/practitioner-role';
const SCT = 'http://snomed.info/sct';
const V2_0360 = 'http://terminology.hl7.org/CodeSystem/v2-0360';
const OP = 'https://profiles.mahali.health/fhir/OperationDefinition/';

const ref = (r) => ({ reference: r });
const urn = () => `urn:uuid:${randomUUID()}`;
const loadJson = (p) => JSON.parse(readFileSync(p, 'utf8'));
/** Today (UTC) as YYYY-MM-DD, and a day n days away. */
const day = (n = 0) => new Date(Date.now() + n * 86400000).toISOString().slice(0, 10);
/** The content a client sent, as the server must give it back (no id, no meta). */
const content = (r) => {
  const { id, meta, ...rest } = r;
  return rest;
};

/** Ids (sorted) a search matches, following pages. */
async function ids(S, type, query, as = 'reader') {
  const r = await runSearch(S, type, query, { as });
  assert.equal(r.status, 200, `${r.what}: ${r.status} ${r.first.text.slice(0, 400)}`);
  return sorted(r.matches);
}

/** GET a $staffing answer as {total, practitioners, uncoded, places, date, includeBelow, ref,
 *  roles: {"system|code" or "text:…": {count, display}}}, checking the Parameters' shape. */
async function staffing(S, urlPath, as = 'reader') {
  const r = await S.req('GET', urlPath, { as });
  assert.equal(r.status, 200, `GET ${urlPath}: ${r.status} ${r.text.slice(0, 500)}`);
  assert.equal(r.json.resourceType, 'Parameters');
  const out = { roles: {}, order: [] };
  for (const p of r.json.parameter) {
    if (p.name === 'role') {
      const part = Object.fromEntries(p.part.map((x) => [x.name, x]));
      assert.ok(Number.isInteger(part.count?.valueInteger), `role without count: ${JSON.stringify(p)}`);
      const c = part.code?.valueCoding;
      const key = c ? `${c.system ?? ''}|${c.code}` : `text:${part.text.valueString}`;
      assert.equal(out.roles[key], undefined, `role ${key} twice`);
      out.roles[key] = { count: part.count.valueInteger, display: c ? c.display : part.text.valueString };
      out.order.push(part.count.valueInteger);
    } else if (p.name === 'location' || p.name === 'organization') {
      out.ref = p.valueReference;
    } else if (p.name === 'includeBelow') {
      out.includeBelow = p.valueBoolean;
    } else if (p.name === 'date') {
      out.date = p.valueDate;
    } else {
      assert.ok(Number.isInteger(p.valueInteger), `parameter ${p.name}: ${JSON.stringify(p)}`);
      out[p.name] = p.valueInteger;
    }
  }
  assert.deepEqual(out.order, [...out.order].sort((a, b) => b - a), 'roles come most postings first');
  delete out.order;
  return out;
}

/** Expected staffing from PractitionerRole resources (the rule written independently of the
 *  server's SQL): postings at any of places (location refs or organization ref) with active not
 *  false and a period (if any) covering today, grouped per coding; text-only concepts by text. */
function expectStaffing(roles, places, { field = 'location', today = day() } = {}) {
  const want = new Set(places);
  const covers = (p) => !p || ((!p.start || p.start.slice(0, 10) <= today) && (!p.end || p.end.slice(0, 10) >= today));
  const posts = roles.filter((r) => {
    const targets = field === 'location' ? (r.location || []).map((l) => l.reference) : [r.organization?.reference];
    return r.active !== false && covers(r.period) && targets.some((t) => want.has(t));
  });
  const roleMap = {};
  let uncoded = 0;
  for (const r of posts) {
    const keys = new Map();
    for (const c of r.code || []) {
      const codings = (c.coding || []).filter((x) => x.code);
      for (const x of codings) if (!keys.has(`${x.system ?? ''}|${x.code}`)) keys.set(`${x.system ?? ''}|${x.code}`, x.display ?? c.text);
      if (!codings.length && c.text) keys.set(`text:${c.text}`, c.text);
    }
    if (!keys.size) uncoded++;
    for (const [k, display] of keys) {
      roleMap[k] ??= { count: 0, display };
      roleMap[k].count++;
      if (display !== undefined && (roleMap[k].display === undefined || display < roleMap[k].display)) roleMap[k].display = display;
    }
  }
  const practitioners = new Set(posts.map((r) => r.practitioner?.reference).filter(Boolean)).size;
  return { total: posts.length, practitioners, uncoded, roles: roleMap };
}

/** The part of a $staffing answer expectStaffing predicts. */
const pick = (s) => ({ total: s.total, practitioners: s.practitioners, uncoded: s.uncoded, roles: s.roles });

describe('health workers', { skip }, () => {
  const S = useServer('workers');
  const place = {}; // ids of the hand-made Locations and Organizations

  before(async () => {
    // regulators, a health district with two facilities (and their Organizations)
    for (const [k, name] of [
      ['nmc', 'Nursing and Midwifery Council'],
      ['mdc', 'Medical and Dental Council'],
      ['dho', 'Kenema District Health Office'],
      ['o1', 'Kenema Government Hospital'],
      ['o2', 'Nongowa Community Health Centre'],
    ])
      place[k] = (await S.create({ resourceType: 'Organization', active: true, name })).id;
    place.district = (await S.create(sample('Location', { name: 'Kenema District', mode: 'kind', position: undefined }))).id;
    place.f1 = (await S.create(sample('Location', { name: 'Kenema Government Hospital', partOf: ref(`Location/${place.district}`), managingOrganization: ref(`Organization/${place.o1}`) }))).id;
    place.f2 = (await S.create(sample('Location', { name: 'Nongowa CHC', partOf: ref(`Location/${place.district}`), managingOrganization: ref(`Organization/${place.o2}`) }))).id;
  });

  // ---- 1. in depth --------------------------------------------------------------------------

  describe('Practitioner and PractitionerRole in depth', () => {
    const P = {};
    const R = {};
    const doctorCode = { coding: [{ system: ROLE, code: 'doctor', display: 'Doctor' }], text: 'Medical officer' };
    const nurseCode = { coding: [{ system: ROLE, code: 'nurse', display: 'Nurse' }] };

    it('a Practitioner with a national id, two licences and qualifications round-trips exactly', async () => {
      const fatmata = {
        resourceType: 'Practitioner',
        identifier: [
          { use: 'official', type: { text: 'National ID' }, system: NID, value: 'SL-1985-03-0042' },
          { use: 'official', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'LN' }] }, system: NMC, value: 'RN-20431', period: { start: '2009-07-01' } },
          { use: 'official', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'LN' }] }, system: MDC, value: 'MD-7719', period: { start: '2016-01-15', end: '2030-01-14' } },
        ],
        active: true,
        name: [
          { use: 'official', text: 'Dr Fatmata Binta Kamara', family: 'Kamara', given: ['Fatmata', 'Binta'], prefix: ['Dr'] },
          { use: 'maiden', family: 'Conteh', given: ['Fatmata'] },
        ],
        telecom: [
          { system: 'phone', value: '+232 76 000 001', use: 'work' },
          { system: 'email', value: 'f.kamara@moh.example', use: 'work' },
        ],
        address: [{ use: 'home', line: ['12 Hangha Road'], city: 'Kenema', district: 'Kenema', country: 'SL' }],
        gender: 'female',
        birthDate: '1985-03-14',
        qualification: [
          {
            identifier: [{ system: NMC, value: 'RN-20431' }],
            code: { coding: [{ system: V2_0360, code: 'RN', display: 'Registered Nurse' }], text: 'Registered Nurse' },
            period: { start: '2009-07-01', end: '2029-06-30' },
            issuer: { reference: `Organization/${place.nmc}`, display: 'Nursing and Midwifery Council' },
          },
          {
            identifier: [{ system: MDC, value: 'MD-7719' }],
            code: { coding: [{ system: V2_0360, code: 'MD', display: 'Doctor of Medicine' }] },
            period: { start: '2016-01-15' },
            issuer: { reference: `Organization/${place.mdc}` },
          },
        ],
        communication: [{ coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] }, { coding: [{ system: 'urn:ietf:bcp:47', code: 'men' }], text: 'Mende' }],
      };
      const ibrahim = {
        resourceType: 'Practitioner',
        identifier: [
          { system: NID, value: 'SL-1979-11-0007' },
          { system: MDC, value: 'MD-5120' },
        ],
        active: true,
        name: [{ use: 'official', family: 'Sesay', given: ['Ibrahim'] }],
        gender: 'male',
        qualification: [{ code: { coding: [{ system: V2_0360, code: 'MD' }] }, issuer: ref(`Organization/${place.mdc}`) }],
      };
      for (const [k, res] of [
        ['fatmata', fatmata],
        ['ibrahim', ibrahim],
      ]) {
        const c = await S.create(res);
        P[k] = c.id;
        const r = await S.req('GET', `/fhir/Practitioner/${c.id}`, { as: 'editor' }); // a reader sees less
        assert.equal(r.status, 200);
        assert.equal(r.headers.etag, 'W/"1"');
        assert.deepEqual(content(r.json), res, `${k} comes back as sent`);
      }
      // personal data: never anonymous
      for (const p of [`/fhir/Practitioner/${P.fatmata}`, '/fhir/Practitioner?name=kamara'])
        assertOutcome(await S.req('GET', p), 401, 'login', { what: `anonymous GET ${p}` });
    });

    it('postings (PractitionerRole) with period, active, location, organization, specialty and code round-trip', async () => {
      const roles = {
        r1: { practitioner: 'fatmata', loc: 'f1', org: 'o1', code: [nurseCode], specialty: [{ coding: [{ system: SCT, code: '394814009', display: 'General practice' }] }], period: { start: '2020-01-01' }, active: true },
        r2: { practitioner: 'fatmata', loc: 'f2', org: 'o2', code: [doctorCode], specialty: [{ coding: [{ system: SCT, code: '394537008', display: 'Paediatric specialty' }] }], period: { start: '2023-02-01', end: '2031-01-31' }, active: true },
        r3: { practitioner: 'ibrahim', loc: 'f1', org: 'o1', code: [doctorCode], specialty: [{ coding: [{ system: SCT, code: '394814009' }] }], active: false },
        r4: { practitioner: 'ibrahim', loc: 'f2', org: 'o2', code: [doctorCode], period: { start: '2012-05-01', end: '2019-04-30' }, active: true },
      };
      for (const [k, x] of Object.entries(roles)) {
        const res = {
          resourceType: 'PractitionerRole',
          identifier: [{ system: POSTING, value: `P-${k}` }],
          active: x.active,
          period: x.period,
          practitioner: ref(`Practitioner/${P[x.practitioner]}`),
          organization: ref(`Organization/${place[x.org]}`),
          code: x.code,
          specialty: x.specialty,
          location: [ref(`Location/${place[x.loc]}`)],
          telecom: [{ system: 'phone', value: '+232 76 100 200', use: 'work' }],
          availableTime: [{ daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri'], availableStartTime: '08:00:00', availableEndTime: '16:30:00' }],
        };
        for (const f of ['period', 'specialty']) if (res[f] === undefined) delete res[f];
        const c = await S.create(res);
        R[k] = c.id;
        const r = await S.req('GET', `/fhir/PractitionerRole/${c.id}`, { as: 'reader' });
        assert.deepEqual(content(r.json), res, `${k} comes back as sent`);
      }
      assertOutcome(await S.req('GET', `/fhir/PractitionerRole/${R.r1}`), 401, 'login');
    });

    it('Practitioner search: identifier (system|value, value, system|), name, given, family', async () => {
      const { fatmata: f, ibrahim: i } = P;
      const cases = [
        [`identifier=${NMC}|RN-20431`, [f]],
        [`identifier=${MDC}|MD-7719`, [f]],
        [`identifier=${MDC}|MD-5120`, [i]],
        [`identifier=${NID}|SL-1985-03-0042`, [f]],
        [`identifier=${NMC}|MD-7719`, []], // a value of another regulator's system
        [`identifier=MD-7719`, [f]],
        [`identifier=${MDC}|`, [f, i]],
        [`identifier=${NMC}|`, [f]],
        [`identifier=${NMC}|RN-20431,${MDC}|MD-5120`, [f, i]],
        ['name=kamara', [f]],
        ['name=conteh', [f]], // the maiden name
        ['name=dr fatmata', [f]], // the text
        ['name=sesay', [i]],
        ['given=binta', [f]],
        ['given=kamara', []],
        ['family=ses', [i]],
        ['family:exact=Kamara', [f]],
        ['family:exact=kamara', []],
        ['name:contains=amar', [f]],
        ['gender=male', [i]],
        ['active=true', [f, i]],
        ['communication=urn:ietf:bcp:47|men', [f]],
      ];
      for (const [q, want] of cases) assert.deepEqual(await ids(S, 'Practitioner', q), sorted(want), `Practitioner?${q}`);
    });

    it('PractitionerRole search: practitioner, location, organization, role, specialty, active, date, _include', async () => {
      const { r1, r2, r3, r4 } = R;
      const cases = [
        [`practitioner=Practitioner/${P.fatmata}`, [r1, r2]],
        [`practitioner=${P.ibrahim}`, [r3, r4]],
        [`location=Location/${place.f1}`, [r1, r3]],
        [`location=${place.f2}`, [r2, r4]],
        [`organization=Organization/${place.o1}`, [r1, r3]],
        [`role=${ROLE}|doctor`, [r2, r3, r4]],
        ['role=nurse', [r1]],
        [`specialty=${SCT}|394814009`, [r1, r3]],
        [`specialty=${SCT}|394537008`, [r2]],
        ['active=true', [r1, r2, r4]],
        ['active=false', [r3]],
        [`identifier=${POSTING}|P-r2`, [r2]],
        // postings that hold today (r3 has no period): the period reaches up to and from today
        [`date=ge${day()}&date=le${day()}`, [r1, r2]],
        ['date=lt2020-01-01', [r4]],
        ['date=2016', []], // eq: the period lies inside 2016 (R4 date search)
        [`location=${place.f1}&role=doctor`, [r3]],
        [`practitioner.identifier=${NMC}|RN-20431`, [r1, r2]],
        ['practitioner.name=sesay', [r3, r4]],
      ];
      for (const [q, want] of cases) assert.deepEqual(await ids(S, 'PractitionerRole', q), sorted(want), `PractitionerRole?${q}`);

      const inc = await runSearch(S, 'PractitionerRole', `location=${place.f1}&_include=PractitionerRole:practitioner`, { as: 'reader' });
      assert.equal(inc.status, 200, inc.first.text.slice(0, 400));
      assert.deepEqual(sorted(inc.matches), sorted([r1, r3]));
      assert.deepEqual(sorted(inc.includes), sorted([`Practitioner/${P.fatmata}`, `Practitioner/${P.ibrahim}`]));
      const rev = await runSearch(S, 'Practitioner', `identifier=${NMC}|RN-20431&_revinclude=PractitionerRole:practitioner`, { as: 'reader' });
      assert.deepEqual(sorted(rev.includes), sorted([`PractitionerRole/${r1}`, `PractitionerRole/${r2}`]));
    });
  });

  // ---- 2. names in any script ---------------------------------------------------------------

  describe('Unicode names', () => {
    const N = {};
    const people = {
      ngozi: { text: 'Ngozi Okonjo-Iweala', family: 'Okonjo-Iweala', given: ['Ngozi'] },
      jose: { text: 'José Ñúñez', family: 'Ñúñez', given: ['José'] },
      nguyen: { text: 'Nguyễn Thị Minh', family: 'Nguyễn', given: ['Thị', 'Minh'] },
      obrien: { text: "Seán O'Brien", family: "O'Brien", given: ['Seán'] },
      ndiaye: { text: 'Aïssatou N’Diaye', family: 'N’Diaye', given: ['Aïssatou'] },
      abebe: { text: 'አበበ ቢቂላ', family: 'ቢቂላ', given: ['አበበ'] },
      mohammed: { text: 'محمد عبد الله', family: 'عبد الله', given: ['محمد'] },
      zhang: { text: '张伟', family: '张', given: ['伟'] },
      dmitri: { text: 'Дмитрий Шостакович', family: 'Шостакович', given: ['Дмитрий'] },
      // decomposed accents (NFD: e + U+0301), as some keyboards and macOS file names send them
      renee: { text: 'Rene\u0301e Lefe\u0300vre', family: 'Lefe\u0300vre', given: ['Rene\u0301e'] },
      strauss: { text: 'Jürgen Strauß', family: 'Strauß', given: ['Jürgen'] },
      // letters unaccent keeps whole, decomposed: й as и + U+0306, Hangul as jamo
      yuri: { text: 'Юрий Гагарин'.normalize('NFD'), family: 'Гагарин', given: ['Юрий'.normalize('NFD')] },
      kim: { text: '김민준'.normalize('NFD'), family: '김'.normalize('NFD'), given: ['민준'.normalize('NFD')] },
    };

    before(async () => {
      for (const [k, name] of Object.entries(people)) {
        const res = { resourceType: 'Practitioner', active: true, name: [{ use: 'official', ...name }] };
        const c = await S.create(res);
        N[k] = c.id;
        const r = await S.req('GET', `/fhir/Practitioner/${c.id}`, { as: 'editor' });
        assert.deepEqual(r.json.name, res.name, `${k}: stored and given back as sent, byte for byte`);
      }
    });

    it('prefix search ignores case and accents; :exact is exact; :contains finds inside a part', async () => {
      const cases = [
        ['name=jose', ['jose']],
        ['name=JOSÉ', ['jose']],
        ['name=nunez', ['jose']],
        ['name=ÑÚÑ', ['jose']],
        ['given=jose', ['jose']],
        ['family=nunez', ['jose']],
        ['family:exact=Ñúñez', ['jose']],
        ['family:exact=Nunez', []],
        ['family:exact=ñúñez', []],
        ['name=nguyen', ['nguyen']],
        ['name=NGUYỄN', ['nguyen']],
        ['name=nguyen thi', ['nguyen']],
        ['given=thi', ['nguyen']],
        ['given=minh', ['nguyen']],
        ['family:exact=Nguyễn', ['nguyen']],
        ['family:exact=Nguyen', []],
        ['name=okonjo', ['ngozi']],
        ['name=okonjo-iweala', ['ngozi']],
        ['name=iweala', []], // a hyphenated family name is one part: prefix search starts at its start
        ['name:contains=iweala', ['ngozi']],
        ['family:exact=Okonjo-Iweala', ['ngozi']],
        ["name=o'brien", ['obrien']],
        ['name=o’brien', ['obrien']], // the curly apostrophe is the same letter for search
        ["name=O'B", ['obrien']],
        ['name=obrien', []], // punctuation is not dropped (documented)
        ['name:contains=brien', ['obrien']],
        ["family:exact=O'Brien", ['obrien']],
        ['family:exact=O’Brien', []],
        ['given=sean', ['obrien']],
        ["name=n'diaye", ['ndiaye']],
        ['name=N’DIAYE', ['ndiaye']],
        ['family:exact=N’Diaye', ['ndiaye']],
        ["family:exact=N'Diaye", []],
        ['given=aissatou', ['ndiaye']],
        ['name=አበበ', ['abebe']],
        ['family=ቢቂ', ['abebe']],
        ['family:exact=ቢቂላ', ['abebe']],
        ['name=محمد', ['mohammed']],
        ['family=عبد', ['mohammed']],
        ['name=张', ['zhang']],
        ['name=张伟', ['zhang']],
        ['given=伟', ['zhang']],
        ['name=дмитрий', ['dmitri']],
        ['name=ДМИТ', ['dmitri']],
        ['family=шостакович', ['dmitri']],
        ['family:exact=шостакович', []],
        ['name=renee', ['renee']],
        ['name=renée', ['renee']], // NFC query, NFD stored
        ['family=lefevre', ['renee']],
        ['given:exact=Renée', ['renee']], // NFC spelling of the stored NFD name
        ['given:exact=Rene\u0301e', ['renee']],
        ['given:exact=Renee', []],
        ['family=strauss', ['strauss']],
        ['family=strauß', ['strauss']],
        ['name=jurgen', ['strauss']],
        ['name=юрий', ['yuri']],
        ['given:exact=Юрий', ['yuri']],
        ['name=юри', ['yuri']],
        ['name=гагарин', ['yuri']],
        ['name=김', ['kim']],
        ['family:exact=김', ['kim']],
        ['given=민', ['kim']],
        ['name=김민준', ['kim']],
      ];
      const bad = [];
      for (const [q, want] of cases) {
        const got = await ids(S, 'Practitioner', q);
        const exp = sorted(want.map((k) => N[k]));
        if (JSON.stringify(got) !== JSON.stringify(exp)) {
          const names = Object.fromEntries(Object.entries(N).map(([k, v]) => [v, k]));
          bad.push(`${q}: expected [${want}], got [${got.map((g) => names[g] || g)}]`);
        }
      }
      assert.deepEqual(bad, [], 'searches');
    });
  });

  // ---- 3. HR upserts ------------------------------------------------------------------------

  describe('HR upserts', () => {
    it('PUT Practitioner?identifier=licence creates, then updates the same resource; a repeat is a no-op', async () => {
      const lic = 'RN-90001';
      const url = `/fhir/Practitioner?identifier=${encodeURIComponent(`${NMC}|${lic}`)}`;
      const v1 = { resourceType: 'Practitioner', identifier: [{ system: NMC, value: lic }], active: true, name: [{ family: 'Koroma', given: ['Isatu'] }] };
      const a = await S.req('PUT', url, { body: v1, as: 'editor' });
      assert.equal(a.status, 201, a.text.slice(0, 400));
      assert.equal(a.headers.etag, 'W/"1"');
      const id = a.json.id;
      assert.match(a.headers.location, new RegExp(`/fhir/Practitioner/${id}/_history/1$`));

      const v2 = { ...v1, telecom: [{ system: 'phone', value: '+232 77 123 456' }] };
      const b = await S.req('PUT', url, { body: v2, as: 'editor' });
      assert.equal(b.status, 200, b.text.slice(0, 400));
      assert.equal(b.json.id, id, 'the same resource');
      assert.equal(b.json.meta.versionId, '2');
      assert.equal(b.headers.etag, 'W/"2"');

      const c = await S.req('PUT', url, { body: v2, as: 'editor' });
      assert.equal(c.status, 200);
      assert.equal(c.json.id, id);
      assert.equal(c.headers.etag, 'W/"2"', 'the same content again: no new version');
      assert.equal(c.json.meta.lastUpdated, b.json.meta.lastUpdated);
      const h = await S.req('GET', `/fhir/Practitioner/${id}/_history`, { as: 'reader' });
      assert.equal(h.json.entry.length, 2, 'history: created, updated');

      // the body may carry the matched id, not another one
      assertOutcome(await S.req('PUT', url, { body: { ...v2, id: 'someone-else' }, as: 'editor' }), 400, undefined);
      // the licence number belongs to one Practitioner only
      const dup = await S.req('POST', '/fhir/Practitioner', { body: { ...v1, name: [{ family: 'Other' }] }, as: 'editor' });
      assertOutcome(dup, 409, 'duplicate');
      // criteria matching two health workers: 412, nothing written
      assertOutcome(await S.req('PUT', `/fhir/Practitioner?identifier=${encodeURIComponent(`${MDC}|`)}`, { body: v1, as: 'editor' }), 412, undefined);
      // a reader may not upsert
      assertOutcome(await S.req('PUT', url, { body: v2, as: 'reader' }), 403, 'forbidden');
    });

    it('a transaction: conditional PUT of a Practitioner (urn:uuid) and a posting referring to it', async () => {
      const lic = 'MD-90002';
      const pu = urn();
      const ru = urn();
      const prac = { resourceType: 'Practitioner', identifier: [{ system: MDC, value: lic }], active: true, name: [{ family: 'Bangura', given: ['Mohamed'] }] };
      const role = {
        resourceType: 'PractitionerRole',
        identifier: [{ system: POSTING, value: `P-${lic}` }],
        active: true,
        practitioner: ref(pu),
        location: [ref(`Location/${place.f2}`)],
        organization: ref(`Organization/${place.o2}`),
        code: [{ coding: [{ system: ROLE, code: 'doctor' }] }],
        period: { start: '2024-01-01' },
      };
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          // the posting first: references resolve whatever the order
          { fullUrl: ru, resource: role, request: { method: 'PUT', url: `PractitionerRole?identifier=${POSTING}|P-${lic}` } },
          { fullUrl: pu, resource: prac, request: { method: 'PUT', url: `Practitioner?identifier=${MDC}|${lic}` } },
        ],
      };
      const r = await S.req('POST', '/fhir', { body: bundle, as: 'editor' });
      assert.equal(r.status, 200, r.text.slice(0, 600));
      assert.equal(r.json.type, 'transaction-response');
      assert.deepEqual(r.json.entry.map((e) => e.response.status), ['201 Created', '201 Created']);
      const [, pid] = /^Practitioner\/([^/]+)\/_history\/1$/.exec(r.json.entry[1].response.location) || [];
      const [, rid] = /^PractitionerRole\/([^/]+)\/_history\/1$/.exec(r.json.entry[0].response.location) || [];
      assert.ok(pid && rid, JSON.stringify(r.json.entry.map((e) => e.response.location)));
      const stored = await S.req('GET', `/fhir/PractitionerRole/${rid}`, { as: 'reader' });
      assert.equal(stored.json.practitioner.reference, `Practitioner/${pid}`, 'the urn:uuid became the new id');
      assert.deepEqual(await ids(S, 'PractitionerRole', `practitioner.identifier=${MDC}|${lic}`), [rid]);

      // the same feed again: both match, nothing changes, the urn resolves to the existing id
      const again = await S.req('POST', '/fhir', { body: bundle, as: 'editor' });
      assert.equal(again.status, 200, again.text.slice(0, 600));
      assert.deepEqual(again.json.entry.map((e) => [e.response.status, e.response.location]), [
        ['200 OK', `PractitionerRole/${rid}/_history/1`],
        ['200 OK', `Practitioner/${pid}/_history/1`],
      ]);
      // a change in the HR system: a new version of the same resources
      bundle.entry[1].resource = { ...prac, name: [{ family: 'Bangura', given: ['Mohamed', 'Lamin'] }] };
      const changed = await S.req('POST', '/fhir', { body: bundle, as: 'editor' });
      assert.deepEqual(changed.json.entry.map((e) => e.response.location), [`PractitionerRole/${rid}/_history/1`, `Practitioner/${pid}/_history/2`]);
    });
  });

  // ---- 4. $staffing on a hand-made set ---------------------------------------------------------

  describe('$staffing', () => {
    const made = [];
    let pr;
    before(async () => {
      pr = (await S.create({ resourceType: 'Practitioner', active: true, name: [{ family: 'Staff' }] })).id;
      const nurse = { coding: [{ system: ROLE, code: 'nurse', display: 'Nurse' }] };
      const midwife = { coding: [{ system: 'https://hr.moh.example/cadre', code: 'SECHN-MW', display: 'State Enrolled Midwife' }], text: 'Midwife' };
      const chw = { coding: [{ system: 'https://hr.moh.example/cadre', code: 'CHW' }], text: 'Community health worker' };
      const at = (loc, org) => ({ location: [ref(`Location/${place[loc]}`)], ...(org ? { organization: ref(`Organization/${place[org]}`) } : {}) });
      const rows = [
        // f1 (organization o1)
        { ...at('f1', 'o1'), code: [nurse], period: { start: '2019-01-01' } },
        { ...at('f1', 'o1'), code: [nurse] }, // no period: always
        { ...at('f1', 'o1'), code: [nurse], active: false }, // inactive
        { ...at('f1', 'o1'), code: [nurse], period: { start: '2010-01-01', end: day(-1) } }, // ended yesterday
        { ...at('f1', 'o1'), code: [nurse], period: { start: day(1) } }, // starts tomorrow
        { ...at('f1', 'o1'), code: [nurse], period: { start: day(), end: day() } }, // today only
        { ...at('f1', 'o1'), code: [midwife, nurse] }, // two concepts: counted under both
        { ...at('f1', 'o1'), code: [{ coding: [...midwife.coding, ...nurse.coding] }] }, // two codings of one concept
        { ...at('f1', 'o1'), code: [{ text: 'Volunteer' }] }, // text only
        { ...at('f1', 'o1') }, // no code
        // f2 (organization o2), and one posting at both facilities
        { ...at('f2', 'o2'), code: [chw], period: { start: '2021-03-01', end: '2099-12-31' } },
        { ...at('f2'), code: [chw] },
        { location: [ref(`Location/${place.f1}`), ref(`Location/${place.f2}`)], organization: ref(`Organization/${place.dho}`), code: [chw] },
        // at the district itself
        { location: [ref(`Location/${place.district}`)], organization: ref(`Organization/${place.dho}`), code: [{ coding: [{ system: ROLE, code: 'doctor' }] }] },
      ];
      for (const x of rows) {
        const res = { resourceType: 'PractitionerRole', active: true, practitioner: ref(`Practitioner/${pr}`), ...x };
        const c = await S.create(res);
        made.push(c.resource);
      }
      made.push(...(await runSearch(S, 'PractitionerRole', '_count=500', { as: 'reader' })).pages.flatMap((p) => (p.entry || []).map((e) => e.resource)).filter((r) => !made.some((m) => m.id === r.id)));
    });

    it('Location/{id}/$staffing counts the active postings by role', async () => {
      const s = await staffing(S, `/fhir/Location/${place.f1}/$staffing`);
      const want = expectStaffing(made, [`Location/${place.f1}`]);
      assert.deepEqual(pick(s), want);
      assert.equal(s.places, 1);
      assert.equal(s.includeBelow, false);
      assert.equal(s.date, day());
      assert.deepEqual(s.ref, { reference: `Location/${place.f1}`, display: 'Kenema Government Hospital' });
      // spelled out for the hand-made rows (+ the in-depth test's posting r1 of Fatmata at f1;
      // r3 is inactive)
      assert.equal(s.roles[`${ROLE}|nurse`].count, 6, 'nurse: 2019-, open, today only, 2 with midwife, + r1');
      assert.equal(s.roles[`${ROLE}|nurse`].display, 'Nurse');
      assert.equal(s.roles['https://hr.moh.example/cadre|SECHN-MW'].count, 2);
      assert.equal(s.roles['https://hr.moh.example/cadre|SECHN-MW'].display, 'State Enrolled Midwife');
      assert.equal(s.roles['https://hr.moh.example/cadre|CHW'].count, 1, 'the posting at both facilities');
      assert.equal(s.roles['https://hr.moh.example/cadre|CHW'].display, 'Community health worker', 'no display: the text');
      assert.equal(s.roles['text:Volunteer'].count, 1);
      assert.equal(s.uncoded, 1);
      assert.equal(s.total, 9);
      assert.equal(s.practitioners, 2);
    });

    it('includeBelow counts every Location below; Organization/{id}/$staffing uses PractitionerRole.organization', async () => {
      const district = await staffing(S, `/fhir/Location/${place.district}/$staffing`);
      assert.deepEqual(pick(district), expectStaffing(made, [`Location/${place.district}`]));
      assert.equal(district.total, 1);
      const below = await staffing(S, `/fhir/Location/${place.district}/$staffing?includeBelow=true`);
      const all = [place.district, place.f1, place.f2].map((x) => `Location/${x}`);
      assert.deepEqual(pick(below), expectStaffing(made, all));
      assert.equal(below.places, 3);
      assert.equal(below.includeBelow, true);
      const f1 = await staffing(S, `/fhir/Location/${place.f1}/$staffing`);
      const f2 = await staffing(S, `/fhir/Location/${place.f2}/$staffing`);
      assert.equal(below.total, district.total + f1.total + f2.total - 1, 'a posting at two facilities counts once');
      for (const o of ['o1', 'o2', 'dho']) {
        const s = await staffing(S, `/fhir/Organization/${place[o]}/$staffing`);
        assert.deepEqual(pick(s), expectStaffing(made, [`Organization/${place[o]}`], { field: 'organization' }), o);
        assert.equal(s.ref.reference, `Organization/${place[o]}`);
      }
      const none = await staffing(S, `/fhir/Organization/${place.nmc}/$staffing`);
      assert.deepEqual(pick(none), { total: 0, practitioners: 0, uncoded: 0, roles: {} });
    });

    it('a change of a posting shows at once; errors: 401, 403-free for readers, 404, 410, 400, 405', async () => {
      const before1 = await staffing(S, `/fhir/Location/${place.f2}/$staffing`);
      const chw = made.find((r) => r.location?.length === 1 && r.location[0].reference === `Location/${place.f2}` && !r.organization);
      const r = await S.req('PUT', `/fhir/PractitionerRole/${chw.id}`, { body: { ...content(chw), id: chw.id, active: false }, as: 'editor' });
      assert.equal(r.status, 200, r.text.slice(0, 300));
      const after1 = await staffing(S, `/fhir/Location/${place.f2}/$staffing`);
      assert.equal(after1.total, before1.total - 1);
      assert.equal(after1.roles['https://hr.moh.example/cadre|CHW'].count, before1.roles['https://hr.moh.example/cadre|CHW'].count - 1);

      assertOutcome(await S.req('GET', `/fhir/Location/${place.f1}/$staffing`), 401, 'login', { what: 'anonymous' });
      for (const as of ['reader', 'editor', 'admin']) assert.equal((await S.req('GET', `/fhir/Location/${place.f1}/$staffing`, { as })).status, 200, as);
      assertOutcome(await S.req('GET', '/fhir/Location/no-such-place/$staffing', { as: 'reader' }), 404, 'not-found');
      assertOutcome(await S.req('GET', '/fhir/Organization/no-such-org/$staffing', { as: 'reader' }), 404, 'not-found');
      assertOutcome(await S.req('GET', `/fhir/Location/${place.f1}/$staffing?includeBelow=yes`, { as: 'reader' }), 400, 'value', { expression: 'includeBelow' });
      assertOutcome(await S.req('POST', `/fhir/Location/${place.f1}/$staffing`, { as: 'editor', body: { resourceType: 'Parameters' } }), 405, 'not-supported');
      assertOutcome(await S.req('GET', `/fhir/Practitioner/${pr}/$staffing`, { as: 'reader' }), 404, 'not-found');
      const gone = await S.create(sample('Location', { name: 'Closed post' }));
      assert.equal((await S.req('DELETE', `/fhir/Location/${gone.id}`, { as: 'admin' })).status, 200);
      assertOutcome(await S.req('GET', `/fhir/Location/${gone.id}/$staffing`, { as: 'reader' }), 410, 'deleted');
      // the id comes from the URL: anything that is not an id is refused before any SQL
      assertOutcome(await S.req('GET', `/fhir/Location/${encodeURIComponent("x' OR '1'='1")}/$staffing`, { as: 'reader' }), 400, 'value');
      // XML on request, like any answer
      const x = await S.req('GET', `/fhir/Location/${place.f1}/$staffing?_format=xml`, { as: 'reader' });
      assert.equal(x.status, 200);
      assert.match(x.text, /<Parameters xmlns="http:\/\/hl7.org\/fhir">/);
    });

    it('the CapabilityStatement declares $staffing on Location and Organization', async () => {
      const cs = (await S.req('GET', '/fhir/metadata')).json;
      for (const t of ['Location', 'Organization']) {
        const res = cs.rest[0].resource.find((x) => x.type === t);
        const op = (res.operation || []).find((o) => o.name === 'staffing');
        assert.ok(op, `${t} lists staffing`);
        assert.equal(op.definition, `${OP}${t}-staffing`);
        assert.match(op.documentation, /includeBelow/);
      }
    });
  });
});

// ---- 5. the iHRIS demo bundles ------------------------------------------------------------------

/** What the registry must say of one raw iHRIS Practitioner, derived from the file here: an
 *  integer written as a string (the ihris-practitionerDependents extension) is refused. Empty
 *  arrays (telecom, address, qualification are [] in most records), which FHIR JSON forbids
 *  but which say nothing, are left out on write. Sorted [expression, code] pairs, relative to
 *  the resource. */
function practitionerIssues(res) {
  const out = [];
  (res.extension || []).forEach((x, i) => {
    if ('valueInteger' in x && !Number.isInteger(x.valueInteger)) out.push([`Practitioner.extension[${i}].valueInteger`, 'value']);
  });
  return out.sort();
}

/** The repairs the tests make so that the iHRIS records can be stored: leave empty arrays out,
 *  write string integers as numbers, and managingOrganization as a Reference. */
function repair(res) {
  const r = structuredClone(res);
  for (const [k, v] of Object.entries(r)) if (Array.isArray(v) && v.length === 0) delete r[k];
  for (const x of r.extension || []) if (typeof x.valueInteger === 'string') x.valueInteger = Number(x.valueInteger);
  if (typeof r.managingOrganization === 'string') r.managingOrganization = { reference: r.managingOrganization };
  return r;
}

const sortedIssues = (oo) => (oo?.issue || []).map((i) => [(i.expression || [])[0], i.code]).sort();
const chunks = (xs, n) => Array.from({ length: Math.ceil(xs.length / n) }, (_, k) => xs.slice(k * n, (k + 1) * n));

describe('iHRIS demo bundles', { skip: dataSkip }, () => {
  const S = useServer('workers_ihris');
  const file = (dir, name) => path.join(dir, `ihris_demo_bundle-${name}.json`);
  let practitioners;
  let roles;
  let facilities;
  let TMP;
  const cliDbs = [];

  before(async () => {
    practitioners = loadJson(file(HW, 'Practitioner'));
    roles = loadJson(file(HW, 'PractitionerRole'));
    TMP = mkdtempSync(path.join(os.tmpdir(), 'mahali-workers-'));
    // the places: countries, regions, districts as they are; the facility bundle once its
    // managingOrganization strings are References (import.test.mjs asserts its refusal)
    for (const name of ['Country', 'Region', 'District', 'Facility']) {
      const b = loadJson(file(MCSD, name));
      if (name === 'Facility') {
        const r = await S.req('POST', '/fhir', { body: b, as: 'admin', timeout: 120000 });
        assertOutcome(r, 400, 'structure', { expression: 'Bundle.entry[1].resource.managingOrganization' });
        b.entry = b.entry.map((e) => ({ ...e, resource: repair(e.resource) }));
        facilities = b.entry.map((e) => e.resource);
      }
      const r = await S.req('POST', '/fhir', { body: b, as: 'admin', timeout: 120000 });
      assert.equal(r.status, 200, `${name}: ${r.text.slice(0, 400)}`);
    }
  }, { timeout: 300000 });

  after(async () => {
    for (const d of cliDbs) await dropDatabase(d).catch(() => {});
    if (TMP) rmSync(TMP, { recursive: true, force: true });
  });

  it('the files are what the data README describes', () => {
    assert.equal(practitioners.type, 'transaction');
    assert.equal(practitioners.entry.length, 1007);
    assert.equal(roles.entry.length, 1008);
    assert.ok(practitioners.entry.every((e) => e.request.method === 'PUT' && e.request.url === `Practitioner/${e.resource.id}`));
    const cap2 = roles.entry.filter((e) => e.resource.location.some((l) => l.reference === 'Location/TF.CC.CAP.2'));
    assert.equal(cap2.length, 253, 'Location/TF.CC.CAP.2 alone gets 253 roles');
  });

  it('Practitioner: over 1000 entries is 413; the invalid entries are refused, each named exactly, the rest load (transaction, batch)', { timeout: 300000 }, async () => {
    const whole = await S.req('POST', '/fhir', { body: practitioners, as: 'admin', timeout: 120000 });
    assertOutcome(whole, 413, 'too-long', { expression: 'Bundle.entry' });
    assert.match(whole.json.issue[0].diagnostics, /the Bundle has 1007 entries; at most 1000 are accepted/);

    const expected = practitioners.entry.map((e) => practitionerIssues(e.resource));
    const invalid = expected.filter((x) => x.length).length;
    const tally = {};
    for (const x of expected) tally[x.map((i) => i[0].replace(/\[\d+\]/, '[n]')).join(' + ') || 'valid'] = (tally[x.map((i) => i[0].replace(/\[\d+\]/, '[n]')).join(' + ') || 'valid'] || 0) + 1;
    console.log(`# ihris: Practitioner entries=${expected.length} invalid=${invalid} ${JSON.stringify(tally)}`);

    let offset = 0;
    let created = 0;
    let rejected = 0;
    const mismatches = [];
    for (const part of chunks(practitioners.entry, 1000)) {
      // transaction: refused whole, naming the first invalid entry and every one of its issues
      const first = part.findIndex((e, k) => expected[offset + k].length);
      const tx = await S.req('POST', '/fhir', { body: { ...practitioners, entry: part }, as: 'admin', timeout: 120000 });
      const stored = first < 0; // a transaction without invalid entries stores them all
      if (first < 0) assert.equal(tx.status, 200);
      else {
        assertOutcome(tx, 400, 'value');
        assert.deepEqual(
          sortedIssues(tx.json),
          expected[offset + first].map(([e, c]) => [e.replace(/^Practitioner/, `Bundle.entry[${first}].resource`), c]),
          `transaction of entries ${offset}..${offset + part.length - 1}`,
        );
      }
      // batch: each entry on its own, each refusal with exactly its issues
      const b = await S.req('POST', '/fhir', { body: { ...practitioners, type: 'batch', entry: part }, as: 'admin', timeout: 120000 });
      assert.equal(b.status, 200, b.text.slice(0, 300));
      assert.equal(b.json.type, 'batch-response');
      assert.equal(b.json.entry.length, part.length);
      b.json.entry.forEach((e, k) => {
        const want = expected[offset + k];
        if (e.response.status.startsWith('201') || e.response.status.startsWith('200')) created++;
        else rejected++;
        const got = e.response.outcome ? sortedIssues(e.response.outcome) : [];
        const status = want.length ? '400 Bad Request' : stored ? '200 OK' : '201 Created';
        if (e.response.status !== status || JSON.stringify(got) !== JSON.stringify(want))
          mismatches.push(`entry ${offset + k} (${part[k].resource.id}): ${e.response.status} ${JSON.stringify(got)}, expected ${status} ${JSON.stringify(want)}`);
      });
      offset += part.length;
    }
    console.log(`# ihris: Practitioner batch created=${created} rejected=${rejected}`);
    assert.deepEqual(mismatches.slice(0, 10), []);
    assert.equal(rejected, invalid);
    assert.equal(created, expected.length - invalid);
    assert.ok(invalid > 0 && invalid < 100, `a few invalid entries, not ${invalid}`);
    const stored = await runSearch(S, 'Practitioner', '_summary=count', { as: 'reader' });
    assert.equal(stored.total, created, 'the valid practitioners are stored');
    // the empty arrays were left out: the stored resource is the raw one without them
    const one = practitioners.entry.find((e, k) => !expected[k].length && Array.isArray(e.resource.telecom) && !e.resource.telecom.length).resource;
    const got = await S.req('GET', `/fhir/Practitioner/${one.id}`, { as: 'editor' });
    assert.equal(got.status, 200);
    assert.ok(!('telecom' in got.json) && !('address' in got.json), 'empty arrays are not stored');
    assert.deepEqual(got.json.name, one.name);
  });

  it('PractitionerRole: refused while its practitioners are missing; loads once they are repaired and stored', { timeout: 300000 }, async () => {
    const whole = await S.req('POST', '/fhir', { body: roles, as: 'admin', timeout: 120000 });
    assertOutcome(whole, 413, 'too-long', { expression: 'Bundle.entry' });

    // while the invalid practitioners are missing (the batch above stored the others): a
    // transaction naming one of them is refused at a dangling reference
    const missing = new Set(practitioners.entry.filter((e) => practitionerIssues(e.resource).length).map((e) => `Practitioner/${e.resource.id}`));
    const early = await S.req('POST', '/fhir', { body: { ...roles, entry: roles.entry.slice(0, 1000) }, as: 'admin', timeout: 120000 });
    const issue = assertOutcome(early, 422, undefined, { what: 'roles before their practitioners' });
    const [, pr, p] = /^PractitionerRole\/(PR\d+) refers to Practitioner\/(P\d+), which does not exist$/.exec(issue.diagnostics) || [];
    assert.ok(pr, `diagnostics: ${issue.diagnostics}`);
    assert.ok(missing.has(`Practitioner/${p}`), `Practitioner/${p} is one of the refused ones`);
    const k = roles.entry.findIndex((e) => e.resource.id === pr);
    assert.equal(roles.entry[k].resource.practitioner.reference, `Practitioner/${p}`);
    assert.deepEqual(issue.expression, [`Bundle.entry[${k}]`], 'the entry of that role is named');
    console.log(`# ihris: PractitionerRole while ${missing.size} practitioners are missing: ${early.status} ${issue.expression} ${issue.diagnostics}`);

    // the practitioners, repaired, as transactions of at most 1000: the refused ones created,
    // the others unchanged (their stored form is the repaired one)
    const st0 = {};
    for (const part of chunks(practitioners.entry, 1000)) {
      const r = await S.req('POST', '/fhir', { body: { ...practitioners, entry: part.map((e) => ({ ...e, resource: repair(e.resource) })) }, as: 'admin', timeout: 120000 });
      assert.equal(r.status, 200, r.text.slice(0, 400));
      for (const e of r.json.entry) st0[e.response.status] = (st0[e.response.status] || 0) + 1;
    }
    assert.deepEqual(st0, { '201 Created': missing.size, '200 OK': 1007 - missing.size });

    // the roles as they are: valid now; a transaction creates them, a batch of the same is a no-op
    const st = {};
    for (const part of chunks(roles.entry, 1000)) {
      const r = await S.req('POST', '/fhir', { body: { ...roles, entry: part }, as: 'admin', timeout: 120000 });
      assert.equal(r.status, 200, r.text.slice(0, 400));
      for (const e of r.json.entry) st[`tx ${e.response.status}`] = (st[`tx ${e.response.status}`] || 0) + 1;
      const b = await S.req('POST', '/fhir', { body: { ...roles, type: 'batch', entry: part }, as: 'admin', timeout: 120000 });
      assert.equal(b.status, 200);
      for (const e of b.json.entry) {
        st[`batch ${e.response.status}`] = (st[`batch ${e.response.status}`] || 0) + 1;
        assert.match(e.response.location, /_history\/1$/, 'unchanged: still version 1');
      }
    }
    console.log(`# ihris: PractitionerRole ${JSON.stringify(st)}`);
    assert.deepEqual(st, { 'tx 201 Created': 1008, 'batch 200 OK': 1008 });
  });

  it('$staffing on the iHRIS facilities matches the counts computed from the files', { timeout: 300000 }, async () => {
    const raw = roles.entry.map((e) => e.resource);
    const facilityIds = new Set(facilities.filter((r) => r.resourceType === 'Location').map((r) => `Location/${r.id}`));
    // count only postings whose location resolves (every one does, per the data README)
    assert.ok(raw.every((r) => r.location.every((l) => facilityIds.has(l.reference))), 'every posting names a TF facility');
    const lines = [];
    let sum = 0;
    for (const f of [...facilityIds].sort()) {
      const s = await staffing(S, `/fhir/${f}/$staffing`);
      const want = expectStaffing(raw, [f]);
      assert.deepEqual(pick(s), want, f);
      sum += s.total;
      lines.push(`${f.slice(9)}=${s.total}`);
    }
    const cap2 = await staffing(S, '/fhir/Location/TF.CC.CAP.2/$staffing');
    const all = raw.filter((r) => r.location.some((l) => l.reference === 'Location/TF.CC.CAP.2'));
    const ended = all.filter((r) => r.period?.end && r.period.end < day()).length;
    console.log(`# staffing: TF.CC.CAP.2 postings=${all.length} ended=${ended} active=${cap2.total} practitioners=${cap2.practitioners} roles=${Object.keys(cap2.roles).length}`);
    console.log(`# staffing: TF.CC.CAP.2 by role: ${Object.entries(cap2.roles).map(([k, v]) => `${k.split('|')[1]} ${v.display}=${v.count}`).join(', ')}`);
    assert.equal(cap2.total, all.length - ended);
    assert.equal(cap2.ref.display, facilities.find((r) => r.id === 'TF.CC.CAP.2').name);

    // everything below the country, below each region: the sums of their facilities
    const country = await staffing(S, '/fhir/Location/TF/$staffing?includeBelow=true');
    assert.equal(country.total, sum);
    assert.deepEqual(pick(country), expectStaffing(raw, [...facilityIds]));
    const active = raw.filter((r) => r.active !== false && !(r.period?.end && r.period.end < day())).length;
    console.log(`# staffing: facilities=${facilityIds.size} postings=${raw.length} active=${active} TF(includeBelow)=${country.total} places=${country.places} ${lines.join(' ')}`);
    assert.equal(country.total, active);
    assert.equal((await staffing(S, '/fhir/Location/TF/$staffing')).total, 0, 'nobody is posted at the country itself');
    for (const region of ['TF.W', 'TF.S', 'TF.N', 'TF.E', 'TF.CC']) {
      const below = [...facilityIds].filter((f) => f.startsWith(`Location/${region}.`));
      const s = await staffing(S, `/fhir/Location/${region}/$staffing?includeBelow=true`);
      assert.deepEqual(pick(s), expectStaffing(raw, below), region);
    }
    // iHRIS postings name no organization
    assert.equal((await staffing(S, '/fhir/Organization/TF.CC.CAP.2/$staffing')).total, 0);
  });

  it('`mahali import fhir`: the same bundles, the same refusals, then the repaired files', { timeout: 600000 }, async () => {
    const db = await createDatabase('workers_cli');
    cliDbs.push(db.dbname);
    await runOk(BIN, ['migrate', '--database', db.conninfo], { timeout: 120000 });
    const imp = async (f, name) => {
      const report = path.join(TMP, `${name}.json`);
      const r = await run(BIN, ['import', 'fhir', f, '--database', db.conninfo, '--report', report, '--quiet'], { timeout: 300000 });
      const rep = JSON.parse(readFileSync(report, 'utf8'));
      console.log(`# ihris: import ${name} exit=${r.code} rows=${rep.rows} created=${rep.created} updated=${rep.updated} unchanged=${rep.unchanged} rejected=${rep.rejected}`);
      return { code: r.code, rep, stderr: r.stderr };
    };
    const counts = (rep) => ({ rows: rep.rows, created: rep.created, updated: rep.updated, unchanged: rep.unchanged, rejected: rep.rejected });
    for (const name of ['Country', 'Region', 'District']) assert.equal((await imp(file(MCSD, name), name)).code, 0);

    // as they are: each file is one transaction (no entry cap on the command line), refused
    // whole at its first invalid entry
    const fac = await imp(file(MCSD, 'Facility'), 'Facility');
    assert.equal(fac.code, 1);
    const p = await imp(file(HW, 'Practitioner'), 'Practitioner');
    assert.equal(p.code, 1);
    assert.deepEqual(counts(p.rep), { rows: 1007, created: 0, updated: 0, unchanged: 0, rejected: 1007 });
    // one issue per element the refused transaction names
    assert.ok(p.rep.issues.length >= 1);
    for (const i of p.rep.issues) {
      assert.ok(i.line >= 1, JSON.stringify(i));
      assert.match(i.message, /valueInteger/, JSON.stringify(i));
    }
    console.log(`# ihris: import Practitioner issues: ${p.rep.issues.map((i) => `line ${i.line}: ${i.message.slice(0, 90)}`).slice(0, 3).join(' | ')}`);
    const firstBad = practitioners.entry.findIndex((e) => practitionerIssues(e.resource).length);
    assert.match(p.rep.issues[0].message, new RegExp(`^Bundle\\.entry\\[${firstBad}\\]\\.resource\\.extension\\[\\d+\\]\\.valueInteger: .*; a transaction is all or nothing`));
    const r = await imp(file(HW, 'PractitionerRole'), 'PractitionerRole');
    assert.equal(r.code, 1);
    assert.deepEqual(counts(r.rep), { rows: 1008, created: 0, updated: 0, unchanged: 0, rejected: 1008 });
    assert.match(r.rep.issues[0].message, /refers to (Location|Practitioner)\/\S+, which does not exist; a transaction is all or nothing/);

    // repaired copies: everything is created, and a second run changes nothing
    const write = (name, b, k) => {
      const f = path.join(TMP, `${name}.json`);
      writeFileSync(f, JSON.stringify({ ...b, entry: b.entry.map((e) => ({ ...e, resource: k(e.resource) })) }));
      return f;
    };
    const facF = write('Facility-repaired', loadJson(file(MCSD, 'Facility')), repair);
    const pF = write('Practitioner-repaired', practitioners, repair);
    assert.deepEqual(counts((await imp(facF, 'Facility-repaired')).rep), { rows: 30, created: 30, updated: 0, unchanged: 0, rejected: 0 });
    assert.deepEqual(counts((await imp(pF, 'Practitioner-repaired')).rep), { rows: 1007, created: 1007, updated: 0, unchanged: 0, rejected: 0 });
    const r2 = await imp(file(HW, 'PractitionerRole'), 'PractitionerRole-2');
    assert.equal(r2.code, 0, r2.stderr.slice(-500));
    assert.deepEqual(counts(r2.rep), { rows: 1008, created: 1008, updated: 0, unchanged: 0, rejected: 0 });
    const r3 = await imp(file(HW, 'PractitionerRole'), 'PractitionerRole-3');
    assert.deepEqual(counts(r3.rep), { rows: 1008, created: 0, updated: 0, unchanged: 1008, rejected: 0 }, 'a re-import writes nothing');
  });
});
