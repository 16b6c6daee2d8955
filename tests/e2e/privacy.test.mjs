// Privacy of health-worker data (issue 6 item 5; RELIABILITY.md's auth matrix; web/privacy.c):
//   - Practitioner and PractitionerRole need a token for every interaction: read, vread, search
//     (GET and POST _search), instance/type/system history, and any _include/_revinclude/_has
//     that reaches them; anonymous callers get 401 with a Bearer challenge. The facility export
//     never carries health workers; $staffing (counted from PractitionerRoles) needs a token.
//   - a reader sees a reduced Practitioner (no birthDate, photo, text, extension, non-work
//     telecom or address; meta.security REDACTED), wherever a Practitioner is returned; hr,
//     editor and admin see the whole resource; PractitionerRole is never reduced.
//   - hr writes Practitioner and PractitionerRole only: 403 on any facility-side write, directly
//     or inside a transaction (whole Bundle refused) or batch (that entry refused).
//   - bulk reads of personal resources are limited per token and minute
//     (MAHALI_PERSONAL_READ_LIMIT): 429 + Retry-After once spent; other tokens, admin tokens
//     and facility searches without includes are not affected.
// One matrix cell is one test; the last line printed is `privacy: N cells passed of M`.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  PUBLIC_TYPES,
  assertOutcome,
  createToken,
  e2eSkipReason,
  request,
  sample,
  startServe,
  useServer,
} from './lib/server.mjs';

const skip = e2eSkipReason();
const ROLES = ['reader', 'hr', 'editor', 'admin'];
const IDENTITIES = ['anonymous', ...ROLES];
const REDACTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'REDACTED' };
/** What a reader may see of a Practitioner (the README's "Privacy" list). */
const READER_KEYS = new Set([
  'resourceType',
  'id',
  'meta',
  'implicitRules',
  'language',
  'identifier',
  'active',
  'name',
  'telecom',
  'address',
  'gender',
  'qualification',
  'communication',
  'modifierExtension',
]);
/** Values that only the removed parts of the Practitioner hold: none may reach a reader. */
const SECRETS = [
  '1971-03-14', // birthDate
  'home-phone-5550', // telecom use home
  'mobile-phone-5551', // telecom use mobile
  'no-use@secret.example.org', // telecom without use
  'old-phone-5552', // telecom use old
  'Secret Home Lane', // address use home
  'Temp Secret Street', // address use temp
  'photo-secret.png', // photo
  'NarrativeSecret', // text
  'ExtSecretNationality', // extension
];
const FAMILY = 'Sesay-Privacy';

/** The Practitioner every redaction check is made against (version 1; version 2 differs in
 *  communication only, so both versions carry every secret). */
function fullPractitioner() {
  return {
    resourceType: 'Practitioner',
    meta: { security: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }] },
    implicitRules: 'http://example.org/fhir/rules',
    language: 'en',
    text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">NarrativeSecret: Fatmata Sesay, born 1971</div>' },
    extension: [{ url: 'http://example.org/fhir/StructureDefinition/nationality', valueString: 'ExtSecretNationality' }],
    modifierExtension: [{ url: 'http://example.org/fhir/StructureDefinition/on-probation', valueBoolean: false }],
    identifier: [{ system: 'http://example.org/fhir/licence', value: 'SL-NURSE-0042' }],
    active: true,
    name: [{ use: 'official', family: FAMILY, given: ['Fatmata'] }],
    telecom: [
      { system: 'phone', value: '+232-22-WORK-100', use: 'work' },
      { system: 'phone', value: 'home-phone-5550', use: 'home' },
      { system: 'phone', value: 'mobile-phone-5551', use: 'mobile' },
      { system: 'email', value: 'no-use@secret.example.org' },
      { system: 'email', value: 'f.sesay@work.example.org', use: 'work' },
      { system: 'phone', value: 'old-phone-5552', use: 'old' },
    ],
    address: [
      { use: 'home', line: ['12 Secret Home Lane'], city: 'Freetown' },
      { use: 'work', line: ['Connaught Hospital, Work Road'], city: 'Freetown' },
      { use: 'temp', line: ['Temp Secret Street'] },
    ],
    gender: 'female',
    birthDate: '1971-03-14',
    photo: [{ contentType: 'image/png', url: 'http://example.org/photo-secret.png' }],
    qualification: [{ code: { text: 'Registered nurse' }, identifier: [{ value: 'RN-7781' }] }],
    communication: [{ text: 'Krio' }],
  };
}

/** What a reader should see of full (the server's whole resource), apart from meta.security. */
function reduce(full) {
  const out = {};
  for (const [k, v] of Object.entries(full)) if (READER_KEYS.has(k)) out[k] = structuredClone(v);
  for (const k of ['telecom', 'address']) {
    if (!out[k]) continue;
    out[k] = out[k].filter((e) => e.use === 'work');
    if (out[k].length === 0) delete out[k];
  }
  return out;
}

const isRedactedLabel = (s) => s && s.system === REDACTED.system && s.code === REDACTED.code;

/** got must be exactly full reduced for a reader: every kept element unchanged, every removed one
 *  absent, and meta.security = full's labels + REDACTED. */
function assertRedacted(got, full, what) {
  assert.ok(got && got.resourceType === 'Practitioner', `${what}: not a Practitioner: ${JSON.stringify(got).slice(0, 200)}`);
  const extra = Object.keys(got).filter((k) => !READER_KEYS.has(k));
  assert.deepEqual(extra, [], `${what}: a reader sees elements outside the reduced set`);
  for (const k of ['telecom', 'address'])
    for (const e of got[k] || []) assert.equal(e.use, 'work', `${what}: a reader sees a ${k} with use ${e.use}`);
  const sec = got.meta?.security || [];
  assert.ok(sec.some(isRedactedLabel), `${what}: no REDACTED label in meta.security: ${JSON.stringify(got.meta)}`);
  assert.equal(sec.filter(isRedactedLabel).length, 1, `${what}: REDACTED label more than once`);
  const want = reduce(full);
  const { security: _g, ...gotMeta } = got.meta;
  const { security: fullSec, ...wantMeta } = want.meta || {};
  assert.deepEqual(gotMeta, wantMeta, `${what}: meta differs from the stored resource`);
  assert.deepEqual(sec.filter((s) => !isRedactedLabel(s)), fullSec || [], `${what}: the stored security labels are not kept`);
  assert.deepEqual({ ...got, meta: undefined }, { ...want, meta: undefined }, `${what}: reduced Practitioner differs from the expected subset`);
}

/** got must be the whole resource, unlabelled. */
function assertFull(got, full, what) {
  assert.ok(!(got.meta?.security || []).some(isRedactedLabel), `${what}: REDACTED label on a full view`);
  assert.deepEqual(got, full, `${what}: not the whole stored resource`);
}

function assertNoSecrets(text, what) {
  const leaked = SECRETS.filter((s) => text.includes(s));
  assert.deepEqual(leaked, [], `${what}: personal data removed for readers is in the answer`);
}

/** 401 with an OperationOutcome and a Bearer WWW-Authenticate challenge. */
function assert401(r, what) {
  assertOutcome(r, 401, ['login', 'security', 'unknown', 'expired'], { what });
  const wa = r.headers['www-authenticate'];
  assert.ok(wa, `${what}: 401 without WWW-Authenticate`);
  assert.match(wa, /^Bearer\b/i, `${what}: WWW-Authenticate ${wa}`);
  assertNoSecrets(r.text, what);
  assert.ok(!r.text.includes(FAMILY), `${what}: a 401 names the health worker`);
}
function assert403(r, what) {
  assertOutcome(r, 403, ['forbidden', 'security'], { what });
}
function assert200(r, what) {
  assert.equal(r.status, 200, `${what}: ${r.status} ${r.text.slice(0, 400)}`);
}
/** 429 with OperationOutcome code throttled and an integer Retry-After (seconds, within the
 *  minute). */
function assert429(r, what) {
  assertOutcome(r, 429, 'throttled', { what });
  const ra = r.headers['retry-after'];
  assert.match(String(ra), /^\d+$/, `${what}: Retry-After ${ra}`);
  assert.ok(Number(ra) >= 1 && Number(ra) <= 60, `${what}: Retry-After ${ra} is not within the minute`);
}

const entriesOf = (bundle) => (bundle?.entry || []).map((e) => e.resource).filter(Boolean);
const as = (who) => (who === 'anonymous' ? {} : { as: who });
const form = (body) => ({ body, contentType: 'application/x-www-form-urlencoded' });

/** GET without the FHIR response checks (exports are CSV, GeoJSON, NDJSON, DHIS2 JSON). */
function rawGet(base, urlPath, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL(urlPath, base), { headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(60000, () => req.destroy(new Error(`GET ${urlPath}: timeout`)));
    req.on('error', reject);
  });
}

let passed = 0;
let total = 0;
/** One matrix cell: counted for the summary line. opts: node:test options (todo). */
function cell(name, fn, opts = {}) {
  total++;
  it(name, opts, async () => {
    await fn();
    passed++;
  });
}

describe('privacy', { skip }, () => {
  const S = useServer('privacy', { roles: ROLES });
  const id = {}; // Location, Organization, Practitioner, PractitionerRole, Plain (a Practitioner without work contacts)
  const FULL = {}; // versionId -> the admin's whole Practitioner
  const PR = {}; // versionId -> the admin's PractitionerRole
  let PLAIN; // the admin's whole plain Practitioner

  before(async () => {
    id.Organization = (await S.create(sample('Organization', { name: 'Privacy Org' }), 'admin')).id;
    id.Location = (
      await S.create(
        sample('Location', {
          name: 'Privacy Clinic',
          managingOrganization: { reference: `Organization/${id.Organization}` },
          // a facility (mCSD), so that the export lists it
          type: [{ coding: [{ system: 'https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types', code: 'facility' }] }],
        }),
        'admin',
      )
    ).id;
    id.Practitioner = (await S.create(fullPractitioner(), 'admin')).id;
    const v2 = { ...fullPractitioner(), id: id.Practitioner, communication: [{ text: 'Krio' }, { text: 'Temne' }] };
    const u = await S.req('PUT', `/fhir/Practitioner/${id.Practitioner}`, { body: v2, as: 'admin' });
    assert.equal(u.status, 200, u.text.slice(0, 300));
    id.PractitionerRole = (
      await S.create(
        sample('PractitionerRole', {
          practitioner: { reference: `Practitioner/${id.Practitioner}` },
          location: [{ reference: `Location/${id.Location}` }],
          organization: { reference: `Organization/${id.Organization}` },
          code: [{ coding: [{ system: 'http://example.org/fhir/roles', code: 'nurse' }], text: 'nurse' }],
        }),
        'admin',
      )
    ).id;
    id.Plain = (
      await S.create(
        {
          resourceType: 'Practitioner',
          active: true,
          name: [{ family: 'Plain-Privacy' }],
          telecom: [{ system: 'phone', value: 'home-phone-5550', use: 'home' }],
          address: [{ use: 'home', line: ['12 Secret Home Lane'] }],
        },
        'admin',
      )
    ).id;
    for (const v of [1, 2]) {
      const r = await S.req('GET', `/fhir/Practitioner/${id.Practitioner}/_history/${v}`, { as: 'admin' });
      assert200(r, `admin vread v${v}`);
      FULL[v] = r.json;
    }
    const pr = await S.req('GET', `/fhir/PractitionerRole/${id.PractitionerRole}`, { as: 'admin' });
    PR[pr.json.meta.versionId] = pr.json;
    PLAIN = (await S.req('GET', `/fhir/Practitioner/${id.Plain}`, { as: 'admin' })).json;
    // the fixture must hold what the checks look for, or they prove nothing
    for (const s of SECRETS) assert.ok(JSON.stringify(FULL[1]).includes(s), `fixture lost ${s}: ${JSON.stringify(FULL[1])}`);
    assert.ok(FULL[1].modifierExtension && FULL[1].implicitRules && FULL[1].language, 'fixture lost modifier elements');
  });

  /** Check every health-worker resource in resources (an array) as who should see it; returns
   *  how many of ours were seen. */
  function checkPersonal(who, resources, what) {
    let seen = 0;
    for (const res of resources) {
      const w = `${what} (${res.resourceType}/${res.id} v${res.meta?.versionId})`;
      if (res.resourceType === 'Practitioner') {
        const full = res.id === id.Practitioner ? FULL[res.meta.versionId] : res.id === id.Plain ? PLAIN : null;
        if (full) seen++;
        if (who === 'reader') {
          if (full) assertRedacted(res, full, w);
          else assert.ok((res.meta?.security || []).some(isRedactedLabel), `${w}: reader sees an unlabelled Practitioner`);
        } else if (full) assertFull(res, full, w);
        else assert.ok(!(res.meta?.security || []).some(isRedactedLabel), `${w}: ${who} sees a REDACTED Practitioner`);
      } else if (res.resourceType === 'PractitionerRole') {
        if (res.id === id.PractitionerRole) {
          seen++;
          assert.deepEqual(res, PR[res.meta.versionId], `${w}: PractitionerRole is not the whole stored resource`);
        }
        assert.ok(!(res.meta?.security || []).some(isRedactedLabel), `${w}: a PractitionerRole is labelled REDACTED`);
      }
    }
    return seen;
  }

  /** One cell per identity: anonymous must get 401; the others 200, then check(r, who). */
  function perIdentity(label, doReq, check) {
    for (const who of IDENTITIES)
      cell(`${who} ${label} → ${who === 'anonymous' ? 401 : 200}`, async () => {
        const r = await doReq(who);
        if (who === 'anonymous') return assert401(r, `anonymous ${label}`);
        assert200(r, `${who} ${label}`);
        if (who === 'reader') assertNoSecrets(r.text, `reader ${label}`);
        await check(r, who);
      });
  }

  // ---- Practitioner: every interaction ------------------------------------------------------

  describe('Practitioner: token needed, reader sees the reduced resource', () => {
    perIdentity('read Practitioner', (who) => S.req('GET', `/fhir/Practitioner/${id.Practitioner}`, as(who)), (r, who) => {
      assert.equal(checkPersonal(who, [r.json], `${who} read`), 1);
      assert.equal(r.json.meta.versionId, '2');
    });
    perIdentity('vread Practitioner v1 and v2', async (who) => {
      const r1 = await S.req('GET', `/fhir/Practitioner/${id.Practitioner}/_history/1`, as(who));
      if (r1.status !== 200) return r1;
      const r2 = await S.req('GET', `/fhir/Practitioner/${id.Practitioner}/_history/2`, as(who));
      r2.pair = [r1, r2];
      return r2;
    }, (r, who) => {
      for (const x of r.pair) if (who === 'reader') assertNoSecrets(x.text, 'reader vread');
      assert.equal(checkPersonal(who, r.pair.map((x) => x.json), `${who} vread`), 2);
      assert.deepEqual(r.pair.map((x) => x.json.meta.versionId), ['1', '2']);
    });
    perIdentity('search Practitioner (GET)', (who) => S.req('GET', `/fhir/Practitioner?_id=${id.Practitioner}`, as(who)), (r, who) => {
      assert.equal(checkPersonal(who, entriesOf(r.json), `${who} search`), 1);
    });
    perIdentity('search Practitioner by name (GET)', (who) => S.req('GET', `/fhir/Practitioner?family=${FAMILY}`, as(who)), (r, who) => {
      assert.equal(checkPersonal(who, entriesOf(r.json), `${who} search family`), 1);
    });
    perIdentity('search Practitioner (POST _search)', (who) => S.req('POST', '/fhir/Practitioner/_search', { ...form(`_id=${id.Practitioner}`), ...as(who) }), (r, who) => {
      assert.equal(checkPersonal(who, entriesOf(r.json), `${who} POST _search`), 1);
    });
    perIdentity('instance history of Practitioner', (who) => S.req('GET', `/fhir/Practitioner/${id.Practitioner}/_history`, as(who)), (r, who) => {
      assert.equal(r.json.type, 'history');
      assert.equal(checkPersonal(who, entriesOf(r.json), `${who} instance history`), 2);
    });
    perIdentity('type history of Practitioner', (who) => S.req('GET', '/fhir/Practitioner/_history?_count=500', as(who)), (r, who) => {
      assert.equal(checkPersonal(who, entriesOf(r.json), `${who} type history`), 3);
    });
    perIdentity('system history (/fhir/_history)', (who) => S.req('GET', '/fhir/_history?_count=500', as(who)), (r, who) => {
      assert.equal(r.json.type, 'history');
      // 2 versions of the Practitioner, the plain one, the PractitionerRole
      assert.equal(checkPersonal(who, entriesOf(r.json), `${who} system history`), 4);
      assert.ok(entriesOf(r.json).some((x) => x.resourceType === 'Location'), 'system history without the Location');
    });
    perIdentity(
      'PractitionerRole?_include=PractitionerRole:practitioner',
      (who) => S.req('GET', `/fhir/PractitionerRole?_id=${id.PractitionerRole}&_include=PractitionerRole:practitioner`, as(who)),
      (r, who) => {
        const inc = r.json.entry.filter((e) => e.search?.mode === 'include').map((e) => e.resource);
        assert.deepEqual(inc.map((x) => `${x.resourceType}/${x.id}`), [`Practitioner/${id.Practitioner}`]);
        assert.equal(checkPersonal(who, entriesOf(r.json), `${who} _include`), 2);
      },
    );
    perIdentity(
      'Practitioner?_revinclude=PractitionerRole:practitioner',
      (who) => S.req('GET', `/fhir/Practitioner?_id=${id.Practitioner}&_revinclude=PractitionerRole:practitioner`, as(who)),
      (r, who) => {
        assert.equal(checkPersonal(who, entriesOf(r.json), `${who} Practitioner _revinclude`), 2);
      },
    );
    perIdentity('Practitioner _elements / _summary', async (who) => {
      const a = await S.req('GET', `/fhir/Practitioner?_id=${id.Practitioner}&_elements=birthDate,telecom,address,photo,extension,text,name`, as(who));
      if (a.status !== 200) return a;
      const b = await S.req('GET', `/fhir/Practitioner?_id=${id.Practitioner}&_summary=true`, as(who));
      const c = await S.req('GET', `/fhir/Practitioner?_id=${id.Practitioner}&_summary=text`, as(who));
      b.all = [a, b, c];
      return b;
    }, (r, who) => {
      for (const x of r.all) {
        assert200(x, `${who} _elements/_summary`);
        if (who === 'reader') assertNoSecrets(x.text, `reader _elements/_summary`);
      }
      if (who !== 'reader') assert.ok(r.all[0].text.includes('1971-03-14'), `${who}: _elements=birthDate dropped birthDate`);
    });
    perIdentity('read a Practitioner with no work contacts', (who) => S.req('GET', `/fhir/Practitioner/${id.Plain}`, as(who)), (r, who) => {
      assert.equal(checkPersonal(who, [r.json], `${who} plain`), 1);
      if (who === 'reader') assert.ok(!('telecom' in r.json) && !('address' in r.json), 'empty telecom/address kept');
    });
    cell('anonymous read of an unknown Practitioner/PractitionerRole id is 401, not 404', async () => {
      assert401(await S.req('GET', '/fhir/Practitioner/no-such-worker'), 'anonymous unknown Practitioner');
      assert401(await S.req('GET', '/fhir/PractitionerRole/no-such-role/_history/1'), 'anonymous unknown PractitionerRole vread');
    });
  });

  // ---- the reader's view through every other representation ----------------------------------

  describe('reader: redaction holds in every representation', () => {
    cell('reader read/search/history as XML carry no removed data and the REDACTED label', async () => {
      for (const p of [`/fhir/Practitioner/${id.Practitioner}`, `/fhir/Practitioner?_id=${id.Practitioner}`, '/fhir/Practitioner/_history', `/fhir/Practitioner/${id.Practitioner}/_history/1`]) {
        const r = await S.req('GET', p, { as: 'reader', headers: { Accept: 'application/fhir+xml' } });
        assert200(r, `reader XML ${p}`);
        assert.match(r.headers['content-type'], /xml/, p);
        assertNoSecrets(r.text, `reader XML ${p}`);
        assert.ok(r.text.includes('REDACTED'), `reader XML ${p}: no REDACTED label`);
        assert.ok(r.text.includes(FAMILY), `reader XML ${p}: the name is missing`);
      }
    });
    cell('reader _pretty=true answers carry no removed data', async () => {
      for (const p of [`/fhir/Practitioner/${id.Practitioner}?_pretty=true`, `/fhir/Practitioner?_id=${id.Practitioner}&_pretty=true`, '/fhir/Practitioner/_history?_pretty=true', '/fhir/_history?_pretty=true&_count=500']) {
        const r = await S.req('GET', p, { as: 'reader' });
        assert200(r, `reader ${p}`);
        assertNoSecrets(r.text, `reader ${p}`);
        checkPersonal('reader', r.json.resourceType === 'Bundle' ? entriesOf(r.json) : [r.json], `reader ${p}`);
      }
    });
    cell('reader paging through Practitioner history (_count=1, next links) never sees removed data', async () => {
      let url = '/fhir/Practitioner/_history?_count=1';
      let pages = 0;
      let seen = 0;
      while (url && pages < 20) {
        const r = await S.req('GET', url, { as: 'reader' });
        assert200(r, `reader ${url}`);
        assertNoSecrets(r.text, `reader ${url}`);
        seen += checkPersonal('reader', entriesOf(r.json), `reader page ${pages}`);
        const next = (r.json.link || []).find((l) => l.relation === 'next');
        url = next ? new URL(next.url).pathname + new URL(next.url).search : null;
        pages++;
      }
      assert.equal(seen, 3, 'not every version was paged through');
    });
    cell('reader _history?_since= (the sync feed) carries no removed data', async () => {
      const r = await S.req('GET', '/fhir/_history?_since=2000-01-01T00:00:00Z&_count=500', { as: 'reader' });
      assert200(r, 'reader _since');
      assertNoSecrets(r.text, 'reader _since');
      assert.equal(checkPersonal('reader', entriesOf(r.json), 'reader _since'), 4);
    });
    // a batch/transaction GET entry is a read like any other: reduced for a reader
    for (const type of ['batch', 'transaction'])
      cell(
        `reader ${type} Bundle GET Practitioner entry → reduced resource`,
        async () => {
          const r = await S.req('POST', '/fhir', {
            as: 'reader',
            body: { resourceType: 'Bundle', type, entry: [{ request: { method: 'GET', url: `Practitioner/${id.Practitioner}` } }] },
          });
          assert200(r, `reader ${type} GET`);
          assertNoSecrets(r.text, `reader ${type} GET Practitioner`);
          checkPersonal('reader', entriesOf(r.json), `reader ${type} GET`);
        },
      );
    cell('anonymous batch/transaction GET of Practitioner or PractitionerRole → 401', async () => {
      for (const T of ['Practitioner', 'PractitionerRole']) {
        const url = `${T}/${id[T]}`;
        const b = await S.req('POST', '/fhir', { body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url } }] } });
        assert200(b, `anonymous batch GET ${url}`);
        assert.match(b.json.entry[0].response.status, /^401\b/, `anonymous batch GET ${url}: ${b.text.slice(0, 300)}`);
        assert.ok(!b.json.entry[0].resource, 'anonymous batch GET returned the resource');
        assertNoSecrets(b.text, `anonymous batch GET ${url}`);
        const t = await S.req('POST', '/fhir', { body: { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'GET', url } }] } });
        assert401(t, `anonymous transaction GET ${url}`);
      }
    });
    cell('negative control: the checks fail on a full Practitioner shown to a reader', () => {
      assert.throws(() => assertRedacted(FULL[1], FULL[1], 'control'));
      assert.throws(() => assertRedacted({ ...reduce(FULL[1]), meta: { ...FULL[1].meta } }, FULL[1], 'control (no label)'));
      assert.throws(() => assertRedacted({ ...reduce(FULL[1]), meta: { ...FULL[1].meta, security: [...FULL[1].meta.security, REDACTED] }, birthDate: '1971-03-14' }, FULL[1], 'control (birthDate)'));
      assert.throws(() => assertNoSecrets(JSON.stringify(FULL[2]), 'control'));
      assert.throws(() => assertFull(reduce(FULL[1]), FULL[1], 'control'));
      // and the exact reduction passes
      assertRedacted({ ...reduce(FULL[1]), meta: { ...FULL[1].meta, security: [...FULL[1].meta.security, { ...REDACTED, display: 'redacted' }] } }, FULL[1], 'control ok');
    });
  });

  // ---- PractitionerRole: token needed, never reduced -----------------------------------------

  describe('PractitionerRole: token needed, not reduced', () => {
    const P = () => id.PractitionerRole;
    perIdentity('read PractitionerRole', (who) => S.req('GET', `/fhir/PractitionerRole/${P()}`, as(who)), (r, who) => {
      assert.equal(checkPersonal(who, [r.json], `${who} read PR`), 1);
    });
    perIdentity('vread PractitionerRole', (who) => S.req('GET', `/fhir/PractitionerRole/${P()}/_history/1`, as(who)), (r, who) => {
      assert.equal(checkPersonal(who, [r.json], `${who} vread PR`), 1);
    });
    perIdentity('search PractitionerRole (GET)', (who) => S.req('GET', `/fhir/PractitionerRole?location=Location/${id.Location}`, as(who)), (r, who) => {
      assert.equal(checkPersonal(who, entriesOf(r.json), `${who} search PR`), 1);
    });
    perIdentity('search PractitionerRole (POST _search)', (who) => S.req('POST', '/fhir/PractitionerRole/_search', { ...form(`_id=${P()}`), ...as(who) }), (r, who) => {
      assert.equal(checkPersonal(who, entriesOf(r.json), `${who} POST _search PR`), 1);
    });
    perIdentity('instance history of PractitionerRole', (who) => S.req('GET', `/fhir/PractitionerRole/${P()}/_history`, as(who)), (r, who) => {
      assert.equal(checkPersonal(who, entriesOf(r.json), `${who} PR instance history`), 1);
    });
    perIdentity('type history of PractitionerRole', (who) => S.req('GET', '/fhir/PractitionerRole/_history', as(who)), (r, who) => {
      assert.equal(checkPersonal(who, entriesOf(r.json), `${who} PR type history`), 1);
    });
  });

  // ---- facility-side searches that reach health workers --------------------------------------

  describe('facility searches reaching health workers', () => {
    perIdentity(
      'Location?_revinclude=PractitionerRole:location',
      (who) => S.req('GET', `/fhir/Location?_id=${id.Location}&_revinclude=PractitionerRole:location`, as(who)),
      (r, who) => {
        assert.ok(entriesOf(r.json).some((x) => x.resourceType === 'Location' && x.id === id.Location));
        assert.equal(checkPersonal(who, entriesOf(r.json), `${who} Location _revinclude`), 1);
      },
    );
    perIdentity(
      'Location?_revinclude=PractitionerRole:location&_include:iterate=PractitionerRole:practitioner',
      (who) =>
        S.req('GET', `/fhir/Location?_id=${id.Location}&_revinclude=PractitionerRole:location&_include:iterate=PractitionerRole:practitioner`, as(who)),
      (r, who) => {
        // the PractitionerRole, and through it (:iterate) the Practitioner
        assert.equal(checkPersonal(who, entriesOf(r.json), `${who} Location _revinclude+iterate`), 2);
      },
    );
    perIdentity(
      'Organization?_revinclude=PractitionerRole:organization',
      (who) => S.req('GET', `/fhir/Organization?_id=${id.Organization}&_revinclude=PractitionerRole:organization`, as(who)),
      (r, who) => {
        assert.equal(checkPersonal(who, entriesOf(r.json), `${who} Organization _revinclude`), 1);
      },
    );
    perIdentity(
      'Location?_has:PractitionerRole:location:active=true (existence oracle)',
      (who) => S.req('GET', `/fhir/Location?_has:PractitionerRole:location:active=true`, as(who)),
      (r) => {
        assert.deepEqual(entriesOf(r.json).map((x) => x.id), [id.Location]);
      },
    );
    perIdentity('GET Location/{id}/$staffing', (who) => S.req('GET', `/fhir/Location/${id.Location}/$staffing`, as(who)), (r) => {
      assert.equal(r.json.resourceType, 'Parameters');
      assert.ok(!r.text.includes(FAMILY), '$staffing names a health worker');
    });
    for (const who of IDENTITIES)
      cell(`${who} Location search and read without includes → 200 (public facility data)`, async () => {
        for (const p of [`/fhir/Location/${id.Location}`, `/fhir/Location?_id=${id.Location}`, `/fhir/Location?_id=${id.Location}&_include=Location:organization`]) {
          const r = await S.req('GET', p, as(who));
          assert200(r, `${who} ${p}`);
          assert.ok(!entriesOf(r.json).some((x) => /^Practitioner/.test(x.resourceType)), `${p}: health workers in a facility answer`);
        }
      });
  });

  // ---- the facility export never carries health workers --------------------------------------

  describe('export $export-mfl holds no health workers', () => {
    for (const who of IDENTITIES)
      cell(`${who} GET Location/$export-mfl (csv, geojson, ndjson, dhis2) → 200 without health workers`, async () => {
        const headers = who === 'anonymous' ? {} : { Authorization: `Bearer ${S.tokens[who]}` };
        for (const format of ['csv', 'geojson', 'ndjson', 'dhis2']) {
          const r = await rawGet(S.base, `/fhir/Location/$export-mfl?format=${format}`, headers);
          assert.equal(r.status, 200, `${who} export ${format}: ${r.status} ${r.text.slice(0, 300)}`);
          assert.ok(r.text.includes('Privacy Clinic'), `${who} export ${format}: the Location is missing`);
          assertNoSecrets(r.text, `${who} export ${format}`);
          for (const s of [FAMILY, 'Plain-Privacy', 'SL-NURSE-0042', id.Practitioner, id.Plain, id.PractitionerRole, '"Practitioner', 'PractitionerRole/'])
            assert.ok(!r.text.includes(s), `${who} export ${format} contains ${s}`);
        }
      });
  });

  // ---- writes: hr writes health workers only --------------------------------------------------

  describe('writes of health workers', () => {
    for (const who of IDENTITIES) {
      const exp = who === 'anonymous' ? 401 : who === 'reader' ? 403 : 'ok';
      for (const T of ['Practitioner', 'PractitionerRole'])
        cell(`${who} POST and PUT ${T} → ${exp === 'ok' ? '201/200' : exp}`, async () => {
          const c = await S.req('POST', `/fhir/${T}`, { body: sample(T), ...as(who) });
          const nid = `priv-${who}-${T.toLowerCase()}`;
          const p = await S.req('PUT', `/fhir/${T}/${nid}`, { body: sample(T, { id: nid }), ...as(who) });
          if (exp === 401) {
            assert401(c, `${who} POST ${T}`);
            assert401(p, `${who} PUT ${T}`);
          } else if (exp === 403) {
            assert403(c, `${who} POST ${T}`);
            assert403(p, `${who} PUT ${T}`);
          } else {
            assert.equal(c.status, 201, `${who} POST ${T}: ${c.text.slice(0, 300)}`);
            assert.equal(p.status, 201, `${who} PUT-create ${T}: ${p.text.slice(0, 300)}`);
            const u = await S.req('PUT', `/fhir/${T}/${nid}`, { body: sample(T, { id: nid, active: false }), ...as(who) });
            assert.equal(u.status, 200, `${who} PUT-update ${T}: ${u.text.slice(0, 300)}`);
          }
          const g = await S.req('GET', `/fhir/${T}/${nid}`, { as: 'admin' });
          assert.equal(g.status, exp === 'ok' ? 200 : 404, `after ${who} PUT ${T}: GET → ${g.status}`);
        });
    }
    cell('hr writes the whole Practitioner and reads it back whole (no REDACTED label)', async () => {
      const body = { ...fullPractitioner(), identifier: [{ system: 'http://example.org/fhir/licence', value: 'SL-NURSE-HR-7' }] };
      const c = await S.req('POST', '/fhir/Practitioner', { body, as: 'hr' });
      assert.equal(c.status, 201, c.text.slice(0, 300));
      const g = await S.req('GET', `/fhir/Practitioner/${c.json.id}`, { as: 'hr' });
      assert200(g, 'hr read back');
      assertFull(g.json, c.json, 'hr read back');
      const rd = await S.req('GET', `/fhir/Practitioner/${c.json.id}`, { as: 'reader' });
      assertRedacted(rd.json, c.json, 'reader reads what hr wrote');
    });
    cell('hr DELETE Practitioner/PractitionerRole → 403, nothing deleted', async () => {
      for (const T of ['Practitioner', 'PractitionerRole']) {
        const v = (await S.create(sample(T), 'admin')).id;
        assert403(await S.req('DELETE', `/fhir/${T}/${v}`, { as: 'hr' }), `hr DELETE ${T}`);
        assert403(await S.req('DELETE', `/fhir/${T}?_id=${v}`, { as: 'hr' }), `hr conditional DELETE ${T}`);
        assert200(await S.req('GET', `/fhir/${T}/${v}`, { as: 'admin' }), `after hr DELETE ${T}`);
      }
    });
  });

  describe('hr may not write facility-side resources', () => {
    for (const T of PUBLIC_TYPES)
      cell(`hr POST, PUT, PUT-create, conditional PUT and DELETE ${T} → 403, nothing changed`, async () => {
        const victim = await S.create(sample(T), 'admin');
        const was = await S.req('GET', `/fhir/${T}/${victim.id}`, { as: 'admin' });
        assert403(await S.req('POST', `/fhir/${T}`, { body: sample(T), as: 'hr' }), `hr POST ${T}`);
        assert403(await S.req('PUT', `/fhir/${T}/${victim.id}`, { body: sample(T, { id: victim.id, active: false }), as: 'hr' }), `hr PUT ${T}`);
        const nid = `priv-hr-${T.toLowerCase()}`;
        assert403(await S.req('PUT', `/fhir/${T}/${nid}`, { body: sample(T, { id: nid }), as: 'hr' }), `hr PUT-create ${T}`);
        assert403(await S.req('PUT', `/fhir/${T}?_id=${victim.id}`, { body: sample(T, { id: victim.id }), as: 'hr' }), `hr conditional PUT ${T}`);
        assert403(await S.req('DELETE', `/fhir/${T}/${victim.id}`, { as: 'hr' }), `hr DELETE ${T}`);
        const now = await S.req('GET', `/fhir/${T}/${victim.id}`, { as: 'admin' });
        assert.deepEqual(now.json, was.json, `hr changed ${T}`);
        assert.equal((await S.req('GET', `/fhir/${T}/${nid}`, { as: 'admin' })).status, 404, `hr PUT-create ${T} created it`);
      });
    cell('hr $generate-catchments and $import → 403', async () => {
      assert403(await S.req('POST', '/fhir/Location/$generate-catchments', { body: { resourceType: 'Parameters' }, as: 'hr' }), 'hr $generate-catchments');
      const imp = await S.req('POST', '/fhir/$import', { body: 'id,name\n1,x\n', contentType: 'text/csv', as: 'hr' });
      assert403(imp, 'hr $import');
    });
    cell('hr transaction: Practitioner + Location → 403 for the whole Bundle, nothing persisted', async () => {
      const fam = 'Tx-Refused-Privacy';
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:6a1d3b7e-0000-4000-8000-000000000001', resource: sample('Practitioner', { name: [{ family: fam }] }), request: { method: 'POST', url: 'Practitioner' } },
          { resource: sample('Location', { name: 'Tx Refused Clinic' }), request: { method: 'POST', url: 'Location' } },
        ],
      };
      assert403(await S.req('POST', '/fhir', { body: bundle, as: 'hr' }), 'hr transaction with a Location');
      const p = await S.req('GET', `/fhir/Practitioner?family=${fam}`, { as: 'admin' });
      assert.equal(entriesOf(p.json).length, 0, 'the Practitioner of a refused transaction was persisted');
      const l = await S.req('GET', '/fhir/Location?name:exact=Tx%20Refused%20Clinic');
      assert.equal(entriesOf(l.json).length, 0, 'the Location of a refused transaction was persisted');
    });
    cell('hr transaction: PUT of an existing Location or DELETE of a PractitionerRole → 403', async () => {
      const put = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: sample('Location', { id: id.Location }), request: { method: 'PUT', url: `Location/${id.Location}` } }] };
      assert403(await S.req('POST', '/fhir', { body: put, as: 'hr' }), 'hr transaction PUT Location');
      const del = { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'DELETE', url: `PractitionerRole/${id.PractitionerRole}` } }] };
      assert403(await S.req('POST', '/fhir', { body: del, as: 'hr' }), 'hr transaction DELETE PractitionerRole');
      assert200(await S.req('GET', `/fhir/PractitionerRole/${id.PractitionerRole}`, { as: 'admin' }), 'PractitionerRole after refused delete');
    });
    cell('hr transaction: Practitioner + PractitionerRole (linked by urn:uuid) → 200, both created', async () => {
      const u = 'urn:uuid:6a1d3b7e-0000-4000-8000-000000000002';
      const bundle = {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { fullUrl: u, resource: sample('Practitioner', { name: [{ family: 'Tx-Accepted-Privacy' }] }), request: { method: 'POST', url: 'Practitioner' } },
          {
            resource: sample('PractitionerRole', { practitioner: { reference: u }, location: [{ reference: `Location/${id.Location}` }] }),
            request: { method: 'POST', url: 'PractitionerRole' },
          },
        ],
      };
      const r = await S.req('POST', '/fhir', { body: bundle, as: 'hr' });
      assert200(r, 'hr transaction of health workers');
      assert.deepEqual(r.json.entry.map((e) => e.response.status.slice(0, 3)), ['201', '201']);
    });
    cell('hr batch: Practitioner entry 201, Location entry 403, only the Practitioner persisted', async () => {
      const bundle = {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { resource: sample('Practitioner', { name: [{ family: 'Batch-Privacy' }] }), request: { method: 'POST', url: 'Practitioner' } },
          { resource: sample('Location', { name: 'Batch Refused Clinic' }), request: { method: 'POST', url: 'Location' } },
        ],
      };
      const r = await S.req('POST', '/fhir', { body: bundle, as: 'hr' });
      assert200(r, 'hr batch');
      const st = r.json.entry.map((e) => e.response.status);
      assert.match(st[0], /^201\b/, `hr batch Practitioner entry: ${st[0]}`);
      assert.match(st[1], /^403\b/, `hr batch Location entry: ${st[1]}`);
      assert.ok(['forbidden', 'security'].includes(r.json.entry[1].response.outcome?.issue?.[0]?.code), JSON.stringify(r.json.entry[1].response));
      const p = await S.req('GET', '/fhir/Practitioner?family=Batch-Privacy', { as: 'admin' });
      assert.equal(entriesOf(p.json).length, 1);
      const l = await S.req('GET', '/fhir/Location?name:exact=Batch%20Refused%20Clinic');
      assert.equal(entriesOf(l.json).length, 0, 'hr created a Location through a batch');
    });
    cell('hr reads facility-side resources → 200', async () => {
      for (const p of [`/fhir/Location/${id.Location}`, `/fhir/Organization?_id=${id.Organization}`, '/fhir/Location/_history'])
        assert200(await S.req('GET', p, { as: 'hr' }), `hr GET ${p}`);
    });
  });

  cell('default limit (MAHALI_PERSONAL_READ_LIMIT unset): 30 Practitioner searches by a reader → 200', async () => {
    for (let k = 0; k < 30; k++) assert200(await S.req('GET', `/fhir/Practitioner?_id=${id.Practitioner}`, { as: 'reader' }), `search ${k + 1}`);
  });

  // ---- the per-token limit on bulk reads of personal resources -------------------------------

  describe('MAHALI_PERSONAL_READ_LIMIT=5', () => {
    const LIMIT = 5;
    const L = useServer('privacy_limit', { roles: ROLES, env: { MAHALI_PERSONAL_READ_LIMIT: String(LIMIT) } });
    const lid = {};

    before(async () => {
      lid.Location = (await L.create(sample('Location', { name: 'Limit Clinic' }), 'admin')).id;
      lid.Organization = (await L.create(sample('Organization', { name: 'Limit Org' }), 'admin')).id;
      lid.Practitioner = (await L.create(sample('Practitioner'), 'admin')).id;
      lid.PractitionerRole = (
        await L.create(sample('PractitionerRole', { practitioner: { reference: `Practitioner/${lid.Practitioner}` }, location: [{ reference: `Location/${lid.Location}` }] }), 'admin')
      ).id;
    });

    let serial = 0;
    const newToken = (role) => createToken(role, ['--database', L.conninfo], { name: `limit-${role}-${++serial}` });
    const get = (token, p) => request(L.base, 'GET', p, { token });
    const searchP = () => `/fhir/Practitioner?_id=${lid.Practitioner}`;

    /** GET p with token until 429; requires the first `ok` answers to be 200 and the next 429. */
    async function exhaust(token, p, ok, what) {
      for (let k = 1; k <= ok; k++) assert200(await get(token, p), `${what}: request ${k} of ${ok} allowed`);
      const r = await get(token, p);
      assert429(r, `${what}: request ${ok + 1}`);
      return r;
    }

    let throttled; // a reader token that has spent its allowance
    cell('reader: 5 single-Practitioner searches → 200, the 6th → 429 throttled + Retry-After', async () => {
      throttled = await newToken('reader');
      const r = await exhaust(throttled, searchP(), LIMIT, 'reader search');
      assertNoSecrets(r.text, '429');
      assert.ok(!r.text.includes(throttled), '429 echoes the token');
    });
    cell('the throttled reader gets 429 on every bulk personal read', async () => {
      assert.ok(throttled, 'previous cell did not run');
      for (const p of [
        searchP(),
        `/fhir/PractitionerRole?_id=${lid.PractitionerRole}`,
        `/fhir/PractitionerRole?_id=${lid.PractitionerRole}&_include=PractitionerRole:practitioner`,
        `/fhir/Location?_id=${lid.Location}&_revinclude=PractitionerRole:location`,
        '/fhir/Practitioner/_history',
        '/fhir/PractitionerRole/_history',
        '/fhir/_history',
      ])
        assert429(await get(throttled, p), `throttled reader GET ${p}`);
      assert429(await request(L.base, 'POST', '/fhir/Practitioner/_search', { ...form(`_id=${lid.Practitioner}`), token: throttled }), 'throttled POST _search');
      // GET entries of a batch are reads too
      const batch = { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: `Practitioner/${lid.Practitioner}` } }] };
      assert429(await request(L.base, 'POST', '/fhir', { body: batch, token: throttled }), 'throttled batch GET');
    });
    cell('a batch of GET entries counts the health workers it returns', async () => {
      const t = await newToken('reader');
      const entry = Array.from({ length: LIMIT }, () => ({ request: { method: 'GET', url: `Practitioner/${lid.Practitioner}` } }));
      const b = await request(L.base, 'POST', '/fhir', { body: { resourceType: 'Bundle', type: 'batch', entry }, token: t });
      assert200(b, 'batch of GETs within the allowance');
      assert.equal(b.json.entry.length, LIMIT);
      assert429(await get(t, searchP()), 'search after a batch that spent the allowance');
    });
    cell('the throttled reader still gets facility reads and searches without includes → 200', async () => {
      assert.ok(throttled, 'previous cell did not run');
      for (let k = 0; k < 10; k++) {
        assert200(await get(throttled, `/fhir/Location?_id=${lid.Location}`), `throttled Location search ${k + 1}`);
        assert200(await get(throttled, '/fhir/Organization'), `throttled Organization search ${k + 1}`);
      }
      assert200(await get(throttled, `/fhir/Location/${lid.Location}`), 'throttled Location read');
      assert200(await get(throttled, '/fhir/Location/_history'), 'throttled Location history');
    });
    cell('the throttled reader may still read a single Practitioner by id (not a bulk read)', async () => {
      assert.ok(throttled, 'previous cell did not run');
      assert200(await get(throttled, `/fhir/Practitioner/${lid.Practitioner}`), 'throttled read');
      assert200(await get(throttled, `/fhir/Practitioner/${lid.Practitioner}/_history/1`), 'throttled vread');
    });
    cell('a second reader token is unaffected by the first one being throttled', async () => {
      assert.ok(throttled, 'previous cell did not run');
      const other = await newToken('reader');
      assert200(await get(other, searchP()), 'second reader');
      assert429(await get(throttled, searchP()), 'first reader still throttled');
    });
    cell('admin is never throttled: 20 Practitioner searches, type and system history → 200', async () => {
      const admin = L.tokens.admin;
      for (let k = 0; k < 4 * LIMIT; k++) assert200(await get(admin, searchP()), `admin search ${k + 1}`);
      for (let k = 0; k < 2 * LIMIT; k++) {
        assert200(await get(admin, '/fhir/_history'), `admin system history ${k + 1}`);
        assert200(await get(admin, `/fhir/PractitionerRole?_include=PractitionerRole:practitioner`), `admin _include ${k + 1}`);
      }
    });
    for (const role of ['hr', 'editor'])
      cell(`${role} tokens are limited too: 5 searches → 200, the 6th → 429`, async () => {
        await exhaust(await newToken(role), searchP(), LIMIT, `${role} search`);
      });
    cell('_include counts the included Practitioners: 2 per search, the 4th search → 429', async () => {
      // 2 + 2 = 4 < 5 allowed, 2 + 2 + 2 = 6 ≥ 5: the 4th is refused
      await exhaust(await newToken('reader'), `/fhir/PractitionerRole?_id=${lid.PractitionerRole}&_include=PractitionerRole:practitioner`, 3, 'reader _include');
    });
    cell('_revinclude from Location counts the PractitionerRoles: 1 per search, the 6th → 429', async () => {
      const t = await newToken('reader');
      await exhaust(t, `/fhir/Location?_id=${lid.Location}&_revinclude=PractitionerRole:location`, LIMIT, 'reader Location _revinclude');
      assert200(await get(t, `/fhir/Location?_id=${lid.Location}`), 'same token, Location without includes');
    });
    cell('type history counts: 1 Practitioner version per request, the 6th → 429', async () => {
      await exhaust(await newToken('reader'), '/fhir/Practitioner/_history', LIMIT, 'reader type history');
    });
    cell('system history counts: 2 personal versions per request, the 4th → 429', async () => {
      await exhaust(await newToken('reader'), '/fhir/_history', 3, 'reader system history');
    });
    cell('POST _search counts like GET: 5 → 200, the 6th → 429', async () => {
      const t = await newToken('reader');
      for (let k = 1; k <= LIMIT; k++)
        assert200(await request(L.base, 'POST', '/fhir/Practitioner/_search', { ...form(`_id=${lid.Practitioner}`), token: t }), `POST _search ${k}`);
      assert429(await request(L.base, 'POST', '/fhir/Practitioner/_search', { ...form(`_id=${lid.Practitioner}`), token: t }), 'POST _search 6');
    });
    cell('a search returning no health worker costs nothing: 10 empty searches → 200, then 5 more → 200', async () => {
      const t = await newToken('reader');
      for (let k = 0; k < 10; k++) assert200(await get(t, '/fhir/Practitioner?_id=no-such-worker'), `empty search ${k + 1}`);
      await exhaust(t, searchP(), LIMIT, 'after empty searches');
    });
    cell('anonymous is refused (401) before any limit; facility searches never 429', async () => {
      for (let k = 0; k < 2 * LIMIT; k++) {
        assert401(await request(L.base, 'GET', searchP()), `anonymous search ${k + 1}`);
        assert200(await request(L.base, 'GET', `/fhir/Location?_id=${lid.Location}`), `anonymous Location ${k + 1}`);
      }
    });

    describe('MAHALI_PERSONAL_READ_LIMIT=0', () => {
      let off; // a second server on the same database with the limit off (stopped before L drops it)
      before(async () => {
        off = await startServe(['--listen', '127.0.0.1:0', '--database', L.conninfo], { env: { MAHALI_PERSONAL_READ_LIMIT: '0' } });
      });
      after(async () => {
        if (!off) return;
        const s = await off.stop('SIGTERM');
        if (s.code !== 0 || s.killed) throw new Error(`limit-off server did not exit 0: ${JSON.stringify(s)}\n${off.output().slice(-4000)}`);
      });
      cell('MAHALI_PERSONAL_READ_LIMIT=0 turns the limit off: 15 searches by a reader → 200', async () => {
        const t = await newToken('reader');
        for (let k = 0; k < 3 * LIMIT; k++) assert200(await request(off.base, 'GET', searchP(), { token: t }), `limit off, search ${k + 1}`);
        for (let k = 0; k < 3; k++) assert200(await request(off.base, 'GET', '/fhir/_history', { token: t }), `limit off, system history ${k + 1}`);
      });
    });
  });

  after(() => {
    console.log(`# privacy: ${passed} cells passed of ${total}`);
  });
});
