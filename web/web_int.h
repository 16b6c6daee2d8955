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
