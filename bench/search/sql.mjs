// Ask the server for the exact SQL of every query variant (`mahali search-sql`, values
// inlined) and write one pgbench script per variant: a pgbench transaction is then all the
// statements of one search (count, page, includes), the same work the HTTP request does.
// The counts search-sql reports are checked against the expected ones.
//
// usage: node sql.mjs --mahali build/mahali --database URL --variants DIR/variants.json --out DIR
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const argv = process.argv.slice(2);
const opt = {};
for (let i = 0; i < argv.length; i += 2) opt[argv[i].replace(/^--/, '')] = argv[i + 1];
const sc = JSON.parse(fs.readFileSync(opt.variants, 'utf8'));

let bad = 0;
for (const [name, list] of Object.entries(sc)) {
  const dir = path.join(opt.out, name);
  fs.mkdirSync(dir, { recursive: true });
  let statements = 0;
  // two at a time: each is a short process with its own connection
  for (let k = 0; k < list.length; k += 2) {
    await Promise.all(
      list.slice(k, k + 2).map(async (v, j) => {
        const n = k + j;
        const { stdout } = await run(opt.mahali, ['search-sql', 'Location', v.query, '--database', opt.database], {
          maxBuffer: 64 << 20,
        });
        const lines = stdout.split('\n');
        const head = lines[0];
        const m = /: (\d+) matches on this page, (\d+) included, total (-?\d+)$/.exec(head);
        const wantIncluded = v.entries - Math.min(v.entries, v.total, 50);
        if (!m || Number(m[3]) !== v.total || Number(m[1]) + Number(m[2]) !== v.entries || Number(m[2]) !== wantIncluded) {
          bad++;
          console.error(`sql: ${name}: Location?${v.query}: search-sql says "${head}" (want total ${v.total}, ${v.entries} entries)`);
        }
        const sql = lines.slice(1).join('\n').trim() + '\n';
        statements += sql.split(';\n').length - 1;
        fs.writeFileSync(path.join(dir, `${String(n).padStart(3, '0')}.sql`), sql);
      }),
    );
  }
  console.log(`  ${name}: ${list.length} pgbench scripts, ${(statements / list.length).toFixed(1)} statements per search`);
}
if (bad) {
  console.error(`sql: ${bad} variant(s) did not give the expected counts`);
  process.exit(1);
}
