/* Search over HTTP: GET [base]/[type]?params and POST [base]/[type]/_search with a form body
 * (same results), answered with a searchset Bundle. Matches come from the store as JSON text
 * and are spliced into the Bundle as they are, unless _summary or _elements ask for a subset
 * (then they are parsed, trimmed and tagged SUBSETTED). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "web/web_int.h"

#define MAX_QPARAMS 100

/* Split a query string or form body into decoded name/value pairs (arena memory). */
static size_t
parse_pairs(web_req *r, const char *s, reg_qparam *out, size_t n, size_t max)
{
    char *copy, *save = NULL, *tok;
    if (!s || !*s)
        return n;
    copy = core_arena_strdup(r->arena, s);
    for (tok = strtok_r(copy, "&", &save); tok && n < max; tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        size_t ln, lv;
        char *name, *value;
        if (eq)
            *eq = '\0';
        ln = strlen(tok) + 1;
        lv = eq ? strlen(eq + 1) + 1 : 1;
        name = core_arena_alloc(r->arena, ln);
        value = core_arena_alloc(r->arena, lv);
        mg_url_decode(tok, (int)ln - 1, name, (int)ln, 1);
        if (eq)
            mg_url_decode(eq + 1, (int)lv - 1, value, (int)lv, 1);
        if (!*name)
            continue;
        out[n].name = name;
        out[n].value = value;
        n++;
    }
    return n;
}

static const char *
param(const reg_qparam *p, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].name, name) == 0)
            return p[i].value;
    return NULL;
}

/* Keep in a subset only what _summary / _elements allow (R4 §3.1.1.5.8-9). */
static void
subset(json_t *res, const char *type, const char *summary, const char *elements)
{
    const char *k;
    json_t *v, *meta, *tags, *tmp;
    void *iter;

    for (iter = json_object_iter(res); iter;) {
        int keep;
        k = json_object_iter_key(iter);
        if (strcmp(k, "resourceType") == 0 || strcmp(k, "id") == 0 || strcmp(k, "meta") == 0 ||
            (strcmp(summary, "data") != 0 && reg_model_is_mandatory(type, k))) {
            /* mandatory elements stay (R4 3.1.1.5.8-9), so the subset is still valid FHIR */
            keep = 1;
        } else if (elements) {
            const char *name = k[0] == '_' ? k + 1 : k;
            size_t n = strlen(name);
            const char *p = elements;
            keep = 0;
            while (p && *p) {
                const char *c = strchr(p, ',');
                size_t len = c ? (size_t)(c - p) : strlen(p);
                if (len == n && strncmp(p, name, n) == 0)
                    keep = 1;
                p = c ? c + 1 : NULL;
            }
        } else if (strcmp(summary, "true") == 0) {
            keep = reg_model_is_summary(type, k);
        } else if (strcmp(summary, "text") == 0) {
            keep = strcmp(k, "text") == 0;
        } else { /* data */
            keep = strcmp(k, "text") != 0;
        }
        if (keep) {
            iter = json_object_iter_next(res, iter);
        } else {
            char key[128];
            core_strlcpy(key, k, sizeof(key));
            iter = json_object_iter_next(res, iter);
            json_object_del(res, key);
        }
    }
    meta = json_object_get(res, "meta");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(res, "meta", meta);
    }
    tags = json_object_get(meta, "tag");
    if (!json_is_array(tags)) {
        tags = json_array();
        json_object_set_new(meta, "tag", tags);
    }
    tmp =
        json_pack("{s:s, s:s}", "system",
                  "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code", "SUBSETTED");
    json_array_append_new(tags, tmp);
    (void)v;
}

int
web_search(web_req *r, reg_type t, int post)
{
    reg_qparam *p = core_arena_alloc(r->arena, sizeof(*p) * MAX_QPARAMS);
    size_t n = parse_pairs(r, r->ri->query_string, p, 0, MAX_QPARAMS);
    reg_search_opts opts;
    reg_search_out res;
    core_err err = CORE_ERR_INIT;
    const char *prefer = mg_get_header(r->conn, "Prefer");
    const char *summary, *elements, *tn = reg_type_name(t);
    char now[32], extra[512] = "";
    core_buf o = { 0 };
    int count;
    long npersonal = 0;

    if (post) {
        size_t len;
        char *body = web_read_body(r, &len, 1);
        if (!body)
            return 415;
        n = parse_pairs(r, body, p, n, MAX_QPARAMS);
    }
    if (n >= MAX_QPARAMS) {
        web_fail(r, 400, CORE_ISSUE_TOO_LONG, "a search may have at most %d parameters",
                 MAX_QPARAMS - 1);
        return 400;
    }
    if ((count = web_page_count(r)) < 0)
        return 400;
    {
        /* a _count in a POST body follows the same rules as in the URL */
        const char *c = param(p, n, "_count");
        if (post && c && !web_query(r, "_count")) {
            char *end;
            long v = strtol(c, &end, 10);
            if (*end || end == c || v < 0) {
                web_fail(r, 400, CORE_ISSUE_VALUE, "_count must be a whole number (got \"%.20s\")",
                         c);
                return 400;
            }
            count = v == 0 ? 1 : v > 500 ? 500 : (int)v;
        }
    }
    summary = param(p, n, "_summary");
    elements = param(p, n, "_elements");
    if (summary && strcmp(summary, "true") != 0 && strcmp(summary, "false") != 0 &&
        strcmp(summary, "count") != 0 && strcmp(summary, "text") != 0 &&
        strcmp(summary, "data") != 0) {
        web_fail(r, 400, CORE_ISSUE_VALUE,
                 "_summary must be true, false, count, text or data (got \"%.40s\")", summary);
        return 400;
    }
    if (summary && strcmp(summary, "false") == 0)
        summary = NULL;
    memset(&opts, 0, sizeof(opts));
    opts.count = count;
    opts.strict = prefer && strstr(prefer, "handling=strict") != NULL;
    opts.allow_personal = r->who.role != REG_ROLE_NONE;
    if (opts.allow_personal) {
        /* a bulk read that may return health workers spends the token's allowance */
        int personal = reg_type_is_personal(t);
        for (size_t i = 0; i < n && !personal; i++)
            personal = strncmp(p[i].name, "_include", 8) == 0 ||
                       strncmp(p[i].name, "_revinclude", 11) == 0;
        if (personal && web_personal_throttle(r) < 0)
            return 429;
    }
    opts.count_only = summary && strcmp(summary, "count") == 0;
    opts.cursor = param(p, n, "_cursor");
    if (reg_search(&res, r->th->db, (int)t, p, n, &opts, &err) < 0) {
        int status = err.status;
        web_send_error(r, &err);
        core_err_clear(&err);
        return status;
    }

    /* links repeat what was applied, plus page size and the presentation parameters */
    if (summary)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "&_summary=%s", summary);
    if (elements) {
        char enc[300];
        mg_url_encode(elements, enc, sizeof(enc));
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "&_elements=%s", enc);
    }
    core_time_instant(now);
    core_buf_str(&o, "{\"resourceType\":\"Bundle\",\"meta\":{\"lastUpdated\":\"");
    core_buf_str(&o, now);
    core_buf_str(&o, "\"},\"type\":\"searchset\"");
    if (res.total >= 0) {
        char tot[32];
        snprintf(tot, sizeof(tot), ",\"total\":%lld", res.total);
        core_buf_str(&o, tot);
    }
    core_buf_str(&o, ",\"link\":[{\"relation\":\"self\",\"url\":");
    core_buf_json_str(&o, core_arena_sprintf(r->arena, "%s/%s?%s%s_count=%d%s%s%s", r->base, tn,
                                             res.self, *res.self ? "&" : "", count, extra,
                                             opts.cursor ? "&_cursor=" : "",
                                             opts.cursor ? opts.cursor : ""));
    core_buf_str(&o, "}");
    if (res.next) {
        core_buf_str(&o, ",{\"relation\":\"next\",\"url\":");
        core_buf_json_str(&o, core_arena_sprintf(r->arena, "%s/%s?%s%s_count=%d%s&_cursor=%s",
                                                 r->base, tn, res.self, *res.self ? "&" : "", count,
                                                 extra, res.next));
        core_buf_str(&o, "}");
    }
    if (res.prev) {
        core_buf_str(&o, ",{\"relation\":\"previous\",\"url\":");
        core_buf_json_str(&o, core_arena_sprintf(r->arena, "%s/%s?%s%s_count=%d%s&_cursor=%s",
                                                 r->base, tn, res.self, *res.self ? "&" : "", count,
                                                 extra, res.prev));
        core_buf_str(&o, "}");
    }
    core_buf_str(&o, "]");
    if (res.nhits || res.ignored) {
        int first = 1;
        core_buf_str(&o, ",\"entry\":[");
        for (int i = 0; i < res.nhits; i++) {
            const reg_hit *h = &res.hits[i];
            const char *htn = reg_type_name((reg_type)h->type);
            if (!first)
                core_buf_str(&o, ",");
            first = 0;
            core_buf_str(&o, "{\"fullUrl\":");
            core_buf_json_str(&o, core_arena_sprintf(r->arena, "%s/%s/%s", r->base, htn, h->id));
            core_buf_str(&o, ",\"resource\":");
            npersonal += reg_type_is_personal((reg_type)h->type);
            if (summary || elements || web_redacts(r, h->type)) {
                json_t *j = core_json_parse(h->json, strlen(h->json), &err);
                char *text;
                if (!j) {
                    core_err_clear(&err);
                    core_buf_str(&o, h->json);
                } else {
                    web_redact(r, j);
                    if (summary || elements)
                        subset(j, htn, summary ? summary : "", elements);
                    text = core_json_dump(j, NULL);
                    json_decref(j);
                    core_buf_str(&o, text ? text : "{}");
                    free(text);
                }
            } else {
                core_buf_str(&o, h->json);
            }
            if (!h->include && h->distance >= 0) {
                /* R4 location-distance: how far the match is from the near point */
                char d[256];
                snprintf(
                    d, sizeof(d),
                    ",\"search\":{\"extension\":[{\"url\":\"http://hl7.org/fhir/"
                    "StructureDefinition/location-distance\",\"valueDistance\":{\"value\":%.6g,"
                    "\"unit\":\"%s\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"%s\"}}"
                    "],\"mode\":\"match\"}}",
                    h->distance, res.near_unit, res.near_unit);
                core_buf_str(&o, d);
            } else {
                core_buf_str(&o, h->include ? ",\"search\":{\"mode\":\"include\"}}"
                                            : ",\"search\":{\"mode\":\"match\"}}");
            }
        }
        if (res.ignored) {
            /* lenient handling: say what was not applied (R4: an outcome entry) */
            if (!first)
                core_buf_str(&o, ",");
            core_buf_str(
                &o, "{\"resource\":{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":"
                    "\"warning\",\"code\":\"not-supported\",\"diagnostics\":");
            core_buf_json_str(&o, core_arena_sprintf(r->arena,
                                                     "unknown search parameters were ignored: %s",
                                                     res.ignored));
            core_buf_str(&o, "}]},\"search\":{\"mode\":\"outcome\"}}");
        }
        core_buf_str(&o, "]");
    }
    core_buf_str(&o, "}");
    reg_search_out_clear(&res);
    web_personal_count(r, npersonal);

    if (r->pretty || r->xml) {
        json_t *j = core_json_parse(o.data, o.len, &err);
        if (j) {
            web_send_json(r, 200, NULL, j);
            json_decref(j);
            free(o.data);
            return 200;
        }
        core_err_clear(&err);
    }
    web_send(r, 200, "application/fhir+json; charset=utf-8", NULL, o.data, o.len);
    free(o.data);
    return 200;
}
