// bench/run sync: the health-worker data set, as FHIR NDJSON on stdout. N Practitioners and N
// PractitionerRoles (one posting each), deterministic (a seeded generator), ~1 KB each as an HR
// system sends them: national id and licence identifiers, names in several scripts, contacts,
// a qualification with issuer and period, a posting with code, specialty and period.
const n = Number(process.argv[2] || 100000);
let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const pick = (a) => a[Math.floor(rnd() * a.length)];
const given = ['Aminata', 'Mohamed', 'Fatmata', 'Ibrahim', 'Mariama', 'José', 'Ngozi', 'Nguyễn', 'Jean-Luc', 'Zainab', 'Дмитрий', 'محمد', '张伟', 'አበበ'];
const family = ['Kamara', 'Sesay', 'Conteh', 'Bangura', 'Koroma', "O'Brien", 'N’Diaye', 'Okonjo-Iweala', 'Ñúñez', 'Turay', 'Jalloh', 'Mansaray'];
const cadres = [['MD', 'Medical doctor'], ['RN', 'Registered nurse'], ['MW', 'Midwife'], ['CHO', 'Community health officer'], ['PH', 'Pharmacist'], ['LT', 'Laboratory technician']];
const specialties = [['394802001', 'General medicine'], ['394585009', 'Obstetrics and gynaecology'], ['394537008', 'Paediatrics'], ['394814009', 'General practice']];
const out = [];
const flush = () => { process.stdout.write(out.join('')); out.length = 0; };
for (let i = 1; i <= n; i++) {
  const id = `hw${String(i).padStart(7, '0')}`;
  const g = pick(given), f = pick(family);
  const year = 1960 + Math.floor(rnd() * 40);
  out.push(JSON.stringify({
    resourceType: 'Practitioner', id, active: true,
    identifier: [
      { use: 'official', system: 'https://nin.example.gov.sl/id', value: `NIN-${String(i * 7919 % 10000000).padStart(8, '0')}` },
      { use: 'official', system: 'https://mdc.example.gov.sl/licence', value: `MDC/${year}/${i}`, period: { start: `${year + 25}-01-01` } }],
    name: [{ use: 'official', text: `${g} ${f}`, family: f, given: [g] }],
    telecom: [{ system: 'phone', value: `+232 76 ${String(i).padStart(6, '0')}`, use: 'mobile' }, { system: 'email', value: `${id}@moh.example.gov.sl`, use: 'work' }],
    address: [{ use: 'home', line: [`${1 + (i % 200)} Main Road`], city: pick(['Freetown', 'Bo', 'Kenema', 'Makeni']), country: 'SL' }],
    gender: pick(['female', 'male']), birthDate: `${year}-${String(1 + (i % 12)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')}`,
    qualification: [{ identifier: [{ system: 'https://mdc.example.gov.sl/qualification', value: `Q${i}` }], code: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0360', code: 'MD', display: 'Doctor of Medicine' }] }, period: { start: `${year + 24}-07-01` }, issuer: { display: 'University of Sierra Leone' } }],
    communication: [{ coding: [{ system: 'urn:ietf:bcp:47', code: 'en' }] }],
  }) + '\n');
  if (i % 5000 === 0) flush();
}
for (let i = 1; i <= n; i++) {
  const id = `hw${String(i).padStart(7, '0')}`;
  const [code, display] = pick(cadres);
  const [sc, sd] = pick(specialties);
  out.push(JSON.stringify({
    resourceType: 'PractitionerRole', id: `${id}-posting`, active: true,
    identifier: [{ system: 'https://hris.example.gov.sl/posting', value: `P-${i}` }],
    period: { start: `${2000 + (i % 25)}-01-01` },
    practitioner: { reference: `Practitioner/${id}` },
    code: [{ coding: [{ system: 'https://hris.example.gov.sl/CodeSystem/cadre', code, display }], text: display }],
    specialty: [{ coding: [{ system: 'http://snomed.info/sct', code: sc, display: sd }] }],
    telecom: [{ system: 'phone', value: `+232 22 ${String(i % 1000000).padStart(6, '0')}`, use: 'work' }],
    availableTime: [{ daysOfWeek: ['mon', 'tue', 'wed', 'thu', 'fri'], availableStartTime: '08:00:00', availableEndTime: '16:30:00' }],
  }) + '\n');
  if (i % 5000 === 0) flush();
}
flush();
