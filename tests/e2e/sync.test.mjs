// `mahali sync --from URL` (issue 6 item 4, the IHE mCSD Update Client): mirror another mCSD
// Directory into this registry's database from its change feed, cursor kept in sync_cursor.
//
// 1. Mirror under load: six writers create, update, delete and re-create Organizations,
//    Locations (partOf chains, managingOrganization), Practitioners, PractitionerRoles,
//    HealthcareServices and Endpoints on server A for ~10 s while `mahali sync --follow
//    --interval 1` mirrors A into database B. After SIGTERM (exit 0) and one last sync, B's live
//    resources equal A's (content without meta.versionId/lastUpdated) and what A deleted is
//    deleted in B (410 from a server on B). Prints `mirror: resources=N diff=0 deleted=D`.
// 2. Incremental polls (1 updated, 1 deleted, idle), --types Organization (cursor scope).
// 3. Errors: unreachable source, wrong or no token (401), --interval 0, unknown --types.
// 4. Crash and resume: 3,000 resources on a second source; a sync is SIGKILLed once B holds
//    some but not all of them; the rerun converges with no extra version (every resource in B
//    at version 1) and a further sync changes nothing. Prints `crash: ... diff=0`.
// 5. A partOf chain spread over three apply chunks whose parents changed later: applied, not
//    rejected (the retries go on while they make progress).
// 6. The delete of a resource the mirror never had, last of its chunk, leaves the chunk applied.
// Todo (known bugs outside sync.c): a public scope without --token (web/remote.c sends an empty
// bearer token); a reference written while its target is deleted (write skew, sql/0002).
// Every summary line must add up: created + updated + deleted + unchanged + rejected = seen.
// SYNC_SEED=<n> replays the writers' random choices (the timing still differs between runs).
import assert from 'node:assert/strict';
import { mulberry32 as prng } from './lib/geo.mjs';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { BIN, createDatabase, createToken, dropDatabase, e2eSkipReason, psql, request, run, runOk, startServe, useServer } from './lib/server.mjs';

const skip = e2eSkipReason();
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
const SUMMARY = /^mahali sync: (\d+) polls?: (\d+) changes seen, (\d+) created, (\d+) updated, (\d+) deleted, (\d+) unchanged, (\d+) rejected$/m;
const SEED = Number(process.env.SYNC_SEED) || Date.now() % 1e9;


/** The end-of-run line of `mahali sync`: {polls, seen, created, updated, deleted, unchanged, rejected}. */
function summary(stderr) {
  const m = SUMMARY.exec(stderr);
  assert.ok(m, `no summary line in the sync's stderr:\n${stderr.slice(-3000)}`);
  const [polls, seen, created, updated, deleted, unchanged, rejected] = m.slice(1).map(Number);
  assert.equal(created + updated + deleted + unchanged + rejected, seen, `the counts do not add up to the changes seen: ${m[0]}`);
  return { polls, seen, created, updated, deleted, unchanged, rejected };
}

/** `mahali sync --from FROM --database CONNINFO ARGS` to completion: {code, stderr, s (summary or null)}. */
async function sync(from, conninfo, args = [], { timeout = 120000 } = {}) {
  const r = await run(BIN, ['sync', '--from', from, '--database', conninfo, ...args], { timeout });
  const m = SUMMARY.exec(r.stderr);
  return { ...r, s: m ? summary(r.stderr) : null };
}

async function syncOk(from, conninfo, args = []) {
  const r = await sync(from, conninfo, args);
  assert.equal(r.code, 0, `mahali sync ${args.join(' ')} exited ${r.code ?? r.signal}:\n${r.stderr.slice(-3000)}`);
  assert.ok(r.s, `no summary line:\n${r.stderr}`);
  return r;
}

/** Every row of `resource` in database db: Map "Type/id" → {t, id, d (deleted), v (version), c (content text without server meta)}. */
async function dump(db) {
  const out = await psql(
    `SELECT coalesce(json_agg(json_build_object('t', rtype, 'id', id, 'd', deleted, 'v', version,
            'c', mahali_strip_meta(content)::text)), '[]') FROM resource`,
    db,
  );
  const m = new Map();
  for (const r of JSON.parse(out)) m.set(`${r.t}/${r.id}`, r);
  return m;
}

/** Compare source A with mirror B. Only the types in `types` (all when undefined). */
function compare(A, B, types) {
  const problems = [];
  let resources = 0;
  let deleted = 0;
  const inScope = (r) => !types || types.includes(r.t);
  for (const [key, a] of A) {
    if (!inScope(a)) continue;
    const b = B.get(key);
    if (!a.d) {
      resources++;
      if (!b) problems.push(`${key}: live on A, absent from B`);
      else if (b.d) problems.push(`${key}: live on A, deleted in B`);
      else if (a.c !== b.c) problems.push(`${key}: content differs\n  A: ${a.c.slice(0, 400)}\n  B: ${b.c.slice(0, 400)}`);
    } else if (b) {
      if (!b.d) problems.push(`${key}: deleted on A, live in B`);
      else deleted++;
    }
  }
  for (const [key, b] of B) {
    if (!A.has(key)) problems.push(`${key}: in B, never on A`);
    else if (!inScope(b)) problems.push(`${key}: in B, but not of the types ${types}`);
  }
  return { resources, deleted, diff: problems.length, problems };
}

async function fresh(name) {
  const db = await createDatabase(name);
  await runOk(BIN, ['migrate', '--database', db.conninfo], { timeout: 120000 });
  return db;
}

async function count(db) {
  return Number((await psql('SELECT count(*) FROM resource', db)).trim());
}

/** A port nothing listens on. */
function closedPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---- the writers of test 1 ---------------------------------------------------------------------

const WTYPES = ['Organization', 'Location', 'Practitioner', 'PractitionerRole', 'HealthcareService', 'Endpoint'];

/** A writer's picture of A: live and deleted ids per type, fixed parents. Each writer refers
 *  only to its own resources and to the seeds, which nobody deletes: a reference written while
 *  another writer deletes its target can leave A itself inconsistent (see the todo test). */
function world(seeds) {
  const w = { live: {}, dead: {}, parent: new Map(seeds ? seeds.parent : []) }; // the seeds' parents are shared
  for (const t of WTYPES) {
    w.live[t] = new Set(seeds ? seeds.live[t] : []);
    w.dead[t] = new Set();
  }
  return w;
}

function pick(set, rng) {
  if (set.size === 0) return undefined;
  const k = Math.floor(rng() * set.size);
  let i = 0;
  for (const v of set) if (i++ === k) return v;
  return undefined;
}

/** A body for Type/id with references to what is live now (a parent fixed at first creation,
 *  so partOf never loops). */
function body(w, t, id, rng, tag) {
  const ref = (type) => {
    const x = pick(w.live[type], rng);
    return x ? { reference: `${type}/${x}` } : undefined;
  };
  const parentOf = (type) => {
    if (!w.parent.has(`${t}/${id}`)) {
      const p = rng() < 0.6 ? pick(w.live[type], rng) : undefined;
      w.parent.set(`${t}/${id}`, p && p !== id ? p : null);
    }
    const p = w.parent.get(`${t}/${id}`);
    return p && w.live[type].has(p) ? { reference: `${type}/${p}` } : undefined;
  };
  const drop = (o) => {
    for (const k of Object.keys(o)) if (o[k] === undefined || (Array.isArray(o[k]) && o[k].every((x) => x === undefined))) delete o[k];
    for (const k of Object.keys(o)) if (Array.isArray(o[k])) o[k] = o[k].filter((x) => x !== undefined);
    return o;
  };
  const n = `${tag} ${Math.floor(rng() * 1e6)}`;
  switch (t) {
    case 'Organization':
      return drop({ resourceType: t, id, active: rng() < 0.9, name: `Org ${n}`, partOf: parentOf('Organization') });
    case 'Location':
      return drop({
        resourceType: t,
        id,
        status: rng() < 0.9 ? 'active' : 'inactive',
        name: `Loc ${n}`,
        mode: 'instance',
        position: { longitude: -13 + Math.round(rng() * 20000) / 10000, latitude: 8 + Math.round(rng() * 10000) / 10000 },
        managingOrganization: ref('Organization'),
        partOf: parentOf('Location'),
        endpoint: rng() < 0.3 ? [ref('Endpoint')] : undefined,
      });
    case 'Practitioner':
      return {
        resourceType: t,
        id,
        active: true,
        identifier: [{ system: 'https://hr.example/sync-e2e', value: id }],
        name: [{ family: `Family ${n}`, given: ['Aminata'] }],
      };
    case 'PractitionerRole':
      return drop({
        resourceType: t,
        id,
        active: rng() < 0.8,
        practitioner: ref('Practitioner'),
        organization: ref('Organization'),
        location: [ref('Location')],
        code: [{ text: `role ${n}` }],
      });
    case 'HealthcareService':
      return drop({
        resourceType: t,
        id,
        active: true,
        name: `Service ${n}`,
        providedBy: ref('Organization'),
        location: [ref('Location')],
        endpoint: rng() < 0.3 ? [ref('Endpoint')] : undefined,
      });
    case 'Endpoint':
      return {
        resourceType: t,
        id,
        status: 'active',
        connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
        payloadType: [{ text: 'any' }],
        address: `https://example.org/fhir/${id}/${Math.floor(rng() * 1e6)}`,
      };
    default:
      throw new Error(t);
  }
}

/** One writer loop on A until `until`: creates (PUT with a fresh id, or POST), updates, deletes
 *  (admin) and re-creates (PUT of a deleted id). Errors the registry's rules cause (422 a
 *  reference to something just deleted, 409 deleting something referred to) are counted. */
async function writer(S, w, k, until, rng, stats) {
  const weights = { Organization: 3, Location: 4, Practitioner: 2, PractitionerRole: 2, HealthcareService: 2, Endpoint: 1 };
  const typeOf = () => {
    let x = rng() * 14;
    for (const t of WTYPES) if ((x -= weights[t]) < 0) return t;
    return 'Location';
  };
  let i = 0;
  while (Date.now() < until) {
    const t = typeOf();
    const op = rng();
    let r;
    if (op < 0.35 || w.live[t].size < 3) {
      const id = `w${k}-${t.slice(0, 3).toLowerCase()}-${i++}`;
      r = await S.req('PUT', `/fhir/${t}/${id}`, { body: body(w, t, id, rng, `w${k}`), as: 'editor' });
      if (r.status === 201) w.live[t].add(id);
      stats.create[r.status] = (stats.create[r.status] || 0) + 1;
    } else if (op < 0.7) {
      const id = pick(w.live[t], rng);
      r = await S.req('PUT', `/fhir/${t}/${id}`, { body: body(w, t, id, rng, `w${k}u`), as: 'editor' });
      stats.update[r.status] = (stats.update[r.status] || 0) + 1;
    } else if (op < 0.88) {
      const id = pick(w.live[t], rng);
      if (id.startsWith('seed-')) continue;
      r = await S.req('DELETE', `/fhir/${t}/${id}`, { as: 'admin' });
      if (r.status === 200 || r.status === 204) {
        w.live[t].delete(id);
        w.dead[t].add(id);
      }
      stats.delete[r.status] = (stats.delete[r.status] || 0) + 1;
    } else {
      const id = pick(w.dead[t], rng);
      if (!id) continue;
      r = await S.req('PUT', `/fhir/${t}/${id}`, { body: body(w, t, id, rng, `w${k}r`), as: 'editor' });
      if (r.status === 201 || r.status === 200) {
        w.dead[t].delete(id);
        w.live[t].add(id);
      }
      stats.recreate[r.status] = (stats.recreate[r.status] || 0) + 1;
    }
    if (r.status >= 500) stats.errors.push(`${r.status} ${r.text.slice(0, 300)}`);
    else if (r.status === 422 && stats.samples.length < 3) stats.samples.push(r.json?.issue?.[0]?.diagnostics || r.text.slice(0, 200));
    stats.n++;
  }
}

/** Start `mahali sync ... --follow` in the background: {child, stderr(), exited}. */
function follow(from, conninfo, args) {
  const child = spawn(BIN, ['sync', '--from', from, '--database', conninfo, '--follow', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  child.stdout.resume();
  const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  return { child, exited, stderr: () => stderr };
}

// ---- tests ------------------------------------------------------------------------------------

describe('sync: mirror a Directory under load', { skip }, () => {
  const S = useServer('sync_a');
  const from = () => `${S.base}/fhir`;
  const dbs = [];
  let B; // the mirror of tests 1 and 4
  after(async () => {
    for (const d of dbs) await dropDatabase(d).catch(() => {});
  });

  it('six writers for 10 s while sync --follow --interval 1 runs: B equals A (diff=0)', { timeout: 120000 }, async () => {
    B = await fresh('sync_b');
    dbs.push(B.dbname);
    const rng = prng(SEED);
    const w = world();
    const stats = { n: 0, create: {}, update: {}, delete: {}, recreate: {}, errors: [], samples: [] };
    // a few of each type first, so the writers have something to refer to
    for (const t of WTYPES)
      for (let i = 0; i < 3; i++) {
        const id = `seed-${t.slice(0, 3).toLowerCase()}-${i}`;
        const r = await S.req('PUT', `/fhir/${t}/${id}`, { body: body(w, t, id, rng, 'seed'), as: 'editor' });
        assert.equal(r.status, 201, `seed ${t}/${id}: ${r.text.slice(0, 400)}`);
        w.live[t].add(id);
      }
    const f = follow(from(), B.conninfo, ['--token', S.tokens.admin, '--interval', '1']);
    const t0 = Date.now();
    const until = t0 + 10000;
    await Promise.all([0, 1, 2, 3, 4, 5].map((k) => writer(S, world(w), k, until, prng(SEED + k + 1), stats)));
    await sleep(3000); // a poll or two after the last write
    assert.equal(f.child.exitCode, null, `sync --follow ended on its own:\n${f.stderr()}`);
    f.child.kill('SIGTERM');
    const ended = await Promise.race([f.exited, sleep(30000).then(() => null)]);
    if (!ended) f.child.kill('SIGKILL');
    assert.ok(ended, `sync --follow did not end within 30 s of SIGTERM:\n${f.stderr().slice(-3000)}`);
    assert.equal(ended.code, 0, `sync --follow exited ${ended.code ?? ended.signal} on SIGTERM:\n${f.stderr().slice(-3000)}`);
    const fs = summary(f.stderr());
    const last = await syncOk(from(), B.conninfo, ['--token', S.tokens.admin]);
    const [A, Bm] = await Promise.all([dump(S.dbname), dump(B.dbname)]);
    const c = compare(A, Bm);
    const fmt = (o) => Object.entries(o).map(([s, n]) => `${s}:${n}`).join(' ');
    console.log(
      `# seed=${SEED} writes=${stats.n} create{${fmt(stats.create)}} update{${fmt(stats.update)}} delete{${fmt(stats.delete)}} recreate{${fmt(stats.recreate)}}`,
    );
    if (stats.samples.length) console.log(`# 422 to writers, e.g.: ${stats.samples.join(' | ')}`);
    console.log(`# follow: ${JSON.stringify(fs)}; last: ${JSON.stringify(last.s)}`);
    const rejects = (f.stderr() + last.stderr).split('\n').filter((l) => / not applied: /.test(l));
    if (rejects.length) console.log(`# rejected:\n${rejects.slice(0, 20).map((l) => `#   ${l}`).join('\n')}`);
    console.log(`mirror: resources=${c.resources} diff=${c.diff} deleted=${c.deleted}`);
    assert.deepEqual(stats.errors, [], 'the source answered 5xx to writers');
    assert.ok(stats.n > 300, `only ${stats.n} writes in 10 s`);
    assert.ok(fs.polls >= 3, `sync --follow polled ${fs.polls} times`);
    assert.ok(c.deleted > 0, 'no deleted resource reached B (the writers delete)');
    assert.equal(c.diff, 0, `B differs from A:\n${c.problems.slice(0, 20).join('\n')}`);
    assert.equal(fs.rejected + last.s.rejected, 0, `rejected changes:\n${rejects.join('\n')}`);
    // what A deleted reads 410 from a server on B
    const del = [...A.values()].find((a) => a.d && Bm.get(`${a.t}/${a.id}`));
    const sb = await startServe(['--listen', '127.0.0.1:0', '--database', B.conninfo]);
    try {
      const tok = await createToken('admin', ['--database', B.conninfo]);
      const r = await request(sb.base, 'GET', `/fhir/${del.t}/${del.id}`, { token: tok });
      assert.equal(r.status, 410, `GET ${del.t}/${del.id} on B: ${r.text.slice(0, 300)}`);
    } finally {
      const st = await sb.stop();
      assert.equal(st.code, 0, 'serve on B did not exit 0');
    }
    const cur = (await psql("SELECT rtype || ' ' || (since IS NOT NULL)::text || ' ' || applied FROM sync_cursor", B.dbname)).trim().split('\n');
    assert.equal(cur.length, 1, `sync_cursor rows: ${cur}`);
    assert.match(cur[0], /^\* true \d+$/, `the cursor of a sync without --types is scope '*': ${cur}`);
  });

  it('incremental: one update → 1 updated; one delete → 1 deleted; nothing → nothing', { timeout: 60000 }, async () => {
    assert.ok(B, 'test 1 did not run');
    const tok = ['--token', S.tokens.admin];
    const none = await syncOk(from(), B.conninfo, tok);
    assert.deepEqual([none.s.created, none.s.updated, none.s.deleted, none.s.rejected], [0, 0, 0, 0], `idle poll: ${none.stderr}`);

    const org = (await psql("SELECT id FROM resource WHERE rtype = 'Organization' AND NOT deleted ORDER BY id LIMIT 1", S.dbname)).trim();
    const cur = await S.req('GET', `/fhir/Organization/${org}`, { as: 'admin' });
    assert.equal(cur.status, 200);
    const next = { ...cur.json, name: `${cur.json.name} (renamed)` };
    delete next.meta;
    const u = await S.req('PUT', `/fhir/Organization/${org}`, { body: next, as: 'editor' });
    assert.equal(u.status, 200, u.text);
    const s1 = await syncOk(from(), B.conninfo, tok);
    console.log(`# after one update: ${s1.stderr.trim().split('\n').pop()}`);
    assert.deepEqual([s1.s.created, s1.s.updated, s1.s.deleted, s1.s.rejected], [0, 1, 0, 0], s1.stderr);
    assert.equal((await psql(`SELECT content->>'name' FROM resource WHERE rtype = 'Organization' AND id = '${org}'`, B.dbname)).trim(), next.name);

    // a PractitionerRole: nothing refers to one, so it can be deleted
    const pr = (await psql("SELECT id FROM resource WHERE rtype = 'PractitionerRole' AND NOT deleted ORDER BY id LIMIT 1", S.dbname)).trim();
    assert.ok(pr, 'no live PractitionerRole on A');
    const d = await S.req('DELETE', `/fhir/PractitionerRole/${pr}`, { as: 'admin' });
    assert.ok([200, 204].includes(d.status), d.text);
    const s2 = await syncOk(from(), B.conninfo, tok);
    console.log(`# after one delete: ${s2.stderr.trim().split('\n').pop()}`);
    assert.deepEqual([s2.s.created, s2.s.updated, s2.s.deleted, s2.s.rejected], [0, 0, 1, 0], s2.stderr);
    assert.equal((await psql(`SELECT deleted FROM resource WHERE rtype = 'PractitionerRole' AND id = '${pr}'`, B.dbname)).trim(), 't');
    const c = compare(await dump(S.dbname), await dump(B.dbname));
    assert.equal(c.diff, 0, c.problems.slice(0, 10).join('\n'));
  });

  it('--types Organization pulls Organizations only (cursor scope Organization)', { timeout: 60000 }, async () => {
    const B3 = await fresh('sync_types');
    dbs.push(B3.dbname);
    const r = await syncOk(from(), B3.conninfo, ['--types', 'Organization', '--token', S.tokens.admin]);
    console.log(`# --types Organization: ${r.stderr.trim().split('\n').pop()}`);
    const c = compare(await dump(S.dbname), await dump(B3.dbname), ['Organization']);
    assert.equal(c.diff, 0, c.problems.slice(0, 10).join('\n'));
    assert.ok(c.resources > 0);
    assert.equal(r.s.rejected, 0, r.stderr);
    const types = (await psql('SELECT DISTINCT rtype FROM resource', B3.dbname)).trim();
    assert.equal(types, 'Organization');
    const cur = (await psql('SELECT rtype FROM sync_cursor', B3.dbname)).trim();
    assert.equal(cur, 'Organization');
  });

  // without --token no Authorization header is sent: public types sync
  it('--types Organization without --token: Organizations are public', async () => {
    const B5 = await fresh('sync_public');
    dbs.push(B5.dbname);
    // the types the Locations refer to come along (a reference to a type not synced cannot resolve)
    const r = await syncOk(from(), B5.conninfo, ['--types', 'Endpoint,Organization,Location']);
    assert.equal(r.s.rejected, 0, r.stderr);
    const c = compare(await dump(S.dbname), await dump(B5.dbname), ['Endpoint', 'Organization', 'Location']);
    assert.equal(c.diff, 0, c.problems.slice(0, 10).join('\n'));
  });

  it('errors: unreachable source, wrong token (401), no token for the system feed, --interval 0, unknown type', { timeout: 60000 }, async () => {
    const B4 = await fresh('sync_err');
    dbs.push(B4.dbname);
    const port = await closedPort();
    const unreachable = await sync(`http://127.0.0.1:${port}/fhir`, B4.conninfo);
    console.log(`# unreachable: exit ${unreachable.code}: ${unreachable.stderr.trim()}`);
    assert.notEqual(unreachable.code, 0);
    assert.match(unreachable.stderr, new RegExp(`cannot reach 127\\.0\\.0\\.1:${port}`));

    const wrong = await sync(from(), B4.conninfo, ['--token', 'not-a-token']);
    console.log(`# wrong token: exit ${wrong.code}: ${wrong.stderr.trim()}`);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /401/);

    const none = await sync(from(), B4.conninfo);
    console.log(`# no token: exit ${none.code}: ${none.stderr.trim()}`);
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /401/);

    const zero = await sync(from(), B4.conninfo, ['--follow', '--interval', '0', '--token', S.tokens.admin], { timeout: 20000 });
    console.log(`# --interval 0: exit ${zero.code}: ${zero.stderr.trim()}`);
    assert.notEqual(zero.code, 0);
    assert.match(zero.stderr, /--interval/);

    const bad = await sync(from(), B4.conninfo, ['--types', 'Patient', '--token', S.tokens.admin]);
    console.log(`# --types Patient: exit ${bad.code}: ${bad.stderr.trim()}`);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /Patient/);
    assert.equal(await count(B4.dbname), 0, 'a failed sync wrote resources');
  });

  // a reference committed while its target is deleted: the reference check locks its target
  // (sql/0010), so one of the two fails and A never holds a live resource referring to a
  // deleted one, which no mirror could store
  it('a reference written while its target is deleted: one of the two fails (A stays consistent)', { timeout: 60000 }, async () => {
    let both = 0;
    const N = 100;
    for (let i = 0; i < N; i++) {
      const org = `race-org-${i}`;
      const c = await S.req('PUT', `/fhir/Organization/${org}`, { body: { resourceType: 'Organization', id: org, name: org }, as: 'editor' });
      assert.equal(c.status, 201, c.text);
      const [a, d] = await Promise.all([
        S.req('PUT', `/fhir/PractitionerRole/race-pr-${i}`, {
          body: { resourceType: 'PractitionerRole', id: `race-pr-${i}`, organization: { reference: `Organization/${org}` } },
          as: 'editor',
        }),
        S.req('DELETE', `/fhir/Organization/${org}`, { as: 'admin' }),
      ]);
      if (a.status === 201 && [200, 204].includes(d.status)) both++;
    }
    const dangling = (
      await psql(
        `SELECT count(*) FROM resource p JOIN resource o ON o.rtype = 'Organization'
            AND 'Organization/' || o.id = p.content #>> '{organization,reference}'
          WHERE p.rtype = 'PractitionerRole' AND p.id LIKE 'race-%' AND NOT p.deleted AND o.deleted`,
        S.dbname,
      )
    ).trim();
    const r = await sync(from(), B.conninfo, ['--token', S.tokens.admin]);
    console.log(`# race: ${N} rounds, reference and delete both succeeded in ${both}, dangling on A: ${dangling}; sync: ${r.stderr.trim().split('\n').pop()}`);
    assert.equal(dangling, '0', `${dangling} live PractitionerRoles on A refer to a deleted Organization`);
  });
});

describe('sync: crash and resume', { skip }, () => {
  const S = useServer('sync_big');
  const from = () => `${S.base}/fhir`;
  const N_ORG = 1000;
  const N_LOC = 2000;
  const N = N_ORG + N_LOC;
  const dbs = [];
  let B;
  after(async () => {
    for (const d of dbs) await dropDatabase(d).catch(() => {});
  });

  const transaction = async (entries) => {
    const r = await S.req('POST', '/fhir', { body: { resourceType: 'Bundle', type: 'transaction', entry: entries }, as: 'editor', schema: false, timeout: 120000 });
    assert.equal(r.status, 200, `transaction: ${r.text.slice(0, 600)}`);
  };
  const put = (resource) => ({ resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } });

  it(`SIGKILL mid-apply of ${N} resources, rerun: converges, no extra versions, a further sync changes nothing`, { timeout: 150000 }, async () => {
    const t0 = Date.now();
    for (let i = 0; i < N_ORG; i += 500) {
      const e = [];
      for (let k = i; k < i + 500; k++) e.push(put({ resourceType: 'Organization', id: `org-${k}`, active: true, name: `Organization ${k}` }));
      await transaction(e);
    }
    for (let i = 0; i < N_LOC; i += 500) {
      const e = [];
      for (let k = i; k < i + 500; k++)
        e.push(
          put({
            resourceType: 'Location',
            id: `loc-${k}`,
            status: 'active',
            name: `Facility ${k}`,
            mode: 'instance',
            position: { longitude: -13 + (k % 100) / 100, latitude: 8 + Math.floor(k / 100) / 100 },
            managingOrganization: { reference: `Organization/org-${k % N_ORG}` },
          }),
        );
      await transaction(e);
    }
    console.log(`# ${N} resources on the source in ${Date.now() - t0} ms`);

    let partial = -1;
    let attempts = 0;
    let killedAfter = 0;
    while (partial < 0) {
      assert.ok(++attempts <= 6, 'no SIGKILL landed mid-apply in 6 attempts');
      B = await fresh(`sync_crash${attempts}`);
      dbs.push(B.dbname);
      const child = spawn(BIN, ['sync', '--from', from(), '--database', B.conninfo, '--token', S.tokens.admin], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
      child.stdout.resume();
      const exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
      const started = Date.now();
      let n = 0;
      while (child.exitCode === null && child.signalCode === null) {
        n = await count(B.dbname);
        if (n > 0) {
          child.kill('SIGKILL');
          break;
        }
        await sleep(20);
      }
      const how = await exited;
      killedAfter = Date.now() - started;
      n = await count(B.dbname);
      console.log(`# attempt ${attempts}: ${how.signal || `exit ${how.code}`} after ${killedAfter} ms, B holds ${n}/${N}; stderr: ${stderr.trim() || '(nothing)'}`);
      if (how.signal === 'SIGKILL' && n > 0 && n < N) partial = n;
    }
    const cur = (await psql('SELECT count(*) FROM sync_cursor', B.dbname)).trim();
    assert.equal(cur, '0', 'a cursor was saved before the walk was applied');

    const t1 = Date.now();
    const rerun = await syncOk(from(), B.conninfo, ['--token', S.tokens.admin]);
    console.log(`# rerun in ${Date.now() - t1} ms: ${rerun.stderr.trim().split('\n').pop()}`);
    assert.deepEqual(
      [rerun.s.created, rerun.s.updated, rerun.s.deleted, rerun.s.unchanged, rerun.s.rejected],
      [N - partial, 0, 0, partial, 0],
      rerun.stderr,
    );
    const c = compare(await dump(S.dbname), await dump(B.dbname));
    console.log(`crash: attempts=${attempts} killed_with=${partial}/${N} resources=${c.resources} diff=${c.diff}`);
    assert.equal(c.diff, 0, c.problems.slice(0, 10).join('\n'));
    const versions = (await psql('SELECT max(version) || \' \' || (SELECT count(*) FROM resource_history) FROM resource', B.dbname)).trim();
    assert.equal(versions, `1 ${N}`, 'B holds versions beyond one per resource');
    const again = await syncOk(from(), B.conninfo, ['--token', S.tokens.admin]);
    assert.deepEqual([again.s.created, again.s.updated, again.s.deleted, again.s.rejected], [0, 0, 0, 0], again.stderr);
  });

  it('a partOf chain spread over three apply chunks whose parents changed later: nothing rejected', { timeout: 120000 }, async () => {
    assert.ok(B, 'the crash test did not run');
    // L1 ← L2 ← L3 (partOf), then 600 Organizations, an update of L2, 600 more, an update of L1:
    // oldest first, the walk holds L3, 600 Organizations, L2', 600 Organizations, L1' — three
    // chunks of 500, each referring to the next.
    const loc = (id, name, parent) => ({
      resourceType: 'Location',
      id,
      status: 'active',
      name,
      mode: 'instance',
      ...(parent ? { partOf: { reference: `Location/${parent}` } } : {}),
    });
    const orgs = async (from) => {
      const e = [];
      for (let k = from; k < from + 600; k++) e.push(put({ resourceType: 'Organization', id: `chain-org-${k}`, active: true, name: `Chain ${k}` }));
      await transaction(e);
    };
    await transaction([put(loc('chain-1', 'Region'))]);
    await transaction([put(loc('chain-2', 'District', 'chain-1'))]);
    await transaction([put(loc('chain-3', 'Facility', 'chain-2'))]);
    await orgs(0);
    await transaction([put(loc('chain-2', 'District (renamed)', 'chain-1'))]);
    await orgs(600);
    await transaction([put(loc('chain-1', 'Region (renamed)'))]);
    const r = await sync(from(), B.conninfo, ['--token', S.tokens.admin]);
    console.log(`# chain: exit ${r.code}: ${r.stderr.trim()}`);
    assert.equal(r.code, 0, r.stderr);
    const c = compare(await dump(S.dbname), await dump(B.dbname));
    assert.equal(r.s.rejected, 0, r.stderr);
    assert.equal(c.diff, 0, c.problems.slice(0, 10).join('\n'));
    assert.deepEqual([r.s.created, r.s.updated], [1203, 0], r.stderr);
  });

  it('a delete of a resource the mirror never had, last of its chunk, does not undo the chunk', { timeout: 60000 }, async () => {
    // Endpoint/gone is created and deleted after Endpoint/kept: a fresh mirror never had it, and
    // its delete is the newest change, so the last of the (only) chunk
    const ep = (id) => ({
      resourceType: 'Endpoint',
      id,
      status: 'active',
      connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
      payloadType: [{ text: 'any' }],
      address: `https://example.org/fhir/${id}`,
    });
    await transaction([put(ep('gone'))]);
    await transaction([put(ep('kept'))]);
    const d = await S.req('DELETE', '/fhir/Endpoint/gone', { as: 'admin' });
    assert.ok([200, 204].includes(d.status), d.text);
    const B6 = await fresh('sync_never');
    dbs.push(B6.dbname);
    const r = await syncOk(from(), B6.conninfo, ['--types', 'Endpoint', '--token', S.tokens.admin]);
    console.log(`# never had: ${r.stderr.trim().split('\n').pop()}`);
    assert.deepEqual([r.s.seen, r.s.created, r.s.deleted, r.s.unchanged, r.s.rejected], [2, 1, 0, 1, 0], r.stderr);
    assert.equal((await psql("SELECT string_agg(id, ',') FROM resource", B6.dbname)).trim(), 'kept', 'B: the chunk was undone');
  });
});
