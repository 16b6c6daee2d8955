// Boundaries for maps (GET /fhir/Location/$boundaries): one simplified GeoJSON
// FeatureCollection, scoped by partof (the Location and everything below it) and bbox; the
// simplification keeps a boundary valid and close to the stored one, tolerance=0 keeps it as
// stored; bad parameters get 400 naming the parameter; public like Location reads.
import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import { e2eSkipReason, useServer } from './lib/server.mjs';
import { coverage, makeShape, polygonsOf } from './lib/geo.mjs';

const BOUNDARY = 'http://hl7.org/fhir/StructureDefinition/location-boundary-geojson';
const skip = e2eSkipReason();

const attach = (gj) => [{ url: BOUNDARY, valueAttachment: { contentType: 'application/geo+json', data: Buffer.from(JSON.stringify(gj)).toString('base64') } }];
const square = (lon0, lat0, lon1, lat1) => ({ type: 'Polygon', coordinates: [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]] });
// a circle of n vertices (7 decimals), radius in degrees
function circle(lon, lat, radius, n) {
  const ring = [];
  for (let i = 0; i < n; i++) {
    const a = (2 * Math.PI * i) / n;
    ring.push([+(lon + radius * Math.cos(a)).toFixed(7), +(lat + radius * Math.sin(a)).toFixed(7)]);
  }
  ring.push(ring[0]);
  return { type: 'Polygon', coordinates: [ring] };
}
const vertices = (g) => (g.type === 'Polygon' ? [g.coordinates] : g.coordinates).reduce((s, p) => s + p.reduce((t, r) => t + r.length, 0), 0);

describe('map layer of boundaries', { skip }, () => {
  const S = useServer('maplayer');
  const put = async (id, body) => {
    const r = await S.req('PUT', `/fhir/Location/${id}`, { body: { resourceType: 'Location', id, status: 'active', ...body }, as: 'editor' });
    assert.ok([200, 201].includes(r.status), `${id}: ${r.status} ${r.text.slice(0, 300)}`);
  };
  const layer = async (query) => {
    const r = await S.req('GET', `/fhir/Location/$boundaries${query}`);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.match(r.headers['content-type'], /^application\/geo\+json/);
    const fc = JSON.parse(r.text);
    assert.equal(fc.type, 'FeatureCollection');
    return fc;
  };
  const ids = (fc) => fc.features.map((f) => f.id).sort();

  before(async () => {
    await put('ml-country', { name: 'Country', extension: attach(square(0, 0, 10, 10)) });
    await put('ml-north', { name: 'North', partOf: { reference: 'Location/ml-country' }, extension: attach(square(0, 5, 10, 10)) });
    await put('ml-south', { name: 'South', partOf: { reference: 'Location/ml-country' }, extension: attach(square(0, 0, 10, 5)) });
    await put('ml-lake', { name: 'Round Lake District', partOf: { reference: 'Location/ml-south' }, extension: attach(circle(3, 2.5, 1, 2000)) });
    await put('ml-far', { name: 'Elsewhere', extension: attach(square(50, 50, 51, 51)) });
    await put('ml-point', { name: 'A clinic (no boundary)', partOf: { reference: 'Location/ml-south' }, position: { latitude: 2.5, longitude: 3 } });
  });

  it('lists every boundary, with name, status, partOf and type as properties', async () => {
    const fc = await layer('');
    assert.deepEqual(ids(fc), ['Location/ml-country', 'Location/ml-far', 'Location/ml-lake', 'Location/ml-north', 'Location/ml-south']);
    const north = fc.features.find((f) => f.id === 'Location/ml-north');
    assert.equal(north.properties.name, 'North');
    assert.equal(north.properties.status, 'active');
    assert.equal(north.properties.partOf, 'Location/ml-country');
    assert.equal(north.type, 'Feature');
    assert.equal(north.geometry.type, 'Polygon');
  });

  it('partof scopes the layer to a Location and everything below it; bbox to what meets the box', async () => {
    assert.deepEqual(ids(await layer('?partof=Location/ml-south')), ['Location/ml-lake', 'Location/ml-south']);
    assert.deepEqual(ids(await layer('?partof=ml-north')), ['Location/ml-north']);
    assert.deepEqual(ids(await layer('?bbox=49.5,49.5,50.5,50.5')), ['Location/ml-far']);
    assert.deepEqual(ids(await layer('?partof=Location/ml-country&bbox=2.5,2,3.5,3')), ['Location/ml-country', 'Location/ml-lake', 'Location/ml-south']);
    assert.deepEqual(ids(await layer('?partof=Location/nothing-here')), []);
  });

  it('simplifies to the tolerance, keeps the shape within it, and keeps the stored boundary with tolerance=0', async () => {
    const exact = (await layer('?partof=ml-lake&tolerance=0')).features[0].geometry;
    assert.equal(vertices(exact), 2001);
    const def = (await layer('?partof=ml-lake')).features[0].geometry; // 0.001 degree
    const coarse = (await layer('?partof=ml-lake&tolerance=0.05')).features[0].geometry;
    assert.ok(vertices(def) < 2001 && vertices(coarse) < vertices(def), `${vertices(def)} then ${vertices(coarse)} vertices`);
    assert.ok(vertices(coarse) >= 4);
    // every point well inside the true circle (by more than the tolerance) is inside the
    // simplified one, and every point well outside is outside: checked independently in JS
    const shape = makeShape(polygonsOf(coarse));
    let wrong = 0;
    for (let i = 0; i < 2000; i++) {
      const a = (2 * Math.PI * i) / 2000, rad = i % 2 ? 0.9 : 1.1;
      const inside = coverage(shape, 3 + rad * Math.cos(a), 2.5 + rad * Math.sin(a)) !== 'out';
      if (inside !== (rad < 1)) wrong++;
    }
    assert.equal(wrong, 0);
    // the stored boundary is untouched
    const r = await S.req('GET', '/fhir/Location/ml-lake');
    const stored = JSON.parse(Buffer.from(r.json.extension[0].valueAttachment.data, 'base64').toString());
    assert.equal(vertices(stored), 2001);
  });

  it('refuses bad parameters with 400 naming them, and answers without a token', async () => {
    for (const [q, expr] of [
      ['?tolerance=-1', 'tolerance'],
      ['?tolerance=abc', 'tolerance'],
      ['?tolerance=5', 'tolerance'],
    ]) {
      const r = await S.req('GET', `/fhir/Location/$boundaries${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.json.resourceType, 'OperationOutcome');
      assert.ok(JSON.stringify(r.json).includes(expr), `${q}: ${r.text}`);
    }
    for (const q of ['?bbox=1,2,3', '?bbox=3,2,1,4', '?bbox=a,b,c,d', '?partof=Organization/x', '?partof=bad id']) {
      const r = await S.req('GET', `/fhir/Location/$boundaries${q.replace(' ', '%20')}`);
      assert.equal(r.status, 400, `${q}: ${r.text.slice(0, 200)}`);
      assert.equal(r.json.resourceType, 'OperationOutcome');
    }
    const post = await S.req('POST', '/fhir/Location/$boundaries', { body: {}, as: 'editor' });
    assert.equal(post.status, 405);
  });
});
