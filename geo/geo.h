/* geo: geometry and coordinate systems (GEOS, PROJ) for the registry. Coordinates are WGS84
 * (EPSG:4326); FHIR Location.position gives longitude and latitude in decimal degrees. */
#ifndef GEO_GEO_H
#define GEO_GEO_H

#include "core/core.h"

/** Check a WGS84 position: finite, latitude within [-90, 90], longitude within [-180, 180].
 *  path: FHIRPath of the position element for the error ("Location.position").
 *  Returns 0, or -1 with err (400 value naming path.latitude or path.longitude). */
int geo_position_check(double lon, double lat, const char *path, core_err *err);

/** "GEOS x.y.z, PROJ a.b.c" of the linked libraries (static storage). */
const char *geo_versions(void);

/* ---- GEOS contexts -----------------------------------------------------------------------
 * geo/ uses only GEOS's reentrant API (GEOS_USE_ONLY_R_API): every call takes a context handle
 * that holds GEOS's state and its message handlers. A geo_ctx wraps one handle together with the
 * last messages GEOS reported through it, so nothing is global. Keep one per thread (in the
 * thread's core_thread) and use it from that thread only. */

typedef struct geo_ctx geo_ctx;

/** A new GEOS context whose error and notice handlers write into it. Returns NULL if GEOS cannot
 *  allocate one. Free with geo_ctx_free on the same thread. */
geo_ctx *geo_ctx_create(void);
/** Free ctx (NULL is a no-op). Every geo_boundary made with ctx must be freed before. */
void geo_ctx_free(geo_ctx *ctx);
/** The last error / notice GEOS reported through ctx since the last geo_ call that uses GEOS
 *  ("" if none). Borrowed, valid until the next call with ctx. For the log, not for clients. */
const char *geo_ctx_error(const geo_ctx *ctx);
const char *geo_ctx_notice(const geo_ctx *ctx);

/* ---- Location boundaries -----------------------------------------------------------------
 * A Location's area arrives as the core extension GEO_BOUNDARY_URL whose valueAttachment has
 * contentType application/geo+json and data = base64 of GeoJSON (RFC 7946). geo_boundary_parse
 * decodes and checks it, builds a GEOS geometry and validates it as PostGIS's ST_IsValid does
 * (OGC rules); the caller stores geo_boundary_geojson's text with ST_GeomFromGeoJSON. */

#define GEO_BOUNDARY_URL          "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson"
#define GEO_BOUNDARY_MAX_VERTICES ((size_t)200000)
#define GEO_BOUNDARY_MAX_BYTES    ((size_t)10 * 1024 * 1024)

/** Size caps, checked before anything is built. 0 in a field means its default. */
typedef struct geo_limits {
    size_t max_vertices; /* positions over all rings; default GEO_BOUNDARY_MAX_VERTICES */
    size_t max_bytes;    /* GeoJSON bytes after base64 decoding; default GEO_BOUNDARY_MAX_BYTES */
} geo_limits;

#define GEO_LIMITS_INIT                                   \
    {                                                     \
        GEO_BOUNDARY_MAX_VERTICES, GEO_BOUNDARY_MAX_BYTES \
    }

/** Options of geo_boundary_parse; start from GEO_BOUNDARY_OPTS_INIT. */
typedef struct geo_boundary_opts {
    geo_limits lim;
    int is_base64;    /* 1: data is valueAttachment.data (base64, ASCII whitespace ignored);
                         0: data is the GeoJSON text itself (importers) */
    int repair;       /* 1: make an invalid geometry valid (GEOSMakeValid) instead of refusing it */
    const char *path; /* FHIRPath of the Location for error expressions; NULL: "Location" (in a
                         Bundle e.g. "Bundle.entry[3].resource") */
    int ext_index;    /* i of the boundary in path.extension[i]: errors name
                         "path.extension[i].valueAttachment.data"; -1: errors name no element */
    int convert_crs;  /* 1: a "crs" naming another EPSG CRS that PROJ knows is accepted and the
                         positions are converted to WGS84 (geo_crs_to_wgs84); 0: refused */
} geo_boundary_opts;

#define GEO_BOUNDARY_OPTS_INIT             \
    {                                      \
        GEO_LIMITS_INIT, 1, 0, NULL, -1, 1 \
    }

/** A validated polygonal boundary (a GEOS Polygon or MultiPolygon), owned by whoever parsed it. */
typedef struct geo_boundary geo_boundary;

/** Bounding box in degrees, WGS84. */
typedef struct geo_bbox {
    double min_lon, min_lat, max_lon, max_lat;
} geo_bbox;

/** Decode, check and validate a boundary. data[0..len): base64 of GeoJSON, or GeoJSON text
 *  (opts->is_base64); borrowed. Accepted: a Polygon or MultiPolygon, a Feature with one, or a
 *  FeatureCollection of exactly one such Feature; other members (properties, bbox, id) are
 *  ignored. Positions are [longitude, latitude] or [longitude, latitude, altitude] (altitude
 *  dropped), unless a "crs" member (GeoJSON 2008; on the root, the Feature or the geometry, all
 *  naming the same CRS) names another CRS: as a name geo_crs_parse accepts or as {"type":
 *  "EPSG","properties":{"code":N}}. With opts->convert_crs, positions are then [x, y] in that
 *  CRS's GIS order (easting first) and are converted to WGS84 (geo_boundary_source_epsg tells);
 *  CRS84 and EPSG:4326 mean WGS84 longitude, latitude. Coordinates are snapped to 1e-7 degree
 *  (about 1 cm) after conversion and before validation, so what is validated is exactly what
 *  geo_boundary_geojson writes. Rings must be closed and have at least 4 positions (checked
 *  before GEOS, which cannot build them otherwise, so opts->repair does not help there).
 *  out: new boundary (only on success), free with geo_boundary_free(ctx, *out).
 *  ctx: this thread's. opts: NULL means GEO_BOUNDARY_OPTS_INIT.
 *  Returns 0, or -1 with err set, err->expr naming the attachment's data (see opts->ext_index):
 *  422 invalid: bad base64, not JSON, wrong GeoJSON type (the message says what was found),
 *    a "crs" that names no EPSG CRS PROJ knows as a 2D geographic or projected one (without
 *    opts->convert_crs: any but WGS84, "boundary CRS must be WGS84 ..."), or several naming
 *    different ones, a position that does not convert, bad position or coordinate out of range,
 * ring not closed or too short, geometry not valid per GEOS ("boundary is not valid: Self-
 *    intersection at or near point (-11.75 7.95)"), or, with repair, nothing polygonal left;
 *  413 too-long: more than lim.max_bytes decoded bytes or lim.max_vertices positions, both
 *    checked on the text before it is parsed, so an oversized boundary costs one scan and is
 *    refused whatever else is wrong with it; 500 exception: out of memory or a GEOS failure
 *    (logged), or PROJ's EPSG database missing. Thread: converting uses this thread's PROJ state
 *    (geo_crs_thread_cleanup). */
int geo_boundary_parse(geo_boundary **out,
                       geo_ctx *ctx,
                       const char *data,
                       size_t len,
                       const geo_boundary_opts *opts,
                       core_err *err);
/** Free b, which was made with ctx (NULL is a no-op). */
void geo_boundary_free(geo_ctx *ctx, geo_boundary *b);

/** b as compact GeoJSON for ST_GeomFromGeoJSON: {"type":"Polygon"|"MultiPolygon",
 *  "coordinates":...} with each coordinate in its shortest form of at most 7 decimals. out: new
 *  NUL-terminated text, caller free()s it; len_out (may be NULL): its length. Returns 0, or -1
 *  with err set (500 exception: out of memory, GEOS failure). */
int geo_boundary_geojson(
    char **out, size_t *len_out, geo_ctx *ctx, const geo_boundary *b, core_err *err);
/** A lighter b for maps: GEOSTopologyPreserveSimplify with tolerance in degrees (0.001 is about
 *  110 m), written as geo_boundary_geojson does. Rings keep at least 4 positions and do not
 *  cross. Returns 0, or -1 with err set (400 value: tolerance not a finite number >= 0;
 *  500 exception). */
int geo_boundary_simplify(char **out,
                          size_t *len_out,
                          geo_ctx *ctx,
                          const geo_boundary *b,
                          double tolerance,
                          core_err *err);

/* Accessors: computed by geo_boundary_parse, they do not call GEOS. */
/** Number of positions in b (the repaired geometry's, if repaired). */
size_t geo_boundary_vertices(const geo_boundary *b);
/** The bounding box of b. */
void geo_boundary_bbox(geo_bbox *out, const geo_boundary *b);
/** 1 if b is a MultiPolygon, 0 if a Polygon. */
int geo_boundary_is_multi(const geo_boundary *b);
/** NULL if b was valid as given; else why it was repaired, e.g. "Self-intersection at or near
 *  point (0.5 0.5)" (borrowed from b), for a warning to the client. */
const char *geo_boundary_repair_reason(const geo_boundary *b);
/** 0 if b's positions were given in WGS84 (no "crs", CRS84 or EPSG:4326); else the EPSG code of
 *  the CRS they were converted from, in which case the caller stores geo_boundary_geojson's text
 *  rather than what was sent. */
int geo_boundary_source_epsg(const geo_boundary *b);

/* ---- coordinate reference systems (PROJ) -------------------------------------------------
 * Clients and importers may give coordinates in another CRS named by an EPSG code (a UTM zone,
 * a national grid, web mercator): they are converted to WGS84 once, on write. PROJ state is per
 * thread and made on first use: a PJ_CONTEXT with network access off (no grid downloads, no
 * cache written, so no writable home is needed) that finds the EPSG database proj.db where PROJ
 * looks by default (PROJ_DATA) or in /usr/share/proj, and a few transformations to WGS84 kept
 * by EPSG code. A thread that converted frees it with geo_crs_thread_cleanup. */

#define GEO_WGS84_EPSG 4326

/** Parse a CRS name: "EPSG:NNNN", "urn:ogc:def:crs:EPSG::NNNN" (or with a version between the
 *  colons), "http(s)://www.opengis.net/def/crs/EPSG/0/NNNN", or CRS84 ("CRS84", "OGC:CRS84",
 *  "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84", "urn:ogc:def:crs:OGC:2:84",
 *  "http(s)://www.opengis.net/def/crs/OGC/1.3/CRS84"), which gives 4326. Prefixes are matched
 *  in any case; a code is 1 to 9 digits without a leading zero. Whether PROJ knows the code is
 *  not checked here (geo_crs_check). name: borrowed, may be NULL. Returns 0 with *epsg set, or
 *  -1 with err (422 invalid quoting name and listing the accepted forms; err->expr ""). */
int geo_crs_parse(const char *name, int *epsg, core_err *err);

/** 0 if EPSG:epsg is a two-dimensional geographic or projected CRS with a transformation to
 *  WGS84 (then cached for this thread), or 4326 itself. Else -1 with err (err->expr ""):
 *  422 invalid "unknown coordinate reference system EPSG:NNNN", not 2D (geocentric, vertical,
 *  compound), or no transformation; 500 exception when PROJ has no EPSG database (logged). */
int geo_crs_check(int epsg, core_err *err);

/** Convert x, y in EPSG:epsg to WGS84 *lon, *lat (degrees). x, y are in the CRS's units and in
 *  its "GIS order" whatever the axis order of its EPSG definition (proj_normalize_for_
 *  visualization): easting then northing for projected CRSs, longitude then latitude for
 *  geographic ones. 4326 returns x, y unchanged after the range check. Returns 0, or -1 with err
 *  (err->expr ""; the caller names the element): as geo_crs_check, and 422 invalid naming the
 *  input when x or y is not finite, PROJ fails on the point, or the result is not a WGS84
 *  position (non-finite, latitude outside [-90, 90], longitude outside [-180, 180]).
 *  Thread: uses this thread's PROJ state. */
int geo_crs_to_wgs84(int epsg, double x, double y, double *lon, double *lat, core_err *err);

/** Free this thread's PROJ context and cached transformations (no-op if there are none). Call
 *  when a thread that converted coordinates ends; a later conversion makes them again. */
void geo_crs_thread_cleanup(void);

#endif
