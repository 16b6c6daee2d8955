/* IHE CSD (Care Services Discovery, namespace urn:ihe:iti:csd:2013) as OpenInfoMan exports it:
 * csd:organization → a jurisdiction, csd:facility → a facility, csd:provider → a Practitioner and
 * one PractitionerRole per facility it works at. The document is read whole into a tree
 * (core/xml.h); organizations go out parents first, so that each finds its parent by entityID. */
#include <stdlib.h>
#include <string.h>

#include "core/xml.h"
#include "importers/imp_int.h"

#define CSD_NS              "urn:ihe:iti:csd:2013"
#define CSD_OTHER_ID        "urn:ihe:iti:csd:2013:otherID:"
#define CSD_CODING_SCHEME   "urn:ihe:iti:csd:2013:codingScheme:"
#define CSD_ROLE_ID         "urn:ihe:iti:csd:2013:provider-facility"
#define CSD_DHIS2_AUTH      "dhis.org:orgid"
#define CSD_STATUS_INACTIVE "106-002"

typedef struct rd {
    imp_ctx *c;
    core_arena *a; /* the tree and the strings read from it, until the end */
    size_t len;    /* bytes of the document */
    long stored;   /* bytes of the file as stored (-1: unknown), for the progress bar */
    long done;     /* entities read, for the progress bar */
} rd;

/* ---- the tree -------------------------------------------------------------------------------- */

static int
is_csd(const core_xml_node *n, const char *local)
{
    return n && n->kind == CORE_XML_ELEMENT && strcmp(n->ns, CSD_NS) == 0 &&
           strcmp(n->local, local) == 0;
}

/* The first csd:local child of el, or NULL. */
static const core_xml_node *
child(const core_xml_node *el, const char *local)
{
    for (const core_xml_node *n = el ? el->first : NULL; n; n = n->next)
        if (is_csd(n, local))
            return n;
    return NULL;
}

/* An unprefixed attribute, trimmed; NULL when absent or blank. */
static const char *
attr(rd *d, const core_xml_node *el, const char *name)
{
    const core_xml_attr *at = el ? core_xml_attr_find(el, "", name) : NULL;
    return at ? imp_cell(d->a, at->value) : NULL;
}

/* The character data directly inside el, trimmed; NULL when there is none. */
static const char *
text(rd *d, const core_xml_node *el)
{
    const core_xml_node *only = NULL;
    size_t n = 0, k = 0;
    int parts = 0;
    for (const core_xml_node *t = el ? el->first : NULL; t; t = t->next)
        if (t->kind == CORE_XML_TEXT) {
            only = t;
            n += t->len;
            parts++;
        }
    if (!parts)
        return NULL;
    if (parts == 1)
        return imp_cell(d->a, only->text);
    /* text split by child elements (mixed content): as one string */
    char *buf = core_arena_alloc(d->a, n + 1);
    for (const core_xml_node *t = el->first; t; t = t->next)
        if (t->kind == CORE_XML_TEXT) {
            memcpy(buf + k, t->text, t->len);
            k += t->len;
        }
    buf[k] = '\0';
    return imp_cell(d->a, buf);
}

/* The entity's id: entityID, or `urn` in the CSD documents written before the 2013 schema
 * settled (the iHRIS Manage export of 2014 has only that). *column: which one. */
static const char *
entity_id(rd *d, const core_xml_node *el, const char **column)
{
    const char *id = attr(d, el, "entityID");
    const char *col = "entityID";
    if (!id) {
        id = attr(d, el, "urn");
        col = "urn";
    }
    if (column)
        *column = col;
    return id;
}

/* prefix + s, with what a URI may not carry (white space, controls, non-ASCII, '%', '|' which
 * token searches split at) percent-encoded: a valid FHIR uri for any authority or scheme name. */
static const char *
uri_with(rd *d, const char *prefix, const char *s)
{
    static const char keep[] = "-._~:/@!$&'()*+,;=";
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(prefix);
    char *out = core_arena_alloc(d->a, n + 3 * strlen(s) + 1);
    memcpy(out, prefix, n);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr(keep, ch)) {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = '\0';
    return out;
}

/* csd:record/@status: 106-002 is inactive; 106-001, anything else or nothing is active. */
static const char *
status_of(rd *d, const core_xml_node *el)
{
    const char *s = attr(d, child(el, "record"), "status");
    return s && strcmp(s, CSD_STATUS_INACTIVE) == 0 ? "inactive" : "active";
}

/* A csd:otherID as an identifier system and value; 0 when it is not usable (reported).
 * places: the DHIS2 organisation unit UID (assigning authority dhis.org:orgid) gets the system
 * DHIS2 imports use, so that both find the same facility; for providers it names no place. */
static int
other_id(const char **system, const char **value, rd *d, const core_xml_node *el, int places)
{
    const char *auth = attr(d, el, "assigningAuthorityName");
    *value = attr(d, el, "code");
    if (!*value || !auth) {
        imp_issue(d->c, el->line, "warning", "otherID", *value ? *value : auth,
                  "invalid-identifier",
                  "csd:otherID needs both code and assigningAuthorityName; this one has %s and "
                  "is ignored",
                  *value ? "no assigningAuthorityName" : "no code");
        return 0;
    }
    *system = places && strcmp(auth, CSD_DHIS2_AUTH) == 0 ? IMP_DHIS2_UID
                                                          : uri_with(d, CSD_OTHER_ID, auth);
    return 1;
}

static void
progress_step(rd *d, const core_xml_node *el)
{
    if ((++d->done & 255) == 0 && d->stored > 0 && d->len > 0)
        imp_progress_bytes(d->c, (long)((double)el->start / (double)d->len * (double)d->stored));
}

/* ---- organizations and facilities --------------------------------------------------------- */

/* An organization (jurisdiction) or facility as a record. Strings: d's arena. */
static void
entity_rec(imp_rec *r, rd *d, const core_xml_node *el, imp_kind kind)
{
    const char *lat = NULL, *lon = NULL, *col;
    int geocode = 0, typed = 0;

    memset(r, 0, sizeof(*r));
    r->line = el->line;
    r->kind = kind;
    r->name_column = "primaryName";
    r->status = status_of(d, el);
    const char *id = entity_id(d, el, &col);
    if (id)
        r->ids[r->nids++] = (imp_ident){ IMP_CSD_ENTITY, id, col };
    for (const core_xml_node *n = el->first; n; n = n->next) {
        const char *sys, *val;
        if (is_csd(n, "otherID")) {
            if (!other_id(&sys, &val, d, n, 1))
                continue;
            if (r->nids == IMP_MAX_IDS) {
                imp_issue(d->c, n->line, "warning", "otherID", val, "too-many-identifiers",
                          "only %d identifiers are kept per record; this one is ignored",
                          IMP_MAX_IDS);
                continue;
            }
            r->ids[r->nids++] = (imp_ident){ sys, val, "otherID" };
        } else if (is_csd(n, "primaryName") && !r->name) {
            r->name = text(d, n);
        } else if (kind == IMP_REC_JURISDICTION && is_csd(n, "parent") && !r->parent_value) {
            r->parent_value = entity_id(d, n, NULL);
        } else if (kind == IMP_REC_FACILITY && is_csd(n, "organizations") && !r->parent_value) {
            /* the first organization the facility belongs to is where it sits in the tree */
            r->parent_value = entity_id(d, child(n, "organization"), NULL);
        } else if (kind == IMP_REC_FACILITY && is_csd(n, "codedType") && !typed) {
            const char *scheme = attr(d, n, "codingScheme");
            typed = 1;
            r->type_code = attr(d, n, "code");
            if (r->type_code) {
                r->type_system = scheme ? uri_with(d, CSD_CODING_SCHEME, scheme) : IMP_TYPE_LOCAL;
                r->type_display = text(d, n);
            }
        } else if (kind == IMP_REC_FACILITY && is_csd(n, "geocode") && !geocode) {
            geocode = 1;
            lat = text(d, child(n, "latitude"));
            lon = text(d, child(n, "longitude"));
        }
    }
    if (r->parent_value)
        r->parent_system = IMP_CSD_ENTITY;
    if (!r->nids) {
        imp_issue(d->c, r->line, "error", "entityID", NULL, "missing-identifier",
                  "the %s has no entityID (nor urn, nor csd:otherID); re-imports could not find "
                  "it again",
                  kind == IMP_REC_FACILITY ? "facility" : "organization");
        r->rejected = 1;
    }
    /* as written: where latitude and longitude are swapped (OpenInfoMan-DHIS 2015), the engine
     * finds out against the boundaries and reports it (--fix-swapped stores them turned) */
    if (geocode)
        imp_rec_position(d->c, r, lat, lon, NULL, 0, "geocode");
}

typedef struct org {
    const core_xml_node *el;
    const char *id; /* entityID, or NULL */
    int parent;     /* index of the parent in the file, or -1 */
    int depth;      /* from the top of the file's tree; -1 unknown, -2 being walked */
    int cycle;      /* 1: its csd:parent chain comes back to it */
} org;

static int
by_depth(const void *pa, const void *pb)
{
    const org *a = *(const org *const *)pa, *b = *(const org *const *)pb;
    if (a->depth != b->depth)
        return a->depth < b->depth ? -1 : 1;
    return a->el->start < b->el->start ? -1 : a->el->start > b->el->start;
}

/* Depth of every organization in its csd:parent tree (a parent outside the file counts as the
 * top), walking each chain upwards once, without recursion (chains may be long). Members of a
 * cycle are marked; what hangs below a cycle starts a tree of its own. */
static void
depths(org *o, int n, int *chain)
{
    for (int i = 0; i < n; i++) {
        int k = 0, j = i, base;
        if (o[i].depth != -1)
            continue;
        while (j >= 0 && o[j].depth == -1) {
            o[j].depth = -2;
            chain[k++] = j;
            j = o[j].parent;
        }
        if (j >= 0 && o[j].depth == -2) {
            /* j is on this chain: from j up to the chain's end is the cycle */
            int p = k - 1;
            while (chain[p] != j)
                p--;
            for (int q = p; q < k; q++) {
                o[chain[q]].cycle = 1;
                o[chain[q]].depth = 0;
            }
            k = p;
            base = -1;
        } else {
            base = j >= 0 && !o[j].cycle ? o[j].depth : -1;
        }
        while (k-- > 0)
            o[chain[k]].depth = ++base;
    }
}

/* The organizations, level by level from the top (in document order within a level), so that
 * each parent is written before its children and the engine flushes once per level. Their lines
 * are then not in file order, but the order depends on the file alone: a re-run and --resume
 * (which counts records, not lines) see the same sequence. */
static int
organizations(rd *d, const core_xml_node *root, core_err *err)
{
    int n = 0, i = 0, rc = -1;
    json_t *index = json_object(); /* entityID → the first organization carrying it */

    for (const core_xml_node *dir = root->first; dir; dir = dir->next)
        if (is_csd(dir, "organizationDirectory"))
            for (const core_xml_node *e = dir->first; e; e = e->next)
                n += is_csd(e, "organization");
    org *o = core_arena_alloc(d->a, (size_t)n * sizeof(*o) + 1);
    org **order = core_arena_alloc(d->a, (size_t)n * sizeof(*order) + 1);
    int *chain = core_arena_alloc(d->a, (size_t)n * sizeof(*chain) + 1);
    for (const core_xml_node *dir = root->first; dir; dir = dir->next)
        if (is_csd(dir, "organizationDirectory"))
            for (const core_xml_node *e = dir->first; e; e = e->next)
                if (is_csd(e, "organization")) {
                    o[i] = (org){ e, entity_id(d, e, NULL), -1, -1, 0 };
                    if (o[i].id && !json_object_get(index, o[i].id))
                        json_object_set_new(index, o[i].id, json_integer(i));
                    i++;
                }
    for (i = 0; i < n; i++) {
        const char *p = entity_id(d, child(o[i].el, "parent"), NULL);
        json_t *k = p ? json_object_get(index, p) : NULL;
        o[i].parent = k ? (int)json_integer_value(k) : -1;
    }
    depths(o, n, chain);
    /* a repeated entityID goes no earlier than the first carrying it, so that the engine keeps
     * the first in document order and reports the others as duplicates */
    for (i = 0; i < n; i++) {
        json_t *k = o[i].id ? json_object_get(index, o[i].id) : NULL;
        int first = k ? (int)json_integer_value(k) : i;
        if (first != i && o[i].depth < o[first].depth)
            o[i].depth = o[first].depth;
    }
    for (i = 0; i < n; i++)
        order[i] = &o[i];
    qsort(order, (size_t)n, sizeof(*order), by_depth);
    for (i = 0; i < n; i++) {
        const org *g = order[i];
        imp_rec r;
        progress_step(d, g->el);
        if (g->cycle) {
            const char *p = entity_id(d, child(g->el, "parent"), NULL);
            if (o[g->parent].el == g->el)
                imp_issue(d->c, g->el->line, "error", "parent", p, "cycle",
                          "organization \"%s\" is its own csd:parent; it is not imported", p);
            else
                imp_issue(d->c, g->el->line, "error", "parent", p, "cycle",
                          "the csd:parent chain of organization \"%s\" comes back to it; it is "
                          "not imported (nor are the other organizations of the cycle)",
                          g->id ? g->id : "(no entityID)");
            imp_reject_row(d->c, g->el->line);
            continue;
        }
        entity_rec(&r, d, g->el, IMP_REC_JURISDICTION);
        if (imp_emit(d->c, &r, err) < 0)
            goto done;
    }
    rc = 0;
done:
    json_decref(index);
    return rc;
}

static int
facilities(rd *d, const core_xml_node *root, core_err *err)
{
    for (const core_xml_node *dir = root->first; dir; dir = dir->next) {
        if (!is_csd(dir, "facilityDirectory"))
            continue;
        for (const core_xml_node *e = dir->first; e; e = e->next) {
            imp_rec r;
            if (!is_csd(e, "facility"))
                continue;
            progress_step(d, e);
            entity_rec(&r, d, e, IMP_REC_FACILITY);
            if (imp_emit(d->c, &r, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* ---- providers ------------------------------------------------------------------------------ */

/* {"system": system, "value": value} (new) */
static json_t *
identifier(const char *system, const char *value)
{
    return json_pack("{s:s,s:s}", "system", system, "value", value);
}

/* A logical reference (imp_emit_resource resolves it to the live resource). */
static json_t *
logical(const char *type, const char *system, const char *value)
{
    return json_pack("{s:s,s:o}", "type", type, "identifier", identifier(system, value));
}

/* A DHIS2 UID: 11 letters and digits, the first a letter. */
static int
dhis2_uid(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++) {
        char ch = s[i];
        int letter = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
        if (!letter && (i == 0 || ch < '0' || ch > '9'))
            return 0;
    }
    return i == 11;
}

/* The Location a provider's facility link names. OpenInfoMan-DHIS named facilities
 * "urn:dhis.org:<instance>:csd:facility:<DHIS2 UID>" in 2014 (the iHRIS Manage provider export
 * links to those); later exports of the same facilities have urn:uuid entityIDs and keep the UID
 * in csd:otherID dhis.org:orgid, so for such a link the UID finds the facility. */
static json_t *
facility_ref(const char *fid)
{
    const char *last = strrchr(fid, ':');
    if (strncmp(fid, "urn:dhis.org:", 13) == 0 && last && dhis2_uid(last + 1))
        return logical("Location", IMP_DHIS2_UID, last + 1);
    return logical("Location", IMP_CSD_ENTITY, fid);
}

/* csd:name → HumanName (new), or NULL when it holds no name. */
static json_t *
human_name(rd *d, const core_xml_node *nm)
{
    json_t *hn = json_object(), *given = json_array(), *prefix = json_array(),
           *suffix = json_array();
    for (const core_xml_node *n = nm->first; n; n = n->next) {
        const char *t = n->kind == CORE_XML_ELEMENT ? text(d, n) : NULL;
        if (!t)
            continue;
        if (is_csd(n, "commonName") && !json_object_get(hn, "text"))
            json_object_set_new(hn, "text", json_string(t));
        else if (is_csd(n, "surname") && !json_object_get(hn, "family"))
            json_object_set_new(hn, "family", json_string(t));
        else if (is_csd(n, "forename"))
            json_array_append_new(given, json_string(t));
        else if (is_csd(n, "honorific"))
            json_array_append_new(prefix, json_string(t));
        else if (is_csd(n, "suffix"))
            json_array_append_new(suffix, json_string(t));
    }
    if (json_array_size(given))
        json_object_set(hn, "given", given);
    if (json_array_size(prefix))
        json_object_set(hn, "prefix", prefix);
    if (json_array_size(suffix))
        json_object_set(hn, "suffix", suffix);
    json_decref(given);
    json_decref(prefix);
    json_decref(suffix);
    if (!json_object_size(hn)) {
        json_decref(hn);
        return NULL;
    }
    return hn;
}

/* csd:gender → administrative-gender, or NULL. */
static const char *
gender(const char *g)
{
    if (!g)
        return NULL;
    if (strcmp(g, "M") == 0 || strcmp(g, "m") == 0 || strcmp(g, "male") == 0 ||
        strcmp(g, "Male") == 0 || strcmp(g, "MALE") == 0)
        return "male";
    if (strcmp(g, "F") == 0 || strcmp(g, "f") == 0 || strcmp(g, "female") == 0 ||
        strcmp(g, "Female") == 0 || strcmp(g, "FEMALE") == 0)
        return "female";
    return NULL;
}

/* A provider: its Practitioner, then a PractitionerRole per csd:facilities/csd:facility. */
static int
provider(rd *d, const core_xml_node *el, core_err *err)
{
    const char *pid = entity_id(d, el, NULL);
    int active = strcmp(status_of(d, el), "active") == 0, nids = 1;
    json_t *prac, *ids, *names = json_array(), *codes = json_array();
    const core_xml_node *demo = child(el, "demographic");

    if (!pid) {
        imp_issue(d->c, el->line, "error", "entityID", NULL, "missing-identifier",
                  "the provider has neither an entityID nor a urn attribute; re-imports could "
                  "not find it again");
        imp_reject_row(d->c, el->line);
        json_decref(names);
        json_decref(codes);
        return 0;
    }
    ids = json_pack("[o]", identifier(IMP_CSD_ENTITY, pid));
    for (const core_xml_node *n = el->first; n; n = n->next) {
        const char *sys, *val;
        if (is_csd(n, "otherID") && other_id(&sys, &val, d, n, 0)) {
            if (nids == IMP_MAX_IDS) {
                imp_issue(d->c, n->line, "warning", "otherID", val, "too-many-identifiers",
                          "only %d identifiers are kept per record; this one is ignored",
                          IMP_MAX_IDS);
                continue;
            }
            json_array_append_new(ids, identifier(sys, val));
            nids++;
        } else if (is_csd(n, "codedType")) {
            const char *code = attr(d, n, "code"), *scheme = attr(d, n, "codingScheme");
            const char *display = text(d, n);
            if (!code)
                continue;
            json_t *coding = json_pack("{s:s}", "code", code);
            if (scheme)
                json_object_set_new(coding, "system",
                                    json_string(uri_with(d, CSD_CODING_SCHEME, scheme)));
            if (display)
                json_object_set_new(coding, "display", json_string(display));
            json_array_append_new(codes, json_pack("{s:[o]}", "coding", coding));
        }
    }
    for (const core_xml_node *n = demo ? demo->first : NULL; n; n = n->next) {
        json_t *hn;
        if (is_csd(n, "name") && (hn = human_name(d, n)))
            json_array_append_new(names, hn);
    }
    prac = json_pack("{s:s,s:o,s:b}", "resourceType", "Practitioner", "identifier", ids, "active",
                     active);
    if (json_array_size(names))
        json_object_set(prac, "name", names);
    const char *g = text(d, child(demo, "gender"));
    if (gender(g))
        json_object_set_new(prac, "gender", json_string(gender(g)));
    else if (g)
        imp_issue(d->c, child(demo, "gender")->line, "warning", "gender", g, "unknown-gender",
                  "gender \"%s\" is not one of M, F, male, female; the Practitioner is kept "
                  "without a gender",
                  g);
    json_decref(names);
    if (imp_emit_resource(d->c, el->line, REG_PRACTITIONER, prac, err) < 0) {
        json_decref(codes);
        return -1;
    }
    for (const core_xml_node *fs = el->first; fs; fs = fs->next) {
        if (!is_csd(fs, "facilities"))
            continue;
        for (const core_xml_node *f = fs->first; f; f = f->next) {
            const char *fid;
            if (!is_csd(f, "facility"))
                continue;
            if (!(fid = entity_id(d, f, NULL))) {
                imp_issue(d->c, f->line, "warning", "facility", NULL, "missing-identifier",
                          "the facility link has neither an entityID nor a urn attribute; it "
                          "is ignored");
                continue;
            }
            json_t *role = json_pack(
                "{s:s,s:[o],s:b,s:o,s:[o]}", "resourceType", "PractitionerRole", "identifier",
                identifier(CSD_ROLE_ID, core_arena_sprintf(d->a, "%s|%s", pid, fid)), "active",
                active, "practitioner", logical("Practitioner", IMP_CSD_ENTITY, pid), "location",
                facility_ref(fid));
            if (json_array_size(codes))
                json_object_set_new(role, "code", json_deep_copy(codes));
            if (imp_emit_resource(d->c, f->line, REG_PRACTITIONERROLE, role, err) < 0) {
                json_decref(codes);
                return -1;
            }
        }
    }
    json_decref(codes);
    return 0;
}

static int
providers(rd *d, const core_xml_node *root, core_err *err)
{
    for (const core_xml_node *dir = root->first; dir; dir = dir->next) {
        if (!is_csd(dir, "providerDirectory"))
            continue;
        for (const core_xml_node *e = dir->first; e; e = e->next) {
            if (!is_csd(e, "provider"))
                continue;
            progress_step(d, e);
            if (provider(d, e, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* ---- the document -----------------------------------------------------------------------------
 */

int
imp_read_csd(imp_ctx *c, FILE *f, core_err *err)
{
    char *buf = NULL;
    size_t len;
    const core_xml_node *root;
    rd d;
    int rc = -1;

    if (imp_slurp(&buf, &len, f, err) < 0)
        return -1;
    memset(&d, 0, sizeof(d));
    d.c = c;
    d.a = core_arena_create();
    d.len = len;
    d.stored = ftell(f); /* -1 for a .gz file (a pipe) */
    root = core_xml_parse(d.a, buf, len, err);
    free(buf); /* the tree holds copies */
    if (!root)
        goto done;
    if (!is_csd(root, "CSD")) {
        core_err_set(err, 400, CORE_ISSUE_STRUCTURE,
                     "not an IHE CSD document: the root element is \"%.60s\" in %s%.80s%s, "
                     "expected CSD in namespace \"" CSD_NS "\"",
                     root->local, *root->ns ? "namespace \"" : "no namespace", root->ns,
                     *root->ns ? "\"" : "");
        goto done;
    }
    /* parents before children: jurisdictions, then the facilities in them, then who works there */
    if (organizations(&d, root, err) < 0 || facilities(&d, root, err) < 0 ||
        providers(&d, root, err) < 0)
        goto done;
    rc = 0;
done:
    core_arena_destroy(d.a);
    return rc;
}
