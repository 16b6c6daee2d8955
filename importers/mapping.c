/* Mappings from a table's columns to a facility record (docs/IMPORT.md): parsed from a JSON
 * mapping file, or inferred from the header row; and the checks every coordinate goes through. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "geo/geo.h"
#include "importers/imp_int.h"

#define MAX_KEY 8

typedef struct col {
    char *name; /* header name, or "#N" (1-based position) */
    int index;  /* bound: position in the row, -1 unbound */
} col;

typedef struct idspec {
    col c;       /* the column, or the first of cols */
    col more[3]; /* further columns joined with sep ("osm_type", "osm_id" → "node/123") */
    int nmore;
    char *sep;
    char *system;
    char *prefix; /* {"column_prefix": p}: every column named p<system> (c and system unset) */
    int derived;  /* made from a prefix by imp_mapping_bind */
} idspec;

typedef struct coded {
    col c;
    char *system;
    json_t *values; /* raw value → "code" or {"code", "display"}; NULL: the raw value is the code */
    col system_col;  /* the code's system, when the file holds it (empty cell: system) */
    col display_col; /* the display, when the file holds it (empty cell: none) */
} coded;

struct imp_mapping {
    char *source;
    int no_list; /* "list": false: rows are not put on a list (no import-list tag) */
    col name;
    idspec ids[IMP_MAX_IDS];
    int nids;
    col key[MAX_KEY]; /* a derived row key when a row has no identifier */
    int nkey;
    char *key_system;
    col lat, lon, combined;
    int lon_first;
    coded type, owner;
    col status;
    json_t *status_values; /* raw → active|inactive|suspended */
    char *status_default;
    col admin[IMP_MAX_LEVELS];
    int nadmin;
    char *admin_prefix; /* jurisdictions.column_prefix: the levels are the columns named so */
    col id;             /* the registry's Location id (a `mahali export csv` file) */
    col parent_id;      /* the registry's id of the parent Location (idem) */
    int unquote; /* unquote_formulas: "'=x" → "=x" (cells a spreadsheet-safe export wrote) */
    char *root;
    char *top;  /* a constant first level ("Zambia") above the columns */
    col parent; /* the parent's identifier (a flattened hierarchy) */
    char *parent_system;
    col kind;                  /* which rows are jurisdictions */
    json_t *kind_jurisdiction; /* values of kind meaning a jurisdiction */
    int crs;
    char *crs_text;
    json_t *unmapped; /* inferred: the columns left out */
};

/* ---- small text helpers -----------------------------------------------------------------------
 */

const char *
imp_cell(core_arena *a, const char *s)
{
    size_t n;
    if (!s)
        return NULL;
    /* leading and trailing ASCII white space and no-break spaces (U+00A0, C2 A0) */
    for (;;) {
        if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
            s++;
        else if ((unsigned char)s[0] == 0xC2 && (unsigned char)s[1] == 0xA0)
            s += 2;
        else
            break;
    }
    n = strlen(s);
    for (;;) {
        if (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
            n--;
        else if (n >= 2 && (unsigned char)s[n - 2] == 0xC2 && (unsigned char)s[n - 1] == 0xA0)
            n -= 2;
        else
            break;
    }
    if (!n)
        return NULL;
    char *out = core_arena_alloc(a, n + 1);
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

/* Header comparison form: lower-case letters and digits only ("Facility name" → facilityname). */
static void
squash(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    if ((unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
        s += 3;
    for (; *s && n + 1 < cap; s++)
        if (isalnum((unsigned char)*s))
            out[n++] = (char)tolower((unsigned char)*s);
    out[n] = '\0';
}

/* A slug for identifier systems: lower-case, runs of other characters as one '-'. */
static char *
slug(const char *s)
{
    size_t n = strlen(s), k = 0;
    char *out = malloc(n + 1);
    int dash = 0;
    if (!out)
        abort();
    for (; *s; s++) {
        if (isalnum((unsigned char)*s)) {
            if (dash && k)
                out[k++] = '-';
            out[k++] = (char)tolower((unsigned char)*s);
            dash = 0;
        } else {
            dash = 1;
        }
    }
    out[k] = '\0';
    return out;
}

/* The list's name from a file's stem: the slug without the parts that change from one export
 * to the next (years, dates, version numbers), so that next year's file of the same list gets the
 * same identifier systems. */
static char *
source_of(const char *stem)
{
    char *s = slug(stem), *out = malloc(strlen(s) + 8), *p = s;
    size_t n = 0;
    if (!out)
        abort();
    while (*p) {
        size_t len = strcspn(p, "-");
        int digits = 1;
        for (size_t i = 0; i < len; i++)
            if (!isdigit((unsigned char)p[i]) && !(i == 0 && p[i] == 'v' && len > 1))
                digits = 0;
        if (!digits) {
            if (n)
                out[n++] = '-';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
        if (*p == '-')
            p++;
    }
    out[n] = '\0';
    if (!n)
        strcpy(out, "import");
    free(s);
    return out;
}

static const char *
field(char *const *f, int n, const col *c)
{
    return c->name && c->index >= 0 && c->index < n ? f[c->index] : NULL;
}

/* ---- inference --------------------------------------------------------------------------------
 */

static int
in_list(const char *h, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(h, list[i]) == 0)
            return 1;
    return 0;
}

static const char *const NAME_H[] = { "name",
                                      "facilityname",
                                      "facityname",
                                      "healthfacility",
                                      "healthfacilityname",
                                      "hfname",
                                      "sitename",
                                      "facility",
                                      "nom",
                                      "nome",
                                      "nomdelaformationsanitaire",
                                      "unitname",
                                      "orgunitname",
                                      "primaryname",
                                      "officialname",
                                      NULL };
/* identifier columns, the strongest first */
static const char *const ID_H[] = {
    "mflcode",       "code",       "facilitycode", "hmiscode",
    "hfcode",        "facilityid", "id",           "uid",
    "dhis2uid",      "dhis2id",    "orgunitid",    "osmid",
    "extref",        "externalid", "entityid",     "registrationnumber",
    "smartcareguid", "elmisid",    "ihrisid",      "uuid",
    "idgeo",         "siteid",     "sitecode",     NULL
};
static const char *const LAT_H[] = { "lat",         "latitude",  "y",      "gpslat",
                                     "gpslatitude", "latitudey", "ycoord", "ycoordinate",
                                     "latdd",       "latdec",    NULL };
static const char *const LON_H[] = { "lon",        "long",   "lng",         "longitude",
                                     "x",          "gpslon", "gpslong",     "gpslongitude",
                                     "longitudex", "xcoord", "xcoordinate", "londd",
                                     "londec",     NULL };
static const char *const COMBINED_H[] = {
    "location", "coordinates",    "coords",      "latlon",   "latlong", "latitudelongitude",
    "gps",      "gpscoordinates", "geolocation", "position", NULL
};
static const char *const LONFIRST_H[] = { "lonlat", "longlat", "longitudelatitude", NULL };
static const char *const TYPE_H[] = { "facilitytype",     "type",     "ftype",   "typeoffacility",
                                      "facilitycategory", "category", "amenity", NULL };
static const char *const OWNER_H[] = {
    "ownership", "owner",    "ownertype", "operatortype", "managingauthority", "authority",
    "managedby", "operator", NULL
};
static const char *const STATUS_H[] = {
    "status", "operationstatus", "operationalstatus", "functionalstatus", "deleted", "closed", NULL
};

/* Administrative levels and their rank (0 country ... 4 ward). */
static int
admin_rank(const char *h)
{
    static const struct {
        const char *h;
        int rank;
    } L[] = { { "country", 0 },     { "admin0", 0 },    { "adm0", 0 },
              { "region", 1 },      { "province", 1 },  { "state", 1 },
              { "admin1", 1 },      { "adm1", 1 },      { "level1", 1 },
              { "district", 2 },    { "county", 2 },    { "admin2", 2 },
              { "adm2", 2 },        { "zone", 2 },      { "level2", 2 },
              { "subdistrict", 3 }, { "subcounty", 3 }, { "constituency", 3 },
              { "lga", 3 },         { "payam", 3 },     { "chiefdom", 3 },
              { "admin3", 3 },      { "adm3", 3 },      { "level3", 3 },
              { "ward", 4 },        { "sector", 4 },    { "admin4", 4 },
              { "adm4", 4 },        { "level4", 4 },    { NULL, 0 } };
    for (int i = 0; L[i].h; i++)
        if (strcmp(h, L[i].h) == 0)
            return L[i].rank;
    return -1;
}

static void
col_set(col *c, const char *name)
{
    free(c->name);
    c->name = core_strdup(name);
    c->index = -1;
}

imp_mapping *
imp_mapping_infer(char *const *header, int n, const char *file_base)
{
    imp_mapping *m = calloc(1, sizeof(*m));
    char h[128];
    int used[IMP_CSV_MAX_FIELDS] = { 0 }, name_prio = 1000, rank_col[5];
    int lat = -1, lon = -1, comb = -1, type = -1, owner = -1, status = -1;

    if (!m)
        abort();
    for (int r = 0; r < 5; r++)
        rank_col[r] = -1;
    m->source = source_of(file_base);
    m->status_default = core_strdup("active");
    m->name.index = -1;
    for (int i = 0; i < n && i < IMP_CSV_MAX_FIELDS; i++) {
        squash(h, sizeof(h), header[i]);
        int rank;
        for (int k = 0; NAME_H[k]; k++)
            if (strcmp(h, NAME_H[k]) == 0 && k < name_prio) {
                name_prio = k;
                col_set(&m->name, header[i]);
            }
        if (lat < 0 && in_list(h, LAT_H))
            lat = i;
        else if (lon < 0 && in_list(h, LON_H))
            lon = i;
        else if (comb < 0 && (in_list(h, COMBINED_H) || in_list(h, LONFIRST_H))) {
            comb = i;
            m->lon_first = in_list(h, LONFIRST_H);
        } else if (type < 0 && in_list(h, TYPE_H))
            type = i;
        else if (owner < 0 && in_list(h, OWNER_H))
            owner = i;
        else if (status < 0 && in_list(h, STATUS_H))
            status = i;
        else if ((rank = admin_rank(h)) >= 0 && rank_col[rank] < 0)
            rank_col[rank] = i;
    }
    /* identifiers: in the order of ID_H, each header once */
    for (int k = 0; ID_H[k] && m->nids < IMP_MAX_IDS; k++)
        for (int i = 0; i < n && i < IMP_CSV_MAX_FIELDS; i++) {
            squash(h, sizeof(h), header[i]);
            if (strcmp(h, ID_H[k]) == 0 && !used[i]) {
                char *s = slug(header[i]);
                idspec *id = &m->ids[m->nids++];
                col_set(&id->c, header[i]);
                id->system = core_sprintf("urn:mahali:%s:%s", m->source, s);
                free(s);
                used[i] = 1;
                break;
            }
        }
    if (lat >= 0 && lon >= 0) {
        col_set(&m->lat, header[lat]);
        col_set(&m->lon, header[lon]);
        used[lat] = used[lon] = 1;
    } else if (comb >= 0) {
        col_set(&m->combined, header[comb]);
        used[comb] = 1;
    } else {
        m->lat.index = m->lon.index = -1;
    }
    if (type >= 0) {
        col_set(&m->type.c, header[type]);
        m->type.system = core_strdup(IMP_TYPE_LOCAL);
        used[type] = 1;
    }
    if (owner >= 0) {
        col_set(&m->owner.c, header[owner]);
        m->owner.system = core_strdup(IMP_OWNER_LOCAL);
        used[owner] = 1;
    }
    if (status >= 0) {
        col_set(&m->status, header[status]);
        used[status] = 1;
    }
    for (int r = 0; r < 5; r++)
        if (rank_col[r] >= 0 && !used[rank_col[r]]) {
            col_set(&m->admin[m->nadmin++], header[rank_col[r]]);
            used[rank_col[r]] = 1;
        }
    /* the derived key: name, levels and coordinates, for rows without an identifier */
    if (m->name.name) {
        col_set(&m->key[m->nkey++], m->name.name);
        for (int i = 0; i < m->nadmin && m->nkey < MAX_KEY; i++)
            col_set(&m->key[m->nkey++], m->admin[i].name);
        if (m->lat.name && m->nkey + 2 <= MAX_KEY) {
            col_set(&m->key[m->nkey++], m->lat.name);
            col_set(&m->key[m->nkey++], m->lon.name);
        } else if (m->combined.name && m->nkey < MAX_KEY) {
            col_set(&m->key[m->nkey++], m->combined.name);
        }
        m->key_system = core_sprintf("%s:%s", IMP_ROW_KEY, m->source);
    }
    for (int i = 0; i < n && i < IMP_CSV_MAX_FIELDS; i++) {
        char sq[128];
        squash(sq, sizeof(sq), header[i]);
        if (!used[i] && !(m->name.name && strcmp(m->name.name, header[i]) == 0)) {
            if (!m->unmapped)
                m->unmapped = json_array();
            json_array_append_new(m->unmapped, json_string(header[i]));
        }
    }
    return m;
}

/* ---- parse / print ------------------------------------------------------------------------------
 */

static int
want_string(const json_t *j, const char *path, core_err *err)
{
    if (j && !json_is_string(j))
        return core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, path, "%s must be a string", path);
    return 0;
}

static int
parse_col(col *c, const json_t *j, const char *path, core_err *err)
{
    c->index = -1;
    if (!j)
        return 0;
    if (want_string(j, path, err) < 0)
        return -1;
    c->name = core_strdup(json_string_value(j));
    return 0;
}

static int
parse_coded(coded *cd, const json_t *j, const char *path, const char *dflt_system, core_err *err)
{
    char p[96];
    cd->c.index = -1;
    if (!j)
        return 0;
    if (json_is_string(j)) {
        cd->c.name = core_strdup(json_string_value(j));
        cd->system = core_strdup(dflt_system);
        return 0;
    }
    if (!json_is_object(j))
        return core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, path,
                               "%s must be a column name or an object", path);
    snprintf(p, sizeof(p), "%s.column", path);
    if (!json_object_get(j, "column"))
        return core_err_set_at(err, 400, CORE_ISSUE_REQUIRED, p, "%s is required", p);
    if (parse_col(&cd->c, json_object_get(j, "column"), p, err) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s.system", path);
    if (want_string(json_object_get(j, "system"), p, err) < 0)
        return -1;
    cd->system =
        core_strdup(json_object_get(j, "system") ? json_string_value(json_object_get(j, "system"))
                                                 : dflt_system);
    {
        /* kept (with a reference) only once checked: imp_mapping_free releases it */
        json_t *values = json_object_get(j, "values");
        if (values) {
            const char *k;
            json_t *v;
            snprintf(p, sizeof(p), "%s.values", path);
            if (!json_is_object(values))
                return core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, p, "%s must be an object",
                                       p);
            json_object_foreach (values, k, v)
                if (!json_is_string(v) &&
                    !(json_is_object(v) && json_is_string(json_object_get(v, "code"))))
                    return core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, p,
                                           "%s.\"%.40s\" must be a code or {\"code\", "
                                           "\"display\"}",
                                           p, k);
            cd->values = json_incref(values);
        }
    }
    /* a file that holds the system and display beside the code (a `mahali export csv`) */
    snprintf(p, sizeof(p), "%s.system_column", path);
    if (parse_col(&cd->system_col, json_object_get(j, "system_column"), p, err) < 0)
        return -1;
    snprintf(p, sizeof(p), "%s.display_column", path);
    if (parse_col(&cd->display_col, json_object_get(j, "display_column"), p, err) < 0)
        return -1;
    return 0;
}

imp_mapping *
imp_mapping_parse(const json_t *j, core_err *err)
{
    imp_mapping *m = calloc(1, sizeof(*m));
    json_t *v;
    char p[64];
    size_t i;

    if (!m)
        abort();
    m->name.index = m->lat.index = m->lon.index = m->combined.index = m->status.index = -1;
    if (!json_is_object(j)) {
        core_err_set(err, 400, CORE_ISSUE_STRUCTURE, "the mapping must be a JSON object");
        goto fail;
    }
    v = json_object_get(j, "source");
    if (want_string(v, "source", err) < 0)
        goto fail;
    m->source = slug(v ? json_string_value(v) : "import");
    v = json_object_get(j, "list");
    if (v && !json_is_boolean(v)) {
        core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "list",
                        "list is true (the default: rows are on the list named by source) or "
                        "false");
        goto fail;
    }
    m->no_list = json_is_false(v);
    if (!json_object_get(j, "name")) {
        core_err_set_at(err, 400, CORE_ISSUE_REQUIRED, "name",
                        "the mapping must name the column holding the facility name (\"name\")");
        goto fail;
    }
    if (parse_col(&m->name, json_object_get(j, "name"), "name", err) < 0)
        goto fail;
    v = json_object_get(j, "identifiers");
    if (v && (!json_is_array(v) || json_array_size(v) > IMP_MAX_IDS)) {
        core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "identifiers",
                        "identifiers must be an array of at most %d {\"column\", \"system\"}",
                        IMP_MAX_IDS);
        goto fail;
    }
    json_t *e;
    json_array_foreach (v, i, e) {
        idspec *id = &m->ids[m->nids++];
        json_t *cols = json_object_get(e, "columns");
        if (json_is_object(e) && json_object_get(e, "column_prefix")) {
            /* {"column_prefix": "identifier:"}: a column "identifier:<system>" per system */
            json_t *pv = json_object_get(e, "column_prefix");
            snprintf(p, sizeof(p), "identifiers[%zu].column_prefix", i);
            if (!json_is_string(pv) || !json_string_length(pv)) {
                core_err_set_at(err, 400, CORE_ISSUE_VALUE, p, "%s must be a non-empty string", p);
                goto fail;
            }
            id->prefix = core_strdup(json_string_value(pv));
            continue;
        }
        snprintf(p, sizeof(p), "identifiers[%zu].column", i);
        if (json_is_object(e) && json_is_array(cols) && json_array_size(cols) >= 1 &&
            json_array_size(cols) <= 4) {
            /* several columns joined: {"columns": ["osm_type", "osm_id"], "separator": "/"} */
            json_t *cv;
            size_t ci;
            json_array_foreach (cols, ci, cv) {
                snprintf(p, sizeof(p), "identifiers[%zu].columns[%zu]", i, ci);
                if (!json_is_string(cv)) {
                    core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, p, "%s must be a string", p);
                    goto fail;
                }
                parse_col(ci ? &id->more[id->nmore++] : &id->c, cv, p, err);
            }
            id->sep = core_strdup(json_is_string(json_object_get(e, "separator"))
                                      ? json_string_value(json_object_get(e, "separator"))
                                      : "/");
        } else if (!json_is_object(e) || !json_is_string(json_object_get(e, "column"))) {
            core_err_set_at(err, 400, CORE_ISSUE_REQUIRED, p, "%s (or columns) is required", p);
            goto fail;
        } else {
            parse_col(&id->c, json_object_get(e, "column"), p, err);
        }
        snprintf(p, sizeof(p), "identifiers[%zu].system", i);
        if (!json_is_string(json_object_get(e, "system"))) {
            core_err_set_at(err, 400, CORE_ISSUE_REQUIRED, p,
                            "%s is required: the URI of the code list the column holds", p);
            goto fail;
        }
        id->system = core_strdup(json_string_value(json_object_get(e, "system")));
    }
    v = json_object_get(j, "key");
    if (v) {
        json_t *cols = json_object_get(v, "columns");
        if (!json_is_array(cols) || !json_array_size(cols) || json_array_size(cols) > MAX_KEY) {
            core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "key.columns",
                            "key.columns must be an array of 1 to %d column names", MAX_KEY);
            goto fail;
        }
        json_array_foreach (cols, i, e) {
            snprintf(p, sizeof(p), "key.columns[%zu]", i);
            if (parse_col(&m->key[m->nkey++], e, p, err) < 0)
                goto fail;
        }
        if (want_string(json_object_get(v, "system"), "key.system", err) < 0)
            goto fail;
        m->key_system = json_object_get(v, "system")
                            ? core_strdup(json_string_value(json_object_get(v, "system")))
                            : core_sprintf("%s:%s", IMP_ROW_KEY, m->source);
    }
    /* "id": the registry's own Location id, as `mahali export csv` writes it; a row that
     * names a live facility by it updates that facility */
    if (parse_col(&m->id, json_object_get(j, "id"), "id", err) < 0 ||
        parse_col(&m->parent_id, json_object_get(j, "parent_id"), "parent_id", err) < 0)
        goto fail;
    v = json_object_get(j, "unquote_formulas");
    if (v && !json_is_boolean(v)) {
        core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "unquote_formulas",
                        "unquote_formulas must be true or false");
        goto fail;
    }
    m->unquote = json_is_true(v);
    if (!m->nids && !m->nkey && !m->id.name) {
        core_err_set_at(err, 400, CORE_ISSUE_REQUIRED, "identifiers",
                        "the mapping needs identifiers or a key: re-imports find facilities by "
                        "them");
        goto fail;
    }
    if (parse_col(&m->lat, json_object_get(j, "latitude"), "latitude", err) < 0 ||
        parse_col(&m->lon, json_object_get(j, "longitude"), "longitude", err) < 0)
        goto fail;
    if (!m->lat.name != !m->lon.name) {
        core_err_set_at(err, 400, CORE_ISSUE_REQUIRED, m->lat.name ? "longitude" : "latitude",
                        "latitude and longitude go together");
        goto fail;
    }
    v = json_object_get(j, "coordinates");
    if (v) {
        const char *order = json_string_value(json_object_get(v, "order"));
        if (parse_col(&m->combined, json_object_get(v, "column"), "coordinates.column", err) < 0)
            goto fail;
        if (!m->combined.name) {
            core_err_set_at(err, 400, CORE_ISSUE_REQUIRED, "coordinates.column",
                            "coordinates.column is required");
            goto fail;
        }
        if (order && strcmp(order, "lat,lon") != 0 && strcmp(order, "lon,lat") != 0) {
            core_err_set_at(err, 400, CORE_ISSUE_VALUE, "coordinates.order",
                            "coordinates.order is \"lat,lon\" or \"lon,lat\"");
            goto fail;
        }
        m->lon_first = order && strcmp(order, "lon,lat") == 0;
    }
    if (parse_coded(&m->type, json_object_get(j, "type"), "type", IMP_TYPE_LOCAL, err) < 0 ||
        parse_coded(&m->owner, json_object_get(j, "ownership"), "ownership", IMP_OWNER_LOCAL, err) <
            0)
        goto fail;
    v = json_object_get(j, "status");
    m->status_default = core_strdup("active");
    if (v) {
        if (json_is_string(v)) {
            m->status.name = core_strdup(json_string_value(v));
        } else if (json_is_object(v)) {
            const char *k;
            json_t *x;
            if (parse_col(&m->status, json_object_get(v, "column"), "status.column", err) < 0)
                goto fail;
            m->status_values = json_object_get(v, "values");
            json_object_foreach (m->status_values, k, x) {
                const char *s = json_string_value(x);
                if (!s ||
                    (strcmp(s, "active") && strcmp(s, "inactive") && strcmp(s, "suspended"))) {
                    core_err_set_at(err, 400, CORE_ISSUE_VALUE, "status.values",
                                    "status.values.\"%.40s\" must be active, inactive or "
                                    "suspended",
                                    k);
                    goto fail;
                }
            }
            json_incref(m->status_values);
            if (json_is_string(json_object_get(v, "default"))) {
                free(m->status_default);
                m->status_default = core_strdup(json_string_value(json_object_get(v, "default")));
            }
        } else {
            core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "status",
                            "status must be a column name or an object");
            goto fail;
        }
    }
    v = json_object_get(j, "jurisdictions");
    if (v) {
        json_t *cols = json_object_get(v, "columns"), *pre = json_object_get(v, "column_prefix");
        if (pre) {
            /* {"column_prefix": "level_"}: the columns named so, in the header's order */
            if (!json_is_string(pre) || !json_string_length(pre) || cols) {
                core_err_set_at(err, 400, CORE_ISSUE_VALUE, "jurisdictions.column_prefix",
                                "jurisdictions.column_prefix must be a non-empty string, given "
                                "instead of columns");
                goto fail;
            }
            m->admin_prefix = core_strdup(json_string_value(pre));
        } else if (!json_is_array(cols) || json_array_size(cols) > IMP_MAX_LEVELS) {
            core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "jurisdictions.columns",
                            "jurisdictions.columns must be an array of at most %d columns, top "
                            "level first",
                            IMP_MAX_LEVELS);
            goto fail;
        }
        json_array_foreach (cols, i, e) {
            snprintf(p, sizeof(p), "jurisdictions.columns[%zu]", i);
            if (parse_col(&m->admin[m->nadmin++], e, p, err) < 0)
                goto fail;
        }
        if (want_string(json_object_get(v, "root"), "jurisdictions.root", err) < 0)
            goto fail;
        if (json_object_get(v, "root")) {
            const char *r = json_string_value(json_object_get(v, "root"));
            if (strncmp(r, "Location/", 9) == 0)
                r += 9;
            if (!reg_id_valid(r)) {
                core_err_set_at(err, 400, CORE_ISSUE_VALUE, "jurisdictions.root",
                                "jurisdictions.root must be Location/<id>");
                goto fail;
            }
            m->root = core_strdup(r);
        }
        if (want_string(json_object_get(v, "top"), "jurisdictions.top", err) < 0)
            goto fail;
        if (json_object_get(v, "top"))
            m->top = core_strdup(json_string_value(json_object_get(v, "top")));
    }
    m->parent.index = m->kind.index = -1;
    v = json_object_get(j, "parent");
    if (v) {
        if (!json_is_object(v) || !json_is_string(json_object_get(v, "column")) ||
            !json_is_string(json_object_get(v, "system"))) {
            core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "parent",
                            "parent is {\"column\": ..., \"system\": ...}: the column holds the "
                            "parent's identifier in that system");
            goto fail;
        }
        parse_col(&m->parent, json_object_get(v, "column"), "parent.column", err);
        m->parent_system = core_strdup(json_string_value(json_object_get(v, "system")));
    }
    v = json_object_get(j, "kind");
    if (v) {
        json_t *vals = json_object_get(v, "jurisdiction");
        if (!json_is_object(v) || !json_is_string(json_object_get(v, "column")) ||
            !json_is_array(vals)) {
            core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "kind",
                            "kind is {\"column\": ..., \"jurisdiction\": [values]}: rows with one "
                            "of the values are jurisdictions, the others facilities");
            goto fail;
        }
        parse_col(&m->kind, json_object_get(v, "column"), "kind.column", err);
        m->kind_jurisdiction = json_incref(vals);
    }
    v = json_object_get(j, "crs");
    if (v) {
        if (want_string(v, "crs", err) < 0 ||
            geo_crs_parse(json_string_value(v), &m->crs, err) < 0) {
            core_strlcpy(err->expr, "crs", sizeof(err->expr));
            goto fail;
        }
        m->crs_text = core_strdup(json_string_value(v));
        if (m->crs == 4326)
            m->crs = 0;
    }
    return m;
fail:
    imp_mapping_free(m);
    return NULL;
}

static json_t *
coded_json(const coded *cd)
{
    json_t *o = json_object();
    json_object_set_new(o, "column", json_string(cd->c.name));
    json_object_set_new(o, "system", json_string(cd->system));
    if (cd->values)
        json_object_set(o, "values", cd->values);
    if (cd->system_col.name)
        json_object_set_new(o, "system_column", json_string(cd->system_col.name));
    if (cd->display_col.name)
        json_object_set_new(o, "display_column", json_string(cd->display_col.name));
    return o;
}

json_t *
imp_mapping_json(const imp_mapping *m)
{
    json_t *o = json_object(), *a;
    json_object_set_new(o, "source", json_string(m->source));
    if (m->no_list)
        json_object_set_new(o, "list", json_false());
    if (m->name.name)
        json_object_set_new(o, "name", json_string(m->name.name));
    if (m->id.name)
        json_object_set_new(o, "id", json_string(m->id.name));
    if (m->parent_id.name)
        json_object_set_new(o, "parent_id", json_string(m->parent_id.name));
    if (m->unquote)
        json_object_set_new(o, "unquote_formulas", json_true());
    a = json_array();
    for (int i = 0; i < m->nids; i++) {
        if (m->ids[i].derived)
            continue;
        if (m->ids[i].prefix) {
            json_array_append_new(a, json_pack("{s:s}", "column_prefix", m->ids[i].prefix));
        } else if (m->ids[i].nmore) {
            json_t *cols = json_pack("[s]", m->ids[i].c.name);
            for (int k = 0; k < m->ids[i].nmore; k++)
                json_array_append_new(cols, json_string(m->ids[i].more[k].name));
            json_array_append_new(a, json_pack("{s:o,s:s,s:s}", "columns", cols, "separator",
                                               m->ids[i].sep, "system", m->ids[i].system));
        } else {
            json_array_append_new(
                a, json_pack("{s:s,s:s}", "column", m->ids[i].c.name, "system", m->ids[i].system));
        }
    }
    json_object_set_new(o, "identifiers", a);
    if (m->nkey) {
        a = json_array();
        for (int i = 0; i < m->nkey; i++)
            json_array_append_new(a, json_string(m->key[i].name));
        json_object_set_new(o, "key",
                            json_pack("{s:o,s:s}", "columns", a, "system", m->key_system));
    }
    if (m->lat.name) {
        json_object_set_new(o, "latitude", json_string(m->lat.name));
        json_object_set_new(o, "longitude", json_string(m->lon.name));
    }
    if (m->combined.name)
        json_object_set_new(o, "coordinates",
                            json_pack("{s:s,s:s}", "column", m->combined.name, "order",
                                      m->lon_first ? "lon,lat" : "lat,lon"));
    if (m->crs_text)
        json_object_set_new(o, "crs", json_string(m->crs_text));
    if (m->type.c.name)
        json_object_set_new(o, "type", coded_json(&m->type));
    if (m->owner.c.name)
        json_object_set_new(o, "ownership", coded_json(&m->owner));
    if (m->status.name) {
        json_t *s = json_pack("{s:s,s:s}", "column", m->status.name, "default", m->status_default);
        if (m->status_values)
            json_object_set(s, "values", m->status_values);
        json_object_set_new(o, "status", s);
    }
    if (m->nadmin || m->admin_prefix) {
        a = json_array();
        for (int i = 0; i < m->nadmin; i++)
            json_array_append_new(a, json_string(m->admin[i].name));
        json_t *jd = m->admin_prefix ? json_pack("{s:s}", "column_prefix", m->admin_prefix)
                                     : json_pack("{s:o}", "columns", a);
        if (m->admin_prefix)
            json_decref(a);
        if (m->root)
            json_object_set_new(jd, "root", json_sprintf("Location/%s", m->root));
        if (m->top)
            json_object_set_new(jd, "top", json_string(m->top));
        json_object_set_new(o, "jurisdictions", jd);
    }
    if (m->parent.name)
        json_object_set_new(
            o, "parent",
            json_pack("{s:s,s:s}", "column", m->parent.name, "system", m->parent_system));
    if (m->kind.name)
        json_object_set_new(
            o, "kind",
            json_pack("{s:s,s:O}", "column", m->kind.name, "jurisdiction", m->kind_jurisdiction));
    if (m->unmapped)
        json_object_set(o, "unmapped", m->unmapped);
    return o;
}

static void
col_free(col *c)
{
    free(c->name);
}

void
imp_mapping_free(imp_mapping *m)
{
    if (!m)
        return;
    free(m->source);
    col_free(&m->name);
    for (int i = 0; i < m->nids; i++) {
        col_free(&m->ids[i].c);
        for (int k = 0; k < m->ids[i].nmore; k++)
            col_free(&m->ids[i].more[k]);
        free(m->ids[i].sep);
        free(m->ids[i].system);
        free(m->ids[i].prefix);
    }
    for (int i = 0; i < m->nkey; i++)
        col_free(&m->key[i]);
    free(m->key_system);
    col_free(&m->id);
    col_free(&m->parent_id);
    free(m->admin_prefix);
    col_free(&m->type.system_col);
    col_free(&m->type.display_col);
    col_free(&m->owner.system_col);
    col_free(&m->owner.display_col);
    col_free(&m->lat);
    col_free(&m->lon);
    col_free(&m->combined);
    col_free(&m->type.c);
    free(m->type.system);
    json_decref(m->type.values);
    col_free(&m->owner.c);
    free(m->owner.system);
    json_decref(m->owner.values);
    col_free(&m->status);
    json_decref(m->status_values);
    free(m->status_default);
    for (int i = 0; i < m->nadmin; i++)
        col_free(&m->admin[i]);
    free(m->root);
    free(m->top);
    col_free(&m->parent);
    free(m->parent_system);
    col_free(&m->kind);
    json_decref(m->kind_jurisdiction);
    free(m->crs_text);
    json_decref(m->unmapped);
    free(m);
}

const char *
imp_mapping_list(const imp_mapping *m)
{
    return m->no_list ? NULL : m->source;
}

int
imp_mapping_crs(const imp_mapping *m)
{
    return m->crs;
}

/* ---- binding and rows ---------------------------------------------------------------------------
 */

static int
bind(col *c, char *const *header, int n, const char *what, core_err *err)
{
    char a[128], b[128];
    if (!c->name)
        return 0;
    for (int i = 0; i < n; i++)
        if (strcmp(header[i], c->name) == 0) {
            c->index = i;
            return 0;
        }
    if (c->name[0] == '#' && isdigit((unsigned char)c->name[1])) {
        char *end;
        long k = strtol(c->name + 1, &end, 10);
        if (*end || k < 1 || k > n)
            return core_err_set_at(err, 400, CORE_ISSUE_VALUE, what,
                                   "%s: column %s does not exist (the header has %d columns)", what,
                                   c->name, n);
        c->index = (int)k - 1;
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (strcmp(header[i], c->name) == 0) {
            c->index = i;
            return 0;
        }
    squash(a, sizeof(a), c->name);
    for (int i = 0; i < n; i++) { /* a BOM, case or spacing difference is not worth a failure */
        squash(b, sizeof(b), header[i]);
        if (*a && strcmp(a, b) == 0) {
            c->index = i;
            return 0;
        }
    }
    return core_err_set_at(err, 400, CORE_ISSUE_VALUE, what,
                           "%s: the header has no column \"%.60s\"", what, c->name);
}

/* The columns named by a prefix (identifiers[].column_prefix, jurisdictions.column_prefix),
 * made again at each bind: an identifier per column "<prefix><system>", and the levels, in
 * the header's order. */
static int
expand_prefixes(imp_mapping *m, char *const *header, int n, core_err *err)
{
    int k = 0, nspec;
    for (int i = 0; i < m->nids; i++) {
        if (m->ids[i].derived) {
            col_free(&m->ids[i].c);
            free(m->ids[i].system);
            continue;
        }
        m->ids[k++] = m->ids[i];
    }
    m->nids = nspec = k;
    for (int i = 0; i < nspec; i++) {
        const char *pre = m->ids[i].prefix;
        size_t len = pre ? strlen(pre) : 0;
        for (int h = 0; pre && h < n; h++) {
            idspec *id;
            if (strncmp(header[h], pre, len) != 0 || !header[h][len])
                continue;
            if (m->nids == IMP_MAX_IDS)
                return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "identifiers",
                                       "more than %d identifier columns (named \"%.40s...\"); "
                                       "remove some from the file",
                                       IMP_MAX_IDS, pre);
            id = &m->ids[m->nids++];
            memset(id, 0, sizeof(*id));
            col_set(&id->c, header[h]);
            id->system = core_strdup(header[h] + len);
            id->derived = 1;
        }
    }
    if (m->admin_prefix) {
        size_t len = strlen(m->admin_prefix);
        for (int i = 0; i < m->nadmin; i++)
            col_free(&m->admin[i]);
        memset(m->admin, 0, sizeof(m->admin));
        m->nadmin = 0;
        for (int h = 0; h < n; h++) {
            if (strncmp(header[h], m->admin_prefix, len) != 0 || !header[h][len])
                continue;
            if (m->nadmin == IMP_MAX_LEVELS)
                return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "jurisdictions.column_prefix",
                                       "more than %d level columns (named \"%.40s...\")",
                                       IMP_MAX_LEVELS, m->admin_prefix);
            col_set(&m->admin[m->nadmin++], header[h]);
        }
    }
    return 0;
}

int
imp_mapping_bind(imp_mapping *m, char *const *header, int n, core_err *err)
{
    char p[48];
    if (expand_prefixes(m, header, n, err) < 0 || bind(&m->name, header, n, "name", err) < 0 ||
        bind(&m->id, header, n, "id", err) < 0 ||
        bind(&m->parent_id, header, n, "parent_id", err) < 0 ||
        bind(&m->type.system_col, header, n, "type.system_column", err) < 0 ||
        bind(&m->type.display_col, header, n, "type.display_column", err) < 0 ||
        bind(&m->owner.system_col, header, n, "ownership.system_column", err) < 0 ||
        bind(&m->owner.display_col, header, n, "ownership.display_column", err) < 0)
        return -1;
    for (int i = 0; i < m->nids; i++) {
        snprintf(p, sizeof(p), "identifiers[%d].column", i);
        if (bind(&m->ids[i].c, header, n, p, err) < 0)
            return -1;
        for (int k = 0; k < m->ids[i].nmore; k++) {
            snprintf(p, sizeof(p), "identifiers[%d].columns[%d]", i, k + 1);
            if (bind(&m->ids[i].more[k], header, n, p, err) < 0)
                return -1;
        }
    }
    if (bind(&m->parent, header, n, "parent.column", err) < 0 ||
        bind(&m->kind, header, n, "kind.column", err) < 0)
        return -1;
    for (int i = 0; i < m->nkey; i++) {
        snprintf(p, sizeof(p), "key.columns[%d]", i);
        if (bind(&m->key[i], header, n, p, err) < 0)
            return -1;
    }
    for (int i = 0; i < m->nadmin; i++) {
        snprintf(p, sizeof(p), "jurisdictions.columns[%d]", i);
        if (bind(&m->admin[i], header, n, p, err) < 0)
            return -1;
    }
    return bind(&m->lat, header, n, "latitude", err) < 0 ||
                   bind(&m->lon, header, n, "longitude", err) < 0 ||
                   bind(&m->combined, header, n, "coordinates.column", err) < 0 ||
                   bind(&m->type.c, header, n, "type.column", err) < 0 ||
                   bind(&m->owner.c, header, n, "ownership.column", err) < 0 ||
                   bind(&m->status, header, n, "status.column", err) < 0
               ? -1
               : 0;
}

/* Parse a decimal number: the whole text, finite. A decimal comma is accepted when there is
 * no point ("8,46"). */
static int
number(const char *s, double *out)
{
    char buf[64], *end;
    size_t n = strlen(s);
    if (!n || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n + 1);
    if (!strchr(buf, '.')) {
        char *c = strchr(buf, ',');
        if (c && !strchr(c + 1, ','))
            *c = '.';
    }
    errno = 0;
    *out = strtod(buf, &end);
    while (*end == ' ')
        end++;
    return end == buf || *end || errno || !isfinite(*out) ? -1 : 0;
}

void
imp_rec_position(imp_ctx *c,
                 imp_rec *r,
                 const char *lat,
                 const char *lon,
                 const char *combined,
                 int lon_first,
                 const char *column)
{
    core_arena *a = imp_arena(c);
    double y, x;
    char one[64], two[64];

    r->has_pos = 0;
    r->pos_column = column;
    if (combined) {
        /* "lat, lon", "lat lon", "lat;lon" */
        const char *s = combined, *sep;
        size_t n1;
        r->pos_text = combined;
        sep = s + strcspn(s, ",; \t");
        n1 = (size_t)(sep - s);
        while (*sep == ',' || *sep == ';' || *sep == ' ' || *sep == '\t')
            sep++;
        if (!n1 || n1 >= sizeof(one) || !*sep || strlen(sep) >= sizeof(two)) {
            r->flag = "invalid-coordinates";
            imp_issue(c, r->line, "warning", column, combined, "invalid-coordinates",
                      "coordinates \"%s\" are not two numbers; the facility is kept without a "
                      "position",
                      combined);
            return;
        }
        memcpy(one, s, n1);
        one[n1] = '\0';
        strcpy(two, sep);
        lat = lon_first ? two : one;
        lon = lon_first ? one : two;
    } else {
        if (!lat && !lon)
            return;
        r->pos_text = core_arena_sprintf(a, "%s, %s", lat ? lat : "", lon ? lon : "");
    }
    if (!lat || !lon || number(lat, &y) < 0 || number(lon, &x) < 0) {
        r->flag = "invalid-coordinates";
        imp_issue(c, r->line, "warning", column, r->pos_text, "invalid-coordinates",
                  "coordinates \"%s\" are not two numbers; the facility is kept without a "
                  "position",
                  r->pos_text);
        return;
    }
    if (r->crs_epsg) {
        r->has_pos = 1;
        r->lat = y;
        r->lon = x;
        return;
    }
    if (x == 0 && y == 0) {
        r->flag = "null-island";
        imp_issue(c, r->line, "warning", column, r->pos_text, "null-island",
                  "coordinates 0, 0 are a placeholder, not a place; the facility is kept "
                  "without a position");
        return;
    }
    if (fabs(y) > 90 || fabs(x) > 180 || fabs(y) == 90 || x == y) {
        /* out of range, a pole, or the same number twice (99, 99 / -1, -1): a placeholder */
        r->flag = "invalid-coordinates";
        imp_issue(c, r->line, "warning", column, r->pos_text, "invalid-coordinates",
                  "coordinates \"%s\" are %s; the facility is kept without a position", r->pos_text,
                  x == y ? "the same number twice, a placeholder"
                         : "outside latitude -90..90 / longitude -180..180");
        return;
    }
    r->has_pos = 1;
    r->lat = y;
    r->lon = x;
}

/* A coded value through its value map: code and display (the raw text when not mapped). */
static void
code_of(imp_ctx *c,
        const coded *cd,
        const char *raw,
        long line,
        const char **code,
        const char **display)
{
    core_arena *a = imp_arena(c);
    json_t *v;
    *code = *display = NULL;
    if (!raw)
        return;
    v = cd->values ? json_object_get(cd->values, raw) : NULL;
    if (v) {
        if (json_is_string(v)) {
            *code = core_arena_strdup(a, json_string_value(v));
            *display = raw;
        } else {
            *code = core_arena_strdup(a, json_string_value(json_object_get(v, "code")));
            *display = json_is_string(json_object_get(v, "display"))
                           ? core_arena_strdup(a, json_string_value(json_object_get(v, "display")))
                           : raw;
        }
        return;
    }
    if (cd->values)
        imp_issue(c, line, "warning", cd->c.name, raw, "unmapped-value",
                  "\"%s\" is not in the mapping's %s values; kept as its own code", raw,
                  cd->c.name);
    /* a code has no leading, trailing or repeated white space (FHIR code) */
    char *k = core_arena_alloc(a, strlen(raw) + 1), *o = k;
    for (const char *s = raw; *s; s++) {
        int sp = *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r';
        if ((unsigned char)s[0] == 0xC2 && (unsigned char)s[1] == 0xA0) {
            sp = 1;
            s++;
        }
        if (sp) {
            if (o > k && o[-1] != ' ')
                *o++ = ' ';
        } else {
            *o++ = *s;
        }
    }
    while (o > k && o[-1] == ' ')
        o--;
    *o = '\0';
    *code = k;
    *display = raw;
}

/* A coded column: code and display through code_of, the system the mapping's; a system or
 * display column, when mapped, says them instead (an empty system cell: the mapping's, an
 * empty display cell: none). */
static void
coded_of(imp_ctx *c,
         const coded *cd,
         char *const *f,
         int n,
         long line,
         const char **system,
         const char **code,
         const char **display)
{
    core_arena *a = imp_arena(c);
    const char *s;
    *system = cd->system;
    code_of(c, cd, imp_cell(a, field(f, n, &cd->c)), line, code, display);
    if (cd->system_col.name && (s = imp_cell(a, field(f, n, &cd->system_col))))
        *system = s;
    if (cd->display_col.name)
        *display = imp_cell(a, field(f, n, &cd->display_col));
}

/* A status from a cell: the mapping's values, else the common words. */
static const char *
status_of(imp_ctx *c, const imp_mapping *m, const char *raw, long line)
{
    char s[64];
    json_t *v;
    if (m->status_values && (v = json_object_get(m->status_values, raw ? raw : "")))
        return json_string_value(v);
    if (!raw)
        return m->status_default;
    squash(s, sizeof(s), raw);
    char h[64];
    squash(h, sizeof(h), m->status.name);
    if (strcmp(h, "deleted") == 0 || strcmp(h, "closed") == 0) {
        /* a Deleted / Closed column: anything but no/false/0 means closed */
        return strcmp(s, "no") == 0 || strcmp(s, "false") == 0 || strcmp(s, "0") == 0 ||
                       strcmp(s, "n") == 0
                   ? "active"
                   : "inactive";
    }
    static const char *const ACTIVE[] = { "active",      "operational", "functional",  "open",
                                          "operating",   "yes",         "true",        "1",
                                          "fonctionnel", "ouvert",      "functioning", NULL };
    static const char *const INACTIVE[] = { "inactive",
                                            "closed",
                                            "deleted",
                                            "nonfunctional",
                                            "notfunctional",
                                            "notoperational",
                                            "nonoperational",
                                            "no",
                                            "false",
                                            "0",
                                            "ferme",
                                            "decommissioned",
                                            "permanentlyclosed",
                                            NULL };
    static const char *const SUSPENDED[] = { "suspended", "temporarilyclosed", "closedtemporarily",
                                             "underconstruction", NULL };
    if (in_list(s, ACTIVE))
        return "active";
    if (in_list(s, INACTIVE))
        return "inactive";
    if (in_list(s, SUSPENDED))
        return "suspended";
    imp_issue(c, line, "warning", m->status.name, raw, "unmapped-value",
              "status \"%s\" is not known; the facility is kept as %s (map it in status.values)",
              raw, m->status_default);
    return m->status_default;
}

int
imp_mapping_row(imp_rec *r, imp_ctx *c, const imp_mapping *m, char *const *f, int n, long line)
{
    core_arena *a = imp_arena(c);

    memset(r, 0, sizeof(*r));
    if (m->unquote) {
        /* "'=x" → "=x": the apostrophe a spreadsheet-safe export put before a cell that a
         * spreadsheet would run (importers/export.c) */
        char **g = core_arena_alloc(a, (size_t)(n > 0 ? n : 1) * sizeof(char *));
        for (int i = 0; i < n; i++)
            g[i] =
                f[i] && f[i][0] == '\'' && f[i][1] && strchr("=+-@\t\r", f[i][1]) ? f[i] + 1 : f[i];
        f = g;
    }
    r->line = line;
    r->kind = IMP_REC_FACILITY;
    r->crs_epsg = m->crs;
    r->name = imp_cell(a, field(f, n, &m->name));
    r->name_column = m->name.name;
    if (m->id.name && (r->given_id = imp_cell(a, field(f, n, &m->id))) &&
        !reg_id_valid(r->given_id)) {
        imp_issue(c, line, "error", m->id.name, r->given_id, "invalid-id",
                  "\"%s\" is not a registry id (1 to 64 letters, digits, '-' or '.')", r->given_id);
        r->rejected = 1;
    }
    if (m->parent_id.name && (r->given_parent = imp_cell(a, field(f, n, &m->parent_id))) &&
        !reg_id_valid(r->given_parent))
        r->given_parent = NULL; /* not an id: the levels decide */
    for (int i = 0; i < m->nids; i++) {
        const char *v = imp_cell(a, field(f, n, &m->ids[i].c));
        for (int k = 0; v && k < m->ids[i].nmore; k++) {
            const char *w = imp_cell(a, field(f, n, &m->ids[i].more[k]));
            v = w ? core_arena_sprintf(a, "%s%s%s", v, m->ids[i].sep, w) : NULL;
        }
        if (!v || !strcasecmp(v, "None") || !strcasecmp(v, "NULL") || !strcasecmp(v, "N/A") ||
            !strcasecmp(v, "NA") || !strcmp(v, "-") || !strcmp(v, "?")) {
            if (v)
                imp_issue(c, line, "warning", m->ids[i].c.name, v, "placeholder-identifier",
                          "identifier \"%s\" is a placeholder, not a code; ignored", v);
            continue;
        }
        r->ids[r->nids++] = (imp_ident){ m->ids[i].system, v, m->ids[i].c.name };
    }
    if (!r->nids && m->nkey) {
        /* the derived key: a hash of the key columns as written */
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256_state st;
        char hex[2 * sizeof(h) + 1];
        int any = 0;
        crypto_hash_sha256_init(&st);
        for (int i = 0; i < m->nkey; i++) {
            const char *v = imp_cell(a, field(f, n, &m->key[i]));
            if (v) {
                any = 1;
                crypto_hash_sha256_update(&st, (const unsigned char *)v, strlen(v));
            }
            crypto_hash_sha256_update(&st, (const unsigned char *)"\x1f", 1);
        }
        crypto_hash_sha256_final(&st, h);
        sodium_bin2hex(hex, sizeof(hex), h, 12);
        if (any)
            r->ids[r->nids++] = (imp_ident){ m->key_system, core_arena_strdup(a, hex), "key" };
    }
    if (m->lat.name)
        imp_rec_position(c, r, imp_cell(a, field(f, n, &m->lat)), imp_cell(a, field(f, n, &m->lon)),
                         NULL, 0, core_arena_sprintf(a, "%s/%s", m->lat.name, m->lon.name));
    else if (m->combined.name) {
        const char *v = imp_cell(a, field(f, n, &m->combined));
        if (v)
            imp_rec_position(c, r, NULL, NULL, v, m->lon_first, m->combined.name);
    }
    if (m->type.c.name)
        coded_of(c, &m->type, f, n, line, &r->type_system, &r->type_code, &r->type_display);
    if (m->owner.c.name)
        coded_of(c, &m->owner, f, n, line, &r->owner_system, &r->owner_code, &r->owner_display);
    r->status = m->status.name ? status_of(c, m, imp_cell(a, field(f, n, &m->status)), line)
                               : m->status_default;
    r->admin_root = m->root;
    if (m->top) {
        r->admin_column[r->nadmin] = "jurisdictions.top";
        r->admin[r->nadmin++] = m->top;
    }
    if (m->kind.name) {
        const char *k = imp_cell(a, field(f, n, &m->kind));
        json_t *e;
        size_t x;
        json_array_foreach (m->kind_jurisdiction, x, e)
            if (k && json_is_string(e) && strcmp(k, json_string_value(e)) == 0)
                r->kind = IMP_REC_JURISDICTION;
    }
    if (m->parent.name) {
        const char *pv = imp_cell(a, field(f, n, &m->parent));
        if (pv) {
            r->parent_system = m->parent_system;
            r->parent_value = pv;
        }
    }
    for (int i = 0; i < m->nadmin && r->nadmin < IMP_MAX_LEVELS; i++) {
        const char *v = imp_cell(a, field(f, n, &m->admin[i]));
        if (!v)
            break; /* a gap ends the chain: the facility goes under the last level given */
        r->admin_column[r->nadmin] = m->admin[i].name;
        r->admin[r->nadmin++] = v;
    }
    return 1;
}

/* ---- checks before an import --------------------------------------------------------------- */

int
imp_options_check(const imp_options *o, const char *mapping, size_t len, core_err *err)
{
    imp_csv_encoding enc;
    imp_mapping *m;
    json_t *j;
    int epsg;

    if (o->format == IMP_CSV && o->encoding && imp_csv_encoding_parse(o->encoding, &enc, err) < 0)
        return -1;
    if (o->crs && (geo_crs_parse(o->crs, &epsg, err) < 0 || geo_crs_check(epsg, err) < 0)) {
        /* an option's bad value, not an invalid resource: 400 (PROJ missing stays 500) */
        if (err->status == 422) {
            err->status = 400;
            err->code = CORE_ISSUE_VALUE;
        }
        core_strlcpy(err->expr, "crs", sizeof(err->expr));
        return -1;
    }
    if (!mapping)
        return 0;
    if (!(j = core_json_parse(mapping, len, err))) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "the mapping is not valid JSON: %.200s", err->msg);
        core_strlcpy(err->msg, msg, sizeof(err->msg));
        core_strlcpy(err->expr, "mapping", sizeof(err->expr));
        return -1;
    }
    m = imp_mapping_parse(j, err);
    json_decref(j);
    if (!m) {
        char expr[sizeof(err->expr)], msg[sizeof(err->msg)];
        snprintf(expr, sizeof(expr), "mapping%s%.100s", err->expr[0] ? "." : "", err->expr);
        snprintf(msg, sizeof(msg), "%s%.240s",
                 strncmp(err->msg, "the mapping", 11) == 0 ? "" : "mapping: ", err->msg);
        core_strlcpy(err->expr, expr, sizeof(err->expr));
        core_strlcpy(err->msg, msg, sizeof(err->msg));
        return -1;
    }
    imp_mapping_free(m);
    return 0;
}
