/* `mahali export` and GET /fhir/Location/$export-mfl: the master facility list as CSV, GeoJSON,
 * FHIR NDJSON or DHIS2 organisation units, formatted item by item as registry/export.c reads
 * the facilities page by page, into a 64 KiB buffer handed to a write callback whenever it
 * fills: memory stays bounded whatever the size of the list (docs/EXPORT.md).
 *
 * CSV and GeoJSON share one table of columns per facility; the CSV goes back in with
 * importers/mappings/mahali-export.json. DHIS2 ids: a facility's identifier of system
 * https://dhis2.org/orgunit-uid when it is a valid UID, else a UID derived from its id (see
 * derive_uid), so the same registry always gives the same UIDs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "importers/imp_int.h"

#define OUT_CHUNK (64u << 10)

/* ---- output buffer ------------------------------------------------------------------------ */

typedef struct out {
    imp_write_fn write;
    void *payload;
    char *buf;
    size_t len;
    int failed;
} out;

static int
flush(out *o, core_err *err)
{
    if (o->len && !o->failed && o->write(o->buf, o->len, o->payload) < 0)
        o->failed = 1;
    o->len = 0;
    if (o->failed)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "the output could not be written");
    return 0;
}

static int
put(out *o, const char *s, size_t n, core_err *err)
{
    while (n) {
        size_t k = OUT_CHUNK - o->len < n ? OUT_CHUNK - o->len : n;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
        if (o->len == OUT_CHUNK && flush(o, err) < 0)
            return -1;
    }
    return 0;
}

static int
puts_(out *o, const char *s, core_err *err)
{
    return put(o, s, strlen(s), err);
}

/* j as compact JSON (numbers as stored) followed by tail. */
static int
put_json(out *o, const json_t *j, const char *tail, core_err *err)
{
    size_t n;
    char *text = core_json_dump(j, &n);
    int rc;
    if (!text)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    rc = put(o, text, n, err) < 0 || puts_(o, tail, err) < 0 ? -1 : 0;
    free(text);
    return rc;
}

/* ---- reading resources -------------------------------------------------------------------- */

static const char *
text(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return core_json_is_text(v) ? json_string_value(v) : NULL;
}

/* The value of the first identifier of system, or NULL. */
static const char *
identifier(const json_t *ids, const char *system)
{
    const json_t *e;
    size_t i;
    json_array_foreach (ids, i, e) {
        const char *s = text(e, "system"), *v = text(e, "value");
        if (s && v && strcmp(s, system) == 0)
            return v;
    }
    return NULL;
}

/* The codings of a CodeableConcept array other than the mCSD facility/jurisdiction code, in
 * order; *first the first of them (or NULL). */
static const json_t *
first_coding(const json_t *ccs)
{
    const json_t *cc, *cd;
    size_t i, k;
    json_array_foreach (ccs, i, cc)
        json_array_foreach (json_object_get(cc, "coding"), k, cd) {
            const char *s = text(cd, "system");
            if (text(cd, "code") && !(s && strcmp(s, IMP_MCSD_TYPES) == 0))
                return cd;
        }
    return NULL;
}

/* The Location id partOf names, or NULL. */
static const char *
parent_id(core_arena *a, const json_t *loc)
{
    const char *ref = text(json_object_get(loc, "partOf"), "reference");
    char type[64], id[65];
    if (!ref || reg_ref_split(ref, type, id) < 0 || strcmp(type, "Location") != 0)
        return NULL;
    return core_arena_strdup(a, id);
}

/* ---- the table (CSV rows, GeoJSON properties) ----------------------------------------------- */

enum {
    C_ID,
    C_NAME,
    C_STATUS,
    C_NFIXED /* then one column per identifier system, then the columns below */
};
enum {
    T_LAT,
    T_LON,
    T_TYPE_SYSTEM,
    T_TYPE_CODE,
    T_TYPE_DISPLAY,
    T_OTHER_TYPES,
    T_OWN_SYSTEM,
    T_OWN_CODE,
    T_OWN_DISPLAY,
    T_N
};
static const char *const tail_names[T_N] = {
    "latitude",    "longitude",        "type_system",    "type_code",        "type_display",
    "other_types", "ownership_system", "ownership_code", "ownership_display"
};

typedef struct table {
    json_t *systems; /* identifier systems, one column each */
    int nsys, levels, ncols;
    char **names; /* column names (malloc'd) */
} table;

static int
col_tail(const table *t, int k)
{
    return C_NFIXED + t->nsys + k;
}

static int
col_level(const table *t, int k)
{
    return C_NFIXED + t->nsys + T_N + k;
}

static void
table_clear(table *t)
{
    for (int i = 0; t->names && i < t->ncols; i++)
        free(t->names[i]);
    free(t->names);
    json_decref(t->systems);
    memset(t, 0, sizeof(*t));
}

static int
table_init(table *t, core_db *db, const reg_export_filter *f, core_err *err)
{
    long count;
    memset(t, 0, sizeof(*t));
    if (reg_export_shape(&t->systems, &t->levels, &count, db, f, err) < 0)
        return -1;
    t->nsys = (int)json_array_size(t->systems);
    t->ncols = C_NFIXED + t->nsys + T_N + t->levels + 2;
    t->names = calloc((size_t)t->ncols, sizeof(char *));
    if (!t->names)
        abort();
    t->names[C_ID] = core_strdup("id");
    t->names[C_NAME] = core_strdup("name");
    t->names[C_STATUS] = core_strdup("status");
    for (int i = 0; i < t->nsys; i++)
        t->names[C_NFIXED + i] =
            core_sprintf("identifier:%s", json_string_value(json_array_get(t->systems, (size_t)i)));
    for (int k = 0; k < T_N; k++)
        t->names[col_tail(t, k)] = core_strdup(tail_names[k]);
    for (int k = 0; k < t->levels; k++)
        t->names[col_level(t, k)] = core_sprintf("level_%d", k + 1);
    t->names[t->ncols - 2] = core_strdup("parent_id");
    t->names[t->ncols - 1] = core_strdup("last_updated");
    return 0;
}

/* The cells of one facility (NULL: empty); strings borrowed from it or in a. */
static void
table_row(const table *t, const reg_export_item *it, core_arena *a, const char **cells)
{
    const json_t *loc = it->location, *pos = json_object_get(loc, "position"), *cd, *e;
    const json_t *ids = json_object_get(loc, "identifier");
    size_t i, k;
    int lv = 0;

    memset(cells, 0, (size_t)t->ncols * sizeof(*cells));
    cells[C_ID] = text(loc, "id");
    cells[C_NAME] = text(loc, "name");
    cells[C_STATUS] = text(loc, "status");
    for (int s = 0; s < t->nsys; s++)
        cells[C_NFIXED + s] =
            identifier(ids, json_string_value(json_array_get(t->systems, (size_t)s)));
    /* a position is two numbers, written as stored */
    if (core_json_is_number(json_object_get(pos, "latitude")) &&
        core_json_is_number(json_object_get(pos, "longitude"))) {
        cells[col_tail(t, T_LAT)] = core_json_number_text(json_object_get(pos, "latitude"));
        cells[col_tail(t, T_LON)] = core_json_number_text(json_object_get(pos, "longitude"));
    }
    if ((cd = first_coding(json_object_get(loc, "type")))) {
        cells[col_tail(t, T_TYPE_SYSTEM)] = text(cd, "system");
        cells[col_tail(t, T_TYPE_CODE)] = text(cd, "code");
        cells[col_tail(t, T_TYPE_DISPLAY)] = text(cd, "display");
        /* the further kinds, as system|code joined with "; " */
        char *other = NULL;
        const json_t *cc, *x;
        json_array_foreach (json_object_get(loc, "type"), i, cc)
            json_array_foreach (json_object_get(cc, "coding"), k, x) {
                const char *s = text(x, "system"), *c = text(x, "code");
                if (x == cd || !c || (s && strcmp(s, IMP_MCSD_TYPES) == 0))
                    continue;
                other = core_arena_sprintf(a, "%s%s%s%s%s", other ? other : "", other ? "; " : "",
                                           s ? s : "", s ? "|" : "", c);
            }
        cells[col_tail(t, T_OTHER_TYPES)] = other;
    }
    if (it->organization && (cd = first_coding(json_object_get(it->organization, "type")))) {
        cells[col_tail(t, T_OWN_SYSTEM)] = text(cd, "system");
        cells[col_tail(t, T_OWN_CODE)] = text(cd, "code");
        cells[col_tail(t, T_OWN_DISPLAY)] = text(cd, "display");
    }
    /* the names of the Locations above that are not facilities, top first */
    json_array_foreach (it->above, i, e) {
        if (json_is_true(json_object_get(e, "facility")))
            continue;
        if (lv < t->levels)
            cells[col_level(t, lv)] = text(e, "name");
        lv++;
    }
    cells[t->ncols - 2] = parent_id(a, loc);
    cells[t->ncols - 1] = text(json_object_get(loc, "meta"), "lastUpdated");
}

/* ---- CSV ---------------------------------------------------------------------------------- */

/* "-12.5", "8": a number, which a spreadsheet reads as a number and never runs. */
static int
plain_number(const char *s)
{
    const char *p = s + (*s == '-');
    int digits = 0, dot = 0;
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digits++;
        else if (*p == '.' && !dot && digits)
            dot = 1;
        else
            return 0;
    }
    return digits > 0 && p[-1] != '.';
}

/* One cell (RFC 4180: quoted when it holds a comma, quote, CR or LF, quotes doubled). A cell
 * starting with = + - @ tab or CR, which a spreadsheet would run as a formula, is prefixed with
 * an apostrophe inside quotes, unless it is a plain number (negative coordinates stay numbers);
 * the shipped mapping's "unquote_formulas" takes the apostrophe off again on import. */
static int
csv_cell(out *o, const char *s, int last, core_err *err)
{
    int neutral = s && strchr("=+-@\t\r", *s) && *s && !plain_number(s);
    int quote =
        neutral || (s && (strpbrk(s, ",\"\r\n") || *s == ' ' || (*s && s[strlen(s) - 1] == ' ')));
    if (quote && puts_(o, neutral ? "\"'" : "\"", err) < 0)
        return -1;
    for (const char *p = s; p && *p;) {
        size_t n = strcspn(p, "\"");
        if (put(o, p, n, err) < 0)
            return -1;
        p += n;
        if (*p == '"') {
            if (puts_(o, "\"\"", err) < 0)
                return -1;
            p++;
        }
    }
    if (quote && puts_(o, "\"", err) < 0)
        return -1;
    return puts_(o, last ? "\r\n" : ",", err);
}

/* ---- DHIS2 -------------------------------------------------------------------------------- */

static int
valid_uid(const char *s)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    if (!s || strlen(s) != 11 || !strchr(alnum, s[0]) || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    return strspn(s, alnum) == 11;
}

/* The UID DHIS2 knows a Location by: its https://dhis2.org/orgunit-uid identifier when that is
 * a valid UID (a letter then 10 letters or digits), else one derived from its id: the SHA-256
 * of "Location/<id>", byte 0 modulo 52 picking a letter (a-z, A-Z), bytes 1..10 modulo 62 each
 * picking a letter or digit (a-z, A-Z, 0-9). */
static void
derive_uid(char uid[12], const char *id, const json_t *ids)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const char *given = identifier(ids, IMP_DHIS2_UID);
    unsigned char h[crypto_hash_sha256_BYTES];
    char key[80];

    if (valid_uid(given)) {
        memcpy(uid, given, 12);
        return;
    }
    snprintf(key, sizeof(key), "Location/%s", id ? id : "");
    crypto_hash_sha256(h, (const unsigned char *)key, strlen(key));
    uid[0] = alnum[h[0] % 52];
    for (int i = 1; i <= 10; i++)
        uid[i] = alnum[h[i] % 62];
    uid[11] = '\0';
}

/* s cut to at most max characters (UTF-8 code points): s itself, or a copy in a. */
static const char *
cut(core_arena *a, const char *s, int max)
{
    const char *p = s;
    char *r;
    for (int n = 0; *p && n < max; n++) {
        p++;
        while (((unsigned char)*p & 0xC0) == 0x80)
            p++;
    }
    if (!*p)
        return s;
    r = core_arena_alloc(a, (size_t)(p - s) + 1);
    memcpy(r, s, (size_t)(p - s));
    return r;
}

static json_t *
point(const json_t *loc)
{
    const json_t *pos = json_object_get(loc, "position");
    const char *lat = core_json_number_text(json_object_get(pos, "latitude"));
    const char *lon = core_json_number_text(json_object_get(pos, "longitude"));
    if (!lat || !lon)
        return NULL;
    return json_pack("{s:s, s:[o, o]}", "type", "Point", "coordinates", core_json_number(lon),
                     core_json_number(lat));
}

static json_t *
dhis2_unit(const reg_export_item *it, core_arena *a)
{
    const json_t *loc = it->location, *ids = json_object_get(loc, "identifier"), *e;
    const char *id = text(loc, "id"), *name = text(loc, "name"), *code, *status;
    char uid[12], puid[12] = "";
    json_t *u = json_object(), *geom;
    size_t i, n = json_array_size(it->above);
    char *path = core_arena_alloc(a, 12 * (n + 1) + 1), *pp = path;

    derive_uid(uid, id, ids);
    json_array_foreach (it->above, i, e) {
        derive_uid(puid, text(e, "id"), json_object_get(e, "identifier"));
        pp += sprintf(pp, "/%s", puid);
    }
    sprintf(pp, "/%s", uid);
    if (!name || !*name)
        name = id;
    json_object_set_new(u, "id", json_string(uid));
    /* code: the DHIS2 code when the Location has one, else its first other identifier that
     * fits DHIS2's 50 characters */
    code = identifier(ids, IMP_DHIS2_CODE);
    json_array_foreach (ids, i, e) {
        const char *s = text(e, "system"), *v = text(e, "value");
        if (code)
            break;
        if (v && *v && strlen(v) <= 50 && !(s && strcmp(s, IMP_DHIS2_UID) == 0))
            code = v;
    }
    if (code && strlen(code) <= 50)
        json_object_set_new(u, "code", json_string(code));
    json_object_set_new(u, "name", json_string(cut(a, name, 230)));
    {
        /* shortName: the first alias that fits DHIS2's 50 characters, else the name cut */
        const char *sn = NULL;
        json_array_foreach (json_object_get(loc, "alias"), i, e)
            if (!sn && core_json_is_text(e) && json_string_length(e) &&
                strcmp(cut(a, json_string_value(e), 50), json_string_value(e)) == 0)
                sn = json_string_value(e);
        json_object_set_new(u, "shortName", json_string(sn ? sn : cut(a, name, 50)));
    }
    if (n)
        json_object_set_new(u, "parent", json_pack("{s:s}", "id", puid));
    json_object_set_new(u, "level", json_integer((json_int_t)n + 1));
    json_object_set_new(u, "path", json_string(path));
    geom = it->boundary ? json_deep_copy(it->boundary) : point(loc);
    if (geom)
        json_object_set_new(u, "geometry", geom);
    /* DHIS2 requires an opening date and the registry keeps none: the start of its epoch keeps
     * every past period open for data entry. A closed (inactive) Location: closed on the day
     * of its last change, the registry's best knowledge of when it closed. */
    json_object_set_new(u, "openingDate", json_string("1970-01-01"));
    status = text(loc, "status");
    if (status && strcmp(status, "inactive") == 0) {
        const char *lu = text(json_object_get(loc, "meta"), "lastUpdated");
        if (lu && strlen(lu) >= 10)
            json_object_set_new(u, "closedDate", json_stringn(lu, 10));
    }
    return u;
}

/* ---- the export ---------------------------------------------------------------------------- */

typedef struct exporter {
    imp_export_format fmt;
    out o;
    table t;
    const char **cells;
    long n;            /* items written */
    json_t *orgs_sent; /* NDJSON: Organizations shared by several Locations, written once */
} exporter;

static int
each_csv(const reg_export_item *it, exporter *x, core_err *err)
{
    core_arena *a = core_arena_create();
    int rc = 0;
    table_row(&x->t, it, a, x->cells);
    for (int i = 0; i < x->t.ncols && rc == 0; i++)
        rc = csv_cell(&x->o, x->cells[i], i == x->t.ncols - 1, err);
    core_arena_destroy(a);
    return rc;
}

static int
each_geojson(const reg_export_item *it, exporter *x, core_err *err)
{
    core_arena *a;
    json_t *geom = point(it->location), *props, *feat;
    int rc;
    if (!geom)
        return 0; /* no position: no feature */
    a = core_arena_create();
    table_row(&x->t, it, a, x->cells);
    props = json_object();
    for (int i = 0; i < x->t.ncols; i++) {
        const char *v = x->cells[i];
        int num = i == col_tail(&x->t, T_LAT) || i == col_tail(&x->t, T_LON);
        json_object_set_new(props, x->t.names[i],
                            !v    ? json_null()
                            : num ? core_json_number(v)
                                  : json_string(v));
    }
    feat = json_object();
    json_object_set_new(feat, "type", json_string("Feature"));
    json_object_set_new(feat, "id", json_sprintf("Location/%s", x->cells[C_ID]));
    json_object_set_new(feat, "geometry", geom);
    json_object_set_new(feat, "properties", props);
    rc =
        puts_(&x->o, x->n++ ? ",\n" : "\n", err) < 0 || put_json(&x->o, feat, "", err) < 0 ? -1 : 0;
    json_decref(feat);
    core_arena_destroy(a);
    return rc;
}

static int
each_ndjson(const reg_export_item *it, exporter *x, core_err *err)
{
    const json_t *org = it->organization;
    if (it->repeat)
        return 0;
    if (org && it->organization_shared) {
        const char *oid = text(org, "id");
        if (!oid || json_object_get(x->orgs_sent, oid))
            org = NULL;
        else
            json_object_set_new(x->orgs_sent, oid, json_true());
    }
    /* the Organization first: the Location refers to it */
    if (org && put_json(&x->o, org, "\n", err) < 0)
        return -1;
    return put_json(&x->o, it->location, "\n", err);
}

static int
each_dhis2(const reg_export_item *it, exporter *x, core_err *err)
{
    core_arena *a;
    json_t *u;
    int rc;
    if (it->repeat)
        return 0;
    a = core_arena_create();
    u = dhis2_unit(it, a);
    rc = puts_(&x->o, x->n++ ? ",\n" : "\n", err) < 0 || put_json(&x->o, u, "", err) < 0 ? -1 : 0;
    json_decref(u);
    core_arena_destroy(a);
    return rc;
}

static int
each(const reg_export_item *it, core_err *err, void *payload)
{
    exporter *x = payload;
    switch (x->fmt) {
    case IMP_EXPORT_CSV:
        return each_csv(it, x, err);
    case IMP_EXPORT_GEOJSON:
        return each_geojson(it, x, err);
    case IMP_EXPORT_NDJSON:
        return each_ndjson(it, x, err);
    case IMP_EXPORT_DHIS2:
        return each_dhis2(it, x, err);
    }
    return 0;
}

static const struct {
    const char *name, *media_type, *file;
} formats[] = {
    [IMP_EXPORT_CSV] = { "csv", "text/csv; charset=utf-8", "mfl.csv" },
    [IMP_EXPORT_GEOJSON] = { "geojson", "application/geo+json; charset=utf-8", "mfl.geojson" },
    [IMP_EXPORT_NDJSON] = { "ndjson", "application/fhir+ndjson; charset=utf-8", "mfl.ndjson" },
    [IMP_EXPORT_DHIS2] = { "dhis2", "application/json; charset=utf-8", "mfl-dhis2.json" },
};

int
imp_export_format_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof(formats) / sizeof(formats[0]); i++)
        if (strcmp(name, formats[i].name) == 0)
            return (int)i;
    return -1;
}

const char *
imp_export_media_type(imp_export_format fmt)
{
    return formats[fmt].media_type;
}

const char *
imp_export_file_name(imp_export_format fmt)
{
    return formats[fmt].file;
}

int
imp_export(core_db *db,
           imp_export_format fmt,
           const reg_export_filter *f,
           imp_write_fn write,
           void *payload,
           core_err *err)
{
    reg_export_filter ff = *f;
    exporter x;
    int rc = -1;

    memset(&x, 0, sizeof(x));
    x.fmt = fmt;
    x.o.write = write;
    x.o.payload = payload;
    /* NDJSON rebuilds the hierarchy and DHIS2 needs every parent in the file */
    ff.ancestors = fmt == IMP_EXPORT_NDJSON || fmt == IMP_EXPORT_DHIS2;
    ff.boundaries = fmt == IMP_EXPORT_DHIS2;
    if (reg_export_check(db, &ff, err) < 0)
        return -1;
    if ((fmt == IMP_EXPORT_CSV || fmt == IMP_EXPORT_GEOJSON) && table_init(&x.t, db, &ff, err) < 0)
        goto done;
    if (!(x.o.buf = malloc(OUT_CHUNK)))
        abort();
    x.orgs_sent = json_object();
    if (x.t.ncols)
        x.cells = calloc((size_t)x.t.ncols, sizeof(*x.cells));
    switch (fmt) {
    case IMP_EXPORT_CSV:
        for (int i = 0; i < x.t.ncols; i++)
            if (csv_cell(&x.o, x.t.names[i], i == x.t.ncols - 1, err) < 0)
                goto done;
        break;
    case IMP_EXPORT_GEOJSON:
        if (puts_(&x.o, "{\"type\":\"FeatureCollection\",\"features\":[", err) < 0)
            goto done;
        break;
    case IMP_EXPORT_DHIS2:
        if (puts_(&x.o, "{\"organisationUnits\":[", err) < 0)
            goto done;
        break;
    case IMP_EXPORT_NDJSON:
        break;
    }
    if (reg_export_facilities(db, &ff, each, &x, err) < 0)
        goto done;
    if ((fmt == IMP_EXPORT_GEOJSON || fmt == IMP_EXPORT_DHIS2) &&
        puts_(&x.o, x.n ? "\n]}\n" : "]}\n", err) < 0)
        goto done;
    rc = flush(&x.o, err);
done:
    free(x.o.buf);
    free(x.cells);
    json_decref(x.orgs_sent);
    table_clear(&x.t);
    return rc;
}
