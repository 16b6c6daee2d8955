/* Reindexing: recompute every live resource's search and spatial index rows from its stored
 * content with the current extraction (registry/search_param.c), through mahali_index. Runs
 * after upgrades; the resources themselves and their versions are not touched. Then the
 * partof closure table (sql/0005_hierarchy.sql) is rebuilt from the references. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

static const core_stmt ST_PAGE = {
    "reg_reindex_page",
    "SELECT rtype, id, content::text FROM resource WHERE NOT deleted AND (rtype, id) > ($1, $2) "
    "ORDER BY rtype, id LIMIT 500",
    2
};
static const core_stmt ST_INDEX = { "reg_reindex_one", "SELECT mahali_index($1, $2, $3::jsonb)",
                                    3 };
static const core_stmt ST_HIER = { "reg_reindex_hier", "SELECT mahali_hier_rebuild()", 0 };

int
reg_reindex(long *done,
            long *failed,
            core_db *db,
            void (*progress)(long done, void *payload),
            void *payload,
            core_err *err)
{
    char last_type[64] = "", last_id[65] = "";

    *done = 0;
    *failed = 0;
    for (;;) {
        const char *params[2] = { last_type, last_id };
        PGresult *page = core_db_exec(db, &ST_PAGE, params, err);
        int n;
        if (!page)
            return -1;
        n = PQntuples(page);
        for (int i = 0; i < n; i++) {
            const char *type = PQgetvalue(page, i, 0), *id = PQgetvalue(page, i, 1);
            const char *text = PQgetvalue(page, i, 2);
            core_err e = CORE_ERR_INIT;
            json_t *res = core_json_parse(text, strlen(text), &e);
            int t = reg_type_find(type);
            if (res && t >= 0) {
                json_t *idx = reg_index_build(res, t);
                char *itext = core_json_dump(idx, NULL);
                const char *p3[3] = { type, id, itext };
                PGresult *r = itext ? core_db_exec(db, &ST_INDEX, p3, &e) : NULL;
                if (r)
                    PQclear(r);
                else
                    (*failed)++;
                free(itext);
                json_decref(idx);
            } else {
                (*failed)++;
            }
            if (e.status)
                core_log(CORE_LOG_WARN, "reindex %s/%s: %s", type, id, e.msg);
            core_err_clear(&e);
            json_decref(res);
            (*done)++;
            if (progress && *done % 1000 == 0)
                progress(*done, payload);
        }
        if (n > 0) {
            core_strlcpy(last_type, PQgetvalue(page, n - 1, 0), sizeof(last_type));
            core_strlcpy(last_id, PQgetvalue(page, n - 1, 1), sizeof(last_id));
        }
        PQclear(page);
        if (n < 500)
            break;
    }
    /* the partof closure from scratch: mahali_index only follows changes of parent */
    {
        PGresult *r = core_db_exec(db, &ST_HIER, NULL, err);
        if (!r)
            return -1;
        PQclear(r);
    }
    return 0;
}
