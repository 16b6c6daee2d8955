/* web: the HTTP face of the registry. civetweb setup, FHIR REST rules (formats, ETag,
 * Prefer, paging, OperationOutcome), bearer-token access control and the ops endpoints
 * /healthz and /readyz. Writes no SQL: everything goes through registry/. */
#ifndef WEB_WEB_H
#define WEB_WEB_H

#include <signal.h>
#include <stdio.h>

#include "importers/importers.h"
#include "registry/registry.h"

/* Server settings, frozen before the server starts. Strings are borrowed for the server's life. */
typedef struct web_config {
    const char *listen;   /* "127.0.0.1:8080"; port 0 picks a free one */
    const char *conninfo; /* libpq connection string of the registry database */
    const char *base_url; /* public base of the FHIR API, or NULL: http://<Host>/fhir */
    int public_read;      /* 1: anonymous reads of facility-side resources are allowed */
    int num_threads;      /* civetweb workers (each holds one database connection) */
    size_t max_body;      /* request body cap in bytes */
    long
        personal_read_limit; /* health-worker resources per token and minute in bulk reads; 0 off */
    int feed_horizon_off;    /* 1: no safe horizon in the change feed (tests' negative control) */
} web_config;

#define WEB_CONFIG_INIT                                          \
    {                                                            \
        "127.0.0.1:8080", NULL, NULL, 1, 16, 16u << 20, 20000, 0 \
    }

typedef struct web_server web_server;

/** Start serving. Returns the server, or NULL with err set (port taken, bad listen value).
 *  cfg: copied by value; its strings must outlive the server. */
web_server *web_server_start(const web_config *cfg, core_err *err);
/** The port actually listened on (useful with port 0). */
int web_server_port(const web_server *s);
/** Stop serving and free the server. Waits for requests in flight. */
void web_server_stop(web_server *s);

/** `mahali import --server URL --token TOKEN`: upload o->file to the server at URL (the FHIR base,
 *  http:// or https://) as POST [base]/$import with o's options, poll the job until it ends,
 *  print progress to o->log, and write the job's report to o->report_file (JSON, and the CSV next
 *  to it). out: the report's counts. Returns 0 when the job ran (rows may have been rejected), or
 *  -1 with err: the server unreachable or refusing (its OperationOutcome's message), the job
 *  failed (the importer's message). */
int web_import_remote(
    imp_stats *out, const char *server, const char *token, const imp_options *o, core_err *err);

/* `mahali sync --from URL` (web/sync.c): mirror another mCSD Directory into this registry. */
typedef struct web_sync_options {
    const char *from;  /* the other Directory's FHIR base URL */
    const char *token; /* its bearer token, or NULL */
    const char *types; /* "Organization,Location", or NULL: the whole system feed */
    int follow;        /* keep polling every interval seconds until *stop */
    int interval;
    FILE *log; /* a summary line per poll that changed something, and each rejection */
    volatile sig_atomic_t *stop;
} web_sync_options;

typedef struct web_sync_stats {
    long seen, created, updated, deleted, unchanged, rejected, polls;
} web_sync_stats;

/** Pull the changes since this registry's cursor for o->from, apply them on db and move the
 *  cursor (sql/0009: sync_cursor); with o->follow, again every o->interval seconds until
 *  *o->stop. Returns 0 (rejected changes are counted and logged), or -1 with err: the source
 *  unreachable or refusing (401 without a token), the database failing. */
int web_sync(web_sync_stats *st, core_db *db, const web_sync_options *o, core_err *err);

#endif
