/* Spatial data quality: the checks are one set-based SQL function (mahali_data_quality in
 * sql/0004_data_quality.sql) over the spatial index; this file runs it and hands back rows. */
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

static const core_stmt ST_DQ = {
    "reg_data_quality",
    "SELECT id, name, jurisdiction, check_code, reason, other_id FROM mahali_data_quality($1) "
    "ORDER BY id, check_code, other_id",
    1
};

void
reg_dq_free(reg_dq_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].name);
        free(rows[i].reason);
    }
    free(rows);
}

int
reg_data_quality(reg_dq_row **rows, size_t *n, core_db *db, const char *root, core_err *err)
{
    const char *params[1] = { root };
    PGresult *r;
    size_t count;

    *rows = NULL;
    *n = 0;
    if (root) {
        json_t *x;
        if (reg_read(&x, NULL, NULL, db, REG_LOCATION, root, err) < 0)
            return -1;
        json_decref(x);
    }
    if (!(r = core_db_exec(db, &ST_DQ, params, err)))
        return -1;
    count = (size_t)PQntuples(r);
    *rows = calloc(count ? count : 1, sizeof(**rows));
    if (!*rows)
        abort();
    for (size_t i = 0; i < count; i++) {
        reg_dq_row *d = &(*rows)[i];
        core_strlcpy(d->id, PQgetvalue(r, (int)i, 0), sizeof(d->id));
        d->name = PQgetisnull(r, (int)i, 1) ? NULL : strdup(PQgetvalue(r, (int)i, 1));
        core_strlcpy(d->jurisdiction, PQgetvalue(r, (int)i, 2), sizeof(d->jurisdiction));
        core_strlcpy(d->check, PQgetvalue(r, (int)i, 3), sizeof(d->check));
        d->reason = strdup(PQgetvalue(r, (int)i, 4));
        core_strlcpy(d->other, PQgetvalue(r, (int)i, 5), sizeof(d->other));
        if (!d->reason)
            abort();
    }
    *n = count;
    PQclear(r);
    return 0;
}
