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
    int deactivate_missing;  /* full refresh: facilities of the list not in the file → inactive */
    int resume;              /* continue after the last committed chunk of this same import */
    int fix_swapped;         /* store swapped coordinates the right way round (else reported) */
    int chunk;               /* rows per transaction, 0: 1000 */
    int progress;            /* 0 none, 1 plain lines, 2 a bar (terminal) */
    FILE *log;               /* progress and summary (stderr), may be NULL */
    FILE *mapping_out;       /* where an inferred mapping is printed (stdout), may be NULL */
    core_db *second_db;      /* a second connection to the same database, or NULL: large chunks of
                                CSV/GeoJSON facilities are then written half on each (PostgreSQL
                                works on two cores) */
    _Atomic long *rows_read; /* if set: rows read so far, stored as the import goes, so that
                                another thread may load it (a progress display), or NULL */
    _Atomic int *cancel;     /* if set and non-zero: stop before the next chunk is written
                                (the chunks written so far stay; -1 with err 503), or NULL */
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

/** Check what can be checked of an import before its file is read, with the code the import
 *  itself runs: the encoding (CSV), o->crs (known to PROJ) and, when mapping is not NULL, the
 *  mapping's JSON text mapping[0..len) as a mapping_file holding it would be read. o->file and
 *  o->mapping_file are not used. Returns 0, or -1 with err 400 whose err->expr names the option:
 *  "encoding", "crs", "mapping" or "mapping.<member>" (500 when PROJ has no EPSG database). */
int imp_options_check(const imp_options *o, const char *mapping, size_t len, core_err *err);

/** Run one import. Returns 0 when the file was read (stats say what happened; rows may have
 *  been rejected), or -1 with err when it could not be read at all (missing, unreadable,
 *  not the format, bad mapping: exit code 2) or the database failed. */
int imp_run(imp_stats *out, core_db *db, const imp_options *o, core_err *err);

/* ---- mahali export (importers/export.c, docs/EXPORT.md) -------------------------------------
 * The master facility list streamed in one of four formats: CSV (one row per facility, which
 * `mahali import csv --mapping importers/mappings/mahali-export.json` reads back), GeoJSON
 * (Point features), FHIR NDJSON (facilities, their Organizations and the Locations above them,
 * parents first, which `mahali import fhir` reads back) and DHIS2 organisation units. */

typedef enum imp_export_format {
    IMP_EXPORT_CSV,
    IMP_EXPORT_GEOJSON,
    IMP_EXPORT_NDJSON,
    IMP_EXPORT_DHIS2
} imp_export_format;

/** The format called name ("csv", "geojson", "ndjson", "dhis2"), or -1. */
int imp_export_format_find(const char *name);
/** The format's media type ("text/csv; charset=utf-8") and a file name for a download
 *  ("mfl.csv"). Static storage. */
const char *imp_export_media_type(imp_export_format fmt);
const char *imp_export_file_name(imp_export_format fmt);

/* Takes the next piece of the output; returns 0, or -1 when it cannot be written. */
typedef int (*imp_write_fn)(const char *buf, size_t len, void *payload);

/** Write the facilities f selects (f->ancestors and f->boundaries are set by the format) to
 *  write, in pieces of about 64 KiB, reading the database page by page. Nothing is written
 *  before the filter is checked and the first page is read, so a caller can still answer an
 *  error then. db: this thread's. Returns 0, or -1 with err: 400 naming "jurisdiction",
 *  "type" or "status", 404/410 unknown jurisdiction, 503 database, 500 when write failed. */
int imp_export(core_db *db,
               imp_export_format fmt,
               const reg_export_filter *f,
               imp_write_fn write,
               void *payload,
               core_err *err);

#endif
