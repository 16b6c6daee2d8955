// Bad inputs (RELIABILITY.md "Bad inputs and what each gets"): each gets its exact status and
// an OperationOutcome with the exact issue code (and element where stated); never a 5xx, nothing
// is stored, errors reveal no internals, and the server still answers afterwards.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { assertOutcome, e2eSkipReason, sample, useServer } from './lib/server.mjs';

const skip = e2eSkipReason();
const XHTML = 'http://www.w3.org/1999/xhtml';
const loc = (extra) => JSON.stringify(sample('Location', extra));
const LEAK = /SQLSTATE|syntax error at|ERROR: |\bpq_|libpq|\.c:\d+|\/work\/|\/root\/|\/home\/|\/tmp\/|stack trace|segfault/i;

describe('errors', { skip }, () => {
  const S = useServer('errors');
  const statuses = [];
  let created = 0; // successful creates (positive controls)

  const send = async (method, path, opts = {}) => {
    const r = await S.req(method, path, { as: 'editor', ...opts });
    statuses.push(`${r.status} ${method} ${path}`);
    if (r.status >= 400) assert.doesNotMatch(r.text, LEAK, `${method} ${path}: the error reveals internals: ${r.text.slice(0, 500)}`);
    return r;
  };

  // [name, method, path, request opts, status(es), issue code(s), expression]
  const cases = [
    ['truncated JSON', 'POST', '/fhir/Location', { body: '{"resourceType":"Location","name":' }, 400, 'structure'],
    ['invalid JSON (unquoted keys)', 'POST', '/fhir/Location', { body: '{resourceType: Location}' }, 400, 'structure'],
    ['invalid JSON (trailing comma)', 'POST', '/fhir/Location', { body: '{"resourceType":"Location",}' }, 400, 'structure'],
    ['empty body', 'POST', '/fhir/Location', { body: '' }, 400, 'structure'],
    ['a JSON array, not an object', 'POST', '/fhir/Location', { body: '[]' }, 400, 'structure'],
    [
      'invalid UTF-8',
      'POST',
      '/fhir/Location',
      { body: Buffer.concat([Buffer.from('{"resourceType":"Location","name":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]) },
      400,
      'structure',
    ],
    ['duplicate keys', 'POST', '/fhir/Location', { body: '{"resourceType":"Location","name":"a","name":"b"}' }, 400, 'structure'],
    [
      'duplicate keys (nested)',
      'POST',
      '/fhir/Location',
      { body: '{"resourceType":"Location","position":{"latitude":1,"latitude":2,"longitude":3}}' },
      400,
      'structure',
    ],
    ['10,000 nested [ (unbalanced)', 'POST', '/fhir/Location', { body: '['.repeat(10000) }, 400, 'structure'],
    [
      '10,000 nested [ (balanced, inside a resource)',
      'POST',
      '/fhir/Location',
      { body: `{"resourceType":"Location","alias":${'['.repeat(10000)}${']'.repeat(10000)}}` },
      400,
      'structure',
    ],
    ['missing resourceType', 'POST', '/fhir/Location', { body: '{"name":"no type"}' }, 400, ['structure', 'invalid']],
    ['Organization body POSTed to /fhir/Location', 'POST', '/fhir/Location', { body: JSON.stringify(sample('Organization')) }, 400, ['structure', 'invalid']],
    ['Organization body PUT to /fhir/Location/x', 'PUT', '/fhir/Location/x', { body: JSON.stringify(sample('Organization', { id: 'x' })) }, 400, ['structure', 'invalid']],
    ['unknown element', 'POST', '/fhir/Location', { body: loc({ foo: 1 }) }, 400, 'structure', 'Location.foo'],
    [
      'unknown nested element',
      'POST',
      '/fhir/Location',
      { body: loc({ address: { city: 'Freetown', foo: 'x' } }) },
      400,
      'structure',
      'Location.address.foo',
    ],
    ['wrong JSON type (name is a number)', 'POST', '/fhir/Location', { body: loc({ name: 5 }) }, 400, ['structure', 'value', 'invalid'], 'Location.name'],
    ['unknown resource type: POST /fhir/Foo', 'POST', '/fhir/Foo', { body: '{"resourceType":"Foo"}' }, 404, 'not-supported'],
    ['unknown resource type: GET /fhir/Foo/1', 'GET', '/fhir/Foo/1', {}, 404, 'not-supported'],
    ['unknown resource type: GET /fhir/Foo/_history', 'GET', '/fhir/Foo/_history', {}, 404, 'not-supported'],
    [
      'latitude 91',
      'POST',
      '/fhir/Location',
      { body: loc({ position: { latitude: 91, longitude: -13.2 } }) },
      400,
      'value',
      'Location.position.latitude',
    ],
    [
      'latitude -90.5',
      'POST',
      '/fhir/Location',
      { body: loc({ position: { latitude: -90.5, longitude: -13.2 } }) },
      400,
      'value',
      'Location.position.latitude',
    ],
    [
      'longitude 181',
      'POST',
      '/fhir/Location',
      { body: loc({ position: { latitude: 8.4, longitude: 181 } }) },
      400,
      'value',
      'Location.position.longitude',
    ],
    [
      'latitude 1e400',
      'POST',
      '/fhir/Location',
      { body: '{"resourceType":"Location","position":{"latitude":1e400,"longitude":-13.2}}' },
      [400, 422],
      ['value', 'structure'],
    ],
    [
      'latitude NaN',
      'POST',
      '/fhir/Location',
      { body: '{"resourceType":"Location","position":{"latitude":NaN,"longitude":-13.2}}' },
      [400, 422],
      ['value', 'structure'],
    ],
    ['PUT id with illegal characters', 'PUT', '/fhir/Location/bad_id', { body: loc({ id: 'bad_id' }) }, 400, ['invalid', 'value']],
    ['PUT id with a space (%20)', 'PUT', '/fhir/Location/bad%20id', { body: loc({ id: 'bad id' }) }, 400, ['invalid', 'value']],
    ['PUT id of 65 characters', 'PUT', `/fhir/Location/${'a'.repeat(65)}`, { body: loc({ id: 'a'.repeat(65) }) }, 400, ['invalid', 'value']],
    ['PUT body without id', 'PUT', '/fhir/Location/noid', { body: loc() }, 400, ['invalid', 'value', 'required']],
    ['PUT body id differs from the URL id', 'PUT', '/fhir/Location/one', { body: loc({ id: 'two' }) }, 400, ['invalid', 'value']],
    ['POST with an illegal id in the body is ignored or rejected, never stored', 'POST', '/fhir/Location', { body: loc({ id: 'x'.repeat(65) }) }, [201, 400], undefined],
    [
      'narrative with <script>',
      'POST',
      '/fhir/Location',
      { body: loc({ text: { status: 'generated', div: `<div xmlns="${XHTML}"><script>alert(1)</script></div>` } }) },
      422,
      'invalid',
    ],
    [
      'narrative with onerror=',
      'POST',
      '/fhir/Organization',
      { body: JSON.stringify(sample('Organization', { text: { status: 'generated', div: `<div xmlns="${XHTML}"><img src="x" onerror="alert(1)"/></div>` } })) },
      422,
      'invalid',
    ],
    ['Content-Type text/plain', 'POST', '/fhir/Location', { body: loc(), contentType: 'text/plain' }, 415, 'not-supported'],
    ['Content-Type application/x-www-form-urlencoded', 'POST', '/fhir/Location', { body: loc(), contentType: 'application/x-www-form-urlencoded' }, 415, 'not-supported'],
    ['XML body with a DTD and an entity declaration', 'PUT', '/fhir/Location/xml', { body: '<!DOCTYPE Location [<!ENTITY x "y">]><Location xmlns="http://hl7.org/fhir"><name value="&x;"/></Location>', contentType: 'application/fhir+xml' }, 400, 'structure'],
    ['XML body outside the FHIR namespace', 'POST', '/fhir/Location', { body: '<Location><name value="a"/></Location>', contentType: 'application/fhir+xml' }, 400, 'structure'],
    ['truncated XML body', 'POST', '/fhir/Location', { body: '<Location xmlns="http://hl7.org/fhir"><name value="a"/>', contentType: 'application/fhir+xml' }, 400, 'structure'],
    ['no Content-Type on a body', 'POST', '/fhir/Location', { body: loc(), contentType: null }, 415, 'not-supported'],
    ['Accept: text/csv (neither JSON nor XML)', 'GET', '/fhir/metadata', { headers: { Accept: 'text/csv' } }, 406, undefined],
    ['Accept: text/csv on a read', 'GET', '/fhir/Location/whatever', { headers: { Accept: 'text/csv' } }, 406, undefined],
    ['_format=csv (mcsd.md §8.1: _format overrides Accept)', 'GET', '/fhir/metadata?_format=csv', { headers: { Accept: 'application/fhir+json' } }, 406, undefined],
    ['_since that is not an instant', 'GET', '/fhir/Location/_history?_since=yesterday', {}, 400, undefined],
    ['_count that is not a number', 'GET', '/fhir/Location/_history?_count=many', {}, 400, undefined],
    ['malformed If-Match', 'PUT', '/fhir/Location/ifmatch', { body: loc({ id: 'ifmatch' }), headers: { 'If-Match': 'not-an-etag' } }, 400, undefined],
  ];

  for (const [name, method, path, opts, status, code, expression] of cases) {
    it(`${name} → ${[].concat(status).join('/')}${code ? ` ${[].concat(code).join('/')}` : ''}`, async () => {
      const r = await send(method, path, opts);
      assert.ok(r.status < 500, `5xx for ${name}: ${r.status} ${r.text.slice(0, 500)}`);
      if ([].concat(status).includes(201) && r.status === 201) {
        created++;
        assert.notEqual(r.json.id, 'x'.repeat(65));
        return;
      }
      assertOutcome(r, status, code, { expression, what: name });
    });
  }

  it('a body over the cap (50 MiB) → 413 too-long', { timeout: 120000 }, async () => {
    const head = '{"resourceType":"Location","name":"';
    const body = Buffer.alloc(50 * 1024 * 1024 + 10, 'a');
    body.write(head, 0);
    body.write('"}', body.length - 2);
    const r = await send('POST', '/fhir/Location', { body, agent: false, timeout: 110000 });
    assertOutcome(r, 413, 'too-long', { what: '50 MiB body' });
  });

  it('a Content-Length of 50 MiB is refused before the body is sent', async () => {
    const status = await raw(
      `POST /fhir/Location HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\nAuthorization: Bearer ${S.tokens.editor}\r\nContent-Length: ${50 * 1024 * 1024}\r\n\r\n{"resourceType":"Location",`,
    );
    assert.equal(status, 413, 'a declared body over the cap gets 413 without waiting for the bytes');
  });

  it('Content-Length together with Transfer-Encoding is rejected (request smuggling)', async () => {
    const body = loc({ name: 'smuggled' });
    const chunked = `${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`;
    const status = await raw(
      `POST /fhir/Location HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/fhir+json\r\nAuthorization: Bearer ${S.tokens.editor}\r\nContent-Length: ${Buffer.byteLength(chunked)}\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`,
    );
    assert.ok(status === 400 || status === null, `expected 400 or a closed connection, got ${status}`);
  });

  it('a header over 16 KiB → 431/400 or closed, never 2xx/5xx', async () => {
    const status = await raw(`GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'b'.repeat(20 * 1024)}\r\n\r\n`);
    assert.ok(status === null || status === 431 || status === 400 || status === 413, `got ${status}`);
  });

  it('positive controls: application/json and application/fhir+json;charset=utf-8 are accepted', async () => {
    for (const ct of ['application/json', 'application/fhir+json; charset=utf-8', 'application/json;charset=UTF-8']) {
      const r = await send('POST', '/fhir/Location', { body: loc({ name: `ct ${ct}` }), contentType: ct });
      assert.equal(r.status, 201, `Content-Type ${ct}: ${r.status} ${r.text.slice(0, 300)}`);
      created++;
    }
    const r = await send('GET', '/fhir/metadata', { headers: { Accept: 'application/json' } });
    assert.equal(r.status, 200);
    const big = await send('GET', '/fhir/Location/_history?_count=1000000');
    assert.equal(big.status, 200, `_count=1000000 is clamped, not refused: ${big.status} ${big.text.slice(0, 300)}`);
    assert.equal(big.json.type, 'history');
  });

  it('no bad input was stored: the Location and Organization histories hold only the positive controls', async () => {
    let n = 0;
    for (const T of ['Location', 'Organization']) {
      const r = await send('GET', `/fhir/${T}/_history?_count=500`);
      assert.equal(r.status, 200, r.text);
      n += (r.json.entry || []).length;
      for (const e of r.json.entry || []) assert.doesNotMatch(JSON.stringify(e.resource || {}), /script|onerror|smuggled/);
    }
    assert.equal(n, created, 'versions stored by this file');
  });

  it('never a 5xx, and /healthz still answers 200', async () => {
    const fivexx = statuses.filter((s) => s.startsWith('5'));
    console.log(`# bad inputs: cases=${statuses.length} 5xx=${fivexx.length}`);
    assert.deepEqual(fivexx, []);
    const r = await S.req('GET', '/healthz');
    assert.equal(r.status, 200);
    assert.ok(S.server.running(), 'the server is still running');
  });

  /** Send raw bytes on a fresh connection; resolves the response status or null if closed without one. */
  function raw(text) {
    const { port } = S.server;
    return new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let got = '';
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`no answer within 15 s to ${text.slice(0, 80)}...`));
      }, 15000);
      let finished = false;
      const done = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
        const st = m ? Number(m[1]) : null;
        if (st !== null) statuses.push(`${st} raw`);
        resolve(st);
      };
      sock.on('data', (d) => {
        got += d.toString('latin1');
        if (/^HTTP\/1\.[01] \d{3}/.test(got)) {
          sock.destroy();
          done();
        }
      });
      sock.on('error', () => done());
      sock.on('close', () => done());
      sock.write(text);
    });
  }
});
