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
} geo_boundary_opts;

#define GEO_BOUNDARY_OPTS_INIT          \
    {                                   \
        GEO_LIMITS_INIT, 1, 0, NULL, -1 \
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
 *  ignored, and so is a "crs" (GeoJSON 2008) only if it names CRS84 or EPSG:4326. Positions are
 *  [longitude, latitude] or [longitude, latitude, altitude] (altitude dropped). Coordinates are
 *  snapped to 1e-7 degree (about 1 cm) before validation, so what is validated is exactly what
 *  geo_boundary_geojson writes. Rings must be closed and have at least 4 positions (checked
 *  before GEOS, which cannot build them otherwise, so opts->repair does not help there).
 *  out: new boundary (only on success), free with geo_boundary_free(ctx, *out).
 *  ctx: this thread's. opts: NULL means GEO_BOUNDARY_OPTS_INIT.
 *  Returns 0, or -1 with err set, err->expr naming the attachment's data (see opts->ext_index):
 *  422 invalid: bad base64, not JSON, wrong GeoJSON type (the message says what was found),
 *    other CRS ("boundary CRS must be WGS84 ..."), bad position or coordinate out of range, ring
 *    not closed or too short, geometry not valid per GEOS ("boundary is not valid: Self-
 *    intersection at or near point (-11.75 7.95)"), or, with repair, nothing polygonal left;
 *  413 too-long: more than lim.max_bytes decoded bytes or lim.max_vertices positions, both
 *    checked on the text before it is parsed, so an oversized boundary costs one scan and is
 *    refused whatever else is wrong with it; 500 exception: out of memory or a GEOS failure
 *    (logged). */
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

#endif
