/* Search (FHIR R4 §3.1.1.5, IHE mCSD ITI-90): query parameters become one SQL statement over
 * the current resources and the sp_* index tables. The SQL text is assembled only from the
 * fixed fragments in this file; every value a client sends travels as a $n parameter. Results
 * page with keysets (the sort keys and id of the last row), so a page boundary stays correct
 * while resources are written. JSON leaves PostgreSQL as text and is not re-serialised. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "registry/registry.h"

#define MAX_PARAMS   200  /* SQL parameters in one statement */
#define MAX_SORT     4    /* _sort keys */
#define MAX_INCLUDES 1000 /* resources added by _include / _revinclude on one page */
#define MAX_ITERATE  8    /* rounds of :iterate */

/* ---- a growable string ------------------------------------------------------------------------
 */

typedef struct sb {
    char *p;
    size_t len, cap;
} sb;

static void
sb_add(sb *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p)
            abort();
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void sb_addf(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
sb_addf(sb *b, const char *fmt, ...)
{
    /* measured first, then written: a fragment is never cut short (a cut could still parse) */
    va_list ap, ap2;
    int n;
    char *buf;

    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf = malloc((size_t)(n < 0 ? 0 : n) + 1);
    if (!buf)
        abort();
    vsnprintf(buf, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap2);
    va_end(ap2);
    sb_add(b, buf);
    free(buf);
}

/* ---- the query being built ----------------------------------------------------------------------
 */

typedef struct sortkey {
    const char *expr_fmt; /* SQL with %s for the parameter holding the param name, or fixed */
    int param;            /* $n of the param name, 0 if none */
    int desc;
    int hidden;       /* implied (near's distance), not written in the self link */
    const char *cast; /* "text", "timestamptz" or "float8" */
    char label[72];   /* as written in _sort, for the self link */
} sortkey;

typedef struct incl {
    int rev;      /* _revinclude */
    int iterate;  /* :iterate */
    int src_type; /* the type whose reference is followed (include) or that refers (revinclude) */
    const reg_search_param *sp;
    int target; /* include: restrict to this target type, or -1 */
} incl;

typedef struct query {
    int type;
    const reg_search_opts *opts;
    sb where;
    char *vals[MAX_PARAMS];
    unsigned char is_fixed[MAX_PARAMS]; /* the value comes from the server's tables */
    int nvals;
    int alias;
    sortkey sort[MAX_SORT];
    int nsort;
    incl incs[32];
    int nincs;
    int total_mode;       /* 0 none, 1 estimate, 2 accurate */
    char near_expr[640];  /* with near: SQL for the resource's distance from the point, in metres */
    char near_point[160]; /* with near: the point as geography (SQL over $n) */
    char near_radius[32]; /* with near: the radius in metres (SQL over $n) */
    double near_radius_m;
    char near_cond[640];       /* with near: its condition as written into where */
    int near_sorted;           /* nearest first (no _sort): the page walks the spatial index */
    const char *near_distance; /* near-distance=quantity (STU3 companion of near), or NULL */
    int has_near;              /* near is in the request */
    int total_given;           /* _total was in the request */
    double near_factor;        /* metres per unit asked for */
    char near_unit[16];
    int area_sort; /* contains: innermost (smallest boundary) first unless _sort says otherwise */
    int nconds;    /* conditions at the top level */
    /* a top-level condition picks out one resource or a few whatever its value (_id,
     * identifier, contains): the statements are prepared once and run with one plan for all
     * values (core_db_query) */
    int point;
    /* the total when partof:below=X is the only condition: the size of X's range in the
     * closure table, which holds live resources only (sql/0005_hierarchy.sql) */
    char below_count[160];
    sb self;
    sb ignored;
    core_err *err;
} query;

/* Add a value as the next $n and return n. */
static int
val(query *q, const char *v)
{
    if (q->nvals >= MAX_PARAMS)
        return -1;
    q->vals[q->nvals] = v ? strdup(v) : NULL;
    if (v && !q->vals[q->nvals])
        abort();
    return ++q->nvals;
}

/* A stored type's name as an SQL literal. Type names come from the fixed type table, never
 * from the request, and a literal lets PostgreSQL prune the partitions of `resource` when it
 * plans a statement once for all calls (core_db_query). */
static void
type_lit(char *out, size_t n, int type)
{
    snprintf(out, n, "'%s'", reg_type_name((reg_type)type));
}

/* Add a value that comes from the server's own tables (a parameter or type name, a page
 * size), never from the request: run() writes it into the statement as a literal, so that a
 * plan made once for all calls still knows it (partial indexes, statistics). */
static int
fixed(query *q, const char *v)
{
    int n = val(q, v);
    if (n > 0)
        q->is_fixed[n - 1] = 1;
    return n;
}

static int
too_many(query *q)
{
    return core_err_set(q->err, 400, CORE_ISSUE_TOO_LONG, "the search has too many values");
}

static void
self_add(query *q, const char *name, const char *value)
{
    char *enc = malloc(strlen(value) * 3 + 1);
    if (!enc)
        abort();
    /* RFC 3986 unreserved characters stay; everything else is %-encoded */
    {
        static const char hex[] = "0123456789ABCDEF";
        char *o = enc;
        for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
            if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                *p == '-' || *p == '.' || *p == '_' || *p == '~' || *p == ',' || *p == ':' ||
                *p == '|' || *p == '/') {
                *o++ = (char)*p;
            } else {
                *o++ = '%';
                *o++ = hex[*p >> 4];
                *o++ = hex[*p & 15];
            }
        }
        *o = '\0';
    }
    if (q->self.len)
        sb_add(&q->self, "&");
    sb_add(&q->self, name);
    sb_add(&q->self, "=");
    sb_add(&q->self, enc);
    free(enc);
}

/* Split a comma-separated value list (R4: "\," is a literal comma). Returns the count; items
 * are malloc'd into out (caller frees). */
static int
split_values(const char *v, char **out, int max)
{
    int n = 0;
    char *cur = malloc(strlen(v) + 1), *o = cur;
    if (!cur)
        abort();
    for (const char *p = v;; p++) {
        if (*p == '\\' && p[1] == ',') {
            *o++ = ',';
            p++;
            continue;
        }
        if (*p == ',' || *p == '\0') {
            *o = '\0';
            if (n < max)
                out[n++] = strdup(cur);
            o = cur;
            if (!*p)
                break;
            continue;
        }
        *o++ = *p;
    }
    free(cur);
    return n;
}

static void
free_values(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
}

/* Escape LIKE's special characters (backslash is the escape character). */
static char *
like_escape(const char *s)
{
    char *out = malloc(strlen(s) * 2 + 1), *o = out;
    if (!out)
        abort();
    for (; *s; s++) {
        if (*s == '\\' || *s == '%' || *s == '_')
            *o++ = '\\';
        *o++ = *s;
    }
    *o = '\0';
    return out;
}

/* ---- fragments per parameter kind ------------------------------------------------------------ *
 * Each appends a boolean SQL expression about the resource whose type is the SQL expression rt
 * and whose id is the SQL expression id. */

static int fragment(query *q,
                    sb *w,
                    int type,
                    const char *rt,
                    const char *id,
                    const char *name,
                    const char *value,
                    int depth);

static int
bad_value(query *q, const char *name, const char *value, const char *what)
{
    return core_err_set_at(q->err, 400, CORE_ISSUE_VALUE, name, "%s: %s (got \"%.80s\")", name,
                           what, value);
}

static int
frag_missing(query *q,
             sb *w,
             const char *table,
             const char *rt,
             const char *id,
             const reg_search_param *sp,
             const char *name,
             const char *value)
{
    int p;
    if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
        return bad_value(q, name, value, ":missing takes true or false");
    if ((p = fixed(q, sp->name)) < 0)
        return too_many(q);
    q->alias++;
    sb_addf(
        w,
        "%sEXISTS (SELECT 1 FROM %s m%d WHERE m%d.rtype = %s AND m%d.id = %s AND m%d.param = $%d)",
        strcmp(value, "true") == 0 ? "NOT " : "", table, q->alias, q->alias, rt, q->alias, id,
        q->alias, p);
    return 0;
}

static int
frag_string(query *q,
            sb *w,
            const char *rt,
            const char *id,
            const reg_search_param *sp,
            const char *mod,
            const char *name,
            const char *value)
{
    char *vals[64];
    int n, a, p, rc = 0;

    if (mod && strcmp(mod, "exact") != 0 && strcmp(mod, "contains") != 0)
        return core_err_set_at(q->err, 400, CORE_ISSUE_NOT_SUPPORTED, name,
                               "modifier :%s is not supported on string parameter %s; use :exact, "
                               ":contains or :missing",
                               mod, sp->name);
    if ((p = fixed(q, sp->name)) < 0)
        return too_many(q);
    a = ++q->alias;
    sb_addf(w,
            "EXISTS (SELECT 1 FROM sp_string s%d WHERE s%d.rtype = %s AND s%d.id = %s AND "
            "s%d.param = $%d AND (",
            a, a, rt, a, id, a, p);
    n = split_values(value, vals, 64);
    for (int i = 0; i < n; i++) {
        int v;
        char *e = NULL;
        if (i)
            sb_add(w, " OR ");
        if (mod && strcmp(mod, "exact") == 0) {
            /* equal values have equal normal forms: the prefix index finds the candidates.
             * Equal means canonically equivalent (composed, NFC: sql/0008_names.sql): "é"
             * sent as one code point or as e + U+0301 is one name. */
            v = val(q, vals[i]);
            sb_addf(w, "(s%d.norm = mahali_norm($%d) AND mahali_nfc(s%d.value) = mahali_nfc($%d))",
                    a, v, a, v);
        } else if (mod) {
            e = like_escape(vals[i]);
            v = val(q, e);
            sb_addf(w, "s%d.norm LIKE '%%' || mahali_norm($%d) || '%%'", a, v);
        } else {
            /* starts-with as a range of the (byte-ordered) prefix index, usable by a plan made
             * once for every value; the LIKE settles the range's upper edge exactly */
            int raw = val(q, vals[i]);
            e = like_escape(vals[i]);
            v = val(q, e);
            if (raw < 0)
                v = -1;
            sb_addf(w,
                    "(s%d.norm ~>=~ mahali_norm($%d) AND s%d.norm ~<~ (mahali_norm($%d) || "
                    "chr(1114111)) AND s%d.norm LIKE mahali_norm($%d) || '%%')",
                    a, raw, a, raw, a, v);
        }
        free(e);
        if (v < 0) {
            rc = too_many(q);
            break;
        }
    }
    sb_add(w, "))");
    free_values(vals, n);
    return rc;
}

static int
frag_token(query *q,
           sb *w,
           const char *rt,
           const char *id,
           const reg_search_param *sp,
           const char *mod,
           const char *name,
           const char *value)
{
    char *vals[64];
    int n, a, p, rc = 0;

    if (mod && strcmp(mod, "not") != 0)
        return core_err_set_at(q->err, 400, CORE_ISSUE_NOT_SUPPORTED, name,
                               "modifier :%s is not supported on token parameter %s; use :not or "
                               ":missing",
                               mod, sp->name);
    if ((p = fixed(q, sp->name)) < 0)
        return too_many(q);
    a = ++q->alias;
    sb_addf(w,
            "%sEXISTS (SELECT 1 FROM sp_token t%d WHERE t%d.rtype = %s AND t%d.id = %s AND "
            "t%d.param = $%d AND (",
            mod ? "NOT " : "", a, a, rt, a, id, a, p);
    n = split_values(value, vals, 64);
    for (int i = 0; i < n && !rc; i++) {
        char *bar = strchr(vals[i], '|');
        /* the boolean elements (active) have two codes only */
        if (strcmp(sp->name, "active") == 0 && strcmp(vals[i], "true") != 0 &&
            strcmp(vals[i], "false") != 0) {
            rc = bad_value(q, name, vals[i], "a boolean is true or false");
            break;
        }
        if (i)
            sb_add(w, " OR ");
        if (!bar) {
            int c = val(q, vals[i]);
            if (c < 0)
                rc = too_many(q);
            else
                sb_addf(w, "t%d.code = $%d", a, c);
        } else {
            *bar = '\0';
            if (!*vals[i] && !bar[1]) {
                rc = bad_value(q, name, value, "a token is code, system|code, |code or system|");
            } else if (!*vals[i]) { /* |code: no system */
                int c = val(q, bar + 1);
                sb_addf(w, "(t%d.system IS NULL AND t%d.code = $%d)", a, a, c);
            } else if (!bar[1]) { /* system|: any code of that system */
                int s = val(q, vals[i]);
                sb_addf(w, "t%d.system = $%d", a, s);
            } else {
                int s = val(q, vals[i]), c = val(q, bar + 1);
                if (s < 0 || c < 0)
                    rc = too_many(q);
                else
                    sb_addf(w, "(t%d.system = $%d AND t%d.code = $%d)", a, s, a, c);
            }
        }
    }
    sb_add(w, "))");
    free_values(vals, n);
    return rc;
}

/* The target type of a reference parameter: the :Type modifier, or its only target. -1 if it
 * has several and none was named. */
static int
ref_target(const reg_search_param *sp, const char *mod)
{
    if (mod && reg_type_find(mod) >= 0)
        return reg_type_find(mod);
    if (sp->targets && !strchr(sp->targets, ','))
        return reg_type_find(sp->targets);
    return -1;
}

/* X and the resources below it (down = 1) or above it in the partof hierarchy, as SQL: the
 * closure table sp_below (sql/0005_hierarchy.sql) holds every ancestor-descendant pair. */
static void
hierarchy_set(query *q, sb *w, const char *tt, int px, int down)
{
    int a = ++q->alias;
    if (down)
        sb_addf(w,
                "(SELECT $%d::text AS id UNION ALL SELECT h%d.id FROM sp_below h%d WHERE "
                "h%d.rtype = %s AND h%d.anc = $%d)",
                px, a, a, a, tt, a, px);
    else
        sb_addf(w,
                "(SELECT $%d::text AS id UNION ALL SELECT h%d.anc FROM sp_below h%d WHERE "
                "h%d.rtype = %s AND h%d.id = $%d)",
                px, a, a, a, tt, a, px);
}

static int
frag_reference(query *q,
               sb *w,
               const char *rt,
               const char *id,
               const reg_search_param *sp,
               const char *mod,
               const char *name,
               const char *value)
{
    char *vals[64];
    int n, a, p, rc = 0;
    int hier = mod && (strcmp(mod, "below") == 0 || strcmp(mod, "above") == 0);
    int tmod = mod ? reg_type_find(mod) : -1;

    if (mod && !hier && tmod < 0)
        return core_err_set_at(q->err, 400, CORE_ISSUE_NOT_SUPPORTED, name,
                               "modifier :%s is not supported on reference parameter %s; use "
                               ":[type], :missing, or :below/:above on partof",
                               mod, sp->name);
    if (hier && strcmp(sp->name, "partof") != 0)
        return core_err_set_at(q->err, 400, CORE_ISSUE_NOT_SUPPORTED, name,
                               ":%s works on the partof hierarchy only", mod);
    if (hier && strcmp(mod, "below") == 0 && !strchr(value, ',')) {
        /* partof:below=X (one X) is "a descendant of X": membership in X's range of the
         * closure table, which the planner can walk in id order and stop at the page's end */
        char type[64], rid[65], tt[40];
        int pi, t = ref_target(sp, NULL);
        if (strchr(value, '/')) {
            if (reg_ref_split(value, type, rid) < 0 || reg_type_find(type) != t)
                return bad_value(q, name, value,
                                 "partof:below takes id or Type/id of the same type");
        } else if (!reg_id_valid(value)) {
            return bad_value(q, name, value, "not a valid id");
        } else {
            core_strlcpy(rid, value, sizeof(rid));
        }
        if ((pi = val(q, rid)) < 0)
            return too_many(q);
        type_lit(tt, sizeof(tt), t);
        a = ++q->alias;
        sb_addf(w, "%s IN (SELECT h%d.id FROM sp_below h%d WHERE h%d.rtype = %s AND h%d.anc = $%d)",
                id, a, a, a, tt, a, pi);
        if (strcmp(id, "r.id") == 0)
            snprintf(q->below_count, sizeof(q->below_count),
                     "SELECT count(*) FROM sp_below h WHERE h.rtype = %s AND h.anc = $%d", tt, pi);
        return 0;
    }
    if ((p = fixed(q, sp->name)) < 0)
        return too_many(q);
    a = ++q->alias;
    sb_addf(w,
            "EXISTS (SELECT 1 FROM sp_ref r%d WHERE r%d.rtype = %s AND r%d.id = %s AND r%d.param = "
            "$%d AND (",
            a, a, rt, a, id, a, p);
    n = split_values(value, vals, 64);
    for (int i = 0; i < n && !rc; i++) {
        char type[64], rid[65];
        int t = tmod, pt, pi;
        if (i)
            sb_add(w, " OR ");
        if (strchr(vals[i], '/')) {
            if (reg_ref_split(vals[i], type, rid) < 0) {
                rc = bad_value(q, name, vals[i], "a reference is id, Type/id or an absolute URL");
                break;
            }
            t = reg_type_find(type);
            if (t < 0) {
                /* a type the registry does not store: nothing can match */
                sb_add(w, "false");
                continue;
            }
        } else {
            if (!reg_id_valid(vals[i])) {
                rc = bad_value(q, name, vals[i], "not a valid id");
                break;
            }
            core_strlcpy(rid, vals[i], sizeof(rid));
        }
        if (hier && t < 0)
            t = ref_target(sp, NULL);
        pi = val(q, rid);
        if (t >= 0) {
            pt = fixed(q, reg_type_name((reg_type)t));
            if (pt < 0 || pi < 0) {
                rc = too_many(q);
                break;
            }
            if (hier) {
                char tt[40];
                type_lit(tt, sizeof(tt), t);
                sb_addf(w, "(r%d.target_type = $%d AND r%d.target_id IN ", a, pt, a);
                hierarchy_set(q, w, tt, pi, strcmp(mod, "below") == 0);
                sb_add(w, ")");
            } else {
                sb_addf(w, "(r%d.target_type = $%d AND r%d.target_id = $%d)", a, pt, a, pi);
            }
        } else {
            sb_addf(w, "r%d.target_id = $%d", a, pi);
        }
    }
    sb_add(w, "))");
    free_values(vals, n);
    return rc;
}

/* Date comparison of a search range [sl, sh) with a resource range [lo, hi) (R4 §3.1.1.5.4,
 * "the range of the search value ... the range of the target value"). */
static void
date_cond(sb *w, const char *prefix, const char *lo, const char *hi, int sl, int sh)
{
    char eq[512];
    snprintf(eq, sizeof(eq), "($%d::timestamptz <= %s AND %s <= $%d::timestamptz)", sl, lo, hi, sh);
    if (strcmp(prefix, "eq") == 0)
        sb_add(w, eq);
    else if (strcmp(prefix, "ne") == 0)
        sb_addf(w, "NOT %s", eq);
    else if (strcmp(prefix, "gt") == 0)
        sb_addf(w, "%s > $%d::timestamptz", hi, sh);
    else if (strcmp(prefix, "lt") == 0)
        sb_addf(w, "%s < $%d::timestamptz", lo, sl);
    else if (strcmp(prefix, "ge") == 0)
        sb_addf(w, "(%s > $%d::timestamptz OR %s)", hi, sh, eq);
    else if (strcmp(prefix, "le") == 0)
        sb_addf(w, "(%s < $%d::timestamptz OR %s)", lo, sl, eq);
    else if (strcmp(prefix, "sa") == 0)
        sb_addf(w, "%s >= $%d::timestamptz", lo, sh);
    else if (strcmp(prefix, "eb") == 0)
        sb_addf(w, "%s <= $%d::timestamptz", hi, sl);
    else /* ap: overlaps the search range widened by a tenth of its distance from now */
        sb_addf(w,
                "(%s < $%d::timestamptz + abs(extract(epoch FROM now() - $%d::timestamptz)) / 10 * "
                "interval '1 second' AND %s > $%d::timestamptz - abs(extract(epoch FROM now() - "
                "$%d::timestamptz)) / 10 * interval '1 second')",
                lo, sh, sh, hi, sl, sl);
}

static int
date_value(query *q, const char *name, const char *v, char prefix[3], int *sl, int *sh)
{
    static const char *const prefixes[] = { "eq", "ne", "gt", "lt", "ge",
                                            "le", "sa", "eb", "ap", NULL };
    char lo[32], hi[32];
    strcpy(prefix, "eq");
    if (v[0] >= 'a' && v[0] <= 'z') {
        int ok = 0;
        for (int i = 0; prefixes[i]; i++)
            if (strncmp(v, prefixes[i], 2) == 0)
                ok = 1;
        if (!ok)
            return bad_value(q, name, v, "the prefix must be eq, ne, gt, lt, ge, le, sa, eb or ap");
        memcpy(prefix, v, 2);
        prefix[2] = '\0';
        v += 2;
    }
    if (reg_date_range(v, lo, hi) < 0)
        return bad_value(q, name, v, "a date is YYYY, YYYY-MM, YYYY-MM-DD or a dateTime");
    *sl = val(q, lo);
    *sh = val(q, hi);
    return *sl < 0 || *sh < 0 ? too_many(q) : 0;
}

static int
frag_date(query *q,
          sb *w,
          const char *rt,
          const char *id,
          const reg_search_param *sp,
          const char *name,
          const char *value)
{
    char *vals[64], prefix[3];
    int n, a, p, rc = 0, sl, sh;
    if ((p = fixed(q, sp->name)) < 0)
        return too_many(q);
    a = ++q->alias;
    sb_addf(w,
            "EXISTS (SELECT 1 FROM sp_date d%d WHERE d%d.rtype = %s AND d%d.id = %s AND d%d.param "
            "= $%d AND (",
            a, a, rt, a, id, a, p);
    n = split_values(value, vals, 64);
    for (int i = 0; i < n && !rc; i++) {
        char lo[16], hi[16];
        if ((rc = date_value(q, name, vals[i], prefix, &sl, &sh)) < 0)
            break;
        if (i)
            sb_add(w, " OR ");
        snprintf(lo, sizeof(lo), "d%d.lo", a);
        snprintf(hi, sizeof(hi), "d%d.hi", a);
        date_cond(w, prefix, lo, hi, sl, sh);
    }
    sb_add(w, "))");
    free_values(vals, n);
    return rc;
}

/* _id and _lastUpdated: columns of the resource itself (only at the top level, where the
 * resource is `r`, or in a chain/_has where it is reached by type and id). */
static int
frag_id(query *q, sb *w, const char *rt, const char *id, const char *name, const char *value)
{
    char *vals[64];
    int n = split_values(value, vals, 64), rc = 0;
    (void)rt;
    sb_add(w, "(");
    for (int i = 0; i < n && !rc; i++) {
        int v = val(q, vals[i]);
        if (!reg_id_valid(vals[i]))
            rc = bad_value(q, name, vals[i], "not a valid id");
        else if (v < 0)
            rc = too_many(q);
        else
            sb_addf(w, "%s%s = $%d", i ? " OR " : "", id, v);
    }
    sb_add(w, ")");
    free_values(vals, n);
    return rc;
}

static int
frag_last_updated(
    query *q, sb *w, const char *rt, const char *id, const char *name, const char *value)
{
    char *vals[64], prefix[3], lo[200], hi[200];
    int n = split_values(value, vals, 64), rc = 0, sl, sh, a = ++q->alias;
    /* the resource's instant as a range of one millisecond */
    snprintf(lo, sizeof(lo), "u%d.last_updated", a);
    snprintf(hi, sizeof(hi), "(u%d.last_updated + interval '1 millisecond')", a);
    sb_addf(w, "EXISTS (SELECT 1 FROM resource u%d WHERE u%d.rtype = %s AND u%d.id = %s AND (", a,
            a, rt, a, id);
    for (int i = 0; i < n && !rc; i++) {
        if ((rc = date_value(q, name, vals[i], prefix, &sl, &sh)) < 0)
            break;
        if (i)
            sb_add(w, " OR ");
        date_cond(w, prefix, lo, hi, sl, sh);
    }
    sb_add(w, "))");
    free_values(vals, n);
    return rc;
}

static int
needs_personal(query *q, int type, const char *name)
{
    if (!reg_type_is_personal((reg_type)type) || q->opts->allow_personal)
        return 0;
    return core_err_set_at(q->err, 401, CORE_ISSUE_LOGIN, name,
                           "searching through %s needs a bearer token",
                           reg_type_name((reg_type)type));
}

/* _has:Type:reference:param=value (reverse chaining). */
static int
frag_has(query *q,
         sb *w,
         int type,
         const char *rt,
         const char *id,
         const char *name,
         const char *value,
         int depth)
{
    char buf[256], *t2, *ref, *inner, *save = NULL;
    const reg_search_param *rp;
    int ht, a, pt, pr;

    core_strlcpy(buf, name + 5, sizeof(buf));
    t2 = strtok_r(buf, ":", &save);
    ref = strtok_r(NULL, ":", &save);
    inner = save && *save ? save : NULL;
    if (!t2 || !ref || !inner)
        return bad_value(q, name, value, "use _has:Type:reference:parameter=value");
    if ((ht = reg_type_find(t2)) < 0)
        return core_err_set_at(q->err, 400, CORE_ISSUE_NOT_SUPPORTED, name,
                               "_has: resource type \"%s\" is not stored here", t2);
    if (needs_personal(q, ht, name) < 0)
        return -1;
    rp = reg_search_param_find(ht, ref);
    if (!rp || rp->kind != REG_SP_REFERENCE)
        return core_err_set_at(q->err, 400, CORE_ISSUE_NOT_SUPPORTED, name,
                               "_has: %s has no reference parameter \"%s\"", t2, ref);
    if ((pt = fixed(q, reg_type_name((reg_type)ht))) < 0 || (pr = fixed(q, rp->name)) < 0)
        return too_many(q);
    a = ++q->alias;
    {
        char hrt[40], hid[32];
        (void)type;
        type_lit(hrt, sizeof(hrt), ht);
        snprintf(hid, sizeof(hid), "x%d.id", a);
        sb_addf(w,
                "EXISTS (SELECT 1 FROM sp_ref x%d WHERE x%d.rtype = $%d AND x%d.param = $%d AND "
                "x%d.target_type = %s AND x%d.target_id = %s AND ",
                a, a, pt, a, pr, a, rt, a, id);
        if (fragment(q, w, ht, hrt, hid, inner, value, depth + 1) < 0)
            return -1;
        sb_add(w, ")");
    }
    return 0;
}

/* near=latitude|longitude|distance|unit (R4 Location-near): within a true geodesic distance of
 * the point (ST_DWithin on geography uses the WGS84 spheroid and the GiST index), and the
 * distance for sorting and for the location-distance extension. */
#define NEAR_DEFAULT_KM 50.0
#define NEAR_MAX_KM     1000.0

static int
frag_near(query *q, sb *w, const char *rt, const char *id, const char *name, const char *value)
{
    char buf[256], *parts[4] = { 0 }, *save = NULL, *tok, num[3][40], nd[2][128];
    int n = 0, a, plon, plat, pd;
    double lat, lon, dist = NEAR_DEFAULT_KM, factor = 1000.0;
    const char *unit = "km";
    char *end;

    if (q->near_expr[0])
        return bad_value(q, name, value, "near may be given once");
    if (strlen(value) >= sizeof(buf))
        return bad_value(q, name, value, "too long");
    strcpy(buf, value);
    /* '|' separated; empty parts allowed ("8.4|-13.2||km") */
    tok = buf;
    while (n < 4) {
        char *bar = strchr(tok, '|');
        parts[n++] = tok;
        if (!bar)
            break;
        *bar = '\0';
        tok = bar + 1;
    }
    (void)save;
    if (n < 2 || !*parts[0] || !*parts[1])
        return bad_value(q, name, value,
                         "use latitude|longitude|distance|unit, e.g. 8.48|-13.23|10|km");
    lat = strtod(parts[0], &end);
    if (*end || !(lat >= -90.0 && lat <= 90.0))
        return bad_value(q, name, value, "latitude must be a number between -90 and 90");
    lon = strtod(parts[1], &end);
    if (*end || !(lon >= -180.0 && lon <= 180.0))
        return bad_value(q, name, value, "longitude must be a number between -180 and 180");
    if ((n < 3 || !*parts[2]) && q->near_distance) {
        /* near-distance=value|system|code (or value||code, or value) gives the radius */
        char buf2[256], *bar;
        if (strlen(q->near_distance) >= sizeof(buf2))
            return bad_value(q, "near-distance", q->near_distance, "too long");
        strcpy(buf2, q->near_distance);
        bar = strchr(buf2, '|');
        if (bar) {
            char *bar2 = strchr(bar + 1, '|');
            *bar = '\0';
            if (bar2)
                *bar2 = '\0';
            if (!bar2 || (bar2 != bar + 1 && strcmp(bar + 1, "http://unitsofmeasure.org") != 0) ||
                strchr(bar2 + 1, '|'))
                return bad_value(q, "near-distance", q->near_distance,
                                 "use value|http://unitsofmeasure.org|unit, value||unit or value");
            core_strlcpy(nd[1], bar2 + 1, sizeof(nd[1]));
        } else {
            nd[1][0] = '\0';
        }
        core_strlcpy(nd[0], buf2, sizeof(nd[0]));
        parts[2] = nd[0];
        if (nd[1][0]) {
            parts[3] = nd[1];
            n = 4;
        } else if (n < 3) {
            n = 3;
        }
    }
    if (n >= 4 && *parts[3]) {
        if (strcmp(parts[3], "km") == 0)
            factor = 1000.0;
        else if (strcmp(parts[3], "m") == 0)
            factor = 1.0;
        else if (strcmp(parts[3], "[mi_i]") == 0 || strcmp(parts[3], "mi") == 0)
            factor = 1609.344;
        else
            return bad_value(q, name, value, "the unit must be km, m or [mi_i]");
        unit = strcmp(parts[3], "mi") == 0 ? "[mi_i]" : parts[3];
    }
    if (n >= 3 && *parts[2]) {
        dist = strtod(parts[2], &end);
        if (*end || !(dist > 0.0))
            return bad_value(q, name, value, "the distance must be a positive number");
    } else {
        dist = NEAR_DEFAULT_KM * 1000.0 / factor;
    }
    if (dist * factor > NEAR_MAX_KM * 1000.0)
        return bad_value(q, name, value, "the distance may be at most 1000 km");
    snprintf(num[0], sizeof(num[0]), "%.17g", lon);
    snprintf(num[1], sizeof(num[1]), "%.17g", lat);
    snprintf(num[2], sizeof(num[2]), "%.17g", dist * factor);
    if ((plon = val(q, num[0])) < 0 || (plat = val(q, num[1])) < 0 || (pd = val(q, num[2])) < 0)
        return too_many(q);
    a = ++q->alias;
    snprintf(
        q->near_cond, sizeof(q->near_cond),
        "EXISTS (SELECT 1 FROM sp_geo g%d WHERE g%d.rtype = %s AND g%d.id = %s AND g%d.param = "
        "'position' AND ST_DWithin(g%d.geog, ST_SetSRID(ST_MakePoint($%d::float8, "
        "$%d::float8), 4326)::geography, $%d::float8))",
        a, a, rt, a, id, a, a, plon, plat, pd);
    sb_add(w, q->near_cond);
    snprintf(q->near_point, sizeof(q->near_point),
             "ST_SetSRID(ST_MakePoint($%d::float8, $%d::float8), 4326)::geography", plon, plat);
    snprintf(q->near_radius, sizeof(q->near_radius), "$%d::float8", pd);
    q->near_radius_m = dist * factor;
    if (strcmp(id, "r.id") != 0)
        q->near_cond[0] = '\0'; /* inside a chain: not the search's own position */
    snprintf(q->near_expr, sizeof(q->near_expr),
             "(SELECT min(ST_Distance(n.geog, ST_SetSRID(ST_MakePoint($%d::float8, $%d::float8), "
             "4326)::geography)) FROM sp_geo n WHERE n.rtype = r.rtype AND n.id = r.id AND "
             "n.param = 'position')",
             plon, plat);
    q->near_factor = factor;
    core_strlcpy(q->near_unit, unit, sizeof(q->near_unit));
    return 0;
}

/* contains=lat|lon, within=Location/id, bbox=minLon,minLat,maxLon,maxLat. Point-in-polygon runs
 * on geometry (ST_Covers with the GiST index; planar on lon/lat, which is how boundaries are
 * drawn), distances on geography. */
static int
frag_spatial(query *q,
             sb *w,
             const char *rt,
             const char *id,
             const char *which,
             const char *name,
             const char *value)
{
    int a = ++q->alias;
    char *end;

    if (strcmp(which, "contains") == 0) {
        char buf[128], num[2][40];
        char *bar;
        double lat, lon;
        int plon, plat;
        if (strlen(value) >= sizeof(buf) || !(bar = strchr(strcpy(buf, value), '|')))
            return bad_value(q, name, value, "use latitude|longitude, e.g. 8.48|-13.23");
        *bar = '\0';
        lat = strtod(buf, &end);
        if (*end || end == buf || !(lat >= -90.0 && lat <= 90.0))
            return bad_value(q, name, value, "latitude must be a number between -90 and 90");
        lon = strtod(bar + 1, &end);
        if (*end || end == bar + 1 || !(lon >= -180.0 && lon <= 180.0))
            return bad_value(q, name, value, "longitude must be a number between -180 and 180");
        snprintf(num[0], sizeof(num[0]), "%.17g", lon);
        snprintf(num[1], sizeof(num[1]), "%.17g", lat);
        if ((plon = val(q, num[0])) < 0 || (plat = val(q, num[1])) < 0)
            return too_many(q);
        sb_addf(
            w,
            "EXISTS (SELECT 1 FROM sp_geo b%d WHERE b%d.rtype = %s AND b%d.id = %s AND b%d.param "
            "= 'boundary' AND ST_Covers(b%d.geom, ST_SetSRID(ST_MakePoint($%d::float8, "
            "$%d::float8), 4326)))",
            a, a, rt, a, id, a, a, plon, plat);
        if (!q->area_sort)
            q->area_sort = 1; /* innermost first */
        if (strcmp(id, "r.id") == 0)
            q->point = 1; /* the GiST index drives it whatever the point: plan once */
        return 0;
    }
    if (strcmp(which, "within") == 0) {
        char type[64], bid[65];
        int pb;
        if (strchr(value, '/')
                ? reg_ref_split(value, type, bid) < 0 || strcmp(type, "Location") != 0
                : !reg_id_valid(value))
            return bad_value(q, name, value, "use Location/id");
        if (!strchr(value, '/'))
            core_strlcpy(bid, value, sizeof(bid));
        if ((pb = val(q, bid)) < 0)
            return too_many(q);
        sb_addf(w,
                "EXISTS (SELECT 1 FROM sp_geo p%d JOIN sp_geo w%d ON w%d.rtype = 'Location' AND "
                "w%d.id = $%d AND w%d.param = 'boundary' AND ST_Covers(w%d.geom, p%d.geom) WHERE "
                "p%d.rtype = %s AND p%d.id = %s AND p%d.param = 'position')",
                a, a, a, a, pb, a, a, a, a, rt, a, id, a);
        return 0;
    }
    if (strcmp(which, "bbox") == 0) {
        double v[4];
        char num[4][40];
        int pv[4];
        const char *p = value;
        for (int i = 0; i < 4; i++) {
            v[i] = strtod(p, &end);
            if (end == p || (i < 3 ? *end != ',' : *end != '\0'))
                return bad_value(q, name, value,
                                 "use minLongitude,minLatitude,maxLongitude,maxLatitude");
            p = end + 1;
        }
        if (!(v[0] >= -180 && v[2] <= 180 && v[1] >= -90 && v[3] <= 90 && v[0] <= v[2] &&
              v[1] <= v[3]))
            return bad_value(q, name, value,
                             "the box must lie within -180..180, -90..90 with min <= max");
        for (int i = 0; i < 4; i++) {
            snprintf(num[i], sizeof(num[i]), "%.17g", v[i]);
            if ((pv[i] = val(q, num[i])) < 0)
                return too_many(q);
        }
        sb_addf(
            w,
            "EXISTS (SELECT 1 FROM sp_geo x%d WHERE x%d.rtype = %s AND x%d.id = %s AND x%d.param "
            "= 'position' AND x%d.geom && ST_MakeEnvelope($%d::float8, $%d::float8, $%d::float8, "
            "$%d::float8, 4326) AND ST_Intersects(x%d.geom, ST_MakeEnvelope($%d::float8, "
            "$%d::float8, $%d::float8, $%d::float8, 4326)))",
            a, a, rt, a, id, a, a, pv[0], pv[1], pv[2], pv[3], a, pv[0], pv[1], pv[2], pv[3]);
        return 0;
    }
    return 1;
}

/* One parameter (name may carry a modifier or a chain) about the resource (rt, id) of type. */
static int
fragment(query *q,
         sb *w,
         int type,
         const char *rt,
         const char *id,
         const char *name,
         const char *value,
         int depth)
{
    char base[128], *mod, *dot;
    const reg_search_param *sp;

    if (depth > 4)
        return bad_value(q, name, value, "chains and _has may nest 4 deep at most");
    if (strncmp(name, "_has:", 5) == 0)
        return frag_has(q, w, type, rt, id, name, value, depth);
    if (strlen(name) >= sizeof(base))
        return bad_value(q, name, value, "parameter name too long");
    strcpy(base, name);
    dot = strchr(base, '.');
    if (dot)
        *dot = '\0';
    mod = strchr(base, ':');
    if (mod)
        *mod++ = '\0';

    if (strcmp(base, "_id") == 0 && !dot && !mod)
        return frag_id(q, w, rt, id, name, value);
    if (strcmp(base, "_lastUpdated") == 0 && !dot && !mod)
        return frag_last_updated(q, w, rt, id, name, value);
    sp = reg_search_param_find(type, base);
    if (sp && sp->kind == REG_SP_SPECIAL && strcmp(sp->name, "near") == 0 && !dot && !mod &&
        depth == 0)
        return frag_near(q, w, rt, id, name, value);
    if (sp && sp->kind == REG_SP_SPECIAL && strcmp(sp->name, "near-distance") == 0 && !dot &&
        !mod && depth == 0) {
        if (!q->has_near)
            return bad_value(q, name, value, "near-distance needs near=latitude|longitude");
        sb_add(w, "true"); /* applied by near (frag_near) */
        return 0;
    }
    if (sp && sp->kind == REG_SP_SPECIAL && !dot && !mod)
        return frag_spatial(q, w, rt, id, sp->name, name, value);
    if (!sp || sp->kind == REG_SP_SPECIAL)
        return 1; /* unknown: the caller decides (strict or lenient) */

    if (dot) { /* chain: reference.param */
        int tt = ref_target(sp, mod), a, p, pt;
        char crt[40], cid[32];
        if (sp->kind != REG_SP_REFERENCE)
            return bad_value(q, name, value, "only reference parameters can be chained");
        if (tt < 0)
            return core_err_set_at(q->err, 400, CORE_ISSUE_INVALID, name,
                                   "%s may refer to several types: name one, as %s:Type.param",
                                   sp->name, sp->name);
        if (needs_personal(q, tt, name) < 0)
            return -1;
        if ((p = fixed(q, sp->name)) < 0 || (pt = fixed(q, reg_type_name((reg_type)tt))) < 0)
            return too_many(q);
        a = ++q->alias;
        type_lit(crt, sizeof(crt), tt);
        snprintf(cid, sizeof(cid), "c%d.target_id", a);
        sb_addf(w,
                "EXISTS (SELECT 1 FROM sp_ref c%d WHERE c%d.rtype = %s AND c%d.id = %s AND "
                "c%d.param = $%d AND c%d.target_type = $%d AND ",
                a, a, rt, a, id, a, p, a, pt);
        {
            int rc = fragment(q, w, tt, crt, cid, name + (dot - base) + 1, value, depth + 1);
            if (rc != 0)
                return rc > 0
                           ? bad_value(q, name, value, "unknown parameter at the end of the chain")
                           : -1;
        }
        sb_add(w, ")");
        return 0;
    }
    if (mod && strcmp(mod, "missing") == 0) {
        static const char *const tables[] = { "sp_string", "sp_token", "sp_ref", "sp_date" };
        return frag_missing(q, w, tables[sp->kind], rt, id, sp, name, value);
    }
    switch (sp->kind) {
    case REG_SP_STRING:
        return frag_string(q, w, rt, id, sp, mod, name, value);
    case REG_SP_TOKEN:
        return frag_token(q, w, rt, id, sp, mod, name, value);
    case REG_SP_REFERENCE:
        return frag_reference(q, w, rt, id, sp, mod, name, value);
    case REG_SP_DATE:
        if (mod)
            return core_err_set_at(q->err, 400, CORE_ISSUE_NOT_SUPPORTED, name,
                                   "modifier :%s is not supported on date parameter %s", mod,
                                   sp->name);
        return frag_date(q, w, rt, id, sp, name, value);
    default:
        return 1;
    }
}

/* ---- result control
 * -------------------------------------------------------------------------------- */

static int
parse_sort(query *q, const char *value)
{
    char *vals[MAX_SORT + 1];
    int n = split_values(value, vals, MAX_SORT + 1), rc = 0;
    if (n > MAX_SORT) {
        free_values(vals, n);
        return bad_value(q, "_sort", value, "at most 4 sort keys");
    }
    for (int i = 0; i < n && !rc; i++) {
        sortkey *k = &q->sort[q->nsort];
        const char *key = vals[i];
        const reg_search_param *sp;
        memset(k, 0, sizeof(*k));
        k->desc = key[0] == '-';
        if (k->desc)
            key++;
        core_strlcpy(k->label, vals[i], sizeof(k->label));
        k->cast = "text";
        if (strcmp(key, "_id") == 0) {
            k->expr_fmt = "r.id";
        } else if (strcmp(key, "_lastUpdated") == 0) {
            k->expr_fmt = "r.last_updated";
            k->cast = "timestamptz";
        } else if ((sp = reg_search_param_find(q->type, key)) && sp->kind != REG_SP_SPECIAL) {
            if ((k->param = fixed(q, sp->name)) < 0) {
                rc = too_many(q);
                break;
            }
            switch (sp->kind) {
            case REG_SP_STRING:
                k->expr_fmt =
                    "coalesce((SELECT min(x.norm) FROM sp_string x WHERE x.rtype = r.rtype "
                    "AND x.id = r.id AND x.param = $%d), '')";
                break;
            case REG_SP_TOKEN:
                k->expr_fmt =
                    "coalesce((SELECT min(x.code) FROM sp_token x WHERE x.rtype = r.rtype "
                    "AND x.id = r.id AND x.param = $%d), '')";
                break;
            case REG_SP_REFERENCE:
                k->expr_fmt =
                    "coalesce((SELECT min(x.target_type || '/' || x.target_id) FROM "
                    "sp_ref x WHERE x.rtype = r.rtype AND x.id = r.id AND x.param = $%d), '')";
                break;
            default:
                k->expr_fmt = "coalesce((SELECT min(x.lo) FROM sp_date x WHERE x.rtype = r.rtype "
                              "AND x.id = r.id AND x.param = $%d), '-infinity')";
                k->cast = "timestamptz";
                break;
            }
        } else {
            rc = core_err_set_at(q->err, 400, CORE_ISSUE_NOT_SUPPORTED, "_sort",
                                 "cannot sort by \"%.60s\"; use _id, _lastUpdated or a search "
                                 "parameter of %s",
                                 key, reg_type_name((reg_type)q->type));
            break;
        }
        q->nsort++;
    }
    free_values(vals, n);
    return rc;
}

static int
parse_include(query *q, const char *name, const char *value)
{
    int rev = strncmp(name, "_revinclude", 11) == 0;
    const char *suffix = name + (rev ? 11 : 8);
    char buf[160], *t, *p, *tgt, *save = NULL;
    incl *in;

    if (*suffix && strcmp(suffix, ":iterate") != 0 && strcmp(suffix, ":recurse") != 0)
        return bad_value(q, name, value, "the only modifier here is :iterate");
    if (strcmp(value, "*") == 0)
        return bad_value(q, name, value,
                         "name the reference to follow, e.g. Location:organization");
    if (q->nincs >= (int)(sizeof(q->incs) / sizeof(q->incs[0])))
        return bad_value(q, name, value, "too many includes");
    core_strlcpy(buf, value, sizeof(buf));
    t = strtok_r(buf, ":", &save);
    p = strtok_r(NULL, ":", &save);
    tgt = strtok_r(NULL, ":", &save);
    in = &q->incs[q->nincs];
    memset(in, 0, sizeof(*in));
    in->rev = rev;
    in->iterate = *suffix != '\0';
    in->target = -1;
    if (!t || !p || (in->src_type = reg_type_find(t)) < 0)
        return bad_value(q, name, value, "use Type:reference[:targetType] with a stored Type");
    in->sp = reg_search_param_find(in->src_type, p);
    if (!in->sp || in->sp->kind != REG_SP_REFERENCE)
        return bad_value(q, name, value, "not a reference parameter of that type");
    if (tgt && (in->target = reg_type_find(tgt)) < 0)
        return bad_value(q, name, value, "the target type is not stored here");
    if (!rev && !in->iterate && in->src_type != q->type)
        return bad_value(q, name, value,
                         "_include must start from the searched type (or use :iterate)");
    if (rev && in->sp->targets && !strstr(in->sp->targets, reg_type_name((reg_type)q->type)) &&
        !in->iterate)
        return bad_value(q, name, value, "that reference never points to the searched type");
    {
        int reach = rev ? in->src_type : in->target >= 0 ? in->target : ref_target(in->sp, NULL);
        if (needs_personal(q, reach, name) < 0)
            return -1;
        if (!rev && reach < 0 && !q->opts->allow_personal &&
            (strstr(in->sp->targets ? in->sp->targets : "", "Practitioner")))
            return needs_personal(q, REG_PRACTITIONER, name);
    }
    q->nincs++;
    return 0;
}

/* Names the caller handles (presentation) or that are paging state: passed over here. */
static int
is_presentation(const char *name)
{
    static const char *const names[] = { "_format", "_pretty", "_summary", "_elements",
                                         "_count",  "_cursor", NULL };
    for (int i = 0; names[i]; i++)
        if (strcmp(name, names[i]) == 0)
            return 1;
    return 0;
}

/* ---- cursors
 * ------------------------------------------------------------------------------------- */

/* A cursor is base64url(JSON ["n"|"p", key values..., id]). */
static char *
cursor_make(const char *dir, PGresult *r, int row, int nsort)
{
    json_t *a = json_array();
    char *text, *out;
    size_t len, cap;
    json_array_append_new(a, json_string(dir));
    for (int i = 0; i < nsort; i++)
        json_array_append_new(a, json_string(PQgetvalue(r, row, 2 + i)));
    json_array_append_new(a, json_string(PQgetvalue(r, row, 0)));
    text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    if (!text)
        abort();
    len = strlen(text);
    cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out = malloc(cap);
    if (!out)
        abort();
    sodium_bin2base64(out, cap, (const unsigned char *)text, len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    free(text);
    return out;
}

/* Decode a cursor into its direction and values (new JSON array), or NULL. */
static json_t *
cursor_read(const char *cursor, int nsort)
{
    unsigned char buf[4096];
    size_t len;
    json_t *a;
    if (strlen(cursor) > 5000 ||
        sodium_base642bin(buf, sizeof(buf) - 1, cursor, strlen(cursor), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return NULL;
    buf[len] = '\0';
    a = json_loads((const char *)buf, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_array(a) || (int)json_array_size(a) != nsort + 2) {
        json_decref(a);
        return NULL;
    }
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!json_is_string(json_array_get(a, i))) {
            json_decref(a);
            return NULL;
        }
    {
        const char *d = json_string_value(json_array_get(a, 0));
        if (strcmp(d, "n") != 0 && strcmp(d, "p") != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* The SQL of a sort key: its fixed text with the "$%d" placeholder replaced by the $n that
 * holds the parameter name (spliced by hand: the text is not a format string). */
static void
sort_expr(const sortkey *k, char *out, size_t cap)
{
    const char *mark = k->param ? strstr(k->expr_fmt, "%d") : NULL;
    if (!mark) {
        core_strlcpy(out, k->expr_fmt, cap);
        return;
    }
    snprintf(out, cap, "%.*s%d%s", (int)(mark - k->expr_fmt), k->expr_fmt, k->param, mark + 2);
}

/* (k1, ..., id) strictly after (backward: before) the cursor values in the sort order. */
static int
keyset(query *q, sb *w, json_t *cur, int backward)
{
    int n = q->nsort, pv[MAX_SORT + 1];
    for (int i = 0; i <= n; i++)
        if ((pv[i] = val(q, json_string_value(json_array_get(cur, (size_t)i + 1)))) < 0)
            return too_many(q);
    sb_add(w, " AND (");
    for (int i = 0; i <= n; i++) {
        char e[1024];
        if (i)
            sb_add(w, " OR ");
        sb_add(w, "(");
        for (int j = 0; j < i; j++) {
            sort_expr(&q->sort[j], e, sizeof(e));
            sb_addf(w, "%s = $%d::%s AND ", e, pv[j], q->sort[j].cast);
        }
        if (i < n) {
            int gt = q->sort[i].desc == backward;
            sort_expr(&q->sort[i], e, sizeof(e));
            sb_addf(w, "%s %s $%d::%s)", e, gt ? ">" : "<", pv[i], q->sort[i].cast);
        } else {
            sb_addf(w, "r.id %s $%d)", backward ? "<" : ">", pv[i]);
        }
    }
    sb_add(w, ")");
    return 0;
}

/* ---- running it ---------------------------------------------------------------------------- */

/* The statement log of the search running on this thread (opts->record_sql), or NULL. */
static _Thread_local sb *recording;

/* Append sql to rec with each $n replaced by its value as an escaped literal. */
static void
record(sb *rec, PGconn *conn, const char *sql, int nvals, char *const *vals)
{
    for (const char *p = sql; *p;) {
        if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
            char *end;
            long n = strtol(p + 1, &end, 10);
            if (n >= 1 && n <= nvals && vals[n - 1]) {
                char *lit = PQescapeLiteral(conn, vals[n - 1], strlen(vals[n - 1]));
                sb_add(rec, lit ? lit : "NULL");
                sb_add(rec, "::text");
                PQfreemem(lit);
            } else {
                sb_add(rec, "NULL::text");
            }
            p = end;
            continue;
        }
        {
            char c[2] = { *p++, '\0' };
            sb_add(rec, c);
        }
    }
    sb_add(rec, ";\n");
}

/* sql with each $n whose value is fixed (see fixed()) replaced by that value as a literal. The
 * other values stay parameters; every $n keeps its number. */
static char *
inline_fixed(const char *sql, int nvals, char *const *vals, const unsigned char *is_fixed)
{
    sb out = { 0 };
    for (const char *p = sql; *p;) {
        if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
            char *end;
            long n = strtol(p + 1, &end, 10);
            if (n >= 1 && n <= nvals && is_fixed[n - 1] && vals[n - 1]) {
                sb_add(&out, "'");
                for (const char *v = vals[n - 1]; *v; v++) {
                    char c[3] = { *v, *v == '\'' ? '\'' : '\0', '\0' };
                    sb_add(&out, c);
                }
                sb_add(&out, "'::text");
                p = end;
                continue;
            }
            sb_addf(&out, "%.*s", (int)(end - p), p);
            p = end;
            continue;
        }
        {
            const char *q = strchr(p + 1, '$');
            size_t len = q ? (size_t)(q - p) : strlen(p);
            sb_addf(&out, "%.*s", (int)len, p);
            p += len;
        }
    }
    return out.p;
}

static PGresult *
run(core_db *db,
    const char *sql,
    int nvals,
    char *const *vals,
    const unsigned char *is_fixed,
    int prepare,
    core_err *err)
{
    PGconn *conn = core_db_conn(db, err);
    PGresult *r;
    char *text = NULL;
    if (!conn)
        return NULL;
    if (is_fixed)
        sql = text = inline_fixed(sql, nvals, vals, is_fixed);
    if (recording)
        record(recording, conn, sql, nvals, vals);
    /* Every value is declared text: a statement need not use them all (the count leaves out
     * sort keys, "gt" uses one end of a range), and casts in the fragments say what each is
     * compared as. Prepared once per connection and shape (core_db_query). */
    r = core_db_query(db, sql, nvals, (const char *const *)vals, prepare, err);
    free(text);
    return r;
}

static int
has_hit(const reg_search_out *out, int type, const char *id)
{
    for (int i = 0; i < out->nhits; i++)
        if (out->hits[i].type == type && strcmp(out->hits[i].id, id) == 0)
            return 1;
    return 0;
}

static void
add_hit(reg_search_out *out, int type, const char *id, const char *json, int include)
{
    reg_hit *h;
    out->hits = realloc(out->hits, sizeof(*out->hits) * (size_t)(out->nhits + 1));
    if (!out->hits)
        abort();
    h = &out->hits[out->nhits++];
    h->type = type;
    core_strlcpy(h->id, id, sizeof(h->id));
    h->json = strdup(json);
    if (!h->json)
        abort();
    h->include = include;
    h->distance = -1;
}

/* Follow one _include/_revinclude from the hits of the right type among out->hits[from..].
 * Returns the number added, or -1 with err. */
/* Follow one _include/_revinclude from the hits among out->hits[from..] of type `type`: the
 * referring side (include) or the referred side (revinclude). One query per type, matching
 * plain ids so that the sp_ref indexes serve it. Returns the number added, or -1. */
static int
follow_type(reg_search_out *out, core_db *db, const incl *in, int type, int from, core_err *err)
{
    int added = 0, nids = 0;
    sb ids = { 0 };
    char *vals[5];
    PGresult *r;

    sb_add(&ids, "{");
    for (int i = from; i < out->nhits; i++)
        if (out->hits[i].type == type) /* FHIR ids need no quoting in an array literal */
            sb_addf(&ids, "%s%s", nids++ ? "," : "", out->hits[i].id);
    sb_add(&ids, "}");
    if (!nids) {
        free(ids.p);
        return 0;
    }
    static const unsigned char inc_fixed[5] = { 0, 1, 1, 1, 1 }; /* all but the ids */
    vals[0] = ids.p;
    vals[1] = (char *)reg_type_name((reg_type)in->src_type);
    vals[2] = (char *)in->sp->name;
    vals[3] = (char *)(in->target >= 0 ? reg_type_name((reg_type)in->target) : NULL);
    vals[4] = (char *)reg_type_name((reg_type)type);
    if (!in->rev)
        r = run(db,
                "SELECT x.rtype, x.id, x.content::text FROM sp_ref f JOIN resource x ON "
                "x.rtype = f.target_type AND x.id = f.target_id AND NOT x.deleted WHERE "
                "f.rtype = $2 AND f.id = ANY($1::text[]) AND f.param = $3 AND "
                "($4::text IS NULL OR f.target_type = $4) AND $5::text IS NOT NULL "
                "ORDER BY x.rtype, x.id LIMIT 1001",
                5, vals, inc_fixed, 1, err);
    else
        r = run(db,
                "SELECT x.rtype, x.id, x.content::text FROM sp_ref f JOIN resource x ON "
                "x.rtype = f.rtype AND x.id = f.id AND NOT x.deleted WHERE f.target_type = $5 "
                "AND f.target_id = ANY($1::text[]) AND f.param = $3 AND f.rtype = $2 AND "
                "$4::text IS NULL ORDER BY x.rtype, x.id LIMIT 1001",
                5, vals, inc_fixed, 1, err);
    free(ids.p);
    if (!r)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        int t = reg_type_find(PQgetvalue(r, i, 0));
        if (t < 0 || has_hit(out, t, PQgetvalue(r, i, 1)))
            continue;
        if (out->nhits - out->nmatches >= MAX_INCLUDES)
            break;
        add_hit(out, t, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), 1);
        added++;
    }
    PQclear(r);
    return added;
}

/* Follow one _include/_revinclude from out->hits[from..]. */
static int
follow(reg_search_out *out, core_db *db, const incl *in, int main_type, int from, core_err *err)
{
    int added = 0;
    if (!in->rev)
        return follow_type(out, db, in, in->src_type, from, err);
    for (int t = 0; t < REG_NTYPES; t++) {
        int n;
        /* revinclude starts from the searched type, or with :iterate from any type it targets */
        if (in->iterate ? !in->sp->targets || !strstr(in->sp->targets, reg_type_name((reg_type)t))
                        : t != main_type)
            continue;
        if ((n = follow_type(out, db, in, t, from, err)) < 0)
            return -1;
        added += n;
    }
    return added;
}

static int
includes(reg_search_out *out, core_db *db, query *q, core_err *err)
{
    int from = 0;
    for (int i = 0; i < q->nincs; i++)
        if (!q->incs[i].iterate && follow(out, db, &q->incs[i], q->type, 0, err) < 0)
            return -1;
    /* :iterate applies to everything found so far, round after round, until nothing is new */
    for (int round = 0; round < MAX_ITERATE; round++) {
        int added = 0, start = out->nhits;
        for (int i = 0; i < q->nincs; i++) {
            int n;
            if (!q->incs[i].iterate)
                continue;
            if ((n = follow(out, db, &q->incs[i], q->type, from, err)) < 0)
                return -1;
            added += n;
        }
        from = start;
        if (!added)
            break;
    }
    return 0;
}

void
reg_search_out_clear(reg_search_out *out)
{
    for (int i = 0; i < out->nhits; i++)
        free(out->hits[i].json);
    free(out->hits);
    free(out->next);
    free(out->prev);
    free(out->self);
    free(out->ignored);
    free(out->sql);
    memset(out, 0, sizeof(*out));
}

static void
query_free(query *q)
{
    for (int i = 0; i < q->nvals; i++)
        free(q->vals[i]);
    free(q->where.p);
    free(q->self.p);
    free(q->ignored.p);
}

/* The page of a nearest-first search (no _sort, paging forward), driven by the spatial index:
 * the `cand` positions nearest by the GiST KNN order (great-circle distance on a sphere),
 * within the radius widened by NEAR_EPS on the sphere (cheap) and filtered by the search's
 * other conditions, are re-ranked by their true geodesic distance on the WGS84 spheroid
 * (ST_Distance on geography), which then applies the radius exactly. The two distances differ by
 * less than NEAR_EPS (relative), so the re-ranked page is exact when the last row it needs is
 * nearer than (1 - NEAR_EPS) times the farthest candidate, or when there were fewer candidates than
 * asked for (all of them); otherwise it asks for four times as many. Columns as the general
 * page: id, content, k0 (distance), dist. Returns 1 with *res, 0 when the general statement
 * must answer (very many candidates), -1 with q->err. */
#define NEAR_EPS      0.0065 /* the two differ by at most 0.56 % (WGS84 meridian at the equator) */
#define NEAR_MAX_CAND 20000

static int
near_page(query *q, core_db *db, const char *rtlit, int want, PGresult **res, int *more)
{
    sb where = { 0 }, own = { 0 };
    const char *cut;
    char cand[16], limit[16], boxc[320] = "";
    int pc, pl;

    /* the search's conditions without its own near condition (the KNN scan applies it) */
    sb_addf(&own, " AND %s", q->near_cond);
    cut = strstr(q->where.p, own.p);
    if (!cut) {
        free(own.p);
        return 0;
    }
    sb_addf(&where, "%.*s%s", (int)(cut - q->where.p), q->where.p, cut + own.len);
    free(own.p);
    /* with no other condition the KNN scan stops after cand rows wherever they are, and the
     * radius is applied to the ranked rows; with others (which the scan filters row by row)
     * the radius also bounds the scan, so an area with no match is not scanned to the end */
    if (where.len > 0)
        snprintf(boxc, sizeof(boxc), " AND r.geog && _ST_Expand(%s, %s / %.4f)", q->near_point,
                 q->near_radius, 1.0 - NEAR_EPS);
    snprintf(limit, sizeof(limit), "%d", want);
    if ((pl = fixed(q, limit)) < 0) {
        free(where.p);
        return too_many(q), -1;
    }
    for (int n = want + 2; n <= NEAR_MAX_CAND; n *= 4) {
        sb sql = { 0 };
        PGresult *r;
        int rows, last;
        snprintf(cand, sizeof(cand), "%d", n);
        if ((pc = fixed(q, cand)) < 0) {
            free(where.p);
            return too_many(q), -1;
        }
        /* sp_geo is aliased r so that the conditions (written about r.id) apply to it */
        /* candidates (KNN) → re-ranked (spheroid) → the page → its resources */
        sb_addf(&sql,
                "WITH c AS (SELECT r.id, ST_Distance(r.geog, %s) AS d, r.sd FROM (SELECT r.id, "
                "r.geog, r.geog <-> %s AS sd FROM sp_geo r WHERE r.rtype = %s AND r.param = "
                "'position'%s%s ORDER BY r.geog <-> %s LIMIT $%d::bigint) r) "
                "SELECT p.id, x.content::text, (p.d)::text AS k0, (p.d)::text AS dist, m.n, "
                "m.smax, m.nr FROM (SELECT count(*) AS n, max(c.sd) AS smax, count(*) FILTER "
                "(WHERE c.d <= %s) AS nr FROM c) m LEFT JOIN (SELECT c.id, c.d FROM c WHERE "
                "c.d <= %s ORDER BY c.d, c.id LIMIT $%d::bigint) p ON true LEFT JOIN resource x "
                "ON x.rtype = %s AND x.id = p.id AND NOT x.deleted ORDER BY p.d, p.id",
                q->near_point, q->near_point, rtlit, boxc, where.p, q->near_point, pc,
                q->near_radius, q->near_radius, pl, rtlit);
        r = run(db, sql.p, q->nvals, q->vals, q->is_fixed, 1, q->err);
        free(sql.p);
        if (!r) {
            free(where.p);
            return -1;
        }
        /* one row at least (the counts); no match within the radius: one row without id */
        rows = PQgetisnull(r, 0, 0) ? 0 : PQntuples(r);
        last = rows - 1;
        {
            /* any position that is not a candidate is at least `bound` away (spheroid) */
            long cands = atol(PQgetvalue(r, 0, 4));
            long within = atol(PQgetvalue(r, 0, 6));
            double bound = atof(PQgetvalue(r, 0, 5)) * (1.0 - NEAR_EPS);
            int all = cands < n; /* the scan ran out: every candidate position was seen */
            if (all ||
                (rows == want ? atof(PQgetvalue(r, last, 2)) <= bound : q->near_radius_m < bound)) {
                /* more after this page: a candidate within the radius beyond it, or, when the
                 * candidates were cut short, possibly one beyond them (a next page may turn
                 * out empty; none may be missing) */
                *more = within > want || (!all && rows == want && bound <= q->near_radius_m);
                free(where.p);
                if (!rows) { /* an empty page, as the general statement would give */
                    PQclear(r);
                    if (!(r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK)))
                        abort();
                }
                *res = r;
                return 1;
            }
        }
        core_log(CORE_LOG_DEBUG, "near: %d candidates were not enough", n);
        PQclear(r);
    }
    free(where.p);
    return 0;
}

/* SELECT count(*) of the matches (before any cursor condition) into out->total. */
static int
count_total(query *q, core_db *db, const char *rtlit, size_t wlen, reg_search_out *out)
{
    sb sql = { 0 };
    PGresult *r;
    if (q->nconds == 1 && q->below_count[0])
        sb_add(&sql, q->below_count);
    else
        sb_addf(&sql, "SELECT count(*) FROM resource r WHERE r.rtype = %s AND NOT r.deleted%.*s",
                rtlit, (int)wlen, q->where.p ? q->where.p : "");
    r = run(db, sql.p, q->nvals, q->vals, q->is_fixed, q->point, q->err);
    free(sql.p);
    if (!r)
        return -1;
    out->total = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

int
reg_search(reg_search_out *out,
           core_db *db,
           int type,
           const reg_qparam *params,
           size_t n,
           const reg_search_opts *opts,
           core_err *err)
{
    query q;
    sb sql = { 0 }, order = { 0 }, cols = { 0 };
    json_t *cur = NULL;
    PGresult *r = NULL;
    int backward = 0, rows, rc = -1, pt, near_more = -1;
    size_t wlen;
    char limit[16], rtlit[40];

    sb rec = { 0 };

    memset(out, 0, sizeof(*out));
    memset(&q, 0, sizeof(q));
    recording = opts->record_sql ? &rec : NULL;
    q.type = type;
    q.opts = opts;
    q.err = err;
    q.total_mode = 2;
    out->total = -1;
    if ((pt = fixed(&q, reg_type_name((reg_type)type))) != 1)
        goto done;
    type_lit(rtlit, sizeof(rtlit), type);
    sb_add(&q.where, "");

    for (size_t i = 0; i < n; i++) /* near's radius may come as near-distance, before or after */
        if (strcmp(params[i].name, "near-distance") == 0 && params[i].value && *params[i].value)
            q.near_distance = params[i].value;
        else if (strcmp(params[i].name, "near") == 0 && params[i].value && *params[i].value)
            q.has_near = 1;
    for (size_t i = 0; i < n; i++) {
        const char *name = params[i].name, *value = params[i].value ? params[i].value : "";
        int res;
        if (is_presentation(name))
            continue;
        if (strcmp(name, "_sort") == 0) {
            if (parse_sort(&q, value) < 0)
                goto done;
            continue;
        }
        if (strcmp(name, "_total") == 0) {
            if (strcmp(value, "none") == 0)
                q.total_mode = 0;
            else if (strcmp(value, "estimate") == 0)
                q.total_mode = 1;
            else if (strcmp(value, "accurate") == 0)
                q.total_mode = 2;
            else {
                bad_value(&q, name, value, "use none, estimate or accurate");
                goto done;
            }
            q.total_given = 1;
            self_add(&q, name, value);
            continue;
        }
        if (strncmp(name, "_include", 8) == 0 || strncmp(name, "_revinclude", 11) == 0 ||
            strncmp(name, "_revInclude", 11) == 0) {
            char fixed[64];
            core_strlcpy(fixed, name, sizeof(fixed));
            if (strncmp(fixed, "_revInclude", 11) == 0)
                fixed[4] = 'i'; /* the IG's spelling */
            if (parse_include(&q, fixed, value) < 0)
                goto done;
            self_add(&q, fixed, value);
            continue;
        }
        if (!*value) /* R4: a parameter with an empty value is ignored */
            continue;
        {
            sb frag = { 0 };
            res = fragment(&q, &frag, type, rtlit, "r.id", name, value, 0);
            if (res == 0) {
                q.nconds++;
                if (strcmp(name, "_id") == 0 || strcmp(name, "identifier") == 0)
                    q.point = 1;
                sb_add(&q.where, " AND ");
                sb_add(&q.where, frag.p);
                self_add(&q, name, value);
            }
            free(frag.p);
        }
        if (res < 0)
            goto done;
        if (res > 0) {
            if (opts->strict) {
                core_err_set_at(
                    err, 400, CORE_ISSUE_NOT_SUPPORTED, name,
                    "unknown search parameter \"%.80s\" for %s (Prefer: handling=strict)", name,
                    reg_type_name((reg_type)type));
                goto done;
            }
            if (q.ignored.len)
                sb_add(&q.ignored, ",");
            sb_add(&q.ignored, name);
        }
    }
    if (q.area_sort && !q.near_expr[0] && q.nsort == 0) {
        sortkey *k = &q.sort[q.nsort++];
        memset(k, 0, sizeof(*k));
        /* planar area on lon/lat: cheap, and a boundary inside another is smaller in any
         * measure, which is all "innermost first" needs */
        k->expr_fmt = "(SELECT min(ST_Area(b.geom)) FROM sp_geo b WHERE b.rtype = r.rtype AND b.id "
                      "= r.id AND b.param = 'boundary')";
        k->cast = "float8";
        k->hidden = 1;
    }
    if (q.near_expr[0] && q.nsort == 0) {
        /* near: nearest first unless _sort says otherwise */
        q.near_sorted = q.near_cond[0] != '\0';
        sortkey *k = &q.sort[q.nsort++];
        memset(k, 0, sizeof(*k));
        k->expr_fmt = q.near_expr;
        k->cast = "float8";
        k->hidden = 1;
    }
    if (q.nsort) {
        sb sorts = { 0 };
        for (int i = 0; i < q.nsort; i++)
            if (!q.sort[i].hidden)
                sb_addf(&sorts, "%s%s", sorts.len ? "," : "", q.sort[i].label);
        if (sorts.p)
            self_add(&q, "_sort", sorts.p);
        free(sorts.p);
    }
    if (q.total_mode == 0 && q.nincs == 0 && opts->count_only)
        q.total_mode = 2;
    /* nearest first: the total within the radius is counted only when asked for (_total), or
     * known for free when the first page holds every match */
    if (q.near_sorted && !q.total_given && !opts->count_only)
        q.total_mode = 0;

    /* _summary=count: the total only */
    if (opts->count_only) {
        if (count_total(&q, db, rtlit, q.where.len, out) < 0)
            goto done;
        rc = 0;
        goto done;
    }

    wlen = q.where.len; /* the conditions of the search, before the cursor's */
    if (opts->cursor) {
        if (!(cur = cursor_read(opts->cursor, q.nsort))) {
            core_err_set_at(err, 400, CORE_ISSUE_VALUE, "_cursor",
                            "the paging link is not valid for this search; start again from the "
                            "first page");
            goto done;
        }
        backward = strcmp(json_string_value(json_array_get(cur, 0)), "p") == 0;
        if (keyset(&q, &q.where, cur, backward) < 0)
            goto done;
    }

    /* SELECT id, content, sort keys... ORDER BY keys, id (reversed when paging backward) */
    for (int i = 0; i < q.nsort; i++) {
        char e[1024];
        int desc = q.sort[i].desc != backward;
        sort_expr(&q.sort[i], e, sizeof(e));
        sb_addf(&cols, ", (%s)::text AS k%d", e, i);
        sb_addf(&order, "%s%s %s", i ? ", " : "", e, desc ? "DESC" : "ASC");
    }
    sb_addf(&order, "%sr.id %s", q.nsort ? ", " : "", backward ? "DESC" : "ASC");
    if (q.near_expr[0])
        sb_addf(&cols, ", (%s)::text AS dist", q.near_expr);
    snprintf(limit, sizeof(limit), "%d", opts->count + 1);
    {
        int pl = fixed(&q, limit);
        if (pl < 0) {
            too_many(&q);
            goto done;
        }
        sb_addf(&sql,
                "SELECT r.id, r.content::text%s FROM resource r WHERE r.rtype = %s AND NOT "
                "r.deleted%s ORDER BY %s LIMIT $%d::bigint",
                cols.p ? cols.p : "", rtlit, q.where.p, order.p, pl);
    }
    if (q.near_sorted && !backward) {
        int got = near_page(&q, db, rtlit, opts->count, &r, &near_more);
        if (got < 0)
            goto done;
        if (got == 0 && !(r = run(db, sql.p, q.nvals, q.vals, q.is_fixed, q.point, err)))
            goto done;
    } else if (!(r = run(db, sql.p, q.nvals, q.vals, q.is_fixed, q.point, err))) {
        goto done;
    }
    rows = PQntuples(r);
    {
        int take = rows > opts->count ? opts->count : rows;
        int more = near_more >= 0 ? near_more : rows > opts->count;
        /* walking backward fetched the rows nearest the cursor first: restore the order */
        for (int k = 0; k < take; k++) {
            int i = backward ? take - 1 - k : k;
            add_hit(out, type, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), 0);
            if (q.near_expr[0])
                out->hits[out->nhits - 1].distance =
                    atof(PQgetvalue(r, i, 2 + q.nsort)) / q.near_factor;
        }
        out->nmatches = take;
        if (take > 0) {
            int first = backward ? take - 1 : 0, last = backward ? 0 : take - 1;
            if (backward ? 1 : more)
                out->next = cursor_make("n", r, last, q.nsort);
            if (backward ? more : cur != NULL)
                out->prev = cursor_make("p", r, first, q.nsort);
        }
    }
    PQclear(r);
    r = NULL;
    /* the total over all pages: a first page that holds every match is its own count */
    if ((q.total_mode || (q.near_sorted && !q.total_given)) && !cur && rows <= opts->count &&
        near_more <= 0)
        out->total = rows;
    else if (q.total_mode && count_total(&q, db, rtlit, wlen, out) < 0)
        goto done;
    if (q.nincs && includes(out, db, &q, err) < 0)
        goto done;
    rc = 0;
done:
    recording = NULL;
    if (rc == 0 && q.near_expr[0])
        core_strlcpy(out->near_unit, q.near_unit, sizeof(out->near_unit));
    if (rc == 0) {
        out->sql = rec.p;
        rec.p = NULL;
        out->self = q.self.p ? q.self.p : strdup("");
        q.self.p = NULL;
        out->ignored = q.ignored.p;
        q.ignored.p = NULL;
    } else {
        reg_search_out_clear(out);
    }
    json_decref(cur);
    PQclear(r);
    free(rec.p);
    free(sql.p);
    free(order.p);
    free(cols.p);
    query_free(&q);
    return rc;
}
