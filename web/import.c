/* POST [base]/$import (admin): a file uploaded as the request body is imported in the
 * background by the engine of `mahali import` (imp_run), so that the web UI and the CLI share
 * one code path, one mapping format and one report. The body is streamed into a private
 * temporary folder, never held in memory; one job runs at a time on a thread of its own with
 * its own database connection, at most QUEUE_MAX wait (beyond that 429). GET
 * [base]/$import/{job} tells how a job is doing and, once done, gives its JSON report;
 * .../report.csv the same issues as CSV. Finished jobs are forgotten (files deleted) after
 * KEEP_SECONDS or beyond the last KEEP_JOBS, and all at shutdown. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "importers/importers.h"
#include "web/web_int.h"

#define QUEUE_MAX         4             /* jobs waiting (or uploading) besides the running one */
#define RETRY_AFTER       30            /* seconds, with 429 when the queue is full */
#define KEEP_JOBS         50            /* finished jobs remembered */
#define KEEP_SECONDS      (24 * 3600)   /* how long a finished job is remembered */
#define MAX_BYTES_DEFAULT (200LL << 20) /* upload cap; MAHALI_IMPORT_MAX_BYTES overrides */
#define FILENAME_MAX_LEN  200

typedef enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED } job_state;

static const char *const state_names[] = { "queued", "running", "done", "failed" };
static const char *const format_names[] = { "csv", "geojson", "dhis2", "fhir", "csd" };

/* One import. The fields above `state` are set before the job is queued and never change;
 * the others change under web_imports.lock, except rows (atomic, stored by the importer). */
typedef struct job {
    struct job *next; /* web_imports.jobs: newest first */
    char id[33];      /* 32 hex digits, random */
    imp_format format;
    int dry_run, deactivate_missing, fix_swapped, has_mapping;
    char delimiter;
    char *encoding, *crs; /* malloc'd, or NULL */
    char actor[128];      /* the token's name, for the audit trail */
    char dir[256];        /* the job's private folder: in/<name>, mapping.json, report.json/.csv */
    /* the upload's file name, as the report and each resource's provenance give it */
    char name[FILENAME_MAX_LEN + 8];
    char submitted[32];
    job_state state;
    char started[32], finished[32]; /* "" until then */
    double finished_at;             /* monotonic seconds, for forgetting */
    _Atomic long rows;              /* rows read so far (running) */
    imp_stats stats;                /* done or failed */
    char error[400];                /* failed: why */
} job;

struct web_imports {
    /* guards jobs (the list and each job's fields below `state`), reserved and stopping */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* signalled when a job is queued and when stopping */
    pthread_t thread;
    job *jobs;
    int reserved; /* uploads being received, each holding a place in the queue */
    int stopping;
    _Atomic int cancel;   /* set at shutdown: the running import stops before its next chunk */
    const char *conninfo; /* borrowed from the server's frozen web_config */
    long long max_bytes;
    char tmp_root[200];
};

/* ---- small things ------------------------------------------------------------------------ */

static double
mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *
path_in(const job *j, const char *file)
{
    return core_sprintf("%s/%s", j->dir, file);
}

static void
unlink_in(const job *j, const char *file)
{
    char *p = path_in(j, file);
    if (unlink(p) < 0 && errno != ENOENT)
        core_log(CORE_LOG_WARN, "import %s: cannot delete %s: %s", j->id, p, strerror(errno));
    free(p);
}

/* The upload (and its folder) and the mapping: not needed once the job has run. */
static void
remove_inputs(const job *j)
{
    char *in = path_in(j, "in"), *file = core_sprintf("%s/%s", in, j->name);
    if (unlink(file) < 0 && errno != ENOENT)
        core_log(CORE_LOG_WARN, "import %s: cannot delete %s: %s", j->id, file, strerror(errno));
    unlink_in(j, "in/upload.part");
    if (rmdir(in) < 0 && errno != ENOENT)
        core_log(CORE_LOG_WARN, "import %s: cannot delete %s: %s", j->id, in, strerror(errno));
    unlink_in(j, "mapping.json");
    free(file);
    free(in);
}

/* Delete every file of the job and the job itself. */
static void
job_free(job *j)
{
    if (!j)
        return;
    if (j->dir[0]) {
        remove_inputs(j);
        unlink_in(j, "report.json");
        unlink_in(j, "report.csv");
        if (rmdir(j->dir) < 0 && errno != ENOENT)
            core_log(CORE_LOG_WARN, "import %s: cannot delete %s: %s", j->id, j->dir,
                     strerror(errno));
    }
    free(j->encoding);
    free(j->crs);
    free(j);
}

/* Forget finished jobs older than KEEP_SECONDS or beyond the newest KEEP_JOBS. Lock held. */
static void
sweep(web_imports *im)
{
    double now = mono_now();
    int kept = 0;
    for (job **p = &im->jobs; *p;) {
        job *j = *p;
        int finished = j->state == JOB_DONE || j->state == JOB_FAILED;
        if (finished && (kept >= KEEP_JOBS || now - j->finished_at > KEEP_SECONDS)) {
            *p = j->next;
            job_free(j);
            continue;
        }
        kept += finished;
        p = &j->next;
    }
}

/* The job called id, or NULL. Lock held. */
static job *
job_find(web_imports *im, const char *id)
{
    for (job *j = im->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

/* The oldest queued job, or NULL. Lock held. */
static job *
next_queued(web_imports *im)
{
    job *found = NULL;
    for (job *j = im->jobs; j; j = j->next)
        if (j->state == JOB_QUEUED)
            found = j;
    return found;
}

static int
count_queued(web_imports *im)
{
    int n = 0;
    for (job *j = im->jobs; j; j = j->next)
        n += j->state == JOB_QUEUED;
    return n;
}

/* msg with every mention of the job's folder removed: a client never sees server paths. */
static void
error_set(job *j, const core_err *err)
{
    char msg[sizeof(j->error)];
    const char *s = msg;
    size_t dl = strlen(j->dir), n = 0;

    snprintf(msg, sizeof(msg), "%s%s%s", err->expr, err->expr[0] ? ": " : "", err->msg);
    while (*s && n + 1 < sizeof(j->error)) {
        if (strncmp(s, j->dir, dl) == 0) {
            s += dl;
            s += strncmp(s, "/in/", 4) == 0 ? 4 : *s == '/';
            continue;
        }
        j->error[n++] = *s++;
    }
    j->error[n] = '\0';
}

/* ---- the worker thread ------------------------------------------------------------------- */

/* Run job j (state running; its immutable fields are read without the lock). */
static void
job_run(web_imports *im, job *j)
{
    core_err err = CORE_ERR_INIT;
    imp_options o;
    imp_stats st;
    char *in = path_in(j, "in"), *file = core_sprintf("%s/%s", in, j->name);
    char *mapping = path_in(j, "mapping.json"), *report = path_in(j, "report.json");
    core_db *db = core_db_create(im->conninfo, "mahali-import");
    int rc;

    memset(&o, 0, sizeof(o));
    o.format = j->format;
    o.file = file;
    o.mapping_file = j->has_mapping ? mapping : NULL;
    o.report_file = report;
    o.encoding = j->encoding;
    o.crs = j->crs;
    o.actor = j->actor;
    o.delimiter = j->delimiter;
    o.dry_run = j->dry_run;
    o.deactivate_missing = j->deactivate_missing;
    o.fix_swapped = j->fix_swapped;
    o.rows_read = &j->rows;
    o.cancel = &im->cancel;
    rc = imp_run(&st, db, &o, &err);
    core_db_free(db);

    if (rc == 0)
        core_log(CORE_LOG_INFO,
                 "import %s: %s%ld rows, %ld created, %ld updated, %ld unchanged, %ld rejected",
                 j->id, j->dry_run ? "(dry run) " : "", st.rows, st.created, st.updated,
                 st.unchanged, st.rejected);
    else
        core_log(err.status >= 500 ? CORE_LOG_ERROR : CORE_LOG_INFO, "import %s failed: %s", j->id,
                 err.msg);

    /* once finished, j belongs to the list: a request may forget it as soon as it is unlocked */
    pthread_mutex_lock(&im->lock);
    j->stats = st;
    j->state = rc == 0 ? JOB_DONE : JOB_FAILED;
    if (rc < 0)
        error_set(j, &err);
    core_time_instant(j->finished);
    j->finished_at = mono_now();
    remove_inputs(j);
    sweep(im);
    pthread_mutex_unlock(&im->lock);
    core_err_clear(&err);
    free(report);
    free(mapping);
    free(file);
    free(in);
}

static void *
worker(void *payload)
{
    web_imports *im = payload;
    job *j;

    pthread_mutex_lock(&im->lock);
    for (;;) {
        while (!im->stopping && !(j = next_queued(im)))
            pthread_cond_wait(&im->wake, &im->lock);
        if (im->stopping)
            break;
        j->state = JOB_RUNNING;
        core_time_instant(j->started);
        pthread_mutex_unlock(&im->lock);
        /* the job stays in the list while it runs: sweep() only forgets finished jobs */
        job_run(im, j);
        pthread_mutex_lock(&im->lock);
    }
    pthread_mutex_unlock(&im->lock);
    reg_thread_cleanup();
    return NULL;
}

web_imports *
web_imports_create(const web_config *cfg)
{
    web_imports *im = calloc(1, sizeof(*im));
    const char *env = getenv("MAHALI_IMPORT_MAX_BYTES"), *tmp = getenv("TMPDIR");

    if (!im)
        abort();
    pthread_mutex_init(&im->lock, NULL);
    pthread_cond_init(&im->wake, NULL);
    atomic_init(&im->cancel, 0);
    im->conninfo = cfg->conninfo;
    im->max_bytes = MAX_BYTES_DEFAULT;
    if (env) {
        char *end;
        long long v = strtoll(env, &end, 10);
        if (end != env && !*end && v > 0)
            im->max_bytes = v;
        else
            core_log(CORE_LOG_WARN,
                     "MAHALI_IMPORT_MAX_BYTES=\"%.40s\" is not a number of bytes; using %lld", env,
                     im->max_bytes);
    }
    if (!tmp || tmp[0] != '/' || strlen(tmp) >= sizeof(im->tmp_root))
        tmp = "/tmp";
    core_strlcpy(im->tmp_root, tmp, sizeof(im->tmp_root));
    if (pthread_create(&im->thread, NULL, worker, im) != 0)
        abort();
    return im;
}

void
web_imports_free(web_imports *im)
{
    if (!im)
        return;
    pthread_mutex_lock(&im->lock);
    im->stopping = 1;
    atomic_store(&im->cancel, 1);
    pthread_cond_broadcast(&im->wake);
    pthread_mutex_unlock(&im->lock);
    pthread_join(im->thread, NULL);
    while (im->jobs) {
        job *j = im->jobs;
        im->jobs = j->next;
        job_free(j);
    }
    pthread_cond_destroy(&im->wake);
    pthread_mutex_destroy(&im->lock);
    free(im);
}

/* ---- responses --------------------------------------------------------------------------- */

static int fail_at(web_req *r, int status, core_issue code, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
fail_at(web_req *r, int status, core_issue code, const char *expr, const char *fmt, ...)
{
    core_err err = CORE_ERR_INIT;
    va_list ap;
    err.status = status;
    err.code = code;
    core_strlcpy(err.expr, expr ? expr : "", sizeof(err.expr));
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
    va_end(ap);
    web_send_error(r, &err);
    return status;
}

static int
send_err(web_req *r, core_err *err)
{
    int status = err->status ? err->status : 500;
    web_send_error(r, err);
    core_err_clear(err);
    return status;
}

static int
not_allowed(web_req *r, const char *allow)
{
    core_err err = CORE_ERR_INIT;
    json_t *oo;
    core_err_set(&err, 405, CORE_ISSUE_NOT_SUPPORTED, "%s is not supported here; allowed: %s",
                 r->ri->request_method, allow);
    oo = web_outcome(&err);
    web_send_json(r, 405, core_arena_sprintf(r->arena, "Allow: %s\r\n", allow), oo);
    json_decref(oo);
    return 405;
}

/* A JSON answer that is not a FHIR resource (the job's status). */
static int
send_plain_json(web_req *r, int status, const char *extra_headers, json_t *j)
{
    size_t len = 0;
    char *text = core_json_dump(j, &len);
    json_decref(j);
    if (!text)
        return fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "out of memory");
    web_send(r, status, "application/json; charset=utf-8", extra_headers, text, len);
    free(text);
    return status;
}

/* Answer 200 with head, then the rest of f (which it closes), then tail: the report files can
 * be large, so they are streamed, not loaded. The headers go out with head in one write. */
static int
send_stream(
    web_req *r, const char *ctype, const char *extra, const char *head, FILE *f, const char *tail)
{
    struct stat sb;
    size_t hl = strlen(head), tl = strlen(tail), size;
    char buf[1 << 16];
    const char *hdr;
    size_t n;

    if (fstat(fileno(f), &sb) < 0) {
        fclose(f);
        return fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "cannot read the report");
    }
    size = (size_t)sb.st_size;
    hdr = core_arena_sprintf(r->arena,
                             "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nContent-Type: %s\r\n"
                             "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n%s\r\n"
                             "%s",
                             hl + size + tl, ctype, extra ? extra : "", head);
    mg_write(r->conn, hdr, strlen(hdr));
    /* the file does not change any more (the job has finished), so size bytes are there */
    while (size > 0 && (n = fread(buf, 1, size < sizeof(buf) ? size : sizeof(buf), f)) > 0) {
        if (mg_write(r->conn, buf, n) <= 0)
            break;
        size -= n;
    }
    fclose(f);
    if (size > 0) {
        /* the client is gone (or the file was cut, which cannot happen once the job is done) */
        core_log(CORE_LOG_WARN, "%s: the report was not sent completely", r->ri->local_uri);
        return 200;
    }
    if (tl)
        mg_write(r->conn, tail, tl);
    return 200;
}

/* ---- POST [base]/$import ------------------------------------------------------------------- */

/* A true/false parameter: 0 or 1, or -1 after answering 400. */
static int
bool_param(web_req *r, const char *name)
{
    const char *v = web_query(r, name);
    char clip[CORE_CLIP_SIZE];
    if (!v || strcmp(v, "false") == 0)
        return 0;
    if (strcmp(v, "true") == 0)
        return 1;
    fail_at(r, 400, CORE_ISSUE_VALUE, name, "%s must be true or false (got \"%s\")", name,
            core_clip(clip, v, strlen(v)));
    return -1;
}

/* filename=: the upload's base name, as the report and the provenance of each resource give
 * it (the CLI records the file's name; a CSV's inferred identifier systems derive from it).
 * 0, or the status after answering 400. */
static int
file_name(web_req *r, char out[FILENAME_MAX_LEN + 8], imp_format format)
{
    static const char *const ext[] = { "csv", "geojson", "json", "json", "xml" };
    const char *v = web_query(r, "filename");
    json_t *utf8;
    size_t n;

    if (!v) {
        snprintf(out, FILENAME_MAX_LEN + 8, "upload.%s", ext[format]);
        return 0;
    }
    n = strlen(v);
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\')
            n = 0;
    utf8 = n ? json_string(v) : NULL;
    if (!utf8 || n > FILENAME_MAX_LEN || v[0] == '.') {
        json_decref(utf8);
        return fail_at(r, 400, CORE_ISSUE_VALUE, "filename",
                       "filename must be a file's base name: 1 to %d bytes of UTF-8, without "
                       "'/', '\\', control characters or a leading '.'",
                       FILENAME_MAX_LEN);
    }
    json_decref(utf8);
    core_strlcpy(out, v, FILENAME_MAX_LEN + 8);
    return 0;
}

/* The parameters into j (which is not queued yet). 0, or the status after answering (400;
 * 500 when PROJ has no EPSG database). */
static int
read_params(web_req *r, job *j, const char **mapping)
{
    const char *fmt = web_query(r, "format"), *v;
    char clip[CORE_CLIP_SIZE];
    core_err err = CORE_ERR_INIT;
    imp_options o;
    int f, b;

    if (!fmt || !*fmt)
        return fail_at(r, 400, CORE_ISSUE_REQUIRED, "format",
                       "format is required: csv, geojson, dhis2, fhir or csd");
    if ((f = imp_format_find(fmt)) < 0)
        return fail_at(r, 400, CORE_ISSUE_VALUE, "format",
                       "format must be csv, geojson, dhis2, fhir or csd (got \"%s\")",
                       core_clip(clip, fmt, strlen(fmt)));
    j->format = (imp_format)f;
    if ((b = bool_param(r, "dry_run")) < 0)
        return 400;
    j->dry_run = b;
    if ((b = bool_param(r, "deactivate_missing")) < 0)
        return 400;
    j->deactivate_missing = b;
    if ((b = bool_param(r, "fix_swapped")) < 0)
        return 400;
    j->fix_swapped = b;
    if ((v = web_query(r, "delimiter"))) {
        if (strcmp(v, "tab") == 0 || strcmp(v, "\\t") == 0)
            j->delimiter = '\t';
        else if (strlen(v) == 1 && strchr(",;|\t", v[0]))
            j->delimiter = v[0];
        else
            return fail_at(r, 400, CORE_ISSUE_VALUE, "delimiter",
                           "delimiter must be one of , ; | tab (got \"%s\")",
                           core_clip(clip, v, strlen(v)));
    }
    if ((v = web_query(r, "encoding")))
        j->encoding = core_strdup(v);
    if ((v = web_query(r, "crs")))
        j->crs = core_strdup(v);
    *mapping = web_query(r, "mapping");
    if (*mapping && j->format != IMP_CSV && j->format != IMP_GEOJSON)
        return fail_at(r, 400, CORE_ISSUE_NOT_SUPPORTED, "mapping",
                       "mapping applies to csv and geojson imports only (format is %s)", fmt);
    if ((b = file_name(r, j->name, j->format)) != 0)
        return b;
    /* what the import would refuse before reading a row is refused now, with the same code */
    memset(&o, 0, sizeof(o));
    o.format = j->format;
    o.encoding = j->encoding;
    o.crs = j->crs;
    if (imp_options_check(&o, *mapping, *mapping ? strlen(*mapping) : 0, &err) < 0)
        return send_err(r, &err);
    return 0;
}

/* Write text to the job's file; 0 or -1 (logged). */
static int
write_file(const job *j, const char *file, const char *text, size_t len)
{
    char *p = path_in(j, file);
    FILE *f = fopen(p, "wbx");
    int bad = !f || fwrite(text, 1, len, f) != len;
    if (f)
        bad |= fclose(f) != 0;
    if (bad)
        core_log(CORE_LOG_ERROR, "import %s: cannot write %s: %s", j->id, p, strerror(errno));
    free(p);
    return bad ? -1 : 0;
}

/* Stream the body into the job's folder as in/<name> (".gz" added when it is gzip data, by its
 * magic bytes, so that the importer decompresses it; dropped when it is not). 0, or the status
 * after answering (400 no or short body, 413, 415, 500). */
static int
receive_body(web_req *r, web_imports *im, job *j)
{
    const char *te = mg_get_header(r->conn, "Transfer-Encoding");
    const char *ce = mg_get_header(r->conn, "Content-Encoding");
    long long clen = r->ri->content_length, total = 0;
    char *part = NULL, *final = NULL, *in = path_in(j, "in");
    char buf[1 << 16];
    unsigned char magic[2] = { 0, 0 };
    FILE *f = NULL;
    int n, rc = 500;
    size_t nl;

    if (te && mg_get_header(r->conn, "Content-Length")) {
        rc = fail_at(r, 400, CORE_ISSUE_STRUCTURE, NULL,
                     "a request may not carry both Content-Length and Transfer-Encoding");
        goto done;
    }
    if (ce && strcasecmp(ce, "gzip") != 0 && strcasecmp(ce, "identity") != 0) {
        rc = fail_at(r, 415, CORE_ISSUE_NOT_SUPPORTED, NULL,
                     "Content-Encoding \"%.40s\" is not supported; send the file as it is, or gzip",
                     ce);
        goto done;
    }
    if (clen > im->max_bytes) {
        rc = fail_at(r, 413, CORE_ISSUE_TOO_LONG, NULL, "the file is %lld bytes; the limit is %lld",
                     clen, im->max_bytes);
        goto done;
    }
    if (clen <= 0 && !te) {
        rc = fail_at(r, 400, CORE_ISSUE_REQUIRED, NULL,
                     "the request has no body: send the file to import as the body");
        goto done;
    }
    if (mkdir(in, 0700) < 0) {
        core_log(CORE_LOG_ERROR, "import %s: cannot create %s: %s", j->id, in, strerror(errno));
        rc = fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "cannot store the upload");
        goto done;
    }
    part = path_in(j, "in/upload.part");
    if (!(f = fopen(part, "wbx"))) {
        core_log(CORE_LOG_ERROR, "import %s: cannot create %s: %s", j->id, part, strerror(errno));
        rc = fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "cannot store the upload");
        goto done;
    }
    while ((n = mg_read(r->conn, buf, sizeof(buf))) > 0) {
        for (int k = 0; k < n && total + k < 2; k++)
            magic[total + k] = (unsigned char)buf[k];
        total += n;
        if (total > im->max_bytes) {
            rc = fail_at(r, 413, CORE_ISSUE_TOO_LONG, NULL,
                         "the file is larger than the limit of %lld bytes", im->max_bytes);
            goto done;
        }
        if (fwrite(buf, 1, (size_t)n, f) != (size_t)n) {
            core_log(CORE_LOG_ERROR, "import %s: cannot write %s: %s", j->id, part,
                     strerror(errno));
            rc = fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "cannot store the upload");
            goto done;
        }
    }
    if (fclose(f) != 0) {
        f = NULL;
        core_log(CORE_LOG_ERROR, "import %s: cannot write %s: %s", j->id, part, strerror(errno));
        rc = fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "cannot store the upload");
        goto done;
    }
    f = NULL;
    if (n < 0 || (clen > 0 && total < clen)) {
        rc = fail_at(r, 400, CORE_ISSUE_STRUCTURE, NULL,
                     "the body ended after %lld bytes, before its end", total);
        goto done;
    }
    if (total == 0) {
        rc = fail_at(r, 400, CORE_ISSUE_REQUIRED, NULL,
                     "the request has no body: send the file to import as the body");
        goto done;
    }
    {
        int gz = total >= 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        if (ce && strcasecmp(ce, "gzip") == 0 && !gz) {
            rc = fail_at(r, 400, CORE_ISSUE_STRUCTURE, NULL,
                         "Content-Encoding is gzip but the body is not gzip data");
            goto done;
        }
        nl = strlen(j->name);
        if (gz && !(nl > 3 && strcmp(j->name + nl - 3, ".gz") == 0))
            strcat(j->name, ".gz"); /* room: name holds FILENAME_MAX_LEN + 8 */
        else if (!gz && nl > 3 && strcmp(j->name + nl - 3, ".gz") == 0)
            j->name[nl - 3] = '\0';
    }
    final = core_sprintf("%s/%s", in, j->name);
    if (rename(part, final) < 0) {
        core_log(CORE_LOG_ERROR, "import %s: cannot rename %s: %s", j->id, part, strerror(errno));
        rc = fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "cannot store the upload");
        goto done;
    }
    rc = 0;
done:
    if (f)
        fclose(f);
    free(final);
    free(part);
    free(in);
    return rc;
}

static int
do_submit(web_req *r)
{
    web_imports *im = r->imports;
    job *j = calloc(1, sizeof(*j));
    const char *mapping = NULL;
    unsigned char rnd[16];
    char *tmpl = NULL;
    int reserved = 0, status;
    const char *loc;
    json_t *out;

    if (!j)
        abort();
    atomic_init(&j->rows, 0);
    if ((status = read_params(r, j, &mapping)) != 0)
        goto fail;
    core_strlcpy(j->actor, r->who.name[0] ? r->who.name : "admin", sizeof(j->actor));
    core_random(rnd, sizeof(rnd));
    for (int i = 0; i < 16; i++)
        snprintf(j->id + 2 * i, 3, "%02x", rnd[i]);

    /* a place in the queue before the upload is received: bounded disk use */
    pthread_mutex_lock(&im->lock);
    sweep(im);
    if (!im->stopping && im->reserved + count_queued(im) < QUEUE_MAX) {
        im->reserved++;
        reserved = 1;
    }
    status = im->stopping ? 503 : 429;
    pthread_mutex_unlock(&im->lock);
    if (!reserved) {
        core_err err = CORE_ERR_INIT;
        json_t *oo;
        if (status == 503) {
            fail_at(r, 503, CORE_ISSUE_TRANSIENT, NULL, "the server is stopping");
            goto fail;
        }
        core_err_set(&err, 429, CORE_ISSUE_THROTTLED,
                     "%d imports are already waiting; try again when one has finished", QUEUE_MAX);
        oo = web_outcome(&err);
        web_send_json(r, 429, core_arena_sprintf(r->arena, "Retry-After: %d\r\n", RETRY_AFTER), oo);
        json_decref(oo);
        goto fail;
    }

    tmpl = core_sprintf("%s/mahali-import-XXXXXX", im->tmp_root);
    if (!mkdtemp(tmpl) || strlen(tmpl) >= sizeof(j->dir)) {
        core_log(CORE_LOG_ERROR, "import: cannot create a folder in %s: %s", im->tmp_root,
                 strerror(errno));
        status = fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "cannot store the upload");
        goto fail;
    }
    core_strlcpy(j->dir, tmpl, sizeof(j->dir));
    if (mapping) {
        if (write_file(j, "mapping.json", mapping, strlen(mapping)) < 0) {
            status = fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "cannot store the mapping");
            goto fail;
        }
        j->has_mapping = 1;
    }
    if ((status = receive_body(r, im, j)) != 0)
        goto fail;
    core_time_instant(j->submitted);
    j->state = JOB_QUEUED;
    /* built while j is still ours: once queued, the worker runs it and a request may forget it */
    out = json_pack("{s:s, s:s}", "job", j->id, "status", "queued");
    loc = core_arena_sprintf(r->arena, "Location: %s/$import/%s\r\n", r->base, j->id);
    core_log(CORE_LOG_INFO, "import %s queued: %s%s, %s by %s", j->id, format_names[j->format],
             j->dry_run ? " (dry run)" : "", j->name, j->actor);

    pthread_mutex_lock(&im->lock);
    im->reserved--;
    reserved = 0;
    if (im->stopping) {
        pthread_mutex_unlock(&im->lock);
        json_decref(out);
        status = fail_at(r, 503, CORE_ISSUE_TRANSIENT, NULL, "the server is stopping");
        goto fail;
    }
    j->next = im->jobs;
    im->jobs = j;
    pthread_cond_signal(&im->wake);
    pthread_mutex_unlock(&im->lock);
    free(tmpl);
    return send_plain_json(r, 202, loc, out);
fail:
    if (reserved) {
        pthread_mutex_lock(&im->lock);
        im->reserved--;
        pthread_mutex_unlock(&im->lock);
    }
    free(tmpl);
    job_free(j);
    return status;
}

/* ---- GET [base]/$import/{job}[/report.csv] ----------------------------------------------- */

static json_t *
str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static int
do_status(web_req *r, const char *id)
{
    web_imports *im = r->imports;
    job *j;
    FILE *report = NULL;
    json_t *out = NULL;
    char clip[CORE_CLIP_SIZE], *head;
    job_state state = JOB_QUEUED;
    size_t hl;
    int status;

    /* the answer is built under the lock (small), the report streamed after it */
    pthread_mutex_lock(&im->lock);
    sweep(im);
    if ((j = job_find(im, id))) {
        state = j->state;
        out =
            json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:o, s:{s:I}}", "job", j->id, "status",
                      state_names[state], "format", format_names[j->format], "dry_run", j->dry_run,
                      "submitted", str_or_null(j->submitted), "started", str_or_null(j->started),
                      "finished", str_or_null(j->finished), "progress", "rows",
                      (json_int_t)(state >= JOB_DONE ? j->stats.rows : atomic_load(&j->rows)));
        if (out && state == JOB_FAILED) {
            /* a message cut by snprintf may end inside a UTF-8 sequence: drop the part */
            size_t len = strlen(j->error);
            json_t *e;
            while (!(e = json_stringn(j->error, len)) && len > 0)
                len--;
            json_object_set_new(out, "error", e ? e : json_string(""));
        }
        if (state == JOB_DONE) {
            /* opened under the lock: forgetting the job unlinks the file, the open one stays */
            char *p = path_in(j, "report.json");
            if (!(report = fopen(p, "rb")))
                core_log(CORE_LOG_ERROR, "import %s: cannot open %s: %s", j->id, p,
                         strerror(errno));
            free(p);
        }
    }
    pthread_mutex_unlock(&im->lock);
    if (!j)
        return fail_at(r, 404, CORE_ISSUE_NOT_FOUND, NULL, "there is no import job \"%s\"",
                       core_clip(clip, id, strlen(id)));
    if (!out || (state == JOB_DONE && !report)) {
        json_decref(out);
        if (report)
            fclose(report);
        return fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "cannot read the report");
    }
    if (!report)
        return send_plain_json(r, 200, NULL, out);
    /* {..., "report": <report.json as the CLI writes it>} */
    head = core_json_dump(out, &hl);
    json_decref(out);
    if (!head) {
        fclose(report);
        return fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "out of memory");
    }
    head[hl - 1] = '\0'; /* the closing brace comes after the report */
    status = send_stream(r, "application/json; charset=utf-8", NULL,
                         core_arena_sprintf(r->arena, "%s,\"report\":", head), report, "}");
    free(head);
    return status;
}

static int
do_report_csv(web_req *r, const char *id)
{
    web_imports *im = r->imports;
    job *j;
    FILE *f = NULL;
    job_state state = JOB_QUEUED;
    char clip[CORE_CLIP_SIZE];

    pthread_mutex_lock(&im->lock);
    sweep(im);
    if ((j = job_find(im, id)) && (state = j->state) == JOB_DONE) {
        char *p = path_in(j, "report.csv");
        f = fopen(p, "rb");
        free(p);
    }
    pthread_mutex_unlock(&im->lock);
    if (!j)
        return fail_at(r, 404, CORE_ISSUE_NOT_FOUND, NULL, "there is no import job \"%s\"",
                       core_clip(clip, id, strlen(id)));
    if (state != JOB_DONE)
        return fail_at(r, 404, CORE_ISSUE_NOT_FOUND, NULL,
                       "import job \"%s\" has no report (it is %s)",
                       core_clip(clip, id, strlen(id)), state_names[state]);
    if (!f) {
        core_log(CORE_LOG_ERROR, "import %s: cannot open its CSV report: %s", id, strerror(errno));
        return fail_at(r, 500, CORE_ISSUE_EXCEPTION, NULL, "cannot read the report");
    }
    return send_stream(r, "text/csv; charset=utf-8",
                       core_arena_sprintf(r->arena,
                                          "Content-Disposition: attachment; "
                                          "filename=\"import-%s-report.csv\"\r\n",
                                          id),
                       "", f, "");
}

/* ---- routing ----------------------------------------------------------------------------- */

int
web_import(web_req *r, int nseg, char **seg)
{
    const char *m = r->ri->request_method;

    /* RELIABILITY.md's matrix: running an import is for admins only */
    if (r->who.role == REG_ROLE_NONE)
        return fail_at(r, 401, CORE_ISSUE_LOGIN, NULL, "$import needs a bearer token (role admin)");
    if (r->who.role < REG_ROLE_ADMIN)
        return fail_at(r, 403, CORE_ISSUE_FORBIDDEN, NULL, "role %s may not run imports; admin may",
                       reg_role_name(r->who.role));
    if (!r->imports)
        return fail_at(r, 503, CORE_ISSUE_TRANSIENT, NULL, "imports are not available");
    if (nseg == 1)
        return strcmp(m, "POST") == 0 ? do_submit(r) : not_allowed(r, "POST");
    if (nseg == 2)
        return strcmp(m, "GET") == 0 ? do_status(r, seg[1]) : not_allowed(r, "GET");
    if (nseg == 3 && strcmp(seg[2], "report.csv") == 0)
        return strcmp(m, "GET") == 0 ? do_report_csv(r, seg[1]) : not_allowed(r, "GET");
    return fail_at(r, 404, CORE_ISSUE_NOT_FOUND, NULL, "nothing is served at \"%.200s\"",
                   r->ri->local_uri);
}
