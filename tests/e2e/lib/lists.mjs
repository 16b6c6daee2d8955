// Independent readers of the formats `mahali import` takes, and the import rules written out in
// JavaScript, for import.test.mjs: what a run must report is computed here from the raw file,
// never taken from what the importer printed.
//
//   readCsv(buf, {encoding, delimiter})  records with the line each starts on, damaged records
//                                        (line, column), BOM skipped, delimiter detected
//   parseXml(text)                       elements with attributes, text and start lines
//   ImportModel                          the engine's rules: rows, rejected, flagged, issues
//   Mapping                              a mapping file (importers/mappings/*.json) over a header
//   modelCsv / modelGeojson / modelDhis2 / modelCsd
//                                        the expected outcome of one import of a file
//   norm(name)                           how jurisdiction names compare (case, accents, spaces)
//
// The rules (documented in importers/imp_int.h, importers/run.c and importers/mapping.c):
// a row without a name is rejected (missing-name); without any identifier (after placeholders
// such as None, NULL, N/A, NA, - and ? are dropped with a placeholder-identifier warning) it is
// rejected (missing-identifier); a row whose first identifier is already on an earlier accepted
// row is rejected (duplicate-identifier, other_line = the earlier row), a further identifier
// already seen is only dropped (a warning). Coordinates: none given is no issue; 0,0 is
// null-island; not two numbers, out of range, a pole or the same number twice is
// invalid-coordinates; either way the row is kept without a position and counts as flagged.
import { createHash } from 'node:crypto';

export const SYS = {
  DHIS2_UID: 'https://dhis2.org/orgunit-uid',
  DHIS2_CODE: 'https://dhis2.org/orgunit-code',
  CSD_ENTITY: 'urn:ihe:iti:csd:2013:entityID',
  CSD_OTHER: 'urn:ihe:iti:csd:2013:otherID:',
  CSD_SCHEME: 'urn:ihe:iti:csd:2013:codingScheme:',
  CSD_ROLE: 'urn:ihe:iti:csd:2013:provider-facility',
  ROW_KEY: 'https://profiles.mahali.health/fhir/NamingSystem/row-key',
};

// ---- text ----------------------------------------------------------------------------------------

/** A cell as the importer reads it: ASCII white space and no-break spaces trimmed; null if empty. */
export function cell(s) {
  if (s === undefined || s === null) return null;
  const t = String(s).replace(/^[ \t\r\n\u00a0]+|[ \t\r\n\u00a0]+$/g, '');
  return t === '' ? null : t;
}

/** Header comparison form: letters and digits only, lower case (a BOM is ignored). */
export function squash(s) {
  return String(s)
    .replace(/^\ufeff/, '')
    .replace(/[^A-Za-z0-9]/g, '')
    .toLowerCase();
}

/** Jurisdiction names compare without case, accents and runs of white space. */
export function norm(s) {
  return String(s)
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[\s\u00a0]+/g, ' ')
    .trim()
    .toLowerCase();
}

// ---- CSV -------------------------------------------------------------------------------------------

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The delimiter used most outside quotes on the first line: , ; tab | (comma on a tie). */
function detectDelimiter(buf, start) {
  const cand = [0x2c, 0x3b, 0x09, 0x7c];
  const count = [0, 0, 0, 0];
  let quoted = false;
  for (let i = start; i < buf.length; i++) {
    const c = buf[i];
    if (c === 0x22) quoted = !quoted;
    else if (c === 0x0a && !quoted) break;
    else if (!quoted) {
      const k = cand.indexOf(c);
      if (k >= 0) count[k]++;
    }
  }
  let best = 0;
  for (let k = 1; k < 4; k++) if (count[k] > count[best]) best = k;
  return cand[best];
}

/**
 * Read a CSV file (Buffer) as a spreadsheet export: RFC 4180 quoting (a quote opens a quoted
 * field only at the start of a field, "" inside is a quote, line breaks inside are kept), LF or
 * CRLF, empty lines skipped, a UTF-8 BOM skipped. encoding 'utf-8' (invalid bytes make the
 * record unreadable) or 'latin-1'. A record that cannot be read (a character after a closing
 * quote, invalid UTF-8, a quote never closed) is reported as {error, line, column} and reading
 * goes on at the next line. Returns {delimiter, items: [{line, fields} | {error, line, column}]}
 * in file order; line is where the record starts (1-based), column the field (1-based).
 */
export function readCsv(buf, { encoding = 'utf-8', delimiter } = {}) {
  let i = buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0;
  const n = buf.length;
  const d = delimiter ? delimiter.charCodeAt(0) : detectDelimiter(buf, i);
  const latin1 = /^(latin-?1|iso-?8859-1)$/i.test(encoding);
  const items = [];
  let line = 1;
  const decode = (parts) => {
    const b = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    if (latin1) return b.toString('latin1');
    return utf8.decode(b); // throws on invalid UTF-8
  };
  const skipLine = () => {
    while (i < n && buf[i] !== 0x0a) i++;
    if (i < n) {
      i++;
      line++;
    }
  };
  while (i < n) {
    const c0 = buf[i];
    if (c0 === 0x0a) {
      i++;
      line++;
      continue;
    }
    if (c0 === 0x0d) {
      i++;
      if (buf[i] === 0x0a) {
        i++;
        line++;
      }
      continue;
    }
    const start = line;
    const fields = [];
    let failed = null;
    for (;;) {
      const parts = [];
      let quotedField = false;
      if (buf[i] === 0x22) {
        quotedField = true;
        i++;
        for (;;) {
          const q = buf.indexOf(0x22, i);
          if (q < 0) {
            for (let k = i; k < n; k++) if (buf[k] === 0x0a) line++;
            i = n;
            failed = { error: 'a quoted field is not closed before the end of the file', line: start, column: fields.length + 1 };
            break;
          }
          for (let k = i; k < q; k++) if (buf[k] === 0x0a) line++;
          parts.push(buf.subarray(i, q));
          if (buf[q + 1] === 0x22) {
            parts.push(Buffer.from('"'));
            i = q + 2;
            continue;
          }
          i = q + 1;
          break;
        }
        if (failed) break;
      }
      // unquoted text (or what follows a closing quote, which must be a delimiter or a line end)
      let j = i;
      while (j < n && buf[j] !== d && buf[j] !== 0x0a && buf[j] !== 0x0d) j++;
      if (j > i) {
        if (quotedField) {
          failed = { error: 'a character follows the closing quote of a field', line: start, column: fields.length + 1 };
          i = j;
          skipLine();
          break;
        }
        parts.push(buf.subarray(i, j));
      }
      i = j;
      let text;
      try {
        text = parts.length ? decode(parts) : '';
      } catch {
        failed = { error: 'invalid UTF-8', line: start, column: fields.length + 1 };
        if (i < n && buf[i] === d) skipLine();
        else if (i < n) {
          if (buf[i] === 0x0d) i++;
          if (buf[i] === 0x0a) {
            i++;
            line++;
          }
        }
        break;
      }
      fields.push(text);
      if (i >= n) break;
      if (buf[i] === d) {
        i++;
        continue;
      }
      if (buf[i] === 0x0d) i++;
      if (buf[i] === 0x0a) {
        i++;
        line++;
      }
      break;
    }
    items.push(failed || { line: start, fields });
  }
  return { delimiter: String.fromCharCode(d), items };
}

// ---- XML -------------------------------------------------------------------------------------------

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function decodeXml(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ENTITIES[e] ?? m;
  });
}

/**
 * A small XML reader for machine-written documents: elements {name (prefix stripped), qname,
 * attrs, children, line}, text nodes {text}; comments, processing instructions and the doctype
 * skipped, CDATA kept as text. line: the line of the element's '<' (1-based).
 */
export function parseXml(text) {
  const root = { name: '#document', qname: '#document', attrs: {}, children: [], line: 1 };
  const stack = [root];
  let line = 1;
  let i = 0;
  const n = text.length;
  const advance = (to) => {
    for (let k = i; k < to; k++) if (text.charCodeAt(k) === 10) line++;
    i = to;
  };
  while (i < n) {
    const lt = text.indexOf('<', i);
    const stop = lt < 0 ? n : lt;
    if (stop > i) stack[stack.length - 1].children.push({ text: decodeXml(text.slice(i, stop)) });
    advance(stop);
    if (lt < 0) break;
    if (text.startsWith('<!--', lt)) {
      advance(text.indexOf('-->', lt) + 3);
      continue;
    }
    if (text.startsWith('<![CDATA[', lt)) {
      const e = text.indexOf(']]>', lt);
      stack[stack.length - 1].children.push({ text: text.slice(lt + 9, e) });
      advance(e + 3);
      continue;
    }
    if (text.startsWith('<?', lt) || text.startsWith('<!', lt)) {
      advance(text.indexOf('>', lt) + 1);
      continue;
    }
    // the end of the tag: the first '>' outside quoted attribute values
    let k = lt + 1;
    let q = 0;
    for (; k < n; k++) {
      const ch = text[k];
      if (q) {
        if (ch === q) q = 0;
      } else if (ch === '"' || ch === "'") q = ch;
      else if (ch === '>') break;
    }
    const tag = text.slice(lt + 1, k);
    const tagLine = line;
    advance(k + 1);
    if (tag[0] === '/') {
      stack.pop();
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const m = /^([^\s/>]+)/.exec(body);
    const qname = m[1];
    const attrs = {};
    const re = /([^\s=]+)\s*=\s*("([^"]*)"|'([^']*)')/g;
    let a;
    while ((a = re.exec(body.slice(qname.length)))) attrs[a[1]] = decodeXml(a[3] ?? a[4]);
    const el = { name: qname.includes(':') ? qname.slice(qname.indexOf(':') + 1) : qname, qname, attrs, children: [], line: tagLine };
    stack[stack.length - 1].children.push(el);
    if (!selfClosing) stack.push(el);
  }
  return root;
}

/** Child elements of el with local name (all of them). */
export const kids = (el, name) => (el ? el.children.filter((c) => c.name === name) : []);
/** The first child element with local name, or undefined. */
export const kid = (el, name) => (el ? el.children.find((c) => c.name === name) : undefined);
/** The text directly inside el, trimmed as a cell (null if none). */
export const textOf = (el) => (el ? cell(el.children.filter((c) => c.text !== undefined).map((c) => c.text).join('')) : null);

// ---- the engine's rules ------------------------------------------------------------------------------

/**
 * The expected outcome of one import: rows, rejected, flagged, the issues (as the report writes
 * them: line, severity, code, column, value, other_line) and the records accepted (with their
 * identifiers after duplicates were dropped). known: identifiers ("system|value") of Locations
 * already in the registry, for references and parents.
 */
export class ImportModel {
  constructor({ known } = {}) {
    this.rows = 0;
    this.rejected = 0;
    this.flagged = 0;
    this.issues = [];
    this.recs = [];
    this.seen = new Map();
    this.known = new Set(known || []);
  }

  issue(line, severity, code, column, value, extra = {}) {
    this.issues.push({ line, severity, code, column: column ?? null, value: value ?? null, ...extra });
  }

  /** A record the reader could not read, or a row it dropped itself: one rejected row. */
  rejectRow() {
    this.rows++;
    this.rejected++;
  }

  /** One record handed to the engine: {line, name, nameColumn, ids: [{system, value, column}],
   *  flag, rejected (already), kind, ...}. Resources (FHIR, CSD providers) carry name "resource". */
  emit(rec) {
    this.rows++;
    let rejected = !!rec.rejected;
    if (!rejected && !rec.name) {
      this.issue(rec.line, 'error', 'missing-name', rec.nameColumn, null);
      rejected = true;
    }
    if (!rejected && !rec.ids.length) {
      this.issue(rec.line, 'error', 'missing-identifier', null, null);
      rejected = true;
    }
    const ids = [...rec.ids];
    for (let k = 0; k < ids.length && !rejected; k++) {
      const key = `${ids[k].system}|${ids[k].value}`;
      const first = this.seen.get(key);
      if (first === undefined) continue;
      if (k === 0) {
        this.issue(rec.line, 'error', 'duplicate-identifier', ids[k].column, ids[k].value, { other_line: first });
        rejected = true;
      } else {
        this.issue(rec.line, 'warning', 'duplicate-identifier', ids[k].column, ids[k].value, { other_line: first });
        ids.splice(k, 1);
        k--;
      }
    }
    rec.ids = ids;
    rec.rejected = rejected;
    if (rejected) this.rejected++;
    else {
      for (const id of ids) {
        this.seen.set(`${id.system}|${id.value}`, rec.line);
        if (rec.kind !== 'resource') this.known.add(`${id.system}|${id.value}`);
      }
      if (rec.flag) this.flagged++;
    }
    this.recs.push(rec);
    return rec;
  }

  get warnings() {
    return this.issues.filter((i) => i.severity === 'warning').length;
  }

  get accepted() {
    return this.recs.filter((r) => !r.rejected);
  }
}

/** strtod on the whole text (a decimal comma accepted when there is no point), finite. */
function number(s) {
  if (s.length >= 64) return null;
  let t = s;
  if (!t.includes('.')) {
    const c = t.indexOf(',');
    if (c >= 0 && t.indexOf(',', c + 1) < 0) t = t.slice(0, c) + '.' + t.slice(c + 1);
  }
  if (!/^[ \t\n\r\f\v]*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)? *$/.test(t)) return null;
  const v = Number(t.trim());
  return Number.isFinite(v) ? v : null;
}

/**
 * The coordinate rules on one record (lat, lon as text, or combined "a b"/"a, b"/"a;b" with
 * lonFirst): sets rec.pos {lat, lon} or rec.flag, and reports on model.
 */
export function position(model, rec, { lat, lon, combined, lonFirst = false, column }) {
  rec.pos = null;
  let text;
  if (combined !== undefined && combined !== null) {
    text = combined;
    const m = /^([^,; \t]+)[,; \t]+(.+)$/s.exec(combined);
    if (!m || m[1].length >= 64 || m[2].length >= 64) {
      rec.flag = 'invalid-coordinates';
      model.issue(rec.line, 'warning', 'invalid-coordinates', column, combined);
      return;
    }
    lat = lonFirst ? m[2] : m[1];
    lon = lonFirst ? m[1] : m[2];
  } else {
    if (lat === null && lon === null) return;
    text = `${lat ?? ''}, ${lon ?? ''}`;
  }
  const y = lat === null ? null : number(lat);
  const x = lon === null ? null : number(lon);
  if (y === null || x === null) {
    rec.flag = 'invalid-coordinates';
    model.issue(rec.line, 'warning', 'invalid-coordinates', column, text);
    return;
  }
  if (x === 0 && y === 0) {
    rec.flag = 'null-island';
    model.issue(rec.line, 'warning', 'null-island', column, text);
    return;
  }
  if (Math.abs(y) > 90 || Math.abs(x) > 180 || Math.abs(y) === 90 || x === y) {
    rec.flag = 'invalid-coordinates';
    model.issue(rec.line, 'warning', 'invalid-coordinates', column, text);
    return;
  }
  rec.pos = { lat: y, lon: x };
}

const PLACEHOLDER = (v) => /^(none|null|n\/a|na)$/i.test(v) || v === '-' || v === '?';
const ACTIVE = ['active', 'operational', 'functional', 'open', 'operating', 'yes', 'true', '1', 'fonctionnel', 'ouvert', 'functioning'];
const INACTIVE = ['inactive', 'closed', 'deleted', 'nonfunctional', 'notfunctional', 'notoperational', 'nonoperational', 'no', 'false', '0', 'ferme', 'decommissioned', 'permanentlyclosed'];
const SUSPENDED = ['suspended', 'temporarilyclosed', 'closedtemporarily', 'underconstruction'];

/** A mapping file bound to a header (exact name first, then "#N", then the squashed form). */
export class Mapping {
  constructor(json, header) {
    this.j = json;
    this.header = header;
    const bind = (name, member) => {
      if (name === undefined || name === null) return null;
      let i = header.indexOf(name);
      if (i < 0 && /^#\d+$/.test(name)) i = Number(name.slice(1)) - 1;
      if (i < 0) i = header.findIndex((h) => squash(h) !== '' && squash(h) === squash(name));
      if (i < 0 || i >= header.length) throw new Error(`mapping ${member}: no column "${name}" in the header`);
      return { name, i };
    };
    this.name = bind(json.name, 'name');
    this.ids = (json.identifiers || []).map((e, k) =>
      e.columns
        ? { cols: e.columns.map((c, x) => bind(c, `identifiers[${k}].columns[${x}]`)), sep: e.separator ?? '/', system: e.system }
        : { cols: [bind(e.column, `identifiers[${k}].column`)], sep: '/', system: e.system },
    );
    this.key = json.key ? { cols: json.key.columns.map((c, x) => bind(c, `key.columns[${x}]`)), system: json.key.system } : null;
    this.lat = bind(json.latitude, 'latitude');
    this.lon = bind(json.longitude, 'longitude');
    this.combined = json.coordinates ? { col: bind(json.coordinates.column, 'coordinates.column'), lonFirst: json.coordinates.order === 'lon,lat' } : null;
    const coded = (v, member) => (v === undefined ? null : typeof v === 'string' ? { col: bind(v, member), values: null } : { col: bind(v.column, `${member}.column`), values: v.values || null });
    this.type = coded(json.type, 'type');
    this.owner = coded(json.ownership, 'ownership');
    if (json.status === undefined) this.status = null;
    else if (typeof json.status === 'string') this.status = { col: bind(json.status, 'status'), values: null, dflt: 'active' };
    else this.status = { col: bind(json.status.column, 'status.column'), values: json.status.values || null, dflt: json.status.default || 'active' };
    this.admin = ((json.jurisdictions && json.jurisdictions.columns) || []).map((c, x) => bind(c, `jurisdictions.columns[${x}]`));
    this.top = json.jurisdictions && json.jurisdictions.top;
  }

  statusOf(model, raw, line) {
    const s = this.status;
    if (s.values && Object.hasOwn(s.values, raw ?? '')) return s.values[raw ?? ''];
    if (raw === null) return s.dflt;
    const q = squash(raw);
    const h = squash(s.col.name);
    if (h === 'deleted' || h === 'closed') return ['no', 'false', '0', 'n'].includes(q) ? 'active' : 'inactive';
    if (ACTIVE.includes(q)) return 'active';
    if (INACTIVE.includes(q)) return 'inactive';
    if (SUSPENDED.includes(q)) return 'suspended';
    model.issue(line, 'warning', 'unmapped-value', s.col.name, raw);
    return s.dflt;
  }

  /** One row (fields: strings; a missing field reads as empty) → a record, issues on model. */
  row(model, fields, line) {
    const get = (c) => (c && c.i < fields.length ? cell(fields[c.i]) : null);
    const rec = { line, kind: 'facility', name: get(this.name), nameColumn: this.j.name, ids: [], fields };
    for (const spec of this.ids) {
      let v = get(spec.cols[0]);
      for (let k = 1; v !== null && k < spec.cols.length; k++) {
        const w = get(spec.cols[k]);
        v = w === null ? null : `${v}${spec.sep}${w}`;
      }
      if (v === null) continue;
      if (PLACEHOLDER(v)) {
        model.issue(line, 'warning', 'placeholder-identifier', spec.cols[0].name, v);
        continue;
      }
      rec.ids.push({ system: spec.system, value: v, column: spec.cols[0].name });
    }
    if (!rec.ids.length && this.key) {
      const h = createHash('sha256');
      let any = false;
      for (const c of this.key.cols) {
        const v = get(c);
        if (v !== null) {
          any = true;
          h.update(v, 'utf8');
        }
        h.update('\x1f');
      }
      if (any) rec.ids.push({ system: this.key.system, value: h.digest('hex').slice(0, 24), column: 'key' });
    }
    if (this.lat) position(model, rec, { lat: get(this.lat), lon: get(this.lon), column: `${this.lat.name}/${this.lon.name}` });
    else if (this.combined) {
      const v = get(this.combined.col);
      if (v !== null) position(model, rec, { combined: v, lonFirst: this.combined.lonFirst, column: this.combined.col.name });
    }
    for (const cd of [this.type, this.owner]) {
      if (!cd) continue;
      const raw = get(cd.col);
      if (raw !== null && cd.values && !Object.hasOwn(cd.values, raw)) model.issue(line, 'warning', 'unmapped-value', cd.col.name, raw);
    }
    rec.status = this.status ? this.statusOf(model, get(this.status.col), line) : 'active';
    rec.admin = [];
    if (this.top) rec.admin.push(this.top);
    for (const c of this.admin) {
      const v = get(c);
      if (v === null) break;
      rec.admin.push(v);
    }
    return rec;
  }
}

/** The jurisdictions the accepted records create (a fresh registry): one per distinct chain. */
export function jurisdictionCount(recs) {
  const keys = new Set();
  for (const r of recs) {
    let path = '';
    for (const a of r.admin || []) {
      path += `\x1f${norm(a)}`;
      keys.add(path);
    }
  }
  return keys.size;
}

/** Expected outcome of `mahali import csv FILE --mapping M`: parsed = readCsv(...). */
export function modelCsv(parsed, mappingJson, opts = {}) {
  const model = new ImportModel(opts);
  const [head, ...rest] = parsed.items;
  if (!head || head.error) throw new Error('the header cannot be read');
  const header = head.fields;
  header.forEach((h, i) => {
    const k = header.indexOf(h);
    if (k < i) model.issue(1, 'warning', 'duplicate-column', h, null);
  });
  const m = new Mapping(mappingJson, header);
  for (const it of rest) {
    if (it.error) {
      model.issue(it.line, 'error', 'unreadable-record', null, null, { where: `line ${it.line}, column ${it.column}` });
      model.rejectRow();
      continue;
    }
    if (it.fields.every((f) => /^[ \t]*$/.test(f))) continue;
    if (it.fields.length !== header.length) model.issue(it.line, 'warning', 'ragged-row', null, null);
    model.emit(m.row(model, it.fields, it.line));
  }
  model.header = header;
  model.mapping = m;
  return model;
}

/** Expected outcome of `mahali import geojson FILE --mapping M` (properties as columns; a Point
 *  is a facility, a Polygon or MultiPolygon a jurisdiction). */
export function modelGeojson(doc, mappingJson, opts = {}) {
  const model = new ImportModel(opts);
  const header = [];
  for (const f of doc.features) for (const k of Object.keys(f.properties || {})) if (!header.includes(k)) header.push(k);
  const m = new Mapping(mappingJson, header);
  doc.features.forEach((f, i) => {
    const line = i + 1;
    const fields = header.map((h) => {
      const v = (f.properties || {})[h];
      return v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    });
    const rec = m.row(model, fields, line);
    const g = f.geometry;
    if (g && g.type === 'Point') {
      rec.kind = 'facility';
      position(model, rec, { lat: String(g.coordinates[1]), lon: String(g.coordinates[0]), column: 'geometry' });
    } else if (g && (g.type === 'Polygon' || g.type === 'MultiPolygon')) {
      rec.kind = 'jurisdiction';
      rec.geometry = g;
    }
    model.emit(rec);
  });
  return model;
}

/** Expected outcome of `mahali import dhis2 FILE` for a geoFeatures FeatureCollection: every
 *  unit a record identified by its UID, under its parent found by UID in the file or in the
 *  registry (else parent-not-found); a Point is a facility. */
export function modelDhis2(doc, opts = {}) {
  const model = new ImportModel(opts);
  const units = doc.features.map((f, i) => {
    const p = f.properties || {};
    return { line: i + 1, id: cell(p.id) ?? cell(f.id), code: cell(p.code), name: cell(p.name ?? p.shortName), parent: cell(p.parentId), level: Number(p.level) || 0, g: f.geometry };
  });
  const inFile = new Set(units.map((u) => u.id).filter(Boolean));
  // parents before children: by level (the written order); within a level the order does not
  // decide anything here (no duplicates in the lists)
  const order = [...units].sort((a, b) => a.level - b.level || a.line - b.line);
  for (const u of order) {
    const rec = { line: u.line, name: u.name, nameColumn: 'name', ids: [], kind: u.g && u.g.type === 'Point' ? 'facility' : 'jurisdiction', uid: u.id };
    if (u.id) rec.ids.push({ system: SYS.DHIS2_UID, value: u.id, column: 'id' });
    if (u.code) rec.ids.push({ system: SYS.DHIS2_CODE, value: u.code, column: 'code' });
    if (u.parent && u.parent !== u.id && !inFile.has(u.parent) && !model.known.has(`${SYS.DHIS2_UID}|${u.parent}`))
      model.issue(u.line, 'warning', 'parent-not-found', 'parent', u.parent);
    if (u.g && u.g.type === 'Point') position(model, rec, { lat: String(u.g.coordinates[1]), lon: String(u.g.coordinates[0]), column: 'geometry' });
    else if (u.g) rec.geometry = u.g;
    model.emit(rec);
  }
  return model;
}

/** prefix + s percent-encoded as the CSD reader makes identifier systems of authority names. */
function uriWith(prefix, s) {
  let out = prefix;
  for (const b of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~:/@!$&'()*+,;=]/.test(ch) ? ch : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Expected outcome of `mahali import csd FILE`: organizations (jurisdictions, parents first),
 * facilities (with their geocode as written, latitude then longitude), providers (a Practitioner,
 * then a PractitionerRole per facility link, whose Location is found by identifier: the DHIS2 UID
 * of a urn:dhis.org link, else the entityID; unresolved → reference-not-found).
 * swapped(lon, lat): the boundary check ([inside, swappedInside] or null), for the flag.
 */
export function modelCsd(root, { known, swapped } = {}) {
  const model = new ImportModel({ known });
  const csd = kid(root, 'CSD');
  const entity = (el) => cell(el && el.attrs.entityID) ?? cell(el && el.attrs.urn);
  const entityColumn = (el) => (cell(el.attrs.entityID) !== null ? 'entityID' : 'urn');
  const otherIds = (el, places) => {
    const ids = [];
    for (const o of kids(el, 'otherID')) {
      const code = cell(o.attrs.code);
      const auth = cell(o.attrs.assigningAuthorityName);
      if (code === null || auth === null) {
        model.issue(o.line, 'warning', 'invalid-identifier', 'otherID', code ?? auth);
        continue;
      }
      ids.push({ system: places && auth === 'dhis.org:orgid' ? SYS.DHIS2_UID : uriWith(SYS.CSD_OTHER, auth), value: code, column: 'otherID' });
    }
    return ids;
  };
  const status = (el) => (cell(kid(el, 'record')?.attrs.status) === '106-002' ? 'inactive' : 'active');
  const entityRec = (el, kind) => {
    const rec = { line: el.line, kind, name: textOf(kid(el, 'primaryName')), nameColumn: 'primaryName', ids: [], status: status(el) };
    const id = entity(el);
    if (id !== null) rec.ids.push({ system: SYS.CSD_ENTITY, value: id, column: entityColumn(el) });
    rec.ids.push(...otherIds(el, true).slice(0, 12 - rec.ids.length));
    if (!rec.ids.length) {
      model.issue(rec.line, 'error', 'missing-identifier', 'entityID', null);
      rec.rejected = true;
    }
    const geo = kind === 'facility' ? kid(el, 'geocode') : undefined;
    if (geo) {
      position(model, rec, { lat: textOf(kid(geo, 'latitude')), lon: textOf(kid(geo, 'longitude')), column: 'geocode' });
      rec.geocode = rec.pos;
      if (rec.pos && swapped) {
        const [inside, swIn] = swapped(rec.pos.lon, rec.pos.lat);
        if (inside === false && swIn === true) {
          rec.flag = 'swapped-coordinates';
          model.issue(rec.line, 'warning', 'swapped-coordinates', 'geocode', `${textOf(kid(geo, 'latitude'))}, ${textOf(kid(geo, 'longitude'))}`);
        }
      }
    }
    return rec;
  };
  // organizations by depth in their csd:parent tree, document order within a depth
  const orgs = kids(kid(csd, 'organizationDirectory'), 'organization').map((el, i) => ({ el, i, id: entity(el), parent: entity(kid(el, 'parent')) }));
  const byId = new Map();
  for (const o of orgs) if (o.id !== null && !byId.has(o.id)) byId.set(o.id, o);
  const depth = (o, seen = new Set()) => {
    if (o.depth !== undefined) return o.depth;
    if (seen.has(o)) throw new Error(`csd:parent cycle at line ${o.el.line} (not modelled)`);
    seen.add(o);
    const p = o.parent !== null ? byId.get(o.parent) : undefined;
    o.depth = p ? depth(p, seen) + 1 : 0;
    return o.depth;
  };
  orgs.forEach((o) => depth(o));
  for (const o of [...orgs].sort((a, b) => a.depth - b.depth || a.i - b.i)) model.emit(entityRec(o.el, 'jurisdiction'));
  for (const el of kids(kid(csd, 'facilityDirectory'), 'facility')) model.emit(entityRec(el, 'facility'));
  const practitioners = new Set();
  for (const el of kids(kid(csd, 'providerDirectory'), 'provider')) {
    const pid = entity(el);
    if (pid === null) {
      model.issue(el.line, 'error', 'missing-identifier', 'entityID', null);
      model.rejectRow();
      continue;
    }
    const demo = kid(el, 'demographic');
    const g = textOf(kid(demo, 'gender'));
    if (g !== null && !['M', 'm', 'male', 'Male', 'MALE', 'F', 'f', 'female', 'Female', 'FEMALE'].includes(g))
      model.issue(kid(demo, 'gender').line, 'warning', 'unknown-gender', 'gender', g);
    const ids = [{ system: SYS.CSD_ENTITY, value: pid, column: 'identifier' }, ...otherIds(el, false).map((x) => ({ ...x, column: 'identifier' }))];
    const prac = model.emit({ line: el.line, kind: 'resource', name: 'resource', ids, type: 'Practitioner', active: status(el) === 'active' });
    if (!prac.rejected) practitioners.add(pid);
    for (const fs of kids(el, 'facilities')) {
      for (const f of kids(fs, 'facility')) {
        const fid = entity(f);
        if (fid === null) {
          model.issue(f.line, 'warning', 'missing-identifier', 'facility', null);
          continue;
        }
        const m = /^urn:dhis\.org:.*:([A-Za-z][A-Za-z0-9]{10})$/.exec(fid);
        const loc = m ? { system: SYS.DHIS2_UID, value: m[1] } : { system: SYS.CSD_ENTITY, value: fid };
        const rec = { line: f.line, kind: 'resource', name: 'resource', ids: [{ system: SYS.CSD_ROLE, value: `${pid}|${fid}`, column: 'identifier' }], type: 'PractitionerRole', loc };
        if (!practitioners.has(pid)) model.issue(f.line, 'warning', 'reference-not-found', 'identifier', pid);
        if (!model.known.has(`${loc.system}|${loc.value}`)) {
          model.issue(f.line, 'warning', 'reference-not-found', 'identifier', loc.value);
          rec.dangling = true;
        }
        model.emit(rec);
      }
    }
  }
  return model;
}

// ---- comparing ----------------------------------------------------------------------------------------

const issueKey = (i) => [i.line, i.severity, i.code, i.column ?? '', i.value ?? '', i.other_line ?? ''].join('\u241f');

/** The differences between two issue lists as multisets: {missing: [...], extra: [...]}. */
export function issueDiff(actual, expected) {
  const count = new Map();
  for (const e of expected) count.set(issueKey(e), (count.get(issueKey(e)) || 0) + 1);
  const extra = [];
  for (const a of actual) {
    const k = issueKey(a);
    if (count.get(k)) count.set(k, count.get(k) - 1);
    else extra.push(a);
  }
  const missing = [];
  for (const e of expected) {
    const k = issueKey(e);
    if (count.get(k)) {
      count.set(k, count.get(k) - 1);
      missing.push(e);
    }
  }
  return { missing, extra };
}
