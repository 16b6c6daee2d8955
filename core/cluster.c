/* The embedded database: a private PostgreSQL + PostGIS cluster in DIR/pg, listening only on a
 * Unix socket in DIR/run, created on first use and started by whichever `mahali` command needs
 * it. `serve` holds DIR/serve.lock for its lifetime and stops the cluster when it exits; other
 * commands connect to a running cluster or start one for themselves and stop it afterwards.
 * initdb and postgres refuse to run as root, so as root they run as the user `postgres` (or
 * MAHALI_PG_USER), which must be able to reach DIR. */
#define _DEFAULT_SOURCE /* realpath, flock */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/db.h"

#define PG_PORT "5432"

/* ---- helpers ------------------------------------------------------------------------------ */

static int
mkdirs(const char *path, mode_t mode)
{
    char buf[1100];
    size_t n = core_strlcpy(buf, path, sizeof(buf));
    if (n >= sizeof(buf))
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int
file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The PostgreSQL server binaries: $MAHALI_PG_BINDIR, else the newest /usr/lib/postgresql/N/bin
 * that has initdb and PostGIS, else the directory of an initdb found on PATH. */
static int
find_bindir(char *out, size_t cap)
{
    const char *env = getenv("MAHALI_PG_BINDIR");
    DIR *d;
    struct dirent *e;
    int best = 0;

    if (env && *env) {
        core_strlcpy(out, env, cap);
        return 0;
    }
    if ((d = opendir("/usr/lib/postgresql"))) {
        while ((e = readdir(d))) {
            int v = atoi(e->d_name);
            char p[600], ext[600];
            if (v <= best)
                continue;
            snprintf(p, sizeof(p), "/usr/lib/postgresql/%d/bin/initdb", v);
            snprintf(ext, sizeof(ext), "/usr/share/postgresql/%d/extension/postgis.control", v);
            if (file_exists(p) && file_exists(ext))
                best = v;
        }
        closedir(d);
    }
    if (best) {
        snprintf(out, cap, "/usr/lib/postgresql/%d/bin", best);
        return 0;
    }
    return -1;
}

/* Run argv (as the cluster user when we are root), output appended to logpath.
 * Returns the exit status, or -1 if it could not run. */
static int
run(const struct passwd *pw, const char *logpath, char *const argv[])
{
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (pw) {
            if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
                _exit(126);
        }
        /* postgres and pg_ctl must not inherit a locale the cluster user lacks */
        setenv("LC_ALL", "C.UTF-8", 1);
        execv(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const struct passwd *
cluster_user(core_err *err)
{
    const char *name = getenv("MAHALI_PG_USER");
    const struct passwd *pw;

    if (geteuid() != 0)
        return NULL;
    if (!name || !*name)
        name = "postgres";
    pw = getpwnam(name);
    if (!pw)
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION,
                     "running as root, the embedded database needs the unprivileged user \"%s\" "
                     "(install postgresql or set MAHALI_PG_USER)",
                     name);
    return pw;
}

static void
fill_paths(core_cluster *c, const char *dir)
{
    char real[1024];
    if (!realpath(dir, real))
        core_strlcpy(real, dir, sizeof(real));
    core_strlcpy(c->dir, real, sizeof(c->dir));
    snprintf(c->pgdata, sizeof(c->pgdata), "%s/pg", c->dir);
    /* Unix socket paths are limited to ~107 bytes; a deep folder gets a short one in /tmp */
    if (strlen(c->dir) + sizeof("/run/.s.PGSQL." PG_PORT ".lock") < 100) {
        snprintf(c->sockdir, sizeof(c->sockdir), "%s/run", c->dir);
    } else {
        unsigned long h = 5381;
        for (const char *p = c->dir; *p; p++)
            h = h * 33 + (unsigned char)*p;
        snprintf(c->sockdir, sizeof(c->sockdir), "/tmp/mahali-%08lx", h & 0xffffffffUL);
    }
    snprintf(c->conninfo, sizeof(c->conninfo), "host=%s port=%s user=postgres dbname=mahali",
             c->sockdir, PG_PORT);
    if (c->bindir[0] == '\0')
        find_bindir(c->bindir, sizeof(c->bindir));
}

static int
pg_running(const core_cluster *c)
{
    /* A live postmaster answers on its socket; a stale postmaster.pid alone does not count. */
    char info[1300];
    PGPing p;
    snprintf(info, sizeof(info), "host=%s port=%s user=postgres dbname=postgres connect_timeout=3",
             c->sockdir, PG_PORT);
    p = PQping(info);
    return p == PQPING_OK || p == PQPING_REJECT;
}

int
core_cluster_status(core_cluster *c, const char *dir)
{
    memset(c, 0, sizeof(*c));
    c->lock_fd = -1;
    fill_paths(c, dir);
    return pg_running(c);
}

static int
chown_to(const struct passwd *pw, const char *path)
{
    if (!pw)
        return 0;
    return chown(path, pw->pw_uid, pw->pw_gid);
}

/* As root, check that the cluster user can traverse DIR and every folder above it. */
static int
can_traverse(const struct passwd *pw, const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return 0;
    if (st.st_uid == pw->pw_uid)
        return (st.st_mode & S_IXUSR) != 0;
    if (st.st_gid == pw->pw_gid)
        return (st.st_mode & S_IXGRP) != 0;
    return (st.st_mode & S_IXOTH) != 0;
}

static int
reachable_by(const struct passwd *pw, const char *dir)
{
    char buf[1100];

    if (!pw)
        return 1;
    core_strlcpy(buf, dir, sizeof(buf));
    for (char *slash = strchr(buf + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (!can_traverse(pw, buf))
            return 0;
        *slash = '/';
    }
    return can_traverse(pw, buf);
}

static int
create_database(core_cluster *c, core_err *err)
{
    char info[1300];
    PGconn *conn;
    PGresult *res;
    int rc = 0;

    snprintf(info, sizeof(info), "host=%s port=%s user=postgres dbname=postgres", c->sockdir,
             PG_PORT);
    conn = PQconnectdb(info);
    if (PQstatus(conn) != CONNECTION_OK) {
        core_log(CORE_LOG_ERROR, "embedded database: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return core_err_set(err, 503, CORE_ISSUE_TRANSIENT,
                            "the embedded database started but does not accept connections");
    }
    res = PQexec(conn, "SELECT 1 FROM pg_database WHERE datname = 'mahali'");
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0) {
        PQclear(res);
        res = PQexec(conn, "CREATE DATABASE mahali");
        if (PQresultStatus(res) != PGRES_COMMAND_OK &&
            !strstr(PQresultErrorMessage(res), "already exists")) {
            core_log(CORE_LOG_ERROR, "create database: %s", PQresultErrorMessage(res));
            rc = core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "could not create the database");
        }
    }
    PQclear(res);
    PQfinish(conn);
    return rc;
}

int
core_cluster_start(core_cluster *c, const char *dir, int serve, core_err *err)
{
    const struct passwd *pw;
    char logdir[1200], logpath[1300], opts[1600], path[1300];

    memset(c, 0, sizeof(*c));
    c->lock_fd = -1;
    if (mkdirs(dir, 0755) < 0)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "cannot create data folder \"%s\": %s",
                            dir, strerror(errno));
    fill_paths(c, dir);
    if (c->bindir[0] == '\0')
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION,
                            "no PostgreSQL server with PostGIS found: install postgresql and "
                            "postgresql-15-postgis-3 (or set MAHALI_PG_BINDIR), or give "
                            "--database URL");
    pw = cluster_user(err);
    if (geteuid() == 0 && !pw)
        return -1;
    if (!reachable_by(pw, c->dir))
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION,
                            "the data folder \"%s\" is not reachable by the database user \"%s\"; "
                            "choose a --data folder outside /root (e.g. /var/lib/mahali)",
                            c->dir, pw->pw_name);

    if (serve) {
        snprintf(path, sizeof(path), "%s/serve.lock", c->dir);
        /* O_CLOEXEC: the postmaster started below must not inherit (and keep) the lock */
        c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (c->lock_fd < 0 || flock(c->lock_fd, LOCK_EX | LOCK_NB) < 0) {
            if (c->lock_fd >= 0)
                close(c->lock_fd);
            c->lock_fd = -1;
            return core_err_set(err, 409, CORE_ISSUE_CONFLICT,
                                "another mahali serve is using the data folder \"%s\"", c->dir);
        }
    }

    snprintf(logdir, sizeof(logdir), "%s/log", c->dir);
    snprintf(logpath, sizeof(logpath), "%s/postgresql.log", logdir);
    if (mkdirs(logdir, 0700) < 0 || mkdirs(c->sockdir, 0700) < 0)
        goto io_fail;
    chown_to(pw, logdir);
    chown_to(pw, c->sockdir);
    if (pw) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0)
            close(fd);
        chown_to(pw, logpath);
    }

    if (pg_running(c)) {
        /* serve adopts a cluster a crashed serve left behind; other commands only borrow it */
        c->owned = serve;
        return create_database(c, err);
    }

    snprintf(path, sizeof(path), "%s/PG_VERSION", c->pgdata);
    if (!file_exists(path)) {
        char initdb[600];
        char *argv[] = { initdb,
                         "-D",
                         c->pgdata,
                         "-U",
                         "postgres",
                         "-A",
                         "trust",
                         "-E",
                         "UTF8",
                         "--locale=C.UTF-8",
                         "--no-instructions",
                         NULL };
        core_log(CORE_LOG_INFO, "creating the embedded database in %s", c->pgdata);
        if (mkdirs(c->pgdata, 0700) < 0)
            goto io_fail;
        chown_to(pw, c->pgdata);
        snprintf(initdb, sizeof(initdb), "%s/initdb", c->bindir);
        if (run(pw, logpath, argv) != 0)
            return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "initdb failed; see %s", logpath);
    }

    snprintf(opts, sizeof(opts),
             "-c listen_addresses='' -c unix_socket_directories='%s' -c port=%s %s", c->sockdir,
             PG_PORT, getenv("MAHALI_PG_OPTIONS") ? getenv("MAHALI_PG_OPTIONS") : "");
    {
        char pg_ctl[600];
        char *argv[] = { pg_ctl,    "start", "-w",    "-t", "120", "-D",
                         c->pgdata, "-l",    logpath, "-o", opts,  NULL };
        snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", c->bindir);
        /* pg_ctl and postgres clear a stale postmaster.pid left by a crash themselves */
        if (run(pw, logpath, argv) != 0)
            return core_err_set(err, 500, CORE_ISSUE_EXCEPTION,
                                "the embedded database did not start; see %s", logpath);
    }
    c->owned = 1;
    return create_database(c, err);

io_fail:
    return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "cannot prepare \"%s\": %s", c->dir,
                        strerror(errno));
}

int
core_cluster_stop(core_cluster *c)
{
    int rc = 0;
    if (c->owned) {
        char pg_ctl[600], logpath[1300];
        char *argv[] = { pg_ctl, "stop", "-w", "-t", "60", "-m", "fast", "-D", c->pgdata, NULL };
        core_err err = CORE_ERR_INIT;
        const struct passwd *pw = cluster_user(&err);
        snprintf(pg_ctl, sizeof(pg_ctl), "%s/pg_ctl", c->bindir);
        snprintf(logpath, sizeof(logpath), "%s/log/postgresql.log", c->dir);
        rc = run(pw, logpath, argv) == 0 ? 0 : -1;
        c->owned = 0;
    }
    if (c->lock_fd >= 0) {
        close(c->lock_fd);
        c->lock_fd = -1;
    }
    return rc;
}
