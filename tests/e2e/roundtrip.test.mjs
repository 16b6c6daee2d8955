// Round trip of real content: every official FHIR R4 example of the seven mCSD types
// (npm package hl7.fhir.r4.examples) and every IHE mCSD example of those types
// (../shared/conformance/mcsd-json) is POSTed as editor, read back and compared with the
// original, ignoring only id and meta.versionId/meta.lastUpdated. Numbers are compared by their
// literal text (lib/json.mjs), so `8.4800` must come back as `8.4800`.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { canonical, firstDifference, parseLossless } from './lib/json.mjs';
import { SHARED_DIR, TYPES, e2eSkipReason, useServer } from './lib/server.mjs';

const require = createRequire(import.meta.url);
const skip = e2eSkipReason();

function examplesDir() {
  let pkg;
  try {
    pkg = path.dirname(require.resolve('hl7.fhir.r4.examples/package.json'));
  } catch {
    throw new Error('the npm package hl7.fhir.r4.examples is not installed: run `npm ci --prefix tests`');
  }
  return existsSync(path.join(pkg, 'package')) ? path.join(pkg, 'package') : pkg;
}

/** [{file, type, text}] of the files in dir named <Type>-*.json whose resourceType is one of the seven. */
function load(dir, byName) {
  const out = [];
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.json')) continue;
    if (byName && !TYPES.some((T) => f.startsWith(`${T}-`))) continue;
    const text = readFileSync(path.join(dir, f), 'utf8').replace(/^\uFEFF/, '');
    let type;
    try {
      type = JSON.parse(text).resourceType;
    } catch {
      continue;
    }
    if (TYPES.includes(type)) out.push({ file: f, type, text });
  }
  return out;
}

/** The lossless value without the server-owned id, meta.versionId and meta.lastUpdated. */
function comparable(text) {
  const v = parseLossless(text);
  delete v.id;
  if (v.meta) {
    delete v.meta.versionId;
    delete v.meta.lastUpdated;
    if (Object.keys(v.meta).length === 0) delete v.meta;
  }
  return v;
}

const official = load(examplesDir(), true);
const MCSD_DIR = path.join(SHARED_DIR, 'conformance', 'mcsd-json');
const mcsdSkip = existsSync(MCSD_DIR) ? undefined : `${MCSD_DIR} is absent`;
const mcsd = mcsdSkip ? [] : load(MCSD_DIR, false);

describe('roundtrip', { skip }, () => {
  const S = useServer('roundtrip');
  const results = { official: { pass: 0, fail: [] }, mcsd: { pass: 0, fail: [] } };

  // The registry refuses references to stored types that do not resolve (422), as mCSD
  // Directories should; the examples point at each other and at a few resources no example
  // defines (e.g. Organization/299). Like any client, create what an example refers to first:
  // a minimal resource under that id, unless it exists already.
  const STUBS = {
    Organization: { name: 'referenced by an example' },
    Location: { name: 'referenced by an example' },
    HealthcareService: {},
    Practitioner: {},
    PractitionerRole: {},
    OrganizationAffiliation: {},
    Endpoint: {
      status: 'active',
      connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
      payloadType: [{ text: 'any' }],
      address: 'http://example.org/fhir',
    },
  };
  const ensured = new Set();
  function references(v, out = []) {
    if (Array.isArray(v)) v.forEach((x) => references(x, out));
    else if (v && typeof v === 'object') {
      if (typeof v.reference === 'string') out.push(v.reference);
      for (const k of Object.keys(v)) if (k !== 'contained') references(v[k], out);
    }
    return out;
  }
  async function ensureTargets(text) {
    for (const ref of references(JSON.parse(text))) {
      const m = /^(?:.*\/)?([A-Za-z]+)\/([A-Za-z0-9.-]{1,64})$/.exec(ref);
      if (!m || !(m[1] in STUBS) || ensured.has(ref)) continue;
      const [, type, id] = m;
      const have = await S.req('GET', `/fhir/${type}/${id}`, { as: 'editor' });
      if (have.status !== 200) {
        const put = await S.req('PUT', `/fhir/${type}/${id}`, {
          body: JSON.stringify({ resourceType: type, id, ...STUBS[type] }),
          as: 'editor',
        });
        assert.ok([200, 201].includes(put.status), `creating ${type}/${id} first: ${put.status} ${put.text.slice(0, 300)}`);
      }
      ensured.add(ref);
    }
  }

  async function roundtrip(ex, set) {
    try {
      await ensureTargets(ex.text);
      let r = await S.req('POST', `/fhir/${ex.type}`, { body: ex.text, as: 'editor' });
      if (r.status === 409 && r.json?.issue?.[0]?.code === 'duplicate') {
        // Two official Practitioner examples (f004, f005) share an identifier; a registry must
        // refuse the second (409, checked here). Remove the earlier holder and go again.
        for (const ident of JSON.parse(ex.text).identifier || []) {
          if (!ident.system || !ident.value) continue;
          const q = `identifier=${encodeURIComponent(`${ident.system}|${ident.value}`)}`;
          const found = await S.req('GET', `/fhir/${ex.type}?${q}`, { as: 'editor' });
          assert.equal(found.status, 200, found.text.slice(0, 300));
          for (const e of found.json.entry || []) {
            if (e.search?.mode !== 'match') continue;
            const d = await S.req('DELETE', `/fhir/${ex.type}/${e.resource.id}`, { as: 'admin' });
            assert.ok([200, 204].includes(d.status), `removing the holder of ${q}: ${d.status}`);
            console.log(`# ${ex.file}: identifier ${ident.system}|${ident.value} already held by ${ex.type}/${e.resource.id} → 409 as required; removed it to round-trip this example`);
          }
        }
        r = await S.req('POST', `/fhir/${ex.type}`, { body: ex.text, as: 'editor' });
      }
      assert.equal(r.status, 201, `POST: ${r.status} ${r.text.slice(0, 800)}`);
      const id = r.json.id;
      const g = await S.req('GET', `/fhir/${ex.type}/${id}`, { as: 'editor' });
      assert.equal(g.status, 200, `GET: ${g.status} ${g.text.slice(0, 300)}`);
      assert.equal(g.json.id, id);
      assert.equal(g.json.meta?.versionId, '1');
      const want = comparable(ex.text);
      for (const [label, text] of [
        ['POST response', r.text],
        ['GET', g.text],
      ]) {
        const got = comparable(text);
        const d = firstDifference(want, got);
        assert.equal(d, null, `${label} differs from the example at ${d}`);
        assert.equal(canonical(got), canonical(want));
      }
      results[set].pass++;
    } catch (e) {
      results[set].fail.push(`${ex.file}: ${e.message.split('\n')[0]}`);
      throw e;
    }
  }

  describe(`official R4 examples (${official.length})`, () => {
    it('the examples package holds examples of all seven types', () => {
      for (const T of TYPES) assert.ok(official.some((e) => e.type === T), `no official example of ${T}`);
    });
    for (const ex of official) it(ex.file, () => roundtrip(ex, 'official'));
  });

  describe(`IHE mCSD examples (${mcsd.length})`, { skip: mcsdSkip }, () => {
    it('mcsd-json holds examples', () => assert.ok(mcsd.length > 0));
    for (const ex of mcsd) it(ex.file, () => roundtrip(ex, 'mcsd'));
  });

  after(() => {
    const o = results.official;
    console.log(`roundtrip: ${o.pass}/${official.length} official examples passed`);
    if (mcsdSkip) console.log(`roundtrip: mCSD examples skipped (${mcsdSkip})`);
    else console.log(`roundtrip: ${results.mcsd.pass}/${mcsd.length} mCSD examples passed`);
    for (const f of [...o.fail, ...results.mcsd.fail]) console.log(`#   failed: ${f}`);
  });
});
