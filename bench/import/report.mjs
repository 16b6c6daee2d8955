// bench/run import: the import block of docs/PERFORMANCE.md, from what bench/import/run.sh measured.
import os from 'node:os';

import { options, runLine, sh, writeBlock } from '../lib/report.mjs';

const o = options(process.argv.slice(2));
const parse = (line) => Object.fromEntries(line.split(/\s+/).slice(1).map((kv) => kv.split('=')));
const first = parse(o.first);
const rerun = parse(o.rerun);
const floor = parse(o.floor);
// import.floor.<table>: seconds=…, one line each
const floorLines = (o['floor-tables'] || '').split('\n').filter(Boolean);
const lean = parse(floorLines.find((l) => l.startsWith('import.floor.lean:')) || 'x');
const floorTables = floorLines.filter((l) => !l.startsWith('import.floor.lean:'))
  .map((l) => [l.split(':')[0].replace('import.floor.', ''), parse(l).seconds]);
const goalRate = 20000;
const goalRatio = 5;

let t = runLine('import');
t += `- Machine: ${os.cpus().length} cores (${sh("lscpu | sed -n 's/^Model name: *//p'")}), ${Math.round(os.totalmem() / 2 ** 30)} GB RAM; load average ${o['loadavg-start']} at the start; the whole run took ${o.elapsed} s.\n`;
t += `- Software: PostgreSQL ${o.postgres}; mahali Release build; cluster with \`fsync=off synchronous_commit=off full_page_writes=off shared_buffers=1GB\` for both sides.\n`;
t += '- File: the WHO/KEMRI list of public health facilities in sub-Saharan Africa (98,745 rows, gzip), mapping `importers/mappings/who-kemri-ssa-2019.json`.\n\n';
t += '| | rows | seconds | rows/s | ratio to COPY | outcome |\n|---|---:|---:|---:|---:|---|\n';
t += `| \`COPY\` into a table of 12 text columns (best of 3) | ${o['copy-rows']} | ${o.copy} | ${Math.round(o['copy-rows'] / o.copy)} | 1 | |\n`;
t += `| \`mahali import csv\`, empty registry | ${first.rows} | ${first.seconds} | ${first.rows_per_s} | ${first.ratio_vs_copy} | created ${first.created}, rejected ${first.rejected} |\n`;
t += `| the floor: \`COPY\` of the ${floor.table_rows} table rows the import wrote, into an empty registry (one backend) | ${floor.rows} | ${floor.seconds} | ${floor.rows_per_s} | ${floor.ratio_vs_copy} | |\n`;
t += `| the floor of DESIGN.md's suggested layout: \`COPY\` of the same resources and versions into one row each (search values as arrays and columns of that row; no audit) | ${lean.rows} | ${lean.seconds} | ${lean.rows_per_s} | ${lean.ratio_vs_copy} | |\n`;
t += `| the same file again | ${rerun.rows} | ${rerun.seconds} | ${rerun.rows_per_s} | ${rerun.ratio_vs_copy} | unchanged ${rerun.unchanged}, updated ${rerun.updated} |\n\n`;
t += `The floor, table by table (seconds): ${floorTables.map(([n, v]) => `${n} ${v}`).join(', ')}.\n`;
t += `The import took ${(first.seconds / floor.seconds).toFixed(2)}× the floor's time.\n\n`;
t += `The registry then held ${o.resources} resources and ${o.versions} versions (the re-run added none).\n`;
t += `Goals: ≥ ${goalRate.toLocaleString('en-US')} rows/s (${+first.rows_per_s >= goalRate ? 'met' : 'not met'}) and within ${goalRatio}× of COPY (${+first.ratio_vs_copy <= goalRatio ? 'met' : 'not met'}).\n\n`;
t += 'Printed by the run:\n\n```\n';
t += `import.copy: rows=${o['copy-rows']} seconds=${o.copy}\n${o.first}\n${o.floor}\n${o['floor-tables']}\n${o.rerun}\n`;
t += '```\n';
writeBlock(o.doc, 'import', t, 'Import');
