/* The versioned store: every write is one call of the SQL function mahali_write (resource,
 * history and audit in one transaction, optimistic lock on the version); reads come from the
 * current partition or from history. Contents travel as JSON text; numbers keep their exact
 * text both ways (jsonb keeps numeric scale, core_json keeps number literals). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry_int.h"

static const char *const type_names[REG_NTYPES] = {
    [REG_ORGANIZATION] = "Organization",
    [REG_LOCATION] = "Location",
    [REG_HEALTHCARESERVICE] = "HealthcareService",
    [REG_PRACTITIONER] = "Practitioner",
    [REG_PRACTITIONERROLE] = "PractitionerRole",
    [REG_ENDPOINT] = "Endpoint",
    [REG_ORGANIZATIONAFFILIATION] = "OrganizationAffiliation",
};

const char *
reg_type_name(reg_type t)
{
    return (unsigned)t < REG_NTYPES ? type_names[t] : "";
}

int
reg_type_find(const char *name)
{
    for (int i = 0; i < REG_NTYPES; i++)
        if (strcmp(type_names[i], name) == 0)
            return i;
    return -1;
}

int
reg_type_is_personal(reg_type t)
{
    return t == REG_PRACTITIONER || t == REG_PRACTITIONERROLE;
}

int
reg_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.'))
            return 0;
    }
    return n >= 1 && n <= 64;
}

void
reg_write_clear(reg_write *out)
{
    json_decref(out->resource);
    memset(out, 0, sizeof(*out));
}

static const core_stmt ST_WRITE = {
    "reg_write",
    "SELECT o_version, o_instant, o_created, o_noop FROM mahali_write($1, $2, $3, $4::jsonb, "
    "$5::integer, $6, $7, $8::jsonb)",
    8
};
static const core_stmt ST_READ = {
    "reg_read",
    "SELECT version, to_char(last_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    " deleted, content::text FROM resource WHERE rtype = $1 AND id = $2",
    2
};
static const core_stmt ST_VREAD = {
    "reg_vread",
    "SELECT method, to_char(last_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
    " content::text FROM resource_history WHERE rtype = $1 AND id = $2 AND version = $3",
    3
};

/* $1 since (or NULL), $2 paging cursor (0 = newest), $3 limit, $4 feed horizon, $5 type, $6 id */
#define HISTORY_COLS                                                                          \
    "SELECT seq, rtype, id, version,"                                                         \
    " to_char(last_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), method," \
    " content::text, status FROM resource_history WHERE last_updated <= $4::timestamptz"      \
    " AND ($1::timestamptz IS NULL OR last_updated >= $1::timestamptz)"                       \
    " AND ($2::bigint = 0 OR seq < $2::bigint)"
static const core_stmt ST_HORIZON = { "reg_feed_horizon", "SELECT mahali_feed_horizon()", 0 };
static const core_stmt ST_NOW = {
    "reg_feed_now",
    "SELECT to_char(date_trunc('milliseconds', clock_timestamp()) AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
    0
};
static const core_stmt ST_HISTORY_SYSTEM = { "reg_history_system",
                                             HISTORY_COLS " ORDER BY seq DESC LIMIT $3::int", 4 };
static const core_stmt ST_HISTORY_TYPE = {
    "reg_history_type", HISTORY_COLS " AND rtype = $5 ORDER BY seq DESC LIMIT $3::int", 5
};
static const core_stmt ST_HISTORY_INSTANCE = {
    "reg_history_instance",
    HISTORY_COLS " AND rtype = $5 AND id = $6 ORDER BY seq DESC LIMIT $3::int", 6
};

/* Map the store's own SQLSTATEs (raised by mahali_write) onto err. */
int
reg__store_err(core_err *err, core_db *db, reg_type t, const char *id, int if_match)
{
    const char *st = core_db_sqlstate(db);
    if (strcmp(st, "MH404") == 0)
        return core_err_set(err, 404, CORE_ISSUE_NOT_FOUND, "%s \"%s\" does not exist",
                            reg_type_name(t), id);
    if (strcmp(st, "MH409") == 0)
        return core_err_set(err, 409, CORE_ISSUE_DUPLICATE, "%s \"%s\" exists already",
                            reg_type_name(t), id);
    if (strcmp(st, "MH422") == 0)
        return core_err_set(err, 422, CORE_ISSUE_NOT_FOUND, "%s", core_db_errmsg(db));
    if (strcmp(st, "MH423") == 0)
        return core_err_set(err, 422, CORE_ISSUE_BUSINESS_RULE, "%s", core_db_errmsg(db));
    if (strcmp(st, "MH424") == 0)
        return core_err_set(err, 409, CORE_ISSUE_CONFLICT, "%s", core_db_errmsg(db));
    if (strcmp(st, "23505") == 0)
        return core_err_set(err, 409, CORE_ISSUE_DUPLICATE,
                            "an identifier of this %s (same system and value) already belongs "
                            "to another %s",
                            reg_type_name(t), reg_type_name(t));
    if (strcmp(st, "MH412") == 0)
        return core_err_set(err, 412, CORE_ISSUE_CONFLICT,
                            "%s \"%s\" is not at version %d (If-Match); read it again and retry",
                            reg_type_name(t), id, if_match);
    return -1; /* err already set by core_db_exec */
}

/* Put resourceType, id and meta first, as people expect to read them; jsonb sorts keys. */
json_t *
reg__reorder(json_t *src)
{
    static const char *const first[] = { "resourceType", "id", "meta" };
    json_t *dst = json_object();
    const char *k;
    json_t *v;

    if (!dst)
        return NULL;
    for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++)
        if ((v = json_object_get(src, first[i])))
            json_object_set(dst, first[i], v);
    json_object_foreach (src, k, v) {
        if (!json_object_get(dst, k))
            json_object_set(dst, k, v);
    }
    json_decref(src);
    return dst;
}

static json_t *
parse_stored(const char *text, core_err *err)
{
    json_t *j = core_json_parse(text, strlen(text), err);
    if (!j) {
        core_log(CORE_LOG_ERROR, "stored content does not parse: %s", err->msg);
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "stored content is damaged");
        return NULL;
    }
    return reg__reorder(j);
}

void
reg__stamp(json_t *res, const char *id, int version, const char *instant)
{
    json_t *meta = json_object_get(res, "meta");
    char v[16];

    snprintf(v, sizeof(v), "%d", version);
    json_object_set_new(res, "id", json_string(id));
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(res, "meta", meta);
    }
    json_object_set_new(meta, "versionId", json_string(v));
    json_object_set_new(meta, "lastUpdated", json_string(instant));
}

int
reg__body_texts(char **text,
                char **index,
                char parent[65],
                json_t *res,
                reg_type t,
                const char *id,
                core_err *err)
{
    json_t *meta = json_object_get(res, "meta"), *idx, *e;
    size_t k;

    json_object_set_new(res, "id", json_string(id));
    /* the server owns versionId and lastUpdated: a client's values are dropped */
    if (json_is_object(meta)) {
        json_object_del(meta, "versionId");
        json_object_del(meta, "lastUpdated");
    }
    idx = reg_index_build(res, (int)t);
    if (parent) {
        /* the partof parent of the same type (the closure is kept from it); the least id if
         * there were several */
        parent[0] = '\0';
        json_array_foreach (idx, k, e) {
            const char *p = json_string_value(json_object_get(e, "p"));
            const char *kind = json_string_value(json_object_get(e, "k"));
            const char *rt = json_string_value(json_object_get(e, "rt"));
            const char *ri = json_string_value(json_object_get(e, "ri"));
            if (p && kind && rt && ri && !strcmp(p, "partof") && !strcmp(kind, "r") &&
                !strcmp(rt, reg_type_name(t)) && reg_id_valid(ri) &&
                (!parent[0] || strcmp(ri, parent) < 0))
                core_strlcpy(parent, ri, 65);
        }
    }
    *text = core_json_dump(res, NULL);
    *index = core_json_dump(idx, NULL);
    json_decref(idx);
    if (!*text || !*index) {
        free(*text);
        free(*index);
        *text = *index = NULL;
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory");
    }
    return 0;
}

int
reg__write_row(reg_write *out,
               core_db *db,
               reg_type t,
               const char *id,
               const char *mode,
               json_t *res,
               int if_match,
               const reg_actor *who,
               core_err *err)
{
    char ifm[16], *text = NULL, *index = NULL;
    const char *params[8];
    PGresult *r;

    memset(out, 0, sizeof(*out));
    core_strlcpy(out->id, id, sizeof(out->id));
    if (res && reg__body_texts(&text, &index, NULL, res, t, id, err) < 0)
        return -1;
    snprintf(ifm, sizeof(ifm), "%d", if_match);
    params[0] = reg_type_name(t);
    params[1] = id;
    params[2] = mode;
    params[3] = text;
    params[4] = if_match > 0 ? ifm : NULL;
    params[5] = who && who->name ? who->name : "system";
    params[6] = who ? who->remote_addr : NULL;
    params[7] = index;
    r = core_db_exec(db, &ST_WRITE, params, err);
    free(text);
    free(index);
    if (!r)
        return reg__store_err(err, db, t, id, if_match);
    out->version = atoi(PQgetvalue(r, 0, 0));
    core_strlcpy(out->last_updated, PQgetvalue(r, 0, 1), sizeof(out->last_updated));
    out->created = PQgetvalue(r, 0, 2)[0] == 't';
    out->noop = PQgetvalue(r, 0, 3)[0] == 't';
    PQclear(r);
    if (res) {
        reg__stamp(res, id, out->version, out->last_updated);
        out->resource = reg__reorder(json_incref(res));
    }
    return 0;
}

/* This thread's GEOS context: registry functions run on whatever thread calls them (a civetweb
 * worker, the CLI), so the context is thread-local and freed by reg_thread_cleanup. */
static _Thread_local geo_ctx *thread_geo;

geo_ctx *
reg__geo(void)
{
    if (!thread_geo && !(thread_geo = geo_ctx_create()))
        abort(); /* GEOS could not allocate: out of memory */
    return thread_geo;
}

void
reg_thread_cleanup(void)
{
    geo_ctx_free(thread_geo);
    thread_geo = NULL;
    geo_crs_thread_cleanup();
}

/* Validate every boundary extension of a Location with GEOS; repair in place when asked. */
static int
check_boundaries(json_t *res, const reg_actor *who, core_err *err)
{
    json_t *exts = json_object_get(res, "extension"), *ext;
    size_t i;

    json_array_foreach (exts, i, ext) {
        json_t *att = json_object_get(ext, "valueAttachment"), *data;
        const char *url = json_string_value(json_object_get(ext, "url"));
        geo_boundary_opts o = GEO_BOUNDARY_OPTS_INIT;
        geo_boundary *b = NULL;

        if (!url || strcmp(url, GEO_BOUNDARY_URL) != 0 ||
            !core_json_is_text(data = json_object_get(att, "data")))
            continue;
        o.repair = who && who->repair_boundaries;
        o.ext_index = (int)i;
        if (geo_boundary_parse(&b, reg__geo(), json_string_value(data), json_string_length(data),
                               &o, err) < 0)
            return -1;
        if (geo_boundary_repair_reason(b) || geo_boundary_source_epsg(b)) {
            /* store what was repaired or converted, so that what is kept is what is indexed */
            char *gj = NULL, *b64;
            size_t len = 0, cap;
            if ((geo_boundary_source_epsg(b) && reg__crs_boundary_source(res, att, err) < 0) ||
                geo_boundary_geojson(&gj, &len, reg__geo(), b, err) < 0) {
                geo_boundary_free(reg__geo(), b);
                return -1;
            }
            cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
            b64 = malloc(cap);
            if (!b64)
                abort();
            sodium_bin2base64(b64, cap, (const unsigned char *)gj, len,
                              sodium_base64_VARIANT_ORIGINAL);
            json_object_set_new(att, "data", json_string(b64));
            free(b64);
            free(gj);
        }
        geo_boundary_free(reg__geo(), b);
    }
    return 0;
}

/* Remove the members whose value is an empty array, at any depth. FHIR forbids them, but they
 * say nothing (an element with no values is an element absent), and HR systems send them on
 * every record (iHRIS: "telecom": [], "address": []): refusing each such record would keep a
 * whole registry of health workers out for no information. */
static void
drop_empty_arrays(json_t *v)
{
    const char *key;
    json_t *m;
    void *tmp;
    size_t i;

    if (json_is_array(v)) {
        json_array_foreach (v, i, m)
            drop_empty_arrays(m);
        return;
    }
    if (!json_is_object(v))
        return;
    json_object_foreach_safe (v, tmp, key, m) {
        if (json_is_array(m) && json_array_size(m) == 0)
            json_object_del(v, key);
        else
            drop_empty_arrays(m);
    }
}

int
reg__check_body(json_t *res, reg_type t, const reg_actor *who, core_err *err)
{
    if (!json_is_object(res))
        return core_err_set(err, 400, CORE_ISSUE_STRUCTURE, "the body must be a JSON object");
    drop_empty_arrays(res);
    if (t == REG_LOCATION && reg__crs_position(res, err) < 0)
        return -1;
    if (reg_validate(res, reg_type_name(t), err) < 0)
        return -1;
    return t == REG_LOCATION ? check_boundaries(res, who, err) : 0;
}

void
reg__new_id(char out[40])
{
    unsigned char b[16];
    /* a random UUID (version 4): unguessable, no coordination needed */
    core_random(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

int
reg__in_tx(core_db *db)
{
    core_err e = CORE_ERR_INIT;
    PGconn *c = core_db_conn(db, &e);
    return c && PQtransactionStatus(c) != PQTRANS_IDLE;
}

int
reg_create(
    reg_write *out, core_db *db, reg_type t, json_t *res, const reg_actor *who, core_err *err)
{
    char id[40];

    /* the server assigns the id of a created resource; a client's id is ignored (R4 3.1.0.4) */
    if (json_is_object(res))
        json_object_del(res, "id");
    if (reg__check_body(res, t, who, err) < 0)
        return -1;
    reg__new_id(id);
    return reg__write_row(out, db, t, id, "create", res, 0, who, err);
}

/* "Location.id": the FHIRPath of a type's id element, for error messages. */
static const char *
id_path(reg_type t)
{
    static const char *const paths[REG_NTYPES] = {
        [REG_ORGANIZATION] = "Organization.id",
        [REG_LOCATION] = "Location.id",
        [REG_HEALTHCARESERVICE] = "HealthcareService.id",
        [REG_PRACTITIONER] = "Practitioner.id",
        [REG_PRACTITIONERROLE] = "PractitionerRole.id",
        [REG_ENDPOINT] = "Endpoint.id",
        [REG_ORGANIZATIONAFFILIATION] = "OrganizationAffiliation.id",
    };
    return (unsigned)t < REG_NTYPES ? paths[t] : "id";
}

int
reg_update(reg_write *out,
           core_db *db,
           reg_type t,
           const char *id,
           json_t *res,
           int if_match,
           const reg_actor *who,
           core_err *err)
{
    json_t *body_id;

    if (!reg_id_valid(id))
        return core_err_set_at(err, 400, CORE_ISSUE_VALUE, id_path(t),
                               "id \"%.64s\" is not valid: use 1 to 64 letters, digits, '-' or '.'",
                               id);
    if (reg__check_body(res, t, who, err) < 0)
        return -1;
    body_id = json_object_get(res, "id");
    if (!body_id)
        return core_err_set_at(err, 400, CORE_ISSUE_REQUIRED, id_path(t),
                               "the resource must carry its id (\"%s\") in an update", id);
    if (!json_is_string(body_id) || strcmp(json_string_value(body_id), id) != 0)
        return core_err_set_at(err, 400, CORE_ISSUE_INVALID, id_path(t),
                               "the resource id does not match the id in the URL (\"%s\")", id);
    return reg__write_row(out, db, t, id, "update", res, if_match, who, err);
}

int
reg_delete(reg_write *out,
           core_db *db,
           reg_type t,
           const char *id,
           int if_match,
           const reg_actor *who,
           core_err *err)
{
    if (!reg_id_valid(id))
        return core_err_set(err, 404, CORE_ISSUE_NOT_FOUND, "%s \"%.64s\" does not exist",
                            reg_type_name(t), id);
    return reg__write_row(out, db, t, id, "delete", NULL, if_match, who, err);
}

int
reg_read(json_t **out,
         int *version,
         char last_updated[32],
         core_db *db,
         reg_type t,
         const char *id,
         core_err *err)
{
    const char *params[2] = { reg_type_name(t), id };
    PGresult *r;

    *out = NULL;
    if (!reg_id_valid(id))
        return core_err_set(err, 404, CORE_ISSUE_NOT_FOUND, "%s \"%.64s\" does not exist",
                            reg_type_name(t), id);
    if (!(r = core_db_exec(db, &ST_READ, params, err)))
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return core_err_set(err, 404, CORE_ISSUE_NOT_FOUND, "%s \"%s\" does not exist",
                            reg_type_name(t), id);
    }
    if (PQgetvalue(r, 0, 2)[0] == 't') {
        PQclear(r);
        return core_err_set(err, 410, CORE_ISSUE_DELETED, "%s \"%s\" was deleted", reg_type_name(t),
                            id);
    }
    if (version)
        *version = atoi(PQgetvalue(r, 0, 0));
    if (last_updated)
        core_strlcpy(last_updated, PQgetvalue(r, 0, 1), 32);
    *out = parse_stored(PQgetvalue(r, 0, 3), err);
    PQclear(r);
    return *out ? 0 : -1;
}

int
reg_vread(json_t **out,
          char last_updated[32],
          core_db *db,
          reg_type t,
          const char *id,
          int version,
          core_err *err)
{
    char v[16];
    const char *params[3] = { reg_type_name(t), id, v };
    PGresult *r;

    *out = NULL;
    snprintf(v, sizeof(v), "%d", version);
    if (!reg_id_valid(id) || version < 1)
        return core_err_set(err, 404, CORE_ISSUE_NOT_FOUND, "%s \"%.64s\" has no version %d",
                            reg_type_name(t), id, version);
    if (!(r = core_db_exec(db, &ST_VREAD, params, err)))
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return core_err_set(err, 404, CORE_ISSUE_NOT_FOUND, "%s \"%s\" has no version %d",
                            reg_type_name(t), id, version);
    }
    if (strcmp(PQgetvalue(r, 0, 0), "DELETE") == 0) {
        PQclear(r);
        return core_err_set(err, 410, CORE_ISSUE_DELETED, "version %d of %s \"%s\" is a deletion",
                            version, reg_type_name(t), id);
    }
    if (last_updated)
        core_strlcpy(last_updated, PQgetvalue(r, 0, 1), 32);
    *out = parse_stored(PQgetvalue(r, 0, 2), err);
    PQclear(r);
    return *out ? 0 : -1;
}

/* Stored JSON text (jsonb's output: keys ordered by length) with its top-level "resourceType"
 * member moved first, as clients expect it, without parsing it: one pass that tracks strings
 * and depth. Returns a malloc'd copy. */
static char *
type_first(const char *text, size_t len)
{
    static const char key[] = "\"resourceType\"";
    const char *p = text, *end = text + len, *m_start = NULL, *m_end = NULL;
    int depth = 0;
    char *out;

    while (p < end && !m_start) {
        char c = *p;
        if (c == '"') {
            const char *s = p++;
            while (p < end && *p != '"')
                p += *p == '\\' ? 2 : 1;
            p++;
            if (depth == 1 && (size_t)(p - s) == sizeof(key) - 1 &&
                memcmp(s, key, sizeof(key) - 1) == 0) {
                /* the member: "resourceType": "X" */
                const char *v = p;
                while (v < end && (*v == ':' || *v == ' '))
                    v++;
                if (v < end && *v == '"') {
                    v++;
                    while (v < end && *v != '"')
                        v += *v == '\\' ? 2 : 1;
                    m_start = s;
                    m_end = v < end ? v + 1 : end;
                }
            }
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if (c == '}' || c == ']')
            depth--;
        p++;
    }
    if (!(out = malloc(len + 3)))
        abort();
    if (!m_start || m_start == text + 1) {
        memcpy(out, text, len + 1);
        return out;
    }
    {
        /* {A, "resourceType": "X", B} → {"resourceType": "X", A, B} */
        size_t mlen = (size_t)(m_end - m_start), n = 0, alen;
        const char *a_end = m_start, *after = m_end;
        while (a_end > text + 1 && (a_end[-1] == ' ' || a_end[-1] == ','))
            a_end--;
        while (after < end && (*after == ' ' || *after == ','))
            after++;
        alen = (size_t)(a_end - (text + 1));
        out[n++] = '{';
        memcpy(out + n, m_start, mlen);
        n += mlen;
        memcpy(out + n, ", ", 2);
        n += 2;
        memcpy(out + n, text + 1, alen);
        n += alen;
        if (after < end && *after != '}') {
            memcpy(out + n, ", ", 2);
            n += 2;
        }
        memcpy(out + n, after, (size_t)(end - after));
        n += (size_t)(end - after);
        out[n] = '\0';
    }
    return out;
}

/* A FHIR dateTime/instant as _since accepts: YYYY[-MM[-DD[Thh:mm[:ss[.fff]](Z|±hh:mm)]]]. */
int
reg_instant_valid(const char *s)
{
    static const char *const shape = "dddd-dd-ddTdd:dd";
    size_t n = strlen(s), i;

    if (n < 4)
        return 0;
    for (i = 0; i < n && shape[i]; i++) {
        char c = s[i], want = shape[i];
        if (want == 'd' ? !(c >= '0' && c <= '9') : c != want)
            break;
    }
    if (i == n)
        return n == 4 || n == 7 || n == 10;
    if (i < 16)
        return 0;
    s += i;
    if (s[0] == ':' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9')
        s += 3;
    if (s[0] == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (strcmp(s, "Z") == 0)
        return 1;
    return (s[0] == '+' || s[0] == '-') && strlen(s) == 6 && s[3] == ':';
}

int
reg_since_normalize(const char *in, char out[40])
{
    int y = 0, mo = 1, d = 1, h = 0, mi = 0;
    size_t n = strlen(in);
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (!reg_instant_valid(in) || n >= 40)
        return -1;
    sscanf(in, "%4d", &y);
    if (n >= 7)
        sscanf(in + 5, "%2d", &mo);
    if (n >= 10)
        sscanf(in + 8, "%2d", &d);
    if (n > 10) {
        sscanf(in + 11, "%2d:%2d", &h, &mi);
        if (in[16] == ':' && (in[17] - '0') * 10 + (in[18] - '0') > 60)
            return -1;
    }
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59)
        return -1;
    if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return -1;
    if (n > 10)
        core_strlcpy(out, in, 40);
    else /* a date without a time: its start, in UTC */
        snprintf(out, 40, "%04d-%02d-%02dT00:00:00Z", y, mo, d);
    return 0;
}

void
reg_history_free(reg_history_entry *entries, int n)
{
    for (int i = 0; i < n; i++)
        free(entries[i].text);
    free(entries);
}

/* The horizon of a walk: checked when pinned by the caller, else taken now. */
int
reg_history_start(char horizon_out[32], core_db *db, const reg_history_query *q, core_err *err)
{
    PGresult *r;

    if (q->since && !reg_instant_valid(q->since))
        return core_err_set_at(
            err, 400, CORE_ISSUE_VALUE, "_since",
            "_since must be an instant such as 2026-01-31T08:00:00Z (got \"%s\")", q->since);
    if (q->horizon) {
        char full[40];
        if (strlen(q->horizon) < 11 || reg_since_normalize(q->horizon, full) < 0 ||
            strlen(q->horizon) >= 32)
            return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "_cursor",
                                   "_cursor is not one this server wrote");
        core_strlcpy(horizon_out, q->horizon, 32);
        return 0;
    }
    /* the horizon first, in a statement of its own: see mahali_feed_horizon in sql/ */
    if (!(r = core_db_exec(db, q->unsafe_horizon ? &ST_NOW : &ST_HORIZON, NULL, err)))
        return -1;
    core_strlcpy(horizon_out, PQgetvalue(r, 0, 0), 32);
    PQclear(r);
    return 0;
}

/* The statement's parameters for rows before `before` (0: the newest), at most limit. */
static const core_stmt *
history_params(const char *params[6],
               char before_s[24],
               char limit_s[16],
               const reg_history_query *q,
               const char *horizon,
               long long before,
               int limit)
{
    snprintf(before_s, 24, "%lld", before);
    snprintf(limit_s, 16, "%d", limit);
    params[0] = q->since;
    params[1] = before_s;
    params[2] = limit_s;
    params[3] = horizon;
    params[4] = q->type >= 0 ? reg_type_name((reg_type)q->type) : NULL;
    params[5] = q->id;
    return q->type < 0 ? &ST_HISTORY_SYSTEM : q->id ? &ST_HISTORY_INSTANCE : &ST_HISTORY_TYPE;
}

/* Rows of a history statement → entries (the first take rows). */
static reg_history_entry *
history_rows(PGresult *r, int take)
{
    reg_history_entry *e = calloc((size_t)(take ? take : 1), sizeof(*e));
    if (!e)
        abort();
    for (int i = 0; i < take; i++) {
        e[i].seq = atoll(PQgetvalue(r, i, 0));
        e[i].type = (reg_type)reg_type_find(PQgetvalue(r, i, 1));
        core_strlcpy(e[i].id, PQgetvalue(r, i, 2), sizeof(e[i].id));
        e[i].version = atoi(PQgetvalue(r, i, 3));
        core_strlcpy(e[i].last_updated, PQgetvalue(r, i, 4), sizeof(e[i].last_updated));
        core_strlcpy(e[i].method, PQgetvalue(r, i, 5), sizeof(e[i].method));
        e[i].status = atoi(PQgetvalue(r, i, 7));
        if (!PQgetisnull(r, i, 6))
            e[i].text = type_first(PQgetvalue(r, i, 6), (size_t)PQgetlength(r, i, 6));
    }
    return e;
}

int
reg_history(reg_history_entry **entries,
            int *n,
            long long *next_before,
            char horizon_out[32],
            core_db *db,
            const reg_history_query *q,
            core_err *err)
{
    char before[24], limit[16];
    const char *params[6];
    const core_stmt *st;
    PGresult *r;
    int rows, take;

    *entries = NULL;
    *n = 0;
    *next_before = 0;
    if (reg_history_start(horizon_out, db, q, err) < 0)
        return -1;
    /* one more row than asked tells whether a next page exists */
    st = history_params(params, before, limit, q, horizon_out, q->before, q->count + 1);
    if (!(r = core_db_exec(db, st, params, err)))
        return -1;
    rows = PQntuples(r);
    take = rows > q->count ? q->count : rows;
    *entries = history_rows(r, take);
    if (rows > q->count && take > 0)
        *next_before = (*entries)[take - 1].seq;
    PQclear(r);
    *n = take;
    return 0;
}

int
reg_history_send(core_db *db,
                 const reg_history_query *q,
                 const char *horizon,
                 long long before,
                 int limit,
                 core_err *err)
{
    char before_s[24], limit_s[16];
    const char *params[6];
    const core_stmt *st = history_params(params, before_s, limit_s, q, horizon, before, limit);
    return core_db_send(db, st->sql, st->nparams, params, err);
}

int
reg_history_recv(reg_history_entry **entries, int *n, core_db *db, core_err *err)
{
    PGresult *r = core_db_wait(db, err);
    *entries = NULL;
    *n = 0;
    if (!r)
        return -1;
    *entries = history_rows(r, PQntuples(r));
    *n = PQntuples(r);
    PQclear(r);
    return 0;
}
