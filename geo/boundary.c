/* Location boundaries: base64 GeoJSON from the location-boundary-geojson extension, checked in
 * plain C first (shape, CRS, positions, size caps, closed rings; positions in another CRS are
 * converted to WGS84 with geo/crs.c) so that GEOS only ever builds what it can represent, then
 * validated with GEOSisValidDetail_r and optionally repaired with GEOSMakeValid_r. Also the
 * per-thread GEOS context, whose message handlers write into the context itself: GEOS is used only
 * through its reentrant API (GEOS_USE_ONLY_R_API). */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <geos_c.h>

#include "geo/geo.h"

/* Coordinates are snapped to this grid (degrees) and written with this many decimals. */
#define GRID_SCALE 1e7
#define DECIMALS   7

/* ---- GEOS contexts ----------------------------------------------------------------------- */

struct geo_ctx {
    GEOSContextHandle_t h;
    char error[256];  /* last GEOS error since clear_messages */
    char notice[256]; /* last GEOS notice since clear_messages */
};

static void
on_error(const char *message, void *userdata)
{
    geo_ctx *ctx = userdata;
    core_strlcpy(ctx->error, message, sizeof(ctx->error));
}

static void
on_notice(const char *message, void *userdata)
{
    geo_ctx *ctx = userdata;
    core_strlcpy(ctx->notice, message, sizeof(ctx->notice));
}

static void
clear_messages(geo_ctx *ctx)
{
    ctx->error[0] = '\0';
    ctx->notice[0] = '\0';
}

geo_ctx *
geo_ctx_create(void)
{
    geo_ctx *ctx = calloc(1, sizeof(*ctx));

    if (!ctx)
        return NULL;
    ctx->h = GEOS_init_r();
    if (!ctx->h) {
        free(ctx);
        return NULL;
    }
    GEOSContext_setErrorMessageHandler_r(ctx->h, on_error, ctx);
    GEOSContext_setNoticeMessageHandler_r(ctx->h, on_notice, ctx);
    return ctx;
}

void
geo_ctx_free(geo_ctx *ctx)
{
    if (!ctx)
        return;
    GEOS_finish_r(ctx->h);
    free(ctx);
}

const char *
geo_ctx_error(const geo_ctx *ctx)
{
    return ctx->error;
}

const char *
geo_ctx_notice(const geo_ctx *ctx)
{
    return ctx->notice;
}

/* A GEOS call failed: log what GEOS said and fail with 500. */
static int
geos_failed(geo_ctx *ctx, core_err *err, const char *what)
{
    core_log(CORE_LOG_ERROR, "GEOS failed %s: %s", what,
             ctx->error[0] ? ctx->error : "(no message)");
    return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "boundary geometry could not be %s", what);
}

/* ---- boundaries -------------------------------------------------------------------------- */

struct geo_boundary {
    GEOSGeometry *g; /* valid Polygon or MultiPolygon, coordinates on the 1e-7 grid */
    size_t vertices;
    geo_bbox bbox;
    int multi;
    int repaired;
    int source_epsg; /* 0: given in WGS84; else converted from this EPSG CRS */
    char repair_reason[200];
};

/* The parse in progress: options resolved, the error expression, and the positions collected
 * by the walk (flat lon/lat pairs, ring lengths, rings per polygon). */
typedef struct walk {
    geo_limits lim;
    char expr[128];
    int multi;
    double *xy;
    size_t nxy, cap_xy;
    size_t *ring_len;
    size_t nrings, cap_rings;
    size_t *poly_rings;
    size_t npolys, cap_polys;
    char coords[96]; /* where the coordinates are in the document:
                        "features[0].geometry.coordinates" */
    int convert_crs; /* opts->convert_crs */
    int epsg;        /* CRS of the positions: 0 none named yet (WGS84), else its EPSG code */
} walk;

static int fail(walk *w, core_err *err, int status, core_issue code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Set err with w's expression. */
static int
fail(walk *w, core_err *err, int status, core_issue code, const char *fmt, ...)
{
    char msg[sizeof(err->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return core_err_set_at(err, status, code, w->expr, "%s", msg);
}

/* A user value for a message (core_clip). */
static const char *
clip(char out[48], const char *s)
{
    return core_clip(out, s, strlen(s));
}

/* ---- base64 ------------------------------------------------------------------------------ */

/* Value + 1 of each base64 character (RFC 4648 section 4); 0 for every other byte. */
static const unsigned char b64_table[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64
};

static int
b64_value(unsigned char c)
{
    return (int)b64_table[c] - 1;
}

static int
is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Decode base64 (RFC 4648 alphabet, padded; FHIR base64Binary allows whitespace between
 * groups, we skip it anywhere). A first pass checks the text and computes the exact decoded
 * size, so the byte cap is enforced before anything is allocated. out: malloc'd, caller frees. */
static int
base64_decode(char **out, size_t *out_len, walk *w, const char *s, size_t n, core_err *err)
{
    size_t i, sig = 0, pad = 0, size, k = 0;
    unsigned acc = 0;
    int bits = 0;
    char *buf;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_space(c))
            continue;
        if (c == '=') {
            pad++;
        } else if (b64_value(c) < 0 || pad > 0) {
            if (c > 0x20 && c < 0x7f && c != '"' && c != '\\')
                return fail(w, err, 422, CORE_ISSUE_INVALID,
                            "boundary data is not valid base64 (unexpected \"%c\" at offset %zu)",
                            c, i);
            return fail(w, err, 422, CORE_ISSUE_INVALID,
                        "boundary data is not valid base64 (unexpected byte 0x%02x at offset %zu)",
                        c, i);
        }
        sig++;
    }
    if (sig == 0)
        return fail(w, err, 422, CORE_ISSUE_INVALID, "boundary data is empty");
    if (sig % 4 != 0 || pad > 2)
        return fail(w, err, 422, CORE_ISSUE_INVALID,
                    "boundary data is not valid base64 (%zu characters without whitespace, "
                    "not a multiple of 4, or more than 2 \"=\")",
                    sig);
    size = sig / 4 * 3 - pad;
    if (size > w->lim.max_bytes)
        return fail(w, err, 413, CORE_ISSUE_TOO_LONG,
                    "boundary GeoJSON must be at most %zu bytes (got %zu)", w->lim.max_bytes, size);
    buf = malloc(size + 1);
    if (!buf)
        return fail(w, err, 500, CORE_ISSUE_EXCEPTION, "out of memory decoding the boundary");
    for (i = 0; i < n && k < size; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            continue; /* whitespace; padding only follows the last data */
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[k++] = (char)((acc >> bits) & 0xFF);
        }
    }
    buf[size] = '\0';
    *out = buf;
    *out_len = size;
    return 0;
}

/* ---- GeoJSON shape ----------------------------------------------------------------------- */

static const char *
text_of(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return core_json_is_text(v) ? json_string_value(v) : NULL;
}

/* What j is, for "(got ...)". */
static const char *
describe(const json_t *j)
{
    if (json_is_object(j))
        return "an object";
    if (json_is_array(j))
        return "an array";
    if (core_json_is_number(j))
        return "a number";
    if (json_is_string(j))
        return "a string";
    if (json_is_true(j) || json_is_false(j))
        return "a boolean";
    return "null";
}

static int
is_polygonal(const char *type)
{
    return type && (strcmp(type, "Polygon") == 0 || strcmp(type, "MultiPolygon") == 0);
}

/* Describe a GeoJSON object that is not an accepted boundary, e.g. "a Point". */
static void
describe_geojson(char *out, size_t cap, const json_t *j)
{
    static const char *const known[] = {
        "Point",        "MultiPoint",         "LineString", "MultiLineString",  "Polygon",
        "MultiPolygon", "GeometryCollection", "Feature",    "FeatureCollection"
    };
    const char *type = json_is_object(j) ? text_of(j, "type") : NULL;
    char q[48];
    size_t i;

    if (!json_is_object(j)) {
        snprintf(out, cap, "%s", describe(j));
        return;
    }
    if (!type) {
        snprintf(out, cap, "an object without \"type\"");
        return;
    }
    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(type, known[i]) == 0) {
            snprintf(out, cap, "a %s", type);
            return;
        }
    snprintf(out, cap, "an object of type \"%s\"", clip(q, type));
}

/* A "crs" member of obj (GeoJSON 2008), if any: CRS84 or EPSG:4326 (GeoJSON 2008 files written
 * with EPSG:4326 put longitude first as well, which is how we read them; RFC 7946 removed "crs":
 * CRS84 only), or, with w->convert_crs, any 2D EPSG CRS that PROJ knows, whose positions are
 * then converted. The spec puts "crs" on the top-level object only; every one met must name
 * the same CRS. Sets w->epsg. */
static int
check_crs(walk *w, const json_t *obj, core_err *err)
{
    const json_t *crs = json_object_get(obj, "crs"), *props;
    const char *type, *name = NULL, *code_text = NULL;
    char q[48], named[64] = "";
    core_err e = CORE_ERR_INIT;
    int epsg = 0;

    if (!crs)
        return 0;
    props = json_object_get(crs, "properties");
    type = json_is_object(crs) ? text_of(crs, "type") : NULL;
    if (type && strcmp(type, "name") == 0 && json_is_object(props))
        name = text_of(props, "name");
    if (type && strcmp(type, "EPSG") == 0 && json_is_object(props)) {
        const json_t *code = json_object_get(props, "code");
        code_text = core_json_is_number(code)
                        ? core_json_number_text(code)
                        : (core_json_is_text(code) ? json_string_value(code) : NULL);
    }
    if (!name && !code_text)
        return fail(w, err, 422, CORE_ISSUE_INVALID,
                    w->convert_crs ? "boundary CRS must be named (\"crs\" of type \"name\" with "
                                     "properties.name, or of type \"EPSG\" with properties.code)"
                                   : "boundary CRS must be WGS84 (CRS84 or EPSG:4326, got a "
                                     "\"crs\" that names none)");
    if (code_text)
        snprintf(named, sizeof(named), "EPSG:%.50s", code_text);
    if (geo_crs_parse(name ? name : named, &epsg, &e) < 0 ||
        (!w->convert_crs && epsg != GEO_WGS84_EPSG)) {
        if (!w->convert_crs && name)
            return fail(w, err, 422, CORE_ISSUE_INVALID,
                        "boundary CRS must be WGS84 (CRS84 or EPSG:4326, got \"%s\")",
                        clip(q, name));
        if (!w->convert_crs)
            return fail(w, err, 422, CORE_ISSUE_INVALID,
                        "boundary CRS must be WGS84 (CRS84 or EPSG:4326, got EPSG code %s)",
                        clip(q, code_text));
        return fail(w, err, 422, CORE_ISSUE_INVALID, "boundary %s", e.msg);
    }
    if (w->epsg && w->epsg != epsg)
        return fail(w, err, 422, CORE_ISSUE_INVALID,
                    "boundary \"crs\" members name different coordinate reference systems "
                    "(EPSG:%d and EPSG:%d)",
                    w->epsg, epsg);
    if (geo_crs_check(epsg, &e) < 0)
        return fail(w, err, e.status, e.code, "boundary CRS: %s", e.msg);
    w->epsg = epsg;
    return 0;
}

/* Find the geometry: a Polygon or MultiPolygon, bare, in a Feature, or in a FeatureCollection of
 * exactly one Feature. Sets *geom (borrowed) and w->coords' prefix; checks every "crs" met. */
static int
find_geometry(const json_t **geom, walk *w, const json_t *root, core_err *err)
{
    static const char accepted[] = "boundary must be a Polygon or MultiPolygon, a Feature with "
                                   "one, or a FeatureCollection of exactly one such Feature";
    const char *type = json_is_object(root) ? text_of(root, "type") : NULL;
    const json_t *feature = NULL, *g;
    const char *prefix = "";
    char got[128], inner[96];

    if (check_crs(w, root, err) < 0)
        return -1;
    if (type && strcmp(type, "FeatureCollection") == 0) {
        const json_t *features = json_object_get(root, "features");
        size_t n = json_array_size(features);
        if (!json_is_array(features))
            return fail(w, err, 422, CORE_ISSUE_INVALID,
                        "%s (got a FeatureCollection without a \"features\" array)", accepted);
        if (n != 1)
            return fail(w, err, 422, CORE_ISSUE_INVALID,
                        "%s (got a FeatureCollection of %zu features)", accepted, n);
        feature = json_array_get(features, 0);
        type = json_is_object(feature) ? text_of(feature, "type") : NULL;
        if (!type || strcmp(type, "Feature") != 0) {
            describe_geojson(inner, sizeof(inner), feature);
            return fail(w, err, 422, CORE_ISSUE_INVALID, "%s (got a FeatureCollection holding %s)",
                        accepted, inner);
        }
        prefix = "features[0].geometry.";
    } else if (type && strcmp(type, "Feature") == 0) {
        feature = root;
        prefix = "geometry.";
    }
    if (feature) {
        if (feature != root && check_crs(w, feature, err) < 0)
            return -1;
        g = json_object_get(feature, "geometry");
        if (!json_is_object(g)) {
            snprintf(got, sizeof(got), "a Feature without geometry");
        } else if (!is_polygonal(text_of(g, "type"))) {
            describe_geojson(inner, sizeof(inner), g);
            snprintf(got, sizeof(got), "a Feature with %s geometry", inner);
        } else {
            got[0] = '\0';
        }
        if (got[0] && feature != root)
            return fail(w, err, 422, CORE_ISSUE_INVALID, "%s (got a FeatureCollection holding %s)",
                        accepted, got);
        if (got[0])
            return fail(w, err, 422, CORE_ISSUE_INVALID, "%s (got %s)", accepted, got);
        if (check_crs(w, g, err) < 0)
            return -1;
    } else if (is_polygonal(type)) {
        g = root;
    } else {
        describe_geojson(got, sizeof(got), root);
        return fail(w, err, 422, CORE_ISSUE_INVALID, "%s (got %s)", accepted, got);
    }
    w->multi = strcmp(text_of(g, "type"), "MultiPolygon") == 0;
    snprintf(w->coords, sizeof(w->coords), "%scoordinates", prefix);
    *geom = g;
    return 0;
}

/* ---- vertex pre-count -------------------------------------------------------------------
 * core_json_parse allocates a node per number, which for a 10 MB boundary costs far more than
 * GEOS would ever be allowed to: so the vertex cap is first checked on the text. One pass, no
 * allocation: count the arrays that start with a number (positions) inside the "coordinates" of
 * a geometry, where geometries are the root object, the value of "geometry" in a geometry (a
 * Feature is treated as one) and the elements of the root's "features". Exact for GeoJSON; odd
 * input (escaped keys, "coordinates" among foreign members) may make it off, which only changes
 * which check refuses it: the exact count after parsing still applies. */

enum { R_OTHER, R_GEOM, R_FEATURES, R_COORDS };
enum { K_OTHER, K_COORDINATES, K_GEOMETRY, K_FEATURES };

typedef struct frame {
    char kind;          /* '{' or '[' */
    unsigned char role; /* R_* */
    unsigned char key;  /* objects: K_* of the member being read */
} frame;

static unsigned char
key_id(const char *k, size_t n)
{
    if (n == 11 && memcmp(k, "coordinates", 11) == 0)
        return K_COORDINATES;
    if (n == 8 && memcmp(k, "geometry", 8) == 0)
        return K_GEOMETRY;
    if (n == 8 && memcmp(k, "features", 8) == 0)
        return K_FEATURES;
    return K_OTHER;
}

static unsigned char
child_role(const frame *parent, int parent_is_root, char kind)
{
    if (!parent)
        return kind == '{' ? R_GEOM : R_OTHER;
    if (parent->kind == '{' && parent->role == R_GEOM) {
        if (parent->key == K_COORDINATES && kind == '[')
            return R_COORDS;
        if (parent->key == K_GEOMETRY && kind == '{')
            return R_GEOM;
        if (parent->key == K_FEATURES && kind == '[' && parent_is_root)
            return R_FEATURES;
    }
    if (parent->kind == '[' && parent->role == R_FEATURES && kind == '{')
        return R_GEOM;
    if (parent->kind == '[' && parent->role == R_COORDS && kind == '[')
        return R_COORDS;
    return R_OTHER;
}

static size_t
precount_positions(const char *s, size_t n)
{
    frame stack[CORE_JSON_MAX_DEPTH + 1];
    size_t i, j, depth = 0, count = 0;
    int want_key = 0;

    for (i = 0; i < n; i++) {
        char c = s[i];
        frame *top = depth ? &stack[depth - 1] : NULL;

        switch (c) {
        case '"':
            for (j = i + 1; j < n && s[j] != '"'; j++)
                if (s[j] == '\\')
                    j++;
            if (top && top->kind == '{' && want_key) {
                top->key = key_id(s + i + 1, j - i - 1);
                want_key = 0;
            }
            i = j;
            break;
        case '{':
        case '[':
            if (depth == CORE_JSON_MAX_DEPTH + 1)
                return count; /* the parser refuses it */
            stack[depth].kind = c;
            stack[depth].role = child_role(top, depth == 1, c);
            stack[depth].key = K_OTHER;
            if (c == '[' && stack[depth].role == R_COORDS) {
                for (j = i + 1; j < n && is_space((unsigned char)s[j]); j++)
                    ;
                if (j < n && (s[j] == '-' || (s[j] >= '0' && s[j] <= '9')))
                    count++;
            }
            depth++;
            want_key = c == '{';
            break;
        case '}':
        case ']':
            if (depth)
                depth--;
            break;
        case ',':
            want_key = top && top->kind == '{';
            break;
        default:
            break;
        }
    }
    return count;
}

/* ---- positions --------------------------------------------------------------------------- */

/* Positions in rings of a Polygon's coordinates, counting only what has the right nesting; the
 * walk reports the rest. Cheap: array sizes only, so the vertex cap costs no number parsing. */
static size_t
count_polygon(const json_t *rings, size_t *nrings)
{
    const json_t *ring;
    size_t i, n = 0;

    json_array_foreach (rings, i, ring) {
        n += json_array_size(ring);
        (*nrings)++;
    }
    return n;
}

static double
snap(double v)
{
    return round(v * GRID_SCALE) / GRID_SCALE;
}

/* One coordinate of a position: a number, finite, within [-limit, limit]. */
static int
coordinate(double *out,
           walk *w,
           const json_t *j,
           const char *name,
           double limit,
           const char *where,
           core_err *err)
{
    const char *text = core_json_number_text(j);
    char q[48];

    if (core_json_number_get(j, out) < 0 || !isfinite(*out))
        return fail(w, err, 422, CORE_ISSUE_INVALID,
                    "boundary %s must be a finite number (got %s at %s)", name, clip(q, text),
                    where);
    if (*out < -limit || *out > limit)
        return fail(w, err, 422, CORE_ISSUE_INVALID,
                    "boundary %s must be between %g and %g (got %s at %s)", name, -limit, limit,
                    clip(q, text), where);
    return 0;
}

/* One position as WGS84 longitude and latitude: as given, or converted from w->epsg (x, y in
 * that CRS's GIS order: easting first). where: its place in the document, for messages. */
static int
position(double out[2], walk *w, const json_t *pos, const char *where, core_err *err)
{
    core_err e = CORE_ERR_INIT;
    double x, y;

    if (w->epsg == 0 || w->epsg == GEO_WGS84_EPSG) {
        if (coordinate(&out[0], w, json_array_get(pos, 0), "longitude", 180.0, where, err) < 0 ||
            coordinate(&out[1], w, json_array_get(pos, 1), "latitude", 90.0, where, err) < 0)
            return -1;
        return 0;
    }
    if (coordinate(&x, w, json_array_get(pos, 0), "x", HUGE_VAL, where, err) < 0 ||
        coordinate(&y, w, json_array_get(pos, 1), "y", HUGE_VAL, where, err) < 0)
        return -1;
    if (geo_crs_to_wgs84(w->epsg, x, y, &out[0], &out[1], &e) < 0)
        return fail(w, err, e.status, e.code, "boundary position at %s: %s", where, e.msg);
    return 0;
}

/* Check the rings of one polygon (coordinates "where") and append their positions to w. */
static int
walk_polygon(walk *w, const json_t *rings, const char *where, core_err *err)
{
    const json_t *ring;
    size_t r;
    char at[128];

    if (!json_is_array(rings))
        return fail(w, err, 422, CORE_ISSUE_INVALID,
                    "boundary polygon must be an array of rings (got %s at %s)", describe(rings),
                    where);
    if (json_array_size(rings) == 0)
        return fail(w, err, 422, CORE_ISSUE_INVALID,
                    "boundary polygon must have an exterior ring (got an empty array at %s)",
                    where);
    json_array_foreach (rings, r, ring) {
        const json_t *pos;
        size_t i, n = json_array_size(ring), first = w->nxy;
        double first_raw[2] = { 0, 0 }, raw[2] = { 0, 0 };

        snprintf(at, sizeof(at), "%s[%zu]", where, r);
        if (!json_is_array(ring))
            return fail(w, err, 422, CORE_ISSUE_INVALID,
                        "boundary ring must be an array of positions (got %s at %s)",
                        describe(ring), at);
        json_array_foreach (ring, i, pos) {
            size_t dims = json_array_size(pos);
            char pat[160];

            snprintf(pat, sizeof(pat), "%s[%zu][%zu]", where, r, i);
            if (!json_is_array(pos) || dims < 2 || dims > 3 ||
                !core_json_is_number(json_array_get(pos, 0)) ||
                !core_json_is_number(json_array_get(pos, 1)) ||
                (dims == 3 && !core_json_is_number(json_array_get(pos, 2))))
                return fail(w, err, 422, CORE_ISSUE_INVALID,
                            "boundary position must be an array of 2 or 3 numbers [longitude, "
                            "latitude] (at %s)",
                            pat);
            if (position(raw, w, pos, pat, err) < 0)
                return -1;
            /* altitude: a number (checked above), dropped; boundaries are 2D */
            if (i == 0) {
                first_raw[0] = raw[0];
                first_raw[1] = raw[1];
            }
            assert(w->nxy < w->cap_xy);
            w->xy[2 * w->nxy] = snap(raw[0]);
            w->xy[2 * w->nxy + 1] = snap(raw[1]);
            w->nxy++;
        }
        /* RFC 7946 3.1.6: a linear ring is closed (first and last positions identical) and has
         * four or more positions. GEOS refuses unclosed rings at construction, with a message
         * that does not say which ring, and accepts 3-position closed rings only to call them
         * invalid later ("Too few points"), so both are reported here, precisely. */
        if (n > 0 && (raw[0] != first_raw[0] || raw[1] != first_raw[1])) {
            char a[48], b[48], c[48], d[48];
            return fail(
                w, err, 422, CORE_ISSUE_INVALID,
                "boundary ring is not closed: its first position [%s, %s] and last "
                "position [%s, %s] differ (at %s)",
                clip(a, core_json_number_text(json_array_get(json_array_get(ring, 0), 0))),
                clip(b, core_json_number_text(json_array_get(json_array_get(ring, 0), 1))),
                clip(c, core_json_number_text(json_array_get(json_array_get(ring, n - 1), 0))),
                clip(d, core_json_number_text(json_array_get(json_array_get(ring, n - 1), 1))), at);
        }
        if (n < 4)
            return fail(w, err, 422, CORE_ISSUE_INVALID,
                        "boundary ring must have at least 4 positions, the last equal to the "
                        "first (got %zu at %s)",
                        n, at);
        assert(w->nrings < w->cap_rings);
        w->ring_len[w->nrings++] = w->nxy - first;
    }
    assert(w->npolys < w->cap_polys);
    w->poly_rings[w->npolys++] = json_array_size(rings);
    return 0;
}

/* Check the coordinates of geometry g and collect them into w, after the vertex cap. */
static int
walk_geometry(walk *w, const json_t *g, core_err *err)
{
    const json_t *coords = json_object_get(g, "coordinates"), *poly;
    size_t p, nverts = 0, nrings = 0, npolys = 0;
    char where[128];

    if (!json_is_array(coords))
        return fail(w, err, 422, CORE_ISSUE_INVALID,
                    "boundary %s must have an array \"coordinates\" (got %s at %s)",
                    w->multi ? "MultiPolygon" : "Polygon", coords ? describe(coords) : "nothing",
                    w->coords);
    if (w->multi) {
        json_array_foreach (coords, p, poly) {
            nverts += count_polygon(poly, &nrings);
            npolys++;
        }
        if (npolys == 0)
            return fail(w, err, 422, CORE_ISSUE_INVALID,
                        "boundary MultiPolygon must have at least one polygon (got an empty array "
                        "at %s)",
                        w->coords);
    } else {
        nverts = count_polygon(coords, &nrings);
        npolys = 1;
    }
    if (nverts > w->lim.max_vertices)
        return fail(w, err, 413, CORE_ISSUE_TOO_LONG,
                    "boundary must have at most %zu vertices (got %zu)", w->lim.max_vertices,
                    nverts);
    w->xy = malloc((nverts ? nverts : 1) * 2 * sizeof(double));
    w->ring_len = malloc((nrings ? nrings : 1) * sizeof(size_t));
    w->poly_rings = malloc(npolys * sizeof(size_t));
    if (!w->xy || !w->ring_len || !w->poly_rings)
        return fail(w, err, 500, CORE_ISSUE_EXCEPTION, "out of memory reading the boundary");
    w->cap_xy = nverts;
    w->cap_rings = nrings;
    w->cap_polys = npolys;
    if (!w->multi)
        return walk_polygon(w, coords, w->coords, err);
    json_array_foreach (coords, p, poly) {
        snprintf(where, sizeof(where), "%s[%zu]", w->coords, p);
        if (walk_polygon(w, poly, where, err) < 0)
            return -1;
    }
    return 0;
}

/* ---- GEOS geometry ----------------------------------------------------------------------- */

/* Build the GEOS geometry of the positions in w (all checked: closed rings of 4+ positions). */
static GEOSGeometry *
build(geo_ctx *ctx, const walk *w)
{
    GEOSContextHandle_t h = ctx->h;
    GEOSGeometry **rings = NULL, **polys = NULL, *g = NULL;
    size_t p, r, ring = 0, off = 0, k;

    rings = malloc(w->nrings * sizeof(*rings));
    polys = malloc(w->npolys * sizeof(*polys));
    if (!rings || !polys)
        goto done;
    for (p = 0; p < w->npolys; p++) {
        size_t nr = w->poly_rings[p];
        for (r = 0; r < nr; r++, ring++) {
            GEOSCoordSequence *seq = GEOSCoordSeq_copyFromBuffer_r(
                h, w->xy + 2 * off, (unsigned)w->ring_len[ring], 0, 0);
            off += w->ring_len[ring];
            /* createLinearRing takes the sequence, also when it fails */
            rings[r] = seq ? GEOSGeom_createLinearRing_r(h, seq) : NULL;
            if (!rings[r]) {
                for (k = 0; k < r; k++)
                    GEOSGeom_destroy_r(h, rings[k]);
                goto fail_polys;
            }
        }
        /* createPolygon takes the rings (not the array) */
        polys[p] = GEOSGeom_createPolygon_r(h, rings[0], rings + 1, (unsigned)(nr - 1));
        if (!polys[p])
            goto fail_polys;
    }
    if (!w->multi) {
        g = polys[0];
        goto done;
    }
    g = GEOSGeom_createCollection_r(h, GEOS_MULTIPOLYGON, polys, (unsigned)w->npolys);
    goto done;
fail_polys:
    for (k = 0; k < p; k++)
        GEOSGeom_destroy_r(h, polys[k]);
done:
    free(rings);
    free(polys);
    return g;
}

/* A coordinate in its shortest form with at most 7 decimals, "-0" written "0". Integer
 * arithmetic: exact on the grid and independent of the locale. */
static size_t
format_coord(char out[32], double v)
{
    long long k, ip, fp;
    size_t n = 0;
    char frac[DECIMALS + 1];
    int d;

    if (!(fabs(v) < 1e9)) /* never for degrees; keep the value rather than overflow */
        return (size_t)snprintf(out, 32, "%.17g", v);
    k = llround(v * GRID_SCALE);
    if (k < 0) {
        out[n++] = '-';
        k = -k;
    }
    ip = k / (long long)GRID_SCALE;
    fp = k % (long long)GRID_SCALE;
    n += (size_t)snprintf(out + n, 32 - n, "%lld", ip);
    if (fp) {
        for (d = DECIMALS - 1; d >= 0; d--, fp /= 10)
            frac[d] = (char)('0' + fp % 10);
        for (d = DECIMALS; d > 0 && frac[d - 1] == '0'; d--)
            ;
        out[n++] = '.';
        memcpy(out + n, frac, (size_t)d);
        n += (size_t)d;
    }
    out[n] = '\0';
    return n;
}

/* The polygons of g (Polygon or MultiPolygon) as flat positions in w, snapped to the grid. */
static int
flatten(walk *w, geo_ctx *ctx, const GEOSGeometry *g)
{
    GEOSContextHandle_t h = ctx->h;
    int multi = GEOSGeomTypeId_r(h, g) == GEOS_MULTIPOLYGON;
    int np = multi ? GEOSGetNumGeometries_r(h, g) : 1, p, r, nholes;
    int ncoords = GEOSGetNumCoordinates_r(h, g);
    size_t nrings = 0, k;

    if (np < 1 || ncoords < 0)
        return -1;
    for (p = 0; p < np; p++) {
        nholes = GEOSGetNumInteriorRings_r(h, multi ? GEOSGetGeometryN_r(h, g, p) : g);
        if (nholes < 0)
            return -1;
        nrings += (size_t)nholes + 1;
    }
    w->multi = multi;
    w->xy = malloc(((size_t)ncoords + 1) * 2 * sizeof(double));
    w->ring_len = malloc(nrings * sizeof(size_t));
    w->poly_rings = malloc((size_t)np * sizeof(size_t));
    if (!w->xy || !w->ring_len || !w->poly_rings)
        return -1;
    w->cap_xy = (size_t)ncoords;
    w->cap_rings = nrings;
    w->cap_polys = (size_t)np;
    for (p = 0; p < np; p++) {
        const GEOSGeometry *poly = multi ? GEOSGetGeometryN_r(h, g, p) : g;
        nholes = GEOSGetNumInteriorRings_r(h, poly);
        for (r = -1; r < nholes; r++) {
            const GEOSGeometry *ring =
                r < 0 ? GEOSGetExteriorRing_r(h, poly) : GEOSGetInteriorRingN_r(h, poly, r);
            const GEOSCoordSequence *seq = ring ? GEOSGeom_getCoordSeq_r(h, ring) : NULL;
            unsigned n = 0;

            if (!seq || !GEOSCoordSeq_getSize_r(h, seq, &n) || w->nxy + n > w->cap_xy ||
                !GEOSCoordSeq_copyToBuffer_r(h, seq, w->xy + 2 * w->nxy, 0, 0))
                return -1;
            for (k = 2 * w->nxy; k < 2 * (w->nxy + n); k++)
                w->xy[k] = snap(w->xy[k]);
            w->nxy += n;
            w->ring_len[w->nrings++] = n;
        }
        w->poly_rings[w->npolys++] = (size_t)nholes + 1;
    }
    return 0;
}

/* "reason at or near point (x y)" from GEOSisValidDetail_r's output. */
static void
format_reason(char *out, size_t cap, geo_ctx *ctx, const char *reason, const GEOSGeometry *loc)
{
    double x, y;
    char xs[32], ys[32];

    if (loc && !GEOSisEmpty_r(ctx->h, loc) && GEOSGeomGetX_r(ctx->h, loc, &x) == 1 &&
        GEOSGeomGetY_r(ctx->h, loc, &y) == 1) {
        format_coord(xs, x);
        format_coord(ys, y);
        snprintf(out, cap, "%s at or near point (%s %s)", reason ? reason : "invalid geometry", xs,
                 ys);
    } else {
        snprintf(out, cap, "%s", reason ? reason : "invalid geometry");
    }
}

/* 1 valid, 0 invalid (reason in why), -1 GEOS failed. Flags 0: OGC rules, as PostGIS's
 * ST_IsValid, so what we accept the database accepts. */
static int
validate(geo_ctx *ctx, const GEOSGeometry *g, char *why, size_t cap)
{
    char *reason = NULL;
    GEOSGeometry *loc = NULL;
    char v = GEOSisValidDetail_r(ctx->h, g, 0, &reason, &loc);

    if (v == 0)
        format_reason(why, cap, ctx, reason, loc);
    GEOSFree_r(ctx->h, reason);
    if (loc)
        GEOSGeom_destroy_r(ctx->h, loc);
    return v == 1 ? 1 : v == 0 ? 0 : -1;
}

/* Append clones of the non-empty polygons in g (recursing into collections) to parts. */
static int
collect_polygons(geo_ctx *ctx, const GEOSGeometry *g, GEOSGeometry **parts, size_t *n, size_t cap)
{
    int type = GEOSGeomTypeId_r(ctx->h, g), i, count;

    if (type == GEOS_POLYGON) {
        if (GEOSisEmpty_r(ctx->h, g) || *n >= cap)
            return 0;
        parts[*n] = GEOSGeom_clone_r(ctx->h, g);
        if (!parts[*n])
            return -1;
        (*n)++;
        return 0;
    }
    if (type != GEOS_MULTIPOLYGON && type != GEOS_GEOMETRYCOLLECTION)
        return 0; /* lines and points left by collapsed parts */
    count = GEOSGetNumGeometries_r(ctx->h, g);
    for (i = 0; i < count; i++)
        if (collect_polygons(ctx, GEOSGetGeometryN_r(ctx->h, g, i), parts, n, cap) < 0)
            return -1;
    return 0;
}

static size_t
count_parts(geo_ctx *ctx, const GEOSGeometry *g)
{
    int type = GEOSGeomTypeId_r(ctx->h, g), i, count;
    size_t n = 0;

    if (type == GEOS_POLYGON)
        return 1;
    if (type != GEOS_MULTIPOLYGON && type != GEOS_GEOMETRYCOLLECTION)
        return 0;
    count = GEOSGetNumGeometries_r(ctx->h, g);
    for (i = 0; i < count; i++)
        n += count_parts(ctx, GEOSGetGeometryN_r(ctx->h, g, i));
    return n;
}

/* Repair *g (invalid because of why): GEOSMakeValid_r (linework method), keep the polygonal
 * parts, snap them back to the grid (GEOS_PREC_VALID_OUTPUT keeps polygons valid) and check
 * again. Replaces *g on success. */
static int
repair(geo_ctx *ctx, GEOSGeometry **g, walk *w, const char *why, core_err *err)
{
    GEOSContextHandle_t h = ctx->h;
    GEOSGeometry *made = NULL, *poly = NULL, *snapped = NULL, *rebuilt, **parts = NULL;
    walk w2 = { 0 };
    size_t n = 0, cap, k;
    char why2[200];
    int rc = -1, v;

    made = GEOSMakeValid_r(h, *g);
    if (!made) {
        core_log(CORE_LOG_WARN, "GEOSMakeValid failed: %s", ctx->error);
        fail(w, err, 422, CORE_ISSUE_INVALID,
             "boundary is not valid and could not be repaired: %s (GEOS: %s)", why, ctx->error);
        goto done;
    }
    cap = count_parts(ctx, made);
    parts = malloc((cap ? cap : 1) * sizeof(*parts));
    if (!parts || collect_polygons(ctx, made, parts, &n, cap) < 0) {
        geos_failed(ctx, err, "repaired");
        goto done;
    }
    if (n == 0) {
        fail(w, err, 422, CORE_ISSUE_INVALID,
             "boundary is not valid and repairing it leaves no area: %s", why);
        goto done;
    }
    if (n == 1) {
        poly = parts[0];
    } else {
        /* takes the parts, also when it fails */
        poly = GEOSGeom_createCollection_r(h, GEOS_MULTIPOLYGON, parts, (unsigned)n);
        if (!poly) {
            n = 0;
            geos_failed(ctx, err, "repaired");
            goto done;
        }
    }
    n = 0;
    /* MakeValid computes new nodes off the grid; snapping with a valid-output precision reducer
     * (it unions the parts) keeps the stored text and the validated geometry the same. */
    snapped = GEOSGeom_setPrecision_r(h, poly, 1.0 / GRID_SCALE, GEOS_PREC_VALID_OUTPUT);
    if (!snapped) {
        geos_failed(ctx, err, "repaired");
        goto done;
    }
    v = GEOSGeomTypeId_r(h, snapped);
    if ((v != GEOS_POLYGON && v != GEOS_MULTIPOLYGON) || GEOSisEmpty_r(h, snapped)) {
        fail(w, err, 422, CORE_ISSUE_INVALID,
             "boundary is not valid and repairing it leaves no area: %s", why);
        goto done;
    }
    /* GEOS 3.11 snaps by multiplying with the inexact grid size (-11.8 comes out as
     * -11.799999999999999): move each coordinate to the double nearest its grid point (at most
     * an ulp away, so the topology is that of the snapped geometry) and rebuild. */
    if (flatten(&w2, ctx, snapped) < 0 || (rebuilt = build(ctx, &w2)) == NULL) {
        geos_failed(ctx, err, "repaired");
        goto done;
    }
    GEOSGeom_destroy_r(h, snapped);
    snapped = rebuilt;
    v = validate(ctx, snapped, why2, sizeof(why2));
    if (v < 0) {
        geos_failed(ctx, err, "validated");
        goto done;
    }
    if (v == 0) {
        fail(w, err, 422, CORE_ISSUE_INVALID,
             "boundary is not valid and could not be repaired: %s (after repair: %s)", why, why2);
        goto done;
    }
    GEOSGeom_destroy_r(h, *g);
    *g = snapped;
    snapped = NULL;
    rc = 0;
done:
    for (k = 0; k < n; k++)
        GEOSGeom_destroy_r(h, parts[k]);
    free(parts);
    if (poly)
        GEOSGeom_destroy_r(h, poly);
    if (snapped)
        GEOSGeom_destroy_r(h, snapped);
    if (made)
        GEOSGeom_destroy_r(h, made);
    free(w2.xy);
    free(w2.ring_len);
    free(w2.poly_rings);
    return rc;
}

int
geo_boundary_parse(geo_boundary **out,
                   geo_ctx *ctx,
                   const char *data,
                   size_t len,
                   const geo_boundary_opts *opts_in,
                   core_err *err)
{
    static const geo_boundary_opts defaults = GEO_BOUNDARY_OPTS_INIT;
    const geo_boundary_opts *opts = opts_in ? opts_in : &defaults;
    walk w = { 0 };
    char *decoded = NULL, why[200];
    const char *text = data;
    size_t text_len = len, pre;
    json_t *root = NULL;
    const json_t *geom = NULL;
    geo_boundary *b = NULL;
    GEOSGeometry *g = NULL;
    core_err jerr = CORE_ERR_INIT;
    int rc = -1, v;

    *out = NULL;
    clear_messages(ctx);
    w.lim.max_vertices =
        opts->lim.max_vertices ? opts->lim.max_vertices : GEO_BOUNDARY_MAX_VERTICES;
    w.lim.max_bytes = opts->lim.max_bytes ? opts->lim.max_bytes : GEO_BOUNDARY_MAX_BYTES;
    w.convert_crs = opts->convert_crs;
    if (opts->ext_index >= 0)
        snprintf(w.expr, sizeof(w.expr), "%s.extension[%d].valueAttachment.data",
                 opts->path ? opts->path : "Location", opts->ext_index);

    if (opts->is_base64) {
        if (base64_decode(&decoded, &text_len, &w, data, len, err) < 0)
            goto done;
        text = decoded;
    } else if (len > w.lim.max_bytes) {
        fail(&w, err, 413, CORE_ISSUE_TOO_LONG,
             "boundary GeoJSON must be at most %zu bytes (got %zu)", w.lim.max_bytes, len);
        goto done;
    } else if (len == 0) {
        fail(&w, err, 422, CORE_ISSUE_INVALID, "boundary data is empty");
        goto done;
    }
    pre = precount_positions(text, text_len);
    if (pre > w.lim.max_vertices) {
        fail(&w, err, 413, CORE_ISSUE_TOO_LONG, "boundary must have at most %zu vertices (got %zu)",
             w.lim.max_vertices, pre);
        goto done;
    }
    root = core_json_parse(text, text_len, &jerr);
    if (!root) {
        if (jerr.status == 400)
            fail(&w, err, 422, CORE_ISSUE_INVALID, "boundary is not valid GeoJSON: %s", jerr.msg);
        else
            fail(&w, err, jerr.status, jerr.code, "%s", jerr.msg);
        goto done;
    }
    if (find_geometry(&geom, &w, root, err) < 0 || walk_geometry(&w, geom, err) < 0)
        goto done;
    json_decref(root);
    root = NULL;
    free(decoded);
    decoded = NULL;

    g = build(ctx, &w);
    if (!g) {
        geos_failed(ctx, err, "built");
        goto done;
    }
    v = validate(ctx, g, why, sizeof(why));
    if (v < 0) {
        geos_failed(ctx, err, "validated");
        goto done;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        fail(&w, err, 500, CORE_ISSUE_EXCEPTION, "out of memory reading the boundary");
        goto done;
    }
    if (v == 0) {
        if (!opts->repair) {
            fail(&w, err, 422, CORE_ISSUE_INVALID, "boundary is not valid: %s", why);
            goto done;
        }
        if (repair(ctx, &g, &w, why, err) < 0)
            goto done;
        b->repaired = 1;
        core_strlcpy(b->repair_reason, why, sizeof(b->repair_reason));
    }
    if (GEOSGeom_getXMin_r(ctx->h, g, &b->bbox.min_lon) != 1 ||
        GEOSGeom_getYMin_r(ctx->h, g, &b->bbox.min_lat) != 1 ||
        GEOSGeom_getXMax_r(ctx->h, g, &b->bbox.max_lon) != 1 ||
        GEOSGeom_getYMax_r(ctx->h, g, &b->bbox.max_lat) != 1 ||
        (v = GEOSGetNumCoordinates_r(ctx->h, g)) < 0) {
        geos_failed(ctx, err, "measured");
        goto done;
    }
    b->vertices = (size_t)v;
    b->multi = GEOSGeomTypeId_r(ctx->h, g) == GEOS_MULTIPOLYGON;
    b->source_epsg = w.epsg == GEO_WGS84_EPSG ? 0 : w.epsg;
    b->g = g;
    g = NULL;
    *out = b;
    b = NULL;
    rc = 0;
done:
    free(b);
    if (g)
        GEOSGeom_destroy_r(ctx->h, g);
    json_decref(root);
    free(decoded);
    free(w.xy);
    free(w.ring_len);
    free(w.poly_rings);
    return rc;
}

void
geo_boundary_free(geo_ctx *ctx, geo_boundary *b)
{
    if (!b)
        return;
    GEOSGeom_destroy_r(ctx->h, b->g);
    free(b);
}

size_t
geo_boundary_vertices(const geo_boundary *b)
{
    return b->vertices;
}

void
geo_boundary_bbox(geo_bbox *out, const geo_boundary *b)
{
    *out = b->bbox;
}

int
geo_boundary_is_multi(const geo_boundary *b)
{
    return b->multi;
}

const char *
geo_boundary_repair_reason(const geo_boundary *b)
{
    return b->repaired ? b->repair_reason : NULL;
}

int
geo_boundary_source_epsg(const geo_boundary *b)
{
    return b->source_epsg;
}

/* ---- GeoJSON output ---------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void
put(sbuf *s, const char *t, size_t n)
{
    if (s->oom)
        return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        char *p;
        while (cap < s->len + n + 1)
            cap *= 2;
        p = realloc(s->p, cap);
        if (!p) {
            s->oom = 1;
            return;
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->len, t, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void
puts_(sbuf *s, const char *t)
{
    put(s, t, strlen(t));
}

/* [[x,y],...] of a ring. */
static int
put_ring(sbuf *s, geo_ctx *ctx, const GEOSGeometry *ring)
{
    const GEOSCoordSequence *seq = GEOSGeom_getCoordSeq_r(ctx->h, ring);
    unsigned n = 0, i;
    double *xy;
    char num[32];

    if (!seq || !GEOSCoordSeq_getSize_r(ctx->h, seq, &n))
        return -1;
    xy = malloc((n ? n : 1) * 2 * sizeof(double));
    if (!xy || !GEOSCoordSeq_copyToBuffer_r(ctx->h, seq, xy, 0, 0)) {
        free(xy);
        return -1;
    }
    puts_(s, "[");
    for (i = 0; i < n; i++) {
        puts_(s, i ? ",[" : "[");
        put(s, num, format_coord(num, xy[2 * i]));
        puts_(s, ",");
        put(s, num, format_coord(num, xy[2 * i + 1]));
        puts_(s, "]");
    }
    puts_(s, "]");
    free(xy);
    return 0;
}

/* [shell, holes...] of a polygon. */
static int
put_polygon(sbuf *s, geo_ctx *ctx, const GEOSGeometry *poly)
{
    int i, nholes;

    puts_(s, "[");
    if (GEOSisEmpty_r(ctx->h, poly)) {
        puts_(s, "]");
        return 0;
    }
    nholes = GEOSGetNumInteriorRings_r(ctx->h, poly);
    if (nholes < 0 || put_ring(s, ctx, GEOSGetExteriorRing_r(ctx->h, poly)) < 0)
        return -1;
    for (i = 0; i < nholes; i++) {
        puts_(s, ",");
        if (put_ring(s, ctx, GEOSGetInteriorRingN_r(ctx->h, poly, i)) < 0)
            return -1;
    }
    puts_(s, "]");
    return 0;
}

static int
write_geojson(char **out, size_t *len_out, geo_ctx *ctx, const GEOSGeometry *g, core_err *err)
{
    sbuf s = { 0 };
    int type = GEOSGeomTypeId_r(ctx->h, g), i, n;

    if (type == GEOS_POLYGON) {
        puts_(&s, "{\"type\":\"Polygon\",\"coordinates\":");
        if (put_polygon(&s, ctx, g) < 0)
            goto fail;
    } else if (type == GEOS_MULTIPOLYGON) {
        puts_(&s, "{\"type\":\"MultiPolygon\",\"coordinates\":[");
        n = GEOSGetNumGeometries_r(ctx->h, g);
        for (i = 0; i < n; i++) {
            if (i)
                puts_(&s, ",");
            if (put_polygon(&s, ctx, GEOSGetGeometryN_r(ctx->h, g, i)) < 0)
                goto fail;
        }
        puts_(&s, "]");
    } else {
        goto fail;
    }
    puts_(&s, "}");
    if (s.oom) {
        free(s.p);
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory writing the boundary");
    }
    *out = s.p;
    if (len_out)
        *len_out = s.len;
    return 0;
fail:
    free(s.p);
    return geos_failed(ctx, err, "written");
}

int
geo_boundary_geojson(
    char **out, size_t *len_out, geo_ctx *ctx, const geo_boundary *b, core_err *err)
{
    *out = NULL;
    clear_messages(ctx);
    return write_geojson(out, len_out, ctx, b->g, err);
}

int
geo_boundary_simplify(char **out,
                      size_t *len_out,
                      geo_ctx *ctx,
                      const geo_boundary *b,
                      double tolerance,
                      core_err *err)
{
    GEOSGeometry *simple;
    int rc;

    *out = NULL;
    clear_messages(ctx);
    if (!isfinite(tolerance) || tolerance < 0)
        return core_err_set(err, 400, CORE_ISSUE_VALUE,
                            "simplification tolerance must be a number of degrees >= 0 (got %g)",
                            tolerance);
    simple = GEOSTopologyPreserveSimplify_r(ctx->h, b->g, tolerance);
    if (!simple)
        return geos_failed(ctx, err, "simplified");
    rc = write_geojson(out, len_out, ctx, simple, err);
    GEOSGeom_destroy_r(ctx->h, simple);
    return rc;
}
