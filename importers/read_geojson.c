/* GeoJSON (RFC 7946): a FeatureCollection whose properties are mapped exactly like CSV columns
 * (the header is the union of the property names, first seen first; importers/mapping.c), and
 * whose geometry decides what a feature is: a Point is a facility at that point, a Polygon or
 * MultiPolygon a jurisdiction with that boundary, no geometry a facility without a position. */
#include <stdlib.h>
#include <string.h>

#include "geo/geo.h"
#include "importers/imp_int.h"

/* The EPSG code a GeoJSON 2008 "crs" member names (borrowed, not NULL): {"type": "name",
 * "properties": {"name": ...}} or {"type": "EPSG", "properties": {"code": N}}. 4326 for CRS84.
 * Returns 0, or -1 with err (400 naming "crs"). */
static int
crs_epsg(int *epsg, const json_t *crs, core_err *err)
{
    const json_t *props = json_object_get(crs, "properties"), *v;
    const char *type =
        core_json_is_text(v = json_object_get(crs, "type")) ? json_string_value(v) : "";
    char name[80] = "";

    if (strcmp(type, "name") == 0 && core_json_is_text(v = json_object_get(props, "name")))
        core_strlcpy(name, json_string_value(v), sizeof(name));
    else if (strcmp(type, "EPSG") == 0 && core_json_is_number(v = json_object_get(props, "code")))
        snprintf(name, sizeof(name), "EPSG:%.40s", core_json_number_text(v));
    else if (strcmp(type, "EPSG") == 0 && core_json_is_text(v = json_object_get(props, "code")))
        snprintf(name, sizeof(name), "EPSG:%.40s", json_string_value(v));
    else
        return core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "crs",
                               "crs must be {\"type\": \"name\", \"properties\": {\"name\": "
                               "\"EPSG:NNNN\"}} or {\"type\": \"EPSG\", \"properties\": "
                               "{\"code\": NNNN}}");
    if (geo_crs_parse(name, epsg, err) < 0) {
        err->status = 400;
        core_strlcpy(err->expr, "crs", sizeof(err->expr));
        return -1;
    }
    return 0;
}

/* A property's value as a cell: strings as they are, numbers as written, true/false, "" for
 * null, objects and arrays as their JSON text. Arena-owned. */
static char *
cell_of(core_arena *a, const json_t *v)
{
    if (!v || json_is_null(v))
        return "";
    if (core_json_is_number(v))
        return core_arena_strdup(a, core_json_number_text(v));
    if (json_is_string(v))
        return core_arena_strdup(a, json_string_value(v));
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    char *text = core_json_dump(v, NULL), *out;
    if (!text)
        return "";
    out = core_arena_strdup(a, text);
    free(text);
    return out;
}

/* The position of a Point: coordinates [x, y] (longitude, latitude in WGS84), an optional
 * altitude ignored. An empty Point leaves the record without a position. */
static void
point_position(imp_ctx *c, imp_rec *r, const json_t *coords)
{
    const json_t *x = json_array_get(coords, 0), *y = json_array_get(coords, 1);
    r->has_pos = 0;
    r->flag = NULL;
    if (json_is_array(coords) && json_array_size(coords) == 0)
        return;
    if (core_json_is_number(x) && core_json_is_number(y)) {
        imp_rec_position(c, r, core_json_number_text(y), core_json_number_text(x), NULL, 0,
                         "geometry");
        return;
    }
    /* not two numbers: reported (and flagged) with the coordinates as written */
    char *text = coords ? core_json_dump(coords, NULL) : NULL;
    imp_rec_position(c, r, NULL, NULL,
                     core_arena_strdup(imp_arena(c), text ? text : "(no coordinates)"), 1,
                     "geometry");
    free(text);
}

int
imp_read_geojson(imp_ctx *c, FILE *f, core_err *err)
{
    char **header = NULL, **row = NULL;
    size_t nfeat, i;
    json_t *doc = NULL, *feats, *one = NULL, *cols = NULL, *feat, *crs;
    imp_mapping *m;
    int n = 0, rc = -1, file_epsg = -1, geo_epsg;
    long total;

    if (imp_json_document(&doc, &total, f, err) < 0)
        return -1;
    const json_t *type = json_object_get(doc, "type");
    const char *tname = core_json_is_text(type) ? json_string_value(type) : NULL;
    if (tname && strcmp(tname, "Feature") == 0) {
        /* one Feature: a collection of one */
        one = json_pack("[O]", doc);
        feats = one;
    } else if (tname && strcmp(tname, "FeatureCollection") == 0) {
        feats = json_object_get(doc, "features");
        if (!json_is_array(feats)) {
            core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "features",
                            "the FeatureCollection has no \"features\" array");
            goto done;
        }
    } else {
        char q[CORE_CLIP_SIZE];
        if (tname)
            core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "type",
                            "expected a GeoJSON FeatureCollection, got type \"%s\"",
                            core_clip(q, tname, strlen(tname)));
        else
            core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "type",
                            "expected a GeoJSON FeatureCollection, got %s",
                            json_is_object(doc) ? "an object without \"type\""
                                                : "JSON that is not an object");
        goto done;
    }
    /* the deprecated "crs" (GeoJSON 2008): CRS84 / EPSG:4326 is what RFC 7946 means anyway */
    if ((crs = json_object_get(doc, "crs")) && !json_is_null(crs)) {
        if (crs_epsg(&file_epsg, crs, err) < 0)
            goto done;
        if (file_epsg == GEO_WGS84_EPSG)
            file_epsg = 0;
    }
    nfeat = json_array_size(feats);

    /* the header: every property name, in the order first met */
    cols = json_object();
    json_array_foreach (feats, i, feat) {
        const char *k;
        json_t *v;
        json_object_foreach (json_object_get(feat, "properties"), k, v) {
            if (json_object_get(cols, k))
                continue;
            if (n >= IMP_CSV_MAX_FIELDS) {
                core_err_set(err, 400, CORE_ISSUE_TOO_LONG,
                             "the features have more than %d distinct properties",
                             IMP_CSV_MAX_FIELDS);
                goto done;
            }
            json_object_set_new(cols, k, json_integer(n));
            n++;
        }
    }
    header = calloc((size_t)n + 1, sizeof(char *));
    row = calloc((size_t)n + 1, sizeof(char *));
    if (!header || !row)
        abort();
    {
        const char *k;
        json_t *v;
        json_object_foreach (cols, k, v)
            header[json_integer_value(v)] = core_strdup(k);
    }
    if (!(m = imp_mapping_for(c, header, n, err)))
        goto done;
    imp_set_mapping(c, m);
    /* a CRS the file names wins over the mapping's (or --crs) for the geometries */
    geo_epsg = file_epsg >= 0 ? file_epsg : imp_mapping_crs(m);
    if (file_epsg >= 0 && imp_mapping_crs(m) && imp_mapping_crs(m) != file_epsg)
        imp_issue(c, 0, "warning", "crs", NULL, "crs-conflict",
                  "the file names its coordinate reference system (%s%d); the mapping's "
                  "EPSG:%d applies to coordinate properties only",
                  file_epsg ? "EPSG:" : "WGS84, EPSG:", file_epsg ? file_epsg : GEO_WGS84_EPSG,
                  imp_mapping_crs(m));

    json_array_foreach (feats, i, feat) {
        long line = (long)i + 1;
        core_arena *a = imp_arena(c);
        const json_t *props = json_object_get(feat, "properties");
        const json_t *ftype = json_object_get(feat, "type");
        json_t *geom = json_object_get(feat, "geometry");
        imp_rec r;

        if (total > 0 && (i & 255) == 0)
            imp_progress_bytes(c, (long)((double)total * (double)i / (double)nfeat));
        if (!json_is_object(feat) || !core_json_is_text(ftype) ||
            strcmp(json_string_value(ftype), "Feature") != 0) {
            imp_issue(c, line, "error", NULL, NULL, "invalid-feature",
                      "feature %ld is not a GeoJSON Feature (an object with \"type\": "
                      "\"Feature\")",
                      line);
            imp_reject_row(c, line);
            continue;
        }
        if (props && !json_is_null(props) && !json_is_object(props)) {
            imp_issue(c, line, "error", "properties", NULL, "invalid-feature",
                      "the properties of feature %ld are not an object", line);
            imp_reject_row(c, line);
            continue;
        }
        for (int k = 0; k < n; k++)
            row[k] = cell_of(a, json_object_get(props, header[k]));
        int got = imp_mapping_row(&r, c, m, row, n, line);
        if (got < 0) {
            core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "feature %ld cannot be mapped", line);
            goto done;
        }
        if (got == 0)
            continue;

        const json_t *gt = json_object_get(geom, "type");
        const char *g = core_json_is_text(gt) ? json_string_value(gt) : NULL;
        if (!geom || json_is_null(geom)) {
            /* no geometry: a facility, positioned by the mapping's columns if it has any */
        } else if (g && strcmp(g, "Point") == 0) {
            r.kind = IMP_REC_FACILITY;
            r.crs_epsg = geo_epsg;
            point_position(c, &r, json_object_get(geom, "coordinates"));
        } else if (g && (strcmp(g, "Polygon") == 0 || strcmp(g, "MultiPolygon") == 0)) {
            r.kind = IMP_REC_JURISDICTION;
            if (!(r.boundary = imp_boundary_data(a, geom, geo_epsg))) {
                core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
                goto done;
            }
        } else {
            if (g)
                imp_issue(c, line, "error", "geometry", g, "unsupported-geometry",
                          "a %s is not imported: a Point is a facility, a Polygon or "
                          "MultiPolygon a jurisdiction",
                          g);
            else
                imp_issue(c, line, "error", "geometry", NULL, "unsupported-geometry",
                          "the geometry has no type: a Point is a facility, a Polygon or "
                          "MultiPolygon a jurisdiction");
            imp_reject_row(c, line);
            continue;
        }
        if (imp_emit(c, &r, err) < 0)
            goto done;
    }
    rc = 0;
done:
    for (int k = 0; header && k < n; k++)
        free(header[k]);
    free(header);
    free(row);
    json_decref(cols);
    json_decref(one);
    json_decref(doc);
    return rc;
}
