// bench/run sync: the sync block of docs/PERFORMANCE.md, from what bench/sync/run.sh measured.
import os from 'node:os';

import { options, runLine, sh, writeBlock } from '../lib/report.mjs';

const o = options(process.argv.slice(2));
const w = Object.fromEntries(o.line.split(/\s+/).slice(1).map((kv) => kv.split('=')));
const copyRate = Math.round(o['copy-rows'] / o.copy);
const goal = 0.5;

let t = runLine('sync');
t += `- Machine: ${os.cpus().length} cores (${sh("lscpu | sed -n 's/^Model name: *//p'")}), ${Math.round(os.totalmem() / 2 ** 30)} GB RAM; load average ${o['loadavg-start']} at the start; the whole run took ${o.elapsed} s.\n`;
t += `- Software: PostgreSQL ${o.postgres}; mahali Release build; cluster with \`fsync=off synchronous_commit=off full_page_writes=off shared_buffers=1GB\`.\n`;
t += '- Data: 100,000 Practitioners and 100,000 PractitionerRoles (`bench/sync/gen.mjs`, ~1 KB each), loaded with `mahali import fhir`.\n\n';
t += '| | versions | seconds | versions/s | ratio | |\n|---|---:|---:|---:|---:|---|\n';
t += `| \`COPY (SELECT content FROM resource_history …) TO STDOUT\` (best of 3) | ${o['copy-rows']} | ${o.copy} | ${copyRate} | 1 | ${o['copy-mb']} MB |\n`;
t += `| \`GET [base]/_history?_count=500\` and every next link, one client (best of 3) | ${w.resources} | ${w.seconds} | ${w.per_s} | ${w.ratio} | ${w.pages} pages, ${w.MB} MB |\n\n`;
t += `Goal: ratio ≥ ${goal} (${+w.ratio >= goal ? 'met' : 'not met'}).\n\n`;
t += 'Printed by the run:\n\n```\n';
t += `sync.copy: versions=${o['copy-rows']} seconds=${o.copy} per_s=${copyRate}\n${o.line}\n`;
t += '```\n';
writeBlock(o.doc, 'sync', t, 'Sync');
