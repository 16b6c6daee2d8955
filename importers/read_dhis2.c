/* DHIS2 organisation units, in the three shapes DHIS2 writes them: the Web API's
 * {"organisationUnits": [...]} (or a bare array of them; `geometry`, or the older `coordinates`
 * text with `featureType`), geoFeatures as a GeoJSON FeatureCollection (Maps "Download data"),
 * and the Web API's geoFeatures array [{"id", "na", "le", "pi", "pg", "ty", "co"}]. Each unit is
 * a Location + Organization identified by its UID (IMP_DHIS2_UID, then its code), under its
 * parent found by UID. No mapping file: the shape of DHIS2's metadata is fixed.
 *
 * Which units are facilities (the documented rule): a unit is a facility when its geometry
 * is a Point, or when it has no polygon, sits at the deepest level present in the file, that
 * level is 3 or more, and no unit of the file names it as parent. Every other unit is a
 * jurisdiction (its Polygon or MultiPolygon becomes its boundary). Units are written parents
 * first: sorted by level (a child always after its parent, even when the levels in the file say
 * otherwise), then by the length of their path, then by UID (a UID given twice: the first in
 * the file goes first, the engine rejects the others as duplicates). The report names each unit
 * by its 1-based position in the file's array, so lines are not in increasing order and
 * --resume, which skips the lines before its checkpoint, cannot pick up a DHIS2 import where
 * it stopped: run it again whole (a re-run only writes what changed). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "geo/geo.h"
#include "importers/imp_int.h"

typedef enum gkind { G_NONE, G_POINT, G_POLYGON, G_BAD } gkind;

typedef struct unit {
    long line;      /* 1-based position in the file's array */
    int bad;        /* not an object: reported, rejected */
    const char *id; /* UID; strings borrowed from the document */
    const char *code;
    const char *name;
    const char *name_column;
    const char *parent; /* parent UID, or NULL */
    const char *closed; /* closedDate, or NULL */
    size_t path_len;    /* length of path / parentGraph, for the order */
    int level;          /* as given or derived from the path; 0: unknown */
    int rank;           /* the order: above every ancestor's in the file */
    int pidx;           /* the parent's index in the file, or -1 */
    int children;       /* units of the file naming it as parent */
    gkind g;
    json_t *geom;        /* {"type", "coordinates"} (new reference), or NULL */
    const char *gtype;   /* the geometry's type as written, for messages */
    const char *gcolumn; /* where the geometry came from, for the report */
    int state;           /* rank computation: 0 new, 1 on the stack, 2 done */
    int bad_coords;      /* coordinates that are not JSON: flagged, no geometry */
} unit;

/* ---- JSON helpers --------------------------------------------------------------------------- */

/* A string member (not a number), or NULL when absent, empty or of another type. */
static const char *
text(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return core_json_is_text(v) && json_string_length(v) ? json_string_value(v) : NULL;
}

/* The first of two members present as text. */
static const char *
text2(const json_t *o, const char *a, const char *b)
{
    const char *s = text(o, a);
    return s ? s : text(o, b);
}

/* A small positive integer member, written as a number or a string; 0 when absent or not one. */
static int
small_int(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    const char *s = core_json_is_number(v) ? core_json_number_text(v)
                    : core_json_is_text(v) ? json_string_value(v)
                                           : NULL;
    char *end;
    long n;
    if (!s)
        return 0;
    n = strtol(s, &end, 10);
    return *end || end == s || n < 1 || n > 1000 ? 0 : (int)n;
}

/* How deeply arrays nest at the start of coordinates: 1 for a position, 3 for a Polygon's,
 * 4 for a MultiPolygon's. */
static int
nesting(const json_t *j)
{
    int d = 0;
    while (json_is_array(j) && d < 8) {
        d++;
        j = json_array_get(j, 0);
    }
    return d;
}

/* A geometry from coordinates (stolen) and a GeoJSON type; type "polygonal" or NULL: the
 * nesting decides (a Polygon or MultiPolygon, or with NULL also a Point). */
static void
geometry_set(unit *u, json_t *coords, const char *type, const char *column)
{
    const char *hint = type;
    if (!type || strcmp(type, "polygonal") == 0) {
        int d = nesting(coords);
        type = d == 1 && !type ? "Point" : d == 3 ? "Polygon" : d == 4 ? "MultiPolygon" : NULL;
    }
    u->gcolumn = column;
    if (!type) {
        u->g = G_BAD;
        u->gtype = hint ? "a polygon whose coordinates are not nested as one"
                        : "coordinates of no known shape";
        json_decref(coords);
        return;
    }
    u->gtype = type;
    u->g = strcmp(type, "Point") == 0                                          ? G_POINT
           : strcmp(type, "Polygon") == 0 || strcmp(type, "MultiPolygon") == 0 ? G_POLYGON
                                                                               : G_BAD;
    u->geom = json_pack("{s:s,s:o}", "type", type, "coordinates", coords ? coords : json_null());
}

/* Coordinates written as JSON text (the older API's `coordinates`, geoFeatures' `co`): parsed,
 * or NULL with a warning. */
static json_t *
coords_text(imp_ctx *c, unit *u, const char *s, const char *column)
{
    core_err e = CORE_ERR_INIT;
    json_t *j = core_json_parse(s, strlen(s), &e);
    u->bad_coords = !j;
    if (!j)
        imp_issue(c, u->line, "warning", column, NULL, "invalid-coordinates",
                  "the coordinates are not JSON (%s); the unit is kept without a geometry", e.msg);
    core_err_clear(&e);
    return j;
}

/* A GeoJSON geometry object (borrowed) of a unit. */
static void
geometry_object(unit *u, const json_t *g, const char *column)
{
    const char *type = text(g, "type");
    if (!g || json_is_null(g))
        return;
    if (!type) {
        u->g = G_BAD;
        u->gtype = "no type";
        u->gcolumn = column;
        return;
    }
    geometry_set(u, json_incref(json_object_get(g, "coordinates")), type, column);
}

/* ---- the three shapes ----------------------------------------------------------------------- */

/* /api/organisationUnits: {id, code, name, shortName, parent: {id}, level, path, geometry,
 * openingDate, closedDate}, or the older coordinates + featureType. */
static void
read_api_unit(imp_ctx *c, unit *u, const json_t *o)
{
    const json_t *parent = json_object_get(o, "parent");
    const char *coords = text(o, "coordinates"), *ft = text(o, "featureType");

    u->id = text(o, "id");
    u->code = text(o, "code");
    u->name = text(o, "name") ? text(o, "name") : text(o, "shortName");
    u->name_column = !text(o, "name") && text(o, "shortName") ? "shortName" : "name";
    u->parent = json_is_object(parent) ? text(parent, "id") : text(o, "parent");
    u->level = small_int(o, "level");
    u->path_len = text(o, "path") ? strlen(text(o, "path")) : 0;
    u->closed = text(o, "closedDate");
    if (!u->level && text(o, "path")) {
        /* "/ImspTQPwCqd/O6uvpzGd5pu": one segment per level, itself included */
        for (const char *p = text(o, "path"); *p; p++)
            if (*p != '/' && (p == text(o, "path") || p[-1] == '/'))
                u->level++;
    }
    if (json_object_get(o, "geometry")) {
        geometry_object(u, json_object_get(o, "geometry"), "geometry");
    } else if (coords && !(ft && strcmp(ft, "NONE") == 0)) {
        json_t *j = coords_text(c, u, coords, "coordinates");
        const char *type = NULL;
        if (!j)
            return;
        /* POLYGON and MULTI_POLYGON were both written with a MultiPolygon's nesting: the
         * nesting decides which it is */
        if (ft && (strcmp(ft, "POINT") == 0 || strcmp(ft, "SYMBOL") == 0))
            type = "Point";
        else if (ft && (strcmp(ft, "POLYGON") == 0 || strcmp(ft, "MULTI_POLYGON") == 0))
            type = "polygonal";
        geometry_set(u, j, type, "coordinates");
    }
}

/* geoFeatures as GeoJSON: properties {id, name, code, level, parentId, parentGraph, ...}. */
static void
read_feature(unit *u, const json_t *f)
{
    const json_t *p = json_object_get(f, "properties");
    u->id = text(p, "id") ? text(p, "id") : text(f, "id");
    u->code = text(p, "code");
    u->name = text(p, "name") ? text(p, "name") : text(p, "shortName");
    u->name_column = !text(p, "name") && text(p, "shortName") ? "shortName" : "name";
    u->parent = text(p, "parentId");
    u->level = small_int(p, "level");
    u->closed = text(p, "closedDate");
    const char *graph = text2(p, "parentGraph", "path");
    u->path_len = graph ? strlen(graph) : 0;
    if (!u->level && text(p, "parentGraph")) {
        /* "ImspTQPwCqd/PMa2VCrupOd": the ancestors, so one level more */
        u->level = 1;
        for (const char *s = graph; *s; s++)
            if (*s != '/' && (s == graph || s[-1] == '/'))
                u->level++;
    }
    geometry_object(u, json_object_get(f, "geometry"), "geometry");
}

/* /api/geoFeatures: {id, na, le, pi, pg, ty (1 point, 2 polygon), co (coordinates as text)}. */
static void
read_geofeature(imp_ctx *c, unit *u, const json_t *o)
{
    const char *co = text(o, "co");
    int ty = small_int(o, "ty");
    u->id = text(o, "id");
    u->code = text(o, "code");
    u->name = text(o, "na");
    u->name_column = "na";
    u->parent = text(o, "pi");
    u->level = small_int(o, "le");
    u->path_len = text(o, "pg") ? strlen(text(o, "pg")) : 0;
    u->closed = text(o, "closedDate");
    if (co && (ty == 1 || ty == 2)) {
        json_t *j = coords_text(c, u, co, "co");
        if (j)
            geometry_set(u, j, ty == 1 ? "Point" : "polygonal", "co");
    }
}

/* ---- order and kind -------------------------------------------------------------------------- */

/* rank: the level, raised above the parent's rank where the file says otherwise, so that every
 * parent in the file is written before its children. Iterative (a chain may be long); a cycle
 * of parents is cut where it is found, with a warning. */
static void
ranks(imp_ctx *c, unit *u, size_t n)
{
    size_t *stack = malloc((n + 1) * sizeof(size_t));
    if (!stack)
        abort();
    for (size_t i = 0; i < n; i++) {
        size_t top = 0, k = i;
        if (u[i].state == 2)
            continue;
        /* up the chain until a unit that is done, has no parent in the file, or is on it */
        while (u[k].state == 0) {
            u[k].state = 1;
            stack[top++] = k;
            if (u[k].pidx < 0)
                break;
            k = (size_t)u[k].pidx;
        }
        while (top) {
            unit *x = &u[stack[--top]];
            if (x->pidx >= 0 && u[x->pidx].state == 1) {
                imp_issue(c, x->line, "warning", "parent", x->parent, "parent-cycle",
                          "the parents of %s lead back to it; it is written before its parent",
                          x->id ? x->id : "this unit");
                x->pidx = -1;
            }
            x->rank = x->level;
            if (x->pidx >= 0 && u[x->pidx].rank >= x->rank)
                x->rank = u[x->pidx].rank + 1;
            x->state = 2;
        }
    }
    free(stack);
}

static int
by_order(const void *a, const void *b)
{
    const unit *x = *(unit *const *)a, *y = *(unit *const *)b;
    int d;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    if (x->path_len != y->path_len)
        return x->path_len < y->path_len ? -1 : 1;
    if (x->id && y->id && (d = strcmp(x->id, y->id)) != 0)
        return d;
    if (!x->id != !y->id)
        return x->id ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

/* closedDate in the past (or today): the unit is closed. Dates are ISO 8601, compared as text
 * on their date part. */
static int
closed_now(imp_ctx *c, const unit *u, const char *today)
{
    const char *s = u->closed;
    if (!s)
        return 0;
    if (strlen(s) < 10 || s[4] != '-' || s[7] != '-') {
        imp_issue(c, u->line, "warning", "closedDate", s, "invalid-date",
                  "closedDate \"%s\" is not a date (YYYY-MM-DD); the unit is kept active", s);
        return 0;
    }
    return strncmp(s, today, 10) <= 0;
}

/* The EPSG code of the coordinates: a FeatureCollection's "crs" (GeoJSON 2008), else --crs;
 * 0 for WGS84, which is what DHIS2 writes. -1 with err (400). */
static int
epsg_of(int *epsg, imp_ctx *c, const json_t *doc, core_err *err)
{
    const json_t *crs = json_object_get(doc, "crs"), *props = json_object_get(crs, "properties");
    const char *type = text(crs, "type"), *name = imp_opts(c)->crs;
    char buf[80];

    *epsg = 0;
    if (crs && !json_is_null(crs)) {
        const json_t *code = json_object_get(props, "code");
        name = NULL;
        if (type && strcmp(type, "name") == 0)
            name = text(props, "name");
        else if (type && strcmp(type, "EPSG") == 0 &&
                 (core_json_is_number(code) || text(props, "code"))) {
            snprintf(buf, sizeof(buf), "EPSG:%.40s",
                     core_json_is_number(code) ? core_json_number_text(code) : text(props, "code"));
            name = buf;
        }
        if (!name)
            return core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "crs",
                                   "crs must be {\"type\": \"name\", \"properties\": {\"name\": "
                                   "\"EPSG:NNNN\"}} or {\"type\": \"EPSG\", \"properties\": "
                                   "{\"code\": NNNN}}");
    }
    if (!name)
        return 0;
    if (geo_crs_parse(name, epsg, err) < 0) {
        err->status = 400;
        core_strlcpy(err->expr, "crs", sizeof(err->expr));
        return -1;
    }
    if (*epsg == GEO_WGS84_EPSG)
        *epsg = 0;
    return 0;
}

/* The mapping --deactivate-missing scopes to: the units of DHIS2 (by UID). */
static imp_mapping *
uid_mapping(core_err *err)
{
    json_t *j = json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "source", "dhis2", "name", "name",
                          "identifiers", "column", "id", "system", IMP_DHIS2_UID);
    imp_mapping *m = j ? imp_mapping_parse(j, err) : NULL;
    if (!j)
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    json_decref(j);
    return m;
}

/* One unit to the engine. */
static int
emit_unit(imp_ctx *c, unit *u, int facility, int epsg, const char *today, core_err *err)
{
    core_arena *a = imp_arena(c);
    imp_rec r;

    if (u->g == G_BAD) {
        imp_issue(c, u->line, "error", u->gcolumn, u->gtype, "unsupported-geometry",
                  "the geometry (%s) is not imported: a Point is a facility, a Polygon or "
                  "MultiPolygon a jurisdiction",
                  u->gtype);
        imp_reject_row(c, u->line);
        return 0;
    }
    memset(&r, 0, sizeof(r));
    r.line = u->line;
    r.kind = facility ? IMP_REC_FACILITY : IMP_REC_JURISDICTION;
    r.name = imp_cell(a, u->name);
    r.name_column = u->name_column;
    if (u->id)
        r.ids[r.nids++] = (imp_ident){ IMP_DHIS2_UID, u->id, "id" };
    if (u->code)
        r.ids[r.nids++] = (imp_ident){ IMP_DHIS2_CODE, u->code, "code" };
    if (u->parent && !(u->id && strcmp(u->parent, u->id) == 0)) {
        r.parent_system = IMP_DHIS2_UID;
        r.parent_value = u->parent;
    }
    r.status = closed_now(c, u, today) ? "inactive" : "active";
    if (u->bad_coords)
        r.flag = "invalid-coordinates";
    if (u->g == G_POINT) {
        const json_t *co = json_object_get(u->geom, "coordinates");
        const json_t *x = json_array_get(co, 0), *y = json_array_get(co, 1);
        r.crs_epsg = epsg;
        if (core_json_is_number(x) && core_json_is_number(y)) {
            /* [longitude, latitude] */
            imp_rec_position(c, &r, core_json_number_text(y), core_json_number_text(x), NULL, 0,
                             u->gcolumn);
        } else if (!(json_is_array(co) && json_array_size(co) == 0)) {
            char *t = core_json_dump(co, NULL);
            imp_rec_position(c, &r, NULL, NULL, core_arena_strdup(a, t ? t : "(none)"), 1,
                             u->gcolumn);
            free(t);
        }
    } else if (u->g == G_POLYGON && !(r.boundary = imp_boundary_data(a, u->geom, epsg))) {
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    }
    return imp_emit(c, &r, err);
}

int
imp_read_dhis2(imp_ctx *c, FILE *f, core_err *err)
{
    char today[16];
    size_t n = 0, i;
    json_t *doc = NULL, *arr, *idx = NULL, *e;
    unit *u = NULL, **order = NULL;
    imp_mapping *m;
    int rc = -1, epsg = 0, deepest = 0;
    enum { API, FEATURES } shape;
    time_t now = time(NULL);
    struct tm tm;

    long total;
    if (imp_json_document(&doc, &total, f, err) < 0)
        return -1;
    const char *type = text(doc, "type");
    if (json_is_array(doc)) {
        arr = doc;
        shape = API;
    } else if (json_is_array(json_object_get(doc, "organisationUnits"))) {
        arr = json_object_get(doc, "organisationUnits");
        shape = API;
    } else if (type && strcmp(type, "FeatureCollection") == 0 &&
               json_is_array(json_object_get(doc, "features"))) {
        arr = json_object_get(doc, "features");
        shape = FEATURES;
        if (epsg_of(&epsg, c, doc, err) < 0)
            goto done;
    } else {
        core_err_set(err, 400, CORE_ISSUE_STRUCTURE,
                     "expected DHIS2 organisation units: {\"organisationUnits\": [...]}, an "
                     "array of them, a geoFeatures array or a geoFeatures GeoJSON "
                     "FeatureCollection");
        goto done;
    }
    if (shape == API && epsg_of(&epsg, c, NULL, err) < 0)
        goto done;
    if (imp_opts(c)->mapping_file && imp_opts(c)->log)
        fprintf(imp_opts(c)->log, "mahali import: dhis2 uses no mapping; --mapping %s is ignored\n",
                imp_opts(c)->mapping_file);
    if (!(m = uid_mapping(err)))
        goto done;
    imp_set_mapping(c, m);

    n = json_array_size(arr);
    u = calloc(n + 1, sizeof(*u));
    order = calloc(n + 1, sizeof(*order));
    idx = json_object();
    if (!u || !order || !idx)
        abort();
    json_array_foreach (arr, i, e) {
        unit *x = &u[i];
        x->line = (long)i + 1;
        x->pidx = -1;
        order[i] = x;
        if (!json_is_object(e)) {
            imp_issue(c, x->line, "error", NULL, NULL, "invalid-unit",
                      "entry %ld is not an organisation unit (a JSON object)", x->line);
            x->bad = 1;
            continue;
        }
        if (shape == FEATURES)
            read_feature(x, e);
        else if (!json_object_get(e, "name") && !json_object_get(e, "shortName") &&
                 (json_object_get(e, "na") || json_object_get(e, "co") || json_object_get(e, "ty")))
            read_geofeature(c, x, e);
        else
            read_api_unit(c, x, e);
        /* the first unit with a UID is the one children find (a later one is a duplicate) */
        if (x->id && !json_object_get(idx, x->id))
            json_object_set_new(idx, x->id, json_integer((json_int_t)i));
    }

    /* parents and levels */
    for (i = 0; i < n; i++) {
        json_t *pi = u[i].parent ? json_object_get(idx, u[i].parent) : NULL;
        if (pi && (size_t)json_integer_value(pi) != i) {
            u[i].pidx = (int)json_integer_value(pi);
            u[u[i].pidx].children++;
        }
    }
    for (i = 0; i < n; i++) {
        /* a level not given: below the nearest ancestor in the file whose level is known */
        int k = (int)i, hops = 0;
        while (!u[k].level && u[k].pidx >= 0 && hops < IMP_MAX_LEVELS * 8) {
            k = u[k].pidx;
            hops++;
        }
        if (!u[i].level && hops && u[k].level)
            u[i].level = u[k].level + hops;
    }
    for (i = 0; i < n; i++)
        if (!u[i].bad && u[i].level > deepest)
            deepest = u[i].level;
    ranks(c, u, n);
    for (i = 0; i < n; i++) {
        /* a UID twice: the later units sort right after the first, so that the first in the
         * file is the one imported (the engine rejects the others as duplicates) */
        json_t *first = u[i].id ? json_object_get(idx, u[i].id) : NULL;
        size_t k = first ? (size_t)json_integer_value(first) : i;
        if (k != i) {
            u[i].rank = u[k].rank;
            u[i].path_len = u[k].path_len;
        }
    }
    qsort(order, n, sizeof(*order), by_order);

    gmtime_r(&now, &tm);
    strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    for (i = 0; i < n; i++) {
        unit *x = order[i];
        int facility = x->g == G_POINT ||
                       (x->g == G_NONE && x->level == deepest && deepest >= 3 && !x->children);
        if (total > 0 && (i & 255) == 0)
            imp_progress_bytes(c, (long)((double)total * (double)i / (double)n));
        if (x->bad) {
            imp_reject_row(c, x->line);
            continue;
        }
        if (emit_unit(c, x, facility, epsg, today, err) < 0)
            goto done;
    }
    rc = 0;
done:
    for (i = 0; u && i < n; i++)
        json_decref(u[i].geom);
    free(u);
    free(order);
    json_decref(idx);
    json_decref(doc);
    return rc;
}
