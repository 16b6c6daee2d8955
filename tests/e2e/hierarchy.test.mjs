// The partof hierarchies (Location.partOf, Organization.partOf) as served by the closure table
// sp_below (sql/0005_hierarchy.sql, kept by mahali_hier_sync on every write), against an
// independent model in JS (a parent map of the live nodes, updated from the server's success
// answers only).
//
// A seeded random forest (~150 Locations, ~40 Organizations) is built over the REST API: single
// POSTs and transaction Bundles whose children come before their parents (urn:uuid fullUrls).
// Then random operations: move a node with its subtree, remove partOf, re-add it, rename (partOf
// unchanged), delete a leaf, delete a whole subtree in one Bundle, delete a node and re-parent its
// children in the same Bundle, delete a node that is still referred to (409, nothing changes),
// bring a deleted node back with PUT, a partOf cycle (422, nothing changes; also inside a Bundle
// next to a valid move), Bundles of several moves, concurrent batches (8 parallel writers moving
// nested subtrees, removing partOf and deleting leaves inside subtrees being moved, and adding
// leaves under nodes being moved) and two writers racing to close a cycle (one 200, one 422).
//
// After every operation the nodes it touched (moved, deleted, created, former and new parents)
// are checked, and at checkpoints (after building, twice in between, at the end) every node: partof:below=X (the descendants of X), partof:above=X (the
// resources whose parent is X or an ancestor of X, as in lib/fhirsearch.mjs), Bundle.total, a
// few multi-value and Type/id forms, partof:below of deleted nodes (empty), and the stored
// partOf of every resource. Prints one line per run:
//   hierarchy: nodes=N operations=M checks=K mismatches=0
// MAHALI_HIERARCHY_SEED=n repeats the same choices (the outcome of concurrent writers may differ).
import assert from 'node:assert/strict';
import { randomInt, randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { e2eSkipReason, useServer } from './lib/server.mjs';
import { diffSets, runSearch } from './lib/searchset.mjs';

const skip = e2eSkipReason();
const SEED = process.env.MAHALI_HIERARCHY_SEED ? Number(process.env.MAHALI_HIERARCHY_SEED) >>> 0 : randomInt(2 ** 31);
const PARALLEL_READS = 8;
const MAX_PRINTED = 25;

/** mulberry32: a small seeded PRNG with the helpers the test needs. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  return {
    int,
    range: (lo, hi) => lo + int(hi - lo + 1),
    chance: (p) => next() < p,
    pick: (xs) => xs[int(xs.length)],
    shuffle: (xs) => {
      const out = [...xs];
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [out[i], out[j]] = [out[j], out[i]];
      }
      return out;
    },
    weighted: (table) => {
      let x = next() * table.reduce((s, [, w]) => s + w, 0);
      for (const [v, w] of table) if ((x -= w) < 0) return v;
      return table[table.length - 1][0];
    },
  };
}

/** The model: parent map of the live nodes (null for a root), the former parent of deleted ones. */
class Forest {
  constructor(type, prefix) {
    this.type = type;
    this.prefix = prefix;
    this.parent = new Map();
    this.gone = new Map();
    this.labels = new Map();
    this.names = new Map();
    this.created = 0;
  }
  add(id, parent) {
    const label = `${this.prefix}${++this.created}`;
    this.labels.set(id, label);
    this.names.set(id, `Hierarchy ${this.type} ${label}`);
    this.parent.set(id, parent ?? null);
  }
  has(id) {
    return this.parent.has(id);
  }
  live() {
    return [...this.parent.keys()];
  }
  kids() {
    const m = new Map();
    for (const id of this.parent.keys()) m.set(id, []);
    for (const [id, p] of this.parent) if (p !== null && m.has(p)) m.get(p).push(id);
    return m;
  }
  /** Strict descendants (cycle-safe). */
  desc(x, kids = this.kids()) {
    const out = [];
    const seen = new Set([x]);
    const stack = [...(kids.get(x) || [])];
    while (stack.length) {
      const y = stack.pop();
      if (seen.has(y)) continue;
      seen.add(y);
      out.push(y);
      stack.push(...(kids.get(y) || []));
    }
    return out;
  }
  /** Strict ancestors, nearest first (cycle-safe). */
  anc(x, parent = this.parent) {
    const out = [];
    const seen = new Set([x]);
    for (let p = parent.get(x); p !== null && p !== undefined && !seen.has(p); p = parent.get(p)) {
      out.push(p);
      seen.add(p);
    }
    return out;
  }
  inSubtree(y, x) {
    return y === x || this.anc(y).includes(x);
  }
  depth(x) {
    return this.anc(x).length;
  }
  /** partof:above=X: the live resources whose parent is X or an ancestor of X. */
  above(x) {
    const set = new Set([x, ...this.anc(x)]);
    return this.live().filter((r) => set.has(this.parent.get(r)));
  }
  remove(id) {
    this.gone.set(id, this.parent.get(id));
    this.parent.delete(id);
  }
  revive(id, parent) {
    this.gone.delete(id);
    this.parent.set(id, parent);
  }
  L(id) {
    if (id === null || id === undefined) return '(none)';
    const bare = String(id).replace(/^[A-Za-z]+\//, '');
    return this.labels.get(bare) ?? bare;
  }
  /** Labels with ids, at most 12 of them. */
  list(ids) {
    const shown = ids.slice(0, 12).map((x) => `${this.L(x)}(${x})`);
    return `${shown.join(' ')}${ids.length > 12 ? ` (+${ids.length - 12} more)` : ''}`;
  }
  body(id, parent, name) {
    const partOf = parent ? { partOf: { reference: `${this.type}/${parent}` } } : {};
    const nm = name ?? (id ? this.names.get(id) : undefined) ?? `Hierarchy ${this.type}`;
    if (this.type === 'Location') return { resourceType: 'Location', ...(id ? { id } : {}), status: 'active', name: nm, ...partOf };
    return { resourceType: 'Organization', ...(id ? { id } : {}), active: true, name: nm, ...partOf };
  }
}

/** Whether every subset of the moves [[x, newParent|null], ...] applied to the model is acyclic
 *  (then the moves may run concurrently or in any order and the result does not depend on it). */
function acyclicInAnyOrder(F, moves) {
  for (let mask = 1; mask < 1 << moves.length; mask++) {
    const p = new Map(F.parent);
    moves.forEach(([x, t], i) => {
      if (mask & (1 << i)) p.set(x, t);
    });
    for (const [x] of moves) {
      let c = p.get(x);
      for (let steps = 0; c !== null && c !== undefined && steps <= p.size; steps++) {
        if (c === x) return false;
        c = p.get(c);
      }
    }
  }
  return true;
}

async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const k = next++;
        await fn(items[k], k);
      }
    }),
  );
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
const idFromLocation = (loc) => /(?:^|\/)[A-Z][A-Za-z]+\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(loc || '')?.[1];
const urn = () => `urn:uuid:${randomUUID()}`;

describe('partof hierarchy: closure table against a model (random forests, moves, deletes, cycles, concurrent writers)', { skip }, () => {
  const S = useServer('hierarchy', { roles: ['admin'] });
  const totals = { nodes: 0, operations: 0, checks: 0, mismatches: 0 };
  console.log(`# hierarchy: seed=${SEED} (MAHALI_HIERARCHY_SEED=${SEED} repeats the choices)`);

  after(() => {
    console.log(`hierarchy: nodes=${totals.nodes} operations=${totals.operations} checks=${totals.checks} mismatches=${totals.mismatches}`);
  });

  // ---- requests ------------------------------------------------------------------------------

  const put = (F, id, parent, name) => S.req('PUT', `/fhir/${F.type}/${id}`, { as: 'admin', body: F.body(id, parent, name) });
  const txn = (entry) => S.req('POST', '/fhir', { as: 'admin', body: { resourceType: 'Bundle', type: 'transaction', entry } });
  const putEntry = (F, id, parent) => ({ resource: F.body(id, parent), request: { method: 'PUT', url: `${F.type}/${id}` } });
  const deleteEntry = (F, id) => ({ request: { method: 'DELETE', url: `${F.type}/${id}` } });

  /** A write that lost a deadlock or serialization race (409 "retry it") is sent again. */
  async function withRetry(ctx, send) {
    for (let attempt = 0; ; attempt++) {
      const r = await send();
      if (r.status !== 409 || !/concurrent change/.test(r.text) || attempt >= 8) return r;
      ctx.retries++;
      await sleep(5 + Math.floor(Math.random() * 25));
    }
  }

  // ---- checking ------------------------------------------------------------------------------

  function newCtx(F, R) {
    const ctx = { F, R, t0: Date.now(), ops: 0, moves: 0, checks: 0, mismatches: 0, retries: 0, log: [], problems: [], printedLog: false };
    ctx.fail = (msg) => {
      ctx.mismatches++;
      ctx.problems.push(msg);
      if (ctx.problems.length <= MAX_PRINTED) console.log(`# MISMATCH ${F.type}: ${msg}`);
      if (!ctx.printedLog) {
        ctx.printedLog = true;
        console.log(`# ${F.type} operations up to the first mismatch (seed ${SEED}):\n${ctx.log.map((l) => `#   ${l}`).join('\n')}`);
      }
    };
    return ctx;
  }

  /** Status check of a write: true when expected, else a mismatch (the model is not updated). */
  function expectStatus(ctx, r, codes, what) {
    if (codes.includes(r.status)) return true;
    ctx.fail(`${what}: status ${r.status}, expected ${codes.join('/')}: ${r.text.slice(0, 400)}`);
    return false;
  }

  /** GET /fhir/T?partof:MOD=VALUES (all pages) against the expected ids and Bundle.total. */
  async function verify(ctx, mod, values, expected, why) {
    const { F } = ctx;
    const r = await runSearch(S, F.type, [[`partof:${mod}`, values.join(',')], ['_count', '1000'], ['_elements', 'id']], { as: 'admin', schema: false });
    ctx.checks++;
    const problems = [];
    if (r.status !== 200) problems.push(`status ${r.status}: ${r.first.text.slice(0, 300)}`);
    else {
      const d = diffSets(expected, r.matches);
      if (d.missing.length) problems.push(`missing ${F.list(d.missing)}`);
      if (d.extra.length) problems.push(`extra ${F.list(d.extra)}`);
      if (new Set(r.matches).size !== r.matches.length) problems.push(`duplicate matches`);
      if (r.total !== expected.length) problems.push(`Bundle.total ${r.total}, expected ${expected.length}`);
    }
    if (problems.length)
      ctx.fail(`partof:${mod}=${values.map((v) => F.L(v)).join(',')} [${values.join(',')}] (${why}): expected ${expected.length}: ${problems.join('; ')}`);
  }

  /** After an operation, for each node it touched (moved, deleted, created, old and new parents):
   *  below (empty for a deleted node) and above. */
  async function localCheck(ctx, touched, why) {
    const { F } = ctx;
    const kids = F.kids();
    const jobs = [];
    for (const x of new Set(touched.filter((id) => id !== null && id !== undefined))) {
      jobs.push(() => verify(ctx, 'below', [x], F.has(x) ? F.desc(x, kids) : [], why));
      if (F.has(x)) jobs.push(() => verify(ctx, 'above', [x], F.above(x), why));
    }
    await pool(jobs, PARALLEL_READS, (job) => job());
  }

  /** Every live node, the stored partOf of every resource, a few multi-value forms, deleted nodes. */
  async function checkpoint(ctx, label) {
    const { F, R } = ctx;
    const why = `at the checkpoint ${label}`;
    const all = await runSearch(S, F.type, [['_count', '1000'], ['_elements', 'id,partOf']], { as: 'admin' });
    ctx.checks++;
    const stored = new Map();
    for (const page of all.pages)
      for (const e of page.entry || []) if (e.search?.mode === 'match') stored.set(e.resource.id, e.resource.partOf?.reference?.replace(`${F.type}/`, '') ?? null);
    const d = diffSets(F.live(), [...stored.keys()]);
    const wrongParent = F.live().filter((x) => stored.has(x) && stored.get(x) !== F.parent.get(x));
    if (all.status !== 200 || !d.same || wrongParent.length || all.total !== F.parent.size)
      ctx.fail(
        `${why}: stored resources differ from the model: status ${all.status}, total ${all.total} (model ${F.parent.size}), missing ${d.missing.map((x) => F.L(x))}, extra ${d.extra.map((x) => F.L(x))}, partOf differs for ${wrongParent.map((x) => `${F.L(x)} (stored ${F.L(stored.get(x))}, model ${F.L(F.parent.get(x))})`)}`,
      );

    const kids = F.kids();
    const nodes = F.live();
    const jobs = [];
    for (const x of nodes) {
      jobs.push(() => verify(ctx, 'below', [x], F.desc(x, kids), why));
      jobs.push(() => verify(ctx, 'above', [x], F.above(x), why));
    }
    for (let k = 0; k < 6 && nodes.length >= 2; k++) {
      const [x, y] = [R.pick(nodes), R.pick(nodes)];
      jobs.push(() => verify(ctx, 'below', [x, y], [...new Set([...F.desc(x, kids), ...F.desc(y, kids)])], why));
      jobs.push(() => verify(ctx, 'above', [x, y], [...new Set([...F.above(x), ...F.above(y)])], why));
      jobs.push(() => verify(ctx, 'below', [`${F.type}/${x}`], F.desc(x, kids), why));
    }
    for (const g of [...F.gone.keys()].slice(0, 20)) jobs.push(() => verify(ctx, 'below', [g], [], why));
    await pool(jobs, PARALLEL_READS, (job) => job());
    const roots = nodes.filter((x) => F.parent.get(x) === null).length;
    const depth = Math.max(0, ...nodes.map((x) => F.depth(x)));
    console.log(`# ${F.type} checkpoint ${label}: live=${nodes.length} roots=${roots} depth=${depth} deleted=${F.gone.size} checks=${ctx.checks} mismatches=${ctx.mismatches} (${Date.now() - ctx.t0} ms)`);
  }

  /** Run one planned operation: the request(s), the model update, the log line, the local check. */
  async function step(ctx, plan) {
    const t = Date.now();
    const outcome = await plan.run();
    ctx.ops += plan.count ?? 1;
    ctx.log.push(`#${ctx.ops} ${plan.what()} → ${outcome} (${Date.now() - t} ms)`);
    await localCheck(ctx, plan.touch, `after op #${ctx.ops} ${plan.what()}`);
  }

  // ---- choosing nodes ------------------------------------------------------------------------

  /** A live node satisfying ok; half of the time the deepest of three candidates (deep chains). */
  function pickNode(F, R, ok = () => true) {
    const xs = F.live().filter(ok);
    if (!xs.length) return undefined;
    if (R.chance(0.5)) return R.pick(xs);
    let best = R.pick(xs);
    for (let k = 0; k < 2; k++) {
      const c = R.pick(xs);
      if (F.depth(c) > F.depth(best)) best = c;
    }
    return best;
  }
  /** A new parent for x: not x, not below x, not its current parent. */
  const pickTarget = (F, R, x, ok = () => true) => pickNode(F, R, (t) => t !== F.parent.get(x) && !F.inSubtree(t, x) && ok(t));

  // ---- creating ------------------------------------------------------------------------------

  function planCreateOne(ctx, parent) {
    const { F } = ctx;
    const plan = {
      touch: [parent],
      what: () => `POST ${F.type} ${F.L(plan.touch[1])} under ${F.L(parent)}`,
      run: async () => {
        const r = await S.req('POST', `/fhir/${F.type}`, { as: 'admin', body: F.body(undefined, parent) });
        if (expectStatus(ctx, r, [201], `POST ${F.type} under ${F.L(parent)}`)) {
          F.add(r.json.id, parent);
          plan.touch.push(r.json.id);
        }
        return r.status;
      },
    };
    return plan;
  }

  /** k new nodes in one transaction: a random tree below `parent` (or a new root), entries in
   *  reverse or shuffled order so that children come before their parents. */
  function planCreateBundle(ctx, parent, k) {
    const { F, R } = ctx;
    const urns = Array.from({ length: k }, urn);
    const parents = urns.map((_, i) => (i === 0 ? null : R.int(i)));
    const order = R.chance(0.5) ? urns.map((_, i) => k - 1 - i) : R.shuffle(urns.map((_, i) => i));
    const plan = {
      touch: [parent],
      what: () => `transaction of ${k} new ${F.type} (children first, tree ${parents.map((p) => (p === null ? '-' : p)).join(',')}, entry order ${order.join(',')}) under ${F.L(parent)} → ${plan.touch.slice(1).map((x) => F.L(x)).join(',')}`,
      run: async () => {
        const entry = order.map((i) => {
          const res = F.body(undefined, null, `Hierarchy ${F.type} bundle node`);
          const ref = i === 0 ? (parent ? `${F.type}/${parent}` : null) : urns[parents[i]];
          if (ref) res.partOf = { reference: ref };
          return { fullUrl: urns[i], resource: res, request: { method: 'POST', url: F.type } };
        });
        const r = await txn(entry);
        if (!expectStatus(ctx, r, [200], `transaction creating ${k} ${F.type}`)) return r.status;
        const ids = [];
        order.forEach((i, pos) => (ids[i] = idFromLocation(r.json.entry?.[pos]?.response?.location)));
        if (ids.some((id) => !id)) {
          ctx.fail(`transaction creating ${k} ${F.type}: response without locations: ${r.text.slice(0, 400)}`);
          return r.status;
        }
        ids.forEach((id, i) => {
          F.add(id, i === 0 ? parent : ids[parents[i]]);
          plan.touch.push(id);
        });
        return r.status;
      },
    };
    return plan;
  }

  async function build(ctx, target, maxRoots) {
    const { F, R } = ctx;
    while (F.parent.size < target) {
      const roots = F.live().filter((x) => F.parent.get(x) === null).length;
      const parent = roots < 2 || (roots < maxRoots && R.chance(0.1)) ? null : pickNode(F, R);
      const plan = R.chance(0.35) ? planCreateBundle(ctx, parent, Math.min(R.range(3, 8), Math.max(1, target - F.parent.size))) : planCreateOne(ctx, parent);
      const outcome = await plan.run();
      ctx.log.push(`build: ${plan.what()} → ${outcome}`);
      if (R.chance(0.15)) await localCheck(ctx, plan.touch, `after build: ${plan.what()}`);
    }
  }

  // ---- operations ----------------------------------------------------------------------------

  /** A PUT moving x below t (null: remove partOf), expecting 200. */
  function planPut(ctx, x, t, verb, name) {
    const { F } = ctx;
    const from = F.parent.get(x);
    return {
      touch: [x, t, from],
      what: () => `${verb} ${F.L(x)} from ${F.L(from)} to ${F.L(t)}`,
      run: async () => {
        const r = await put(F, x, t, name);
        if (expectStatus(ctx, r, [200], `${verb} ${F.L(x)} to ${F.L(t)}`)) {
          if (t !== from) ctx.moves++;
          F.parent.set(x, t);
          if (name) F.names.set(x, name);
        }
        return r.status;
      },
    };
  }

  /** Read x back: it must be live with the model's partOf (after a refused write). */
  async function assertUnchanged(ctx, x, why) {
    const { F } = ctx;
    const r = await S.req('GET', `/fhir/${F.type}/${x}`, { as: 'admin' });
    ctx.checks++;
    const stored = r.json?.partOf?.reference?.replace(`${F.type}/`, '') ?? null;
    if (r.status !== 200 || stored !== F.parent.get(x))
      ctx.fail(`${why}: ${F.L(x)} reads ${r.status} with partOf ${F.L(stored)}, expected 200 with partOf ${F.L(F.parent.get(x))}`);
  }

  const OPS = {
    move(ctx) {
      const { F, R } = ctx;
      const x = pickNode(F, R);
      const t = x && pickTarget(F, R, x);
      return t && planPut(ctx, x, t, 'move');
    },
    detach(ctx) {
      const { F, R } = ctx;
      const x = pickNode(F, R, (n) => F.parent.get(n) !== null);
      return x && planPut(ctx, x, null, 'remove partOf of');
    },
    reattach(ctx) {
      const { F, R } = ctx;
      const x = pickNode(F, R, (n) => F.parent.get(n) === null);
      const t = x && pickTarget(F, R, x);
      return t && planPut(ctx, x, t, 're-add partOf of');
    },
    rename(ctx) {
      const { F, R } = ctx;
      const x = pickNode(F, R);
      return x && planPut(ctx, x, F.parent.get(x), 'rename (same partOf)', `${F.names.get(x)} r${R.int(1000)}`);
    },
    deleteLeaf(ctx) {
      const { F, R } = ctx;
      const kids = F.kids();
      const x = pickNode(F, R, (n) => kids.get(n).length === 0);
      if (!x) return undefined;
      const from = F.parent.get(x);
      return {
        touch: [x, from],
        what: () => `DELETE leaf ${F.L(x)} (under ${F.L(from)})`,
        run: async () => {
          const r = await S.req('DELETE', `/fhir/${F.type}/${x}`, { as: 'admin' });
          if (expectStatus(ctx, r, [200, 204], `DELETE leaf ${F.L(x)}`)) F.remove(x);
          return r.status;
        },
      };
    },
    deleteSubtree(ctx) {
      const { F, R } = ctx;
      const kids = F.kids();
      const x = pickNode(F, R, (n) => {
        const size = F.desc(n, kids).length;
        return size >= 1 && size <= 11;
      });
      if (!x) return undefined;
      const nodes = R.shuffle([x, ...F.desc(x, kids)]);
      const from = F.parent.get(x);
      return {
        touch: [...nodes, from],
        what: () => `transaction DELETE subtree of ${F.L(x)} (under ${F.L(from)}) in entry order ${nodes.map((n) => F.L(n)).join(',')}`,
        run: async () => {
          const r = await txn(nodes.map((n) => deleteEntry(F, n)));
          if (expectStatus(ctx, r, [200], `transaction deleting the subtree of ${F.L(x)}`)) for (const n of nodes) F.remove(n);
          return r.status;
        },
      };
    },
    deleteReferenced(ctx) {
      const { F, R } = ctx;
      const kids = F.kids();
      const x = pickNode(F, R, (n) => kids.get(n).length > 0);
      if (!x) return undefined;
      return {
        touch: [x, ...kids.get(x)],
        what: () => `DELETE ${F.L(x)} which has children ${kids.get(x).map((n) => F.L(n))} (must be refused)`,
        run: async () => {
          const r = await S.req('DELETE', `/fhir/${F.type}/${x}`, { as: 'admin' });
          expectStatus(ctx, r, [409], `DELETE of the referenced ${F.L(x)}`);
          if (r.status === 200 || r.status === 204) F.remove(x); // so that later checks show what the server did
          else await assertUnchanged(ctx, x, `refused DELETE of ${F.L(x)}`);
          return r.status;
        },
      };
    },
    deleteAndReparent(ctx) {
      const { F, R } = ctx;
      const kids = F.kids();
      const x = pickNode(F, R, (n) => kids.get(n).length > 0);
      if (!x) return undefined;
      const moves = kids.get(x).map((c) => [c, R.chance(0.25) ? null : (pickNode(F, R, (t) => !F.inSubtree(t, x)) ?? null)]);
      const entry = R.shuffle([deleteEntry(F, x), ...moves.map(([c, t]) => putEntry(F, c, t))]);
      const from = F.parent.get(x);
      return {
        touch: [x, from, ...moves.flat()],
        what: () => `transaction DELETE ${F.L(x)} (under ${F.L(from)}) and move its children: ${moves.map(([c, t]) => `${F.L(c)}→${F.L(t)}`).join(' ')}`,
        run: async () => {
          const r = await txn(entry);
          if (expectStatus(ctx, r, [200], `transaction deleting ${F.L(x)} and re-parenting its children`)) {
            F.remove(x);
            for (const [c, t] of moves) F.parent.set(c, t);
            ctx.moves += moves.length;
          }
          return r.status;
        },
      };
    },
    undelete(ctx) {
      const { F, R } = ctx;
      if (!F.gone.size) return undefined;
      const g = R.pick([...F.gone.keys()]);
      const former = F.gone.get(g);
      const t = former !== null && F.has(former) && R.chance(0.6) ? former : R.chance(0.25) ? null : (pickNode(F, R) ?? null);
      return {
        touch: [g, t, former],
        what: () => `PUT deleted ${F.L(g)} back (was under ${F.L(former)}) under ${F.L(t)}`,
        run: async () => {
          const r = await put(F, g, t);
          if (expectStatus(ctx, r, [200, 201], `PUT over the deleted ${F.L(g)}`)) F.revive(g, t);
          return r.status;
        },
      };
    },
    cycle(ctx) {
      const { F, R } = ctx;
      const kids = F.kids();
      const x = pickNode(F, R, (n) => kids.get(n).length > 0);
      if (!x) return undefined;
      const d = R.chance(0.15) ? x : R.pick(F.desc(x, kids));
      return {
        touch: [x, d],
        what: () => `PUT ${F.L(x)} under ${F.L(d)}, ${d === x ? 'itself' : 'its descendant'} (must be refused)`,
        run: async () => {
          const r = await put(F, x, d);
          expectStatus(ctx, r, [422], `cycle: ${F.L(x)} under ${F.L(d)}`);
          if (r.status === 200) F.parent.set(x, d);
          else await assertUnchanged(ctx, x, `refused cycle ${F.L(x)} under ${F.L(d)}`);
          return r.status;
        },
      };
    },
    cycleInBundle(ctx) {
      const { F, R } = ctx;
      const kids = F.kids();
      const x = pickNode(F, R, (n) => kids.get(n).length > 0);
      if (!x) return undefined;
      const d = R.pick(F.desc(x, kids));
      const y = pickNode(F, R, (n) => !F.inSubtree(n, x));
      const t = y && pickTarget(F, R, y);
      if (!t) return undefined;
      const entry = R.shuffle([putEntry(F, y, t), putEntry(F, x, d)]);
      return {
        touch: [x, d, y, t, F.parent.get(y)],
        what: () => `transaction: move ${F.L(y)} to ${F.L(t)} and ${F.L(x)} under its descendant ${F.L(d)} (must be refused as a whole)`,
        run: async () => {
          const r = await txn(entry);
          expectStatus(ctx, r, [422], `transaction with a cycle (${F.L(x)} under ${F.L(d)})`);
          if (r.status === 200) {
            F.parent.set(y, t);
            F.parent.set(x, d);
          } else {
            await assertUnchanged(ctx, x, `refused transaction with a cycle`);
            await assertUnchanged(ctx, y, `refused transaction with a cycle (the valid move in it)`);
          }
          return r.status;
        },
      };
    },
    createLeaf(ctx) {
      const { F, R } = ctx;
      return planCreateOne(ctx, R.chance(0.1) ? null : pickNode(F, R));
    },
    createBundle(ctx) {
      const { F, R } = ctx;
      return planCreateBundle(ctx, R.chance(0.15) ? null : pickNode(F, R), R.range(3, 6));
    },
    moveBundle(ctx) {
      const { F, R } = ctx;
      const moves = [];
      const n = R.range(2, 4);
      for (let k = 0; k < 12 && moves.length < n; k++) {
        // half of the time a node inside a subtree that is moved already (nested moves)
        const inner = moves.length && R.chance(0.5) ? F.desc(R.pick(moves)[0]).filter((y) => !moves.some(([m]) => m === y)) : [];
        const x = inner.length ? R.pick(inner) : pickNode(F, R, (y) => !moves.some(([m]) => m === y));
        if (!x) continue;
        const t = R.chance(0.15) ? null : pickTarget(F, R, x);
        if (t === undefined || (t === null && F.parent.get(x) === null)) continue;
        if (acyclicInAnyOrder(F, [...moves, [x, t]])) moves.push([x, t]);
      }
      if (moves.length < 2) return undefined;
      const froms = moves.map(([x]) => F.parent.get(x));
      return {
        touch: [...moves.flat(), ...froms],
        what: () => `transaction of ${moves.length} moves: ${moves.map(([x, t], i) => `${F.L(x)} ${F.L(froms[i])}→${F.L(t)}`).join(', ')}`,
        run: async () => {
          const r = await txn(moves.map(([x, t]) => putEntry(F, x, t)));
          if (expectStatus(ctx, r, [200], `transaction of ${moves.length} moves`)) {
            for (const [x, t] of moves) F.parent.set(x, t);
            ctx.moves += moves.length;
          }
          return r.status;
        },
      };
    },
    /** 8 parallel writers: nested subtrees moving (a node and, at the same time, a node below
     *  it moving out, losing its partOf or being deleted), other moves, and new leaves under
     *  nodes being moved. Every subset of the moves is acyclic, so any order gives one result. */
    concurrent(ctx) {
      const { F, R } = ctx;
      const kids = F.kids();
      const moves = [];
      const deletes = [];
      const creates = [];
      const busy = new Set();
      const used = new Set(); // new parents and parents of new leaves
      const tryMove = (x, t) => {
        if (t === undefined || busy.has(x) || (t !== null && deletes.includes(t))) return false;
        if (t === null && F.parent.get(x) === null) return false;
        if (!acyclicInAnyOrder(F, [...moves, [x, t]])) return false;
        moves.push([x, t]);
        busy.add(x);
        if (t !== null) used.add(t);
        return true;
      };
      const notDeleted = (t) => !deletes.includes(t);
      const nested = R.shuffle(F.live().filter((x) => F.desc(x, kids).length >= 2));
      for (const x of nested.slice(0, 3)) {
        if (moves.length + deletes.length >= 6 || busy.has(x)) continue;
        if (!tryMove(x, pickTarget(F, R, x, notDeleted))) continue;
        const ys = F.desc(x, kids).filter((y) => !busy.has(y) && !used.has(y));
        if (!ys.length) continue;
        const y = R.pick(ys);
        const how = R.weighted([
          ['out', 6],
          ['detach', 2],
          ['delete', 2],
        ]);
        if (how === 'delete' && kids.get(y).length === 0) {
          deletes.push(y);
          busy.add(y);
        } else if (how === 'detach') tryMove(y, null);
        else tryMove(y, pickTarget(F, R, y, (t) => !F.inSubtree(t, x) && notDeleted(t)));
      }
      for (let k = 0; k < 10 && moves.length + deletes.length < 5; k++) {
        const x = pickNode(F, R, (n) => !busy.has(n));
        if (x) tryMove(x, pickTarget(F, R, x, notDeleted));
      }
      const moving = moves.map(([x]) => x);
      while (moves.length + deletes.length + creates.length < 8) {
        const inMoving = moving.length ? [...new Set(moving.flatMap((x) => [x, ...F.desc(x, kids)]))].filter(notDeleted) : [];
        const p = inMoving.length && R.chance(0.8) ? R.pick(inMoving) : pickNode(F, R, notDeleted);
        if (!p) break;
        creates.push(p);
        used.add(p);
      }
      if (moves.length + deletes.length + creates.length < 2) return undefined;
      const froms = new Map(moves.map(([x]) => [x, F.parent.get(x)]));
      const delFroms = new Map(deletes.map((y) => [y, F.parent.get(y)]));
      const created = [];
      const results = [];
      const plan = {
        count: moves.length + deletes.length + creates.length,
        touch: [...moves.flat(), ...froms.values(), ...deletes, ...delFroms.values(), ...creates],
        what: () =>
          `concurrently: ${[
            ...moves.map(([x, t]) => `${t === null ? 'remove partOf of' : 'move'} ${F.L(x)} ${F.L(froms.get(x))}→${F.L(t)}`),
            ...deletes.map((y) => `DELETE leaf ${F.L(y)} (under ${F.L(delFroms.get(y))})`),
            ...creates.map((p, i) => `POST ${created[i] ? F.L(created[i]) : 'new'} under ${F.L(p)}`),
          ].join('; ')} (retries ${ctx.retries})`,
        run: async () => {
          const jobs = [
            ...moves.map(([x, t]) => ({
              send: () => put(F, x, t),
              codes: [200],
              apply: () => {
                F.parent.set(x, t);
                ctx.moves++;
              },
              what: `move ${F.L(x)} to ${F.L(t)}`,
            })),
            ...deletes.map((y) => ({
              send: () => S.req('DELETE', `/fhir/${F.type}/${y}`, { as: 'admin' }),
              codes: [200, 204],
              apply: () => F.remove(y),
              what: `DELETE ${F.L(y)}`,
            })),
            ...creates.map((p, i) => ({
              send: () => S.req('POST', `/fhir/${F.type}`, { as: 'admin', body: F.body(undefined, p) }),
              codes: [201],
              apply: (r) => {
                F.add(r.json.id, p);
                created[i] = r.json.id;
                plan.touch.push(r.json.id);
              },
              what: `POST under ${F.L(p)}`,
            })),
          ];
          await Promise.all(
            R.shuffle(jobs).map(async (j) => {
              j.r = await withRetry(ctx, j.send);
            }),
          );
          for (const j of jobs) {
            results.push(j.r.status);
            if (expectStatus(ctx, j.r, j.codes, `concurrent ${j.what}`)) j.apply(j.r);
          }
          return results.join(',');
        },
      };
      return plan;
    },
    /** Two writers racing to close a cycle: x below a node of y's subtree and y below a node of
     *  x's subtree. Exactly one must win (200), the other must be refused (422). */
    raceCycle(ctx) {
      const { F, R } = ctx;
      const kids = F.kids();
      const x = pickNode(F, R);
      const y = x && pickNode(F, R, (n) => !F.inSubtree(n, x) && !F.inSubtree(x, n));
      if (!y) return undefined;
      const xp = R.pick([x, ...F.desc(x, kids)]);
      const yp = R.pick([y, ...F.desc(y, kids)]);
      if (yp === F.parent.get(x) || xp === F.parent.get(y)) return undefined;
      const fx = F.parent.get(x);
      const fy = F.parent.get(y);
      return {
        count: 2,
        touch: [x, y, xp, yp, fx, fy],
        what: () => `concurrently: move ${F.L(x)} ${F.L(fx)}→${F.L(yp)} and ${F.L(y)} ${F.L(fy)}→${F.L(xp)} (together a cycle: one must win, retries ${ctx.retries})`,
        run: async () => {
          const [a, b] = await Promise.all([withRetry(ctx, () => put(F, x, yp)), withRetry(ctx, () => put(F, y, xp))]);
          const ok = [a.status, b.status].filter((s) => s === 200).length;
          const refused = [a.status, b.status].filter((s) => s === 422).length;
          if (ok !== 1 || refused !== 1) ctx.fail(`racing cycle ${F.L(x)}→${F.L(yp)} / ${F.L(y)}→${F.L(xp)}: statuses ${a.status}, ${b.status}; expected one 200 and one 422: ${a.text.slice(0, 200)} | ${b.text.slice(0, 200)}`);
          for (const [r, node, to] of [
            [a, x, yp],
            [b, y, xp],
          ])
            if (r.status === 200) {
              F.parent.set(node, to);
              ctx.moves++;
            }
          return `${a.status},${b.status}`;
        },
      };
    },
  };

  async function runForest(F, { seed, nodes, maxRoots, operations, weights, checkpoints }) {
    const R = rng(seed);
    const ctx = newCtx(F, R);
    await build(ctx, nodes, maxRoots);
    await checkpoint(ctx, 'after building');
    const marks = [...checkpoints];
    while (ctx.ops < operations) {
      const kind = R.weighted(weights);
      const plan = OPS[kind](ctx);
      if (!plan) continue;
      await step(ctx, plan);
      if (marks.length && ctx.ops >= marks[0]) {
        marks.shift();
        await checkpoint(ctx, `after ${ctx.ops} operations`);
      }
    }
    await checkpoint(ctx, 'at the end');
    totals.nodes += F.created;
    totals.operations += ctx.ops;
    totals.checks += ctx.checks;
    totals.mismatches += ctx.mismatches;
    console.log(
      `# hierarchy ${F.type}: nodes=${F.created} (live ${F.parent.size}, deleted ${F.gone.size}) operations=${ctx.ops} (partOf changes ${ctx.moves}) checks=${ctx.checks} mismatches=${ctx.mismatches} retries=${ctx.retries} in ${Date.now() - ctx.t0} ms`,
    );
    if (ctx.mismatches) console.log(`# ${F.type} all operations (seed ${SEED}):\n${ctx.log.map((l) => `#   ${l}`).join('\n')}`);
    assert.equal(ctx.mismatches, 0, `${ctx.mismatches} mismatches between the server and the model (seed ${SEED}); first: ${ctx.problems.slice(0, 5).join('\n')}`);
  }

  it('Location: ~150 nodes, ~200 operations, checked after each operation and at checkpoints', { timeout: 300000 }, async () => {
    await runForest(new Forest('Location', 'L'), {
      seed: SEED,
      nodes: 150,
      maxRoots: 8,
      operations: 200,
      checkpoints: [70, 140],
      weights: [
        ['move', 28],
        ['detach', 6],
        ['reattach', 6],
        ['rename', 3],
        ['deleteLeaf', 8],
        ['deleteSubtree', 4],
        ['deleteReferenced', 3],
        ['deleteAndReparent', 3],
        ['undelete', 9],
        ['cycle', 2],
        ['cycleInBundle', 1],
        ['createLeaf', 5],
        ['createBundle', 3],
        ['moveBundle', 5],
        ['concurrent', 6],
        ['raceCycle', 1.5],
      ],
    });
  });

  it('Organization: ~40 nodes, ~60 operations (mostly moves), same checks', { timeout: 300000 }, async () => {
    await runForest(new Forest('Organization', 'O'), {
      seed: (SEED + 1) >>> 0,
      nodes: 40,
      maxRoots: 4,
      operations: 60,
      checkpoints: [30],
      weights: [
        ['move', 30],
        ['detach', 4],
        ['reattach', 4],
        ['deleteLeaf', 2],
        ['deleteSubtree', 1],
        ['deleteAndReparent', 1],
        ['undelete', 3],
        ['cycle', 1],
        ['moveBundle', 3],
        ['createLeaf', 2],
        ['createBundle', 1],
        ['concurrent', 3],
        ['raceCycle', 1],
      ],
    });
  });
});
