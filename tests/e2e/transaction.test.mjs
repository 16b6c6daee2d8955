// Transactions, batches and conditional writes (mcsd.md §7 ITI-130, §8.6-8.7; RELIABILITY.md
// rules 2-3): POST [base] with Bundle transaction|batch (POST/PUT/DELETE/GET, conditional
// urls, ifMatch, ifNoneExist, urn:uuid references resolved everywhere, R4 order DELETE → POST →
// PUT → GET, references between entries in any order), all-or-nothing transactions whose error
// names Bundle.entry[i], per-entry batch results, the 1000-entry cap (413), conditional
// create/update/delete over plain HTTP, the race (64 parallel conditional creates of one
// identifier → exactly one resource, every round) and atomicity (entry k of N fails in various
// ways → nothing of the bundle persisted, searched and in history), each with a negative control
// that plants the defect through plain API calls and proves the check catches it. Prints
//   race: duplicates=0 rounds=R writers=64
//   atomicity: partial=0 bundles=B
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { SHARED_DIR, assertOutcome, e2eSkipReason, useServer } from './lib/server.mjs';
import { runSearch } from './lib/searchset.mjs';

const skip = e2eSkipReason();
const MCSD_BUNDLE = path.join(SHARED_DIR, 'conformance', 'mcsd-json', 'Bundle-Example-MCSD.json');
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const TX = 'https://test.example.org/tx';
const RACE = 'https://test.example.org/race';
const TYPES7 = ['Organization', 'Location', 'HealthcareService', 'Practitioner', 'PractitionerRole', 'Endpoint', 'OrganizationAffiliation'];

const urn = () => `urn:uuid:${randomUUID()}`;
const bundle = (type, entry) => ({ resourceType: 'Bundle', type, entry });
const POST = (resource, { fullUrl = urn(), ...req } = {}) => ({ fullUrl, resource, request: { method: 'POST', url: resource.resourceType, ...req } });
const PUT = (resource, url, req = {}) => ({ resource, request: { method: 'PUT', url: url || `${resource.resourceType}/${resource.id}`, ...req } });
const DELETE = (url, req = {}) => ({ request: { method: 'DELETE', url, ...req } });
const GET = (url) => ({ request: { method: 'GET', url } });
const ident = (system, value) => [{ system, value }];
const ref = (r) => ({ reference: r });

/** A minimal valid resource of a type, with an identifier. */
function minimal(type, system, value, extra = {}) {
  const identifier = ident(system, value);
  const base = {
    Organization: { resourceType: 'Organization', identifier, active: true, name: `Org ${value}` },
    Location: { resourceType: 'Location', identifier, status: 'active', name: `Location ${value}` },
    HealthcareService: { resourceType: 'HealthcareService', identifier, active: true, name: `Service ${value}` },
    Practitioner: { resourceType: 'Practitioner', identifier, active: true, name: [{ family: 'Race', given: [value] }] },
    PractitionerRole: { resourceType: 'PractitionerRole', identifier, active: true, code: [{ text: 'nurse' }] },
    Endpoint: {
      resourceType: 'Endpoint',
      identifier,
      status: 'active',
      connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
      payloadType: [{ text: 'any' }],
      address: `https://${value.toLowerCase()}.example.org/fhir`,
    },
    OrganizationAffiliation: { resourceType: 'OrganizationAffiliation', identifier, active: true, code: [{ text: 'partner' }] },
  }[type];
  return { ...base, ...extra };
}

/** Parse `Type/id/_history/n` (relative or absolute) from a location. */
function parseLocation(loc) {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})\/_history\/([^/]+)$/.exec(loc || '');
  return m ? { type: m[1], id: m[2], version: m[3] } : null;
}

/** Check a transaction/batch-response entry: status code, location, etag, lastModified. */
function checkResponseEntry(e, code, what, { type } = {}) {
  assert.ok(e?.response, `${what}: no response`);
  assert.match(e.response.status || '', new RegExp(`^${code}( |$)`), `${what}: response.status ${e.response.status}, expected ${code}`);
  if (code === 200 || code === 201) {
    if (e.response.location !== undefined || code === 201) {
      const loc = parseLocation(e.response.location);
      assert.ok(loc, `${what}: response.location ${e.response.location} is not Type/id/_history/n`);
      if (type) assert.equal(loc.type, type, `${what}: response.location type`);
      assert.equal(e.response.etag, `W/"${loc.version}"`, `${what}: response.etag vs location`);
      assert.match(e.response.lastModified || '', INSTANT, `${what}: response.lastModified`);
      return loc;
    }
  }
  return null;
}

/** Every Reference.reference in a JSON value (to look for urn:uuid left behind). */
function references(v, out = []) {
  if (Array.isArray(v)) v.forEach((x) => references(x, out));
  else if (v && typeof v === 'object') {
    if (typeof v.reference === 'string') out.push(v.reference);
    Object.values(v).forEach((x) => references(x, out));
  }
  return out;
}

describe('transactions, batches and conditional writes', { skip }, () => {
  const S = useServer('transaction');
  const tx = (body, as = 'editor', opts = {}) => S.req('POST', '/fhir', { body, as, timeout: 120000, ...opts });
  const read = (type, id) => S.req('GET', `/fhir/${type}/${id}`, { as: 'reader' });
  const count = async (type, query, { schema = true } = {}) => {
    const r = await runSearch(S, type, query, { as: 'reader', follow: false, schema });
    assert.equal(r.status, 200, `${r.what}: ${r.first.text.slice(0, 300)}`);
    return r.total;
  };

  describe('transaction', () => {
    it('creates with urn:uuid references resolved everywhere (in any order), updates with ifMatch, deletes, reads; response in request order', async () => {
      const existing = await S.create(minimal('Location', TX, 'T1-existing'));
      const doomed = await S.create(minimal('HealthcareService', TX, 'T1-doomed'));
      const [uOrg, uParent, uChild, uHs, uPrac, uEp] = [urn(), urn(), urn(), urn(), urn(), urn()];
      const entries = [
        // the child refers to its parent, which comes later in the bundle
        POST(minimal('Location', TX, 'T1-child', { managingOrganization: ref(uOrg), partOf: ref(uParent) }), { fullUrl: uChild }),
        POST(minimal('Organization', TX, 'T1-org', { endpoint: [ref(uEp)] }), { fullUrl: uOrg }),
        POST(minimal('Location', TX, 'T1-parent', { managingOrganization: ref(uOrg) }), { fullUrl: uParent }),
        POST(minimal('HealthcareService', TX, 'T1-hs', { providedBy: ref(uOrg), location: [ref(uChild), ref(uParent)] }), { fullUrl: uHs }),
        POST(minimal('Practitioner', TX, 'T1-prac'), { fullUrl: uPrac }),
        POST(minimal('PractitionerRole', TX, 'T1-role', { practitioner: ref(uPrac), organization: ref(uOrg), location: [ref(uChild)], healthcareService: [ref(uHs)], endpoint: [ref(uEp)] })),
        POST(minimal('Endpoint', TX, 'T1-ep', { managingOrganization: ref(uOrg) }), { fullUrl: uEp }),
        POST(minimal('OrganizationAffiliation', TX, 'T1-aff', { organization: ref(uOrg), participatingOrganization: ref(uOrg), location: [ref(uParent)], endpoint: [ref(uEp)] })),
        PUT({ ...existing.resource, meta: undefined, name: 'T1 existing renamed', partOf: ref(uParent) }, undefined, { ifMatch: 'W/"1"' }),
        DELETE(`HealthcareService/${doomed.id}`),
        GET(`Location/${existing.id}`),
      ];
      const r = await tx(bundle('transaction', entries), 'admin');
      assert.equal(r.status, 200, r.text.slice(0, 1500));
      assert.equal(r.json.resourceType, 'Bundle');
      assert.equal(r.json.type, 'transaction-response');
      assert.equal(r.json.entry?.length, entries.length, 'one response entry per request entry');
      const ids = {};
      const fullUrls = [uChild, uOrg, uParent, uHs, uPrac, null, uEp, null];
      for (let i = 0; i < 8; i++) {
        const t = entries[i].resource.resourceType;
        const loc = checkResponseEntry(r.json.entry[i], 201, `entry[${i}] POST ${t}`, { type: t });
        assert.equal(loc.version, '1');
        if (fullUrls[i]) ids[fullUrls[i]] = `${t}/${loc.id}`;
        ids[`entry${i}`] = `${t}/${loc.id}`;
      }
      const put = checkResponseEntry(r.json.entry[8], 200, 'entry[8] PUT', { type: 'Location' });
      assert.equal(put.version, '2');
      assert.match(r.json.entry[9].response.status, /^(200|204)( |$)/, `entry[9] DELETE: ${r.json.entry[9].response.status}`);
      assert.match(r.json.entry[10].response.status, /^200( |$)/, 'entry[10] GET');
      // GET runs after the PUT (R4 order): it sees the new name
      assert.equal(r.json.entry[10].resource?.name, 'T1 existing renamed', 'the GET entry runs after the PUT');
      // every reference rewritten; no urn:uuid left anywhere
      const want = {
        0: { 'managingOrganization.reference': ids[uOrg], 'partOf.reference': ids[uParent] },
        1: { 'endpoint.0.reference': ids[uEp] },
        2: { 'managingOrganization.reference': ids[uOrg] },
        3: { 'providedBy.reference': ids[uOrg], 'location.0.reference': ids[uChild], 'location.1.reference': ids[uParent] },
        5: { 'practitioner.reference': ids[uPrac], 'organization.reference': ids[uOrg], 'location.0.reference': ids[uChild], 'healthcareService.0.reference': ids[uHs], 'endpoint.0.reference': ids[uEp] },
        6: { 'managingOrganization.reference': ids[uOrg] },
        7: { 'organization.reference': ids[uOrg], 'participatingOrganization.reference': ids[uOrg], 'location.0.reference': ids[uParent], 'endpoint.0.reference': ids[uEp] },
      };
      for (const [i, paths] of Object.entries(want)) {
        const [t, id] = ids[`entry${i}`].split('/');
        const g = await read(t, id);
        assert.equal(g.status, 200, `read ${t}/${id}`);
        for (const [p, v] of Object.entries(paths)) {
          const got = p.split('.').reduce((o, k) => o?.[k], g.json);
          assert.equal(got, v, `${t}/${id} ${p}`);
        }
        assert.deepEqual(references(g.json).filter((s) => s.startsWith('urn:uuid:')), [], `${t}/${id} keeps a urn:uuid reference`);
      }
      const ex = await read('Location', existing.id);
      assert.equal(ex.json.partOf.reference, ids[uParent], 'PUT entry reference resolved');
      assert.equal(ex.json.meta.versionId, '2');
      assert.equal((await read('HealthcareService', doomed.id)).status, 410, 'DELETE entry applied');
    });

    it('R4 order DELETE, POST, PUT, GET: a DELETE frees the identifier a POST reuses; GET sees the PUT', async () => {
      const old = await S.create(minimal('Location', TX, 'T2-reused'));
      const other = await S.create(minimal('Organization', TX, 'T2-other'));
      const r = await tx(
        bundle('transaction', [
          GET(`Organization/${other.id}`),
          PUT({ ...other.resource, meta: undefined, name: 'T2 renamed' }),
          POST(minimal('Location', TX, 'T2-reused', { name: 'T2 new' })),
          DELETE(`Location/${old.id}`),
        ]),
        'admin',
      );
      assert.equal(r.status, 200, r.text.slice(0, 1000));
      assert.match(r.json.entry[0].response.status, /^200( |$)/);
      assert.equal(r.json.entry[0].resource?.name, 'T2 renamed', 'the GET (run last) sees the PUT');
      checkResponseEntry(r.json.entry[1], 200, 'entry[1] PUT', { type: 'Organization' });
      const loc = checkResponseEntry(r.json.entry[2], 201, 'entry[2] POST', { type: 'Location' });
      assert.match(r.json.entry[3].response.status, /^(200|204)( |$)/);
      assert.equal((await read('Location', old.id)).status, 410);
      assert.equal((await read('Location', loc.id)).json.name, 'T2 new');
    });

    it('ifNoneExist inside a transaction: a match is reused (200) and urn:uuid references point to it', async () => {
      const org = await S.create(minimal('Organization', TX, 'T3-org'));
      const u = urn();
      const r = await tx(
        bundle('transaction', [
          POST(minimal('Organization', TX, 'T3-org'), { fullUrl: u, ifNoneExist: `identifier=${TX}|T3-org` }),
          POST(minimal('Location', TX, 'T3-loc', { managingOrganization: ref(u) })),
        ]),
      );
      assert.equal(r.status, 200, r.text.slice(0, 1000));
      const e0 = r.json.entry[0];
      assert.match(e0.response.status, /^200( |$)/, `ifNoneExist match: ${e0.response.status}`);
      const l0 = parseLocation(e0.response.location);
      if (l0) assert.equal(l0.id, org.id);
      const loc = checkResponseEntry(r.json.entry[1], 201, 'entry[1]', { type: 'Location' });
      const g = await read('Location', loc.id);
      assert.equal(g.json.managingOrganization.reference, `Organization/${org.id}`, 'urn:uuid of a matched ifNoneExist resolves to the existing resource');
      assert.equal(await count('Organization', `identifier=${TX}|T3-org`), 1);
      assert.equal((await read('Organization', org.id)).json.meta.versionId, '1', 'no new version of the matched resource');
    });

    for (const [label, q] of [
      ['query percent-encoded', (v) => `identifier=${encodeURIComponent(`${TX}|${v}`)}`],
      ['query as clients write it (system URL with / unencoded)', (v) => `identifier=${TX}|${v}`],
    ]) it(`conditional update and delete entries (Type?query), ${label}`, async () => {
      const tag = label.startsWith('query percent') ? 'T4' : 'T5';
      const a = await S.create(minimal('HealthcareService', TX, `${tag}-a`));
      const d = await S.create(minimal('Endpoint', TX, `${tag}-d`));
      const r = await tx(
        bundle('transaction', [
          PUT(minimal('HealthcareService', TX, `${tag}-a`, { name: 'T4 updated' }), `HealthcareService?${q(`${tag}-a`)}`),
          PUT(minimal('HealthcareService', TX, `${tag}-new`), `HealthcareService?${q(`${tag}-new`)}`),
          DELETE(`Endpoint?${q(`${tag}-d`)}`),
          DELETE(`Endpoint?${q(`${tag}-nothing`)}`),
        ]),
        'admin',
      );
      assert.equal(r.status, 200, r.text.slice(0, 1000));
      const up = checkResponseEntry(r.json.entry[0], 200, 'conditional update, 1 match', { type: 'HealthcareService' });
      assert.equal(up.id, a.id);
      assert.equal(up.version, '2');
      checkResponseEntry(r.json.entry[1], 201, 'conditional update, 0 matches', { type: 'HealthcareService' });
      assert.match(r.json.entry[2].response.status, /^(200|204)( |$)/);
      assert.match(r.json.entry[3].response.status, /^(200|204)( |$)/, 'conditional delete of nothing is a no-op');
      assert.equal((await read('HealthcareService', a.id)).json.name, 'T4 updated');
      assert.equal((await read('Endpoint', d.id)).status, 410);
      assert.equal(await count('HealthcareService', `identifier=${TX}|${tag}-new`), 1);
    });

    it('a resource with a code outside a required binding (Location.status) is rejected, naming the entry; nothing persisted', async () => {
      const r = await tx(bundle('transaction', [POST(minimal('Organization', TX, 'T8-org')), POST(minimal('Location', TX, 'T8-bad', { status: 'bogus-status' }))]));
      const persisted = (await count('Organization', `identifier=${TX}|T8-org`)) + (await count('Location', `identifier=${TX}|T8-bad`, { schema: false }));
      assertOutcome(r, [400, 422], undefined, { what: 'transaction with Location.status=bogus-status', expression: 'Bundle.entry[1]' });
      assert.equal(persisted, 0);
    });

    it('1000 entries are accepted; 1001 → 413 and nothing persisted', async () => {
      const many = (n, tag) => bundle('transaction', Array.from({ length: n }, (_, k) => POST({ resourceType: 'Organization', identifier: ident(`${TX}/${tag}`, String(k)), name: `Cap ${tag} ${k}` })));
      const big = await tx(many(1001, 'over'));
      assertOutcome(big, 413, undefined, { what: 'transaction of 1001 entries' });
      assert.equal(await count('Organization', `identifier=${TX}/over|`), 0, 'a rejected 1001-entry transaction persisted something');
      const ok = await tx(many(1000, 'cap'));
      assert.equal(ok.status, 200, ok.text.slice(0, 500));
      assert.equal(ok.json.entry.length, 1000);
      assert.equal(await count('Organization', `identifier=${TX}/cap|`), 1000);
      const bigBatch = await tx({ ...many(1001, 'overb'), type: 'batch' });
      assertOutcome(bigBatch, 413, undefined, { what: 'batch of 1001 entries' });
    });

    it('access: anonymous 401, reader 403, a DELETE entry needs admin (editor → 403, nothing persisted)', async () => {
      const victim = await S.create(minimal('Endpoint', TX, 'T6-victim'));
      const b = () => bundle('transaction', [POST(minimal('Organization', TX, 'T6-org')), DELETE(`Endpoint/${victim.id}`)]);
      assertOutcome(await S.req('POST', '/fhir', { body: b() }), 401, undefined, { what: 'anonymous transaction' });
      assertOutcome(await tx(b(), 'reader'), 403, undefined, { what: 'reader transaction' });
      assertOutcome(await tx(b(), 'editor'), 403, undefined, { what: 'editor transaction with a DELETE' });
      assert.equal(await count('Organization', `identifier=${TX}|T6-org`), 0, 'a refused transaction persisted its POST');
      assert.equal((await read('Endpoint', victim.id)).status, 200);
    });

    it('malformed bundles → 400 OperationOutcome', async () => {
      const cases = [
        ['not a Bundle', { resourceType: 'Organization', name: 'x' }],
        ['type collection', bundle('collection', [POST(minimal('Organization', TX, 'T7-a'))])],
        ['entry without request', bundle('transaction', [{ fullUrl: urn(), resource: minimal('Organization', TX, 'T7-b') }])],
        ['unknown method', bundle('transaction', [{ resource: minimal('Organization', TX, 'T7-c'), request: { method: 'FROB', url: 'Organization' } }])],
        ['POST url of another type', bundle('transaction', [POST(minimal('Organization', TX, 'T7-d'), { url: 'Location' })])],
        ['PUT without id in url', bundle('transaction', [PUT(minimal('Organization', TX, 'T7-e'), 'Organization')])],
      ];
      for (const [what, body] of cases) {
        const r = await tx(body);
        assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
        assert.equal(r.json?.resourceType, 'OperationOutcome', `${what}: ${r.text.slice(0, 300)}`);
      }
      assert.equal(await count('Organization', `identifier=${TX}|T7-a,${TX}|T7-b,${TX}|T7-c,${TX}|T7-d,${TX}|T7-e`), 0);
    });

    it('the mCSD example Bundle (a transaction) loads as is', { skip: existsSync(MCSD_BUNDLE) ? false : `../shared absent: ${MCSD_BUNDLE}` }, async () => {
      const b = JSON.parse(readFileSync(MCSD_BUNDLE, 'utf8'));
      assert.equal(b.type, 'transaction');
      const r = await tx(b);
      assert.equal(r.status, 200, r.text.slice(0, 1500));
      assert.equal(r.json.type, 'transaction-response');
      assert.equal(r.json.entry.length, b.entry.length);
      for (const [i, e] of r.json.entry.entries()) {
        const method = b.entry[i].request.method;
        const loc = checkResponseEntry(e, method === 'POST' ? 201 : e.response.status.slice(0, 3) === '201' ? 201 : 200, `mCSD entry[${i}] ${method} ${b.entry[i].request.url}`);
        const g = await read(loc.type, loc.id);
        assert.equal(g.status, 200, `read ${loc.type}/${loc.id}`);
        assert.deepEqual(references(g.json).filter((s) => s.startsWith('urn:uuid:')), [], `${loc.type}/${loc.id} keeps a urn:uuid reference`);
      }
    });
  });

  describe('batch', () => {
    it('entries succeed or fail one by one, each with response.status and an outcome for failures', async () => {
      const existing = await S.create(minimal('Organization', TX, 'B1-existing'));
      const entries = [
        POST(minimal('Organization', TX, 'B1-ok')),
        POST(minimal('Location', TX, 'B1-bad', { position: { latitude: 91, longitude: 0 } })),
        PUT({ ...existing.resource, meta: undefined, name: 'B1 renamed' }),
        GET('Organization/does-not-exist-b1'),
        POST(minimal('Location', TX, 'B1-dangling', { managingOrganization: ref('Organization/does-not-exist-b1') })),
        PUT({ ...existing.resource, meta: undefined, name: 'B1 stale' }, undefined, { ifMatch: 'W/"1"' }),
        GET(`Organization/${existing.id}`),
      ];
      const r = await tx(bundle('batch', entries));
      assert.equal(r.status, 200, r.text.slice(0, 1000));
      assert.equal(r.json.type, 'batch-response');
      assert.equal(r.json.entry.length, entries.length);
      const e = r.json.entry;
      checkResponseEntry(e[0], 201, 'batch entry[0] POST', { type: 'Organization' });
      assert.match(e[1].response.status, /^(400|422)( |$)/, `batch entry[1] invalid: ${e[1].response.status}`);
      assert.equal(e[1].response.outcome?.resourceType, 'OperationOutcome', 'batch entry[1]: response.outcome');
      checkResponseEntry(e[2], 200, 'batch entry[2] PUT', { type: 'Organization' });
      assert.match(e[3].response.status, /^404( |$)/, `batch entry[3] GET missing: ${e[3].response.status}`);
      assert.equal(e[3].response.outcome?.resourceType, 'OperationOutcome');
      assert.match(e[4].response.status, /^422( |$)/, `batch entry[4] dangling reference: ${e[4].response.status}`);
      assert.equal(e[4].response.outcome?.issue?.[0]?.code, 'not-found');
      assert.match(e[5].response.status, /^412( |$)/, `batch entry[5] stale ifMatch: ${e[5].response.status}`);
      assert.match(e[6].response.status, /^200( |$)/);
      assert.equal(e[6].resource?.name, 'B1 renamed', 'the batch GET sees the batch PUT');
      assert.equal(await count('Organization', `identifier=${TX}|B1-ok`), 1);
      assert.equal(await count('Location', `identifier=${TX}|B1-bad,${TX}|B1-dangling`), 0);
      const g = await read('Organization', existing.id);
      assert.equal(g.json.name, 'B1 renamed');
      assert.equal(g.json.meta.versionId, '2', 'the stale PUT made no version');
    });
  });

  describe('conditional create / update / delete over HTTP', () => {
    it('If-None-Exist: 0 matches → 201, 1 → 200 with the existing resource and no new version, >1 → 412', async () => {
      const h = { 'If-None-Exist': `identifier=${TX}|C1` };
      const a = await S.req('POST', '/fhir/HealthcareService', { as: 'editor', body: minimal('HealthcareService', TX, 'C1'), headers: h });
      assert.equal(a.status, 201, a.text);
      const b = await S.req('POST', '/fhir/HealthcareService', { as: 'editor', body: minimal('HealthcareService', TX, 'C1', { name: 'changed' }), headers: h });
      assert.equal(b.status, 200, b.text);
      assert.equal(b.json?.id, a.json.id, '200 returns the existing resource');
      assert.equal(b.json?.name, a.json.name, 'the existing resource unchanged');
      const hist = await S.req('GET', `/fhir/HealthcareService/${a.json.id}/_history`, { as: 'reader' });
      assert.equal(hist.json.entry.length, 1, 'no new version');
      await S.create(minimal('HealthcareService', TX, 'C1-twin-1', { name: 'C1 twin' }));
      await S.create(minimal('HealthcareService', TX, 'C1-twin-2', { name: 'C1 twin' }));
      const c = await S.req('POST', '/fhir/HealthcareService', { as: 'editor', body: minimal('HealthcareService', TX, 'C1-3'), headers: { 'If-None-Exist': 'name:exact=C1 twin' } });
      assertOutcome(c, 412, undefined, { what: 'If-None-Exist with 2 matches' });
      assert.equal(await count('HealthcareService', `identifier=${TX}|C1-3`), 0);
    });

    it('PUT Type?identifier: 0 → 201 create, 1 → 200 update, >1 → 412', async () => {
      const url = `/fhir/Location?identifier=${encodeURIComponent(`${TX}|C2`)}`;
      const a = await S.req('PUT', url, { as: 'editor', body: minimal('Location', TX, 'C2') });
      assert.equal(a.status, 201, a.text);
      const b = await S.req('PUT', url, { as: 'editor', body: minimal('Location', TX, 'C2', { name: 'C2 updated' }) });
      assert.equal(b.status, 200, b.text);
      assert.equal(b.json.id, a.json.id);
      assert.equal(b.json.meta.versionId, '2');
      await S.create(minimal('Location', TX, 'C2-twin-1', { name: 'C2 twin' }));
      await S.create(minimal('Location', TX, 'C2-twin-2', { name: 'C2 twin' }));
      const c = await S.req('PUT', `/fhir/Location?name:exact=${encodeURIComponent('C2 twin')}`, { as: 'editor', body: minimal('Location', TX, 'C2-3') });
      assertOutcome(c, 412, undefined, { what: 'conditional update with 2 matches' });
      assert.equal(await count('Location', `identifier=${TX}|C2-3`), 0);
    });

    it('DELETE Type?identifier: 0 → 200/204 no-op, 1 → deleted (410), >1 → 412', async () => {
      const none = await S.req('DELETE', `/fhir/Endpoint?identifier=${encodeURIComponent(`${TX}|C3-none`)}`, { as: 'admin' });
      assert.ok([200, 204].includes(none.status), `no match: ${none.status} ${none.text}`);
      const one = await S.create(minimal('Endpoint', TX, 'C3'));
      const d = await S.req('DELETE', `/fhir/Endpoint?identifier=${encodeURIComponent(`${TX}|C3`)}`, { as: 'admin' });
      assert.ok([200, 204].includes(d.status), `one match: ${d.status} ${d.text}`);
      assert.equal((await read('Endpoint', one.id)).status, 410);
      const t1 = await S.create(minimal('Endpoint', TX, 'C3-twin-1', { name: 'C3 twin' }));
      const t2 = await S.create(minimal('Endpoint', TX, 'C3-twin-2', { name: 'C3 twin' }));
      const m = await S.req('DELETE', `/fhir/Endpoint?name=${encodeURIComponent('C3 twin')}`, { as: 'admin' });
      assertOutcome(m, 412, undefined, { what: 'conditional delete with 2 matches' });
      assert.equal((await read('Endpoint', t1.id)).status, 200);
      assert.equal((await read('Endpoint', t2.id)).status, 200);
      assertOutcome(await S.req('DELETE', `/fhir/Endpoint?identifier=${encodeURIComponent(`${TX}|C3-twin-1`)}`, { as: 'editor' }), 403, undefined, { what: 'conditional delete as editor' });
    });
  });

  // ---- race ---------------------------------------------------------------------------------------
  describe('race: 64 parallel conditional creates of one identifier', () => {
    const WRITERS = 64;
    let duplicates = 0;
    let rounds = 0;

    /** How many live resources carry the identifier (what a duplicate check reads). */
    const live = (type, value) => count(type, `identifier=${RACE}|${value}`);

    /** One round: fire WRITERS requests at once; returns {statuses, ids, found}. */
    async function round(type, value, kind) {
      const body = minimal(type, RACE, value);
      const fire = () => {
        if (kind === 'create') return S.req('POST', `/fhir/${type}`, { as: 'editor', body, agent: false, timeout: 60000, headers: { 'If-None-Exist': `identifier=${RACE}|${value}` } });
        if (kind === 'update') return S.req('PUT', `/fhir/${type}?identifier=${encodeURIComponent(`${RACE}|${value}`)}`, { as: 'editor', body, agent: false, timeout: 60000 });
        return S.req('POST', '/fhir', { as: 'editor', agent: false, timeout: 60000, body: bundle('transaction', [POST(body, { ifNoneExist: `identifier=${RACE}|${value}` })]) });
      };
      const rs = await Promise.all(Array.from({ length: WRITERS }, fire));
      const statuses = rs.map((r) => (kind === 'transaction' && r.status === 200 ? Number(r.json.entry[0].response.status.slice(0, 3)) : r.status));
      const ids = rs.map((r) => (kind === 'transaction' ? parseLocation(r.json?.entry?.[0]?.response?.location)?.id : r.json?.id));
      return { statuses, ids, found: await live(type, value), texts: rs.map((r) => r.text.slice(0, 200)) };
    }

    const plan = [
      ...TYPES7.map((t) => [t, 'create']),
      ['Location', 'transaction'],
      ['HealthcareService', 'transaction'],
      ['Organization', 'update'],
      ['Endpoint', 'update'],
      ['HealthcareService', 'create'],
      ['Practitioner', 'create'],
    ];
    for (const [k, [type, kind]] of plan.entries()) {
      it(`round ${k + 1}: ${type} ${kind === 'create' ? 'POST + If-None-Exist' : kind === 'update' ? 'PUT ?identifier' : 'transaction ifNoneExist'}`, async () => {
        const value = `R${k + 1}-${type}`;
        const r = await round(type, value, kind);
        rounds++;
        duplicates += Math.max(0, r.found - 1);
        const created = r.statuses.filter((s) => s === 201).length;
        const reused = r.statuses.filter((s) => s === 200).length;
        const other = r.statuses.filter((s) => s !== 201 && s !== 200);
        assert.equal(r.found, 1, `${type} ${kind}: ${r.found} live resources with one identifier after ${WRITERS} parallel conditional writes (statuses ${JSON.stringify(tally(r.statuses))})`);
        assert.deepEqual(other, [], `${type} ${kind}: unexpected statuses ${JSON.stringify(tally(r.statuses))}: ${r.texts.find((t, i) => ![200, 201].includes(r.statuses[i]))}`);
        assert.equal(created, 1, `${type} ${kind}: ${created} writers got 201 (statuses ${JSON.stringify(tally(r.statuses))})`);
        if (kind !== 'update') assert.equal(reused, WRITERS - 1);
        if (kind !== 'update') assert.equal(new Set(r.ids).size, 1, `${type} ${kind}: writers were given different ids: ${[...new Set(r.ids)].slice(0, 5)}`);
      });
    }

    it('negative control: a duplicate planted through plain POSTs is counted', async () => {
      // HealthcareService identifiers are not unique by rule: two plain creates make a duplicate
      await S.create(minimal('HealthcareService', RACE, 'planted'));
      await S.create(minimal('HealthcareService', RACE, 'planted'));
      const found = await live('HealthcareService', 'planted');
      assert.equal(found, 2, 'the duplicate check must see the planted duplicate');
      // and without If-None-Exist, 8 parallel plain POSTs of one Location identifier: one wins, 409 for the rest
      const rs = await Promise.all(Array.from({ length: 8 }, () => S.req('POST', '/fhir/Location', { as: 'editor', agent: false, body: minimal('Location', RACE, 'plain') })));
      assert.deepEqual(tally(rs.map((r) => r.status)), { 201: 1, 409: 7 }, 'identifier uniqueness under parallel plain creates');
      for (const r of rs.filter((x) => x.status === 409)) assert.equal(r.json.issue[0].code, 'duplicate');
      assert.equal(await live('Location', 'plain'), 1);
    });

    it('prints the race figure', () => {
      console.log(`race: duplicates=${duplicates} rounds=${rounds} writers=${WRITERS}`);
      assert.equal(duplicates, 0);
      assert.equal(rounds, plan.length, 'every round ran');
    });
  });

  // ---- atomicity ----------------------------------------------------------------------------------
  describe('atomicity: entry k of N fails → nothing of the bundle persists', () => {
    const N = 6;
    let partial = 0; // refused bundles that left something behind
    let accepted = 0; // bundles with a failing entry that were committed whole
    let bundles = 0;
    let sharedOrg;
    let referencedOrg;
    let takenLoc;
    let twin;

    before(async () => {
      sharedOrg = await S.create(minimal('Organization', TX, 'A-shared'));
      referencedOrg = await S.create(minimal('Organization', TX, 'A-referenced'));
      await S.create(minimal('Location', TX, 'A-referrer', { managingOrganization: ref(`Organization/${referencedOrg.id}`) }));
      takenLoc = await S.create(minimal('Location', TX, 'A-taken'));
      await S.create(minimal('HealthcareService', TX, 'A-twin-1', { name: 'Atom twin' }));
      twin = await S.create(minimal('HealthcareService', TX, 'A-twin-2', { name: 'Atom twin' }));
    });

    /** Everything a bundle may have left: {created: n, changed: [...], history: n}. */
    async function traces(tag, fixtures, since) {
      const sys = `${TX}/${tag}`;
      let created = 0;
      for (const t of TYPES7) created += await count(t, `identifier=${sys}|`, { schema: false });
      const changed = [];
      for (const f of fixtures) {
        const g = await read(f.type, f.id);
        if (g.status !== 200) changed.push(`${f.type}/${f.id} → ${g.status}`);
        else if (g.json.meta.versionId !== f.version) changed.push(`${f.type}/${f.id} version ${f.version} → ${g.json.meta.versionId}`);
      }
      const h = await S.req('GET', `/fhir/_history?_since=${encodeURIComponent(since)}&_count=500`, { as: 'admin' });
      assert.equal(h.status, 200, h.text.slice(0, 300));
      const history = (h.json.entry || []).length;
      return { created, changed, history, any: created > 0 || changed.length > 0 || history > 0 };
    }

    /** Fixtures a bundle touches (pre-existing): updated and deleted by normal entries. */
    async function fixtures(tag) {
      const upd = await S.create(minimal('Location', TX, `${tag}-upd`));
      const del = await S.create(minimal('HealthcareService', TX, `${tag}-del`));
      const stale = await S.create(minimal('Endpoint', TX, `${tag}-stale`));
      const s2 = await S.req('PUT', `/fhir/Endpoint/${stale.id}`, { as: 'editor', body: { ...stale.resource, meta: undefined, name: 'v2' } });
      assert.equal(s2.status, 200);
      const cycA = await S.create(minimal('Location', TX, `${tag}-cyc-a`));
      const cycB = await S.create(minimal('Location', TX, `${tag}-cyc-b`, { partOf: ref(`Location/${cycA.id}`) }));
      return { upd, del, stale: { ...stale, resource: s2.json }, cycA, cycB, last: cycB.resource.meta.lastUpdated };
    }

    /** A normal (valid) entry i of bundle `tag`. */
    function normal(tag, i, fx, orgUrn) {
      const sys = `${TX}/${tag}`;
      switch (i % 4) {
        case 0:
          return POST(minimal('Organization', sys, `E${i}`), { fullUrl: i === 0 ? orgUrn : urn() });
        case 1:
          return POST(minimal('Location', sys, `E${i}`, { managingOrganization: ref(orgUrn) }));
        case 2:
          return PUT({ ...fx.upd.resource, meta: undefined, name: `${tag} E${i}`, identifier: ident(sys, `E${i}`) }, undefined, { ifMatch: 'W/"1"' });
        default:
          return DELETE(`HealthcareService/${fx.del.id}`);
      }
    }

    const MODES = {
      'validation error (latitude 91)': { status: [400, 422], entry: (tag) => POST(minimal('Location', `${TX}/${tag}`, 'bad', { position: { latitude: 91, longitude: 0 } })) },
      'validation error (unknown element)': { status: [400, 422], entry: (tag) => POST(minimal('Organization', `${TX}/${tag}`, 'bad', { colour: 'blue' })) },
      'dangling reference': { status: [422], entry: (tag) => POST(minimal('Location', `${TX}/${tag}`, 'dangling', { managingOrganization: ref(`Organization/missing-${tag}`) })) },
      'stale ifMatch': { status: [412], entry: (tag, fx) => PUT({ ...fx.stale.resource, meta: undefined, name: 'stale write' }, undefined, { ifMatch: 'W/"1"' }) },
      'duplicate identifier (existing)': { status: [409], entry: (tag) => POST(minimal('Location', TX, 'A-taken', { name: `dup ${tag}` })) },
      'conditional create with 2 matches': { status: [412], entry: (tag) => POST(minimal('HealthcareService', `${TX}/${tag}`, 'cond'), { ifNoneExist: 'name:exact=Atom twin' }) },
      'delete of a referenced resource': { status: [409], entry: () => DELETE(`Organization/${referencedOrg.id}`) },
      'partOf cycle': { status: [422], entry: (tag, fx) => PUT({ ...fx.cycA.resource, meta: undefined, partOf: ref(`Location/${fx.cycB.id}`) }) },
      'unknown type in url': { status: [400, 404], entry: (tag) => ({ resource: minimal('Organization', `${TX}/${tag}`, 'x'), request: { method: 'POST', url: 'Nope' } }) },
    };
    const positions = [0, Math.floor(N / 2), N - 1];

    for (const [mode, spec] of Object.entries(MODES)) {
      for (const k of positions) {
        it(`${mode} at entry ${k} of ${N}`, async () => {
          const tag = `B${bundles + 1}`;
          bundles++;
          const fx = await fixtures(tag);
          const orgUrn = urn();
          const entries = Array.from({ length: N }, (_, i) => (i === k ? spec.entry(tag, fx) : normal(tag, i, fx, orgUrn)));
          if (k === 0) {
            // the Location entries then refer to an existing Organization instead
            for (const e of entries) if (e.resource?.managingOrganization?.reference === orgUrn) e.resource.managingOrganization = ref(`Organization/${sharedOrg.id}`);
          }
          const since = new Date(Date.parse(fx.last) + 1).toISOString();
          const r = await tx(bundle('transaction', entries), 'admin');
          const t = await traces(tag, [fx.upd, fx.del, fx.stale, fx.cycA, fx.cycB, { type: 'Location', id: takenLoc.id, version: '1' }, { type: 'Organization', id: referencedOrg.id, version: '1' }, { type: 'HealthcareService', id: twin.id, version: '1' }].map((f) => ({ type: f.type || f.resource.resourceType, id: f.id, version: f.version || f.resource.meta.versionId })), since);
          if (r.status >= 400 && t.any) partial++;
          if (r.status < 400) accepted++;
          assertOutcome(r, spec.status, undefined, { what: `${mode} at entry ${k} (the whole bundle was ${r.status < 400 ? 'accepted' : 'refused'})` });
          assert.equal(t.any, false, `${mode} at ${k}: partial write: ${t.created} created, changed [${t.changed}], ${t.history} history entries since ${since} (response ${r.status})`);
          const exprs = r.json.issue.flatMap((i) => [...(i.expression || []), ...(i.location || [])]);
          assert.ok(exprs.some((x) => x === `Bundle.entry[${k}]` || x.startsWith(`Bundle.entry[${k}].`)), `${mode} at ${k}: no issue.expression names Bundle.entry[${k}]: ${JSON.stringify(exprs)}`);
        });
      }
    }

    it('two entries changing the same resource → 400, nothing persisted', async () => {
      const tag = `B${++bundles}`;
      const fx = await fixtures(tag);
      const since = new Date(Date.parse(fx.last) + 1).toISOString();
      const r = await tx(
        bundle('transaction', [
          POST(minimal('Organization', `${TX}/${tag}`, 'E0')),
          PUT({ ...fx.upd.resource, meta: undefined, name: 'one' }),
          PUT({ ...fx.upd.resource, meta: undefined, name: 'two' }),
        ]),
      );
      const t = await traces(tag, [{ type: 'Location', id: fx.upd.id, version: '1' }], since);
      if (r.status >= 400 && t.any) partial++;
      if (r.status < 400) accepted++;
      assertOutcome(r, 400, undefined, { what: 'same resource twice' });
      assert.equal(t.any, false, `partial write: ${JSON.stringify(t)}`);
    });

    it('negative control: the same bundle done as plain API calls that stop at entry k is detected as partial', async () => {
      const tag = 'NEG';
      const fx = await fixtures(tag);
      const since = new Date(Date.parse(fx.last) + 1).toISOString();
      // entries 0..2 as plain calls (they persist), then entry 3 fails
      const org = await S.create(minimal('Organization', `${TX}/${tag}`, 'E0'));
      await S.create(minimal('Location', `${TX}/${tag}`, 'E1', { managingOrganization: ref(`Organization/${org.id}`) }));
      const up = await S.req('PUT', `/fhir/Location/${fx.upd.id}`, { as: 'editor', body: { ...fx.upd.resource, meta: undefined, name: 'NEG E2' }, headers: { 'If-Match': 'W/"1"' } });
      assert.equal(up.status, 200);
      const bad = await S.req('POST', '/fhir/Location', { as: 'editor', body: minimal('Location', `${TX}/${tag}`, 'bad', { position: { latitude: 91, longitude: 0 } }) });
      assert.ok(bad.status >= 400);
      const t = await traces(tag, [{ type: 'Location', id: fx.upd.id, version: '1' }], since);
      assert.equal(t.any, true, 'the partial-write check must detect a planted partial write');
      assert.equal(t.created, 2);
      assert.deepEqual(t.changed, [`Location/${fx.upd.id} version 1 → 2`]);
      assert.ok(t.history >= 2, `history entries of the planted writes: ${t.history}`);
    });

    it('prints the atomicity figure', () => {
      console.log(`atomicity: partial=${partial} bundles=${bundles}`);
      if (accepted) console.log(`atomicity: ${accepted} bundle(s) with an invalid entry were accepted whole`);
      assert.equal(partial, 0);
      assert.equal(accepted, 0);
      assert.equal(bundles, Object.keys(MODES).length * positions.length + 1);
    });
  });
});

function tally(xs) {
  const t = {};
  for (const x of xs) t[x] = (t[x] || 0) + 1;
  return t;
}
