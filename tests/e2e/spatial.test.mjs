// Spatial search on real data (README "The API"; R4 Location-near, location-distance; mCSD
// boundaries as the location-boundary-geojson extension): the Sierra Leone rows of the WHO/KEMRI
// facility list (shared/data §1) and the geoBoundaries SLE ADM1/ADM2 polygons (§12) are loaded
// through the API, then every spatial parameter is compared with an independent computation:
//   near      1,000 seeded random points and radii vs Karney's geodesic on WGS84 (geographiclib):
//             same set, nearest first (ties excepted), location-distance within 0.1 m
//   contains  1,000 points vs even-odd point-in-polygon on the polygons as stored (7 decimals),
//             innermost (smallest planar area) first
//   within    each of the 18 boundaries vs point-in-polygon over every facility
//   bbox      50 boxes (30 random, 20 with an edge on or 1e-7° beside a facility) vs a JS filter
// plus near with name= and _count, the default radius, bad values (400) and invalid boundaries
// (422 with the reason, repair-boundary=true, 413 for 250,000 vertices).
// Skips (with the reason) when ../shared/data is absent.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { before, describe, it } from 'node:test';
import { SOURCE_DIR, assertOutcome, e2eSkipReason, useServer } from './lib/server.mjs';
import { linkOf, runSearch } from './lib/searchset.mjs';
import { coverage, geodesicMetres, makeShape, mulberry32, parseCsv, polygonsOf, pool, snap7, snapPolygons } from './lib/geo.mjs';

const DATA_DIR = path.join(process.env.MAHALI_SOURCE_DIR || SOURCE_DIR, '..', 'shared', 'data');
const WHO_CSV = path.join(DATA_DIR, 'facilities', 'who_kemri_ssa_public_health_facilities_2019.csv.gz');
const ADM = [1, 2].map((n) => path.join(DATA_DIR, 'boundaries', `geoBoundaries-SLE-ADM${n}_simplified.geojson`));

function dataSkipReason() {
  for (const f of [WHO_CSV, ...ADM]) if (!existsSync(f)) return `no test data: ${f} is absent (../shared/data)`;
  return undefined;
}
const skip = e2eSkipReason() || dataSkipReason();

const BOUNDARY_URL = 'http://hl7.org/fhir/StructureDefinition/location-boundary-geojson';
const DISTANCE_URL = 'http://hl7.org/fhir/StructureDefinition/location-distance';
const UCUM = 'http://unitsofmeasure.org';
const FACTOR = { km: 1000, m: 1, '[mi_i]': 1609.344 };
const PAR = 8; // requests in flight
const BOUNDARY_EXPR = 'Location.extension[0].valueAttachment.data';

const b64 = (obj) => Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj)).toString('base64');
const boundaryExt = (geojson) => ({ url: BOUNDARY_URL, valueAttachment: { contentType: 'application/geo+json', data: b64(geojson) } });
const slug = (s) => s.toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '').replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
const fold = (s) => s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
/** Two distances the brief calls a tie: within 1e-6 relative or 0.01 m. */
const tol = (d) => Math.max(0.01, 1e-6 * Math.abs(d));
/** Half a unit in the 6th significant digit of v (the server prints %.6g). */
const halfUlp6 = (v) => (v === 0 ? 0 : 0.5 * 10 ** (Math.floor(Math.log10(Math.abs(v))) - 5));
const fmt = (x, d = 4) => Number(x.toFixed(d));

// ---- the data, read once --------------------------------------------------------------------

/** Sierra Leone rows of the WHO/KEMRI list with coordinates: {id, name, lat, lon, latText, lonText}. */
function readFacilities() {
  const rows = parseCsv(gunzipSync(readFileSync(WHO_CSV)).toString('utf8'));
  const head = rows[0];
  const col = (name) => {
    const k = head.indexOf(name);
    assert.ok(k >= 0, `no column ${name} in ${WHO_CSV}: ${head.join(',')}`);
    return k;
  };
  const [cCountry, cName, cLat, cLon] = ['Country', 'Facility name', 'Lat', 'Long'].map(col);
  const out = [];
  let ordinal = 0;
  for (const row of rows.slice(1)) {
    if (row.length < head.length || row[cCountry] !== 'Sierra Leone') continue;
    ordinal++;
    const latText = row[cLat].trim();
    const lonText = row[cLon].trim();
    const lat = Number(latText);
    const lon = Number(lonText);
    if (latText === '' || lonText === '' || !Number.isFinite(lat) || !Number.isFinite(lon)) continue;
    out.push({ id: `who-sle-${String(ordinal).padStart(4, '0')}`, name: row[cName].trim(), lat, lon, latText, lonText });
  }
  return out;
}

/** The 18 ADM1 + ADM2 features: {id, name, level, geometry (as sent), shape (as stored: 7 decimals)}. */
function readBoundaries() {
  const out = [];
  ADM.forEach((file, k) => {
    const level = k + 1;
    const fc = JSON.parse(readFileSync(file, 'utf8'));
    for (const f of fc.features) {
      const geometry = { ...f.geometry };
      delete geometry.crs;
      const name = f.properties.shapeName;
      out.push({ id: `sle-adm${level}-${slug(name)}`, name, level, geometry, shape: makeShape(snapPolygons(polygonsOf(geometry))) });
    }
  });
  return out;
}

describe('spatial search on Sierra Leone data', { skip }, () => {
  const S = useServer('spatial');
  let facilities = [];
  let boundaries = [];
  let byId = new Map();
  let box; // [minLon, minLat, maxLon, maxLat] of the ADM1 polygons
  const rnd = mulberry32(20251121);

  /** A point of the test area, 7 decimals: uniform in the box grown by `grow` degrees. */
  const uniformPoint = (grow) => ({
    lon: snap7(box[0] - grow + rnd() * (box[2] - box[0] + 2 * grow)),
    lat: snap7(box[1] - grow + rnd() * (box[3] - box[1] + 2 * grow)),
  });
  /** A vertex of a random boundary as stored, moved by up to `jitter` degrees. */
  const borderPoint = (jitter) => {
    const b = boundaries[Math.floor(rnd() * boundaries.length)];
    const polys = b.shape.polys;
    const rings = polys[Math.floor(rnd() * polys.length)];
    const ring = rings[Math.floor(rnd() * rings.length)];
    const [x, y] = ring[Math.floor(rnd() * ring.length)];
    return { lon: snap7(x + (rnd() * 2 - 1) * jitter), lat: snap7(y + (rnd() * 2 - 1) * jitter) };
  };

  const search = (query, opts = {}) => runSearch(S, 'Location', query, { maxPages: 100, ...opts });
  /** Match entries of every page, in order: [{id, resource, search}]. */
  const matchEntries = (r) => r.pages.flatMap((p) => (p.entry || []).filter((e) => e.search?.mode === 'match').map((e) => ({ id: e.resource.id, resource: e.resource, search: e.search })));

  const tx = async (entries) => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: entries.map((res) => ({ fullUrl: `${S.base}/fhir/Location/${res.id}`, resource: res, request: { method: 'PUT', url: `Location/${res.id}` } })),
    };
    const r = await S.req('POST', '/fhir', { as: 'editor', body: bundle, timeout: 120000 });
    assert.equal(r.status, 200, `transaction of ${entries.length} Locations: ${r.status} ${r.text.slice(0, 800)}`);
    assert.equal(r.json.type, 'transaction-response');
    assert.equal(r.json.entry.length, entries.length);
    r.json.entry.forEach((e, k) => assert.match(e.response.status, /^20[01]\b/, `entry ${k} (${entries[k].id}): ${JSON.stringify(e.response)}`));
  };

  before(async () => {
    const t0 = Date.now();
    facilities = readFacilities();
    boundaries = readBoundaries();
    byId = new Map([...facilities, ...boundaries].map((x) => [x.id, x]));
    assert.equal(byId.size, facilities.length + boundaries.length, 'ids are unique');
    const adm1 = boundaries.filter((b) => b.level === 1).map((b) => b.shape.bbox);
    box = [Math.min(...adm1.map((b) => b[0])), Math.min(...adm1.map((b) => b[1])), Math.max(...adm1.map((b) => b[2])), Math.max(...adm1.map((b) => b[3]))];

    const facRes = facilities.map((f) => ({
      resourceType: 'Location',
      id: f.id,
      status: 'active',
      ...(f.name ? { name: f.name } : {}),
      mode: 'instance',
      position: { longitude: f.lon, latitude: f.lat },
    }));
    const chunks = [];
    for (let i = 0; i < facRes.length; i += 500) chunks.push(facRes.slice(i, i + 500));
    const bRes = boundaries.map((b) => ({
      resourceType: 'Location',
      id: b.id,
      status: 'active',
      name: b.name,
      mode: 'instance',
      extension: [boundaryExt(b.geometry)],
    }));
    await pool([...chunks, bRes], 2, tx);
    console.log(`# loaded ${facilities.length} facilities and ${boundaries.length} boundaries in ${Date.now() - t0} ms`);
  }, { timeout: 170000 });

  it('loaded: ~1,120 SL facilities with positions, 4 ADM1 and 14 ADM2 boundaries', async () => {
    assert.ok(facilities.length >= 1100 && facilities.length <= 1120, `facilities: ${facilities.length}`);
    assert.equal(boundaries.filter((b) => b.level === 1).length, 4);
    assert.equal(boundaries.filter((b) => b.level === 2).length, 14);
    const r = await S.req('GET', '/fhir/Location?_summary=count');
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.json.total, facilities.length + boundaries.length);
    // names are kept as given (trimmed): a few with quirks round-trip
    const quirky = facilities.filter((f) => /[^\x20-\x7e]| {2}/.test(f.name)).slice(0, 5);
    for (const f of quirky) {
      const g = await S.req('GET', `/fhir/Location/${f.id}`);
      assert.equal(g.status, 200);
      assert.equal(g.json.name, f.name, `${f.id}: name`);
    }
    const one = await S.req('GET', `/fhir/Location/${boundaries[0].id}`);
    assert.equal(one.json.extension?.[0]?.url, BOUNDARY_URL);
  });

  it('near: 1,000 random points and radii agree with Karney geodesics on WGS84', { timeout: 150000 }, async () => {
    const cases = [];
    for (let k = 0; k < 1000; k++) {
      const p = k < 800 ? uniformPoint(0.15) : borderPoint(0.02);
      const rKm = 2 + rnd() * 58;
      const u = rnd();
      const unit = u < 0.7 ? 'km' : u < 0.85 ? 'm' : '[mi_i]';
      const dist = unit === 'km' ? fmt(rKm, 4) : unit === 'm' ? fmt(rKm * 1000, 1) : fmt(rKm / 1.609344, 5);
      cases.push({ ...p, unit, dist, radius: dist * FACTOR[unit] });
    }
    assert.ok(cases.every((c) => Math.abs(c.lat) < 12), 'the distance pre-filter below assumes |latitude| < 12°');
    const t0 = Date.now();
    // Independent: the geodesic distance from the point to every facility that could be within
    // the radius. The pre-filter is conservative: on WGS84 a degree of latitude is at least
    // 110.5 km and, below 12° of latitude, a degree of longitude at least 108.9 km.
    for (const c of cases) {
      c.expected = [];
      const reachDeg = (c.radius + 1000) / 105000;
      for (const f of facilities) {
        if (Math.abs(f.lat - c.lat) > reachDeg || Math.abs(f.lon - c.lon) > reachDeg) continue;
        const d = geodesicMetres(c.lat, c.lon, f.lat, f.lon);
        if (d <= c.radius + 0.01) c.expected.push({ id: f.id, d });
      }
      c.expected.sort((a, b) => a.d - b.d);
      c.dist_of = new Map(c.expected.map((e) => [e.id, e.d]));
    }
    const tGeo = Date.now() - t0;
    const problems = [];
    let maxDev = 0; // largest |server − Karney| in metres
    let maxDevAt = '';
    let maxExcess = -Infinity; // largest |server − Karney| minus what the 6-digit rounding allows
    let matches = 0;
    let pages = 0;
    await pool(cases, PAR, async (c) => {
      const q = `near=${c.lat}|${c.lon}|${c.dist}|${c.unit}&_count=500`;
      const r = await search(q);
      const bad = [];
      if (r.status !== 200) {
        problems.push({ q, status: r.status, body: r.first.text.slice(0, 300) });
        return;
      }
      pages += r.pages.length;
      const got = matchEntries(r);
      matches += got.length;
      const gotIds = got.map((e) => e.id);
      if (new Set(gotIds).size !== gotIds.length) bad.push(`duplicates in ${gotIds.length} matches`);
      const must = c.expected.filter((e) => e.d <= c.radius - 0.01).map((e) => e.id);
      const gotSet = new Set(gotIds);
      const missing = must.filter((id) => !gotSet.has(id));
      const extra = gotIds.filter((id) => !c.dist_of.has(id));
      if (missing.length) bad.push(`missing ${missing.map((id) => `${id}@${fmt(c.dist_of.get(id), 3)}m`).join(', ')}`);
      if (extra.length) {
        const ds = extra.map((id) => {
          const f = byId.get(id);
          return f && f.lat !== undefined ? `${id}@${fmt(geodesicMetres(c.lat, c.lon, f.lat, f.lon), 3)}m` : id;
        });
        bad.push(`extra ${ds.join(', ')}`);
      }
      // order: nearest first; ties (1e-6 relative or 0.01 m) in any order
      const ds = got.map((e) => c.dist_of.get(e.id) ?? NaN);
      let suffixMin = Infinity;
      for (let i = ds.length - 1; i >= 0; i--) {
        if (ds[i] > suffixMin + tol(ds[i])) {
          bad.push(`order: ${got[i].id}@${fmt(ds[i], 3)}m before a nearer one @${fmt(suffixMin, 3)}m`);
          break;
        }
        suffixMin = Math.min(suffixMin, ds[i]);
      }
      // the location-distance extension: in the unit asked for, within 0.1 m of Karney
      for (const e of got) {
        const ext = (e.search.extension || []).find((x) => x.url === DISTANCE_URL);
        const vd = ext?.valueDistance;
        if (!vd) {
          bad.push(`${e.id}: no location-distance`);
          continue;
        }
        if (vd.unit !== c.unit || vd.code !== c.unit || vd.system !== UCUM) bad.push(`${e.id}: valueDistance ${JSON.stringify(vd)} (asked ${c.unit})`);
        const mine = c.dist_of.get(e.id);
        if (mine === undefined || typeof vd.value !== 'number') continue;
        const dev = Math.abs(vd.value * FACTOR[c.unit] - mine);
        const allowed = 0.1 + halfUlp6(vd.value) * FACTOR[c.unit];
        if (dev > maxDev) {
          maxDev = dev;
          maxDevAt = `${q} ${e.id}: server ${vd.value} ${c.unit}, Karney ${mine} m`;
        }
        maxExcess = Math.max(maxExcess, dev - halfUlp6(vd.value) * FACTOR[c.unit]);
        if (dev > allowed) bad.push(`${e.id}: distance ${vd.value} ${c.unit} vs Karney ${fmt(mine, 4)} m (off ${fmt(dev, 4)} m)`);
      }
      if (bad.length) problems.push({ q, expected: c.expected.length, got: got.length, bad: bad.slice(0, 6) });
    });
    console.log(`# near: ${matches} matches on ${pages} pages; geodesics in ${tGeo} ms, searches in ${Date.now() - t0 - tGeo} ms`);
    console.log(`# near: largest |reported − Karney| ${maxDev.toExponential(3)} m (${maxDevAt}); largest excess over the 6-digit rounding ${maxExcess.toExponential(3)} m`);
    for (const p of problems.slice(0, 20)) console.log(`# near mismatch: ${JSON.stringify(p)}`);
    console.log(`near_mismatches=${problems.length} points=${cases.length}`);
    assert.equal(problems.length, 0, `${problems.length} near points disagree, first: ${JSON.stringify(problems.slice(0, 3))}`);
  });

  it('near with name= and _count=3: the 3 nearest of those matching, with a next link when more match', async () => {
    const cases = [
      ['Mano', 7.9645, -11.7383, 300],
      ['Baoma', 7.8767, -11.1875, 300],
      ['Bandajuma', 8.4657, -13.2317, 400],
      ['Njala', 8.1, -12.1, 150],
      ['Taninahun', 7.5, -11.5, 20], // likely fewer than 3 this close
      ['Kissy', 8.45, -13.2, 5],
    ];
    for (const [prefix, lat, lon, km] of cases) {
      const exp = facilities
        .filter((f) => fold(f.name).startsWith(fold(prefix)))
        .map((f) => ({ id: f.id, d: geodesicMetres(lat, lon, f.lat, f.lon) }))
        .filter((e) => e.d <= km * 1000)
        .sort((a, b) => a.d - b.d);
      const q = `near=${lat}|${lon}|${km}|km&name=${prefix}&_count=3`;
      const r = await search(q, { follow: false });
      assert.equal(r.status, 200, `${q}: ${r.first.text.slice(0, 300)}`);
      const got = matchEntries(r);
      const what = `${q}: expected ${JSON.stringify(exp.slice(0, 4).map((e) => [e.id, fmt(e.d, 2)]))}, got ${JSON.stringify(got.map((e) => e.id))}`;
      assert.equal(got.length, Math.min(3, exp.length), what);
      const dOf = new Map(exp.map((e) => [e.id, e.d]));
      got.forEach((e, i) => {
        assert.ok(dOf.has(e.id), `${what}: ${e.id} does not match`);
        assert.ok(Math.abs(dOf.get(e.id) - exp[i].d) <= tol(exp[i].d), `${what}: position ${i}`);
        assert.ok(fold(e.resource.name).startsWith(fold(prefix)), `${what}: name ${e.resource.name}`);
      });
      assert.equal(Boolean(linkOf(r.first.json, 'next')), exp.length > 3, `${what}: next link`);
      if (exp.length > 3) {
        const all = await search(q);
        assert.deepEqual(new Set(matchEntries(all).map((e) => e.id)), new Set(exp.map((e) => e.id)), `${q}: all pages`);
      }
      console.log(`# near+name ${prefix}: ${exp.length} within ${km} km`);
    }
  });

  it('near without a distance: 50 km (in km; with ||m in metres)', async () => {
    const pts = [
      [8.4657, -13.2317],
      [7.9645, -11.7383],
      [7.8767, -11.1875],
      [8.8833, -12.05],
      [8.0, -13.8], // the sea
    ];
    for (const [lat, lon] of pts) {
      const exp = facilities.map((f) => ({ id: f.id, d: geodesicMetres(lat, lon, f.lat, f.lon) })).filter((e) => e.d <= 50000);
      for (const [q, unit] of [
        [`near=${lat}|${lon}&_count=500`, 'km'],
        [`near=${lat}|${lon}||m&_count=500`, 'm'],
      ]) {
        const r = await search(q);
        assert.equal(r.status, 200, `${q}: ${r.first.text.slice(0, 300)}`);
        const got = matchEntries(r);
        const must = exp.filter((e) => e.d <= 50000 - 0.01).map((e) => e.id);
        const gotIds = new Set(got.map((e) => e.id));
        const expIds = new Set(exp.map((e) => e.id));
        assert.deepEqual(must.filter((id) => !gotIds.has(id)), [], `${q}: missing`);
        assert.deepEqual([...gotIds].filter((id) => !expIds.has(id)), [], `${q}: beyond 50 km`);
        for (const e of got) assert.equal(e.search.extension?.[0]?.valueDistance?.unit, unit, `${q}: ${e.id} unit`);
        if (got.length) assert.ok(got.at(-1).search.extension[0].valueDistance.value * FACTOR[unit] <= 50000 + 0.5, `${q}: farthest`);
      }
    }
  });

  it('near pages (keyset on distance) through exact ties: every match once, nearest first', async () => {
    // Far from Sierra Leone: 8 Locations at one position and 7 pairs mirrored in longitude
    // (exactly equal geodesic distances by symmetry), plus 6 at distinct distances.
    const lat0 = -20;
    const lon0 = 25;
    const ties = [];
    for (let k = 0; k < 8; k++) ties.push({ id: `tie-same-${k}`, lat: -20.1, lon: 25.1 });
    for (let k = 0; k < 7; k++) for (const s of [-1, 1]) ties.push({ id: `tie-mirror-${k}-${s < 0 ? 'w' : 'e'}`, lat: -20 + 0.01 * k, lon: lon0 + s * 0.05 * (k + 1) });
    for (let k = 0; k < 6; k++) ties.push({ id: `tie-other-${k}`, lat: -20 - 0.03 * k, lon: 25.2 });
    await tx(ties.map((t) => ({ resourceType: 'Location', id: t.id, status: 'active', name: `Tie ${t.id}`, mode: 'instance', position: { longitude: t.lon, latitude: t.lat } })));
    const d = new Map(ties.map((t) => [t.id, geodesicMetres(lat0, lon0, t.lat, t.lon)]));
    for (const count of [3, 5, 8]) {
      const q = `near=${lat0}|${lon0}|100|km&_count=${count}`;
      const r = await search(q);
      assert.equal(r.status, 200, `${q}: ${r.first.text.slice(0, 300)}`);
      const got = matchEntries(r).map((e) => e.id);
      assert.equal(new Set(got).size, got.length, `${q}: a match on two pages: ${got}`);
      assert.deepEqual([...got].sort(), ties.map((t) => t.id).sort(), `${q}: the set over all pages`);
      assert.equal(r.pages.length, Math.ceil(ties.length / count), `${q}: pages`);
      for (let i = 1; i < got.length; i++) assert.ok(d.get(got[i - 1]) <= d.get(got[i]) + tol(d.get(got[i])), `${q}: ${got[i - 1]} before ${got[i]}`);
    }
  });

  it('near, contains, within, bbox: bad values are 400 naming the parameter', async () => {
    const bad = [
      ['near', '91|-13.2|5|km'],
      ['near', '8.4|-181|5|km'],
      ['near', '8.4|-13.2|1001|km'],
      ['near', '8.4|-13.2|5|furlong'],
      ['near', '8.4|-13.2|-5|km'],
      ['near', '8.4'],
      ['contains', 'abc'],
      ['contains', '8.4|x'],
      ['within', 'Organization/x'],
      ['bbox', '-13,8,-12'],
      ['bbox', '-12,8,-13,9'],
    ];
    for (const [p, v] of bad) {
      const r = await S.req('GET', `/fhir/Location?${p}=${encodeURIComponent(v)}`);
      const issue = assertOutcome(r, 400, undefined, { what: `${p}=${v}` });
      const text = JSON.stringify(r.json);
      assert.ok(text.includes(p), `${p}=${v}: the OperationOutcome does not name ${p}: ${text.slice(0, 400)}`);
      assert.ok(issue.diagnostics, `${p}=${v}: no diagnostics`);
    }
  });

  it('contains: 1,000 random points agree with point-in-polygon on the stored polygons, innermost first', { timeout: 90000 }, async () => {
    const pts = [];
    for (let k = 0; k < 1000; k++) pts.push(k < 800 ? uniformPoint(0.15) : k < 950 ? borderPoint(0.005) : borderPoint(0));
    // innermost first: planar area; note where the server's geodesic area would order differently
    const byArea = [...boundaries].sort((a, b) => a.shape.area - b.shape.area);
    const rank = new Map(byArea.map((b, k) => [b.id, k]));
    let skipped = 0;
    let nonEmpty = 0;
    let multi = 0;
    const problems = [];
    await pool(pts, PAR, async (p) => {
      const cov = boundaries.map((b) => [b, coverage(b.shape, p.lon, p.lat)]);
      if (cov.some(([, c]) => c === 'edge')) {
        skipped++;
        return;
      }
      const expected = cov.filter(([, c]) => c === 'in').map(([b]) => b.id).sort((a, b) => rank.get(a) - rank.get(b));
      if (expected.length) nonEmpty++;
      if (expected.length > 1) multi++;
      const q = `contains=${p.lat}|${p.lon}&_count=500`;
      const r = await search(q);
      if (r.status !== 200) {
        problems.push({ q, status: r.status, body: r.first.text.slice(0, 300) });
        return;
      }
      const got = matchEntries(r).map((e) => e.id);
      if (JSON.stringify(got) !== JSON.stringify(expected)) problems.push({ q, expected, got });
    });
    for (const p of problems.slice(0, 20)) console.log(`# contains mismatch: ${JSON.stringify(p)}`);
    console.log(`# contains: ${nonEmpty} points inside some boundary (${multi} in 2 or more), ${skipped} skipped within 1e-9° of an edge`);
    console.log(`contains_mismatches=${problems.length} points=${pts.length}`);
    assert.ok(nonEmpty > 300 && multi > 300, `too few informative points: ${nonEmpty} inside, ${multi} nested`);
    assert.equal(problems.length, 0, `${problems.length} contains points disagree, first: ${JSON.stringify(problems.slice(0, 3))}`);
  });

  it('within: each of the 18 boundaries holds exactly the facilities point-in-polygon puts inside', { timeout: 60000 }, async () => {
    const problems = [];
    let total = 0;
    let skippedEdge = 0;
    await pool(boundaries, PAR, async (b) => {
      const undecidable = new Set();
      const expected = [];
      for (const f of facilities) {
        const c = coverage(b.shape, f.lon, f.lat);
        if (c === 'edge') undecidable.add(f.id);
        else if (c === 'in') expected.push(f.id);
      }
      skippedEdge += undecidable.size;
      const q = `within=Location/${b.id}&_count=500`;
      const r = await search(q);
      if (r.status !== 200) {
        problems.push({ q, status: r.status, body: r.first.text.slice(0, 300) });
        return;
      }
      const got = matchEntries(r).map((e) => e.id).filter((id) => !undecidable.has(id));
      total += got.length;
      const g = new Set(got);
      const e = new Set(expected);
      const missing = expected.filter((id) => !g.has(id));
      const extra = got.filter((id) => !e.has(id));
      if (missing.length || extra.length || g.size !== got.length)
        problems.push({
          q,
          expected: expected.length,
          got: got.length,
          missing: missing.map((id) => `${id}(${byId.get(id).lat},${byId.get(id).lon})`).slice(0, 10),
          extra: extra.map((id) => `${id}(${byId.get(id)?.lat},${byId.get(id)?.lon})`).slice(0, 10),
        });
      console.log(`# within ${b.id}: ${expected.length} facilities`);
    });
    for (const p of problems) console.log(`# within mismatch: ${JSON.stringify(p)}`);
    console.log(`# within: ${total} facility-in-boundary pairs, ${skippedEdge} undecidable (within 1e-9° of an edge)`);
    console.log(`within_mismatches=${problems.length} boundaries=${boundaries.length}`);
    assert.equal(problems.length, 0, `${problems.length} boundaries disagree: ${JSON.stringify(problems.slice(0, 3))}`);
    // 19 of the 1,120 WHO SL rows fall outside the simplified ADM1 union (§1): islands, coast
    const inAdm1 = new Set();
    for (const b of boundaries.filter((x) => x.level === 1)) for (const f of facilities) if (coverage(b.shape, f.lon, f.lat) === 'in') inAdm1.add(f.id);
    console.log(`# facilities outside every ADM1 polygon: ${facilities.length - inAdm1.size}`);
  });

  it('bbox: 50 boxes (30 random, 20 with an edge on or 1e-7° beside a facility) agree with a JS filter', async () => {
    const boxes = [];
    const pick = () => facilities[Math.floor(rnd() * facilities.length)];
    for (let k = 0; k < 50; k++) {
      const w = 0.02 + rnd() * 1.2;
      const h = 0.02 + rnd() * 1.2;
      if (k < 30) {
        const p = uniformPoint(0.1);
        boxes.push({ t: [String(p.lon), String(p.lat), String(snap7(p.lon + w)), String(snap7(p.lat + h))] });
        continue;
      }
      const f = pick();
      const side = k % 4; // which edge passes through (or next to) f
      const out = k >= 40; // the edge 1e-7° beyond f: f is outside
      const e = 1e-7;
      assert.ok(!out || [f.lonText, f.latText].every((t) => !/\.\d{8}/.test(t)), `${f.id}: more than 7 decimals`);
      const lo = (v, s) => String(snap7(v - s));
      const hi = (v, s) => String(snap7(v + s));
      let t;
      if (side === 0) t = [out ? hi(f.lon, e) : f.lonText, lo(f.lat, h / 2), hi(f.lon, w), hi(f.lat, h / 2)];
      else if (side === 1) t = [lo(f.lon, w / 2), out ? hi(f.lat, e) : f.latText, hi(f.lon, w / 2), hi(f.lat, h)];
      else if (side === 2) t = [lo(f.lon, w), lo(f.lat, h / 2), out ? lo(f.lon, e) : f.lonText, hi(f.lat, h / 2)];
      else t = [lo(f.lon, w / 2), lo(f.lat, h), hi(f.lon, w / 2), out ? lo(f.lat, e) : f.latText];
      boxes.push({ t, edgeOf: f.id, out });
    }
    const problems = [];
    let total = 0;
    const t0 = Date.now();
    let slowest = [0, ''];
    await pool(boxes, PAR, async (b) => {
      const [x0, y0, x1, y1] = b.t.map(Number);
      const expected = facilities.filter((f) => f.lon >= x0 && f.lon <= x1 && f.lat >= y0 && f.lat <= y1).map((f) => f.id);
      if (b.edgeOf) assert.equal(expected.includes(b.edgeOf), !b.out, `test setup: ${b.edgeOf} ${b.out ? 'outside' : 'on the edge'}`);
      const q = `bbox=${b.t.join(',')}&_count=500`;
      const tq = Date.now();
      const r = await search(q);
      if (Date.now() - tq > slowest[0]) slowest = [Date.now() - tq, q];
      if (r.status !== 200) {
        problems.push({ q, status: r.status, body: r.first.text.slice(0, 300) });
        return;
      }
      const got = matchEntries(r).map((e) => e.id);
      total += got.length;
      const g = new Set(got);
      const e = new Set(expected);
      const missing = expected.filter((id) => !g.has(id));
      const extra = got.filter((id) => !e.has(id));
      if (missing.length || extra.length || g.size !== got.length) {
        const show = (id) => `${id}(lat ${byId.get(id)?.latText}, lon ${byId.get(id)?.lonText})`;
        problems.push({ q, edgeOf: b.edgeOf, out: b.out, expected: expected.length, got: got.length, missing: missing.map(show), extra: extra.map(show) });
      }
    });
    for (const p of problems) console.log(`# bbox mismatch: ${JSON.stringify(p)}`);
    console.log(`# bbox: ${total} matches, searches in ${Date.now() - t0} ms (slowest ${slowest[0]} ms: ${slowest[1]})`);
    const kind = (p) => (p.edgeOf ? (p.out ? 'edge 1e-7° beyond a facility' : 'edge through a facility') : 'random');
    for (const k of ['random', 'edge through a facility', 'edge 1e-7° beyond a facility']) console.log(`# bbox ${k}: ${problems.filter((p) => kind(p) === k).length} mismatches`);
    console.log(`bbox_mismatches=${problems.length} boxes=${boxes.length}`);
    assert.equal(problems.length, 0, `${problems.length} boxes disagree: ${JSON.stringify(problems.slice(0, 3))}`);
  });

  describe('invalid boundaries', () => {
    const loc = (data, extra = {}) => ({
      resourceType: 'Location',
      status: 'active',
      name: 'Boundary test',
      mode: 'instance',
      extension: [{ url: BOUNDARY_URL, valueAttachment: { contentType: 'application/geo+json', data } }],
      ...extra,
    });
    const X = 20;
    const Y = -20; // far from Sierra Leone
    const bowtie = { type: 'Polygon', coordinates: [[[X, Y], [X + 1, Y + 1], [X + 1, Y], [X, Y + 1], [X, Y]]] };
    const cases = [
      ['bow-tie (self-intersection)', b64(bowtie), /self-intersection/i],
      ['unclosed ring', b64({ type: 'Polygon', coordinates: [[[X, Y], [X + 1, Y], [X + 1, Y + 1], [X, Y + 1]]] }), /not closed/i],
      ['ring of 3 positions', b64({ type: 'Polygon', coordinates: [[[X, Y], [X + 1, Y], [X, Y]]] }), /at least 4 positions/i],
      ['latitude 91', b64({ type: 'Polygon', coordinates: [[[X, 90], [X + 1, 90], [X + 1, 91], [X, 90]]] }), /latitude.*-?90.*91|91.*latitude/i],
      [
        'FeatureCollection of two',
        b64({
          type: 'FeatureCollection',
          features: [0, 2].map((d) => ({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[[X + d, Y], [X + d + 1, Y], [X + d + 1, Y + 1], [X + d, Y]]] } })),
        }),
        /FeatureCollection/,
      ],
      // characters outside the base64 alphabet break the R4 base64Binary type itself: 400 value
      // (FHIR's structural check comes first); decodable text that is not GeoJSON is 422
      ['bad base64 (characters outside the alphabet)', 'eyJ0eXBlIjoiUG9seWdvbiJ9!!!', /base64/i, 400],
      ['bad base64 (padding inside)', 'eyJ0eXBlIj==iUG9seWdvbiJ', /base64/i],
    ];
    for (const [what, data, reason, status = 422] of cases) {
      it(`${what} → ${status} with the reason at ${BOUNDARY_EXPR}`, async () => {
        const r = await S.req('POST', '/fhir/Location', { as: 'editor', body: loc(data) });
        const issue = assertOutcome(r, status, undefined, { what, expression: BOUNDARY_EXPR });
        assert.ok(
          r.json.issue.some((i) => (i.expression || []).includes(BOUNDARY_EXPR)),
          `${what}: expression is not exactly ${BOUNDARY_EXPR}: ${JSON.stringify(r.json.issue)}`,
        );
        assert.match(issue.diagnostics || '', reason, `${what}: diagnostics ${JSON.stringify(issue.diagnostics)}`);
        console.log(`# ${what}: ${issue.diagnostics}`);
      });
    }

    it('the bow-tie with ?repair-boundary=true → 201, and contains finds the repaired polygon', async () => {
      const r = await S.req('POST', '/fhir/Location?repair-boundary=true', { as: 'editor', body: loc(b64(bowtie), { name: 'Repaired bow-tie' }) });
      assert.equal(r.status, 201, `${r.status} ${r.text.slice(0, 500)}`);
      const id = r.json.id;
      // left and right triangles of the bow-tie are inside, above its crossing is not
      for (const [lat, lon, inside] of [
        [Y + 0.5, X + 0.2, true],
        [Y + 0.5, X + 0.8, true],
        [Y + 0.8, X + 0.5, false],
        [Y + 0.2, X + 0.5, false],
      ]) {
        const s = await search(`contains=${lat}|${lon}`);
        assert.equal(s.status, 200);
        const got = matchEntries(s).map((e) => e.id);
        assert.deepEqual(got, inside ? [id] : [], `contains=${lat}|${lon}`);
      }
      // what is stored is the repaired (valid) boundary: it can be written back unchanged
      const g = await S.req('GET', `/fhir/Location/${id}`);
      const stored = JSON.parse(Buffer.from(g.json.extension[0].valueAttachment.data, 'base64').toString('utf8'));
      assert.ok(['MultiPolygon', 'Polygon'].includes(stored.type), `stored ${stored.type}`);
      const again = await S.req('PUT', `/fhir/Location/${id}`, { as: 'editor', body: g.json });
      assert.equal(again.status, 200, `PUT back the repaired boundary: ${again.text.slice(0, 400)}`);
    });

    it('a polygon with 250,000 vertices → 413', { timeout: 60000 }, async () => {
      const n = 250000;
      const ring = [];
      for (let i = 0; i < n; i++) {
        const a = (2 * Math.PI * i) / n;
        ring.push([snap7(X + 0.5 * Math.cos(a)), snap7(Y + 0.5 * Math.sin(a))]);
      }
      ring.push(ring[0]);
      const data = b64({ type: 'Polygon', coordinates: [ring] });
      assert.ok(data.length < 10 * 1024 * 1024 * 1.34, `${data.length} bytes of base64`);
      const r = await S.req('POST', '/fhir/Location', { as: 'editor', body: loc(data), timeout: 60000 });
      const issue = assertOutcome(r, 413, undefined, { what: '250,000 vertices' });
      assert.match(issue.diagnostics || '', /vertices/i, JSON.stringify(issue));
      console.log(`# 250,000 vertices (${(data.length / 1048576).toFixed(1)} MiB base64): ${issue.diagnostics}`);
    });
  });
});
