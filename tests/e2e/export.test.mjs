// Exports of the master facility list (GET /fhir/Location/$export-mfl and `mahali export`):
// CSV (header, RFC 4180 quoting, formula cells neutralised, a row per facility), GeoJSON (a
// Point per facility with a position), FHIR NDJSON and DHIS2 organisation units; the filters
// (jurisdiction, type, status); the round trips (CSV back through `mahali import csv` with the
// shipped mapping, NDJSON back through `mahali import fhir`: nothing created, nothing
// updated); more facilities than one page of the database read (every one exactly once);
// bad parameters (400 naming them), an unknown jurisdiction (404).
//
// Data: tests/data/export/facilities.csv (seven facilities of "Exland", imported with its
// mapping) and 1,050 generated facilities of "Bigland" (more than two 500-row pages).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, SOURCE_DIR, assertOutcome, e2eSkipReason, run, runOk, useServer } from './lib/server.mjs';

const skip = e2eSkipReason();
const DATA = path.join(SOURCE_DIR, 'tests', 'data', 'export');
const SHIPPED = path.join(SOURCE_DIR, 'importers', 'mappings', 'mahali-export.json');
const CODE = 'https://moh.example.org/fhir/NamingSystem/facility-code';
const TYPE = 'https://moh.example.org/fhir/CodeSystem/facility-type';
const MCSD = 'https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types';
const UID = /^[A-Za-z][A-Za-z0-9]{10}$/;
const BIG = 1050;

// ---- helpers ------------------------------------------------------------------------------------

/** RFC 4180: rows of cells (quoted cells may hold commas, quotes doubled, CR LF). */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"' && cell === '') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  assert.equal(quoted, false, 'the CSV ends inside a quoted cell');
  assert.equal(cell, '', 'the last CSV line has no CR LF');
  return rows;
}

/** {header, rows: [{column: value}]}; every row as wide as the header. */
function csvTable(text) {
  const [header, ...rows] = parseCsv(text);
  for (const r of rows) assert.equal(r.length, header.length, `a row of ${r.length} cells under a header of ${header.length}: ${r}`);
  return { header, rows: rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]]))) };
}

/** GET without the FHIR response checks of lib/server.mjs (the body is not FHIR JSON). */
function download(base, query, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/fhir/Location/$export-mfl?${query}`, { headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.setTimeout(120000, () => req.destroy(new Error(`GET $export-mfl?${query}: timeout`)));
  });
}

const codes = (rows) => rows.map((r) => r[`identifier:${CODE}`]).sort();

describe('exports of the master facility list', { skip }, () => {
  const S = useServer('export', { roles: ['reader'] });
  let tmp;
  const J = {}; // jurisdiction ids by name
  const where = () => ['--database', S.conninfo];

  /** `mahali import ...` with a report; resolves the report's counts. */
  async function importFile(format, file, mapping) {
    const report = path.join(tmp, `report-${Date.now()}-${Math.random().toString(16).slice(2)}.json`);
    const args = ['import', format, file, '--quiet', '--report', report, ...(mapping ? ['--mapping', mapping] : []), ...where()];
    const r = await run(BIN, args, { timeout: 300000 });
    assert.ok(r.code === 0, `mahali ${args.join(' ')} exited ${r.code}\n${r.stderr}`);
    return JSON.parse(readFileSync(report, 'utf8'));
  }
  async function cliExport(format, ...args) {
    const r = await runOk(BIN, ['export', format, ...args, ...where()], { timeout: 300000 });
    return r.stdout;
  }
  async function idOf(name) {
    const r = await S.req('GET', `/fhir/Location?name:exact=${encodeURIComponent(name)}&type=${encodeURIComponent(`${MCSD}|jurisdiction`)}`);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.json.entry?.length, 1, `one jurisdiction named ${name}: ${r.text.slice(0, 300)}`);
    return r.json.entry[0].resource.id;
  }

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'mahali-export-'));
    const fixture = await importFile('csv', path.join(DATA, 'facilities.csv'), path.join(DATA, 'mapping.json'));
    assert.equal(fixture.created, 7, JSON.stringify(fixture));
    // more facilities than two pages of the export's database reads
    const lines = ['code,name,lat,lon,kind,zone,district'];
    for (let i = 1; i <= BIG; i++)
      lines.push(
        `BG${String(i).padStart(4, '0')},Bigland Clinic ${i},${(1 + i * 0.000731).toFixed(6)},${(30 + i * 0.000417).toFixed(6)},` +
          `${i % 3 ? 'HC' : 'HP'},Zone ${i % 4},District ${i % 10}`,
      );
    writeFileSync(path.join(tmp, 'bigland.csv'), `${lines.join('\n')}\n`);
    writeFileSync(
      path.join(tmp, 'bigland.json'),
      JSON.stringify({
        source: 'export-big',
        name: 'name',
        identifiers: [{ column: 'code', system: CODE }],
        latitude: 'lat',
        longitude: 'lon',
        type: { column: 'kind', system: TYPE },
        jurisdictions: { top: 'Bigland', columns: ['zone', 'district'] },
      }),
    );
    const big = await importFile('csv', path.join(tmp, 'bigland.csv'), path.join(tmp, 'bigland.json'));
    assert.equal(big.created, BIG, JSON.stringify({ ...big, issues: big.issues?.slice(0, 5) }));
    for (const n of ['Exland', 'North', 'South', 'Bombali', 'Bigland']) J[n] = await idOf(n);
  }, { timeout: 600000 });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('CSV: a header, a row per facility, RFC 4180 quoting, formula cells neutralised, streamed', async () => {
    const r = await download(S.base, `format=csv&jurisdiction=Location/${J.Exland}`);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.equal(r.headers['content-type'], 'text/csv; charset=utf-8');
    assert.equal(r.headers['content-disposition'], 'attachment; filename="mfl.csv"');
    assert.equal(r.headers['transfer-encoding'], 'chunked');
    const { header, rows } = csvTable(r.text);
    assert.deepEqual(header.slice(0, 3), ['id', 'name', 'status']);
    for (const h of [`identifier:${CODE}`, 'identifier:https://dhis2.org/orgunit-uid', 'latitude', 'longitude', 'type_system', 'type_code',
      'type_display', 'ownership_system', 'ownership_code', 'ownership_display', 'level_1', 'level_2', 'level_3', 'parent_id', 'last_updated'])
      assert.ok(header.includes(h), `no column ${h} in ${header}`);
    assert.ok(!header.includes('level_4'), 'the deepest chain has three levels');
    assert.deepEqual(codes(rows), ['EX001', 'EX002', 'EX003', 'EX004', 'EX005', 'EX006', 'EX007']);
    // every cell that starts like a formula is a number or carries the apostrophe
    for (const row of rows)
      for (const [k, v] of Object.entries(row))
        assert.ok(!/^[=+\-@\t\r]/.test(v) || /^-?\d+(\.\d+)?$/.test(v), `cell ${k} = ${JSON.stringify(v)} could run as a formula`);
    const byCode = Object.fromEntries(rows.map((x) => [x[`identifier:${CODE}`], x]));
    assert.equal(byCode.EX002.name, `'=HYPERLINK("http://example.org/x","click")`);
    assert.equal(byCode.EX003.name, `'+Clinic, "Main" Street`);
    assert.equal(byCode.EX004.name, `'@Home Care`);
    assert.equal(byCode.EX006.name, `'-Dash Clinic`);
    assert.ok(r.text.includes(`"'=HYPERLINK(""http://example.org/x"",""click"")"`), 'neutralised inside quotes');
    assert.equal(byCode.EX005.name, 'Ségou Médical');
    // negative coordinates stay numbers; no position: empty cells
    assert.equal(byCode.EX001.latitude, '8.4657');
    assert.equal(byCode.EX001.longitude, '-13.2317');
    assert.match(r.text, /,8\.4657,-13\.2317,/);
    assert.equal(byCode.EX004.latitude, '');
    // codes, jurisdictions from the top, parent, status, lastUpdated
    assert.equal(byCode.EX001.type_system, TYPE);
    assert.equal(byCode.EX001.type_code, 'HC');
    assert.equal(byCode.EX001.type_display, 'Health centre');
    assert.equal(byCode.EX001.ownership_code, 'government');
    assert.equal(byCode.EX001.ownership_display, 'Government');
    assert.equal(byCode.EX001['identifier:https://dhis2.org/orgunit-uid'], 'DiszpKrYNg8');
    assert.deepEqual([byCode.EX001.level_1, byCode.EX001.level_2, byCode.EX001.level_3], ['Exland', 'North', 'Bombali']);
    assert.equal(byCode.EX001.parent_id, J.Bombali);
    assert.deepEqual([byCode.EX006.level_1, byCode.EX006.level_2, byCode.EX006.level_3], ['Exland', 'South', '']);
    assert.equal(byCode.EX007.parent_id, byCode.EX006.id, 'a satellite: its parent is a facility');
    assert.deepEqual([byCode.EX007.level_1, byCode.EX007.level_2], ['Exland', 'South']);
    assert.equal(byCode.EX003.status, 'inactive');
    assert.equal(byCode.EX004.status, 'suspended');
    assert.match(byCode.EX001.last_updated, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Accept: text/csv is fine too (the format parameter decides)
    const r2 = await download(S.base, `format=csv&jurisdiction=${J.Exland}`, { Accept: 'text/csv' });
    assert.equal(r2.status, 200);
    assert.equal(r2.text, r.text);
  });

  it('CSV round trip: `mahali import csv` with the shipped mapping creates and updates nothing', async () => {
    const csv = await cliExport('csv');
    const http1 = await download(S.base, 'format=csv');
    assert.equal(http1.text, csv, 'the HTTP download and the CLI write the same bytes');
    const { rows } = csvTable(csv);
    assert.equal(rows.length, 7 + BIG);
    assert.equal(new Set(rows.map((x) => x.id)).size, rows.length, 'every facility once');
    const file = path.join(tmp, 'mfl.csv');
    writeFileSync(file, csv);
    const rep = await importFile('csv', file, SHIPPED);
    assert.deepEqual(
      { rows: rep.rows, created: rep.created, updated: rep.updated, unchanged: rep.unchanged, rejected: rep.rejected, jurisdictions: rep.jurisdictions },
      { rows: rows.length, created: 0, updated: 0, unchanged: rows.length, rejected: 0, jurisdictions: 0 },
      JSON.stringify(rep.issues?.slice(0, 5)),
    );
    // the apostrophe came off again: the names are as stored
    const r = await S.req('GET', `/fhir/Location?identifier=${encodeURIComponent(`${CODE}|EX002`)}`);
    assert.equal(r.json.entry[0].resource.name, '=HYPERLINK("http://example.org/x","click")');
    assert.equal(r.json.entry[0].resource.meta.versionId, '1');
  });

  it('NDJSON round trip: parents first, each resource once, `mahali import fhir` changes nothing', async () => {
    const text = await cliExport('ndjson');
    const http1 = await download(S.base, 'format=ndjson');
    assert.equal(http1.headers['content-type'], 'application/fhir+ndjson; charset=utf-8');
    assert.equal(http1.text, text);
    const lines = text.split('\n').filter(Boolean);
    const seen = new Map();
    let facilities = 0;
    for (const [i, line] of lines.entries()) {
      const res = JSON.parse(line);
      const key = `${res.resourceType}/${res.id}`;
      assert.ok(!seen.has(key), `${key} twice (lines ${seen.get(key) + 1} and ${i + 1})`);
      for (const ref of [res.partOf?.reference, res.managingOrganization?.reference].filter(Boolean))
        assert.ok(seen.has(ref), `line ${i + 1}: ${key} refers to ${ref}, not written before it`);
      seen.set(key, i);
      if (res.resourceType === 'Location' && res.type?.some((t) => t.coding?.some((c) => c.system === MCSD && c.code === 'facility'))) facilities++;
    }
    assert.equal(facilities, 7 + BIG);
    const file = path.join(tmp, 'mfl.ndjson');
    writeFileSync(file, text);
    const rep = await importFile('fhir', file);
    assert.deepEqual(
      { rows: rep.rows, created: rep.created, updated: rep.updated, unchanged: rep.unchanged, rejected: rep.rejected },
      { rows: lines.length, created: 0, updated: 0, unchanged: lines.length, rejected: 0 },
      JSON.stringify(rep.issues?.slice(0, 5)),
    );
    // a jurisdiction's export holds the chain above it too
    const north = (await cliExport('ndjson', '--jurisdiction', `Location/${J.Bombali}`)).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const locs = north.filter((x) => x.resourceType === 'Location').map((x) => x.id);
    assert.deepEqual(locs.slice(0, 3), [J.Exland, J.North, J.Bombali]);
    assert.equal(locs.length, 5);
  });

  it('filters: jurisdiction (any depth below), type (code, system|code, |code, system|), status', async () => {
    const sel = async (q) => {
      const r = await download(S.base, `format=csv&${q}`);
      assert.equal(r.status, 200, `${q}: ${r.text.slice(0, 300)}`);
      return codes(csvTable(r.text).rows);
    };
    const ex = `jurisdiction=Location/${J.Exland}`;
    assert.deepEqual(await sel(`jurisdiction=Location/${J.North}`), ['EX001', 'EX002', 'EX003']);
    assert.deepEqual(await sel(`jurisdiction=${J.Bombali}`), ['EX001', 'EX002']);
    assert.deepEqual(await sel(`jurisdiction=Location/${J.South}`), ['EX004', 'EX005', 'EX006', 'EX007']);
    assert.equal((await sel(`jurisdiction=Location/${J.Bigland}`)).length, BIG);
    assert.deepEqual(await sel(`${ex}&type=HP`), ['EX003', 'EX004', 'EX007']);
    assert.deepEqual(await sel(`${ex}&type=${encodeURIComponent(`${TYPE}|HOSP`)}`), ['EX002', 'EX005']);
    assert.deepEqual(await sel(`${ex}&type=${encodeURIComponent('https://other.example.org|HOSP')}`), []);
    assert.deepEqual(await sel(`${ex}&type=${encodeURIComponent('|HOSP')}`), []);
    assert.equal((await sel(`${ex}&type=${encodeURIComponent(`${TYPE}|`)}`)).length, 7);
    assert.deepEqual(await sel(`${ex}&status=inactive`), ['EX003']);
    assert.deepEqual(await sel(`${ex}&status=suspended`), ['EX004']);
    assert.deepEqual(await sel(`${ex}&status=active`), ['EX001', 'EX002', 'EX005', 'EX006', 'EX007']);
    assert.deepEqual(await sel(`jurisdiction=Location/${J.North}&status=active&type=HC`), ['EX001']);
    // the same through the CLI
    const cli = csvTable(await cliExport('csv', '--jurisdiction', `Location/${J.South}`, '--type', 'HP', '--status', 'active')).rows;
    assert.deepEqual(codes(cli), ['EX007']);
  });

  it('DHIS2: valid UIDs, parents in the file before their children, levels and paths', async () => {
    const r = await download(S.base, 'format=dhis2');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(r.headers['content-disposition'], 'attachment; filename="mfl-dhis2.json"');
    const units = JSON.parse(r.text).organisationUnits;
    const at = new Map();
    units.forEach((u, i) => {
      assert.match(u.id, UID, JSON.stringify(u));
      assert.ok(!at.has(u.id), `${u.id} twice`);
      at.set(u.id, i);
    });
    for (const u of units) {
      assert.ok(u.name && u.shortName && u.shortName.length <= 50 && u.openingDate, JSON.stringify(u));
      const path_ = u.path.split('/').slice(1);
      assert.equal(path_.length, u.level);
      assert.equal(path_.at(-1), u.id);
      if (u.level === 1) assert.equal(u.parent, undefined);
      else {
        assert.ok(at.has(u.parent.id), `${u.name}: parent ${u.parent.id} is not in the file`);
        assert.ok(at.get(u.parent.id) < at.get(u.id), `${u.name} comes before its parent`);
        assert.equal(u.parent.id, path_.at(-2));
      }
    }
    // 7 + BIG facilities and the jurisdictions above them (Exland 6, Bigland 1 + 4 zones + their districts)
    const facilities = units.filter((u) => u.geometry?.type === 'Point' || u.code === 'EX004');
    assert.equal(facilities.length, 7 + BIG);
    const byCode = Object.fromEntries(units.filter((u) => u.code).map((u) => [u.code, u]));
    assert.equal(byCode.EX001.id, 'DiszpKrYNg8', 'the DHIS2 uid identifier is kept');
    assert.deepEqual(byCode.EX001.geometry, { type: 'Point', coordinates: [-13.2317, 8.4657] });
    assert.equal(byCode.EX001.level, 4);
    assert.equal(units[at.get(byCode.EX001.parent.id)].name, 'Bombali');
    assert.equal(byCode.EX003.closedDate?.length, 10, 'a closed facility has a closedDate');
    assert.equal(byCode.EX001.closedDate, undefined);
    assert.equal(byCode.EX004.geometry, undefined);
    assert.equal(units[at.get(byCode.EX007.parent.id)].code, 'EX006', 'the satellite under its facility');
    // derived UIDs are stable
    const again = JSON.parse((await download(S.base, 'format=dhis2')).text).organisationUnits.map((u) => u.id);
    assert.deepEqual(again, units.map((u) => u.id));
  });

  it('GeoJSON: a FeatureCollection with one Point feature per facility that has a position', async () => {
    const r = await download(S.base, 'format=geojson');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/geo+json; charset=utf-8');
    const fc = JSON.parse(r.text);
    assert.equal(fc.type, 'FeatureCollection');
    const rows = csvTable(await cliExport('csv')).rows;
    const withPos = rows.filter((x) => x.latitude !== '');
    assert.equal(fc.features.length, withPos.length);
    assert.equal(fc.features.length, 6 + BIG);
    assert.equal(new Set(fc.features.map((f) => f.id)).size, fc.features.length);
    const f1 = fc.features.find((f) => f.properties[`identifier:${CODE}`] === 'EX001');
    assert.equal(f1.type, 'Feature');
    assert.equal(f1.id, `Location/${f1.properties.id}`);
    assert.deepEqual(f1.geometry, { type: 'Point', coordinates: [-13.2317, 8.4657] });
    assert.equal(f1.properties.name, 'Kamara Health Centre');
    assert.equal(f1.properties.latitude, 8.4657);
    assert.equal(f1.properties.level_3, 'Bombali');
    const f2 = fc.features.find((f) => f.properties[`identifier:${CODE}`] === 'EX002');
    assert.equal(f2.properties.name, '=HYPERLINK("http://example.org/x","click")', 'JSON needs no neutralising');
    assert.ok(!fc.features.some((f) => f.properties[`identifier:${CODE}`] === 'EX004'), 'no position, no feature');
    const empty = JSON.parse((await download(S.base, 'format=geojson&status=suspended&type=HOSP')).text);
    assert.deepEqual(empty, { type: 'FeatureCollection', features: [] });
  });

  it('refuses bad parameters with 400 naming them, an unknown jurisdiction with 404', async () => {
    for (const [q, expr] of [
      ['format=xls', 'format'],
      ['', 'format'],
      ['format=csv&status=closed', 'status'],
      ['format=csv&type=', 'type'],
      ['format=csv&type=a|b|c', 'type'],
      ['format=csv&jurisdiction=Organization/x', 'jurisdiction'],
      ['format=csv&jurisdiction=bad%20id', 'jurisdiction'],
    ]) {
      const r = await S.req('GET', `/fhir/Location/$export-mfl?${q}`);
      assertOutcome(r, 400, ['value', 'required'], { expression: expr, what: q });
    }
    const nf = await S.req('GET', '/fhir/Location/$export-mfl?format=csv&jurisdiction=Location/no-such-place');
    assertOutcome(nf, 404, 'not-found', { expression: 'jurisdiction' });
    const post = await S.req('POST', '/fhir/Location/$export-mfl?format=csv', { body: {}, as: 'reader' });
    assert.equal(post.status, 405);
    // the CapabilityStatement documents it
    const cs = await S.req('GET', '/fhir/metadata');
    const loc = cs.json.rest[0].resource.find((x) => x.type === 'Location');
    assert.ok(loc.operation.some((o) => o.name === 'export-mfl'));
    // the CLI: 2 for a bad format or filter, 1 for an unknown jurisdiction
    const bad = await run(BIN, ['export', 'xls', ...where()]);
    assert.equal(bad.code, 2, bad.stderr);
    const st = await run(BIN, ['export', 'csv', '--status', 'closed', ...where()]);
    assert.equal(st.code, 2, st.stderr);
    assert.match(st.stderr, /status/);
    const j = await run(BIN, ['export', 'csv', '--jurisdiction', 'Location/no-such-place', ...where()]);
    assert.equal(j.code, 1, j.stderr);
    assert.match(j.stderr, /does not exist/);
    assert.equal(j.stdout, '', 'nothing written before the error');
  });
});
