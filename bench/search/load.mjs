// Load the benchmark data set through the REST API (PUT /fhir/<Type>/<id>, bearer token),
// parents before children, with several concurrent keep-alive connections; then write the
// query variants (variants.json) and one wrk Lua script per scenario into the work folder.
//
// usage: node load.mjs --base http://127.0.0.1:PORT/fhir --token TOKEN --out DIR
//                      [--facilities 100000] [--concurrency 12]
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { generate, variants } from './dataset.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

function args() {
  const a = { facilities: 100000, concurrency: 12 };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  a.facilities = Number(a.facilities);
  a.concurrency = Number(a.concurrency);
  if (!a.base || !a.token || !a.out) {
    console.error('usage: node load.mjs --base URL --token TOKEN --out DIR [--facilities N] [--concurrency C]');
    process.exit(2);
  }
  return a;
}

function put(agent, base, token, res) {
  const body = Buffer.from(JSON.stringify(res));
  const url = new URL(`${base}/${res.resourceType}/${res.id}`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'PUT',
        headers: {
          'Content-Type': 'application/fhir+json',
          'Content-Length': body.length,
          Authorization: `Bearer ${token}`,
          Prefer: 'return=minimal',
        },
      },
      (resp) => {
        const chunks = [];
        resp.on('data', (c) => chunks.push(c));
        resp.on('end', () => {
          if (resp.statusCode === 200 || resp.statusCode === 201) resolve(resp.statusCode);
          else
            reject(
              new Error(
                `PUT ${url.pathname}: HTTP ${resp.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 600)}`,
              ),
            );
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

// civetweb closes a keep-alive connection after 500 ms idle (its default
// keep_alive_timeout_ms): a request sent on a pooled socket just as the server closes it fails
// with ECONNRESET / "socket hang up". PUT is idempotent (the same content again is a no-op), so
// such a request is simply sent again; HTTP errors are not retried.
let retries = 0;
async function putRetry(agent, base, token, res) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await put(agent, base, token, res);
    } catch (e) {
      const network = e.code === 'ECONNRESET' || e.code === 'EPIPE' || /socket hang up/.test(e.message);
      if (!network || attempt >= 5) throw e;
      retries++;
    }
  }
}

async function main() {
  const a = args();
  const t0 = process.hrtime.bigint();
  const ds = generate({ facilities: a.facilities });
  const genMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const agent = new http.Agent({ keepAlive: true, maxSockets: a.concurrency });
  let done = 0;
  let bytes = 0;
  const total = ds.levels.reduce((s, l) => s + 2 * l.length, 0);
  const start = process.hrtime.bigint();
  let lastReport = Date.now();
  const timeline = []; // [seconds since start, resources written], every ~15 s

  // level by level (parents exist before children); within a level, each worker writes an
  // Organization and then its Location (the Location refers to it)
  for (const level of ds.levels) {
    let next = 0;
    const worker = async () => {
      while (next < level.length) {
        const pair = level[next++];
        await putRetry(agent, a.base, a.token, pair.org);
        await putRetry(agent, a.base, a.token, pair.loc);
        done += 2;
        if (Date.now() - lastReport > 15000) {
          lastReport = Date.now();
          const s = Number(process.hrtime.bigint() - start) / 1e9;
          timeline.push([Math.round(s), done]);
          process.stderr.write(`  ... ${done}/${total} resources, ${Math.round(done / s)}/s so far\n`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(a.concurrency, level.length) }, worker));
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  agent.destroy();
  for (const level of ds.levels)
    for (const p of level) bytes += JSON.stringify(p.loc).length + JSON.stringify(p.org).length;
  const facLocBytes =
    ds.levels[4].reduce((s, p) => s + JSON.stringify(p.loc).length, 0) / Math.max(1, ds.levels[4].length);

  // the query variants and the wrk scripts that cycle through them
  const sc = variants(ds);
  fs.writeFileSync(path.join(a.out, 'variants.json'), JSON.stringify(sc, null, 1));
  const cycle = fs.readFileSync(path.join(here, 'cycle.lua'), 'utf8');
  for (const [name, list] of Object.entries(sc)) {
    const paths = list.map((v) => `  ${JSON.stringify('/fhir/Location?' + v.query)},`).join('\n');
    fs.writeFileSync(path.join(a.out, `wrk-${name}.lua`), `paths = {\n${paths}\n}\n\n${cycle}`);
  }

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
