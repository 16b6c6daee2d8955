/* Conditional create, update and delete (R4 3.1.0.8). The match is an ordinary strict search;
 * what makes it race-free is an advisory lock on the type and the canonical criteria, taken
 * in the writing transaction before the search and held until commit: a second writer with
 * the same criteria waits, then searches again and finds what the first one wrote. Unique
 * identifiers are also guarded by a UNIQUE index (sql/0002_search.sql). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry_int.h"

#define MAX_CRITERIA 32

static int
hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decode %XX and '+' in place. */
static void
url_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *o++ = *s == '+' ? ' ' : *s;
        }
    }
    *o = '\0';
}

typedef struct criteria {
    reg_qparam p[MAX_CRITERIA + 1];
    size_t n;
    char *buf;
    char canon[2048];
} criteria;

static int
cmp_param(const void *a, const void *b)
{
    const reg_qparam *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static int
criteria_parse(criteria *c, const char *query, core_err *err)
{
    char *save = NULL, *tok;
    memset(c, 0, sizeof(*c));
    if (!query || !*query)
        return core_err_set(err, 400, CORE_ISSUE_INVALID,
                            "a conditional operation needs search criteria, e.g. "
                            "identifier=system|value");
    c->buf = strdup(query);
    if (!c->buf)
        abort();
    for (tok = strtok_r(c->buf, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        if (c->n == MAX_CRITERIA)
            return core_err_set(err, 400, CORE_ISSUE_TOO_LONG, "too many criteria");
        if (eq)
            *eq++ = '\0';
        url_decode(tok);
        if (eq)
            url_decode(eq);
        if (!*tok)
            continue;
        c->p[c->n].name = tok;
        c->p[c->n].value = eq ? eq : "";
        c->n++;
    }
    if (!c->n)
        return core_err_set(err, 400, CORE_ISSUE_INVALID, "the conditional criteria are empty");
    qsort(c->p, c->n, sizeof(c->p[0]), cmp_param);
    for (size_t i = 0; i < c->n; i++) {
        size_t len = strlen(c->canon);
        snprintf(c->canon + len, sizeof(c->canon) - len, "%s%s=%s", i ? "&" : "", c->p[i].name,
                 c->p[i].value);
    }
    return 0;
}

static void
criteria_clear(criteria *c)
{
    free(c->buf);
}

static int
lock_criteria(core_db *db, reg_type t, const criteria *c, core_err *err)
{
    static const core_stmt st = { "reg_conditional_lock",
                                  "SELECT pg_advisory_xact_lock(hashtextextended($1, 7316))", 1 };
    char key[2200];
    const char *params[1] = { key };
    PGresult *r;
    snprintf(key, sizeof(key), "%s?%s", reg_type_name(t), c->canon);
    if (!(r = core_db_exec(db, &st, params, err)))
        return -1;
    PQclear(r);
    return 0;
}

static int
match(int *n, char id_out[65], core_db *db, reg_type t, criteria *c, core_err *err)
{
    reg_search_opts o;
    reg_search_out out;

    memset(&o, 0, sizeof(o));
    o.count = 2;
    o.strict = 1;
    o.allow_personal = 1;
    c->p[c->n].name = "_total";
    c->p[c->n].value = "none";
    if (reg_search(&out, db, (int)t, c->p, c->n + 1, &o, err) < 0)
        return -1;
    *n = out.nmatches > 2 ? 2 : out.nmatches;
    if (out.nmatches == 1 && id_out)
        core_strlcpy(id_out, out.hits[0].id, 65);
    reg_search_out_clear(&out);
    return 0;
}

int
reg__match_locked(
    int *n, char id_out[65], core_db *db, reg_type t, const char *query, core_err *err)
{
    criteria c;
    int rc = criteria_parse(&c, query, err);
    if (rc == 0)
        rc = lock_criteria(db, t, &c, err);
    if (rc == 0)
        rc = match(n, id_out, db, t, &c, err);
    if (rc == 0 && *n > 1)
        rc = core_err_set(err, 412, CORE_ISSUE_DUPLICATE,
                          "more than one %s matches \"%.180s\"; the conditional operation needs "
                          "criteria that select one",
                          reg_type_name(t), c.canon);
    criteria_clear(&c);
    return rc;
}

/* Start a transaction unless one is open; *own tells whether this call must end it. */
static int
begin(core_db *db, int *own, core_err *err)
{
    *own = !reg__in_tx(db);
    return *own ? core_db_run(db, "BEGIN", err) : 0;
}

/* End what begin() started: commit on success (deferred integrity checks run here), roll
 * back on failure. Returns rc, or -1 if the commit failed. */
static int
end(core_db *db, int own, int rc, reg_type t, const char *id, core_err *err)
{
    core_err ignore = CORE_ERR_INIT;
    if (!own)
        return rc;
    if (rc < 0) {
        core_db_run(db, "ROLLBACK", &ignore);
        core_err_clear(&ignore);
        return -1;
    }
    if (core_db_run(db, "COMMIT", err) < 0) {
        reg__store_err(err, db, t, id, 0);
        core_db_run(db, "ROLLBACK", &ignore);
        core_err_clear(&ignore);
        return -1;
    }
    return 0;
}

int
reg_create_if_none(reg_write *out,
                   core_db *db,
                   reg_type t,
                   json_t *res,
                   const char *query,
                   const reg_actor *who,
                   core_err *err)
{
    char id[65] = "";
    int own = 0, n = 0, rc;

    memset(out, 0, sizeof(*out));
    if (json_is_object(res))
        json_object_del(res, "id");
    if (reg__check_body(res, t, who, err) < 0)
        return -1;
    rc = begin(db, &own, err);
    if (rc == 0)
        rc = reg__match_locked(&n, id, db, t, query, err);
    if (rc == 0 && n == 0) {
        reg__new_id(id);
        rc = reg__write_row(out, db, t, id, "create", res, 0, who, err);
    }
    rc = end(db, own, rc, t, id, err);
    if (rc == 0 && n == 1) {
        /* the existing resource answers: nothing was written */
        core_strlcpy(out->id, id, sizeof(out->id));
        rc = reg_read(&out->resource, &out->version, out->last_updated, db, t, id, err);
        out->noop = 1;
    }
    return rc;
}

int
reg_update_where(reg_write *out,
                 core_db *db,
                 reg_type t,
                 const char *query,
                 json_t *res,
                 int if_match,
                 const reg_actor *who,
                 core_err *err)
{
    char id[65] = "";
    int own = 0, n = 0, rc;
    const char *body_id = json_string_value(json_object_get(res, "id"));

    memset(out, 0, sizeof(*out));
    rc = begin(db, &own, err);
    if (rc == 0)
        rc = reg__match_locked(&n, id, db, t, query, err);
    if (rc == 0 && n == 1 && body_id && strcmp(body_id, id) != 0)
        rc = core_err_set_at(err, 400, CORE_ISSUE_INVALID, "id",
                             "the body's id \"%.64s\" is not the id of the matching %s (\"%s\")",
                             body_id, reg_type_name(t), id);
    if (rc == 0 && n == 0) {
        if (body_id && reg_id_valid(body_id))
            core_strlcpy(id, body_id, sizeof(id));
        else
            reg__new_id(id);
    }
    if (rc == 0 && json_is_object(res))
        json_object_set_new(res, "id", json_string(id));
    if (rc == 0)
        rc = reg_update(out, db, t, id, res, if_match, who, err);
    return end(db, own, rc, t, id, err);
}

int
reg_delete_where(
    reg_write *out, core_db *db, reg_type t, const char *query, const reg_actor *who, core_err *err)
{
    char id[65] = "";
    int own = 0, n = 0, rc;

    memset(out, 0, sizeof(*out));
    rc = begin(db, &own, err);
    if (rc == 0)
        rc = reg__match_locked(&n, id, db, t, query, err);
    if (rc == 0 && n == 1)
        rc = reg_delete(out, db, t, id, 0, who, err);
    rc = end(db, own, rc, t, id, err);
    if (rc == 0 && n == 0)
        out->noop = 1;
    return rc;
}
