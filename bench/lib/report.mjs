// What the benchmarks' report scripts share: reading bench/run's results, the description of the
// machine, the software and the load, number formats, and replacing a generated block of
// docs/PERFORMANCE.md (<!-- bench:NAME:begin ... --> ... <!-- bench:NAME:end -->).
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

import { options } from './http.mjs';

export { options };

export const sh = (cmd) => {
  try {
    return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
};

/** The rows bench/run's measure() wrote (one per scenario and client count). */
export function readRows(file) {
  return fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const [s, c, h, r, p99, p50, hpg, hsrv, hcli, rpg, rcli, hout, rout, rp] = l.split('\t');
      return { s, c: +c, h: +h, r: +r, p99: +p99 / 1000, p50: +p50 / 1000, hpg: +hpg, hsrv: +hsrv, hcli: +hcli, rpg: +rpg, rcli: +rcli, hout: +hout, rout: +rout, rp: rp ? +rp : null };
    });
}

export const fmt = (x, d = 0) => x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
/** A rate as bench/run prints it (one decimal below 100). */
export const rate = (x) => (x < 100 ? x.toFixed(1) : String(Math.round(x)));
/** The same with thousands separators, for tables. */
export const rateT = (x) => (x < 100 ? fmt(x, 1) : fmt(x));

/** "Run of `bench/run NAME` on DATE UTC, commit `abc1234`.\n\n" */
export function runLine(bench) {
  const commit = sh('git rev-parse --short HEAD');
  const dirty = sh("git status --porcelain --untracked-files=no -- . ':!bench' ':!docs/PERFORMANCE.md' ':!README.md'");
  return (
    `Run of \`bench/run ${bench}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ` +
    `commit \`${commit}\`${dirty && dirty !== '?' ? ' (with uncommitted changes outside bench/ and docs/)' : ''}.\n\n`
  );
}

/** The "Machine" and "Software" bullets. */
export function machineLines(o, rows) {
  const cpu = sh("lscpu | sed -n 's/^Model name: *//p'");
  const osName = sh(". /etc/os-release && echo \"$PRETTY_NAME\"");
  let t = `- Machine: ${os.cpus().length} cores (\`nproc\` ${sh('nproc')}, ${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GB RAM, ${osName}; `;
  t += `load average ${o['loadavg-start']} at the start. `;
  const outs = rows.flatMap((r) => [r.hout, r.rout]);
  t += `Other processes on the machine used ${Math.min(...outs)}–${Math.max(...outs)} % of its CPU during the measurements (mean ${Math.round(outs.reduce((a, b) => a + b, 0) / outs.length)} %; column "other CPU").\n`;
  t += `- Software: PostgreSQL ${o.postgres}, PostGIS ${o.postgis}, ${o.pgbench}, ${o.wrk}, node ${process.versions.node}; `;
  t += 'mahali Release build, `MAHALI_THREADS=16`; cluster with `fsync=off synchronous_commit=off full_page_writes=off shared_buffers=1GB`.\n';
  return t;
}

/** The "Load" bullet (from load.json), what comes after it up to the table. */
export function loadLines(o, load, order) {
  let t = `- Load through the REST API (PUT, ${load.concurrency} keep-alive connections, ${order}): `;
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
  return t;
}

/** The CPU-per-search cells of a row: "pg + mahali + wrk = sum | pg + pgbench = sum | out / out". */
export const cpuCells = (r) =>
  `${fmt(r.hpg)} + ${fmt(r.hsrv)} + ${fmt(r.hcli)} = ${fmt(r.hpg + r.hsrv + r.hcli)} | ${fmt(r.rpg)} + ${fmt(r.rcli)} = ${fmt(r.rpg + r.rcli)} | ${r.hout} / ${r.rout} |\n`;

export const CPU_NOTE =
  'CPU per search: ' +
  "user + system time of the cluster's processes, of `mahali serve` and of the load generator " +
  'during the measurement, divided by the searches done (clock-tick resolution; the cluster ' +
  'figure includes its background processes). Other CPU: the share of the machine used by processes other than the cluster, the server and the load generator during the measurement (other work on a shared machine).';

/** The lines bench/run printed for these rows. */
export function printedLines(bench, rows) {
  let t = '';
  for (const s of [...new Set(rows.map((r) => r.s))]) {
    const r8 = rows.find((r) => r.s === s && r.c === 8);
    const r2 = rows.find((r) => r.s === s && r.c === 2);
    t += `${bench}.${s}: http_rps=${rate(r8.h)} raw_rps=${rate(r8.r)} ratio=${(r8.h / r8.r).toFixed(2)} p99_ms=${r8.p99.toFixed(1)}\n`;
    t += `  (2 clients) http_rps=${rate(r2.h)} raw_rps=${rate(r2.r)} ratio=${(r2.h / r2.r).toFixed(2)} p99_ms=${r2.p99.toFixed(1)}\n`;
    if (r8.rp) t += `  (raw with prepared statements, pgbench -M prepared, 8 clients) raw_rps=${rate(r8.rp)} ratio=${(r8.h / r8.rp).toFixed(2)}\n`;
  }
  return t;
}

/**
 * Replace the block <!-- bench:NAME:begin ... --> ... <!-- bench:NAME:end --> of the file with
 * text; when the file has none, append it (under `heading` if given).
 */
export function writeBlock(file, name, text, heading) {
  const begin = `<!-- bench:${name}:begin (written by bench/run ${name}; do not edit by hand) -->`;
  const end = `<!-- bench:${name}:end -->`;
  const block = `${begin}\n${text}${end}`;
  let doc = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : `# Performance\n\n## ${heading}\n\n`;
  const re = new RegExp(`<!-- bench:${name}:begin[^>]*-->[\\s\\S]*?<!-- bench:${name}:end -->`);
  if (re.test(doc)) doc = doc.replace(re, () => block);
  else doc = `${doc.trimEnd()}\n\n${fs.existsSync(file) && heading ? `## ${heading}\n\n` : ''}${block}\n`;
  fs.writeFileSync(file, doc);
}
