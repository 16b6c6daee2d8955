/* The import engine (`mahali import`, docs/IMPORT.md). A source reader turns the file into
 * records (imp_emit); records are written in chunks, one transaction each, through the registry
 * (reg_check + reg_write_batch: the REST write path). A chunk commits together with the import's
 * checkpoint and its issues, so a killed import resumes after the last committed chunk. A chunk
 * the database refuses is redone record by record under savepoints, so one bad record costs only
 * itself. Identity: a record is the facility that already carries one of its identifiers, else
 * a new one whose ids derive from its first identifier (a re-run makes the same ids). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "importers/imp_int.h"

#define CHUNK_DEFAULT 1000
#define SPLIT_MIN     400 /* resources in a chunk worth writing on two connections */
#define CHUNK_MAX     20000

struct imp_ctx {
    const imp_options *o;
    core_db *db;
    imp_stats st;
    imp_mapping *map;
    core_arena *arena;     /* the current chunk's strings */
    core_arena *row_arena; /* the reader's strings for the records being read */
    int rows_in_arena;
    long chunks;     /* committed chunks that wrote something */
    int split;       /* this chunk's writes may go half on o->second_db */
    int b_open;      /* o->second_db holds this chunk's open transaction */
    long split_line; /* with b_open: the first line of the second half */
    long st_written; /* created + updated when the last such chunk committed */
    imp_rec *recs;
    int nrecs, cap;
    json_t *read_issues;  /* issues raised while reading the current chunk */
    json_t *write_issues; /* issues raised while writing it (redone on a retry) */
    int writing;
    FILE *issues;        /* every issue of the import so far, one JSON object per line */
    json_t *seen;        /* seen_key → line: duplicates within the file */
    json_t *touched;     /* Location ids this file names: --deactivate-missing keeps them */
    json_t *juris;       /* jurisdiction key → [loc, org, committed] */
    json_t *pending;     /* jurisdiction keys created in the open transaction */
    json_t *parents;     /* "system|value" → [loc, org]: parents by identifier */
    json_t *root;        /* admin_root → [loc, org] */
    json_t *dry_counted; /* --dry-run: jurisdiction keys counted as created */
    json_t *chunk_keys;  /* identifiers of the records in the current chunk */
    imp_prov prov;
    char checksum[80];
    char source[80];
    const char *base;
    long seq;        /* records handed over so far (the checkpoint counts these) */
    long resume_seq; /* the first resume_seq records were done by an earlier run */
    int skipping;    /* the record being handed over is one of those */
    long read_errors;
    long file_bytes;
    long bytes_done;
    double t0, last_progress;
};

/* ---- small things -------------------------------------------------------------------------- */

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
imp_format_find(const char *name)
{
    static const char *const names[] = { "csv", "geojson", "dhis2", "fhir", "csd" };
    for (int i = 0; i < 5; i++)
        if (name && strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

core_arena *
imp_arena(imp_ctx *c)
{
    return c->row_arena;
}

/* The reader's record has been copied (or dropped): its strings can go, every few hundred
 * rows (an arena per row costs more in malloc than the row itself). */
static int
row_done(imp_ctx *c, int rc)
{
    if (++c->rows_in_arena >= 256) {
        core_arena_destroy(c->row_arena);
        c->row_arena = core_arena_create();
        c->rows_in_arena = 0;
    }
    return rc;
}

const imp_options *
imp_opts(imp_ctx *c)
{
    return c->o;
}

core_db *
imp_db(imp_ctx *c)
{
    return c->db;
}

void
imp_set_mapping(imp_ctx *c, imp_mapping *m)
{
    imp_mapping_free(c->map);
    c->map = m;
}

void
imp_read_failed(imp_ctx *c)
{
    if (c->seq++ < c->resume_seq)
        return;
    c->st.rows++;
    c->st.rejected++;
    c->read_errors++;
}

void
imp_reject_row(imp_ctx *c, long line)
{
    (void)line;
    if (c->seq++ < c->resume_seq)
        return;
    c->st.rows++;
    c->st.rejected++;
}

void
imp_transaction_done(imp_ctx *c, long rows, long created, long updated, long rejected)
{
    c->st.rows += rows;
    c->st.created += created;
    c->st.updated += updated;
    c->st.unchanged += rows - created - updated - rejected;
    c->st.rejected += rejected;
}

static void progress(imp_ctx *c, int final);

void
imp_progress_bytes(imp_ctx *c, long pos)
{
    c->bytes_done = pos;
    progress(c, 0);
}

void
imp_issue(imp_ctx *c,
          long line,
          const char *severity,
          const char *column,
          const char *value,
          const char *code,
          const char *fmt,
          ...)
{
    char msg[512];
    va_list ap;
    json_t *i;

    if (c->skipping || (!c->writing && c->seq < c->resume_seq))
        return; /* the earlier run reported it; its issues are read back */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    i = json_pack("{s:I,s:s,s:s,s:s}", "line", (json_int_t)line, "severity", severity, "code", code,
                  "message", msg);
    json_object_set_new(i, "column", column ? json_string(column) : json_null());
    json_object_set_new(i, "value", value ? json_string(value) : json_null());
    if (!json_object_get(i, "value")) /* not UTF-8: cannot happen for decoded cells */
        json_object_set_new(i, "value", json_null());
    json_array_append_new(c->writing ? c->write_issues : c->read_issues, i);
}

/* "system|value" */
static void
ident_key(char *out, size_t cap, const char *system, const char *value)
{
    snprintf(out, cap, "%s|%s", system, value);
}

/* A stable id from text: 32 hex digits of its SHA-256. */
static void
derive_id(char out[65], const char *prefix, const char *text)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[65];
    crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
    sodium_bin2hex(hex, sizeof(hex), h, 16);
    snprintf(out, 65, "%.8s%.32s", prefix, hex);
}

/* The id a reference "Type/id" names, or NULL. */
static const char *
ref_id(const json_t *res, const char *member, const char *type)
{
    const char *ref = json_string_value(json_object_get(json_object_get(res, member), "reference"));
    size_t n = strlen(type);
    if (!ref || strncmp(ref, type, n) != 0 || ref[n] != '/')
        return NULL;
    return ref + n + 1;
}

/* ---- progress ------------------------------------------------------------------------------- */

static void
progress(imp_ctx *c, int final)
{
    double t = now_s(), el = t - c->t0, rate;
    if (c->o->rows_read)
        atomic_store_explicit(c->o->rows_read, c->st.rows, memory_order_relaxed);
    if (!c->o->log || !c->o->progress)
        return;
    if (!final && t - c->last_progress < (c->o->progress == 2 ? 0.2 : 5.0))
        return;
    c->last_progress = t;
    rate = el > 0 ? (double)c->st.rows / el : 0;
    if (c->o->progress == 2) {
        double frac = c->file_bytes > 0 ? (double)c->bytes_done / (double)c->file_bytes : 0;
        int w = 30, k;
        char bar[40];
        if (frac > 1)
            frac = 1;
        k = (int)(frac * w);
        for (int i = 0; i < w; i++)
            bar[i] = i < k ? '#' : '.';
        bar[w] = '\0';
        double eta = frac > 0.001 ? el * (1 - frac) / frac : 0;
        fprintf(c->o->log, "\r[%s] %3.0f%% %ld rows %.0f rows/s ETA %.0fs   ", bar, frac * 100,
                c->st.rows, rate, eta);
        if (final)
            fputc('\n', c->o->log);
    } else {
        fprintf(c->o->log,
                "mahali import: %ld rows, %.0f rows/s, %ld created, %ld updated, %ld "
                "unchanged, %ld rejected\n",
                c->st.rows, rate, c->st.created, c->st.updated, c->st.unchanged, c->st.rejected);
    }
    fflush(c->o->log);
}

/* ---- parents --------------------------------------------------------------------------------- */

/* A name's key for jurisdiction ids: lower-case ASCII, white space runs as one space. */
static void
name_key(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    int sp = 0;
    for (; *s && n + 2 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == ' ' || ch == '\t' || (ch == 0xC2 && (unsigned char)s[1] == 0xA0)) {
            if (ch == 0xC2)
                s++;
            sp = 1;
            continue;
        }
        if (sp && n)
            out[n++] = ' ';
        sp = 0;
        out[n++] = (char)(ch < 128 ? (ch >= 'A' && ch <= 'Z' ? ch + 32 : ch) : ch);
    }
    out[n] = '\0';
}

/* Write the records' resources: org then location for each. */
static int
write_recs(imp_ctx *c, imp_rec **recs, int n, json_t **locs, json_t **orgs, core_err *err);

/* The jurisdiction named name under Location parent (NULL: a root): found by name, else
 * created (Location + Organization) in the open transaction. */
static int
jurisdiction(char loc[65],
             char org[65],
             imp_ctx *c,
             const char *parent_loc,
             const char *parent_org,
             const char *name,
             long line,
             core_err *err)
{
    char nk[256], key[400];
    json_t *e, *found;

    name_key(nk, sizeof(nk), name);
    snprintf(key, sizeof(key), "%s\x1f%s", parent_loc ? parent_loc : "", nk);
    if ((e = json_object_get(c->juris, key))) {
        core_strlcpy(loc, json_string_value(json_array_get(e, 0)), 65);
        core_strlcpy(org, json_string_value(json_array_get(e, 1)), 65);
        return 0;
    }
    if (reg_find_jurisdictions(&found, c->db, parent_loc, name, err) < 0)
        return -1;
    if (json_array_size(found)) {
        json_t *j = json_array_get(found, 0);
        const char *o = ref_id(j, "managingOrganization", "Organization");
        core_strlcpy(loc, json_string_value(json_object_get(j, "id")), 65);
        core_strlcpy(org, o ? o : "", 65);
        json_object_set_new(c->juris, key, json_pack("[s,s,b]", loc, org, 1));
        json_decref(found);
        return 0;
    }
    json_decref(found);
    /* a new jurisdiction: ids from its place in the tree, so a re-run makes the same */
    imp_rec r;
    json_t *l, *g;
    memset(&r, 0, sizeof(r));
    r.kind = IMP_REC_JURISDICTION;
    r.name = name;
    r.status = "active";
    r.line = line;
    derive_id(r.loc_id, "j", key);
    snprintf(r.org_id, sizeof(r.org_id), "%.60s-org", r.loc_id);
    imp_prov prov = c->prov;
    prov.line = line;
    l = imp_build_location(NULL, &r, &prov, parent_loc);
    g = imp_build_organization(NULL, &r, &prov, parent_org && *parent_org ? parent_org : NULL);
    imp_rec *rp = &r;
    int rc = write_recs(c, &rp, 1, &l, &g, err);
    json_decref(l);
    json_decref(g);
    if (rc < 0)
        return -1;
    core_strlcpy(loc, r.loc_id, 65);
    core_strlcpy(org, r.org_id, 65);
    json_object_set_new(c->juris, key, json_pack("[s,s,b]", loc, org, 0));
    if (r.status_out == 201)
        json_array_append_new(c->pending, json_string(key));
    return 0;
}

/* 1 when loc has the mCSD type code (facility, jurisdiction). */
static int
mcsd_typed(const json_t *loc, const char *code)
{
    const json_t *cc, *cd;
    size_t i, k;
    json_array_foreach (json_object_get(loc, "type"), i, cc)
        json_array_foreach (json_object_get(cc, "coding"), k, cd) {
            const char *s = json_string_value(json_object_get(cd, "system"));
            const char *c = json_string_value(json_object_get(cd, "code"));
            if (s && c && strcmp(s, IMP_MCSD_TYPES) == 0 && strcmp(c, code) == 0)
                return 1;
        }
    return 0;
}

/* The parent a row names by its Location id (mapping "parent_id"), when the levels cannot
 * name it: a live Location that is not an mCSD jurisdiction (a facility, or a Location without
 * the type). 1 with loc/org set, 0 when the levels decide, -1 with err (database). */
static int
given_parent(char loc[65], char org[65], imp_ctx *c, const imp_rec *rec, core_err *err)
{
    char key[100];
    json_t *e;
    snprintf(key, sizeof(key), "parent_id\x1f%s", rec->given_parent);
    if (!(e = json_object_get(c->root, key))) {
        json_t *res = NULL;
        core_err e2 = CORE_ERR_INIT;
        if (reg_read(&res, NULL, NULL, c->db, REG_LOCATION, rec->given_parent, &e2) < 0) {
            if (e2.status >= 500) {
                *err = e2;
                return -1;
            }
            core_err_clear(&e2); /* gone: the levels decide */
            e = json_pack("[s,s,b]", "", "", 0);
        } else {
            const char *o = ref_id(res, "managingOrganization", "Organization");
            e = json_pack("[s,s,b]", rec->given_parent, o ? o : "",
                          !mcsd_typed(res, "jurisdiction"));
            json_decref(res);
        }
        json_object_set_new(c->root, key, e);
    }
    if (!json_is_true(json_array_get(e, 2)))
        return 0;
    core_strlcpy(loc, json_string_value(json_array_get(e, 0)), 65);
    core_strlcpy(org, json_string_value(json_array_get(e, 1)), 65);
    return 1;
}

/* The parent (Location, Organization) of rec: the admin levels, its parent identifier, or the
 * mapping's root. loc/org "" when none. */
static int
parent_of(char loc[65], char org[65], imp_ctx *c, imp_rec *rec, core_err *err)
{
    loc[0] = org[0] = '\0';
    if (rec->given_parent) {
        int g = given_parent(loc, org, c, rec, err);
        if (g != 0)
            return g < 0 ? -1 : 0;
    }
    if (rec->admin_root) {
        json_t *e = json_object_get(c->root, rec->admin_root);
        if (!e) {
            json_t *res = NULL;
            if (reg_read(&res, NULL, NULL, c->db, REG_LOCATION, rec->admin_root, err) < 0) {
                core_strlcpy(err->expr, "jurisdictions.root", sizeof(err->expr));
                return -1;
            }
            const char *o = ref_id(res, "managingOrganization", "Organization");
            e = json_pack("[s,s]", rec->admin_root, o ? o : "");
            json_object_set_new(c->root, rec->admin_root, e);
            json_decref(res);
        }
        core_strlcpy(loc, json_string_value(json_array_get(e, 0)), 65);
        core_strlcpy(org, json_string_value(json_array_get(e, 1)), 65);
    }
    for (int i = 0; i < rec->nadmin; i++) {
        char pl[65], po[65];
        core_strlcpy(pl, loc, sizeof(pl));
        core_strlcpy(po, org, sizeof(po));
        if (jurisdiction(loc, org, c, *pl ? pl : NULL, po, rec->admin[i], rec->line, err) < 0)
            return -1;
    }
    if (rec->parent_system && rec->parent_value) {
        char key[512];
        json_t *e;
        ident_key(key, sizeof(key), rec->parent_system, rec->parent_value);
        if (!(e = json_object_get(c->parents, key))) {
            json_t *keys = json_pack("[[s,s]]", rec->parent_system, rec->parent_value), *found;
            int rc = reg_find_by_identifiers(&found, c->db, REG_LOCATION, keys, err);
            json_decref(keys);
            if (rc < 0)
                return -1;
            json_t *res = json_object_get(found, key);
            if (res) {
                const char *o = ref_id(res, "managingOrganization", "Organization");
                e = json_pack("[s,s]", json_string_value(json_object_get(res, "id")), o ? o : "");
                json_object_set_new(c->parents, key, e);
            }
            json_decref(found);
        }
        if (e) {
            core_strlcpy(loc, json_string_value(json_array_get(e, 0)), 65);
            core_strlcpy(org, json_string_value(json_array_get(e, 1)), 65);
        } else {
            imp_issue(c, rec->line, "warning", "parent", rec->parent_value, "parent-not-found",
                      "the parent %s is neither in the file before this row nor in the "
                      "registry; the %s is kept without a parent",
                      rec->parent_value,
                      rec->kind == IMP_REC_FACILITY ? "facility" : "jurisdiction");
        }
    }
    return 0;
}

/* ---- writing a chunk ----------------------------------------------------------------------------
 */

/* Where the items of a chunk split in two halves, a record's items together: the number of
 * items of the first half; c->split_line becomes the line of the second half's first record
 * (CSV and GeoJSON lines increase). k when there is no second half. */
static size_t
split_point(imp_ctx *c, imp_rec **recs, int n, json_t **locs, json_t **orgs, size_t k)
{
    size_t mid = 0;
    int first2 = 0;
    for (; first2 < n && mid < k / 2; first2++)
        if (locs[first2])
            mid += orgs[first2] ? 2 : 1;
    while (first2 < n && !locs[first2])
        first2++;
    c->split_line = first2 < n ? recs[first2]->line : LONG_MAX;
    return first2 < n ? mid : k;
}

static int
write_recs(imp_ctx *c, imp_rec **recs, int n, json_t **locs, json_t **orgs, core_err *err)
{
    reg_batch_item *items = calloc((size_t)(2 * n) + 1, sizeof(*items));
    reg_actor who = { c->o->actor ? c->o->actor : "import", NULL, 0 };
    size_t failed, k = 0;
    int rc;

    if (!items)
        abort();
    for (int i = 0; i < n; i++) {
        if (!locs[i])
            continue;
        if (orgs[i])
            items[k++] = (reg_batch_item){ REG_ORGANIZATION, recs[i]->org_id, orgs[i], { 0 } };
        items[k++] =
            (reg_batch_item){ recs[i]->kind == IMP_REC_RESOURCE ? recs[i]->raw_type : REG_LOCATION,
                              recs[i]->loc_id,
                              locs[i],
                              { 0 } };
    }
    if (c->split && k >= SPLIT_MIN && split_point(c, recs, n, locs, orgs, k) < k) {
        /* half of the chunk on the second connection, in a transaction of its own that
         * flush commits (before the first's, which holds the checkpoint); a record's
         * Organization and Location stay together */
        size_t mid = split_point(c, recs, n, locs, orgs, k);
        core_err e2 = CORE_ERR_INIT;
        if (core_db_run(c->o->second_db, "BEGIN", err) < 0)
            rc = -1;
        else if (reg_write_batch_send(items + mid, k - mid, c->o->second_db, &who, err) < 0) {
            core_db_run(c->o->second_db, "ROLLBACK", &e2);
            rc = -1;
        } else {
            c->b_open = 1;
            rc = reg_write_batch(items, mid, &failed, c->db, &who, err);
            if (reg_write_batch_recv(items + mid, k - mid, c->o->second_db, rc < 0 ? &e2 : err) < 0)
                rc = -1;
        }
        core_err_clear(&e2);
    } else {
        rc = reg_write_batch(items, k, &failed, c->db, &who, err);
    }
    if (rc == 0) {
        k = 0;
        for (int i = 0; i < n; i++) {
            if (!locs[i])
                continue;
            reg_write *wo = orgs[i] ? &items[k++].w : NULL, *wl = &items[k++].w;
            recs[i]->status_out = wl->created ? 201 : (wl->noop && (!wo || wo->noop)) ? 304 : 200;
        }
    }
    for (size_t i = 0; i < 2 * (size_t)n; i++)
        reg_write_clear(&items[i].w);
    free(items);
    return rc;
}

/* Which element of a resource a validation error names → the column it came from. */
static const char *
column_of(const imp_rec *r, const char *expr)
{
    if (strstr(expr, ".name"))
        return r->name_column;
    if (strstr(expr, ".position"))
        return r->pos_column;
    if (strstr(expr, ".identifier") && r->nids)
        return r->ids[0].column;
    return NULL;
}

/* The members of meta that the store and the importer own: compared by neither. */
static int
owned_meta_member(const char *k)
{
    return strcmp(k, "versionId") == 0 || strcmp(k, "lastUpdated") == 0;
}

static int
is_provenance(const json_t *e)
{
    const char *u = json_string_value(json_object_get(e, "url"));
    return u && strcmp(u, REG_IMPORT_PROVENANCE_URL) == 0;
}

/* Whether meta.extension arrays a and b (either may be absent) hold the same elements in the
 * same order once the import's provenance is left out. */
static int
extensions_equal(const json_t *a, const json_t *b)
{
    size_t i = 0, j = 0, na = json_array_size(a), nb = json_array_size(b);
    for (;;) {
        while (i < na && is_provenance(json_array_get(a, i)))
            i++;
        while (j < nb && is_provenance(json_array_get(b, j)))
            j++;
        if (i == na || j == nb)
            return i == na && j == nb;
        if (!json_equal(json_array_get(a, i), json_array_get(b, j)))
            return 0;
        i++;
        j++;
    }
}

/* How many members of meta count: not the owned ones, nor an extension holding nothing but
 * provenance. */
static size_t
meta_members(const json_t *meta)
{
    const char *k;
    json_t *v;
    size_t n = 0;
    json_object_foreach ((json_t *)meta, k, v)
        if (!owned_meta_member(k) && (strcmp(k, "extension") != 0 || !extensions_equal(v, NULL)))
            n++;
    return n;
}

/* Whether two meta elements (either may be absent or not an object) agree on everything but
 * versionId, lastUpdated and the provenance extension (mahali_strip_meta), without copies. */
static int
meta_equal(const json_t *a, const json_t *b)
{
    const char *k;
    json_t *v;
    if (!json_is_object(a))
        a = NULL;
    if (!json_is_object(b))
        b = NULL;
    if (!a || !b)
        return (a ? meta_members(a) : 0) == (b ? meta_members(b) : 0);
    json_object_foreach ((json_t *)a, k, v) {
        if (owned_meta_member(k))
            continue;
        if (strcmp(k, "extension") == 0) {
            if (!extensions_equal(v, json_object_get(b, k)))
                return 0;
        } else if (!json_equal(v, json_object_get(b, k))) {
            return 0;
        }
    }
    return meta_members(a) == meta_members(b);
}

/* 1 when a and b differ at most in what the store and the importer own (mahali_strip_meta). */
static int
same_content(const json_t *a, const json_t *b)
{
    const char *k;
    json_t *v;
    size_t na = 0, nb = 0;
    json_object_foreach ((json_t *)a, k, v) {
        if (strcmp(k, "meta") == 0)
            continue;
        na++;
        if (!json_equal(v, json_object_get(b, k)))
            return 0;
    }
    json_object_foreach ((json_t *)b, k, v)
        nb += strcmp(k, "meta") != 0;
    return na == nb && meta_equal(json_object_get(a, "meta"), json_object_get(b, "meta"));
}

/* Resolve the logical references in j (any depth) to the live resources carrying their
 * identifiers. */
static int
resolve_refs(imp_ctx *c, imp_rec *r, json_t *j, core_err *err)
{
    if (json_is_array(j)) {
        json_t *e;
        size_t i;
        json_array_foreach (j, i, e)
            if (resolve_refs(c, r, e, err) < 0)
                return -1;
        return 0;
    }
    if (!json_is_object(j))
        return 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    json_t *ident = json_object_get(j, "identifier");
    const char *sys = json_string_value(json_object_get(ident, "system"));
    const char *val = json_string_value(json_object_get(ident, "value"));
    if (type && sys && val && !json_object_get(j, "reference") && reg_type_find(type) >= 0) {
        char key[600];
        json_t *e;
        snprintf(key, sizeof(key), "%s|%s|%s", type, sys, val);
        if (!(e = json_object_get(c->parents, key))) {
            json_t *keys = json_pack("[[s,s]]", sys, val), *found;
            int rc =
                reg_find_by_identifiers(&found, c->db, (reg_type)reg_type_find(type), keys, err);
            json_decref(keys);
            if (rc < 0)
                return -1;
            const char *k;
            json_t *v;
            json_object_foreach (found, k, v) {
                e = json_pack("[s]", json_string_value(json_object_get(v, "id")));
                json_object_set_new(c->parents, key, e);
            }
            json_decref(found);
        }
        if (e)
            json_object_set_new(
                j, "reference",
                json_sprintf("%s/%s", type, json_string_value(json_array_get(e, 0))));
        else
            imp_issue(c, r->line, "warning", "identifier", val, "reference-not-found",
                      "no %s carries the identifier %s|%s; the reference is kept as a logical "
                      "reference",
                      type, sys, val);
        return 0;
    }
    const char *k;
    json_t *v;
    json_object_foreach (j, k, v)
        if (resolve_refs(c, r, v, err) < 0)
            return -1;
    return 0;
}

/* A resource handed over as it is: its references resolved, its id found, checked. */
static int
build_raw(json_t **out, imp_ctx *c, imp_rec *r, core_err *err)
{
    json_t *res = json_deep_copy(r->raw), *id;
    reg_actor who = { c->o->actor ? c->o->actor : "import", NULL, 0 };
    *out = res;
    if (!res)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    if (resolve_refs(c, r, res, err) < 0)
        return -1;
    id = json_object_get(res, "id");
    if (json_is_string(id)) {
        core_strlcpy(r->loc_id, json_string_value(id), sizeof(r->loc_id));
    } else {
        json_t *keys = json_pack("[[s,s]]", r->ids[0].system, r->ids[0].value), *found;
        char key[512];
        int rc = reg_find_by_identifiers(&found, c->db, r->raw_type, keys, err);
        json_decref(keys);
        if (rc < 0)
            return -1;
        ident_key(key, sizeof(key), r->ids[0].system, r->ids[0].value);
        json_t *hit = json_object_get(found, key);
        if (hit)
            core_strlcpy(r->loc_id, json_string_value(json_object_get(hit, "id")), 65);
        else
            derive_id(r->loc_id, "r", key);
        json_decref(found);
        json_object_set_new(res, "id", json_string(r->loc_id));
    }
    imp_prov prov = c->prov;
    prov.line = r->line;
    imp__provenance(res, &prov);
    return reg_check(res, r->raw_type, &who, err);
}

/* Lay n records over what is stored, check them, look for swapped coordinates, and write.
 * Records that fail validation are marked failed (with an issue) and left out. -1: the
 * database refused the write (the caller rolls back) or failed. */
static int
write_chunk(imp_ctx *c, imp_rec **recs, int n, core_err *err)
{
    json_t *lkeys = json_array(), *lfound = NULL, *ofound = NULL, *pts = json_array(), *chk = NULL;
    json_t *used = NULL, *gfound = NULL;
    json_t **locs = calloc((size_t)n + 1, sizeof(json_t *)); /* built: new references */
    json_t **orgs = calloc((size_t)n + 1, sizeof(json_t *));
    json_t **sl = calloc((size_t)n + 1, sizeof(json_t *)); /* stored: borrowed from *found */
    json_t **so = calloc((size_t)n + 1, sizeof(json_t *));
    char(*ploc)[65] = calloc((size_t)n + 1, 65), (*porg)[65] = calloc((size_t)n + 1, 65);
    int rc = -1, *pi = calloc((size_t)n + 1, sizeof(int));

    if (!locs || !orgs || !sl || !so || !ploc || !porg || !pi)
        abort();
    /* parents first (jurisdictions are created on the way) */
    for (int i = 0; i < n; i++) {
        if (recs[i]->kind == IMP_REC_RESOURCE)
            continue;
        if (parent_of(ploc[i], porg[i], c, recs[i], err) < 0)
            goto done;
        for (int k = 0; k < recs[i]->nids; k++)
            json_array_append_new(
                lkeys, json_pack("[s,s]", recs[i]->ids[k].system, recs[i]->ids[k].value));
    }
    if (reg_find_by_identifiers(&lfound, c->db, REG_LOCATION, lkeys, err) < 0)
        goto done;
    {
        /* the rows that name their facility by its id (mapping "id") */
        json_t *gids = json_array();
        for (int i = 0; i < n; i++)
            if (recs[i]->kind != IMP_REC_RESOURCE && recs[i]->given_id)
                json_array_append_new(gids, json_string(recs[i]->given_id));
        int grc = reg_read_many(&gfound, c->db, REG_LOCATION, gids, err);
        json_decref(gids);
        if (grc < 0)
            goto done;
    }
    {
        /* the Organizations of the Locations found, by id */
        json_t *oids = json_array(), *v, *found[2] = { lfound, gfound };
        const char *k;
        for (int f = 0; f < 2; f++)
            json_object_foreach (found[f], k, v) {
                const char *o = ref_id(v, "managingOrganization", "Organization");
                if (o)
                    json_array_append_new(oids, json_string(o));
            }
        int orc = reg_read_many(&ofound, c->db, REG_ORGANIZATION, oids, err);
        json_decref(oids);
        if (orc < 0)
            goto done;
    }
    used = json_object();
    for (int i = 0; i < n; i++) {
        imp_rec *r = recs[i];
        char key[512];
        if (r->kind == IMP_REC_RESOURCE)
            continue;
        if (r->given_id && (sl[i] = json_object_get(gfound, r->given_id)) &&
            !mcsd_typed(sl[i], "facility")) {
            /* the row's id names a Location that is no facility: laid over, it would become one */
            c->writing = 0;
            imp_issue(c, r->line, "error", "id", r->given_id, "not-a-facility",
                      "Location/%s is not a facility (no mCSD facility type); it is not changed",
                      r->given_id);
            c->writing = 1;
            sl[i] = NULL;
            r->status_out = -1;
            r->rejected = 2;
            continue;
        }
        for (int k = 0; k < r->nids && !sl[i]; k++) {
            ident_key(key, sizeof(key), r->ids[k].system, r->ids[k].value);
            sl[i] = json_object_get(lfound, key);
        }
        if (sl[i]) {
            const char *o = ref_id(sl[i], "managingOrganization", "Organization");
            core_strlcpy(r->loc_id, json_string_value(json_object_get(sl[i], "id")), 65);
            if (o) {
                core_strlcpy(r->org_id, o, 65);
                so[i] = json_object_get(ofound, o);
            } else {
                snprintf(r->org_id, 65, "%.60s-org", r->loc_id);
            }
        } else if (r->nids) {
            ident_key(key, sizeof(key), r->ids[0].system, r->ids[0].value);
            derive_id(r->loc_id, r->kind == IMP_REC_FACILITY ? "f" : "j", key);
            snprintf(r->org_id, 65, "%.60s-org", r->loc_id);
        } else {
            /* named only by an id the registry does not have: a new facility of that id */
            core_strlcpy(r->loc_id, r->given_id, 65);
            snprintf(r->org_id, 65, "%.60s-org", r->loc_id);
        }
        json_object_set_new(c->touched, r->loc_id, json_true());
        json_t *first = json_object_get(used, r->loc_id);
        if (first) {
            /* two rows with different identifiers that both belong to one stored facility (kept
             * with the rows read, so that a retry of the chunk does not lose it) */
            c->writing = 0;
            imp_issue(c, r->line, "error", r->ids[0].column, r->ids[0].value, "same-facility",
                      "this row and line %ld name the same facility (Location/%s) by different "
                      "identifiers; only the first is imported",
                      (long)json_integer_value(first), r->loc_id);
            c->writing = 1;
            r->status_out = -1;
            r->rejected = 2;
            continue;
        }
        json_object_set_new(used, r->loc_id, json_integer(r->line));
        if (r->has_pos && !r->crs_epsg) {
            pi[i] = (int)json_array_size(pts) + 1;
            json_array_append_new(pts,
                                  json_pack("[o,o,s?]", core_json_real(r->lon),
                                            core_json_real(r->lat), ploc[i][0] ? ploc[i] : NULL));
        }
    }
    if (json_array_size(pts) && reg_positions_check(&chk, c->db, pts, err) < 0)
        goto done;
    for (int i = 0; i < n; i++) {
        imp_rec *r = recs[i];
        core_err verr = CORE_ERR_INIT;
        imp_prov prov = c->prov;
        reg_actor who = { c->o->actor ? c->o->actor : "import", NULL, 0 };

        if (r->rejected)
            continue;
        if (r->kind == IMP_REC_RESOURCE) {
            int b = build_raw(&locs[i], c, r, &verr);
            if (b < 0 && verr.status == 503) {
                *err = verr;
                goto done;
            }
            if (b < 0) {
                imp_issue(c, r->line, "error", NULL, NULL, "invalid", "%s%s%s",
                          verr.expr[0] ? verr.expr : "", verr.expr[0] ? ": " : "", verr.msg);
                r->status_out = -1;
                json_decref(locs[i]);
                locs[i] = NULL;
            } else if (json_object_get(used, r->loc_id)) {
                imp_issue(c, r->line, "error", NULL, r->loc_id, "duplicate-id",
                          "%s/%s is also at %ld; only the first is imported",
                          reg_type_name(r->raw_type), r->loc_id,
                          (long)json_integer_value(json_object_get(used, r->loc_id)));
                r->status_out = -1;
                json_decref(locs[i]);
                locs[i] = NULL;
            } else {
                json_object_set_new(used, r->loc_id, json_integer(r->line));
            }
            core_err_clear(&verr);
            continue;
        }
        if (pi[i]) {
            json_t *row = json_array_get(chk, (size_t)pi[i] - 1);
            if (json_is_false(json_array_get(row, 0)) && json_is_true(json_array_get(row, 1))) {
                r->flag = c->o->fix_swapped ? "swapped-fixed" : "swapped-coordinates";
                imp_issue(c, r->line, "warning", r->pos_column, r->pos_text, "swapped-coordinates",
                          "latitude and longitude look swapped: the point lies outside %s, "
                          "the swapped point inside; %s",
                          ploc[i][0] ? "its jurisdiction's boundary" : "every country boundary",
                          c->o->fix_swapped ? "stored swapped back (--fix-swapped)"
                                            : "stored as given and flagged (--fix-swapped "
                                              "stores them the other way round)");
            }
        }
        prov.line = r->line;
        locs[i] = imp_build_location(sl[i], r, &prov, ploc[i][0] ? ploc[i] : NULL);
        orgs[i] = imp_build_organization(so[i], r, &prov, porg[i][0] ? porg[i] : NULL);
        if (!locs[i] || !orgs[i]) {
            core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
            goto done;
        }
        if (sl[i] && so[i] && same_content(sl[i], locs[i]) && same_content(so[i], orgs[i])) {
            /* what is stored already (it was valid when stored): no check, no write */
            r->status_out = 304;
            json_decref(locs[i]);
            json_decref(orgs[i]);
            locs[i] = orgs[i] = NULL;
        } else if (reg_check(orgs[i], REG_ORGANIZATION, &who, &verr) < 0 ||
                   reg_check(locs[i], REG_LOCATION, &who, &verr) < 0) {
            imp_issue(c, r->line, "error", column_of(r, verr.expr), NULL, "invalid", "%s%s%s",
                      verr.expr[0] ? verr.expr : "", verr.expr[0] ? ": " : "", verr.msg);
            r->status_out = -1;
            json_decref(locs[i]);
            json_decref(orgs[i]);
            locs[i] = orgs[i] = NULL;
        } else if (sl[i] && so[i] && same_content(sl[i], locs[i]) && same_content(so[i], orgs[i])) {
            /* nothing new: no write at all (the store would find the same) */
            r->status_out = 304;
            json_decref(locs[i]);
            json_decref(orgs[i]);
            locs[i] = orgs[i] = NULL;
        }
        core_err_clear(&verr);
    }
    rc = write_recs(c, recs, n, locs, orgs, err);
done:
    for (int i = 0; i < n; i++) {
        json_decref(locs[i]);
        json_decref(orgs[i]);
    }
    json_decref(used);
    json_decref(lkeys);
    json_decref(lfound);
    json_decref(gfound);
    json_decref(ofound);
    json_decref(pts);
    json_decref(chk);
    free(locs);
    free(orgs);
    free(sl);
    free(so);
    free(ploc);
    free(porg);
    free(pi);
    return rc;
}

/* Keep the issues of a chunk that committed (or of a dry run): to the report file, counted. */
static void
issues_keep(imp_ctx *c, json_t *issues)
{
    json_t *i;
    size_t k;
    json_array_foreach (issues, k, i) {
        char *line = core_json_dump(i, NULL);
        if (line) {
            fputs(line, c->issues);
            fputc('\n', c->issues);
            free(line);
        }
        if (strcmp(json_string_value(json_object_get(i, "severity")), "warning") == 0)
            c->st.warnings++;
    }
}

static json_t *
stats_json(const imp_stats *s)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "rows", (json_int_t)s->rows,
                     "created", (json_int_t)s->created, "updated", (json_int_t)s->updated,
                     "unchanged", (json_int_t)s->unchanged, "rejected", (json_int_t)s->rejected,
                     "warnings", (json_int_t)s->warnings, "flagged", (json_int_t)s->flagged,
                     "deactivated", (json_int_t)s->deactivated, "jurisdictions",
                     (json_int_t)s->jurisdictions);
}

/* A number from parsed JSON (core_json_parse keeps numbers as written). */
static double
num(const json_t *j)
{
    double v = 0;
    if (core_json_number_get(j, &v) < 0)
        v = 0;
    return v;
}

static void
stats_load(imp_stats *s, const json_t *j)
{
    s->rows = (long)num(json_object_get(j, "rows"));
    s->created = (long)num(json_object_get(j, "created"));
    s->updated = (long)num(json_object_get(j, "updated"));
    s->unchanged = (long)num(json_object_get(j, "unchanged"));
    s->rejected = (long)num(json_object_get(j, "rejected"));
    s->warnings = (long)num(json_object_get(j, "warnings"));
    s->flagged = (long)num(json_object_get(j, "flagged"));
    s->jurisdictions = (long)num(json_object_get(j, "jurisdictions"));
}

/* Undo the jurisdictions cached by a transaction that rolled back. */
static void
juris_rollback(imp_ctx *c)
{
    const char *k;
    json_t *e, *tmp;
    json_object_foreach_safe (c->juris, tmp, k, e)
        if (!json_is_true(json_array_get(e, 2)))
            json_object_del(c->juris, k);
    json_array_clear(c->pending);
}

static void
juris_commit(imp_ctx *c)
{
    const char *k;
    json_t *e;
    json_object_foreach (c->juris, k, e)
        json_array_set_new(e, 2, json_true());
    c->st.jurisdictions += (long)json_array_size(c->pending);
    json_array_clear(c->pending);
}

static int
tx(imp_ctx *c, const char *sql, core_err *err)
{
    return core_db_run(c->db, sql, err);
}

/* Record by record under savepoints, after the chunk as a whole was refused. */
static int
write_one_by_one(imp_ctx *c, core_err *err)
{
    for (int i = 0; i < c->nrecs; i++) {
        imp_rec *r = &c->recs[i];
        core_err e = CORE_ERR_INIT;
        if (r->rejected)
            continue;
        r->status_out = 0;
        size_t pending = json_array_size(c->pending);
        if (tx(c, "SAVEPOINT imp_one", err) < 0)
            return -1;
        if (write_chunk(c, &r, 1, &e) < 0 || reg_check_deferred(c->db, &e) < 0) {
            if (e.status == 503) {
                *err = e;
                return -1;
            }
            if (tx(c, "ROLLBACK TO SAVEPOINT imp_one", err) < 0) {
                core_err_clear(&e);
                return -1;
            }
            /* the jurisdictions this record created went with it */
            while (json_array_size(c->pending) > pending) {
                size_t last = json_array_size(c->pending) - 1;
                json_object_del(c->juris, json_string_value(json_array_get(c->pending, last)));
                json_array_remove(c->pending, last);
            }
            imp_issue(c, r->line, "error", column_of(r, e.expr), NULL,
                      e.status == 409 ? "conflict" : "rejected", "%s%s%s", e.expr[0] ? e.expr : "",
                      e.expr[0] ? ": " : "", e.msg);
            r->status_out = -1;
            core_err_clear(&e);
        }
        if (tx(c, "SET CONSTRAINTS ALL DEFERRED", err) < 0 ||
            tx(c, "RELEASE SAVEPOINT imp_one", err) < 0)
            return -1;
    }
    return 0;
}

/* Save the checkpoint on db, in its open transaction: the counters s plus the warnings among
 * counted (the chunk's issues up to this point), `records` records done, and the issues this
 * transaction adds (saved). */
static int
checkpoint(imp_ctx *c,
           core_db *db,
           const imp_stats *s,
           long records,
           json_t *counted,
           json_t *saved,
           core_err *err)
{
    imp_stats t = *s;
    json_t *i, *state;
    size_t k;
    int rc;
    json_array_foreach (counted, k, i)
        if (strcmp(json_string_value(json_object_get(i, "severity")), "warning") == 0)
            t.warnings++;
    t.jurisdictions += (long)json_array_size(c->pending);
    state = stats_json(&t);
    rc = reg_checkpoint_put(db, c->source, c->base, records, state, saved, 0, 0, err);
    json_decref(state);
    return rc;
}

/* Roll back the second connection's half of the chunk, if it has one open. */
static void
b_abort(imp_ctx *c)
{
    core_err e = CORE_ERR_INIT;
    if (c->b_open)
        core_db_run(c->o->second_db, "ROLLBACK", &e);
    c->b_open = 0;
    core_err_clear(&e);
}

/* Whether this chunk's writes may go half on the second connection: a big enough chunk of
 * plain facility rows (parents from admin levels, not by identifier), not a dry run. The
 * jurisdictions they need are then created and committed first, in a transaction of their
 * own, so that both connections see them. */
static int
split_chunk(imp_ctx *c, imp_rec **ptrs, int n, long done)
{
    core_err e = CORE_ERR_INIT;
    char loc[65], org[65];
    if (!c->o->second_db || c->o->dry_run || 2 * n < SPLIT_MIN ||
        (c->o->format != IMP_CSV && c->o->format != IMP_GEOJSON))
        return 0;
    for (int i = 0; i < n; i++)
        if (ptrs[i]->parent_system || ptrs[i]->kind != IMP_REC_FACILITY)
            return 0;
    if (tx(c, "BEGIN", &e) < 0)
        goto no;
    for (int i = 0; i < n; i++)
        if (parent_of(loc, org, c, ptrs[i], &e) < 0) {
            core_err x = CORE_ERR_INIT;
            tx(c, "ROLLBACK", &x);
            core_err_clear(&x);
            juris_rollback(c);
            goto no;
        }
    /* the checkpoint counts them (the records done stay as they were) */
    json_t *none = json_array();
    int rc = checkpoint(c, c->db, &c->st, done, none, none, &e);
    json_decref(none);
    if (rc < 0 || tx(c, "COMMIT", &e) < 0) {
        core_err x = CORE_ERR_INIT;
        tx(c, "ROLLBACK", &x);
        core_err_clear(&x);
        juris_rollback(c);
        goto no;
    }
    juris_commit(c);
    return 1;
no:
    core_err_clear(&e); /* the chunk goes the plain way, which reports what is wrong */
    return 0;
}

/* Write the chunk: one transaction with the checkpoint and the chunk's issues. */
static int
flush(imp_ctx *c, long next_line, core_err *err)
{
    imp_rec **ptrs;
    int n = 0, rc;
    core_err e = CORE_ERR_INIT;

    if (c->o->cancel && atomic_load_explicit(c->o->cancel, memory_order_relaxed))
        return core_err_set(err, 503, CORE_ISSUE_TRANSIENT,
                            "the import was cancelled before it finished (the chunks committed "
                            "so far stay; run it again to finish)");
    if (!c->nrecs && !json_array_size(c->read_issues))
        return 0;
    ptrs = calloc((size_t)c->nrecs + 1, sizeof(*ptrs));
    if (!ptrs)
        abort();
    for (int i = 0; i < c->nrecs; i++)
        if (!c->recs[i].rejected)
            ptrs[n++] = &c->recs[i];
    c->writing = 1;
    c->split = split_chunk(c, ptrs, n, next_line - c->nrecs);
    if (tx(c, "BEGIN", err) < 0)
        goto fail;
    rc = n ? write_chunk(c, ptrs, n, &e) : 0;
    if (rc == 0 && reg_check_deferred(c->db, &e) < 0)
        rc = -1;
    /* the second half's references checked now, before either half commits */
    if (rc == 0 && c->b_open && reg_check_deferred(c->o->second_db, &e) < 0)
        rc = -1;
    if (rc < 0) {
        b_abort(c);
        c->split = 0;
        if (e.status == 503) {
            *err = e;
            tx(c, "ROLLBACK", &e);
            goto fail;
        }
        /* the database refused something in the chunk: find out what, record by record */
        core_err_clear(&e);
        if (tx(c, "ROLLBACK", err) < 0)
            goto fail;
        juris_rollback(c);
        json_array_clear(c->write_issues);
        if (tx(c, "BEGIN", err) < 0 || write_one_by_one(c, err) < 0)
            goto fail;
    }
    /* the outcome of each record; with two halves, s1 is the first half's alone */
    imp_stats s = c->st, s1 = c->st;
    long done1 = next_line - c->nrecs;
    for (int i = 0; i < c->nrecs; i++) {
        imp_rec *r = &c->recs[i];
        if (c->b_open && r->line == c->split_line)
            s1 = s, done1 = next_line - c->nrecs + i;
        if (r->rejected || r->status_out <= 0)
            s.rejected++;
        else if (r->status_out == 201)
            s.created++;
        else if (r->status_out == 200)
            s.updated++;
        else
            s.unchanged++;
        if (!r->rejected && r->status_out > 0 && r->flag)
            s.flagged++;
    }
    json_array_extend(c->read_issues, c->write_issues);
    if (!c->o->dry_run) {
        /* each half is a chunk of its own, committed with its checkpoint: the first half, then
         * the second, so that a kill between them leaves a whole first half and a checkpoint
         * saying so */
        json_t *issues1 = json_array(), *issues2 = json_array(), *i;
        size_t k;
        json_array_foreach (c->read_issues, k, i) {
            long line = (long)json_integer_value(json_object_get(i, "line"));
            json_array_append(c->b_open && line >= c->split_line ? issues2 : issues1, i);
        }
        rc = checkpoint(c, c->db, c->b_open ? &s1 : &s, c->b_open ? done1 : next_line, issues1,
                        issues1, err);
        if (rc < 0 || tx(c, "COMMIT", err) < 0) {
            tx(c, "ROLLBACK", &e);
            core_err_clear(&e);
            json_decref(issues1);
            json_decref(issues2);
            goto fail;
        }
        if (c->b_open) {
            rc = checkpoint(c, c->o->second_db, &s, next_line, c->read_issues, issues2, err);
            if (rc < 0 || core_db_run(c->o->second_db, "COMMIT", err) < 0) {
                json_decref(issues1);
                json_decref(issues2);
                goto fail; /* the first half and its checkpoint stay: --resume goes on from it */
            }
            c->b_open = 0;
        }
        json_decref(issues1);
        json_decref(issues2);
    } else if (tx(c, "ROLLBACK", err) < 0) {
        goto fail;
    }
    c->st.created = s.created;
    c->st.updated = s.updated;
    c->st.unchanged = s.unchanged;
    c->st.rejected = s.rejected;
    c->st.flagged = s.flagged;
    if (c->o->dry_run) {
        /* nothing stays: the next chunk creates them again, but they count once */
        json_t *k;
        size_t x;
        json_array_foreach (c->pending, x, k)
            if (!json_object_get(c->dry_counted, json_string_value(k))) {
                json_object_set_new(c->dry_counted, json_string_value(k), json_true());
                c->st.jurisdictions++;
            }
        juris_rollback(c);
    } else {
        juris_commit(c);
        /* the tables grow under the import: fresh statistics each time they may have doubled
         * (1, 2, 4, 8... chunks), so the plans keep using the indexes */
        if (s.created + s.updated > c->st_written) {
            c->st_written = s.created + s.updated;
            c->chunks++;
            if ((c->chunks & (c->chunks - 1)) == 0 && reg_analyze(c->db, err) < 0)
                goto fail;
        }
    }
    {
        /* later records may name these as parents */
        int all = c->o->format == IMP_DHIS2 || c->o->format == IMP_CSD;
        for (int i = 0; i < c->nrecs; i++) {
            imp_rec *r = &c->recs[i];
            if (r->rejected || r->status_out <= 0 || r->kind == IMP_REC_RESOURCE ||
                (!all && r->kind != IMP_REC_JURISDICTION))
                continue;
            for (int k = 0; k < r->nids; k++) {
                char key[512];
                ident_key(key, sizeof(key), r->ids[k].system, r->ids[k].value);
                json_object_set_new(c->parents, key, json_pack("[s,s]", r->loc_id, r->org_id));
            }
        }
    }
    issues_keep(c, c->read_issues);
    json_array_clear(c->read_issues);
    json_array_clear(c->write_issues);
    c->writing = 0;
    for (int i = 0; i < c->nrecs; i++)
        json_decref(c->recs[i].raw);
    c->nrecs = 0;
    json_object_clear(c->chunk_keys);
    core_arena_destroy(c->arena);
    c->arena = core_arena_create();
    free(ptrs);
    progress(c, 0);
    return 0;
fail:
    b_abort(c);
    c->split = 0;
    c->writing = 0;
    free(ptrs);
    return -1;
}

/* ---- records in ------------------------------------------------------------------------------ */

static const char *
dup_str(core_arena *a, const char *s)
{
    return s ? core_arena_strdup(a, s) : NULL;
}

static int emit(imp_ctx *c, imp_rec *r, core_err *err);

/* The key of r's identifier k among those seen in the file: "system|value", for a FHIR
 * resource "Type|system|value" (an mCSD Location and its Organization carry the same
 * identifiers and are not duplicates of each other). */
static void
seen_key(char *out, size_t cap, const imp_rec *r, int k)
{
    if (r->kind == IMP_REC_RESOURCE)
        snprintf(out, cap, "%s|%s|%s", reg_type_name(r->raw_type), r->ids[k].system,
                 r->ids[k].value);
    else
        ident_key(out, cap, r->ids[k].system, r->ids[k].value);
}

int
imp_emit(imp_ctx *c, imp_rec *r, core_err *err)
{
    int rc = emit(c, r, err);
    c->skipping = 0;
    return row_done(c, rc);
}

static int
emit(imp_ctx *c, imp_rec *r, core_err *err)
{
    char key[512];
    int skip = c->seq < c->resume_seq;
    c->skipping = skip;
    c->seq++;

    if (!skip)
        c->st.rows++;
    if (!r->rejected && !r->name) {
        imp_issue(c, r->line, "error", r->name_column, NULL, "missing-name",
                  "the name is empty; a facility needs a name");
        r->rejected = 1;
    }
    if (!r->rejected && !r->nids && !r->given_id) {
        imp_issue(c, r->line, "error", NULL, NULL, "missing-identifier",
                  "the row has no identifier; re-imports could not find it again (map an "
                  "identifier column or a key)");
        r->rejected = 1;
    }
    /* duplicates within the file: the later row is rejected, the issue names both lines */
    for (int k = 0; k < r->nids && !r->rejected; k++) {
        json_t *first;
        seen_key(key, sizeof(key), r, k);
        if ((first = json_object_get(c->seen, key))) {
            long l1 = (long)json_integer_value(first);
            /* the row's first identifier names the facility: a second row with it is
             * rejected; a further identifier shared with another row is only dropped */
            if (k == 0)
                imp_issue(c, r->line, "error", r->ids[k].column, r->ids[k].value,
                          "duplicate-identifier",
                          "identifier %s is also on line %ld; only the first row is imported",
                          r->ids[k].value, l1);
            else
                imp_issue(c, r->line, "warning", r->ids[k].column, r->ids[k].value,
                          "duplicate-identifier",
                          "identifier %s is also on line %ld; it is not given to this row",
                          r->ids[k].value, l1);
            if (!skip && c->writing == 0) {
                json_t *last = json_array_get(c->read_issues, json_array_size(c->read_issues) - 1);
                if (last)
                    json_object_set_new(last, "other_line", json_integer(l1));
            }
            if (k == 0) {
                r->rejected = 1;
            } else {
                memmove(&r->ids[k], &r->ids[k + 1], (size_t)(r->nids - k - 1) * sizeof(r->ids[0]));
                r->nids--;
                k--;
            }
        }
    }
    if (!r->rejected && r->given_id) {
        json_t *first;
        snprintf(key, sizeof(key), "Location/%s", r->given_id);
        if ((first = json_object_get(c->seen, key))) {
            imp_issue(c, r->line, "error", "id", r->given_id, "duplicate-id",
                      "id %s is also on line %ld; only the first row is imported", r->given_id,
                      (long)json_integer_value(first));
            r->rejected = 1;
        } else {
            json_object_set_new(c->seen, key, json_integer(r->line));
        }
    }
    if (!r->rejected)
        for (int k = 0; k < r->nids; k++) {
            seen_key(key, sizeof(key), r, k);
            json_object_set_new(c->seen, key, json_integer(r->line));
        }
    if (skip) {
        /* done by the earlier run: only what --deactivate-missing needs */
        if (!r->rejected && c->o->deactivate_missing && r->given_id)
            json_object_set_new(c->touched, r->given_id, json_true());
        if (!r->rejected && c->o->deactivate_missing && r->kind == IMP_REC_FACILITY) {
            json_t *keys = json_array(), *found;
            for (int k = 0; k < r->nids; k++)
                json_array_append_new(keys, json_pack("[s,s]", r->ids[k].system, r->ids[k].value));
            if (reg_find_by_identifiers(&found, c->db, REG_LOCATION, keys, err) < 0) {
                json_decref(keys);
                return -1;
            }
            const char *k2;
            json_t *v;
            json_object_foreach (found, k2, v)
                json_object_set_new(c->touched, json_string_value(json_object_get(v, "id")),
                                    json_true());
            json_decref(found);
            json_decref(keys);
        }
        c->st.skipped++;
        return 0;
    }
    /* a parent in this very chunk must be written first */
    if (r->parent_system && r->parent_value) {
        ident_key(key, sizeof(key), r->parent_system, r->parent_value);
        if (json_object_get(c->chunk_keys, key) && flush(c, c->seq - 1, err) < 0)
            return -1;
    }
    if (c->nrecs == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->recs = realloc(c->recs, (size_t)c->cap * sizeof(*c->recs));
        if (!c->recs)
            abort();
    }
    /* the reader's strings may live in its own buffers: copy into the chunk's arena */
    imp_rec *d = &c->recs[c->nrecs++];
    core_arena *a = c->arena;
    *d = *r;
    d->name = dup_str(a, r->name);
    d->name_column = dup_str(a, r->name_column);
    for (int k = 0; k < r->nids; k++) {
        d->ids[k].system = dup_str(a, r->ids[k].system);
        d->ids[k].value = dup_str(a, r->ids[k].value);
        d->ids[k].column = dup_str(a, r->ids[k].column);
        ident_key(key, sizeof(key), r->ids[k].system, r->ids[k].value);
        json_object_set_new(c->chunk_keys, key, json_true());
    }
    d->pos_text = dup_str(a, r->pos_text);
    d->pos_column = dup_str(a, r->pos_column);
    d->type_system = dup_str(a, r->type_system);
    d->type_code = dup_str(a, r->type_code);
    d->type_display = dup_str(a, r->type_display);
    d->owner_system = dup_str(a, r->owner_system);
    d->owner_code = dup_str(a, r->owner_code);
    d->owner_display = dup_str(a, r->owner_display);
    for (int k = 0; k < r->nadmin; k++) {
        d->admin[k] = dup_str(a, r->admin[k]);
        d->admin_column[k] = dup_str(a, r->admin_column[k]);
    }
    d->admin_root = dup_str(a, r->admin_root);
    d->parent_system = dup_str(a, r->parent_system);
    d->parent_value = dup_str(a, r->parent_value);
    d->given_id = dup_str(a, r->given_id);
    d->given_parent = dup_str(a, r->given_parent);
    d->boundary = dup_str(a, r->boundary);
    d->list = c->map ? imp_mapping_list(c->map) : NULL; /* the mapping outlives the chunk */
    d->raw = r->raw ? json_incref(r->raw) : NULL;
    d->status_out = 0;
    if (c->nrecs >= (c->o->chunk > 0 ? c->o->chunk : CHUNK_DEFAULT))
        return flush(c, c->seq, err);
    return 0;
}

/* Whether j (any depth) holds a logical reference to an identifier of a record in the current
 * chunk: it resolves only once that record is written, so the chunk is written first. */
static int
refers_to_chunk(imp_ctx *c, const json_t *j)
{
    const char *k;
    json_t *v;
    size_t i;
    if (json_is_array(j)) {
        json_array_foreach (j, i, v)
            if (refers_to_chunk(c, v))
                return 1;
        return 0;
    }
    if (!json_is_object(j))
        return 0;
    json_t *ident = json_object_get(j, "identifier");
    const char *sys = json_string_value(json_object_get(ident, "system"));
    const char *val = json_string_value(json_object_get(ident, "value"));
    if (json_is_string(json_object_get(j, "type")) && sys && val &&
        !json_object_get(j, "reference")) {
        char key[512];
        ident_key(key, sizeof(key), sys, val);
        return json_object_get(c->chunk_keys, key) != NULL;
    }
    json_object_foreach ((json_t *)j, k, v)
        if (refers_to_chunk(c, v))
            return 1;
    return 0;
}

int
imp_emit_resource(imp_ctx *c, long line, reg_type t, json_t *res, core_err *err)
{
    imp_rec r;
    json_t *ids = json_object_get(res, "identifier"), *e;
    size_t i;
    memset(&r, 0, sizeof(r));
    r.line = line;
    r.kind = IMP_REC_RESOURCE;
    r.raw_type = t;
    r.raw = res;
    r.name = "resource"; /* a FHIR resource needs no name here: its validation decides */
    json_array_foreach (ids, i, e) {
        const char *sys = json_string_value(json_object_get(e, "system"));
        const char *val = json_string_value(json_object_get(e, "value"));
        if (sys && val && r.nids < IMP_MAX_IDS)
            r.ids[r.nids++] = (imp_ident){ sys, val, "identifier" };
    }
    if (!r.nids && json_is_string(json_object_get(res, "id"))) {
        /* the id is the identity */
        r.ids[r.nids++] =
            (imp_ident){ core_arena_sprintf(c->row_arena, "urn:mahali:id:%s", reg_type_name(t)),
                         json_string_value(json_object_get(res, "id")), "id" };
    }
    if (refers_to_chunk(c, res) && flush(c, c->seq, err) < 0) {
        json_decref(res);
        return row_done(c, -1);
    }
    int rc = emit(c, &r, err);
    c->skipping = 0;
    rc = row_done(c, rc);
    json_decref(res);
    return rc;
}

/* ---- after the file ---------------------------------------------------------------------------
 */

/* --deactivate-missing: the list's facilities this file did not name become inactive. */
static int
deactivate_missing(imp_ctx *c, const char *list, core_err *err)
{
    json_t *keep = json_array(), *missing = NULL, *res;
    const char *k;
    json_t *v;
    size_t i;
    reg_actor who = { c->o->actor ? c->o->actor : "import", NULL, 0 };
    int rc = -1;

    if (c->read_errors) {
        imp_issue(c, 0, "warning", NULL, NULL, "deactivate-skipped",
                  "--deactivate-missing was not applied: %ld records of the file could not be "
                  "read, so the file is not a full list",
                  c->read_errors);
        json_decref(keep);
        return 0;
    }
    json_object_foreach (c->touched, k, v)
        json_array_append_new(keep, json_string(k));
    if (reg_find_missing(&missing, c->db, IMP_LIST_SYSTEM, list, keep, err) < 0)
        goto done;
    if (tx(c, "BEGIN", err) < 0)
        goto done;
    json_array_foreach (missing, i, res) {
        reg_batch_item it[2];
        size_t failed, n = 0;
        json_t *loc = json_deep_copy(res), *org = NULL;
        const char *oid = ref_id(res, "managingOrganization", "Organization");
        json_object_set_new(loc, "status", json_string("inactive"));
        memset(it, 0, sizeof(it));
        if (oid && reg_read(&org, NULL, NULL, c->db, REG_ORGANIZATION, oid, err) == 0) {
            json_object_set_new(org, "active", json_false());
            it[n++] = (reg_batch_item){ REG_ORGANIZATION, oid, org, { 0 } };
        }
        core_err_clear(err);
        it[n++] = (reg_batch_item){
            REG_LOCATION, json_string_value(json_object_get(res, "id")), loc, { 0 }
        };
        int w = reg_write_batch(it, n, &failed, c->db, &who, err);
        for (size_t x = 0; x < n; x++)
            reg_write_clear(&it[x].w);
        json_decref(loc);
        json_decref(org);
        if (w < 0) {
            core_err e = CORE_ERR_INIT;
            tx(c, "ROLLBACK", &e);
            core_err_clear(&e);
            goto done;
        }
        c->st.deactivated++;
    }
    if (tx(c, c->o->dry_run ? "ROLLBACK" : "COMMIT", err) < 0)
        goto done;
    if (c->o->log && json_array_size(missing))
        fprintf(c->o->log, "mahali import: %zu facilities of this list are not in the file: %s\n",
                json_array_size(missing),
                c->o->dry_run ? "they would be set inactive" : "set inactive");
    rc = 0;
done:
    json_decref(keep);
    json_decref(missing);
    return rc;
}

/* The report: JSON (counts and issues) and a CSV of the issues for spreadsheet users. */
static void
csv_cell(FILE *f, const char *s)
{
    int quote = 0;
    if (!s)
        return;
    /* a cell a spreadsheet would run as a formula is written as text */
    if (*s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t' || *s == '\r')
        quote = 2;
    for (const char *p = s; *p && !quote; p++)
        if (*p == ',' || *p == '"' || *p == '\n' || *p == '\r')
            quote = 1;
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    if (quote == 2)
        fputc('\'', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static int
write_report(imp_ctx *c, core_err *err)
{
    const char *path = c->o->report_file;
    char *csv_path;
    size_t n = strlen(path);
    FILE *jf, *cf;
    char line[65536];
    int first = 1;

    if (n > 5 && strcmp(path + n - 5, ".json") == 0)
        csv_path = core_sprintf("%.*s.csv", (int)(n - 5), path);
    else
        csv_path = core_sprintf("%s.csv", path);
    jf = fopen(path, "w");
    cf = fopen(csv_path, "w");
    if (!jf || !cf) {
        if (jf)
            fclose(jf);
        if (cf)
            fclose(cf);
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "cannot write the report %s: %s",
                     jf ? csv_path : path, strerror(errno));
        free(csv_path);
        return -1;
    }
    json_t *head = stats_json(&c->st);
    json_object_set_new(head, "file", json_string(c->base));
    json_object_set_new(head, "checksum", json_string(c->checksum));
    json_object_set_new(
        head, "format",
        json_string((const char *[]){ "csv", "geojson", "dhis2", "fhir", "csd" }[c->o->format]));
    json_object_set_new(head, "dry_run", json_boolean(c->o->dry_run));
    json_object_set_new(head, "skipped", json_integer(c->st.skipped));
    json_object_set_new(head, "seconds", core_json_real(round(c->st.seconds * 1000) / 1000));
    char *h = core_json_dump(head, NULL);
    json_decref(head);
    /* {"rows":...,"issues":[ ... ]}: the head's closing brace opens the issues */
    fprintf(jf, "%.*s,\"issues\":[", (int)strlen(h) - 1, h);
    free(h);
    fputs("line,column,value,code,severity,message,other_line\n", cf);
    rewind(c->issues);
    while (fgets(line, sizeof(line), c->issues)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        fprintf(jf, "%s\n%s", first ? "" : ",", line);
        first = 0;
        json_t *i = core_json_parse(line, len, err);
        if (!i) {
            core_err_clear(err);
            continue;
        }
        fprintf(cf, "%.0f,", num(json_object_get(i, "line")));
        csv_cell(cf, json_string_value(json_object_get(i, "column")));
        fputc(',', cf);
        csv_cell(cf, json_string_value(json_object_get(i, "value")));
        fputc(',', cf);
        csv_cell(cf, json_string_value(json_object_get(i, "code")));
        fputc(',', cf);
        csv_cell(cf, json_string_value(json_object_get(i, "severity")));
        fputc(',', cf);
        csv_cell(cf, json_string_value(json_object_get(i, "message")));
        fputc(',', cf);
        if (json_object_get(i, "other_line"))
            fprintf(cf, "%.0f", num(json_object_get(i, "other_line")));
        fputc('\n', cf);
        json_decref(i);
    }
    fputs("]}\n", jf);
    int bad = ferror(jf) | ferror(cf);
    bad |= fclose(jf) | fclose(cf);
    if (bad) {
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "cannot write the report %s", path);
        free(csv_path);
        return -1;
    }
    if (c->o->log)
        fprintf(c->o->log, "mahali import: report written to %s and %s\n", path, csv_path);
    free(csv_path);
    return 0;
}

/* ---- the file ----------------------------------------------------------------------------------
 */

int
imp_slurp(char **buf, size_t *len, FILE *f, core_err *err)
{
    size_t cap = 1 << 16, n = 0, k;
    char *b = malloc(cap + 1);
    if (!b)
        abort();
    while ((k = fread(b + n, 1, cap - n, f)) > 0) {
        n += k;
        if (n == cap) {
            if (cap >= IMP_MAX_DOCUMENT) {
                free(b);
                return core_err_set(err, 413, CORE_ISSUE_TOO_LONG,
                                    "the document is over %zu MB; split it or use NDJSON",
                                    IMP_MAX_DOCUMENT >> 20);
            }
            cap *= 2;
            if (!(b = realloc(b, cap + 1)))
                abort();
        }
    }
    if (ferror(f)) {
        free(b);
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "cannot read the file: %s",
                            strerror(errno));
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

int
imp_json_document(json_t **doc, long *size, FILE *f, core_err *err)
{
    char *buf;
    size_t len;
    const char *p;

    *doc = NULL;
    if (imp_slurp(&buf, &len, f, err) < 0)
        return -1;
    *size = ftell(f); /* of the file as stored (-1 through gzip): what progress is measured in */
    p = buf + strspn(buf, " \t\r\n");
    if (strncmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    if (!*p)
        core_err_set(err, 400, CORE_ISSUE_STRUCTURE, "the file is empty");
    else
        *doc = core_json_parse(p, len - (size_t)(p - buf), err);
    free(buf);
    return *doc ? 0 : -1;
}

/* The file's SHA-256 ("sha256:<hex>") and size. */
static int
checksum(char out[80], long *size, const char *path, core_err *err)
{
    FILE *f = fopen(path, "rb");
    crypto_hash_sha256_state st;
    unsigned char buf[1 << 16], h[crypto_hash_sha256_BYTES];
    size_t n;
    char hex[65];

    if (!f)
        return core_err_set(err, 404, CORE_ISSUE_NOT_FOUND, "cannot open %s: %s", path,
                            strerror(errno));
    crypto_hash_sha256_init(&st);
    *size = 0;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        crypto_hash_sha256_update(&st, buf, n);
        *size += (long)n;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "cannot read %s", path);
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
    snprintf(out, 80, "sha256:%s", hex);
    return 0;
}

/* Open path for reading; a .gz file through gzip (no shell). *pid: the child, or 0. */
static FILE *
open_input(const char *path, pid_t *pid, core_err *err)
{
    size_t n = strlen(path);
    *pid = 0;
    if (n > 3 && strcmp(path + n - 3, ".gz") == 0) {
        int fd[2];
        if (pipe(fd) < 0) {
            core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "pipe: %s", strerror(errno));
            return NULL;
        }
        if ((*pid = fork()) == 0) {
            dup2(fd[1], 1);
            close(fd[0]);
            close(fd[1]);
            execlp("gzip", "gzip", "-dc", "--", path, (char *)NULL);
            _exit(127);
        }
        close(fd[1]);
        if (*pid < 0) {
            close(fd[0]);
            core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "fork: %s", strerror(errno));
            return NULL;
        }
        return fdopen(fd[0], "rb");
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        core_err_set(err, 404, CORE_ISSUE_NOT_FOUND, "cannot open %s: %s", path, strerror(errno));
    return f;
}

int
imp_run(imp_stats *out, core_db *db, const imp_options *o, core_err *err)
{
    imp_ctx c;
    long size = 0;
    pid_t pid = 0;
    FILE *f = NULL;
    int rc = -1;
    json_t *state = NULL;
    char keytext[256];
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[65];

    memset(&c, 0, sizeof(c));
    memset(out, 0, sizeof(*out));
    c.o = o;
    c.db = db;
    c.t0 = now_s();
    c.arena = core_arena_create();
    c.row_arena = core_arena_create();
    c.read_issues = json_array();
    c.write_issues = json_array();
    c.seen = json_object();
    c.touched = json_object();
    c.juris = json_object();
    c.pending = json_array();
    c.parents = json_object();
    c.root = json_object();
    c.dry_counted = json_object();
    c.chunk_keys = json_object();
    c.base = strrchr(o->file, '/') ? strrchr(o->file, '/') + 1 : o->file;
    if (!(c.issues = tmpfile())) {
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "cannot create a temporary file: %s",
                     strerror(errno));
        goto done;
    }
    if (checksum(c.checksum, &size, o->file, err) < 0)
        goto done;
    c.file_bytes = size;
    c.prov.file = c.base;
    c.prov.checksum = c.checksum;
    /* the import's key: the same file, format and mapping is the same import */
    snprintf(keytext, sizeof(keytext), "%d|%s|%s", (int)o->format, c.checksum,
             o->mapping_file ? o->mapping_file : "");
    crypto_hash_sha256(h, (const unsigned char *)keytext, strlen(keytext));
    sodium_bin2hex(hex, sizeof(hex), h, 16);
    snprintf(c.source, sizeof(c.source), "%s", hex);
    if (!o->dry_run) {
        long line;
        int finished;
        if (reg_checkpoint_get(&line, &state, &finished, db, c.source, err) < 0)
            goto done;
        if (o->resume && line > 0 && !finished) {
            json_t *old = NULL;
            c.resume_seq = line;
            stats_load(&c.st, state);
            if (reg_checkpoint_issues(&old, db, c.source, err) < 0)
                goto done;
            c.st.warnings = 0;
            issues_keep(&c, old);
            json_decref(old);
            if (o->log)
                fprintf(o->log, "mahali import: resuming after record %ld (%ld rows done)\n", line,
                        c.st.rows);
        } else {
            if (line > 0 && !finished && o->log)
                fprintf(o->log,
                        "mahali import: an earlier run of this import stopped after record %ld; "
                        "starting again (--resume continues where it stopped)\n",
                        line);
            json_t *zero = stats_json(&c.st), *none = json_array();
            rc = tx(&c, "BEGIN", err) == 0 &&
                         reg_checkpoint_put(db, c.source, c.base, 0, zero, none, 1, 0, err) == 0 &&
                         tx(&c, "COMMIT", err) == 0
                     ? 0
                     : -1;
            json_decref(zero);
            json_decref(none);
            if (rc < 0)
                goto done;
            rc = -1;
        }
    }
    if (!(f = open_input(o->file, &pid, err)))
        goto done;
    switch (o->format) {
    case IMP_CSV:
        rc = imp_read_csv(&c, f, err);
        break;
    case IMP_GEOJSON:
        rc = imp_read_geojson(&c, f, err);
        break;
    case IMP_DHIS2:
        rc = imp_read_dhis2(&c, f, err);
        break;
    case IMP_CSD:
        rc = imp_read_csd(&c, f, err);
        break;
    case IMP_FHIR:
        rc = imp_read_fhir(&c, f, err);
        break;
    }
    if (rc == 0)
        rc = flush(&c, c.seq, err);
    if (rc == 0 && o->deactivate_missing && o->format != IMP_FHIR && c.map) {
        if (!imp_mapping_list(c.map))
            rc = core_err_set_at(err, 400, CORE_ISSUE_VALUE, "mapping",
                                 "--deactivate-missing needs a list: the mapping says \"list\": "
                                 "false");
        else
            rc = deactivate_missing(&c, imp_mapping_list(c.map), err);
    }
    if (rc == 0 && !o->dry_run) {
        json_t *st = stats_json(&c.st), *none = json_array();
        rc = tx(&c, "BEGIN", err) == 0 &&
                     reg_checkpoint_put(db, c.source, c.base, 1L << 40, st, none, 0, 1, err) == 0 &&
                     tx(&c, "COMMIT", err) == 0
                 ? 0
                 : -1;
        json_decref(st);
        json_decref(none);
    }
    c.bytes_done = c.file_bytes;
    progress(&c, 1);
    c.st.seconds = now_s() - c.t0;
    if (rc == 0 && o->report_file)
        rc = write_report(&c, err);
done:
    if (f)
        fclose(f);
    if (pid > 0) {
        int status;
        waitpid(pid, &status, 0);
        if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
            core_err_set(err, 400, CORE_ISSUE_STRUCTURE, "%s is not a readable gzip file", c.base);
            rc = -1;
        }
    }
    *out = c.st;
    if (c.issues)
        fclose(c.issues);
    json_decref(state);
    json_decref(c.read_issues);
    json_decref(c.write_issues);
    json_decref(c.seen);
    json_decref(c.touched);
    json_decref(c.juris);
    json_decref(c.pending);
    json_decref(c.parents);
    json_decref(c.root);
    json_decref(c.dry_counted);
    json_decref(c.chunk_keys);
    imp_mapping_free(c.map);
    core_arena_destroy(c.arena);
    core_arena_destroy(c.row_arena);
    free(c.recs);
    return rc;
}
