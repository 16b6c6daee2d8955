/* civetweb set-up: worker threads each get a web_thread holding their own lazily opened
 * database connection; every request gets an arena destroyed on every exit path; responses go
 * out in one write with TCP_NODELAY (split writes stall ~40 ms per keep-alive request). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_int.h"

struct web_server {
    struct mg_context *ctx;
    web_config cfg;
    int port;
    web_imports *imports; /* POST /fhir/$import jobs and their worker thread */
};

static void *
thread_init(const struct mg_context *ctx, int thread_type)
{
    web_server *s = mg_get_user_data(ctx);
    web_thread *th;

    if (thread_type != 1) /* 1 = worker thread */
        return NULL;
    th = calloc(1, sizeof(*th));
    if (!th)
        abort();
    th->db = core_db_create(s->cfg.conninfo, "mahali");
    return th;
}

static void
thread_exit(const struct mg_context *ctx, int thread_type, void *user)
{
    web_thread *th = user;
    (void)ctx;
    if (thread_type != 1 || !th)
        return;
    reg_thread_cleanup();
    core_db_free(th->db);
    free(th);
}

static int
log_message(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    core_log(CORE_LOG_WARN, "http: %s", message);
    return 1;
}

/* Build the request context; returns 0, or -1 after answering (a bad request line). */
static void
req_init(web_req *r, struct mg_connection *conn)
{
    web_server *s = mg_get_user_data(mg_get_context(conn));
    memset(r, 0, sizeof(*r));
    r->conn = conn;
    r->ri = mg_get_request_info(conn);
    r->cfg = &s->cfg;
    r->th = mg_get_thread_pointer(conn);
    r->arena = core_arena_create();
    r->imports = s->imports;
}

static int
handle_healthz(struct mg_connection *conn, void *cbdata)
{
    web_req r;
    (void)cbdata;
    req_init(&r, conn);
    web_send(&r, 200, "text/plain; charset=utf-8", NULL, "ok\n", 3);
    core_arena_destroy(r.arena);
    return 200;
}

static int
handle_readyz(struct mg_connection *conn, void *cbdata)
{
    web_req r;
    core_err err = CORE_ERR_INIT;
    int ok;
    (void)cbdata;
    req_init(&r, conn);
    ok = r.th ? core_migrate_is_current(r.th->db, &err) : -1;
    if (ok == 1)
        web_send(&r, 200, "text/plain; charset=utf-8", NULL, "ready\n", 6);
    else
        web_send(&r, 503, "text/plain; charset=utf-8", "Retry-After: 5\r\n",
                 ok == 0 ? "database not migrated\n" : "database not reachable\n",
                 ok == 0 ? 22 : 23);
    core_err_clear(&err);
    core_arena_destroy(r.arena);
    return ok == 1 ? 200 : 503;
}

static int
handle_fhir(struct mg_connection *conn, void *cbdata)
{
    web_req r;
    int status;
    (void)cbdata;
    req_init(&r, conn);
    status = web_fhir_handle(&r);
    core_arena_destroy(r.arena);
    return status;
}

static int
handle_other(struct mg_connection *conn, void *cbdata)
{
    web_req r;
    (void)cbdata;
    req_init(&r, conn);
    if (strcmp(r.ri->local_uri, "/") == 0) {
        const char *to = "Location: /fhir/metadata\r\n";
        web_send(&r, 302, "text/plain; charset=utf-8", to, "see /fhir/metadata\n", 19);
    } else {
        web_fail(&r, 404, CORE_ISSUE_NOT_FOUND, "nothing is served at \"%.200s\"", r.ri->local_uri);
    }
    core_arena_destroy(r.arena);
    return 404;
}

web_server *
web_server_start(const web_config *cfg, core_err *err)
{
    web_server *s = calloc(1, sizeof(*s));
    struct mg_callbacks cb;
    struct mg_server_port ports[4];
    char threads[16], timeout[16];
    const char *options[32];
    int n = 0;

    if (!s)
        abort();
    s->cfg = *cfg;
    snprintf(threads, sizeof(threads), "%d", cfg->num_threads > 0 ? cfg->num_threads : 16);
    snprintf(timeout, sizeof(timeout), "%d", 30000);
    options[n++] = "listening_ports";
    options[n++] = cfg->listen;
    options[n++] = "num_threads";
    options[n++] = threads;
    options[n++] = "tcp_nodelay";
    options[n++] = "1";
    options[n++] = "enable_keep_alive";
    options[n++] = "yes";
    options[n++] = "request_timeout_ms";
    options[n++] = timeout;
    /* keep_alive_timeout_ms stays at civetweb's 500 ms: a worker thread waits on each idle
     * keep-alive connection, so a longer wait would hold threads from queued clients */
    /* a burst of new connections must not overflow the accept queue (a dropped SYN costs
     * the client a 1 s retransmission) */
    options[n++] = "listen_backlog";
    options[n++] = "256";
    options[n++] = "enable_directory_listing";
    options[n++] = "no";
    options[n++] = "max_request_size";
    options[n++] = "16384";
    options[n] = NULL;

    memset(&cb, 0, sizeof(cb));
    cb.init_thread = thread_init;
    cb.exit_thread = thread_exit;
    cb.log_message = log_message;
    s->imports = web_imports_create(&s->cfg);
    s->ctx = mg_start(&cb, s, options);
    if (!s->ctx) {
        web_imports_free(s->imports);
        free(s);
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION,
                            "cannot listen on \"%s\" (address in use or not valid)", cfg->listen),
               NULL;
    }
    mg_set_request_handler(s->ctx, "/healthz$", handle_healthz, NULL);
    mg_set_request_handler(s->ctx, "/readyz$", handle_readyz, NULL);
    mg_set_request_handler(s->ctx, "/fhir", handle_fhir, NULL);
    mg_set_request_handler(s->ctx, "/", handle_other, NULL);
    memset(ports, 0, sizeof(ports));
    if (mg_get_server_ports(s->ctx, 4, ports) > 0)
        s->port = ports[0].port;
    return s;
}

int
web_server_port(const web_server *s)
{
    return s->port;
}

void
web_server_stop(web_server *s)
{
    if (!s)
        return;
    mg_stop(s->ctx);
    web_imports_free(s->imports);
    free(s);
}
