/* importers: bring existing lists into the registry through the same reg_* write path as the
 * REST API (validation, versioning, audit): spreadsheet CSV, GeoJSON, DHIS2 organisation units,
 * IHE CSD and FHIR Bundles/NDJSON (`mahali import`, docs/IMPORT.md), and the shipped demo. */
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

/* ---- mahali import ----------------------------------------------------------------------- */

typedef enum imp_format { IMP_CSV, IMP_GEOJSON, IMP_DHIS2, IMP_FHIR, IMP_CSD } imp_format;

/** The format called name ("csv", "geojson", "dhis2", "fhir", "csd"), or -1. */
int imp_format_find(const char *name);

typedef struct imp_options {
    imp_format format;
    const char *file;         /* path; a name ending in .gz is decompressed on the fly */
    const char *mapping_file; /* CSV/GeoJSON mapping (docs/IMPORT.md), or NULL: inferred */
    const char *report_file;  /* JSON report here and CSV next to it (.csv), or NULL */
    const char *encoding;     /* CSV: utf-8 (default), latin-1, windows-1252 */
    const char *crs;          /* coordinates in this CRS (EPSG:NNNN), or NULL: WGS84 */
    const char *actor;        /* audit name, default "import" */
    char delimiter;           /* CSV: 0 detect */
    int dry_run;              /* everything but commit */
    int deactivate_missing;   /* full refresh: facilities of the list not in the file → inactive */
    int resume;               /* continue after the last committed chunk of this same import */
    int fix_swapped;          /* store swapped coordinates the right way round (else reported) */
    int chunk;                /* rows per transaction, 0: 1000 */
    int progress;             /* 0 none, 1 plain lines, 2 a bar (terminal) */
    FILE *log;                /* progress and summary (stderr), may be NULL */
    FILE *mapping_out;        /* where an inferred mapping is printed (stdout), may be NULL */
} imp_options;

typedef struct imp_stats {
    long rows;          /* data rows (records) read */
    long created;       /* facilities/jurisdictions new to the registry */
    long updated;       /* given a new version */
    long unchanged;     /* identical to what is stored: no new version */
    long rejected;      /* not written (issues say why) */
    long warnings;      /* issues that did not stop the row */
    long flagged;       /* written, but with coordinates rejected or swapped */
    long deactivated;   /* --deactivate-missing: set inactive */
    long jurisdictions; /* jurisdictions created on the way (admin-level columns) */
    long skipped;       /* --resume: rows done by the earlier run */
    double seconds;
} imp_stats;

/** Run one import. Returns 0 when the file was read (stats say what happened; rows may have
 *  been rejected), or -1 with err when it could not be read at all (missing, unreadable,
 *  not the format, bad mapping: exit code 2) or the database failed. */
int imp_run(imp_stats *out, core_db *db, const imp_options *o, core_err *err);

#endif
