// The change feed (IHE mCSD ITI-91 = FHIR history, R4 3.1.0.4): GET [base]/_history and
// [base]/[type]/_history with _since and _count, newest first, deletes as entries without a
// resource. Each walk (a first page plus every `next` link after it) shows the versions stamped up
// to its horizon H, the first page's Bundle.meta.lastUpdated, which the `_cursor` of the next
// links pins. The documented polling rule: poll without _since, follow `next` to the end, poll
// again with _since = the first page's meta.lastUpdated. A version may come twice, never not at all.
//
// 1. Out-of-order commits: 8 writers (long-lived psql sessions calling mahali_write, the SQL
//    function every write goes through) stamp a version, hold their transaction open 0-500 ms and
//    commit, while a poller follows the polling rule over HTTP every 200 ms. Every committed
//    version must reach the poller. Prints `feed: runs=R versions=V missed=0 duplicates=N`.
// 2. Negative control: the same harness against a server with MAHALI_FEED_HORIZON=off (H = now)
//    must detect a miss, or test 1 would prove nothing. Prints `feed (horizon off): missed=M`.
// 3. Ties: 5,000 versions sharing one lastUpdated, walked with _count=7: each exactly once.
// 4. Deletes, _since, _count, bad parameters, the pinned horizon of a walk, access.
//
// FEED_SEED=<n> replays the writers' random choices (the timing still differs between runs).
import assert from 'node:assert/strict';
import { mulberry32 as prng } from './lib/geo.mjs';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { assertOutcome, e2eSkipReason, psql, sample, useServer } from './lib/server.mjs';

const skip = e2eSkipReason();
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
const SEED = Number(process.env.FEED_SEED) || (Date.now() % 1e9);


function linkOf(bundle, relation) {
  return (bundle.link || []).find((l) => l.relation === relation)?.url;
}

/** type/id/version of a history entry, checking its shape; problems go to `bad`. */
function entryKey(e, bad, what) {
  const m = /\/fhir\/([A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(e.fullUrl || '');
  const v = /^W\/"(\d+)"$/.exec(e.response?.etag || '');
  if (!m || !v) {
    bad.push(`${what}: entry without a parsable fullUrl/etag: ${JSON.stringify(e).slice(0, 300)}`);
    return undefined;
  }
  const key = `${m[1]}/${m[2]}/${v[1]}`;
  const method = e.request?.method;
  if (method === 'DELETE') {
    if (e.resource) bad.push(`${what}: DELETE entry ${key} carries a resource`);
  } else if (method === 'POST' || method === 'PUT') {
    const r = e.resource;
    if (!r || r.resourceType !== m[1] || r.id !== m[2] || r.meta?.versionId !== v[1])
      bad.push(`${what}: ${method} entry ${key} does not carry that version: ${JSON.stringify(r).slice(0, 200)}`);
  } else bad.push(`${what}: entry ${key} has request.method ${JSON.stringify(method)}`);
  if (!INSTANT.test(e.response?.lastModified || '')) bad.push(`${what}: entry ${key} without response.lastModified`);
  return key;
}

/**
 * Walk one feed query: the first page and every next link. Checks what holds for every walk
 * (history Bundle, H an instant, entries stamped ≤ H and ≥ _since, no entry twice, a resource's
 * versions newest first, at most `count` entries a page, no empty page with a next link) and
 * collects violations in `bad`. Resolves {H, entries: [{key, e}], pages}.
 * H: the horizon of a walk continued from a next link (else the first page's meta.lastUpdated).
 * schema: false skips the FHIR schema check of the pages (long walks of known resources).
 */
async function walk(S, url, { as, bad, since, H, schema, count, maxPages = 20000 }) {
  const out = { H, entries: [], pages: 0 };
  const keys = new Set();
  const lastVersion = new Map(); // type/id -> the version met last in this walk
  for (let next = url; next; ) {
    assert.ok(out.pages < maxPages, `more than ${maxPages} pages from ${url}: next links loop?`);
    const r = await S.req('GET', next, { ...(as ? { as } : {}), ...(schema === false ? { schema } : {}) });
    assert.equal(r.status, 200, `GET ${next}: ${r.status} ${r.text.slice(0, 500)}`);
    const b = r.json;
    assert.equal(b?.resourceType, 'Bundle', `GET ${next}: not a Bundle`);
    assert.equal(b.type, 'history', `GET ${next}: Bundle.type`);
    if (out.pages === 0 && H === undefined) {
      out.H = b.meta?.lastUpdated;
      assert.match(out.H || '', INSTANT, `GET ${next}: Bundle.meta.lastUpdated (the feed horizon) is not an instant`);
    }
    out.pages++;
    const entries = b.entry || [];
    if (count && entries.length > count) bad.push(`${entries.length} entries on a page of _count=${count}: ${next}`);
    for (const e of entries) {
      const key = entryKey(e, bad, `GET ${next}`);
      if (!key) continue;
      const lm = Date.parse(e.response.lastModified);
      if (keys.has(key)) bad.push(`${key} twice in one walk (page ${out.pages} of ${url}, H=${out.H})`);
      keys.add(key);
      const res = key.slice(0, key.lastIndexOf('/'));
      const version = Number(key.slice(key.lastIndexOf('/') + 1));
      if (lastVersion.has(res) && lastVersion.get(res) <= version)
        bad.push(`${key} comes after version ${lastVersion.get(res)} in one walk: not newest first (${url})`);
      lastVersion.set(res, version);
      if (lm > Date.parse(out.H)) bad.push(`${key} stamped ${e.response.lastModified} is after the walk's horizon ${out.H} (page ${out.pages} of ${url})`);
      if (since && lm < Date.parse(since)) bad.push(`${key} stamped ${e.response.lastModified} is before _since=${since}`);
      out.entries.push({ key, e });
    }
    next = linkOf(b, 'next');
    if (next && entries.length === 0) bad.push(`empty page with a next link: ${next}`);
  }
  return out;
}

/** A client that follows the documented polling rule on the system history. */
function poller(S, count) {
  const p = { since: undefined, polls: 0, pages: 0, received: 0, seen: new Map(), bad: [], log: [], walks: [] };
  p.poll = async () => {
    const since = p.since;
    const url = `/fhir/_history?_count=${count}${since ? `&_since=${encodeURIComponent(since)}` : ''}`;
    const w = await walk(S, url, { as: 'admin', bad: p.bad, since, count });
    let fresh = 0;
    for (const { key } of w.entries) {
      const c = p.seen.get(key) || 0;
      if (c === 0) fresh++;
      p.seen.set(key, c + 1);
    }
    p.polls++;
    p.pages += w.pages;
    p.received += w.entries.length;
    p.log.push({ at: new Date().toISOString(), since, H: w.H, n: w.entries.length, fresh, pages: w.pages });
    p.walks.push({ since, H: w.H, keys: new Set(w.entries.map(({ key }) => key)) });
    p.since = w.H; // the rule: the next poll asks from the first page's meta.lastUpdated
    return fresh;
  };
  return p;
}

/** A long-lived psql session on one database; run(sql) resolves the output lines of sql once
 *  psql has executed all of it (an \echo marker after it). psql stops at the first error. */
class Psql {
  constructor(conninfo) {
    this.child = spawn('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', conninfo], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PGCONNECT_TIMEOUT: '10' },
    });
    this.pending = null;
    this.n = 0;
    this.stderr = '';
    this.exit = null;
    let buf = '';
    this.child.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const p = this.pending;
        if (!p) continue;
        if (line === p.marker) {
          this.pending = null;
          p.resolve(p.lines);
        } else p.lines.push(line);
      }
    });
    this.child.stderr.setEncoding('utf8').on('data', (d) => (this.stderr += d));
    this.child.stdin.on('error', () => {}); // EPIPE after psql stopped: reported by 'exit'
    this.exited = new Promise((res) => {
      const done = (code, signal) => {
        if (this.exit) return;
        this.exit = { code, signal };
        const p = this.pending;
        this.pending = null;
        if (p) p.reject(new Error(`psql stopped (${code ?? signal}) while running:\n${p.sql}\nstderr: ${this.stderr}`));
        res(this.exit);
      };
      this.child.on('exit', done);
      this.child.on('error', (e) => {
        this.stderr += String(e);
        done(-1, null);
      });
    });
  }

  run(sql) {
    assert.equal(this.pending, null, 'one statement at a time per psql session');
    if (this.exit) return Promise.reject(new Error(`psql has stopped (${JSON.stringify(this.exit)}): ${this.stderr}`));
    const marker = `@@feed-done-${++this.n}@@`;
    return new Promise((resolve, reject) => {
      this.pending = { marker, sql, lines: [], resolve, reject };
      this.child.stdin.write(`${sql}\n\\echo ${marker}\n`);
    });
  }

  async close() {
    if (!this.exit) this.child.stdin.end();
    const t = setTimeout(() => this.exit || this.child.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(t);
  }
}

/**
 * One writer: until `until`, BEGIN; [pg_sleep;] mahali_write(create/update/delete of one of its
 * own Organizations or Practitioners); pg_sleep(hold); COMMIT. Pushes "type/id/version" of every
 * version onto `committed` once psql has confirmed its COMMIT.
 */
async function writer({ conninfo, prefix, until, hold, rng, committed }) {
  const s = new Psql(conninfo);
  const ids = [];
  for (let k = 0; k < 3; k++) ids.push(['Organization', `${prefix}-o${k}`], ['Practitioner', `${prefix}-p${k}`]);
  const live = new Map();
  let n = 0;
  try {
    while (Date.now() < until) {
      const [type, id] = ids[Math.floor(rng() * ids.length)];
      const mode = live.get(id) && rng() < 0.1 ? 'delete' : 'update'; // update creates when absent
      n++;
      const body =
        type === 'Organization'
          ? { resourceType: type, id, active: true, name: `Feed ${prefix} ${n}` }
          : { resourceType: type, id, active: true, name: [{ family: `Feed${n}`, given: [prefix] }] };
      const content = mode === 'delete' ? 'NULL' : `$json$${JSON.stringify(body)}$json$::jsonb`;
      const index = mode === 'delete' ? 'NULL' : `'[]'::jsonb`;
      // sometimes the transaction starts well before its version is stamped
      const pre = rng() < 0.25 ? `SELECT pg_sleep(${(rng() * 0.1).toFixed(3)});\n` : '';
      const out = await s.run(
        `BEGIN;\n${pre}SELECT 'v=' || o_version || ' noop=' || o_noop FROM mahali_write('${type}', '${id}', '${mode}', ${content}, NULL, 'e2e-feed', NULL, ${index});`,
      );
      const m = out.map((l) => /^v=(\d+) noop=(true|false)$/.exec(l)).find(Boolean);
      assert.ok(m, `mahali_write printed no version: ${JSON.stringify(out)}`);
      const h = hold[0] + rng() * (hold[1] - hold[0]);
      await s.run(`SELECT pg_sleep(${(h / 1000).toFixed(3)});\nCOMMIT;`);
      if (m[2] === 'false') committed.push(`${type}/${id}/${m[1]}`);
      live.set(id, mode !== 'delete');
    }
  } finally {
    await s.close();
  }
}

/** The first FHIR schema check compiles the validator, blocking node for seconds: do it before
 *  the writers' clock starts (it matters when this describe runs alone). */
async function warmUp(S) {
  const r = await S.req('GET', '/fhir/_history?_count=1', { as: 'admin' });
  assert.equal(r.status, 200, r.text.slice(0, 300));
}

/**
 * One run of the harness: `writers` writers for `seconds`, a poller following the polling rule
 * every 200 ms, then final polls until two in a row bring nothing new. Resolves the figures and
 * the details of every committed version the poller never saw.
 */
async function feedRun(S, { run, seconds, hold, writers = 8, count, rng }) {
  const committed = [];
  const p = poller(S, count);
  const until = Date.now() + seconds * 1000;
  let stop = false;
  let pollError;
  const polling = (async () => {
    while (!stop) {
      const t = Date.now();
      await p.poll();
      await sleep(Math.max(0, 200 - (Date.now() - t)));
    }
  })().catch((e) => {
    pollError = e;
  });
  const results = await Promise.allSettled(
    Array.from({ length: writers }, (_, w) =>
      writer({ conninfo: S.conninfo, prefix: `r${run}w${w}`, until, hold, rng: prng(Math.floor(rng() * 2 ** 31)), committed }),
    ),
  );
  stop = true;
  await polling;
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  if (pollError) throw pollError;
  let quiet = 0;
  for (let i = 0; i < 50 && quiet < 2; i++) {
    quiet = (await p.poll()) === 0 ? quiet + 1 : 0;
    await sleep(200);
  }
  assert.equal(quiet, 2, 'the feed did not come to rest after the writers stopped');
  const missed = committed.filter((k) => !p.seen.has(k));
  // Each walk holds every committed version stamped from its _since up to its horizon H. Those
  // stamped in H's own millisecond may commit after the walk read them: the next poll (_since = H,
  // inclusive) brings them, so they are not counted here.
  const stamps = new Map(
    (
      await psql(
        `SELECT rtype || '/' || id || '/' || version || ' ' || to_char(last_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') FROM resource_history WHERE id LIKE 'r${run}w%'`,
        S.dbname,
      )
    )
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '))
      .map(([k, t]) => [k, Date.parse(t)]),
  );
  let incomplete = 0;
  for (const w of p.walks) {
    const lo = w.since === undefined ? -Infinity : Date.parse(w.since);
    const hi = Date.parse(w.H);
    for (const k of committed) {
      const t = stamps.get(k);
      if (t >= lo && t < hi && !w.keys.has(k)) {
        if (incomplete++ < 10) p.bad.push(`the walk since=${w.since} H=${w.H} lacks ${k} stamped ${new Date(t).toISOString()}`);
      }
    }
  }
  const details = [];
  for (const k of missed.slice(0, 10)) {
    const [type, id, version] = k.split('/');
    const row = await psql(
      `SELECT seq || ' ' || to_char(last_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || ' ' || method || ' txid=' || txid FROM resource_history WHERE rtype = '${type}' AND id = '${id}' AND version = ${Number(version)}`,
      S.dbname,
    );
    const stamp = row.trim().split(' ')[1];
    const around = p.log.filter((l) => l.H && stamp && Math.abs(Date.parse(l.H) - Date.parse(stamp)) < 1500);
    details.push(`${k}: seq/stamp/method ${row.trim() || '(not in resource_history!)'}; polls around it: ${JSON.stringify(around)}`);
  }
  return {
    versions: committed.length,
    missed: missed.length,
    duplicates: p.received - p.seen.size,
    incomplete,
    polls: p.polls,
    pages: p.pages,
    bad: p.bad,
    details,
  };
}

describe('feed', { skip }, () => {
  describe('history API: ties, deletes, _since, _count, _cursor', () => {
    const S = useServer('feed_api');
    const TIE = '2020-02-02T02:02:02.202Z';
    const N_TIES = 5000;

    it(`${N_TIES} versions sharing one lastUpdated are each walked exactly once with _count=7`, async () => {
      await psql(
        `SELECT count(*) FROM generate_series(1, ${N_TIES}) g, LATERAL mahali_write('Organization', 'tie-' || g, 'update', ` +
          `jsonb_build_object('resourceType', 'Organization', 'id', 'tie-' || g, 'active', true, 'name', 'Tie ' || g), ` +
          `NULL, 'e2e-feed', NULL, '[]'::jsonb) w`,
        S.dbname,
      );
      const n = await psql(
        `UPDATE resource SET last_updated = '${TIE}', content = jsonb_set(content, '{meta,lastUpdated}', '"${TIE}"') WHERE rtype = 'Organization' AND id LIKE 'tie-%';` +
          `UPDATE resource_history SET last_updated = '${TIE}', content = jsonb_set(content, '{meta,lastUpdated}', '"${TIE}"') WHERE rtype = 'Organization' AND id LIKE 'tie-%';` +
          `SELECT count(DISTINCT last_updated) || ' ' || count(*) FROM resource_history WHERE rtype = 'Organization' AND id LIKE 'tie-%'`,
        S.dbname,
      );
      assert.equal(n.trim(), `1 ${N_TIES}`, 'the tie versions share one last_updated');

      const bad = [];
      const w = await walk(S, `/fhir/Organization/_history?_since=${encodeURIComponent(TIE)}&_count=7`, { bad, since: TIE, schema: false, count: 7 });
      const ties = w.entries.filter(({ key }) => key.startsWith('Organization/tie-'));
      const counts = new Map();
      for (const { key, e } of ties) {
        counts.set(key, (counts.get(key) || 0) + 1);
        assert.equal(Date.parse(e.response.lastModified), Date.parse(TIE), `${key}: lastModified`);
      }
      let missed = 0;
      for (let g = 1; g <= N_TIES; g++) if (!counts.has(`Organization/tie-${g}/1`)) missed++;
      const duplicates = ties.length - counts.size;
      console.log(`feed ties: versions=${counts.size} pages=${w.pages} duplicates=${duplicates} missed=${missed}`);
      assert.deepEqual(bad, [], 'walk problems');
      assert.equal(missed, 0, 'tie versions never walked');
      assert.equal(duplicates, 0, 'tie versions walked twice');
      assert.equal(counts.size, N_TIES);
      assert.equal(w.entries.length, N_TIES, 'nothing but the tie versions in this database');
      assert.ok(w.pages >= Math.ceil(N_TIES / 7), `${w.pages} pages of at most 7 entries for ${N_TIES} versions`);
    });

    it('_count bounds every page: 1, 7 and 100000 (at most 500); not a whole number: 400', async () => {
      const url = (c) => `/fhir/Organization/_history?_since=${encodeURIComponent(TIE)}&_count=${c}`;
      const one = await S.req('GET', url(1));
      assert.equal(one.status, 200, one.text.slice(0, 500));
      assert.equal(one.json.entry?.length, 1, '_count=1');
      assert.ok(linkOf(one.json, 'next'), '_count=1: next link while more remain');
      const seven = await S.req('GET', url(7));
      assert.equal(seven.json.entry?.length, 7, '_count=7');
      const big = await S.req('GET', url(100000));
      assert.equal(big.status, 200, big.text.slice(0, 500));
      const n = big.json.entry?.length || 0;
      assert.ok(n > 7 && n <= 500, `_count=100000 gave ${n} entries: at most 500 (README)`);
      assert.ok(linkOf(big.json, 'next'), `_count=100000 on ${N_TIES} versions: next link`);
      for (const c of ['-1', 'abc', '1.5']) assertOutcome(await S.req('GET', url(c)), 400, ['value', 'invalid'], { what: `_count=${c}` });
      // big pages (the server streams them in chunks): the same versions, each once
      const bad = [];
      const w = await walk(S, url(500), { bad, since: TIE, schema: false, count: 500 });
      assert.deepEqual(bad, [], '_count=500 walk');
      assert.equal(new Set(w.entries.map(({ key }) => key)).size, N_TIES, '_count=500 walk: every tie version');
      assert.equal(w.entries.length, N_TIES, '_count=500 walk: each once');
    });

    it('a delete is an entry with request.method DELETE and no resource; history keeps every version', async () => {
      const { id, resource: v1 } = await S.create(sample('Organization', { name: 'Feed delete me' }));
      const body = { ...v1, name: 'Feed delete me (renamed)' };
      delete body.meta;
      const u = await S.req('PUT', `/fhir/Organization/${id}`, { body, as: 'editor' });
      assert.equal(u.status, 200, u.text.slice(0, 500));
      const d = await S.req('DELETE', `/fhir/Organization/${id}`, { as: 'admin' });
      assert.ok([200, 204].includes(d.status), `DELETE: ${d.status} ${d.text.slice(0, 300)}`);

      const inst = await S.req('GET', `/fhir/Organization/${id}/_history`);
      assert.equal(inst.status, 200, inst.text.slice(0, 500));
      const es = inst.json.entry || [];
      assert.deepEqual(
        es.map((e) => [e.request?.method, e.response?.etag]),
        [
          ['DELETE', 'W/"3"'],
          ['PUT', 'W/"2"'],
          ['POST', 'W/"1"'],
        ],
        'instance history, newest first',
      );
      assert.equal(es[0].resource, undefined, 'the DELETE entry has no resource');
      assert.equal(es[0].request.url, `Organization/${id}`);
      assert.match(es[0].response.status, /^20[04]\b/);
      assert.equal(es[1].resource?.name, 'Feed delete me (renamed)');

      const bad = [];
      const since = v1.meta.lastUpdated;
      for (const [url, as] of [
        [`/fhir/Organization/_history?_since=${encodeURIComponent(since)}&_count=2`, undefined],
        [`/fhir/_history?_since=${encodeURIComponent(since)}&_count=2`, 'admin'],
      ]) {
        const w = await walk(S, url, { as, bad, since });
        const mine = w.entries.filter(({ key }) => key.startsWith(`Organization/${id}/`));
        assert.deepEqual(
          mine.map(({ key, e }) => `${key} ${e.request.method}`),
          [`Organization/${id}/3 DELETE`, `Organization/${id}/2 PUT`, `Organization/${id}/1 POST`],
          `${url}: the three versions, newest first`,
        );
      }
      assert.deepEqual(bad, []);
    });

    it('_since is inclusive and leaves out what was stamped before it (any zone offset)', async () => {
      const a = await S.create(sample('Organization', { name: 'Feed before' }));
      let b;
      for (let k = 0; k < 200; k++) {
        b = await S.create(sample('Organization', { name: 'Feed after' }));
        if (Date.parse(b.resource.meta.lastUpdated) > Date.parse(a.resource.meta.lastUpdated)) break;
        await sleep(2);
      }
      const tb = b.resource.meta.lastUpdated;
      assert.ok(Date.parse(tb) > Date.parse(a.resource.meta.lastUpdated), 'a later stamp');
      const ids = async (since) => {
        const bad = [];
        const w = await walk(S, `/fhir/Organization/_history?_since=${encodeURIComponent(since)}`, { bad, since });
        assert.deepEqual(bad, [], `_since=${since}`);
        return w.entries.map(({ key }) => key);
      };
      const atB = await ids(tb);
      assert.ok(atB.includes(`Organization/${b.id}/1`), '_since = a version\'s lastUpdated includes it');
      assert.ok(!atB.includes(`Organization/${a.id}/1`), '_since leaves out a version stamped before it');
      // the same instant written at +01:00
      const d = new Date(Date.parse(tb) + 3600e3).toISOString().replace('Z', '+01:00');
      assert.deepEqual(await ids(d), atB, `_since=${d} is the same instant as ${tb}`);
      const atA = await ids(a.resource.meta.lastUpdated);
      assert.ok(atA.includes(`Organization/${a.id}/1`) && atA.includes(`Organization/${b.id}/1`));
      const future = new Date(Date.now() + 3600e3).toISOString();
      const r = await S.req('GET', `/fhir/Organization/_history?_since=${encodeURIComponent(future)}`);
      assert.equal(r.status, 200);
      assert.equal((r.json.entry || []).length, 0, '_since in the future');
      assert.equal(linkOf(r.json, 'next'), undefined);
    });

    it('a bad _since is 400 with an OperationOutcome', async () => {
      for (const v of ['yesterday', '2026-01-31 08:00:00Z', '2026-01-31T08:00:00', '2026-01-31T8:00:00Z', '2026-13-01T00:00:00Z', '2026-02-30T00:00:00Z', '2025-02-29', '2026-00', '20260131']) {
        const r = await S.req('GET', `/fhir/Organization/_history?_since=${encodeURIComponent(v)}`);
        assertOutcome(r, 400, ['value', 'invalid'], { what: `_since=${v}` });
        assert.deepEqual(r.json.issue[0].expression, ['_since'], `_since=${v}: the outcome names _since`);
      }
      assertOutcome(await S.req('GET', `/fhir/_history?_since=nope`, { as: 'admin' }), 400, ['value', 'invalid'], { what: 'system _since=nope' });
      // partial dateTimes mean their start in UTC: every version from that point
      for (const v of ['2020', '2020-02', '2020-02-02', '2020-02-02T02:02+00:00']) {
        const r = await S.req('GET', `/fhir/Organization/_history?_since=${encodeURIComponent(v)}&_count=1`);
        assert.equal(r.status, 200, `_since=${v}: ${r.status} ${r.text.slice(0, 300)}`);
        assert.equal(r.json.entry?.length, 1, `_since=${v}: the tie versions are after it`);
      }
      const later = await S.req('GET', `/fhir/Organization/_history?_since=2020-02-03&_count=500`);
      assert.equal(later.status, 200);
      assert.ok(!(later.json.entry || []).some((e) => e.response.lastModified === "2020-02-02T02:02:02.202Z"), '_since=2020-02-03 leaves out the versions of 2020-02-02');
    });

    it('a bad _cursor is 400 with an OperationOutcome', async () => {
      for (const v of ['garbage', '0', '12', '-5~2026-01-01T00:00:00.000Z', '12~yesterday', '~2026-01-01T00:00:00.000Z', '12~']) {
        const r = await S.req('GET', `/fhir/Organization/_history?_cursor=${encodeURIComponent(v)}`);
        assertOutcome(r, 400, ['value', 'invalid'], { what: `_cursor=${v}` });
      }
      assertOutcome(await S.req('GET', `/fhir/_history?_cursor=garbage`, { as: 'admin' }), 400, ['value', 'invalid'], { what: 'system _cursor=garbage' });
    });

    it('the next links pin the walk\'s horizon; the next poll from it brings what was stamped later', async () => {
      // Four versions in seq order; the oldest (smallest seq) gets a stamp 2 s ahead, as a version
      // stamped after the first page but sorted before the cursor would have.
      const made = [];
      for (let k = 0; k < 4; k++) made.push(await S.create(sample('Organization', { name: `Feed pin ${k}` })));
      const since = made[0].resource.meta.lastUpdated;
      const ahead = (await psql(
        `UPDATE resource_history SET last_updated = date_trunc('milliseconds', clock_timestamp()) + interval '2 s' ` +
          `WHERE rtype = 'Organization' AND id = '${made[0].id}' ` +
          `RETURNING to_char(last_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`,
        S.dbname,
      )).trim();
      const url = `/fhir/Organization/_history?_since=${encodeURIComponent(since)}&_count=1`;
      const first = await S.req('GET', url);
      assert.equal(first.status, 200, first.text.slice(0, 500));
      const H = first.json.meta.lastUpdated;
      if (Date.parse(H) >= Date.parse(ahead)) {
        console.log(`# feed pin: the first page came after ${ahead} (H=${H}): too slow to tell, not checked`);
        return;
      }
      assert.deepEqual((first.json.entry || []).map((e) => e.resource?.id), [made[3].id], 'first page: the newest');
      const next = linkOf(first.json, 'next');
      assert.ok(next, 'a next link');
      while (Date.now() <= Date.parse(ahead) + 200) await sleep(50);
      const bad = [];
      const rest = await walk(S, next, { bad, H });
      const ids = new Set(made.map((m) => m.id));
      assert.deepEqual(
        rest.entries.map(({ e }) => e.resource?.id).filter((id) => ids.has(id)),
        [made[2].id, made[1].id],
        `the rest of the walk from ${next}: only what was stamped up to H=${H} (not ${made[0].id}, stamped ${ahead})`,
      );
      const again = await walk(S, `/fhir/Organization/_history?_since=${encodeURIComponent(H)}`, { bad, since: H });
      assert.ok(again.entries.some(({ key }) => key === `Organization/${made[0].id}/1`), 'the next poll (_since = H) brings the later-stamped version');
      assert.deepEqual(bad, []);
    });

    it('system, Practitioner and PractitionerRole history need a token', async () => {
      for (const p of ['/fhir/_history', '/fhir/Practitioner/_history', '/fhir/PractitionerRole/_history']) {
        const r = await S.req('GET', p);
        assert.equal(r.status, 401, `anonymous GET ${p}: ${r.status}`);
        const ok = await S.req('GET', p, { as: 'admin' });
        assert.equal(ok.status, 200, `admin GET ${p}: ${ok.status} ${ok.text.slice(0, 300)}`);
      }
    });
  });

  describe('out-of-order commits: every committed version reaches a client that follows the polling rule', () => {
    const S = useServer('feed_safe', { roles: ['admin'] });

    it('8 writers holding their transactions 0-500 ms, 3 runs: missed=0', { timeout: 240000 }, async () => {
      await warmUp(S);
      const rng = prng(SEED);
      const counts = [3, 7, 50];
      const tot = { versions: 0, missed: 0, duplicates: 0, incomplete: 0, polls: 0, pages: 0 };
      const problems = [];
      for (let run = 0; run < counts.length; run++) {
        const f = await feedRun(S, { run, seconds: 8, hold: [0, 500], count: counts[run], rng });
        console.log(`# feed run ${run + 1}: _count=${counts[run]} versions=${f.versions} missed=${f.missed} duplicates=${f.duplicates} incomplete-walks=${f.incomplete} polls=${f.polls} pages=${f.pages}`);
        for (const k of Object.keys(tot)) tot[k] += f[k];
        problems.push(...f.details.map((d) => `run ${run + 1}: missed ${d}`), ...f.bad.slice(0, 10).map((b) => `run ${run + 1}: ${b}`));
      }
      console.log(`feed: runs=${counts.length} versions=${tot.versions} missed=${tot.missed} duplicates=${tot.duplicates} (incomplete walks=${tot.incomplete} polls=${tot.polls} pages=${tot.pages} seed=${SEED})`);
      assert.ok(tot.versions >= 24, `the writers committed ${tot.versions} versions`);
      assert.equal(tot.missed, 0, `committed versions the polling client never saw (a feed bug):\n${problems.join('\n')}`);
      assert.deepEqual(problems, [], 'walk problems');
    });
  });

  describe('negative control: MAHALI_FEED_HORIZON=off', () => {
    const S = useServer('feed_off', { roles: ['admin'], env: { MAHALI_FEED_HORIZON: 'off' } });

    it('the same harness detects missed versions when the horizon is "now"', { timeout: 240000 }, async () => {
      await warmUp(S);
      const rng = prng(SEED + 1);
      let missed = 0;
      let runs = 0;
      let f;
      // stamp early, commit late: 150-500 ms between a version's stamp and its commit
      for (; runs < 5 && missed === 0; runs++) {
        f = await feedRun(S, { run: runs, seconds: 4, hold: [150, 500], count: 25, rng });
        missed += f.missed;
      }
      console.log(`feed (horizon off): missed=${missed} of versions=${f.versions} in run ${runs} (runs=${runs}, duplicates=${f.duplicates}, seed=${SEED})`);
      assert.ok(missed > 0, 'with MAHALI_FEED_HORIZON=off the harness must detect missed versions, or the positive test proves nothing');
    });
  });
});
