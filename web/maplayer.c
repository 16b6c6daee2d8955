/* GET [base]/Location/$boundaries[?partof=Location/id][&bbox=minLon,minLat,maxLon,maxLat]
 * [&tolerance=degrees]: the boundaries as one simplified GeoJSON FeatureCollection for a web
 * map (application/geo+json; registry/maplayer.c). Public like Location reads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/maplayer.h"
#include "web/web_int.h"

/* Four finite numbers separated by commas, min before max, within WGS84. */
static int
parse_bbox(const char *s, double b[4])
{
    char *end;
    for (int i = 0; i < 4; i++) {
        b[i] = strtod(s, &end);
        if (end == s || !isfinite(b[i]) || (i < 3 ? *end != ',' : *end != '\0'))
            return -1;
        s = end + 1;
    }
    if (b[0] < -180 || b[2] > 180 || b[1] < -90 || b[3] > 90 || b[0] > b[2] || b[1] > b[3])
        return -1;
    return 0;
}

int
web_map_layer(web_req *r)
{
    core_err err = CORE_ERR_INIT;
    const char *partof = web_query(r, "partof"), *bbox_s = web_query(r, "bbox");
    const char *tol_s = web_query(r, "tolerance");
    char root[65] = "", *json = NULL;
    double bbox[4], tol = REG_MAP_TOLERANCE_DEFAULT;
    long n;

    if (web_location_param(r, "partof", partof, NULL, root) < 0)
        return 400;
    if (bbox_s && *bbox_s && parse_bbox(bbox_s, bbox) < 0) {
        web_fail(r, 400, CORE_ISSUE_VALUE,
                 "bbox must be minLon,minLat,maxLon,maxLat in degrees (got \"%.80s\")", bbox_s);
        return 400;
    }
    if (tol_s && *tol_s) {
        char *end;
        tol = strtod(tol_s, &end);
        if (end == tol_s || *end)
            tol = NAN; /* reg_map_layer says what is accepted */
    }
    if (reg_map_layer(&json, &n, r->th->db, root[0] ? root : NULL, tol,
                      bbox_s && *bbox_s ? bbox : NULL, REG_MAP_MAX_FEATURES, &err) < 0) {
        int status = err.status;
        web_send_error(r, &err);
        core_err_clear(&err);
        return status;
    }
    web_send(r, 200, "application/geo+json; charset=utf-8", NULL, json, strlen(json));
    free(json);
    (void)n;
    return 200;
}
