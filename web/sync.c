/* `mahali sync --from URL`: the IHE mCSD Update Client. Pulls another Directory's changes
 * (ITI-91: [base]/_history or [type]/_history with _since) and applies them to this registry,
 * creates, updates and deletes, through the registry's writes (validation, versions, audit).
 *
 * One poll walks the feed to its end, following the next links, then applies what it saw:
 * the newest version of each resource, oldest change first, in transactions of CHUNK (a chunk
 * that fails is applied one by one; a resource whose reference is not there yet is tried again
 * after the others). Only then is the cursor saved: the first page's Bundle.meta.lastUpdated,
 * the _since of the next poll (the polling rule in README). A sync killed at any moment
 * resumes from the last saved cursor and applies again what it had applied: writing identical
 * content is a no-op, so it converges without duplicate versions.
 *
 * The pages are spooled to a temporary file, so memory holds only an index of the entries. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web/web_int.h"

#define PAGE  500
#define CHUNK 500

/* One entry of a walk. */
typedef struct change {
    reg_type type;
    char id[65];
    char modified[32]; /* response.lastModified or meta.lastUpdated */
    long pos;          /* place in the walk: 0 is the newest */
    int deleted;
    long offset; /* the resource in the spool file */
    size_t len;
} change;

typedef struct walk {
    change *c;
    size_t n, cap;
    FILE *spool;
    char horizon[40]; /* the first page's meta.lastUpdated */
    char newest[40];  /* the newest lastModified seen (when the server gives no horizon) */
} walk;

static int
by_key_then_pos(const void *a, const void *b)
{
    const change *x = a, *y = b;
    int d = (int)x->type - (int)y->type;
    if (d)
        return d;
    if ((d = strcmp(x->id, y->id)))
        return d;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* oldest first: by time, and within one instant in the reverse of the feed's order */
static int
by_age(const void *a, const void *b)
{
    const change *x = a, *y = b;
    int d = strcmp(x->modified, y->modified);
    if (d)
        return d;
    return x->pos > y->pos ? -1 : x->pos < y->pos;
}

/* "Type/id" (or a URL ending so) → type, id. */
static int
split_ref(const char *url, reg_type *t, char id[65])
{
    const char *slash, *start;
    char tn[64];
    size_t len = strlen(url);

    /* the last two segments, ignoring a trailing /_history/N */
    const char *h = strstr(url, "/_history/");
    if (h)
        len = (size_t)(h - url);
    slash = NULL;
    for (size_t i = len; i-- > 0;)
        if (url[i] == '/') {
            slash = url + i;
            break;
        }
    if (!slash || (size_t)(url + len - slash - 1) >= 65 || url + len == slash + 1)
        return -1;
    start = slash;
    while (start > url && start[-1] != '/')
        start--;
    if ((size_t)(slash - start) >= sizeof(tn))
        return -1;
    memcpy(tn, start, (size_t)(slash - start));
    tn[slash - start] = '\0';
    if (reg_type_find(tn) < 0)
        return -1;
    *t = (reg_type)reg_type_find(tn);
    memcpy(id, slash + 1, (size_t)(url + len - slash - 1));
    id[url + len - slash - 1] = '\0';
    return 0;
}

/* Record the entries of one history page. Returns 0, or -1 with err (not a history Bundle). */
static int
take_page(walk *w, json_t *bundle, const web_sync_options *o, core_err *err)
{
    json_t *entries = json_object_get(bundle, "entry"), *e;
    size_t i;

    const char *rt = json_string_value(json_object_get(bundle, "resourceType"));
    if (!rt || strcmp(rt, "Bundle") != 0)
        return core_err_set(err, 502, CORE_ISSUE_PROCESSING, "%s did not answer with a Bundle",
                            o->from);
    json_array_foreach (entries, i, e) {
        json_t *res = json_object_get(e, "resource"), *req = json_object_get(e, "request");
        const char *method = json_string_value(json_object_get(req, "method"));
        const char *mod =
            json_string_value(json_object_get(json_object_get(e, "response"), "lastModified"));
        change c = { 0 };

        c.pos = (long)w->n;
        c.deleted = method && strcmp(method, "DELETE") == 0;
        if (json_is_object(res) && !c.deleted) {
            const char *tn = json_string_value(json_object_get(res, "resourceType"));
            const char *id = json_string_value(json_object_get(res, "id"));
            char *text;
            if (!tn || !id || reg_type_find(tn) < 0 || strlen(id) >= sizeof(c.id)) {
                if (o->log)
                    fprintf(o->log, "mahali sync: skipped an entry without a known type and id\n");
                continue;
            }
            c.type = (reg_type)reg_type_find(tn);
            core_strlcpy(c.id, id, sizeof(c.id));
            if (!mod)
                mod =
                    json_string_value(json_object_get(json_object_get(res, "meta"), "lastUpdated"));
            text = core_json_dump(res, &c.len);
            if (!text)
                abort();
            c.offset = ftell(w->spool);
            if (fwrite(text, 1, c.len, w->spool) != c.len) {
                free(text);
                return core_err_set(err, 507, CORE_ISSUE_EXCEPTION,
                                    "cannot write the sync's temporary file");
            }
            free(text);
        } else if (c.deleted) {
            const char *url = json_string_value(json_object_get(req, "url"));
            if (!url)
                url = json_string_value(json_object_get(e, "fullUrl"));
            if (!url || split_ref(url, &c.type, c.id) < 0)
                continue;
        } else {
            continue;
        }
        core_strlcpy(c.modified, mod ? mod : "", sizeof(c.modified));
        if (mod && strcmp(mod, w->newest) > 0)
            core_strlcpy(w->newest, mod, sizeof(w->newest));
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 1024;
            if (!(w->c = realloc(w->c, w->cap * sizeof(*w->c))))
                abort();
        }
        w->c[w->n++] = c;
    }
    return 0;
}

/* The path and query of a next link (absolute URL or path). */
static const char *
link_path(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return url;
    p = strchr(p + 3, '/');
    return p ? p : "/";
}

static const char *
next_link(json_t *bundle)
{
    json_t *l;
    size_t i;
    json_array_foreach (json_object_get(bundle, "link"), i, l) {
        const char *rel = json_string_value(json_object_get(l, "relation"));
        if (rel && strcmp(rel, "next") == 0)
            return json_string_value(json_object_get(l, "url"));
    }
    return NULL;
}

/* Walk scope's feed from since to its end. */
static int
fetch(walk *w,
      const web_target *t,
      const char *scope,
      const char *since,
      const web_sync_options *o,
      core_err *err)
{
    char *path;
    int first = 1, rc = -1;
    core_buf q = { 0 };

    if (strcmp(scope, "*") == 0)
        core_buf_printf(&q, "%s/_history?_count=%d", t->base, PAGE);
    else
        core_buf_printf(&q, "%s/%s/_history?_count=%d", t->base, scope, PAGE);
    if (since && *since) {
        core_buf_str(&q, "&_since=");
        for (const unsigned char *s = (const unsigned char *)since; *s; s++)
            if ((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                *s == '-' || *s == '.')
                core_buf_add(&q, (const char *)s, 1);
            else
                core_buf_printf(&q, "%%%02X", *s);
    }
    path = q.data;
    for (;;) {
        int status;
        char *body = NULL;
        json_t *bundle;
        const char *next;
        if (o->stop && *o->stop) {
            core_err_set(err, 503, CORE_ISSUE_TRANSIENT, "stopped");
            break;
        }
        if (web_exchange(&status, &body, NULL, t, "GET", path, o->token, NULL, 0, err) < 0)
            break;
        if (status != 200) {
            web_http_error(err, status, body);
            free(body);
            break;
        }
        bundle = core_json_parse(body, strlen(body), err);
        free(body);
        if (!bundle) {
            core_err_set(err, 502, CORE_ISSUE_PROCESSING, "%s answered with invalid JSON", o->from);
            break;
        }
        if (first) {
            const char *h =
                json_string_value(json_object_get(json_object_get(bundle, "meta"), "lastUpdated"));
            core_strlcpy(w->horizon, h ? h : "", sizeof(w->horizon));
            first = 0;
        }
        if (take_page(w, bundle, o, err) < 0) {
            json_decref(bundle);
            break;
        }
        next = next_link(bundle);
        if (!next) {
            json_decref(bundle);
            rc = 0;
            break;
        }
        if (path != q.data)
            free(path);
        if (!(path = strdup(link_path(next))))
            abort();
        json_decref(bundle);
    }
    if (path != q.data)
        free(path);
    free(q.data);
    return rc;
}

/* Apply one change on db (in whatever transaction is open). 1 created/updated/deleted, 0
 * unchanged, -1 with err. */
static int
apply_one(
    web_sync_stats *st, core_db *db, walk *w, const change *c, const reg_actor *who, core_err *err)
{
    reg_write out = { 0 };
    int rc;

    if (c->deleted) {
        /* a resource this registry never had fails with an error that aborts the transaction
         * (the chunk's other changes with it, and a COMMIT then only rolls back): under a
         * savepoint, "never had it" is just nothing to do */
        if (core_db_run(db, "SAVEPOINT sync_delete", err) < 0)
            return -1;
        if (reg_delete(&out, db, c->type, c->id, 0, who, err) < 0) {
            if (err->status != 404)
                return -1;
            core_err_clear(err);
            if (core_db_run(db, "ROLLBACK TO SAVEPOINT sync_delete", err) < 0)
                return -1;
            st->unchanged++;
            return 0;
        }
        if (core_db_run(db, "RELEASE SAVEPOINT sync_delete", err) < 0) {
            reg_write_clear(&out);
            return -1;
        }
        rc = out.noop ? 0 : 1;
        st->deleted += rc;
    } else {
        char *text = malloc(c->len + 1);
        json_t *res;
        if (!text)
            abort();
        if (fseek(w->spool, c->offset, SEEK_SET) != 0 ||
            fread(text, 1, c->len, w->spool) != c->len) {
            free(text);
            return core_err_set(err, 507, CORE_ISSUE_EXCEPTION,
                                "cannot read the sync's temporary file");
        }
        text[c->len] = '\0';
        res = core_json_parse(text, c->len, err);
        free(text);
        if (!res)
            return -1;
        rc = reg_update(&out, db, c->type, c->id, res, 0, who, err);
        json_decref(res);
        if (rc < 0)
            return -1;
        rc = out.noop ? 0 : 1;
        if (rc)
            *(out.created ? &st->created : &st->updated) += 1;
    }
    if (!rc)
        st->unchanged++;
    reg_write_clear(&out);
    return rc;
}

/* COMMIT, after the deferred integrity checks (references resolve, nothing deleted is still
 * referred to), whose refusals reg_check_deferred reports as the registry's (4xx: they reject
 * this change, the database is fine). */
static int
commit(core_db *db, core_err *err)
{
    if (reg_check_deferred(db, err) < 0)
        return -1;
    return core_db_run(db, "COMMIT", err);
}

static void
rollback(core_db *db)
{
    core_err e = CORE_ERR_INIT;
    core_db_run(db, "ROLLBACK", &e);
    core_err_clear(&e);
}

static void
report_reject(const web_sync_options *o, const change *c, const char *why)
{
    if (o->log)
        fprintf(o->log, "mahali sync: %s/%s not applied: %s\n", reg_type_name(c->type), c->id, why);
}

/* Apply the walk's changes: newest version of each, oldest first. */
static int
apply(web_sync_stats *st, core_db *db, walk *w, const web_sync_options *o, core_err *err)
{
    reg_actor who = { 0 };
    size_t n = 0, nretry = 0;
    change *retry;
    char actor[600], (*why)[400];

    snprintf(actor, sizeof(actor), "sync:%s", o->from);
    who.name = actor;
    if (!w->n)
        return 0;
    qsort(w->c, w->n, sizeof(*w->c), by_key_then_pos);
    for (size_t i = 0; i < w->n; i++)
        if (i == 0 || w->c[i].type != w->c[n - 1].type || strcmp(w->c[i].id, w->c[n - 1].id) != 0)
            w->c[n++] = w->c[i];
    w->n = n;
    st->seen += (long)w->n; /* counted before applying: a poll failing half way still adds up */
    qsort(w->c, w->n, sizeof(*w->c), by_age);
    if (!(retry = malloc(w->n * sizeof(*retry))) || !(why = malloc(w->n * sizeof(*why))))
        abort();
    for (size_t at = 0; at < w->n; at += CHUNK) {
        size_t end = at + CHUNK < w->n ? at + CHUNK : w->n;
        web_sync_stats save = *st;
        int ok = core_db_run(db, "BEGIN", err) == 0;
        for (size_t i = at; ok && i < end; i++)
            ok = apply_one(st, db, w, &w->c[i], &who, err) >= 0;
        if (ok && core_db_run(db, "COMMIT", err) == 0)
            continue;
        /* one by one, each in its own transaction */
        core_err_clear(err);
        rollback(db);
        *st = save;
        for (size_t i = at; i < end; i++) {
            web_sync_stats one = *st; /* counted once it commits */
            if (core_db_run(db, "BEGIN", err) < 0)
                goto fail;
            if (apply_one(st, db, w, &w->c[i], &who, err) < 0 || commit(db, err) < 0) {
                if (err->status >= 500)
                    goto fail;
                core_err_clear(err);
                rollback(db);
                *st = one;
                retry[nretry++] = w->c[i]; /* perhaps it refers to one applied later */
            }
        }
    }
    /* more chances, oldest first, while a pass applies something: what they refer to may be
     * there now. A chain whose links each refer to a later chunk takes a pass per link. */
    for (size_t before = 0; nretry && nretry != before;) {
        size_t keep = 0;
        before = nretry;
        for (size_t i = 0; i < nretry; i++) {
            web_sync_stats one = *st;
            if (core_db_run(db, "BEGIN", err) < 0)
                goto fail;
            if (apply_one(st, db, w, &retry[i], &who, err) < 0 || commit(db, err) < 0) {
                if (err->status >= 500)
                    goto fail;
                *st = one;
                snprintf(why[keep], sizeof(why[keep]), "%s%s%s", err->msg, *err->expr ? " at " : "",
                         err->expr);
                core_err_clear(err);
                rollback(db);
                retry[keep++] = retry[i];
            }
        }
        nretry = keep;
    }
    for (size_t i = 0; i < nretry; i++)
        report_reject(o, &retry[i], why[i]);
    st->rejected += (long)nretry;
    free(why);
    free(retry);
    return 0;
fail:
    free(why);
    free(retry);
    rollback(db);
    return -1;
}

/* One poll of one scope: walk, apply, save the cursor. */
static int
poll_scope(web_sync_stats *st,
           core_db *db,
           const web_target *t,
           const char *scope,
           const web_sync_options *o,
           core_err *err)
{
    char since[40];
    long long applied;
    walk w = { 0 };
    web_sync_stats before = *st;
    int rc = -1;

    if (reg_sync_cursor_get(since, &applied, db, o->from, scope, err) < 0)
        return -1;
    if (!(w.spool = tmpfile()))
        return core_err_set(err, 507, CORE_ISSUE_EXCEPTION, "cannot create a temporary file");
    if (fetch(&w, t, scope, since, o, err) < 0 || apply(st, db, &w, o, err) < 0)
        goto done;
    /* the next poll starts at this walk's horizon (or, from a server that gives none, at the
     * newest change seen, which _since includes again) */
    if (reg_sync_cursor_put(db, o->from, scope,
                            *w.horizon  ? w.horizon
                            : *w.newest ? w.newest
                                        : since,
                            (st->created - before.created) + (st->updated - before.updated) +
                                (st->deleted - before.deleted),
                            err) < 0)
        goto done;
    rc = 0;
done:
    fclose(w.spool);
    free(w.c);
    return rc;
}

int
web_sync(web_sync_stats *st, core_db *db, const web_sync_options *o, core_err *err)
{
    web_target t;
    char scopes[REG_NTYPES][40];
    int nscopes = 0;

    memset(st, 0, sizeof(*st));
    if (web_target_parse(&t, o->from, "from", err) < 0)
        return -1;
    if (!o->types || !*o->types) {
        core_strlcpy(scopes[nscopes++], "*", sizeof(scopes[0]));
    } else {
        /* in the order given; the default order of references is Organization, Location, ... */
        const char *p = o->types;
        while (*p) {
            size_t len = strcspn(p, ",");
            char tn[40];
            if (len && len < sizeof(tn)) {
                memcpy(tn, p, len);
                tn[len] = '\0';
                if (reg_type_find(tn) < 0)
                    return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "types",
                                           "--types: %s is not a resource type this registry "
                                           "stores",
                                           tn);
                if (nscopes < REG_NTYPES)
                    core_strlcpy(scopes[nscopes++], tn, sizeof(scopes[0]));
            }
            p += len;
            if (*p == ',')
                p++;
        }
    }
    mg_init_library(t.tls ? MG_FEATURES_TLS : 0);
    for (;;) {
        web_sync_stats before = *st;
        for (int i = 0; i < nscopes; i++)
            if (poll_scope(st, db, &t, scopes[i], o, err) < 0) {
                if (o->stop && *o->stop) {
                    core_err_clear(err);
                    return 0;
                }
                if (!o->follow)
                    return -1;
                /* following: say so and try again at the next poll */
                if (o->log)
                    fprintf(o->log, "mahali sync: %s\n", err->msg);
                core_err_clear(err);
            }
        st->polls++;
        if (o->log &&
            (!o->follow || st->created + st->updated + st->deleted + st->rejected !=
                               before.created + before.updated + before.deleted + before.rejected))
            fprintf(o->log,
                    "mahali sync: %s: %ld changes seen, %ld created, %ld updated, %ld deleted, "
                    "%ld unchanged, %ld rejected\n",
                    o->from, st->seen - before.seen, st->created - before.created,
                    st->updated - before.updated, st->deleted - before.deleted,
                    st->unchanged - before.unchanged, st->rejected - before.rejected);
        if (!o->follow)
            return 0;
        for (int s = 0; s < o->interval * 10; s++) {
            struct timespec tenth = { 0, 100000000L };
            if (o->stop && *o->stop)
                return 0;
            nanosleep(&tenth, NULL);
        }
    }
}
