// Independent geometry for the spatial e2e tests (spatial.test.mjs): nothing here asks the
// server or PostGIS anything.
//
//   mulberry32(seed)                    a seeded PRNG: () → [0, 1)
//   parseCsv(text)                      RFC 4180 rows (quoted fields, "" escapes, CRLF or LF)
//   geodesicMetres(lat1, lon1, lat2, lon2)
//                                       Karney's geodesic on the WGS84 ellipsoid (geographiclib)
//   snap7(v)                            a coordinate rounded to 7 decimals, half away from zero
//   polygonsOf(geometry)                Polygon | MultiPolygon → [[ring, ...], ...] (rings of [lon, lat])
//   snapPolygons(polys)                 the same with every coordinate snap7'd
//   makeShape(polys)                    {polys, bbox, area}: area = planar (lon/lat) shoelace area
//   coverage(shape, lon, lat, eps)      'in' | 'out' | 'edge' (within eps degrees of an edge, not on it)
//                                       even-odd ray casting over every ring; on an edge (distance 0)
//                                       counts as 'in' (ST_Covers semantics)
import geographiclib from 'geographiclib-geodesic';

const WGS84 = geographiclib.Geodesic.WGS84;
const DISTANCE = geographiclib.Geodesic.DISTANCE;

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** RFC 4180 CSV → array of rows (arrays of strings). */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let i = 0;
  let quoted = false;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (c === '\r' && text[i + 1] === '\n') {
      i++;
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else {
      field += c;
      i++;
    }
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Geodesic distance in metres on WGS84 (Karney 2013, geographiclib; accurate to nanometres). */
export function geodesicMetres(lat1, lon1, lat2, lon2) {
  return WGS84.Inverse(lat1, lon1, lat2, lon2, DISTANCE).s12;
}

/** Round to 7 decimals, half away from zero (as C round()), as the exact double of that decimal. */
export function snap7(v) {
  const k = Math.sign(v) * Math.round(Math.abs(v) * 1e7);
  return k / 1e7;
}

export function polygonsOf(geometry) {
  if (geometry.type === 'Polygon') return [geometry.coordinates];
  if (geometry.type === 'MultiPolygon') return geometry.coordinates;
  throw new Error(`not a polygon: ${geometry.type}`);
}

export function snapPolygons(polys) {
  return polys.map((rings) => rings.map((ring) => ring.map(([x, y]) => [snap7(x), snap7(y)])));
}

/** Shoelace area of a ring (absolute, in square degrees). */
function ringArea(ring) {
  let s = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) s += (ring[j][0] - ring[i][0]) * (ring[j][1] + ring[i][1]);
  return Math.abs(s) / 2;
}

export function makeShape(polys) {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  let area = 0;
  const segs = []; // flat [x1, y1, x2, y2, ...]
  for (const rings of polys) {
    rings.forEach((ring, k) => {
      area += k === 0 ? ringArea(ring) : -ringArea(ring);
      for (let i = 0; i + 1 < ring.length; i++) {
        const [x1, y1] = ring[i];
        const [x2, y2] = ring[i + 1];
        segs.push(x1, y1, x2, y2);
        minX = Math.min(minX, x1);
        maxX = Math.max(maxX, x1);
        minY = Math.min(minY, y1);
        maxY = Math.max(maxY, y1);
      }
    });
  }
  return { polys, segs: Float64Array.from(segs), bbox: [minX, minY, maxX, maxY], area };
}

/** Distance from (px, py) to the segment (x1, y1)-(x2, y2), planar. 0 exactly at a vertex. */
function segDist(px, py, x1, y1, x2, y2) {
  if (px === x1 && py === y1) return 0;
  if (px === x2 && py === y2) return 0;
  const dx = x2 - x1;
  const dy = y2 - y1;
  const len2 = dx * dx + dy * dy;
  let t = len2 > 0 ? ((px - x1) * dx + (py - y1) * dy) / len2 : 0;
  t = Math.max(0, Math.min(1, t));
  const qx = x1 + t * dx - px;
  const qy = y1 + t * dy - py;
  return Math.hypot(qx, qy);
}

/** 'in' | 'out' | 'edge'. */
export function coverage(shape, lon, lat, eps = 1e-9) {
  const [minX, minY, maxX, maxY] = shape.bbox;
  if (lon < minX - eps || lon > maxX + eps || lat < minY - eps || lat > maxY + eps) return 'out';
  const s = shape.segs;
  let inside = false;
  let near = false;
  for (let i = 0; i < s.length; i += 4) {
    const x1 = s[i];
    const y1 = s[i + 1];
    const x2 = s[i + 2];
    const y2 = s[i + 3];
    // Only segments whose box is within eps can be that close.
    if (!(lon < Math.min(x1, x2) - eps || lon > Math.max(x1, x2) + eps || lat < Math.min(y1, y2) - eps || lat > Math.max(y1, y2) + eps)) {
      const d = segDist(lon, lat, x1, y1, x2, y2);
      if (d === 0) return 'in';
      if (d < eps) near = true;
    }
    // even-odd: a ray towards +x; half-open in y so that a vertex is counted once
    if (y1 > lat !== y2 > lat) {
      const xc = x1 + ((lat - y1) * (x2 - x1)) / (y2 - y1);
      if (lon < xc) inside = !inside;
    }
  }
  if (near) return 'edge';
  return inside ? 'in' : 'out';
}

/** Run fn over items with at most `limit` in flight; resolves the results in item order. */
export async function pool(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const k = next++;
      if (k >= items.length) return;
      out[k] = await fn(items[k], k);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
