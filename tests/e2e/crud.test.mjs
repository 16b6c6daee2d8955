// FHIR REST interactions for the seven mCSD resource types (mcsd.md §8): create, read, vread,
// update (+ If-Match, update-as-create), delete (410 afterwards), Prefer variants, history at
// instance, type and system level with _since and _count paging, client meta ignored, decimal
// precision (raw text) and an SQL-injection-looking string round trip.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { numberText, parseLossless } from './lib/json.mjs';
import { spawn } from 'node:child_process';
import { TYPES, assertOutcome, e2eSkipReason, psql as psqlCommand, readConninfo, request, sample, useServer, waitFor, withDbname } from './lib/server.mjs';

const skip = e2eSkipReason();
const HTTP_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const INSTANT = /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/;
const INJECTION = "O'Brien'); DROP TABLE location;--";

/** Change something meaningful in a resource of each type. */
function mutate(res, tag) {
  const r = structuredClone(res);
  delete r.meta; // client meta is ignored anyway; tested on its own
  switch (r.resourceType) {
    case 'Organization':
    case 'Location':
    case 'HealthcareService':
      r.name = `${r.resourceType} ${tag}`;
      break;
    case 'Practitioner':
      r.name = [{ family: `Family ${tag}`, given: ['Aminata'] }];
      break;
    case 'PractitionerRole':
    case 'OrganizationAffiliation':
      r.code = [{ text: `code ${tag}` }];
      break;
    case 'Endpoint':
      r.address = `https://example.org/fhir/${tag}`;
      break;
    default:
      throw new Error(r.resourceType);
  }
  return r;
}

/** The resource without server-owned meta, for content comparison. */
function content(res) {
  const r = structuredClone(res);
  delete r.id;
  if (r.meta) {
    delete r.meta.versionId;
    delete r.meta.lastUpdated;
    if (Object.keys(r.meta).length === 0) delete r.meta;
  }
  return r;
}

function versionOf(etag) {
  const m = /^(?:W\/)?"([^"]+)"$/.exec(etag || '');
  return m ? m[1] : undefined;
}

/** Headers of a create/read/update response: ETag W/"v", Last-Modified matching meta.lastUpdated. */
function checkVersionHeaders(r, version, what) {
  assert.equal(r.headers.etag, `W/"${version}"`, `${what}: ETag`);
  const lm = r.headers['last-modified'];
  assert.match(lm || '', HTTP_DATE, `${what}: Last-Modified ${lm}`);
  if (r.json && r.json.meta) {
    assert.equal(r.json.meta.versionId, String(version), `${what}: meta.versionId`);
    assert.match(r.json.meta.lastUpdated || '', INSTANT, `${what}: meta.lastUpdated`);
    assert.equal(Date.parse(lm), Math.floor(Date.parse(r.json.meta.lastUpdated) / 1000) * 1000, `${what}: Last-Modified ${lm} vs meta.lastUpdated ${r.json.meta.lastUpdated}`);
  }
}

function linkOf(bundle, rel) {
  return (bundle.link || []).find((l) => l.relation === rel)?.url;
}

/** Key of a history entry: Type/id/version. */
function entryKey(e) {
  const ver = versionOf(e.response && e.response.etag);
  let type;
  let id;
  if (e.resource) {
    type = e.resource.resourceType;
    id = e.resource.id;
  } else {
    const parts = String((e.request && e.request.url) || e.fullUrl || '')
      .split('?')[0]
      .split('/');
    const k = parts.findIndex((p) => TYPES.includes(p));
    type = parts[k];
    id = parts[k + 1];
  }
  return `${type}/${id}/${ver}`;
}

/** Shape of a history Bundle and of each entry; returns the entries. */
function checkHistory(b, what) {
  assert.equal(b.resourceType, 'Bundle', what);
  assert.equal(b.type, 'history', `${what}: Bundle.type`);
  const entries = b.entry || [];
  let prev = Infinity;
  for (const e of entries) {
    const label = `${what}: entry ${entryKey(e)}`;
    assert.ok(e.request, `${label}: no request`);
    assert.ok(['POST', 'PUT', 'DELETE'].includes(e.request.method), `${label}: request.method ${e.request.method}`);
    assert.equal(typeof e.request.url, 'string', `${label}: request.url`);
    assert.ok(e.response, `${label}: no response`);
    assert.match(e.response.status || '', /^(200|201|204)\b/, `${label}: response.status`);
    assert.match(e.response.etag || '', /^W\/"[^"]+"$/, `${label}: response.etag`);
    assert.match(e.response.lastModified || '', INSTANT, `${label}: response.lastModified`);
    if (e.request.method === 'DELETE') assert.equal(e.resource, undefined, `${label}: a DELETE entry carries a resource`);
    else {
      assert.ok(e.resource, `${label}: no resource`);
      assert.equal(e.resource.meta?.versionId, versionOf(e.response.etag), `${label}: resource.meta.versionId vs response.etag`);
      assert.equal(Date.parse(e.resource.meta?.lastUpdated), Date.parse(e.response.lastModified), `${label}: meta.lastUpdated vs response.lastModified`);
    }
    const t = Date.parse(e.response.lastModified);
    assert.ok(t <= prev, `${what}: entries not newest first at ${entryKey(e)}`);
    prev = t;
  }
  return entries;
}

describe('crud', { skip }, () => {
  const S = useServer('crud');
  const ed = { as: 'editor' };
  const adm = { as: 'admin' }; // delete is admin only
  let T0; // meta.lastUpdated of the first write of this file
  const writes = []; // {key, method} of every write that made a version
  const deletes = []; // Type/id of every effective delete

  const post = async (res, opts = {}) => {
    const r = await S.req('POST', `/fhir/${res.resourceType}`, { body: res, ...ed, ...opts });
    if (r.status === 201) {
      const id = r.json?.id || /\/fhir\/[A-Za-z]+\/([^/]+)\/_history\//.exec(r.headers.location || '')?.[1];
      writes.push({ key: `${res.resourceType}/${id}/${versionOf(r.headers.etag)}`, method: 'POST' });
    }
    return r;
  };
  const put = async (res, opts = {}) => {
    const r = await S.req('PUT', `/fhir/${res.resourceType}/${res.id}`, { body: res, ...ed, ...opts });
    if (r.status === 200 || r.status === 201) writes.push({ key: `${res.resourceType}/${res.id}/${versionOf(r.headers.etag)}`, method: 'PUT' });
    return r;
  };

  before(async () => {
    const r = await post(sample('Organization', { name: 'marker' }));
    assert.equal(r.status, 201, r.text);
    T0 = r.json.meta.lastUpdated;
  });

  for (const T of TYPES) {
    describe(T, () => {
      let id;
      let created;
      let v = 0; // current version

      it('POST creates with a server id, Location, ETag, Last-Modified; client id and meta ignored', async () => {
        const body = sample(T, { id: 'client-chosen-id', meta: { versionId: '99', lastUpdated: '2001-01-01T00:00:00Z' } });
        const before = Date.now();
        const r = await post(body);
        assert.equal(r.status, 201, r.text);
        id = r.json.id;
        assert.match(id, /^[A-Za-z0-9\-.]{1,64}$/);
        assert.notEqual(id, 'client-chosen-id', 'POST must ignore the client id');
        assert.equal(r.headers.location, `${S.base}/fhir/${T}/${id}/_history/1`, 'Location header');
        checkVersionHeaders(r, 1, `POST ${T}`);
        assert.equal(r.json.meta.versionId, '1', 'client meta.versionId must be ignored');
        const lu = Date.parse(r.json.meta.lastUpdated);
        assert.ok(Math.abs(lu - before) < 5 * 60 * 1000, `meta.lastUpdated ${r.json.meta.lastUpdated} is not now: client meta.lastUpdated must be ignored`);
        assert.deepEqual(content(r.json), content(body), 'POST returns what was sent');
        created = r.json;
        v = 1;
      });

      it('GET reads it back with ETag and Last-Modified', async () => {
        const r = await S.req('GET', `/fhir/${T}/${id}`, ed);
        assert.equal(r.status, 200, r.text);
        checkVersionHeaders(r, 1, `GET ${T}`);
        assert.deepEqual(r.json, created);
      });

      it('PUT updates (200, version 2) and GET returns the new content', async () => {
        const body = mutate({ ...created, id }, 'v2');
        delete body.meta;
        const r = await put(body);
        assert.equal(r.status, 200, r.text);
        checkVersionHeaders(r, 2, `PUT ${T}`);
        assert.equal(r.json.id, id);
        assert.deepEqual(content(r.json), content(body));
        v = 2;
        const g = await S.req('GET', `/fhir/${T}/${id}`, ed);
        assert.equal(g.status, 200);
        checkVersionHeaders(g, 2, `GET ${T} after PUT`);
        assert.deepEqual(content(g.json), content(body));
        assert.ok(Date.parse(g.json.meta.lastUpdated) >= Date.parse(created.meta.lastUpdated), 'lastUpdated moves forward');
      });

      it('vread returns each version; an unknown version is 404', async () => {
        const r1 = await S.req('GET', `/fhir/${T}/${id}/_history/1`, ed);
        assert.equal(r1.status, 200, r1.text);
        checkVersionHeaders(r1, 1, `vread ${T} 1`);
        assert.deepEqual(r1.json, created);
        const r2 = await S.req('GET', `/fhir/${T}/${id}/_history/2`, ed);
        assert.equal(r2.status, 200, r2.text);
        checkVersionHeaders(r2, 2, `vread ${T} 2`);
        assert.deepEqual(content(r2.json), content(mutate(created, 'v2')));
        const r9 = await S.req('GET', `/fhir/${T}/${id}/_history/999`, ed);
        assertOutcome(r9, 404, 'not-found', { what: `vread ${T} 999` });
      });

      it('If-Match: W/"n" and "n" accepted when current; stale → 412; malformed → 400', async () => {
        let r = await put({ ...mutate(created, 'v3'), id }, { headers: { 'If-Match': `W/"${v}"` } });
        assert.equal(r.status, 200, `If-Match W/"${v}": ${r.text}`);
        checkVersionHeaders(r, v + 1, `PUT If-Match W/ ${T}`);
        v++;
        r = await put({ ...mutate(created, 'v4'), id }, { headers: { 'If-Match': `"${v}"` } });
        assert.equal(r.status, 200, `If-Match "${v}": ${r.text}`);
        checkVersionHeaders(r, v + 1, `PUT If-Match strong ${T}`);
        v++;
        r = await put({ ...mutate(created, 'stale'), id }, { headers: { 'If-Match': 'W/"1"' } });
        assertOutcome(r, 412, 'conflict', { what: `PUT ${T} If-Match W/"1" (current ${v})` });
        r = await put({ ...mutate(created, 'stale'), id }, { headers: { 'If-Match': '"1"' } });
        assertOutcome(r, 412, 'conflict', { what: `PUT ${T} If-Match "1" (current ${v})` });
        for (const bad of ['garbage', 'W/1', 'W/"', '"']) {
          r = await put({ ...mutate(created, 'bad'), id }, { headers: { 'If-Match': bad } });
          assertOutcome(r, 400, undefined, { what: `PUT ${T} If-Match ${bad}` });
        }
        const g = await S.req('GET', `/fhir/${T}/${id}`, ed);
        assert.equal(g.headers.etag, `W/"${v}"`, 'rejected PUTs must not create versions');
        assert.deepEqual(content(g.json), content(mutate(created, 'v4')));
      });

      it('Prefer: return=minimal | OperationOutcome | representation on PUT', async () => {
        let r = await put({ ...mutate(created, 'minimal'), id }, { headers: { Prefer: 'return=minimal' } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.text, '', 'return=minimal: empty body');
        assert.equal(r.headers.etag, `W/"${v + 1}"`);
        assert.match(r.headers['last-modified'] || '', HTTP_DATE);
        v++;
        r = await put({ ...mutate(created, 'oo'), id }, { headers: { Prefer: 'return=OperationOutcome' } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json?.resourceType, 'OperationOutcome', `return=OperationOutcome: ${r.text}`);
        assert.equal(r.headers.etag, `W/"${v + 1}"`);
        v++;
        r = await put({ ...mutate(created, 'repr'), id }, { headers: { Prefer: 'return=representation' } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.json?.resourceType, T);
        checkVersionHeaders(r, v + 1, `PUT ${T} return=representation`);
        v++;
      });

      it('Prefer: return=minimal | OperationOutcome | representation on POST', async () => {
        let r = await post(sample(T), { headers: { Prefer: 'return=minimal' } });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.text, '', 'return=minimal: empty body');
        assert.match(r.headers.location || '', new RegExp(`^${S.base}/fhir/${T}/[A-Za-z0-9\\-.]{1,64}/_history/1$`), 'Location');
        assert.equal(r.headers.etag, 'W/"1"');
        assert.match(r.headers['last-modified'] || '', HTTP_DATE);
        const loc = new URL(r.headers.location);
        const g = await S.req('GET', loc.pathname.replace(/\/_history\/1$/, ''), ed);
        assert.equal(g.status, 200, 'the minimal-created resource is readable at its Location');

        r = await post(sample(T), { headers: { Prefer: 'return=OperationOutcome' } });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.json?.resourceType, 'OperationOutcome', `return=OperationOutcome: ${r.text}`);
        assert.match(r.headers.location || '', /\/_history\/1$/);

        r = await post(sample(T), { headers: { Prefer: 'return=representation' } });
        assert.equal(r.status, 201, r.text);
        assert.equal(r.json?.resourceType, T);
        checkVersionHeaders(r, 1, `POST ${T} return=representation`);
      });

      it('PUT to a new id creates it (201, version 1); body id must equal the URL id', async () => {
        const newId = `e2e-${T.toLowerCase()}-put-${Date.now().toString(36)}`;
        const r = await put(sample(T, { id: newId }));
        assert.equal(r.status, 201, r.text);
        checkVersionHeaders(r, 1, `PUT-create ${T}`);
        assert.equal(r.json.id, newId);
        if (r.headers.location) assert.equal(r.headers.location, `${S.base}/fhir/${T}/${newId}/_history/1`);
        const g = await S.req('GET', `/fhir/${T}/${newId}`, ed);
        assert.equal(g.status, 200);
        assert.equal(g.json.id, newId);
        const again = await put(mutate(sample(T, { id: newId }), 'second'));
        assert.equal(again.status, 200, `second PUT on ${newId} is an update: ${again.text}`);
        checkVersionHeaders(again, 2, `PUT ${T} after PUT-create`);
      });

      it('instance history: newest first, one entry per version, _count paging via next', async () => {
        const r = await S.req('GET', `/fhir/${T}/${id}/_history`, ed);
        assert.equal(r.status, 200, r.text);
        const entries = checkHistory(r.json, `${T}/${id}/_history`);
        assert.deepEqual(
          entries.map((e) => versionOf(e.response.etag)),
          Array.from({ length: v }, (_, k) => String(v - k)),
          'versions newest first',
        );
        assert.equal(entries[entries.length - 1].request.method, 'POST');
        for (const e of entries.slice(0, -1)) assert.equal(e.request.method, 'PUT');
        assert.equal(entries[entries.length - 1].response.status.slice(0, 3), '201');
        const paged = await collect(`/fhir/${T}/${id}/_history?_count=2`, 2);
        assert.deepEqual(paged.map(entryKey), entries.map(entryKey), 'paged instance history equals the whole');
      });

      it('DELETE → 200/204; read → 410; vread of old versions still works; again → no-op; unknown → 404', async () => {
        let r = await S.req('DELETE', `/fhir/${T}/${id}`, adm);
        assert.ok([200, 204].includes(r.status), `DELETE: ${r.status} ${r.text}`);
        if (r.status === 204) assert.equal(r.text, '');
        deletes.push(`${T}/${id}`);
        r = await S.req('GET', `/fhir/${T}/${id}`, ed);
        assertOutcome(r, 410, undefined, { what: `GET deleted ${T}` });
        r = await S.req('GET', `/fhir/${T}/${id}/_history/1`, ed);
        assert.equal(r.status, 200, `vread of a version before the delete: ${r.status}`);
        r = await S.req('DELETE', `/fhir/${T}/${id}`, adm);
        assert.ok([200, 204].includes(r.status), `second DELETE: ${r.status} ${r.text}`);
        r = await S.req('DELETE', `/fhir/${T}/no-such-id-${Date.now()}`, adm);
        assertOutcome(r, 404, 'not-found', { what: `DELETE unknown ${T}` });
        r = await S.req('GET', `/fhir/${T}/no-such-id-${Date.now()}`, ed);
        assertOutcome(r, 404, 'not-found', { what: `GET unknown ${T}` });
      });

      it('instance history after DELETE starts with a DELETE entry without resource', async () => {
        const r = await S.req('GET', `/fhir/${T}/${id}/_history`, ed);
        assert.equal(r.status, 200, r.text);
        const entries = checkHistory(r.json, `${T}/${id}/_history after delete`);
        assert.equal(entries.length, v + 1, 'exactly one DELETE entry added (the second DELETE is a no-op)');
        assert.equal(entries[0].request.method, 'DELETE');
        assert.ok(Number(versionOf(entries[0].response.etag)) > v, 'the DELETE entry has a new version');
        assert.ok(entries[0].request.url.includes(`${T}/${id}`), `DELETE entry request.url ${entries[0].request.url}`);
      });
    });
  }

  describe('content', () => {
    it('decimals keep their precision (raw text 8.4800)', async () => {
      const text = '{"resourceType":"Location","name":"precision","position":{"longitude":-13.2300,"latitude":8.4800,"altitude":12.50}}';
      const r = await S.req('POST', '/fhir/Location', { body: text, ...ed });
      assert.equal(r.status, 201, r.text);
      writes.push({ key: `Location/${r.json.id}/1`, method: 'POST' });
      for (const [label, t] of [
        ['POST response', r.text],
        ['GET', (await S.req('GET', `/fhir/Location/${r.json.id}`, ed)).text],
        ['vread', (await S.req('GET', `/fhir/Location/${r.json.id}/_history/1`, ed)).text],
      ]) {
        assert.match(t, /"latitude"\s*:\s*8\.4800[,}\s]/, `${label}: latitude must be the literal 8.4800 in ${t}`);
        const v = parseLossless(t);
        assert.equal(numberText(v, ['position', 'latitude']), '8.4800', label);
        assert.equal(numberText(v, ['position', 'longitude']), '-13.2300', label);
        assert.equal(numberText(v, ['position', 'altitude']), '12.50', label);
      }
      const h = await S.req('GET', `/fhir/Location/${r.json.id}/_history`, ed);
      assert.match(h.text, /"latitude"\s*:\s*8\.4800[,}\s]/, `history: ${h.text}`);
    });

    it('an SQL-injection-looking name is stored and returned byte for byte', async () => {
      for (const T of ['Location', 'Organization']) {
        const r = await post(sample(T, { name: INJECTION, alias: [INJECTION, 'Hôpital de Makeni – 東京 😀 \\ "quoted" \t tab'] }));
        assert.equal(r.status, 201, r.text);
        const g = await S.req('GET', `/fhir/${T}/${r.json.id}`, ed);
        assert.equal(g.status, 200);
        assert.equal(g.json.name, INJECTION);
        assert.deepEqual(g.json.alias, [INJECTION, 'Hôpital de Makeni – 東京 😀 \\ "quoted" \t tab']);
      }
      const again = await post(sample('Location', { name: 'still works' }));
      assert.equal(again.status, 201, 'the location table is still there');
    });

    it('client-set meta.versionId/lastUpdated are ignored on PUT too', async () => {
      const { id } = (await post(sample('Organization'))).json;
      const r = await put(sample('Organization', { id, name: 'meta on put', meta: { versionId: '77', lastUpdated: '2001-01-01T00:00:00Z' } }));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.meta.versionId, '2');
      assert.equal(r.headers.etag, 'W/"2"');
      assert.ok(Date.parse(r.json.meta.lastUpdated) > Date.parse('2020-01-01T00:00:00Z'), r.json.meta.lastUpdated);
    });

    it('meta.profile and other client meta (tags) are kept', async () => {
      const profile = 'https://profiles.ihe.net/ITI/mCSD/StructureDefinition/IHE.mCSD.Organization';
      const type = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'prov' }] }];
      const r = await post(sample('Organization', { type, meta: { profile: [profile], tag: [{ system: 'urn:e2e', code: 't' }] } }));
      assert.equal(r.status, 201, r.text);
      const g = await S.req('GET', `/fhir/Organization/${r.json.id}`, ed);
      assert.deepEqual(g.json.meta.profile, [profile]);
      assert.deepEqual(g.json.meta.tag, [{ system: 'urn:e2e', code: 't' }]);
    });
  });

  describe('optimistic locking and races', () => {
    it('DELETE honours If-Match: stale → 412 and nothing deleted; current → deleted', async () => {
      const r = await post(sample('Organization', { name: 'delete with If-Match' }));
      assert.equal(r.status, 201);
      const id = r.json.id;
      const u = await put(sample('Organization', { id, name: 'v2' }));
      assert.equal(u.status, 200);
      const stale = await S.req('DELETE', `/fhir/Organization/${id}`, { ...adm, headers: { 'If-Match': 'W/"1"' } });
      assertOutcome(stale, 412, 'conflict', { what: 'DELETE If-Match W/"1" at version 2' });
      assert.equal((await S.req('GET', `/fhir/Organization/${id}`, ed)).status, 200, 'still there after a refused DELETE');
      const ok = await S.req('DELETE', `/fhir/Organization/${id}`, { ...adm, headers: { 'If-Match': 'W/"2"' } });
      assert.ok([200, 204].includes(ok.status), `DELETE If-Match W/"2": ${ok.status} ${ok.text}`);
      deletes.push(`Organization/${id}`);
      assertOutcome(await S.req('GET', `/fhir/Organization/${id}`, ed), 410, undefined);
    });

    it('20 concurrent PUTs with the same If-Match: exactly one wins, 19 get 412, no lost update', async () => {
      const r = await post(sample('Location', { name: 'race' }));
      assert.equal(r.status, 201);
      const id = r.json.id;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, k) => put(sample('Location', { id, name: `writer ${k}` }), { headers: { 'If-Match': 'W/"1"' } })),
      );
      const ok = results.filter((x) => x.status === 200);
      const conflicts = results.filter((x) => x.status === 412);
      const other = results.filter((x) => x.status !== 200 && x.status !== 412).map((x) => `${x.status} ${x.text.slice(0, 200)}`);
      const g = await S.req('GET', `/fhir/Location/${id}`, ed);
      const lost = ok.length === 1 && g.json.name === ok[0].json.name ? 0 : ok.length;
      console.log(`# if-match race: lost_updates=${lost} ok=${ok.length} conflicts=${conflicts.length}`);
      assert.deepEqual(other, [], 'every writer gets 200 or 412');
      assert.equal(ok.length, 1, 'exactly one If-Match writer wins');
      assert.equal(g.headers.etag, 'W/"2"');
      assert.equal(g.json.name, ok[0].json.name, 'the stored content is the winner\'s');
    });

    it('20 concurrent PUTs without If-Match: 20 distinct versions, all in the history', async () => {
      const r = await post(sample('Organization', { name: 'many writers' }));
      assert.equal(r.status, 201);
      const id = r.json.id;
      const results = await Promise.all(Array.from({ length: 20 }, (_, k) => put(sample('Organization', { id, name: `w${k}` }))));
      assert.deepEqual(results.map((x) => x.status).filter((st) => st !== 200), [], `statuses ${results.map((x) => x.status)}`);
      const versions = results.map((x) => Number(versionOf(x.headers.etag))).sort((a, b) => a - b);
      assert.deepEqual(versions, Array.from({ length: 20 }, (_, k) => k + 2), 'each PUT made its own version');
      const h = await collect(`/fhir/Organization/${id}/_history`);
      assert.equal(h.length, 21);
    });

    it('10 concurrent PUT-creates of one new id: one 201, the rest 200, one resource', async () => {
      const id = `race-create-${Date.now().toString(36)}`;
      const results = await Promise.all(Array.from({ length: 10 }, (_, k) => put(sample('HealthcareService', { id, name: `c${k}` }))));
      const st = results.map((x) => x.status).sort();
      assert.deepEqual(st, [200, 200, 200, 200, 200, 200, 200, 200, 200, 201], `statuses ${st}: ${results.find((x) => x.status >= 300)?.text.slice(0, 300)}`);
      const h = await collect(`/fhir/HealthcareService/${id}/_history`);
      assert.equal(h.length, 10);
      assert.deepEqual(h.map((e) => versionOf(e.response.etag)), ['10', '9', '8', '7', '6', '5', '4', '3', '2', '1']);
    });
  });

  /** Follow next links from url; every page ≤ pageSize entries; resolves all entries in order. */
  async function collect(url, pageSize, opts = ed) {
    const all = [];
    const seenPages = new Set();
    let next = url;
    for (let page = 0; next; page++) {
      assert.ok(page < 500, 'more than 500 pages: next links loop');
      assert.ok(!seenPages.has(next), `next link repeats: ${next}`);
      seenPages.add(next);
      const r = await request(S.base, 'GET', next, { token: S.tokens[opts.as] });
      assert.equal(r.status, 200, `GET ${next}: ${r.text.slice(0, 500)}`);
      const entries = checkHistory(r.json, `GET ${next}`);
      if (pageSize) assert.ok(entries.length <= pageSize, `page of ${entries.length} entries > _count=${pageSize} at ${next}`);
      if (r.json.link && linkOf(r.json, 'next')) assert.ok(entries.length > 0, `empty page with a next link at ${next}`);
      all.push(...entries);
      next = linkOf(r.json, 'next');
      if (next) assert.ok(new URL(next, S.base).origin === new URL(S.base).origin, `next link ${next} leaves the server`);
    }
    const keys = all.map(entryKey);
    assert.equal(new Set(keys).size, keys.length, `duplicate entries across pages: ${keys.filter((k, i) => keys.indexOf(k) !== i)}`);
    return all;
  }

  describe('history', () => {
    const since = () => encodeURIComponent(T0);
    const expectedKeys = (filter) =>
      writes
        .filter((w) => filter(w.key))
        .map((w) => w.key)
        .sort();

    it('type history with _since holds every version written since, newest first', async () => {
      for (const T of TYPES) {
        const all = await collect(`/fhir/${T}/_history?_since=${since()}`);
        for (const e of all) assert.ok(Date.parse(e.response.lastModified) >= Date.parse(T0), `entry ${entryKey(e)} older than _since`);
        const keys = all.filter((e) => e.request.method !== 'DELETE').map(entryKey).sort();
        assert.deepEqual(keys, expectedKeys((k) => k.startsWith(`${T}/`)), `${T}/_history: versions written vs listed`);
        const dels = all.filter((e) => e.request.method === 'DELETE').map((e) => entryKey(e).split('/').slice(0, 2).join('/'));
        assert.deepEqual(dels.sort(), deletes.filter((d) => d.startsWith(`${T}/`)).sort(), `${T}/_history: DELETE entries`);
      }
    });

    it('type history paged with _count=3 via next links equals the unpaged history', async () => {
      for (const T of ['Organization', 'Location']) {
        const whole = await collect(`/fhir/${T}/_history?_since=${since()}&_count=500`);
        const paged = await collect(`/fhir/${T}/_history?_since=${since()}&_count=3`, 3);
        assert.ok(whole.length > 6, `enough ${T} history to page (${whole.length})`);
        assert.deepEqual(paged.map(entryKey), whole.map(entryKey), `${T}: paged vs whole`);
      }
    });

    it('the history entry of an update-as-create (PUT to a new id) says 201 Created', async () => {
      const id = `put-create-history-${Date.now().toString(36)}`;
      const r = await put(sample('Location', { id }));
      assert.equal(r.status, 201, r.text);
      const h = await S.req('GET', `/fhir/Location/${id}/_history`, ed);
      assert.equal(h.status, 200);
      const e = h.json.entry?.[0];
      assert.equal(e?.request?.method, 'PUT');
      assert.match(e?.response?.status || '', /^201\b/, `PUT-create history entry: response.status ${e?.response?.status} (the interaction answered 201)`);
    });

    it('_count=1 gives one entry and a next link', async () => {
      const r = await S.req('GET', `/fhir/Organization/_history?_since=${since()}&_count=1`, ed);
      assert.equal(r.status, 200, r.text);
      assert.equal(checkHistory(r.json, 'Organization/_history?_count=1').length, 1);
      assert.ok(linkOf(r.json, 'next'), 'next link while more pages remain');
    });

    it('_since in the future gives an empty history; without _since the type history holds everything', async () => {
      const future = encodeURIComponent(new Date(Date.now() + 3600e3).toISOString());
      const r = await S.req('GET', `/fhir/Organization/_history?_since=${future}`, ed);
      assert.equal(r.status, 200, r.text);
      assert.equal(checkHistory(r.json, 'future _since').length, 0);
      assert.equal(linkOf(r.json, 'next'), undefined);
      const all = await collect('/fhir/Organization/_history');
      const keys = new Set(all.map(entryKey));
      for (const k of expectedKeys((k) => k.startsWith('Organization/'))) assert.ok(keys.has(k), `Organization/_history misses ${k}`);
    });

    it('_since excludes earlier versions', async () => {
      const a = await post(sample('Organization', { name: 'before mark' }));
      assert.equal(a.status, 201);
      // a second write with a strictly later lastUpdated
      let b;
      for (let k = 0; k < 50; k++) {
        b = await post(sample('Organization', { name: 'after mark' }));
        assert.equal(b.status, 201);
        if (Date.parse(b.json.meta.lastUpdated) > Date.parse(a.json.meta.lastUpdated)) break;
        await new Promise((res) => setTimeout(res, 5));
      }
      const all = await collect(`/fhir/Organization/_history?_since=${encodeURIComponent(b.json.meta.lastUpdated)}`);
      const ids = all.map((e) => e.resource?.id);
      assert.ok(ids.includes(b.json.id), '_since includes a version written at that instant');
      assert.ok(!ids.includes(a.json.id), '_since excludes a version written before');
    });

    it('an acknowledged write is in the history at once, even while an unrelated transaction is open elsewhere on the same PostgreSQL', async () => {
      // Another client of the same PostgreSQL (here: database `postgres`) holds a transaction
      // with an xid open, as a long import, pg_dump or migration elsewhere would.
      const psql = spawn('psql', ['-X', '-q', '-A', '-t', withDbname(readConninfo(), 'postgres')], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      psql.stdout.on('data', (d) => (out += d));
      psql.stdin.write("BEGIN;\nSELECT 'xid:' || pg_current_xact_id() || ' pid:' || pg_backend_pid();\nSELECT pg_sleep(20);\n");
      try {
        await waitFor(() => out.includes('xid:'), { timeout: 15000, what: 'the unrelated transaction to start' });
        const r = await post(sample('Organization', { name: 'written while another transaction is open' }));
        assert.equal(r.status, 201, r.text);
        const id = r.json.id;
        const inst = await S.req('GET', `/fhir/Organization/${id}/_history`, ed);
        assert.equal(inst.status, 200);
        assert.deepEqual(
          (inst.json.entry || []).map(entryKey),
          [`Organization/${id}/1`],
          `GET /fhir/Organization/${id}/_history right after its 201 must list version 1`,
        );
        const typ = await collect(`/fhir/Organization/_history?_since=${encodeURIComponent(r.json.meta.lastUpdated)}`);
        assert.ok(typ.map(entryKey).includes(`Organization/${id}/1`), 'type history with _since = its lastUpdated must list it');
      } finally {
        const pid = /pid:(\d+)/.exec(out)?.[1];
        if (pid) await psqlCommand(`SELECT pg_terminate_backend(${pid})`);
        psql.kill('SIGKILL');
      }
    });

    it('system history /fhir/_history with _since holds every type, paging equals the whole', async () => {
      const whole = await collect(`/fhir/_history?_since=${since()}&_count=500`);
      const keys = whole.filter((e) => e.request.method !== 'DELETE').map(entryKey).sort();
      assert.deepEqual(keys, expectedKeys(() => true), 'system history: versions written vs listed');
      assert.deepEqual(new Set(whole.map((e) => entryKey(e).split('/')[0])), new Set(TYPES));
      assert.equal(whole.filter((e) => e.request.method === 'DELETE').length, deletes.length, 'DELETE entries');
      const paged = await collect(`/fhir/_history?_since=${since()}&_count=7`, 7);
      assert.deepEqual(paged.map(entryKey), whole.map(entryKey), 'system history: paged vs whole');
    });
  });
});
