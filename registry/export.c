/* Exports of the master facility list: the live facility Locations (mCSD facility type), with
 * their managing Organization and the Locations above them, read in pages ordered by id
 * (keyset: each page starts after the last id of the one before) and handed to a callback one
 * by one, so an export of any size holds one page in memory. Each page is its own statement:
 * no transaction stays open while a slow client reads, because an open transaction holds back
 * the change feed's horizon (mahali_feed_horizon) and vacuum. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry_int.h"

#define MCSD_TYPES \
    "https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types"
#define PAGE 500

/* Whether the Location with id column col has the mCSD code: a scalar subquery with LIMIT,
 * which the planner keeps as a probe of sp_token_owner per row (as a semi-join it would read
 * every Location's tokens from the first id on each page). */
#define HAS_MCSD(col, code)                                                   \
    "(SELECT true FROM sp_token y WHERE y.rtype = 'Location' AND y.id = " col \
    " AND y.param = 'type' AND y.code = '" code "' AND y.system = '" MCSD_TYPES "' LIMIT 1)"

/* The conditions on a Location r but its place: $2 type mode (NULL: no type condition;
 * 'any': the code in any system; 'eq': in system $3; 'null': without a system), $3 system, $4
 * code (NULL: any code of system $3), $5 status (NULL: any). $1 is the jurisdiction (NULL:
 * all), applied by the statements below. */
#define FILTER                                                                                     \
    "r.rtype = 'Location' AND NOT r.deleted AND " HAS_MCSD(                                        \
        "r.id", "facility") " "                                                                    \
                            "AND ($2::text IS NULL OR (SELECT true FROM sp_token t WHERE t.rtype " \
                            "= 'Location' "                                                        \
                            "  AND t.id = r.id AND t.param = 'type' AND ($4::text IS NULL OR "     \
                            "t.code = $4::text) "                                                  \
                            "  AND CASE $2::text WHEN 'eq' THEN t.system = $3::text WHEN 'null' "  \
                            "THEN t.system IS NULL "                                               \
                            "      ELSE true END LIMIT 1)) "                                       \
                            "AND ($5::text IS NULL OR r.content ->> 'status' = $5::text) "

/* A Location's columns, r being the Location: id, content, its live managing Organization's
 * content, the Locations above it (top first, as reg_export_item.above describes), whether a
 * facility is below it, whether its Organization manages another Location too. */
#define ITEM_COLUMNS                                                                               \
    "r.id, r.content::text, o.content::text, "                                                     \
    "coalesce((SELECT json_agg(json_build_object('id', a.id, 'name', a.content ->> 'name', "       \
    "  'facility', " HAS_MCSD(                                                                     \
        "a.id",                                                                                    \
        "facility") " IS NOT NULL, "                                                               \
                    "  'identifier', a.content -> 'identifier') ORDER BY b.depth DESC) "           \
                    "  FROM sp_below b JOIN resource a ON a.rtype = 'Location' AND a.id = b.anc "  \
                    "  WHERE b.rtype = 'Location' AND b.id = r.id), '[]'::json)::text, "           \
                    "(SELECT true FROM sp_below c WHERE c.rtype = 'Location' AND c.anc = r.id "    \
                    "  AND " HAS_MCSD("c.id",                                                      \
                                      "facility") " LIMIT 1) IS NOT NULL, "                        \
                                                  "(o.id IS NOT NULL AND (SELECT true FROM "       \
                                                  "sp_ref s WHERE s.target_type = 'Organization' " \
                                                  "  AND s.target_id = o.id AND s.param = "        \
                                                  "'organization' AND s.rtype = 'Location' "       \
                                                  "  AND s.id <> r.id LIMIT 1) IS NOT NULL) "

#define ORG_JOIN                                                                 \
    "LEFT JOIN LATERAL (SELECT x.id, x.content FROM sp_ref f JOIN resource x "   \
    "  ON x.rtype = 'Organization' AND x.id = f.target_id AND NOT x.deleted "    \
    "  WHERE f.rtype = 'Location' AND f.id = r.id AND f.param = 'organization' " \
    "    AND f.target_type = 'Organization' ORDER BY x.id LIMIT 1) o ON true "

/* A page: $6 the last id of the page before ('' first), $7 the page size. Every Location in
 * id order (the primary key), or, with a jurisdiction, the Locations below it in id order
 * (the closure's primary key: rtype, anc, id); both stop at the page's last row. */
static const char SQL_PAGE_ALL[] =
    "SELECT " ITEM_COLUMNS ", NULL FROM resource r " ORG_JOIN "WHERE r.id > $6::text AND " FILTER
    "ORDER BY r.id LIMIT $7::int";
static const char SQL_PAGE_BELOW[] =
    "SELECT " ITEM_COLUMNS ", NULL FROM sp_below j JOIN resource r "
    "  ON r.rtype = 'Location' AND r.id = j.id " ORG_JOIN
    "WHERE j.rtype = 'Location' AND j.anc = $1::text AND j.id > $6::text AND " FILTER
    "ORDER BY j.id LIMIT $7::int";

/* $1 the ids (JSON array), $2 't': with the boundary as GeoJSON (7 decimals, lon/lat). */
static const char SQL_ABOVE[] =
    "SELECT " ITEM_COLUMNS ", CASE WHEN $2::boolean THEN (SELECT ST_AsGeoJSON(g.geom, 7) "
    "  FROM sp_geo g WHERE g.rtype = 'Location' AND g.id = r.id AND g.param = 'boundary' "
    "  LIMIT 1) END FROM resource r " ORG_JOIN "WHERE r.rtype = 'Location' AND NOT r.deleted "
    "  AND r.id IN (SELECT jsonb_array_elements_text($1::jsonb))";

static const char SQL_SHAPE[] =
    "WITH f AS MATERIALIZED (SELECT r.id FROM resource r WHERE " FILTER
    "  AND ($1::text IS NULL OR EXISTS (SELECT 1 FROM sp_below j WHERE j.rtype = 'Location' "
    "  AND j.anc = $1::text AND j.id = r.id))) "
    "SELECT (SELECT coalesce(json_agg(x.s ORDER BY x.s), '[]'::json) FROM (SELECT DISTINCT "
    "  t.system AS s FROM f JOIN sp_token t ON t.rtype = 'Location' AND t.id = f.id "
    "  AND t.param = 'identifier' WHERE t.system IS NOT NULL AND t.system <> '') x)::text, "
    "(SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM f JOIN sp_below b "
    "  ON b.rtype = 'Location' AND b.id = f.id WHERE " HAS_MCSD(
        "b.anc", "facility") " IS NULL GROUP BY f.id) n), "
                             "(SELECT count(*) FROM f)";

/* Each statement in a transaction of its own with JIT compilation off: the per-row probes
 * make the planner's cost of a page look large enough for JIT, which then costs more time
 * (hundreds of milliseconds) than the page itself. The transaction ends before the rows are
 * handed on. */
static PGresult *
query(core_db *db, const char *sql, int n, const char *const *p, core_err *err)
{
    PGresult *r;
    core_err e = CORE_ERR_INIT;
    if (core_db_run(db, "BEGIN READ ONLY", err) < 0)
        return NULL;
    if (core_db_run(db, "SET LOCAL jit = off", err) < 0 ||
        !(r = core_db_query(db, sql, n, p, 0, err))) {
        core_db_run(db, "ROLLBACK", &e);
        core_err_clear(&e);
        return NULL;
    }
    if (core_db_run(db, "COMMIT", err) < 0) {
        PQclear(r);
        return NULL;
    }
    return r;
}

/* The filter as the five parameters of FILTER; mode, system and code point into buf. */
typedef struct params {
    const char *p[5];
    char buf[1040];
} params;

static int
parse_filter(params *out, const reg_export_filter *f, core_err *err)
{
    const char *type = f->type, *bar;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (f->jurisdiction) {
        if (!reg_id_valid(f->jurisdiction))
            return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "jurisdiction",
                                   "jurisdiction must be Location/id (got \"%.80s\")",
                                   f->jurisdiction);
        out->p[0] = f->jurisdiction;
    }
    if (type) {
        n = strlen(type);
        bar = strchr(type, '|');
        if (n == 0 || n >= sizeof(out->buf) - 8 || strcmp(type, "|") == 0 ||
            (bar && strchr(bar + 1, '|')))
            return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "type",
                                   "type must be a code, system|code, |code or system| (got "
                                   "\"%.80s\")",
                                   type);
        for (const char *s = type; *s; s++)
            if ((unsigned char)*s < 0x20)
                return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "type",
                                       "type must not hold control characters");
        memcpy(out->buf, type, n + 1);
        if (!bar) {
            out->p[1] = "any";
            out->p[3] = out->buf;
        } else {
            size_t k = (size_t)(bar - type);
            out->buf[k] = '\0';
            out->p[1] = k ? "eq" : "null";
            out->p[2] = k ? out->buf : NULL;
            out->p[3] = bar[1] ? out->buf + k + 1 : NULL;
        }
    }
    if (f->status) {
        if (strcmp(f->status, "active") != 0 && strcmp(f->status, "inactive") != 0 &&
            strcmp(f->status, "suspended") != 0)
            return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "status",
                                   "status must be active, inactive or suspended (got \"%.40s\")",
                                   f->status);
        out->p[4] = f->status;
    }
    return 0;
}

int
reg_export_check(core_db *db, const reg_export_filter *f, core_err *err)
{
    params p;
    json_t *res = NULL;

    if (parse_filter(&p, f, err) < 0)
        return -1;
    if (!f->jurisdiction)
        return 0;
    if (reg_read(&res, NULL, NULL, db, REG_LOCATION, f->jurisdiction, err) < 0) {
        if (!err->expr[0])
            core_strlcpy(err->expr, "jurisdiction", sizeof(err->expr));
        return -1;
    }
    json_decref(res);
    return 0;
}

int
reg_export_shape(json_t **systems,
                 int *levels,
                 long *count,
                 core_db *db,
                 const reg_export_filter *f,
                 core_err *err)
{
    params p;
    PGresult *r;
    const char *text;

    *systems = NULL;
    *levels = 0;
    *count = 0;
    if (parse_filter(&p, f, err) < 0)
        return -1;
    if (!(r = query(db, SQL_SHAPE, 5, p.p, err)))
        return -1;
    text = PQgetvalue(r, 0, 0);
    *systems = core_json_parse(text, strlen(text), err);
    *levels = atoi(PQgetvalue(r, 0, 1));
    *count = atol(PQgetvalue(r, 0, 2));
    PQclear(r);
    return *systems ? 0 : -1;
}

/* One row of SQL_PAGE or SQL_ABOVE, parsed. New references in it. */
typedef struct row {
    char id[65];
    json_t *loc, *org, *above, *boundary;
    int has_below, org_shared;
} row;

static void
row_clear(row *w)
{
    json_decref(w->loc);
    json_decref(w->org);
    json_decref(w->above);
    json_decref(w->boundary);
    memset(w, 0, sizeof(*w));
}

static json_t *
parse_col(PGresult *r, int i, int col, core_err *err)
{
    const char *text;
    json_t *j;
    if (PQgetisnull(r, i, col))
        return NULL;
    text = PQgetvalue(r, i, col);
    if (!(j = core_json_parse(text, strlen(text), err))) {
        core_log(CORE_LOG_ERROR, "export: stored content does not parse: %s", err->msg);
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "stored content is damaged");
    }
    return j;
}

static int
row_parse(row *w, PGresult *r, int i, core_err *err)
{
    memset(w, 0, sizeof(*w));
    core_strlcpy(w->id, PQgetvalue(r, i, 0), sizeof(w->id));
    if (!(w->loc = parse_col(r, i, 1, err)) ||
        (!PQgetisnull(r, i, 2) && !(w->org = parse_col(r, i, 2, err))) ||
        !(w->above = parse_col(r, i, 3, err)) ||
        (!PQgetisnull(r, i, 6) && !(w->boundary = parse_col(r, i, 6, err)))) {
        row_clear(w);
        return -1;
    }
    /* resourceType, id and meta first, as reads show them */
    w->loc = reg__reorder(w->loc);
    if (w->org)
        w->org = reg__reorder(w->org);
    w->has_below = PQgetvalue(r, i, 4)[0] == 't';
    w->org_shared = PQgetvalue(r, i, 5)[0] == 't';
    return 0;
}

static int
deliver(const row *w,
        reg_export_kind kind,
        int repeat,
        reg_export_fn each,
        void *payload,
        core_err *err)
{
    reg_export_item it;
    it.kind = kind;
    it.location = w->loc;
    it.organization = w->org;
    it.organization_shared = w->org_shared;
    it.above = w->above;
    it.boundary = w->boundary;
    it.repeat = repeat;
    if (!w->loc || !w->above)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    return each(&it, err, payload) < 0 ? -1 : 0;
}

/* The Locations above the page's facilities that were not delivered yet, parents first, each
 * added to sent. */
static int
deliver_above(row *rows,
              int n,
              json_t *sent,
              const reg_export_filter *f,
              core_db *db,
              reg_export_fn each,
              void *payload,
              core_err *err)
{
    json_t *want = json_array(), *mark = json_object(), *a;
    char *ids = NULL;
    PGresult *r = NULL;
    int rc = -1;
    size_t k;

    /* each chain is top first, so collecting in chain order puts every parent before its
     * children (a parent met in an earlier chain was collected then, or sent before) */
    for (int i = 0; i < n; i++)
        json_array_foreach (rows[i].above, k, a) {
            const char *id = json_string_value(json_object_get(a, "id"));
            if (id && !json_object_get(sent, id) && !json_object_get(mark, id)) {
                json_object_set_new(mark, id, json_true());
                json_array_append_new(want, json_string(id));
            }
        }
    if (!json_array_size(want)) {
        rc = 0;
        goto done;
    }
    if (!(ids = core_json_dump(want, NULL))) {
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
        goto done;
    }
    {
        const char *p[2] = { ids, f->boundaries ? "t" : "f" };
        if (!(r = query(db, SQL_ABOVE, 2, p, err)))
            goto done;
    }
    {
        /* by id, then delivered in the order collected */
        int m = PQntuples(r);
        row *got = calloc((size_t)m + 1, sizeof(*got));
        json_t *index = json_object(), *v;
        if (!got)
            abort();
        for (int i = 0; i < m; i++) {
            if (row_parse(&got[i], r, i, err) < 0) {
                for (int x = 0; x < i; x++)
                    row_clear(&got[x]);
                free(got);
                json_decref(index);
                goto done;
            }
            json_object_set_new(index, got[i].id, json_integer(i));
        }
        rc = 0;
        json_array_foreach (want, k, v) {
            json_t *at = json_object_get(index, json_string_value(v));
            if (!at)
                continue; /* deleted since the page was read */
            row *w = &got[json_integer_value(at)];
            json_object_set_new(sent, w->id, json_true());
            if (deliver(w, REG_EXPORT_ABOVE, 0, each, payload, err) < 0) {
                rc = -1;
                break;
            }
        }
        for (int i = 0; i < m; i++)
            row_clear(&got[i]);
        free(got);
        json_decref(index);
    }
done:
    PQclear(r);
    free(ids);
    json_decref(want);
    json_decref(mark);
    return rc;
}

int
reg_export_facilities(
    core_db *db, const reg_export_filter *f, reg_export_fn each, void *payload, core_err *err)
{
    params p;
    const char *q[7];
    char after[65] = "", lim[16];
    /* the Locations delivered as REG_EXPORT_ABOVE, and the facilities delivered that have a
     * facility below them (they may be met again above a later page's facility): bounded by
     * the Locations that have something below them, not by the facilities */
    json_t *sent = json_object();
    int rc = -1;

    if (parse_filter(&p, f, err) < 0)
        goto done;
    snprintf(lim, sizeof(lim), "%d", PAGE);
    for (int i = 0; i < 5; i++)
        q[i] = p.p[i];
    q[5] = after;
    q[6] = lim;
    for (;;) {
        PGresult *r = query(db, f->jurisdiction ? SQL_PAGE_BELOW : SQL_PAGE_ALL, 7, q, err);
        row *rows;
        int n, failed = 0;
        if (!r)
            goto done;
        n = PQntuples(r);
        rows = calloc((size_t)n + 1, sizeof(*rows));
        if (!rows)
            abort();
        for (int i = 0; i < n && !failed; i++)
            if (row_parse(&rows[i], r, i, err) < 0)
                failed = 1;
        if (!failed && f->ancestors && deliver_above(rows, n, sent, f, db, each, payload, err) < 0)
            failed = 1;
        for (int i = 0; i < n && !failed; i++) {
            int repeat = json_object_get(sent, rows[i].id) != NULL;
            if (deliver(&rows[i], REG_EXPORT_FACILITY, repeat, each, payload, err) < 0)
                failed = 1;
            else if (f->ancestors && rows[i].has_below)
                json_object_set_new(sent, rows[i].id, json_true());
        }
        if (n)
            core_strlcpy(after, rows[n - 1].id, sizeof(after));
        for (int i = 0; i < n; i++)
            row_clear(&rows[i]);
        free(rows);
        PQclear(r);
        if (failed)
            goto done;
        if (n < PAGE)
            break;
    }
    rc = 0;
done:
    json_decref(sent);
    return rc;
}
