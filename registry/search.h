/* Search: the search parameters of the stored types (one table, registry/search_param.c, used
 * for indexing on write, for queries and for the CapabilityStatement) and the search itself.
 * Included by registry/registry.h. */
#ifndef REG_SEARCH_H
#define REG_SEARCH_H

#include "core/db.h"

typedef enum reg_sp_kind {
    REG_SP_STRING,
    REG_SP_TOKEN,
    REG_SP_REFERENCE,
    REG_SP_DATE,
    REG_SP_SPECIAL
} reg_sp_kind;

/* One search parameter of one stored type. */
typedef struct reg_search_param {
    int type;         /* reg_type */
    const char *name; /* "name" */
    reg_sp_kind kind;
    const char *paths;      /* element paths from the resource, '|'-separated: "name|alias" */
    const char *targets;    /* reference: target types, ','-separated */
    const char *definition; /* canonical SearchParameter URL */
    const char *doc;        /* documentation for the CapabilityStatement */
} reg_search_param;

/** The parameters of type t (ending with a NULL name); static storage. */
const reg_search_param *reg_search_params(int type);
/** The parameter called name of type t, or NULL. */
const reg_search_param *reg_search_param_find(int type, const char *name);
/** "string", "token", "reference", "date" or "special". */
const char *reg_sp_kind_name(reg_sp_kind k);

/** The index entries of res (a resource of type t) for mahali_write: new reference to a JSON
 *  array (see mahali_index in sql/0002_search.sql). Never NULL. */
json_t *reg_index_build(const json_t *res, int type);

/** The range a FHIR date, dateTime or instant covers, as UTC instants with milliseconds:
 *  lo inclusive, hi exclusive ("2020-05" → 2020-05-01T00:00:00.000Z .. 2020-06-01T...).
 *  Returns 0, or -1 if s is not a valid date/dateTime/instant. */
int reg_date_range(const char *s, char lo[32], char hi[32]);

/** Split a reference ("Location/1", "http://x/fhir/Location/1/_history/2") into type and id.
 *  Returns 0, or -1 for a reference that names no resource by type and id (contained "#x",
 *  urn:uuid:, other). */
int reg_ref_split(const char *ref, char type[64], char id[65]);

/* ---- the search -------------------------------------------------------------------------------
 */

/* One query parameter as given: name with modifier/chain ("name:exact", "organization.name",
 * "_has:HealthcareService:location:service-type"), URL-decoded value. */
typedef struct reg_qparam {
    const char *name;
    const char *value;
} reg_qparam;

typedef struct reg_search_opts {
    int count;          /* page size (already clamped) */
    int strict;         /* Prefer: handling=strict: unknown parameters are errors */
    int allow_personal; /* the caller may see Practitioner and PractitionerRole */
    int count_only;     /* _summary=count: only the total */
    const char *cursor; /* _cursor from a next/previous link, or NULL */
    int record_sql;     /* keep every statement run, values inlined, in out->sql (benchmarks) */
} reg_search_opts;

/* One resource in the result, as JSON text straight from the store. */
typedef struct reg_hit {
    int type; /* reg_type */
    char id[65];
    char *json;      /* malloc'd */
    int include;     /* 0: match, 1: _include/_revinclude */
    double distance; /* with near: distance from the point, in near_unit; -1 otherwise */
} reg_hit;

typedef struct reg_search_out {
    reg_hit *hits; /* matches first (in order), then includes */
    int nhits;
    int nmatches;
    long long total;    /* -1 when not computed (_total=none) */
    char *next;         /* cursor for the next page, or NULL (malloc'd) */
    char *prev;         /* cursor for the previous page, or NULL (malloc'd) */
    char *self;         /* the applied parameters as a query string (malloc'd) */
    char *ignored;      /* names of parameters ignored (lenient), comma-separated, or NULL */
    char *sql;          /* with opts->record_sql: the statements run, ";\n"-separated (malloc'd) */
    char near_unit[16]; /* with near: the unit of reg_hit.distance ("km", "m", "[mi_i]"), else "" */
} reg_search_out;

void reg_search_out_clear(reg_search_out *out);

/** Search type t. params: n parameters in request order (result-control parameters such as
 *  _format, _pretty, _summary and _elements are the caller's and must not be passed, except
 *  _sort, _total, _include, _revinclude and _count, which this handles).
 *  Returns 0, or -1 with err (400 for unknown parameters in strict mode or malformed values,
 *  401/403 never: the caller checks access; 503 database). */
int reg_search(reg_search_out *out,
               core_db *db,
               int type,
               const reg_qparam *params,
               size_t n,
               const reg_search_opts *opts,
               core_err *err);

#endif
