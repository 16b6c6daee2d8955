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

#endif
