/* Shared inside importers/ only: the record every source format is turned into, the import
 * context (options, counters, issues), and the pieces the engine calls. */
#ifndef IMP_INT_H
#define IMP_INT_H

#include <stdio.h>

#include "importers/csv.h"
#include "importers/importers.h"

#define IMP_MAX_IDS    12
#define IMP_MAX_LEVELS 8

#define IMP_MCSD_TYPES \
    "https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types"
#define IMP_FLAG_SYSTEM "https://profiles.mahali.health/fhir/CodeSystem/import-flag"
/* meta.tag naming the list a facility was imported from (the mapping's source): what
 * --deactivate-missing scopes to */
#define IMP_LIST_SYSTEM "https://profiles.mahali.health/fhir/CodeSystem/import-list"
#define IMP_TYPE_LOCAL  "https://profiles.mahali.health/fhir/CodeSystem/facility-type-local"
#define IMP_OWNER_LOCAL "https://profiles.mahali.health/fhir/CodeSystem/facility-ownership-local"
#define IMP_ROW_KEY     "https://profiles.mahali.health/fhir/NamingSystem/row-key"
#define IMP_DHIS2_UID   "https://dhis2.org/orgunit-uid"
#define IMP_DHIS2_CODE  "https://dhis2.org/orgunit-code"
#define IMP_CSD_ENTITY  "urn:ihe:iti:csd:2013:entityID"

typedef enum imp_kind { IMP_REC_FACILITY, IMP_REC_JURISDICTION, IMP_REC_RESOURCE } imp_kind;

typedef struct imp_ident {
    const char *system;
    const char *value;
    const char *column; /* where it came from, for the report */
} imp_ident;

/* One facility or jurisdiction read from any format. Strings: owned by the chunk's arena. */
typedef struct imp_rec {
    long line; /* line (CSV, XML) or feature/entry number (JSON) */
    imp_kind kind;
    const char *name;
    const char *name_column;
    imp_ident ids[IMP_MAX_IDS]; /* the first is the key reported for duplicates */
    int nids;
    int has_pos; /* 1: lat/lon (or x/y in crs) hold a point to store */
    double lat, lon;
    const char *pos_text;   /* the coordinates as written, for the report */
    const char *pos_column; /* the column(s) they came from */
    int crs_epsg;           /* 0: WGS84; else x = lon, y = lat in this CRS */
    const char *flag;       /* import-flag code when the coordinates were rejected, or NULL */
    const char *type_system, *type_code, *type_display;
    const char *owner_system, *owner_code, *owner_display;
    const char *status;                /* "active", "inactive", "suspended" */
    const char *admin[IMP_MAX_LEVELS]; /* jurisdiction names, top first */
    int nadmin;
    const char *admin_column[IMP_MAX_LEVELS];
    const char *admin_root;                   /* the Location the first level is partOf, or NULL */
    const char *parent_system, *parent_value; /* the parent by identifier (DHIS2, CSD) */
    const char *given_id;     /* the registry's Location id the row names (mapping "id"), or NULL:
                                 that live facility is the one the row updates */
    const char *given_parent; /* the registry's Location id of its parent (mapping
                                 "parent_id"), or NULL: used when that is no jurisdiction */
    const char *boundary;     /* a GeoJSON geometry (jurisdictions), or NULL */
    int rejected;             /* an issue already rejects it */
    const char *list;         /* facilities: the list (mapping source) it belongs to, or NULL */
    json_t *raw;              /* IMP_REC_RESOURCE: the resource as given (owned by the engine) */
    reg_type raw_type;
    /* set by the engine */
    char loc_id[65], org_id[65];
    int status_out; /* 201, 200, 304 (unchanged) */
} imp_rec;

typedef struct imp_ctx imp_ctx;
typedef struct imp_mapping imp_mapping;

/** Report an issue about line (0: the file as a whole). severity: "error" rejects the row,
 *  "warning" keeps it. column, value may be NULL. */
void imp_issue(imp_ctx *c,
               long line,
               const char *severity,
               const char *column,
               const char *value,
               const char *code,
               const char *fmt,
               ...) __attribute__((format(printf, 7, 8)));

/** Hand one record to the engine (it is written with its chunk). Returns 0, or -1 with err
 *  when the import cannot go on (database down). */
int imp_emit(imp_ctx *c, imp_rec *r, core_err *err);
/** Hand one FHIR resource of type t to the engine (res: stolen), written with its chunk as an
 *  upsert: with an id, that id; else the live resource of type t that carries its first
 *  identifier, else a new id derived from that identifier (so a re-run finds it again); with
 *  neither it is rejected. A reference written as a logical reference ({"type": "Location",
 *  "identifier": {"system", "value"}} without "reference") is resolved to the live resource
 *  carrying that identifier (left logical, with a warning, when there is none). line: where it
 *  is in the file, for the report. Returns 0, or -1 with err when the import cannot go on. */
int imp_emit_resource(imp_ctx *c, long line, reg_type t, json_t *res, core_err *err);
/** The chunk arena: strings of emitted records live until their chunk is written. */
core_arena *imp_arena(imp_ctx *c);
/** The options of the import. */
const imp_options *imp_opts(imp_ctx *c);
/** The mapping in use (c takes it over): what --deactivate-missing scopes to. */
void imp_set_mapping(imp_ctx *c, imp_mapping *m);
/** A record of the file could not be read at all (reported by the reader with imp_issue):
 *  counted as a rejected row; --deactivate-missing is then not applied. */
void imp_read_failed(imp_ctx *c);
/** A row of the file that is not imported (the reader reported why): counted as rejected. */
void imp_reject_row(imp_ctx *c, long line);
/** A transaction the reader ran itself (FHIR transaction Bundles): its counts. */
void imp_transaction_done(imp_ctx *c, long rows, long created, long updated, long rejected);
/** How far into the file the reader is (bytes of the file as stored), for the progress bar. */
void imp_progress_bytes(imp_ctx *c, long pos);
/** The database (lookups of parents while reading). */
core_db *imp_db(imp_ctx *c);

/* ---- mappings (importers/mapping.c) -------------------------------------------------------- */

/** Parse a mapping file's JSON (borrowed). Returns the mapping, or NULL with err naming the
 *  member. */
imp_mapping *imp_mapping_parse(const json_t *j, core_err *err);
/** Infer a mapping from a header row (names as in the file) and the file's base name. */
imp_mapping *imp_mapping_infer(char *const *header, int n, const char *file_base);
/** The mapping as JSON (new), ready to save and edit. */
json_t *imp_mapping_json(const imp_mapping *m);
/** Bind the mapping's columns to the header: 0, or -1 with err naming the missing column. */
int imp_mapping_bind(imp_mapping *m, char *const *header, int n, core_err *err);
/** The mapping of this import for a table with this header: --mapping FILE, or inferred (and
 *  printed); --crs applied; bound to the header. NULL with err (400 naming the member). */
imp_mapping *imp_mapping_for(imp_ctx *c, char *const *header, int n, core_err *err);
/** One data row → a record (issues reported on c). Returns 1 if a record was made, 0 if not
 *  (skipped), -1 with err. */
int
imp_mapping_row(imp_rec *out, imp_ctx *c, const imp_mapping *m, char *const *f, int n, long line);
/** The list its rows are put on (the source), or NULL with "list": false. */
const char *imp_mapping_list(const imp_mapping *m);
/** CRS of the mapping (0: WGS84). */
int imp_mapping_crs(const imp_mapping *m);
void imp_mapping_free(imp_mapping *m);

/* ---- coordinates (importers/mapping.c) ----------------------------------------------------- */

/** Check and set r's position from text: lat and lon (either may be NULL when combined holds
 *  both, order "lat,lon" or "lon,lat"). Empty → no position; 0,0, out of range or not a
 *  number → flagged (issue warning, no position). */
void imp_rec_position(imp_ctx *c,
                      imp_rec *r,
                      const char *lat,
                      const char *lon,
                      const char *combined,
                      int lon_first,
                      const char *column);

/* ---- resources (importers/build.c) ------------------------------------------------------------
 */

/* Where a version came from (the import-provenance extension). */
typedef struct imp_prov {
    const char *file;     /* base name */
    const char *checksum; /* "sha256:<hex>" */
    long line;
} imp_prov;

/** The Location of rec laid over stored (borrowed, or NULL for a new one): rec->loc_id,
 *  rec->org_id set. parent_loc: the Location it is partOf, or NULL. New reference, NULL on
 *  out of memory. */
json_t *imp_build_location(const json_t *stored,
                           const imp_rec *rec,
                           const imp_prov *prov,
                           const char *parent_loc);
/** valueAttachment.data of a location-boundary-geojson extension: the base64 of the geometry's
 *  type and coordinates as GeoJSON (numbers as written, so a re-import makes the same text); a
 *  geometry in another CRS carries it as "crs" for the registry to convert (geo_boundary_parse).
 *  geom: borrowed. Arena-owned; NULL when out of memory. */
const char *imp_boundary_data(core_arena *a, const json_t *geom, int epsg);
/** Set r's import-provenance meta extension (replacing an earlier one). */
void imp__provenance(json_t *r, const imp_prov *p);
/** The Organization of rec laid over stored; parent_org: the Organization it is partOf. */
json_t *imp_build_organization(const json_t *stored,
                               const imp_rec *rec,
                               const imp_prov *prov,
                               const char *parent_org);

/* ---- sources ------------------------------------------------------------------------------- */

int imp_read_csv(imp_ctx *c, FILE *f, core_err *err);
int imp_read_geojson(imp_ctx *c, FILE *f, core_err *err);
int imp_read_dhis2(imp_ctx *c, FILE *f, core_err *err);
int imp_read_csd(imp_ctx *c, FILE *f, core_err *err);
int imp_read_fhir(imp_ctx *c, FILE *f, core_err *err);

/** Read a whole file into memory (bounded by IMP_MAX_DOCUMENT): for JSON and XML documents.
 *  *buf malloc'd. Returns 0, or -1 with err (413 too big, 500 read error). */
#define IMP_MAX_DOCUMENT ((size_t)512 << 20)
int imp_slurp(char **buf, size_t *len, FILE *f, core_err *err);
/** A whole JSON document from f (a byte-order mark and leading white space skipped): *doc new
 *  reference, *size the position reached in f (for progress; -1 when f is a pipe). Returns 0, or -1
 * with err (400 empty or not JSON, 413, 500). */
int imp_json_document(json_t **doc, long *size, FILE *f, core_err *err);

/** Text helpers: trimmed copy in the arena with runs of spaces (and no-break spaces) kept as
 *  written; NULL for an empty or blank cell. */
const char *imp_cell(core_arena *a, const char *s);

#endif
