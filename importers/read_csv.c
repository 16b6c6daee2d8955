/* CSV: the spreadsheet exports (importers/csv.c reads them), through a mapping given or
 * inferred from the header (importers/mapping.c). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "importers/imp_int.h"

/* Put "<what>: " before err's message. */
static void __attribute__((format(printf, 2, 3))) msg_prefix(core_err *err, const char *fmt, ...)
{
    char what[128], m[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    snprintf(m, sizeof(m), "%s: %.*s", what, (int)(sizeof(m) - sizeof(what) - 3), err->msg);
    core_strlcpy(err->msg, m, sizeof(err->msg));
}

/* The mapping file's JSON. */
static imp_mapping *
load_mapping(const char *path, core_err *err)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t len;
    json_t *j;
    imp_mapping *m;

    if (!f) {
        core_err_set_at(err, 404, CORE_ISSUE_NOT_FOUND, "mapping", "cannot open the mapping %s",
                        path);
        return NULL;
    }
    int rc = imp_slurp(&buf, &len, f, err);
    fclose(f);
    if (rc < 0)
        return NULL;
    j = core_json_parse(buf, len, err);
    free(buf);
    if (!j) {
        msg_prefix(err, "the mapping %.40s is not valid JSON", path);
        return NULL;
    }
    m = imp_mapping_parse(j, err);
    json_decref(j);
    if (!m)
        msg_prefix(err, "mapping %.40s", path);
    return m;
}

imp_mapping *
imp_mapping_for(imp_ctx *c, char *const *header, int n, core_err *err)
{
    const imp_options *o = imp_opts(c);
    imp_mapping *m;
    if (o->mapping_file) {
        if (!(m = load_mapping(o->mapping_file, err)))
            return NULL;
    } else {
        const char *base = strrchr(o->file, '/') ? strrchr(o->file, '/') + 1 : o->file;
        char stem[256];
        core_strlcpy(stem, base, sizeof(stem));
        for (char *dot; (dot = strrchr(stem, '.')) && dot != stem;) {
            if (strcmp(dot, ".gz") && strcmp(dot, ".csv") && strcmp(dot, ".json") &&
                strcmp(dot, ".geojson") && strcmp(dot, ".txt") && strcmp(dot, ".tsv"))
                break;
            *dot = '\0';
        }
        m = imp_mapping_infer(header, n, stem);
        json_t *j = imp_mapping_json(m);
        char *text = core_json_dump_pretty(j, 2, NULL);
        if (o->log)
            fprintf(o->log, "mahali import: no --mapping given; this mapping was inferred from "
                            "the header (save it, edit it, pass it with --mapping FILE):\n");
        if (o->mapping_out && text)
            fprintf(o->mapping_out, "%s\n", text);
        free(text);
        json_decref(j);
    }
    if (o->crs && !imp_mapping_crs(m)) {
        /* --crs applies when the mapping names none */
        json_t *j = imp_mapping_json(m);
        json_object_set_new(j, "crs", json_string(o->crs));
        imp_mapping *m2 = imp_mapping_parse(j, err);
        json_decref(j);
        imp_mapping_free(m);
        if (!m2) {
            core_strlcpy(err->expr, "crs", sizeof(err->expr));
            return NULL;
        }
        m = m2;
    }
    if (imp_mapping_bind(m, header, n, err) < 0) {
        imp_mapping_free(m);
        return NULL;
    }
    return m;
}

int
imp_read_csv(imp_ctx *c, FILE *f, core_err *err)
{
    const imp_options *o = imp_opts(c);
    imp_csv_opts co = { o->delimiter, IMP_CSV_UTF8 };
    imp_csv *csv;
    imp_csv_row row;
    imp_mapping *m = NULL;
    char **header = NULL;
    int nheader = 0, rc = -1;
    long rows = 0;

    if (imp_csv_encoding_parse(o->encoding, &co.encoding, err) < 0)
        return -1;
    csv = imp_csv_open(f, &co);
    /* the header */
    int got = imp_csv_next(csv, &row, err);
    if (got <= 0) {
        if (got == 0)
            core_err_set(err, 400, CORE_ISSUE_STRUCTURE, "the file is empty: no header row");
        else
            msg_prefix(err, "the header cannot be read (%.60s)", err->expr);
        goto done;
    }
    nheader = row.nfields;
    header = calloc((size_t)nheader, sizeof(char *));
    if (!header)
        abort();
    for (int i = 0; i < nheader; i++)
        header[i] = core_strdup(row.fields[i]);
    if (nheader < 2) {
        core_err_set(err, 400, CORE_ISSUE_STRUCTURE,
                     "the header has one column only: is the delimiter right? (--delimiter)");
        goto done;
    }
    for (int i = 0; i < nheader; i++)
        for (int k = 0; k < i; k++)
            if (strcmp(header[i], header[k]) == 0) {
                imp_issue(c, 1, "warning", header[i], NULL, "duplicate-column",
                          "columns %d and %d are both called \"%s\"; the mapping reaches the "
                          "second as \"#%d\"",
                          k + 1, i + 1, header[i], i + 1);
                break;
            }
    if (!(m = imp_mapping_for(c, header, nheader, err)))
        goto done;
    imp_set_mapping(c, m);
    for (;;) {
        core_err e = CORE_ERR_INIT;
        imp_rec r;
        int k = imp_csv_next(csv, &row, &e);
        if (k == 0)
            break;
        if (k < 0) {
            if (e.status == 500) {
                *err = e;
                goto done;
            }
            long line = atol(e.expr + 5); /* "line N, column M" */
            imp_issue(c, line, "error", NULL, NULL, "unreadable-record", "%s: %s", e.expr, e.msg);
            imp_read_failed(c);
            core_err_clear(&e);
            continue;
        }
        rows++;
        if ((rows & 1023) == 0) {
            long pos = ftell(f);
            if (pos > 0)
                imp_progress_bytes(c, pos);
        }
        int blank = 1;
        for (int i = 0; i < row.nfields && blank; i++)
            if (row.fields[i][strspn(row.fields[i], " \t")])
                blank = 0;
        if (blank)
            continue;
        if (row.nfields != nheader)
            imp_issue(c, row.line, "warning", NULL, NULL, "ragged-row",
                      "the row has %d fields, the header %d; %s", row.nfields, nheader,
                      row.nfields < nheader ? "the missing ones are read as empty"
                                            : "the extra ones are ignored");
        if (imp_mapping_row(&r, c, m, row.fields, row.nfields, row.line) < 0)
            goto done;
        if (imp_emit(c, &r, err) < 0)
            goto done;
    }
    rc = 0;
done:
    for (int i = 0; i < nheader; i++)
        free(header[i]);
    free(header);
    imp_csv_close(csv);
    return rc;
}
