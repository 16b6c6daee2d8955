/* Unit tests of geo/boundary.c: accepted GeoJSON shapes and their exact GeoJSON output, each
 * refusal with its status, message and FHIRPath, GEOS validation and repair, the size caps
 * (checked before GEOS builds anything), the real Sierra Leone boundaries, and four threads
 * validating at once with one GEOS context each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "geo/geo.h"

#define EXPR "Location.extension[2].valueAttachment.data"

#define BOWTIE                                                                                   \
    "{\"type\":\"Polygon\",\"coordinates\":[[[-11.8,7.9],[-11.7,8.0],[-11.7,7.9],[-11.8,8.0],[-" \
    "11.8,7.9]]]}"

/* ---- helpers ----------------------------------------------------------------------------- */

static char *
base64(const char *s, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *p = out;
    size_t i;

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

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static geo_boundary_opts
opts_at(int ext_index)
{
    geo_boundary_opts o = GEO_BOUNDARY_OPTS_INIT;
    o.ext_index = ext_index;
    return o;
}

/* Parse GeoJSON text, sent base64-encoded as in the extension. */
static int
parse_json(
    geo_boundary **out, geo_ctx *ctx, const char *json, const geo_boundary_opts *o, core_err *err)
{
    char *b64 = base64(json, strlen(json));
    int rc = geo_boundary_parse(out, ctx, b64, strlen(b64), o, err);
    free(b64);
    return rc;
}

/* json must parse; its stored GeoJSON must be `expect` (NULL: json itself). */
static geo_boundary *
expect_ok(geo_ctx *ctx, const char *json, const char *expect)
{
    geo_boundary_opts o = opts_at(2);
    core_err err = CORE_ERR_INIT;
    geo_boundary *b = NULL;
    char *text = NULL;
    size_t len = 0;

    if (parse_json(&b, ctx, json, &o, &err) != 0)
        fail_msg("parse of %s failed: %d %s", json, err.status, err.msg);
    assert_non_null(b);
    assert_int_equal(err.status, 0);
    assert_null(geo_boundary_repair_reason(b));
    assert_int_equal(geo_boundary_geojson(&text, &len, ctx, b, &err), 0);
    assert_string_equal(text, expect ? expect : json);
    assert_int_equal(len, strlen(text));
    free(text);
    assert_string_equal(geo_ctx_error(ctx), "");
    return b;
}

/* json must be refused with exactly this status, issue and message, naming EXPR. */
static void
expect_fail_opts(geo_ctx *ctx,
                 const char *json,
                 const geo_boundary_opts *o,
                 int status,
                 core_issue code,
                 const char *msg)
{
    core_err err = CORE_ERR_INIT;
    geo_boundary *b = (geo_boundary *)&err; /* must be reset to NULL */

    assert_int_equal(parse_json(&b, ctx, json, o, &err), -1);
    assert_null(b);
    assert_int_equal(err.status, status);
    assert_int_equal(err.code, code);
    assert_string_equal(err.msg, msg);
    assert_string_equal(err.expr, o->ext_index >= 0 ? EXPR : "");
    assert_null(err.more);
}

static void
expect_fail(geo_ctx *ctx, const char *json, int status, core_issue code, const char *msg)
{
    geo_boundary_opts o = opts_at(2);
    expect_fail_opts(ctx, json, &o, status, code, msg);
}

static int
setup(void **state)
{
    *state = geo_ctx_create();
    return *state ? 0 : -1;
}

static int
teardown(void **state)
{
    geo_ctx_free(*state);
    return 0;
}

/* ---- accepted shapes --------------------------------------------------------------------- */

static void
test_polygon(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary *b;
    geo_bbox box;

    /* shell and hole; 8.4000 is written 8.4, -13.30 as -13.3 */
    b = expect_ok(ctx,
                  "{\"type\":\"Polygon\",\"coordinates\":[[[-13.30,8.4000],[-13.1,8.4],[-13.1,8.5],"
                  "[-13.3,8.5],[-13.3,8.4]],[[-13.25,8.42],[-13.2,8.42],[-13.2,8.45],[-13.25,8."
                  "42]]]}",
                  "{\"type\":\"Polygon\",\"coordinates\":[[[-13.3,8.4],[-13.1,8.4],[-13.1,8.5],"
                  "[-13.3,8.5],[-13.3,8.4]],[[-13.25,8.42],[-13.2,8.42],[-13.2,8.45],[-13.25,8."
                  "42]]]}");
    assert_int_equal(geo_boundary_vertices(b), 9);
    assert_false(geo_boundary_is_multi(b));
    geo_boundary_bbox(&box, b);
    assert_true(box.min_lon == -13.3 && box.max_lon == -13.1);
    assert_true(box.min_lat == 8.4 && box.max_lat == 8.5);
    geo_boundary_free(ctx, b);
}

static void
test_multipolygon(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary *b;
    geo_bbox box;
    const char *mp = "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[-13,8],[-12.9,8],[-12.9,8.1],"
                     "[-13,8]]],[[[-12,9],[-11.9,9],[-11.9,9.1],[-12,9.1],[-12,9]]]]}";

    b = expect_ok(ctx, mp, NULL);
    assert_int_equal(geo_boundary_vertices(b), 9);
    assert_true(geo_boundary_is_multi(b));
    geo_boundary_bbox(&box, b);
    assert_true(box.min_lon == -13 && box.max_lon == -11.9);
    assert_true(box.min_lat == 8 && box.max_lat == 9.1);
    geo_boundary_free(ctx, b);
}

static void
test_feature(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary *b;

    /* properties, id, bbox ignored; a CRS84 "crs" accepted; altitude dropped */
    b = expect_ok(
        ctx,
        "{\"type\":\"Feature\",\"id\":7,\"bbox\":[-13,8,-12,9],\"properties\":{\"name\":"
        "\"Bo\",\"n\":[1,2]},\"crs\":{\"type\":\"name\",\"properties\":{\"name\":\"urn:"
        "ogc:def:crs:OGC:1.3:CRS84\"}},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":"
        "[[[-13,8,100],[-12,8,100.5],[-12,9,0],[-13,8,100]]]}}",
        "{\"type\":\"Polygon\",\"coordinates\":[[[-13,8],[-12,8],[-12,9],[-13,8]]]}");
    assert_int_equal(geo_boundary_vertices(b), 4);
    geo_boundary_free(ctx, b);
}

static void
test_feature_collection_of_one(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary *b;

    b = expect_ok(
        ctx,
        "{\"type\":\"FeatureCollection\",\"crs\":{\"type\":\"name\",\"properties\":{"
        "\"name\":\"EPSG:4326\"}},\"features\":[{\"type\":\"Feature\",\"properties\":null,"
        "\"geometry\":{\"type\":\"MultiPolygon\",\"coordinates\":[[[[-13,8],[-12,8],[-12,"
        "9],[-13,8]]]]}}]}",
        "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[-13,8],[-12,8],[-12,9],[-13,8]]]]"
        "}");
    assert_true(geo_boundary_is_multi(b));
    geo_boundary_free(ctx, b);
}

static void
test_coordinates_rounded(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary *b;

    /* at most 7 decimals, shortest form, no "-0"; the equal first and last survive rounding */
    b = expect_ok(
        ctx,
        "{\"type\":\"Polygon\",\"coordinates\":[[[-11.123456789012345,7.00000004],["
        "-0.00000004,7.1],[-0.00000004,7.00000000001],[1e-7,6.9],[-11.123456789012345,7."
        "00000004]]]}",
        "{\"type\":\"Polygon\",\"coordinates\":[[[-11.1234568,7],[0,7.1],[0,7],[0.0000001,"
        "6.9],[-11.1234568,7]]]}");
    geo_boundary_free(ctx, b);
}

/* Validation sees the coordinates as stored (7 decimals), not as sent. */
static void
test_snapped_before_validation(void **state)
{
    geo_ctx *ctx = *state;

    /* the hole crosses the shell by 4e-8 degree as sent, touches it at one point as stored */
    geo_boundary_free(ctx,
                      expect_ok(ctx,
                                "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],"
                                "[0,10],[0,0]],[[-0.00000004,5],[5,4],[5,6],[-0.00000004,5]]]}",
                                "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],"
                                "[0,10],[0,0]],[[0,5],[5,4],[5,6],[0,5]]]}"));
    /* the hole is 4e-8 degree inside the shell as sent, shares a segment with it as stored */
    expect_fail(ctx,
                "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[0."
                "00000004,4],[5,5],[0.00000004,6],[0.00000004,4]]]}",
                422, CORE_ISSUE_INVALID,
                "boundary is not valid: Self-intersection at or near point (0 6)");
}

static void
test_base64_whitespace_and_raw_json(void **state)
{
    geo_ctx *ctx = *state;
    const char *json = "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}";
    char *b64 = base64(json, strlen(json)), wrapped[256];
    geo_boundary_opts o = GEO_BOUNDARY_OPTS_INIT;
    core_err err = CORE_ERR_INIT;
    geo_boundary *b = NULL;
    size_t i, k = 0;

    /* MIME-style lines of 16 characters and a trailing newline */
    for (i = 0; b64[i]; i++) {
        wrapped[k++] = b64[i];
        if (i % 16 == 15)
            wrapped[k++] = '\n';
    }
    memcpy(wrapped + k, "\r\n", 3);
    assert_int_equal(geo_boundary_parse(&b, ctx, wrapped, strlen(wrapped), NULL, &err), 0);
    assert_int_equal(geo_boundary_vertices(b), 4);
    geo_boundary_free(ctx, b);
    free(b64);

    o.is_base64 = 0;
    assert_int_equal(geo_boundary_parse(&b, ctx, json, strlen(json), &o, &err), 0);
    assert_int_equal(geo_boundary_vertices(b), 4);
    geo_boundary_free(ctx, b);
}

/* ---- refused shapes ---------------------------------------------------------------------- */

#define ACCEPTED                                                                                 \
    "boundary must be a Polygon or MultiPolygon, a Feature with one, or a FeatureCollection of " \
    "exactly one such Feature"

static void
test_wrong_shapes(void **state)
{
    geo_ctx *ctx = *state;
    const char *feature =
        "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"coordinates\":"
        "[[[0,0],[1,0],[1,1],[0,0]]]}}";
    char fc[512];

    snprintf(fc, sizeof(fc), "{\"type\":\"FeatureCollection\",\"features\":[%s,%s]}", feature,
             feature);
    expect_fail(ctx, fc, 422, CORE_ISSUE_INVALID,
                ACCEPTED " (got a FeatureCollection of 2 features)");
    expect_fail(ctx, "{\"type\":\"Point\",\"coordinates\":[-13.2,8.4]}", 422, CORE_ISSUE_INVALID,
                ACCEPTED " (got a Point)");
    expect_fail(ctx, "{\"type\":\"FeatureCollection\",\"features\":[]}", 422, CORE_ISSUE_INVALID,
                ACCEPTED " (got a FeatureCollection of 0 features)");
    expect_fail(ctx,
                "{\"type\":\"Feature\",\"geometry\":{\"type\":\"LineString\",\"coordinates\":[[0,"
                "0],[1,1]]}}",
                422, CORE_ISSUE_INVALID, ACCEPTED " (got a Feature with a LineString geometry)");
    expect_fail(ctx, "{\"type\":\"Feature\",\"geometry\":null,\"properties\":{}}", 422,
                CORE_ISSUE_INVALID, ACCEPTED " (got a Feature without geometry)");
    expect_fail(ctx,
                "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Polygon\","
                "\"coordinates\":[]}]}",
                422, CORE_ISSUE_INVALID, ACCEPTED " (got a FeatureCollection holding a Polygon)");
    expect_fail(ctx, "{\"type\":\"GeometryCollection\",\"geometries\":[]}", 422, CORE_ISSUE_INVALID,
                ACCEPTED " (got a GeometryCollection)");
    expect_fail(ctx, "{\"type\":\"polygon\"}", 422, CORE_ISSUE_INVALID,
                ACCEPTED " (got an object of type \"polygon\")");
    expect_fail(ctx, "[[0,0]]", 422, CORE_ISSUE_INVALID, ACCEPTED " (got an array)");
    expect_fail(ctx, "{\"coordinates\":[]}", 422, CORE_ISSUE_INVALID,
                ACCEPTED " (got an object without \"type\")");
    expect_fail(ctx, "{\"type\":\"Polygon\",\"coordinates\":[]}", 422, CORE_ISSUE_INVALID,
                "boundary polygon must have an exterior ring (got an empty array at coordinates)");
    expect_fail(ctx, "{\"type\":\"MultiPolygon\",\"coordinates\":[]}", 422, CORE_ISSUE_INVALID,
                "boundary MultiPolygon must have at least one polygon (got an empty array at "
                "coordinates)");
    expect_fail(ctx, "{\"type\":\"Polygon\"}", 422, CORE_ISSUE_INVALID,
                "boundary Polygon must have an array \"coordinates\" (got nothing at "
                "coordinates)");
}

/* Without convert_crs only WGS84 is accepted; conversion itself is tested in test_crs.c. */
static void
test_crs(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary_opts o = opts_at(2);

    o.convert_crs = 0;
    expect_fail_opts(
        ctx,
        "{\"type\":\"Polygon\",\"crs\":{\"type\":\"name\",\"properties\":{\"name\":\"urn:"
        "ogc:def:crs:EPSG::32629\"}},\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}",
        &o, 422, CORE_ISSUE_INVALID,
        "boundary CRS must be WGS84 (CRS84 or EPSG:4326, got \"urn:ogc:def:crs:EPSG::32629\")");
    expect_fail_opts(ctx,
                     "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"crs\":{\"type\":"
                     "\"EPSG\",\"properties\":{\"code\":3857}},\"coordinates\":[[[0,0],[1,0],[1,"
                     "1],[0,0]]]}}",
                     &o, 422, CORE_ISSUE_INVALID,
                     "boundary CRS must be WGS84 (CRS84 or EPSG:4326, got EPSG code 3857)");
    expect_fail_opts(
        ctx, "{\"type\":\"Polygon\",\"crs\":null,\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}", &o,
        422, CORE_ISSUE_INVALID,
        "boundary CRS must be WGS84 (CRS84 or EPSG:4326, got a \"crs\" that names none)");
    geo_boundary_free(ctx, expect_ok(ctx,
                                     "{\"type\":\"Polygon\",\"crs\":{\"type\":\"EPSG\","
                                     "\"properties\":{\"code\":4326}},\"coordinates\":[[[0,0],[1,"
                                     "0],[1,1],[0,0]]]}",
                                     "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,"
                                     "0]]]}"));
}

static void
test_bad_base64(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary_opts o = opts_at(2);
    core_err err = CORE_ERR_INIT;
    geo_boundary *b = NULL;
    const char *bad[][2] = {
        { "eyJ0eXBlIjoi!!==", "boundary data is not valid base64 (unexpected \"!\" at offset 12)" },
        { "eyJ0eXBlIjo",
          "boundary data is not valid base64 (11 characters without whitespace, not a multiple "
          "of 4, or more than 2 \"=\")" },
        { "eyJ0eXB=lIjo", "boundary data is not valid base64 (unexpected \"l\" at offset 8)" },
        { "eyJ0\x01XBl", "boundary data is not valid base64 (unexpected byte 0x01 at offset 4)" },
        { " \n ", "boundary data is empty" },
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        core_err_clear(&err);
        assert_int_equal(geo_boundary_parse(&b, ctx, bad[i][0], strlen(bad[i][0]), &o, &err), -1);
        assert_null(b);
        assert_int_equal(err.status, 422);
        assert_int_equal(err.code, CORE_ISSUE_INVALID);
        assert_string_equal(err.msg, bad[i][1]);
        assert_string_equal(err.expr, EXPR);
    }
}

static void
test_not_json(void **state)
{
    geo_ctx *ctx = *state;
    const char *prefix = "boundary is not valid GeoJSON: invalid JSON at line 1, column ";
    geo_boundary_opts o = opts_at(0);
    core_err err = CORE_ERR_INIT;
    geo_boundary *b = NULL;

    o.path = "Bundle.entry[3].resource";
    assert_int_equal(parse_json(&b, ctx, "{\"type\":\"Polygon\",", &o, &err), -1);
    assert_int_equal(err.status, 422);
    assert_int_equal(err.code, CORE_ISSUE_INVALID);
    assert_memory_equal(err.msg, prefix, strlen(prefix));
    assert_string_equal(err.expr, "Bundle.entry[3].resource.extension[0].valueAttachment.data");
}

/* ---- positions and rings ----------------------------------------------------------------- */

static void
test_positions(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary_opts none = opts_at(-1);

    expect_fail(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,91],[1,0],[0,0]]]}", 422,
                CORE_ISSUE_INVALID,
                "boundary latitude must be between -90 and 90 (got 91 at coordinates[0][1])");
    expect_fail(ctx,
                "{\"type\":\"Feature\",\"geometry\":{\"type\":\"MultiPolygon\",\"coordinates\":[[[["
                "0,0],[1,0],[1,1],[0,0]]],[[[0,0],[1,0],[-180.5,1],[0,0]]]]}}",
                422, CORE_ISSUE_INVALID,
                "boundary longitude must be between -180 and 180 (got -180.5 at "
                "geometry.coordinates[1][0][2])");
    expect_fail(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1e400,0],[1,1],[0,0]]]}", 422,
                CORE_ISSUE_INVALID,
                "boundary longitude must be a finite number (got 1e400 at coordinates[0][1])");
    expect_fail(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1],[1,1],[0,0]]]}", 422,
                CORE_ISSUE_INVALID,
                "boundary position must be an array of 2 or 3 numbers [longitude, latitude] (at "
                "coordinates[0][1])");
    expect_fail(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0,0,0],[1,1],[0,0]]]}", 422,
                CORE_ISSUE_INVALID,
                "boundary position must be an array of 2 or 3 numbers [longitude, latitude] (at "
                "coordinates[0][1])");
    expect_fail(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[\"1\",0],[1,1],[0,0]]]}", 422,
                CORE_ISSUE_INVALID,
                "boundary position must be an array of 2 or 3 numbers [longitude, latitude] (at "
                "coordinates[0][1])");
    expect_fail(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]],7]}", 422,
                CORE_ISSUE_INVALID,
                "boundary ring must be an array of positions (got a number at coordinates[1])");
    /* without an extension index the error names no element */
    expect_fail_opts(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,-90.01],[1,0],[0,0]]]}",
                     &none, 422, CORE_ISSUE_INVALID,
                     "boundary latitude must be between -90 and 90 (got -90.01 at "
                     "coordinates[0][1])");
}

static void
test_ring_not_closed(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary_opts repair = opts_at(2);

    expect_fail(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,1]]]}", 422,
                CORE_ISSUE_INVALID,
                "boundary ring is not closed: its first position [0, 0] and last position [0, 1] "
                "differ (at coordinates[0])");
    /* closed within 1e-7 is still not closed: RFC 7946 wants identical values */
    expect_fail(ctx,
                "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]],[[0.2,0.2],[0.5,"
                "0.2],[0.5,0.5],[0.20000001,0.2]]]}",
                422, CORE_ISSUE_INVALID,
                "boundary ring is not closed: its first position [0.2, 0.2] and last position "
                "[0.20000001, 0.2] differ (at coordinates[1])");
    /* repair does not guess a closing position */
    repair.repair = 1;
    expect_fail_opts(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,1]]]}",
                     &repair, 422, CORE_ISSUE_INVALID,
                     "boundary ring is not closed: its first position [0, 0] and last position "
                     "[0, 1] differ (at coordinates[0])");
}

static void
test_ring_too_short(void **state)
{
    geo_ctx *ctx = *state;

    expect_fail(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[0,0]]]}", 422,
                CORE_ISSUE_INVALID,
                "boundary ring must have at least 4 positions, the last equal to the first (got 3 "
                "at coordinates[0])");
    expect_fail(ctx, "{\"type\":\"MultiPolygon\",\"coordinates\":[[[]]]}", 422, CORE_ISSUE_INVALID,
                "boundary ring must have at least 4 positions, the last equal to the first (got 0 "
                "at coordinates[0][0])");
    /* 4 positions but only 2 distinct: GEOS's own check */
    expect_fail(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[0,0],[0,0]]]}", 422,
                CORE_ISSUE_INVALID,
                "boundary is not valid: Too few points in geometry component at or near point (0 "
                "0)");
}

/* ---- GEOS validity and repair ------------------------------------------------------------ */

static void
test_bowtie(void **state)
{
    geo_ctx *ctx = *state;

    expect_fail(ctx, BOWTIE, 422, CORE_ISSUE_INVALID,
                "boundary is not valid: Self-intersection at or near point (-11.75 7.95)");
}

static void
test_geos_reasons(void **state)
{
    geo_ctx *ctx = *state;

    expect_fail(ctx,
                "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[20,"
                "20],[21,20],[21,21],[20,20]]]}",
                422, CORE_ISSUE_INVALID,
                "boundary is not valid: Hole lies outside shell at or near point (20 20)");
    expect_fail(ctx,
                "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[0,0],[10,0],[10,10],[0,10],[0,0]]],"
                "[[[1,1],[2,1],[2,2],[1,2],[1,1]]]]}",
                422, CORE_ISSUE_INVALID,
                "boundary is not valid: Nested shells at or near point (1 1)");
    /* GEOS 3.11 reports duplicate rings as a self-intersection */
    expect_fail(ctx,
                "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[0,0],[10,0],[10,10],[0,0]]],[[[0,0]"
                ",[10,0],[10,10],[0,0]]]]}",
                422, CORE_ISSUE_INVALID,
                "boundary is not valid: Self-intersection at or near point (10 0)");
    expect_fail(ctx,
                "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],[5,0],[0,10],[0,"
                "0]]]}",
                422, CORE_ISSUE_INVALID,
                "boundary is not valid: Ring Self-intersection at or near point (5 0)");
    expect_fail(ctx,
                "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[5,0]"
                ",[10,5],[5,10],[0,5],[5,0]]]}",
                422, CORE_ISSUE_INVALID,
                "boundary is not valid: Interior is disconnected at or near point (0 5)");
}

static void
test_repair_bowtie(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary_opts o = opts_at(2);
    core_err err = CORE_ERR_INIT;
    geo_boundary *b = NULL, *again = NULL;
    char *text = NULL;
    geo_bbox box;

    o.repair = 1;
    assert_int_equal(parse_json(&b, ctx, BOWTIE, &o, &err), 0);
    assert_true(geo_boundary_is_multi(b));
    assert_string_equal(geo_boundary_repair_reason(b),
                        "Self-intersection at or near point (-11.75 7.95)");
    assert_int_equal(geo_boundary_vertices(b), 8);
    geo_boundary_bbox(&box, b);
    assert_true(box.min_lon == -11.8 && box.max_lon == -11.7);
    assert_true(box.min_lat == 7.9 && box.max_lat == 8);
    assert_int_equal(geo_boundary_geojson(&text, NULL, ctx, b, &err), 0);
    /* two triangles meeting at the crossing point */
    assert_string_equal(text, "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[-11.75,7.95],[-11."
                              "8,7.9],[-11.8,8],[-11.75,7.95]]],[[[-11.75,7.95],[-11.7,8],[-11.7,7."
                              "9],[-11.75,7.95]]]]}");
    /* what we store is itself a valid boundary, without repair */
    o.repair = 0;
    assert_int_equal(parse_json(&again, ctx, text, &o, &err), 0);
    assert_null(geo_boundary_repair_reason(again));
    geo_boundary_free(ctx, again);
    free(text);
    geo_boundary_free(ctx, b);
}

static void
test_repair_other_cases(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary_opts o = opts_at(2);
    core_err err = CORE_ERR_INIT;
    geo_boundary *b = NULL;
    char *text = NULL;

    o.repair = 1;
    /* a valid boundary is left alone */
    assert_int_equal(
        parse_json(&b, ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,0]]]}",
                   &o, &err),
        0);
    assert_null(geo_boundary_repair_reason(b));
    geo_boundary_free(ctx, b);
    /* the hole outside the shell becomes a second polygon */
    assert_int_equal(parse_json(&b, ctx,
                                "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],[0,"
                                "10],[0,0]],[[20,20],[21,20],[21,21],[20,20]]]}",
                                &o, &err),
                     0);
    assert_true(geo_boundary_is_multi(b));
    assert_int_equal(geo_boundary_geojson(&text, NULL, ctx, b, &err), 0);
    assert_string_equal(text, "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[10,0],[0,0],[0,10],"
                              "[10,10],[10,0]]],[[[20,20],[21,21],[21,20],[20,20]]]]}");
    free(text);
    geo_boundary_free(ctx, b);
    /* a collapsed ring repairs to a line: nothing polygonal remains */
    expect_fail_opts(ctx, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[0,0],[0,0]]]}", &o,
                     422, CORE_ISSUE_INVALID,
                     "boundary is not valid and repairing it leaves no area: Too few points in "
                     "geometry component at or near point (0 0)");
}

/* ---- caps -------------------------------------------------------------------------------- */

static void
test_caps(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary_opts o = opts_at(2);
    const char *five = "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}";
    core_err err = CORE_ERR_INIT;
    geo_boundary *b = NULL;
    char msg[128];

    o.lim.max_vertices = 4;
    expect_fail_opts(ctx, five, &o, 413, CORE_ISSUE_TOO_LONG,
                     "boundary must have at most 4 vertices (got 5)");
    o.lim.max_vertices = 5;
    assert_int_equal(parse_json(&b, ctx, five, &o, &err), 0);
    geo_boundary_free(ctx, b);

    /* counted where GeoJSON has geometries: not a "coordinates" among the properties */
    o.lim.max_vertices = 4;
    assert_int_equal(
        parse_json(&b, ctx,
                   "{\"type\":\"Feature\",\"properties\":{\"coordinates\":[[1,2],[3,"
                   "4]]},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,"
                   "0],[1,1],[0,0]]]}}",
                   &o, &err),
        0);
    geo_boundary_free(ctx, b);
    expect_fail_opts(ctx,
                     "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\","
                     "\"geometry\":{\"type\":\"MultiPolygon\",\"coordinates\":[[[[0,0],[1,0],[1,1]"
                     ",[0,1],[0,0]]]]}}]}",
                     &o, 413, CORE_ISSUE_TOO_LONG, "boundary must have at most 4 vertices (got 5)");
    /* an escaped key hides the coordinates from the text scan, not from the count after parsing */
    expect_fail_opts(ctx,
                     "{\"type\":\"Polygon\",\"coordin\\u0061tes\":[[[0,0],[1,0],[1,1],[0,1],[0,"
                     "0]]]}",
                     &o, 413, CORE_ISSUE_TOO_LONG, "boundary must have at most 4 vertices (got 5)");
    o.lim.max_vertices = 5;

    o.lim.max_bytes = strlen(five) - 1;
    snprintf(msg, sizeof(msg), "boundary GeoJSON must be at most %zu bytes (got %zu)",
             strlen(five) - 1, strlen(five));
    expect_fail_opts(ctx, five, &o, 413, CORE_ISSUE_TOO_LONG, msg);
    o.is_base64 = 0;
    assert_int_equal(geo_boundary_parse(&b, ctx, five, strlen(five), &o, &err), -1);
    assert_int_equal(err.status, 413);
    assert_string_equal(err.msg, msg);
    o.lim.max_bytes = strlen(five);
    assert_int_equal(geo_boundary_parse(&b, ctx, five, strlen(five), &o, &err), 0);
    geo_boundary_free(ctx, b);
}

/* A Polygon of n positions [1,2] as GeoJSON text, the last one at latitude 91, followed by
 * `after`: refused by a cap, it must never get as far as the JSON parser, the position checks
 * or GEOS. */
static char *
huge_polygon(size_t n, const char *after, size_t *len)
{
    static const char head[] = "{\"type\":\"Polygon\",\"coordinates\":[[", tail[] = ",[1,91]]]}";
    size_t cap = sizeof(head) + n * 6 + sizeof(tail) + strlen(after), i;
    char *s = malloc(cap), *p = s;

    assert_non_null(s);
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    for (i = 0; i + 1 < n; i++) {
        memcpy(p, i ? ",[1,2]" : "[1,2]", i ? 6 : 5);
        p += i ? 6 : 5;
    }
    memcpy(p, tail, sizeof(tail) - 1);
    p += sizeof(tail) - 1;
    memcpy(p, after, strlen(after) + 1);
    *len = (size_t)(p - s) + strlen(after);
    return s;
}

static void
test_two_million_vertices(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary_opts o = opts_at(2);
    core_err err = CORE_ERR_INIT;
    geo_boundary *b = NULL;
    size_t len;
    char *json = huge_polygon(2000000, " x", &len), *b64 = base64(json, len), msg[128];
    double t0, t1, t2;

    /* default caps: the decoded size (12 MB) is known from the base64 text before decoding */
    t0 = now();
    assert_int_equal(geo_boundary_parse(&b, ctx, b64, strlen(b64), &o, &err), -1);
    t1 = now();
    assert_int_equal(err.status, 413);
    assert_int_equal(err.code, CORE_ISSUE_TOO_LONG);
    snprintf(msg, sizeof(msg), "boundary GeoJSON must be at most 10485760 bytes (got %zu)", len);
    assert_string_equal(err.msg, msg);
    assert_string_equal(err.expr, EXPR);

    /* bytes allowed: the vertex cap refuses it from a scan of the text, before the JSON parser
     * (which would refuse the trailing "x", after seconds spent on a node per number), the
     * position checks and GEOS */
    o.lim.max_bytes = 64 * 1024 * 1024;
    assert_int_equal(geo_boundary_parse(&b, ctx, b64, strlen(b64), &o, &err), -1);
    t2 = now();
    assert_null(b);
    assert_int_equal(err.status, 413);
    assert_int_equal(err.code, CORE_ISSUE_TOO_LONG);
    assert_string_equal(err.msg, "boundary must have at most 200000 vertices (got 2000000)");
    print_message("2,000,000 vertices (%zu bytes of GeoJSON) refused by the byte cap in %.1f ms, "
                  "by the vertex cap in %.1f ms\n",
                  len, (t1 - t0) * 1e3, (t2 - t1) * 1e3);
    /* generous bounds for sanitizer builds (release: tens of milliseconds) */
    assert_true(t1 - t0 < 5.0);
    assert_true(t2 - t1 < 10.0);
    free(b64);
    free(json);

    /* controls: under the caps, the same texts fail on what the caps saved us from */
    json = huge_polygon(1000, " x", &len);
    b64 = base64(json, len);
    assert_int_equal(geo_boundary_parse(&b, ctx, b64, strlen(b64), &o, &err), -1);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.msg, "boundary is not valid GeoJSON: invalid JSON at line 1, column "
                                 "6039: end of file expected near 'x'");
    free(b64);
    free(json);
    json = huge_polygon(1000, "", &len);
    b64 = base64(json, len);
    assert_int_equal(geo_boundary_parse(&b, ctx, b64, strlen(b64), &o, &err), -1);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.msg, "boundary latitude must be between -90 and 90 (got 91 at "
                                 "coordinates[0][999])");
    free(b64);
    free(json);
}

/* ---- simplification ---------------------------------------------------------------------- */

static void
test_simplify(void **state)
{
    geo_ctx *ctx = *state;
    core_err err = CORE_ERR_INIT;
    geo_boundary *b;
    char *text = NULL;
    const char *in = "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1.0001,0.5],[1,1],[0.5,"
                     "1.0002],[0,1],[0,0]]]}";

    b = expect_ok(ctx, in, NULL);
    assert_int_equal(geo_boundary_simplify(&text, NULL, ctx, b, 0.001, &err), 0);
    assert_string_equal(text,
                        "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}");
    free(text);
    /* a tolerance below the deviations keeps every vertex */
    assert_int_equal(geo_boundary_simplify(&text, NULL, ctx, b, 0.00005, &err), 0);
    assert_string_equal(text, in);
    free(text);
    assert_int_equal(geo_boundary_simplify(&text, NULL, ctx, b, -1, &err), -1);
    assert_null(text);
    assert_int_equal(err.status, 400);
    assert_int_equal(err.code, CORE_ISSUE_VALUE);
    assert_string_equal(err.msg, "simplification tolerance must be a number of degrees >= 0 (got "
                                 "-1)");
    geo_boundary_free(ctx, b);
}

/* Tolerance 0 still drops exactly collinear vertices, and only those. */
static void
test_simplify_zero_tolerance(void **state)
{
    geo_ctx *ctx = *state;
    core_err err = CORE_ERR_INIT;
    geo_boundary *b;
    char *text = NULL;

    b = expect_ok(ctx,
                  "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[0.5,0.0001],[1,0],[1,0.5],[1,1],"
                  "[0.5,1],[0,1],[0.0002,0.5],[0,0]]]}",
                  NULL);
    assert_int_equal(geo_boundary_simplify(&text, NULL, ctx, b, 0, &err), 0);
    assert_string_equal(text, "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[0.5,0.0001],[1,0],[1,"
                              "1],[0,1],[0.0002,0.5],[0,0]]]}");
    free(text);
    geo_boundary_free(ctx, b);
}

/* ---- Sierra Leone ------------------------------------------------------------------------ */

typedef struct sl_set {
    size_t n;
    char *b64[32];
    size_t vertices[32];
    char name[32][64];
} sl_set;

static void
sl_set_clear(sl_set *s)
{
    size_t i;
    for (i = 0; i < s->n; i++)
        free(s->b64[i]);
    s->n = 0;
}

static size_t
json_count_positions(const json_t *g)
{
    const json_t *coords = json_object_get(g, "coordinates"), *p, *r;
    size_t i, k, n = 0;
    int multi = strcmp(json_string_value(json_object_get(g, "type")), "MultiPolygon") == 0;

    if (!multi) {
        json_array_foreach (coords, i, r)
            n += json_array_size(r);
        return n;
    }
    json_array_foreach (coords, k, p) {
        json_array_foreach (p, i, r)
            n += json_array_size(r);
    }
    return n;
}

/* Load each feature's geometry of a geoBoundaries file, base64-encoded. 0, or -1 (with the reason
 * printed) if the shared data is not there. */
static int
sl_load(sl_set *s, const char *file)
{
    const char *src = getenv("MAHALI_SOURCE_DIR");
    char path[1024];
    core_err err = CORE_ERR_INIT;
    const json_t *f;
    json_t *root;
    FILE *fp;
    char *buf;
    long size;
    size_t i;

    memset(s, 0, sizeof(*s));
    if (!src) {
        print_message("no shared data: MAHALI_SOURCE_DIR is not set, so %s cannot be found\n",
                      file);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/../shared/data/boundaries/%s", src, file);
    fp = fopen(path, "rb");
    if (!fp) {
        print_message("no shared data: %s is absent (no shared/ next to the checkout)\n", path);
        return -1;
    }
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    size = ftell(fp);
    assert_true(size > 0);
    rewind(fp);
    buf = malloc((size_t)size);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    root = core_json_parse(buf, (size_t)size, &err);
    free(buf);
    if (!root)
        fail_msg("%s: %s", path, err.msg);
    json_array_foreach (json_object_get(root, "features"), i, f) {
        const json_t *g = json_object_get(f, "geometry");
        size_t len;
        char *text = core_json_dump(g, &len);

        assert_true(i < 32);
        assert_non_null(text);
        s->b64[i] = base64(text, len);
        s->vertices[i] = json_count_positions(g);
        snprintf(s->name[i], sizeof(s->name[i]), "%s",
                 json_string_value(json_object_get(json_object_get(f, "properties"), "shapeName")));
        s->n++;
        free(text);
    }
    json_decref(root);
    return 0;
}

/* Every boundary of the file parses, is valid as given, and keeps its vertices. */
static void
check_sl(geo_ctx *ctx, const char *file, size_t expect_n, int print_times)
{
    geo_boundary_opts o = opts_at(0);
    sl_set s;
    size_t i, total = 0;
    double t_all = 0;

    if (sl_load(&s, file) < 0) {
        print_message("skipped: %s\n", file);
        skip();
    }
    assert_int_equal(s.n, expect_n);
    for (i = 0; i < s.n; i++) {
        core_err err = CORE_ERR_INIT;
        geo_boundary *b = NULL;
        char *text = NULL, *simple = NULL;
        geo_bbox box;
        double t0 = now(), t1;

        if (geo_boundary_parse(&b, ctx, s.b64[i], strlen(s.b64[i]), &o, &err) != 0)
            fail_msg("%s %s: %d %s", file, s.name[i], err.status, err.msg);
        t1 = now();
        t_all += t1 - t0;
        total += s.vertices[i];
        assert_int_equal(geo_boundary_vertices(b), s.vertices[i]);
        geo_boundary_bbox(&box, b);
        /* Sierra Leone lies within 13.4W..10.2W, 6.9N..10.0N */
        assert_true(box.min_lon > -13.4 && box.max_lon < -10.2);
        assert_true(box.min_lat > 6.9 && box.max_lat < 10.0);
        assert_true(box.min_lon < box.max_lon && box.min_lat < box.max_lat);
        /* the stored text and the map version are valid boundaries too */
        assert_int_equal(geo_boundary_geojson(&text, NULL, ctx, b, &err), 0);
        assert_int_equal(geo_boundary_simplify(&simple, NULL, ctx, b, 0.001, &err), 0);
        assert_true(strlen(simple) < strlen(text));
        geo_boundary_free(ctx, b);
        o.is_base64 = 0;
        if (geo_boundary_parse(&b, ctx, text, strlen(text), &o, &err) != 0)
            fail_msg("%s %s stored: %s", file, s.name[i], err.msg);
        assert_int_equal(geo_boundary_vertices(b), s.vertices[i]);
        geo_boundary_free(ctx, b);
        if (geo_boundary_parse(&b, ctx, simple, strlen(simple), &o, &err) != 0)
            fail_msg("%s %s simplified: %s", file, s.name[i], err.msg);
        assert_true(geo_boundary_vertices(b) < s.vertices[i]);
        if (print_times)
            print_message("%-14s %5zu vertices, parsed and validated in %6.2f ms, %4zu after "
                          "simplifying by 0.001 degree\n",
                          s.name[i], s.vertices[i], (t1 - t0) * 1e3, geo_boundary_vertices(b));
        geo_boundary_free(ctx, b);
        o.is_base64 = 1;
        free(text);
        free(simple);
    }
    print_message("%s: %zu boundaries, %zu vertices, parsed and validated in %.2f ms\n", file, s.n,
                  total, t_all * 1e3);
    sl_set_clear(&s);
}

static void
test_sierra_leone_adm1(void **state)
{
    check_sl(*state, "geoBoundaries-SLE-ADM1_simplified.geojson", 4, 1);
}

static void
test_sierra_leone_adm2(void **state)
{
    check_sl(*state, "geoBoundaries-SLE-ADM2_simplified.geojson", 14, 0);
}

/* ---- threads ----------------------------------------------------------------------------- */

#define THREADS 4
#define ROUNDS  5

typedef struct job {
    const sl_set *sl;
    char *const *expected; /* stored GeoJSON of each sl boundary, from the main thread */
    int failures;
    char first_failure[256];
} job;

static void
job_fail(job *j, const char *what, const char *detail)
{
    if (j->failures++ == 0)
        snprintf(j->first_failure, sizeof(j->first_failure), "%.60s: %.180s", what, detail);
}

static void *
validate_thread(void *arg)
{
    job *j = arg;
    geo_ctx *ctx = geo_ctx_create();
    geo_boundary_opts o = opts_at(2);
    int round;
    size_t i;

    if (!ctx) {
        job_fail(j, "geo_ctx_create", "NULL");
        return NULL;
    }
    for (round = 0; round < ROUNDS; round++) {
        core_err err = CORE_ERR_INIT;
        geo_boundary *b = NULL;
        char *text = NULL;

        for (i = 0; i < j->sl->n; i++) {
            if (geo_boundary_parse(&b, ctx, j->sl->b64[i], strlen(j->sl->b64[i]), &o, &err) != 0) {
                job_fail(j, j->sl->name[i], err.msg);
                continue;
            }
            if (geo_boundary_geojson(&text, NULL, ctx, b, &err) != 0)
                job_fail(j, j->sl->name[i], err.msg);
            else if (strcmp(text, j->expected[i]) != 0)
                job_fail(j, j->sl->name[i], "different GeoJSON");
            free(text);
            geo_boundary_free(ctx, b);
        }
        /* an invalid one in between: its message must be this thread's own */
        if (parse_json(&b, ctx, BOWTIE, &o, &err) == 0) {
            job_fail(j, "bow-tie", "accepted");
            geo_boundary_free(ctx, b);
        } else if (strcmp(err.msg,
                          "boundary is not valid: Self-intersection at or near point (-11.75 "
                          "7.95)") != 0) {
            job_fail(j, "bow-tie", err.msg);
        }
    }
    geo_ctx_free(ctx);
    return NULL;
}

static void
test_threads(void **state)
{
    geo_ctx *ctx = *state;
    geo_boundary_opts o = opts_at(2);
    sl_set sl;
    char *expected[32];
    pthread_t tid[THREADS];
    job jobs[THREADS];
    size_t i;
    int t;

    if (sl_load(&sl, "geoBoundaries-SLE-ADM1_simplified.geojson") < 0) {
        print_message("threads validate synthetic boundaries instead\n");
        static const char *const synthetic[] = {
            "{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}",
            "{\"type\":\"MultiPolygon\",\"coordinates\":[[[[0,0],[1,0],[1,1],[0,0]]],[[[2,2],[3,"
            "2],[3,3],[2,2]]]]}",
        };
        memset(&sl, 0, sizeof(sl));
        for (i = 0; i < 2; i++) {
            sl.b64[i] = base64(synthetic[i], strlen(synthetic[i]));
            snprintf(sl.name[i], sizeof(sl.name[i]), "synthetic %zu", i);
        }
        sl.n = 2;
    }
    for (i = 0; i < sl.n; i++) {
        core_err err = CORE_ERR_INIT;
        geo_boundary *b = NULL;
        assert_int_equal(geo_boundary_parse(&b, ctx, sl.b64[i], strlen(sl.b64[i]), &o, &err), 0);
        assert_int_equal(geo_boundary_geojson(&expected[i], NULL, ctx, b, &err), 0);
        geo_boundary_free(ctx, b);
    }
    for (t = 0; t < THREADS; t++) {
        jobs[t] = (job){ .sl = &sl, .expected = expected };
        assert_int_equal(pthread_create(&tid[t], NULL, validate_thread, &jobs[t]), 0);
    }
    for (t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(tid[t], NULL), 0);
    for (t = 0; t < THREADS; t++)
        if (jobs[t].failures)
            fail_msg("thread %d: %d failures, first %s", t, jobs[t].failures,
                     jobs[t].first_failure);
    for (i = 0; i < sl.n; i++)
        free(expected[i]);
    sl_set_clear(&sl);
}

static void
test_ctx_messages(void **state)
{
    geo_ctx *ctx = *state;

    geo_ctx_free(NULL);
    geo_boundary_free(ctx, NULL);
    assert_string_equal(geo_ctx_error(ctx), "");
    assert_string_equal(geo_ctx_notice(ctx), "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_polygon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multipolygon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feature_collection_of_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coordinates_rounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapped_before_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base64_whitespace_and_raw_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_base64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_not_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_too_short, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bowtie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_geos_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repair_bowtie, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repair_other_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_million_vertices, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simplify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simplify_zero_tolerance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sierra_leone_adm1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sierra_leone_adm2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctx_messages, setup, teardown),
    };

    json_object_seed(0); /* before any thread, as main does */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
