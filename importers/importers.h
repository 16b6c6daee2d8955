/* importers: bring existing lists into the registry through the same reg_* write path as the
 * REST API (validation, versioning, audit). For now: the shipped demo data set. */
#ifndef IMP_IMPORTERS_H
#define IMP_IMPORTERS_H

#include "registry/registry.h"

typedef struct imp_report {
    int total;     /* entries read */
    int created;   /* new resources */
    int updated;   /* new versions of existing resources */
    int unchanged; /* identical to what is stored: no new version */
} imp_report;

/** Load a FHIR transaction or batch Bundle whose entries are all PUT Type/id, entry by entry
 *  (an update of identical content creates no new version, so a re-run converges).
 *  bundle: borrowed. Returns 0, or -1 with err naming the failing entry (Bundle.entry[i]). */
int
imp_bundle_put_all(imp_report *out, core_db *db, json_t *bundle, const char *actor, core_err *err);

/** Load the Sierra Leone demo data embedded in the binary (importers/demo/sierra-leone.json;
 *  geoBoundaries CC BY 4.0 and healthsites.io / OpenStreetMap ODbL, see ATTRIBUTION.md). */
int imp_demo_load(imp_report *out, core_db *db, core_err *err);

#endif
