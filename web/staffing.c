/* GET [base]/Location/{id}/$staffing and GET [base]/Organization/{id}/$staffing[?includeBelow=
 * true]: the health workers posted at a place, counted by role, as a FHIR Parameters resource.
 * The counting is registry/staffing.c's; this file reads the parameter and writes the answer.
 * The counts derive from PractitionerRole, so the router asks for the access a PractitionerRole
 * read needs (a token). */
#include <stdio.h>
#include <string.h>

#include "web/web_int.h"

static json_t *
integer_param(const char *name, long v)
{
    return web_param_part(name, "valueInteger", core_json_integer(v));
}

/* One role: code (valueCoding) or, for a concept given only as text, text (valueString); count. */
static json_t *
role_param(const reg_staffing_role *g)
{
    json_t *p = json_object(), *parts = json_array();

    json_object_set_new(p, "name", json_string("role"));
    if (g->code) {
        json_t *c = json_object();
        if (g->system)
            json_object_set_new(c, "system", json_string(g->system));
        json_object_set_new(c, "code", json_string(g->code));
        if (g->display)
            json_object_set_new(c, "display", json_string(g->display));
        json_array_append_new(parts, web_param_part("code", "valueCoding", c));
    } else {
        json_array_append_new(parts, web_param_part("text", "valueString",
                                                    json_string(g->display ? g->display : "")));
    }
    json_array_append_new(parts, integer_param("count", g->count));
    json_object_set_new(p, "part", parts);
    return p;
}

int
web_staffing(web_req *r, reg_type t, const char *id)
{
    core_err err = CORE_ERR_INIT;
    const char *below = web_query(r, "includeBelow");
    reg_staffing s;
    json_t *out, *params, *ref;
    int include_below = 0;

    if (below) {
        if (strcmp(below, "true") == 0) {
            include_below = 1;
        } else if (strcmp(below, "false") != 0) {
            core_err_set_at(&err, 400, CORE_ISSUE_VALUE, "includeBelow",
                            "includeBelow must be true or false (got \"%.40s\")", below);
            web_send_error(r, &err);
            core_err_clear(&err);
            return 400;
        }
    }
    if (reg_staffing_count(&s, r->th->db, t, id, include_below, &err) < 0) {
        int status = err.status ? err.status : 500;
        reg_staffing_clear(&s);
        web_send_error(r, &err);
        core_err_clear(&err);
        return status;
    }

    out = json_object();
    params = json_array();
    json_object_set_new(out, "resourceType", json_string("Parameters"));
    ref = json_object();
    json_object_set_new(ref, "reference",
                        json_string(core_arena_sprintf(r->arena, "%s/%s", reg_type_name(t), id)));
    if (s.name && *s.name)
        json_object_set_new(ref, "display", json_string(s.name));
    json_array_append_new(params, web_param_part(t == REG_LOCATION ? "location" : "organization",
                                                 "valueReference", ref));
    if (s.date[0])
        json_array_append_new(params, web_param_part("date", "valueDate", json_string(s.date)));
    json_array_append_new(
        params, web_param_part("includeBelow", "valueBoolean", json_boolean(include_below)));
    json_array_append_new(params, integer_param("places", s.places));
    json_array_append_new(params, integer_param("total", s.total));
    json_array_append_new(params, integer_param("practitioners", s.practitioners));
    json_array_append_new(params, integer_param("uncoded", s.uncoded));
    for (size_t i = 0; i < s.n; i++)
        json_array_append_new(params, role_param(&s.roles[i]));
    json_object_set_new(out, "parameter", params);
    reg_staffing_clear(&s);
    web_send_json(r, 200, NULL, out);
    json_decref(out);
    return 200;
}
