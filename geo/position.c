/* Position checks shared by validation and the importers, and the versions of the geometry
 * libraries for `mahali --version`. */
#include <math.h>
#include <proj.h>
#include <stdio.h>

#include <geos_c.h>

#include "geo/geo.h"

int
geo_position_check(double lon, double lat, const char *path, core_err *err)
{
    char expr[128];

    if (!isfinite(lat) || lat < -90.0 || lat > 90.0) {
        snprintf(expr, sizeof(expr), "%s.latitude", path);
        return core_err_set_at(err, 400, CORE_ISSUE_VALUE, expr,
                               "latitude must be between -90 and 90 (got %g)", lat);
    }
    if (!isfinite(lon) || lon < -180.0 || lon > 180.0) {
        snprintf(expr, sizeof(expr), "%s.longitude", path);
        return core_err_set_at(err, 400, CORE_ISSUE_VALUE, expr,
                               "longitude must be between -180 and 180 (got %g)", lon);
    }
    return 0;
}

const char *
geo_versions(void)
{
    static char buf[128];
    PJ_INFO info = proj_info();
    /* written once from main before threads start */
    snprintf(buf, sizeof(buf), "GEOS %s, PROJ %s", GEOSversion(), info.version);
    return buf;
}
