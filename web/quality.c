/* GET [base]/Location/$data-quality[?partof=Location/id][&_format=csv]: every problem with the
 * facilities' positions, with its reason, and counts per jurisdiction, as a FHIR Parameters
 * resource or as CSV for a spreadsheet (cells that a spreadsheet would run as a formula are
 * prefixed with an apostrophe). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web/web_int.h"

static json_t *
ref(const char *type, const char *id, const char *display)
{
    json_t *r = json_object();
    char buf[140];
    snprintf(buf, sizeof(buf), "%s/%s", type, id);
    json_object_set_new(r, "reference", json_string(buf));
    if (display && *display)
        json_object_set_new(r, "display", json_string(display));
    return r;
}

json_t *
web_param_part(const char *name, const char *key, json_t *value)
{
    json_t *p = json_object();
    json_object_set_new(p, "name", json_string(name));
    json_object_set_new(p, key, value);
    return p;
}

int
web_location_param(
    web_req *r, const char *name, const char *value, const char *required_msg, char id[65])
{
    char type[64];
    core_err err = CORE_ERR_INIT;

    id[0] = '\0';
    if (!value || !*value) {
        if (!required_msg)
            return 0;
        core_err_set_at(&err, 400, CORE_ISSUE_REQUIRED, name, "%s", required_msg);
    } else if (strchr(value, '/')
                   ? reg_ref_split(value, type, id) < 0 || strcmp(type, "Location") != 0
                   : !reg_id_valid(value)) {
        core_err_set_at(&err, 400, CORE_ISSUE_VALUE, name, "%s must be Location/id (got \"%.80s\")",
                        name, value);
    } else {
        if (!strchr(value, '/'))
            core_strlcpy(id, value, 65);
        return 0;
    }
    web_send_error(r, &err);
    core_err_clear(&err);
    return -1;
}

/* One CSV cell: quoted, quotes doubled, and a leading = + - @ (or tab/CR) neutralised. */
void
web_csv_cell(char **buf, size_t *len, size_t *cap, const char *s, int last)
{
    size_t need = strlen(s ? s : "") * 2 + 8;
    if (*len + need >= *cap) {
        while (*len + need >= *cap)
            *cap *= 2;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            abort();
    }
    (*buf)[(*len)++] = '"';
    if (s && (*s == '=' || *s == '+' || *s == '-' || *s == '@' || *s == '\t' || *s == '\r'))
        (*buf)[(*len)++] = '\'';
    for (; s && *s; s++) {
        if (*s == '"')
            (*buf)[(*len)++] = '"';
        (*buf)[(*len)++] = *s;
    }
    (*buf)[(*len)++] = '"';
    (*buf)[(*len)++] = last ? '\n' : ',';
}

int
web_data_quality(web_req *r)
{
    core_err err = CORE_ERR_INIT;
    const char *partof = web_query(r, "partof"), *fmt = web_query(r, "_format");
    char root[65] = "";
    reg_dq_row *rows;
    size_t n;

    if (web_location_param(r, "partof", partof, NULL, root) < 0)
        return 400;
    if (reg_data_quality(&rows, &n, r->th->db, root[0] ? root : NULL, &err) < 0) {
        int status = err.status;
        web_send_error(r, &err);
        core_err_clear(&err);
        return status;
    }
    if (fmt && (strcmp(fmt, "csv") == 0 || strcmp(fmt, "text/csv") == 0)) {
        size_t len = 0, cap = 4096;
        char *buf = malloc(cap);
        if (!buf)
            abort();
        memcpy(buf, "location_id,name,jurisdiction_id,check,reason,other_location_id\n", 64);
        len = 64;
        for (size_t i = 0; i < n; i++) {
            web_csv_cell(&buf, &len, &cap, rows[i].id, 0);
            web_csv_cell(&buf, &len, &cap, rows[i].name, 0);
            web_csv_cell(&buf, &len, &cap, rows[i].jurisdiction, 0);
            web_csv_cell(&buf, &len, &cap, rows[i].check, 0);
            web_csv_cell(&buf, &len, &cap, rows[i].reason, 0);
            web_csv_cell(&buf, &len, &cap, rows[i].other, 1);
        }
        web_send(r, 200, "text/csv; charset=utf-8",
                 "Content-Disposition: attachment; filename=\"data-quality.csv\"\r\n", buf, len);
        free(buf);
    } else {
        json_t *out = json_object(), *params = json_array(), *counts = json_object();
        const char *k;
        json_t *v;
        json_object_set_new(out, "resourceType", json_string("Parameters"));
        for (size_t i = 0; i < n; i++) {
            json_t *p = json_object(), *parts = json_array();
            char key[140];
            json_object_set_new(p, "name", json_string("problem"));
            json_array_append_new(parts, web_param_part("location", "valueReference",
                                                        ref("Location", rows[i].id, rows[i].name)));
            json_array_append_new(parts,
                                  web_param_part("check", "valueCode", json_string(rows[i].check)));
            json_array_append_new(
                parts, web_param_part("reason", "valueString", json_string(rows[i].reason)));
            if (rows[i].jurisdiction[0])
                json_array_append_new(parts,
                                      web_param_part("jurisdiction", "valueReference",
                                                     ref("Location", rows[i].jurisdiction, NULL)));
            if (rows[i].other[0])
                json_array_append_new(parts, web_param_part("other", "valueReference",
                                                            ref("Location", rows[i].other, NULL)));
            json_object_set_new(p, "part", parts);
            json_array_append_new(params, p);
            snprintf(key, sizeof(key), "%s|%s", rows[i].jurisdiction, rows[i].check);
            json_object_set_new(counts, key,
                                json_integer(json_integer_value(json_object_get(counts, key)) + 1));
        }
        /* counts per jurisdiction and check */
        json_object_foreach (counts, k, v) {
            json_t *p = json_object(), *parts = json_array();
            const char *bar = strchr(k, '|');
            char jur[65] = "";
            memcpy(jur, k, (size_t)(bar - k) < sizeof(jur) ? (size_t)(bar - k) : sizeof(jur) - 1);
            json_object_set_new(p, "name", json_string("count"));
            if (jur[0])
                json_array_append_new(parts, web_param_part("jurisdiction", "valueReference",
                                                            ref("Location", jur, NULL)));
            json_array_append_new(parts,
                                  web_param_part("check", "valueCode", json_string(bar + 1)));
            json_array_append_new(parts, web_param_part("count", "valueInteger",
                                                        core_json_integer(json_integer_value(v))));
            json_object_set_new(p, "part", parts);
            json_array_append_new(params, p);
        }
        json_object_set_new(out, "parameter", params);
        json_decref(counts);
        web_send_json(r, 200, NULL, out);
        json_decref(out);
    }
    reg_dq_free(rows, n);
    return 200;
}
