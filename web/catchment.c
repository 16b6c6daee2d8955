/* The catchment operations on Location:
 *   POST [base]/Location/$generate-catchments (editor or admin): draft catchments for the
 *     facilities of a jurisdiction, answered as a batch-response Bundle: a summary
 *     OperationOutcome first (counts and warnings), then one entry per draft with its status
 *     (created, updated or unchanged) in response.outcome;
 *   GET [base]/Location/$catchment-check (public read): gaps, overlaps and facilities outside
 *     their catchment, as a Parameters resource or CSV (_format=csv).
 * Parameters come as query parameters or, for the POST, as a Parameters body. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_int.h"

/* The code system of a draft's status in $generate-catchments results. */
#define GEN_CS "https://profiles.mahali.health/fhir/CodeSystem/catchment-generation"
#define UCUM   "http://unitsofmeasure.org"

/* ---- parameters ------------------------------------------------------------------------- */

typedef struct op_params {
    const char *jurisdiction;
    const char *method;
    const char *radius;
    const char *drafts;
} op_params;

/* The text of a Parameters.parameter value (valueReference.reference, a string-like value or
 * a number's text), arena-owned; NULL if it has none of those. */
static const char *
param_value(web_req *r, const json_t *p)
{
    static const char *const keys[] = { "valueString", "valueCode", "valueId", "valueUri",
                                        "valueBoolean" };
    const json_t *v;
    if ((v = json_object_get(json_object_get(p, "valueReference"), "reference")) &&
        core_json_is_text(v))
        return core_arena_strdup(r->arena, json_string_value(v));
    if ((v = json_object_get(p, "valueDecimal")) || (v = json_object_get(p, "valueInteger")))
        return core_json_is_number(v) ? core_arena_strdup(r->arena, core_json_number_text(v))
                                      : NULL;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!(v = json_object_get(p, keys[i])))
            continue;
        if (json_is_boolean(v))
            return json_is_true(v) ? "true" : "false";
        return core_json_is_text(v) ? core_arena_strdup(r->arena, json_string_value(v)) : NULL;
    }
    return NULL;
}

/* Query parameters, then (POST) a Parameters body, whose values win. names: the accepted
 * parameter names, NULL-terminated. 0, or -1 after answering 400/413/415. */
static int
params_read(web_req *r, op_params *o, const char *const *names, const char *op)
{
    const char **slot[] = { &o->jurisdiction, &o->method, &o->radius, &o->drafts };
    static const char *const all[] = { "jurisdiction", "method", "radius", "drafts" };
    const char *te = mg_get_header(r->conn, "Transfer-Encoding");
    json_t *body, *list, *p;
    size_t len = 0, i;
    char *text;
    core_err err = CORE_ERR_INIT;

    memset(o, 0, sizeof(*o));
    for (const char *const *n = names; *n; n++)
        for (size_t k = 0; k < 4; k++)
            if (strcmp(*n, all[k]) == 0)
                *slot[k] = web_query(r, *n);
    /* a POST with neither Content-Length nor Transfer-Encoding has no body (RFC 9112 6.3) */
    if (strcmp(r->ri->request_method, "POST") != 0 || (r->ri->content_length <= 0 && !te))
        return 0;
    if (!mg_get_header(r->conn, "Content-Type")) {
        /* some clients send an empty chunked body with a bare POST: accept that only */
        char tmp[512];
        int k;
        size_t total = 0;
        while (total < sizeof(tmp) * 16 && (k = mg_read(r->conn, tmp, sizeof(tmp))) > 0)
            total += (size_t)k;
        if (total == 0)
            return 0;
        web_fail(r, 415, CORE_ISSUE_NOT_SUPPORTED,
                 "send the parameters of $%s as a Parameters resource (Content-Type "
                 "application/fhir+json) or as query parameters",
                 op);
        return -1;
    }
    if (!(text = web_read_body(r, &len, 0)))
        return -1;
    if (len == 0)
        return 0;
    {
        const char *ct = mg_get_header(r->conn, "Content-Type");
        body = ct && strstr(ct, "xml") ? reg_xml_parse(text, len, &err)
                                       : core_json_parse(text, len, &err);
    }
    if (!body) {
        web_send_error(r, &err);
        core_err_clear(&err);
        return -1;
    }
    core_arena_defer(r->arena, core_defer_json, body);
    if (!json_is_object(body) || !json_is_string(json_object_get(body, "resourceType")) ||
        strcmp(json_string_value(json_object_get(body, "resourceType")), "Parameters") != 0) {
        web_fail(r, 400, CORE_ISSUE_STRUCTURE,
                 "the body of $%s must be a Parameters resource (or send no body and use query "
                 "parameters)",
                 op);
        return -1;
    }
    list = json_object_get(body, "parameter");
    json_array_foreach (list, i, p) {
        const char *name = json_string_value(json_object_get(p, "name")), *value;
        size_t k;
        int known = 0;
        for (const char *const *n = names; name && *n; n++)
            known |= strcmp(*n, name) == 0;
        if (!known) {
            core_err_set_at(&err, 400, CORE_ISSUE_NOT_SUPPORTED,
                            core_arena_sprintf(r->arena, "Parameters.parameter[%zu].name", i),
                            "$%s has no parameter \"%.60s\"", op, name ? name : "");
            web_send_error(r, &err);
            core_err_clear(&err);
            return -1;
        }
        if (!(value = param_value(r, p))) {
            core_err_set_at(&err, 400, CORE_ISSUE_VALUE, name,
                            "%s: give the value as valueReference, valueString, valueCode, "
                            "valueDecimal or valueInteger",
                            name);
            web_send_error(r, &err);
            core_err_clear(&err);
            return -1;
        }
        for (k = 0; k < 4; k++)
            if (strcmp(name, all[k]) == 0)
                *slot[k] = value;
    }
    return 0;
}

/* jurisdiction=Location/id (or id) → id; 0, or -1 after answering 400. */
static int
jurisdiction_id(web_req *r, const char *value, char id[65])
{
    return web_location_param(r, "jurisdiction", value,
                              "jurisdiction is required: the Location whose facilities (partOf, "
                              "any depth) are concerned, e.g. jurisdiction=Location/sl-dist-bo",
                              id);
}

/* ---- small builders ----------------------------------------------------------------------- */

static json_t *
ref(const char *id)
{
    char buf[80];
    snprintf(buf, sizeof(buf), "Location/%s", id);
    return json_pack("{s:s}", "reference", buf);
}

/* A FHIR decimal written with `decimals` decimals. */
static json_t *
decimal(double v, int decimals)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "%.*f", decimals, v);
    return core_json_number(buf);
}

static json_t *
quantity(double v, int decimals, const char *unit, const char *code)
{
    json_t *q = json_object();
    json_object_set_new(q, "value", decimal(v, decimals));
    json_object_set_new(q, "unit", json_string(unit));
    json_object_set_new(q, "system", json_string(UCUM));
    json_object_set_new(q, "code", json_string(code));
    return q;
}

/* One OperationOutcome issue; gen_code: a GEN_CS code for details, or NULL. msg may end in a
 * UTF-8 sequence cut by snprintf: it is shortened to the last whole character. */
static json_t *
issue(const char *severity, const char *code, const char *gen_code, const char *msg)
{
    json_t *i = json_pack("{s:s, s:s}", "severity", severity, "code", code), *text;
    size_t len = strlen(msg);
    while (!(text = json_stringn(msg, len)) && len > 0)
        len--;
    if (gen_code)
        json_object_set_new(i, "details",
                            json_pack("{s:[{s:s, s:s}], s:s}", "coding", "system", GEN_CS, "code",
                                      gen_code, "text", gen_code));
    json_object_set_new(i, "diagnostics", text);
    return i;
}

static const char *
status_text(web_req *r, int status)
{
    const char *t = mg_get_response_code_text(NULL, status);
    return core_arena_sprintf(r->arena, "%d %s", status, t ? t : "");
}

static void
fail_err(web_req *r, core_err *err)
{
    web_send_error(r, err);
    core_err_clear(err);
}

/* ---- $generate-catchments ------------------------------------------------------------------ */

/* 1 if d's facility id sorts before every id it shares its position with (strcmp order), so
 * that a group is reported once. */
static int
group_first(const reg_catchment_draft *d)
{
    const char *s = d->shared_with;
    while (s && *s) {
        size_t len = strcspn(s, ",");
        if (strncmp(d->facility, s, len) > 0 ||
            (strncmp(d->facility, s, len) == 0 && strlen(d->facility) >= len))
            return 0;
        s += len + (s[len] == ',');
    }
    return 1;
}

/* The warnings about draft d (its position shared, outside the boundary, none), appended to
 * issues; with once, a shared position is reported by the group's first facility only. */
static void
draft_warnings(
    web_req *r, json_t *issues, const reg_catchment_draft *d, const char *jid, int buffer, int once)
{
    char msg[1024];
    if (d->shared_with && (!once || group_first(d))) {
        const char *s = d->shared_with, *list = "";
        while (*s) {
            size_t len = strcspn(s, ",");
            list = core_arena_sprintf(r->arena, "%s%sLocation/%.*s", list, *list ? ", " : "",
                                      (int)len, s);
            s += len + (s[len] == ',');
        }
        snprintf(msg, sizeof(msg),
                 "Location/%s has exactly the same position as %.700s: they share one %s",
                 d->facility, list,
                 buffer ? "buffer (identical drafts)" : "Voronoi cell (identical drafts)");
        json_array_append_new(issues, issue("warning", "business-rule", "shared-position", msg));
    }
    if (strcmp(d->note, "outside-jurisdiction") == 0) {
        snprintf(msg, sizeof(msg),
                 d->status == REG_DRAFT_SKIPPED
                     ? "Location/%s: its position is outside the boundary of Location/%s and no "
                       "part of its catchment lies inside it: no draft"
                     : "Location/%s: its position is outside the boundary of Location/%s, so its "
                       "draft does not contain it",
                 d->facility, jid);
        json_array_append_new(issues,
                              issue("warning", "business-rule", "outside-jurisdiction", msg));
    }
    if (strcmp(d->note, "no-area") == 0) {
        snprintf(msg, sizeof(msg),
                 "Location/%s: no part of its catchment lies inside the boundary of Location/%s: "
                 "no draft",
                 d->facility, jid);
        json_array_append_new(issues, issue("warning", "business-rule", "no-area", msg));
    }
    if (strcmp(d->note, "no-position") == 0) {
        snprintf(msg, sizeof(msg), "Location/%s (%.200s) has no position: no draft", d->facility,
                 d->facility_name ? d->facility_name : "no name");
        json_array_append_new(issues, issue("warning", "required", "no-position", msg));
    }
}

int
web_generate_catchments(web_req *r)
{
    static const char *const names[] = { "jurisdiction", "method", "radius", NULL };
    static const char *const status_code[] = { [REG_DRAFT_CREATED] = "created",
                                               [REG_DRAFT_UPDATED] = "updated",
                                               [REG_DRAFT_UNCHANGED] = "unchanged",
                                               [REG_DRAFT_SKIPPED] = "skipped",
                                               [REG_DRAFT_FAILED] = "failed" };
    const char *prefer = mg_get_header(r->conn, "Prefer");
    int minimal = prefer && strstr(prefer, "return=minimal");
    core_err err = CORE_ERR_INIT;
    reg_catchment_method method = REG_CATCHMENT_VORONOI;
    double radius = 5.0;
    reg_catchment_draft *d;
    reg_actor who;
    op_params o;
    char jid[65] = "", now[32], msg[512];
    size_t n, counts[5] = { 0 };
    json_t *out, *entries, *summary, *issues;

    if (params_read(r, &o, names, "generate-catchments") < 0)
        return 400;
    if (jurisdiction_id(r, o.jurisdiction, jid) < 0)
        return 400;
    if (o.method && strcmp(o.method, "buffer") == 0) {
        method = REG_CATCHMENT_BUFFER;
    } else if (o.method && strcmp(o.method, "voronoi") != 0) {
        core_err_set_at(&err, 400, CORE_ISSUE_VALUE, "method",
                        "method must be voronoi or buffer (got \"%.40s\")", o.method);
        fail_err(r, &err);
        return 400;
    }
    if (o.radius) {
        char *end;
        radius = strtod(o.radius, &end);
        if (end == o.radius || *end || !isfinite(radius)) {
            core_err_set_at(&err, 400, CORE_ISSUE_VALUE, "radius",
                            "radius must be a distance in km, e.g. 5 (got \"%.40s\")", o.radius);
            fail_err(r, &err);
            return 400;
        }
    }
    who.name = r->who.name[0] ? r->who.name : "anonymous";
    who.remote_addr = r->ri->remote_addr;
    who.repair_boundaries = 0;
    if (reg_catchments_generate(&d, &n, r->th->db, jid, method, radius, &who, &err) < 0) {
        int status = err.status ? err.status : 500;
        fail_err(r, &err);
        return status;
    }

    entries = json_array();
    issues = json_array();
    for (size_t i = 0; i < n; i++)
        counts[d[i].status]++;
    snprintf(msg, sizeof(msg),
             "Location/%s, method %s%s: %zu active facilities, %zu drafts written (%zu created, "
             "%zu updated, %zu unchanged), %zu without a draft, %zu failed",
             jid, method == REG_CATCHMENT_BUFFER ? "buffer" : "voronoi",
             method == REG_CATCHMENT_BUFFER ? core_arena_sprintf(r->arena, " (%g km)", radius) : "",
             n, counts[REG_DRAFT_CREATED] + counts[REG_DRAFT_UPDATED] + counts[REG_DRAFT_UNCHANGED],
             counts[REG_DRAFT_CREATED], counts[REG_DRAFT_UPDATED], counts[REG_DRAFT_UNCHANGED],
             counts[REG_DRAFT_SKIPPED], counts[REG_DRAFT_FAILED]);
    json_array_append_new(issues, issue("information", "informational", NULL, msg));
    if (o.radius && method == REG_CATCHMENT_VORONOI)
        json_array_append_new(issues, issue("warning", "informational", "radius-ignored",
                                            "radius applies to method buffer only; ignored"));
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object(), *resp = json_object(), *own = json_array();
        draft_warnings(r, issues, &d[i], jid, method == REG_CATCHMENT_BUFFER, 1);
        if (d[i].status == REG_DRAFT_SKIPPED) {
            json_decref(e);
            json_decref(resp);
            json_decref(own);
            continue;
        }
        if (d[i].status == REG_DRAFT_FAILED) {
            json_t *oo = web_outcome(&d[i].err);
            snprintf(msg, sizeof(msg), "the draft catchment of Location/%s was not written",
                     d[i].facility);
            json_array_append_new(json_object_get(oo, "issue"),
                                  issue("error", "processing", "failed", msg));
            json_object_set_new(
                resp, "status",
                json_string(status_text(r, d[i].err.status ? d[i].err.status : 500)));
            json_object_set_new(resp, "outcome", oo);
            snprintf(msg, sizeof(msg), "the draft catchment of Location/%s failed: %s",
                     d[i].facility, d[i].err.msg);
            json_array_append_new(issues, issue("error", "processing", "failed", msg));
        } else {
            const reg_write *w = &d[i].w;
            char etag[24];
            snprintf(etag, sizeof(etag), "W/\"%d\"", w->version);
            json_object_set_new(
                e, "fullUrl",
                json_string(core_arena_sprintf(r->arena, "%s/Location/%s", r->base, w->id)));
            if (!minimal && w->resource)
                json_object_set(e, "resource", w->resource);
            json_object_set_new(
                resp, "status",
                json_string(d[i].status == REG_DRAFT_CREATED ? "201 Created" : "200 OK"));
            json_object_set_new(resp, "location",
                                json_string(core_arena_sprintf(r->arena, "Location/%s/_history/%d",
                                                               w->id, w->version)));
            json_object_set_new(resp, "etag", json_string(etag));
            json_object_set_new(resp, "lastModified", json_string(w->last_updated));
            snprintf(msg, sizeof(msg),
                     "draft catchment of Location/%s (%s): %s, version %d, %.4f km2", d[i].facility,
                     d[i].facility_name ? d[i].facility_name : "no name", status_code[d[i].status],
                     w->version, d[i].area_km2);
            json_array_append_new(
                own, issue("information", "informational", status_code[d[i].status], msg));
            draft_warnings(r, own, &d[i], jid, method == REG_CATCHMENT_BUFFER, 0);
            json_object_set_new(
                resp, "outcome",
                json_pack("{s:s, s:o}", "resourceType", "OperationOutcome", "issue", own));
            own = NULL;
        }
        json_decref(own);
        json_object_set_new(e, "response", resp);
        json_array_append_new(entries, e);
    }
    summary = json_pack("{s:s, s:o}", "resourceType", "OperationOutcome", "issue", issues);
    json_array_insert_new(
        entries, 0,
        json_pack("{s:o, s:{s:s}}", "resource", summary, "response", "status", "200 OK"));
    core_time_instant(now);
    out = json_pack("{s:s, s:{s:s}, s:s, s:o}", "resourceType", "Bundle", "meta", "lastUpdated",
                    now, "type", "batch-response", "entry", entries);
    reg_catchment_drafts_free(d, n);
    web_send_json(r, 200, NULL, out);
    json_decref(out);
    return 200;
}

/* ---- $catchment-check ------------------------------------------------------------------- */

static const char *const checks[] = { "gap",          "overlap",           "facility-outside",
                                      "no-catchment", "facility-inactive", "not-a-facility" };
#define NCHECKS (sizeof(checks) / sizeof(checks[0]))

/* Why p is a problem, for people. */
static void
reason(char *buf, size_t cap, const reg_catchment_problem *p, const char *jid, int drafts)
{
    const char *what = drafts ? "draft catchment" : "catchment";
    if (strcmp(p->check, "gap") == 0)
        snprintf(buf, cap,
                 "%.4f km2 of Location/%s lies in no %s, e.g. at latitude %.7f, longitude %.7f",
                 p->area_km2, jid, what, p->lat, p->lon);
    else if (strcmp(p->check, "overlap") == 0)
        snprintf(buf, cap, "%ss Location/%s and Location/%s overlap on %.4f km2", what,
                 p->catchment, p->other, p->area_km2);
    else if (strcmp(p->check, "facility-outside") == 0)
        snprintf(buf, cap, "facility Location/%s is %.1f m outside its %s Location/%s", p->facility,
                 p->distance_m, what, p->catchment);
    else if (strcmp(p->check, "no-catchment") == 0)
        snprintf(buf, cap, "active facility Location/%s has no %s", p->facility, what);
    else if (strcmp(p->check, "facility-inactive") == 0)
        snprintf(buf, cap,
                 "%s Location/%s belongs to facility Location/%s, whose status is not "
                 "active",
                 what, p->catchment, p->facility);
    else
        snprintf(buf, cap, "%s Location/%s is partOf Location/%s, which is not an mCSD facility",
                 what, p->catchment, p->facility);
}

static void
send_csv(web_req *r, const reg_catchment_report *rep, const char *jid, int drafts)
{
    static const char head[] = "check,facility_id,catchment_id,other_catchment_id,area_km2,"
                               "distance_m,latitude,longitude,reason\n";
    size_t len = sizeof(head) - 1, cap = 4096;
    char *buf = malloc(cap), num[4][48], why[512];

    if (!buf)
        abort();
    memcpy(buf, head, len);
    for (size_t i = 0; i < rep->n; i++) {
        const reg_catchment_problem *p = &rep->problems[i];
        snprintf(num[0], sizeof(num[0]), isnan(p->area_km2) ? "" : "%.4f", p->area_km2);
        snprintf(num[1], sizeof(num[1]), isnan(p->distance_m) ? "" : "%.1f", p->distance_m);
        snprintf(num[2], sizeof(num[2]), isnan(p->lat) ? "" : "%.7f", p->lat);
        snprintf(num[3], sizeof(num[3]), isnan(p->lon) ? "" : "%.7f", p->lon);
        reason(why, sizeof(why), p, jid, drafts);
        web_csv_cell(&buf, &len, &cap, p->check, 0);
        web_csv_cell(&buf, &len, &cap, p->facility, 0);
        web_csv_cell(&buf, &len, &cap, p->catchment, 0);
        web_csv_cell(&buf, &len, &cap, p->other, 0);
        for (int k = 0; k < 4; k++)
            web_csv_cell(&buf, &len, &cap, num[k], 0);
        web_csv_cell(&buf, &len, &cap, why, 1);
    }
    web_send(r, 200, "text/csv; charset=utf-8",
             "Content-Disposition: attachment; filename=\"catchment-check.csv\"\r\n", buf, len);
    free(buf);
}

int
web_catchment_check(web_req *r)
{
    static const char *const names[] = { "jurisdiction", "drafts", NULL };
    const char *fmt = web_query(r, "_format");
    core_err err = CORE_ERR_INIT;
    reg_catchment_report rep;
    op_params o;
    char jid[65] = "", why[512];
    int drafts = 0;
    json_t *out, *params;

    if (params_read(r, &o, names, "catchment-check") < 0)
        return 400;
    if (jurisdiction_id(r, o.jurisdiction, jid) < 0)
        return 400;
    if (o.drafts && strcmp(o.drafts, "true") == 0) {
        drafts = 1;
    } else if (o.drafts && strcmp(o.drafts, "false") != 0) {
        core_err_set_at(&err, 400, CORE_ISSUE_VALUE, "drafts",
                        "drafts must be true or false (got \"%.40s\")", o.drafts);
        fail_err(r, &err);
        return 400;
    }
    if (reg_catchment_check(&rep, r->th->db, jid, drafts, &err) < 0) {
        int status = err.status ? err.status : 500;
        fail_err(r, &err);
        return status;
    }
    if (fmt && (strcmp(fmt, "csv") == 0 || strcmp(fmt, "text/csv") == 0)) {
        send_csv(r, &rep, jid, drafts);
        reg_catchment_report_clear(&rep);
        return 200;
    }

    params = json_array();
    json_array_append_new(params, web_param_part("jurisdiction", "valueReference", ref(jid)));
    json_array_append_new(
        params,
        web_param_part("type", "valueCode", json_string(drafts ? "catchment-draft" : "catchment")));
    json_array_append_new(
        params, web_param_part("facilities", "valueInteger", core_json_integer(rep.facilities)));
    json_array_append_new(
        params, web_param_part("catchments", "valueInteger", core_json_integer(rep.catchments)));
    json_array_append_new(
        params, web_param_part("area", "valueQuantity", quantity(rep.area_km2, 4, "km2", "km2")));
    for (size_t k = 0; k < NCHECKS; k++) {
        json_t *parts = json_array();
        long count = 0;
        double area = 0;
        for (size_t i = 0; i < rep.n; i++)
            if (strcmp(rep.problems[i].check, checks[k]) == 0) {
                count++;
                if (!isnan(rep.problems[i].area_km2))
                    area += rep.problems[i].area_km2;
            }
        json_array_append_new(parts, web_param_part("check", "valueCode", json_string(checks[k])));
        json_array_append_new(parts,
                              web_param_part("count", "valueInteger", core_json_integer(count)));
        if (k < 2) /* gap, overlap: their total area */
            json_array_append_new(
                parts, web_param_part("area", "valueQuantity", quantity(area, 4, "km2", "km2")));
        json_array_append_new(params, json_pack("{s:s, s:o}", "name", "count", "part", parts));
    }
    for (size_t i = 0; i < rep.n; i++) {
        const reg_catchment_problem *p = &rep.problems[i];
        json_t *parts = json_array();
        reason(why, sizeof(why), p, jid, drafts);
        json_array_append_new(parts, web_param_part("check", "valueCode", json_string(p->check)));
        json_array_append_new(parts, web_param_part("reason", "valueString", json_string(why)));
        if (p->facility[0])
            json_array_append_new(parts,
                                  web_param_part("facility", "valueReference", ref(p->facility)));
        if (p->catchment[0])
            json_array_append_new(parts,
                                  web_param_part("catchment", "valueReference", ref(p->catchment)));
        if (p->other[0])
            json_array_append_new(parts, web_param_part("other", "valueReference", ref(p->other)));
        if (!isnan(p->area_km2))
            json_array_append_new(parts, web_param_part("area", "valueQuantity",
                                                        quantity(p->area_km2, 4, "km2", "km2")));
        if (!isnan(p->distance_m))
            json_array_append_new(parts, web_param_part("distance", "valueQuantity",
                                                        quantity(p->distance_m, 1, "m", "m")));
        if (!isnan(p->lat) && !isnan(p->lon)) {
            json_array_append_new(parts,
                                  web_param_part("latitude", "valueDecimal", decimal(p->lat, 7)));
            json_array_append_new(parts,
                                  web_param_part("longitude", "valueDecimal", decimal(p->lon, 7)));
        }
        json_array_append_new(params, json_pack("{s:s, s:o}", "name", "problem", "part", parts));
    }
    out = json_pack("{s:s, s:o}", "resourceType", "Parameters", "parameter", params);
    reg_catchment_report_clear(&rep);
    web_send_json(r, 200, NULL, out);
    json_decref(out);
    return 200;
}
