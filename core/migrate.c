/* Forward-only migrations: sql/NNNN_name.sql files embedded in the binary, applied in order,
 * each in its own transaction, recorded with a checksum in schema_migrations. A recorded
 * migration whose text changed stops the start-up: landed migrations are never edited. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"

static const core_stmt ST_APPLIED = {
    "core_migrations_applied", "SELECT version, checksum FROM schema_migrations ORDER BY version", 0
};
static const core_stmt ST_RECORD = {
    "core_migrations_record",
    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", 3
};

static void
checksum_hex(const core_embedded_file *f, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), f->data, f->len, NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

static int
is_migration(const core_embedded_file *f)
{
    return strncmp(f->path, "sql/", 4) == 0;
}

/* Returns the recorded checksum of version v in res, or NULL. */
static const char *
recorded(const PGresult *res, const char *v)
{
    for (int i = 0; i < PQntuples(res); i++)
        if (strcmp(PQgetvalue(res, i, 0), v) == 0)
            return PQgetvalue(res, i, 1);
    return NULL;
}

static int
ensure_table(core_db *db, core_err *err)
{
    return core_db_run(db,
                       "CREATE TABLE IF NOT EXISTS schema_migrations ("
                       " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())",
                       err);
}

int
core_migrate(core_db *db, core_err *err)
{
    const core_embedded_file *f;
    PGresult *res = NULL;
    int applied = 0;

    /* one migrator at a time, across processes */
    if (core_db_run(db, "SELECT pg_advisory_lock(7316001)", err) < 0)
        return -1;
    if (ensure_table(db, err) < 0)
        goto fail;
    if (!(res = core_db_exec(db, &ST_APPLIED, NULL, err)))
        goto fail;
    for (f = core_embedded; f->path; f++) {
        char version[5], sum[65];
        const char *have, *params[3];
        if (!is_migration(f))
            continue;
        memcpy(version, f->path + 4, 4);
        version[4] = '\0';
        checksum_hex(f, sum);
        if ((have = recorded(res, version))) {
            if (strcmp(have, sum) != 0) {
                core_err_set(err, 500, CORE_ISSUE_EXCEPTION,
                             "migration %s was changed after it was applied; landed migrations "
                             "must never be edited",
                             f->path);
                goto fail;
            }
            continue;
        }
        core_log(CORE_LOG_INFO, "applying migration %s", f->path);
        if (core_db_run(db, "BEGIN", err) < 0)
            goto fail;
        if (core_db_run(db, (const char *)f->data, err) < 0) {
            core_err err2 = CORE_ERR_INIT;
            core_db_run(db, "ROLLBACK", &err2);
            core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "migration %s failed (see the log)",
                         f->path);
            goto fail;
        }
        params[0] = version;
        params[1] = f->path + 4;
        params[2] = sum;
        {
            PGresult *r = core_db_exec(db, &ST_RECORD, params, err);
            if (!r) {
                core_err err2 = CORE_ERR_INIT;
                core_db_run(db, "ROLLBACK", &err2);
                goto fail;
            }
            PQclear(r);
        }
        if (core_db_run(db, "COMMIT", err) < 0)
            goto fail;
        applied++;
    }
    PQclear(res);
    core_db_run(db, "SELECT pg_advisory_unlock(7316001)", err);
    return applied;
fail:
    PQclear(res);
    {
        core_err err2 = CORE_ERR_INIT;
        core_db_run(db, "SELECT pg_advisory_unlock(7316001)", &err2);
    }
    return -1;
}

int
core_migrate_is_current(core_db *db, core_err *err)
{
    static const core_stmt st = { "core_migrations_count", "SELECT count(*) FROM schema_migrations",
                                  0 };
    const core_embedded_file *f;
    PGresult *res;
    int want = 0, have;

    for (f = core_embedded; f->path; f++)
        want += is_migration(f);
    if (!(res = core_db_exec(db, &st, NULL, err)))
        return -1;
    have = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return have >= want ? 1 : 0;
}
