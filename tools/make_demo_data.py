#!/usr/bin/env python3
"""Generate the Mahali demo data set: a Sierra Leone master facility list as a
FHIR R4 transaction Bundle of IHE mCSD Jurisdiction and Facility
Location + Organization pairs.

Inputs (under DATA_DIR, default /work/shared/data):
  boundaries/geoBoundaries-SLE-ADM1_simplified.geojson  4 provinces  (CC BY 4.0)
  boundaries/geoBoundaries-SLE-ADM2_simplified.geojson  14 districts (CC BY 4.0)
  facilities/healthsites_io_africa_2020.csv.gz          iso3c == SLE (ODbL 1.0)

Output (default importers/demo/sierra-leone.json next to this script's repo):
  one compact JSON line, same bytes on every run.

Python 3 standard library only.  Usage:
  python3 tools/make_demo_data.py [DATA_DIR [OUTPUT]]

See importers/demo/ATTRIBUTION.md for licences and the transformation rules.
"""

import base64
import csv
import gzip
import json
import os
import re
import sys
from collections import Counter

DEFAULT_DATA_DIR = "/work/shared/data"
DEFAULT_OUTPUT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "importers", "demo", "sierra-leone.json")

ADM1_FILE = "boundaries/geoBoundaries-SLE-ADM1_simplified.geojson"
ADM2_FILE = "boundaries/geoBoundaries-SLE-ADM2_simplified.geojson"
HS_FILE = "facilities/healthsites_io_africa_2020.csv.gz"

MCSD_TYPES = ("https://profiles.ihe.net/ITI/mCSD/CodeSystem/"
              "IHE.mCSD.Organization.Location.Types")
MCSD_SD = "https://profiles.ihe.net/ITI/mCSD/StructureDefinition/"
PROFILE = {
    ("Location", "jurisdiction"): MCSD_SD + "IHE.mCSD.JurisdictionLocation",
    ("Organization", "jurisdiction"): MCSD_SD + "IHE.mCSD.JurisdictionOrganization",
    ("Location", "facility"): MCSD_SD + "IHE.mCSD.FacilityLocation",
    ("Organization", "facility"): MCSD_SD + "IHE.mCSD.FacilityOrganization",
}
MCSD_DISPLAY = {"jurisdiction": "Jurisdiction", "facility": "Facility"}
PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
BOUNDARY_EXT = "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson"
GB_SHAPEID = "https://www.geoboundaries.org/shapeID"
ISO_3166 = "urn:iso:std:iso:3166"
ISO_3166_2 = "urn:iso:std:iso:3166:-2"
OSM = "https://www.openstreetmap.org/"
V3_ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

# healthsites `amenity` (or `healthcare` when amenity is empty) -> a code of the
# v3 ServiceDeliveryLocationRoleType value set (CodeSystem v3-RoleCode), which
# is the binding of the mCSD FacilityLocation `type:service` slice.
SERVICE_TYPE = {
    "hospital": ("HOSP", "Hospital"),
    "clinic": ("OF", "Outpatient facility"),
    "health outpost": ("OF", "Outpatient facility"),
    "dentist": ("OF", "Outpatient facility"),
    "doctors": ("OF", "Outpatient facility"),
    "pharmacy": ("PHARM", "Pharmacy"),
    "laboratory": ("MBL", "medical laboratory"),
}
SERVICE_DEFAULT = ("OF", "Outpatient facility")

FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
BOUNDARY_DECIMALS = 5
POSITION_DECIMALS = 6


# --------------------------------------------------------------------------
# small helpers

def clean_text(s):
    """Strip and collapse all Unicode whitespace (incl. U+00A0) to one space."""
    return " ".join((s or "").split())


def slug(s):
    out = re.sub(r"[^a-z0-9]+", "-", clean_text(s).lower()).strip("-")
    if not out:
        raise ValueError("empty slug for %r" % s)
    return out


def fhir_id(s):
    if not FHIR_ID.match(s):
        raise ValueError("not a valid FHIR id: %r" % s)
    return s


def ref(rtype, rid):
    return {"reference": "%s/%s" % (rtype, rid)}


def mcsd_type(kind):
    return {"coding": [{"system": MCSD_TYPES, "code": kind,
                        "display": MCSD_DISPLAY[kind]}]}


def entry(resource):
    rtype, rid = resource["resourceType"], resource["id"]
    return {"resource": resource,
            "request": {"method": "PUT", "url": "%s/%s" % (rtype, rid)}}


# --------------------------------------------------------------------------
# geometry

def polygons_of(geom):
    """List of polygons (each a list of rings) of a Polygon/MultiPolygon."""
    if geom["type"] == "Polygon":
        return [geom["coordinates"]]
    if geom["type"] == "MultiPolygon":
        return list(geom["coordinates"])
    raise ValueError("unsupported geometry type %s" % geom["type"])


def round_ring(ring, nd):
    out = []
    for pt in ring:
        p = [round(float(pt[0]), nd) + 0.0, round(float(pt[1]), nd) + 0.0]
        if not out or p != out[-1]:
            out.append(p)
    if out and out[0] != out[-1]:
        out.append(list(out[0]))
    return out


def ring_area(ring):
    a = 0.0
    for i in range(len(ring) - 1):
        a += ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1]
    return a / 2.0


def round_geometry(geom, nd=BOUNDARY_DECIMALS):
    """Round to nd decimals, drop consecutive duplicates, keep rings closed with
    >= 4 positions and non-zero area.  Drops the crs member (RFC 7946)."""
    polys = []
    for poly in polygons_of(geom):
        rings = []
        for i, ring in enumerate(poly):
            r = round_ring(ring, nd)
            if len(r) < 4 or ring_area(r) == 0.0:
                if i == 0:      # exterior collapsed: the whole polygon goes
                    rings = []
                    break
                continue        # a collapsed hole is simply dropped
            rings.append(r)
        if rings:
            polys.append(rings)
    if not polys:
        raise ValueError("geometry collapsed after rounding")
    if geom["type"] == "Polygon":
        return {"type": "Polygon", "coordinates": polys[0]}
    return {"type": "MultiPolygon", "coordinates": polys}


def bbox(geom):
    xs = [p[0] for poly in polygons_of(geom) for p in poly[0]]
    ys = [p[1] for poly in polygons_of(geom) for p in poly[0]]
    return (min(xs), min(ys), max(xs), max(ys))


def point_in_polygon(x, y, rings):
    """Even-odd ray casting over all rings (holes included)."""
    inside = False
    for ring in rings:
        n = len(ring)
        j = n - 1
        for i in range(n):
            xi, yi = ring[i]
            xj, yj = ring[j]
            if (yi > y) != (yj > y):
                xc = xi + (y - yi) * (xj - xi) / (yj - yi)
                if x < xc:
                    inside = not inside
            j = i
    return inside


def point_in_geometry(x, y, geom, box=None):
    if box is not None and not (box[0] <= x <= box[2] and box[1] <= y <= box[3]):
        return False
    return any(point_in_polygon(x, y, poly) for poly in polygons_of(geom))


def interior_point(geom):
    """A point strictly inside the largest polygon: on a horizontal scanline
    through the middle of its exterior ring, take the midpoint of the widest
    inside interval (even-odd over all rings).  Guaranteed to be inside for
    any simple polygon, unlike the centroid."""
    poly = max(polygons_of(geom), key=lambda p: abs(ring_area(p[0])))
    ys = sorted(set(p[1] for p in poly[0]))
    candidates = []
    # scanlines between consecutive distinct vertex ordinates near the middle,
    # so that the line never passes exactly through a vertex
    mid = len(ys) // 2
    for k in (0, -1, 1, -2, 2, -3, 3):
        i = mid + k
        if 0 <= i < len(ys) - 1:
            candidates.append((ys[i] + ys[i + 1]) / 2.0)
    best = None
    for y in candidates:
        xs = []
        for ring in poly:
            for i in range(len(ring) - 1):
                (x1, y1), (x2, y2) = ring[i], ring[i + 1]
                if (y1 > y) != (y2 > y):
                    xs.append(x1 + (y - y1) * (x2 - x1) / (y2 - y1))
        xs.sort()
        for i in range(0, len(xs) - 1, 2):
            w = xs[i + 1] - xs[i]
            if best is None or w > best[0]:
                best = (w, (xs[i] + xs[i + 1]) / 2.0, y)
    if best is None:
        raise ValueError("no interior point found")
    x, y = best[1], best[2]
    if not point_in_polygon(x, y, poly):
        raise AssertionError("interior point is not inside its polygon")
    return x, y


def boundary_extension(geom):
    data = json.dumps(geom, separators=(",", ":"), sort_keys=False)
    b64 = base64.b64encode(data.encode("ascii")).decode("ascii")
    return {"url": BOUNDARY_EXT,
            "valueAttachment": {"contentType": "application/geo+json",
                                "data": b64}}


# --------------------------------------------------------------------------
# jurisdictions

def load_units(path):
    with open(path, encoding="utf-8") as f:
        fc = json.load(f)
    units = []
    for feat in fc["features"]:
        props = feat["properties"]
        geom = round_geometry(feat["geometry"])
        units.append({
            "name": clean_text(props["shapeName"]),
            "iso": clean_text(props.get("shapeISO") or ""),
            "shapeID": clean_text(props["shapeID"]),
            "geom": geom,
            "bbox": bbox(geom),
        })
    return units


def jurisdiction_pair(lid, name, parent_lid, identifiers, geom):
    oid = lid + "-org"
    org = {
        "resourceType": "Organization",
        "id": fhir_id(oid),
        "meta": {"profile": [PROFILE[("Organization", "jurisdiction")]]},
        "identifier": identifiers,
        "active": True,
        "type": [mcsd_type("jurisdiction")],
        "name": name,
    }
    if parent_lid:
        org["partOf"] = ref("Organization", parent_lid + "-org")
    loc = {
        "resourceType": "Location",
        "id": fhir_id(lid),
        "meta": {"profile": [PROFILE[("Location", "jurisdiction")]]},
    }
    if geom is not None:
        loc["extension"] = [boundary_extension(geom)]
    loc.update({
        "identifier": identifiers,
        "status": "active",
        "name": name,
        "type": [mcsd_type("jurisdiction")],
        "physicalType": {"coding": [{"system": PHYSICAL_TYPE, "code": "jdn",
                                     "display": "Jurisdiction"}]},
        "managingOrganization": ref("Organization", oid),
    })
    if parent_lid:
        loc["partOf"] = ref("Location", parent_lid)
    return [entry(org), entry(loc)]


def unit_identifiers(u):
    ids = [{"system": GB_SHAPEID, "value": u["shapeID"]}]
    if u["iso"]:
        ids.append({"system": ISO_3166_2, "value": u["iso"]})
    return ids


def assign_districts(provinces, districts):
    """district id -> province id, by the district's interior point; the
    majority of the district's vertices is used as a cross-check."""
    out = {}
    for d in districts:
        x, y = interior_point(d["geom"])
        hits = [p for p in provinces if point_in_geometry(x, y, p["geom"], p["bbox"])]
        votes = Counter()
        for poly in polygons_of(d["geom"]):
            for vx, vy in poly[0][:-1]:
                for p in provinces:
                    if point_in_geometry(vx, vy, p["geom"], p["bbox"]):
                        votes[p["id"]] += 1
        if len(hits) != 1:
            raise ValueError("district %s: interior point (%.5f, %.5f) is in %d provinces"
                             % (d["name"], x, y, len(hits)))
        pid = hits[0]["id"]
        top = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))
        if top and top[0][0] != pid:
            raise ValueError("district %s: interior point says %s, vertices say %s"
                             % (d["name"], pid, top[0][0]))
        out[d["id"]] = pid
    return out


# --------------------------------------------------------------------------
# facilities

def load_healthsites(path):
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return [(i, r) for i, r in enumerate(csv.DictReader(f)) if r["iso3c"] == "SLE"]


def as_int(s, default=0):
    try:
        return int(clean_text(s))
    except ValueError:
        return default


def dedupe(rows):
    """Keep one row per (osm_type, osm_id): highest changeset_version, then the
    latest changeset_timestamp, then the highest completeness, then the most
    non-empty fields, then the later row in the source file."""
    best = {}
    for idx, r in rows:
        key = (clean_text(r["osm_type"]), clean_text(r["osm_id"]))
        rank = (as_int(r["changeset_version"]), clean_text(r["changeset_timestamp"]),
                as_int(r["completeness"]), sum(1 for v in r.values() if clean_text(v)),
                idx)
        if key not in best or rank > best[key][0]:
            best[key] = (rank, r)
    return {k: v[1] for k, v in best.items()}


def service_type(r):
    kind = clean_text(r["amenity"]).lower() or clean_text(r["healthcare"]).lower()
    return SERVICE_TYPE.get(kind, SERVICE_DEFAULT)


def facility_pair(key, r, name, lon, lat, district_lid):
    osm_type, osm_id = key
    lid = fhir_id("hs-%s-%s" % (osm_type, osm_id))
    oid = fhir_id(lid + "-org")
    ident = [{"system": OSM, "value": "%s/%s" % (osm_type, osm_id)}]
    code, display = service_type(r)
    org = {
        "resourceType": "Organization",
        "id": oid,
        "meta": {"profile": [PROFILE[("Organization", "facility")]]},
        "identifier": ident,
        "active": True,
        "type": [mcsd_type("facility")],
        "name": name,
    }
    operator = clean_text(r["operator"])
    if operator and operator != name:
        org["alias"] = [operator]
    phone = clean_text(r["contact_number"])
    if phone:
        org["telecom"] = [{"system": "phone", "value": phone}]
    org["partOf"] = ref("Organization", district_lid + "-org")
    loc = {
        "resourceType": "Location",
        "id": lid,
        "meta": {"profile": [PROFILE[("Location", "facility")]]},
        "identifier": ident,
        "status": "active",
        "name": name,
        "type": [mcsd_type("facility"),
                 {"coding": [{"system": V3_ROLE, "code": code, "display": display}]}],
    }
    if phone:
        loc["telecom"] = [{"system": "phone", "value": phone}]
    loc.update({
        "position": {"longitude": round(lon, POSITION_DECIMALS) + 0.0,
                     "latitude": round(lat, POSITION_DECIMALS) + 0.0},
        "managingOrganization": ref("Organization", oid),
        "partOf": ref("Location", district_lid),
    })
    return [entry(org), entry(loc)]


def parse_coord(s):
    try:
        v = float(clean_text(s))
    except ValueError:
        return None
    return v if v == v and abs(v) != float("inf") else None


# --------------------------------------------------------------------------
# self-check of the generated bundle (structure only; see ATTRIBUTION.md for
# schema validation)

def check_bundle(bundle):
    problems = []

    def walk(v, path):
        if isinstance(v, dict):
            if not v:
                problems.append("empty object at " + path)
            for k, x in v.items():
                walk(x, path + "." + k)
        elif isinstance(v, list):
            if not v:
                problems.append("empty array at " + path)
            for i, x in enumerate(v):
                walk(x, "%s[%d]" % (path, i))
        elif isinstance(v, str):
            if v != v.strip() or not v:
                problems.append("empty or untrimmed string at " + path)
        elif v is None:
            problems.append("null at " + path)

    walk(bundle, "Bundle")
    seen = set()
    for e in bundle["entry"]:
        r = e["resource"]
        key = "%s/%s" % (r["resourceType"], r["id"])
        if key in seen:
            problems.append("duplicate " + key)
        seen.add(key)
        if e["request"]["url"] != key:
            problems.append("request.url mismatch for " + key)
        if not FHIR_ID.match(r["id"]):
            problems.append("bad id " + key)
        for field in ("partOf", "managingOrganization"):
            if field in r:
                target = r[field]["reference"]
                if target not in seen:  # parents must come first
                    problems.append("%s.%s -> %s not defined earlier" % (key, field, target))
        pos = r.get("position")
        if pos is not None:
            for c in ("longitude", "latitude"):
                if not isinstance(pos.get(c), float):
                    problems.append("%s position.%s not a number" % (key, c))
        for ext in r.get("extension", []):
            if ext["url"] != BOUNDARY_EXT:
                continue
            geom = json.loads(base64.b64decode(ext["valueAttachment"]["data"], validate=True))
            if geom.get("type") not in ("Polygon", "MultiPolygon") or "crs" in geom:
                problems.append("%s: boundary is not a bare Polygon/MultiPolygon" % key)
                continue
            for poly in polygons_of(geom):
                for ring in poly:
                    if len(ring) < 4 or ring[0] != ring[-1]:
                        problems.append("%s: open or short ring" % key)
    return problems


# --------------------------------------------------------------------------

def main(argv):
    data_dir = argv[1] if len(argv) > 1 else DEFAULT_DATA_DIR
    out_path = argv[2] if len(argv) > 2 else DEFAULT_OUTPUT

    provinces = load_units(os.path.join(data_dir, ADM1_FILE))
    districts = load_units(os.path.join(data_dir, ADM2_FILE))
    for p in provinces:
        p["id"] = fhir_id("sl-prov-" + slug(p["name"]))
    for d in districts:
        d["id"] = fhir_id("sl-dist-" + slug(d["name"]))
    provinces.sort(key=lambda u: u["id"])
    districts.sort(key=lambda u: u["id"])
    if len({u["id"] for u in provinces + districts}) != len(provinces) + len(districts):
        raise ValueError("jurisdiction ids are not unique")
    parent = assign_districts(provinces, districts)

    entries = []
    entries += jurisdiction_pair(
        "sl", "Sierra Leone", None,
        [{"system": ISO_3166, "value": "SL"}], None)
    for p in provinces:
        entries += jurisdiction_pair(p["id"], p["name"], "sl", unit_identifiers(p), p["geom"])
    for d in districts:
        entries += jurisdiction_pair(d["id"], d["name"], parent[d["id"]],
                                     unit_identifiers(d), d["geom"])

    rows = load_healthsites(os.path.join(data_dir, HS_FILE))
    unique = dedupe(rows)
    skipped = Counter()
    skipped["duplicate (osm_type, osm_id) row"] = len(rows) - len(unique)
    facilities = []
    overlaps = 0
    for key in sorted(unique, key=lambda k: (k[0], int(k[1]) if k[1].isdigit() else 0, k[1])):
        r = unique[key]
        name = clean_text(r["name"])
        lon, lat = parse_coord(r["longitude"]), parse_coord(r["latitude"])
        if not name:
            skipped["no name"] += 1
            continue
        if lon is None or lat is None or (lon == 0.0 and lat == 0.0):
            skipped["no usable coordinates"] += 1
            continue
        if not key[0] or not key[1].isdigit():
            skipped["bad OSM id"] += 1
            continue
        hits = [d for d in districts if point_in_geometry(lon, lat, d["geom"], d["bbox"])]
        if not hits:
            skipped["outside the 14 district polygons"] += 1
            continue
        if len(hits) > 1:
            overlaps += 1
        facilities.append((hits[0]["id"], key, r, name, lon, lat))
    facilities.sort(key=lambda f: (f[0], "hs-%s-%s" % f[1]))
    for district_lid, key, r, name, lon, lat in facilities:
        entries += facility_pair(key, r, name, lon, lat, district_lid)

    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    problems = check_bundle(bundle)
    if problems:
        for p in problems[:50]:
            print("ERROR:", p, file=sys.stderr)
        return 1

    text = json.dumps(bundle, separators=(",", ":"), ensure_ascii=False) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tmp = out_path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, out_path)

    types = Counter(e["resource"]["resourceType"] for e in entries)
    print("wrote %s (%d bytes)" % (out_path, len(text.encode("utf-8"))))
    print("jurisdictions: 1 country, %d provinces, %d districts"
          % (len(provinces), len(districts)))
    for d in districts:
        print("  %-28s -> %s" % (d["id"], parent[d["id"]]))
    print("healthsites SLE rows: %d, unique OSM objects: %d, facilities written: %d"
          % (len(rows), len(unique), len(facilities)))
    for reason in sorted(skipped):
        print("  skipped, %s: %d" % (reason, skipped[reason]))
    if overlaps:
        print("  in more than one district (first by id kept): %d" % overlaps)
    print("service types: " + ", ".join(
        "%s=%d" % kv for kv in sorted(Counter(
            e["resource"]["type"][1]["coding"][0]["code"] for e in entries
            if e["resource"]["resourceType"] == "Location"
            and len(e["resource"]["type"]) > 1).items())))
    print("entries: " + ", ".join("%s=%d" % kv for kv in sorted(types.items()))
          + ", total=%d" % len(entries))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
