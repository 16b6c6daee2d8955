// The spatial benchmark's data set (deterministic: the same seed gives the same resources, query
// variants and expected answers):
//   - 200 catchment areas: mCSD Locations (type `catchment`, physicalType `area`) whose boundary
//     (location-boundary-geojson) is one cell of a 20 x 10 grid over a Sierra-Leone-sized box
//     (lat 6.9..10.0, lon -13.3..-10.3). The grid's inner corners are jittered and every inner
//     edge is a wiggly line shared by the two cells beside it, so the 200 polygons (16-37
//     vertices each with this seed) tile the box exactly, without overlaps or gaps;
//   - N facilities (default 100,000): mCSD Facility Location + Organization pairs as in the
//     search benchmark (bench/search/dataset.mjs), each with a position (6 decimals): 70 %
//     clustered around 20 towns (real Sierra Leone towns, denser around the big ones), 30 %
//     spread uniformly over the box.
// Query variants: `near` (the 10 nearest facilities of a point) and `contains` (the catchment
// covering a point), 200 each, points 75 % near towns, 25 % uniform over the box; plus the raw
// SQL of each variant for pgbench.
import {
  CODES,
  FACILITY_SYSTEM,
  KINDS,
  MCSD_SD,
  MCSD_TYPES,
  ORG_TYPE,
  PHYS,
  ROLE_CODES,
  SERVICES,
  facilityIdentifier,
  facilityOrganization,
  pad,
  rng,
  round6,
  word,
} from '../search/dataset.mjs';

export const BOUNDARY_URL = 'http://hl7.org/fhir/StructureDefinition/location-boundary-geojson';
export const LOCATION_KIND = 'https://mahali.example/CodeSystem/location-kind';
export const CATCHMENT_SYSTEM = 'https://bench.mahali.example/catchment';
export const BOX = { minLon: -13.3, maxLon: -10.3, minLat: 6.9, maxLat: 10.0 };
export const GRID = { cols: 20, rows: 10 }; // 200 catchments

// 20 towns: [name, lat, lon, weight (share of the clustered facilities), spread (sigma, degrees)]
const TOWNS = [
  ['Freetown', 8.484, -13.234, 14, 0.05],
  ['Bo', 7.964, -11.738, 8, 0.07],
  ['Kenema', 7.877, -11.19, 7, 0.07],
  ['Makeni', 8.886, -12.044, 7, 0.07],
  ['Koidu', 8.644, -10.971, 6, 0.07],
  ['Waterloo', 8.339, -13.071, 5, 0.04],
  ['Port Loko', 8.766, -12.787, 4, 0.08],
  ['Lunsar', 8.684, -12.535, 4, 0.06],
  ['Kabala', 9.589, -11.553, 4, 0.1],
  ['Kailahun', 8.279, -10.573, 4, 0.08],
  ['Moyamba', 8.16, -12.433, 4, 0.09],
  ['Magburaka', 8.723, -11.949, 4, 0.06],
  ['Kambia', 9.125, -12.918, 4, 0.08],
  ['Segbwema', 7.995, -10.95, 3, 0.06],
  ['Pujehun', 7.351, -11.72, 3, 0.1],
  ['Mattru Jong', 7.616, -12.181, 3, 0.08],
  ['Bonthe', 7.526, -12.505, 2, 0.06],
  ['Mile 91', 8.46, -12.21, 3, 0.06],
  ['Kamakwie', 9.497, -12.241, 3, 0.09],
  ['Daru', 7.99, -10.842, 3, 0.05],
];
const CLUSTERED = 0.7; // share of facilities around towns
const NEAR_TOWN = 0.75; // share of query points around towns

const fix6 = (x) => x.toFixed(6);
const inBox = (lon, lat) => lon > BOX.minLon && lon < BOX.maxLon && lat > BOX.minLat && lat < BOX.maxLat;

function gauss(r) {
  // Box-Muller; 1 - r() keeps the logarithm finite
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** A point (6 decimals, strictly inside the box): around a town (by weight) or uniform. */
function point(r, nearTown, towns) {
  for (;;) {
    let lon;
    let lat;
    let town = null;
    if (r() < nearTown) {
      let w = r() * towns.total;
      town = towns.list.find((t) => (w -= t[3]) < 0) || towns.list[towns.list.length - 1];
      lat = town[1] + gauss(r) * town[4];
      lon = town[2] + gauss(r) * town[4];
    } else {
      lon = BOX.minLon + r() * (BOX.maxLon - BOX.minLon);
      lat = BOX.minLat + r() * (BOX.maxLat - BOX.minLat);
    }
    lon = round6(lon);
    lat = round6(lat);
    if (inBox(lon, lat)) return { lon, lat, town };
  }
}

// ---- the catchment grid -----------------------------------------------------------------------

/** Do segments p1p2 and p3p4 intersect (touching included)? */
function segmentsMeet(p1, p2, p3, p4) {
  const d = (a, b, c) => (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
  const on = (a, b, c) =>
    Math.min(a[0], b[0]) <= c[0] && c[0] <= Math.max(a[0], b[0]) && Math.min(a[1], b[1]) <= c[1] && c[1] <= Math.max(a[1], b[1]);
  const d1 = d(p3, p4, p1);
  const d2 = d(p3, p4, p2);
  const d3 = d(p1, p2, p3);
  const d4 = d(p1, p2, p4);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return true;
  return (d1 === 0 && on(p3, p4, p1)) || (d2 === 0 && on(p3, p4, p2)) || (d3 === 0 && on(p1, p2, p3)) || (d4 === 0 && on(p1, p2, p4));
}

/** Throws unless the closed ring is simple (no two non-adjacent edges meet). */
function assertSimple(ring, what) {
  const n = ring.length - 1;
  for (let i = 0; i < n; i++)
    for (let j = i + 2; j < n; j++) {
      if (i === 0 && j === n - 1) continue; // adjacent through the closing vertex
      if (segmentsMeet(ring[i], ring[i + 1], ring[j], ring[j + 1]))
        throw new Error(`${what}: the generated boundary is not simple (edges ${i} and ${j})`);
    }
}

/** Signed shoelace area (positive: counter-clockwise), square degrees. */
function signedArea(ring) {
  let s = 0;
  for (let i = 0; i + 1 < ring.length; i++) s += ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1];
  return s / 2;
}

/** Even-odd point in polygon, and whether the point lies within eps degrees of an edge. */
export function pointInRing(ring, lon, lat, eps = 1e-7) {
  let inside = false;
  let near = false;
  for (let i = 0, j = ring.length - 2; i < ring.length - 1; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if (yi > lat !== yj > lat && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
    // distance from the point to the edge
    const dx = xj - xi;
    const dy = yj - yi;
    const t = Math.max(0, Math.min(1, ((lon - xi) * dx + (lat - yi) * dy) / (dx * dx + dy * dy || 1)));
    if (Math.hypot(lon - (xi + t * dx), lat - (yi + t * dy)) < eps) near = true;
  }
  return { inside, near };
}

/**
 * The 20 x 10 cells: [{ key, col, row, ring: [[lon, lat], ...] (closed, counter-clockwise),
 * bbox }]. Lattice corners inside the box move by up to ±0.03° (corners on the box's edges only
 * along it); each edge gets 2-9 points in between, pushed sideways by up to 8 % of its length
 * (tapered to 0 at its ends; edges on the box's outline stay straight), so the cells are
 * irregular but every shared edge is the same line for both cells.
 */
function catchmentGrid(r) {
  const { cols, rows } = GRID;
  const dx = (BOX.maxLon - BOX.minLon) / cols;
  const dy = (BOX.maxLat - BOX.minLat) / rows;
  const J = 0.03;
  const V = [];
  for (let i = 0; i <= cols; i++) {
    V.push([]);
    for (let j = 0; j <= rows; j++) {
      let x = BOX.minLon + i * dx;
      let y = BOX.minLat + j * dy;
      const edgeX = i === 0 || i === cols;
      const edgeY = j === 0 || j === rows;
      if (!edgeX) x += (2 * r() - 1) * J;
      if (!edgeY) y += (2 * r() - 1) * J;
      if (i === cols) x = BOX.maxLon; // exact box edges (no drift from i * dx)
      if (j === rows) y = BOX.maxLat;
      V[i].push([round6(x), round6(y)]);
    }
  }
  // the points strictly between two lattice corners a and b (from a to b)
  const edgeCache = new Map();
  const edge = (ia, ja, ib, jb) => {
    const key = `${ia},${ja}-${ib},${jb}`;
    if (edgeCache.has(key)) return edgeCache.get(key);
    const rev = `${ib},${jb}-${ia},${ja}`;
    if (edgeCache.has(rev)) return [...edgeCache.get(rev)].reverse();
    const a = V[ia][ja];
    const b = V[ib][jb];
    const outline = (ia === ib && (ia === 0 || ia === cols)) || (ja === jb && (ja === 0 || ja === rows));
    const m = 2 + r.int(8);
    const len = Math.hypot(b[0] - a[0], b[1] - a[1]);
    const nx = -(b[1] - a[1]) / len;
    const ny = (b[0] - a[0]) / len;
    const pts = [];
    for (let k = 1; k <= m; k++) {
      const tt = (k + (r() - 0.5) * 0.8) / (m + 1); // the k-th of m, jittered, still increasing
      const off = outline ? 0 : (2 * r() - 1) * 0.08 * len * Math.sin(Math.PI * tt);
      let x = a[0] + tt * (b[0] - a[0]) + off * nx;
      let y = a[1] + tt * (b[1] - a[1]) + off * ny;
      if (outline && ia === ib) x = a[0];
      if (outline && ja === jb) y = a[1];
      pts.push([round6(x), round6(y)]);
    }
    edgeCache.set(key, pts);
    return pts;
  };
  const cells = [];
  for (let j = 0; j < rows; j++)
    for (let i = 0; i < cols; i++) {
      // counter-clockwise: bottom (left to right), right (up), top (right to left), left (down)
      const ring = [
        V[i][j],
        ...edge(i, j, i + 1, j),
        V[i + 1][j],
        ...edge(i + 1, j, i + 1, j + 1),
        V[i + 1][j + 1],
        ...edge(i + 1, j + 1, i, j + 1),
        V[i][j + 1],
        ...edge(i, j + 1, i, j),
        V[i][j],
      ];
      const key = `c${pad(j * cols + i + 1, 3)}`;
      assertSimple(ring, key);
      if (!(signedArea(ring) > 0)) throw new Error(`${key}: the generated boundary is not counter-clockwise`);
      const xs = ring.map((p) => p[0]);
      const ys = ring.map((p) => p[1]);
      cells.push({ key, col: i, row: j, ring, bbox: [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)] });
    }
  // the cells tile the box: their areas add up to it
  const total = cells.reduce((s, c) => s + signedArea(c.ring), 0);
  const box = (BOX.maxLon - BOX.minLon) * (BOX.maxLat - BOX.minLat);
  if (Math.abs(total - box) > 1e-9) throw new Error(`the catchments cover ${total} square degrees, the box ${box}`);
  return cells;
}

/** The catchment(s) whose boundary covers the point, and whether it is too close to an edge. */
export function catchmentsAt(cells, lon, lat) {
  const ids = [];
  let near = false;
  for (const c of cells) {
    if (lon < c.bbox[0] - 1e-6 || lon > c.bbox[2] + 1e-6 || lat < c.bbox[1] - 1e-6 || lat > c.bbox[3] + 1e-6) continue;
    const p = pointInRing(c.ring, lon, lat);
    if (p.near) near = true;
    if (p.inside) ids.push(c.locId);
  }
  return { ids, near };
}

// ---- the data set -----------------------------------------------------------------------------

export function generate({ facilities = 100000, seed = 20261121 } = {}) {
  const r = rng(seed);
  const towns = { list: TOWNS, total: TOWNS.reduce((s, t) => s + t[3], 0) };

  const cells = catchmentGrid(r);
  const usedNames = new Set();
  const catchments = cells.map((c, k) => {
    let name;
    do name = word(r, 2, 3);
    while (usedNames.has(name));
    usedNames.add(name);
    c.locId = `loc-${c.key}`;
    c.name = `${name} Catchment Area`;
    const geometry = { type: 'Polygon', coordinates: [c.ring] };
    const loc = {
      resourceType: 'Location',
      id: c.locId,
      meta: { profile: [MCSD_SD + 'IHE.mCSD.Location'] },
      identifier: [{ system: CATCHMENT_SYSTEM, value: c.key.toUpperCase() }],
      status: 'active',
      name: c.name,
      description: `Catchment area ${k + 1} of ${cells.length} (grid column ${c.col + 1}, row ${c.row + 1}).`,
      mode: 'instance',
      type: [{ coding: [{ system: LOCATION_KIND, code: 'catchment', display: 'Catchment area' }] }],
      physicalType: { coding: [{ system: PHYS, code: 'area', display: 'Area' }] },
      extension: [
        {
          url: BOUNDARY_URL,
          valueAttachment: {
            contentType: 'application/geo+json',
            data: Buffer.from(JSON.stringify(geometry)).toString('base64'),
          },
        },
      ],
    };
    c.vertices = c.ring.length - 1;
    return { loc };
  });

  const facs = [];
  const facMeta = [];
  for (let i = 1; i <= facilities; i++) {
    const p = point(r, CLUSTERED, towns);
    const code = CODES[r.int(4)];
    const kind = KINDS[code];
    const [suffix, abbr] = r.pick(kind.names);
    const place = p.town ? p.town[0] : word(r, 2, 3);
    const name = `${place} ${suffix}`;
    const alias = `${place} ${abbr}`;
    const x = r();
    const status = x < 0.9 ? 'active' : x < 0.97 ? 'inactive' : 'suspended';
    const ident = facilityIdentifier(i);
    const locId = `loc-f${pad(i, 7)}`;
    const orgId = `org-f${pad(i, 7)}`;
    const phone = `+232 7${r.int(10)} ${pad(r.int(1000000), 6)}`;
    const email = `${place.toLowerCase().replace(/ /g, '')}.${abbr.toLowerCase()}${i}@health.bench.example`;
    const services = [];
    while (services.length < 3) {
      const s = r.pick(SERVICES);
      if (!services.includes(s)) services.push(s);
    }
    const address = {
      use: 'work',
      type: 'physical',
      line: [`${1 + r.int(200)} ${word(r, 2, 3)} Road`],
      city: place,
      country: 'SL',
    };
    const org = facilityOrganization({ id: orgId, ident, status, name, alias, phone, address });
    const loc = {
      resourceType: 'Location',
      id: locId,
      meta: { profile: [MCSD_SD + 'IHE.mCSD.FacilityLocation'] },
      identifier: [{ system: FACILITY_SYSTEM, value: ident }],
      status,
      name,
      alias: [alias],
      description: `${kind.display} in ${place}. Services: ${services.join(', ')}.`,
      type: [
        { coding: [{ system: MCSD_TYPES, code: 'facility', display: 'Facility' }] },
        { coding: [{ system: ROLE_CODES, code, display: kind.display }] },
      ],
      telecom: [
        { system: 'phone', value: phone },
        { system: 'email', value: email },
      ],
      address,
      physicalType: { coding: [{ system: PHYS, code: 'bu' }] },
      position: { longitude: p.lon, latitude: p.lat },
      managingOrganization: { reference: `Organization/${orgId}` },
    };
    facs.push({ org, loc });
    facMeta.push({ i, locId, lon: p.lon, lat: p.lat, town: p.town ? p.town[0] : null });
  }
  return {
    // what load.mjs writes, level after level; an item is written in order by one worker
    levels: [catchments.map((c) => [c.loc]), facs.map((f) => [f.org, f.loc])],
    cells,
    catchments,
    facilities: facMeta,
    facilityPairs: facs,
    towns: TOWNS.length,
    clustered: facMeta.filter((f) => f.town).length,
  };
}

// ---- query variants and their raw SQL ----------------------------------------------------------

/**
 * 200 variants per scenario: { query, lat, lon } (+ for contains, the catchment expected from
 * the generator's polygons). Points 75 % around towns, 25 % uniform; contains points are at
 * least 1e-7° from every edge, so exactly one catchment covers each.
 */
export function variants(ds, { perScenario = 200, seed = 11 } = {}) {
  const r = rng(seed);
  const towns = { list: TOWNS, total: TOWNS.reduce((s, t) => s + t[3], 0) };
  const enc = encodeURIComponent;
  const sc = { near: [], contains: [] };
  while (sc.near.length < perScenario) {
    const p = point(r, NEAR_TOWN, towns);
    sc.near.push({ query: `near=${enc(`${fix6(p.lat)}|${fix6(p.lon)}`)}&_count=10`, lat: p.lat, lon: p.lon });
  }
  while (sc.contains.length < perScenario) {
    const p = point(r, NEAR_TOWN, towns);
    const at = catchmentsAt(ds.cells, p.lon, p.lat);
    if (at.near || at.ids.length !== 1) continue; // on (or within 1e-7° of) a shared edge
    sc.contains.push({ query: `contains=${enc(`${fix6(p.lat)}|${fix6(p.lon)}`)}`, lat: p.lat, lon: p.lon, expect: at.ids });
  }
  return sc;
}

/** The bare SQL of a variant (values inlined), what pgbench runs against the HTTP request. */
export function rawSql(scenario, v) {
  const pt = `ST_SetSRID(ST_MakePoint(${fix6(v.lon)}, ${fix6(v.lat)}), 4326)`;
  if (scenario === 'near')
    return (
      "SELECT r.id, r.content::text FROM sp_geo g JOIN resource r ON r.rtype = 'Location' AND r.id = g.id " +
      `WHERE g.rtype = 'Location' AND g.param = 'position' ORDER BY g.geog <-> ${pt}::geography LIMIT 10;\n`
    );
  if (scenario === 'contains')
    return (
      'SELECT r.id, r.content::text FROM sp_geo g JOIN resource r ON r.rtype = g.rtype AND r.id = g.id ' +
      `WHERE g.param = 'boundary' AND ST_Covers(g.geom, ${pt});\n`
    );
  throw new Error(`no raw SQL for ${scenario}`);
}
