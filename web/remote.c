/* `mahali import --server URL --token TOKEN`: the same import run by a server (POST
 * [base]/$import, web/import.c) instead of against the database directly. The file is uploaded,
 * the job is polled until it ends, and its report is written where --report says, so the
 * command behaves as the local one does (progress, summary, report, exit status). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <civetweb.h>

#include "importers/importers.h"
#include "web/web_int.h"

int
web_target_parse(web_target *t, const char *url, const char *option, core_err *err)
{
    const char *p = url, *slash, *colon;
    memset(t, 0, sizeof(*t));
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
        t->port = 80;
    } else if (strncmp(p, "https://", 8) == 0) {
        p += 8;
        t->port = 443;
        t->tls = 1;
    } else {
        return core_err_set_at(err, 400, CORE_ISSUE_VALUE, option,
                               "--%s is the FHIR base URL, http://host:port/fhir", option);
    }
    slash = strchr(p, '/');
    if (!slash)
        slash = p + strlen(p);
    colon = memchr(p, ':', (size_t)(slash - p));
    size_t hl = (size_t)((colon ? colon : slash) - p);
    if (!hl || hl >= sizeof(t->host))
        return core_err_set_at(err, 400, CORE_ISSUE_VALUE, option, "--%s has no host", option);
    memcpy(t->host, p, hl);
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != slash || port < 1 || port > 65535)
            return core_err_set_at(err, 400, CORE_ISSUE_VALUE, option, "--%s: bad port", option);
        t->port = (int)port;
    }
    core_strlcpy(t->base, *slash ? slash : "/fhir", sizeof(t->base));
    size_t bl = strlen(t->base);
    while (bl > 1 && t->base[bl - 1] == '/')
        t->base[--bl] = '\0';
    return 0;
}

/* Percent-encoding of a query value. */
static void
qadd(char **q, size_t *len, size_t *cap, const char *name, const char *value)
{
    size_t need = strlen(name) + 3 * strlen(value) + 4;
    if (*len + need + 1 > *cap) {
        *cap = (*len + need + 1) * 2;
        if (!(*q = realloc(*q, *cap)))
            abort();
    }
    *len += (size_t)snprintf(*q + *len, *cap - *len, "%s%s=", *len ? "&" : "?", name);
    for (const unsigned char *s = (const unsigned char *)value; *s; s++) {
        if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '_' || *s == '.' || *s == '~')
            (*q)[(*len)++] = (char)*s;
        else
            *len += (size_t)snprintf(*q + *len, *cap - *len, "%%%02X", *s);
    }
    (*q)[*len] = '\0';
}

int
web_exchange(int *status,
             char **body,
             char location[512],
             const web_target *t,
             const char *method,
             const char *path,
             const char *token,
             FILE *upload,
             long size,
             core_err *err)
{
    char ebuf[256] = "", buf[65536];
    struct mg_connection *conn;
    const struct mg_response_info *ri;
    size_t len = 0, cap = 0;

    *body = NULL;
    if (location)
        location[0] = '\0';
    conn = mg_connect_client(t->host, t->port, t->tls, ebuf, sizeof(ebuf));
    if (!conn)
        return core_err_set(err, 503, CORE_ISSUE_TRANSIENT, "cannot reach %s:%d: %s", t->host,
                            t->port, ebuf);
    mg_printf(conn, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n", method, path, t->host, t->port);
    if (token && *token) /* none: public reads only */
        mg_printf(conn, "Authorization: Bearer %s\r\n", token);
    mg_printf(conn, "Accept: application/fhir+json\r\nConnection: close\r\n");
    if (upload) {
        mg_printf(conn, "Content-Type: application/octet-stream\r\nContent-Length: %ld\r\n\r\n",
                  size);
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), upload)) > 0)
            if (mg_write(conn, buf, n) <= 0) {
                mg_close_connection(conn);
                return core_err_set(err, 503, CORE_ISSUE_TRANSIENT,
                                    "the server closed the connection during the upload");
            }
    } else {
        mg_printf(conn, "\r\n");
    }
    if (mg_get_response(conn, ebuf, sizeof(ebuf), 600000) < 0) {
        mg_close_connection(conn);
        return core_err_set(err, 503, CORE_ISSUE_TRANSIENT, "no answer from the server: %s", ebuf);
    }
    ri = mg_get_response_info(conn);
    *status = ri->status_code;
    for (int i = 0; location && i < ri->num_headers; i++)
        if (strcasecmp(ri->http_headers[i].name, "Location") == 0)
            core_strlcpy(location, ri->http_headers[i].value, 512);
    for (;;) {
        int n = mg_read(conn, buf, sizeof(buf));
        if (n <= 0)
            break;
        if (len + (size_t)n + 1 > cap) {
            cap = (len + (size_t)n + 1) * 2;
            if (!(*body = realloc(*body, cap)))
                abort();
        }
        memcpy(*body + len, buf, (size_t)n);
        len += (size_t)n;
    }
    if (!*body && !(*body = calloc(1, 1)))
        abort();
    (*body)[len] = '\0';
    mg_close_connection(conn);
    return 0;
}

int
web_http_error(core_err *err, int status, const char *body)
{
    core_err e = CORE_ERR_INIT;
    json_t *oo = core_json_parse(body, strlen(body), &e), *issue;
    const char *d = NULL, *x = NULL;
    core_err_clear(&e);
    issue = json_array_get(json_object_get(oo, "issue"), 0);
    d = json_string_value(json_object_get(issue, "diagnostics"));
    x = json_string_value(json_array_get(json_object_get(issue, "expression"), 0));
    core_err_set_at(err, status, CORE_ISSUE_PROCESSING, x ? x : "", "the server answered %d: %s",
                    status, d ? d : "(no explanation)");
    json_decref(oo);
    return -1;
}

static long
num(const json_t *j)
{
    double v = 0;
    return core_json_number_get(j, &v) == 0 ? (long)v : 0;
}

int
web_import_remote(
    imp_stats *out, const char *server, const char *token, const imp_options *o, core_err *err)
{
    static const char *const formats[] = { "csv", "geojson", "dhis2", "fhir", "csd" };
    web_target t;
    char *q = NULL, *body = NULL, location[512], path[2048];
    size_t qlen = 0, qcap = 0;
    struct stat st;
    FILE *f = NULL;
    int status, rc = -1;
    const char *base = strrchr(o->file, '/') ? strrchr(o->file, '/') + 1 : o->file;

    memset(out, 0, sizeof(*out));
    if (web_target_parse(&t, server, "server", err) < 0)
        return -1;
    mg_init_library(t.tls ? MG_FEATURES_TLS : 0);
    qadd(&q, &qlen, &qcap, "format", formats[o->format]);
    qadd(&q, &qlen, &qcap, "filename", base);
    if (o->dry_run)
        qadd(&q, &qlen, &qcap, "dry_run", "true");
    if (o->deactivate_missing)
        qadd(&q, &qlen, &qcap, "deactivate_missing", "true");
    if (o->fix_swapped)
        qadd(&q, &qlen, &qcap, "fix_swapped", "true");
    if (o->encoding)
        qadd(&q, &qlen, &qcap, "encoding", o->encoding);
    if (o->crs)
        qadd(&q, &qlen, &qcap, "crs", o->crs);
    if (o->delimiter) {
        char d[4] = { o->delimiter, 0 };
        qadd(&q, &qlen, &qcap, "delimiter", o->delimiter == '\t' ? "tab" : d);
    }
    if (o->mapping_file) {
        FILE *mf = fopen(o->mapping_file, "rb");
        char *m;
        size_t mlen;
        if (!mf) {
            core_err_set_at(err, 404, CORE_ISSUE_NOT_FOUND, "mapping", "cannot open %s: %s",
                            o->mapping_file, strerror(errno));
            goto done;
        }
        m = malloc(65536 + 1);
        if (!m)
            abort();
        mlen = fread(m, 1, 65536, mf);
        int big = !feof(mf);
        fclose(mf);
        m[mlen] = '\0';
        if (big) {
            free(m);
            core_err_set_at(err, 413, CORE_ISSUE_TOO_LONG, "mapping", "the mapping is over 64 KB");
            goto done;
        }
        qadd(&q, &qlen, &qcap, "mapping", m);
        free(m);
    }
    if (!(f = fopen(o->file, "rb")) || fstat(fileno(f), &st) < 0) {
        core_err_set(err, 404, CORE_ISSUE_NOT_FOUND, "cannot open %s: %s", o->file,
                     strerror(errno));
        goto done;
    }
    snprintf(path, sizeof(path), "%s/$import%s", t.base, q);
    if (o->log && o->progress)
        fprintf(o->log, "mahali import: uploading %s (%ld bytes) to %s\n", base, (long)st.st_size,
                server);
    if (web_exchange(&status, &body, location, &t, "POST", path, token, f, (long)st.st_size, err) <
        0)
        goto done;
    if (status != 202) {
        web_http_error(err, status, body);
        goto done;
    }
    /* the job: poll until it ends */
    core_err e = CORE_ERR_INIT;
    json_t *job = core_json_parse(body, strlen(body), &e);
    const char *id = json_string_value(json_object_get(job, "job"));
    char jobpath[700];
    if (!id) {
        json_decref(job);
        core_err_clear(&e);
        core_err_set(err, 502, CORE_ISSUE_EXCEPTION, "the server's answer names no job");
        goto done;
    }
    snprintf(jobpath, sizeof(jobpath), "%s/$import/%s", t.base, id);
    json_decref(job);
    long last_rows = -1;
    for (;;) {
        free(body);
        body = NULL;
        if (web_exchange(&status, &body, NULL, &t, "GET", jobpath, token, NULL, 0, err) < 0)
            goto done;
        if (status != 200) {
            web_http_error(err, status, body);
            goto done;
        }
        job = core_json_parse(body, strlen(body), &e);
        if (!job) {
            core_err_clear(&e);
            core_err_set(err, 502, CORE_ISSUE_EXCEPTION, "the job status is not JSON");
            goto done;
        }
        const char *s = json_string_value(json_object_get(job, "status"));
        long rows = num(json_object_get(json_object_get(job, "progress"), "rows"));
        if (o->log && o->progress && rows != last_rows) {
            fprintf(o->log, "mahali import: %s, %ld rows\n", s ? s : "?", rows);
            last_rows = rows;
        }
        if (s && strcmp(s, "failed") == 0) {
            const char *m = json_string_value(json_object_get(job, "error"));
            core_err_set(err, 400, CORE_ISSUE_PROCESSING, "%s", m ? m : "the import failed");
            json_decref(job);
            goto done;
        }
        if (s && strcmp(s, "done") == 0) {
            json_t *r = json_object_get(job, "report");
            out->rows = num(json_object_get(r, "rows"));
            out->created = num(json_object_get(r, "created"));
            out->updated = num(json_object_get(r, "updated"));
            out->unchanged = num(json_object_get(r, "unchanged"));
            out->rejected = num(json_object_get(r, "rejected"));
            out->warnings = num(json_object_get(r, "warnings"));
            out->flagged = num(json_object_get(r, "flagged"));
            out->deactivated = num(json_object_get(r, "deactivated"));
            out->jurisdictions = num(json_object_get(r, "jurisdictions"));
            double secs = 0;
            core_json_number_get(json_object_get(r, "seconds"), &secs);
            out->seconds = secs;
            if (o->report_file) {
                FILE *rf = fopen(o->report_file, "w");
                char *text = core_json_dump(r, NULL);
                int bad = !rf || !text || fputs(text, rf) < 0 || fputc('\n', rf) < 0;
                if (rf)
                    bad |= fclose(rf) != 0;
                free(text);
                if (bad) {
                    core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "cannot write %s", o->report_file);
                    json_decref(job);
                    goto done;
                }
                /* the CSV of the same issues, next to it, as the local import writes it */
                size_t n = strlen(o->report_file);
                char *csv = n > 5 && strcmp(o->report_file + n - 5, ".json") == 0
                                ? core_sprintf("%.*s.csv", (int)(n - 5), o->report_file)
                                : core_sprintf("%s.csv", o->report_file);
                char csvpath[760];
                free(body);
                body = NULL;
                snprintf(csvpath, sizeof(csvpath), "%s/report.csv", jobpath);
                if (web_exchange(&status, &body, NULL, &t, "GET", csvpath, token, NULL, 0, err) ==
                        0 &&
                    status == 200) {
                    FILE *cf = fopen(csv, "w");
                    if (cf) {
                        fputs(body, cf);
                        fclose(cf);
                    }
                }
                core_err_clear(err);
                if (o->log)
                    fprintf(o->log, "mahali import: report written to %s and %s\n", o->report_file,
                            csv);
                free(csv);
            }
            json_decref(job);
            rc = 0;
            goto done;
        }
        json_decref(job);
        sleep(1);
    }
done:
    if (f)
        fclose(f);
    free(q);
    free(body);
    return rc;
}
