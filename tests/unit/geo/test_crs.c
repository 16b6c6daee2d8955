/* Unit tests of geo/crs.c and the CRS conversion of geo_boundary_parse: CRS names, conversions
 * of known points compared with values computed independently of PROJ, GIS axis order, unknown
 * or unusable codes, inputs that do not convert, the per-thread cache and cleanup, threads.
 *
 * Where the expected values come from: UTM points by the Krüger series to order n^6 (Karney
 * 2011, "Transverse Mercator with an accuracy of a few nanometers"), the function utmToWgs84 in
 * tests/e2e/crs.test.mjs (itself checked there against a numerically integrated meridian arc),
 * printed with 12 decimals; each also agrees with `cs2cs EPSG:326zz EPSG:4326` (proj-bin 9.1.1)
 * to 1e-12 degree. Web mercator by its closed form, lon = x / a, lat =
 * atan(sinh(y / a)) with a = 6378137 m. On a UTM central meridian at the equator the answer is
 * exact by definition: (zone * 6 - 183, 0). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo/geo.h"

#define EXPR "Location.extension[0].valueAttachment.data"

/* Expected WGS84 longitude, latitude (see the top of the file for the method) */
#define FREETOWN_LON -13.246766789507 /* UTM 28N 693000.25 938000.5 */
#define FREETOWN_LAT 8.481823907832
#define BO_LON       -11.733760433470 /* UTM 29N 198600 880600 */
#define BO_LAT       7.957541496299
#define KENEMA_LON   -11.185769150741 /* UTM 29N 259000 871000 */
#define KENEMA_LAT   7.874014587994
#define NAIROBI_LON  36.816199993249 /* UTM 37S 257000 9857000 */
#define NAIROBI_LAT  -1.292818018959
/* Bo's point above in zone 28N (input only: `cs2cs EPSG:4326 EPSG:32628` of BO_LAT BO_LON) */
#define BO_E28 860162.9944
#define BO_N28 881026.3565
/* The corners 691000/695000 E, 936000/940000 N in UTM 28N, each rounded to 7 decimals (the
 * values above have at least 3e-9 degree of margin to a rounding boundary):
 * 691000 936000 → -13.2650125966 8.4638182760; 695000 936000 → -13.2286895610 8.4636553562;
 * 695000 940000 → -13.2285238672 8.4998193038; 691000 940000 → -13.2648502964 8.4999829296 */
#define SQUARE_WGS84                                                                             \
    "{\"type\":\"Polygon\",\"coordinates\":[[[-13.2650126,8.4638183],[-13.2286896,8.4636554],[-" \
    "13.2285239,8.4998193],[-13.2648503,8.4999829],[-13.2650126,8.4638183]]]}"

/* 1e-8 degree is about 1 mm: far below what matters, far above the series' and PROJ's error */
#define TOL 1e-8

/* ---- helpers ----------------------------------------------------------------------------- */

static void
expect_point(int epsg, double x, double y, double want_lon, double want_lat, double tol)
{
    core_err err = CORE_ERR_INIT;
    double lon = 0, lat = 0;

    if (geo_crs_to_wgs84(epsg, x, y, &lon, &lat, &err) != 0)
        fail_msg("EPSG:%d %.3f %.3f: %d %s", epsg, x, y, err.status, err.msg);
    if (fabs(lon - want_lon) > tol || fabs(lat - want_lat) > tol)
        fail_msg("EPSG:%d %.3f %.3f: got %.10f %.10f, expected %.10f %.10f", epsg, x, y, lon, lat,
                 want_lon, want_lat);
}

static void
expect_fail(int epsg, double x, double y, const char *msg_prefix)
{
    core_err err = CORE_ERR_INIT;
    double lon = -1, lat = -1;

    assert_int_equal(geo_crs_to_wgs84(epsg, x, y, &lon, &lat, &err), -1);
    assert_int_equal(err.status, 422);
    assert_int_equal(err.code, CORE_ISSUE_INVALID);
    assert_string_equal(err.expr, "");
    if (strncmp(err.msg, msg_prefix, strlen(msg_prefix)) != 0)
        fail_msg("EPSG:%d: message \"%s\" does not start with \"%s\"", epsg, err.msg, msg_prefix);
    assert_true(lon == -1 && lat == -1); /* untouched */
}

static void
expect_parse(const char *name, int want)
{
    core_err err = CORE_ERR_INIT;
    int epsg = -1;

    if (geo_crs_parse(name, &epsg, &err) != 0)
        fail_msg("\"%s\": %s", name, err.msg);
    assert_int_equal(epsg, want);
}

static void
expect_parse_fail(const char *name, const char *got)
{
    core_err err = CORE_ERR_INIT;
    char msg[256];
    int epsg = -1;

    assert_int_equal(geo_crs_parse(name, &epsg, &err), -1);
    assert_int_equal(epsg, -1);
    assert_int_equal(err.status, 422);
    assert_int_equal(err.code, CORE_ISSUE_INVALID);
    snprintf(msg, sizeof(msg),
             "coordinate reference system must be EPSG:NNNN, urn:ogc:def:crs:EPSG::NNNN, "
             "http://www.opengis.net/def/crs/EPSG/0/NNNN or CRS84 (got %s)",
             got);
    assert_string_equal(err.msg, msg);
}

static char *
base64(const char *s)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), i;
    char *out = malloc((n + 2) / 3 * 4 + 1), *p = out;

    assert_non_null(out);
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)(unsigned char)s[i] << 16 | (unsigned)(unsigned char)s[i + 1] << 8 |
                     (unsigned char)s[i + 2];
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
        *p++ = abc[(v >> 6) & 63];
        *p++ = abc[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)(unsigned char)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)(unsigned char)s[i + 1] << 8;
        *p++ = abc[v >> 18];
        *p++ = abc[(v >> 12) & 63];
        *p++ = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    *p = '\0';
    return out;
}

/* Parse GeoJSON text as a boundary (ext_index 0); on success *gj is its stored text. */
static int
parse_boundary(const char *json, int *source_epsg, char **gj, core_err *err)
{
    geo_boundary_opts o = GEO_BOUNDARY_OPTS_INIT;
    geo_ctx *ctx = geo_ctx_create();
    geo_boundary *b = NULL;
    char *b64 = base64(json);
    int rc;

    assert_non_null(ctx);
    o.ext_index = 0;
    rc = geo_boundary_parse(&b, ctx, b64, strlen(b64), &o, err);
    if (rc == 0) {
        *source_epsg = geo_boundary_source_epsg(b);
        assert_int_equal(geo_boundary_geojson(gj, NULL, ctx, b, err), 0);
    }
    geo_boundary_free(ctx, b);
    geo_ctx_free(ctx);
    free(b64);
    return rc;
}

static int
teardown(void **state)
{
    (void)state;
    geo_crs_thread_cleanup();
    return 0;
}

/* ---- names ------------------------------------------------------------------------------- */

static void
test_parse(void **state)
{
    (void)state;
    expect_parse("EPSG:32628", 32628);
    expect_parse("epsg:32629", 32629);
    expect_parse("EPSG:3857", 3857);
    expect_parse("urn:ogc:def:crs:EPSG::32628", 32628);
    expect_parse("URN:OGC:DEF:CRS:EPSG::32628", 32628);
    expect_parse("urn:ogc:def:crs:EPSG:9.1:2154", 2154);
    expect_parse("urn:ogc:def:crs:EPSG:4326", 4326); /* GeoJSON 2008 writers without version */
    expect_parse("http://www.opengis.net/def/crs/EPSG/0/32629", 32629);
    expect_parse("https://www.opengis.net/def/crs/EPSG/0/4326", 4326);
    expect_parse("CRS84", 4326);
    expect_parse("OGC:CRS84", 4326);
    expect_parse("urn:ogc:def:crs:OGC:1.3:CRS84", 4326);
    expect_parse("urn:ogc:def:crs:OGC::CRS84", 4326);
    expect_parse("http://www.opengis.net/def/crs/OGC/1.3/CRS84", 4326);
    expect_parse("EPSG:1", 1); /* syntax only: geo_crs_check knows whether it exists */

    expect_parse_fail(NULL, "nothing");
    expect_parse_fail("", "nothing");
    expect_parse_fail("EPSG:", "\"EPSG:\"");
    expect_parse_fail("EPSG:32628 ", "\"EPSG:32628 \"");
    expect_parse_fail("EPSG:0", "\"EPSG:0\"");
    expect_parse_fail("EPSG:04326", "\"EPSG:04326\"");
    expect_parse_fail("EPSG:-4326", "\"EPSG:-4326\"");
    expect_parse_fail("EPSG:1234567890", "\"EPSG:1234567890\"");
    expect_parse_fail("EPSG:12x", "\"EPSG:12x\"");
    expect_parse_fail("EPSG::32628", "\"EPSG::32628\"");
    expect_parse_fail("urn:ogc:def:crs:EPSG:x:4326", "\"urn:ogc:def:crs:EPSG:x:4326\"");
    expect_parse_fail("https://www.opengis.net/def/crs/EPSG/1/1", /* 40 bytes: not clipped */
                      "\"https://www.opengis.net/def/crs/EPSG/1/1\"");
    expect_parse_fail("WGS84", "\"WGS84\"");
    expect_parse_fail("+proj=utm +zone=28", "\"+proj=utm +zone=28\"");
    /* long values are clipped, quotes and control characters replaced */
    expect_parse_fail("urn:ogc:def:crs:EPSG::32628\"\n and a lot more text after it",
                      "\"urn:ogc:def:crs:EPSG::32628?? and a lot ...\"");
}

/* ---- conversions ------------------------------------------------------------------------- */

static void
test_utm_sierra_leone(void **state)
{
    (void)state;
    /* Freetown, UTM zone 28N */
    expect_point(32628, 693000.25, 938000.5, FREETOWN_LON, FREETOWN_LAT, TOL);
    /* Bo and Kenema, UTM zone 29N */
    expect_point(32629, 198600, 880600, BO_LON, BO_LAT, TOL);
    expect_point(32629, 259000, 871000, KENEMA_LON, KENEMA_LAT, TOL);
    /* the same place in both zones: Bo given in zone 28N (beyond its 6-degree band) */
    expect_point(32628, BO_E28, BO_N28, BO_LON, BO_LAT, 1e-7);
}

static void
test_utm_south_and_central_meridians(void **state)
{
    (void)state;
    /* Nairobi, UTM zone 37S (false northing 10,000 km) */
    expect_point(32737, 257000, 9857000, NAIROBI_LON, NAIROBI_LAT, TOL);
    /* on a central meridian at the equator the answer is exact: (zone * 6 - 183, 0) */
    for (int zone = 1; zone <= 60; zone++) {
        expect_point(32600 + zone, 500000, 0, zone * 6 - 183, 0, 1e-9);
        expect_point(32700 + zone, 500000, 10000000, zone * 6 - 183, 0, 1e-9);
    }
}

static void
test_web_mercator(void **state)
{
    const double a = 6378137.0, deg = 180.0 / acos(-1.0);
    const double pts[][2] = {
        { -1245600.5, 879400.25 }, { 0, 0 }, { 20037508.34, 0 }, { -1473000, 946000 }, { 1e6, -5e6 }
    };
    (void)state;
    for (size_t i = 0; i < sizeof(pts) / sizeof(pts[0]); i++) {
        double x = pts[i][0], y = pts[i][1];
        expect_point(3857, x, y, x / a * deg, atan(sinh(y / a)) * deg, 1e-9);
    }
}

/* x, y are in GIS order whatever the EPSG axis order: ETRS89 (EPSG:4258) is latitude first in
 * the EPSG database, and is the same as WGS84 at the metre level (PROJ: a null transformation). */
static void
test_gis_order(void **state)
{
    (void)state;
    expect_point(4258, 10.5, 50.25, 10.5, 50.25, 1e-9);
    expect_point(4326, -13.2344567, 8.4657, -13.2344567, 8.4657, 0); /* WGS84: untouched */
    expect_point(4326, 180, -90, 180, -90, 0);
}

static void
test_unknown_and_unusable(void **state)
{
    core_err err = CORE_ERR_INIT;
    (void)state;

    expect_fail(99999, 1, 2, "unknown coordinate reference system EPSG:99999");
    expect_fail(7030, 1, 2, "unknown coordinate reference system EPSG:7030"); /* an ellipsoid */
    expect_fail(0, 1, 2, "unknown coordinate reference system EPSG:0");
    expect_fail(-32628, 1, 2, "unknown coordinate reference system EPSG:-32628");
    expect_fail(4978, 1, 2,
                "EPSG:4978 is not a two-dimensional geographic or projected coordinate "
                "reference system");                               /* geocentric */
    expect_fail(5714, 1, 2, "EPSG:5714 is not a two-dimensional"); /* a height */
    expect_fail(4979, 1, 2, "EPSG:4979 is not a two-dimensional"); /* WGS84 3D */

    assert_int_equal(geo_crs_check(32628, &err), 0);
    assert_int_equal(geo_crs_check(4326, &err), 0);
    assert_int_equal(err.status, 0);
    assert_int_equal(geo_crs_check(99999, &err), -1);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.msg, "unknown coordinate reference system EPSG:99999");
}

static void
test_garbage_input(void **state)
{
    (void)state;
    expect_fail(32628, NAN, 938000, "coordinates in EPSG:32628 must be finite numbers");
    expect_fail(32628, 693000, INFINITY, "coordinates in EPSG:32628 must be finite numbers");
    expect_fail(4326, -INFINITY, 0, "coordinates in EPSG:4326 must be finite numbers");
    expect_fail(32628, 693000, 1e12, "coordinates x 693000, y 1e+12 in EPSG:32628 do not convert");
    expect_fail(4326, 200, 10, "coordinates x 200, y 10 in EPSG:4326 do not convert to a WGS84");
    expect_fail(4326, 10, -90.5, "coordinates x 10, y -90.5 in EPSG:4326 do not convert");
}

/* More CRSs than the cache holds, twice round, each back to its own answer; then the state is
 * freed and made again. */
static void
test_cache_and_cleanup(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++)
        for (int zone = 1; zone <= 20; zone++)
            expect_point(32600 + zone, 500000, 0, zone * 6 - 183, 0, 1e-9);
    geo_crs_thread_cleanup();
    geo_crs_thread_cleanup(); /* no-op */
    expect_point(32628, 693000.25, 938000.5, FREETOWN_LON, FREETOWN_LAT, TOL);
    geo_crs_thread_cleanup();
}

/* Each thread has its own PROJ state: four convert at once, then free theirs. */
static void *
convert_many(void *arg)
{
    int *failures = arg;

    for (int i = 0; i < 300; i++) {
        core_err err = CORE_ERR_INIT;
        int zone = 1 + i % 12;
        double lon, lat;
        if (geo_crs_to_wgs84(32600 + zone, 500000, 0, &lon, &lat, &err) != 0 ||
            fabs(lon - (zone * 6 - 183)) > 1e-9 || fabs(lat) > 1e-9 ||
            geo_crs_to_wgs84(32628, 693000.25, 938000.5, &lon, &lat, &err) != 0 ||
            fabs(lon - FREETOWN_LON) > TOL || fabs(lat - FREETOWN_LAT) > TOL)
            (*failures)++;
    }
    geo_crs_thread_cleanup();
    return NULL;
}

static void
test_threads(void **state)
{
    pthread_t t[4];
    int failures[4] = { 0 };
    (void)state;

    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, convert_many, &failures[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(failures[i], 0);
    }
}

/* ---- boundaries -------------------------------------------------------------------------- */

static void
test_boundary_converted(void **state)
{
    core_err err = CORE_ERR_INIT;
    char *gj = NULL;
    int epsg = -1;
    (void)state;

    /* a square of 4 km around Freetown in UTM 28N; the stored GeoJSON is WGS84 on the 1e-7 grid */
    assert_int_equal(
        parse_boundary("{\"type\":\"Feature\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":"
                       "\"urn:ogc:def:crs:EPSG::32628\"}},\"properties\":{},\"geometry\":{\"type\":"
                       "\"Polygon\",\"coordinates\":[[[691000,936000],[695000,936000],[695000,"
                       "940000],[691000,940000],[691000,936000]]]}}",
                       &epsg, &gj, &err),
        0);
    assert_int_equal(epsg, 32628);
    assert_string_equal(gj, SQUARE_WGS84);
    free(gj);
    gj = NULL;

    /* {"type":"EPSG"} form, altitude dropped */
    assert_int_equal(
        parse_boundary("{\"type\":\"Polygon\",\"crs\":{\"type\":\"EPSG\",\"properties\":"
                       "{\"code\":32628}},\"coordinates\":[[[691000,936000,12],[695000,"
                       "936000,13],[695000,940000,14],[691000,940000,15],[691000,"
                       "936000,12]]]}",
                       &epsg, &gj, &err),
        0);
    assert_int_equal(epsg, 32628);
    assert_string_equal(gj, SQUARE_WGS84);
    free(gj);
    gj = NULL;

    /* WGS84 named: nothing converted */
    assert_int_equal(
        parse_boundary("{\"type\":\"Polygon\",\"crs\":{\"type\":\"name\",\"properties\":"
                       "{\"name\":\"EPSG:4326\"}},\"coordinates\":[[[0,0],[1,0],[1,1],"
                       "[0,0]]]}",
                       &epsg, &gj, &err),
        0);
    assert_int_equal(epsg, 0);
    assert_string_equal(gj, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}");
    free(gj);
}

static void
expect_boundary_fail(const char *json, const char *msg)
{
    core_err err = CORE_ERR_INIT;
    char *gj = NULL;
    int epsg = -1;

    assert_int_equal(parse_boundary(json, &epsg, &gj, &err), -1);
    assert_null(gj);
    assert_int_equal(err.status, 422);
    assert_int_equal(err.code, CORE_ISSUE_INVALID);
    assert_string_equal(err.expr, EXPR);
    assert_string_equal(err.msg, msg);
}

static void
test_boundary_refused(void **state)
{
    (void)state;
    expect_boundary_fail(
        "{\"type\":\"Polygon\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":"
        "\"EPSG:99999\"}},\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}",
        "boundary CRS: unknown coordinate reference system EPSG:99999");
    expect_boundary_fail(
        "{\"type\":\"Polygon\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":"
        "\"UTM 28\"}},\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}",
        "boundary coordinate reference system must be EPSG:NNNN, "
        "urn:ogc:def:crs:EPSG::NNNN, http://www.opengis.net/def/crs/EPSG/0/NNNN "
        "or CRS84 (got \"UTM 28\")");
    expect_boundary_fail(
        "{\"type\":\"Polygon\",\"crs\":{\"type\":\"EPSG\",\"properties\":{\"code\":"
        "4978}},\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}",
        "boundary CRS: EPSG:4978 is not a two-dimensional geographic or projected "
        "coordinate reference system");
    expect_boundary_fail(
        "{\"type\":\"Polygon\",\"crs\":{\"type\":\"link\",\"properties\":{\"href\":"
        "\"x.prj\"}},\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}",
        "boundary CRS must be named (\"crs\" of type \"name\" with properties.name, "
        "or of type \"EPSG\" with properties.code)");
    expect_boundary_fail(
        "{\"type\":\"Feature\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":\"EPSG:32628\"}}"
        ","
        "\"geometry\":{\"type\":\"Polygon\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":"
        "\"EPSG:32629\"}},\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}}",
        "boundary \"crs\" members name different coordinate reference systems (EPSG:32628 and "
        "EPSG:32629)");
    expect_boundary_fail(
        "{\"type\":\"Polygon\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":"
        "\"EPSG:32628\"}},\"coordinates\":[[[691000,936000],[\"x\",936000],[695000,"
        "940000],[691000,936000]]]}",
        "boundary position must be an array of 2 or 3 numbers [longitude, "
        "latitude] (at coordinates[0][1])");
    expect_boundary_fail(
        "{\"type\":\"Polygon\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":"
        "\"EPSG:32628\"}},\"coordinates\":[[[691000,936000],[695000,1e12],[695000,"
        "940000],[691000,936000]]]}",
        "boundary position at coordinates[0][1]: coordinates x 695000, y 1e+12 in "
        "EPSG:32628 do not convert to WGS84 (outside what the coordinate "
        "reference system can represent)");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_parse, teardown),
        cmocka_unit_test_teardown(test_utm_sierra_leone, teardown),
        cmocka_unit_test_teardown(test_utm_south_and_central_meridians, teardown),
        cmocka_unit_test_teardown(test_web_mercator, teardown),
        cmocka_unit_test_teardown(test_gis_order, teardown),
        cmocka_unit_test_teardown(test_unknown_and_unusable, teardown),
        cmocka_unit_test_teardown(test_garbage_input, teardown),
        cmocka_unit_test_teardown(test_cache_and_cleanup, teardown),
        cmocka_unit_test_teardown(test_threads, teardown),
        cmocka_unit_test_teardown(test_boundary_converted, teardown),
        cmocka_unit_test_teardown(test_boundary_refused, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
