// Negative controls for the test helpers themselves (no database, no mahali): the checks every
// e2e file relies on (FHIR schema, Content-Type, lossless numbers, OperationOutcome assertions)
// must be able to fail, or a green e2e run would prove nothing.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { canonical, firstDifference, numberText, parseLossless } from './lib/json.mjs';
import { schemaErrors, schemaSkipReason } from './lib/schema.mjs';
import { assertOutcome, request, withDbname } from './lib/server.mjs';

describe('harness', () => {
  describe('schema', { skip: schemaSkipReason() || undefined }, () => {
    it('accepts a valid Location and OperationOutcome', () => {
      assert.deepEqual(schemaErrors({ resourceType: 'Location', name: 'x', position: { latitude: 8.48, longitude: -13.23 } }), []);
      assert.deepEqual(schemaErrors({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'structure' }] }), []);
    });
    it('rejects an unknown element, a wrong type, a bad code, an unknown resourceType', () => {
      assert.ok(schemaErrors({ resourceType: 'Location', foo: 1 }).some((e) => /foo/.test(e)));
      assert.ok(schemaErrors({ resourceType: 'Location', position: { latitude: '8' } }).length > 0);
      assert.ok(schemaErrors({ resourceType: 'Location', status: 'Active!' }).length > 0);
      assert.ok(schemaErrors({ resourceType: 'Foo' }).length > 0);
      assert.ok(schemaErrors([]).length > 0);
    });
    it('checks resources inside a history Bundle', () => {
      const ok = { resourceType: 'Bundle', type: 'history', entry: [{ resource: { resourceType: 'Organization', name: 'x' } }] };
      assert.deepEqual(schemaErrors(ok), []);
      const bad = structuredClone(ok);
      bad.entry[0].resource.bogus = true;
      assert.ok(schemaErrors(bad).length > 0);
    });
  });

  describe('request()', () => {
    let srv;
    let base;
    before(async () => {
      srv = http.createServer((req, res) => {
        const send = (status, ct, body) => {
          res.writeHead(status, { 'Content-Type': ct });
          res.end(body);
        };
        if (req.url === '/fhir/ok') send(200, 'application/fhir+json; charset=utf-8', '{"resourceType":"Organization","name":"x"}');
        else if (req.url === '/fhir/badschema') send(200, 'application/fhir+json; charset=utf-8', '{"resourceType":"Organization","nom":"x"}');
        else if (req.url === '/fhir/badct') send(200, 'application/json', '{"resourceType":"Organization"}');
        else if (req.url === '/fhir/badjson') send(200, 'application/fhir+json; charset=utf-8', '{"resourceType":');
        else if (req.url === '/fhir/oo') send(400, 'application/fhir+json; charset=utf-8', '{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"value","expression":["Location.position.latitude"]}]}');
        else send(404, 'text/plain', 'nope');
      });
      await new Promise((r) => srv.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${srv.address().port}`;
    });
    after(() => new Promise((r) => srv.close(r)));

    it('passes a valid FHIR JSON response', async () => {
      const r = await request(base, 'GET', '/fhir/ok');
      assert.equal(r.status, 200);
      assert.equal(r.json.name, 'x');
    });
    it('fails on a schema error', { skip: schemaSkipReason() || undefined }, async () => {
      await assert.rejects(request(base, 'GET', '/fhir/badschema'), /FHIR R4 JSON schema/);
    });
    it('fails on a /fhir Content-Type other than application/fhir+json; charset=utf-8', async () => {
      await assert.rejects(request(base, 'GET', '/fhir/badct'), /Content-Type/);
    });
    it('fails on invalid JSON', async () => {
      await assert.rejects(request(base, 'GET', '/fhir/badjson'), /not valid JSON/);
    });
    it('assertOutcome checks status, code and expression', async () => {
      const r = await request(base, 'GET', '/fhir/oo');
      assertOutcome(r, 400, 'value', { expression: 'Location.position.latitude' });
      assert.throws(() => assertOutcome(r, 422, 'value'));
      assert.throws(() => assertOutcome(r, 400, 'structure'));
      assert.throws(() => assertOutcome(r, 400, 'value', { expression: 'Location.position.longitude' }));
    });
  });

  describe('lossless JSON', () => {
    it('keeps number literals and compares them as text', () => {
      const a = parseLossless('{"p":{"latitude":8.4800,"longitude":-13.23},"b":[1,2]}');
      const b = parseLossless('{"b":[1,2],"p":{"longitude":-13.23,"latitude":8.48}}');
      assert.equal(numberText(a, ['p', 'latitude']), '8.4800');
      assert.match(firstDifference(a, b), /\/p\/latitude: 8\.4800 != 8\.48/);
      assert.equal(firstDifference(a, parseLossless('{"b":[1,2],"p":{"longitude":-13.23,"latitude":8.4800}}')), null);
      assert.equal(canonical(a), '{"b":[1,2],"p":{"latitude":8.4800,"longitude":-13.23}}');
      assert.notEqual(firstDifference(parseLossless('[1,2]'), parseLossless('[2,1]')), null);
      assert.throws(() => parseLossless('{"a":1,"a":2}'));
      assert.throws(() => parseLossless('{"a":1,}'));
    });
  });

  describe('conninfo', () => {
    it('replaces the database in key=value and URI forms', () => {
      assert.equal(withDbname('host=/x/run port=5432 user=postgres dbname=mahali', 'e2e_a'), 'host=/x/run port=5432 user=postgres dbname=e2e_a');
      assert.equal(withDbname("host='/a b/run' user=postgres", 'd'), "host='/a b/run' user=postgres dbname=d");
      assert.equal(withDbname('postgresql://u@localhost:5432/mahali?sslmode=disable', 'd'), 'postgresql://u@localhost:5432/d?sslmode=disable');
    });
  });
});
