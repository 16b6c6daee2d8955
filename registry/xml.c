/* FHIR R4 XML (https://hl7.org/fhir/R4/xml.html) to and from the FHIR JSON form the registry
 * works in, driven by the R4 model in registry/fhir_model.json (see validate.c for its layout):
 * the model says which elements repeat (JSON arrays), which are primitives (`value`
 * attributes, `_name` companions for their id and extensions), which are XML attributes (id,
 * Extension.url), and the StructureDefinition order XML output must follow. The XML itself is
 * read by core/xml.c, which refuses DTDs and entities. Input element order is not enforced.
 *
 * The model is loaded here a second time (validate.c keeps its tables private) into a smaller
 * read-only table, once (pthread_once); everything else is per call, so this is thread-safe. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xml.h"
#include "registry/xml.h"

#define MODEL_PATH "registry/fhir_model.json"
#define MAX_ELEMS  128 /* elements per type, as in validate.c */
#define FHIR_NS    "http://hl7.org/fhir"
#define XHTML_NS   "http://www.w3.org/1999/xhtml"
#define XSI_NS     "http://www.w3.org/2001/XMLSchema-instance"

/* ---- the model ------------------------------------------------------------------------------- */

typedef enum xkind { X_PRIMITIVE, X_COMPLEX, X_RESOURCE, X_ANY_RESOURCE } xkind;

/* How a primitive's value is carried in JSON. */
typedef enum xvalue { XV_STRING, XV_NUMBER, XV_BOOLEAN, XV_XHTML } xvalue;

typedef struct xtype xtype;

typedef struct xelem {
    const char *name; /* as in the model: "value[x]" for a choice */
    int index;        /* position in StructureDefinition order */
    int repeats;      /* max != "1": a JSON array */
    int attr;         /* an XML attribute (flag "a"): Element.id, Extension.url */
} xelem;

/* An XML element name / JSON property of a type: an element, or one expansion of a choice. */
typedef struct xprop {
    const char *name; /* "status", "valueQuantity" */
    const xelem *el;
    const xtype *type;
} xprop;

struct xtype {
    const char *name;
    xkind kind;
    xvalue value; /* X_PRIMITIVE */
    xelem *elems;
    int nelems;
    xprop *props; /* sorted by name */
    int nprops;
};

typedef struct xmodel {
    json_t *json; /* owns the names */
    xtype *types; /* sorted by name */
    size_t ntypes;
    xtype any_resource;
    const xtype *element;   /* what a primitive's `_name` companion holds */
    const xtype *extension; /* Extension */
} xmodel;

static xmodel the_model;
static const xmodel *loaded; /* set once by load_once, read-only afterwards */
static pthread_once_t load_guard = PTHREAD_ONCE_INIT;

static int
cmp_type(const void *a, const void *b)
{
    return strcmp(((const xtype *)a)->name, ((const xtype *)b)->name);
}

static int
cmp_prop(const void *a, const void *b)
{
    return strcmp(((const xprop *)a)->name, ((const xprop *)b)->name);
}

static const xtype *
find_type(const xmodel *m, const char *name)
{
    xtype key;
    key.name = name;
    return bsearch(&key, m->types, m->ntypes, sizeof(xtype), cmp_type);
}

static const xprop *
find_prop(const xtype *t, const char *name)
{
    xprop key;
    key.name = name;
    return bsearch(&key, t->props, (size_t)t->nprops, sizeof(xprop), cmp_prop);
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

static const xtype *
resolve(xmodel *m, const json_t *name)
{
    const char *s = json_string_value(name);
    if (!s)
        return NULL;
    if (strcmp(s, "Resource") == 0)
        return &m->any_resource;
    return find_type(m, s);
}

/* t's elements and properties from its model rows. Returns 0 or -1 with why set. */
static int
build_type(xmodel *m, xtype *t, const json_t *src, char *why, size_t cap)
{
    const json_t *rows = json_object_get(src, "elements");
    size_t i, n, np = 0, k;

    if (!json_is_array(rows) || (n = json_array_size(rows)) > MAX_ELEMS) {
        snprintf(why, cap, "type %s: bad element list", t->name);
        return -1;
    }
    t->elems = xcalloc(n, sizeof(xelem));
    t->nelems = (int)n;
    for (i = 0; i < n; i++) {
        const json_t *row = json_array_get(rows, i), *ty = json_array_get(row, 1);
        const char *name = json_string_value(json_array_get(row, 0));
        const char *max = json_string_value(json_array_get(row, 3));
        const char *flags = json_string_value(json_array_get(row, 4));

        if (!name || !max || (!json_is_array(ty) && !json_is_string(ty))) {
            snprintf(why, cap, "type %s: bad element row %zu", t->name, i);
            return -1;
        }
        t->elems[i].name = name;
        t->elems[i].index = (int)i;
        t->elems[i].repeats = strcmp(max, "1") != 0;
        t->elems[i].attr = flags && strchr(flags, 'a');
        np += json_is_array(ty) ? json_array_size(ty) : 1;
    }
    t->props = xcalloc(np, sizeof(xprop));
    for (i = 0; i < n; i++) {
        const json_t *ty = json_array_get(json_array_get(rows, i), 1);
        const xelem *e = &t->elems[i];
        size_t nt = json_is_array(ty) ? json_array_size(ty) : 1;

        for (k = 0; k < nt; k++) {
            xprop *p = &t->props[t->nprops++];
            p->el = e;
            p->type = resolve(m, json_is_array(ty) ? json_array_get(ty, k) : ty);
            if (!p->type) {
                snprintf(why, cap, "%s.%s: unknown type", t->name, e->name);
                return -1;
            }
            if (json_is_array(ty)) {
                /* value[x] + CodeableConcept -> valueCodeableConcept */
                size_t base = strlen(e->name), tl = strlen(p->type->name);
                char *s;
                if (base < 4 || strcmp(e->name + base - 3, "[x]") != 0) {
                    snprintf(why, cap, "%s.%s: a choice must be named [x]", t->name, e->name);
                    return -1;
                }
                base -= 3;
                s = xcalloc(base + tl + 1, 1);
                memcpy(s, e->name, base);
                memcpy(s + base, p->type->name, tl);
                if (s[base] >= 'a' && s[base] <= 'z')
                    s[base] = (char)(s[base] - 'a' + 'A');
                p->name = s;
            } else {
                p->name = e->name;
            }
        }
    }
    qsort(t->props, (size_t)t->nprops, sizeof(xprop), cmp_prop);
    for (k = 1; k < (size_t)t->nprops; k++) {
        if (strcmp(t->props[k - 1].name, t->props[k].name) == 0) {
            snprintf(why, cap, "type %s: %s defined twice", t->name, t->props[k].name);
            return -1;
        }
    }
    return 0;
}

static int
build_model(xmodel *m, char *why, size_t cap)
{
    const core_embedded_file *f = core_embedded_find(MODEL_PATH);
    const json_t *jp, *jt, *v;
    const char *key;
    json_error_t jerr;
    size_t n = 0, i;

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
    m->types = xcalloc(m->ntypes, sizeof(xtype));
    json_object_foreach ((json_t *)jp, key, v) {
        const char *js = json_string_value(json_object_get(v, "json"));
        xtype *t = &m->types[n++];
        t->name = key;
        t->kind = X_PRIMITIVE;
        if (strcmp(key, "xhtml") == 0)
            t->value = XV_XHTML;
        else if (js && strcmp(js, "number") == 0)
            t->value = XV_NUMBER;
        else if (js && strcmp(js, "boolean") == 0)
            t->value = XV_BOOLEAN;
        else
            t->value = XV_STRING;
    }
    json_object_foreach ((json_t *)jt, key, v) {
        const char *kind = json_string_value(json_object_get(v, "kind"));
        xtype *t = &m->types[n++];
        t->name = key;
        t->kind = kind && strcmp(kind, "resource") == 0 ? X_RESOURCE : X_COMPLEX;
    }
    qsort(m->types, m->ntypes, sizeof(xtype), cmp_type);
    m->any_resource.name = "Resource";
    m->any_resource.kind = X_ANY_RESOURCE;
    for (i = 0; i < m->ntypes; i++) {
        xtype *t = &m->types[i];
        if (t->kind != X_PRIMITIVE && build_type(m, t, json_object_get(jt, t->name), why, cap) < 0)
            return -1;
    }
    m->element = find_type(m, "Element");
    m->extension = find_type(m, "Extension");
    if (!m->element || !m->extension) {
        snprintf(why, cap, "Element or Extension missing");
        return -1;
    }
    return 0;
}

static void
load_once(void)
{
    char why[200] = "";

    if (build_model(&the_model, why, sizeof(why)) < 0) {
        core_log(CORE_LOG_ERROR, "embedded FHIR model %s is broken: %s", MODEL_PATH, why);
        return;
    }
    loaded = &the_model;
}

static const xmodel *
model(core_err *err)
{
    pthread_once(&load_guard, load_once);
    if (!loaded)
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "the server's FHIR model could not be loaded");
    return loaded;
}

/* ---- FHIRPath of the element at hand --------------------------------------------------------- */

/* Names and values quoted in messages are cut at byte counts; whatever such a cut splits
 * becomes '?', so messages stay UTF-8 (they end up in a JSON OperationOutcome). */
static void
utf8_repair(char *s)
{
    unsigned char *u = (unsigned char *)s;
    size_t i = 0, k, len;

    while (u[i]) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        len = u[i] >= 0xF8 ? 0 : u[i] >= 0xF0 ? 4 : u[i] >= 0xE0 ? 3 : u[i] >= 0xC0 ? 2 : 0;
        for (k = 1; len && k < len && (u[i + k] & 0xC0) == 0x80; k++)
            ;
        if (!len || k < len) {
            u[i++] = '?';
            continue;
        }
        i += len;
    }
}

/* The path as core_err keeps it (128 bytes), cut on a character boundary. */
static const char *
expr_of(char out[128], const core_path *p)
{
    core_strlcpy(out, p->s, 128);
    utf8_repair(out);
    return out;
}

/* ---- XML -> JSON ----------------------------------------------------------------------------- */

/* One attribute or child element of the object being read, tagged with what it is. */
typedef struct item {
    const xprop *p;
    const core_xml_node *node; /* child element, or NULL */
    const core_xml_attr *attr; /* or attribute */
} item;

typedef struct rctx {
    const xmodel *m;
    const char *src; /* the input: narrative is kept as written */
    core_err *err;
    item *items; /* a stack: each object being read owns a slice */
    size_t nitems, cap;
    core_path path;
} rctx;

static int rfail(rctx *c, int line, core_issue code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A 400 about the element at the current path, naming the input line. */
static int
rfail(rctx *c, int line, core_issue code, const char *fmt, ...)
{
    char msg[200], expr[sizeof(c->err->expr)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_repair(msg);
    return core_err_set_at(c->err, 400, code, expr_of(expr, &c->path), "%s (line %d)", msg, line);
}

static int
oom(core_err *err)
{
    return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory converting XML");
}

/* Steals v; v NULL means out of memory (a json_t constructor failed). */
static int
jset(core_err *err, json_t *obj, const char *key, json_t *v)
{
    if (!v || json_object_set_new(obj, key, v) < 0)
        return oom(err);
    return 0;
}

/* Steals v. */
static int
jappend(core_err *err, json_t *arr, json_t *v)
{
    if (!v || json_array_append_new(arr, v) < 0)
        return oom(err);
    return 0;
}

static int
blank(const core_xml_node *text)
{
    size_t k;
    for (k = 0; k < text->len; k++)
        if (text->text[k] != ' ' && text->text[k] != '\t' && text->text[k] != '\n')
            return 0;
    return 1;
}

static int
text_error(rctx *c, const core_xml_node *text, const char *where)
{
    return rfail(c, text->line, CORE_ISSUE_STRUCTURE, "text is not allowed in %s (got \"%.20s\")",
                 where, text->text);
}

/* Namespace declarations and xsi:schemaLocation (which FHIR's own examples carry) say nothing
 * about content. */
static int
ignorable_attr(const core_xml_attr *a)
{
    return strcmp(a->ns, CORE_XML_NS_XMLNS) == 0 || strcmp(a->ns, XSI_NS) == 0;
}

/* RFC 8259 number, which is also FHIR's decimal regex. */
static int
number_ok(const char *s)
{
    size_t i = 0;

    if (s[i] == '-')
        i++;
    if (s[i] == '0')
        i++;
    else if (s[i] >= '1' && s[i] <= '9')
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (s[i] == '.') {
        i++;
        if (!(s[i] >= '0' && s[i] <= '9'))
            return 0;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        i++;
        if (s[i] == '+' || s[i] == '-')
            i++;
        if (!(s[i] >= '0' && s[i] <= '9'))
            return 0;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return s[i] == '\0';
}

static int read_object(rctx *c, json_t *obj, const core_xml_node *el, const xtype *t, int is_res);
static json_t *read_resource(rctx *c, const core_xml_node *el);

/* A primitive's value attribute as JSON (https://hl7.org/fhir/R4/json.html#primitive):
 * booleans and numbers typed, number text kept exactly. NULL with err set. */
static json_t *
read_value(rctx *c, const core_xml_node *el, const core_xml_attr *a, const xtype *t)
{
    json_t *v;

    switch (t->value) {
    case XV_BOOLEAN:
        if (strcmp(a->value, "true") == 0)
            return json_true();
        if (strcmp(a->value, "false") == 0)
            return json_false();
        rfail(c, el->line, CORE_ISSUE_VALUE, "%s must be true or false (got \"%.40s\")", t->name,
              a->value);
        return NULL;
    case XV_NUMBER:
        if (!number_ok(a->value)) {
            rfail(c, el->line, CORE_ISSUE_VALUE, "%s must be a number (got \"%.40s\")", t->name,
                  a->value);
            return NULL;
        }
        v = core_json_number(a->value);
        break;
    default:
        v = json_stringn(a->value, a->len);
        break;
    }
    if (!v)
        oom(c->err);
    return v;
}

/* A primitive element: <name id="..." value="..."><extension .../></name> gives *v (value or
 * NULL) and *comp (the `_name` companion {id, extension}, or NULL). */
static int
read_primitive(rctx *c, const core_xml_node *el, const xtype *t, json_t **v, json_t **comp)
{
    const core_xml_attr *value = NULL, *id = NULL;
    const core_xml_node *ch;
    json_t *ext = NULL;
    size_t k, n = 0;

    *v = *comp = NULL;
    for (k = 0; k < el->nattrs; k++) {
        const core_xml_attr *a = &el->attrs[k];
        if (ignorable_attr(a))
            continue;
        if (!a->ns[0] && strcmp(a->local, "value") == 0)
            value = a;
        else if (!a->ns[0] && strcmp(a->local, "id") == 0)
            id = a;
        else
            return rfail(c, el->line, CORE_ISSUE_STRUCTURE, "unknown attribute \"%.64s\"",
                         a->qname);
    }
    for (ch = el->first; ch; ch = ch->next) {
        size_t old;
        json_t *e;
        int rc;

        if (ch->kind == CORE_XML_TEXT) {
            if (blank(ch))
                continue;
            text_error(c, ch, "a primitive element (its value goes in the value attribute)");
            goto fail;
        }
        old = core_path_add(&c->path, ".extension[%zu]", n);
        if (strcmp(ch->ns, FHIR_NS) != 0 || strcmp(ch->local, "extension") != 0) {
            core_path_pop(&c->path, old);
            core_path_push(&c->path, ch->local);
            rfail(c, ch->line, CORE_ISSUE_STRUCTURE, "unknown element \"%.64s\"", ch->qname);
            goto fail;
        }
        if ((!ext && !(ext = json_array())) || !(e = json_object())) {
            oom(c->err);
            goto fail;
        }
        rc = read_object(c, e, ch, c->m->extension, 0);
        if (jappend(c->err, ext, e) < 0 || rc < 0)
            goto fail;
        core_path_pop(&c->path, old);
        n++;
    }
    if (!value && !id && !ext)
        return rfail(c, el->line, CORE_ISSUE_VALUE,
                     "element \"%.64s\" has no value attribute, id or extension", el->local);
    if (value && !(*v = read_value(c, el, value, t)))
        goto fail;
    if (id || ext) {
        json_t *e = ext;
        if (!(*comp = json_object())) {
            oom(c->err);
            goto fail;
        }
        if (id && jset(c->err, *comp, "id", json_stringn(id->value, id->len)) < 0)
            goto fail;
        ext = NULL; /* jset steals it, even when failing */
        if (e && jset(c->err, *comp, "extension", e) < 0)
            goto fail;
    }
    return 0;
fail:
    json_decref(ext);
    json_decref(*v);
    json_decref(*comp);
    *v = *comp = NULL;
    return -1;
}

/* Narrative: everything inside must be XHTML, attributes unqualified or xml:. Sets *verbatim
 * if the source text of the div can serve as it is (it declares the XHTML namespace itself and
 * uses no prefixes). */
static int
check_xhtml(rctx *c, const core_xml_node *el, int *verbatim)
{
    const core_xml_node *ch;
    size_t k;

    if (strcmp(el->ns, XHTML_NS) != 0)
        return rfail(
            c, el->line, CORE_ISSUE_STRUCTURE,
            "narrative may contain only XHTML elements (got <%.64s> in namespace \"%.64s\")",
            el->qname, el->ns);
    if (el->qname != el->local)
        *verbatim = 0;
    for (k = 0; k < el->nattrs; k++) {
        const char *ns = el->attrs[k].ns;
        if (ns[0] && strcmp(ns, CORE_XML_NS_XML) != 0 && strcmp(ns, CORE_XML_NS_XMLNS) != 0)
            return rfail(c, el->line, CORE_ISSUE_STRUCTURE,
                         "narrative attributes must not be in a namespace (got \"%.64s\")",
                         el->attrs[k].qname);
    }
    for (ch = el->first; ch; ch = ch->next)
        if (ch->kind == CORE_XML_ELEMENT && check_xhtml(c, ch, verbatim) < 0)
            return -1;
    return 0;
}

/* The XHTML tree written back canonically: unprefixed elements, the namespace declared on the
 * div only. */
static void
write_xhtml(core_xml_buf *b, const core_xml_node *el, int root)
{
    const core_xml_node *ch;
    size_t k;

    core_xml_put(b, "<", 1);
    core_xml_put(b, el->local, strlen(el->local));
    if (root)
        core_xml_put(b, " xmlns=\"" XHTML_NS "\"", sizeof(" xmlns=\"" XHTML_NS "\"") - 1);
    for (k = 0; k < el->nattrs; k++) {
        const core_xml_attr *a = &el->attrs[k];
        if (strcmp(a->ns, CORE_XML_NS_XMLNS) == 0)
            continue;
        core_xml_put(b, " ", 1);
        if (a->ns[0])
            core_xml_put(b, "xml:", 4);
        core_xml_put(b, a->local, strlen(a->local));
        core_xml_put(b, "=\"", 2);
        core_xml_put_attr(b, a->value, a->len); /* the reader let only XML characters in */
        core_xml_put(b, "\"", 1);
    }
    if (!el->first) {
        core_xml_put(b, "/>", 2);
        return;
    }
    core_xml_put(b, ">", 1);
    for (ch = el->first; ch; ch = ch->next) {
        if (ch->kind == CORE_XML_TEXT)
            core_xml_put_text(b, ch->text, ch->len);
        else
            write_xhtml(b, ch, 0);
    }
    core_xml_put(b, "</", 2);
    core_xml_put(b, el->local, strlen(el->local));
    core_xml_put(b, ">", 1);
}

/* Narrative.div as the JSON string of its XHTML (xml.html#narrative): the source text when it
 * is self-contained, which keeps JSON -> XML -> JSON exact; otherwise written back from the
 * tree. */
static json_t *
read_div(rctx *c, const core_xml_node *el)
{
    const core_xml_attr *ns = core_xml_attr_find(el, CORE_XML_NS_XMLNS, "xmlns");
    core_xml_buf b = CORE_XML_BUF_INIT;
    int verbatim = ns && strcmp(ns->value, XHTML_NS) == 0;
    size_t len;
    char *s;
    json_t *v;

    if (strcmp(el->ns, XHTML_NS) != 0) {
        rfail(c, el->line, CORE_ISSUE_STRUCTURE,
              "narrative <div> must be in the XHTML namespace (xmlns=\"" XHTML_NS "\")");
        return NULL;
    }
    for (size_t k = 0; k < el->nattrs; k++) {
        if (ignorable_attr(&el->attrs[k]) || !el->attrs[k].ns[0])
            continue;
        verbatim = 0;
    }
    if (check_xhtml(c, el, &verbatim) < 0)
        return NULL;
    if (verbatim) {
        v = json_stringn(c->src + el->start, el->end - el->start);
    } else {
        write_xhtml(&b, el, 1);
        if (!(s = core_xml_buf_take(&b, &len))) {
            oom(c->err);
            return NULL;
        }
        v = json_stringn(s, len);
        free(s);
    }
    if (!v)
        oom(c->err);
    return v;
}

/* <contained><Location>...</Location></contained>: exactly one resource element inside. */
static json_t *
read_wrapped(rctx *c, const core_xml_node *el)
{
    const core_xml_node *ch, *res = NULL;
    size_t k;

    for (k = 0; k < el->nattrs; k++) {
        if (!ignorable_attr(&el->attrs[k])) {
            rfail(c, el->line, CORE_ISSUE_STRUCTURE, "unknown attribute \"%.64s\"",
                  el->attrs[k].qname);
            return NULL;
        }
    }
    for (ch = el->first; ch; ch = ch->next) {
        if (ch->kind == CORE_XML_TEXT) {
            if (!blank(ch)) {
                text_error(c, ch, "an element that holds a resource");
                return NULL;
            }
        } else if (res) {
            rfail(c, ch->line, CORE_ISSUE_STRUCTURE,
                  "element \"%.64s\" must hold one resource only", el->local);
            return NULL;
        } else {
            res = ch;
        }
    }
    if (!res) {
        rfail(c, el->line, CORE_ISSUE_STRUCTURE, "element \"%.64s\" must hold a resource",
              el->local);
        return NULL;
    }
    return read_resource(c, res);
}

/* One occurrence of a complex, backbone or resource-typed element as its JSON value. */
static json_t *
read_node(rctx *c, const core_xml_node *el, const xtype *t)
{
    json_t *obj;

    if (t->kind == X_ANY_RESOURCE)
        return read_wrapped(c, el);
    if (!(obj = json_object())) {
        oom(c->err);
        return NULL;
    }
    if (read_object(c, obj, el, t, 0) < 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* The child element ch of an element of type t: which property it is, or NULL. */
static const xprop *
child_prop(const xtype *t, const core_xml_node *ch)
{
    const xprop *p;

    if (strcmp(ch->ns, XHTML_NS) == 0 && strcmp(ch->local, "div") == 0) {
        p = find_prop(t, "div");
        return p && p->type->kind == X_PRIMITIVE && p->type->value == XV_XHTML ? p : NULL;
    }
    return strcmp(ch->ns, FHIR_NS) == 0 ? find_prop(t, ch->local) : NULL;
}

/* Gather el's attributes and child elements as items on c's stack, grouped by element in
 * StructureDefinition order (a stable counting sort: input order is free, but occurrences of
 * one element keep theirs). Returns the number pushed, or -1 with err set. */
static long
gather(rctx *c, const core_xml_node *el, const xtype *t, int is_res)
{
    size_t base = c->nitems, n = 0, k, j;
    size_t count[MAX_ELEMS + 1];
    const core_xml_node *ch;

    for (k = 0; k < el->nattrs; k++)
        n++;
    for (ch = el->first; ch; ch = ch->next)
        n++;
    if (c->cap - c->nitems < 2 * n) {
        size_t cap = c->cap ? c->cap : 256;
        item *it;
        while (cap - c->nitems < 2 * n)
            cap *= 2;
        if (!(it = realloc(c->items, cap * sizeof(item))))
            return oom(c->err);
        c->items = it;
        c->cap = cap;
    }
    n = 0;
    for (k = 0; k < el->nattrs; k++) {
        const core_xml_attr *a = &el->attrs[k];
        const xprop *p = a->ns[0] ? NULL : find_prop(t, a->local);
        if (ignorable_attr(a))
            continue;
        if (!p || !p->el->attr)
            return rfail(c, el->line, CORE_ISSUE_STRUCTURE, "unknown attribute \"%.64s\"%s",
                         a->qname, is_res ? " on a resource element" : "");
        c->items[base + n].p = p;
        c->items[base + n].attr = a;
        c->items[base + n].node = NULL;
        n++;
    }
    for (ch = el->first; ch; ch = ch->next) {
        const xprop *p;
        if (ch->kind == CORE_XML_TEXT) {
            if (blank(ch))
                continue;
            return text_error(c, ch, "FHIR elements (values go in value attributes)");
        }
        p = child_prop(t, ch);
        if (!p || p->el->attr) {
            size_t old = core_path_push(&c->path, ch->local);
            if (p)
                return rfail(c, ch->line, CORE_ISSUE_STRUCTURE,
                             "\"%.64s\" must be an attribute, not an element", ch->local);
            if (strcmp(ch->local, "div") == 0 && find_prop(t, "div"))
                return rfail(c, ch->line, CORE_ISSUE_STRUCTURE,
                             "narrative <div> must be in the XHTML namespace (xmlns=\"" XHTML_NS
                             "\")");
            if (strcmp(ch->ns, FHIR_NS) != 0)
                return rfail(c, ch->line, CORE_ISSUE_STRUCTURE,
                             "unknown element \"%.64s\" (namespace \"%.64s\", expected \"" FHIR_NS
                             "\")",
                             ch->qname, ch->ns);
            rfail(c, ch->line, CORE_ISSUE_STRUCTURE, "unknown element \"%.64s\"", ch->local);
            core_path_pop(&c->path, old);
            return -1;
        }
        c->items[base + n].p = p;
        c->items[base + n].node = ch;
        c->items[base + n].attr = NULL;
        n++;
    }
    /* counting sort by element index into the scratch half, then back */
    memset(count, 0, sizeof(count));
    for (k = 0; k < n; k++)
        count[c->items[base + k].p->el->index + 1]++;
    for (j = 1; j <= (size_t)t->nelems; j++)
        count[j] += count[j - 1];
    for (k = 0; k < n; k++)
        c->items[base + n + count[c->items[base + k].p->el->index]++] = c->items[base + k];
    memcpy(c->items + base, c->items + base + n, n * sizeof(item));
    c->nitems = base + n;
    return (long)n;
}

/* One element's occurrences items[from, to) (all of one xelem) into obj. */
static int
read_group(rctx *c, json_t *obj, size_t from, size_t to)
{
    item first = c->items[from];
    const xelem *e = first.p->el;
    const char *name = first.p->name;
    const xtype *t = first.p->type;
    json_t *vals = NULL, *comps = NULL, *arr = NULL;
    int anyv = 0, anyc = 0;
    size_t k, old = core_path_push(&c->path, name);
    char ck[160];

    for (k = from + 1; k < to; k++) {
        const core_xml_node *node = c->items[k].node;
        int line = node ? node->line : 0;
        if (c->items[k].p != first.p)
            return rfail(c, line, CORE_ISSUE_STRUCTURE, "only one of %s and %s may be present",
                         name, c->items[k].p->name);
        if (!e->repeats)
            return rfail(c, line, CORE_ISSUE_STRUCTURE, "element \"%.64s\" must not repeat", name);
    }
    if (first.attr) {
        if (jset(c->err, obj, name, json_stringn(first.attr->value, first.attr->len)) < 0)
            return -1;
        core_path_pop(&c->path, old);
        return 0;
    }
    if (t->kind == X_PRIMITIVE && t->value == XV_XHTML) {
        json_t *v = read_div(c, first.node);
        if (!v || jset(c->err, obj, name, v) < 0)
            return -1;
        core_path_pop(&c->path, old);
        return 0;
    }
    if (t->kind == X_PRIMITIVE) {
        snprintf(ck, sizeof(ck), "_%s", name);
        if (!e->repeats) {
            json_t *v, *comp;
            if (read_primitive(c, first.node, t, &v, &comp) < 0)
                return -1;
            if (v && jset(c->err, obj, name, v) < 0) {
                json_decref(comp);
                return -1;
            }
            if (comp && jset(c->err, obj, ck, comp) < 0)
                return -1;
            core_path_pop(&c->path, old);
            return 0;
        }
        /* repeating: two arrays aligned with nulls (json.html#primitive) */
        if (!(vals = json_array()) || !(comps = json_array()))
            goto oom;
        for (k = from; k < to; k++) {
            const core_xml_node *node = c->items[k].node;
            size_t oi = core_path_add(&c->path, "[%zu]", k - from);
            json_t *v, *comp;
            if (read_primitive(c, node, t, &v, &comp) < 0)
                goto fail;
            anyv |= v != NULL;
            anyc |= comp != NULL;
            if (jappend(c->err, vals, v ? v : json_null()) < 0) {
                json_decref(comp);
                goto fail;
            }
            if (jappend(c->err, comps, comp ? comp : json_null()) < 0)
                goto fail;
            core_path_pop(&c->path, oi);
        }
        if (anyv && jset(c->err, obj, name, json_incref(vals)) < 0)
            goto fail;
        if (anyc && jset(c->err, obj, ck, json_incref(comps)) < 0)
            goto fail;
        json_decref(vals);
        json_decref(comps);
        core_path_pop(&c->path, old);
        return 0;
    }
    if (!e->repeats) {
        json_t *v = read_node(c, first.node, t);
        if (!v || jset(c->err, obj, name, v) < 0)
            return -1;
        core_path_pop(&c->path, old);
        return 0;
    }
    if (!(arr = json_array()))
        return oom(c->err);
    if (jset(c->err, obj, name, arr) < 0)
        return -1;
    for (k = from; k < to; k++) {
        size_t oi = core_path_add(&c->path, "[%zu]", k - from);
        json_t *v = read_node(c, c->items[k].node, t);
        if (!v || jappend(c->err, arr, v) < 0)
            return -1;
        core_path_pop(&c->path, oi);
    }
    core_path_pop(&c->path, old);
    return 0;
oom:
    oom(c->err);
fail:
    json_decref(vals);
    json_decref(comps);
    return -1;
}

/* The attributes and children of el (an element of type t) as properties of obj, in model
 * order. */
static int
read_object(rctx *c, json_t *obj, const core_xml_node *el, const xtype *t, int is_res)
{
    size_t base = c->nitems, k, g;
    long n = gather(c, el, t, is_res);

    if (n < 0) {
        c->nitems = base;
        return -1;
    }
    for (k = 0; k < (size_t)n; k = g) {
        const xelem *e = c->items[base + k].p->el;
        for (g = k + 1; g < (size_t)n && c->items[base + g].p->el == e; g++)
            ;
        if (read_group(c, obj, base + k, base + g) < 0) {
            c->nitems = base;
            return -1;
        }
    }
    c->nitems = base;
    return 0;
}

/* A resource element (<Location xmlns="http://hl7.org/fhir">...) as a JSON object. */
static json_t *
read_resource(rctx *c, const core_xml_node *el)
{
    const xtype *t = strcmp(el->ns, FHIR_NS) == 0 ? find_type(c->m, el->local) : NULL;
    size_t old = c->path.len;
    json_t *obj;

    if (!t || t->kind != X_RESOURCE) {
        if (strcmp(el->ns, FHIR_NS) != 0)
            rfail(c, el->line, CORE_ISSUE_STRUCTURE,
                  "resource element <%.64s> must be in the namespace " FHIR_NS " (got \"%.64s\")",
                  el->qname, el->ns);
        else
            rfail(c, el->line, CORE_ISSUE_STRUCTURE, "unknown resource type \"%.64s\"", el->local);
        return NULL;
    }
    if (!old)
        core_path_push(&c->path, t->name);
    if (!(obj = json_object()) || jset(c->err, obj, "resourceType", json_string(t->name)) < 0) {
        json_decref(obj);
        oom(c->err);
        return NULL;
    }
    if (read_object(c, obj, el, t, 1) < 0) {
        json_decref(obj);
        return NULL;
    }
    core_path_pop(&c->path, old);
    return obj;
}

json_t *
reg_xml_parse(const char *xml, size_t len, core_err *err)
{
    rctx c;
    core_arena *a;
    const core_xml_node *root;
    json_t *res = NULL;

    memset(&c, 0, sizeof(c));
    if (!(c.m = model(err)))
        return NULL;
    c.src = xml;
    c.err = err;
    a = core_arena_create();
    root = core_xml_parse(a, xml, len, err);
    if (root) {
        if (strcmp(root->ns, FHIR_NS) != 0)
            rfail(&c, root->line, CORE_ISSUE_STRUCTURE,
                  "the root element must be in the namespace " FHIR_NS
                  " (got <%.64s> in namespace \"%.64s\")",
                  root->qname, root->ns);
        else
            res = read_resource(&c, root);
    }
    free(c.items);
    core_arena_destroy(a);
    return res;
}

/* ---- JSON -> XML ----------------------------------------------------------------------------- */

/* What a JSON object holds for one element of its type. */
typedef struct slot {
    const xprop *p;
    const json_t *v;    /* the value, or NULL */
    const json_t *comp; /* a primitive's `_name` companion, or NULL */
} slot;

typedef struct wctx {
    const xmodel *m;
    core_xml_buf b;
    core_err *err;
    core_arena *a; /* scratch for checking narrative */
    slot *slots;   /* a stack: each object being written owns nelems of them */
    size_t nslots, cap;
    core_path path;
} wctx;

static int wfail(wctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A 500: the resource does not fit the model (validated resources always do). */
static int
wfail(wctx *c, const char *fmt, ...)
{
    char msg[200], expr[sizeof(c->err->expr)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_repair(msg);
    return core_err_set_at(c->err, 500, CORE_ISSUE_EXCEPTION, expr_of(expr, &c->path),
                           "cannot write the resource as XML: %s", msg);
}

static void
put(wctx *c, const char *s)
{
    core_xml_put(&c->b, s, strlen(s));
}

static int write_resource(wctx *c, const json_t *obj, int root);
static int write_element(wctx *c,
                         const char *name,
                         const char *decl,
                         const json_t *obj,
                         const xtype *t,
                         int is_res,
                         const json_t *value,
                         const xtype *vt);

/* The value of primitive element name as the value attribute's text. */
static int
write_value(wctx *c, const char *name, const json_t *v, const xtype *t)
{
    const char *s;

    switch (t->value) {
    case XV_BOOLEAN:
        if (!json_is_boolean(v))
            return wfail(c, "%s must be true or false", name);
        put(c, json_is_true(v) ? "true" : "false");
        return 0;
    case XV_NUMBER:
        if (!(s = core_json_number_text(v)))
            return wfail(c, "%s must be a number", name);
        put(c, s); /* JSON number syntax: nothing to escape */
        return 0;
    default:
        if (!core_json_is_text(v))
            return wfail(c, "%s must be a string", name);
        if (core_xml_put_attr(&c->b, json_string_value(v), json_string_length(v)) < 0)
            return wfail(c, "the value holds a character XML cannot carry");
        return 0;
    }
}

/* Narrative: the XHTML text goes out as it is, once it has been read as one well-formed XHTML
 * <div> element and nothing else (so that it cannot break the document around it). */
static int
write_div(wctx *c, const json_t *v)
{
    const core_xml_node *div;
    core_err perr = CORE_ERR_INIT;
    size_t len;

    if (!core_json_is_text(v))
        return wfail(c, "narrative must be a string");
    len = json_string_length(v);
    if (!c->a)
        c->a = core_arena_create();
    div = core_xml_parse(c->a, json_string_value(v), len, &perr);
    if (!div)
        return wfail(c, "narrative is not well-formed XML: %s", perr.msg);
    if (strcmp(div->ns, XHTML_NS) != 0 || strcmp(div->local, "div") != 0 || div->start != 0 ||
        div->end != len)
        return wfail(c, "narrative must be one <div> element in the XHTML namespace");
    core_xml_put(&c->b, json_string_value(v), len);
    return 0;
}

/* All of one element's JSON (s->v and s->comp) as XML elements. */
static int
write_slot(wctx *c, const slot *s)
{
    const xprop *p = s->p;
    const xtype *t = p->type;
    size_t n, i, nv, nc;

    if (t->kind == X_PRIMITIVE && t->value == XV_XHTML)
        return write_div(c, s->v);
    if (t->kind == X_PRIMITIVE && !p->el->repeats) {
        if (json_is_array(s->v) || json_is_array(s->comp))
            return wfail(c, "%s must not be an array", p->name);
        if ((s->v && json_is_null(s->v)) || (s->comp && json_is_null(s->comp)))
            return wfail(c, "%s must not be null", p->name);
        return write_element(c, p->name, NULL, s->comp, c->m->element, 0, s->v, t);
    }
    if (t->kind == X_PRIMITIVE) {
        if ((s->v && !json_is_array(s->v)) || (s->comp && !json_is_array(s->comp)))
            return wfail(c, "%s must be an array", p->name);
        nv = s->v ? json_array_size(s->v) : 0;
        nc = s->comp ? json_array_size(s->comp) : 0;
        if (s->v && s->comp && nv != nc)
            return wfail(c, "_%s must have as many entries as %s", p->name, p->name);
        n = nv > nc ? nv : nc;
        for (i = 0; i < n; i++) {
            const json_t *vi = i < nv ? json_array_get(s->v, i) : NULL;
            const json_t *ci = i < nc ? json_array_get(s->comp, i) : NULL;
            size_t old = core_path_add(&c->path, "[%zu]", i);
            if (json_is_null(vi))
                vi = NULL;
            if (json_is_null(ci))
                ci = NULL;
            if (!vi && !ci)
                return wfail(c, "%s must not be null", p->name);
            if (write_element(c, p->name, NULL, ci, c->m->element, 0, vi, t) < 0)
                return -1;
            core_path_pop(&c->path, old);
        }
        return 0;
    }
    if (p->el->repeats != json_is_array(s->v))
        return wfail(c, "%s must %sbe an array", p->name, p->el->repeats ? "" : "not ");
    n = p->el->repeats ? json_array_size(s->v) : 1;
    for (i = 0; i < n; i++) {
        const json_t *vi = p->el->repeats ? json_array_get(s->v, i) : s->v;
        size_t old = p->el->repeats ? core_path_add(&c->path, "[%zu]", i) : c->path.len;
        if (t->kind == X_ANY_RESOURCE) {
            put(c, "<");
            put(c, p->name);
            put(c, ">");
            if (write_resource(c, vi, 0) < 0)
                return -1;
            put(c, "</");
            put(c, p->name);
            put(c, ">");
        } else if (write_element(c, p->name, NULL, vi, t, 0, NULL, NULL) < 0) {
            return -1;
        }
        core_path_pop(&c->path, old);
    }
    return 0;
}

/* <name decl attributes [value=".."]>children</name> for obj (NULL: nothing but the value) of
 * type t; attributes and children in model order. */
static int
write_element(wctx *c,
              const char *name,
              const char *decl,
              const json_t *obj,
              const xtype *t,
              int is_res,
              const json_t *value,
              const xtype *vt)
{
    size_t base = c->nslots, k;
    const char *key;
    const json_t *v;
    int children = 0, i;

    if (obj && !json_is_object(obj))
        return wfail(c, "%s must be an object", name);
    if (c->cap - c->nslots < (size_t)t->nelems) {
        size_t cap = c->cap ? c->cap : 256;
        slot *s;
        while (cap - c->nslots < (size_t)t->nelems)
            cap *= 2;
        if (!(s = realloc(c->slots, cap * sizeof(slot))))
            return oom(c->err);
        c->slots = s;
        c->cap = cap;
    }
    memset(c->slots + base, 0, (size_t)t->nelems * sizeof(slot));
    c->nslots = base + (size_t)t->nelems;
    json_object_foreach ((json_t *)obj, key, v) {
        int comp = key[0] == '_';
        const xprop *p;
        slot *s;

        if (is_res && strcmp(key, "resourceType") == 0)
            continue;
        p = find_prop(t, comp ? key + 1 : key);
        if (!p ||
            (comp && (p->type->kind != X_PRIMITIVE || p->type->value == XV_XHTML || p->el->attr))) {
            c->nslots = base;
            return wfail(c, "unknown element \"%.64s\" in %s", key, t->name);
        }
        s = &c->slots[base + (size_t)p->el->index];
        if (s->p && s->p != p) {
            c->nslots = base;
            return wfail(c, "only one of %s and %s may be present", s->p->name, p->name);
        }
        s->p = p;
        if (comp)
            s->comp = v;
        else
            s->v = v;
    }
    put(c, "<");
    put(c, name);
    if (decl)
        put(c, decl);
    for (i = 0; i < t->nelems; i++) {
        const slot *s = &c->slots[base + (size_t)i];
        if (!s->p)
            continue;
        if (!s->p->el->attr) {
            children++;
            continue;
        }
        if (!core_json_is_text(s->v)) {
            c->nslots = base;
            return wfail(c, "%s.%s must be a string", name, s->p->name);
        }
        put(c, " ");
        put(c, s->p->name);
        put(c, "=\"");
        if (core_xml_put_attr(&c->b, json_string_value(s->v), json_string_length(s->v)) < 0) {
            c->nslots = base;
            return wfail(c, "%s.%s holds a character XML cannot carry", name, s->p->name);
        }
        put(c, "\"");
    }
    if (value) {
        put(c, " value=\"");
        if (write_value(c, name, value, vt) < 0) {
            c->nslots = base;
            return -1;
        }
        put(c, "\"");
    }
    if (!children) {
        put(c, "/>");
        c->nslots = base;
        return 0;
    }
    put(c, ">");
    for (k = 0; k < (size_t)t->nelems; k++) {
        slot s = c->slots[base + k]; /* copied: the stack may move while writing */
        size_t old;
        if (!s.p || s.p->el->attr)
            continue;
        old = core_path_push(&c->path, s.p->name);
        if (write_slot(c, &s) < 0) {
            c->nslots = base;
            return -1;
        }
        core_path_pop(&c->path, old);
    }
    put(c, "</");
    put(c, name);
    put(c, ">");
    c->nslots = base;
    return 0;
}

static int
write_resource(wctx *c, const json_t *obj, int root)
{
    const json_t *rt = json_object_get(obj, "resourceType");
    const xtype *t = core_json_is_text(rt) ? find_type(c->m, json_string_value(rt)) : NULL;
    size_t old = c->path.len;
    int rc;

    if (!json_is_object(obj))
        return wfail(c, "a resource must be an object");
    if (!t || t->kind != X_RESOURCE)
        return wfail(c, "unknown resource type");
    if (root)
        core_path_push(&c->path, t->name);
    rc = write_element(c, t->name, root ? " xmlns=\"" FHIR_NS "\"" : NULL, obj, t, 1, NULL, NULL);
    if (rc == 0)
        core_path_pop(&c->path, old);
    return rc;
}

char *
reg_xml_dump(const json_t *res, size_t *len_out, core_err *err)
{
    wctx c;
    char *out = NULL;

    memset(&c, 0, sizeof(c));
    if (!(c.m = model(err)))
        return NULL;
    c.err = err;
    put(&c, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    if (write_resource(&c, res, 1) == 0) {
        if (!(out = core_xml_buf_take(&c.b, len_out)))
            oom(err);
    }
    core_xml_buf_clear(&c.b);
    free(c.slots);
    core_arena_destroy(c.a);
    return out;
}
