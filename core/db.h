/* PostgreSQL access for every folder: one lazily opened connection per thread, statements
 * prepared on first use from per-folder tables, SQLSTATEs mapped to HTTP statuses, forward-only
 * migrations embedded in the binary, and the embedded cluster that `mahali` runs by default. */
#ifndef CORE_DB_H
#define CORE_DB_H

#include <libpq-fe.h>

#include "core/core.h"

/* A statement in a folder's table (registry/sql_stmts.c...). Identity is the pointer. */
typedef struct core_stmt {
    const char *name; /* unique prepared-statement name */
    const char *sql;  /* text with $1..$n, never built from user input */
    int nparams;
} core_stmt;

typedef struct core_db core_db;

/** A handle that connects on first use. conninfo: libpq URI or key=value string (copied).
 *  The handle is used by one thread at a time. Never NULL. */
core_db *core_db_create(const char *conninfo, const char *application_name);
/** Close the connection and free the handle. NULL is a no-op. */
void core_db_free(core_db *db);
/** The live connection, connecting or resetting once if needed. NULL with err 503 transient. */
PGconn *core_db_conn(core_db *db, core_err *err);
/** Run a prepared statement (preparing it on this connection if needed) with text params
 *  (NULL = SQL NULL). Returns the result (caller PQclear()s it) when the status is
 *  TUPLES_OK or COMMAND_OK; otherwise NULL with err mapped by core_db_err. */
PGresult *
core_db_exec(core_db *db, const core_stmt *stmt, const char *const *params, core_err *err);
/** Run a statement assembled at run time from fixed fragments (never from user text), with
 *  every parameter typed text (NULL = SQL NULL). prepare != 0: the text is prepared once per
 *  connection (named by a hash of the text, the least recently used deallocated beyond
 *  CORE_DB_SHAPES) and runs with the plan made for all values (the session is switched to
 *  plan_cache_mode = force_generic_plan between transactions): for statements whose best
 *  plan does not depend on the values (a lookup by identifier or id). prepare == 0: planned
 *  with the values, every time (plan_cache_mode = auto; for conditions whose selectivity
 *  varies with the value, e.g. a common code).
 *  Returns the TUPLES_OK/COMMAND_OK result or NULL with err, like core_db_exec. */
PGresult *core_db_query(core_db *db,
                        const char *sql,
                        int nparams,
                        const char *const *params,
                        int prepare,
                        core_err *err);
/** Send a statement as core_db_query with prepare == 0 does, without waiting for it: fetch its
 *  result with core_db_wait before anything else is run on db (one at a time per handle).
 *  Returns 0, or -1 with err (503 when the connection is down). */
int
core_db_send(core_db *db, const char *sql, int nparams, const char *const *params, core_err *err);
/** The result of the statement core_db_send sent, waiting for it; checked as core_db_query
 *  checks (NULL with err on failure). */
PGresult *core_db_wait(core_db *db, core_err *err);
#define CORE_DB_SHAPES     200
#define CORE_DB_MAX_PARAMS 256
/** Run fixed SQL text with no parameters (BEGIN, COMMIT, DDL). Returns 0 or -1 with err. */
int core_db_run(core_db *db, const char *sql, core_err *err);
/** Map a failed result (or connection failure when res is NULL) to err: 23505 → 409
 *  duplicate, 40001/40P01 → 409 conflict (retryable), 57014 → 503 timeout, 08xxx → 503
 *  transient, 22xxx → 400 value, else 500 exception. The SQL detail goes to the log only. */
int core_db_err(core_err *err, core_db *db, const PGresult *res, const char *what);
/** SQLSTATE of the last failed statement on this handle ("" if none). */
const char *core_db_sqlstate(const core_db *db);
/** Primary message of the last failed statement ("" if none). Only for errors the project's
 *  own SQL raises on purpose (SQLSTATE class MH), whose texts are written for clients. */
const char *core_db_errmsg(const core_db *db);

/** Apply the embedded migrations (sql/NNNN_*.sql) not yet recorded in schema_migrations, each
 *  in its own transaction, under an advisory lock. Refuses (500) when a recorded migration's
 *  checksum differs from the embedded file (migrations are never edited once landed).
 *  Returns the number applied, or -1 with err set. */
int core_migrate(core_db *db, core_err *err);
/** 1 if every embedded migration is recorded, 0 if not, -1 on error. */
int core_migrate_is_current(core_db *db, core_err *err);

/* ---- the embedded cluster ------------------------------------------------------------------
 * DIR/pg holds a private PostgreSQL + PostGIS cluster, listening on a Unix socket in DIR/run
 * only. As root, the cluster runs as the unprivileged user `postgres` (initdb refuses root). */
typedef struct core_cluster {
    char dir[1024];      /* the data folder (absolute) */
    char pgdata[1100];   /* dir/pg */
    char sockdir[1100];  /* dir/run, or a short path under /tmp when dir is too long */
    char bindir[512];    /* PostgreSQL server binaries */
    char conninfo[1400]; /* for the `mahali` database */
    int owned;           /* 1 if this process started the cluster and must stop it */
    int lock_fd;         /* flock on dir/serve.lock held by `serve`, or -1 */
} core_cluster;

/** Create the cluster on first use and start it unless it already runs (then owned = 0).
 *  serve != 0: take dir/serve.lock (409 if another `mahali serve` holds it) and adopt a
 *  cluster left running by a crashed process (owned = 1). Creates database `mahali`.
 *  Returns 0 or -1 with err (500 with a message saying what to install or fix). */
int core_cluster_start(core_cluster *c, const char *dir, int serve, core_err *err);
/** Stop the cluster if this process owns it; release the lock. Returns 0 or -1. */
int core_cluster_stop(core_cluster *c);
/** Fill c's paths for dir without starting anything; 1 if the cluster runs, 0 if not. */
int core_cluster_status(core_cluster *c, const char *dir);

#endif
