// Write the results of `bench/run search` into docs/PERFORMANCE.md: the block between
// <!-- bench:search:begin --> and <!-- bench:search:end --> is replaced (appended if absent);
// everything else in the file (method, analysis) is left as written.
import fs from 'node:fs';

import { CPU_NOTE, cpuCells, fmt, loadLines, machineLines, options, printedLines, rateT, readRows, runLine, writeBlock } from '../lib/report.mjs';

const o = options();
const load = JSON.parse(fs.readFileSync(o.load, 'utf8'));
const variants = JSON.parse(fs.readFileSync(o.variants, 'utf8'));
const rows = readRows(o.results);

const what = {
  identifier: 'Location?identifier=https://bench.mahali.example/facility|F00xxxxx',
  name: 'Location?name=<first 4 letters of a facility name>',
  type_status: 'Location?type=http://terminology.hl7.org/CodeSystem/v3-RoleCode|<HOSP, OF, PHARM, MBL>&status=active',
  partof_below: 'Location?partof:below=<a region>',
  include: 'Location?identifier=…|F00xxxxx&_include=Location:organization',
};

let t = runLine('search');
t += machineLines(o, rows);
t += `- Data: ${fmt(load.facilities)} facilities and ${fmt(load.jurisdictions)} jurisdictions, each a Location + Organization pair: `;
t += `${fmt(load.resources)} resources, ${fmt(load.json_bytes / 2 ** 20, 1)} MB of JSON (a facility Location is ${fmt(load.facility_location_bytes)} bytes on average); `;
t += `database ${o['db-size']} after loading (Location + Organization tables with their indexes: ${o['loc-size']}).\n`;
t += loadLines(o, load, 'parents first');
t += '| scenario | variants | clients | HTTP req/s | raw tx/s | ratio | raw tx/s, plans kept (`-M prepared`) | ratio to it | HTTP p50 ms | HTTP p99 ms | CPU µs per HTTP search: postgres + mahali + wrk | CPU µs per raw search: postgres + pgbench | other CPU % HTTP / raw |\n';
t += '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|\n';
for (const r of rows) {
  const ratio = r.h / r.r;
  t += `| ${r.s} | ${variants[r.s].length} | ${r.c} | ${rateT(r.h)} | ${rateT(r.r)} | ${ratio.toFixed(2)}${r.c === 8 && ratio < 0.7 ? ' ✗' : ''} | ${r.rp ? rateT(r.rp) : ''} | ${r.rp ? (r.h / r.rp).toFixed(2) : ''} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)}${r.c === 8 && r.s === 'partof_below' && r.p99 > 50 ? ' ✗' : ''} | `;
  t += cpuCells(r);
}
t += `\n✗: misses the goal (ratio ≥ 0.7 at 8 clients; \`partof_below\` p99 ≤ 50 ms). ${CPU_NOTE}`;
const few = rows.filter((r) => Math.min(r.h, r.r) * +o.seconds < 200);
if (few.length)
  t += ` Few searches complete in ${o.seconds} s for ${[...new Set(few.map((r) => `\`${r.s}\``))].join(', ')} ` +
    `(${few.map((r) => `${Math.round(r.h * +o.seconds)} HTTP / ${Math.round(r.r * +o.seconds)} raw at ${r.c} clients`).join('; ')}): ` +
    'their rates count only the searches that finished inside the window, so their ratios carry an error of ' +
    'roughly one search in flight per client (±10–40 %).';
t += '\n';
t += '\nThe lines `bench/run search` printed (ratio and p99 at 8 clients):\n\n```\n';
t += printedLines('search', rows);
t += '```\n\nQueries:\n\n';
for (const s of [...new Set(rows.map((r) => r.s))]) t += `- \`${s}\`: \`${what[s]}\`\n`;

writeBlock(o.doc, 'search', t, 'Search: latest results');
