// A real third-party client against the server: the npm fhir-kit-client drives the
// CapabilityStatement, create, read, update, search (GET and POST _search) with paging through
// its nextPage/prevPage, a transaction and a batch, delete, and error handling, end to end.
// Every response body it receives is also checked against the FHIR R4 JSON schema.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it, before } from 'node:test';
import { assertSchemaValid } from './lib/schema.mjs';
import { e2eSkipReason, useServer } from './lib/server.mjs';

let Client;
let RESPONSE_KEY;
let importError;
try {
  ({ Client, RESPONSE_KEY } = await import('fhir-kit-client'));
} catch (e) {
  importError = e;
}
const skip = e2eSkipReason() || (importError ? `fhir-kit-client is not installed (npm install --prefix tests): ${importError.message}` : undefined);

const SYS = 'https://test.example.org/fhirkit';
const TIMEOUT = 30000;
const opts = (extra = {}) => ({ signal: AbortSignal.timeout(TIMEOUT), ...extra });

/** Status of a fhir-kit-client result (hidden Response) or error. */
const statusOf = (x) => x?.[RESPONSE_KEY]?.status ?? x?.response?.status;

/** Await a client call that must fail; resolves the error. */
async function rejects(p, what) {
  try {
    const v = await p;
    assert.fail(`${what}: expected an error, got ${statusOf(v)} ${JSON.stringify(v).slice(0, 300)}`);
  } catch (e) {
    if (e.code === 'ERR_ASSERTION') throw e;
    return e;
  }
}

describe('fhir-kit-client end to end', { skip }, () => {
  const S = useServer('fhirkit');
  let editor;
  let admin;
  let reader;
  let anon;
  const created = [];
  let last; // the last page of the latest paging walk

  before(() => {
    // One connection per request, as lib/server.mjs does: with keep-alive, Node's fetch (undici)
    // can reuse a socket the server is closing for idleness and fail with "other side closed".
    const mk = (token) => new Client({ baseUrl: `${S.base}/fhir`, customHeaders: { Connection: 'close', ...(token ? { Authorization: `Bearer ${token}` } : {}) } });
    editor = mk(S.tokens.editor);
    admin = mk(S.tokens.admin);
    reader = mk(S.tokens.reader);
    anon = mk();
  });

  /** Schema-check what the client returned (it parses the body itself). */
  const valid = (res, what) => {
    assertSchemaValid(res, what);
    return res;
  };

  it('reads the CapabilityStatement', async () => {
    const cs = valid(await anon.capabilityStatement(opts()), 'metadata');
    assert.equal(cs.resourceType, 'CapabilityStatement');
    assert.equal(cs.fhirVersion, '4.0.1');
    const loc = cs.rest[0].resource.find((r) => r.type === 'Location');
    assert.ok(loc.interaction.some((i) => i.code === 'search-type'));
  });

  it('creates 25 Locations (201, server ids)', async () => {
    for (let k = 0; k < 25; k++) {
      const body = { resourceType: 'Location', status: 'active', name: `Kit Location ${String(k).padStart(2, '0')}`, identifier: [{ system: SYS, value: `L${k}` }] };
      const res = valid(await editor.create({ resourceType: 'Location', body, options: opts() }), 'create');
      assert.equal(statusOf(res), 201);
      assert.equal(res.resourceType, 'Location');
      assert.ok(res.id);
      assert.equal(res.meta.versionId, '1');
      assert.equal(res[RESPONSE_KEY].headers.get('etag'), 'W/"1"');
      created.push(res);
    }
  });

  it('reads one back and updates it (version 2)', async () => {
    const first = created[0];
    const r = valid(await anon.read({ resourceType: 'Location', id: first.id, options: opts() }), 'read');
    assert.deepEqual(r, first);
    const body = { ...r, name: 'Kit Location 00 renamed' };
    delete body.meta;
    const u = valid(await editor.update({ resourceType: 'Location', id: first.id, body, options: opts({ headers: { 'If-Match': 'W/"1"' } }) }), 'update');
    assert.equal(statusOf(u), 200);
    assert.equal(u.meta.versionId, '2');
    assert.equal(u.name, 'Kit Location 00 renamed');
    created[0] = u;
    const v1 = valid(await anon.vread({ resourceType: 'Location', id: first.id, version: '1', options: opts() }), 'vread');
    assert.equal(v1.name, 'Kit Location 00');
    const stale = await rejects(editor.update({ resourceType: 'Location', id: first.id, body, options: opts({ headers: { 'If-Match': 'W/"1"' } }) }), 'stale If-Match');
    assert.equal(stale.response.status, 412);
    assert.equal(stale.response.data.resourceType, 'OperationOutcome');
  });

  for (const post of [false, true]) {
    it(`searches with paging through nextPage and prevPage (${post ? 'POST _search' : 'GET'}, _count=7, _sort=name)`, async () => {
      const searchParams = { identifier: `${SYS}|`, _count: 7, _sort: 'name' };
      let page = valid(await anon.search({ resourceType: 'Location', searchParams, options: opts({ postSearch: post }) }), 'search');
      assert.equal(page.type, 'searchset');
      assert.equal(page.total, 25);
      const pages = [];
      for (let n = 0; page && n < 10; n++) {
        pages.push(page.entry.map((e) => e.resource.id));
        const next = anon.nextPage({ bundle: page, options: opts() });
        page = next ? valid(await next, 'nextPage') : undefined;
        if (page) last = page;
      }
      assert.deepEqual(pages.map((p) => p.length), [7, 7, 7, 4]);
      const want = [...created].sort((a, b) => (a.name < b.name ? -1 : 1)).map((r) => r.id);
      assert.deepEqual(pages.flat(), want, 'all 25 in name order, each once');
      // back from the last page with prevPage
      let back = last;
      for (let k = pages.length - 2; k >= 0; k--) {
        const prev = anon.prevPage({ bundle: back, options: opts() });
        assert.ok(prev, `no previous link on page ${k + 2}`);
        back = valid(await prev, 'prevPage');
        assert.deepEqual(back.entry.map((e) => e.resource.id), pages[k], `prevPage to page ${k + 1}`);
      }
      assert.equal(anon.prevPage({ bundle: back, options: opts() }), undefined, 'the first page has no previous link');
    });
  }

  it('runs a transaction with urn:uuid references, then reads the results', async () => {
    const org = `urn:uuid:${randomUUID()}`;
    const prac = `urn:uuid:${randomUUID()}`;
    const body = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: org, resource: { resourceType: 'Organization', name: 'Kit Hospital', identifier: [{ system: SYS, value: 'O1' }] }, request: { method: 'POST', url: 'Organization' } },
        { resource: { resourceType: 'Location', status: 'active', name: 'Kit Hospital site', managingOrganization: { reference: org } }, request: { method: 'POST', url: 'Location' } },
        { fullUrl: prac, resource: { resourceType: 'Practitioner', name: [{ family: 'Kit', given: ['Ada'] }] }, request: { method: 'POST', url: 'Practitioner' } },
        { resource: { resourceType: 'PractitionerRole', practitioner: { reference: prac }, organization: { reference: org }, code: [{ text: 'nurse' }] }, request: { method: 'POST', url: 'PractitionerRole' } },
        { resource: { ...created[1], meta: undefined, name: 'Kit Location 01 via transaction' }, request: { method: 'PUT', url: `Location/${created[1].id}`, ifMatch: 'W/"1"' } },
      ],
    };
    const res = valid(await editor.transaction({ body: JSON.parse(JSON.stringify(body)), options: opts() }), 'transaction');
    assert.equal(statusOf(res), 200);
    assert.equal(res.type, 'transaction-response');
    assert.deepEqual(res.entry.map((e) => e.response.status.slice(0, 3)), ['201', '201', '201', '201', '200']);
    const ids = res.entry.map((e) => /([A-Za-z]+)\/([^/]+)\/_history\/(\d+)$/.exec(e.response.location).slice(1, 3));
    const [orgT, orgId] = ids[0];
    const [, pracId] = ids[2];
    const loc = valid(await anon.read({ resourceType: ids[1][0], id: ids[1][1], options: opts() }), 'read Location');
    assert.equal(loc.managingOrganization.reference, `${orgT}/${orgId}`);
    const role = valid(await reader.read({ resourceType: 'PractitionerRole', id: ids[3][1], options: opts() }), 'read PractitionerRole');
    assert.equal(role.practitioner.reference, `Practitioner/${pracId}`);
    assert.equal(role.organization.reference, `Organization/${orgId}`);
    const upd = valid(await anon.read({ resourceType: 'Location', id: created[1].id, options: opts() }), 'read updated');
    assert.equal(upd.name, 'Kit Location 01 via transaction');
    assert.equal(upd.meta.versionId, '2');
    // and the chain search finds the new role through the client
    const found = valid(await reader.search({ resourceType: 'PractitionerRole', searchParams: { 'practitioner.family': 'kit' }, options: opts() }), 'chain search');
    assert.deepEqual(found.entry.map((e) => e.resource.id), [ids[3][1]]);
  });

  it('a failing transaction is one error and changes nothing; a batch reports per entry', async () => {
    const bad = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Organization', name: 'Kit never', identifier: [{ system: SYS, value: 'NEVER' }] }, request: { method: 'POST', url: 'Organization' } },
        { resource: { resourceType: 'Location', status: 'active', name: 'Kit dangling', managingOrganization: { reference: 'Organization/kit-missing' } }, request: { method: 'POST', url: 'Location' } },
      ],
    };
    const e = await rejects(editor.transaction({ body: bad, options: opts() }), 'failing transaction');
    assert.equal(e.response.status, 422);
    assert.equal(e.response.data.resourceType, 'OperationOutcome');
    const none = valid(await anon.search({ resourceType: 'Organization', searchParams: { identifier: `${SYS}|NEVER` }, options: opts() }), 'search');
    assert.equal(none.total, 0);
    const b = valid(await editor.batch({ body: { ...bad, type: 'batch' }, options: opts() }), 'batch');
    assert.equal(b.type, 'batch-response');
    assert.equal(b.entry[0].response.status.slice(0, 3), '201');
    assert.equal(b.entry[1].response.status.slice(0, 3), '422');
  });

  it('deletes (admin) and reports errors as exceptions with the OperationOutcome', async () => {
    const victim = created[24];
    const forbidden = await rejects(editor.delete({ resourceType: 'Location', id: victim.id, options: opts() }), 'editor delete');
    assert.equal(forbidden.response.status, 403);
    const d = await admin.delete({ resourceType: 'Location', id: victim.id, options: opts() });
    assert.ok([200, 204].includes(statusOf(d)), `delete → ${statusOf(d)}`);
    const gone = await rejects(anon.read({ resourceType: 'Location', id: victim.id, options: opts() }), 'read deleted');
    assert.equal(gone.response.status, 410);
    const missing = await rejects(anon.read({ resourceType: 'Location', id: 'no-such-kit-id', options: opts() }), 'read missing');
    assert.equal(missing.response.status, 404);
    assert.equal(missing.response.data.issue[0].code, 'not-found');
    const personal = await rejects(anon.search({ resourceType: 'Practitioner', searchParams: { family: 'kit' }, options: opts() }), 'anonymous Practitioner search');
    assert.equal(personal.response.status, 401);
    const after = valid(await anon.search({ resourceType: 'Location', searchParams: { identifier: `${SYS}|`, _summary: 'count' }, options: opts() }), 'count');
    assert.equal(after.total, 24);
  });
});
