// Coordinates in other coordinate reference systems (README "Spatial"): a Location.position with
// only the position-source extension (crs, x, y) gets latitude/longitude computed by the server
// with PROJ; a boundary whose GeoJSON names a "crs" is stored converted to WGS84 with the
// original kept in the boundary-source extension. Checked against an independent computation in
// this file (UTM by the Krüger series to order n^6 after Karney 2011, itself checked against a
// numerically integrated meridian arc; web mercator by its closed form), tolerance 1e-6 degree:
// read back, found by near and contains, contradictions and bad sources answered 422 with the
// element's path, read-modify-write a no-op, and the same through a transaction Bundle.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { assertOutcome, e2eSkipReason, useServer } from './lib/server.mjs';

const skip = e2eSkipReason();

const POSITION_SOURCE = 'https://profiles.mahali.health/fhir/StructureDefinition/position-source';
const BOUNDARY_SOURCE = 'https://profiles.mahali.health/fhir/StructureDefinition/boundary-source';
const BOUNDARY_URL = 'http://hl7.org/fhir/StructureDefinition/location-boundary-geojson';
const TOL = 1e-6; // degrees, about 11 cm

// ---- independent conversions ------------------------------------------------------------------

const WGS84_A = 6378137;
const WGS84_F = 1 / 298.257223563;
const DEG = 180 / Math.PI;

/** Latitude (radians) from the tangent of the conformal latitude, tp = tan(chi): Newton's method
 *  on tau = tan(phi) (Karney 2011, eqs. 7-9 and 19-21). */
function tauFromTaup(tp, e2) {
  const e = Math.sqrt(e2);
  const taupOf = (tau) => {
    const s = Math.sinh(e * Math.atanh((e * tau) / Math.hypot(1, tau)));
    return tau * Math.hypot(1, s) - s * Math.hypot(1, tau);
  };
  let tau = tp;
  for (let i = 0; i < 20; i++) {
    const t1 = taupOf(tau);
    const d = ((tp - t1) * (1 + (1 - e2) * tau * tau)) / ((1 - e2) * Math.hypot(1, t1) * Math.hypot(1, tau));
    tau += d;
    if (Math.abs(d) < 1e-15 * Math.max(1, Math.abs(tau))) break;
  }
  return tau;
}

/** UTM zone (1-60), hemisphere, easting and northing (metres) → WGS84 {lon, lat} in degrees:
 *  the inverse transverse Mercator by the Krüger series to order n^6 (Karney 2011, "Transverse
 *  Mercator with an accuracy of a few nanometers", eqs. 11, 15, 36), k0 = 0.9996,
 *  false easting 500 km, false northing 10,000 km in the south. */
export function utmToWgs84(zone, north, easting, northing) {
  const n = WGS84_F / (2 - WGS84_F);
  const e2 = WGS84_F * (2 - WGS84_F);
  const [n2, n3, n4, n5, n6] = [n ** 2, n ** 3, n ** 4, n ** 5, n ** 6];
  const A = (WGS84_A / (1 + n)) * (1 + n2 / 4 + n4 / 64 + n6 / 256);
  const beta = [
    n / 2 - (2 * n2) / 3 + (37 * n3) / 96 - n4 / 360 - (81 * n5) / 512 + (96199 * n6) / 604800,
    n2 / 48 + n3 / 15 - (437 * n4) / 1440 + (46 * n5) / 105 - (1118711 * n6) / 3870720,
    (17 * n3) / 480 - (37 * n4) / 840 - (209 * n5) / 4480 + (5569 * n6) / 90720,
    (4397 * n4) / 161280 - (11 * n5) / 504 - (830251 * n6) / 7257600,
    (4583 * n5) / 161280 - (108847 * n6) / 3991680,
    (20648693 * n6) / 638668800,
  ];
  const k0 = 0.9996;
  const xi = (northing - (north ? 0 : 10000000)) / (k0 * A);
  const eta = (easting - 500000) / (k0 * A);
  let xip = xi;
  let etap = eta;
  beta.forEach((b, k) => {
    const j = 2 * (k + 1);
    xip -= b * Math.sin(j * xi) * Math.cosh(j * eta);
    etap -= b * Math.cos(j * xi) * Math.sinh(j * eta);
  });
  const taup = Math.sin(xip) / Math.hypot(Math.sinh(etap), Math.cos(xip)); // tan(conformal latitude)
  const lam = Math.atan2(Math.sinh(etap), Math.cos(xip));
  const lat = Math.atan(tauFromTaup(taup, e2)) * DEG;
  const lon = zone * 6 - 183 + lam * DEG;
  return { lon, lat };
}

/** Web mercator (EPSG:3857, spherical formulas on the WGS84 semi-major axis) → {lon, lat}. */
export function webMercatorToWgs84(x, y) {
  return { lon: (x / WGS84_A) * DEG, lat: Math.atan(Math.sinh(y / WGS84_A)) * DEG };
}

/** Meridian arc length (metres) from the equator to latitude phi (degrees) on WGS84, by
 *  composite Simpson integration of the meridional radius of curvature: independent of the
 *  series above, used to check it on a central meridian. */
function meridianArc(phiDeg) {
  const e2 = WGS84_F * (2 - WGS84_F);
  const rho = (p) => (WGS84_A * (1 - e2)) / (1 - e2 * Math.sin(p) ** 2) ** 1.5;
  const b = phiDeg / DEG;
  const N = 20000;
  const h = b / N;
  let s = rho(0) + rho(b);
  for (let i = 1; i < N; i++) s += (i % 2 ? 4 : 2) * rho(i * h);
  return (s * h) / 3;
}

const snap7 = (v) => Math.sign(v) * Math.round(Math.abs(v) * 1e7) / 1e7;
const b64 = (obj) => Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj)).toString('base64');
const decode = (data) => JSON.parse(Buffer.from(data, 'base64').toString('utf8'));

/** The position-source extension. */
function source(crs, x, y) {
  return {
    url: POSITION_SOURCE,
    extension: [
      { url: 'crs', valueString: crs },
      { url: 'x', valueDecimal: x },
      { url: 'y', valueDecimal: y },
    ],
  };
}

function located(name, position, extra = {}) {
  return { resourceType: 'Location', status: 'active', name, mode: 'instance', position, ...extra };
}

/** The raw text of position.latitude / longitude in a response: the server writes 7 decimals. */
function rawCoordinate(text, name) {
  const m = new RegExp(`"${name}":(-?\\d+(?:\\.\\d+)?)`).exec(text);
  assert.ok(m, `no ${name} in ${text.slice(0, 400)}`);
  return m[1];
}

function assertNear(got, want, what, tol = TOL) {
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, expected ${want} ± ${tol} (off by ${Math.abs(got - want)})`);
}

// Reference points in Sierra Leone: Freetown (UTM 28N), Bo (UTM 29N), Kenema in web mercator.
const FREETOWN = { crs: 'EPSG:32628', x: 693000.25, y: 938000.5, want: utmToWgs84(28, true, 693000.25, 938000.5) };
const BO = { crs: 'http://www.opengis.net/def/crs/EPSG/0/32629', x: 198600, y: 880600, want: utmToWgs84(29, true, 198600, 880600) };
const KENEMA = { crs: 'urn:ogc:def:crs:EPSG::3857', x: -1245600.5, y: 879400.25, want: webMercatorToWgs84(-1245600.5, 879400.25) };

describe('the independent conversions', () => {
  it('UTM on a central meridian agrees with the integrated meridian arc, in both hemispheres', () => {
    for (const phi of [0.5, 8, 8.48, 45, 72]) {
      const northing = 0.9996 * meridianArc(phi);
      const p = utmToWgs84(29, true, 500000, northing);
      assertNear(p.lat, phi, `latitude for ${phi}°`, 1e-10);
      assertNear(p.lon, -9, `longitude for ${phi}°`, 1e-12);
      const s = utmToWgs84(37, false, 500000, 10000000 - northing);
      assertNear(s.lat, -phi, `latitude for -${phi}°`, 1e-10);
      assertNear(s.lon, 39, `longitude for -${phi}°`, 1e-12);
    }
  });

  it('the reference points are where they should be (Sierra Leone)', () => {
    assertNear(FREETOWN.want.lon, -13.24, 'Freetown longitude', 0.05);
    assertNear(FREETOWN.want.lat, 8.48, 'Freetown latitude', 0.05);
    assertNear(BO.want.lon, -11.74, 'Bo longitude', 0.05);
    assertNear(BO.want.lat, 7.96, 'Bo latitude', 0.05);
    assertNear(KENEMA.want.lon, -11.19, 'Kenema longitude', 0.05);
    assertNear(KENEMA.want.lat, 7.88, 'Kenema latitude', 0.05);
  });
});

describe('coordinate reference systems', { skip }, () => {
  const S = useServer('crs');

  /** Create a Location with only a position-source and check what the server computed. */
  async function createFromSource(p, name) {
    const { id, r, resource } = await S.create(located(name, { extension: [source(p.crs, p.x, p.y)] }));
    for (const k of ['latitude', 'longitude']) {
      const raw = rawCoordinate(r.text, k);
      assert.match(raw, /^-?\d+\.\d{7}$/, `${name}: ${k} is written with 7 decimals (got ${raw})`);
    }
    assertNear(resource.position.latitude, p.want.lat, `${name}: latitude`);
    assertNear(resource.position.longitude, p.want.lon, `${name}: longitude`);
    assert.deepEqual(resource.position.extension, [source(p.crs, p.x, p.y)], `${name}: position-source kept as given`);
    return { id, resource, text: r.text };
  }

  const matchIds = (r) => (r.json.entry || []).filter((e) => e.search?.mode === 'match').map((e) => e.resource.id);

  it('a position given only in UTM 28N gets its WGS84 latitude and longitude, kept on read', async () => {
    const { id, resource } = await createFromSource(FREETOWN, 'Freetown (UTM 28N)');
    const g = await S.req('GET', `/fhir/Location/${id}`);
    assert.equal(g.status, 200, g.text.slice(0, 300));
    assert.equal(rawCoordinate(g.text, 'latitude'), rawCoordinate(JSON.stringify(resource), 'latitude'));
    assert.deepEqual(g.json.position, resource.position);
  });

  it('UTM 29N (http form) and web mercator (urn form) too', async () => {
    await createFromSource(BO, 'Bo (UTM 29N)');
    await createFromSource(KENEMA, 'Kenema (web mercator)');
  });

  it('near finds a Location positioned in UTM', async () => {
    const { id } = await createFromSource(FREETOWN, 'Freetown near');
    const lat = FREETOWN.want.lat.toFixed(6);
    const lon = FREETOWN.want.lon.toFixed(6);
    const r = await S.req('GET', `/fhir/Location?near=${lat}|${lon}|0.01|km&_count=50`);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.ok(matchIds(r).includes(id), `near=${lat}|${lon}|0.01|km: ${id} not among ${matchIds(r)}`);
    const far = await S.req('GET', `/fhir/Location?near=${(FREETOWN.want.lat + 0.01).toFixed(6)}|${lon}|0.5|km`);
    assert.ok(!matchIds(far).includes(id), 'not found 1.1 km away with a 0.5 km radius');
  });

  it('latitude and longitude sent with the source must agree with it (1e-6 degree)', async () => {
    const { lat, lon } = FREETOWN.want;
    // agreeing within the tolerance: accepted, stored as computed
    const ok = await S.create(located('agree', { longitude: Number(lon.toFixed(7)), latitude: Number((lat + 4e-7).toFixed(7)), extension: [source(FREETOWN.crs, FREETOWN.x, FREETOWN.y)] }));
    assertNear(ok.resource.position.latitude, lat, 'agreeing latitude stored as computed', 1.5e-7);
    for (const [k, pos] of [
      ['latitude', { longitude: lon, latitude: lat + 0.001 }],
      ['longitude', { longitude: lon - 0.00001, latitude: lat }],
    ]) {
      const r = await S.req('POST', '/fhir/Location', { as: 'editor', body: located('contradiction', { ...pos, extension: [source(FREETOWN.crs, FREETOWN.x, FREETOWN.y)] }) });
      assertOutcome(r, 422, 'business-rule', { expression: `Location.position.${k}`, what: `${k} contradicting the source` });
      assert.match(r.json.issue[0].diagnostics, /contradicts the position-source extension/);
    }
  });

  it('read-modify-write is a no-op; a changed source with stale coordinates is a contradiction', async () => {
    const { id, resource } = await createFromSource(FREETOWN, 'Freetown rmw');
    const same = await S.req('PUT', `/fhir/Location/${id}`, { as: 'editor', body: resource });
    assert.equal(same.status, 200, same.text.slice(0, 400));
    assert.equal(same.json.meta.versionId, '1', 'identical content makes no new version');
    const moved = structuredClone(resource);
    moved.position.extension = [source(FREETOWN.crs, FREETOWN.x + 1000, FREETOWN.y)];
    const want = utmToWgs84(28, true, FREETOWN.x + 1000, FREETOWN.y);
    // 1 km east on the grid is also ~4 m north (grid convergence): latitude is checked first
    assert.ok(Math.abs(want.lat - resource.position.latitude) > TOL);
    const stale = await S.req('PUT', `/fhir/Location/${id}`, { as: 'editor', body: moved });
    assertOutcome(stale, 422, 'business-rule', { expression: 'Location.position.latitude' });
    delete moved.position.latitude;
    delete moved.position.longitude;
    const fresh = await S.req('PUT', `/fhir/Location/${id}`, { as: 'editor', body: moved });
    assert.equal(fresh.status, 200, fresh.text.slice(0, 400));
    assertNear(fresh.json.position.longitude, want.lon, 'moved longitude');
    assertNear(fresh.json.position.latitude, want.lat, 'moved latitude');
  });

  it('a bad position-source is a 422 naming the element, never a 500', async () => {
    const base = 'Location.position.extension[0]';
    const cases = [
      [source('EPSG:99999', 1, 2), `${base}.extension[0].valueString`, /unknown coordinate reference system EPSG:99999/],
      [source('UTM28', 1, 2), `${base}.extension[0].valueString`, /EPSG:NNNN/],
      [source('EPSG:4978', 1, 2), `${base}.extension[0].valueString`, /not a two-dimensional/],
      [source('EPSG:32628', 693000, 1e12), base, /do not convert/],
      [{ url: POSITION_SOURCE, extension: [{ url: 'crs', valueString: 'EPSG:32628' }, { url: 'x', valueDecimal: 1 }] }, base, /"y" is missing/],
      [{ url: POSITION_SOURCE, extension: [{ url: 'crs', valueString: 'EPSG:32628' }, { url: 'x', valueString: '1' }, { url: 'y', valueDecimal: 2 }] }, `${base}.extension[1]`, /valueDecimal/],
      [{ url: POSITION_SOURCE, valueString: 'EPSG:32628' }, base, /sub-extensions/],
    ];
    for (const [ext, expression, msg] of cases) {
      const r = await S.req('POST', '/fhir/Location', { as: 'editor', body: located('bad source', { extension: [ext] }) });
      assertOutcome(r, 422, 'invalid', { expression, what: JSON.stringify(ext) });
      assert.match(r.json.issue[0].diagnostics, msg, JSON.stringify(ext));
    }
  });

  it('a boundary in EPSG:32628 is stored in WGS84, the original kept, and contains finds it', async () => {
    const [cx, cy, h] = [FREETOWN.x, FREETOWN.y, 2000];
    const ring = [
      [cx - h, cy - h],
      [cx + h, cy - h],
      [cx + h, cy + h],
      [cx - h, cy + h],
      [cx - h, cy - h],
    ];
    const geojson = {
      type: 'Feature',
      crs: { type: 'name', properties: { name: 'urn:ogc:def:crs:EPSG::32628' } },
      properties: { name: 'Freetown square' },
      geometry: { type: 'Polygon', coordinates: [ring] },
    };
    const attachment = { contentType: 'application/geo+json', data: b64(geojson), title: 'as surveyed' };
    const { id, resource } = await S.create(located('Freetown square', undefined, { extension: [{ url: BOUNDARY_URL, valueAttachment: attachment }] }));
    const exts = resource.extension;
    const boundary = exts.filter((e) => e.url === BOUNDARY_URL);
    const kept = exts.filter((e) => e.url === BOUNDARY_SOURCE);
    assert.equal(boundary.length, 1);
    assert.equal(kept.length, 1, 'one boundary-source extension');
    assert.deepEqual(kept[0].valueAttachment, attachment, 'the original attachment is kept as received');
    assert.equal(boundary[0].valueAttachment.contentType, 'application/geo+json');
    const stored = decode(boundary[0].valueAttachment.data);
    assert.equal(stored.crs, undefined, 'stored without crs (WGS84)');
    assert.equal(stored.type, 'Polygon');
    assert.equal(stored.coordinates[0].length, ring.length);
    stored.coordinates[0].forEach(([lon, lat], k) => {
      const want = utmToWgs84(28, true, ring[k][0], ring[k][1]);
      assertNear(lon, snap7(want.lon), `vertex ${k} longitude`, 1.5e-7);
      assertNear(lat, snap7(want.lat), `vertex ${k} latitude`, 1.5e-7);
      assert.ok(Number.isInteger(Math.round(lon * 1e7)) && Math.abs(lon * 1e7 - Math.round(lon * 1e7)) < 1e-6, 'on the 1e-7 grid');
    });

    const c = utmToWgs84(28, true, cx, cy);
    const inside = await S.req('GET', `/fhir/Location?contains=${c.lat.toFixed(6)}|${c.lon.toFixed(6)}`);
    assert.equal(inside.status, 200, inside.text.slice(0, 300));
    assert.ok(matchIds(inside).includes(id), 'contains: the centre is inside');
    const o = utmToWgs84(28, true, cx + h + 300, cy);
    const outside = await S.req('GET', `/fhir/Location?contains=${o.lat.toFixed(6)}|${o.lon.toFixed(6)}`);
    assert.ok(!matchIds(outside).includes(id), 'contains: 300 m east of the square is outside');

    // read-modify-write: nothing changes, the source stays once
    const same = await S.req('PUT', `/fhir/Location/${id}`, { as: 'editor', body: resource });
    assert.equal(same.status, 200, same.text.slice(0, 300));
    assert.equal(same.json.meta.versionId, '1');
    assert.equal(same.json.extension.filter((e) => e.url === BOUNDARY_SOURCE).length, 1);

    // a new boundary in another CRS replaces the source
    const mercator = {
      type: 'Polygon',
      crs: { type: 'EPSG', properties: { code: 3857 } },
      coordinates: [[[-1474000, 937000], [-1472000, 937000], [-1472000, 939000], [-1474000, 939000], [-1474000, 937000]]],
    };
    const next = structuredClone(resource);
    next.extension = [{ url: BOUNDARY_URL, valueAttachment: { contentType: 'application/geo+json', data: b64(mercator) } }, ...next.extension.filter((e) => e.url === BOUNDARY_SOURCE)];
    const upd = await S.req('PUT', `/fhir/Location/${id}`, { as: 'editor', body: next });
    assert.equal(upd.status, 200, upd.text.slice(0, 400));
    const src2 = upd.json.extension.filter((e) => e.url === BOUNDARY_SOURCE);
    assert.equal(src2.length, 1);
    assert.deepEqual(decode(src2[0].valueAttachment.data), mercator);
    const first = decode(upd.json.extension.find((e) => e.url === BOUNDARY_URL).valueAttachment.data).coordinates[0][0];
    const w = webMercatorToWgs84(-1474000, 937000);
    assertNear(first[0], snap7(w.lon), 'mercator vertex longitude', 1.5e-7);
    assertNear(first[1], snap7(w.lat), 'mercator vertex latitude', 1.5e-7);
  });

  it('a boundary in an unknown or unusable CRS is a 422 naming the attachment', async () => {
    const expression = 'Location.extension[0].valueAttachment.data';
    for (const [crs, msg] of [
      [{ type: 'name', properties: { name: 'EPSG:99999' } }, /unknown coordinate reference system EPSG:99999/],
      [{ type: 'name', properties: { name: 'UTM zone 28' } }, /EPSG:NNNN/],
      [{ type: 'EPSG', properties: { code: 4978 } }, /not a two-dimensional/],
    ]) {
      const gj = { type: 'Polygon', crs, coordinates: [[[0, 0], [1, 0], [1, 1], [0, 0]]] };
      const r = await S.req('POST', '/fhir/Location', { as: 'editor', body: located('bad crs', undefined, { extension: [{ url: BOUNDARY_URL, valueAttachment: { contentType: 'application/geo+json', data: b64(gj) } }] }) });
      assertOutcome(r, 422, 'invalid', { expression, what: JSON.stringify(crs) });
      assert.match(r.json.issue[0].diagnostics, msg);
    }
  });

  it('through a transaction Bundle: converted per entry; a contradiction fails the whole Bundle', async () => {
    const system = 'https://test.example.org/crs';
    const ident = (v) => [{ system, value: v }];
    const square = {
      type: 'Polygon',
      crs: { type: 'name', properties: { name: 'EPSG:32629' } },
      coordinates: [[[BO.x - 1000, BO.y - 1000], [BO.x + 1000, BO.y - 1000], [BO.x + 1000, BO.y + 1000], [BO.x - 1000, BO.y + 1000], [BO.x - 1000, BO.y - 1000]]],
    };
    const entry = (resource) => ({ fullUrl: `urn:uuid:${randomUUID()}`, resource, request: { method: 'POST', url: 'Location' } });
    const ok = await S.req('POST', '/fhir', {
      as: 'editor',
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          entry(located('Bo tx', { extension: [source(BO.crs, BO.x, BO.y)] }, { identifier: ident('bo-1') })),
          entry(located('Bo square tx', undefined, { identifier: ident('bo-2'), extension: [{ url: BOUNDARY_URL, valueAttachment: { contentType: 'application/geo+json', data: b64(square) } }] })),
        ],
      },
    });
    assert.equal(ok.status, 200, ok.text.slice(0, 600));
    const ids = ok.json.entry.map((e) => /Location\/([^/]+)\//.exec(e.response.location)[1]);
    const p = await S.req('GET', `/fhir/Location/${ids[0]}`);
    assertNear(p.json.position.latitude, BO.want.lat, 'Bo latitude');
    assertNear(p.json.position.longitude, BO.want.lon, 'Bo longitude');
    assert.deepEqual(p.json.position.extension, [source(BO.crs, BO.x, BO.y)]);
    const b = await S.req('GET', `/fhir/Location/${ids[1]}`);
    assert.deepEqual(decode(b.json.extension.find((e) => e.url === BOUNDARY_SOURCE).valueAttachment.data), square);
    const inside = await S.req('GET', `/fhir/Location?contains=${BO.want.lat.toFixed(6)}|${BO.want.lon.toFixed(6)}`);
    assert.ok(matchIds(inside).includes(ids[1]), 'contains finds the Bundle boundary');

    const bad = await S.req('POST', '/fhir', {
      as: 'editor',
      body: {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          entry(located('Bo fine', { extension: [source(BO.crs, BO.x, BO.y)] }, { identifier: ident('bo-3') })),
          entry(located('Bo wrong', { latitude: BO.want.lat + 0.01, longitude: BO.want.lon, extension: [source(BO.crs, BO.x, BO.y)] }, { identifier: ident('bo-4') })),
        ],
      },
    });
    assertOutcome(bad, 422, 'business-rule', { expression: 'Bundle.entry[1].resource.position.latitude' });
    const none = await S.req('GET', `/fhir/Location?identifier=${encodeURIComponent(system)}|bo-3&_summary=count`);
    assert.equal(none.json.total, 0, 'nothing of the failed transaction was stored');
  });
});
