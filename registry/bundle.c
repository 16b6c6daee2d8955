/* Transaction and batch Bundles (R4 3.1.0.11, IHE mCSD ITI-130 "Process Care Services
 * Resources"). A transaction runs in one database transaction: targets are resolved first
 * (new ids for POST, conditional matches under their advisory locks), urn:uuid fullUrls are
 * replaced by Type/id in every reference, then entries run in R4 order (DELETE, POST, PUT,
 * GET) and the deferred integrity checks run at COMMIT, so entries may refer to each other in
 * any order. Any failure rolls everything back and names the entry. A batch runs each entry
 * on its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry_int.h"

enum kind { K_CREATE, K_UPDATE, K_DELETE, K_READ };

typedef struct entry {
    size_t index;
    enum kind kind;
    int type;
    char id[65];          /* resolved target */
    const char *criteria; /* conditional update/delete: the query after '?', else NULL */
    const char *if_none_exist;
    int if_match;
    const char *full_url;
    json_t *resource; /* borrowed from the Bundle (modified in place) */
    int existing;     /* conditional create/update/delete resolved to an existing resource */
    int nothing;      /* conditional delete matched nothing */
} entry;

static int
entry_err(core_err *err, size_t i, int status, core_issue code, const char *what)
{
    char expr[48];
    snprintf(expr, sizeof(expr), "Bundle.entry[%zu]", i);
    return core_err_set_at(err, status, code, expr, "entry %zu: %s", i, what);
}

/* expr located in entry i ("Location.name" → "Bundle.entry[3].resource.name") into out. */
static void
locate_expr(char *out, size_t cap, const char *expr, size_t i)
{
    char head[64];
    const char *dot = strchr(expr, '.');
    size_t n = dot ? (size_t)(dot - expr) : 0;

    if (strncmp(expr, "Bundle.entry[", 13) == 0) {
        core_strlcpy(out, expr, cap); /* already located */
        return;
    }
    if (dot && n < sizeof(head)) {
        memcpy(head, expr, n);
        head[n] = '\0';
        if (reg_model_is_resource_type(head)) {
            snprintf(out, cap, "Bundle.entry[%zu].resource%s", i, dot);
            return;
        }
    }
    snprintf(out, cap, "Bundle.entry[%zu]%s%s", i, expr[0] ? "." : "", expr);
}

/* Prefix the element path of err and of each further issue with the entry, so that every issue
 * of a refused transaction names the entry (validation reports them all, not only the first). */
static void
locate(core_err *err, size_t i)
{
    char expr[sizeof(err->expr) + 64];

    locate_expr(expr, sizeof(expr), err->expr, i);
    core_strlcpy(err->expr, expr, sizeof(err->expr));
    for (core_issue_item *it = err->more; it; it = it->next) {
        char *x;
        locate_expr(expr, sizeof(expr), it->expr ? it->expr : "", i);
        if (!(x = strdup(expr)))
            abort();
        free(it->expr);
        it->expr = x;
    }
}

/* request.url: "Type", "Type/id", "Type?query", or an absolute URL ending so. */
static int
parse_url(entry *e, const char *url, core_err *err)
{
    char type[64];
    const char *p = url, *q, *slash;
    size_t n;

    const char *scheme = strstr(url, "://"), *qmark = strchr(url, '?');
    /* absolute only if "://" comes before the query: "Type?identifier=https://x|1" is relative */
    if (scheme && (!qmark || scheme < qmark)) {
        /* absolute: start at the first path segment that is a stored type */
        const char *s = strstr(url, "://") + 3;
        p = NULL;
        while ((s = strchr(s, '/'))) {
            s++;
            slash = strpbrk(s, "/?");
            n = slash ? (size_t)(slash - s) : strlen(s);
            if (n < sizeof(type)) {
                memcpy(type, s, n);
                type[n] = '\0';
                if (reg_type_find(type) >= 0) {
                    p = s;
                    break;
                }
            }
        }
        if (!p)
            return entry_err(err, e->index, 400, CORE_ISSUE_NOT_SUPPORTED,
                             "request.url names no resource type served here");
    }
    q = strpbrk(p, "/?");
    n = q ? (size_t)(q - p) : strlen(p);
    if (n == 0 || n >= sizeof(type))
        return entry_err(err, e->index, 400, CORE_ISSUE_INVALID,
                         "request.url is not Type, Type/id or Type?query");
    memcpy(type, p, n);
    type[n] = '\0';
    if ((e->type = reg_type_find(type)) < 0)
        return entry_err(err, e->index, 400, CORE_ISSUE_NOT_SUPPORTED,
                         "request.url names a resource type not served here");
    if (q && *q == '?') {
        e->criteria = q + 1;
    } else if (q && *q == '/') {
        const char *id = q + 1, *rest = strchr(id, '/');
        n = rest ? (size_t)(rest - id) : strlen(id);
        if (rest || n == 0 || n > 64)
            return entry_err(err, e->index, 400, CORE_ISSUE_INVALID, "request.url is not Type/id");
        memcpy(e->id, id, n);
        e->id[n] = '\0';
        if (!reg_id_valid(e->id))
            return entry_err(err, e->index, 400, CORE_ISSUE_VALUE, "request.url has an invalid id");
    }
    return 0;
}

static int
parse_entry(entry *e, const json_t *je, size_t i, core_err *err)
{
    const json_t *req = json_object_get(je, "request");
    const char *method = json_string_value(json_object_get(req, "method"));
    const char *url = json_string_value(json_object_get(req, "url"));
    const char *ifm = json_string_value(json_object_get(req, "ifMatch"));

    memset(e, 0, sizeof(*e));
    e->index = i;
    e->resource = json_object_get(je, "resource");
    e->full_url = json_string_value(json_object_get(je, "fullUrl"));
    e->if_none_exist = json_string_value(json_object_get(req, "ifNoneExist"));
    if (!method || !url)
        return entry_err(err, i, 400, CORE_ISSUE_REQUIRED,
                         "request.method and request.url are required");
    if (parse_url(e, url, err) < 0)
        return -1;
    if (ifm) {
        const char *v = strncmp(ifm, "W/", 2) == 0 ? ifm + 2 : ifm;
        char *end;
        long n = v[0] == '"' ? strtol(v + 1, &end, 10) : -1;
        if (n < 1 || *end != '"' || end[1])
            return entry_err(err, i, 400, CORE_ISSUE_VALUE,
                             "request.ifMatch must look like W/\"3\"");
        e->if_match = (int)n;
    }
    if (strcmp(method, "POST") == 0) {
        e->kind = K_CREATE;
        if (e->id[0] || e->criteria)
            return entry_err(err, i, 400, CORE_ISSUE_INVALID, "POST goes to Type, not Type/id");
    } else if (strcmp(method, "PUT") == 0) {
        e->kind = K_UPDATE;
        if (!e->id[0] && !e->criteria)
            return entry_err(err, i, 400, CORE_ISSUE_INVALID, "PUT goes to Type/id or Type?query");
    } else if (strcmp(method, "DELETE") == 0) {
        e->kind = K_DELETE;
        if (!e->id[0] && !e->criteria)
            return entry_err(err, i, 400, CORE_ISSUE_INVALID,
                             "DELETE goes to Type/id or Type?query");
    } else if (strcmp(method, "GET") == 0) {
        e->kind = K_READ;
        if (!e->id[0])
            return entry_err(err, i, 400, CORE_ISSUE_NOT_SUPPORTED,
                             "GET entries read Type/id; searches are not supported in Bundles");
    } else {
        return entry_err(err, i, 400, CORE_ISSUE_NOT_SUPPORTED,
                         "request.method must be POST, PUT, DELETE or GET");
    }
    if ((e->kind == K_CREATE || e->kind == K_UPDATE) && !json_is_object(e->resource))
        return entry_err(err, i, 400, CORE_ISSUE_REQUIRED, "POST and PUT entries need a resource");
    if (e->resource && json_is_object(e->resource)) {
        const char *rt = json_string_value(json_object_get(e->resource, "resourceType"));
        if (!rt || strcmp(rt, reg_type_name((reg_type)e->type)) != 0)
            return entry_err(err, i, 400, CORE_ISSUE_INVALID,
                             "resource.resourceType does not match request.url");
    }
    return 0;
}

static int
authorize(const reg_bundle_ctx *ctx, const entry *e, core_err *err)
{
    int action = e->kind == K_READ     ? REG_ACCESS_READ
                 : e->kind == K_DELETE ? REG_ACCESS_DELETE
                                       : REG_ACCESS_WRITE;
    if (ctx->authorize(ctx->payload, e->type, action, err) < 0) {
        locate(err, e->index);
        return -1;
    }
    return 0;
}

/* Replace references to fullUrls of this Bundle by Type/id, everywhere in v. An urn:uuid
 * reference that names no entry is an error. Returns 0 or -1 with err. */
static int
rewrite(json_t *v, entry *es, size_t n, size_t at, core_err *err)
{
    if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach (v, i, x) {
            if (rewrite(x, es, n, at, err) < 0)
                return -1;
        }
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_t *ref = json_object_get(v, "reference");
        if (core_json_is_text(ref)) {
            const char *r = json_string_value(ref);
            int found = 0;
            for (size_t i = 0; i < n && !found; i++) {
                if (es[i].full_url && strcmp(es[i].full_url, r) == 0 && es[i].id[0] &&
                    (es[i].kind == K_CREATE || es[i].kind == K_UPDATE)) {
                    char to[140];
                    snprintf(to, sizeof(to), "%s/%s", reg_type_name((reg_type)es[i].type),
                             es[i].id);
                    json_object_set_new(v, "reference", json_string(to));
                    found = 1;
                }
            }
            if (!found && strncmp(r, "urn:uuid:", 9) == 0)
                return entry_err(err, at, 400, CORE_ISSUE_NOT_FOUND,
                                 "a reference names an urn:uuid no entry of the Bundle has");
        }
        json_object_foreach (v, k, x) {
            if (strcmp(k, "reference") != 0 && rewrite(x, es, n, at, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* Run one entry whose target is resolved. */
static int
run_entry(reg_bundle_result *res, core_db *db, entry *e, const reg_actor *who, core_err *err)
{
    reg_write w;
    int rc = 0;

    memset(&w, 0, sizeof(w));
    res->type = e->type;
    switch (e->kind) {
    case K_DELETE:
        if (e->nothing) {
            res->status = 204;
            return 0;
        }
        rc = reg_delete(&w, db, (reg_type)e->type, e->id, e->if_match, who, err);
        res->status = 204;
        break;
    case K_CREATE:
        if (e->existing) { /* ifNoneExist matched: answer with it, write nothing */
            rc = reg_read(&res->resource, &res->version, res->last_updated, db, (reg_type)e->type,
                          e->id, err);
            json_decref(res->resource);
            res->resource = NULL;
            core_strlcpy(res->id, e->id, sizeof(res->id));
            res->status = 200;
            res->noop = 1;
            return rc;
        }
        json_object_set_new(e->resource, "id", json_string(e->id));
        rc = reg__check_body(e->resource, (reg_type)e->type, who, err);
        if (rc == 0)
            rc = reg__write_row(&w, db, (reg_type)e->type, e->id, "create", e->resource, 0, who,
                                err);
        res->status = 201;
        break;
    case K_UPDATE:
        json_object_set_new(e->resource, "id", json_string(e->id));
        rc = reg_update(&w, db, (reg_type)e->type, e->id, e->resource, e->if_match, who, err);
        res->status = w.created ? 201 : 200;
        break;
    case K_READ:
        rc = reg_read(&res->resource, &res->version, res->last_updated, db, (reg_type)e->type,
                      e->id, err);
        core_strlcpy(res->id, e->id, sizeof(res->id));
        res->status = 200;
        return rc;
    }
    if (rc == 0) {
        core_strlcpy(res->id, w.id, sizeof(res->id));
        res->version = w.version;
        res->noop = w.noop;
        core_strlcpy(res->last_updated, w.last_updated, sizeof(res->last_updated));
    }
    reg_write_clear(&w);
    return rc;
}

/* Resolve the target of a conditional entry (in the open transaction, under its lock). */
static int
resolve(core_db *db, entry *e, core_err *err)
{
    const char *crit = e->kind == K_CREATE ? e->if_none_exist : e->criteria;
    int n = 0;
    char id[65] = "";

    if (!crit) {
        if (e->kind == K_CREATE)
            reg__new_id(e->id);
        return 0;
    }
    if (reg__match_locked(&n, id, db, (reg_type)e->type, crit, err) < 0)
        return -1;
    if (n == 1) {
        core_strlcpy(e->id, id, sizeof(e->id));
        e->existing = 1;
        return 0;
    }
    if (e->kind == K_DELETE) {
        e->nothing = 1;
    } else {
        const char *body_id = json_string_value(json_object_get(e->resource, "id"));
        if (e->kind == K_UPDATE && body_id && reg_id_valid(body_id))
            core_strlcpy(e->id, body_id, sizeof(e->id));
        else
            reg__new_id(e->id);
    }
    return 0;
}

void
reg_bundle_results_free(reg_bundle_result *results, size_t n)
{
    for (size_t i = 0; results && i < n; i++) {
        json_decref(results[i].resource);
        core_err_clear(&results[i].err);
    }
    free(results);
}

/* Which entry an error raised at COMMIT is about: the first entry whose Type/id the message
 * names, or -1. */
static long
entry_named(const entry *es, size_t n, const char *msg)
{
    for (size_t i = 0; i < n; i++) {
        char tid[140];
        snprintf(tid, sizeof(tid), "%s/%s ", reg_type_name((reg_type)es[i].type), es[i].id);
        if (es[i].id[0] && strstr(msg, tid) == msg)
            return (long)i;
    }
    return -1;
}

static int
transaction(reg_bundle_result *results,
            entry *es,
            size_t n,
            core_db *db,
            const reg_bundle_ctx *ctx,
            core_err *err)
{
    static const enum kind order[] = { K_DELETE, K_CREATE, K_UPDATE, K_READ };
    core_err ignore = CORE_ERR_INIT;
    size_t i, j;

    if (reg__in_tx(db))
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "a transaction is already open");
    if (core_db_run(db, "BEGIN", err) < 0)
        return -1;
    for (i = 0; i < n; i++)
        if (resolve(db, &es[i], err) < 0) {
            locate(err, i);
            goto fail;
        }
    /* one entry per resource (R4): the outcome of two would depend on their order */
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++)
            if (es[i].id[0] && es[i].type == es[j].type && strcmp(es[i].id, es[j].id) == 0 &&
                es[i].kind != K_READ && es[j].kind != K_READ) {
                entry_err(err, j, 400, CORE_ISSUE_INVALID,
                          "another entry of this transaction already changes the same resource");
                goto fail;
            }
    for (i = 0; i < n; i++)
        if (es[i].resource && rewrite(es[i].resource, es, n, i, err) < 0)
            goto fail;
    for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++)
        for (i = 0; i < n; i++) {
            if (es[i].kind != order[o])
                continue;
            if (run_entry(&results[i], db, &es[i], ctx->who, err) < 0) {
                locate(err, i);
                goto fail;
            }
        }
    if (core_db_run(db, "COMMIT", err) < 0) {
        long at = entry_named(es, n, core_db_errmsg(db));
        reg__store_err(err, db, at >= 0 ? (reg_type)es[at].type : REG_LOCATION,
                       at >= 0 ? es[at].id : "", 0);
        if (at >= 0)
            locate(err, (size_t)at);
        core_db_run(db, "ROLLBACK", &ignore);
        core_err_clear(&ignore);
        return -1;
    }
    return 0;
fail:
    core_db_run(db, "ROLLBACK", &ignore);
    core_err_clear(&ignore);
    return -1;
}

static void
batch(reg_bundle_result *results, entry *es, size_t n, core_db *db, const reg_bundle_ctx *ctx)
{
    core_err ignore = CORE_ERR_INIT;
    for (size_t i = 0; i < n; i++) {
        reg_bundle_result *r = &results[i];
        entry *e = &es[i];
        int rc;
        /* each entry alone: its own transaction, so its deferred checks run at its commit */
        if (core_db_run(db, "BEGIN", &r->err) < 0) {
            r->status = r->err.status;
            continue;
        }
        rc = resolve(db, e, &r->err);
        if (rc == 0 && e->resource)
            rc = rewrite(e->resource, e, 1, i, &r->err);
        if (rc == 0)
            rc = run_entry(r, db, e, ctx->who, &r->err);
        if (rc == 0 && core_db_run(db, "COMMIT", &r->err) < 0) {
            reg__store_err(&r->err, db, (reg_type)e->type, e->id, 0);
            rc = -1;
        }
        if (rc < 0) {
            core_db_run(db, "ROLLBACK", &ignore);
            core_err_clear(&ignore);
            json_decref(r->resource);
            r->resource = NULL;
            r->status = r->err.status ? r->err.status : 500;
            r->version = 0;
        }
    }
}

int
reg_bundle_process(reg_bundle_result **results_out,
                   size_t *n_out,
                   int *is_batch,
                   core_db *db,
                   json_t *bundle,
                   const reg_bundle_ctx *ctx,
                   core_err *err)
{
    json_t *entries = json_object_get(bundle, "entry"), *je;
    const char *type = json_string_value(json_object_get(bundle, "type"));
    const char *rt = json_string_value(json_object_get(bundle, "resourceType"));
    reg_bundle_result *results = NULL;
    entry *es = NULL;
    size_t n = json_array_size(entries), i;
    int rc = -1;

    *results_out = NULL;
    *n_out = 0;
    *is_batch = 0;
    if (!rt || strcmp(rt, "Bundle") != 0)
        return core_err_set_at(err, 400, CORE_ISSUE_INVALID, "resourceType",
                               "POST to the base takes a Bundle of type transaction or batch");
    if (!type || (strcmp(type, "transaction") != 0 && strcmp(type, "batch") != 0))
        return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "Bundle.type",
                               "Bundle.type must be transaction or batch (got \"%s\")",
                               type ? type : "");
    *is_batch = strcmp(type, "batch") == 0;
    if (entries && !json_is_array(entries))
        return core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "Bundle.entry",
                               "entry must be an array");
    if (ctx->max_entries > 0 && n > (size_t)ctx->max_entries)
        return core_err_set_at(err, 413, CORE_ISSUE_TOO_LONG, "Bundle.entry",
                               "the Bundle has %zu entries; at most %d are accepted", n,
                               ctx->max_entries);
    es = calloc(n ? n : 1, sizeof(*es));
    results = calloc(n ? n : 1, sizeof(*results));
    if (!es || !results)
        abort();
    for (i = 0; i < n; i++)
        results[i].type = -1;
    json_array_foreach (entries, i, je) {
        core_err *e_err = *is_batch ? &results[i].err : err;
        if (parse_entry(&es[i], je, i, e_err) < 0 || authorize(ctx, &es[i], e_err) < 0) {
            if (!*is_batch)
                goto done;
            results[i].status = results[i].err.status;
            es[i].kind = K_READ; /* skipped below */
            es[i].type = -2;
        }
    }
    if (*is_batch) {
        /* entries that failed to parse stay as they are; the rest run one by one */
        for (i = 0; i < n; i++) {
            if (es[i].type == -2)
                continue;
            batch(&results[i], &es[i], 1, db, ctx);
        }
        rc = 0;
    } else {
        rc = transaction(results, es, n, db, ctx, err);
    }
done:
    free(es);
    if (rc < 0) {
        reg_bundle_results_free(results, n);
        return -1;
    }
    *results_out = results;
    *n_out = n;
    return 0;
}
