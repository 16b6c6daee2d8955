// POST [base]/$import (web/import.c): the web UI's import, the engine of `mahali import` run in
// the background. The "dry-run first" flow (dry run → report, nothing committed → real run →
// facilities searchable → re-run changes nothing), gzip bodies, a damaged CSV (rejected rows in
// the report, report.csv downloadable), an unreadable file (job failed with the importer's
// message, no server path), the admin-only rule (401/403), bad parameters (400 naming them,
// checked before the upload is accepted) and the upload cap (413, with the cap lowered through
// MAHALI_IMPORT_MAX_BYTES for this file's server). Fixtures: tests/data/import_http/ (CC0).
// Prints `import_http: jobs=N polls=M`.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { SOURCE_DIR, assertOutcome, e2eSkipReason, startServe, useServer, waitFor } from './lib/server.mjs';

const skip = e2eSkipReason();
const DATA = path.join(SOURCE_DIR, 'tests', 'data', 'import_http');
const fixture = (name) => readFileSync(path.join(DATA, name));
const MAX_BYTES = 65536;
const SYSTEM = 'urn:mahali:test:zuwena:mfl';

// startServe passes process.env to `mahali serve`: the upload cap of this file's server
process.env.MAHALI_IMPORT_MAX_BYTES = String(MAX_BYTES);

describe('import over HTTP', { skip }, () => {
  const S = useServer('import_http');
  const totals = { jobs: 0, polls: 0 };
  const mapping = fixture('mapping.json').toString('utf8');
  const q = (params) => new URLSearchParams(params).toString();

  after(() => console.log(`import_http: jobs=${totals.jobs} polls=${totals.polls}`));

  /** A request whose answer may be plain JSON or CSV (the harness's request() insists on FHIR
   *  JSON under /fhir). opts: as (role), body, headers, chunked (send without Content-Length),
   *  base (another server). Resolves {status, headers, text, json}. */
  function raw(method, urlPath, { as, body, headers = {}, chunked = false, base = S.base } = {}) {
    const h = { Accept: 'application/json', ...headers };
    if (as) h.Authorization = `Bearer ${S.tokens[as]}`;
    if (body !== undefined && !chunked) h['Content-Length'] = String(Buffer.byteLength(body));
    return new Promise((resolve, reject) => {
      const req = http.request(new URL(urlPath, base), { method, headers: h, agent: false }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          if (/json/.test(res.headers['content-type'] || '') && text) json = JSON.parse(text);
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      });
      // the server may answer 413 and close before reading the whole body: the answer wins
      req.on('error', (e) => setTimeout(() => reject(e), 2000));
      if (body === undefined) req.end();
      else if (chunked) {
        const b = Buffer.from(body);
        for (let i = 0; i < b.length; i += 8192) req.write(b.subarray(i, i + 8192));
        req.end();
      } else req.end(body);
    });
  }

  /** POST a file as admin; require 202 and the documented answer; resolves the job id. */
  async function submit(params, body, opts = {}) {
    const r = await raw('POST', `/fhir/$import?${q(params)}`, { as: 'admin', body, ...opts });
    assert.equal(r.status, 202, `POST $import?${q(params)}: ${r.status} ${r.text.slice(0, 500)}`);
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.equal(r.json.status, 'queued');
    assert.match(r.json.job, /^[0-9a-f]{32}$/);
    assert.equal(r.headers.location, `${S.base}/fhir/$import/${r.json.job}`);
    totals.jobs++;
    return r.json.job;
  }

  /** Poll the job until it is done or failed; resolves its last status. */
  async function finished(job) {
    return waitFor(
      async () => {
        totals.polls++;
        const r = await raw('GET', `/fhir/$import/${job}`, { as: 'admin' });
        assert.equal(r.status, 200, r.text.slice(0, 300));
        assert.match(r.headers['content-type'], /^application\/json; charset=utf-8$/);
        assert.equal(r.json.job, job);
        assert.ok(['queued', 'running', 'done', 'failed'].includes(r.json.status), r.text.slice(0, 300));
        return r.json.status === 'done' || r.json.status === 'failed' ? r.json : null;
      },
      { timeout: 60000, interval: 100, what: `import job ${job}` },
    );
  }

  async function importDone(params, body, opts) {
    const st = await finished(await submit(params, body, opts));
    assert.equal(st.status, 'done', `job failed: ${JSON.stringify(st).slice(0, 600)}`);
    assert.ok(st.report, 'a done job carries its report');
    return st;
  }

  async function zuwenaCount(name = 'Zuwena Test') {
    const r = await S.req('GET', `/fhir/Location?${q({ name, _summary: 'count' })}`, { as: 'reader' });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    return r.json.total;
  }

  it('the CapabilityStatement documents $import and the dry-run-first flow', async () => {
    const r = await S.req('GET', '/fhir/metadata');
    const op = (r.json.rest[0].operation || []).find((o) => o.name === 'import');
    assert.ok(op, 'rest.operation has import');
    assert.match(op.documentation, /dry_run=true/);
    assert.match(op.documentation, /Dry run first/);
    assert.match(op.documentation, /429/);
  });

  describe('access: admin only', () => {
    const body = fixture('facilities.csv');
    it('no token → 401 with a Bearer challenge', async () => {
      const r = await S.req('POST', '/fhir/$import?format=csv', { body, contentType: 'text/csv' });
      assertOutcome(r, 401, 'login');
      assert.match(r.headers['www-authenticate'] || '', /^Bearer\b/);
      assertOutcome(await S.req('GET', '/fhir/$import/0123456789abcdef0123456789abcdef'), 401, 'login');
    });
    for (const who of ['reader', 'editor'])
      it(`${who} → 403 (post, status, report)`, async () => {
        assertOutcome(await S.req('POST', '/fhir/$import?format=csv', { body, contentType: 'text/csv', as: who }), 403, 'forbidden');
        assertOutcome(await S.req('GET', '/fhir/$import/0123456789abcdef0123456789abcdef', { as: who }), 403, 'forbidden');
        assertOutcome(await S.req('GET', '/fhir/$import/0123456789abcdef0123456789abcdef/report.csv', { as: who }), 403, 'forbidden');
      });
  });

  describe('bad requests: 400 naming the parameter, nothing queued', () => {
    const body = fixture('facilities.csv');
    const post = (query, opts = {}) => S.req('POST', `/fhir/$import${query}`, { body, contentType: 'text/csv', as: 'admin', ...opts });
    it('format missing or unknown', async () => {
      assertOutcome(await post(''), 400, 'required', { expression: 'format' });
      assertOutcome(await post('?format=xlsx'), 400, 'value', { expression: 'format' });
    });
    it('no body', async () => {
      assertOutcome(await S.req('POST', '/fhir/$import?format=csv', { as: 'admin' }), 400, 'required');
      assertOutcome(await post('?format=csv', { body: '' }), 400, 'required');
    });
    it('a mapping the importer refuses names the member; invalid JSON names mapping', async () => {
      const noName = JSON.stringify({ identifiers: [{ column: 'mfl_code', system: SYSTEM }] });
      assertOutcome(await post(`?${q({ format: 'csv', mapping: noName })}`), 400, 'required', { expression: 'mapping.name' });
      assertOutcome(await post(`?${q({ format: 'csv', mapping: '{"name": ' })}`), 400, 'structure', { expression: 'mapping' });
      assertOutcome(await post(`?${q({ format: 'dhis2', mapping })}`), 400, 'not-supported', { expression: 'mapping' });
    });
    it('dry_run, delimiter, encoding, crs, filename', async () => {
      assertOutcome(await post('?format=csv&dry_run=yes'), 400, 'value', { expression: 'dry_run' });
      assertOutcome(await post('?format=csv&delimiter=x'), 400, 'value', { expression: 'delimiter' });
      assertOutcome(await post('?format=csv&encoding=ebcdic'), 400, 'value', { expression: 'encoding' });
      assertOutcome(await post('?format=csv&crs=EPSG:999999999'), 400, 'value', { expression: 'crs' });
      assertOutcome(await post('?format=csv&crs=mercator'), 400, 'value', { expression: 'crs' });
      assertOutcome(await post(`?${q({ format: 'csv', filename: '../etc/passwd' })}`), 400, 'value', { expression: 'filename' });
    });
    it('unknown job → 404; wrong methods → 405', async () => {
      assertOutcome(await S.req('GET', '/fhir/$import/0123456789abcdef0123456789abcdef', { as: 'admin' }), 404, 'not-found');
      assertOutcome(await S.req('GET', '/fhir/$import/nope/report.csv', { as: 'admin' }), 404, 'not-found');
      assertOutcome(await S.req('GET', '/fhir/$import/nope/other', { as: 'admin' }), 404, 'not-found');
      const r = await S.req('GET', '/fhir/$import', { as: 'admin' });
      assertOutcome(r, 405, 'not-supported');
      assert.equal(r.headers.allow, 'POST');
      assertOutcome(await S.req('DELETE', '/fhir/$import/0123456789abcdef0123456789abcdef', { as: 'admin' }), 405, 'not-supported');
    });
    it('nothing was imported by any of them', async () => {
      assert.equal(await zuwenaCount(), 0);
    });
  });

  describe('over the cap: 413', () => {
    const big = Buffer.alloc(MAX_BYTES + 4096, 'a');
    it('with Content-Length: refused before the body is read', async () => {
      const r = await S.req('POST', '/fhir/$import?format=csv', { body: big, contentType: 'text/csv', as: 'admin' });
      assertOutcome(r, 413, 'too-long');
    });
    it('chunked: refused once the cap is passed', async () => {
      const r = await raw('POST', '/fhir/$import?format=csv', {
        as: 'admin',
        body: big,
        chunked: true,
        headers: { 'Content-Type': 'text/csv', Accept: 'application/fhir+json' },
      });
      assert.equal(r.status, 413, r.text.slice(0, 300));
      assert.equal(r.json.issue[0].code, 'too-long');
    });
  });

  describe('dry run first, then the real import', () => {
    const body = fixture('facilities.csv');
    const params = { format: 'csv', mapping, filename: 'facilities.csv' };

    it('dry_run=true: a report of what would happen, nothing committed', async () => {
      const st = await importDone({ ...params, dry_run: 'true' }, body, { headers: { 'Content-Type': 'text/csv' } });
      assert.equal(st.format, 'csv');
      assert.equal(st.dry_run, true);
      assert.equal(st.progress.rows, 5);
      for (const k of ['submitted', 'started', 'finished']) assert.match(st[k], /^\d{4}-\d\d-\d\dT/, k);
      const rep = st.report;
      assert.equal(rep.dry_run, true);
      assert.equal(rep.format, 'csv');
      assert.equal(rep.file, 'facilities.csv');
      assert.match(rep.checksum, /^sha256:[0-9a-f]{64}$/);
      assert.deepEqual([rep.rows, rep.created, rep.updated, rep.unchanged, rep.rejected], [5, 5, 0, 0, 0]);
      assert.deepEqual(rep.issues, []);
      assert.equal(await zuwenaCount(), 0, 'a dry run commits nothing');
    });

    it('the same file for real: the facilities are searchable', async () => {
      const st = await importDone(params, body);
      assert.equal(st.dry_run, false);
      const rep = st.report;
      assert.deepEqual([rep.rows, rep.created, rep.updated, rep.unchanged, rep.rejected], [5, 5, 0, 0, 0]);
      assert.equal(await zuwenaCount(), 5);
      const r = await S.req('GET', `/fhir/Location?${q({ identifier: `${SYSTEM}|ZTC-003` })}`, { as: 'reader' });
      assert.equal(r.json.entry.length, 1);
      assert.equal(r.json.entry[0].resource.name, 'Zuwena Test Hospital Port Loko');
      assert.equal(r.json.entry[0].resource.position.latitude, 8.7667);
    });

    it('posted again: nothing created or updated', async () => {
      const rep = (await importDone(params, body)).report;
      assert.deepEqual([rep.rows, rep.created, rep.updated, rep.unchanged, rep.rejected], [5, 0, 0, 5, 0]);
      assert.equal(await zuwenaCount(), 5);
    });

    it('gzip body (recognised by its first bytes): same rows, still unchanged', async () => {
      const rep = (await importDone(params, gzipSync(body), { headers: { 'Content-Type': 'application/gzip' } })).report;
      assert.equal(rep.file, 'facilities.csv.gz');
      assert.deepEqual([rep.rows, rep.created, rep.updated, rep.unchanged, rep.rejected], [5, 0, 0, 5, 0]);
      const enc = await importDone(params, gzipSync(body), { headers: { 'Content-Encoding': 'gzip' } });
      assert.equal(enc.report.unchanged, 5);
    });
  });

  describe('damaged and unreadable files', () => {
    it('a damaged CSV: done, rejected rows reported by line, report.csv downloadable', async () => {
      const st = await importDone({ format: 'csv', filename: 'damaged.csv' }, fixture('damaged.csv'));
      const rep = st.report;
      // no name and a repeated code: rejected; a latitude "seven" and a missing longitude:
      // kept without a position (flagged); the row without a code: found by its row key
      assert.deepEqual(
        [rep.rows, rep.created, rep.updated, rep.unchanged, rep.rejected, rep.flagged, rep.warnings],
        [6, 4, 0, 0, 2, 2, 3],
        JSON.stringify(rep),
      );
      const lines = new Set(rep.issues.filter((i) => i.severity === 'error').map((i) => i.line));
      assert.ok(lines.has(3), `no error on line 3 (no name): ${JSON.stringify(rep.issues)}`);
      assert.ok(lines.has(4), `no error on line 4 (code of line 2 again): ${JSON.stringify(rep.issues)}`);
      assert.ok(rep.issues.some((i) => i.code === 'duplicate-identifier' && i.other_line === 2), JSON.stringify(rep.issues));

      const csv = await raw('GET', `/fhir/$import/${st.job}/report.csv`, { as: 'admin', headers: { Accept: '*/*' } });
      assert.equal(csv.status, 200, csv.text.slice(0, 300));
      assert.match(csv.headers['content-type'], /^text\/csv; charset=utf-8$/);
      assert.match(csv.headers['content-disposition'] || '', /^attachment; filename="import-[0-9a-f]{32}-report\.csv"$/);
      const rows = csv.text.trim().split('\n');
      assert.equal(rows[0], 'line,column,value,code,severity,message,other_line');
      assert.equal(rows.length - 1, rep.issues.length);
      assert.ok(rows.some((l) => l.startsWith('4,') && l.includes('duplicate-identifier')), csv.text);
    });

    it('not the format: the job fails with the importer\'s message, no server path', async () => {
      const st = await finished(await submit({ format: 'geojson' }, fixture('facilities.csv')));
      assert.equal(st.status, 'failed', JSON.stringify(st));
      assert.ok(st.error && st.error.length > 10, JSON.stringify(st));
      assert.equal(st.report, undefined);
      assert.doesNotMatch(st.error, /mahali-import-|\/tmp\//, st.error);
      const csv = await S.req('GET', `/fhir/$import/${st.job}/report.csv`, { as: 'admin' });
      assertOutcome(csv, 404, 'not-found');
    });

    it('a gzip upload cut short: failed, "not a readable gzip file"', async () => {
      let csv = 'mfl_code,facility_name,latitude,longitude\n';
      for (let i = 0; i < 400; i++) csv += `ZTG-${i},Zuwena Gzip Clinic ${i},${(8 + i / 1000).toFixed(4)},-12.${1000 + i}\n`;
      const gz = gzipSync(csv);
      const cut = gz.subarray(0, Math.floor(gz.length * 0.6));
      const st = await finished(await submit({ format: 'csv', filename: 'cut.csv', dry_run: 'true' }, cut));
      assert.equal(st.status, 'failed', JSON.stringify(st));
      assert.equal(st.error, 'cut.csv.gz is not a readable gzip file');
      assert.equal(await zuwenaCount('Zuwena Gzip'), 0);
    });

    it('a mapping naming a column the file lacks: the job fails naming it', async () => {
      const m = JSON.stringify({ name: 'nom_de_la_structure', identifiers: [{ column: 'mfl_code', system: SYSTEM }] });
      const st = await finished(await submit({ format: 'csv', mapping: m }, fixture('facilities.csv')));
      assert.equal(st.status, 'failed', JSON.stringify(st));
      assert.match(st.error, /nom_de_la_structure/);
    });
  });
  describe('queue and shutdown (a server of its own, TMPDIR of its own)', () => {
    it('queue full → 429; at shutdown the running import stops at its next chunk, the queued ones are dropped, the server exits 0, no temporary file is left', { timeout: 120000 }, async () => {
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'mahali-import-http-'));
      let srv;
      try {
        srv = await startServe(['--listen', '127.0.0.1:0', '--database', S.conninfo], {
          env: { TMPDIR: tmp, MAHALI_IMPORT_MAX_BYTES: String(16 << 20) },
        });
        let csv = 'mfl_code,facility_name,latitude,longitude\n';
        for (let i = 0; i < 200000; i++) csv += `ZTS-${i},Zuwena Shutdown Clinic ${i},${(7.5 + (i % 1000) / 1000).toFixed(4)},-12.${1000 + (i % 8000)}\n`;
        const r = await raw('POST', `/fhir/$import?${q({ format: 'csv', dry_run: 'true' })}`, { as: 'admin', body: gzipSync(csv), base: srv.base });
        assert.equal(r.status, 202, r.text.slice(0, 300));
        totals.jobs++;
        await waitFor(
          async () => {
            totals.polls++;
            const st = (await raw('GET', `/fhir/$import/${r.json.job}`, { as: 'admin', base: srv.base })).json;
            assert.notEqual(st.status, 'failed', JSON.stringify(st));
            assert.notEqual(st.status, 'done', 'the import finished before the server could be stopped during it');
            return st.status === 'running' && st.progress.rows > 0;
          },
          { timeout: 60000, interval: 20, what: 'the import to be running' },
        );
        // one import runs, 4 may wait: the fifth waiting one is refused
        const small = fixture('facilities.csv');
        for (let i = 0; i < 4; i++) {
          const w = await raw('POST', `/fhir/$import?${q({ format: 'csv', dry_run: 'true' })}`, { as: 'admin', body: small, base: srv.base });
          assert.equal(w.status, 202, w.text.slice(0, 300));
          const st = (await raw('GET', `/fhir/$import/${w.json.job}`, { as: 'admin', base: srv.base })).json;
          assert.equal(st.status, 'queued', JSON.stringify(st));
          assert.deepEqual([st.started, st.finished, st.progress.rows], [null, null, 0]);
          totals.jobs++;
        }
        const full = await raw('POST', `/fhir/$import?${q({ format: 'csv' })}`, {
          as: 'admin',
          body: small,
          base: srv.base,
          headers: { Accept: 'application/fhir+json' },
        });
        assert.equal(full.status, 429, full.text.slice(0, 300));
        assert.equal(full.json.issue[0].code, 'throttled');
        assert.match(full.headers['retry-after'] || '', /^\d+$/);
        assert.equal(readdirSync(tmp).length, 5, 'one folder per job under TMPDIR');
        const t0 = Date.now();
        const stopped = await srv.stop('SIGTERM', 30000);
        const ms = Date.now() - t0;
        assert.deepEqual(stopped, { code: 0, signal: null }, srv.output().slice(-3000));
        assert.ok(ms < 15000, `stopping took ${ms} ms`);
        assert.deepEqual(readdirSync(tmp), [], 'temporary files left after shutdown');
        assert.match(srv.stderr(), /import [0-9a-f]{32} failed: the import was cancelled/);
      } finally {
        if (srv) await srv.stop('SIGKILL');
        rmSync(tmp, { recursive: true, force: true });
      }
    });
  });
});
