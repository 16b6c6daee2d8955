// FHIR XML over HTTP (mcsd.md §8.1: a Directory answers and accepts both formats): every
// interaction in XML via Accept, _format or Content-Type; JSON → XML → JSON through the server
// is the identity for a sample of every stored type; hostile XML is refused; errors come back
// as XML OperationOutcomes when XML was asked for.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { e2eSkipReason, sample, useServer } from './lib/server.mjs';

const TYPES = ['Organization', 'Location', 'HealthcareService', 'Practitioner', 'PractitionerRole', 'Endpoint', 'OrganizationAffiliation'];
const XML = 'application/fhir+xml';
const skip = e2eSkipReason();

/** Content without the server's id and meta, for comparison. */
function content(r) {
  const c = structuredClone(r);
  delete c.id;
  delete c.meta;
  return c;
}

describe('xml', { skip }, () => {
  const S = useServer('xml');

  it('JSON → XML → JSON through the server is the identity for every stored type', async () => {
    for (const T of TYPES) {
      const made = await S.req('POST', `/fhir/${T}`, { body: sample(T), as: 'editor' });
      assert.equal(made.status, 201, `${T}: ${made.text.slice(0, 300)}`);
      const asXml = await S.req('GET', `/fhir/${T}/${made.json.id}`, { as: 'editor', headers: { Accept: XML } });
      assert.equal(asXml.status, 200);
      assert.match(asXml.text, new RegExp(`^<\\?xml version="1.0" encoding="UTF-8"\\?><${T} xmlns="http://hl7.org/fhir"><id value="${made.json.id}"/>`));
      const copy = await S.req('POST', `/fhir/${T}`, { body: asXml.text, contentType: XML, as: 'editor' });
      assert.equal(copy.status, 201, `${T} from XML: ${copy.text.slice(0, 300)}`);
      assert.deepEqual(content(copy.json), content(made.json), `${T}: the XML copy differs`);
    }
  });

  it('decimals keep their text through XML', async () => {
    const body = `<Location xmlns="http://hl7.org/fhir"><name value="Decimal Clinic"/><position><longitude value="-13.2300"/><latitude value="8.4800"/></position></Location>`;
    const r = await S.req('POST', '/fhir/Location', { body, contentType: XML, as: 'editor' });
    assert.equal(r.status, 201, r.text);
    assert.match(r.text, /"latitude":8\.4800/);
    const x = await S.req('GET', `/fhir/Location/${r.json.id}?_format=xml`, { as: 'editor' });
    assert.match(x.text, /<latitude value="8\.4800"\/>/);
  });

  it('search, history and metadata answer in XML', async () => {
    await S.req('POST', '/fhir/Location', { body: sample('Location', { name: 'Xmlsearch Health Post' }), as: 'editor' });
    const s = await S.req('GET', '/fhir/Location?name=xmlsearch&_format=xml', {});
    assert.equal(s.status, 200);
    assert.match(s.text, /<Bundle xmlns="http:\/\/hl7.org\/fhir">.*<type value="searchset"\/><total value="1"\/>/);
    assert.match(s.text, /<resource><Location><id value=/);
    const h = await S.req('GET', '/fhir/Location/_history?_count=2', { headers: { Accept: XML } });
    assert.equal(h.status, 200);
    assert.match(h.text, /<type value="history"\/>/);
    const m = await S.req('GET', '/fhir/metadata', { headers: { Accept: XML } });
    assert.match(m.text, /<CapabilityStatement xmlns="http:\/\/hl7.org\/fhir">/);
    assert.match(m.text, /<format value="application\/fhir\+xml"\/>/);
  });

  it('a transaction Bundle in XML', async () => {
    const body = `<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/>
      <entry><fullUrl value="urn:uuid:9d3a7b5e-0c1f-4a5e-9a51-2d1b7e2f0a11"/><resource><Organization><name value="XML Org"/></Organization></resource>
        <request><method value="POST"/><url value="Organization"/></request></entry>
      <entry><resource><Location><name value="XML Site"/><managingOrganization><reference value="urn:uuid:9d3a7b5e-0c1f-4a5e-9a51-2d1b7e2f0a11"/></managingOrganization></Location></resource>
        <request><method value="POST"/><url value="Location"/></request></entry></Bundle>`;
    const r = await S.req('POST', '/fhir', { body, contentType: XML, as: 'editor', headers: { Accept: XML } });
    assert.equal(r.status, 200, r.text.slice(0, 500));
    assert.match(r.text, /<type value="transaction-response"\/>/);
    const locs = [...r.text.matchAll(/<location value="(Location|Organization)\/([^/]+)\/_history\/1"\/>/g)];
    assert.equal(locs.length, 2);
    const loc = locs.find((m) => m[1] === 'Location');
    const org = locs.find((m) => m[1] === 'Organization');
    const g = await S.req('GET', `/fhir/Location/${loc[2]}`, {});
    assert.equal(g.json.managingOrganization.reference, `Organization/${org[2]}`);
  });

  it('errors come back as XML OperationOutcomes when XML was asked for', async () => {
    const r = await S.req('GET', '/fhir/Location/does-not-exist', { headers: { Accept: XML } });
    assert.equal(r.status, 404);
    assert.match(r.text, /<OperationOutcome xmlns="http:\/\/hl7.org\/fhir"><issue><severity value="error"\/><code value="not-found"\/>/);
  });

  it('hostile XML is refused with 400 and the server stays up', async () => {
    const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><Location xmlns="http://hl7.org/fhir"><name value="&lol2;"/></Location>`;
    const external = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><Location xmlns="http://hl7.org/fhir"><name value="&e;"/></Location>`;
    const deep = `<Location xmlns="http://hl7.org/fhir">${'<extension url="x">'.repeat(300)}${'</extension>'.repeat(300)}</Location>`;
    for (const [what, body] of [['billion laughs', laughs], ['external entity', external], ['300 levels deep', deep]]) {
      const r = await S.req('POST', '/fhir/Location', { body, contentType: XML, as: 'editor' });
      assert.equal(r.status, 400, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
      assert.equal(r.json.issue[0].code, 'structure', what);
      assert.doesNotMatch(r.text, /root:/, `${what}: file contents leaked`);
    }
    assert.equal((await S.req('GET', '/healthz', {})).status, 200);
  });
});
