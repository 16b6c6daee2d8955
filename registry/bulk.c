/* What importers need beyond single REST writes: validation on its own, lookups of many
 * identifiers at once, jurisdictions by name under a parent, the facilities a full refresh no
 * longer names, many writes in one transaction, and the checkpoint an import resumes from.
 * Every write still goes through reg__write_row (mahali_write): same versioning, index, audit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry_int.h"

#define MCSD_TYPES \
    "https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types"

int
reg_check(json_t *res, reg_type t, const reg_actor *who, core_err *err)
{
    return reg__check_body(res, t, who, err);
}

/* Parse each row's column col as JSON into a new array. */
static json_t *
rows_json(PGresult *r, int col, core_err *err)
{
    json_t *arr = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *text = PQgetvalue(r, i, col);
        json_t *j = core_json_parse(text, strlen(text), err);
        if (!j) {
            json_decref(arr);
            return NULL;
        }
        json_array_append_new(arr, j);
    }
    return arr;
}

/* Each row's column 1 parsed as JSON, keyed by its column 0, into a new object. */
static json_t *
rows_keyed(PGresult *r, core_err *err)
{
    json_t *obj = json_object();
    for (int i = 0; i < PQntuples(r); i++) {
        const char *text = PQgetvalue(r, i, 1);
        json_t *j = core_json_parse(text, strlen(text), err);
        if (!j) {
            json_decref(obj);
            return NULL;
        }
        json_object_set_new(obj, PQgetvalue(r, i, 0), j);
    }
    return obj;
}

/* Run sql with $1 = first and $2 = arg as JSON text; the rows keyed as rows_keyed does. */
static int
keyed_query(
    json_t **out, core_db *db, const char *sql, const char *first, const json_t *arg, core_err *err)
{
    char *text = core_json_dump(arg, NULL);
    const char *params[2] = { first, text };
    PGresult *r;

    *out = NULL;
    if (!text)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    r = core_db_query(db, sql, 2, params, 1, err);
    free(text);
    if (!r)
        return -1;
    *out = rows_keyed(r, err);
    PQclear(r);
    return *out ? 0 : -1;
}

int
reg_find_by_identifiers(json_t **out, core_db *db, reg_type t, json_t *keys, core_err *err)
{
    /* one index probe per key (a hash of every identifier of the type would grow with the
     * registry) */
    return keyed_query(out, db,
                       "SELECT k.s || '|' || k.v, r.content::text "
                       "FROM (SELECT DISTINCT e ->> 0 AS s, e ->> 1 AS v "
                       "      FROM jsonb_array_elements($2::jsonb) e) k "
                       "CROSS JOIN LATERAL (SELECT t.id FROM sp_token t WHERE t.rtype = $1 "
                       "  AND t.param = 'identifier' AND t.code = k.v AND t.system = k.s "
                       "  OFFSET 0) t "
                       "JOIN resource r ON r.rtype = $1 AND r.id = t.id AND NOT r.deleted",
                       reg_type_name(t), keys, err);
}

int
reg_read_many(json_t **out, core_db *db, reg_type t, json_t *ids, core_err *err)
{
    return keyed_query(out, db,
                       "SELECT r.id, r.content::text FROM resource r "
                       "WHERE r.rtype = $1 AND NOT r.deleted "
                       "  AND r.id IN (SELECT jsonb_array_elements_text($2::jsonb))",
                       reg_type_name(t), ids, err);
}

int
reg_find_jurisdictions(
    json_t **out, core_db *db, const char *parent, const char *name, core_err *err)
{
    const char *params[3] = { parent, name, MCSD_TYPES };
    PGresult *r;

    /* by name first (the name index), then the type and the parent; runs of white space in
     * the name given count as one space */
    *out = NULL;
    r = core_db_query(
        db,
        "SELECT r.content::text FROM sp_string s "
        "JOIN resource r ON r.rtype = 'Location' AND r.id = s.id AND NOT r.deleted "
        "WHERE s.rtype = 'Location' AND s.param = 'name' "
        "  AND s.norm = mahali_norm(btrim(regexp_replace($2, '[[:space:]\\u00a0]+', ' ', 'g'))) "
        "  AND EXISTS (SELECT 1 FROM sp_token t WHERE t.rtype = 'Location' AND t.id = r.id "
        "              AND t.param = 'type' AND t.code = 'jurisdiction' AND t.system = $3) "
        "  AND CASE WHEN $1::text IS NULL "
        "      THEN NOT EXISTS (SELECT 1 FROM sp_ref f WHERE f.rtype = 'Location' "
        "                       AND f.id = r.id AND f.param = 'partof') "
        "      ELSE EXISTS (SELECT 1 FROM sp_ref f WHERE f.rtype = 'Location' AND f.id = r.id "
        "                   AND f.param = 'partof' AND f.target_type = 'Location' "
        "                   AND f.target_id = $1) END "
        "ORDER BY r.id",
        3, params, 1, err);
    if (!r)
        return -1;
    *out = rows_json(r, 0, err);
    PQclear(r);
    return *out ? 0 : -1;
}

int
reg_find_missing(json_t **out,
                 core_db *db,
                 const char *tag_system,
                 const char *tag_code,
                 json_t *keep,
                 core_err *err)
{
    char *text = core_json_dump(keep, NULL);
    json_t *tag = json_pack("[{s:s,s:s}]", "system", tag_system, "code", tag_code);
    char *tagtext = core_json_dump(tag, NULL);
    const char *params[3] = { tagtext, text, MCSD_TYPES };
    PGresult *r;

    json_decref(tag);
    *out = NULL;
    if (!text || !tagtext) {
        free(text);
        free(tagtext);
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    }
    /* a scan of the Locations' meta (once per full refresh; tags are not a search index) */
    r = core_db_query(
        db,
        "WITH keep AS (SELECT DISTINCT v FROM jsonb_array_elements_text($2::jsonb) v) "
        "SELECT r.content::text FROM resource r "
        "WHERE r.rtype = 'Location' AND NOT r.deleted "
        "  AND r.content -> 'meta' -> 'tag' @> $1::jsonb "
        "  AND NOT EXISTS (SELECT 1 FROM keep WHERE keep.v = r.id) "
        "  AND coalesce(r.content ->> 'status', '') <> 'inactive' "
        "  AND EXISTS (SELECT 1 FROM sp_token y WHERE y.rtype = 'Location' AND y.id = r.id "
        "              AND y.param = 'type' AND y.code = 'facility' AND y.system = $3) "
        "ORDER BY r.id",
        3, params, 0, err);
    free(text);
    free(tagtext);
    if (!r)
        return -1;
    *out = rows_json(r, 0, err);
    PQclear(r);
    return *out ? 0 : -1;
}

int
reg_positions_check(json_t **out, core_db *db, json_t *points, core_err *err)
{
    char *text = core_json_dump(points, NULL);
    const char *params[1] = { text };
    PGresult *r;

    *out = NULL;
    if (!text)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    r = core_db_query(
        db,
        "WITH p AS (SELECT o, ST_SetSRID(ST_MakePoint((e ->> 0)::float8, (e ->> 1)::float8), 4326) "
        "                  AS pt, "
        "           ST_SetSRID(ST_MakePoint((e ->> 1)::float8, (e ->> 0)::float8), 4326) AS sw, "
        "           e ->> 2 AS parent "
        "           FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY t(e, o)), "
        /* the nearest boundary up the point's chain: an index probe per ancestor (OFFSET 0
         * keeps the planner from scanning every boundary per point), once per point */
        "ref AS MATERIALIZED (SELECT p.*, (SELECT g.geom FROM (SELECT p.parent AS id, 0 AS depth "
        "                     UNION ALL SELECT b.anc, b.depth FROM sp_below b "
        "                     WHERE b.rtype = 'Location' AND b.id = p.parent) a "
        "                   CROSS JOIN LATERAL (SELECT g.geom FROM sp_geo g "
        "                     WHERE g.rtype = 'Location' AND g.id = a.id "
        "                       AND g.param = 'boundary' OFFSET 0) g "
        "                   ORDER BY a.depth LIMIT 1) AS geom "
        "        FROM p), "
        "any_boundary AS (SELECT EXISTS (SELECT 1 FROM sp_geo WHERE rtype = 'Location' "
        "                                AND param = 'boundary') AS yes) "
        /* the topmost boundaries (no ancestor has one) that cover a point: candidates from the
         * boundary index by bounding box, then the exact test */
        "SELECT CASE WHEN geom IS NOT NULL THEN ST_Covers(geom, pt) "
        "            WHEN (SELECT yes FROM any_boundary) THEN mahali_in_top_boundary(pt) END, "
        "       CASE WHEN geom IS NOT NULL THEN ST_Covers(geom, sw) "
        "            WHEN (SELECT yes FROM any_boundary) THEN mahali_in_top_boundary(sw) END "
        "FROM ref ORDER BY o",
        1, params, 0, err);
    free(text);
    if (!r)
        return -1;
    *out = json_array();
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *row = json_array();
        for (int k = 0; k < 2; k++)
            json_array_append_new(row, PQgetisnull(r, i, k)
                                           ? json_null()
                                           : json_boolean(PQgetvalue(r, i, k)[0] == 't'));
        json_array_append_new(*out, row);
    }
    PQclear(r);
    return 0;
}

/* The batch's JSON text (malloc'd into *buf), each item's resource stamped with its id. */
static int
batch_text(char **out, reg_batch_item *items, size_t n, size_t *failed, core_err *err)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;

    *out = NULL;
    /* [{"t": type, "i": id, "c": content, "x": index, "p": parent}, ...]: ids and type names
     * need no escaping (reg_id_valid) */
    for (size_t i = 0; i < n; i++) {
        char parent[65], pj[80] = "", *text, *index;
        memset(&items[i].w, 0, sizeof(items[i].w));
        if (!reg_id_valid(items[i].id)) {
            *failed = i;
            free(buf);
            return core_err_set(err, 400, CORE_ISSUE_VALUE, "item %zu: id \"%.64s\" is not valid",
                                i, items[i].id);
        }
        if (reg__body_texts(&text, &index, parent, items[i].resource, items[i].type, items[i].id,
                            err) < 0) {
            free(buf);
            return -1;
        }
        if (parent[0])
            snprintf(pj, sizeof(pj), ",\"p\":\"%s\"", parent);
        size_t need = strlen(text) + strlen(index) + strlen(items[i].id) + strlen(pj) + 64;
        if (len + need + 2 > cap) {
            cap = (len + need + 2) * 2;
            if (!(buf = realloc(buf, cap)))
                abort();
        }
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s{\"t\":\"%s\",\"i\":\"%s\",\"c\":%s,\"x\":%s%s}", i ? "," : "[",
                                reg_type_name(items[i].type), items[i].id, text, index, pj);
        free(text);
        free(index);
    }
    buf[len++] = ']';
    buf[len] = '\0';
    *out = buf;
    return 0;
}

static const char BATCH_SQL[] = "SELECT o_ord, o_version, o_instant, o_created, o_noop "
                                "FROM mahali_write_batch($1, $2::jsonb)";

/* The outcome rows of mahali_write_batch into items. */
static void
batch_outcome(reg_batch_item *items, size_t n, PGresult *r)
{
    for (int k = 0; k < PQntuples(r); k++) {
        size_t i = (size_t)atol(PQgetvalue(r, k, 0)) - 1;
        if (i >= n)
            continue;
        reg_write *w = &items[i].w;
        core_strlcpy(w->id, items[i].id, sizeof(w->id));
        w->version = atoi(PQgetvalue(r, k, 1));
        core_strlcpy(w->last_updated, PQgetvalue(r, k, 2), sizeof(w->last_updated));
        w->created = PQgetvalue(r, k, 3)[0] == 't';
        w->noop = PQgetvalue(r, k, 4)[0] == 't';
        reg__stamp(items[i].resource, items[i].id, w->version, w->last_updated);
    }
}

int
reg_write_batch(reg_batch_item *items,
                size_t n,
                size_t *failed,
                core_db *db,
                const reg_actor *who,
                core_err *err)
{
    char *buf;
    const char *params[2];
    PGresult *r;

    *failed = 0;
    if (!n)
        return 0;
    if (batch_text(&buf, items, n, failed, err) < 0)
        return -1;
    params[0] = who && who->name ? who->name : "system";
    params[1] = buf;
    r = core_db_query(db, BATCH_SQL, 2, params, 1, err);
    free(buf);
    if (!r)
        return reg__store_err(err, db, items[0].type, n == 1 ? items[0].id : "", 0);
    batch_outcome(items, n, r);
    PQclear(r);
    return 0;
}

int
reg_write_batch_send(
    reg_batch_item *items, size_t n, core_db *db, const reg_actor *who, core_err *err)
{
    char *buf;
    size_t failed;
    const char *params[2];
    int rc;

    if (batch_text(&buf, items, n, &failed, err) < 0)
        return -1;
    params[0] = who && who->name ? who->name : "system";
    params[1] = buf;
    rc = core_db_send(db, BATCH_SQL, 2, params, err);
    free(buf);
    return rc;
}

int
reg_write_batch_recv(reg_batch_item *items, size_t n, core_db *db, core_err *err)
{
    PGresult *r = core_db_wait(db, err);
    if (!r)
        return reg__store_err(err, db, items[0].type, n == 1 ? items[0].id : "", 0);
    batch_outcome(items, n, r);
    PQclear(r);
    return 0;
}

int
reg_check_deferred(core_db *db, core_err *err)
{
    if (core_db_run(db, "SET CONSTRAINTS ALL IMMEDIATE", err) < 0)
        return reg__store_err(err, db, REG_LOCATION, "", 0);
    return 0;
}

int
reg_analyze(core_db *db, core_err *err)
{
    /* the closure, which mahali_write_batch probes per new node: planned against an empty
     * table, those probes scan it. The other tables are reached by primary key or through
     * lateral probes; ANALYZE of sp_token and sp_ref (extended statistics) costs 0.2-0.5 s. */
    return core_db_run(db, "ANALYZE sp_below", err);
}

int
reg_checkpoint_get(
    long *line, json_t **state, int *finished, core_db *db, const char *source, core_err *err)
{
    const char *params[1] = { source };
    PGresult *r = core_db_query(
        db, "SELECT records, state::text, finished FROM import_checkpoint WHERE source = $1", 1,
        params, 0, err);

    *line = 0;
    *state = NULL;
    *finished = 0;
    if (!r)
        return -1;
    if (PQntuples(r) == 1) {
        const char *s = PQgetvalue(r, 0, 1);
        *line = atol(PQgetvalue(r, 0, 0));
        *finished = PQgetvalue(r, 0, 2)[0] == 't';
        if (!(*state = core_json_parse(s, strlen(s), err))) {
            PQclear(r);
            return -1;
        }
    }
    PQclear(r);
    return 0;
}

int
reg_checkpoint_put(core_db *db,
                   const char *source,
                   const char *file_name,
                   long line,
                   const json_t *state,
                   const json_t *issues,
                   int start,
                   int finished,
                   core_err *err)
{
    char ln[32], *text = core_json_dump(state, NULL), *iss = core_json_dump(issues, NULL);
    const char *params[6] = { source, file_name, ln, text, finished ? "t" : "f", iss };
    PGresult *r;

    if (!text || !iss) {
        free(text);
        free(iss);
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    }
    snprintf(ln, sizeof(ln), "%ld", line);
    r = core_db_query(db,
                      "INSERT INTO import_checkpoint (source, file_name, records, state, finished) "
                      "VALUES ($1, $2, $3::bigint, $4::jsonb, $5::boolean) "
                      "ON CONFLICT (source) DO UPDATE SET file_name = $2, records = $3::bigint, "
                      "state = $4::jsonb, finished = $5::boolean, updated_at = now()",
                      5, params, 1, err);
    if (r && start) {
        PQclear(r);
        r = core_db_query(db, "DELETE FROM import_issue WHERE source = $1", 1, params, 1, err);
    }
    if (r && json_array_size(issues)) {
        const char *p2[2] = { source, iss };
        PQclear(r);
        r = core_db_query(db,
                          "INSERT INTO import_issue (source, issue) SELECT $1, e "
                          "FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY t(e, o) ORDER BY o",
                          2, p2, 1, err);
    }
    free(text);
    free(iss);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int
reg_checkpoint_issues(json_t **out, core_db *db, const char *source, core_err *err)
{
    const char *params[1] = { source };
    PGresult *r =
        core_db_query(db, "SELECT issue::text FROM import_issue WHERE source = $1 ORDER BY seq", 1,
                      params, 0, err);
    *out = NULL;
    if (!r)
        return -1;
    *out = rows_json(r, 0, err);
    PQclear(r);
    return *out ? 0 : -1;
}
