// Load the benchmark data set through the REST API (PUT /fhir/<Type>/<id>, bearer token),
// parents before children, with several concurrent keep-alive connections; then write the
// query variants (variants.json) and one wrk Lua script per scenario into the work folder.
//
// usage: node load.mjs --base http://127.0.0.1:PORT/fhir --token TOKEN --out DIR
//                      [--facilities 100000] [--concurrency 12]
import fs from 'node:fs';
import path from 'node:path';

import { loadLevels, options, writeWrkScripts } from '../lib/http.mjs';
import { generate, variants } from './dataset.mjs';

function args() {
  const a = { facilities: 100000, concurrency: 12, ...options() };
  a.facilities = Number(a.facilities);
  a.concurrency = Number(a.concurrency);
  if (!a.base || !a.token || !a.out) {
    console.error('usage: node load.mjs --base URL --token TOKEN --out DIR [--facilities N] [--concurrency C]');
    process.exit(2);
  }
  return a;
}

async function main() {
  const a = args();
  const t0 = process.hrtime.bigint();
  const ds = generate({ facilities: a.facilities });
  const genMs = Number(process.hrtime.bigint() - t0) / 1e6;

  // level by level (parents exist before children); within a level, each worker writes an
  // Organization and then its Location (the Location refers to it)
  const levels = ds.levels.map((level) => level.map((pair) => [pair.org, pair.loc]));
  const { resources: total, seconds: secs, retries, timeline } = await loadLevels({
    base: a.base,
    token: a.token,
    levels,
    concurrency: a.concurrency,
  });
  let bytes = 0;
  for (const level of ds.levels)
    for (const p of level) bytes += JSON.stringify(p.loc).length + JSON.stringify(p.org).length;
  const facLocBytes =
    ds.levels[4].reduce((s, p) => s + JSON.stringify(p.loc).length, 0) / Math.max(1, ds.levels[4].length);

  // the query variants and the wrk scripts that cycle through them
  const sc = variants(ds);
  fs.writeFileSync(path.join(a.out, 'variants.json'), JSON.stringify(sc, null, 1));
  writeWrkScripts(a.out, sc, (v) => '/fhir/Location?' + v.query);

  const summary = {
    facilities: ds.facilities.length,
    jurisdictions: ds.jurisdictions.length,
    resources: total,
    seconds: Math.round(secs * 10) / 10,
    rate: Math.round(total / secs),
    concurrency: a.concurrency,
    retries,
    timeline,
    json_bytes: bytes,
    facility_location_bytes: Math.round(facLocBytes),
    generate_ms: Math.round(genMs),
    variants: Object.fromEntries(Object.entries(sc).map(([k, v]) => [k, v.length])),
  };
  fs.writeFileSync(path.join(a.out, 'load.json'), JSON.stringify(summary, null, 1));
  console.log(JSON.stringify(summary));
}

main().catch((e) => {
  console.error(`load: ${e.message}`);
  process.exit(1);
});
