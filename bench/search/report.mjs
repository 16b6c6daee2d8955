// Write the results of `bench/run search` into docs/PERFORMANCE.md: the block between
// <!-- bench:search:begin --> and <!-- bench:search:end --> is replaced (appended if absent);
// everything else in the file (method, analysis) is left as written.
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

const argv = process.argv.slice(2);
const o = {};
for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];

const sh = (cmd) => {
  try {
    return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
};
const load = JSON.parse(fs.readFileSync(o.load, 'utf8'));
const variants = JSON.parse(fs.readFileSync(o.variants, 'utf8'));
const rows = fs
  .readFileSync(o.results, 'utf8')
  .trim()
  .split('\n')
  .map((l) => {
    const [s, c, h, r, p99, p50, hpg, hsrv, hcli, rpg, rcli, hout, rout, rp] = l.split('\t');
    return { s, c: +c, h: +h, r: +r, p99: +p99 / 1000, p50: +p50 / 1000, hpg: +hpg, hsrv: +hsrv, hcli: +hcli, rpg: +rpg, rcli: +rcli, hout: +hout, rout: +rout, rp: rp ? +rp : null };
  });

const cpu = sh("lscpu | sed -n 's/^Model name: *//p'");
const osName = sh(". /etc/os-release && echo \"$PRETTY_NAME\"");
const commit = sh('git rev-parse --short HEAD');
const dirty = sh("git status --porcelain --untracked-files=no -- . ':!bench' ':!docs/PERFORMANCE.md' ':!README.md'");
const what = {
  identifier: 'Location?identifier=https://bench.mahali.example/facility|F00xxxxx',
  name: 'Location?name=<first 4 letters of a facility name>',
  type_status: 'Location?type=http://terminology.hl7.org/CodeSystem/v3-RoleCode|<HOSP, OF, PHARM, MBL>&status=active',
  partof_below: 'Location?partof:below=<a region>',
  include: 'Location?identifier=…|F00xxxxx&_include=Location:organization',
};
const fmt = (x, d = 0) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const rate = (x) => (x < 100 ? x.toFixed(1) : String(Math.round(x)));
const rateT = (x) => (x < 100 ? fmt(x, 1) : fmt(x));

let t = '';
t += `Run of \`bench/run search\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, `;
t += `commit \`${commit}\`${dirty && dirty !== '?' ? ' (with uncommitted changes outside bench/ and docs/)' : ''}.\n\n`;
t += `- Machine: ${os.cpus().length} cores (\`nproc\` ${sh('nproc')}, ${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GB RAM, ${osName}; `;
t += `load average ${o['loadavg-start']} at the start. `;
{
  const outs = rows.flatMap((r) => [r.hout, r.rout]);
  t += `Other processes on the machine used ${Math.min(...outs)}–${Math.max(...outs)} % of its CPU during the measurements (mean ${Math.round(outs.reduce((a, b) => a + b, 0) / outs.length)} %; column "other CPU").\n`;
}
t += `- Software: PostgreSQL ${o.postgres}, PostGIS ${o.postgis}, ${o.pgbench}, ${o.wrk}, node ${process.versions.node}; `;
t += 'mahali Release build, `MAHALI_THREADS=16`; cluster with `fsync=off synchronous_commit=off full_page_writes=off shared_buffers=1GB`.\n';
t += `- Data: ${fmt(load.facilities)} facilities and ${fmt(load.jurisdictions)} jurisdictions, each a Location + Organization pair: `;
t += `${fmt(load.resources)} resources, ${fmt(load.json_bytes / 2 ** 20, 1)} MB of JSON (a facility Location is ${fmt(load.facility_location_bytes)} bytes on average); `;
t += `database ${o['db-size']} after loading (Location + Organization tables with their indexes: ${o['loc-size']}).\n`;
t += `- Load through the REST API (PUT, ${load.concurrency} keep-alive connections, parents first): `;
t += `**${fmt(load.rate)} resources/s** (${fmt(load.seconds, 1)} s`;
if (load.retries) t += `, ${load.retries} requests sent again after the server closed an idle keep-alive connection`;
t += ').';
if (load.timeline && load.timeline.length > 1) {
  const w = [];
  let prev = [0, 0];
  for (const p of load.timeline) {
    w.push(Math.round((p[1] - prev[1]) / (p[0] - prev[0])));
    prev = p;
  }
  t += ` Rate in successive ~15 s windows (resources/s): ${w.join(', ')}.`;
}
t += '\n';
if (+o['server-restarts'] > 0)
  t += `- Something outside the bench stopped the server (SIGTERM) ${o['server-restarts']} time(s) during the measurements; the scenario under way was measured again on a restarted server.\n`;
t += `- Whole run: ${Math.round(+o.elapsed / 60)} min. Each figure: ${o.seconds} s after a ${o.warmup} s warm-up; wrk \`-t2\`, pgbench \`-M simple -c N -j N\` (the ratio's baseline) and, at 8 clients, \`-M prepared\` as a second baseline.\n\n`;
t += '| scenario | variants | clients | HTTP req/s | raw tx/s | ratio | raw tx/s, plans kept (`-M prepared`) | ratio to it | HTTP p50 ms | HTTP p99 ms | CPU µs per HTTP search: postgres + mahali + wrk | CPU µs per raw search: postgres + pgbench | other CPU % HTTP / raw |\n';
t += '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|\n';
for (const r of rows) {
  const ratio = r.h / r.r;
  t += `| ${r.s} | ${variants[r.s].length} | ${r.c} | ${rateT(r.h)} | ${rateT(r.r)} | ${ratio.toFixed(2)}${r.c === 8 && ratio < 0.7 ? ' ✗' : ''} | ${r.rp ? rateT(r.rp) : ''} | ${r.rp ? (r.h / r.rp).toFixed(2) : ''} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)}${r.c === 8 && r.s === 'partof_below' && r.p99 > 50 ? ' ✗' : ''} | `;
  t += `${fmt(r.hpg)} + ${fmt(r.hsrv)} + ${fmt(r.hcli)} = ${fmt(r.hpg + r.hsrv + r.hcli)} | ${fmt(r.rpg)} + ${fmt(r.rcli)} = ${fmt(r.rpg + r.rcli)} | ${r.hout} / ${r.rout} |\n`;
}
t += '\n✗: misses the goal (ratio ≥ 0.7 at 8 clients; `partof_below` p99 ≤ 50 ms). CPU per search: ';
t += 'user + system time of the cluster\'s processes, of `mahali serve` and of the load generator ';
t += 'during the measurement, divided by the searches done (clock-tick resolution; the cluster ';
t += 'figure includes its background processes). Other CPU: the share of the machine used by processes other than the cluster, the server and the load generator during the measurement (other work on a shared machine).';
const few = rows.filter((r) => Math.min(r.h, r.r) * +o.seconds < 200);
if (few.length)
  t += ` Few searches complete in ${o.seconds} s for ${[...new Set(few.map((r) => `\`${r.s}\``))].join(', ')} ` +
    `(${few.map((r) => `${Math.round(r.h * +o.seconds)} HTTP / ${Math.round(r.r * +o.seconds)} raw at ${r.c} clients`).join('; ')}): ` +
    'their rates count only the searches that finished inside the window, so their ratios carry an error of ' +
    'roughly one search in flight per client (±10–40 %).';
t += '\n';
t += '\nThe lines `bench/run search` printed (ratio and p99 at 8 clients):\n\n```\n';
const scen = [...new Set(rows.map((r) => r.s))];
for (const s of scen) {
  const r8 = rows.find((r) => r.s === s && r.c === 8);
  const r2 = rows.find((r) => r.s === s && r.c === 2);
  t += `search.${s}: http_rps=${rate(r8.h)} raw_rps=${rate(r8.r)} ratio=${(r8.h / r8.r).toFixed(2)} p99_ms=${r8.p99.toFixed(1)}\n`;
  t += `  (2 clients) http_rps=${rate(r2.h)} raw_rps=${rate(r2.r)} ratio=${(r2.h / r2.r).toFixed(2)} p99_ms=${r2.p99.toFixed(1)}\n`;
  if (r8.rp) t += `  (raw with prepared statements, pgbench -M prepared, 8 clients) raw_rps=${rate(r8.rp)} ratio=${(r8.h / r8.rp).toFixed(2)}\n`;
}
t += '```\n\nQueries:\n\n';
for (const s of scen) t += `- \`${s}\`: \`${what[s]}\`\n`;

const begin = '<!-- bench:search:begin (written by bench/run search; do not edit by hand) -->';
const end = '<!-- bench:search:end -->';
const block = `${begin}\n${t}${end}`;
let doc = fs.existsSync(o.doc) ? fs.readFileSync(o.doc, 'utf8') : '# Performance\n\n## Search: latest results\n\n';
const re = /<!-- bench:search:begin[^>]*-->[\s\S]*?<!-- bench:search:end -->/;
doc = re.test(doc) ? doc.replace(re, () => block) : `${doc.trimEnd()}\n\n${block}\n`;
fs.writeFileSync(o.doc, doc);
