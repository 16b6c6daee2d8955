// Write the results of `bench/run spatial` into docs/PERFORMANCE.md: the block between
// <!-- bench:spatial:begin --> and <!-- bench:spatial:end --> is replaced (appended under
// "## Spatial: latest results" if absent); everything else in the file is left as written.
import fs from 'node:fs';
import path from 'node:path';

import { CPU_NOTE, cpuCells, fmt, loadLines, machineLines, options, printedLines, rateT, readRows, runLine, writeBlock } from '../lib/report.mjs';
import { rawSql } from './dataset.mjs';

const o = options();
const load = JSON.parse(fs.readFileSync(o.load, 'utf8'));
const variants = JSON.parse(fs.readFileSync(o.variants, 'utf8'));
const verify = JSON.parse(fs.readFileSync(path.join(o.work, 'verify.json'), 'utf8'));
const rows = readRows(o.results);

// the goals (spatial issue), on the ratio at 8 clients
const GOAL = { near: 1.0, contains: 0.8 };
const http = {
  near: 'GET /fhir/Location?near=LAT|LON&_count=10',
  contains: 'GET /fhir/Location?contains=LAT|LON',
};
const sqlOf = (s) => rawSql(s, { lat: 0, lon: 0 }).trim().replace('0.000000, 0.000000', 'LON, LAT');

let t = runLine('spatial');
t += machineLines(o, rows);
const [vmin, vavg, vmax] = load.catchment_vertices;
t += `- Data: ${fmt(load.facilities)} facilities, each a Location + Organization pair, ${Math.round((100 * load.clustered) / load.facilities)} % of them around ${load.towns} towns and the rest spread over the box (lat 6.9..10.0, lon -13.3..-10.3), `;
t += `and ${fmt(load.catchments)} catchment Locations whose boundaries (${vmin}–${vmax} vertices, ${vavg} on average) tile the box: `;
t += `${fmt(load.resources)} resources, ${fmt(load.json_bytes / 2 ** 20, 1)} MB of JSON (a facility Location is ${fmt(load.facility_location_bytes)} bytes, a catchment ${fmt(load.catchment_location_bytes)} bytes on average); `;
t += `database ${o['db-size']} after loading (Location + Organization tables with their indexes: ${o['loc-size']}; \`sp_geo\` with its indexes: ${o['geo-size']}).\n`;
t += loadLines(o, load, 'catchments first, each Organization before its Location');
t = t.replace(/\n\n$/, '\n'); // one more bullet before the table
{
  const n = verify.near;
  const c = verify.contains;
  t += '- Checks before measuring: every variant answered 200 over HTTP with the Locations its raw SQL returns';
  if (c) t += `; \`contains\`: the same catchment over HTTP, from the SQL and from the generator's polygons, for all ${c.variants} points`;
  if (n) {
    t += `; \`near\`: the same 10 facilities in the same order for ${n.same} of ${n.variants} points`;
    if (n.order_differs + n.set_differs)
      t += `, in another order for ${n.order_differs} and with a different 10th for ${n.set_differs}: the server orders by the distance on the WGS84 spheroid, \`<->\` by the distance on the sphere, and those pairs of facilities are within ${(100 * n.max_rel).toFixed(2)} % of each other (each list was checked against PostGIS's distances for its own metric)`;
  }
  t += '. Average sizes: ';
  t += Object.entries(verify)
    .map(([s, v]) => `\`${s}\` ${fmt(v.http_bytes)} bytes per HTTP response, ${fmt(v.raw_bytes)} bytes of rows per raw query`)
    .join('; ');
  t += '.\n\n';
}
t += '| scenario | variants | clients | HTTP req/s | raw tx/s | ratio | raw tx/s, plans kept (`-M prepared`) | ratio to it | HTTP p50 ms | HTTP p99 ms | CPU µs per HTTP search: postgres + mahali + wrk | CPU µs per raw search: postgres + pgbench | other CPU % HTTP / raw |\n';
t += '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|\n';
for (const r of rows) {
  const ratio = r.h / r.r;
  const miss = r.c === 8 && GOAL[r.s] !== undefined && ratio < GOAL[r.s];
  t += `| ${r.s} | ${variants[r.s].length} | ${r.c} | ${rateT(r.h)} | ${rateT(r.r)} | ${ratio.toFixed(2)}${miss ? ' ✗' : ''} | ${r.rp ? rateT(r.rp) : ''} | ${r.rp ? (r.h / r.rp).toFixed(2) : ''} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | `;
  t += cpuCells(r);
}
t += `\n✗: misses the goal (ratio at 8 clients: \`near\` ≥ 1.0, \`contains\` ≥ 0.8). ${CPU_NOTE}\n`;
t += '\nThe lines `bench/run spatial` printed (ratio and p99 at 8 clients):\n\n```\n';
t += printedLines('spatial', rows);
t += '```\n\nQueries (HTTP, then the raw SQL pgbench runs; LAT and LON inlined, 6 decimals):\n\n';
for (const s of [...new Set(rows.map((r) => r.s))]) t += `- \`${s}\`: \`${http[s]}\`\n  \`${sqlOf(s)}\`\n`;

writeBlock(o.doc, 'spatial', t, 'Spatial: latest results');
