// Check, before measuring, that every query variant answers 200 with the expected Bundle:
// the expected total and number of entries (matches, plus the included Organization).
//
// usage: node verify.mjs --base http://127.0.0.1:PORT/fhir --variants DIR/variants.json
import fs from 'node:fs';
import http from 'node:http';

const argv = process.argv.slice(2);
const opt = {};
for (let i = 0; i < argv.length; i += 2) opt[argv[i].replace(/^--/, '')] = argv[i + 1];
const sc = JSON.parse(fs.readFileSync(opt.variants, 'utf8'));
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function get(url) {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers: { Accept: 'application/fhir+json' } }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      })
      .on('error', reject);
  });
}

// a pooled keep-alive socket the server closed (civetweb: 500 ms idle) fails once: try again
async function getRetry(url) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await get(url);
    } catch (e) {
      if (attempt >= 3 || !(e.code === 'ECONNRESET' || /socket hang up/.test(e.message))) throw e;
    }
  }
}

let bad = 0;
for (const [name, list] of Object.entries(sc)) {
  let bytes = 0;
  const badBefore = bad;
  await Promise.all(
    list.map(async (v) => {
      const r = await getRetry(`${opt.base}/Location?${v.query}`);
      bytes += r.body.length;
      let b = null;
      try {
        b = JSON.parse(r.body);
      } catch {
        /* reported below */
      }
      const entries = b && Array.isArray(b.entry) ? b.entry.length : 0;
      const matches = b && Array.isArray(b.entry) ? b.entry.filter((e) => e.search?.mode === 'match').length : 0;
      const includes = entries - matches;
      const wantIncludes = name === 'include' ? 1 : 0;
      if (r.status !== 200 || !b || b.total !== v.total || entries !== v.entries || includes !== wantIncludes) {
        bad++;
        if (bad <= 10)
          console.error(
            `verify: ${name}: Location?${v.query}: HTTP ${r.status}, total ${b?.total} (want ${v.total}), ` +
              `${entries} entries (want ${v.entries}), ${includes} included (want ${wantIncludes})` +
              (r.status !== 200 ? `: ${r.body.slice(0, 300)}` : ''),
          );
      }
    }),
  );
  if (bad === badBefore)
    console.log(`  ${name}: all ${list.length} variants answer 200 as expected, ${Math.round(bytes / list.length)} bytes per response on average`);
}
agent.destroy();
if (bad) {
  console.error(`verify: ${bad} variant(s) did not answer as expected`);
  process.exit(1);
}
