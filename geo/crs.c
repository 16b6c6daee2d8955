/* Coordinate reference systems: names of EPSG codes as clients write them, and conversion of
 * coordinates given in another CRS (UTM zones, national grids, web mercator) to WGS84 with PROJ.
 * PROJ state is per thread, like GEOS's: a PJ_CONTEXT made on first use (network off, so PROJ
 * never downloads grids nor writes a cache) and a few transformations to WGS84 kept by EPSG
 * code, all freed by geo_crs_thread_cleanup when the thread ends. */
#include <math.h>
#include <proj.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "geo/geo.h"

/* Transformations kept per thread: a registry sees few CRSs (a country's UTM zones, its
 * national grid, web mercator), so a small array with least-recently-used replacement. */
#define CACHE_SIZE 8

/* Where Debian's proj-data puts the EPSG database, tried when PROJ finds none by itself
 * (PROJ_DATA / PROJ_LIB unset and a library built with another default). */
#define PROJ_DB_FALLBACK "/usr/share/proj/proj.db"

typedef struct cached {
    int epsg;           /* 0: free slot */
    PJ *to_wgs84;       /* normalised for visualisation: x/y in GIS order in, lon/lat out */
    unsigned long used; /* tick of last use */
} cached;

typedef struct crs_state {
    PJ_CONTEXT *ctx;
    int db_ok; /* proj.db found */
    cached cache[CACHE_SIZE];
    unsigned long tick;
    char last[256]; /* last message PROJ logged, for our log */
} crs_state;

static _Thread_local crs_state *thread_crs;

/* PROJ reports through the context's log function instead of stderr: keep the last message. */
static void
on_log(void *data, int level, const char *msg)
{
    crs_state *s = data;
    (void)level;
    core_strlcpy(s->last, msg ? msg : "", sizeof(s->last));
}

void
geo_crs_thread_cleanup(void)
{
    crs_state *s = thread_crs;
    size_t i;

    if (!s)
        return;
    for (i = 0; i < CACHE_SIZE; i++)
        proj_destroy(s->cache[i].to_wgs84); /* NULL is a no-op */
    proj_context_destroy(s->ctx);           /* after every PJ made with it */
    free(s);
    thread_crs = NULL;
}

/* This thread's PROJ state with a usable EPSG database, or NULL with err (500, logged). */
static crs_state *
state(core_err *err)
{
    crs_state *s = thread_crs;

    if (s && s->db_ok)
        return s;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s || !(s->ctx = proj_context_create())) {
            free(s);
            core_err_set(err, 500, CORE_ISSUE_EXCEPTION,
                         "coordinate conversion is not available (out of memory)");
            return NULL;
        }
        proj_log_func(s->ctx, s, on_log);
        proj_log_level(s->ctx, PJ_LOG_ERROR);
        /* never the network (CDN grids) and never a local grid cache: no writable home needed */
        proj_context_set_enable_network(s->ctx, 0);
        proj_grid_cache_set_enable(s->ctx, 0);
        thread_crs = s;
    }
    /* Opening the database is what finds proj.db; on failure try Debian's place once per
     * call (a later call retries, so a fixed installation needs no restart). */
    if (proj_context_get_database_path(s->ctx) ||
        proj_context_set_database_path(s->ctx, PROJ_DB_FALLBACK, NULL, NULL)) {
        s->db_ok = 1;
        return s;
    }
    core_log(CORE_LOG_ERROR,
             "PROJ cannot open its EPSG database proj.db (%s); install proj-data or set "
             "PROJ_DATA to the folder holding proj.db",
             s->last[0] ? s->last : "no message");
    core_err_set(err, 500, CORE_ISSUE_EXCEPTION,
                 "coordinate conversion is not available (the EPSG database is missing)");
    return NULL;
}

/* ---- names ------------------------------------------------------------------------------- */

/* CRS names that mean WGS84 longitude/latitude (OGC CRS84). */
static const char *const crs84_names[] = {
    "CRS84",
    "OGC:CRS84",
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "urn:ogc:def:crs:OGC:2:84",
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "https://www.opengis.net/def/crs/OGC/1.3/CRS84",
};

/* If s starts with prefix (any case), the rest; else NULL. */
static const char *
after_prefix(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncasecmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* A whole EPSG code: 1 to 9 digits without a leading zero (EPSG codes are positive integers). */
static int
code_of(const char *s, int *out)
{
    size_t n = strlen(s), i;
    long v = 0;

    if (n < 1 || n > 9 || s[0] == '0')
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = (int)v;
    return 0;
}

/* A user value for a message (core_clip). */
static const char *
clip(char out[48], const char *s)
{
    return core_clip(out, s, strlen(s));
}

int
geo_crs_parse(const char *name, int *epsg, core_err *err)
{
    static const char accepted[] =
        "coordinate reference system must be EPSG:NNNN, urn:ogc:def:crs:EPSG::NNNN, "
        "http://www.opengis.net/def/crs/EPSG/0/NNNN or CRS84";
    const char *rest;
    char q[48];
    size_t i;

    if (!name || !name[0])
        return core_err_set(err, 422, CORE_ISSUE_INVALID, "%s (got nothing)", accepted);
    for (i = 0; i < sizeof(crs84_names) / sizeof(crs84_names[0]); i++)
        if (strcasecmp(name, crs84_names[i]) == 0) {
            *epsg = GEO_WGS84_EPSG;
            return 0;
        }
    if ((rest = after_prefix(name, "EPSG:")) != NULL && code_of(rest, epsg) == 0)
        return 0;
    /* urn:ogc:def:crs:EPSG:<version>:<code>, the version usually empty ("EPSG::32628"); some
     * GeoJSON 2008 writers left out the version field ("urn:ogc:def:crs:EPSG:4326") */
    if ((rest = after_prefix(name, "urn:ogc:def:crs:EPSG:")) != NULL) {
        if (code_of(rest, epsg) == 0)
            return 0;
        while ((*rest >= '0' && *rest <= '9') || *rest == '.')
            rest++;
        if (*rest == ':' && code_of(rest + 1, epsg) == 0)
            return 0;
    }
    if (((rest = after_prefix(name, "http://www.opengis.net/def/crs/EPSG/0/")) != NULL ||
         (rest = after_prefix(name, "https://www.opengis.net/def/crs/EPSG/0/")) != NULL) &&
        code_of(rest, epsg) == 0)
        return 0;
    return core_err_set(err, 422, CORE_ISSUE_INVALID, "%s (got \"%s\")", accepted, clip(q, name));
}

/* ---- transformations --------------------------------------------------------------------- */

/* A 2D geographic or projected CRS from the EPSG database, or NULL with err. */
static PJ *
source_crs(crs_state *s, int epsg, core_err *err)
{
    char code[16];
    PJ *crs, *cs;
    PJ_TYPE type;
    int axes = 0;

    snprintf(code, sizeof(code), "%d", epsg);
    s->last[0] = '\0';
    crs = proj_create_from_database(s->ctx, "EPSG", code, PJ_CATEGORY_CRS, 0, NULL);
    if (!crs) {
        core_err_set(err, 422, CORE_ISSUE_INVALID, "unknown coordinate reference system EPSG:%d",
                     epsg);
        return NULL;
    }
    type = proj_get_type(crs);
    if (type == PJ_TYPE_GEOGRAPHIC_2D_CRS || type == PJ_TYPE_PROJECTED_CRS) {
        cs = proj_crs_get_coordinate_system(s->ctx, crs);
        axes = cs ? proj_cs_get_axis_count(s->ctx, cs) : 0;
        proj_destroy(cs);
    }
    if (axes != 2) {
        proj_destroy(crs);
        core_err_set(err, 422, CORE_ISSUE_INVALID,
                     "EPSG:%d is not a two-dimensional geographic or projected coordinate "
                     "reference system",
                     epsg);
        return NULL;
    }
    return crs;
}

/* The cached transformation EPSG:epsg → WGS84 (lon, lat), made on first use; NULL with err. */
static PJ *
to_wgs84(int epsg, core_err *err)
{
    crs_state *s = state(err);
    cached *slot;
    PJ *src = NULL, *dst = NULL, *op = NULL, *norm = NULL;
    size_t i;

    if (!s)
        return NULL;
    s->tick++;
    slot = &s->cache[0];
    for (i = 0; i < CACHE_SIZE; i++) {
        if (s->cache[i].epsg == epsg) {
            s->cache[i].used = s->tick;
            return s->cache[i].to_wgs84;
        }
        if (s->cache[i].used < slot->used)
            slot = &s->cache[i]; /* free slots have used 0: taken first */
    }
    if (!(src = source_crs(s, epsg, err)))
        return NULL;
    dst = proj_create_from_database(s->ctx, "EPSG", "4326", PJ_CATEGORY_CRS, 0, NULL);
    op = dst ? proj_create_crs_to_crs_from_pj(s->ctx, src, dst, NULL, NULL) : NULL;
    norm = op ? proj_normalize_for_visualization(s->ctx, op) : NULL;
    proj_destroy(op);
    proj_destroy(dst);
    proj_destroy(src);
    if (!norm) {
        core_log(CORE_LOG_WARN, "PROJ: no transformation from EPSG:%d to EPSG:4326: %s", epsg,
                 s->last[0] ? s->last : "no message");
        core_err_set(err, 422, CORE_ISSUE_INVALID,
                     "no transformation from EPSG:%d to WGS84 is available", epsg);
        return NULL;
    }
    proj_destroy(slot->to_wgs84);
    slot->epsg = epsg;
    slot->to_wgs84 = norm;
    slot->used = s->tick;
    return norm;
}

int
geo_crs_check(int epsg, core_err *err)
{
    if (epsg == GEO_WGS84_EPSG)
        return 0;
    if (epsg <= 0)
        return core_err_set(err, 422, CORE_ISSUE_INVALID,
                            "unknown coordinate reference system EPSG:%d", epsg);
    return to_wgs84(epsg, err) ? 0 : -1;
}

/* The inverse of a conversion lands back on the input, within 1e-7 of its magnitude (9 mm for a
 * UTM northing of 9,000 km; PROJ's own round trip is at the nanometre level). Outside what a
 * projection can represent its formulas still give numbers, e.g. a UTM northing of 1e12 m
 * "converts" to latitude 32: the way back exposes them. */
static int
round_trips(PJ *op, PJ_COORD wgs84, double x, double y)
{
    PJ_COORD back = proj_trans(op, PJ_INV, wgs84);
    double tol = 1e-7 * fmax(1.0, fmax(fabs(x), fabs(y)));

    proj_errno_reset(op);
    return isfinite(back.xy.x) && isfinite(back.xy.y) && fabs(back.xy.x - x) <= tol &&
           fabs(back.xy.y - y) <= tol;
}

int
geo_crs_to_wgs84(int epsg, double x, double y, double *lon, double *lat, core_err *err)
{
    PJ *op = NULL;
    PJ_COORD out;
    int e;

    if (!isfinite(x) || !isfinite(y))
        return core_err_set(err, 422, CORE_ISSUE_INVALID,
                            "coordinates in EPSG:%d must be finite numbers (got x %.10g, y %.10g)",
                            epsg, x, y);
    if (epsg == GEO_WGS84_EPSG) {
        /* GIS order of WGS84 is longitude, latitude: nothing to convert */
        out.xy.x = x;
        out.xy.y = y;
    } else {
        if (epsg <= 0)
            return core_err_set(err, 422, CORE_ISSUE_INVALID,
                                "unknown coordinate reference system EPSG:%d", epsg);
        if (!(op = to_wgs84(epsg, err)))
            return -1;
        proj_errno_reset(op);
        out = proj_trans(op, PJ_FWD, proj_coord(x, y, 0, HUGE_VAL));
        if ((e = proj_errno(op)) != 0) {
            const char *why = proj_context_errno_string(thread_crs->ctx, e);
            proj_errno_reset(op);
            return core_err_set(err, 422, CORE_ISSUE_INVALID,
                                "coordinates x %.10g, y %.10g in EPSG:%d do not convert to WGS84 "
                                "(%s)",
                                x, y, epsg, why ? why : "PROJ failed");
        }
    }
    /* PROJ answers HUGE_VAL where it cannot compute */
    if (!isfinite(out.xy.x) || !isfinite(out.xy.y) || out.xy.y < -90.0 || out.xy.y > 90.0 ||
        out.xy.x < -180.0 || out.xy.x > 180.0)
        return core_err_set(err, 422, CORE_ISSUE_INVALID,
                            "coordinates x %.10g, y %.10g in EPSG:%d do not convert to a WGS84 "
                            "position (got longitude %.10g, latitude %.10g)",
                            x, y, epsg, out.xy.x, out.xy.y);
    if (op && !round_trips(op, out, x, y))
        return core_err_set(err, 422, CORE_ISSUE_INVALID,
                            "coordinates x %.10g, y %.10g in EPSG:%d do not convert to WGS84 "
                            "(outside what the coordinate reference system can represent)",
                            x, y, epsg);
    *lon = out.xy.x;
    *lat = out.xy.y;
    return 0;
}
