// Spatial data quality (GET /fhir/Location/$data-quality): one planted case per reason, a clean
// control that must not be flagged, scoping with partof, and the CSV export (quoting, and no
// spreadsheet formula can run from a facility name).
import assert from 'node:assert/strict';
import { describe, it, before } from 'node:test';
import { e2eSkipReason, useServer } from './lib/server.mjs';

const BOUNDARY = 'http://hl7.org/fhir/StructureDefinition/location-boundary-geojson';
const skip = e2eSkipReason();

function square(lon0, lat0, lon1, lat1) {
  const gj = { type: 'Polygon', coordinates: [[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]] };
  return [{ url: BOUNDARY, valueAttachment: { contentType: 'application/geo+json', data: Buffer.from(JSON.stringify(gj)).toString('base64') } }];
}

describe('data quality', { skip }, () => {
  const S = useServer('quality');
  const put = async (id, body) => {
    const r = await S.req('PUT', `/fhir/Location/${id}`, { body: { resourceType: 'Location', id, status: 'active', ...body }, as: 'editor' });
    assert.ok([200, 201].includes(r.status), `${id}: ${r.status} ${r.text.slice(0, 300)}`);
  };
  const pos = (lat, lon) => ({ position: { latitude: lat, longitude: lon } });

  before(async () => {
    // country: longitude 0..10, latitude 20..30 (not symmetric, so a swap moves a point); two districts
    await put('dq-country', { name: 'Country', extension: square(0, 20, 10, 30) });
    await put('dq-west', { name: 'West', partOf: { reference: 'Location/dq-country' }, extension: square(0, 20, 5, 30) });
    await put('dq-east', { name: 'East', partOf: { reference: 'Location/dq-country' }, extension: square(5, 20, 10, 30) });
    const west = { partOf: { reference: 'Location/dq-west' } };
    await put('dq-clean', { name: 'Clean Health Centre', ...west, ...pos(24.123456, 2.123456) });
    await put('dq-zero', { name: 'Zero Clinic', ...west, ...pos(0, 0) });
    await put('dq-coarse', { name: 'Coarse Clinic', ...west, ...pos(24.1, 2.123456) });
    await put('dq-wrong', { name: 'Misplaced Clinic', ...west, ...pos(24.123456, 7.123456) }); // in East
    await put('dq-sea', { name: 'Offshore Clinic', ...west, ...pos(-20.123456, -30.123456) });
    await put('dq-swapped', { name: 'Swapped Clinic', ...west, ...pos(2.654321, 24.654321) }); // swapped: latitude 24.65, longitude 2.65, inside West
    await put('dq-twin-a', { name: 'Twin Dispensary', ...west, ...pos(26.111111, 3.111111) });
    await put('dq-twin-b', { name: 'Lakeside Maternity', ...west, ...pos(26.111111, 3.111111) });
    await put('dq-dup-a', { name: 'Saint Mary Hospital', ...west, ...pos(28.000001, 1.000001) });
    await put('dq-dup-b', { name: 'St Mary Hospital', ...west, ...pos(28.001001, 1.000001) }); // ~110 m away
    await put('dq-formula', { name: '=HYPERLINK("http://evil.example","x")', ...west, ...pos(29.123456, 4.123456) });
  });

  async function problems(q = '') {
    const r = await S.req('GET', `/fhir/Location/$data-quality${q}`, {});
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.json.resourceType, 'Parameters');
    const out = [];
    for (const p of r.json.parameter || []) {
      if (p.name !== 'problem') continue;
      const get = (n) => p.part.find((x) => x.name === n);
      out.push({
        id: get('location').valueReference.reference.split('/')[1],
        check: get('check').valueCode,
        reason: get('reason').valueString,
        other: get('other')?.valueReference.reference.split('/')[1],
      });
    }
    return { out, counts: (r.json.parameter || []).filter((p) => p.name === 'count') };
  }
  const has = (list, id, check) => list.find((p) => p.id === id && p.check === check);

  it('flags each reason, with the reason and the other Location involved', async () => {
    const { out, counts } = await problems();
    assert.ok(has(out, 'dq-zero', 'zero-position'), 'zero-position');
    assert.match(has(out, 'dq-coarse', 'low-precision').reason, /latitude 24\.1,/);
    const wrong = has(out, 'dq-wrong', 'outside-jurisdiction');
    assert.ok(wrong, 'outside-jurisdiction');
    assert.equal(wrong.other, 'dq-east', 'names the district it falls in');
    assert.match(wrong.reason, /Location\/dq-west/);
    assert.ok(has(out, 'dq-sea', 'outside-country'), 'outside-country');
    const sw = has(out, 'dq-swapped', 'swapped-coordinates');
    assert.ok(sw, 'swapped-coordinates');
    assert.equal(sw.other, 'dq-west');
    assert.equal(has(out, 'dq-twin-a', 'same-position')?.other, 'dq-twin-b');
    assert.equal(has(out, 'dq-dup-a', 'likely-duplicate')?.other, 'dq-dup-b');
    assert.ok(!has(out, 'dq-twin-a', 'likely-duplicate'), 'different names at one position are not name duplicates');
    assert.deepEqual(out.filter((p) => p.id === 'dq-clean'), [], 'a clean facility is not flagged');
    assert.ok(counts.some((c) => c.part.some((x) => x.name === 'jurisdiction' && x.valueReference.reference === 'Location/dq-west')), 'counts per jurisdiction');
    console.log(`# data-quality: ${out.length} problems, ${new Set(out.map((p) => p.check)).size} kinds`);
  });

  it('scopes to a jurisdiction with partof and refuses a bad one', async () => {
    await put('dq-east-site', { name: 'East Coarse Site', partOf: { reference: 'Location/dq-east' }, ...pos(23.1, 7.5) });
    const { out } = await problems('?partof=Location/dq-east');
    assert.deepEqual([...new Set(out.map((p) => p.id))], ['dq-east-site']);
    assert.equal((await S.req('GET', '/fhir/Location/$data-quality?partof=Location/nope', {})).status, 404);
    assert.equal((await S.req('GET', '/fhir/Location/$data-quality?partof=Organization/x', {})).status, 400);
  });

  it('exports CSV that a spreadsheet cannot run as a formula', async () => {
    const r = await S.req('GET', '/fhir/Location/$data-quality?_format=csv', {});
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/csv; charset=utf-8$/);
    const lines = r.text.trim().split('\n');
    assert.equal(lines[0], 'location_id,name,jurisdiction_id,check,reason,other_location_id');
    const f = lines.find((l) => l.startsWith('"dq-formula"'));
    if (f) assert.match(f, /^"dq-formula","'=HYPERLINK\(""http:\/\/evil\.example"",""x""\)"/);
    assert.ok(lines.some((l) => l.startsWith('"dq-zero","Zero Clinic","dq-west","zero-position"')));
  });
});
