/* Validation of FHIR R4 JSON resources: structure, cardinality and primitive formats against
 * the R4 model embedded from registry/fhir_model.json, then the IHE mCSD profile rules for the
 * profiles a resource claims in meta.profile. Every issue is collected (see reg_validate).
 *
 * The model (written by tools/gen_fhir_model.mjs from the official R4 StructureDefinitions):
 *   {"version":"4.0.1",
 *    "primitives":{"<name>":{"json":"string"|"number"|"boolean", "base":"<primitive>"?,
 *                            "regex":"<R4 regex>"?, "maxLength":n?}, ...},
 *    "types":{"<name>":{"kind":"resource"|"complex"|"backbone",
 *                       "elements":[[name, type, min, max, flags?, valueset?], ...]}, ...},
 *    "valuesets":{"<canonical>":["<code>", ...], ...},
 *    "unexpanded":{"<canonical>":"<why>", ...}}
 * One row per element, in StructureDefinition order (XML needs it): name is the JSON property
 * ("value[x]" for a choice, whose type is then the list of allowed types, expanded as
 * valueString, valueCodeableConcept...); type is a primitive, a type name, a backbone type named by
 * its path ("Location.position", also what a contentReference points at) or "Resource" (any
 * resource, told apart by its resourceType); min is a number, max "1", "*" or a number; flags
 * holds "a" (an XML attribute: no `_name` companion in JSON), "m" (isModifier), "s" (isSummary).
 * "Element" lists what a primitive's `_name` companion may hold. Resource.id is typed "id".
 * valueset (flags is then present, maybe "") names the ValueSet of a required binding on an
 * element of type code (in a choice: on its code expansion): the value must be one of the codes
 * "valuesets" lists for it, in definition order. Required bindings whose value set the generator
 * could not expand from the package (mime types, currencies) are not checked; "unexpanded" lists
 * them with the reason, for people (the validator does not read it).
 *
 * The model is loaded once (pthread_once) into sorted arrays searched with bsearch, and is
 * read-only afterwards, so validation is thread-safe. Primitive formats are checked by hand
 * (equivalent to the R4 regexes, plus real calendar dates and integer ranges), not with regcomp. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/validate.h"

#define MODEL_PATH "registry/fhir_model.json"
#define MAX_ELEMS  128 /* elements per type; the largest in R4, ActivityDefinition, has 54 */
#define MAX_ISSUES 100
#define MAX_LISTED 10 /* codes of a value set listed in a message */
#define MAX_DEPTH  CORE_JSON_MAX_DEPTH
#define STRING_MAX 1048576 /* R4 string: "SHALL NOT exceed 1MB" */
#define MCSD_SD    "https://profiles.ihe.net/ITI/mCSD/StructureDefinition/"
#define MCSD_TYPES \
    "https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types"
#define BOUNDARY "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson"
#define GEOJSON  "application/geo+json"
#define XHTML_NS "http://www.w3.org/1999/xhtml"

/* ---- the model ------------------------------------------------------------------------------ */

typedef enum prim {
    P_NONE = 0,
    P_BASE64,
    P_BOOLEAN,
    P_CANONICAL,
    P_CODE,
    P_DATE,
    P_DATETIME,
    P_DECIMAL,
    P_ID,
    P_INSTANT,
    P_INTEGER,
    P_MARKDOWN,
    P_OID,
    P_POSITIVEINT,
    P_STRING,
    P_TIME,
    P_UNSIGNEDINT,
    P_URI,
    P_URL,
    P_UUID,
    P_XHTML,
    P_COUNT
} prim;

typedef enum jkind { J_STRING, J_NUMBER, J_BOOLEAN } jkind;

/* What each primitive accepts, as said in messages ("x must be <accepted> (got ...)"). */
static const struct {
    const char *name;
    prim p;
    jkind json;
    const char *accepted;
} prims[] = {
    { "base64Binary", P_BASE64, J_STRING,
      "base64 data (groups of 4 characters from A-Z, a-z, 0-9, \"+\", \"/\" and \"=\")" },
    { "boolean", P_BOOLEAN, J_BOOLEAN, "a boolean (true or false)" },
    { "canonical", P_CANONICAL, J_STRING, "a canonical URL without whitespace" },
    { "code", P_CODE, J_STRING, "a code without leading, trailing or repeated whitespace" },
    { "date", P_DATE, J_STRING, "a date as YYYY, YYYY-MM or YYYY-MM-DD" },
    { "dateTime", P_DATETIME, J_STRING,
      "a dateTime as YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff] with a time zone" },
    { "decimal", P_DECIMAL, J_NUMBER, "a decimal number" },
    { "id", P_ID, J_STRING, "an id of 1 to 64 letters, digits, \"-\" or \".\"" },
    { "instant", P_INSTANT, J_STRING, "an instant as YYYY-MM-DDThh:mm:ss[.fff] with a time zone" },
    { "integer", P_INTEGER, J_NUMBER, "an integer between -2147483648 and 2147483647" },
    { "markdown", P_MARKDOWN, J_STRING,
      "a string without control characters other than tab, CR and LF" },
    { "oid", P_OID, J_STRING, "an OID as urn:oid: followed by dotted numbers" },
    { "positiveInt", P_POSITIVEINT, J_NUMBER, "an integer between 1 and 2147483647" },
    { "string", P_STRING, J_STRING,
      "a string without control characters other than tab, CR and LF" },
    { "time", P_TIME, J_STRING, "a time as hh:mm:ss[.fff]" },
    { "unsignedInt", P_UNSIGNEDINT, J_NUMBER, "an integer between 0 and 2147483647" },
    { "uri", P_URI, J_STRING, "a URI without whitespace" },
    { "url", P_URL, J_STRING, "a URL without whitespace" },
    { "uuid", P_UUID, J_STRING,
      "a UUID as urn:uuid: followed by lower-case hex digits 8-4-4-4-12" },
    { "xhtml", P_XHTML, J_STRING, "an XHTML <div> element" },
};
#define NPRIMS (sizeof(prims) / sizeof(prims[0]))

typedef enum tkind { K_PRIMITIVE, K_COMPLEX, K_BACKBONE, K_RESOURCE, K_ANY_RESOURCE } tkind;

typedef struct vtype vtype;

/* The codes of a required value set: in model order for messages, in strcmp order for bsearch. */
typedef struct vset {
    const char *url; /* canonical, without |version */
    const char **codes;
    const char **sorted;
    size_t n;
} vset;

typedef struct velem {
    const char *name;    /* as in the model, "value[x]" for a choice */
    const vtype **types; /* one, or the choices */
    int ntypes;
    int min;
    int max; /* -1: unbounded */
    int index;
    const vset *vs; /* required binding of its code type, or NULL */
    unsigned choice : 1;
    unsigned attr : 1;
    unsigned summary : 1; /* isSummary in the StructureDefinition (_summary=true keeps it) */
} velem;

/* A JSON property a type accepts: an element, or one expansion of a choice element. */
typedef struct vprop {
    const char *json; /* "longitude", "valueCodeableConcept" */
    const velem *el;
    const vtype *type;
    const vset *vs;   /* the value must be one of these codes (type code, required binding) */
    int companion_ok; /* a `_json` companion is allowed: primitive, not xhtml, not an attribute */
} vprop;

struct vtype {
    const char *name;
    tkind kind;
    int prim;    /* index into prims[] for K_PRIMITIVE */
    int primtag; /* prim for K_PRIMITIVE, P_NONE otherwise */
    const json_t *src;
    velem *elems;
    int nelems;
    vprop *props; /* sorted by json */
    int nprops;
};

typedef struct model {
    json_t *json; /* keeps the names the tables point at alive */
    vtype *types; /* sorted by name */
    size_t ntypes;
    vset *vsets; /* sorted by url */
    size_t nvsets;
    vtype any_resource;
    const vtype *element;           /* what `_name` companions hold */
    const vtype *location_position; /* latitude/longitude range check */
} model;

static model the_model;
static const model *loaded; /* set once by load_once, then read-only */
static core_err load_err;
static pthread_once_t load_guard = PTHREAD_ONCE_INIT;

static int
cmp_type(const void *a, const void *b)
{
    return strcmp(((const vtype *)a)->name, ((const vtype *)b)->name);
}

static int
cmp_prop(const void *a, const void *b)
{
    return strcmp(((const vprop *)a)->json, ((const vprop *)b)->json);
}

static int
cmp_vset(const void *a, const void *b)
{
    return strcmp(((const vset *)a)->url, ((const vset *)b)->url);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const vset *
find_vset(const model *m, const char *url)
{
    vset key;
    key.url = url;
    return bsearch(&key, m->vsets, m->nvsets, sizeof(vset), cmp_vset);
}

static int
vset_has(const vset *vs, const char *code)
{
    return bsearch(&code, vs->sorted, vs->n, sizeof(const char *), cmp_str) != NULL;
}

static const vtype *
find_type(const model *m, const char *name)
{
    vtype key;
    key.name = name;
    return bsearch(&key, m->types, m->ntypes, sizeof(vtype), cmp_type);
}

static const vprop *
find_prop(const vtype *t, const char *json)
{
    vprop key;
    key.json = json;
    return bsearch(&key, t->props, (size_t)t->nprops, sizeof(vprop), cmp_prop);
}

static tkind
kind_of(const char *s, int *ok)
{
    *ok = 1;
    if (strcmp(s, "resource") == 0)
        return K_RESOURCE;
    if (strcmp(s, "complex") == 0)
        return K_COMPLEX;
    if (strcmp(s, "backbone") == 0)
        return K_BACKBONE;
    *ok = 0;
    return K_COMPLEX;
}

static const vtype *
resolve(model *m, const json_t *name)
{
    const char *s = json_string_value(name);
    if (!s)
        return NULL;
    if (strcmp(s, "Resource") == 0)
        return &m->any_resource;
    return find_type(m, s);
}

/* Fill t->elems and t->props from its model row list. Returns 0 or -1 with why set. */
static int
build_type(model *m, vtype *t, char *why, size_t cap)
{
    const json_t *rows = json_object_get(t->src, "elements");
    size_t i, n;
    int np = 0, k;

    if (!json_is_array(rows) || (n = json_array_size(rows)) > MAX_ELEMS) {
        snprintf(why, cap, "type %s: bad element list", t->name);
        return -1;
    }
    t->elems = calloc(n ? n : 1, sizeof(velem));
    if (!t->elems)
        abort();
    t->nelems = (int)n;
    for (i = 0; i < n; i++) {
        const json_t *row = json_array_get(rows, i);
        const json_t *ty = json_array_get(row, 1), *mx = json_array_get(row, 3);
        const char *name = json_string_value(json_array_get(row, 0));
        const char *flags = json_string_value(json_array_get(row, 4));
        const json_t *vs = json_array_get(row, 5);
        velem *e = &t->elems[i];
        size_t len;
        int has_code = 0;

        if (!name || !json_is_integer(json_array_get(row, 2)) || !json_string_value(mx)) {
            snprintf(why, cap, "type %s: bad element row %zu", t->name, i);
            return -1;
        }
        len = strlen(name);
        e->name = name;
        e->index = (int)i;
        e->min = (int)json_integer_value(json_array_get(row, 2));
        e->max = strcmp(json_string_value(mx), "*") == 0 ? -1 : atoi(json_string_value(mx));
        e->attr = flags && strchr(flags, 'a');
        e->summary = flags && strchr(flags, 's');
        e->choice = len > 3 && strcmp(name + len - 3, "[x]") == 0;
        if (e->choice != (unsigned)json_is_array(ty)) {
            snprintf(why, cap, "%s.%s: choice name and type list disagree", t->name, name);
            return -1;
        }
        e->ntypes = e->choice ? (int)json_array_size(ty) : 1;
        e->types = calloc((size_t)e->ntypes + 1, sizeof(vtype *));
        if (!e->types)
            abort();
        for (k = 0; k < e->ntypes; k++) {
            e->types[k] = resolve(m, e->choice ? json_array_get(ty, (size_t)k) : ty);
            if (!e->types[k]) {
                snprintf(why, cap, "%s.%s: unknown type", t->name, name);
                return -1;
            }
            has_code |= e->types[k]->primtag == P_CODE;
        }
        if (vs &&
            (!json_is_string(vs) || !has_code || !(e->vs = find_vset(m, json_string_value(vs))))) {
            snprintf(why, cap, "%s.%s: bad or unknown value set", t->name, name);
            return -1;
        }
        np += e->ntypes;
    }
    t->props = calloc((size_t)np + 1, sizeof(vprop));
    if (!t->props)
        abort();
    for (i = 0; i < n; i++) {
        const velem *e = &t->elems[i];
        for (k = 0; k < e->ntypes; k++) {
            vprop *p = &t->props[t->nprops++];
            const vtype *ty = e->types[k];
            if (e->choice) {
                /* value[x] + CodeableConcept -> valueCodeableConcept */
                size_t base = strlen(e->name) - 3, tl = strlen(ty->name);
                char *s = malloc(base + tl + 1);
                if (!s)
                    abort();
                memcpy(s, e->name, base);
                memcpy(s + base, ty->name, tl + 1);
                if (s[base] >= 'a' && s[base] <= 'z')
                    s[base] = (char)(s[base] - 'a' + 'A');
                p->json = s;
            } else {
                p->json = e->name;
            }
            p->el = e;
            p->type = ty;
            p->vs = ty->primtag == P_CODE ? e->vs : NULL;
            p->companion_ok = ty->kind == K_PRIMITIVE && ty->primtag != P_XHTML && !e->attr;
        }
    }
    qsort(t->props, (size_t)t->nprops, sizeof(vprop), cmp_prop);
    for (k = 1; k < t->nprops; k++) {
        if (strcmp(t->props[k - 1].json, t->props[k].json) == 0) {
            snprintf(why, cap, "type %s: property %s defined twice", t->name, t->props[k].json);
            return -1;
        }
    }
    return 0;
}

/* m->vsets from the model's "valuesets" (absent: no required bindings). */
static int
build_vsets(model *m, const json_t *jv, char *why, size_t cap)
{
    const char *key;
    const json_t *v;
    size_t n = 0, i;

    if (!jv)
        return 0;
    if (!json_is_object(jv)) {
        snprintf(why, cap, "valuesets is not an object");
        return -1;
    }
    m->vsets = calloc(json_object_size(jv) + 1, sizeof(vset));
    if (!m->vsets)
        abort();
    json_object_foreach ((json_t *)jv, key, v) {
        vset *vs = &m->vsets[n++];
        size_t k;

        vs->url = key;
        vs->n = json_array_size(v);
        if (!json_is_array(v) || vs->n == 0) {
            snprintf(why, cap, "value set %s: bad code list", key);
            return -1;
        }
        vs->codes = calloc(vs->n, sizeof(char *));
        vs->sorted = calloc(vs->n, sizeof(char *));
        if (!vs->codes || !vs->sorted)
            abort();
        for (k = 0; k < vs->n; k++) {
            vs->codes[k] = vs->sorted[k] = json_string_value(json_array_get(v, k));
            if (!vs->codes[k]) {
                snprintf(why, cap, "value set %s: code %zu is not a string", key, k);
                return -1;
            }
        }
        qsort(vs->sorted, vs->n, sizeof(char *), cmp_str);
        for (k = 1; k < vs->n; k++) {
            if (strcmp(vs->sorted[k - 1], vs->sorted[k]) == 0) {
                snprintf(why, cap, "value set %s: code %s listed twice", key, vs->sorted[k]);
                return -1;
            }
        }
    }
    m->nvsets = n;
    qsort(m->vsets, m->nvsets, sizeof(vset), cmp_vset);
    for (i = 1; i < m->nvsets; i++) {
        if (strcmp(m->vsets[i - 1].url, m->vsets[i].url) == 0) {
            snprintf(why, cap, "value set %s defined twice", m->vsets[i].url);
            return -1;
        }
    }
    return 0;
}

static int
build_model(model *m, char *why, size_t cap)
{
    const core_embedded_file *f = core_embedded_find(MODEL_PATH);
    const json_t *jp, *jt, *v;
    const char *key;
    json_error_t jerr;
    size_t i, n, seen = 0;

    if (!f) {
        snprintf(why, cap, "%s is not embedded", MODEL_PATH);
        return -1;
    }
    m->json = json_loadb((const char *)f->data, f->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!m->json) {
        snprintf(why, cap, "line %d: %s", jerr.line, jerr.text);
        return -1;
    }
    jp = json_object_get(m->json, "primitives");
    jt = json_object_get(m->json, "types");
    if (!json_is_object(jp) || !json_is_object(jt)) {
        snprintf(why, cap, "no primitives or types");
        return -1;
    }
    m->ntypes = json_object_size(jp) + json_object_size(jt);
    m->types = calloc(m->ntypes, sizeof(vtype));
    if (!m->types)
        abort();
    n = 0;
    json_object_foreach ((json_t *)jp, key, v) {
        vtype *t = &m->types[n++];
        t->name = key;
        t->kind = K_PRIMITIVE;
        t->src = v;
        for (i = 0; i < NPRIMS && strcmp(prims[i].name, key) != 0; i++)
            ;
        if (i == NPRIMS) {
            snprintf(why, cap, "unknown primitive %s", key);
            return -1;
        }
        t->prim = (int)i;
        t->primtag = prims[i].p;
        seen++;
    }
    if (seen != NPRIMS) {
        snprintf(why, cap, "expected %zu primitives, got %zu", NPRIMS, seen);
        return -1;
    }
    json_object_foreach ((json_t *)jt, key, v) {
        vtype *t = &m->types[n++];
        const char *kind = json_string_value(json_object_get(v, "kind"));
        int ok;

        t->name = key;
        t->src = v;
        t->primtag = P_NONE;
        t->kind = kind_of(kind ? kind : "", &ok);
        if (!ok) {
            snprintf(why, cap, "type %s: unknown kind", key);
            return -1;
        }
    }
    qsort(m->types, m->ntypes, sizeof(vtype), cmp_type);
    for (i = 1; i < m->ntypes; i++) {
        if (strcmp(m->types[i - 1].name, m->types[i].name) == 0) {
            snprintf(why, cap, "type %s defined twice", m->types[i].name);
            return -1;
        }
    }
    m->any_resource.name = "Resource";
    m->any_resource.kind = K_ANY_RESOURCE;
    if (build_vsets(m, json_object_get(m->json, "valuesets"), why, cap) < 0)
        return -1;
    for (i = 0; i < m->ntypes; i++) {
        if (m->types[i].kind != K_PRIMITIVE && build_type(m, &m->types[i], why, cap) < 0)
            return -1;
    }
    m->element = find_type(m, "Element");
    m->location_position = find_type(m, "Location.position");
    if (!m->element || !m->location_position) {
        snprintf(why, cap, "Element or Location.position missing");
        return -1;
    }
    return 0;
}

static void
load_once(void)
{
    char why[200] = "";

    if (build_model(&the_model, why, sizeof(why)) < 0) {
        /* Left allocated: the process cannot validate anything and should stop. */
        core_log(CORE_LOG_ERROR, "embedded FHIR model %s is broken: %s", MODEL_PATH, why);
        core_err_set(&load_err, 500, CORE_ISSUE_EXCEPTION,
                     "the server's FHIR model could not be loaded");
        return;
    }
    loaded = &the_model;
}

int
reg_model_load(core_err *err)
{
    pthread_once(&load_guard, load_once);
    if (!loaded)
        return core_err_set(err, load_err.status, load_err.code, "%s", load_err.msg);
    return 0;
}

int
reg_model_is_resource_type(const char *name)
{
    const vtype *t;

    if (!name || reg_model_load(NULL) < 0)
        return 0;
    t = find_type(loaded, name);
    return t && t->kind == K_RESOURCE;
}

int
reg_model_is_mandatory(const char *type, const char *json_name)
{
    const vtype *t;
    const vprop *p;

    if (!type || !json_name || reg_model_load(NULL) < 0 || !(t = find_type(loaded, type)))
        return 0;
    if (json_name[0] == '_')
        json_name++;
    p = find_prop(t, json_name);
    return p && p->el->min > 0;
}

int
reg_model_is_summary(const char *type, const char *json_name)
{
    const vtype *t;
    const vprop *p;

    if (!type || !json_name || reg_model_load(NULL) < 0 || !(t = find_type(loaded, type)))
        return 0;
    if (json_name[0] == '_')
        json_name++;
    p = find_prop(t, json_name);
    return p && p->el->summary;
}

/* ---- issue collection ----------------------------------------------------------------------- */

typedef struct issue {
    int status;
    core_issue code;
    char *expr;
    char *msg;
} issue;

typedef struct vctx {
    const model *m;
    core_path path; /* FHIRPath of the element being checked */
    issue *issues;
    size_t n, cap;
    size_t omitted;
    int depth;
} vctx;

static void vreport(vctx *c, int status, core_issue code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void
vreport(vctx *c, int status, core_issue code, const char *fmt, va_list ap)
{
    char msg[256];
    issue *it;

    if (c->n >= MAX_ISSUES) {
        c->omitted++;
        return;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->issues = realloc(c->issues, c->cap * sizeof(issue));
        if (!c->issues)
            abort();
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    it = &c->issues[c->n++];
    it->status = status;
    it->code = code;
    it->expr = core_strdup(c->path.s);
    it->msg = core_strdup(msg);
}

static void report(vctx *c, int status, core_issue code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_in(vctx *c, const char *child, int status, core_issue code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* An issue about the element at the current path. */
static void
report(vctx *c, int status, core_issue code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, status, code, fmt, ap);
    va_end(ap);
}

/* An issue about child element `child` of the current path. */
static void
report_in(vctx *c, const char *child, int status, core_issue code, const char *fmt, ...)
{
    size_t old = core_path_push(&c->path, child);
    va_list ap;
    va_start(ap, fmt);
    vreport(c, status, code, fmt, ap);
    va_end(ap);
    core_path_pop(&c->path, old);
}

/* Move the collected issues into err: the first 400 issue leads if there is one (so that the
 * status and the leading message agree), else the first issue; the others follow in order. */
static int
flush(vctx *c, core_err *err)
{
    size_t lead = 0, i;
    int rc = 0;

    for (i = 0; i < c->n; i++) {
        if (c->issues[i].status == 400) {
            lead = i;
            break;
        }
    }
    if (c->n) {
        const issue *l = &c->issues[lead];
        rc = core_err_set_at(err, l->status, l->code, l->expr, "%s", l->msg);
        for (i = 0; i < c->n; i++) {
            if (i != lead)
                core_err_add(err, c->issues[i].code, 0, c->issues[i].expr, "%s", c->issues[i].msg);
        }
        if (c->omitted)
            core_err_add(err, CORE_ISSUE_TOO_LONG, 1, "", "%zu further issues were not reported",
                         c->omitted);
    }
    for (i = 0; i < c->n; i++) {
        free(c->issues[i].expr);
        free(c->issues[i].msg);
    }
    free(c->issues);
    c->issues = NULL;
    c->n = c->cap = 0;
    return rc;
}

/* ---- message helpers ------------------------------------------------------------------------ */

static const char *
clip(char out[64], const char *s, size_t n)
{
    return core_clip(out, s, n);
}

static const char *
clip0(char out[64], const char *s)
{
    return clip(out, s, strlen(s));
}

/* What a JSON value is, for "(got ...)": a quoted string, a number's text, true, an object... */
static const char *
describe(char out[72], const json_t *v)
{
    char q[64];

    if (core_json_is_number(v))
        return clip0(out, core_json_number_text(v));
    if (json_is_string(v)) {
        snprintf(out, 72, "\"%s\"", clip(q, json_string_value(v), json_string_length(v)));
        return out;
    }
    if (json_is_true(v))
        return "true";
    if (json_is_false(v))
        return "false";
    if (json_is_null(v))
        return "null";
    if (json_is_object(v))
        return "an object";
    if (json_is_array(v))
        return "an array";
    return "a non-FHIR JSON value"; /* a jansson integer or real not built by core_json */
}

/* ---- primitive formats ---------------------------------------------------------------------- */

static int
dig(char ch)
{
    return ch >= '0' && ch <= '9';
}

static int
is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Two digits at s[i] with value in [lo, hi]. */
static int
two(const char *s, size_t n, size_t i, int lo, int hi, int *out)
{
    int v;
    if (i + 2 > n || !dig(s[i]) || !dig(s[i + 1]))
        return 0;
    v = (s[i] - '0') * 10 + (s[i + 1] - '0');
    if (v < lo || v > hi)
        return 0;
    if (out)
        *out = v;
    return 1;
}

/* YYYY[-MM[-DD]] (year 0001-9999, a real calendar day); returns characters read, 0 if bad.
 * *parts: 1, 2 or 3 components. */
static size_t
scan_date(const char *s, size_t n, int *parts)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, mo, d, leap;

    if (n < 4 || !dig(s[0]) || !dig(s[1]) || !dig(s[2]) || !dig(s[3]))
        return 0;
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    if (y == 0)
        return 0;
    *parts = 1;
    if (n == 4 || s[4] != '-')
        return 4;
    if (!two(s, n, 5, 1, 12, &mo))
        return 0;
    *parts = 2;
    if (n == 7 || s[7] != '-')
        return 7;
    if (!two(s, n, 8, 1, 31, &d))
        return 0;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] + (mo == 2 && leap))
        return 0;
    *parts = 3;
    return 10;
}

/* hh:mm:ss[.f+] (seconds 60 allowed: leap second); returns characters read, 0 if bad. */
static size_t
scan_time(const char *s, size_t n)
{
    size_t i = 8;

    if (!two(s, n, 0, 0, 23, NULL) || n < 8 || s[2] != ':' || !two(s, n, 3, 0, 59, NULL) ||
        s[5] != ':' || !two(s, n, 6, 0, 60, NULL))
        return 0;
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !dig(s[i]))
            return 0;
        while (i < n && dig(s[i]))
            i++;
    }
    return i;
}

/* Z or +hh:mm / -hh:mm with hh:mm in 00:00..13:59 or 14:00, exactly to the end. */
static int
zone_ok(const char *s, size_t n)
{
    int h;
    if (n == 1 && s[0] == 'Z')
        return 1;
    if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' || !two(s, n, 1, 0, 14, &h) ||
        !two(s, n, 4, 0, 59, NULL))
        return 0;
    return h < 14 || (s[4] == '0' && s[5] == '0');
}

static int
date_ok(const char *s, size_t n)
{
    int parts;
    size_t i = scan_date(s, n, &parts);
    return i && i == n;
}

static int
datetime_ok(const char *s, size_t n, int need_time)
{
    int parts;
    size_t i = scan_date(s, n, &parts), t;

    if (!i)
        return 0;
    if (i == n)
        return !need_time;
    if (parts != 3 || s[i] != 'T')
        return 0;
    i++;
    t = scan_time(s + i, n - i);
    if (!t)
        return 0;
    i += t;
    return zone_ok(s + i, n - i);
}

static int
number_ok(const char *s)
{
    size_t i = 0;

    if (s[i] == '-')
        i++;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (dig(s[i]))
            i++;
    else
        return 0;
    if (s[i] == '.') {
        if (!dig(s[++i]))
            return 0;
        while (dig(s[i]))
            i++;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        if (s[i] == '+' || s[i] == '-')
            i++;
        if (!dig(s[i]))
            return 0;
        while (dig(s[i]))
            i++;
    }
    return s[i] == '\0';
}

/* -?(0|[1-9][0-9]*) within [lo, hi] (32-bit: FHIR integer). */
static int
integer_ok(const char *s, long lo, long hi)
{
    const char *d = s[0] == '-' ? s + 1 : s;
    size_t n = strlen(d);
    long v;

    if (n == 0 || n > 10 || (d[0] == '0' && n > 1))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!dig(d[i]))
            return 0;
    errno = 0;
    v = strtol(s, NULL, 10);
    return errno == 0 && v >= lo && v <= hi;
}

static int
code_ok(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || is_space(s[0]) || is_space(s[n - 1]))
        return 0;
    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 && !is_space(s[i]))
            return 0;
        if (is_space(s[i]) && is_space(s[i + 1]))
            return 0;
    }
    return 1;
}

static int
id_ok(const char *s, size_t n)
{
    size_t i;
    if (n < 1 || n > 64)
        return 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (!dig(ch) && !(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && ch != '-' &&
            ch != '.')
            return 0;
    }
    return 1;
}

/* uri, url, canonical: \S* (and no control characters). */
static int
uri_ok(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7F)
            return 0;
    return 1;
}

/* string, markdown: [ \r\n\t\S]+, i.e. no control characters but tab, CR and LF. */
static int
text_ok(const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t' && ch != '\r' && ch != '\n') || ch == 0x7F)
            return 0;
    }
    return 1;
}

static int
oid_ok(const char *s, size_t n)
{
    size_t i = 8;
    int arcs = 0;

    if (n < 10 || memcmp(s, "urn:oid:", 8) != 0 || s[i] < '0' || s[i] > '2')
        return 0;
    i++;
    while (i < n) {
        if (s[i] != '.' || i + 1 >= n || !dig(s[i + 1]))
            return 0;
        i++;
        if (s[i] == '0' && i + 1 < n && dig(s[i + 1]))
            return 0;
        while (i < n && dig(s[i]))
            i++;
        arcs++;
    }
    return arcs > 0;
}

static int
uuid_ok(const char *s, size_t n)
{
    size_t i;

    if (n != 45 || memcmp(s, "urn:uuid:", 9) != 0)
        return 0;
    for (i = 9; i < n; i++) {
        size_t k = i - 9;
        if (k == 8 || k == 13 || k == 18 || k == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!dig(s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) {
            return 0;
        }
    }
    return 1;
}

/* (\s*([0-9a-zA-Z\+/=]){4}\s*)+ : groups of four, whitespace only between groups. */
static int
base64_ok(const char *s, size_t n)
{
    size_t i = 0;
    int groups = 0;

    for (;;) {
        int k;
        while (i < n && is_space(s[i]))
            i++;
        if (i == n)
            return groups > 0;
        for (k = 0; k < 4; k++, i++) {
            char ch = i < n ? s[i] : ' ';
            if (!dig(ch) && !(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') && ch != '+' &&
                ch != '/' && ch != '=')
                return 0;
        }
        groups++;
    }
}

/* ---- narrative (xhtml) ---------------------------------------------------------------------- */

static int
lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int
has_ci(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle), i, j;
    for (i = 0; i + k <= n; i++) {
        for (j = 0; j < k && lower((unsigned char)s[i + j]) == needle[j]; j++)
            ;
        if (j == k)
            return 1;
    }
    return 0;
}

static int
eq_ci(const char *s, size_t n, const char *word)
{
    size_t i;
    if (strlen(word) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != word[i])
            return 0;
    return 1;
}

/* Elements the R4 narrative may not hold (FHIR R4 narrative.html: no head, body, scripts, forms,
 * base/link, frames, iframes, objects). */
static const char *const banned_tags[] = { "script", "iframe",   "frame", "frameset", "object",
                                           "embed",  "applet",   "form",  "input",    "button",
                                           "select", "textarea", "base",  "link",     "head",
                                           "body",   "meta" };

/* An attribute value as a browser would read a URL scheme from it: character references
 * decoded, whitespace and control characters dropped, lower case. Enough to see through
 * "&#106;ava&#x09;script:". */
static void
attr_norm(char *out, size_t cap, const char *v, size_t n)
{
    size_t i = 0, w = 0;

    while (i < n && w + 1 < cap) {
        long ch = (unsigned char)v[i];
        if (v[i] == '&' && i + 1 < n && v[i + 1] == '#') {
            size_t j = i + 2;
            int hex = j < n && (v[j] == 'x' || v[j] == 'X');
            char num[16];
            size_t k = 0;
            if (hex)
                j++;
            while (j < n && k + 1 < sizeof(num) &&
                   (dig(v[j]) || (hex && strchr("abcdefABCDEF", v[j]))))
                num[k++] = v[j++];
            num[k] = '\0';
            ch = k ? strtol(num, NULL, hex ? 16 : 10) : 0;
            if (j < n && v[j] == ';')
                j++;
            i = j;
        } else if (v[i] == '&' && n - i >= 7 && eq_ci(v + i, 7, "&colon;")) {
            ch = ':';
            i += 7;
        } else if (v[i] == '&' && n - i >= 5 && eq_ci(v + i, 5, "&tab;")) {
            ch = '\t';
            i += 5;
        } else if (v[i] == '&' && n - i >= 9 && eq_ci(v + i, 9, "&newline;")) {
            ch = '\n';
            i += 9;
        } else {
            i++;
        }
        if (ch > 0x20 && ch < 0x7F)
            out[w++] = (char)lower((int)ch);
    }
    out[w] = '\0';
}

/* FHIR R4 narrative rules (txt-1, txt-2) as far as they matter for safety: a <div> in the
 * XHTML namespace, no script or other banned elements, no event handler attributes, no
 * javascript:/vbscript: URLs. Violations are 422 invalid, reported at the current path. */
static void
check_xhtml(vctx *c, const char *s, size_t n)
{
    size_t i = 0;
    int root = 1, ns = 0;
    char q[64];

    if (n < 5 || memcmp(s, "<div", 4) != 0 || !(is_space(s[4]) || s[4] == '>' || s[4] == '/')) {
        report(c, 422, CORE_ISSUE_INVALID, "narrative must be an XHTML <div> element (got \"%s\")",
               clip(q, s, n));
        return;
    }
    if (has_ci(s, n, "javascript:") || has_ci(s, n, "vbscript:")) {
        report(c, 422, CORE_ISSUE_INVALID,
               "narrative must not contain javascript: or vbscript: URLs");
        return;
    }
    while (i < n) {
        size_t name, nlen, t;
        if (s[i] != '<') {
            i++;
            continue;
        }
        i++;
        if (i < n && (s[i] == '!' || s[i] == '?')) { /* comment, CDATA, declaration */
            const char *end = n - i >= 3 && memcmp(s + i, "!--", 3) == 0 ? "-->" : ">";
            size_t el = strlen(end);
            while (i < n && !(n - i >= el && memcmp(s + i, end, el) == 0))
                i++;
            i += el;
            continue;
        }
        if (i < n && s[i] == '/')
            i++;
        name = i;
        while (i < n && !is_space(s[i]) && s[i] != '>' && s[i] != '/')
            i++;
        nlen = i - name;
        for (t = 0; t < sizeof(banned_tags) / sizeof(banned_tags[0]); t++) {
            if (eq_ci(s + name, nlen, banned_tags[t])) {
                report(c, 422, CORE_ISSUE_INVALID, "narrative must not contain <%s> elements",
                       banned_tags[t]);
                return;
            }
        }
        /* attributes: name[=value], value quoted with " or ' or bare */
        while (i < n && s[i] != '>') {
            size_t an, alen, vs = 0, vlen = 0;
            if (is_space(s[i]) || s[i] == '/') {
                i++;
                continue;
            }
            an = i;
            while (i < n && !is_space(s[i]) && s[i] != '=' && s[i] != '>' && s[i] != '/')
                i++;
            alen = i - an;
            while (i < n && is_space(s[i]))
                i++;
            if (i < n && s[i] == '=') {
                i++;
                while (i < n && is_space(s[i]))
                    i++;
                if (i < n && (s[i] == '"' || s[i] == '\'')) {
                    char quote = s[i++];
                    vs = i;
                    while (i < n && s[i] != quote)
                        i++;
                    vlen = i - vs;
                    if (i < n)
                        i++;
                } else {
                    vs = i;
                    while (i < n && !is_space(s[i]) && s[i] != '>')
                        i++;
                    vlen = i - vs;
                }
            }
            if (alen > 2 && lower((unsigned char)s[an]) == 'o' &&
                lower((unsigned char)s[an + 1]) == 'n') {
                report(c, 422, CORE_ISSUE_INVALID,
                       "narrative must not contain event handler attributes (got \"%s\")",
                       clip(q, s + an, alen));
                return;
            }
            if (vlen) {
                char norm[64];
                attr_norm(norm, sizeof(norm), s + vs, vlen);
                if (strncmp(norm, "javascript:", 11) == 0 || strncmp(norm, "vbscript:", 9) == 0) {
                    report(c, 422, CORE_ISSUE_INVALID,
                           "narrative must not contain javascript: or vbscript: URLs");
                    return;
                }
            }
            if (root && alen == 5 && memcmp(s + an, "xmlns", 5) == 0 && vlen == strlen(XHTML_NS) &&
                memcmp(s + vs, XHTML_NS, vlen) == 0)
                ns = 1;
        }
        root = 0;
    }
    if (!ns)
        report(c, 422, CORE_ISSUE_INVALID,
               "narrative <div> must declare the XHTML namespace (xmlns=\"" XHTML_NS "\")");
}

/* ---- structure ------------------------------------------------------------------------------ */

static void check_object(vctx *c, const json_t *obj, const vtype *t, int is_resource);
static void check_resource(vctx *c, const json_t *obj, const vtype *expect);

/* "<name> must be one of a, b, c (got "x")": at most MAX_LISTED codes, and only as many as fit
 * in a message; when cut, the list ends with "..." followed by the size and the value set. */
static void
report_code(vctx *c, const char *name, const vset *vs, const json_t *v)
{
    static const char lead[] = " must be one of ";
    char gotb[72], tail[200], list[256];
    const char *got = describe(gotb, v);
    size_t k, w, room, fixed;
    int cut;

    for (cut = 0; cut < 2; cut++) {
        if (cut)
            snprintf(tail, sizeof(tail), ", ... (%zu codes of %s) (got %s)", vs->n, vs->url, got);
        else
            snprintf(tail, sizeof(tail), " (got %s)", got);
        fixed = strlen(name) + strlen(lead) + strlen(tail);
        room = fixed < sizeof(list) - 1 ? sizeof(list) - 1 - fixed : 0;
        for (k = w = 0; k < vs->n && k < MAX_LISTED; k++) {
            size_t len = strlen(vs->codes[k]), sep = k ? 2 : 0;
            if (w + sep + len > room)
                break;
            memcpy(list + w, ", ", sep);
            memcpy(list + w + sep, vs->codes[k], len);
            w += sep + len;
        }
        list[w] = '\0';
        if (k == vs->n || (cut && k > 0))
            break;
    }
    if (cut == 2)
        report(c, 400, CORE_ISSUE_VALUE, "%s must be a code of %s (got %s)", name, vs->url, got);
    else
        report(c, 400, CORE_ISSUE_VALUE, "%s%s%s%s", name, lead, list, tail);
}

/* One primitive value (not null) at the current path; name is its JSON property; vs: the codes
 * it must be one of (a code with a required binding), or NULL. */
static void
check_prim(vctx *c, const vtype *t, const char *name, const vset *vs, const json_t *v)
{
    int pi = t->prim;
    const char *accepted = prims[pi].accepted;
    char got[72];
    const char *s;
    size_t n;
    int ok = 1;

    switch (prims[pi].json) {
    case J_BOOLEAN:
        if (!json_is_boolean(v))
            report(c, 400, CORE_ISSUE_VALUE, "%s must be %s (got %s)", name, accepted,
                   describe(got, v));
        return;
    case J_NUMBER:
        if (!core_json_is_number(v)) {
            report(c, 400, CORE_ISSUE_VALUE, "%s must be %s (got %s)", name, accepted,
                   describe(got, v));
            return;
        }
        s = core_json_number_text(v);
        switch (t->primtag) {
        case P_INTEGER:
            ok = integer_ok(s, -2147483647L - 1, 2147483647L);
            break;
        case P_POSITIVEINT:
            ok = s[0] != '-' && integer_ok(s, 1, 2147483647L);
            break;
        case P_UNSIGNEDINT:
            ok = s[0] != '-' && integer_ok(s, 0, 2147483647L);
            break;
        default:
            ok = number_ok(s);
            break;
        }
        if (!ok)
            report(c, 400, CORE_ISSUE_VALUE, "%s must be %s (got %s)", name, accepted,
                   describe(got, v));
        return;
    case J_STRING:
        break;
    }
    if (!core_json_is_text(v)) {
        report(c, 400, CORE_ISSUE_VALUE, "%s must be %s (got %s)", name, accepted,
               describe(got, v));
        return;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    if (n == 0) {
        report(c, 400, CORE_ISSUE_VALUE, "%s must not be empty", name);
        return;
    }
    switch (t->primtag) {
    case P_BASE64:
        ok = base64_ok(s, n);
        break;
    case P_CODE:
        ok = code_ok(s, n);
        break;
    case P_DATE:
        ok = date_ok(s, n);
        break;
    case P_DATETIME:
        ok = datetime_ok(s, n, 0);
        break;
    case P_INSTANT:
        ok = datetime_ok(s, n, 1);
        break;
    case P_TIME:
        ok = scan_time(s, n) == n;
        break;
    case P_ID:
        ok = id_ok(s, n);
        break;
    case P_OID:
        ok = oid_ok(s, n);
        break;
    case P_UUID:
        ok = uuid_ok(s, n);
        break;
    case P_URI:
    case P_URL:
    case P_CANONICAL:
        ok = uri_ok(s, n);
        break;
    case P_STRING:
    case P_MARKDOWN:
        ok = text_ok(s, n);
        if (ok && t->primtag == P_STRING && n > STRING_MAX) {
            report(c, 400, CORE_ISSUE_VALUE, "%s must not be longer than %d bytes (got %zu)", name,
                   STRING_MAX, n);
            return;
        }
        break;
    case P_XHTML:
        check_xhtml(c, s, n);
        return;
    default:
        break;
    }
    if (!ok)
        report(c, 400, CORE_ISSUE_VALUE, "%s must be %s (got %s)", name, accepted,
               describe(got, v));
    else if (vs && !vset_has(vs, s))
        report_code(c, name, vs, v);
}

/* A primitive's `_name` companion entry (not null): an object holding id and extension. */
static void
check_companion(vctx *c, const char *name, const json_t *v)
{
    char got[72];

    if (!json_is_object(v))
        report(c, 400, CORE_ISSUE_STRUCTURE, "_%s must be an object (got %s)", name,
               describe(got, v));
    else if (json_object_size(v) == 0)
        report(c, 400, CORE_ISSUE_VALUE, "_%s must not be empty", name);
    else
        check_object(c, v, c->m->element, 0);
}

static void
check_primitive_slot(vctx *c, const vprop *p, const json_t *v, const json_t *comp)
{
    const char *name = p->json;
    size_t nv = 0, nc = 0, n, i;

    if (p->el->max == 1) {
        if (v && json_is_array(v))
            report(c, 400, CORE_ISSUE_STRUCTURE, "%s must be a single value, not an array", name);
        else if (v && json_is_null(v))
            report(c, 400, CORE_ISSUE_VALUE, "%s must not be null", name);
        else if (v)
            check_prim(c, p->type, name, p->vs, v);
        if (comp && json_is_array(comp))
            report(c, 400, CORE_ISSUE_STRUCTURE, "_%s must be a single value, not an array", name);
        else if (comp && json_is_null(comp))
            report(c, 400, CORE_ISSUE_VALUE, "_%s must not be null", name);
        else if (comp)
            check_companion(c, name, comp);
        return;
    }
    if (v && !json_is_array(v)) {
        report(c, 400, CORE_ISSUE_STRUCTURE, "%s must be an array", name);
        v = NULL;
    }
    if (comp && !json_is_array(comp)) {
        report(c, 400, CORE_ISSUE_STRUCTURE, "_%s must be an array", name);
        comp = NULL;
    }
    nv = v ? json_array_size(v) : 0;
    nc = comp ? json_array_size(comp) : 0;
    if (v && nv == 0)
        report(c, 400, CORE_ISSUE_VALUE, "%s must not be empty", name);
    if (comp && nc == 0)
        report(c, 400, CORE_ISSUE_VALUE, "_%s must not be empty", name);
    if (v && comp && nv != nc) {
        report(c, 400, CORE_ISSUE_STRUCTURE,
               "_%s must have as many entries as %s (got %zu, expected %zu)", name, name, nc, nv);
        return;
    }
    n = nv > nc ? nv : nc;
    if (p->el->max > 0 && n > (size_t)p->el->max)
        report(c, 400, CORE_ISSUE_STRUCTURE, "%s must have at most %d entries (got %zu)", name,
               p->el->max, n);
    for (i = 0; i < n; i++) {
        const json_t *vi = i < nv ? json_array_get(v, i) : NULL;
        const json_t *ci = i < nc ? json_array_get(comp, i) : NULL;
        size_t old = core_path_index(&c->path, i);
        if (vi && json_is_null(vi))
            vi = NULL;
        if (ci && json_is_null(ci))
            ci = NULL;
        /* A null in either array is a placeholder, allowed only if the other has the entry. */
        if (!vi && !ci)
            report(c, 400, CORE_ISSUE_VALUE, "%s must not be null", name);
        if (vi)
            check_prim(c, p->type, name, p->vs, vi);
        if (ci)
            check_companion(c, name, ci);
        core_path_pop(&c->path, old);
    }
}

/* One object of a complex, backbone or resource element at the current path. */
static void
check_node(vctx *c, const vtype *t, const char *name, const json_t *v)
{
    char got[72];

    if (json_is_null(v))
        report(c, 400, CORE_ISSUE_VALUE, "%s must not be null", name);
    else if (!json_is_object(v))
        report(c, 400, CORE_ISSUE_STRUCTURE, "%s must be an object (got %s)", name,
               describe(got, v));
    else if (json_object_size(v) == 0)
        report(c, 400, CORE_ISSUE_VALUE, "%s must not be empty", name);
    else if (t->kind == K_ANY_RESOURCE)
        check_resource(c, v, NULL);
    else
        check_object(c, v, t, 0);
}

static void
check_complex_slot(vctx *c, const vprop *p, const json_t *v)
{
    const char *name = p->json;
    size_t i, n;

    if (p->el->max == 1) {
        if (json_is_array(v))
            report(c, 400, CORE_ISSUE_STRUCTURE, "%s must be a single value, not an array", name);
        else
            check_node(c, p->type, name, v);
        return;
    }
    if (!json_is_array(v)) {
        report(c, 400, CORE_ISSUE_STRUCTURE, "%s must be an array", name);
        return;
    }
    n = json_array_size(v);
    if (n == 0)
        report(c, 400, CORE_ISSUE_VALUE, "%s must not be empty", name);
    if (p->el->max > 0 && n > (size_t)p->el->max)
        report(c, 400, CORE_ISSUE_STRUCTURE, "%s must have at most %d entries (got %zu)", name,
               p->el->max, n);
    for (i = 0; i < n; i++) {
        size_t old = core_path_index(&c->path, i);
        check_node(c, p->type, name, json_array_get(v, i));
        core_path_pop(&c->path, old);
    }
}

/* Location.position: latitude in [-90, 90], longitude in [-180, 180] (degrees, WGS84). */
static void
check_coordinate(vctx *c, const json_t *pos, const char *name, double limit)
{
    const json_t *v = json_object_get(pos, name);
    double d;

    if (!core_json_is_number(v))
        return; /* missing or mistyped: reported already */
    if (core_json_number_get(v, &d) < 0 || d < -limit || d > limit) {
        char got[64];
        report_in(c, name, 400, CORE_ISSUE_VALUE, "%s must be between %g and %g (got %s)", name,
                  -limit, limit, clip0(got, core_json_number_text(v)));
    }
}

/* The JSON name of the first property of obj that expands the same choice element as p. */
static const char *
first_expansion(const json_t *obj, const vtype *t, const vprop *p)
{
    const char *key;
    const json_t *v;

    json_object_foreach ((json_t *)obj, key, v) {
        const vprop *o = find_prop(t, key[0] == '_' ? key + 1 : key);
        if (o && o->el == p->el && o != p)
            return o->json;
    }
    return "?";
}

static void
check_object(vctx *c, const json_t *obj, const vtype *t, int is_resource)
{
    unsigned char count[MAX_ELEMS]; /* properties seen per element (choices: expansions) */
    const char *key;
    const json_t *v;
    char q[64], ck[128];
    int i;

    if (c->depth >= MAX_DEPTH) {
        report(c, 400, CORE_ISSUE_STRUCTURE, "elements are nested more than %d levels deep",
               MAX_DEPTH);
        return;
    }
    c->depth++;
    memset(count, 0, sizeof(count));
    json_object_foreach ((json_t *)obj, key, v) {
        int companion = key[0] == '_';
        const char *name = companion ? key + 1 : key;
        const vprop *p;
        const json_t *comp = NULL;
        size_t old;

        if (is_resource && strcmp(key, "resourceType") == 0)
            continue;
        p = find_prop(t, name);
        if (!p || (companion && !p->companion_ok)) {
            report_in(c, key, 400, CORE_ISSUE_STRUCTURE, "unknown element \"%s\"", clip0(q, key));
            continue;
        }
        if (companion && json_object_get(obj, name))
            continue; /* checked together with its value */
        if (!companion && p->companion_ok && strlen(name) + 2 <= sizeof(ck)) {
            ck[0] = '_';
            memcpy(ck + 1, name, strlen(name) + 1);
            comp = json_object_get(obj, ck);
        }
        if (count[p->el->index]++ > 0 && p->el->choice)
            report_in(c, p->json, 400, CORE_ISSUE_STRUCTURE, "only one of %s and %s may be present",
                      first_expansion(obj, t, p), p->json);
        old = core_path_push(&c->path, p->json);
        if (p->type->kind == K_PRIMITIVE)
            check_primitive_slot(c, p, companion ? NULL : v, companion ? v : comp);
        else
            check_complex_slot(c, p, v);
        core_path_pop(&c->path, old);
    }
    for (i = 0; i < t->nelems; i++) {
        if (t->elems[i].min > 0 && count[i] == 0)
            report_in(c, t->elems[i].name, 400, CORE_ISSUE_REQUIRED,
                      "missing required element \"%s\"", t->elems[i].name);
    }
    if (t == c->m->location_position) {
        check_coordinate(c, obj, "latitude", 90);
        check_coordinate(c, obj, "longitude", 180);
    }
    c->depth--;
}

static void check_profiles(vctx *c, const json_t *res, const vtype *t);

/* A resource object at the current path ("" for the root): by its own resourceType, which
 * must equal expect's name if expect is given. */
static void
check_resource(vctx *c, const json_t *obj, const vtype *expect)
{
    const json_t *rt = json_object_get(obj, "resourceType");
    const vtype *t;
    char q[64], got[72];

    if (!rt) {
        if (c->path.len == 0 && expect)
            core_path_push(&c->path, expect->name);
        report_in(c, "resourceType", 400, CORE_ISSUE_STRUCTURE,
                  "missing required element \"resourceType\"");
        return;
    }
    if (!core_json_is_text(rt)) {
        if (c->path.len == 0 && expect)
            core_path_push(&c->path, expect->name);
        report_in(c, "resourceType", 400, CORE_ISSUE_STRUCTURE,
                  "resourceType must be a string (got %s)", describe(got, rt));
        return;
    }
    t = find_type(c->m, json_string_value(rt));
    if (!t || t->kind != K_RESOURCE) {
        if (c->path.len == 0 && expect)
            core_path_push(&c->path, expect->name);
        report_in(c, "resourceType", 400, CORE_ISSUE_STRUCTURE, "unknown resource type \"%s\"",
                  clip0(q, json_string_value(rt)));
        return;
    }
    if (c->path.len == 0)
        core_path_push(&c->path, expect ? expect->name : t->name);
    if (expect && t != expect) {
        report_in(c, "resourceType", 400, CORE_ISSUE_INVALID,
                  "resourceType must be \"%s\" (got \"%s\")", expect->name, t->name);
        return;
    }
    check_object(c, obj, t, 1);
    check_profiles(c, obj, t);
}

/* ---- mCSD profiles (shared/mcsd.md §4) ------------------------------------------------------ */

typedef struct mcsd_profile {
    const char *id;           /* StructureDefinition id, after MCSD_SD in the canonical */
    const char *type;         /* resource type it constrains */
    const char *parent;       /* id of the mCSD profile it derives from, or NULL */
    int base;                 /* implicitRules 0..0 and modifierExtension 0..0 */
    const char *required[5];  /* min >= 1 */
    const char *forbidden[3]; /* max = 0 */
    const char *type_code;    /* slice: type has exactly one coding MCSD_TYPES#type_code */
    int min_types;            /* type 2..* (FacilityLocation) */
    int boundary;             /* 1: check boundary extensions' content, 2: at most one */
    int process_bundle;       /* ProcessCareServices: transaction of POST/PUT/DELETE */
} mcsd_profile;

/* Parents come before their children, so that rules apply from the most general. */
static const mcsd_profile mcsd[] = {
    { .id = "IHE.mCSD.Organization",
      .type = "Organization",
      .parent = NULL,
      .base = 1,
      .required = { "type", "name" } },
    { .id = "IHE.mCSD.FacilityOrganization",
      .type = "Organization",
      .parent = "IHE.mCSD.Organization",
      .type_code = "facility" },
    { .id = "IHE.mCSD.JurisdictionOrganization",
      .type = "Organization",
      .parent = "IHE.mCSD.Organization",
      .type_code = "jurisdiction" },
    { .id = "IHE.mCSD.Location",
      .type = "Location",
      .parent = NULL,
      .base = 1,
      .required = { "status", "name", "type" },
      .boundary = 1 },
    { .id = "IHE.mCSD.FacilityLocation",
      .type = "Location",
      .parent = "IHE.mCSD.Location",
      .required = { "managingOrganization" },
      .type_code = "facility",
      .min_types = 2 },
    { .id = "IHE.mCSD.JurisdictionLocation",
      .type = "Location",
      .parent = "IHE.mCSD.Location",
      .required = { "managingOrganization" },
      .type_code = "jurisdiction",
      .boundary = 2 },
    { .id = "IHE.mCSD.LocationDistance",
      .type = "Location",
      .parent = "IHE.mCSD.Location",
      .required = { "position" } },
    { .id = "IHE.mCSD.Practitioner",
      .type = "Practitioner",
      .parent = NULL,
      .base = 1,
      .required = { "name" } },
    { .id = "IHE.mCSD.PractitionerRole",
      .type = "PractitionerRole",
      .parent = NULL,
      .base = 1,
      .required = { "code" } },
    { .id = "IHE.mCSD.HealthcareService",
      .type = "HealthcareService",
      .parent = NULL,
      .base = 1,
      .required = { "type", "name" } },
    { .id = "IHE.mCSD.OrganizationAffiliation",
      .type = "OrganizationAffiliation",
      .parent = NULL,
      .base = 1,
      .required = { "active", "code", "organization", "participatingOrganization" },
      .forbidden = { "network" } },
    { .id = "IHE.mCSD.OrganizationAffiliation.DocShare",
      .type = "OrganizationAffiliation",
      .parent = "IHE.mCSD.OrganizationAffiliation",
      .required = { "identifier" } },
    { .id = "IHE.mCSD.Endpoint",
      .type = "Endpoint",
      .parent = NULL,
      .base = 1,
      .required = { "managingOrganization" } },
    { .id = "IHE.mCSD.Endpoint.DocShare",
      .type = "Endpoint",
      .parent = "IHE.mCSD.Endpoint",
      .required = { "address" },
      .forbidden = { "name", "header" } },
    { .id = "IHE.mCSD.ProcessCareServices", .type = "Bundle", .parent = NULL, .process_bundle = 1 },
};
#define NMCSD (sizeof(mcsd) / sizeof(mcsd[0]))

/* Index in mcsd[] of the profile id[0..len), or -1. */
static int
mcsd_find(const char *id, size_t len)
{
    size_t k;
    for (k = 0; k < NMCSD; k++) {
        if (strlen(mcsd[k].id) == len && memcmp(mcsd[k].id, id, len) == 0)
            return (int)k;
    }
    return -1;
}

/* Present as a value or through its `_name` companion (an extension-only primitive counts). */
static int
has_element(const json_t *res, const char *name)
{
    char ck[64];
    if (json_object_get(res, name))
        return 1;
    snprintf(ck, sizeof(ck), "_%s", name);
    return json_object_get(res, ck) != NULL;
}

static int
text_is(const json_t *v, const char *s)
{
    return core_json_is_text(v) && strcmp(json_string_value(v), s) == 0;
}

static void
check_type_slice(vctx *c, const json_t *res, const mcsd_profile *pr)
{
    const json_t *types = json_object_get(res, "type"), *cc;
    size_t i, n, matches = 0;

    if (!json_is_array(types) || (n = json_array_size(types)) == 0)
        return; /* missing: reported as required by the parent profile */
    json_array_foreach (types, i, cc) {
        const json_t *codings = json_object_get(cc, "coding"), *cd;
        size_t k;
        json_array_foreach (codings, k, cd) {
            if (text_is(json_object_get(cd, "system"), MCSD_TYPES) &&
                text_is(json_object_get(cd, "code"), pr->type_code)) {
                matches++;
                break;
            }
        }
    }
    if (pr->type_code && matches == 0)
        report_in(c, "type", 422, CORE_ISSUE_PROCESSING,
                  "type must include the code \"%s\" of system " MCSD_TYPES " (profile %s)",
                  pr->type_code, pr->id);
    else if (pr->type_code && matches > 1)
        report_in(c, "type", 422, CORE_ISSUE_PROCESSING,
                  "type must include the code \"%s\" only once (profile %s, got %zu)",
                  pr->type_code, pr->id, matches);
    if (pr->min_types && n < (size_t)pr->min_types)
        report_in(c, "type", 422, CORE_ISSUE_PROCESSING,
                  "type must have at least %d entries, the %s code and a service type such as "
                  "HOSP (profile %s, got %zu)",
                  pr->min_types, pr->type_code, pr->id, n);
}

/* location-boundary-geojson: valueAttachment with contentType application/geo+json and inline
 * data (base64 GeoJSON). */
static void
check_boundary(vctx *c, const json_t *res, const mcsd_profile *pr)
{
    const json_t *exts = json_object_get(res, "extension"), *e;
    size_t i, count = 0;

    json_array_foreach (exts, i, e) {
        const json_t *att, *ct;
        size_t old, old2;
        char q[64];

        if (!text_is(json_object_get(e, "url"), BOUNDARY))
            continue;
        count++;
        if (pr->boundary != 1)
            continue;
        old = core_path_push(&c->path, "extension");
        core_path_index(&c->path, i);
        att = json_object_get(e, "valueAttachment");
        if (!json_is_object(att)) {
            report_in(c, "valueAttachment", 422, CORE_ISSUE_REQUIRED,
                      "the boundary extension must have a valueAttachment (profile %s)", pr->id);
            core_path_pop(&c->path, old);
            continue;
        }
        old2 = core_path_push(&c->path, "valueAttachment");
        ct = json_object_get(att, "contentType");
        if (!ct)
            report_in(c, "contentType", 422, CORE_ISSUE_REQUIRED,
                      "the boundary attachment must have contentType \"" GEOJSON "\" (profile %s)",
                      pr->id);
        else if (!text_is(ct, GEOJSON))
            report_in(c, "contentType", 422, CORE_ISSUE_PROCESSING,
                      "the boundary contentType must be \"" GEOJSON "\" (profile %s, got \"%s\")",
                      pr->id, core_json_is_text(ct) ? clip0(q, json_string_value(ct)) : "");
        if (!json_object_get(att, "data"))
            report_in(c, "data", 422, CORE_ISSUE_REQUIRED,
                      "the boundary attachment must hold the GeoJSON inline in data (profile %s)",
                      pr->id);
        core_path_pop(&c->path, old2);
        core_path_pop(&c->path, old);
    }
    if (pr->boundary == 2 && count > 1)
        report_in(c, "extension", 422, CORE_ISSUE_PROCESSING,
                  "at most one boundary extension is allowed (profile %s, got %zu)", pr->id, count);
}

/* IHE.mCSD.ProcessCareServices: a transaction whose entries all have a request with method
 * POST, PUT or DELETE. */
static void
check_process_bundle(vctx *c, const json_t *res, const mcsd_profile *pr)
{
    const json_t *entries = json_object_get(res, "entry"), *e;
    const json_t *type = json_object_get(res, "type");
    size_t i;
    char q[64];

    if (core_json_is_text(type) && !text_is(type, "transaction"))
        report_in(c, "type", 422, CORE_ISSUE_PROCESSING,
                  "type must be \"transaction\" (profile %s, got \"%s\")", pr->id,
                  clip0(q, json_string_value(type)));
    json_array_foreach (entries, i, e) {
        const json_t *req = json_object_get(e, "request"), *m;
        size_t old = core_path_push(&c->path, "entry");
        core_path_index(&c->path, i);
        if (!json_is_object(req)) {
            report_in(c, "request", 422, CORE_ISSUE_REQUIRED,
                      "each entry must have a request (profile %s)", pr->id);
        } else {
            m = json_object_get(req, "method");
            if (core_json_is_text(m) && !text_is(m, "POST") && !text_is(m, "PUT") &&
                !text_is(m, "DELETE")) {
                size_t old2 = core_path_push(&c->path, "request");
                report_in(c, "method", 422, CORE_ISSUE_PROCESSING,
                          "request.method must be POST, PUT or DELETE (profile %s, got \"%s\")",
                          pr->id, clip0(q, json_string_value(m)));
                core_path_pop(&c->path, old2);
            }
        }
        core_path_pop(&c->path, old);
    }
}

static void
apply_profile(vctx *c, const json_t *res, const mcsd_profile *pr)
{
    size_t k;

    if (pr->base) {
        if (has_element(res, "implicitRules"))
            report_in(c, "implicitRules", 422, CORE_ISSUE_PROCESSING,
                      "element \"implicitRules\" is not allowed by profile %s", pr->id);
        if (has_element(res, "modifierExtension"))
            report_in(c, "modifierExtension", 422, CORE_ISSUE_PROCESSING,
                      "element \"modifierExtension\" is not allowed by profile %s", pr->id);
    }
    for (k = 0; k < sizeof(pr->required) / sizeof(pr->required[0]) && pr->required[k]; k++) {
        if (!has_element(res, pr->required[k]))
            report_in(c, pr->required[k], 422, CORE_ISSUE_REQUIRED,
                      "element \"%s\" is required by profile %s", pr->required[k], pr->id);
    }
    for (k = 0; k < sizeof(pr->forbidden) / sizeof(pr->forbidden[0]) && pr->forbidden[k]; k++) {
        if (has_element(res, pr->forbidden[k]))
            report_in(c, pr->forbidden[k], 422, CORE_ISSUE_PROCESSING,
                      "element \"%s\" is not allowed by profile %s", pr->forbidden[k], pr->id);
    }
    if (pr->type_code || pr->min_types)
        check_type_slice(c, res, pr);
    if (pr->boundary)
        check_boundary(c, res, pr);
    if (pr->process_bundle)
        check_process_bundle(c, res, pr);
}

/* The mCSD profiles claimed in meta.profile (canonical, optionally "|version"), with their
 * ancestors, each applied once. Other profiles are not ours to check and are ignored. */
static void
check_profiles(vctx *c, const json_t *res, const vtype *t)
{
    const json_t *profiles = json_object_get(json_object_get(res, "meta"), "profile"), *pv;
    unsigned apply = 0;
    size_t i;
    int k;

    json_array_foreach (profiles, i, pv) {
        const char *s = core_json_is_text(pv) ? json_string_value(pv) : NULL, *id;

        if (!s || strncmp(s, MCSD_SD, strlen(MCSD_SD)) != 0)
            continue;
        id = s + strlen(MCSD_SD);
        if ((k = mcsd_find(id, strcspn(id, "|"))) < 0)
            continue;
        if (strcmp(mcsd[k].type, t->name) != 0) {
            size_t old = core_path_add(&c->path, ".meta.profile[%zu]", i);
            report(c, 422, CORE_ISSUE_PROCESSING, "profile %s applies to %s resources, not %s",
                   mcsd[k].id, mcsd[k].type, t->name);
            core_path_pop(&c->path, old);
            continue;
        }
        for (; k >= 0; k = mcsd[k].parent ? mcsd_find(mcsd[k].parent, strlen(mcsd[k].parent)) : -1)
            apply |= 1u << k;
    }
    for (k = 0; k < (int)NMCSD; k++) {
        if (apply & (1u << k))
            apply_profile(c, res, &mcsd[k]);
    }
}

int
reg_validate(const json_t *res, const char *type, core_err *err)
{
    vctx c;
    const vtype *expect = NULL;

    if (reg_model_load(err) < 0)
        return -1;
    if (type) {
        expect = find_type(loaded, type);
        if (!expect || expect->kind != K_RESOURCE) {
            char q[64];
            return core_err_set(err, 400, CORE_ISSUE_NOT_SUPPORTED, "unknown resource type \"%s\"",
                                clip0(q, type));
        }
    }
    if (!json_is_object(res))
        return core_err_set(err, 400, CORE_ISSUE_STRUCTURE, "a resource must be a JSON object");
    memset(&c, 0, sizeof(c));
    c.m = loaded;
    check_resource(&c, res, expect);
    return flush(&c, err);
}
