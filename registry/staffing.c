/* Staffing of a Location or an Organization: the active postings (PractitionerRole) that name
 * it, counted by role code. Everything comes from the search index (sp_ref for the posting's
 * location or organization, sp_date for its period, sp_below for the places below) and the
 * stored content (the role codes with their display), in one parameterised statement. */
#include <stdlib.h>
#include <string.h>

#include "registry/registry.h"

/* $1 the place's type ('Location' or 'Organization'), $2 the PractitionerRole reference that
 * names it ('location' or 'organization'), $3 its id, $4 'true' to take the places below it
 * (partOf, any depth: the closure table sp_below) as well.
 * A posting counts when it is live, its active is not false, and its period (the `date` index:
 * open ends reach to the ends of time, a partial date covers its whole span, UTC) covers now;
 * no period means always. Each coding of PractitionerRole.code is a group (system, code), its
 * display the coding's display, else the concept's text; a concept without a coded value is a
 * group by its text. A posting is counted once per group however often it repeats the code.
 * Rows: kind 'role' (system, code, display, count), then 'total', 'practitioners' (distinct
 * practitioners holding the postings), 'uncoded' (postings with neither code nor text) and
 * 'places' (how many places were looked at), each with its count in column 5. */
static const core_stmt ST_STAFFING = {
    "reg_staffing",
    "WITH places AS ("
    "  SELECT $3::text AS id"
    "  UNION"
    "  SELECT b.id FROM sp_below b WHERE $4::boolean AND b.rtype = $1 AND b.anc = $3"
    "), posts AS ("
    "  SELECT p.id, p.content FROM resource p"
    "   WHERE p.rtype = 'PractitionerRole' AND NOT p.deleted"
    "     AND p.id IN (SELECT f.id FROM sp_ref f JOIN places x ON f.target_id = x.id"
    "                   WHERE f.rtype = 'PractitionerRole' AND f.param = $2"
    "                     AND f.target_type = $1)"
    "     AND p.content -> 'active' IS DISTINCT FROM 'false'::jsonb"
    "     AND (NOT EXISTS (SELECT 1 FROM sp_date d WHERE d.rtype = 'PractitionerRole'"
    "                       AND d.id = p.id AND d.param = 'date')"
    "          OR EXISTS (SELECT 1 FROM sp_date d WHERE d.rtype = 'PractitionerRole'"
    "                      AND d.id = p.id AND d.param = 'date' AND d.lo <= now()"
    "                      AND d.hi > now()))"
    "), codes AS ("
    "  SELECT p.id, cd ->> 'system' AS system, cd ->> 'code' AS code,"
    "         cd ->> 'display' AS display, c ->> 'text' AS text"
    "    FROM posts p"
    "   CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(p.content -> 'code')"
    "         = 'array' THEN p.content -> 'code' ELSE '[]'::jsonb END) c"
    "   CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(c -> 'coding') = 'array'"
    "         AND jsonb_array_length(c -> 'coding') > 0 THEN c -> 'coding'"
    "         ELSE '[{}]'::jsonb END) cd"
    "), groups AS ("
    "  SELECT id, CASE WHEN code IS NOT NULL THEN system END AS system, code,"
    "         CASE WHEN code IS NOT NULL THEN coalesce(display, text) ELSE text END AS label"
    "    FROM codes WHERE code IS NOT NULL OR text IS NOT NULL"
    ") "
    "SELECT * FROM ("
    "  SELECT 0 AS k, 'role' AS kind, system, code, min(label) AS display,"
    "         count(DISTINCT id) AS n"
    "    FROM groups GROUP BY system, code, CASE WHEN code IS NULL THEN label END"
    "  UNION ALL SELECT 1, 'total', NULL, NULL, NULL, count(*) FROM posts"
    "  UNION ALL SELECT 1, 'practitioners', NULL, NULL, NULL, count(DISTINCT r.target_id)"
    "    FROM sp_ref r WHERE r.rtype = 'PractitionerRole' AND r.param = 'practitioner'"
    "     AND r.id IN (SELECT id FROM posts)"
    "  UNION ALL SELECT 1, 'uncoded', NULL, NULL, NULL, count(*) FROM posts p"
    "   WHERE NOT EXISTS (SELECT 1 FROM groups g WHERE g.id = p.id)"
    "  UNION ALL SELECT 1, 'places', NULL, NULL, NULL, count(*) FROM places"
    "  UNION ALL SELECT 1, 'date', NULL, NULL, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD'),"
    "         0"
    ") s ORDER BY k, n DESC, system NULLS LAST, code NULLS LAST, display",
    4
};

static char *
dup_or_null(const PGresult *r, int row, int col)
{
    char *s;
    if (PQgetisnull(r, row, col))
        return NULL;
    if (!(s = strdup(PQgetvalue(r, row, col))))
        abort();
    return s;
}

void
reg_staffing_clear(reg_staffing *s)
{
    for (size_t i = 0; s->roles && i < s->n; i++) {
        free(s->roles[i].system);
        free(s->roles[i].code);
        free(s->roles[i].display);
    }
    free(s->roles);
    free(s->name);
    memset(s, 0, sizeof(*s));
}

int
reg_staffing_count(
    reg_staffing *out, core_db *db, reg_type t, const char *id, int include_below, core_err *err)
{
    const char *params[4];
    json_t *place;
    const char *name;
    PGresult *r;
    int rows;

    memset(out, 0, sizeof(*out));
    if (t != REG_LOCATION && t != REG_ORGANIZATION)
        return core_err_set(err, 400, CORE_ISSUE_NOT_SUPPORTED,
                            "staffing is counted for a Location or an Organization, not a %s",
                            reg_type_name(t));
    /* 404 for an unknown id, 410 for a deleted one, as a read would answer */
    if (reg_read(&place, NULL, NULL, db, t, id, err) < 0)
        return -1;
    name = json_string_value(json_object_get(place, "name"));
    if (name && !(out->name = strdup(name)))
        abort();
    json_decref(place);

    params[0] = reg_type_name(t);
    params[1] = t == REG_LOCATION ? "location" : "organization";
    params[2] = id;
    params[3] = include_below ? "true" : "false";
    if (!(r = core_db_exec(db, &ST_STAFFING, params, err))) {
        reg_staffing_clear(out);
        return -1;
    }
    rows = PQntuples(r);
    out->roles = calloc(rows ? (size_t)rows : 1, sizeof(*out->roles));
    if (!out->roles)
        abort();
    for (int i = 0; i < rows; i++) {
        const char *kind = PQgetvalue(r, i, 1);
        long n = atol(PQgetvalue(r, i, 5));
        if (strcmp(kind, "role") == 0) {
            reg_staffing_role *g = &out->roles[out->n++];
            g->system = dup_or_null(r, i, 2);
            g->code = dup_or_null(r, i, 3);
            g->display = dup_or_null(r, i, 4);
            g->count = n;
        } else if (strcmp(kind, "total") == 0) {
            out->total = n;
        } else if (strcmp(kind, "practitioners") == 0) {
            out->practitioners = n;
        } else if (strcmp(kind, "uncoded") == 0) {
            out->uncoded = n;
        } else if (strcmp(kind, "places") == 0) {
            out->places = n;
        } else if (strcmp(kind, "date") == 0) {
            core_strlcpy(out->date, PQgetvalue(r, i, 4), sizeof(out->date));
        }
    }
    PQclear(r);
    return 0;
}
