/* Writing responses: headers and body in one write, OperationOutcome rendering of a core_err
 * (the only place errors become HTTP), HTTP dates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_int.h"

static const char *
reason(int status)
{
    const char *s = mg_get_response_code_text(NULL, status);
    return s ? s : "";
}

void
web_send(web_req *r,
         int status,
         const char *content_type,
         const char *extra_headers,
         const char *body,
         size_t len)
{
    char head[2048];
    int n;
    char *buf;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Length: %zu\r\n"
                 "%s%s%s"
                 "X-Content-Type-Options: nosniff\r\n"
                 "Cache-Control: no-store\r\n"
                 "%s"
                 "\r\n",
                 status, reason(status), body ? len : 0, content_type ? "Content-Type: " : "",
                 content_type ? content_type : "", content_type ? "\r\n" : "",
                 extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    buf = core_arena_alloc(r->arena, (size_t)n + (body ? len : 0));
    memcpy(buf, head, (size_t)n);
    if (body && len)
        memcpy(buf + n, body, len);
    mg_write(r->conn, buf, (size_t)n + (body ? len : 0));
}

void
web_send_json(web_req *r, int status, const char *extra_headers, const json_t *json)
{
    size_t len = 0;
    char *text;

    if (r->xml) {
        core_err err = CORE_ERR_INIT;
        text = reg_xml_dump(json, &len, &err);
        if (!text) {
            core_log(CORE_LOG_ERROR, "cannot write XML: %s", err.msg);
            core_err_clear(&err);
            web_send(r, 500, "text/plain; charset=utf-8", NULL, "cannot write XML\n", 17);
            return;
        }
        web_send(r, status, "application/fhir+xml; charset=utf-8", extra_headers, text, len);
        free(text);
        return;
    }
    text = r->pretty ? core_json_dump_pretty(json, 2, &len) : core_json_dump(json, &len);
    if (!text) {
        web_send(r, 500, "text/plain", NULL, "out of memory\n", 14);
        return;
    }
    web_send(r, status, "application/fhir+json; charset=utf-8", extra_headers, text, len);
    free(text);
}

static json_t *
issue(const char *severity, core_issue code, const char *msg, const char *expr)
{
    json_t *i = json_object();
    json_object_set_new(i, "severity", json_string(severity));
    json_object_set_new(i, "code", json_string(core_issue_code(code)));
    if (msg && *msg)
        json_object_set_new(i, "diagnostics", json_string(msg));
    if (expr && *expr)
        json_object_set_new(i, "expression", json_pack("[s]", expr));
    return i;
}

json_t *
web_outcome(const core_err *err)
{
    json_t *oo = json_object(), *issues = json_array();
    const core_issue_item *it;

    json_object_set_new(oo, "resourceType", json_string("OperationOutcome"));
    json_array_append_new(issues,
                          issue(err->status >= 400 || err->status == 0 ? "error" : "information",
                                err->code ? err->code : CORE_ISSUE_EXCEPTION, err->msg, err->expr));
    for (it = err->more; it; it = it->next)
        json_array_append_new(
            issues, issue(it->warning ? "warning" : "error", it->code, it->msg, it->expr));
    json_object_set_new(oo, "issue", issues);
    return oo;
}

void
web_send_error(web_req *r, const core_err *err)
{
    core_err e = *err;
    json_t *oo;
    const char *extra = NULL;

    if (e.status < 400) {
        e.status = 500;
        e.code = CORE_ISSUE_EXCEPTION;
    }
    if (e.status >= 500)
        core_log(CORE_LOG_ERROR, "%s %s -> %d %s", r->ri->request_method, r->ri->local_uri,
                 e.status, e.msg);
    if (e.status == 401)
        extra = "WWW-Authenticate: Bearer realm=\"mahali\"\r\n";
    else if (e.status == 503)
        extra = "Retry-After: 5\r\n";
    else if (e.status == 413)
        extra = "Connection: close\r\n";
    oo = web_outcome(&e);
    web_send_json(r, e.status, extra, oo);
    json_decref(oo);
}

void
web_fail(web_req *r, int status, core_issue code, const char *fmt, ...)
{
    core_err err = CORE_ERR_INIT;
    va_list ap;
    err.status = status;
    err.code = code;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
    va_end(ap);
    web_send_error(r, &err);
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static long
days_from_civil(int y, int m, int d)
{
    long era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void
web_http_date(const char *instant, char out[40])
{
    static const char *const wd[] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };
    static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    int y = 1970, m = 1, d = 1, hh = 0, mm = 0, ss = 0;
    long days;

    if (sscanf(instant, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &m, &d, &hh, &mm, &ss) < 3 || m < 1 ||
        m > 12)
        y = 1970, m = 1, d = 1;
    days = days_from_civil(y, m, d);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[((days % 7) + 7) % 7], d, mo[m - 1],
             y, hh, mm, ss);
}
