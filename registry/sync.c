/* Where `mahali sync` stands in another Directory's change feed (sql/0009_feed_sync.sql). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

static const core_stmt ST_GET = {
    "reg_sync_get", "SELECT since, applied FROM sync_cursor WHERE source = $1 AND rtype = $2", 2
};
static const core_stmt ST_PUT = {
    "reg_sync_put",
    "INSERT INTO sync_cursor (source, rtype, since, applied) VALUES ($1, $2, $3, $4::bigint)"
    " ON CONFLICT (source, rtype) DO UPDATE SET since = EXCLUDED.since,"
    " applied = sync_cursor.applied + EXCLUDED.applied, updated_at = now()",
    4
};

int
reg_sync_cursor_get(char since[40],
                    long long *applied,
                    core_db *db,
                    const char *source,
                    const char *scope,
                    core_err *err)
{
    const char *params[2] = { source, scope };
    PGresult *r = core_db_exec(db, &ST_GET, params, err);

    since[0] = '\0';
    *applied = 0;
    if (!r)
        return -1;
    if (PQntuples(r) == 1) {
        if (!PQgetisnull(r, 0, 0))
            core_strlcpy(since, PQgetvalue(r, 0, 0), 40);
        *applied = atoll(PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return 0;
}

int
reg_sync_cursor_put(core_db *db,
                    const char *source,
                    const char *scope,
                    const char *since,
                    long long applied,
                    core_err *err)
{
    char n[24];
    const char *params[4] = { source, scope, since && *since ? since : NULL, n };
    PGresult *r;

    snprintf(n, sizeof(n), "%lld", applied);
    if (!(r = core_db_exec(db, &ST_PUT, params, err)))
        return -1;
    PQclear(r);
    return 0;
}
