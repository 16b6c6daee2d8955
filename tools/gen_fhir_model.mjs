#!/usr/bin/env node
// Generates registry/fhir_model.json, the compact FHIR R4 model registry/validate.c embeds, from
// the official R4 StructureDefinitions (npm package hl7.fhir.r4.examples@4.0.1, CC0). Every
// resource and complex datatype (derivation "specialization", not abstract) becomes a list of
// elements in StructureDefinition order; backbone elements become named types ("Location.position").
// Required bindings on code elements carry the bound ValueSet, expanded from the package's
// ValueSet-*.json and CodeSystem-*.json (see "required bindings" below).
// The output format is documented at the top of registry/validate.c. The output is deterministic.
//
// Usage: node tools/gen_fhir_model.mjs [package-dir | package.tgz] [--out path]
//   Without a source, uses tests/node_modules/hl7.fhir.r4.examples if `npm ci` put it there
//   (tests/package.json), else runs `npm pack hl7.fhir.r4.examples@4.0.1` in a temporary directory.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE = 'hl7.fhir.r4.examples@4.0.1';
const EXT_FHIR_TYPE = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const EXT_REGEX = 'http://hl7.org/fhir/StructureDefinition/regex';
const SYSTEM_PREFIX = 'http://hl7.org/fhirpath/System.';

const here = path.dirname(fileURLToPath(import.meta.url));
let source = null;
let out = path.join(here, '..', 'registry', 'fhir_model.json');
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--out') out = process.argv[++i];
  else if (a === '-h' || a === '--help') {
    console.log('usage: gen_fhir_model.mjs [package-dir | package.tgz] [--out path]');
    process.exit(0);
  } else source = a;
}

function fail(msg) {
  console.error(`gen_fhir_model: ${msg}`);
  process.exit(1);
}

// Locate the folder holding StructureDefinition-*.json: a directory (the package root or its
// package/ folder), a .tgz, or a fresh `npm pack` download.
function packageDir() {
  let tmp = null;
  let tgz = null;
  const installed = path.join(here, '..', 'tests', 'node_modules', 'hl7.fhir.r4.examples');
  if (!source && fs.existsSync(path.join(installed, 'package.json'))) {
    const v = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')).version;
    if (v === '4.0.1') return { dir: installed, tmp };
  }
  if (source && fs.statSync(source).isDirectory()) {
    const inner = path.join(source, 'package');
    return { dir: fs.existsSync(inner) ? inner : source, tmp };
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-model-'));
  if (source) {
    tgz = path.resolve(source);
  } else {
    const name = execFileSync('npm', ['pack', PACKAGE, '--silent'], { cwd: tmp, encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop();
    tgz = path.join(tmp, name);
  }
  execFileSync('tar', ['xzf', tgz, '-C', tmp, 'package/'], { stdio: 'inherit' });
  return { dir: path.join(tmp, 'package'), tmp };
}

const { dir, tmp } = packageDir();
const sds = new Map();
const valueSets = new Map(); // canonical -> ValueSet
const codeSystems = new Map(); // canonical -> CodeSystem
for (const f of fs.readdirSync(dir).sort()) {
  if (!f.endsWith('.json')) continue;
  if (f.startsWith('StructureDefinition-')) {
    const sd = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    sds.set(sd.id, sd);
  } else if (f.startsWith('ValueSet-') || f.startsWith('CodeSystem-')) {
    const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    const map = r.resourceType === 'ValueSet' ? valueSets : codeSystems;
    if (r.url && map.has(r.url)) fail(`${r.url} defined twice`);
    if (r.url) map.set(r.url, r);
  }
}
if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
if (sds.size === 0) fail(`no StructureDefinition-*.json in ${dir}`);
if (valueSets.size === 0 || codeSystems.size === 0) fail(`no ValueSet-/CodeSystem-*.json in ${dir}`);

const ext = (t, url) => (t.extension || []).find((x) => x.url === url);

// ---- primitives ---------------------------------------------------------------------------
// JSON kind: System.Boolean -> boolean, System.Integer/Decimal -> number; positiveInt and
// unsignedInt are declared System.String in R4, so the kind follows the base type's chain.
const prims = new Map();
for (const sd of sds.values()) {
  if (sd.kind !== 'primitive-type') continue;
  const v = sd.snapshot.element.find((e) => e.path === `${sd.id}.value`);
  if (!v) fail(`primitive ${sd.id} has no value element`);
  const t = v.type[0];
  const rx = ext(t, EXT_REGEX);
  prims.set(sd.id, {
    base: sd.baseDefinition.split('/').pop(),
    system: t.code.startsWith(SYSTEM_PREFIX) ? t.code.slice(SYSTEM_PREFIX.length) : t.code,
    regex: rx ? rx.valueString : null,
    maxLength: v.maxLength || null,
  });
}
function jsonKind(name) {
  const p = prims.get(name);
  if (p.system === 'Boolean') return 'boolean';
  if (p.system === 'Integer' || p.system === 'Decimal') return 'number';
  return prims.has(p.base) ? jsonKind(p.base) : 'string';
}
const primitives = {};
for (const name of [...prims.keys()].sort()) {
  const p = prims.get(name);
  const o = { json: jsonKind(name) };
  if (prims.has(p.base)) o.base = p.base;
  if (p.regex) o.regex = p.regex;
  if (p.maxLength) o.maxLength = p.maxLength;
  primitives[name] = o;
}

// ---- required bindings --------------------------------------------------------------------
// An element of type code (a choice: its code expansion) with a required binding may hold only
// the codes of the bound ValueSet. Value sets are expanded from the package alone: compose.include
// entries listing concepts, or naming a whole CodeSystem (every concept, nested ones included,
// except those marked notSelectable/abstract, as the FHIR JSON schema's enums do), or other value
// sets (intersected with each other and with the system's codes), minus compose.exclude. A value
// set that cannot be expanded completely from the package (a filter, a code system outside it
// such as BCP-13 mime types or ISO 4217 currencies, one that is not content "complete") is left
// unchecked and listed under "unexpanded" with the reason. Codes keep their definition order.
const canonical = (u) => u.split('|')[0];
const expansions = new Map(); // canonical -> { codes } or { skip: reason }

function conceptCodes(concepts, acc) {
  for (const c of concepts || []) {
    const abstract = (c.property || []).some(
      (p) => (p.code === 'notSelectable' || p.code === 'abstract') && p.valueBoolean === true,
    );
    if (!abstract) acc.push(c.code);
    conceptCodes(c.concept, acc);
  }
  return acc;
}

// One compose.include or compose.exclude entry.
function expandSet(set) {
  if ((set.filter || []).length) return { skip: `filter on ${set.system}` };
  let codes = null;
  if (set.system) {
    if (set.concept) {
      codes = set.concept.map((c) => c.code);
    } else {
      const cs = codeSystems.get(set.system);
      if (!cs) return { skip: `code system ${set.system} is not in the package` };
      if (cs.content !== 'complete') return { skip: `code system ${set.system} is ${cs.content}` };
      codes = conceptCodes(cs.concept, []);
    }
  }
  for (const u of set.valueSet || []) {
    const r = expandValueSet(canonical(u));
    if (r.skip) return r;
    codes = codes === null ? r.codes.slice() : codes.filter((c) => r.codes.includes(c));
  }
  if (codes === null) return { skip: 'an include without system or valueSet' };
  return { codes };
}

function expandValueSet(url) {
  if (expansions.has(url)) return expansions.get(url);
  expansions.set(url, { skip: 'it includes itself' }); // until done: breaks cycles
  const vs = valueSets.get(url);
  let r;
  if (!vs) r = { skip: 'not in the package' };
  else if (!vs.compose || !(vs.compose.include || []).length) r = { skip: 'no compose.include' };
  else {
    const codes = [];
    const excluded = new Set();
    for (const inc of vs.compose.include) {
      const x = expandSet(inc);
      if (x.skip) {
        r = x;
        break;
      }
      codes.push(...x.codes);
    }
    for (const exc of r ? [] : vs.compose.exclude || []) {
      const x = expandSet(exc);
      if (x.skip) {
        r = { skip: `exclude: ${x.skip}` };
        break;
      }
      for (const c of x.codes) excluded.add(c);
    }
    if (!r) {
      const list = [...new Set(codes)].filter((c) => !excluded.has(c));
      r = list.length ? { codes: list } : { skip: 'empty expansion' };
    }
  }
  expansions.set(url, r);
  return r;
}

const usedSets = new Set(); // value sets some element row refers to
const unexpanded = new Map(); // canonical -> { reason, elements }
let boundChecked = 0;

// The canonical of the ValueSet an element's code values must come from, or null.
function requiredBinding(e, codes) {
  const b = e.binding;
  if (!b || b.strength !== 'required' || !b.valueSet || !codes.includes('code')) return null;
  const url = canonical(b.valueSet);
  const r = expandValueSet(url);
  if (r.skip) {
    if (!unexpanded.has(url)) unexpanded.set(url, { reason: r.skip, elements: [] });
    unexpanded.get(url).elements.push(e.path);
    return null;
  }
  usedSets.add(url);
  boundChecked++;
  return url;
}

// ---- resources and complex types ----------------------------------------------------------
const types = new Map();
const wanted = [...sds.values()].filter(
  (sd) =>
    (sd.kind === 'resource' || sd.kind === 'complex-type') &&
    sd.derivation === 'specialization' &&
    !sd.abstract,
);

// A type code as the model names it: FHIRPath System types take their FHIR type from the
// structuredefinition-fhir-type extension; constraint profiles (SimpleQuantity...) their base.
function typeCode(e, t) {
  if (t.code.startsWith(SYSTEM_PREFIX)) {
    // R4 quirk: Resource.id says "string" although the resource id is of type id (as in the
    // R4 JSON schema and the spec's resource pages).
    if (e.base && e.base.path === 'Resource.id') return 'id';
    const ft = ext(t, EXT_FHIR_TYPE);
    if (!ft) fail(`${e.path}: ${t.code} without ${EXT_FHIR_TYPE}`);
    return ft.valueUrl;
  }
  const sd = sds.get(t.code);
  if (sd && sd.derivation === 'constraint') return sd.type;
  return t.code;
}

function flags(e) {
  let f = '';
  if ((e.representation || []).includes('xmlAttr')) f += 'a';
  if (e.isModifier) f += 'm';
  if (e.isSummary) f += 's';
  return f;
}

function addType(sd) {
  const els = sd.snapshot.element;
  const root = els[0].path;
  if (root !== sd.type) fail(`${sd.id}: snapshot root ${root} is not ${sd.type}`);
  const kind = sd.kind === 'resource' ? 'resource' : 'complex';
  const byPath = new Map([[root, { kind, elements: [] }]]);
  const hasChildren = (p) => els.some((x) => x.path.startsWith(`${p}.`));
  for (const e of els.slice(1)) {
    if (e.sliceName) fail(`${e.id}: unexpected slice in a base definition`);
    const dot = e.path.lastIndexOf('.');
    const parent = byPath.get(e.path.slice(0, dot));
    if (!parent) fail(`${e.path}: parent not seen before`);
    const name = e.path.slice(dot + 1);
    let type;
    let bound = null;
    if (e.contentReference) {
      type = e.contentReference.replace(/^#/, '');
    } else {
      const codes = (e.type || []).map((t) => typeCode(e, t));
      if (codes.length === 0) fail(`${e.path}: no type`);
      if (
        codes.length === 1 &&
        (codes[0] === 'BackboneElement' || codes[0] === 'Element') &&
        hasChildren(e.path)
      ) {
        byPath.set(e.path, { kind: 'backbone', elements: [] });
        type = e.path;
      } else if (name.endsWith('[x]')) {
        type = codes;
      } else if (codes.length === 1) {
        type = codes[0];
      } else {
        fail(`${e.path}: several types on a non-choice element`);
      }
      bound = requiredBinding(e, codes);
    }
    const row = [name, type, e.min, e.max];
    const f = flags(e);
    if (f || bound) row.push(f);
    if (bound) row.push(bound);
    parent.elements.push(row);
  }
  for (const [p, t] of byPath) {
    if (types.has(p)) fail(`type ${p} defined twice`);
    types.set(p, t);
  }
}
for (const sd of wanted) addType(sd);

// Element: what a primitive's `_name` companion may hold (id and extension).
if (types.has('Element')) fail('Element is abstract and should not be generated');
{
  const el = sds.get('Element');
  if (!el) fail('no StructureDefinition-Element.json');
  const t = { kind: 'complex', elements: [] };
  for (const e of el.snapshot.element.slice(1)) {
    const row = [e.path.slice('Element.'.length), typeCode(e, e.type[0]), e.min, e.max];
    const f = flags(e);
    if (f) row.push(f);
    t.elements.push(row);
  }
  types.set('Element', t);
}

// Every referenced type must exist (Resource = any resource, by its resourceType).
for (const [name, t] of types) {
  for (const [el, ty] of t.elements) {
    for (const c of Array.isArray(ty) ? ty : [ty]) {
      if (!prims.has(c) && !types.has(c) && c !== 'Resource') fail(`${name}.${el}: unknown type ${c}`);
    }
  }
}

// ---- write -----------------------------------------------------------------------------------
// One primitive / type per line keeps the checked-in file diffable.
const byName = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const lines = [];
lines.push('{"version":"4.0.1",');
lines.push('"primitives":{');
const pn = Object.keys(primitives).sort(byName);
pn.forEach((n, i) =>
  lines.push(`${JSON.stringify(n)}:${JSON.stringify(primitives[n])}${i + 1 < pn.length ? ',' : ''}`),
);
lines.push('},');
lines.push('"types":{');
const tn = [...types.keys()].sort(byName);
tn.forEach((n, i) =>
  lines.push(`${JSON.stringify(n)}:${JSON.stringify(types.get(n))}${i + 1 < tn.length ? ',' : ''}`),
);
lines.push('},');
lines.push('"valuesets":{');
const vn = [...usedSets].sort(byName);
vn.forEach((u, i) =>
  lines.push(
    `${JSON.stringify(u)}:${JSON.stringify(expansions.get(u).codes)}${i + 1 < vn.length ? ',' : ''}`,
  ),
);
lines.push('},');
lines.push('"unexpanded":{');
const un = [...unexpanded.keys()].sort(byName);
un.forEach((u, i) =>
  lines.push(
    `${JSON.stringify(u)}:${JSON.stringify(unexpanded.get(u).reason)}${i + 1 < un.length ? ',' : ''}`,
  ),
);
lines.push('}}');
const text = `${lines.join('\n')}\n`;
JSON.parse(text);
fs.writeFileSync(out, text);
const counts = {};
for (const t of types.values()) counts[t.kind] = (counts[t.kind] || 0) + 1;
console.error(
  `gen_fhir_model: wrote ${out} (${text.length} bytes): ${pn.length} primitives, ` +
    Object.entries(counts)
      .map(([k, v]) => `${v} ${k}`)
      .join(', ') +
    `; required bindings: ${boundChecked} code elements checked against ${vn.length} value sets, ` +
    `${[...unexpanded.values()].reduce((n, x) => n + x.elements.length, 0)} left unchecked ` +
    `(${un.length} value sets not expandable from the package)`,
);
for (const u of un) {
  const x = unexpanded.get(u);
  console.error(`  unexpanded ${u}: ${x.reason} (${x.elements.join(', ')})`);
}
