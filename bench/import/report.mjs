// bench/run import: the import block of docs/PERFORMANCE.md, from what bench/import/run.sh measured.
import os from 'node:os';

import { options, runLine, sh, writeBlock } from '../lib/report.mjs';

const o = options(process.argv.slice(2));
const parse = (line) => Object.fromEntries(line.split(/\s+/).slice(1).map((kv) => kv.split('=')));
const first = parse(o.first);
const rerun = parse(o.rerun);
const floor = parse(o.floor);
// the other import.floor… lines, by name: floor.two_backends, floor.<table>, floor.lean, …
const more = Object.fromEntries((o['floor-tables'] || '').split('\n').filter(Boolean)
  .map((l) => [l.split(':')[0].replace('import.', ''), parse(l)]));
const tablesOf = (prefix) => Object.entries(more)
  .filter(([k]) => k.startsWith(`${prefix}.`) && !k.endsWith('two_backends') && !(prefix === 'floor' && /^floor\.(lean|json)/.test(k)))
  .map(([k, v]) => `${k.slice(prefix.length + 1)} ${v.seconds}`).join(', ');
const floor2 = more['floor.two_backends'] || {};
const lean = more['floor.lean'] || {};
const lean2 = more['floor.lean.two_backends'] || {};
const json1 = more['floor.json'] || {};
const json2 = more['floor.json.two_backends'] || {};
const goalRate = 20000;
const goalRatio = 5;

let t = runLine('import');
t += `- Machine: ${os.cpus().length} cores (${sh("lscpu | sed -n 's/^Model name: *//p'")}), ${Math.round(os.totalmem() / 2 ** 30)} GB RAM; load average ${o['loadavg-start']} at the start; the whole run took ${o.elapsed} s.\n`;
t += `- Software: PostgreSQL ${o.postgres}; mahali Release build; cluster with \`fsync=off synchronous_commit=off full_page_writes=off shared_buffers=1GB\` for both sides.\n`;
t += '- File: the WHO/KEMRI list of public health facilities in sub-Saharan Africa (98,745 rows, gzip), mapping `importers/mappings/who-kemri-ssa-2019.json`.\n\n';
t += '| | rows | seconds | rows/s | ratio to COPY | outcome |\n|---|---:|---:|---:|---:|---|\n';
t += `| \`COPY\` into a table of 12 text columns (best of 3) | ${o['copy-rows']} | ${o.copy} | ${Math.round(o['copy-rows'] / o.copy)} | 1 | |\n`;
t += `| \`mahali import csv\`, empty registry | ${first.rows} | ${first.seconds} | ${first.rows_per_s} | ${first.ratio_vs_copy} | created ${first.created}, rejected ${first.rejected} |\n`;
const row = (label, x) => `| ${label} | ${x.rows} | ${x.seconds} | ${x.rows_per_s} | ${x.ratio_vs_copy} | |\n`;
t += row(`the floor: \`COPY\` of the ${floor.table_rows} table rows the import wrote, into an empty registry, one backend`, floor);
t += row('the same floor on two backends at once (the rows halved by id)', floor2);
t += row("the floor of DESIGN.md's suggested layout: the same resources and versions as one row each (search values as arrays and columns of that row, GIN/GiST; no audit), one backend", lean);
t += row('the same on two backends at once', lean2);
t += row("the resources' JSON alone: the same resources and versions into two tables without any index, one backend", json1);
t += row('the same on two backends at once', json2);
t += `| the same file again | ${rerun.rows} | ${rerun.seconds} | ${rerun.rows_per_s} | ${rerun.ratio_vs_copy} | unchanged ${rerun.unchanged}, updated ${rerun.updated} |\n\n`;
t += `The floor, table by table (seconds, one backend): ${tablesOf('floor')}. The suggested layout: ${tablesOf('floor.lean')}.\n`;
t += `The import took ${(first.seconds / floor.seconds).toFixed(2)}× the one-backend floor's time and ${(first.seconds / floor2.seconds).toFixed(2)}× the two-backend floor's.\n\n`;
t += `The registry then held ${o.resources} resources and ${o.versions} versions (the re-run added none).\n`;
t += `Goals: ≥ ${goalRate.toLocaleString('en-US')} rows/s (${+first.rows_per_s >= goalRate ? 'met' : 'not met'}) and within ${goalRatio}× of COPY (${+first.ratio_vs_copy <= goalRatio ? 'met' : 'not met'}).\n\n`;
t += 'Printed by the run:\n\n```\n';
t += `import.copy: rows=${o['copy-rows']} seconds=${o.copy}\n${o.first}\n${o.floor}\n${o['floor-tables']}\n${o.rerun}\n`;
t += '```\n';
writeBlock(o.doc, 'import', t, 'Import');
