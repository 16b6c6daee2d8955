/* Loading PUT-only Bundles (the demo data, iHRIS-style exports) entry by entry through
 * reg_update, so each resource is validated and versioned exactly as a REST PUT would be. */
#include <stdio.h>
#include <string.h>

#include "importers/importers.h"

int
imp_bundle_put_all(imp_report *out, core_db *db, json_t *bundle, const char *actor, core_err *err)
{
    json_t *entries = json_object_get(bundle, "entry"), *entry;
    reg_actor who = { actor, NULL, 0 };
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!json_is_array(entries))
        return core_err_set_at(err, 400, CORE_ISSUE_STRUCTURE, "Bundle.entry",
                               "the Bundle has no entries");
    json_array_foreach (entries, i, entry) {
        json_t *res = json_object_get(entry, "resource");
        const char *method =
            json_string_value(json_object_get(json_object_get(entry, "request"), "method"));
        const char *url =
            json_string_value(json_object_get(json_object_get(entry, "request"), "url"));
        const char *slash = url ? strchr(url, '/') : NULL;
        char tname[64], path[64];
        int t;
        reg_write w;

        snprintf(path, sizeof(path), "Bundle.entry[%zu]", i);
        if (!method || strcmp(method, "PUT") != 0 || !slash ||
            (size_t)(slash - url) >= sizeof(tname))
            return core_err_set_at(err, 400, CORE_ISSUE_NOT_SUPPORTED, path,
                                   "only PUT Type/id entries can be loaded here");
        memcpy(tname, url, (size_t)(slash - url));
        tname[slash - url] = '\0';
        if ((t = reg_type_find(tname)) < 0)
            return core_err_set_at(err, 400, CORE_ISSUE_NOT_SUPPORTED, path,
                                   "resource type \"%s\" is not stored here", tname);
        if (reg_update(&w, db, (reg_type)t, slash + 1, res, 0, &who, err) < 0) {
            if (strlen(path) + strlen(err->expr) + 2 < sizeof(err->expr)) {
                char e[sizeof(path) + sizeof(err->expr) + 1];
                snprintf(e, sizeof(e), "%s%s%s", path, err->expr[0] ? "." : "", err->expr);
                core_strlcpy(err->expr, e, sizeof(err->expr));
            }
            return -1;
        }
        out->total++;
        if (w.created)
            out->created++;
        else if (w.noop)
            out->unchanged++;
        else
            out->updated++;
        reg_write_clear(&w);
    }
    return 0;
}

int
imp_demo_load(imp_report *out, core_db *db, core_err *err)
{
    const core_embedded_file *f = core_embedded_find("importers/demo/sierra-leone.json");
    json_t *bundle;
    int rc;

    if (!f)
        return core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "this build carries no demo data");
    if (!(bundle = core_json_parse((const char *)f->data, f->len, err)))
        return -1;
    rc = imp_bundle_put_all(out, db, bundle, "demo-loader", err);
    json_decref(bundle);
    return rc;
}
