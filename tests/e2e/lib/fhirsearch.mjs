// An independent, in-memory implementation of the FHIR R4 search matching rules (search.html)
// for the seven mCSD resource types, used by the e2e tests to compute the results a search MUST
// return from the data the test itself loaded. It never looks at the server: parameters are
// written down here from the R4 SearchParameter definitions (expression → element paths) and the
// matching rules from the R4 search page:
//   string     case- and accent-insensitive starts-with; :exact (byte equality); :contains
//   token      code | system|code | |code | system| ; :not (includes resources without a value)
//   reference  id | Type/id | absolute URL ; :Type ; :below / :above on hierarchies (partof)
//   date       eq ne gt lt ge le sa eb ap with the R4 range semantics (value ranges by precision,
//              a Period's missing start/end is -/+ infinity); ap is tri-state (see below)
//   all        :missing ; comma = OR ; repeated parameter = AND ; chains a.b ; _has:T:ref:p ;
//              _id ; _lastUpdated (an instant of millisecond precision)
// Results are tri-state per resource: true (must match), false (must not match) and null
// (the spec leaves it to the server, only for `ap`), see evaluate().

export const MCSD_TYPES = [
  'Organization',
  'Location',
  'HealthcareService',
  'Practitioner',
  'PractitionerRole',
  'Endpoint',
  'OrganizationAffiliation',
];

const str = (paths) => ({ kind: 'string', paths });
const tok = (paths) => ({ kind: 'token', paths });
const ref = (paths, targets) => ({ kind: 'reference', paths, targets });
const date = (paths) => ({ kind: 'date', paths });

/** Search parameters per type: name → {kind, paths, targets}. From the R4 definitions. */
export const PARAMS = {
  Organization: {
    active: tok(['active']),
    identifier: tok(['identifier']),
    name: str(['name', 'alias']),
    type: tok(['type']),
    partof: ref(['partOf'], ['Organization']),
    endpoint: ref(['endpoint'], ['Endpoint']),
  },
  Location: {
    identifier: tok(['identifier']),
    name: str(['name', 'alias']),
    organization: ref(['managingOrganization'], ['Organization']),
    status: tok(['status']),
    type: tok(['type']),
    partof: ref(['partOf'], ['Location']),
    endpoint: ref(['endpoint'], ['Endpoint']),
  },
  HealthcareService: {
    active: tok(['active']),
    identifier: tok(['identifier']),
    location: ref(['location'], ['Location']),
    name: str(['name']),
    organization: ref(['providedBy'], ['Organization']),
    'service-type': tok(['type']),
    specialty: tok(['specialty']),
    endpoint: ref(['endpoint'], ['Endpoint']),
  },
  Practitioner: {
    active: tok(['active']),
    identifier: tok(['identifier']),
    name: { kind: 'string', paths: ['name'], humanName: true },
    given: str(['name.given']),
    family: str(['name.family']),
    gender: tok(['gender']),
  },
  PractitionerRole: {
    active: tok(['active']),
    identifier: tok(['identifier']),
    location: ref(['location'], ['Location']),
    organization: ref(['organization'], ['Organization']),
    practitioner: ref(['practitioner'], ['Practitioner']),
    role: tok(['code']),
    service: ref(['healthcareService'], ['HealthcareService']),
    specialty: tok(['specialty']),
    date: date(['period']),
    endpoint: ref(['endpoint'], ['Endpoint']),
  },
  Endpoint: {
    identifier: tok(['identifier']),
    organization: ref(['managingOrganization'], ['Organization']),
    status: tok(['status']),
    name: str(['name']),
    'connection-type': tok(['connectionType']),
  },
  OrganizationAffiliation: {
    active: tok(['active']),
    date: date(['period']),
    identifier: tok(['identifier']),
    'participating-organization': ref(['participatingOrganization'], ['Organization']),
    'primary-organization': ref(['organization'], ['Organization']),
    role: tok(['code']),
    specialty: tok(['specialty']),
    location: ref(['location'], ['Location']),
    endpoint: ref(['endpoint'], ['Endpoint']),
  },
};
for (const t of MCSD_TYPES) {
  PARAMS[t]._id = { kind: 'token', paths: ['id'] };
  PARAMS[t]._lastUpdated = { kind: 'date', paths: ['meta.lastUpdated'], instant: true };
}

/** Parameters that control the result, not the match. */
export const RESULT_PARAMS = new Set([
  '_count',
  '_sort',
  '_include',
  '_revinclude',
  '_revInclude',
  '_summary',
  '_elements',
  '_total',
  '_format',
  '_cursor',
  '_pretty',
]);

// ---- values --------------------------------------------------------------------------------

/** All values at a dotted element path, arrays flattened. */
export function valuesAt(resource, path) {
  let cur = [resource];
  for (const seg of path.split('.')) {
    const next = [];
    for (const v of cur) {
      if (v === null || typeof v !== 'object') continue;
      const x = v[seg];
      if (x === undefined || x === null) continue;
      if (Array.isArray(x)) next.push(...x);
      else next.push(x);
    }
    cur = next;
  }
  return cur;
}

/** Case- and accent-insensitive form of a string (NFD, combining marks removed, lower case). */
export function fold(s) {
  return String(s).normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

function stringValues(resource, p) {
  const out = [];
  for (const path of p.paths)
    for (const v of valuesAt(resource, path)) {
      if (p.humanName && typeof v === 'object') {
        if (v.family) out.push(v.family);
        for (const g of v.given || []) out.push(g);
        for (const x of v.prefix || []) out.push(x);
        for (const x of v.suffix || []) out.push(x);
        if (v.text) out.push(v.text);
      } else if (typeof v === 'string') out.push(v);
    }
  return out;
}

/** Token values as {system, code} (system undefined when absent). */
function tokenValues(resource, p) {
  const out = [];
  for (const path of p.paths)
    for (const v of valuesAt(resource, path)) {
      if (typeof v === 'boolean') out.push({ system: undefined, code: String(v), implicit: true });
      else if (typeof v === 'string') out.push({ system: undefined, code: v, implicit: true });
      else if (v && typeof v === 'object') {
        if (Array.isArray(v.coding)) for (const c of v.coding) out.push({ system: c.system, code: c.code });
        else if ('value' in v && typeof v.value === 'string') out.push({ system: v.system, code: v.value });
        else if ('code' in v) out.push({ system: v.system, code: v.code });
      }
    }
  return out.filter((t) => t.code !== undefined);
}

/** Parse a Reference.reference (relative Type/id or absolute URL) into {type, id}. */
export function parseRef(s) {
  if (typeof s !== 'string') return null;
  const noHist = s.replace(/\/_history\/[^/]+$/, '');
  const parts = noHist.split('/');
  if (parts.length < 2) return null;
  return { type: parts[parts.length - 2], id: parts[parts.length - 1] };
}

function refValues(resource, p) {
  const out = [];
  for (const path of p.paths)
    for (const v of valuesAt(resource, path)) {
      const r = v && parseRef(v.reference);
      if (r) out.push(r);
    }
  return out;
}

// ---- dates -----------------------------------------------------------------------------------

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** [lo, hi) in ms of a FHIR date/dateTime/instant by its precision (no zone = UTC), or null. */
export function dateRange(s) {
  const m = DATE_RE.exec(String(s));
  if (!m) return null;
  const [, y, mo, d, h, mi, sec, frac, tz] = m;
  let off = 0;
  if (tz && tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    off = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60000;
  }
  const Y = Number(y);
  if (mo === undefined) return [Date.UTC(Y, 0, 1), Date.UTC(Y + 1, 0, 1)];
  const M = Number(mo) - 1;
  if (d === undefined) return [Date.UTC(Y, M, 1), Date.UTC(Y, M + 1, 1)];
  const D = Number(d);
  if (h === undefined) return [Date.UTC(Y, M, D), Date.UTC(Y, M, D + 1)];
  const H = Number(h);
  const MI = Number(mi);
  if (sec === undefined) {
    const lo = Date.UTC(Y, M, D, H, MI) - off;
    return [lo, lo + 60000];
  }
  const S = Number(sec);
  if (frac === undefined) {
    const lo = Date.UTC(Y, M, D, H, MI, S) - off;
    return [lo, lo + 1000];
  }
  const digits = frac.length;
  const ms = Math.floor(Number(`0.${frac}`) * 1000 + 1e-9);
  const lo = Date.UTC(Y, M, D, H, MI, S, ms) - off;
  const span = digits >= 3 ? 1 : 10 ** (3 - digits);
  return [lo, lo + span];
}

function dateValues(resource, p) {
  const out = [];
  for (const path of p.paths)
    for (const v of valuesAt(resource, path)) {
      if (typeof v === 'string') {
        const r = dateRange(v);
        if (r) out.push(p.instant ? [r[0], r[0] + 1] : r);
      } else if (v && typeof v === 'object' && ('start' in v || 'end' in v)) {
        const lo = v.start ? dateRange(v.start)?.[0] : -Infinity;
        const hi = v.end ? dateRange(v.end)?.[1] : Infinity;
        if (lo !== undefined && hi !== undefined) out.push([lo, hi]);
      }
    }
  return out;
}

const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

/** Tri-state match of one resource range [tLo,tHi) against a search value with prefix. */
function dateMatch(prefix, [sLo, sHi], [tLo, tHi], now) {
  const contained = sLo <= tLo && tHi <= sHi;
  switch (prefix) {
    case 'eq':
      return contained;
    case 'ne':
      return !contained;
    case 'gt':
      return tHi > sHi;
    case 'lt':
      return tLo < sLo;
    case 'ge':
      return tHi > sHi || contained;
    case 'le':
      return tLo < sLo || contained;
    case 'sa':
      return tLo >= sHi;
    case 'eb':
      return tHi <= sLo;
    case 'ap': {
      // R4: "approximately the same"; the tolerance is the server's (10 % of the distance to
      // now is recommended). Certain: an eq match is ap; a value further away than half the
      // distance to now (and at least a year) is not. Anything between is left to the server.
      if (contained) return true;
      const dist = tHi <= sLo ? sLo - tHi : tLo >= sHi ? tLo - sHi : 0;
      const gap = Math.abs((sLo + sHi) / 2 - now);
      if (dist > Math.max(0.5 * gap, 366 * 86400000)) return false;
      return null;
    }
    default:
      throw new Error(`bad prefix ${prefix}`);
  }
}

// ---- query parsing ---------------------------------------------------------------------------

/** Split on unescaped `sep`; `\,` `\|` `\$` `\\` unescaped afterwards. */
export function splitEscaped(s, sep) {
  const out = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && i + 1 < s.length) {
      cur += s[i] + s[i + 1];
      i++;
    } else if (s[i] === sep) {
      out.push(cur);
      cur = '';
    } else cur += s[i];
  }
  out.push(cur);
  return out;
}
const unescape = (s) => s.replace(/\\([,|$\\])/g, '$1');

/** Query text or [[name, value]...] → [[name, value]...] (decoded). */
export function queryPairs(q) {
  if (Array.isArray(q)) return q;
  return [...new URLSearchParams(q)];
}

// ---- evaluation ------------------------------------------------------------------------------

/**
 * A store of current resources: Map type → Map id → resource (with meta.lastUpdated).
 * evaluate(store, type, query, {base, now}) → Map id → true | null over the resources of `type`
 * (false ones omitted): true = must be in the result, null = may be (ap tolerance).
 * Throws on anything this implementation does not know (so a test cannot silently skip it).
 */
export function evaluate(store, type, query, { base = '', now = Date.now() } = {}) {
  const ctx = { store, base, now };
  const pairs = queryPairs(query).filter(([k]) => !RESULT_PARAMS.has(k) && !RESULT_PARAMS.has(k.split(':')[0]));
  const out = new Map();
  for (const [id, res] of store.get(type) || []) {
    let acc = true; // AND over pairs
    for (const [k, v] of pairs) {
      const m = matchPair(ctx, type, res, k, v);
      if (m === false) {
        acc = false;
        break;
      }
      if (m === null) acc = null;
    }
    if (acc !== false) out.set(id, acc);
  }
  return out;
}

function matchPair(ctx, type, res, key, value) {
  if (key.startsWith('_has:')) return matchHas(ctx, type, res, key, value);
  const dot = key.indexOf('.');
  if (dot > 0) return matchChain(ctx, type, res, key.slice(0, dot), key.slice(dot + 1), value);
  const [name, modifier] = key.split(':');
  const p = PARAMS[type]?.[name];
  if (!p) throw new Error(`fhirsearch: unknown parameter ${type}.${name}`);
  if (modifier === 'missing') {
    if (value !== 'true' && value !== 'false') throw new Error(`fhirsearch: :missing=${value}`);
    const has = valuesFor(res, p).length > 0;
    return value === 'true' ? !has : has;
  }
  if (p.kind === 'token' && modifier === 'not') {
    // R4: :not matches resources without any value matching (also those without a value).
    // Repeated or OR lists of :not are not used by the tests.
    return !tokenAny(res, p, unescape(value));
  }
  const ors = splitEscaped(value, ',');
  let acc = false;
  for (const one of ors) {
    const m = matchOne(ctx, type, res, p, name, modifier, one);
    if (m === true) return true;
    if (m === null) acc = null;
  }
  return acc;
}

function valuesFor(res, p) {
  switch (p.kind) {
    case 'string':
      return stringValues(res, p);
    case 'token':
      return tokenValues(res, p);
    case 'reference':
      return refValues(res, p);
    case 'date':
      return dateValues(res, p);
    default:
      throw new Error(p.kind);
  }
}

function tokenAny(res, p, v) {
  const vals = tokenValues(res, p);
  const bar = splitEscaped(v, '|');
  if (bar.length === 1) {
    const code = unescape(bar[0]);
    return vals.some((t) => t.code === code);
  }
  const system = unescape(bar[0]);
  const code = unescape(bar.slice(1).join('|'));
  if (system === '') return vals.some((t) => !t.system && !t.implicit && t.code === code);
  if (code === '') return vals.some((t) => t.system === system);
  return vals.some((t) => t.system === system && t.code === code);
}

/** The {type,id} a reference search value names (id only: type undefined). */
export function refTarget(v, base) {
  if (/^https?:\/\//.test(v)) {
    const r = parseRef(v.replace(/\/$/, ''));
    return r;
  }
  if (v.includes('/')) return parseRef(v);
  return { type: undefined, id: v };
}

function parentOf(ctx, type, id, path) {
  const r = ctx.store.get(type)?.get(id);
  if (!r) return null;
  const refs = valuesAt(r, path)
    .map((x) => parseRef(x.reference))
    .filter((x) => x && x.type === type);
  return refs.length ? refs[0].id : null;
}

/** Ancestors of type/id by path (nearest first), cycle-safe. */
function ancestors(ctx, type, id, path) {
  const out = [];
  const seen = new Set([id]);
  let cur = parentOf(ctx, type, id, path);
  while (cur && !seen.has(cur)) {
    out.push(cur);
    seen.add(cur);
    cur = parentOf(ctx, type, cur, path);
  }
  return out;
}

function matchOne(ctx, type, res, p, name, modifier, raw) {
  switch (p.kind) {
    case 'string': {
      const v = unescape(raw);
      const vals = stringValues(res, p);
      if (modifier === undefined) return vals.some((x) => fold(x).startsWith(fold(v)));
      if (modifier === 'exact') return vals.some((x) => x === v);
      if (modifier === 'contains') return vals.some((x) => fold(x).includes(fold(v)));
      throw new Error(`fhirsearch: string modifier :${modifier}`);
    }
    case 'token':
      if (modifier !== undefined) throw new Error(`fhirsearch: token modifier :${modifier}`);
      return tokenAny(res, p, raw);
    case 'reference': {
      const refs = refValues(res, p);
      const target = refTarget(unescape(raw), ctx.base);
      if (modifier === 'below' || modifier === 'above') {
        // hierarchy (partof): below = R's parent is X or a descendant of X, i.e. X is an
        // ancestor of R; above = R's parent is X or an ancestor of X
        const t = p.targets[0];
        if (target.type && target.type !== t) return false;
        if (modifier === 'below') return ancestors(ctx, t, res.id, p.paths[0]).includes(target.id);
        const set = new Set([target.id, ...ancestors(ctx, t, target.id, p.paths[0])]);
        return refs.some((r) => r.type === t && set.has(r.id));
      }
      let wantType = target.type;
      if (modifier !== undefined) {
        if (!MCSD_TYPES.includes(modifier)) throw new Error(`fhirsearch: reference modifier :${modifier}`);
        if (wantType && wantType !== modifier) return false;
        wantType = modifier;
      }
      return refs.some((r) => r.id === target.id && (!wantType || r.type === wantType) && p.targets.includes(r.type));
    }
    case 'date': {
      const m = /^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.*)$/.exec(raw);
      const prefix = m[1] || 'eq';
      const s = dateRange(m[2]);
      if (!s) throw new Error(`fhirsearch: bad date ${raw}`);
      if (modifier !== undefined) throw new Error(`fhirsearch: date modifier :${modifier}`);
      const vals = dateValues(res, p);
      let acc = false;
      for (const t of vals) {
        const r = dateMatch(prefix, s, t, ctx.now);
        if (r === true) return true;
        if (r === null) acc = null;
      }
      return acc;
    }
    default:
      throw new Error(p.kind);
  }
}

function matchChain(ctx, type, res, first, rest, value) {
  const [name, typeMod] = first.split(':');
  const p = PARAMS[type]?.[name];
  if (!p || p.kind !== 'reference') throw new Error(`fhirsearch: chain on ${type}.${first}`);
  const targetType = typeMod || p.targets[0];
  if (!p.targets.includes(targetType)) return false;
  const hits = evaluate(ctx.store, targetType, [[rest, value]], ctx);
  const refs = refValues(res, p).filter((r) => r.type === targetType);
  let acc = false;
  for (const r of refs) {
    if (!hits.has(r.id)) continue;
    if (hits.get(r.id) === true) return true;
    acc = null;
  }
  return acc;
}

function matchHas(ctx, type, res, key, value) {
  const parts = key.split(':');
  if (parts.length < 4) throw new Error(`fhirsearch: bad _has ${key}`);
  const [, otherType, refName, ...restParts] = parts;
  const rp = PARAMS[otherType]?.[refName];
  if (!rp || rp.kind !== 'reference') throw new Error(`fhirsearch: _has on ${otherType}.${refName}`);
  if (!rp.targets.includes(type)) return false;
  const hits = evaluate(ctx.store, otherType, [[restParts.join(':'), value]], ctx);
  let acc = false;
  for (const [oid, certain] of hits) {
    const other = ctx.store.get(otherType).get(oid);
    if (refValues(other, rp).some((r) => r.type === type && r.id === res.id)) {
      if (certain === true) return true;
      acc = null;
    }
  }
  return acc;
}

// ---- includes --------------------------------------------------------------------------------

/**
 * Resources an _include (Source:param) adds for the matched ids of `type`: Set of "Type/id".
 * For _revinclude (Source:param) the resources of Source that reference a match.
 */
export function includeTargets(store, type, matchIds, spec, { rev = false } = {}) {
  const [src, pname, tgt] = spec.split(':');
  const p = PARAMS[src]?.[pname];
  if (!p || p.kind !== 'reference') throw new Error(`fhirsearch: include ${spec}`);
  const out = new Set();
  if (!rev) {
    if (src !== type) return out;
    for (const id of matchIds) {
      const res = store.get(type).get(id);
      for (const r of refValues(res, p)) {
        if (tgt && r.type !== tgt) continue;
        if (store.get(r.type)?.has(r.id)) out.add(`${r.type}/${r.id}`);
      }
    }
  } else {
    const ids = new Set(matchIds);
    for (const [oid, other] of store.get(src) || [])
      if (refValues(other, p).some((r) => r.type === type && ids.has(r.id))) out.add(`${src}/${oid}`);
  }
  return out;
}

/** Great-circle distance in km (WGS84 sphere, R = 6371.0088 km). */
export function haversineKm(lat1, lon1, lat2, lon2) {
  const rad = (x) => (x * Math.PI) / 180;
  const dLat = rad(lat2 - lat1);
  const dLon = rad(lon2 - lon1);
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(rad(lat1)) * Math.cos(rad(lat2)) * Math.sin(dLon / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.min(1, Math.sqrt(a)));
}

export { PREFIXES };
