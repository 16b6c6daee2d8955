/* GET [base]/Location/$export-mfl?format=csv|geojson|ndjson|dhis2[&jurisdiction=Location/id]
 * [&type=token][&status=code]: the master facility list as a download (importers/export.c),
 * streamed with chunked transfer encoding as the database is read page by page, so neither
 * side holds the whole list. Public like Location reads. Errors found before the first byte
 * (bad parameters, unknown jurisdiction, database down) are an OperationOutcome; a failure
 * after it ends the response without its last chunk, which a client sees as truncated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "importers/importers.h"
#include "web/web_int.h"

typedef struct stream {
    web_req *r;
    imp_export_format fmt;
    int started; /* the headers are out */
    int chunked; /* HTTP/1.1: chunks; HTTP/1.0: the body until the connection closes */
    int gone;    /* a write failed: the client went away */
} stream;

/* One piece of the body; the first one carries the headers, in the same write (civetweb
 * stalls on a response written as headers then body). */
static int
stream_write(const char *buf, size_t len, void *payload)
{
    stream *s = payload;
    char head[512];
    int n = 0;
    size_t total;
    char *out;
    int rc;

    if (!len)
        return 0;
    if (!s->started) {
        n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\n"
                     "Content-Type: %s\r\n"
                     "Content-Disposition: attachment; filename=\"%s\"\r\n"
                     "%s"
                     "X-Content-Type-Options: nosniff\r\n"
                     "Cache-Control: no-store\r\n"
                     "\r\n",
                     imp_export_media_type(s->fmt), imp_export_file_name(s->fmt),
                     s->chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
        s->started = 1;
    }
    if (s->chunked)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "%zx\r\n", len);
    total = (size_t)n + len + (s->chunked ? 2 : 0);
    if (!(out = malloc(total)))
        abort();
    memcpy(out, head, (size_t)n);
    memcpy(out + n, buf, len);
    if (s->chunked)
        memcpy(out + n + len, "\r\n", 2);
    rc = mg_write(s->r->conn, out, total) == (int)total ? 0 : -1;
    free(out);
    s->gone = rc < 0;
    return rc;
}

int
web_export_mfl(web_req *r)
{
    core_err err = CORE_ERR_INIT;
    const char *format = web_query(r, "format"), *version = r->ri->http_version;
    reg_export_filter f = REG_EXPORT_FILTER_INIT;
    char jur[65] = "";
    stream s;
    int fmt, status;

    if (!format || !*format) {
        core_err_set_at(&err, 400, CORE_ISSUE_REQUIRED, "format",
                        "format is required: csv, geojson, ndjson or dhis2");
        goto fail;
    }
    if ((fmt = imp_export_format_find(format)) < 0) {
        core_err_set_at(&err, 400, CORE_ISSUE_VALUE, "format",
                        "format must be csv, geojson, ndjson or dhis2 (got \"%.40s\")", format);
        goto fail;
    }
    if (web_location_param(r, "jurisdiction", web_query(r, "jurisdiction"), NULL, jur) < 0)
        return 400;
    f.jurisdiction = jur[0] ? jur : NULL;
    f.type = web_query(r, "type");
    f.status = web_query(r, "status");
    s.r = r;
    s.fmt = (imp_export_format)fmt;
    s.started = 0;
    s.gone = 0;
    s.chunked = !version || strcmp(version, "1.0") != 0;
    if (imp_export(r->th->db, s.fmt, &f, stream_write, &s, &err) < 0) {
        if (s.started) {
            /* the status is out: end without the last chunk, so the client sees a truncated
             * body rather than a short list it would take for the whole */
            core_log(s.gone ? CORE_LOG_WARN : CORE_LOG_ERROR,
                     "GET %s: export stopped after the response began: %s", r->ri->local_uri,
                     s.gone ? "the client went away" : err.msg);
            core_err_clear(&err);
            return 500;
        }
        goto fail;
    }
    if (s.chunked && s.started)
        mg_write(r->conn, "0\r\n\r\n", 5);
    return 200;
fail:
    status = err.status ? err.status : 500;
    web_send_error(r, &err);
    core_err_clear(&err);
    return status;
}
