/* mahali: the command-line entry point. Subcommands serve, token, migrate and db share one
 * way of reaching the database: --database URL (or MAHALI_DATABASE_URL) for an external
 * PostgreSQL, otherwise the embedded cluster in --data DIR, connected to while another mahali
 * runs it, or started for the command's own use and stopped afterwards. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <civetweb.h>

#include "geo/geo.h"
#include "importers/importers.h"
#include "web/web.h"

typedef struct opts {
    const char *listen;
    const char *data;
    const char *database;
    const char *role;
    const char *name;
    const char *base_url;
    const char *mapping, *report, *encoding, *delimiter, *crs, *chunk, *actor, *server, *token;
    const char *from, *types, *interval;
    int demo, follow;
    int help;
    int dry_run, deactivate_missing, resume, fix_swapped, quiet;
} opts;

static void
usage(FILE *f)
{
    fputs(
        "mahali " MAHALI_VERSION " - national registry of health facilities and health workers\n"
        "\n"
        "usage: mahali COMMAND [options]\n"
        "\n"
        "commands:\n"
        "  serve [--listen HOST:PORT] [--data DIR] [--database URL] [--demo]\n"
        "                      serve the FHIR API (default 127.0.0.1:8080, FHIR base /fhir)\n"
        "  token create --role reader|hr|editor|admin [--name TEXT] [--data DIR | --database URL]\n"
        "                      create a bearer token; it is printed as the last line\n"
        "  migrate [--data DIR | --database URL]\n"
        "                      apply the database migrations\n"
        "  reindex [--data DIR | --database URL]\n"
        "                      rebuild the search and spatial indexes (after an upgrade)\n"
        "  db start|stop|url|status [--data DIR]\n"
        "                      manage the embedded PostgreSQL cluster\n"
        "  import FORMAT FILE [--mapping FILE] [--report FILE] [--dry-run] [--resume]\n"
        "         [--deactivate-missing] [--encoding ENC] [--delimiter C] [--crs EPSG:N]\n"
        "         [--fix-swapped] [--chunk N] [--actor NAME] [--quiet]\n"
        "         [--data DIR | --database URL | --server URL --token TOKEN]\n"
        "                      import a list: FORMAT csv, geojson, dhis2, fhir or csd\n"
        "                      (docs/IMPORT.md); exit 0 all imported, 1 rows rejected,\n"
        "                      2 the file or the database could not be used\n"
        "  export FORMAT [--jurisdiction Location/ID] [--type CODE|SYSTEM|CODE]\n"
        "         [--status active|inactive|suspended] [--data DIR | --database URL] > FILE\n"
        "                      write the master facility list to stdout: FORMAT csv,\n"
        "                      geojson, ndjson (FHIR) or dhis2 (docs/EXPORT.md)\n"
        "  sync --from URL [--types TYPE,TYPE] [--token TOKEN] [--follow] [--interval S]\n"
        "       [--data DIR | --database URL]\n"
        "                      mirror another mCSD Directory (its _history feed) into this\n"
        "                      registry; the cursor is kept in the database; --follow keeps\n"
        "                      polling every S seconds (default 5) until interrupted\n"
        "  search-sql TYPE 'QUERY' [--data DIR | --database URL]\n"
        "                      run a search and print the SQL it ran (for benchmarks)\n"
        "\n"
        "options:\n"
        "  --data DIR          data folder of the embedded database (default: $MAHALI_DATA,\n"
        "                      else /var/lib/mahali as root, else ~/.local/share/mahali)\n"
        "  --database URL      use this PostgreSQL (>= 13, PostGIS >= 3) instead\n"
        "                      (default: $MAHALI_DATABASE_URL)\n"
        "  --demo              load the Sierra Leone demo data (idempotent)\n"
        "  --help, --version\n"
        "\n"
        "environment: MAHALI_PUBLIC_READ=0 makes every read need a token;\n"
        "MAHALI_BASE_URL sets the public FHIR base URL; MAHALI_THREADS sets the worker count.\n",
        f);
}

static const char *
default_data_dir(void)
{
    static char buf[1024];
    const char *env = getenv("MAHALI_DATA"), *home = getenv("HOME"), *xdg = getenv("XDG_DATA_HOME");
    if (env && *env)
        return env;
    if (geteuid() == 0)
        return "/var/lib/mahali";
    if (xdg && *xdg)
        snprintf(buf, sizeof(buf), "%s/mahali", xdg);
    else
        snprintf(buf, sizeof(buf), "%s/.local/share/mahali", home ? home : ".");
    return buf;
}

/* Parse options after the subcommand words. Returns 0, or -1 on an unknown option. */
static int
parse_opts(opts *o, int argc, char **argv, int first)
{
    memset(o, 0, sizeof(*o));
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            continue;
        }
        if (strcmp(a, "--demo") == 0) {
            o->demo = 1;
            continue;
        }
        if (strcmp(a, "--follow") == 0) {
            o->follow = 1;
            continue;
        }
        if (strcmp(a, "--dry-run") == 0 || strcmp(a, "--deactivate-missing") == 0 ||
            strcmp(a, "--resume") == 0 || strcmp(a, "--fix-swapped") == 0 ||
            strcmp(a, "--quiet") == 0) {
            *(a[2] == 'd' && a[3] == 'r' ? &o->dry_run
              : a[2] == 'd'              ? &o->deactivate_missing
              : a[2] == 'r'              ? &o->resume
              : a[2] == 'f'              ? &o->fix_swapped
                                         : &o->quiet) = 1;
            continue;
        }
        if (strcmp(a, "--listen") == 0)
            target = &o->listen;
        else if (strcmp(a, "--data") == 0)
            target = &o->data;
        else if (strcmp(a, "--database") == 0)
            target = &o->database;
        else if (strcmp(a, "--role") == 0)
            target = &o->role;
        else if (strcmp(a, "--name") == 0)
            target = &o->name;
        else if (strcmp(a, "--base-url") == 0)
            target = &o->base_url;
        else if (strcmp(a, "--mapping") == 0)
            target = &o->mapping;
        else if (strcmp(a, "--report") == 0)
            target = &o->report;
        else if (strcmp(a, "--encoding") == 0)
            target = &o->encoding;
        else if (strcmp(a, "--delimiter") == 0)
            target = &o->delimiter;
        else if (strcmp(a, "--crs") == 0)
            target = &o->crs;
        else if (strcmp(a, "--chunk") == 0)
            target = &o->chunk;
        else if (strcmp(a, "--actor") == 0)
            target = &o->actor;
        else if (strcmp(a, "--server") == 0)
            target = &o->server;
        else if (strcmp(a, "--token") == 0)
            target = &o->token;
        else if (strcmp(a, "--from") == 0)
            target = &o->from;
        else if (strcmp(a, "--types") == 0)
            target = &o->types;
        else if (strcmp(a, "--interval") == 0)
            target = &o->interval;
        if (!target || i + 1 >= argc) {
            fprintf(stderr, "mahali: %s \"%s\" (see mahali --help)\n",
                    target ? "missing value for" : "unknown option", a);
            return -1;
        }
        *target = argv[++i];
    }
    if (!o->database)
        o->database = getenv("MAHALI_DATABASE_URL");
    if (o->database && !*o->database)
        o->database = NULL;
    if (!o->data)
        o->data = default_data_dir();
    return 0;
}

static int
die(core_err *err)
{
    fprintf(stderr, "mahali: %s\n", err->msg);
    core_err_clear(err);
    return 1;
}

/* Reach the database: external URL, or the embedded cluster (started if needed). */
static int
open_database(core_cluster *cl, const char **conninfo, const opts *o, int serve, core_err *err)
{
    memset(cl, 0, sizeof(*cl));
    cl->lock_fd = -1;
    if (o->database) {
        *conninfo = o->database;
        return 0;
    }
    if (core_cluster_start(cl, o->data, serve, err) < 0)
        return -1;
    *conninfo = cl->conninfo;
    return 0;
}

static int
cmd_serve(const opts *o)
{
    core_err err = CORE_ERR_INIT;
    core_cluster cl;
    const char *conninfo;
    web_config cfg = WEB_CONFIG_INIT;
    web_server *srv = NULL;
    core_db *db;
    sigset_t set;
    int sig, rc = 1, migrated;
    char listen_host[256];
    const char *env;

    /* block the stop signals in every thread; main waits for them with sigwait */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (open_database(&cl, &conninfo, o, 1, &err) < 0)
        return die(&err);
    db = core_db_create(conninfo, "mahali-serve");
    if ((migrated = core_migrate(db, &err)) < 0) {
        die(&err);
        goto done;
    }
    if (o->demo) {
        imp_report rep;
        if (imp_demo_load(&rep, db, &err) < 0) {
            die(&err);
            goto done;
        }
        printf("mahali: demo data loaded: %d resources (%d created, %d updated, %d unchanged)\n",
               rep.total, rep.created, rep.updated, rep.unchanged);
    }
    cfg.listen = o->listen ? o->listen : "127.0.0.1:8080";
    cfg.conninfo = conninfo;
    cfg.base_url = o->base_url ? o->base_url : getenv("MAHALI_BASE_URL");
    if ((env = getenv("MAHALI_PUBLIC_READ")) && strcmp(env, "0") == 0)
        cfg.public_read = 0;
    if ((env = getenv("MAHALI_THREADS")) && atoi(env) > 0)
        cfg.num_threads = atoi(env);
    if ((env = getenv("MAHALI_PERSONAL_READ_LIMIT")) && *env)
        cfg.personal_read_limit = atol(env) > 0 ? atol(env) : 0;
    if ((env = getenv("MAHALI_FEED_HORIZON")) && strcmp(env, "off") == 0) {
        cfg.feed_horizon_off = 1;
        core_log(CORE_LOG_WARN, "MAHALI_FEED_HORIZON=off: the change feed may skip versions "
                                "(for tests of the feed only)");
    }
    if (!(srv = web_server_start(&cfg, &err))) {
        die(&err);
        goto done;
    }
    core_strlcpy(listen_host, cfg.listen, sizeof(listen_host));
    {
        char *colon = strrchr(listen_host, ':');
        if (colon)
            *colon = '\0';
        if (!*listen_host || strcmp(listen_host, "0.0.0.0") == 0)
            core_strlcpy(listen_host, "127.0.0.1", sizeof(listen_host));
    }
    printf("mahali: listening on http://%s:%d (FHIR base http://%s:%d/fhir)\n", listen_host,
           web_server_port(srv), listen_host, web_server_port(srv));
    fflush(stdout);
    while (sigwait(&set, &sig) != 0)
        ;
    core_log(CORE_LOG_INFO, "signal %d: stopping", sig);
    rc = 0;
done:
    web_server_stop(srv);
    core_db_free(db);
    if (core_cluster_stop(&cl) < 0)
        core_log(CORE_LOG_WARN, "the embedded database did not stop cleanly");
    return rc;
}

/* Run fn against the database, starting the embedded cluster for this command if needed. */
static int
with_database(const opts *o, int (*fn)(core_db *db, const opts *o, core_err *err))
{
    core_err err = CORE_ERR_INIT;
    core_cluster cl;
    const char *conninfo;
    core_db *db;
    int rc;

    if (open_database(&cl, &conninfo, o, 0, &err) < 0)
        return die(&err);
    db = core_db_create(conninfo, "mahali-cli");
    rc = fn(db, o, &err);
    core_db_free(db);
    core_cluster_stop(&cl);
    return rc < 0 ? die(&err) : 0;
}

static int
do_migrate(core_db *db, const opts *o, core_err *err)
{
    int n = core_migrate(db, err);
    (void)o;
    if (n < 0)
        return -1;
    printf("mahali: %d migration%s applied; the schema is current\n", n, n == 1 ? "" : "s");
    return 0;
}

static void
reindex_progress(long done, void *payload)
{
    (void)payload;
    printf("mahali: %ld resources reindexed\n", done);
}

static int
do_reindex(core_db *db, const opts *o, core_err *err)
{
    long done, failed;
    (void)o;
    if (core_migrate(db, err) < 0 ||
        reg_reindex(&done, &failed, db, reindex_progress, NULL, err) < 0)
        return -1;
    printf("mahali: reindexed %ld resources%s", done, failed ? "" : "\n");
    if (failed)
        printf("; %ld could not be (see the log)\n", failed);
    return 0;
}

static int
do_token(core_db *db, const opts *o, core_err *err)
{
    char token[96];
    reg_role role = reg_role_parse(o->role);
    if (role == REG_ROLE_NONE)
        return core_err_set(err, 400, CORE_ISSUE_VALUE,
                            "--role must be reader, hr, editor or admin (got \"%s\")",
                            o->role ? o->role : "");
    if (core_migrate(db, err) < 0 || reg_token_create(token, db, role, o->name, err) < 0)
        return -1;
    printf("token for \"%s\" (role %s); it is shown only once:\n%s\n",
           o->name ? o->name : reg_role_name(role), reg_role_name(role), token);
    return 0;
}

/* search-sql: run a search as the server would and print every statement it ran, values
 * inlined, so that benchmarks can give pgbench exactly the server's SQL. */
static const char *search_type, *search_query;

static int
do_search_sql(core_db *db, const opts *o, core_err *err)
{
    reg_qparam p[100];
    size_t n = 0;
    char *copy, *save = NULL, *tok;
    reg_search_opts so;
    reg_search_out out;
    int t = reg_type_find(search_type);

    (void)o;
    if (t < 0)
        return core_err_set(err, 400, CORE_ISSUE_NOT_SUPPORTED,
                            "resource type \"%s\" is not stored here", search_type);
    copy = strdup(search_query);
    if (!copy)
        abort();
    memset(&so, 0, sizeof(so));
    so.count = 50;
    so.allow_personal = 1;
    so.record_sql = 1;
    for (tok = strtok_r(copy, "&", &save); tok && n < 100; tok = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq++ = '\0';
        mg_url_decode(tok, (int)strlen(tok), tok, (int)strlen(tok) + 1, 1);
        if (eq)
            mg_url_decode(eq, (int)strlen(eq), eq, (int)strlen(eq) + 1, 1);
        if (strcmp(tok, "_count") == 0 && eq)
            so.count = atoi(eq) < 1 ? 1 : atoi(eq) > 500 ? 500 : atoi(eq);
        p[n].name = tok;
        p[n].value = eq ? eq : "";
        n++;
    }
    if (reg_search(&out, db, t, p, n, &so, err) < 0) {
        free(copy);
        return -1;
    }
    printf("-- %s?%s: %d matches on this page, %d included, total %lld\n%s", search_type,
           search_query, out.nmatches, out.nhits - out.nmatches, out.total, out.sql ? out.sql : "");
    reg_search_out_clear(&out);
    free(copy);
    return 0;
}

static int
cmd_import(const char *format, const char *file, const opts *o)
{
    core_err err = CORE_ERR_INIT;
    core_cluster cl;
    const char *conninfo;
    core_db *db;
    imp_options io;
    imp_stats st;
    int fmt = imp_format_find(format), rc;

    if (fmt < 0) {
        fprintf(stderr, "mahali: unknown import format \"%s\" (csv, geojson, dhis2, fhir, csd)\n",
                format);
        return 2;
    }
    memset(&io, 0, sizeof(io));
    io.format = (imp_format)fmt;
    io.file = file;
    io.mapping_file = o->mapping;
    io.report_file = o->report;
    io.encoding = o->encoding;
    io.crs = o->crs;
    io.actor = o->actor ? o->actor : "import";
    io.dry_run = o->dry_run;
    io.deactivate_missing = o->deactivate_missing;
    io.resume = o->resume;
    io.fix_swapped = o->fix_swapped;
    io.chunk = o->chunk ? atoi(o->chunk) : 0;
    io.log = stderr;
    io.mapping_out = stdout;
    io.progress = o->quiet ? 0 : isatty(2) ? 2 : 1;
    if (o->delimiter) {
        if (strcmp(o->delimiter, "tab") == 0 || strcmp(o->delimiter, "\\t") == 0)
            io.delimiter = '\t';
        else if (strlen(o->delimiter) == 1 && strchr(",;|\t", o->delimiter[0]))
            io.delimiter = o->delimiter[0];
        else {
            fprintf(stderr, "mahali: --delimiter is one of , ; | tab\n");
            return 2;
        }
    }
    if (o->chunk && (io.chunk < 1 || io.chunk > 20000)) {
        fprintf(stderr, "mahali: --chunk is a number of rows from 1 to 20000\n");
        return 2;
    }
    /* JSON-heavy work: without fastbins glibc stops consolidating them on every large free
     * (a tenth of an import's CPU) */
    mallopt(M_MXFAST, 0);
    if (o->server) {
        /* the server runs it (POST [base]/$import): same options, same report */
        const char *token = o->token ? o->token : getenv("MAHALI_TOKEN");
        if (!token || !*token) {
            fprintf(stderr, "mahali: --server needs --token TOKEN (an admin token) or "
                            "$MAHALI_TOKEN\n");
            return 2;
        }
        rc = web_import_remote(&st, o->server, token, &io, &err);
    } else {
        if (open_database(&cl, &conninfo, o, 0, &err) < 0) {
            die(&err);
            return 2;
        }
        db = core_db_create(conninfo, "mahali-import");
        io.second_db = core_db_create(conninfo, "mahali-import-2");
        rc = core_migrate(db, &err) < 0 ? -1 : imp_run(&st, db, &io, &err);
        core_db_free(io.second_db);
        core_db_free(db);
        core_cluster_stop(&cl);
    }
    if (rc < 0) {
        fprintf(stderr, "mahali import: %s%s%s\n", err.expr[0] ? err.expr : "",
                err.expr[0] ? ": " : "", err.msg);
        core_err_clear(&err);
        return 2;
    }
    fprintf(stderr,
            "mahali import: %s%ld rows: %ld created, %ld updated, %ld unchanged, %ld rejected, "
            "%ld flagged, %ld warnings; %ld jurisdictions created%s; %.1f s\n",
            io.dry_run ? "(dry run, nothing committed) " : "", st.rows, st.created, st.updated,
            st.unchanged, st.rejected, st.flagged, st.warnings, st.jurisdictions,
            st.deactivated ? ", some set inactive" : "", st.seconds);
    if (st.deactivated)
        fprintf(stderr, "mahali import: %ld facilities not in the file set inactive\n",
                st.deactivated);
    return st.rejected ? 1 : 0;
}

/* sync: SIGINT/SIGTERM end a --follow at the next poll (or during its wait). */
static volatile sig_atomic_t sync_stop;

static void
on_stop(int sig)
{
    (void)sig;
    sync_stop = 1;
}

static int
do_sync(core_db *db, const opts *o, core_err *err)
{
    web_sync_options so;
    web_sync_stats st;
    struct sigaction sa;

    memset(&so, 0, sizeof(so));
    so.from = o->from;
    so.token = o->token ? o->token : getenv("MAHALI_SYNC_TOKEN");
    so.types = o->types;
    so.follow = o->follow;
    so.interval = o->interval ? atoi(o->interval) : 5;
    so.log = stderr;
    so.stop = &sync_stop;
    if (so.interval < 1 || so.interval > 86400)
        return core_err_set(err, 400, CORE_ISSUE_VALUE,
                            "--interval is a number of seconds from 1 to 86400");
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (core_migrate(db, err) < 0 || web_sync(&st, db, &so, err) < 0)
        return -1;
    fprintf(stderr,
            "mahali sync: %ld poll%s: %ld changes seen, %ld created, %ld updated, %ld deleted, "
            "%ld unchanged, %ld rejected\n",
            st.polls, st.polls == 1 ? "" : "s", st.seen, st.created, st.updated, st.deleted,
            st.unchanged, st.rejected);
    return 0;
}

/* export: its filter options are its own; the others go through parse_opts. */
static int
export_write(const char *buf, size_t len, void *payload)
{
    return fwrite(buf, 1, len, payload) == len ? 0 : -1;
}

static int
cmd_export(const char *format, int argc, char **argv)
{
    core_err err = CORE_ERR_INIT;
    core_cluster cl;
    const char *conninfo;
    core_db *db;
    reg_export_filter f = REG_EXPORT_FILTER_INIT;
    char **rest = calloc((size_t)argc + 1, sizeof(char *));
    int fmt = imp_export_format_find(format), n = 0, rc;
    opts o;

    if (!rest)
        abort();
    if (fmt < 0) {
        fprintf(stderr, "mahali: unknown export format \"%s\" (csv, geojson, ndjson, dhis2)\n",
                format);
        free(rest);
        return 2;
    }
    for (int i = 0; i < argc; i++) {
        const char **target = strcmp(argv[i], "--jurisdiction") == 0 ? &f.jurisdiction
                              : strcmp(argv[i], "--type") == 0       ? &f.type
                              : strcmp(argv[i], "--status") == 0     ? &f.status
                                                                     : NULL;
        if (i >= 3 && target) {
            if (i + 1 >= argc) {
                fprintf(stderr, "mahali: missing value for \"%s\" (see mahali --help)\n", argv[i]);
                free(rest);
                return 2;
            }
            *target = argv[++i];
        } else {
            rest[n++] = argv[i];
        }
    }
    if (f.jurisdiction && strncmp(f.jurisdiction, "Location/", 9) == 0)
        f.jurisdiction += 9;
    rc = parse_opts(&o, n, rest, 3);
    free(rest);
    if (rc < 0)
        return 2;
    if (o.help) {
        usage(stdout);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed pipe fails the write: the cluster is still stopped */
    if (open_database(&cl, &conninfo, &o, 0, &err) < 0)
        return die(&err);
    db = core_db_create(conninfo, "mahali-export");
    rc = core_migrate(db, &err) < 0
             ? -1
             : imp_export(db, (imp_export_format)fmt, &f, export_write, stdout, &err);
    if (rc == 0 && fflush(stdout) != 0)
        rc = core_err_set(&err, 500, CORE_ISSUE_EXCEPTION, "the output could not be written");
    core_db_free(db);
    core_cluster_stop(&cl);
    if (rc < 0) {
        rc = err.status == 400 ? 2 : 1;
        fprintf(stderr, "mahali export: %s%s%s\n", err.expr[0] ? err.expr : "",
                err.expr[0] ? ": " : "", err.msg);
        core_err_clear(&err);
        return rc;
    }
    return 0;
}

static int
cmd_db(const char *action, const opts *o)
{
    core_err err = CORE_ERR_INIT;
    core_cluster cl;

    if (strcmp(action, "start") == 0) {
        if (core_cluster_start(&cl, o->data, 0, &err) < 0)
            return die(&err);
        printf("mahali: database running in %s\n%s\n", cl.pgdata, cl.conninfo);
        return 0;
    }
    if (strcmp(action, "stop") == 0) {
        int running = core_cluster_status(&cl, o->data);
        if (!running) {
            printf("mahali: database in %s is not running\n", cl.pgdata);
            return 0;
        }
        cl.owned = 1;
        if (core_cluster_stop(&cl) < 0) {
            fprintf(stderr, "mahali: the database in %s did not stop\n", cl.pgdata);
            return 1;
        }
        printf("mahali: database in %s stopped\n", cl.pgdata);
        return 0;
    }
    if (strcmp(action, "url") == 0 || strcmp(action, "status") == 0) {
        int running = core_cluster_status(&cl, o->data);
        if (strcmp(action, "status") == 0) {
            printf("mahali: database in %s is %s\n", cl.pgdata, running ? "running" : "stopped");
            return running ? 0 : 3;
        }
        printf("%s\n", cl.conninfo);
        return 0;
    }
    fprintf(stderr, "mahali: unknown db action \"%s\" (start, stop, url, status)\n", action);
    return 2;
}

int
main(int argc, char **argv)
{
    core_err err = CORE_ERR_INIT;
    const char *cmd = argc > 1 ? argv[1] : NULL;
    opts o;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!cmd || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(cmd ? stdout : stderr);
        return cmd ? 0 : 2;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("mahali %s (%s, libpq %d)\n", MAHALI_VERSION, geo_versions(), PQlibVersion());
        return 0;
    }
    if (core_init() < 0 || reg_model_load(&err) < 0) {
        fprintf(stderr, "mahali: initialisation failed: %s\n", err.msg);
        return 1;
    }
    if (strcmp(cmd, "serve") == 0) {
        if (parse_opts(&o, argc, argv, 2) < 0)
            return 2;
        if (o.help) {
            usage(stdout);
            return 0;
        }
        return cmd_serve(&o);
    }
    if (strcmp(cmd, "reindex") == 0) {
        if (parse_opts(&o, argc, argv, 2) < 0)
            return 2;
        if (o.help) {
            usage(stdout);
            return 0;
        }
        return with_database(&o, do_reindex);
    }
    if (strcmp(cmd, "migrate") == 0) {
        if (parse_opts(&o, argc, argv, 2) < 0)
            return 2;
        if (o.help) {
            usage(stdout);
            return 0;
        }
        return with_database(&o, do_migrate);
    }
    if (strcmp(cmd, "token") == 0) {
        int create = argc > 2 && strcmp(argv[2], "create") == 0;
        if (parse_opts(&o, argc, argv, create ? 3 : 2) < 0)
            return 2;
        if (o.help || !create) {
            usage(o.help ? stdout : stderr);
            return o.help ? 0 : 2;
        }
        return with_database(&o, do_token);
    }
    if (strcmp(cmd, "import") == 0) {
        if (argc < 4 || argv[2][0] == '-' || argv[3][0] == '-') {
            fprintf(stderr, "usage: mahali import FORMAT FILE [options] (see mahali --help)\n");
            return 2;
        }
        if (parse_opts(&o, argc, argv, 4) < 0)
            return 2;
        return cmd_import(argv[2], argv[3], &o);
    }
    if (strcmp(cmd, "sync") == 0) {
        if (parse_opts(&o, argc, argv, 2) < 0)
            return 2;
        if (o.help) {
            usage(stdout);
            return 0;
        }
        if (!o.from) {
            fprintf(stderr, "usage: mahali sync --from URL [--types T,T] [--token TOKEN] "
                            "[--follow] [--interval S] (see mahali --help)\n");
            return 2;
        }
        if (o.interval && (atoi(o.interval) < 1 || atoi(o.interval) > 86400)) {
            fprintf(stderr, "mahali: --interval is a number of seconds from 1 to 86400\n");
            return 2;
        }
        return with_database(&o, do_sync);
    }
    if (strcmp(cmd, "export") == 0) {
        if (argc < 3 || argv[2][0] == '-') {
            fprintf(stderr, "usage: mahali export FORMAT [options] > FILE (see mahali --help)\n");
            return 2;
        }
        return cmd_export(argv[2], argc, argv);
    }
    if (strcmp(cmd, "search-sql") == 0) {
        if (argc < 4 || argv[2][0] == '-') {
            fprintf(stderr,
                    "usage: mahali search-sql TYPE 'QUERY' [--data DIR | --database URL]\n");
            return 2;
        }
        search_type = argv[2];
        search_query = argv[3];
        if (parse_opts(&o, argc, argv, 4) < 0)
            return 2;
        return with_database(&o, do_search_sql);
    }
    if (strcmp(cmd, "db") == 0) {
        const char *action = argc > 2 && argv[2][0] != '-' ? argv[2] : NULL;
        if (parse_opts(&o, argc, argv, action ? 3 : 2) < 0)
            return 2;
        if (o.help || !action) {
            usage(o.help ? stdout : stderr);
            return o.help ? 0 : 2;
        }
        return cmd_db(action, &o);
    }
    fprintf(stderr, "mahali: unknown command \"%s\" (see mahali --help)\n", cmd);
    return 2;
}
