/* Boundaries as a GeoJSON layer for web maps (registry/maplayer.c). */
#ifndef REGISTRY_MAPLAYER_H
#define REGISTRY_MAPLAYER_H

#include "core/db.h"

#define REG_MAP_TOLERANCE_DEFAULT 0.001 /* degrees: about 110 m */
#define REG_MAP_TOLERANCE_MAX     1.0
#define REG_MAP_MAX_FEATURES      5000L

/** The boundaries of the live Locations that have one, as a GeoJSON FeatureCollection (text,
 *  caller free()s it): each Feature has id "Location/<id>", properties name, status, partOf
 *  and type (the codes), and the geometry simplified with ST_SimplifyPreserveTopology to
 *  tolerance degrees (0 keeps it as stored), coordinates with at most 7 decimals. partof: a
 *  Location id: that Location and the ones below it (NULL: all). bbox: min lon, min lat, max
 *  lon, max lat, keeping the boundaries whose box meets it (NULL: no filter). Returns 0 with
 *  *features set, or -1 with err: 400 tolerance out of range (expr "tolerance"), 400 more than
 *  max_features boundaries match (narrow with partof or bbox), 503 database. */
int reg_map_layer(char **geojson,
                  long *features,
                  core_db *db,
                  const char *partof,
                  double tolerance,
                  const double *bbox,
                  long max_features,
                  core_err *err);

#endif
