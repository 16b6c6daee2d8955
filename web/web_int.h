/* Shared inside web/ only. */
#ifndef WEB_WEB_INT_H
#define WEB_WEB_INT_H

#include <civetweb.h>

#include "web/web.h"

/* Per-worker-thread state, created by civetweb's init_thread callback. */
typedef struct web_thread {
    core_db *db;
} web_thread;

/* One request being answered. */
typedef struct web_req {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    const web_config *cfg;
    web_thread *th;
    core_arena *arena;
    const char *base;            /* FHIR base URL, arena-owned */
    int pretty;                  /* _pretty=true */
    int xml;                     /* answer in application/fhir+xml (Accept or _format) */
    reg_principal who;           /* role NONE when anonymous */
    int token_presented;         /* an Authorization header was given */
    struct web_imports *imports; /* the server's import queue (web/import.c) */
} web_req;

/** Send a complete response in one write (civetweb stalls on split writes). body may be NULL.
 *  extra_headers: "Name: value\r\n" lines or NULL. */
void web_send(web_req *r,
              int status,
              const char *content_type,
              const char *extra_headers,
              const char *body,
              size_t len);
/** Send json (borrowed) as application/fhir+json. */
void web_send_json(web_req *r, int status, const char *extra_headers, const json_t *json);
/** Render err as an OperationOutcome with err->status (500 if unset). Logs 5xx. */
void web_send_error(web_req *r, const core_err *err);
/** One-line helper: set a core_err and send it. */
void web_fail(web_req *r, int status, core_issue code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** An OperationOutcome for err: new reference. */
json_t *web_outcome(const core_err *err);

/* ---- HTTP client (web/remote.c): mahali import --server, mahali sync ---- */
typedef struct web_target {
    char host[256];
    int port;
    int tls;
    char base[512]; /* the path of the FHIR base, without a trailing '/' ("/fhir") */
} web_target;
/** http(s)://host[:port][/path] → t (the path defaults to /fhir). Returns 0 or -1 with err
 *  (400 naming option, "server" or "from"). */
int web_target_parse(web_target *t, const char *url, const char *option, core_err *err);
/** One HTTP exchange: the response body in *body (malloc'd, NUL-terminated), the status in
 *  *status, the Location header (if any) in location (or NULL). upload: a file to send as the
 *  body, or NULL. Returns 0, or -1 with err (503: unreachable, no answer). */
int web_exchange(int *status,
                 char **body,
                 char location[512],
                 const web_target *t,
                 const char *method,
                 const char *path,
                 const char *token,
                 FILE *upload,
                 long size,
                 core_err *err);
/** An error answer: the OperationOutcome's diagnostics (and expression) as err; returns -1. */
int web_http_error(core_err *err, int status, const char *body);

/* ---- privacy (web/privacy.c) ---- */
/** Does r's caller see a reduced Practitioner in answers about type t (-1: any type)? */
int web_redacts(const web_req *r, int t);
/** Reduce res (a Practitioner) to what r's caller may see; other resources untouched. */
void web_redact(const web_req *r, json_t *res);
/** web_redact on res, or on every entry of a Bundle (a search answered inside a batch);
 *  returns how many health-worker resources it holds. */
long web_redact_all(const web_req *r, json_t *res);
/** Before a bulk read that may return personal resources: 0 to go on, or -1 after answering
 *  429 (the token's per-minute allowance is spent). */
int web_personal_throttle(web_req *r);
/** Count n personal resources returned to r's token. */
void web_personal_count(web_req *r, long n);
void web_count_personal(web_req *r, const reg_history_entry *e, int n);

/** Value of query parameter name (decoded, arena-owned), or NULL. */
const char *web_query(web_req *r, const char *name);
/** Read the request body into the arena (NUL-terminated); form: expect
 *  application/x-www-form-urlencoded instead of FHIR JSON. NULL after answering (413, 415). */
char *web_read_body(web_req *r, size_t *len_out, int form);
/** Page size from _count: default 50, clamped to 500; -1 after answering 400. */
int web_page_count(web_req *r);
/** An operation's Location parameter (partof=, jurisdiction=): "Location/id" or "id" into id
 *  ("" when value is absent or empty and not required). Returns 0, or -1 after answering 400
 *  naming the parameter (required and absent: `required_msg`; not a Location reference). */
int web_location_param(
    web_req *r, const char *name, const char *value, const char *required_msg, char id[65]);
/** A Parameters part {"name": name, key: value} (value is stolen). */
json_t *web_param_part(const char *name, const char *key, json_t *value);
/** GET /fhir/Location/$data-quality. Returns the status. */
int web_data_quality(web_req *r);
/** Append s (NULL = empty) to the CSV text *buf (*len used of *cap, grown with realloc) as one
 *  quoted cell, quotes doubled, a leading = + - @ tab or CR neutralised with an apostrophe (so
 *  a spreadsheet cannot run it as a formula); last: end the row, else add a comma. */
void web_csv_cell(char **buf, size_t *len, size_t *cap, const char *s, int last);
/** POST /fhir/Location/$generate-catchments. Returns the status. */
int web_generate_catchments(web_req *r);
/** GET /fhir/Location/$catchment-check. Returns the status. */
int web_catchment_check(web_req *r);
/** GET /fhir/Location/$boundaries: simplified boundaries as GeoJSON for maps. Returns the status.
 */
int web_map_layer(web_req *r);
/** GET /fhir/Location/$export-mfl: the master facility list streamed as CSV, GeoJSON, FHIR
 *  NDJSON or DHIS2 JSON (web/export.c). Returns the status. */
int web_export_mfl(web_req *r);
/** GET /fhir/Location/{id}/$staffing and /fhir/Organization/{id}/$staffing: active postings
 *  counted by role, as Parameters (web/staffing.c). The caller has checked access (token).
 *  Returns the status. */
int web_staffing(web_req *r, reg_type t, const char *id);
/** Search type t (GET, or POST _search with a form body when post). Returns the status. */
int web_search(web_req *r, reg_type t, int post);

/* The background imports of one server (web/import.c). */
typedef struct web_imports web_imports;
/** Create the import queue and start its worker thread; call before mg_start (reads
 *  MAHALI_IMPORT_MAX_BYTES and TMPDIR). cfg: borrowed for the server's life. Never NULL. */
web_imports *web_imports_create(const web_config *cfg);
/** Stop: the running import stops before its next chunk, queued ones are dropped, every job's
 *  temporary files are deleted. Call after mg_stop (no request may use im). NULL: no-op. */
void web_imports_free(web_imports *im);
/** [base]/$import (POST: upload and queue an import) and [base]/$import/{job}[/report.csv]
 *  (GET: the job's status and report); admin only. seg[0] is "$import". Returns the status. */
int web_import(web_req *r, int nseg, char **seg);

/** The FHIR API: handles everything under /fhir. */
int web_fhir_handle(web_req *r);
/** The CapabilityStatement: new reference. */
json_t *web_capability(const web_req *r);

/** Format a FHIR instant ("2026-11-21T16:23:13.123Z") as an HTTP-date. */
void web_http_date(const char *instant, char out[40]);

#endif
