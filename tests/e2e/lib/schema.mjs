// Validation of response bodies against the official FHIR R4 JSON schema
// (${MAHALI_SOURCE_DIR}/../shared/conformance/fhir.schema.json, draft-06, 3.8 MB).
// The schema is loaded and compiled once per process; one validator per resource type is
// compiled lazily from it (the schema's root is a oneOf over every resource type keyed by
// resourceType, so validating against #/definitions/<resourceType> is the same check with
// readable errors). When the file is absent, checks are skipped with one logged reason.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.MAHALI_SOURCE_DIR || path.resolve(HERE, '../../..');
export const SCHEMA_PATH = path.join(SOURCE_DIR, '..', 'shared', 'conformance', 'fhir.schema.json');
const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';

let state = null; // { ajv, types:Set, validators:Map } | { skip: reason }

function load() {
  if (state) return state;
  if (!existsSync(SCHEMA_PATH)) {
    state = { skip: `FHIR JSON schema not found at ${SCHEMA_PATH}: schema checks skipped` };
    console.log(`# schema: ${state.skip}`);
    return state;
  }
  let Ajv;
  try {
    Ajv = require('ajv').default;
  } catch {
    throw new Error('the npm package ajv is not installed: run `npm ci --prefix tests`');
  }
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8'));
  // draft-06 names its identifier `$id`; the FHIR file uses the draft-04 `id`.
  delete schema.id;
  schema.$id = SCHEMA_ID;
  const ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false });
  ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json'));
  ajv.addSchema(schema);
  state = { ajv, types: new Set(Object.keys(schema.discriminator.mapping)), validators: new Map() };
  return state;
}

/** Why schema checks are skipped, or null when they run. */
export function schemaSkipReason() {
  return load().skip || null;
}

/** Schema errors of a parsed FHIR resource as readable strings ([] when valid or skipped). */
export function schemaErrors(body) {
  const s = load();
  if (s.skip) return [];
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return ['body is not a JSON object'];
  const rt = body.resourceType;
  if (typeof rt !== 'string' || !s.types.has(rt))
    return [`resourceType ${JSON.stringify(rt)} is not a FHIR R4 resource type`];
  let v = s.validators.get(rt);
  if (!v) {
    v = s.ajv.getSchema(`${SCHEMA_ID}#/definitions/${rt}`);
    s.validators.set(rt, v);
  }
  if (v(body)) return [];
  return (v.errors || []).slice(0, 20).map((e) => {
    const extra = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : '';
    return `${rt}${e.instancePath || ''}: ${e.message}${extra}`;
  });
}

/** Throws an Error listing the schema errors of body (what tests call on every JSON body). */
export function assertSchemaValid(body, what = 'response body') {
  const errs = schemaErrors(body);
  if (errs.length) {
    const err = new Error(`${what} fails the FHIR R4 JSON schema:\n  ${errs.join('\n  ')}`);
    err.code = 'ERR_FHIR_SCHEMA';
    throw err;
  }
}
