// Lossless JSON: numbers are kept as the literal text the sender wrote (`8.4800` stays
// `8.4800`), so tests can check that decimals keep their precision, which JSON.parse loses.
// parseLossless(text) -> values where every number is a LosslessNumber; canonical(value) ->
// a JSON text with object keys sorted and numbers written as their literal text.

export class LosslessNumber {
  constructor(text) {
    this.text = text;
  }
  toString() {
    return this.text;
  }
}

/** Parse JSON text; numbers become LosslessNumber. Throws SyntaxError on invalid JSON. */
export function parseLossless(text) {
  let i = 0;
  const n = text.length;
  const fail = (msg) => {
    throw new SyntaxError(`${msg} at offset ${i}`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const value = (depth) => {
    if (depth > 10000) fail('too deep');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const k = string();
        ws();
        if (text[i] !== ':') fail('expected :');
        i++;
        if (Object.prototype.hasOwnProperty.call(obj, k)) fail(`duplicate key ${JSON.stringify(k)}`);
        Object.defineProperty(obj, k, { value: value(depth + 1), enumerable: true, writable: true, configurable: true });
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const arr = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail('expected , or ]');
      }
    }
    if (c === '"') return string();
    if (text.startsWith('true', i)) {
      i += 4;
      return true;
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return false;
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return null;
    }
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0] === '' || m[0] === '-') fail('unexpected character');
    i += m[0].length;
    return new LosslessNumber(m[0]);
  };
  const string = () => {
    // text[i] === '"'; find the closing quote, then let JSON.parse decode the escapes
    let j = i + 1;
    for (;;) {
      if (j >= n) fail('unterminated string');
      const ch = text.charCodeAt(j);
      if (ch === 0x22) break;
      if (ch === 0x5c) j += 2;
      else if (ch < 0x20) fail('control character in string');
      else j++;
    }
    const s = JSON.parse(text.slice(i, j + 1));
    i = j + 1;
    return s;
  };
  const v = value(0);
  ws();
  if (i !== n) fail('trailing characters');
  return v;
}

/** JSON text with sorted keys and numbers as their literal text. */
export function canonical(v) {
  if (v instanceof LosslessNumber) return v.text;
  if (v === null || typeof v === 'boolean') return JSON.stringify(v);
  if (typeof v === 'number') return JSON.stringify(v);
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
}

/** The first difference between two lossless values as "path: a != b", or null if equal. */
export function firstDifference(a, b, path = '') {
  if (a instanceof LosslessNumber || b instanceof LosslessNumber) {
    if (a instanceof LosslessNumber && b instanceof LosslessNumber && a.text === b.text) return null;
    return `${path || '/'}: ${canonical(a)} != ${canonical(b)}`;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b)) return `${path || '/'}: ${short(a)} != ${short(b)}`;
    for (let k = 0; k < Math.max(a.length, b.length); k++) {
      if (k >= a.length) return `${path}/${k}: (absent) != ${short(b[k])}`;
      if (k >= b.length) return `${path}/${k}: ${short(a[k])} != (absent)`;
      const d = firstDifference(a[k], b[k], `${path}/${k}`);
      if (d) return d;
    }
    return null;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      if (!(k in a)) return `${path}/${k}: (absent) != ${short(b[k])}`;
      if (!(k in b)) return `${path}/${k}: ${short(a[k])} != (absent)`;
      const d = firstDifference(a[k], b[k], `${path}/${k}`);
      if (d) return d;
    }
    return null;
  }
  if (a === b) return null;
  return `${path || '/'}: ${short(a)} != ${short(b)}`;
}

function short(v) {
  const s = canonical(v);
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}

/** The literal text of the number at `path` (array of keys) in a lossless value. */
export function numberText(v, path) {
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[k];
  }
  return v instanceof LosslessNumber ? v.text : undefined;
}
