// Operations: /healthz, /readyz (200 only when the database is reachable and migrated),
// the CapabilityStatement (/fhir/metadata) and that every interaction it claims works, the CLI
// help and version, and clean shutdown on SIGTERM/SIGINT.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  BIN,
  TYPES,
  assertOutcome,
  createDatabase,
  dropDatabase,
  e2eSkipReason,
  request,
  run,
  runOk,
  sample,
  startServe,
  useServer,
  waitFor,
} from './lib/server.mjs';

const skip = e2eSkipReason();
const REQUIRED_INTERACTIONS = ['read', 'vread', 'update', 'delete', 'create', 'history-instance', 'history-type'];
const SEARCH_VALUE = {
  string: 'x',
  token: 'x',
  reference: 'Organization/x',
  date: 'ge2000-01-01',
  uri: 'http://example.org/x',
  number: '1',
  quantity: '1',
  composite: null,
  special: null,
};

describe('ops', { skip }, () => {
  const S = useServer('ops');
  const ed = { as: 'editor' };

  describe('health', () => {
    it('/healthz → 200 while up', async () => {
      const r = await S.req('GET', '/healthz');
      assert.equal(r.status, 200, r.text);
    });
    it('/readyz → 200 when the database is reachable and migrated', async () => {
      const r = await S.req('GET', '/readyz');
      assert.equal(r.status, 200, r.text);
    });
  });

  describe('metadata', () => {
    let cs;
    before(async () => {
      const r = await S.req('GET', '/fhir/metadata');
      assert.equal(r.status, 200, r.text);
      cs = r.json;
    });

    it('is a CapabilityStatement: status, date, kind instance, fhirVersion 4.0.1, json format, rest server', () => {
      assert.equal(cs.resourceType, 'CapabilityStatement');
      assert.ok(['draft', 'active', 'retired', 'unknown'].includes(cs.status), `status ${cs.status}`);
      assert.ok(cs.date, 'date is required');
      assert.equal(cs.kind, 'instance');
      assert.equal(cs.fhirVersion, '4.0.1');
      assert.ok(Array.isArray(cs.format) && cs.format.some((f) => f === 'json' || f === 'application/fhir+json'), `format ${JSON.stringify(cs.format)}`);
      assert.ok(cs.format.some((f) => f === 'xml' || f === 'application/fhir+xml'), `format must claim XML (mcsd.md §8.1): ${JSON.stringify(cs.format)}`);
      assert.ok(cs.software || cs.implementation, 'software or implementation (kind instance)');
      assert.ok(Array.isArray(cs.rest) && cs.rest.length >= 1);
      assert.equal(cs.rest[0].mode, 'server');
    });

    it('lists the seven types with read/vread/update/delete/create/history-instance/history-type and updateCreate', () => {
      const byType = Object.fromEntries((cs.rest[0].resource || []).map((r) => [r.type, r]));
      for (const T of TYPES) {
        const r = byType[T];
        assert.ok(r, `${T} missing from rest[0].resource`);
        const codes = (r.interaction || []).map((i) => i.code);
        for (const code of REQUIRED_INTERACTIONS) assert.ok(codes.includes(code), `${T}: interaction ${code} missing (has ${codes})`);
        assert.equal(r.updateCreate, true, `${T}: updateCreate`);
      }
      const sys = (cs.rest[0].interaction || []).map((i) => i.code);
      assert.ok(sys.includes('history-system'), `system interactions ${sys}`);
    });

    it('is readable anonymously, as JSON for Accept application/json, */*, none, and _format=json', async () => {
      for (const [label, path, headers] of [
        ['Accept: application/json', '/fhir/metadata', { Accept: 'application/json' }],
        ['Accept: */*', '/fhir/metadata', { Accept: '*/*' }],
        ['Accept: application/fhir+json;fhirVersion=4.0', '/fhir/metadata', { Accept: 'application/fhir+json;fhirVersion=4.0' }],
        ['_format=json', '/fhir/metadata?_format=json', {}],
        ['_format=application/fhir+json', `/fhir/metadata?_format=${encodeURIComponent('application/fhir+json')}`, {}],
      ]) {
        const r = await S.req('GET', path, { headers });
        assert.equal(r.status, 200, `${label}: ${r.status} ${r.text.slice(0, 200)}`);
        assert.equal(r.json.resourceType, 'CapabilityStatement', label);
      }
    });

    it('claims nothing that does not work: every claimed interaction is called', async () => {
      const claimed = [];
      for (const res of cs.rest[0].resource || []) {
        const T = res.type;
        for (const { code } of res.interaction || []) {
          claimed.push(`${T}:${code}`);
          await exercise(T, code);
        }
        if (res.conditionalCreate === true) {
          claimed.push(`${T}:conditionalCreate`);
          await conditionalCreate(T);
        }
        if (res.conditionalUpdate === true) {
          claimed.push(`${T}:conditionalUpdate`);
          await conditionalUpdate(T);
        }
        if (res.conditionalDelete && res.conditionalDelete !== 'not-supported') {
          claimed.push(`${T}:conditionalDelete`);
          const r = await S.req('DELETE', `/fhir/${T}?_id=does-not-exist`, { as: 'admin' });
          assert.ok([200, 204, 404].includes(r.status), `conditional delete ${T}: ${r.status} ${r.text.slice(0, 300)}`);
        }
        for (const p of res.searchParam || []) {
          claimed.push(`${T}:search ${p.name}`);
          // booleans take true/false; near takes latitude|longitude|distance|unit
          const v = p.name === 'active' ? 'true' : p.name === 'near' ? '8.48|-13.23|10|km' : SEARCH_VALUE[p.type];
          if (v === null || v === undefined) continue;
          const r = await S.req('GET', `/fhir/${T}?${encodeURIComponent(p.name)}=${encodeURIComponent(v)}&_count=1`, { ...ed, headers: { Prefer: 'handling=strict' } });
          assert.equal(r.status, 200, `claimed search param ${T}?${p.name} (${p.type}): ${r.status} ${r.text.slice(0, 300)}`);
          assert.equal(r.json.type, 'searchset');
        }
      }
      for (const { code } of cs.rest[0].interaction || []) {
        claimed.push(`system:${code}`);
        await exerciseSystem(code);
      }
      console.log(`# metadata: ${claimed.length} claims exercised`);
    });

    async function exercise(T, code) {
      const what = `claimed ${T} ${code}`;
      const { id } = await S.create(sample(T));
      let r;
      switch (code) {
        case 'read':
          r = await S.req('GET', `/fhir/${T}/${id}`, ed);
          assert.equal(r.status, 200, `${what}: ${r.status}`);
          break;
        case 'vread':
          r = await S.req('GET', `/fhir/${T}/${id}/_history/1`, ed);
          assert.equal(r.status, 200, `${what}: ${r.status}`);
          break;
        case 'update':
          r = await S.req('PUT', `/fhir/${T}/${id}`, { body: sample(T, { id }), ...ed });
          assert.equal(r.status, 200, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
          break;
        case 'patch':
          r = await S.req('PATCH', `/fhir/${T}/${id}`, {
            body: JSON.stringify([{ op: 'add', path: '/language', value: 'en' }]),
            contentType: 'application/json-patch+json',
            ...ed,
          });
          assert.equal(r.status, 200, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
          break;
        case 'delete':
          r = await S.req('DELETE', `/fhir/${T}/${id}`, { as: 'admin' }); // delete is admin only
          assert.ok([200, 204].includes(r.status), `${what}: ${r.status}`);
          break;
        case 'create':
          break; // S.create above
        case 'history-instance':
          r = await S.req('GET', `/fhir/${T}/${id}/_history`, ed);
          assert.equal(r.status, 200, `${what}: ${r.status}`);
          assert.equal(r.json.type, 'history');
          break;
        case 'history-type':
          r = await S.req('GET', `/fhir/${T}/_history?_count=2`, ed);
          assert.equal(r.status, 200, `${what}: ${r.status}`);
          assert.equal(r.json.type, 'history');
          break;
        case 'search-type':
          r = await S.req('GET', `/fhir/${T}?_count=2`, ed);
          assert.equal(r.status, 200, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
          assert.equal(r.json.type, 'searchset');
          break;
        default:
          assert.fail(`${what}: not a FHIR R4 type-level interaction code`);
      }
    }

    async function exerciseSystem(code) {
      const what = `claimed system ${code}`;
      let r;
      switch (code) {
        case 'history-system':
          r = await S.req('GET', '/fhir/_history?_count=2', ed);
          assert.equal(r.status, 200, `${what}: ${r.status}`);
          assert.equal(r.json.type, 'history');
          break;
        case 'search-system':
          r = await S.req('GET', '/fhir?_count=2', ed);
          assert.equal(r.status, 200, `${what}: ${r.status}`);
          assert.equal(r.json.type, 'searchset');
          break;
        case 'transaction':
        case 'batch':
          r = await S.req('POST', '/fhir', {
            body: {
              resourceType: 'Bundle',
              type: code,
              entry: [{ fullUrl: 'urn:uuid:7f8a1a5e-0b8e-4a43-9d1e-1c7e0d2f5a01', resource: sample('Organization'), request: { method: 'POST', url: 'Organization' } }],
            },
            ...ed,
          });
          assert.equal(r.status, 200, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
          assert.equal(r.json.type, `${code}-response`);
          break;
        default:
          assert.fail(`${what}: not a FHIR R4 system interaction code`);
      }
    }

    async function conditionalCreate(T) {
      const ident = { system: 'urn:e2e:ops', value: `cc-${T}-${Date.now()}` };
      const headers = { 'If-None-Exist': `identifier=${encodeURIComponent(`${ident.system}|${ident.value}`)}` };
      const a = await S.req('POST', `/fhir/${T}`, { body: sample(T, { identifier: [ident] }), headers, ...ed });
      assert.equal(a.status, 201, `conditional create ${T}: ${a.status} ${a.text.slice(0, 300)}`);
      const b = await S.req('POST', `/fhir/${T}`, { body: sample(T, { identifier: [ident] }), headers, ...ed });
      assert.equal(b.status, 200, `conditional create ${T} again: ${b.status} ${b.text.slice(0, 300)}`);
    }

    async function conditionalUpdate(T) {
      const ident = { system: 'urn:e2e:ops', value: `cu-${T}-${Date.now()}` };
      const q = `identifier=${encodeURIComponent(`${ident.system}|${ident.value}`)}`;
      const a = await S.req('PUT', `/fhir/${T}?${q}`, { body: sample(T, { identifier: [ident] }), ...ed });
      assert.equal(a.status, 201, `conditional update ${T} (create): ${a.status} ${a.text.slice(0, 300)}`);
      const b = await S.req('PUT', `/fhir/${T}?${q}`, { body: sample(T, { identifier: [ident] }), ...ed });
      assert.equal(b.status, 200, `conditional update ${T} (update): ${b.status} ${b.text.slice(0, 300)}`);
    }
  });

  describe('readiness without a database', () => {
    let db;
    let srv;
    after(async () => {
      if (srv) await srv.stop('SIGKILL');
      if (db) await dropDatabase(db.dbname).catch(() => {});
    });

    it('an unmigrated database: /readyz is 503 until `mahali migrate` (or serve migrated it itself)', async () => {
      db = await createDatabase('ops_unmigrated');
      srv = await startServe(['--listen', '127.0.0.1:0', '--database', db.conninfo]);
      const first = await request(srv.base, 'GET', '/readyz');
      assert.ok([200, 503].includes(first.status), `/readyz: ${first.status}`);
      if (first.status === 503) {
        assert.equal((await request(srv.base, 'GET', '/healthz')).status, 200, '/healthz is 200 while not ready');
        await runOk(BIN, ['migrate', '--database', db.conninfo], { timeout: 120000 });
        await waitFor(async () => (await request(srv.base, 'GET', '/readyz')).status === 200, { timeout: 30000, what: '/readyz 200 after migrate' });
      } else console.log('# serve migrated the new database itself');
      const again = await runOk(BIN, ['migrate', '--database', db.conninfo], { timeout: 120000 });
      assert.equal(again.code, 0, 'migrate twice is a no-op');
    });

    it('database gone: /readyz → 503, /healthz → 200, FHIR → 503 OperationOutcome; the server survives', async () => {
      assert.ok(srv, 'server from the previous test');
      await dropDatabase(db.dbname);
      await waitFor(async () => (await request(srv.base, 'GET', '/readyz')).status === 503, { timeout: 30000, what: '/readyz 503 after DROP DATABASE' });
      assert.equal((await request(srv.base, 'GET', '/healthz')).status, 200);
      const r = await request(srv.base, 'GET', '/fhir/Location/x');
      assertOutcome(r, 503, undefined, { what: 'read with the database gone' });
      assert.ok(srv.running(), 'serve still running');
    });

    it('SIGINT stops the server cleanly (exit 0)', async () => {
      const st = await srv.stop('SIGINT');
      srv = null;
      assert.equal(st.code, 0, `exit ${JSON.stringify(st)}`);
    });
  });

  describe('cli', () => {
    it('mahali --help and --version exit 0', async () => {
      const h = await run(BIN, ['--help']);
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout + h.stderr, /serve/);
      const v = await run(BIN, ['--version']);
      assert.equal(v.code, 0, v.stderr);
      assert.match(v.stdout, /\d+\.\d+\.\d+/);
    });
    for (const cmd of ['serve', 'db', 'token', 'migrate']) {
      it(`mahali ${cmd} --help exits 0`, async () => {
        const h = await run(BIN, [cmd, '--help']);
        assert.equal(h.code, 0, `${cmd} --help: exit ${h.code}\n${h.stderr}`);
        assert.ok((h.stdout + h.stderr).length > 20, 'prints some help');
        if (cmd === 'serve') assert.match(h.stdout + h.stderr, /--listen/);
      });
    }
    it('an unknown command or option fails with a message', async () => {
      const a = await run(BIN, ['no-such-command']);
      assert.notEqual(a.code, 0);
      assert.ok(a.stderr.length > 0, 'a message on stderr');
      const b = await run(BIN, ['serve', '--no-such-option']);
      assert.notEqual(b.code, 0);
      assert.ok(b.stderr.length > 0, 'a message on stderr');
    });
    it('serve on a port already in use fails with a message, not a hang', async () => {
      const r = await run(BIN, ['serve', '--listen', `127.0.0.1:${S.server.port}`, '--database', S.conninfo], { timeout: 30000 });
      assert.notEqual(r.code, 0);
      assert.ok(r.stderr.length > 0);
    });
  });
});
