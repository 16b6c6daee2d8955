/* Locations given in another coordinate reference system (README "Spatial"). A position may
 * carry its source coordinates in the position-source extension (crs, x, y): latitude and
 * longitude are computed from it with PROJ, before validation, so a client may send the source
 * alone. A boundary sent with a GeoJSON "crs" is converted by geo_boundary_parse and stored in
 * WGS84; its original attachment is kept in the boundary-source extension. Both run from
 * reg__check_body, so REST writes, conditional writes and Bundle entries behave alike, and the
 * sources are kept as given: converted once, the original is not lost. */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry_int.h"

/* A computed coordinate differing from one the client sent by more than this (degrees, about
 * 11 cm) is a contradiction; closer, the client sent what it read back. */
#define AGREE_DEGREES 1e-6

/* Coordinates are stored rounded to 7 decimals (about 1 cm), as boundaries are. */
#define SCALE 1e7

/* v rounded to 7 decimals as fixed-point text ("8.4800000", "-13.2344567"): all 7 decimals are
 * written because they are significant (data quality counts decimals to judge precision).
 * Integer arithmetic, so independent of the locale; v is a WGS84 coordinate (|v| <= 180). */
static void
format7(char out[32], double v)
{
    long long k = llround(v * SCALE);
    int neg = k < 0;

    if (neg)
        k = -k;
    snprintf(out, 32, "%s%lld.%07lld", neg && k ? "-" : "", k / (long long)SCALE,
             k % (long long)SCALE);
}

/* A user value (a number's text) for a message: at most 24 bytes. */
static const char *
clip(char out[32], const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (!s)
        return "?";
    if (n <= 24)
        return s;
    memcpy(out, s, 21);
    memcpy(out + 21, "...", 4);
    return out;
}

/* The position-source sub-extensions, as found. */
typedef struct source {
    char path[96]; /* "Location.position.extension[i]" */
    const json_t *crs, *x, *y;
    size_t crs_at, x_at, y_at;
} source;

/* Find crs, x and y among the sub-extensions of the position-source extension. */
static int
read_source(source *src, const json_t *ext, core_err *err)
{
    const json_t *subs = json_object_get(ext, "extension"), *sub;
    char expr[160];
    size_t j;

    if (!json_is_array(subs))
        return core_err_set_at(err, 422, CORE_ISSUE_INVALID, src->path,
                               "the position-source extension must have the sub-extensions crs "
                               "(valueString such as \"EPSG:32628\"), x and y (valueDecimal)");
    json_array_foreach (subs, j, sub) {
        const char *url = json_string_value(json_object_get(sub, "url"));
        const json_t **slot = NULL, *v;
        size_t *at = NULL;
        int want_text = 0;

        if (!url)
            continue; /* the validator reports it */
        if (strcmp(url, "crs") == 0) {
            slot = &src->crs;
            at = &src->crs_at;
            want_text = 1;
        } else if (strcmp(url, "x") == 0) {
            slot = &src->x;
            at = &src->x_at;
        } else if (strcmp(url, "y") == 0) {
            slot = &src->y;
            at = &src->y_at;
        } else {
            continue; /* other sub-extensions are kept as given */
        }
        snprintf(expr, sizeof(expr), "%s.extension[%zu]", src->path, j);
        if (*slot)
            return core_err_set_at(err, 422, CORE_ISSUE_INVALID, expr,
                                   "the position-source extension must have one \"%s\" "
                                   "sub-extension (got two or more)",
                                   url);
        v = json_object_get(sub, want_text ? "valueString" : "valueDecimal");
        if (want_text ? !core_json_is_text(v) : !core_json_is_number(v))
            return core_err_set_at(err, 422, CORE_ISSUE_INVALID, expr,
                                   want_text ? "position-source %s must be a valueString such "
                                               "as \"EPSG:32628\""
                                             : "position-source %s must be a valueDecimal",
                                   url);
        *slot = v;
        *at = j;
    }
    if (!src->crs || !src->x || !src->y)
        return core_err_set_at(err, 422, CORE_ISSUE_INVALID, src->path,
                               "the position-source extension must have the sub-extensions crs "
                               "(valueString such as \"EPSG:32628\"), x and y (valueDecimal); "
                               "\"%s\" is missing",
                               !src->crs ? "crs"
                               : !src->x ? "x"
                                         : "y");
    return 0;
}

/* A coordinate the client sent next to the source must agree with the computed one. */
static int
agree(const json_t *pos,
      const char *name,
      double computed,
      const char *text,
      const source *src,
      int epsg,
      core_err *err)
{
    const json_t *v = json_object_get(pos, name);
    char expr[64], a[32], b[32], c[32];
    double d;

    if (!core_json_is_number(v) || core_json_number_get(v, &d) < 0)
        return 0; /* absent, or not a number: replaced, or reported by the validator */
    if (fabs(d - computed) <= AGREE_DEGREES * (1 + 1e-9))
        return 0;
    snprintf(expr, sizeof(expr), "Location.position.%s", name);
    return core_err_set_at(err, 422, CORE_ISSUE_BUSINESS_RULE, expr,
                           "%s %s contradicts the position-source extension (x %s, y %s in "
                           "EPSG:%d give %s %s): send matching values or leave latitude and "
                           "longitude out",
                           name, clip(a, core_json_number_text(v)),
                           clip(b, core_json_number_text(src->x)),
                           clip(c, core_json_number_text(src->y)), epsg, name, text);
}

int
reg__crs_position(json_t *res, core_err *err)
{
    json_t *pos = json_object_get(res, "position");
    const json_t *exts = json_object_get(pos, "extension"), *ext, *found = NULL;
    source src;
    core_err e = CORE_ERR_INIT;
    char expr[192], lon_text[32], lat_text[32];
    double x, y, lon, lat;
    int epsg = 0;
    size_t i;

    if (!json_is_object(pos) || !json_is_array(exts))
        return 0;
    memset(&src, 0, sizeof(src));
    json_array_foreach (exts, i, ext) {
        const char *url = json_string_value(json_object_get(ext, "url"));
        if (!url || strcmp(url, REG_POSITION_SOURCE_URL) != 0)
            continue;
        snprintf(expr, sizeof(expr), "Location.position.extension[%zu]", i);
        if (found)
            return core_err_set_at(err, 422, CORE_ISSUE_INVALID, expr,
                                   "a position may have one position-source extension (got two "
                                   "or more)");
        found = ext;
        core_strlcpy(src.path, expr, sizeof(src.path));
    }
    if (!found)
        return 0;
    if (read_source(&src, found, err) < 0)
        return -1;
    snprintf(expr, sizeof(expr), "%s.extension[%zu].valueString", src.path, src.crs_at);
    if (geo_crs_parse(json_string_value(src.crs), &epsg, &e) < 0 || geo_crs_check(epsg, &e) < 0)
        return core_err_set_at(err, e.status, e.code, e.status == 422 ? expr : "",
                               "position-source crs: %s", e.msg);
    if (core_json_number_get(src.x, &x) < 0 || !isfinite(x)) {
        snprintf(expr, sizeof(expr), "%s.extension[%zu].valueDecimal", src.path, src.x_at);
        return core_err_set_at(err, 422, CORE_ISSUE_INVALID, expr,
                               "position-source x must be a finite number");
    }
    if (core_json_number_get(src.y, &y) < 0 || !isfinite(y)) {
        snprintf(expr, sizeof(expr), "%s.extension[%zu].valueDecimal", src.path, src.y_at);
        return core_err_set_at(err, 422, CORE_ISSUE_INVALID, expr,
                               "position-source y must be a finite number");
    }
    if (geo_crs_to_wgs84(epsg, x, y, &lon, &lat, &e) < 0)
        return core_err_set_at(err, e.status, e.code, e.status == 422 ? src.path : "",
                               "position-source: %s", e.msg);
    format7(lon_text, lon);
    format7(lat_text, lat);
    lon = strtod(lon_text, NULL); /* what is stored; "." is the decimal point (no setlocale) */
    lat = strtod(lat_text, NULL);
    if (agree(pos, "latitude", lat, lat_text, &src, epsg, err) < 0 ||
        agree(pos, "longitude", lon, lon_text, &src, epsg, err) < 0)
        return -1;
    /* a latitude or longitude that is not a number stays, for the validator to report */
    if ((json_object_get(pos, "longitude") &&
         !core_json_is_number(json_object_get(pos, "longitude"))) ||
        (json_object_get(pos, "latitude") &&
         !core_json_is_number(json_object_get(pos, "latitude"))))
        return 0;
    if (json_object_set_new(pos, "longitude", core_json_number(lon_text)) < 0 ||
        json_object_set_new(pos, "latitude", core_json_number(lat_text)) < 0)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    return 0;
}

int
reg__crs_boundary_source(json_t *res, const json_t *att, core_err *err)
{
    json_t *exts = json_object_get(res, "extension"), *ext, *copy;
    size_t i;

    assert(json_is_array(exts)); /* att is the attachment of one of them */
    if (!(copy = json_deep_copy(att)))
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    /* one source per boundary, and a Location has at most one boundary: a new one replaces
     * the source of the boundary it replaces (json_object_set_new and json_pack steal copy) */
    json_array_foreach (exts, i, ext) {
        const char *url = json_string_value(json_object_get(ext, "url"));
        if (url && strcmp(url, REG_BOUNDARY_SOURCE_URL) == 0) {
            if (json_object_set_new(ext, "valueAttachment", copy) < 0)
                return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
            return 0;
        }
    }
    ext = json_pack("{s:s, s:o}", "url", REG_BOUNDARY_SOURCE_URL, "valueAttachment", copy);
    if (!ext || json_array_append_new(exts, ext) < 0)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    return 0;
}
