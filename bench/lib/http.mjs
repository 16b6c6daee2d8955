// What the benchmarks' Node scripts share: command-line options, PUT and GET over keep-alive
// connections (with the retry civetweb's idle-connection timeout makes necessary), loading a
// data set level by level, and the wrk scripts that cycle through query variants.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** `--name value` pairs → { name: value } (values stay strings). */
export function options(argv = process.argv.slice(2)) {
  const o = {};
  for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
  return o;
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
const isReset = (e) => e.code === 'ECONNRESET' || e.code === 'EPIPE' || /socket hang up/.test(e.message);

/**
 * Write a data set through the REST API (PUT /fhir/<Type>/<id>, bearer token,
 * `Prefer: return=minimal`) over `concurrency` keep-alive connections. levels: arrays of items,
 * written level after level (parents exist before children); an item is an array of resources
 * one worker writes in order (an Organization before the Location that refers to it).
 * Returns { resources, seconds, retries, timeline: [[seconds, resources written], every ~15 s] }.
 */
export async function loadLevels({ base, token, levels, concurrency }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let retries = 0;
  const putRetry = async (res) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await put(agent, base, token, res);
      } catch (e) {
        if (!isReset(e) || attempt >= 5) throw e;
        retries++;
      }
    }
  };
  let done = 0;
  const total = levels.reduce((s, l) => s + l.reduce((t, item) => t + item.length, 0), 0);
  const start = process.hrtime.bigint();
  let lastReport = Date.now();
  const timeline = [];
  for (const level of levels) {
    let next = 0;
    const worker = async () => {
      while (next < level.length) {
        const item = level[next++];
        for (const res of item) await putRetry(res);
        done += item.length;
        if (Date.now() - lastReport > 15000) {
          lastReport = Date.now();
          const s = Number(process.hrtime.bigint() - start) / 1e9;
          timeline.push([Math.round(s), done]);
          process.stderr.write(`  ... ${done}/${total} resources, ${Math.round(done / s)}/s so far\n`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, level.length) }, worker));
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  agent.destroy();
  return { resources: total, seconds, retries, timeline };
}

/** A GET client over a few keep-alive connections: get(url) → { status, body }. */
export function getter(maxSockets = 4) {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  const once = (url) =>
    new Promise((resolve, reject) => {
      http
        .get(url, { agent, headers: { Accept: 'application/fhir+json' } }, (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
        })
        .on('error', reject);
    });
  // a pooled keep-alive socket the server closed (civetweb: 500 ms idle) fails once: try again
  const get = async (url) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await once(url);
      } catch (e) {
        if (attempt >= 3 || !(e.code === 'ECONNRESET' || /socket hang up/.test(e.message))) throw e;
      }
    }
  };
  get.close = () => agent.destroy();
  return get;
}

/** One wrk script per scenario, wrk-<scenario>.lua in dir: the variants' paths, then cycle.lua. */
export function writeWrkScripts(dir, scenarios, pathOf) {
  const cycle = fs.readFileSync(path.join(here, 'cycle.lua'), 'utf8');
  for (const [name, list] of Object.entries(scenarios)) {
    const paths = list.map((v) => `  ${JSON.stringify(pathOf(v))},`).join('\n');
    fs.writeFileSync(path.join(dir, `wrk-${name}.lua`), `paths = {\n${paths}\n}\n\n${cycle}`);
  }
}
