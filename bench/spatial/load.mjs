// Load the spatial benchmark's data set through the REST API (PUT, bearer token, keep-alive
// connections): the 200 catchments first, then the facilities (each Organization before its
// Location). Then write into the work folder the query variants (variants.json), one wrk Lua
// script per scenario, the raw SQL of every variant (raw/<scenario>/NNN.sql) and one pgbench
// script per scenario (sql/<scenario>/pick.sql) that runs one of them per transaction, chosen at
// random (pgbench takes at most 128 script files, and there are 200 variants).
//
// usage: node load.mjs --base http://127.0.0.1:PORT/fhir --token TOKEN --out DIR
//                      [--facilities 100000] [--concurrency 12]
import fs from 'node:fs';
import path from 'node:path';

import { loadLevels, options, writeWrkScripts } from '../lib/http.mjs';
import { generate, rawSql, variants } from './dataset.mjs';

const a = { facilities: 100000, concurrency: 12, ...options() };
a.facilities = Number(a.facilities);
a.concurrency = Number(a.concurrency);
if (!a.base || !a.token || !a.out) {
  console.error('usage: node load.mjs --base URL --token TOKEN --out DIR [--facilities N] [--concurrency C]');
  process.exit(2);
}

/** A pgbench script running one of the statements, uniformly at random: a tree of \if on k. */
function pickScript(sqls) {
  const tree = (lo, hi) => {
    if (hi - lo === 1) return sqls[lo];
    const mid = (lo + hi) >> 1;
    return `\\if :k < ${mid}\n${tree(lo, mid)}\\else\n${tree(mid, hi)}\\endif\n`;
  };
  return `\\set k random(0, ${sqls.length - 1})\n${tree(0, sqls.length)}`;
}

try {
  const t0 = process.hrtime.bigint();
  const ds = generate({ facilities: a.facilities });
  const genMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const { resources, seconds, retries, timeline } = await loadLevels({
    base: a.base,
    token: a.token,
    levels: ds.levels,
    concurrency: a.concurrency,
  });
  const size = (res) => JSON.stringify(res).length;
  const bytes = ds.levels.flat(2).reduce((s, res) => s + size(res), 0);
  const avg = (list) => list.reduce((s, x) => s + x, 0) / Math.max(1, list.length);
  const vertices = ds.cells.map((c) => c.vertices);

  const sc = variants(ds);
  fs.writeFileSync(path.join(a.out, 'variants.json'), JSON.stringify(sc, null, 1));
  writeWrkScripts(a.out, sc, (v) => '/fhir/Location?' + v.query);
  for (const [name, list] of Object.entries(sc)) {
    const raw = path.join(a.out, 'raw', name);
    const dir = path.join(a.out, 'sql', name);
    fs.mkdirSync(raw, { recursive: true });
    fs.mkdirSync(dir, { recursive: true });
    const sqls = list.map((v) => rawSql(name, v));
    sqls.forEach((sql, n) => fs.writeFileSync(path.join(raw, `${String(n).padStart(3, '0')}.sql`), sql));
    fs.writeFileSync(path.join(dir, 'pick.sql'), pickScript(sqls));
  }

  const summary = {
    facilities: ds.facilities.length,
    clustered: ds.clustered,
    towns: ds.towns,
    catchments: ds.catchments.length,
    catchment_vertices: [Math.min(...vertices), Math.round(avg(vertices)), Math.max(...vertices)],
    resources,
    seconds: Math.round(seconds * 10) / 10,
    rate: Math.round(resources / seconds),
    concurrency: a.concurrency,
    retries,
    timeline,
    json_bytes: bytes,
    facility_location_bytes: Math.round(avg(ds.facilityPairs.map((p) => size(p.loc)))),
    catchment_location_bytes: Math.round(avg(ds.catchments.map((c) => size(c.loc)))),
    generate_ms: Math.round(genMs),
    variants: Object.fromEntries(Object.entries(sc).map(([k, v]) => [k, v.length])),
  };
  fs.writeFileSync(path.join(a.out, 'load.json'), JSON.stringify(summary, null, 1));
  console.log(JSON.stringify(summary));
} catch (e) {
  console.error(`load: ${e.message}`);
  process.exit(1);
}
