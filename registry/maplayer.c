/* Boundaries for maps: the Locations' boundaries as one GeoJSON FeatureCollection, simplified
 * (topology-preserving, PostGIS ST_SimplifyPreserveTopology) to a tolerance in degrees, so a
 * web map can draw a country's districts in one request of a few hundred kilobytes instead of
 * the full-resolution polygons (which may have 200,000 vertices each). The stored boundaries
 * are not changed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/maplayer.h"

/* $1 partof root (NULL: all), $2 tolerance (degrees), $3..$6 bbox (NULL: none), $7 limit + 1.
 * Features in id order; properties are what a map labels and styles with. */
static const core_stmt ST_LAYER = {
    "reg_map_layer",
    "SELECT count(*), json_build_object('type', 'FeatureCollection', 'features', "
    "coalesce(json_agg(f.feature ORDER BY f.id), '[]'::json))::text FROM (SELECT g.id, "
    "json_build_object('type', 'Feature', 'id', 'Location/' || g.id, 'properties', "
    "json_build_object('name', x.content ->> 'name', 'status', x.content ->> 'status', "
    "'partOf', x.content #>> '{partOf,reference}', 'type', (SELECT json_agg(c ->> 'code') FROM "
    "jsonb_array_elements(x.content -> 'type') t, jsonb_array_elements(t -> 'coding') c)), "
    "'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, $2::float8), 7)::json) AS "
    "feature FROM sp_geo g JOIN resource x ON x.rtype = 'Location' AND x.id = g.id AND NOT "
    "x.deleted WHERE g.rtype = 'Location' AND g.param = 'boundary' AND ($1::text IS NULL OR "
    "g.id = $1 OR g.id IN (SELECT b.id FROM sp_below b WHERE b.rtype = 'Location' AND b.anc = "
    "$1)) AND ($3::float8 IS NULL OR g.geom && ST_MakeEnvelope($3::float8, $4::float8, "
    "$5::float8, $6::float8, 4326)) ORDER BY g.id LIMIT $7::bigint) f",
    7
};

int
reg_map_layer(char **geojson,
              long *features,
              core_db *db,
              const char *partof,
              double tolerance,
              const double *bbox,
              long max_features,
              core_err *err)
{
    char tol[40], b[4][40], lim[24];
    const char *p[7];
    PGresult *res;

    *geojson = NULL;
    *features = 0;
    if (!isfinite(tolerance) || tolerance < 0.0 || tolerance > REG_MAP_TOLERANCE_MAX)
        return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "tolerance",
                               "tolerance must be a number of degrees from 0 to %g (0.001 is "
                               "about 110 m)",
                               REG_MAP_TOLERANCE_MAX);
    snprintf(tol, sizeof(tol), "%.17g", tolerance);
    snprintf(lim, sizeof(lim), "%ld", max_features + 1);
    p[0] = partof;
    p[1] = tol;
    if (bbox) {
        for (int i = 0; i < 4; i++)
            snprintf(b[i], sizeof(b[i]), "%.17g", bbox[i]);
    }
    for (int i = 0; i < 4; i++)
        p[2 + i] = bbox ? b[i] : NULL;
    p[6] = lim;
    if (!(res = core_db_exec(db, &ST_LAYER, p, err)))
        return -1;
    *features = atol(PQgetvalue(res, 0, 0));
    if (*features > max_features) {
        PQclear(res);
        return core_err_set(err, 400, CORE_ISSUE_TOO_LONG,
                            "more than %ld boundaries: narrow the layer with partof or bbox",
                            max_features);
    }
    if (!(*geojson = strdup(PQgetvalue(res, 0, 1))))
        abort();
    PQclear(res);
    return 0;
}
