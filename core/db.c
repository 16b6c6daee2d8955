/* libpq access: a lazily opened connection per handle (one handle per thread), statements
 * prepared on first use, failures mapped to HTTP statuses. User data only ever travels as
 * parameters; statement texts come from fixed tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db.h"

#define MAX_PREPARED 128

/* A run-time statement prepared on the current connection (core_db_query). */
typedef struct shape {
    unsigned long long hash;
    int nparams;
    char *sql;
    unsigned long long used; /* LRU clock */
} shape;

struct core_db {
    shape shapes[CORE_DB_SHAPES];
    int nshapes;
    unsigned long long clock;
    int generic; /* the session runs with plan_cache_mode = force_generic_plan */
    char *conninfo;
    char *appname;
    PGconn *conn;
    const core_stmt *prepared[MAX_PREPARED]; /* prepared on the current connection */
    int nprepared;
    char sqlstate[6];
    char errmsg[256];
};

core_db *
core_db_create(const char *conninfo, const char *application_name)
{
    core_db *db = calloc(1, sizeof(*db));
    if (!db)
        abort();
    db->conninfo = strdup(conninfo ? conninfo : "");
    db->appname = strdup(application_name ? application_name : "mahali");
    if (!db->conninfo || !db->appname)
        abort();
    return db;
}

/* The connection is new: nothing is prepared on it. */
static void
shapes_forget(core_db *db)
{
    db->generic = 0;
    for (int i = 0; i < db->nshapes; i++)
        free(db->shapes[i].sql);
    db->nshapes = 0;
}

void
core_db_free(core_db *db)
{
    if (!db)
        return;
    shapes_forget(db);
    if (db->conn)
        PQfinish(db->conn);
    free(db->conninfo);
    free(db->appname);
    free(db);
}

/* Server notices (e.g. "already exists, skipping") are not for the user's terminal. */
static void
notice_to_log(void *arg, const char *message)
{
    (void)arg;
    core_log(CORE_LOG_DEBUG, "postgres: %s", message);
}

static PGconn *
connect_now(core_db *db)
{
    const char *keys[] = { "dbname", "application_name", "options", "connect_timeout", NULL };
    const char *vals[] = { db->conninfo, db->appname,
                           "-c statement_timeout=30000 -c lock_timeout=10000 "
                           "-c idle_in_transaction_session_timeout=60000",
                           "10", NULL };
    /* expand_dbname=1: the conninfo string (URI or key=value) fills in everything else */
    return PQconnectdbParams(keys, vals, 1);
}

PGconn *
core_db_conn(core_db *db, core_err *err)
{
    /* A connection the server closed (restart, failover, idle timeout) still reports
     * CONNECTION_OK until it is read from: PQconsumeInput notices the EOF without blocking,
     * so the reset happens here instead of failing this request. */
    if (db->conn && PQstatus(db->conn) == CONNECTION_OK && PQconsumeInput(db->conn) &&
        PQstatus(db->conn) == CONNECTION_OK)
        return db->conn;
    if (db->conn) {
        PQreset(db->conn);
        db->nprepared = 0;
        shapes_forget(db);
        if (PQstatus(db->conn) == CONNECTION_OK)
            return db->conn;
        PQfinish(db->conn);
        db->conn = NULL;
    }
    db->conn = connect_now(db);
    db->nprepared = 0;
    shapes_forget(db);
    if (!db->conn || PQstatus(db->conn) != CONNECTION_OK) {
        core_log(CORE_LOG_ERROR, "database connection failed: %s",
                 db->conn ? PQerrorMessage(db->conn) : "out of memory");
        if (db->conn) {
            PQfinish(db->conn);
            db->conn = NULL;
        }
        return core_err_set(err, 503, CORE_ISSUE_TRANSIENT, "the database is not reachable"), NULL;
    }
    PQsetNoticeProcessor(db->conn, notice_to_log, NULL);
    return db->conn;
}

const char *
core_db_sqlstate(const core_db *db)
{
    return db->sqlstate;
}

const char *
core_db_errmsg(const core_db *db)
{
    return db->errmsg;
}

int
core_db_err(core_err *err, core_db *db, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : (db->conn ? PQerrorMessage(db->conn) : "");

    core_strlcpy(db->sqlstate, state ? state : "", sizeof(db->sqlstate));
    {
        const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        core_strlcpy(db->errmsg, primary ? primary : "", sizeof(db->errmsg));
    }
    core_log(CORE_LOG_ERROR, "sql %s failed: %s %s", what ? what : "", state ? state : "-",
             msg ? msg : "");
    if (!state) {
        if (!db->conn || PQstatus(db->conn) != CONNECTION_OK)
            return core_err_set(err, 503, CORE_ISSUE_TRANSIENT, "the database is not reachable");
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "internal database error");
    }
    if (strcmp(state, "23505") == 0)
        return core_err_set(err, 409, CORE_ISSUE_DUPLICATE,
                            "a resource with this key exists already");
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return core_err_set(err, 409, CORE_ISSUE_CONFLICT,
                            "the change conflicted with a concurrent change; retry it");
    if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0)
        return core_err_set(err, 503, CORE_ISSUE_TIMEOUT, "the database took too long to answer");
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
        strncmp(state, "53", 2) == 0)
        return core_err_set(err, 503, CORE_ISSUE_TRANSIENT, "the database is not available");
    if (strncmp(state, "22", 2) == 0)
        return core_err_set(err, 400, CORE_ISSUE_VALUE, "a value is out of the accepted range");
    return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "internal database error");
}

/* res if it holds rows or a command's success, else NULL with err (res cleared). */
static PGresult *
checked(core_db *db, PGresult *res, const char *what, core_err *err)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return res;
    core_db_err(err, db, res, what);
    PQclear(res);
    return NULL;
}

/* Switch the session's plan mode (generic: force_generic_plan, else auto) if it differs. Only
 * between transactions: a SET inside one would be undone by its rollback; inside one,
 * statements run in the mode it began with, which changes their speed, not their results. */
static int
plan_mode(core_db *db, PGconn *conn, int generic, core_err *err)
{
    PGresult *res;
    if (generic == db->generic || PQtransactionStatus(conn) != PQTRANS_IDLE)
        return 0;
    res = PQexec(conn, generic ? "SET plan_cache_mode = force_generic_plan"
                               : "SET plan_cache_mode = auto");
    if (!(res = checked(db, res, "plan mode", err)))
        return -1;
    PQclear(res);
    db->generic = generic;
    return 0;
}

static int
is_prepared(core_db *db, const core_stmt *s)
{
    for (int i = 0; i < db->nprepared; i++)
        if (db->prepared[i] == s)
            return 1;
    return 0;
}

PGresult *
core_db_exec(core_db *db, const core_stmt *stmt, const char *const *params, core_err *err)
{
    PGconn *conn;
    PGresult *res;

    db->sqlstate[0] = '\0';
    db->errmsg[0] = '\0';
    if (!(conn = core_db_conn(db, err)))
        return NULL;
    if (!is_prepared(db, stmt)) {
        res = PQprepare(conn, stmt->name, stmt->sql, stmt->nparams, NULL);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
            core_db_err(err, db, res, stmt->name);
            PQclear(res);
            return NULL;
        }
        PQclear(res);
        if (db->nprepared < MAX_PREPARED)
            db->prepared[db->nprepared++] = stmt;
    }
    return checked(db, PQexecPrepared(conn, stmt->name, stmt->nparams, params, NULL, NULL, 0),
                   stmt->name, err);
}

int
core_db_run(core_db *db, const char *sql, core_err *err)
{
    PGconn *conn;
    PGresult *res;

    db->sqlstate[0] = '\0';
    if (!(conn = core_db_conn(db, err)))
        return -1;
    /* a transaction runs in the default plan mode: inside it the mode cannot be switched
     * (core_db_query), and a generic plan for a condition whose selectivity depends on its
     * value (a conditional write's criteria) can be ruinous */
    if (strncmp(sql, "BEGIN", 5) == 0 && plan_mode(db, conn, 0, err) < 0)
        return -1;
    if (!(res = checked(db, PQexec(conn, sql), "run", err)))
        return -1;
    PQclear(res);
    return 0;
}

/* FNV-1a, 64 bits: names a statement; the stored text settles collisions. */
static unsigned long long
text_hash(const char *s, int nparams)
{
    unsigned long long h = 1469598103934665603ULL ^ (unsigned long long)nparams;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void
shape_name(char *out, size_t n, unsigned long long h)
{
    snprintf(out, n, "q%016llx", h);
}

/* The slot of sql on this connection, preparing it (and evicting the least recently used
 * shape) if needed; NULL with err when PostgreSQL refuses it. */
static shape *
shape_get(core_db *db, PGconn *conn, const char *sql, int nparams, core_err *err)
{
    unsigned long long h = text_hash(sql, nparams);
    char name[24];
    shape *s = NULL;
    PGresult *res;
    Oid types[CORE_DB_MAX_PARAMS];

    for (int i = 0; i < db->nshapes; i++)
        if (db->shapes[i].hash == h && db->shapes[i].nparams == nparams &&
            strcmp(db->shapes[i].sql, sql) == 0) {
            db->shapes[i].used = ++db->clock;
            return &db->shapes[i];
        }
    if (db->nshapes == CORE_DB_SHAPES) {
        int old = 0;
        for (int i = 1; i < db->nshapes; i++)
            if (db->shapes[i].used < db->shapes[old].used)
                old = i;
        s = &db->shapes[old];
        shape_name(name, sizeof(name), s->hash);
        {
            char dealloc[48];
            snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", name);
            PQclear(PQexec(conn, dealloc));
        }
        free(s->sql);
        s->sql = NULL;
        *s = db->shapes[--db->nshapes];
    }
    /* a hash shared by two texts: the second runs unnamed (prepared for this call only) */
    for (int i = 0; i < db->nshapes; i++)
        if (db->shapes[i].hash == h)
            h = 0;
    for (int i = 0; i < nparams; i++)
        types[i] = 25; /* text: the fragments cast to what each value is compared as */
    if (h)
        shape_name(name, sizeof(name), h);
    else
        name[0] = '\0';
    res = PQprepare(conn, name, sql, nparams, types);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        core_db_err(err, db, res, "prepare");
        PQclear(res);
        return NULL;
    }
    PQclear(res);
    s = &db->shapes[db->nshapes];
    s->hash = h;
    s->nparams = nparams;
    s->used = ++db->clock;
    if (!h) /* not kept: the caller runs the unnamed statement now */
        return s;
    if (!(s->sql = strdup(sql)))
        abort();
    db->nshapes++;
    return s;
}

PGresult *
core_db_query(core_db *db,
              const char *sql,
              int nparams,
              const char *const *params,
              int prepare,
              core_err *err)
{
    PGconn *conn;
    PGresult *res = NULL;

    db->sqlstate[0] = '\0';
    db->errmsg[0] = '\0';
    if (nparams < 0 || nparams > CORE_DB_MAX_PARAMS)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "too many statement parameters"), NULL;
    if (!(conn = core_db_conn(db, err)) || plan_mode(db, conn, prepare, err) < 0)
        return NULL;
    if (!prepare) {
        Oid types[CORE_DB_MAX_PARAMS];
        for (int i = 0; i < nparams; i++)
            types[i] = 25; /* text */
        return checked(db, PQexecParams(conn, sql, nparams, types, params, NULL, NULL, 0), "query",
                       err);
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        shape *s;
        char name[24] = "";
        const char *state;
        if (!(s = shape_get(db, conn, sql, nparams, err)))
            return NULL;
        if (s->hash)
            shape_name(name, sizeof(name), s->hash);
        res = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
        state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        /* a statement invalidated by DDL (a migration, a reindex) or lost with the session:
         * forget what was prepared and prepare it again, once */
        if (attempt || !state || (strcmp(state, "26000") != 0 && strcmp(state, "0A000") != 0))
            break;
        PQclear(res);
        shapes_forget(db);
        db->nprepared = 0;
        PQclear(PQexec(conn, "DEALLOCATE ALL"));
    }
    return checked(db, res, "query", err);
}

int
core_db_send(core_db *db, const char *sql, int nparams, const char *const *params, core_err *err)
{
    PGconn *conn;
    Oid types[CORE_DB_MAX_PARAMS];

    db->sqlstate[0] = '\0';
    db->errmsg[0] = '\0';
    if (nparams < 0 || nparams > CORE_DB_MAX_PARAMS)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "too many statement parameters");
    if (!(conn = core_db_conn(db, err)) || plan_mode(db, conn, 0, err) < 0)
        return -1;
    for (int i = 0; i < nparams; i++)
        types[i] = 25; /* text */
    if (!PQsendQueryParams(conn, sql, nparams, types, params, NULL, NULL, 0))
        return core_db_err(err, db, NULL, "send");
    return 0;
}

PGresult *
core_db_wait(core_db *db, core_err *err)
{
    PGconn *conn = db->conn; /* not core_db_conn: a reset would lose the statement in flight */
    PGresult *last = NULL, *r;
    if (!conn)
        return core_err_set(err, 503, CORE_ISSUE_TRANSIENT, "the database is not reachable"), NULL;
    /* the last result is the statement's; earlier ones (none for one statement) are dropped */
    while ((r = PQgetResult(conn))) {
        PQclear(last);
        last = r;
    }
    return checked(db, last, "query", err);
}
