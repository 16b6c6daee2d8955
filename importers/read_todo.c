/* Placeholders while the readers are written (this session). */
#include "importers/imp_int.h"

int
imp_read_geojson(imp_ctx *c, FILE *f, core_err *err)
{
    (void)c, (void)f;
    return core_err_set(err, 501, CORE_ISSUE_NOT_SUPPORTED, "geojson: not yet");
}
int
imp_read_dhis2(imp_ctx *c, FILE *f, core_err *err)
{
    (void)c, (void)f;
    return core_err_set(err, 501, CORE_ISSUE_NOT_SUPPORTED, "dhis2: not yet");
}
int
imp_read_csd(imp_ctx *c, FILE *f, core_err *err)
{
    (void)c, (void)f;
    return core_err_set(err, 501, CORE_ISSUE_NOT_SUPPORTED, "csd: not yet");
}
