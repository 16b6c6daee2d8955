// bench/run sync: one full walk of a FHIR history feed, as an mCSD Update Client does it:
// GET the first page, then every next link, until there is none. Receives every byte of every
// page; finds the next link and counts the entries in the bytes, without decoding or parsing
// the whole Bundle (a client streaming the entries into its own store would do no more).
// Prints JSON {pages, entries, bytes, seconds}.
const [base, token, count = '500'] = process.argv.slice(2);
const headers = { authorization: `Bearer ${token}`, accept: 'application/fhir+json' };
let url = `${base}/_history?_count=${count}`;
const MARK = Buffer.from('{"fullUrl":');
const NEXT = Buffer.from('"relation":"next"');
let pages = 0, entries = 0, bytes = 0;
const t0 = process.hrtime.bigint();
while (url) {
  const r = await fetch(url, { headers });
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${(await r.text()).slice(0, 300)}`);
  const body = Buffer.from(await r.arrayBuffer());
  pages++;
  bytes += body.length;
  for (let at = body.indexOf(MARK); at >= 0; at = body.indexOf(MARK, at + MARK.length)) entries++;
  // the links: before the entries or after them (JSON member order carries no meaning)
  const at = body.lastIndexOf(NEXT);
  const m = at < 0 ? null : /"url":\s*"([^"]+)"/.exec(body.subarray(at, at + 2000).toString('utf8'));
  url = m ? m[1] : null;
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ pages, entries, bytes, seconds }));
