// Search result control (mcsd.md §8.2, R4 search.html §3.1.1.5-6): paging with next/previous
// over ~120 matches with _count=7 (also while matching resources are written between and during
// page fetches), _sort asc/desc/multi-key with ties, _total, _summary, _elements (SUBSETTED),
// _include:iterate / _revinclude:iterate along partOf, strict vs lenient unknown parameters,
// POST _search = GET, personal-data rules (Practitioner/PractitionerRole need a token, also when
// reached through _include/_revinclude/_has/chains), and bad values (400 OperationOutcome, never
// a 5xx).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { before, describe, it } from 'node:test';
import { assertOutcome, e2eSkipReason, request, useServer } from './lib/server.mjs';
import { diffSets, encodeQuery, getLink, linkOf, parseQuery, runSearch } from './lib/searchset.mjs';

const skip = e2eSkipReason();
const require = createRequire(import.meta.url);

const PAGING = 'https://test.example.org/paging';
const SORT = 'https://test.example.org/sort';
const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };
const NARRATIVE = { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">A registry entry</div>' };

/** Top-level elements of a type from the official R4 StructureDefinition: {summary:Set, mandatory:Set}. */
function elementInfo(type) {
  const file = require.resolve(`hl7.fhir.r4.examples/StructureDefinition-${type}.json`);
  assert.ok(existsSync(file), `no StructureDefinition for ${type}`);
  const sd = JSON.parse(readFileSync(file, 'utf8'));
  const summary = new Set();
  const mandatory = new Set();
  for (const e of sd.snapshot.element) {
    const parts = e.path.split('.');
    if (parts.length !== 2) continue;
    const name = parts[1].replace('[x]', '');
    if (e.isSummary) summary.add(name);
    if (e.min > 0) mandatory.add(name);
  }
  return { summary, mandatory };
}

const hasSubsetted = (res) => (res.meta?.tag || []).some((t) => t.system === SUBSETTED.system && t.code === SUBSETTED.code);
const pad = (n) => String(n).padStart(3, '0');

describe('search result control', { skip }, () => {
  const S = useServer('search');
  const paging = []; // {id, name, lastUpdated} of every "Paging NNN" Location (also those written later)
  const sortSet = []; // the _sort fixtures

  const postLoc = async (name, extra = {}) => {
    const r = await S.req('POST', '/fhir/Location', { as: 'editor', body: { resourceType: 'Location', status: 'active', name, ...extra } });
    assert.equal(r.status, 201, `POST Location ${name}: ${r.text.slice(0, 300)}`);
    return r.json;
  };
  const addPaging = async (n) => {
    const res = await postLoc(`Paging ${pad(n)}`, { identifier: [{ system: PAGING, value: pad(n) }] });
    paging.push({ id: res.id, name: res.name, lastUpdated: res.meta.lastUpdated });
    return res;
  };

  before(async () => {
    // 120 matches with even numbers; odd numbers are written later, in between
    const nums = Array.from({ length: 120 }, (_, k) => 2 * k);
    for (let k = 0; k < nums.length; k += 8) await Promise.all(nums.slice(k, k + 8).map(addPaging));
    const fixtures = [
      ['Sort Alpha', 'active'],
      ['Sort Alpha', 'inactive'],
      ['Sort Alpha', 'suspended'],
      ['Sort Bravo', 'active'],
      ['Sort Bravo', 'active'],
      ['Sort Charlie', 'inactive'],
      ['Sort Delta', 'active'],
      ['Sort Delta', 'suspended'],
      ['Sort Echo', 'active'],
      ['Sort Echo', 'inactive'],
    ];
    for (const [k, [name, status]] of fixtures.entries()) {
      const r = await S.req('POST', '/fhir/Location', { as: 'editor', body: { resourceType: 'Location', name, status, identifier: [{ system: SORT, value: `S${k}` }] } });
      assert.equal(r.status, 201, r.text);
      sortSet.push({ id: r.json.id, name, status, lastUpdated: r.json.meta.lastUpdated });
    }
  }, { timeout: 120000 });

  /** Walk a search forward with next links: {pages: [[ids]...], urls, bundles}. */
  async function walk(query, { between, as } = {}) {
    const pages = [];
    const urls = [];
    const bundles = [];
    let r = await S.req('GET', `/fhir/Location?${encodeQuery(parseQuery(query))}`, { as });
    assert.equal(r.status, 200, r.text.slice(0, 300));
    urls.push(`${S.base}/fhir/Location?${encodeQuery(parseQuery(query))}`);
    for (let n = 0; n < 100; n++) {
      bundles.push(r.json);
      pages.push((r.json.entry || []).filter((e) => e.search?.mode === 'match').map((e) => e.resource));
      const next = linkOf(r.json, 'next');
      if (!next) break;
      if (between) await between(n, pages[pages.length - 1]);
      urls.push(next);
      r = await getLink(S, next, { as });
      assert.equal(r.status, 200, `GET ${next}: ${r.status} ${r.text.slice(0, 300)}`);
    }
    return { pages, urls, bundles };
  }

  const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const cmpStr = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

  describe('paging (_count=7, next/previous)', () => {
    const cases = [
      ['default order', ''],
      ['_sort=name', 'name', (a, b) => byName(a, b)],
      ['_sort=-name', '-name', (a, b) => -byName(a, b)],
      ['_sort=_id', '_id', (a, b) => cmpStr(a.id, b.id)],
      ['_sort=-_lastUpdated,_id', '-_lastUpdated,_id', (a, b) => cmpStr(b.lastUpdated, a.lastUpdated) || cmpStr(a.id, b.id)],
    ];
    for (const [label, sort, cmp] of cases) {
      it(`${label}: 120 matches in 18 pages, no duplicates or gaps, previous walks back the same pages`, async () => {
        const snapshot = paging.slice(0, 120);
        const q = `identifier=${PAGING}|&_count=7${sort ? `&_sort=${sort}` : ''}`;
        const w = await walk(q);
        const ids = w.pages.flat().map((r) => r.id);
        assert.equal(w.pages.length, 18, `expected 18 pages of 7 (120 = 17*7 + 1), got ${w.pages.length}: sizes ${w.pages.map((p) => p.length)}`);
        w.pages.forEach((p, k) => assert.equal(p.length, k < 17 ? 7 : 1, `page ${k + 1} has ${p.length} entries`));
        assert.equal(new Set(ids).size, ids.length, `a resource appears twice: ${ids.filter((x, i) => ids.indexOf(x) !== i)}`);
        const d = diffSets(snapshot.map((x) => x.id), ids);
        assert.ok(d.same, `missing ${d.missing.length} [${d.missing.slice(0, 5)}], unexpected [${d.extra.slice(0, 5)}]`);
        for (const b of w.bundles) assert.equal(b.total, 120, 'Bundle.total on every page');
        assert.equal(linkOf(w.bundles[0], 'previous'), undefined, 'the first page has no previous link');
        if (cmp) {
          const exp = [...snapshot].sort(cmp).map((x) => x.id);
          assert.deepEqual(ids, exp, `order of ${label}`);
        }
        // previous from the last page walks back over exactly the same pages
        let b = w.bundles[w.bundles.length - 1];
        for (let k = w.pages.length - 2; k >= 0; k--) {
          const prev = linkOf(b, 'previous');
          assert.ok(prev, `page ${k + 2} has no previous link`);
          const r = await getLink(S, prev);
          assert.equal(r.status, 200, `GET ${prev}: ${r.text.slice(0, 300)}`);
          const got = (r.json.entry || []).filter((e) => e.search?.mode === 'match').map((e) => e.resource.id);
          assert.deepEqual(got, w.pages[k].map((x) => x.id), `previous link of page ${k + 2} does not give page ${k + 1} again`);
          b = r.json;
        }
        assert.equal(linkOf(b, 'previous'), undefined, 'walking back ends on a page without previous');
      });
    }

    it('_sort=name while matching resources are written between page fetches: no duplicates, no gaps, order kept', async () => {
      const before = paging.map((x) => ({ ...x }));
      let written = 0;
      const w = await walk(`identifier=${PAGING}|&_count=7&_sort=name`, {
        between: async (n, page) => {
          // one name before the cursor (already walked), one after it (not yet walked)
          const last = Number(page[page.length - 1].name.slice(7));
          for (const num of [last - 3, last + 9]) {
            if (num < 0 || num > 239 || num % 2 === 0 || paging.some((x) => x.name === `Paging ${pad(num)}`)) continue;
            await addPaging(num);
            written++;
          }
        },
      });
      const seen = w.pages.flat();
      const ids = seen.map((r) => r.id);
      assert.ok(written >= 20, `only ${written} resources written during the walk`);
      assert.equal(new Set(ids).size, ids.length, `seen twice: ${ids.filter((x, i) => ids.indexOf(x) !== i)}`);
      const d = diffSets(before.map((x) => x.id), ids);
      assert.deepEqual(d.missing, [], `resources that existed before the walk were skipped: ${d.missing.length}`);
      for (let k = 1; k < seen.length; k++) assert.ok(seen[k - 1].name < seen[k].name, `order broken at ${k}: ${seen[k - 1].name} then ${seen[k].name}`);
      // a page already walked, fetched again, still continues after the previous page's last name
      for (let k = 1; k < w.urls.length; k++) {
        const r = await getLink(S, w.urls[k]);
        assert.equal(r.status, 200);
        const names = (r.json.entry || []).filter((e) => e.search?.mode === 'match').map((e) => e.resource.name);
        const prevLast = w.pages[k - 1][w.pages[k - 1].length - 1].name;
        assert.ok(names.length > 0 && names.every((x) => x > prevLast), `page ${k + 1} fetched again: ${names} not after ${prevLast}`);
        for (let j = 1; j < names.length; j++) assert.ok(names[j - 1] < names[j], `page ${k + 1} fetched again is not sorted: ${names}`);
      }
      console.log(`paging: _sort=name walk with ${written} writes between fetches: ${ids.length} seen, 0 duplicates, 0 of ${before.length} pre-existing missed, ${ids.length - before.length} new ones seen`);
    });

    it('_sort=_lastUpdated while matching resources are written: pages already walked, fetched again, are identical', async () => {
      const before = paging.map((x) => ({ ...x }));
      let num = 241;
      const w = await walk(`identifier=${PAGING}|&_count=7&_sort=_lastUpdated,_id`, {
        between: async () => {
          await addPaging(num);
          num += 2;
        },
      });
      const ids = w.pages.flat().map((r) => r.id);
      assert.equal(new Set(ids).size, ids.length, 'a resource appears twice');
      const d = diffSets(before.map((x) => x.id), ids);
      assert.deepEqual(d.missing, [], 'pre-existing resources skipped');
      for (let k = 0; k < w.urls.length; k++) {
        const r = await getLink(S, w.urls[k]);
        assert.equal(r.status, 200);
        const got = (r.json.entry || []).filter((e) => e.search?.mode === 'match').map((e) => e.resource.id);
        const first = w.pages[k].map((x) => x.id);
        if (k < w.urls.length - 1) assert.deepEqual(got, first, `page ${k + 1} changed after later writes: ${w.urls[k]}`);
        else assert.deepEqual(got.slice(0, first.length), first, `last page ${k + 1} changed`);
      }
    });

    it('_sort=-name while a concurrent writer keeps adding matches: no duplicates, no gaps, order kept', async () => {
      const before = paging.map((x) => ({ ...x }));
      let stop = false;
      let written = 0;
      let num = 1001;
      const writer = (async () => {
        while (!stop && written < 200) {
          const res = await postLoc(`Paging ${num}`, { identifier: [{ system: PAGING, value: String(num) }] });
          paging.push({ id: res.id, name: res.name, lastUpdated: res.meta.lastUpdated });
          num += 7;
          written++;
        }
      })();
      let w;
      try {
        w = await walk(`identifier=${PAGING}|&_count=7&_sort=-name`, { between: () => new Promise((r) => setTimeout(r, 5)) });
      } finally {
        stop = true;
        await writer;
      }
      const seen = w.pages.flat();
      const ids = seen.map((r) => r.id);
      assert.equal(new Set(ids).size, ids.length, 'a resource appears twice');
      assert.deepEqual(diffSets(before.map((x) => x.id), ids).missing, [], 'pre-existing resources skipped');
      for (let k = 1; k < seen.length; k++) assert.ok(seen[k - 1].name > seen[k].name, `order broken at ${k}: ${seen[k - 1].name} then ${seen[k].name}`);
      console.log(`paging: _sort=-name walk with a concurrent writer (${written} writes): ${ids.length} seen, 0 duplicates, 0 of ${before.length} pre-existing missed`);
    });

    it('_count: default 50, the maximum 500 applies to _count=1000000 (self link shows the page size used)', async () => {
      const r = await S.req('GET', `/fhir/Location?identifier=${encodeURIComponent(PAGING)}|`);
      assert.equal(r.status, 200);
      assert.equal(r.json.entry.length, 50, 'default page size');
      assert.ok(linkOf(r.json, 'next'), 'next link');
      const big = await S.req('GET', `/fhir/Location?identifier=${encodeURIComponent(PAGING)}|&_count=1000000`);
      assert.equal(big.status, 200, big.text.slice(0, 300));
      assert.equal(big.json.entry.length, Math.min(500, paging.length));
      const self = new URL(linkOf(big.json, 'self'));
      assert.equal(self.searchParams.get('_count'), '500', `self link ${self} should show the clamped _count`);
    });
  });

  describe('_sort', () => {
    const q = (sort, extra = '') => `identifier=${SORT}|&_sort=${sort}${extra}`;
    const ids = async (query, as) => {
      const r = await runSearch(S, 'Location', query, { as });
      assert.equal(r.status, 200, `${r.what}: ${r.first.text.slice(0, 300)}`);
      return r.matches;
    };
    const exp = (cmp) => [...sortSet].sort(cmp).map((x) => x.id);
    const rec = (id) => sortSet.find((x) => x.id === id);

    it('_sort=name (ascending, ties in any order) and -name (descending)', async () => {
      const a = (await ids(q('name'))).map(rec);
      assert.equal(a.length, sortSet.length);
      for (let k = 1; k < a.length; k++) assert.ok(a[k - 1].name <= a[k].name, `name order at ${k}`);
      const d = (await ids(q('-name'))).map(rec);
      assert.equal(d.length, sortSet.length);
      for (let k = 1; k < d.length; k++) assert.ok(d[k - 1].name >= d[k].name, `-name order at ${k}`);
    });

    const exact = [
      ['name,_id', (a, b) => cmpStr(a.name, b.name) || cmpStr(a.id, b.id)],
      ['-name,-_id', (a, b) => cmpStr(b.name, a.name) || cmpStr(b.id, a.id)],
      ['status,-name,_id', (a, b) => cmpStr(a.status, b.status) || cmpStr(b.name, a.name) || cmpStr(a.id, b.id)],
      ['-status,name,-_id', (a, b) => cmpStr(b.status, a.status) || cmpStr(a.name, b.name) || cmpStr(b.id, a.id)],
      ['name,status,-_lastUpdated,_id', (a, b) => cmpStr(a.name, b.name) || cmpStr(a.status, b.status) || cmpStr(b.lastUpdated, a.lastUpdated) || cmpStr(a.id, b.id)],
      ['_lastUpdated,_id', (a, b) => cmpStr(a.lastUpdated, b.lastUpdated) || cmpStr(a.id, b.id)],
      ['-_lastUpdated,_id', (a, b) => cmpStr(b.lastUpdated, a.lastUpdated) || cmpStr(a.id, b.id)],
    ];
    for (const [sort, cmp] of exact) {
      it(`_sort=${sort}: exact order`, async () => {
        assert.deepEqual(await ids(q(sort)), exp(cmp), `GET _sort=${sort}`);
      });
      it(`_sort=${sort}: the same order over pages (GET _count=3, POST _count=4)`, async () => {
        const want = exp(cmp);
        assert.deepEqual(await ids(q(sort, '&_count=3')), want, `GET _sort=${sort}&_count=3 (pages concatenated)`);
        const p = await runSearch(S, 'Location', q(sort, '&_count=4'), { method: 'POST' });
        assert.equal(p.status, 200);
        assert.deepEqual(p.matches, want, `POST _search _sort=${sort}&_count=4`);
      });
    }

    it('_sort=name with ties over pages of 2: every resource once, names non-decreasing', async () => {
      const a = await ids(q('name', '&_count=2'));
      assert.equal(new Set(a).size, a.length, 'duplicate across pages');
      assert.deepEqual([...a].sort(), sortSet.map((x) => x.id).sort());
      const names = a.map((x) => rec(x).name);
      for (let k = 1; k < names.length; k++) assert.ok(names[k - 1] <= names[k], `order across pages at ${k}: ${names}`);
    });
  });

  describe('_total, _summary, _elements', () => {
    let ep;
    let rich;
    before(async () => {
      ep = (
        await S.create({
          resourceType: 'Endpoint',
          text: NARRATIVE,
          identifier: [{ system: 'https://test.example.org/ep', value: 'E1' }],
          status: 'active',
          connectionType: { system: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type', code: 'hl7-fhir-rest' },
          name: 'Summary endpoint',
          payloadType: [{ text: 'any' }],
          address: 'https://summary.example.org/fhir',
          header: ['X-Test: 1'],
        })
      ).resource;
      rich = (
        await S.create({
          resourceType: 'Location',
          text: NARRATIVE,
          identifier: [{ system: 'https://test.example.org/rich', value: 'R1' }],
          status: 'active',
          name: 'Summary Rich Location',
          alias: ['Rich'],
          description: 'A location with many elements',
          mode: 'instance',
          type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'HOSP' }] }],
          telecom: [{ system: 'phone', value: '+232 1' }],
          address: { city: 'Makeni', country: 'SL' },
          position: { longitude: -12.04, latitude: 8.88 },
          availabilityExceptions: 'none',
        })
      ).resource;
    });

    it('_total=accurate / default: exact; _total=none: no total; _total=estimate: absent or a count', async () => {
      const base = `identifier=${PAGING}|&_count=5`;
      const n = paging.length;
      for (const t of ['', '&_total=accurate']) {
        const r = await runSearch(S, 'Location', base + t, { follow: false });
        assert.equal(r.status, 200);
        assert.equal(r.total, n, `total with "${t}"`);
      }
      const none = await runSearch(S, 'Location', `${base}&_total=none`, { follow: false });
      assert.equal(none.status, 200);
      assert.equal(none.total, undefined, '_total=none must leave Bundle.total out');
      assert.equal(none.matches.length, 5);
      const est = await runSearch(S, 'Location', `${base}&_total=estimate`, { follow: false });
      assert.equal(est.status, 200);
      if (est.total !== undefined) assert.ok(Number.isInteger(est.total) && est.total >= 0, `estimate ${est.total}`);
    });

    it('_summary=count: total only, no entries', async () => {
      const r = await runSearch(S, 'Location', `identifier=${PAGING}|&_summary=count`, { follow: false });
      assert.equal(r.status, 200);
      assert.equal(r.total, paging.length);
      assert.equal(r.matches.length, 0, '_summary=count returns no resources');
      assert.equal(linkOf(r.pages[0], 'next'), undefined, '_summary=count has no next page');
    });

    for (const type of ['Location', 'Endpoint']) {
      it(`${type}: _summary=true keeps exactly the summary elements and tags SUBSETTED`, async () => {
        const full = type === 'Location' ? rich : ep;
        const { summary } = elementInfo(type);
        const r = await runSearch(S, type, `_id=${full.id}&_summary=true`);
        assert.equal(r.status, 200);
        const res = r.pages[0].entry[0].resource;
        assert.ok(hasSubsetted(res), `_summary=true: no SUBSETTED tag: ${JSON.stringify(res.meta)}`);
        for (const k of Object.keys(res)) assert.ok(k === 'resourceType' || summary.has(k), `_summary=true kept the non-summary element ${type}.${k}`);
        for (const k of Object.keys(full)) if (summary.has(k) && k !== 'meta') assert.deepEqual(res[k], full[k], `_summary=true dropped or changed the summary element ${type}.${k}`);
      });

      it(`${type}: _summary=text keeps text, id, meta and the mandatory elements; _summary=data drops text; _summary=false is the whole resource`, async () => {
        const full = type === 'Location' ? rich : ep;
        const { mandatory } = elementInfo(type);
        // schema off for this request: the mandatory elements are checked one by one below
        let r = await runSearch(S, type, `_id=${full.id}&_summary=text`, { schema: false });
        assert.equal(r.status, 200);
        let res = r.pages[0].entry[0].resource;
        assert.ok(hasSubsetted(res), '_summary=text: no SUBSETTED tag');
        assert.deepEqual(res.text, full.text, '_summary=text: text');
        for (const k of Object.keys(res)) assert.ok(['resourceType', 'id', 'meta', 'text'].includes(k) || mandatory.has(k), `_summary=text kept ${type}.${k}`);
        for (const k of mandatory) assert.deepEqual(res[k], full[k], `_summary=text must keep the mandatory element ${type}.${k} (R4: "text, id, meta, and only top-level mandatory elements")`);
        r = await runSearch(S, type, `_id=${full.id}&_summary=data`);
        res = r.pages[0].entry[0].resource;
        assert.ok(hasSubsetted(res), '_summary=data: no SUBSETTED tag');
        assert.equal(res.text, undefined, '_summary=data kept text');
        const { meta: m1, text: _t, ...restFull } = full;
        const { meta: m2, ...restData } = res;
        assert.deepEqual(restData, restFull, '_summary=data: everything but text');
        r = await runSearch(S, type, `_id=${full.id}&_summary=false`);
        res = r.pages[0].entry[0].resource;
        assert.equal(hasSubsetted(res), false, '_summary=false: SUBSETTED tag');
        assert.deepEqual(res, full, '_summary=false returns the whole resource');
      });
    }

    it('_elements=name,status returns those (plus id and meta) with SUBSETTED', async () => {
      const r = await runSearch(S, 'Location', `_id=${rich.id}&_elements=name,status`);
      assert.equal(r.status, 200);
      const res = r.pages[0].entry[0].resource;
      assert.ok(hasSubsetted(res), '_elements: no SUBSETTED tag');
      assert.deepEqual(Object.keys(res).sort(), ['id', 'meta', 'name', 'resourceType', 'status']);
      assert.equal(res.name, rich.name);
      assert.equal(res.status, rich.status);
      assert.equal(r.total, 1);
    });

    it('_elements=name on Endpoint keeps the mandatory elements (R4: servers SHOULD return them; the result must stay valid FHIR)', async () => {
      // schema off for this request: the mandatory elements are checked one by one below
      const e = await runSearch(S, 'Endpoint', `_id=${ep.id}&_elements=name`, { schema: false });
      const er = e.pages[0].entry[0].resource;
      assert.ok(hasSubsetted(er));
      const { mandatory } = elementInfo('Endpoint');
      for (const k of mandatory) assert.deepEqual(er[k], ep[k], `_elements=name dropped the mandatory element Endpoint.${k}`);
      for (const k of Object.keys(er)) assert.ok(['resourceType', 'id', 'meta', 'name'].includes(k) || mandatory.has(k), `_elements=name kept Endpoint.${k}`);
      assert.equal(er.name, ep.name);
    });
  });

  describe('_include:iterate / _revinclude:iterate along partOf', () => {
    const chain = ['it-l1', 'it-l2', 'it-l3', 'it-l4', 'it-l5'];
    const ochain = ['it-o1', 'it-o2', 'it-o3', 'it-o4'];
    before(async () => {
      for (const [k, id] of ochain.entries()) {
        const r = await S.req('PUT', `/fhir/Organization/${id}`, { as: 'editor', body: { resourceType: 'Organization', id, name: `Iterate Org ${k}`, ...(k ? { partOf: { reference: `Organization/${ochain[k - 1]}` } } : {}) } });
        assert.ok([200, 201].includes(r.status), r.text);
      }
      for (const [k, id] of chain.entries()) {
        const r = await S.req('PUT', `/fhir/Location/${id}`, {
          as: 'editor',
          body: { resourceType: 'Location', id, status: 'active', name: `Iterate Loc ${k}`, managingOrganization: { reference: `Organization/${ochain[Math.min(k, 3)]}` }, ...(k ? { partOf: { reference: `Location/${chain[k - 1]}` } } : {}) },
        });
        assert.ok([200, 201].includes(r.status), r.text);
      }
    });
    const cases = [
      ['Location', '_id=it-l5&_include=Location:partof', ['it-l5'], ['Location/it-l4']],
      ['Location', '_id=it-l5&_include:iterate=Location:partof', ['it-l5'], ['Location/it-l4', 'Location/it-l3', 'Location/it-l2', 'Location/it-l1']],
      // a plain _include applies to the matches only; :iterate also to what was included
      ['Location', '_id=it-l4&_include:iterate=Location:partof&_include=Location:organization', ['it-l4'], ['Location/it-l3', 'Location/it-l2', 'Location/it-l1', 'Organization/it-o4']],
      ['Location', '_id=it-l4&_include:iterate=Location:partof&_include:iterate=Location:organization', ['it-l4'], ['Location/it-l3', 'Location/it-l2', 'Location/it-l1', 'Organization/it-o4', 'Organization/it-o3', 'Organization/it-o2', 'Organization/it-o1']],
      ['Location', '_id=it-l4&_include:iterate=Location:partof&_include:iterate=Location:organization&_include:iterate=Organization:partof', ['it-l4'], ['Location/it-l3', 'Location/it-l2', 'Location/it-l1', 'Organization/it-o4', 'Organization/it-o3', 'Organization/it-o2', 'Organization/it-o1']],
      ['Location', '_id=it-l2&_include=Location:organization&_include:iterate=Organization:partof', ['it-l2'], ['Organization/it-o2', 'Organization/it-o1']],
      ['Location', '_id=it-l1&_revinclude:iterate=Location:partof', ['it-l1'], ['Location/it-l2', 'Location/it-l3', 'Location/it-l4', 'Location/it-l5']],
      ['Location', '_id=it-l3&_revinclude=Location:partof', ['it-l3'], ['Location/it-l4']],
      ['Organization', '_id=it-o4&_include:iterate=Organization:partof', ['it-o4'], ['Organization/it-o3', 'Organization/it-o2', 'Organization/it-o1']],
      ['Organization', '_id=it-o2&_revinclude:iterate=Organization:partof&_revinclude=Location:organization', ['it-o2'], ['Organization/it-o3', 'Organization/it-o4', 'Location/it-l2']],
      ['Location', 'name=Iterate Loc&_include:iterate=Location:partof', chain, []],
    ];
    for (const [type, query, matches, includes] of cases) {
      it(`${type}?${query}`, async () => {
        for (const method of ['GET', 'POST']) {
          const r = await runSearch(S, type, query, { method });
          assert.equal(r.status, 200, `${r.what}: ${r.first.text.slice(0, 300)}`);
          assert.deepEqual([...r.matches].sort(), [...matches].sort(), `${r.what}: matches`);
          assert.deepEqual([...r.includes].sort(), [...includes].sort(), `${r.what}: search.mode=include entries`);
        }
      });
    }
  });

  describe('unknown parameters: lenient (default) vs Prefer: handling=strict', () => {
    it('lenient: ignored, listed in an outcome entry (warning), left out of the self link', async () => {
      for (const prefer of [undefined, 'handling=lenient']) {
        for (const method of ['GET', 'POST']) {
          const r = await runSearch(S, 'Location', `identifier=${SORT}|&foo=bar&_count=100`, { method, headers: prefer ? { Prefer: prefer } : undefined });
          assert.equal(r.status, 200, `${r.what}: ${r.first.text.slice(0, 300)}`);
          assert.equal(r.matches.length, sortSet.length, 'the known parameter still applies');
          assert.equal(r.outcomes.length, 1, `${r.what}: one outcome entry`);
          const issue = r.outcomes[0].issue[0];
          assert.equal(issue.severity, 'warning');
          assert.match(JSON.stringify(r.outcomes[0]), /foo/, 'the outcome names the ignored parameter');
          const self = new URL(linkOf(r.pages[0], 'self'));
          assert.equal(self.searchParams.has('foo'), false, `self link ${self} keeps the ignored parameter`);
          assert.equal(self.searchParams.get('identifier'), `${SORT}|`, `self link ${self} lost the applied parameter`);
        }
      }
    });
    it('strict: 400 OperationOutcome (GET and POST)', async () => {
      for (const method of ['GET', 'POST']) {
        const r = await runSearch(S, 'Location', `identifier=${SORT}|&foo=bar`, { method, headers: { Prefer: 'handling=strict' } });
        assertOutcome(r.first, 400, undefined, { what: `${r.what} strict` });
        assert.match(r.first.text, /foo/, 'the error names the unknown parameter');
      }
      const ok = await runSearch(S, 'Location', `identifier=${SORT}|`, { headers: { Prefer: 'handling=strict' } });
      assert.equal(ok.status, 200, 'strict with only known parameters');
      assert.equal(ok.outcomes.length, 0);
    });
  });

  describe('POST _search equals GET', () => {
    const queries = [
      ['Location', `identifier=${PAGING}|&_count=9&_sort=-name`],
      ['Location', `name=sort&status=active,suspended&_sort=name,_id`],
      ['Location', `name:contains=alpha&_summary=count`],
      ['Location', `_id=it-l5&_include:iterate=Location:partof`],
      ['Organization', `name=iterate&_revinclude=Location:organization&_sort=_id`],
    ];
    for (const [type, q] of queries) {
      it(`${type}?${q}`, async () => {
        // the paging set grows with the writes of the tests before (up to ~400 Locations)
        const g = await runSearch(S, type, q, { maxPages: 100 });
        const p = await runSearch(S, type, q, { method: 'POST', maxPages: 100 });
        assert.equal(g.status, 200);
        assert.equal(p.status, 200);
        assert.deepEqual(p.matches, g.matches, 'matches (in order, all pages)');
        assert.deepEqual([...p.includes].sort(), [...g.includes].sort(), 'includes');
        assert.equal(p.total, g.total, 'total');
        assert.equal(p.pages.length, g.pages.length, 'pages');
        assert.equal(linkOf(p.pages[0], 'self'), linkOf(g.pages[0], 'self'), 'self link');
      });
    }
  });

  describe('personal data (Practitioner, PractitionerRole) needs a token, however it is reached', () => {
    let loc;
    let org;
    let hs;
    let prac;
    let role;
    before(async () => {
      org = (await S.create({ resourceType: 'Organization', name: 'Personal Test Org', active: true })).id;
      loc = (await S.create({ resourceType: 'Location', name: 'Personal Test Location', status: 'active', managingOrganization: { reference: `Organization/${org}` } })).id;
      hs = (await S.create({ resourceType: 'HealthcareService', name: 'Personal Test Service', location: [{ reference: `Location/${loc}` }] })).id;
      prac = (await S.create({ resourceType: 'Practitioner', name: [{ family: 'Privatename', given: ['Hidden'] }] })).id;
      role = (
        await S.create({
          resourceType: 'PractitionerRole',
          practitioner: { reference: `Practitioner/${prac}` },
          organization: { reference: `Organization/${org}` },
          location: [{ reference: `Location/${loc}` }],
          healthcareService: [{ reference: `HealthcareService/${hs}` }],
          code: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/practitioner-role', code: 'nurse' }] }],
        })
      ).id;
    });
    const cases = () => [
      ['Practitioner', 'family=privatename', [prac], []],
      ['PractitionerRole', `location=${loc}`, [role], []],
      ['PractitionerRole', 'practitioner.family=privatename', [role], []],
      ['Location', `_id=${loc}&_revinclude=PractitionerRole:location`, [loc], [`PractitionerRole/${role}`]],
      ['Organization', `_id=${org}&_revinclude=PractitionerRole:organization`, [org], [`PractitionerRole/${role}`]],
      ['HealthcareService', `_id=${hs}&_revinclude=PractitionerRole:service`, [hs], [`PractitionerRole/${role}`]],
      ['Location', `_id=${loc}&_revinclude=PractitionerRole:location&_include:iterate=PractitionerRole:practitioner`, [loc], [`PractitionerRole/${role}`, `Practitioner/${prac}`]],
      ['Location', `_has:PractitionerRole:location:role=nurse`, [loc], []],
      ['Organization', `_has:PractitionerRole:organization:practitioner=${prac}`, [org], []],
    ];
    it('anonymous: 401 with WWW-Authenticate (GET and POST), nothing personal in the body', async () => {
      for (const [type, q] of cases()) {
        for (const method of ['GET', 'POST']) {
          const r = await runSearch(S, type, q, { method });
          assertOutcome(r.first, 401, undefined, { what: r.what });
          assert.ok(r.first.headers['www-authenticate'], `${r.what}: no WWW-Authenticate`);
          assert.doesNotMatch(r.first.text, /Privatename/i, `${r.what}: leaks personal data`);
        }
      }
    });
    it('reader: 200 with the personal resources', async () => {
      for (const [type, q, matches, includes] of cases()) {
        for (const method of ['GET', 'POST']) {
          const r = await runSearch(S, type, q, { method, as: 'reader' });
          assert.equal(r.status, 200, `${r.what}: ${r.first.text.slice(0, 300)}`);
          assert.deepEqual(r.matches.sort(), [...matches].sort(), `${r.what}: matches`);
          assert.deepEqual(r.includes.sort(), [...includes].sort(), `${r.what}: includes`);
        }
      }
    });
    it('public searches that touch no personal data stay public', async () => {
      const r = await runSearch(S, 'Location', `_id=${loc}&_revinclude=HealthcareService:location`);
      assert.equal(r.status, 200, r.first.text.slice(0, 300));
      assert.deepEqual(r.includes, [`HealthcareService/${hs}`]);
    });
  });

  describe('bad values → 400 OperationOutcome, never a 5xx', () => {
    const bad400 = [
      ['Location', '_lastUpdated=gt2024-13-45'],
      ['Location', '_lastUpdated=2024-02-30'],
      ['Location', '_lastUpdated=banana'],
      ['Location', '_lastUpdated=xx2024-01-01'],
      ['Location', '_lastUpdated=gt'],
      ['Location', '_lastUpdated=2024-01-01T25:00:00Z'],
      ['OrganizationAffiliation', 'date=qq2020'],
      ['OrganizationAffiliation', 'date=2020-1-1'],
      ['Organization', 'active=maybe'],
      ['Location', '_sort=name;DROP'],
      ['Location', '_sort=-name,_id;DELETE FROM resource'],
      ['Location', '_include=*'],
      ['Location', '_revinclude=*'],
      ['Location', '_cursor=not-a-cursor'],
      ['Location', '_cursor=%00%ff'],
    ];
    for (const [type, q] of bad400) {
      it(`${type}?${q} → 400`, async () => {
        for (const method of ['GET', 'POST']) {
          for (const prefer of [undefined, 'handling=strict']) {
            const r = await runSearch(S, type, q, { method, headers: prefer ? { Prefer: prefer } : undefined, follow: false });
            assertOutcome(r.first, 400, undefined, { what: `${r.what}${prefer ? ' strict' : ''}` });
          }
        }
      });
    }
    // not valid, and R4 leaves the reaction open: rejected (400) or ignored with a warning
    // (an outcome entry naming the parameter), never silently applied in some other way
    const rejectedOrReported = [
      ['Location', 'name:bogus=x'],
      ['Location', '_count=-1'],
      ['Location', '_count=abc'],
      ['Location', '_summary=bogus'],
      ['Location', '_total=bogus'],
      ['Location', '_sort=nothing'],
      ['Location', '_include=Location:nothing'],
      ['Location', 'name.foo=x'],
    ];
    it('invalid control values: 400, or 200 with an outcome warning naming the parameter (never 5xx)', async () => {
      const problems = [];
      for (const [type, q] of rejectedOrReported) {
        for (const method of ['GET', 'POST']) {
          const r = await runSearch(S, type, q, { method, follow: false });
          const name = q.split('=')[0];
          if (r.status === 400 && r.first.json?.resourceType === 'OperationOutcome') continue;
          if (r.status === 200 && r.outcomes.some((o) => JSON.stringify(o).includes(name.split(':')[0].split('.')[0]))) continue;
          problems.push(`${r.what} → ${r.status}, expected 400 or an outcome warning naming ${name}: ${r.first.text.slice(0, 300)}`);
        }
        const st = await runSearch(S, type, q, { headers: { Prefer: 'handling=strict' }, follow: false });
        if (st.status !== 400) problems.push(`${st.what} (strict) → ${st.status}, expected 400`);
      }
      assert.equal(problems.length, 0, problems.join('\n'));
    });
    const never5xx = [
      ['Location', 'name=' + 'x'.repeat(5000)],
      ['Location', 'name=%'],
      ['Location', "name=O'Brien'); DROP TABLE location;--"],
      ['Location', 'name=\\'],
      ['Location', 'name=a\\,b'],
      ['Location', 'identifier=|'],
      ['Location', 'identifier=||'],
      ['Location', 'partof:below='],
      ['Location', 'partof:below=Location/'],
      ['Location', 'partof=Foo/1'],
      ['Location', 'organization.name.foo=x'],
      ['Location', '_has:Foo:bar:baz=x'],
      ['Location', '_has:HealthcareService=x'],
      ['Location', '_include=Foo:bar'],
      ['Location', '_sort=name,status,_id,_lastUpdated,-name'],
      ['Location', '_count=0'],
      ['Location', '_count=99999999999999999999'],
      ['Location', '_elements=*'],
      ['Location', '_lastUpdated=ge2024&_lastUpdated=le2023&_lastUpdated=ne2020&_lastUpdated=ap2021'],
      ['Location', '_id=' + Array.from({ length: 300 }, (_, k) => `id${k}`).join(',')],
      ['OrganizationAffiliation', 'date=ge99999-01-01'],
      ['Organization', 'partof:above=' + 'a'.repeat(100)],
    ];
    it('odd but harmless values: 200 or 4xx OperationOutcome, never 5xx', async () => {
      const problems = [];
      for (const [type, q] of never5xx) {
        for (const method of ['GET', 'POST']) {
          const r = await runSearch(S, type, q, { method, follow: false });
          if (r.status >= 500) problems.push(`${r.what.slice(0, 200)} → ${r.status} ${r.first.text.slice(0, 200)}`);
          else if (r.status !== 200 && r.first.json?.resourceType !== 'OperationOutcome') problems.push(`${r.what.slice(0, 200)} → ${r.status} without OperationOutcome`);
        }
      }
      assert.equal(problems.length, 0, problems.join('\n'));
    });
    it('an SQL-looking name is stored and found byte for byte', async () => {
      const name = "O'Brien'); DROP TABLE location;--";
      const c = await S.create({ resourceType: 'Location', name, status: 'active' });
      const r = await runSearch(S, 'Location', `name:exact=${name}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.matches, [c.id]);
      const g = await request(S.base, 'GET', `/fhir/Location/${c.id}`);
      assert.equal(g.json.name, name);
    });
  });
});
