// Authorization matrix: anonymous / reader / hr / editor / admin × read facility side
// (Organization, Location, HealthcareService, Endpoint, OrganizationAffiliation), read
// practitioner side (Practitioner, PractitionerRole), system history, and writes (POST, PUT,
// DELETE). hr is RELIABILITY.md's "HR system token": reads like a reader, writes Practitioner and
// PractitionerRole only, may not delete. Every cell is one test. 401 carries WWW-Authenticate;
// tokens in the query string are never accepted. (privacy.test.mjs covers what each role sees.)
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PROTECTED_TYPES, PUBLIC_TYPES, TYPES, assertOutcome, e2eSkipReason, sample, useServer } from './lib/server.mjs';

const skip = e2eSkipReason();
const IDENTITIES = ['anonymous', 'reader', 'hr', 'editor', 'admin'];
const CAN_WRITE = new Set(['editor', 'admin']);
/** May who create and update resources of type T? hr: health workers only. */
const canWrite = (who, T) => CAN_WRITE.has(who) || (who === 'hr' && PROTECTED_TYPES.includes(T));

describe('auth', { skip }, () => {
  const S = useServer('auth', { roles: ['reader', 'hr', 'editor', 'admin'] });
  const ids = {}; // type -> id of a resource created in before()
  let passed = 0;
  let total = 0;

  before(async () => {
    for (const T of TYPES) ids[T] = (await S.create(sample(T), 'admin')).id;
  });

  const as = (who) => (who === 'anonymous' ? {} : { as: who });

  /** 401 with an OperationOutcome and a Bearer WWW-Authenticate challenge. */
  function assert401(r, what) {
    assertOutcome(r, 401, ['login', 'security', 'unknown', 'expired'], { what });
    const wa = r.headers['www-authenticate'];
    assert.ok(wa, `${what}: 401 without WWW-Authenticate`);
    assert.match(wa, /^Bearer\b/i, `${what}: WWW-Authenticate ${wa}`);
  }
  function assert403(r, what) {
    assertOutcome(r, 403, ['forbidden', 'security'], { what });
  }

  /** One matrix cell: counted for the summary line. */
  function cell(name, fn) {
    total++;
    it(name, async () => {
      await fn();
      passed++;
    });
  }

  describe('read facility side (anonymous allowed)', () => {
    for (const T of PUBLIC_TYPES)
      for (const who of IDENTITIES) {
        cell(`${who} reads ${T} (read, vread, instance and type history) → 200`, async () => {
          for (const p of [`/fhir/${T}/${ids[T]}`, `/fhir/${T}/${ids[T]}/_history/1`, `/fhir/${T}/${ids[T]}/_history`, `/fhir/${T}/_history`]) {
            const r = await S.req('GET', p, as(who));
            assert.equal(r.status, 200, `${who} GET ${p}: ${r.status} ${r.text.slice(0, 300)}`);
          }
        });
      }
  });

  describe('read practitioner side (token needed)', () => {
    for (const T of PROTECTED_TYPES)
      for (const who of IDENTITIES) {
        const exp = who === 'anonymous' ? 401 : 200;
        cell(`${who} reads ${T} (read, vread, instance and type history) → ${exp}`, async () => {
          for (const p of [`/fhir/${T}/${ids[T]}`, `/fhir/${T}/${ids[T]}/_history/1`, `/fhir/${T}/${ids[T]}/_history`, `/fhir/${T}/_history`]) {
            const r = await S.req('GET', p, as(who));
            if (exp === 401) assert401(r, `${who} GET ${p}`);
            else assert.equal(r.status, 200, `${who} GET ${p}: ${r.status} ${r.text.slice(0, 300)}`);
          }
        });
      }
    cell('anonymous read of an unknown Practitioner id is 401, not 404 (no existence oracle)', async () => {
      assert401(await S.req('GET', '/fhir/Practitioner/does-not-exist'), 'anonymous GET unknown Practitioner');
    });
  });

  describe('system history (token needed)', () => {
    for (const who of IDENTITIES) {
      const exp = who === 'anonymous' ? 401 : 200;
      cell(`${who} GET /fhir/_history → ${exp}`, async () => {
        const r = await S.req('GET', '/fhir/_history', as(who));
        if (exp === 401) assert401(r, `${who} GET /fhir/_history`);
        else {
          assert.equal(r.status, 200, r.text.slice(0, 300));
          assert.equal(r.json.type, 'history');
        }
      });
    }
  });

  describe('writes (editor or admin; hr: Practitioner and PractitionerRole only)', () => {
    for (const T of TYPES)
      for (const who of IDENTITIES) {
        const exp = who === 'anonymous' ? 401 : canWrite(who, T) ? 'ok' : 403;
        const check = (r, okStatuses, what) => {
          if (exp === 401) assert401(r, what);
          else if (exp === 403) assert403(r, what);
          else assert.ok(okStatuses.includes(r.status), `${what}: ${r.status} ${r.text.slice(0, 300)}`);
        };
        cell(`${who} POST ${T} → ${exp === 'ok' ? 201 : exp}`, async () => {
          const r = await S.req('POST', `/fhir/${T}`, { body: sample(T), ...as(who) });
          check(r, [201], `${who} POST ${T}`);
        });
        cell(`${who} PUT ${T} (update) → ${exp === 'ok' ? 200 : exp}`, async () => {
          const r = await S.req('PUT', `/fhir/${T}/${ids[T]}`, { body: sample(T, { id: ids[T] }), ...as(who) });
          check(r, [200], `${who} PUT ${T}`);
        });
        cell(`${who} PUT ${T} (create) → ${exp === 'ok' ? 201 : exp}`, async () => {
          const nid = `auth-${who}-${T.toLowerCase()}`;
          const r = await S.req('PUT', `/fhir/${T}/${nid}`, { body: sample(T, { id: nid }), ...as(who) });
          check(r, [201], `${who} PUT-create ${T}`);
          const g = await S.req('GET', `/fhir/${T}/${nid}`, { as: 'admin' });
          assert.equal(g.status, exp === 'ok' ? 200 : 404, `after ${who} PUT-create ${T}: GET → ${g.status}`);
        });
        // RELIABILITY.md's matrix: delete is for admins only (an editor closes a facility by
        // setting its status instead).
        const delExp = who === 'anonymous' ? 401 : who === 'admin' ? 'ok' : 403;
        cell(`${who} DELETE ${T} → ${delExp === 'ok' ? '200/204' : delExp}`, async () => {
          const victim = (await S.create(sample(T), 'admin')).id;
          const r = await S.req('DELETE', `/fhir/${T}/${victim}`, as(who));
          if (delExp === 401) assert401(r, `${who} DELETE ${T}`);
          else if (delExp === 403) assert403(r, `${who} DELETE ${T}`);
          else assert.ok([200, 204].includes(r.status), `${who} DELETE ${T}: ${r.status} ${r.text.slice(0, 300)}`);
          const g = await S.req('GET', `/fhir/${T}/${victim}`, { as: 'admin' });
          assert.equal(g.status, delExp === 'ok' ? 410 : 200, `after ${who} DELETE ${T}: GET → ${g.status}`);
        });
      }
  });

  describe('writes inside a transaction Bundle (same rules as direct writes)', () => {
    for (const T of ['Location', 'Practitioner'])
      for (const who of IDENTITIES) {
        const exp = who === 'anonymous' ? 401 : canWrite(who, T) ? 200 : 403;
        cell(`${who} transaction POST ${T} → ${exp}`, async () => {
          const name = `auth-tx-${who}-${T.toLowerCase()}`;
          const res = T === 'Location' ? sample(T, { name }) : sample(T, { name: [{ family: name }] });
          const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: res, request: { method: 'POST', url: T } }] };
          const r = await S.req('POST', '/fhir', { body: bundle, ...as(who) });
          if (exp === 401) assert401(r, `${who} transaction ${T}`);
          else if (exp === 403) assert403(r, `${who} transaction ${T}`);
          else {
            assert.equal(r.status, 200, `${who} transaction ${T}: ${r.status} ${r.text.slice(0, 300)}`);
            assert.match(r.json.entry[0].response.status, /^201\b/);
          }
          const q = T === 'Location' ? `name:exact=${name}` : `family=${name}`;
          const g = await S.req('GET', `/fhir/${T}?${q}`, { as: 'admin' });
          assert.equal((g.json.entry || []).length, exp === 200 ? 1 : 0, `after ${who} transaction ${T}`);
        });
      }
  });

  describe('tokens', () => {
    cell('an invalid bearer token on a write → 401 with WWW-Authenticate', async () => {
      assert401(await S.req('POST', '/fhir/Location', { body: sample('Location'), token: 'not-a-real-token' }), 'invalid token POST');
      assert401(await S.req('POST', '/fhir/Location', { body: sample('Location'), token: `${S.tokens.editor}x` }), 'altered token POST');
    });
    cell('an invalid bearer token on a practitioner read → 401', async () => {
      assert401(await S.req('GET', `/fhir/Practitioner/${ids.Practitioner}`, { token: 'not-a-real-token' }), 'invalid token GET Practitioner');
    });
    cell('?access_token= is ignored: a write with the editor token in the query string → 401', async () => {
      const tok = encodeURIComponent(S.tokens.editor);
      assert401(await S.req('POST', `/fhir/Location?access_token=${tok}`, { body: sample('Location') }), 'POST ?access_token=');
      assert401(await S.req('GET', `/fhir/Practitioner/${ids.Practitioner}?access_token=${tok}`), 'GET Practitioner ?access_token=');
      assert401(await S.req('GET', `/fhir/_history?access_token=${tok}`), 'GET /fhir/_history ?access_token=');
    });
    cell('Authorization schemes other than Bearer → 401', async () => {
      for (const h of ['Basic ZWRpdG9yOmVkaXRvcg==', 'Bearer', 'Bearer ', `Token ${S.tokens.editor}`, S.tokens.editor]) {
        const r = await S.req('POST', '/fhir/Location', { body: sample('Location'), headers: { Authorization: h } });
        assert401(r, `Authorization: ${h.slice(0, 20)}`);
      }
    });
    cell('the auth scheme is case-insensitive (RFC 7235): "bearer <editor token>" may write', async () => {
      const r = await S.req('POST', '/fhir/Location', { body: sample('Location'), headers: { Authorization: `bearer ${S.tokens.editor}` } });
      assert.equal(r.status, 201, r.text.slice(0, 300));
    });
    cell('authentication is checked before the body: anonymous invalid JSON → 401, reader invalid JSON → 403', async () => {
      assert401(await S.req('POST', '/fhir/Location', { body: '{not json' }), 'anonymous invalid JSON');
      assert403(await S.req('POST', '/fhir/Location', { body: '{not json', as: 'reader' }), 'reader invalid JSON');
    });
    cell('a reader gets 403 with If-Match too, and nothing changes', async () => {
      const r = await S.req('PUT', `/fhir/Location/${ids.Location}`, {
        body: sample('Location', { id: ids.Location, name: 'reader was here' }),
        headers: { 'If-Match': 'W/"1"' },
        as: 'reader',
      });
      assert403(r, 'reader PUT If-Match');
      const g = await S.req('GET', `/fhir/Location/${ids.Location}`);
      assert.notEqual(g.json.name, 'reader was here');
    });
    cell('error bodies never echo the token', async () => {
      const r = await S.req('POST', '/fhir/Location', { body: '{bad', as: 'editor' });
      assert.ok(!r.text.includes(S.tokens.editor), 'token echoed in an error');
      const r2 = await S.req('POST', '/fhir/Location', { body: sample('Location'), token: `${S.tokens.admin}zz` });
      assert.ok(!r2.text.includes(S.tokens.admin), 'token echoed in a 401');
    });
  });

  after(() => {
    console.log(`# auth: cells passed ${passed}/${total}`);
  });
});
