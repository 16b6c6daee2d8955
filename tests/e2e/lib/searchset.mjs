// Running searches against the server and reading searchset Bundles (shared by the search,
// conformance and transaction e2e tests).
//
//   const r = await runSearch(S, 'Location', 'name=bo&_count=7', { as: 'reader', method: 'POST' });
//   r.status, r.first (the first response), r.pages (Bundles), r.matches (ids in order),
//   r.includes ('Type/id' in order), r.outcomes (OperationOutcome resources), r.total
//
// Every page is checked for the searchset shape (R4 §3.1.1 / bdl invariants the JSON schema does
// not cover): type searchset, entry.fullUrl = [base]/Type/id, entry.search.mode match|include|
// outcome, no entry.request/response, match entries of the searched type only.
import assert from 'node:assert/strict';
import { request } from './server.mjs';

/** Encode query pairs like a typical client: `,` `|` `:` stay literal (FHIR syntax). */
export function encodeQuery(pairs) {
  const enc = (s) =>
    encodeURIComponent(s).replace(/%2C/gi, ',').replace(/%7C/gi, '|').replace(/%3A/gi, ':').replace(/%24/g, '$');
  return pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&');
}

/** 'a=1&b:exact=x y' (unencoded, no `&` inside values) → [['a','1'],['b:exact','x y']]. */
export function parseQuery(q) {
  if (Array.isArray(q)) return q;
  if (!q) return [];
  return q.split('&').map((kv) => {
    const i = kv.indexOf('=');
    return i < 0 ? [kv, ''] : [kv.slice(0, i), kv.slice(i + 1)];
  });
}

export function linkOf(bundle, rel) {
  return (bundle?.link || []).find((l) => l.relation === rel || (rel === 'previous' && l.relation === 'prev'))?.url;
}

/** Check one searchset page; returns {matches, includes, outcomes}. */
export function checkSearchset(S, bundle, type, what) {
  assert.equal(bundle?.resourceType, 'Bundle', `${what}: not a Bundle`);
  assert.equal(bundle.type, 'searchset', `${what}: Bundle.type`);
  const matches = [];
  const includes = [];
  const outcomes = [];
  for (const [k, e] of (bundle.entry || []).entries()) {
    const label = `${what}: entry[${k}]`;
    assert.ok(e.resource, `${label}: no resource`);
    assert.equal(e.request, undefined, `${label}: searchset entry with request (bdl-3)`);
    assert.equal(e.response, undefined, `${label}: searchset entry with response (bdl-4)`);
    const mode = e.search?.mode;
    assert.ok(['match', 'include', 'outcome'].includes(mode), `${label}: search.mode ${mode}`);
    const rt = e.resource.resourceType;
    if (mode === 'outcome') {
      assert.equal(rt, 'OperationOutcome', `${label}: outcome entry is a ${rt}`);
      outcomes.push(e.resource);
      continue;
    }
    assert.equal(e.fullUrl, `${S.base}/fhir/${rt}/${e.resource.id}`, `${label}: fullUrl`);
    if (mode === 'match') {
      assert.equal(rt, type, `${label}: a match of type ${rt} in a ${type} search`);
      matches.push(e.resource.id);
    } else includes.push(`${rt}/${e.resource.id}`);
  }
  return { matches, includes, outcomes };
}

/**
 * GET /fhir/T?q or POST /fhir/T/_search (form body); follows `next` links (up to maxPages).
 * opts: as, token, headers, method ('GET'|'POST'), maxPages (default 40), follow (default true).
 */
export async function runSearch(S, type, query, opts = {}) {
  const { method = 'GET', maxPages = 40, follow = true } = opts;
  const qs = encodeQuery(parseQuery(query));
  const ro = { headers: opts.headers, ...(opts.as ? { as: opts.as } : {}), ...(opts.token ? { token: opts.token } : {}), ...(opts.schema === false ? { schema: false } : {}) };
  const what = `${method} /fhir/${type}${method === 'GET' ? `?${qs}` : `/_search [${qs}]`}`;
  const first =
    method === 'GET'
      ? await S.req('GET', `/fhir/${type}${qs ? `?${qs}` : ''}`, ro)
      : await S.req('POST', `/fhir/${type}/_search`, { ...ro, body: qs, contentType: 'application/x-www-form-urlencoded' });
  const out = { what, status: first.status, first, pages: [], matches: [], includes: [], outcomes: [], total: undefined, urls: [] };
  if (first.status !== 200) return out;
  let page = first.json;
  out.total = page.total;
  for (let n = 0; ; n++) {
    const c = checkSearchset(S, page, type, `${what} page ${n + 1}`);
    out.pages.push(page);
    out.matches.push(...c.matches);
    out.includes.push(...c.includes);
    out.outcomes.push(...c.outcomes);
    const next = linkOf(page, 'next');
    if (!follow || !next) break;
    assert.ok(n + 1 < maxPages, `${what}: more than ${maxPages} pages`);
    out.urls.push(next);
    const r = await request(S.base, 'GET', next, { headers: opts.headers, token: opts.as ? S.tokens[opts.as] : opts.token });
    assert.equal(r.status, 200, `${what}: GET next ${next} → ${r.status} ${r.text.slice(0, 300)}`);
    page = r.json;
  }
  return out;
}

/** GET an absolute link URL of the server (next/previous/self). */
export function getLink(S, url, opts = {}) {
  return request(S.base, 'GET', url, { headers: opts.headers, token: opts.as ? S.tokens[opts.as] : opts.token });
}

/** Sorted copy of a list (for set comparison with readable diffs). */
export const sorted = (xs) => [...xs].sort();

/** Set difference description: what is missing and what is extra (for messages). */
export function diffSets(expected, got) {
  const e = new Set(expected);
  const g = new Set(got);
  const missing = [...e].filter((x) => !g.has(x)).sort();
  const extra = [...g].filter((x) => !e.has(x)).sort();
  return { missing, extra, same: missing.length === 0 && extra.length === 0 };
}
