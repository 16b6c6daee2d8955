// Helpers shared by every end-to-end test file (tests/e2e/*.test.mjs).
//
// Environment (set by ctest, see tests/CMakeLists.txt):
//   MAHALI_BIN         the mahali binary
//   MAHALI_TEST_DIR    the folder where tests/harness/pg_up.sh wrote `conninfo`
//   MAHALI_SOURCE_DIR  the checkout (../shared/conformance is next to it)
//
// Typical use:
//   const skip = e2eSkipReason();
//   describe('crud', { skip }, () => {
//     const S = useServer('crud');            // fresh database + server for this file
//     it('reads', async () => { const r = await S.req('GET', '/fhir/metadata'); ... });
//   });
//
// Every response that carries a JSON body goes through the FHIR R4 JSON schema (lib/schema.mjs)
// and every non-empty /fhir response must be `application/fhir+json; charset=utf-8`: the request
// helper throws otherwise, which fails the calling test.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, afterEach, before, beforeEach } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertSchemaValid, schemaSkipReason } from './schema.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.MAHALI_SOURCE_DIR || path.resolve(HERE, '../../..');
export const SHARED_DIR = path.join(SOURCE_DIR, '..', 'shared');
export const BIN = process.env.MAHALI_BIN || path.join(SOURCE_DIR, 'build', 'mahali');
export const TEST_DIR = process.env.MAHALI_TEST_DIR || path.join(SOURCE_DIR, 'build', 'testenv');
export const CONNINFO_FILE = path.join(TEST_DIR, 'conninfo');

export const FHIR_JSON = 'application/fhir+json';
export const TYPES = [
  'Organization',
  'Location',
  'HealthcareService',
  'Practitioner',
  'PractitionerRole',
  'Endpoint',
  'OrganizationAffiliation',
];
/** Types anyone may read; the others (Practitioner, PractitionerRole) need a token. */
export const PUBLIC_TYPES = ['Organization', 'Location', 'HealthcareService', 'Endpoint', 'OrganizationAffiliation'];
export const PROTECTED_TYPES = ['Practitioner', 'PractitionerRole'];

// ---- skipping ---------------------------------------------------------------------------------

/** Why the e2e tests cannot run (no test cluster, no binary), or undefined when they can. */
export function e2eSkipReason() {
  if (!existsSync(CONNINFO_FILE))
    return `no test database: ${CONNINFO_FILE} is absent (tests/harness/pg_up.sh did not run or found no PostgreSQL+PostGIS)`;
  if (!existsSync(BIN)) return `no mahali binary at ${BIN}`;
  return undefined;
}

export function readConninfo() {
  return readFileSync(CONNINFO_FILE, 'utf8').trim().split('\n').pop().trim();
}

// ---- conninfo ---------------------------------------------------------------------------------

/** The conninfo (key=value string or postgres:// URI) with its database replaced by dbname. */
export function withDbname(conninfo, dbname) {
  if (/^postgres(ql)?:\/\//.test(conninfo)) {
    const u = new URL(conninfo);
    u.pathname = `/${encodeURIComponent(dbname)}`;
    return u.toString();
  }
  const parts = [];
  const re = /(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/g;
  let m;
  let found = false;
  while ((m = re.exec(conninfo))) {
    if (m[1] === 'dbname') {
      parts.push(`dbname=${dbname}`);
      found = true;
    } else parts.push(`${m[1]}=${m[2]}`);
  }
  if (!found) parts.push(`dbname=${dbname}`);
  return parts.join(' ');
}

// ---- processes --------------------------------------------------------------------------------

/** Run a command to completion. Resolves {code, signal, stdout, stderr}; rejects on timeout. */
export function run(cmd, args, { timeout = 60000, env, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, ...(env || {}) },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`timeout after ${timeout} ms: ${cmd} ${args.join(' ')}\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeout);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

/** Run and require exit 0; resolves the result. */
export async function runOk(cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

function psqlPath() {
  for (const p of (process.env.PATH || '').split(':')) if (p && existsSync(path.join(p, 'psql'))) return path.join(p, 'psql');
  return 'psql';
}

/** Run one SQL command as the cluster's superuser on database `db` of the test cluster. */
export async function psql(sql, db = 'postgres') {
  const r = await run(psqlPath(), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', withDbname(readConninfo(), db), '-c', sql], {
    timeout: 60000,
    env: { PGCONNECT_TIMEOUT: '10' },
  });
  if (r.code !== 0) throw new Error(`psql -c ${sql}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

/** A new empty database on the test cluster: {dbname, conninfo}. */
export async function createDatabase(name) {
  const safe = String(name).toLowerCase().replace(/[^a-z0-9]+/g, '_').slice(0, 30);
  const dbname = `e2e_${safe}_${randomBytes(4).toString('hex')}`;
  await psql(`CREATE DATABASE ${dbname}`);
  return { dbname, conninfo: withDbname(readConninfo(), dbname) };
}

export async function dropDatabase(dbname) {
  await psql(`DROP DATABASE IF EXISTS ${dbname} WITH (FORCE)`);
}

/** `mahali token create --role ROLE ...where` (where: ['--database', c] or ['--data', d]);
 *  resolves the token (the last non-empty stdout line). */
export async function createToken(role, where, { name } = {}) {
  const args = ['token', 'create', '--role', role, '--name', name || `e2e-${role}`, ...where];
  const r = await runOk(BIN, args, { timeout: 120000 });
  const lines = r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  assert.ok(lines.length > 0, `mahali ${args.join(' ')} printed no token`);
  return lines[lines.length - 1];
}

/**
 * Start `mahali serve ARGS` and wait for `mahali: listening on http://127.0.0.1:PORT`.
 * Resolves {base, port, child, pid, output(), stderr(), exited, stop(signal, timeout)}.
 * stop() resolves {code, signal} (SIGKILL after `timeout` ms without exit, flagged killed:true).
 */
export function startServe(args, { timeout = 60000, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['serve', ...args], {
      env: { ...process.env, ...(env || {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let settled = false;
    let exitInfo = null;
    const exited = new Promise((res) => {
      child.on('exit', (code, signal) => {
        exitInfo = { code, signal };
        res(exitInfo);
      });
    });
    const h = {
      child,
      pid: child.pid,
      exited,
      stderr: () => stderr,
      output: () => `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`,
      running: () => exitInfo === null,
      async stop(signal = 'SIGTERM', stopTimeout = 20000) {
        if (exitInfo) return exitInfo;
        child.kill(signal);
        let timer;
        const t = new Promise((res) => (timer = setTimeout(() => res(null), stopTimeout)));
        const r = await Promise.race([exited, t]);
        clearTimeout(timer);
        if (r) return r;
        child.kill('SIGKILL');
        const k = await exited;
        return { ...k, killed: true };
      },
    };
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      child.kill('SIGKILL');
      reject(new Error(`mahali serve ${args.join(' ')} did not print its listening line within ${timeout} ms\n${h.output()}`));
    }, timeout);
    child.stdout.setEncoding('utf8').on('data', (d) => {
      stdout += d;
      const m = /^mahali: listening on (http:\/\/127\.0\.0\.1:(\d+))(?=[\s/]|$)/m.exec(stdout);
      if (m && !settled) {
        settled = true;
        clearTimeout(timer);
        h.base = m[1];
        h.port = Number(m[2]);
        resolve(h);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
    exited.then(({ code, signal }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`mahali serve ${args.join(' ')} exited (${code ?? signal}) before listening\n${h.output()}`));
    });
  });
}

// ---- HTTP -------------------------------------------------------------------------------------

// One connection per request: no race with the server closing idle keep-alive connections.
const agent = new http.Agent({ keepAlive: false, maxSockets: 32 });

/** Whether a Content-Type is FHIR JSON with charset utf-8. */
export function isFhirJsonUtf8(ct) {
  return /^application\/fhir\+json\s*;\s*charset=utf-8\s*$/i.test(ct || '');
}

/**
 * One HTTP request. opts: headers, body (object → JSON text; string/Buffer sent as is),
 * contentType (default application/fhir+json when there is a body), token (bearer),
 * timeout (ms, default 30 s), schema (default true), agent (false for a fresh connection).
 * Resolves {status, headers, text, json, buffer}. Throws when a JSON body fails the FHIR schema
 * or when a non-empty /fhir response is not `application/fhir+json; charset=utf-8`.
 */
export function request(base, method, urlPath, opts = {}) {
  const url = new URL(urlPath, base);
  const headers = { ...(opts.headers || {}) };
  let body = opts.body;
  if (body !== undefined && body !== null && !Buffer.isBuffer(body) && typeof body !== 'string') body = JSON.stringify(body);
  if (body !== undefined && body !== null) {
    if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type') && opts.contentType !== null)
      headers['Content-Type'] = opts.contentType || FHIR_JSON;
    headers['Content-Length'] = String(Buffer.byteLength(body));
  }
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (!Object.keys(headers).some((k) => k.toLowerCase() === 'accept')) headers.Accept = FHIR_JSON;
  const timeout = opts.timeout || 30000;
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err, val) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(val);
    };
    const timer = setTimeout(() => {
      req.destroy();
      finish(new Error(`${method} ${url.pathname}${url.search}: no complete response within ${timeout} ms`));
    }, timeout);
    const req = http.request(url, { method, headers, agent: opts.agent === false ? false : agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', (e) => finish(e));
      res.on('end', () => {
        const buffer = Buffer.concat(chunks);
        const text = buffer.toString('utf8');
        const r = { status: res.statusCode, headers: res.headers, text, json: undefined, buffer };
        try {
          checkResponse(method, url, r, opts);
        } catch (e) {
          finish(e);
          return;
        }
        finish(null, r);
      });
    });
    req.on('error', (e) => {
      // A server may answer (413) and close before reading a large body: the response wins.
      setTimeout(() => finish(new Error(`${method} ${url.pathname}${url.search}: ${e.message}`)), 2000);
    });
    if (body !== undefined && body !== null) req.end(body);
    else req.end();
  });
}

function checkResponse(method, url, r, opts) {
  const what = `${method} ${url.pathname}${url.search} → ${r.status}`;
  const ct = r.headers['content-type'] || '';
  const isFhir = url.pathname === '/fhir' || url.pathname.startsWith('/fhir/');
  const wantsXml = /xml/i.test(String(opts.headers?.Accept || opts.headers?.accept || '')) || /[?&]_format=[^&]*xml/i.test(url.search);
  if (r.text.length > 0 && isFhir && /[?&]_format=(text\/)?csv/.test(url.search) && /^text\/csv; charset=utf-8$/i.test(ct)) return;
  if (r.text.length > 0 && isFhir && wantsXml && /^application\/fhir\+xml;\s*charset=utf-8$/i.test(ct)) return;
  // the map layer operation answers GeoJSON (not a FHIR resource): valid JSON, no FHIR schema
  if (r.status === 200 && isFhir && url.pathname.endsWith('/$boundaries') && /^application\/geo\+json; charset=utf-8$/i.test(ct)) {
    r.json = JSON.parse(r.text);
    return;
  }
  if (r.text.length > 0 && isFhir && !isFhirJsonUtf8(ct))
    throw new Error(`${what}: Content-Type is ${JSON.stringify(ct)}, expected "application/fhir+json; charset=utf-8"\nbody: ${r.text.slice(0, 500)}`);
  if (r.text.length > 0 && /json/i.test(ct)) {
    try {
      r.json = JSON.parse(r.text);
    } catch (e) {
      throw new Error(`${what}: body is not valid JSON (${e.message}): ${r.text.slice(0, 300)}`);
    }
    if (opts.schema !== false) assertSchemaValid(r.json, what);
  }
}

// ---- assertions -------------------------------------------------------------------------------

/** Assert an OperationOutcome error response: status, issue[0].severity error (or fatal),
 *  issue[0].code (string or list of allowed codes), and optionally an expression substring. */
export function assertOutcome(r, status, code, { expression, what } = {}) {
  const label = what ? `${what}: ` : '';
  const statuses = Array.isArray(status) ? status : [status];
  assert.ok(statuses.includes(r.status), `${label}expected status ${statuses.join('/')}, got ${r.status}: ${r.text.slice(0, 600)}`);
  assert.ok(r.json, `${label}expected an OperationOutcome body, got ${JSON.stringify(r.text.slice(0, 300))}`);
  assert.equal(r.json.resourceType, 'OperationOutcome', `${label}expected an OperationOutcome: ${r.text.slice(0, 300)}`);
  assert.ok(Array.isArray(r.json.issue) && r.json.issue.length > 0, `${label}OperationOutcome without issue`);
  const issue = r.json.issue[0];
  assert.ok(['error', 'fatal'].includes(issue.severity), `${label}issue[0].severity is ${issue.severity}, expected error`);
  if (code !== undefined) {
    const codes = Array.isArray(code) ? code : [code];
    assert.ok(codes.includes(issue.code), `${label}issue[0].code is ${JSON.stringify(issue.code)}, expected ${codes.join(' or ')}: ${r.text.slice(0, 600)}`);
  }
  if (expression !== undefined) {
    const exprs = r.json.issue.flatMap((i) => [...(i.expression || []), ...(i.location || [])]);
    assert.ok(
      exprs.some((e) => e === expression || e.includes(expression)),
      `${label}no issue.expression names ${expression}: ${JSON.stringify(exprs)} in ${r.text.slice(0, 600)}`,
    );
  }
  return issue;
}

/** A new minimal valid resource of each type (Location gets a position). */
export function sample(type, extra = {}) {
  const base = {
    Organization: { resourceType: 'Organization', active: true, name: 'E2E Organization' },
    Location: {
      resourceType: 'Location',
      status: 'active',
      name: 'E2E Location',
      mode: 'instance',
      position: { longitude: -13.2317, latitude: 8.4657 },
    },
    HealthcareService: { resourceType: 'HealthcareService', active: true, name: 'E2E Service' },
    Practitioner: { resourceType: 'Practitioner', active: true, name: [{ family: 'Kamara', given: ['Aminata'] }] },
    PractitionerRole: { resourceType: 'PractitionerRole', active: true, code: [{ text: 'nurse' }] },
    Endpoint: {
      resourceType: 'Endpoint',
      status: 'active',
      connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
      payloadType: [{ text: 'any' }],
      address: 'https://example.org/fhir',
    },
    OrganizationAffiliation: { resourceType: 'OrganizationAffiliation', active: true, code: [{ text: 'partner' }] },
  }[type];
  assert.ok(base, `no sample for ${type}`);
  return { ...structuredClone(base), ...extra };
}

// ---- per-file server --------------------------------------------------------------------------

/**
 * Register before/after hooks (call inside a describe) that create a fresh database, migrate it,
 * start `mahali serve --listen 127.0.0.1:0 --database ...` and create one token per role.
 * The server is stopped (SIGTERM, must exit 0) and the database dropped in `after`, even when
 * tests fail. The server's stderr of a failing test is printed.
 * env: extra environment variables for the server process (e.g. { MAHALI_FEED_HORIZON: 'off' }).
 * Returns a handle filled in by `before`: {base, conninfo, dbname, tokens, server, req(...)}.
 * S.req(method, path, {as: 'editor'|'reader'|'admin', token, ...request opts}).
 */
export function useServer(name, { roles = ['reader', 'editor', 'admin'], migrate = true, serveArgs = [], env } = {}) {
  const S = { tokens: {}, failed: false };
  let mark = 0;
  before(async () => {
    const db = await createDatabase(name);
    S.dbname = db.dbname;
    S.conninfo = db.conninfo;
    if (migrate) await runOk(BIN, ['migrate', '--database', S.conninfo], { timeout: 120000 });
    S.server = await startServe(['--listen', '127.0.0.1:0', '--database', S.conninfo, ...serveArgs], { env });
    S.base = S.server.base;
    const toks = await Promise.all(roles.map((r) => createToken(r, ['--database', S.conninfo])));
    roles.forEach((r, k) => (S.tokens[r] = toks[k]));
    const why = schemaSkipReason();
    if (why) console.log(`# ${name}: ${why}`);
  }, { timeout: 180000 });
  beforeEach(() => {
    mark = S.server ? S.server.stderr().length : 0;
  });
  afterEach((t) => {
    if (t.passed === false && S.server) {
      S.failed = true;
      const tail = S.server.stderr().slice(mark);
      console.log(`# --- mahali stderr during failed test "${t.name}" ---\n${indent(tail.slice(-8000) || '(nothing)')}`);
      if (!S.server.running()) console.log(`# mahali serve is no longer running!\n${indent(S.server.output().slice(-8000))}`);
    }
  });
  after(async () => {
    let stopped = null;
    if (S.server) stopped = await S.server.stop('SIGTERM');
    if (S.dbname) {
      try {
        await dropDatabase(S.dbname);
      } catch (e) {
        console.log(`# could not drop ${S.dbname}: ${e.message}`);
      }
    }
    if (stopped && (stopped.code !== 0 || stopped.killed))
      throw new Error(`mahali serve did not exit 0 on SIGTERM: ${JSON.stringify(stopped)}\n${S.server.output().slice(-8000)}`);
  }, { timeout: 60000 });
  S.req = (method, urlPath, opts = {}) => {
    const o = { ...opts };
    if (o.as) {
      o.token = S.tokens[o.as];
      assert.ok(o.token, `no token for role ${o.as}`);
    }
    return request(S.base, method, urlPath, o);
  };
  /** POST a resource as editor and require 201; resolves {id, r, resource}. */
  S.create = async (resource, as = 'editor') => {
    const r = await S.req('POST', `/fhir/${resource.resourceType}`, { body: resource, as });
    assert.equal(r.status, 201, `POST /fhir/${resource.resourceType}: ${r.status} ${r.text.slice(0, 500)}`);
    assert.ok(r.json && r.json.id, `POST /fhir/${resource.resourceType}: no id in ${r.text.slice(0, 300)}`);
    return { id: r.json.id, r, resource: r.json };
  };
  return S;
}

function indent(s) {
  return s
    .split('\n')
    .map((l) => `#   ${l}`)
    .join('\n');
}

/** Poll fn() until it returns a truthy value or timeout; resolves that value or throws. */
export async function waitFor(fn, { timeout = 30000, interval = 50, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}
