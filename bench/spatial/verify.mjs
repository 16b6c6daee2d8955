// Check, before measuring, that every query variant answers 200 over HTTP with the same
// Locations as its raw SQL (the statement pgbench runs for it, run once through psql):
//   contains  the same set of ids over HTTP, from the SQL and from the generator's polygons
//             (exactly one catchment per point);
//   near      10 ids each. The server orders by the distance on the WGS84 spheroid
//             (ST_Distance on geography), `<->` by the distance on the sphere, so the two lists
//             may order (and, at the 10th place, choose) differently where two facilities'
//             distances differ by less than the spheroid/sphere discrepancy (up to ~0.66 % at
//             these latitudes: a north-south metre is shorter on the spheroid than an east-west
//             one). Each list is checked against PostGIS's distances for its own metric (the
//             HTTP list is the 10 nearest on the spheroid, in order; the raw list on the
//             sphere), and every difference between them must be a pair of facilities whose
//             sphere distances differ by less than 0.7 %. Such cases are counted and reported;
//             anything else fails the run.
// Writes a summary to --out (verify.json).
//
// usage: node verify.mjs --base http://127.0.0.1:PORT/fhir --database URL --work DIR
//                        [--scenarios "near contains"]   (the ones measured; default: all)
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { getter, options } from '../lib/http.mjs';

const TOL = 0.007; // relative difference of two distances within which the metrics may disagree
const EPS_M = 1e-6; // metres: equal distances
const CANDIDATES = 30;

const o = options();
const all = JSON.parse(fs.readFileSync(path.join(o.work, 'variants.json'), 'utf8'));
const chosen = o.scenarios ? o.scenarios.split(/\s+/).filter(Boolean) : Object.keys(all);
for (const s of chosen) if (!all[s]) throw new Error(`no scenario ${s} (there are: ${Object.keys(all).join(', ')})`);
const variants = Object.fromEntries(chosen.map((s) => [s, all[s]]));
const fix6 = (x) => x.toFixed(6);
const scripts = Object.fromEntries(
  Object.entries(variants).map(([name, list]) => [
    name,
    list.map((_, n) => fs.readFileSync(path.join(o.work, 'raw', name, `${String(n).padStart(3, '0')}.sql`), 'utf8')),
  ]),
);

/** Run SQL through psql; each part is preceded by a marker line. → Map(marker → [[col...]...]). */
async function psqlParts(parts) {
  const file = path.join(o.work, `verify-${parts[0][0].split(' ')[0]}.sql`);
  fs.writeFileSync(file, parts.map(([mark, sql]) => `\\echo '@@ ${mark}'\n${sql}`).join(''));
  const { stdout } = await promisify(execFile)(
    'psql',
    ['-X', '-q', '-At', '-F', '\t', '-v', 'ON_ERROR_STOP=1', '-f', file, o.database],
    { maxBuffer: 1 << 30 },
  );
  const out = new Map();
  let cur = null;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('@@ ')) out.set(line.slice(3), (cur = { rows: [], bytes: 0 }));
    else if (line && cur) {
      cur.rows.push(line.split('\t'));
      cur.bytes += line.length + 1;
    }
  }
  return out;
}

const get = getter(4);
const summary = {};
let bad = 0;
const fail = (msg) => {
  bad++;
  if (bad <= 10) console.error(`verify: ${msg}`);
};

for (const [name, list] of Object.entries(variants)) {
  // the raw answers: each variant's statement as pgbench runs it
  const raw = await psqlParts(list.map((_, n) => [`${name} ${n}`, scripts[name][n]]));
  // near: both distances of the 30 nearest facilities (by `<->`) of every point
  const cand =
    name === 'near'
      ? await psqlParts(
          list.map((v, n) => {
            const pt = `ST_SetSRID(ST_MakePoint(${fix6(v.lon)}, ${fix6(v.lat)}), 4326)::geography`;
            return [
              `cand ${n}`,
              `SELECT g.id, ST_Distance(g.geog, ${pt}, false), ST_Distance(g.geog, ${pt}) FROM sp_geo g ` +
                `WHERE g.rtype = 'Location' AND g.param = 'position' ORDER BY g.geog <-> ${pt} LIMIT ${CANDIDATES};\n`,
            ];
          }),
        )
      : null;
  const s = { variants: list.length, http_bytes: 0, raw_bytes: 0, same: 0, order_differs: 0, set_differs: 0, max_rel: 0, examples: [] };
  const badBefore = bad;
  await Promise.all(
    list.map(async (v, n) => {
      const what = `${name}: Location?${v.query}`;
      const r = await get(`${o.base}/Location?${v.query}`);
      s.http_bytes += r.body.length;
      let b = null;
      try {
        b = JSON.parse(r.body);
      } catch {
        /* reported below */
      }
      if (r.status !== 200 || !b || b.resourceType !== 'Bundle') return fail(`${what}: HTTP ${r.status}: ${r.body.slice(0, 300)}`);
      const http = (b.entry || []).filter((e) => e.search?.mode === 'match').map((e) => e.resource.id);
      const rawRows = raw.get(`${name} ${n}`);
      if (!rawRows) return fail(`${what}: no answer from psql`);
      s.raw_bytes += rawRows.bytes;
      const rawIds = rawRows.rows.map((row) => row[0]);

      if (name === 'contains') {
        const key = (ids) => [...ids].sort().join(' ');
        if (key(http) !== key(rawIds) || key(http) !== key(v.expect))
          return fail(`${what}: HTTP gives [${http}], the SQL [${rawIds}], the generator's polygons [${v.expect}]`);
        s.same++;
        return;
      }

      // near
      if (http.length !== 10 || rawIds.length !== 10)
        return fail(`${what}: ${http.length} Locations over HTTP, ${rawIds.length} from the SQL (want 10 each)`);
      const c = cand.get(`cand ${n}`).rows.map(([id, sphere, spheroid]) => ({ id, ds: +sphere, de: +spheroid }));
      const by = new Map(c.map((x) => [x.id, x]));
      const missing = [...http, ...rawIds].filter((id) => !by.has(id));
      if (missing.length) return fail(`${what}: ${missing.join(', ')} not among the ${CANDIDATES} nearest by <->`);
      // nothing beyond the candidates can be among the 10 nearest on the spheroid either
      const top10e = [...c].sort((x, y) => x.de - y.de)[9].de;
      if (!(top10e < (1 - TOL) * c[c.length - 1].ds)) return fail(`${what}: ${CANDIDATES} candidates are not enough`);
      // each list: its own 10 nearest, nearest first
      for (const [label, ids, d] of [
        ['HTTP (spheroid)', http, 'de'],
        ['SQL (sphere)', rawIds, 'ds'],
      ]) {
        const ds = ids.map((id) => by.get(id)[d]);
        const outside = Math.min(...c.filter((x) => !ids.includes(x.id)).map((x) => x[d]));
        if (ds.some((x, k) => k > 0 && x < ds[k - 1] - EPS_M) || ds[9] > outside + EPS_M)
          return fail(`${what}: the ${label} list is not the 10 nearest in order: ${ids.map((id, k) => `${id} ${ds[k].toFixed(3)}`).join(', ')}; next ${outside.toFixed(3)}`);
      }
      // where they differ: every pair the two lists order differently (a missing id counts as
      // after the 10th) must be within TOL of each other
      const rank = (ids, id) => (ids.includes(id) ? ids.indexOf(id) : 10);
      const union = [...new Set([...http, ...rawIds])];
      let worst = 0;
      let pair = null;
      for (const p of union)
        for (const q of union) {
          if (!(rank(http, p) < rank(http, q) && rank(rawIds, p) > rank(rawIds, q))) continue;
          const rel = Math.abs(by.get(p).ds - by.get(q).ds) / Math.max(by.get(p).ds, by.get(q).ds);
          if (rel > worst) [worst, pair] = [rel, [p, q]];
        }
      if (worst >= TOL)
        return fail(`${what}: HTTP and SQL order ${pair[0]} and ${pair[1]} differently, at sphere distances ${(100 * worst).toFixed(2)} % apart`);
      s.max_rel = Math.max(s.max_rel, worst);
      const sameSet = http.every((id) => rawIds.includes(id));
      if (!pair) s.same++;
      else if (sameSet) s.order_differs++;
      else s.set_differs++;
      if (pair && s.examples.length < 5)
        s.examples.push(
          `${v.lat}|${v.lon}: ${pair[0]} (sphere ${by.get(pair[0]).ds.toFixed(1)} m, spheroid ${by.get(pair[0]).de.toFixed(1)} m) ` +
            `and ${pair[1]} (sphere ${by.get(pair[1]).ds.toFixed(1)} m, spheroid ${by.get(pair[1]).de.toFixed(1)} m)` +
            (sameSet ? '' : ', at the 10th place'),
        );
    }),
  );
  s.http_bytes = Math.round(s.http_bytes / list.length);
  s.raw_bytes = Math.round(s.raw_bytes / list.length);
  summary[name] = s;
  if (bad === badBefore) {
    let line = `  ${name}: all ${list.length} variants answer 200 with the Locations of the raw SQL; ${s.http_bytes} bytes per HTTP response, ${s.raw_bytes} bytes of rows from the SQL on average`;
    if (name === 'near')
      line +=
        `; identical lists ${s.same}, same 10 in another order ${s.order_differs}, a different 10th ${s.set_differs}` +
        (s.order_differs + s.set_differs ? ` (spheroid vs sphere; largest gap ${(100 * s.max_rel).toFixed(3)} %)` : '');
    console.log(line);
    for (const e of s.examples) console.log(`    ${e}`);
  }
}
get.close();
fs.writeFileSync(path.join(o.work, 'verify.json'), JSON.stringify(summary, null, 1));
if (bad) {
  console.error(`verify: ${bad} variant(s) did not answer as expected`);
  process.exit(1);
}
