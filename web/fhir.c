/* The FHIR R4 REST API under /fhir: routing, content negotiation, access control and the
 * interactions read, vread, create, update, delete and history (instance, type, system).
 * Each handler turns the request into registry calls and the result into FHIR HTTP: status,
 * ETag, Last-Modified, Location, Prefer, Bundles with paging links, OperationOutcome. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web/web_int.h"

#define COUNT_DEFAULT 50
#define COUNT_MAX     500

/* ---- request helpers -------------------------------------------------------------------- */

const char *
web_query(web_req *r, const char *name)
{
    const char *q = r->ri->query_string;
    char *buf;
    int n;

    if (!q)
        return NULL;
    buf = core_arena_alloc(r->arena, strlen(q) + 1);
    n = mg_get_var(q, strlen(q), name, buf, strlen(q) + 1);
    return n >= 0 ? buf : NULL;
}

static const char *
header(web_req *r, const char *name)
{
    return mg_get_header(r->conn, name);
}

/* The FHIR base URL: configured, or from the Host header. */
static const char *
base_url(web_req *r)
{
    const char *host = header(r, "Host");
    if (r->cfg->base_url)
        return r->cfg->base_url;
    if (!host || !*host || strpbrk(host, " \"<>\\^`{|}"))
        host = "localhost";
    return core_arena_sprintf(r->arena, "http://%s/fhir", host);
}

/* Pick the response format: _format overrides Accept (mcsd.md §8.1). JSON unless XML is asked
 * for; 0, or -1 after answering 406 for a format neither. */
static int
negotiate(web_req *r)
{
    const char *f = web_query(r, "_format"), *accept = header(r, "Accept");
    const char *p = web_query(r, "_pretty");

    r->pretty = p && strcmp(p, "true") == 0;
    /* a download in the format its `format` parameter names (text/csv...); errors in JSON */
    if (strstr(r->ri->local_uri, "/$export-mfl"))
        return 0;
    if (f) {
        if (strcmp(f, "json") == 0 || strcmp(f, "application/json") == 0 ||
            strncmp(f, "application/fhir+json", 21) == 0)
            return 0;
        /* CSV: only the data-quality and catchment-check reports have a table to give */
        if ((strcmp(f, "csv") == 0 || strcmp(f, "text/csv") == 0) &&
            (strstr(r->ri->local_uri, "/$data-quality") ||
             strstr(r->ri->local_uri, "/$catchment-check")))
            return 0;
        if (strcmp(f, "xml") == 0 || strcmp(f, "application/xml") == 0 ||
            strcmp(f, "text/xml") == 0 || strncmp(f, "application/fhir+xml", 20) == 0) {
            r->xml = 1;
            return 0;
        }
        web_fail(r, 406, CORE_ISSUE_NOT_SUPPORTED,
                 "_format \"%.60s\" is not supported; use json, xml, application/fhir+json or "
                 "application/fhir+xml",
                 f);
        return -1;
    }
    if (!accept || !*accept || strstr(accept, "json") || strstr(accept, "*/*") ||
        strstr(accept, "application/*"))
        return 0;
    if (strstr(accept, "xml")) {
        r->xml = 1;
        return 0;
    }
    web_fail(r, 406, CORE_ISSUE_NOT_SUPPORTED,
             "cannot answer in \"%.80s\"; this server answers application/fhir+json or "
             "application/fhir+xml",
             accept);
    return -1;
}

static int
body_is_xml(const char *ct)
{
    return ct &&
           (strncasecmp(ct, "application/fhir+xml", 20) == 0 ||
            strncasecmp(ct, "application/xml", 15) == 0 || strncasecmp(ct, "text/xml", 8) == 0);
}

char *
web_read_body(web_req *r, size_t *len_out, int form)
{
    const char *ct = header(r, "Content-Type");
    const char *te = header(r, "Transfer-Encoding");
    long long clen = r->ri->content_length;
    size_t cap = r->cfg->max_body, len = 0, size;
    char *buf;

    if (te && header(r, "Content-Length")) {
        web_fail(r, 400, CORE_ISSUE_STRUCTURE,
                 "a request may not carry both Content-Length and Transfer-Encoding");
        return NULL;
    }
    if (form && (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)) {
        web_fail(r, 415, CORE_ISSUE_NOT_SUPPORTED,
                 "Content-Type \"%.80s\" is not supported for _search; send "
                 "application/x-www-form-urlencoded",
                 ct ? ct : "");
        return NULL;
    }
    if (!form && (!ct || !(strncasecmp(ct, "application/fhir+json", 21) == 0 ||
                           strncasecmp(ct, "application/json", 16) == 0 || body_is_xml(ct)))) {
        web_fail(r, 415, CORE_ISSUE_NOT_SUPPORTED,
                 "Content-Type \"%.80s\" is not supported; send application/fhir+json or "
                 "application/fhir+xml",
                 ct ? ct : "");
        return NULL;
    }
    if (clen > (long long)cap) {
        web_fail(r, 413, CORE_ISSUE_TOO_LONG, "the body is %lld bytes; the limit is %zu", clen,
                 cap);
        return NULL;
    }
    size = clen >= 0 ? (size_t)clen + 1 : 65536;
    buf = malloc(size);
    if (!buf)
        abort();
    for (;;) {
        int n;
        if (len + 1 >= size) {
            char *nb;
            if (size > cap + 1) {
                free(buf);
                web_fail(r, 413, CORE_ISSUE_TOO_LONG,
                         "the body is larger than the limit of %zu bytes", cap);
                return NULL;
            }
            size *= 2;
            if (!(nb = realloc(buf, size)))
                abort();
            buf = nb;
        }
        n = mg_read(r->conn, buf + len, size - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len > cap) {
            free(buf);
            web_fail(r, 413, CORE_ISSUE_TOO_LONG, "the body is larger than the limit of %zu bytes",
                     cap);
            return NULL;
        }
    }
    buf[len] = '\0';
    core_arena_defer(r->arena, core_defer_free, buf);
    *len_out = len;
    return buf;
}

/* Parse the body as JSON; NULL after answering. */
static json_t *
read_json(web_req *r)
{
    size_t len = 0;
    char *body = web_read_body(r, &len, 0);
    core_err err = CORE_ERR_INIT;
    json_t *j;

    if (!body)
        return NULL;
    if (len == 0) {
        web_fail(r, 400, CORE_ISSUE_STRUCTURE, "the request has no body");
        return NULL;
    }
    if (!(j = body_is_xml(header(r, "Content-Type")) ? reg_xml_parse(body, len, &err)
                                                     : core_json_parse(body, len, &err))) {
        web_send_error(r, &err);
        core_err_clear(&err);
        return NULL;
    }
    core_arena_defer(r->arena, core_defer_json, j);
    return j;
}

/* If-Match: W/"n" or "n" → n; absent → 0; malformed → -1 after answering 400. */
static int
if_match(web_req *r)
{
    const char *h = header(r, "If-Match");
    char *end;
    long v;

    if (!h)
        return 0;
    while (*h == ' ')
        h++;
    if (strncmp(h, "W/", 2) == 0)
        h += 2;
    if (*h == '"') {
        v = strtol(h + 1, &end, 10);
        if (end != h + 1 && *end == '"' && v > 0 && v < 1000000000 && end[1] == '\0')
            return (int)v;
    }
    web_fail(r, 400, CORE_ISSUE_VALUE, "If-Match must be an ETag like W/\"3\" (got \"%.40s\")",
             mg_get_header(r->conn, "If-Match"));
    return -1;
}

/* ---- access control ------------------------------------------------------------------------- */

/* Read the bearer token, if any. 0, or -1 after answering 401. */
static int
authenticate(web_req *r)
{
    const char *h = header(r, "Authorization");
    core_err err = CORE_ERR_INIT;

    if (!h)
        return 0;
    r->token_presented = 1;
    if (strncasecmp(h, "Bearer ", 7) != 0) {
        web_fail(r, 401, CORE_ISSUE_LOGIN, "use Authorization: Bearer <token>");
        return -1;
    }
    h += 7;
    while (*h == ' ')
        h++;
    if (reg_token_check(&r->who, r->th->db, h, &err) < 0) {
        web_send_error(r, &err);
        core_err_clear(&err);
        return -1;
    }
    return 0;
}

/* Deleting is for admins only (RELIABILITY.md's matrix): editors close a facility by setting
 * its status, which history keeps, instead of removing it. */
enum access {
    ACCESS_READ = REG_ACCESS_READ,
    ACCESS_WRITE = REG_ACCESS_WRITE,
    ACCESS_DELETE = REG_ACCESS_DELETE
};

/* May the caller do a to type t (-1: the whole system)? 0, or -1 with err (401/403). */
static int
access_check(const web_req *r, int t, int a, core_err *err)
{
    int needs_token =
        a != ACCESS_READ || t < 0 || !r->cfg->public_read || reg_type_is_personal((reg_type)t);
    if (!needs_token)
        return 0;
    if (r->who.role == REG_ROLE_NONE)
        return core_err_set(err, 401, CORE_ISSUE_LOGIN, "this request needs a bearer token");
    if (a == ACCESS_DELETE && r->who.role < REG_ROLE_ADMIN)
        return core_err_set(err, 403, CORE_ISSUE_FORBIDDEN,
                            "role %s may not delete resources; admin may (set status to close a "
                            "facility)",
                            reg_role_name(r->who.role));
    if (a == ACCESS_WRITE && r->who.role == REG_ROLE_HR)
        return t >= 0 && reg_type_is_personal((reg_type)t)
                   ? 0
                   : core_err_set(err, 403, CORE_ISSUE_FORBIDDEN,
                                  "role hr may change Practitioner and PractitionerRole only");
    if (a == ACCESS_WRITE && r->who.role < REG_ROLE_EDITOR)
        return core_err_set(err, 403, CORE_ISSUE_FORBIDDEN,
                            "role %s may not change resources; editor or admin may",
                            reg_role_name(r->who.role));
    return 0;
}

/* access_check for a Bundle entry (reg_authorize_fn). */
static int
bundle_access(void *payload, int type, int action, core_err *err)
{
    return access_check(payload, type, action, err);
}

/* access_check, answering 401/403 itself on refusal. */
static int
authorize(web_req *r, int t, enum access a)
{
    core_err err = CORE_ERR_INIT;
    if (access_check(r, t, (int)a, &err) == 0)
        return 0;
    web_send_error(r, &err);
    core_err_clear(&err);
    return -1;
}

/* ---- responses ------------------------------------------------------------------------------- */

static const char *
version_headers(web_req *r, int version, const char *last_updated, const char *location)
{
    char date[40];
    web_http_date(last_updated, date);
    return core_arena_sprintf(r->arena, "ETag: W/\"%d\"\r\nLast-Modified: %s\r\n%s%s%s", version,
                              date, location ? "Location: " : "", location ? location : "",
                              location ? "\r\n" : "");
}

/* Answer a successful write according to Prefer: return=minimal|representation|OperationOutcome. */
static int
send_write(web_req *r, reg_type t, const reg_write *w, int status)
{
    const char *prefer = header(r, "Prefer");
    const char *loc = core_arena_sprintf(r->arena, "%s/%s/%s/_history/%d", r->base,
                                         reg_type_name(t), w->id, w->version);
    const char *hdrs = version_headers(r, w->version, w->last_updated, loc);

    if (prefer && strstr(prefer, "return=minimal")) {
        web_send(r, status, NULL, hdrs, NULL, 0);
    } else if (prefer && strstr(prefer, "return=OperationOutcome")) {
        core_err info = CORE_ERR_INIT;
        json_t *oo;
        info.status = status;
        info.code = CORE_ISSUE_INFORMATIONAL;
        snprintf(info.msg, sizeof(info.msg), "%s %s/%s version %d",
                 w->created ? "created" : "updated", reg_type_name(t), w->id, w->version);
        oo = web_outcome(&info);
        web_send_json(r, status, hdrs, oo);
        json_decref(oo);
    } else {
        web_send_json(r, status, hdrs, w->resource);
    }
    return status;
}

static int
fail(web_req *r, core_err *err)
{
    int status = err->status ? err->status : 500;
    web_send_error(r, err);
    core_err_clear(err);
    return status;
}

static reg_actor
actor(web_req *r)
{
    reg_actor a;
    a.name = r->who.name[0] ? r->who.name : "anonymous";
    a.remote_addr = r->ri->remote_addr;
    /* ?repair-boundary=true on a write: repair an invalid boundary instead of refusing it */
    {
        const char *rb = web_query(r, "repair-boundary");
        a.repair_boundaries = rb && strcmp(rb, "true") == 0;
    }
    return a;
}

/* ---- interactions ------------------------------------------------------------------------------
 */

static int
do_read(web_req *r, reg_type t, const char *id)
{
    core_err err = CORE_ERR_INIT;
    json_t *res;
    int version;
    char lu[32];

    if (reg_read(&res, &version, lu, r->th->db, t, id, &err) < 0)
        return fail(r, &err);
    web_redact(r, res);
    web_send_json(r, 200, version_headers(r, version, lu, NULL), res);
    json_decref(res);
    return 200;
}

static int
do_vread(web_req *r, reg_type t, const char *id, const char *vid)
{
    core_err err = CORE_ERR_INIT;
    json_t *res;
    char lu[32], *end;
    long v = strtol(vid, &end, 10);

    if (*end || end == vid || v < 1 || v > 1000000000) {
        web_fail(r, 404, CORE_ISSUE_NOT_FOUND, "%s \"%.64s\" has no version \"%.20s\"",
                 reg_type_name(t), id, vid);
        return 404;
    }
    if (reg_vread(&res, lu, r->th->db, t, id, (int)v, &err) < 0)
        return fail(r, &err);
    web_redact(r, res);
    web_send_json(r, 200, version_headers(r, (int)v, lu, NULL), res);
    json_decref(res);
    return 200;
}

static int
do_create(web_req *r, reg_type t)
{
    core_err err = CORE_ERR_INIT;
    reg_write w;
    reg_actor a = actor(r);
    json_t *res = read_json(r);
    int status;

    const char *ine = header(r, "If-None-Exist");

    if (!res)
        return 400;
    if (ine ? reg_create_if_none(&w, r->th->db, t, res, ine, &a, &err) < 0
            : reg_create(&w, r->th->db, t, res, &a, &err) < 0)
        return fail(r, &err);
    /* If-None-Exist matched: 200 with the existing resource, nothing written (R4 3.1.0.8.1) */
    status = send_write(r, t, &w, w.noop ? 200 : 201);
    reg_write_clear(&w);
    return status;
}

/* PUT [type]/id, or with id NULL PUT [type]?criteria (R4 3.1.0.8.2). */
static int
do_update(web_req *r, reg_type t, const char *id)
{
    core_err err = CORE_ERR_INIT;
    reg_write w;
    reg_actor a = actor(r);
    int im = if_match(r), status;
    json_t *res;

    if (im < 0)
        return 400;
    if (!(res = read_json(r)))
        return 400;
    if ((id ? reg_update(&w, r->th->db, t, id, res, im, &a, &err)
            : reg_update_where(&w, r->th->db, t, r->ri->query_string, res, im, &a, &err)) < 0)
        return fail(r, &err);
    status = send_write(r, t, &w, w.created ? 201 : 200);
    reg_write_clear(&w);
    return status;
}

static int
do_delete(web_req *r, reg_type t, const char *id)
{
    core_err err = CORE_ERR_INIT, info = CORE_ERR_INIT;
    reg_write w;
    reg_actor a = actor(r);
    int im = if_match(r);
    json_t *oo;

    if (im < 0)
        return 400;
    if (reg_delete(&w, r->th->db, t, id, im, &a, &err) < 0)
        return fail(r, &err);
    info.status = 200;
    info.code = CORE_ISSUE_INFORMATIONAL;
    snprintf(info.msg, sizeof(info.msg), w.noop ? "%s/%s was already deleted" : "deleted %s/%s",
             reg_type_name(t), id);
    oo = web_outcome(&info);
    web_send_json(r, 200, core_arena_sprintf(r->arena, "ETag: W/\"%d\"\r\n", w.version), oo);
    json_decref(oo);
    reg_write_clear(&w);
    return 200;
}

/* Page size from _count: default, clamped to the cap; -1 after answering 400. */
int
web_page_count(web_req *r)
{
    const char *c = web_query(r, "_count");
    char *end;
    long v;

    if (!c)
        return COUNT_DEFAULT;
    v = strtol(c, &end, 10);
    if (*end || end == c || v < 0) {
        web_fail(r, 400, CORE_ISSUE_VALUE, "_count must be a whole number (got \"%.20s\")", c);
        return -1;
    }
    if (v == 0)
        v = 1;
    return v > COUNT_MAX ? COUNT_MAX : (int)v;
}

/* One history entry's request and response (R4 3.1.0.4.1). */
static const char *
history_status(int status)
{
    return status == 201 ? "201 Created" : status == 204 ? "204 No Content" : "200 OK";
}

/* The history Bundle as text around the stored JSON, without parsing it, streamed: the
 * database reads the next SUB entries while the ones before are written (chunked transfer).
 * "link" comes after "entry" (JSON member order carries no meaning), since next is known only
 * at the end. Whole instead for HTTP/1.0 clients, and for XML and _pretty, which are the same
 * text parsed once at the end; only a reader's Practitioners are parsed on the way (reduced). */
#define SUB 100

typedef struct hstream {
    web_req *r;
    core_buf b;
    int chunked, started;
} hstream;

/* Write what b holds (the headers before the first piece, in the same write). */
static int
hs_flush(hstream *h, int last)
{
    char head[512];
    int n = 0;
    core_buf out = { 0 };
    int rc;

    if (!h->chunked && !last)
        return 0;
    if (!h->chunked) {
        web_req *r = h->r;
        json_t *j;
        core_err err = CORE_ERR_INIT;
        h->started = 1;
        if (!r->xml && !r->pretty)
            web_send(r, 200, "application/fhir+json; charset=utf-8", NULL, h->b.data, h->b.len);
        else if ((j = core_json_parse(h->b.data, h->b.len, &err))) {
            web_send_json(r, 200, NULL, j);
            json_decref(j);
        } else {
            web_send_error(r, &err);
            core_err_clear(&err);
        }
        h->b.len = 0;
        return 0;
    }
    if (!h->started) {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json; charset=utf-8\r\n"
                     "Transfer-Encoding: chunked\r\nX-Content-Type-Options: nosniff\r\n"
                     "Cache-Control: no-store\r\n\r\n");
        h->started = 1;
    }
    if (!h->b.len && !last)
        return 0;
    core_buf_add(&out, head, (size_t)n);
    if (h->b.len) {
        core_buf_printf(&out, "%zx\r\n", h->b.len);
        core_buf_add(&out, h->b.data, h->b.len);
        core_buf_add(&out, "\r\n", 2);
    }
    if (last)
        core_buf_add(&out, "0\r\n\r\n", 5);
    rc = mg_write(h->r->conn, out.data, out.len) == (int)out.len ? 0 : -1;
    free(out.data);
    h->b.len = 0;
    return rc;
}

static void
hs_entry(hstream *h, const reg_history_entry *e, int first)
{
    web_req *r = h->r;
    core_buf *b = &h->b;
    const char *tn = reg_type_name(e->type);

    core_buf_str(b, first ? ",\"entry\":[{\"fullUrl\":" : ",{\"fullUrl\":");
    core_buf_json_str(b, core_arena_sprintf(r->arena, "%s/%s/%s", r->base, tn, e->id));
    if (e->text && web_redacts(r, (int)e->type)) {
        core_err err = CORE_ERR_INIT;
        json_t *res = core_json_parse(e->text, strlen(e->text), &err);
        char *text = NULL;
        if (res) {
            web_redact(r, res);
            text = core_json_dump(res, NULL);
            json_decref(res);
        }
        core_err_clear(&err);
        /* a stored text that does not parse (never written so) is left out, not shown whole */
        if (text) {
            core_buf_str(b, ",\"resource\":");
            core_buf_str(b, text);
            free(text);
        }
    } else if (e->text) {
        core_buf_str(b, ",\"resource\":");
        core_buf_str(b, e->text);
    }
    core_buf_printf(b, ",\"request\":{\"method\":\"%s\",\"url\":\"%s%s%s\"},", e->method, tn,
                    strcmp(e->method, "POST") == 0 ? "" : "/",
                    strcmp(e->method, "POST") == 0 ? "" : e->id);
    core_buf_printf(b,
                    "\"response\":{\"status\":\"%s\",\"etag\":\"W/\\\"%d\\\"\","
                    "\"lastModified\":\"%s\"}}",
                    history_status(e->status), e->version, e->last_updated);
}

/* Stream one page of the walk q (horizon already fixed). Returns the status for the log. */
static int
stream_history(web_req *r,
               const reg_history_query *q,
               const char *horizon,
               const char *bundle_id,
               const char *self,
               const char *next_prefix)
{
    core_err err = CORE_ERR_INIT;
    const char *version = r->ri->http_version;
    hstream h = { r, { 0 }, (!version || strcmp(version, "1.0") != 0) && !r->xml && !r->pretty, 0 };
    long long before = q->before, last_seq = 0, next = 0;
    int emitted = 0, want = q->count + 1 < SUB ? q->count + 1 : SUB;

    if (reg_history_send(r->th->db, q, horizon, before, want, &err) < 0)
        return fail(r, &err);
    core_buf_str(&h.b, "{\"resourceType\":\"Bundle\",\"id\":");
    core_buf_json_str(&h.b, bundle_id);
    core_buf_str(&h.b, ",\"meta\":{\"lastUpdated\":");
    core_buf_json_str(&h.b, horizon);
    core_buf_str(&h.b, "},\"type\":\"history\"");
    for (;;) {
        reg_history_entry *e;
        int n, take, done;
        if (reg_history_recv(&e, &n, r->th->db, &err) < 0)
            goto failed;
        take = emitted + n > q->count ? q->count - emitted : n;
        done = n < want || emitted + n > q->count;
        if (emitted + n > q->count)
            next = take > 0 ? e[take - 1].seq : last_seq;
        if (!done) {
            /* the database reads the next piece while this one is written */
            before = e[n - 1].seq;
            want = q->count + 1 - (emitted + n) < SUB ? q->count + 1 - (emitted + n) : SUB;
            if (reg_history_send(r->th->db, q, horizon, before, want, &err) < 0)
                done = -1;
        }
        for (int i = 0; i < take; i++)
            hs_entry(&h, &e[i], emitted + i == 0);
        if (take)
            last_seq = e[take - 1].seq;
        emitted += take;
        web_count_personal(r, e, take);
        reg_history_free(e, n);
        if (done < 0)
            goto failed;
        if (done)
            break;
        if (h.b.len >= 65536 && hs_flush(&h, 0) < 0) {
            /* the client went away: drain the statement in flight and stop */
            reg_history_recv(&e, &n, r->th->db, &err);
            reg_history_free(e, n);
            core_err_clear(&err);
            free(h.b.data);
            return 200;
        }
    }
    core_buf_str(&h.b, emitted ? "],\"link\":[{\"relation\":\"self\",\"url\":"
                               : ",\"link\":[{\"relation\":\"self\",\"url\":");
    core_buf_json_str(&h.b, self);
    core_buf_str(&h.b, "}");
    if (next) {
        core_buf_str(&h.b, ",{\"relation\":\"next\",\"url\":");
        core_buf_json_str(&h.b,
                          core_arena_sprintf(r->arena, "%s%lld~%s", next_prefix, next, horizon));
        core_buf_str(&h.b, "}");
    }
    core_buf_str(&h.b, "]}");
    hs_flush(&h, 1);
    free(h.b.data);
    return 200;
failed:
    free(h.b.data);
    if (!h.started)
        return fail(r, &err);
    /* the status is out: end without the last chunk, so the client sees it cut */
    core_log(CORE_LOG_ERROR, "GET %s: history stopped after the response began: %s",
             r->ri->local_uri, err.msg);
    core_err_clear(&err);
    return 500;
}

/* [base]/_history, [type]/_history, [type]/[id]/_history (R4 3.1.0.4, IHE ITI-91). Newest
 * first; each walk (a first page and the next links after it) shows the versions stamped up to
 * its horizon, which is the first page's Bundle.meta.lastUpdated and is pinned in the _cursor of
 * the next links. The polling rule (README): follow next to the end, then ask again with
 * _since = that first page's meta.lastUpdated: nothing is ever skipped. */
static int
do_history(web_req *r, int t, const char *id)
{
    core_err err = CORE_ERR_INIT;
    reg_history_query q = { 0 };
    const char *cursor = web_query(r, "_cursor"), *path, *since = "", *self, *next_fmt;
    char horizon[32], uuid_hex[33], pinned[32], since_buf[40];
    int count = web_page_count(r);
    unsigned char rnd[16];

    if (count < 0)
        return 400;
    if ((t < 0 || reg_type_is_personal((reg_type)t)) && web_personal_throttle(r) < 0)
        return 429;
    q.type = t;
    q.id = id;
    q.since = web_query(r, "_since");
    if (q.since) {
        if (reg_since_normalize(q.since, since_buf) < 0) {
            core_err_set_at(&err, 400, CORE_ISSUE_VALUE, "_since",
                            "_since must be an instant such as 2026-01-31T08:00:00Z or a date "
                            "(got \"%.40s\")",
                            q.since);
            return fail(r, &err);
        }
        q.since = since_buf;
    }
    q.count = count;
    q.unsafe_horizon = r->cfg->feed_horizon_off;
    if (cursor) {
        /* "<seq>~<horizon>", as the next links write it */
        const char *tilde = strchr(cursor, '~');
        char *end;
        q.before = strtoll(cursor, &end, 10);
        if (q.before <= 0 || end != tilde || strlen(tilde + 1) >= sizeof(pinned)) {
            web_fail(r, 400, CORE_ISSUE_VALUE, "_cursor \"%.40s\" is not one this server wrote",
                     cursor);
            return 400;
        }
        core_strlcpy(pinned, tilde + 1, sizeof(pinned));
        q.horizon = pinned;
    }

    path = t < 0 ? "_history"
           : id  ? core_arena_sprintf(r->arena, "%s/%s/_history", reg_type_name((reg_type)t), id)
                 : core_arena_sprintf(r->arena, "%s/_history", reg_type_name((reg_type)t));
    if (q.since) {
        size_t cap = strlen(q.since) * 3 + 1;
        char *enc = core_arena_alloc(r->arena, cap);
        mg_url_encode(q.since, enc, cap);
        since = core_arena_sprintf(r->arena, "&_since=%s", enc);
    }
    /* self and next repeat the parameters that were applied */
    self = core_arena_sprintf(r->arena, "%s/%s?_count=%d%s%s%s", r->base, path, count, since,
                              cursor ? "&_cursor=" : "", cursor ? cursor : "");
    next_fmt =
        core_arena_sprintf(r->arena, "%s/%s?_count=%d%s&_cursor=", r->base, path, count, since);
    core_random(rnd, sizeof(rnd));
    for (int i = 0; i < 16; i++)
        snprintf(uuid_hex + 2 * i, 3, "%02x", rnd[i]);
    if (reg_history_start(horizon, r->th->db, &q, &err) < 0)
        return fail(r, &err);
    return stream_history(r, &q, horizon, uuid_hex, self, next_fmt);
}

static int
do_metadata(web_req *r)
{
    json_t *cs = web_capability(r);
    web_send_json(r, 200, NULL, cs);
    json_decref(cs);
    return 200;
}

/* DELETE [type]?criteria (R4 3.1.0.8.3): one match at most. */
static int
do_delete_where(web_req *r, reg_type t)
{
    core_err err = CORE_ERR_INIT, info = CORE_ERR_INIT;
    reg_write w;
    reg_actor a = actor(r);
    json_t *oo;

    if (reg_delete_where(&w, r->th->db, t, r->ri->query_string, &a, &err) < 0)
        return fail(r, &err);
    info.status = 200;
    info.code = CORE_ISSUE_INFORMATIONAL;
    if (w.noop && !w.id[0])
        snprintf(info.msg, sizeof(info.msg), "no %s matched; nothing was deleted",
                 reg_type_name(t));
    else
        snprintf(info.msg, sizeof(info.msg), "deleted %s/%s", reg_type_name(t), w.id);
    oo = web_outcome(&info);
    web_send_json(r, 200, NULL, oo);
    json_decref(oo);
    reg_write_clear(&w);
    return 200;
}

static const char *
status_line(int status)
{
    switch (status) {
    case 200:
        return "200 OK";
    case 201:
        return "201 Created";
    case 204:
        return "204 No Content";
    default: {
        const char *txt = mg_get_response_code_text(NULL, status);
        static _Thread_local char buf[64];
        snprintf(buf, sizeof(buf), "%d %s", status, txt ? txt : "");
        return buf;
    }
    }
}

/* POST [base] with a transaction or batch Bundle. */
static int
do_bundle(web_req *r)
{
    core_err err = CORE_ERR_INIT;
    reg_actor a = actor(r);
    reg_bundle_ctx ctx;
    reg_bundle_result *res;
    size_t n;
    int is_batch;
    json_t *bundle = read_json(r), *out, *entries;
    char now[32];

    if (!bundle)
        return 400;
    ctx.who = &a;
    ctx.authorize = bundle_access;
    ctx.payload = r;
    ctx.max_entries = 1000;
    {
        /* GET entries are reads like any other: the same allowance for health workers */
        json_t *entry;
        size_t i;
        int reads = 0;
        json_array_foreach (json_object_get(bundle, "entry"), i, entry) {
            const char *m =
                json_string_value(json_object_get(json_object_get(entry, "request"), "method"));
            reads |= m && strcmp(m, "GET") == 0;
        }
        if (reads && web_personal_throttle(r) < 0)
            return 429; /* bundle: the arena's */
    }
    if (reg_bundle_process(&res, &n, &is_batch, r->th->db, bundle, &ctx, &err) < 0)
        return fail(r, &err);
    core_time_instant(now);
    out = json_pack("{s:s, s:{s:s}, s:s}", "resourceType", "Bundle", "meta", "lastUpdated", now,
                    "type", is_batch ? "batch-response" : "transaction-response");
    entries = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object(), *resp = json_object();
        json_object_set_new(resp, "status", json_string(status_line(res[i].status)));
        if (res[i].err.status) {
            json_object_set_new(resp, "outcome", web_outcome(&res[i].err));
        } else if (res[i].type >= 0 && res[i].id[0]) {
            const char *tn = reg_type_name((reg_type)res[i].type);
            if (res[i].version) {
                char etag[24];
                snprintf(etag, sizeof(etag), "W/\"%d\"", res[i].version);
                json_object_set_new(resp, "location",
                                    json_string(core_arena_sprintf(r->arena, "%s/%s/_history/%d",
                                                                   tn, res[i].id, res[i].version)));
                json_object_set_new(resp, "etag", json_string(etag));
            }
            if (res[i].last_updated[0])
                json_object_set_new(resp, "lastModified", json_string(res[i].last_updated));
            if (res[i].resource) {
                json_object_set_new(
                    e, "fullUrl",
                    json_string(core_arena_sprintf(r->arena, "%s/%s/%s", r->base, tn, res[i].id)));
                web_personal_count(r, web_redact_all(r, res[i].resource));
                json_object_set(e, "resource", res[i].resource);
            }
        }
        json_object_set_new(e, "response", resp);
        json_array_append_new(entries, e);
    }
    if (n)
        json_object_set_new(out, "entry", entries);
    else
        json_decref(entries);
    reg_bundle_results_free(res, n);
    web_send_json(r, 200, NULL, out);
    json_decref(out);
    return 200;
}

static int
method_not_allowed(web_req *r, const char *allow)
{
    const char *h = core_arena_sprintf(r->arena, "Allow: %s\r\n", allow);
    core_err err = CORE_ERR_INIT;
    json_t *oo;
    err.status = 405;
    err.code = CORE_ISSUE_NOT_SUPPORTED;
    snprintf(err.msg, sizeof(err.msg), "%s is not supported here; allowed: %s",
             r->ri->request_method, allow);
    oo = web_outcome(&err);
    web_send_json(r, 405, h, oo);
    json_decref(oo);
    return 405;
}

/* ---- routing ------------------------------------------------------------------------------------
 */

#define MAX_SEGMENTS 5

int
web_fhir_handle(web_req *r)
{
    const char *m = r->ri->request_method;
    const char *uri = r->ri->local_uri + 5; /* after "/fhir" */
    char *path, *seg[MAX_SEGMENTS], *save = NULL, *tok;
    int nseg = 0, t;
    int is_get = strcmp(m, "GET") == 0;

    if (*uri && *uri != '/') {
        web_fail(r, 404, CORE_ISSUE_NOT_FOUND, "nothing is served at \"%.200s\"", r->ri->local_uri);
        return 404;
    }
    r->base = base_url(r);
    if (negotiate(r) < 0)
        return 406;
    if (!r->th) {
        web_fail(r, 503, CORE_ISSUE_TRANSIENT, "the server is starting");
        return 503;
    }
    path = core_arena_strdup(r->arena, uri);
    for (tok = strtok_r(path, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
        if (nseg == MAX_SEGMENTS) {
            web_fail(r, 404, CORE_ISSUE_NOT_FOUND, "nothing is served at \"%.200s\"",
                     r->ri->local_uri);
            return 404;
        }
        seg[nseg++] = tok;
    }
    if (authenticate(r) < 0)
        return 401;

    if (nseg == 0) {
        if (strcmp(m, "POST") == 0)
            return do_bundle(r);
        return method_not_allowed(r, "GET /fhir/metadata, GET /fhir/_history");
    }
    if (nseg == 1 && strcmp(seg[0], "metadata") == 0)
        return is_get ? do_metadata(r) : method_not_allowed(r, "GET");
    if (nseg == 1 && strcmp(seg[0], "_history") == 0) {
        if (!is_get)
            return method_not_allowed(r, "GET");
        return authorize(r, -1, ACCESS_READ) < 0 ? 401 : do_history(r, -1, NULL);
    }
    if (strcmp(seg[0], "$import") == 0)
        return web_import(r, nseg, seg); /* admin only: checked there */

    t = reg_type_find(seg[0]);
    if (t < 0) {
        web_fail(r, 404, CORE_ISSUE_NOT_SUPPORTED,
                 "resource type \"%.64s\" is not served here; see /fhir/metadata", seg[0]);
        return 404;
    }
    if (nseg == 2 && t == REG_LOCATION && strcmp(seg[1], "$data-quality") == 0) {
        if (!is_get)
            return method_not_allowed(r, "GET");
        return authorize(r, t, ACCESS_READ) < 0 ? 401 : web_data_quality(r);
    }
    if (nseg == 2 && t == REG_LOCATION && strcmp(seg[1], "$boundaries") == 0) {
        if (!is_get)
            return method_not_allowed(r, "GET");
        return authorize(r, t, ACCESS_READ) < 0 ? 401 : web_map_layer(r);
    }
    if (nseg == 2 && t == REG_LOCATION && strcmp(seg[1], "$export-mfl") == 0) {
        if (!is_get)
            return method_not_allowed(r, "GET");
        return authorize(r, t, ACCESS_READ) < 0 ? 401 : web_export_mfl(r);
    }
    if (nseg == 2 && t == REG_LOCATION && strcmp(seg[1], "$catchment-check") == 0) {
        if (!is_get)
            return method_not_allowed(r, "GET");
        return authorize(r, t, ACCESS_READ) < 0 ? 401 : web_catchment_check(r);
    }
    if (nseg == 2 && t == REG_LOCATION && strcmp(seg[1], "$generate-catchments") == 0) {
        if (strcmp(m, "POST") != 0)
            return method_not_allowed(r, "POST");
        return authorize(r, t, ACCESS_WRITE) < 0 ? 403 : web_generate_catchments(r);
    }
    if (nseg >= 2 && seg[1][0] != '_' && !reg_id_valid(seg[1])) {
        core_err err = CORE_ERR_INIT;
        core_err_set_at(&err, 400, CORE_ISSUE_VALUE, core_arena_sprintf(r->arena, "%s.id", seg[0]),
                        "id \"%.64s\" is not valid: use 1 to 64 letters, digits, '-' or '.'",
                        seg[1]);
        return fail(r, &err);
    }

    if (nseg == 1) {
        if (strcmp(m, "POST") == 0)
            return authorize(r, t, ACCESS_WRITE) < 0 ? 403 : do_create(r, (reg_type)t);
        if (is_get)
            return authorize(r, t, ACCESS_READ) < 0 ? 401 : web_search(r, (reg_type)t, 0);
        if (strcmp(m, "PUT") == 0 && r->ri->query_string)
            return authorize(r, t, ACCESS_WRITE) < 0 ? 403 : do_update(r, (reg_type)t, NULL);
        if (strcmp(m, "DELETE") == 0 && r->ri->query_string)
            return authorize(r, t, ACCESS_DELETE) < 0 ? 403 : do_delete_where(r, (reg_type)t);
        return method_not_allowed(r, "GET, POST; PUT and DELETE with search criteria");
    }
    if (nseg == 2 && strcmp(seg[1], "_history") == 0) {
        if (!is_get)
            return method_not_allowed(r, "GET");
        return authorize(r, t, ACCESS_READ) < 0 ? 401 : do_history(r, t, NULL);
    }
    if (nseg == 2 && strcmp(seg[1], "_search") == 0) {
        if (strcmp(m, "POST") != 0)
            return method_not_allowed(r, "POST");
        return authorize(r, t, ACCESS_READ) < 0 ? 401 : web_search(r, (reg_type)t, 1);
    }
    if (nseg == 2 && seg[1][0] == '_') {
        web_fail(r, 400, CORE_ISSUE_NOT_SUPPORTED, "operation \"%.64s\" is not supported", seg[1]);
        return 400;
    }
    if (nseg == 2) {
        if (is_get)
            return authorize(r, t, ACCESS_READ) < 0 ? 401 : do_read(r, (reg_type)t, seg[1]);
        if (strcmp(m, "PUT") == 0)
            return authorize(r, t, ACCESS_WRITE) < 0 ? 403 : do_update(r, (reg_type)t, seg[1]);
        if (strcmp(m, "DELETE") == 0)
            return authorize(r, t, ACCESS_DELETE) < 0 ? 403 : do_delete(r, (reg_type)t, seg[1]);
        return method_not_allowed(r, "GET, PUT, DELETE");
    }
    if (nseg == 3 && strcmp(seg[2], "$staffing") == 0 &&
        (t == REG_LOCATION || t == REG_ORGANIZATION)) {
        if (!is_get)
            return method_not_allowed(r, "GET");
        /* counted from PractitionerRoles: personal data, so read as a PractitionerRole */
        return authorize(r, REG_PRACTITIONERROLE, ACCESS_READ) < 0 ? 401
                                                                   : web_staffing(r, t, seg[1]);
    }
    if (strcmp(seg[2], "_history") == 0 && (nseg == 3 || nseg == 4)) {
        if (!is_get)
            return method_not_allowed(r, "GET");
        if (authorize(r, t, ACCESS_READ) < 0)
            return 401;
        return nseg == 3 ? do_history(r, t, seg[1]) : do_vread(r, (reg_type)t, seg[1], seg[3]);
    }
    web_fail(r, 404, CORE_ISSUE_NOT_FOUND, "nothing is served at \"%.200s\"", r->ri->local_uri);
    return 404;
}
