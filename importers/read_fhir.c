/* FHIR: a Bundle (JSON or XML) or NDJSON (one resource per line, streamed). A transaction
 * Bundle is processed as one transaction, all entries or none (registry/bundle.c, as POST /fhir
 * would); any other Bundle, and NDJSON, entry by entry through the import engine: each resource
 * an upsert by id or identifier, chunked, resumable, reported by entry or line. */
#include <stdlib.h>
#include <string.h>

#include "importers/imp_int.h"

/* A resource of a stored type, or -1 with an issue. */
static int
stored_type(imp_ctx *c, long line, const json_t *res)
{
    const char *rt = json_string_value(json_object_get(res, "resourceType"));
    int t = rt ? reg_type_find(rt) : -1;
    if (!json_is_object(res))
        imp_issue(c, line, "error", "resource", NULL, "invalid", "the entry holds no resource");
    else if (t < 0)
        imp_issue(c, line, "error", "resourceType", rt, "not-supported",
                  "resource type \"%s\" is not kept in this registry", rt ? rt : "(none)");
    return t;
}

static int
allow_all(void *payload, int type, int action, core_err *err)
{
    (void)payload, (void)type, (void)action, (void)err;
    return 0;
}

/* A transaction Bundle: all or nothing. */
static int
transaction(imp_ctx *c, json_t *bundle, core_err *err)
{
    const imp_options *o = imp_opts(c);
    reg_actor who = { o->actor ? o->actor : "import", NULL, 0 };
    reg_bundle_ctx bc = { &who, allow_all, NULL, 100000 };
    reg_bundle_result *res = NULL;
    size_t n = 0, total = json_array_size(json_object_get(bundle, "entry"));
    int is_batch = 0;
    core_err e = CORE_ERR_INIT;

    int rc = reg_bundle_process(&res, &n, &is_batch, imp_db(c), bundle, &bc, &e);
    if (rc < 0) {
        if (e.status == 503) {
            *err = e;
            return -1;
        }
        /* Bundle.entry[i]...: the entry's number is its line in the report */
        long line = 0;
        if (strncmp(e.expr, "Bundle.entry[", 13) == 0)
            line = atol(e.expr + 13) + 1;
        imp_issue(c, line, "error", NULL, NULL, e.status == 409 ? "conflict" : "invalid",
                  "%s%s%s; a transaction is all or nothing, so no entry was imported",
                  e.expr[0] ? e.expr : "", e.expr[0] ? ": " : "", e.msg);
        core_err_clear(&e);
        imp_transaction_done(c, (long)total, 0, 0, (long)total);
        return 0;
    }
    long created = 0, updated = 0;
    for (size_t i = 0; i < n; i++) {
        /* an entry whose content was already stored wrote nothing: unchanged, not updated */
        if (res[i].status == 201)
            created++;
        else if (res[i].status == 200 && !res[i].noop)
            updated++;
    }
    reg_bundle_results_free(res, n);
    imp_transaction_done(c, (long)total, created, updated, 0);
    return 0;
}

/* Entry by entry through the engine. */
static int
entries(imp_ctx *c, json_t *bundle, core_err *err)
{
    json_t *entry;
    size_t i;
    json_array_foreach (json_object_get(bundle, "entry"), i, entry) {
        long line = (long)i + 1;
        json_t *res = json_object_get(entry, "resource");
        const char *method =
            json_string_value(json_object_get(json_object_get(entry, "request"), "method"));
        int t;
        if (method && strcmp(method, "PUT") != 0 && strcmp(method, "POST") != 0) {
            imp_issue(c, line, "warning", "request.method", method, "not-supported",
                      "%s entries are not imported (only the resources of PUT and POST "
                      "entries)",
                      method);
            imp_reject_row(c, line);
            continue;
        }
        if ((t = stored_type(c, line, res)) < 0) {
            imp_reject_row(c, line);
            continue;
        }
        res = json_deep_copy(res);
        if (method && strcmp(method, "POST") == 0)
            json_object_del(res, "id"); /* POST: the server names it; its identifier finds it */
        if (imp_emit_resource(c, line, (reg_type)t, res, err) < 0)
            return -1;
    }
    return 0;
}

/* NDJSON: one resource per line. first: the first line, already read (malloc'd; freed here). */
static int
ndjson(imp_ctx *c, FILE *f, char *first, core_err *err)
{
    char *line = first;
    size_t cap = 0;
    long no = 1;
    ssize_t len = (ssize_t)strlen(first);
    for (;;) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len > 0) {
            core_err e = CORE_ERR_INIT;
            json_t *res = core_json_parse(line, (size_t)len, &e);
            int t;
            if (!res) {
                imp_issue(c, no, "error", NULL, NULL, "unreadable-record", "%s", e.msg);
                imp_read_failed(c);
                core_err_clear(&e);
            } else if ((t = stored_type(c, no, res)) < 0) {
                imp_reject_row(c, no);
                json_decref(res);
            } else if (imp_emit_resource(c, no, (reg_type)t, res, err) < 0) {
                free(line);
                return -1;
            }
        }
        if ((no & 1023) == 0)
            imp_progress_bytes(c, ftell(f));
        if (line == first) {
            free(first);
            line = NULL;
            cap = 0;
        }
        if ((len = getline(&line, &cap, f)) < 0)
            break;
        no++;
    }
    free(line);
    return 0;
}

int
imp_read_fhir(imp_ctx *c, FILE *f, core_err *err)
{
    char *first = NULL, *buf = NULL;
    size_t cap = 0, len;
    ssize_t n;
    json_t *doc = NULL;
    int rc = -1;

    /* the first line decides: a whole resource on it that is not a Bundle means NDJSON */
    while ((n = getline(&first, &cap, f)) >= 0 && first[strspn(first, " \t\r\n")] == '\0')
        ;
    if (n < 0) {
        free(first);
        return core_err_set(err, 400, CORE_ISSUE_STRUCTURE, "the file is empty");
    }
    const char *p = first + strspn(first, " \t\r\n\xEF\xBB\xBF");
    if (*p == '{') {
        core_err e = CORE_ERR_INIT;
        json_t *one = core_json_parse(first, (size_t)n, &e);
        const char *rt = one ? json_string_value(json_object_get(one, "resourceType")) : NULL;
        core_err_clear(&e);
        if (one && (!rt || strcmp(rt, "Bundle") != 0)) {
            json_decref(one);
            return ndjson(c, f, first, err);
        }
        json_decref(one);
    }
    /* a whole document: the first line and the rest */
    if (imp_slurp(&buf, &len, f, err) < 0) {
        free(first);
        return -1;
    }
    char *all = malloc((size_t)n + len + 1);
    if (!all)
        abort();
    memcpy(all, first, (size_t)n);
    memcpy(all + n, buf, len + 1);
    free(buf);
    free(first);
    len += (size_t)n;
    p = all + strspn(all, " \t\r\n");
    if (!strncmp(p, "\xEF\xBB\xBF", 3))
        p += 3;
    p += strspn(p, " \t\r\n");
    doc = *p == '<' ? reg_xml_parse(p, len - (size_t)(p - all), err)
                    : core_json_parse(p, len - (size_t)(p - all), err);
    free(all);
    if (!doc)
        return -1;
    const char *rt = json_string_value(json_object_get(doc, "resourceType"));
    const char *type = json_string_value(json_object_get(doc, "type"));
    if (rt && strcmp(rt, "Bundle") == 0) {
        if (!json_is_array(json_object_get(doc, "entry"))) {
            core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "Bundle.entry",
                            "the Bundle has no entries");
            goto done;
        }
        /* a dry run checks a transaction's entries one by one and commits none */
        rc = type && strcmp(type, "transaction") == 0 && !imp_opts(c)->dry_run
                 ? transaction(c, doc, err)
                 : entries(c, doc, err);
    } else {
        int t = rt ? reg_type_find(rt) : -1;
        if (t < 0) {
            core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "resourceType",
                            "expected a Bundle, NDJSON or a resource of a type kept here, got "
                            "\"%s\"",
                            rt ? rt : "no resourceType");
            goto done;
        }
        rc = imp_emit_resource(c, 1, (reg_type)t, json_incref(doc), err);
    }
done:
    json_decref(doc);
    return rc;
}
