// A deterministic mCSD data set for search tests: all seven types, names with accents and mixed
// case, identifiers (same value under different systems), types, statuses, 4+ level partOf
// hierarchies of Locations and of Organizations, services, practitioners, roles with periods,
// endpoints and affiliations with periods. Loaded through the API in two phases (phase B a
// second later: updates that rename and move resources, a POST, deletes), so that _lastUpdated
// and _history?_since have something to tell apart.
//
// loadDataset(S) → { store, log, phaseB, ids }
//   store: Map type → Map id → resource as sent plus the server's meta (the current state)
//   log:   every write {type, id, version, lastUpdated, method, phase}
//   ids:   logical name → server id (differs from the name only for POSTed resources)
import assert from 'node:assert/strict';

export const SYS = {
  org: 'https://mfl.example.org/org-id',
  fac: 'https://mfl.example.org/facility-id',
  loc: 'https://mfl.example.org/location-id',
  dhis: 'http://dhis2.example.org/uid',
  svc: 'https://mfl.example.org/service-id',
  lic: 'https://hr.example.org/licence',
  staff: 'https://hr.example.org/staff',
  role: 'https://hr.example.org/role-id',
  ep: 'https://mfl.example.org/endpoint-id',
  aff: 'https://mfl.example.org/affiliation-id',
  mcsdType: 'https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types',
  orgType: 'http://terminology.hl7.org/CodeSystem/organization-type',
  roleCode: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode',
  facType: 'https://mfl.example.org/facility-type',
  serviceType: 'http://terminology.hl7.org/CodeSystem/service-type',
  localService: 'https://mfl.example.org/service-type',
  prRole: 'http://terminology.hl7.org/CodeSystem/practitioner-role',
  cadre: 'https://hr.example.org/cadre',
  sct: 'http://snomed.info/sct',
  orgRole: 'http://hl7.org/fhir/organization-role',
  hier: 'https://profiles.ihe.net/ITI/mCSD/CodeSystem/mcsd-example-hierarchy',
  conn: 'http://terminology.hl7.org/CodeSystem/endpoint-connection-type',
};

const cc = (...codings) => ({ coding: codings.map(([system, code]) => (system ? { system, code } : { code })) });
const idf = (system, value) => (system ? { system, value } : { value });
const refTo = (type, id) => ({ reference: `${type}/${id}` });

const FAC = [SYS.mcsdType, 'facility'];
const JUR = [SYS.mcsdType, 'jurisdiction'];

function org(id, name, { alias, partOf, type, ident, active = true, extra } = {}) {
  const r = { resourceType: 'Organization', id };
  if (ident) r.identifier = ident;
  if (active !== null) r.active = active;
  if (type) r.type = type;
  if (name !== undefined) r.name = name;
  if (alias) r.alias = alias;
  if (partOf) r.partOf = refTo('Organization', partOf);
  return { ...r, ...(extra || {}) };
}

function loc(id, name, { alias, partOf, type, ident, status = 'active', org: mo, position, extra } = {}) {
  const r = { resourceType: 'Location', id };
  if (ident) r.identifier = ident;
  if (status !== null) r.status = status;
  if (name !== undefined) r.name = name;
  if (alias) r.alias = alias;
  r.mode = 'instance';
  if (type) r.type = type;
  if (position) r.position = { longitude: position[1], latitude: position[0] };
  if (mo) r.managingOrganization = refTo('Organization', mo);
  if (partOf) r.partOf = refTo('Location', partOf);
  return { ...r, ...(extra || {}) };
}

function endpoint(id, status, { org: mo, ident, conn = 'hl7-fhir-rest', name } = {}) {
  const r = { resourceType: 'Endpoint', id };
  if (ident) r.identifier = ident;
  r.status = status;
  r.connectionType = { system: SYS.conn, code: conn };
  if (name) r.name = name;
  if (mo) r.managingOrganization = refTo('Organization', mo);
  r.payloadType = [{ text: 'any' }];
  r.address = `https://${id}.example.org/fhir`;
  return r;
}

function service(id, name, { type, locations, providedBy, ident, active, specialty } = {}) {
  const r = { resourceType: 'HealthcareService', id };
  if (ident) r.identifier = ident;
  if (active !== undefined) r.active = active;
  if (providedBy) r.providedBy = refTo('Organization', providedBy);
  if (type) r.type = type;
  if (specialty) r.specialty = specialty;
  if (locations) r.location = locations.map((l) => refTo('Location', l));
  if (name !== undefined) r.name = name;
  return r;
}

function practitioner(id, names, { ident, active, gender } = {}) {
  const r = { resourceType: 'Practitioner', id };
  if (ident) r.identifier = ident;
  if (active !== undefined) r.active = active;
  r.name = names.map(([family, ...given]) => ({ family, given }));
  if (gender) r.gender = gender;
  return r;
}

function role(id, { practitioner: p, organization: o, locations, services, code, specialty, period, active, ident } = {}) {
  const r = { resourceType: 'PractitionerRole', id };
  if (ident) r.identifier = ident;
  if (active !== undefined) r.active = active;
  if (period) r.period = period;
  if (p) r.practitioner = refTo('Practitioner', p);
  if (o) r.organization = refTo('Organization', o);
  if (code) r.code = code;
  if (specialty) r.specialty = specialty;
  if (locations) r.location = locations.map((l) => refTo('Location', l));
  if (services) r.healthcareService = services.map((s) => refTo('HealthcareService', s));
  return r;
}

function affiliation(id, { organization: o, participating, code, period, active, ident, endpoints } = {}) {
  const r = { resourceType: 'OrganizationAffiliation', id };
  if (ident) r.identifier = ident;
  if (active !== undefined) r.active = active;
  if (period) r.period = period;
  if (o) r.organization = refTo('Organization', o);
  if (participating) r.participatingOrganization = refTo('Organization', participating);
  if (code) r.code = code;
  if (endpoints) r.endpoint = endpoints.map((e) => refTo('Endpoint', e));
  return r;
}

/** Phase A: every resource, in an order that respects references. */
export function phaseA() {
  return [
    // Organizations: MOH → regions → districts → facilities → unit (5 levels)
    org('o-moh', 'Ministère de la Santé Publique', { alias: ['MOH', 'Ministry of Health'], type: [cc(JUR), cc([SYS.orgType, 'govt'])], ident: [idf(SYS.org, 'MOH-001')] }),
    org('o-nord', 'Région du Nord', { partOf: 'o-moh', type: [cc(JUR)], ident: [idf(SYS.org, 'REG-N')] }),
    org('o-sud', 'Région du Sud', { partOf: 'o-moh', type: [cc(JUR)], ident: [idf(SYS.org, 'REG-S')] }),
    org('o-bombali', 'District de Bombali', { partOf: 'o-nord', type: [cc(JUR)], ident: [idf(SYS.org, 'DIS-BOM'), idf(SYS.dhis, 'dBombali01')] }),
    org('o-kambia', 'District de Kambia', { partOf: 'o-nord', type: [cc(JUR)], ident: [idf(SYS.org, 'DIS-KAM')], active: false }),
    org('o-bo', 'District de Bô', { partOf: 'o-sud', type: [cc(JUR)], ident: [idf(SYS.org, 'DIS-BO')] }),
    org('o-makeni', 'Makeni Government Hospital', { partOf: 'o-bombali', type: [cc(FAC, [SYS.orgType, 'prov'])], ident: [idf(SYS.fac, 'F001')] }),
    org('o-etienne', 'Clinique Saint-Étienne', { alias: ['St Etienne Clinic'], partOf: 'o-bombali', type: [cc(FAC), cc([SYS.orgType, 'prov'])], ident: [idf(SYS.fac, 'F002')] }),
    org('o-kambiahc', 'Kambia Health Centre', { partOf: 'o-kambia', type: [cc(FAC)], ident: [idf(SYS.fac, 'F003'), idf(SYS.org, 'F001')] }),
    org('o-bochild', "Bo Children's Hospital", { partOf: 'o-bo', type: [cc(FAC), cc([SYS.orgType, 'prov'])], ident: [idf(SYS.fac, 'F004')] }),
    org('o-mat', 'Makeni Maternity Unit', { partOf: 'o-makeni', type: [cc([SYS.orgType, 'team'])] }),
    org('o-ngo', 'MÉDECINS du Monde', { alias: ['MdM'], type: [cc([undefined, 'ngo'])], ident: [idf(SYS.org, 'NGO-7'), idf(undefined, 'NGO-LOCAL')] }),
    org('o-school', 'École Nationale de Santé', { type: [cc([SYS.orgType, 'edu'])], ident: [idf(SYS.org, 'EDU-1')], active: false }),
    org('o-notype', 'zeta laboratory', { active: null }),
    org('o-noname', undefined, { type: [cc([SYS.orgType, 'prov'])], ident: [idf(SYS.org, 'NONAME-1')] }),
    org('o-deleted', 'Deleted Dispensary', { partOf: 'o-bo', type: [cc(FAC)], ident: [idf(SYS.fac, 'F999')] }),
    org('o-renamed', 'Old Name Clinic', { partOf: 'o-nord', type: [cc(FAC)], ident: [idf(SYS.fac, 'F005')] }),
    // Endpoints
    endpoint('ep-moh-fhir', 'active', { org: 'o-moh', ident: [idf(SYS.ep, 'EP-1')] }),
    endpoint('ep-makeni-xca', 'suspended', { org: 'o-makeni', ident: [idf(SYS.ep, 'EP-2')], conn: 'ihe-xca' }),
    endpoint('ep-bo-dicom', 'off', { org: 'o-bochild', ident: [idf(SYS.ep, 'EP-3'), idf(SYS.dhis, 'epDicom3')], conn: 'dicom-wado-rs' }),
    endpoint('ep-nomgr', 'error', {}),
    endpoint('ep-test', 'test', { org: 'o-makeni', ident: [idf(SYS.ep, 'EP-5')] }),
    // Locations: country → provinces → districts → facilities → ward → room (6 levels)
    loc('l-country', 'Sierra Leone', { type: [cc(JUR)], org: 'o-moh', ident: [idf(SYS.loc, 'SL')] }),
    loc('l-north', 'Northern Province', { alias: ['Nord'], partOf: 'l-country', type: [cc(JUR)], org: 'o-nord', ident: [idf(SYS.loc, 'N')] }),
    loc('l-south', 'Southern Province', { partOf: 'l-country', type: [cc(JUR)], org: 'o-sud', ident: [idf(SYS.loc, 'S')] }),
    loc('l-bombali', 'Bombali District', { partOf: 'l-north', type: [cc(JUR)], org: 'o-bombali', ident: [idf(SYS.loc, 'BOM')] }),
    loc('l-kambia', 'Kambia District', { partOf: 'l-north', type: [cc(JUR)], org: 'o-kambia', ident: [idf(SYS.loc, 'KAM')], status: 'inactive' }),
    loc('l-bo', 'Bo District', { partOf: 'l-south', type: [cc(JUR)], org: 'o-bo', ident: [idf(SYS.loc, 'BO')] }),
    loc('l-makeni', 'Makeni Government Hospital', { partOf: 'l-bombali', type: [cc(FAC), cc([SYS.roleCode, 'HOSP'])], org: 'o-makeni', ident: [idf(SYS.loc, 'F001'), idf(SYS.dhis, 'mk001')], position: [8.8862, -12.0442] }),
    loc('l-etienne', 'Clinique Saint-Étienne', { alias: ['Saint Etienne'], partOf: 'l-bombali', type: [cc(FAC), cc([SYS.roleCode, 'PEDC'])], org: 'o-etienne', ident: [idf(SYS.loc, 'F002')], position: [8.9001, -12.0503] }),
    loc('l-kambiahc', 'Kambia Health Centre', { partOf: 'l-kambia', type: [cc(FAC), cc([SYS.facType, 'chc'])], org: 'o-kambiahc', ident: [idf(SYS.loc, 'F003')], position: [9.126, -12.918] }),
    loc('l-bochild', "Bo Children's Hospital", { partOf: 'l-bo', type: [cc(FAC, [SYS.roleCode, 'HOSP']), cc([SYS.roleCode, 'PEDC'])], org: 'o-bochild', ident: [idf(SYS.loc, 'F004')], status: 'suspended', position: [7.9645, -11.7383] }),
    loc('l-ward', 'Salle de Maternité', { partOf: 'l-makeni', type: [cc([SYS.roleCode, 'WARD'])], org: 'o-mat', ident: [idf(SYS.loc, 'F001-W1')] }),
    loc('l-room', 'Room 12', { partOf: 'l-ward', status: null }),
    loc('l-mobile', 'mobile CLINIC unit', { type: [cc([undefined, 'mobile'])], ident: [idf(undefined, 'MOB-1')], position: [8.4657, -13.2317] }),
    loc('l-deleted', 'Deleted Post', { partOf: 'l-bo', type: [cc(FAC)], ident: [idf(SYS.loc, 'F999')] }),
    loc('l-renamed', 'Old Post', { partOf: 'l-north', type: [cc(FAC)], ident: [idf(SYS.loc, 'F005')] }),
    // HealthcareServices
    service('hs-gp-makeni', 'General Practice Makeni', { type: [cc([SYS.serviceType, '124'])], locations: ['l-makeni'], providedBy: 'o-makeni', ident: [idf(SYS.svc, 'S1')], active: true }),
    service('hs-immun-makeni', 'Immunisation', { type: [cc([SYS.serviceType, '57'], [SYS.localService, 'imm'])], locations: ['l-makeni', 'l-ward'], providedBy: 'o-makeni', ident: [idf(SYS.svc, 'S2')], active: true, specialty: [cc([SYS.sct, '394537008'])] }),
    service('hs-immun-bo', 'Immunization Bô', { type: [cc([SYS.serviceType, '57'])], locations: ['l-bochild'], providedBy: 'o-bochild', ident: [idf(SYS.svc, 'S3')], active: false }),
    service('hs-paeds', 'Pédiatrie', { type: [cc([SYS.serviceType, '186'])], locations: ['l-etienne'], providedBy: 'o-etienne', ident: [idf(SYS.svc, 'S4')], active: true }),
    service('hs-mobile', 'Outreach Vaccination', { type: [cc([SYS.localService, '57'])], locations: ['l-mobile'], active: true }),
    service('hs-notype', 'ANC clinic', { providedBy: 'o-kambiahc', ident: [idf(SYS.svc, 'S6')] }),
    // Practitioners
    practitioner('p-fatmata', [['Sesay', 'Fatmata', 'Binta']], { ident: [idf(SYS.lic, 'N-1001')], active: true, gender: 'female' }),
    practitioner('p-jose', [['Álvarez', 'José']], { ident: [idf(SYS.lic, 'D-2002')], active: true, gender: 'male' }),
    practitioner('p-mary', [["O'Brien", 'Mary'], ['Kamara', 'Mary', 'Ann']], { ident: [idf(SYS.lic, 'N-1003'), idf(SYS.staff, '77')], active: false, gender: 'female' }),
    practitioner('p-ibrahim', [['Kamara', 'Ibrahim']], { ident: [idf(SYS.staff, '78')], active: true, gender: 'male' }),
    practitioner('p-zoe', [['Zoë-Müller', 'Zoé']], {}),
    practitioner('p-abu', [['KOROMA', 'ABU']], { ident: [idf(SYS.lic, 'D-2005')], active: true, gender: 'male' }),
    practitioner('p-deleted', [['Gone', 'Person']], { ident: [idf(SYS.lic, 'X-9999')], active: true }),
    // PractitionerRoles
    role('pr-1', { practitioner: 'p-fatmata', organization: 'o-makeni', locations: ['l-makeni', 'l-ward'], services: ['hs-immun-makeni'], code: [cc([SYS.prRole, 'nurse'])], specialty: [cc([SYS.sct, '394802001'])], period: { start: '2019-03-01', end: '2022-02-28' }, active: true, ident: [idf(SYS.role, 'R1')] }),
    role('pr-2', { practitioner: 'p-fatmata', organization: 'o-bochild', locations: ['l-bochild'], services: ['hs-immun-bo'], code: [cc([SYS.prRole, 'nurse'], [SYS.cadre, 'midwife'])], specialty: [cc([SYS.sct, '394537008'])], period: { start: '2022-03-01T00:00:00Z' }, active: true, ident: [idf(SYS.role, 'R2')] }),
    role('pr-3', { practitioner: 'p-jose', organization: 'o-etienne', locations: ['l-etienne'], services: ['hs-paeds'], code: [cc([SYS.prRole, 'doctor'])], specialty: [cc([SYS.sct, '394537008']), cc([SYS.sct, '394802001'])], period: { start: '2015-01-01', end: '2018-12-31' }, active: false, ident: [idf(SYS.role, 'R3')] }),
    role('pr-4', { practitioner: 'p-mary', organization: 'o-kambiahc', locations: ['l-kambiahc'], code: [cc([SYS.cadre, 'nurse'])], period: { end: '2016-06-30' }, active: true }),
    role('pr-5', { practitioner: 'p-ibrahim', organization: 'o-makeni', locations: ['l-makeni'], services: ['hs-gp-makeni'], code: [cc([undefined, 'cho'])] }),
    role('pr-6', { practitioner: 'p-abu', code: [cc([SYS.prRole, 'pharmacist'])], period: { start: '2021-06-15T08:00:00Z', end: '2021-06-15T17:00:00Z' }, active: true }),
    role('pr-7', { organization: 'o-moh', code: [cc([SYS.prRole, 'doctor'])], period: { start: '2020', end: '2020' }, active: true }),
    // OrganizationAffiliations
    affiliation('oa-1', { organization: 'o-moh', participating: 'o-ngo', code: [cc([SYS.orgRole, 'provider'])], period: { start: '2020-01-01', end: '2025-12-31' }, active: true, ident: [idf(SYS.aff, 'A1')], endpoints: ['ep-moh-fhir'] }),
    affiliation('oa-2', { organization: 'o-nord', participating: 'o-etienne', code: [cc([SYS.hier, 'supply'])], period: { start: '2023-07-01' }, active: true, ident: [idf(SYS.aff, 'A2')] }),
    affiliation('oa-3', { organization: 'o-nord', participating: 'o-makeni', code: [cc([SYS.hier, 'admin'], [SYS.orgRole, 'member'])], period: { start: '2010-01-01', end: '2012-12-31' }, active: false, ident: [idf(SYS.aff, 'A3')], endpoints: ['ep-makeni-xca'] }),
    affiliation('oa-4', { organization: 'o-school', participating: 'o-bochild', code: [cc([SYS.orgRole, 'research'])], active: true }),
    affiliation('oa-5', { organization: 'o-moh', participating: 'o-school', code: [cc([undefined, 'partner'])], period: { end: '2030-01-01T00:00:00Z' }, active: true, ident: [idf(SYS.aff, 'A5')] }),
  ];
}

/** Phase B operations, given the current store (for updates). */
export function phaseB(store) {
  const cur = (t, id) => {
    const r = structuredClone(store.get(t).get(id));
    delete r.meta;
    return r;
  };
  const ops = [];
  ops.push({ method: 'PUT', resource: { ...cur('Organization', 'o-renamed'), name: 'Kabala Clinic', partOf: refTo('Organization', 'o-kambia') } });
  ops.push({ method: 'PUT', resource: { ...cur('Location', 'l-renamed'), name: 'Kabala Health Post', partOf: refTo('Location', 'l-kambia') } });
  ops.push({ method: 'PUT', resource: { ...cur('Organization', 'o-moh'), endpoint: [refTo('Endpoint', 'ep-moh-fhir')] } });
  ops.push({ method: 'PUT', resource: { ...cur('Organization', 'o-makeni'), endpoint: [refTo('Endpoint', 'ep-makeni-xca'), refTo('Endpoint', 'ep-test')] } });
  ops.push({ method: 'PUT', resource: { ...cur('Organization', 'o-bochild'), endpoint: [refTo('Endpoint', 'ep-bo-dicom')] } });
  ops.push({ method: 'PUT', resource: { ...cur('Location', 'l-makeni'), endpoint: [refTo('Endpoint', 'ep-makeni-xca')] } });
  ops.push({ method: 'PUT', resource: { ...cur('HealthcareService', 'hs-paeds'), name: 'Pédiatrie générale' } });
  ops.push({ method: 'PUT', resource: { ...cur('PractitionerRole', 'pr-1'), availabilityExceptions: 'Closed on public holidays' } });
  ops.push({ method: 'PUT', resource: { ...cur('Endpoint', 'ep-test'), name: 'Test endpoint' } });
  ops.push({ method: 'PUT', resource: { ...cur('Practitioner', 'p-abu'), telecom: [{ system: 'phone', value: '+232 76 000000' }] } });
  ops.push({
    method: 'POST',
    name: 'oa-6',
    resource: affiliation(undefined, { organization: 'o-sud', participating: 'o-bochild', code: [cc([SYS.hier, 'supply'])], period: { start: '2024-02-29', end: '2024-02-29' }, active: true, ident: [idf(SYS.aff, 'A6')], endpoints: ['ep-bo-dicom'] }),
  });
  ops.push({ method: 'DELETE', type: 'Organization', id: 'o-deleted' });
  ops.push({ method: 'DELETE', type: 'Location', id: 'l-deleted' });
  ops.push({ method: 'DELETE', type: 'Practitioner', id: 'p-deleted' });
  return ops;
}

/** The content of a resource without server-owned meta. */
export function content(res) {
  const r = structuredClone(res);
  delete r.meta;
  return r;
}

/** Load both phases through the API. */
export async function loadDataset(S) {
  const store = new Map();
  const log = [];
  const ids = {};
  const put = async (res, phase) => {
    const r = await S.req('PUT', `/fhir/${res.resourceType}/${res.id}`, { body: res, as: 'editor' });
    assert.ok(r.status === 201 || r.status === 200, `PUT ${res.resourceType}/${res.id}: ${r.status} ${r.text.slice(0, 600)}`);
    assert.deepEqual(content(r.json), content(res), `PUT ${res.resourceType}/${res.id} returned other content`);
    const stored = { ...structuredClone(res), meta: { versionId: r.json.meta.versionId, lastUpdated: r.json.meta.lastUpdated } };
    if (!store.has(res.resourceType)) store.set(res.resourceType, new Map());
    store.get(res.resourceType).set(res.id, stored);
    log.push({ type: res.resourceType, id: res.id, version: r.json.meta.versionId, lastUpdated: r.json.meta.lastUpdated, method: 'PUT', phase });
    ids[res.id] = res.id;
  };
  for (const t of ['Organization', 'Location', 'HealthcareService', 'Practitioner', 'PractitionerRole', 'Endpoint', 'OrganizationAffiliation']) store.set(t, new Map());
  for (const res of phaseA()) await put(res, 'A');
  // phase B starts in a later second than the last phase A write
  const lastA = Math.max(...log.map((w) => Date.parse(w.lastUpdated)));
  const startB = Math.floor(lastA / 1000) * 1000 + 1150;
  await new Promise((res) => setTimeout(res, Math.max(0, startB - Date.now())));
  for (const op of phaseB(store)) {
    if (op.method === 'PUT') await put(op.resource, 'B');
    else if (op.method === 'POST') {
      const r = await S.req('POST', `/fhir/${op.resource.resourceType}`, { body: op.resource, as: 'editor' });
      assert.equal(r.status, 201, `POST ${op.resource.resourceType}: ${r.text.slice(0, 600)}`);
      const id = r.json.id;
      const res = { ...structuredClone(op.resource), id, meta: { versionId: r.json.meta.versionId, lastUpdated: r.json.meta.lastUpdated } };
      store.get(res.resourceType).set(id, res);
      log.push({ type: res.resourceType, id, version: r.json.meta.versionId, lastUpdated: r.json.meta.lastUpdated, method: 'POST', phase: 'B' });
      ids[op.name] = id;
    } else {
      const r = await S.req('DELETE', `/fhir/${op.type}/${op.id}`, { as: 'admin' });
      assert.ok(r.status === 200 || r.status === 204, `DELETE ${op.type}/${op.id}: ${r.status} ${r.text.slice(0, 600)}`);
      store.get(op.type).delete(op.id);
      log.push({ type: op.type, id: op.id, method: 'DELETE', phase: 'B' });
    }
  }
  return { store, log, ids };
}
