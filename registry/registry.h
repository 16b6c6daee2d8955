/* registry: the mCSD resources and their versioned store. Validation, create/read/update/
 * delete with optimistic locking, history at instance, type and system level, bearer tokens.
 * Knows nothing of HTTP: web/ and importers/ call these same functions. */
#ifndef REG_REGISTRY_H
#define REG_REGISTRY_H

#include "core/db.h"
#include "registry/search.h"
#include "registry/validate.h"
#include "registry/xml.h"

/* ---- resource types ----------------------------------------------------------------------- */

typedef enum reg_type {
    REG_ORGANIZATION,
    REG_LOCATION,
    REG_HEALTHCARESERVICE,
    REG_PRACTITIONER,
    REG_PRACTITIONERROLE,
    REG_ENDPOINT,
    REG_ORGANIZATIONAFFILIATION,
    REG_NTYPES
} reg_type;

/** The FHIR name of a stored type ("Location"). */
const char *reg_type_name(reg_type t);
/** The stored type called name, or -1 if the registry does not store it. */
int reg_type_find(const char *name);
/** 1 for Practitioner and PractitionerRole: health-worker data, never public. */
int reg_type_is_personal(reg_type t);
/** 1 if s is a valid FHIR id: [A-Za-z0-9-.]{1,64}. */
int reg_id_valid(const char *s);

/* ---- writes ---------------------------------------------------------------------------------- */

/* Who is writing, for the audit trail. All borrowed. */
typedef struct reg_actor {
    const char *name;        /* token name or user */
    const char *remote_addr; /* client address, or NULL */
    int repair_boundaries;   /* 1: repair invalid Location boundaries (GEOS) instead of 422 */
} reg_actor;

/** Free this thread's registry state (its GEOS context). Call when a worker thread ends. */
void reg_thread_cleanup(void);

/* The outcome of a write. */
typedef struct reg_write {
    json_t *resource; /* new reference: the stored resource with id and meta (NULL after delete) */
    char id[65];
    int version;
    char last_updated[32]; /* FHIR instant, UTC, milliseconds */
    int created;           /* 1: a new resource (or a deleted one written again) → 201 */
    int noop;              /* 1: delete of an already deleted resource */
} reg_write;

/** Release out->resource and reset out. */
void reg_write_clear(reg_write *out);

/** Validate res and store it as a new resource with a server-assigned id. res: borrowed; its
 *  id and meta.versionId/lastUpdated are replaced by the server's. out: filled on success.
 *  Returns 0, or -1 with err (400/422 validation, 503 database). */
int reg_create(
    reg_write *out, core_db *db, reg_type t, json_t *res, const reg_actor *who, core_err *err);
/** Validate res and store it as the next version of id, creating id if it does not exist
 *  (update-as-create). The body's id must equal id (400). if_match: expected current version,
 *  or 0 for none (mismatch → 412). Returns 0 or -1 with err. */
int reg_update(reg_write *out,
               core_db *db,
               reg_type t,
               const char *id,
               json_t *res,
               int if_match,
               const reg_actor *who,
               core_err *err);
/** Soft-delete id: history keeps it, read answers 410. Deleting a deleted resource is a no-op
 *  (out->noop). 404 if it never existed; 412 on if_match mismatch. */
int reg_delete(reg_write *out,
               core_db *db,
               reg_type t,
               const char *id,
               int if_match,
               const reg_actor *who,
               core_err *err);

/* ---- conditional writes (R4 3.1.0.8) ------------------------------------------------------ *
 * criteria: a search query string ("identifier=http%3A%2F%2Fmoh.example%7C123"), URL-encoded,
 * run strictly (an unknown parameter is an error, never "matches everything"). Writers with
 * the same criteria are serialised by an advisory lock held until commit, so 64 concurrent
 * conditional creates of one identifier make exactly one resource. Inside an open transaction
 * the caller commits; otherwise each call is its own transaction. */

/** If-None-Exist: no match → create res (out->created); one match → out->resource is that
 *  resource, nothing written (out->noop); several → 412. */
int reg_create_if_none(reg_write *out,
                       core_db *db,
                       reg_type t,
                       json_t *res,
                       const char *criteria,
                       const reg_actor *who,
                       core_err *err);
/** PUT [type]?criteria: no match → create (the body's id if it has one, else a new one);
 *  one → update it (a body id must be that id, else 400); several → 412. */
int reg_update_where(reg_write *out,
                     core_db *db,
                     reg_type t,
                     const char *criteria,
                     json_t *res,
                     int if_match,
                     const reg_actor *who,
                     core_err *err);
/** DELETE [type]?criteria: no match → out->noop; one → delete it; several → 412. */
int reg_delete_where(reg_write *out,
                     core_db *db,
                     reg_type t,
                     const char *criteria,
                     const reg_actor *who,
                     core_err *err);

/* ---- transaction and batch Bundles (R4 3.1.0.11) -------------------------------------------- */

enum { REG_ACCESS_READ, REG_ACCESS_WRITE, REG_ACCESS_DELETE };

/* Asks the caller whether the current client may do action (REG_ACCESS_*) on type. Returns 0,
 * or -1 with err (401/403). */
typedef int (*reg_authorize_fn)(void *payload, int type, int action, core_err *err);

typedef struct reg_bundle_ctx {
    const reg_actor *who;
    reg_authorize_fn authorize; /* required */
    void *payload;
    int max_entries; /* more → 413 */
} reg_bundle_ctx;

/* The outcome of one entry, in the request's order. */
typedef struct reg_bundle_result {
    int status; /* 200, 201, 204, or the error's status (batch) */
    int type;   /* reg_type, or -1 */
    char id[65];
    int version; /* 0 when there is none */
    char last_updated[32];
    json_t *resource; /* GET entries: the resource (new reference), else NULL */
    core_err err;     /* batch entries that failed */
    int noop;         /* 1: nothing written (identical content, or a delete of a deleted one) */
} reg_bundle_result;

/** Process a Bundle of type transaction (all entries or none, in R4 order DELETE, POST, PUT,
 *  GET; urn:uuid fullUrls become the new ids in every reference; references checked at commit)
 *  or batch (entry by entry). *is_batch tells which. *results: malloc'd, *n entries (free
 *  with reg_bundle_results_free). Returns 0, or -1 with err naming Bundle.entry[i]: for a
 *  transaction any failing entry, for a batch only a malformed Bundle. */
int reg_bundle_process(reg_bundle_result **results,
                       size_t *n,
                       int *is_batch,
                       core_db *db,
                       json_t *bundle,
                       const reg_bundle_ctx *ctx,
                       core_err *err);
void reg_bundle_results_free(reg_bundle_result *results, size_t n);

/* ---- imports (importers/) ------------------------------------------------------------------- */

/* An imported version says where it came from in meta.extension: sub-extensions file
 * (valueString, the file's base name), checksum (valueString, "sha256:<hex>") and line
 * (valueInteger). It is not content: a version that differs from the stored one only there is a
 * no-op (sql/0007_import.sql). */
#define REG_IMPORT_PROVENANCE_URL \
    "https://profiles.mahali.health/fhir/StructureDefinition/import-provenance"

/** Validate res as a body of type t exactly as create and update do (R4 model, mCSD profiles,
 *  boundaries with GEOS, other CRSs converted in res). res: borrowed, may be changed. who may
 *  be NULL. Returns 0, or -1 with err (400/422/413 naming the element). */
int reg_check(json_t *res, reg_type t, const reg_actor *who, core_err *err);

/** The live resources of type t that carry any of the identifiers in keys (borrowed JSON array
 *  of [system, value] pairs). *out: new JSON object mapping "system|value" to the resource
 *  (stored content with id and meta). Returns 0, or -1 with err (503). */
int reg_find_by_identifiers(json_t **out, core_db *db, reg_type t, json_t *keys, core_err *err);

/** The live resources of type t with the given ids (borrowed JSON array of strings). *out: new
 *  JSON object mapping id to the resource. Returns 0, or -1 with err (503). */
int reg_read_many(json_t **out, core_db *db, reg_type t, json_t *ids, core_err *err);

/** The live Locations typed as mCSD jurisdictions directly partOf Location parent (NULL: with no
 *  partOf) whose name, compared case-, accent- and space-insensitively, is name. *out: new
 *  JSON array of resources (usually 0 or 1). Returns 0, or -1 with err. */
int reg_find_jurisdictions(
    json_t **out, core_db *db, const char *parent, const char *name, core_err *err);

/** The live facility Locations (mCSD facility type) tagged (meta.tag) with tag_system|tag_code
 *  (the list an import put them on), whose id is not in keep (borrowed JSON array of ids) and
 *  whose status is not inactive: what a full refresh of that list no longer names. *out: new
 *  JSON array of resources. Returns 0, or -1 with err. */
int reg_find_missing(json_t **out,
                     core_db *db,
                     const char *tag_system,
                     const char *tag_code,
                     json_t *keep,
                     core_err *err);

/** For each point of points (borrowed JSON array of [lon, lat, parent Location id or null]),
 *  whether it lies inside the boundary of its parent or nearest ancestor that has one, else
 *  inside any of the topmost boundaries (those with no ancestor that has one: countries, or
 *  the provinces of a country stored without a boundary), and whether the point with latitude
 *  and longitude exchanged does. *out: new JSON array of [inside, swapped_inside] (booleans,
 *  or null when no boundary applies). Returns 0, or -1 with err. */
int reg_positions_check(json_t **out, core_db *db, json_t *points, core_err *err);

/** Write n validated resources (reg_check) as updates of their ids (created when absent), in
 *  the caller's open transaction, each exactly as reg_update would (versioning, index, audit;
 *  identical content is a no-op). items[i].w receives the outcome. Returns 0, or -1 with err
 *  naming the failing item in err->expr ("item N: ..."), *failed set to its index; the
 *  transaction is then aborted (roll it back). */
typedef struct reg_batch_item {
    reg_type type;
    const char *id;   /* borrowed */
    json_t *resource; /* borrowed; its id and meta are set as the store wrote them */
    reg_write w;      /* out */
} reg_batch_item;
int reg_write_batch(reg_batch_item *items,
                    size_t n,
                    size_t *failed,
                    core_db *db,
                    const reg_actor *who,
                    core_err *err);
/** reg_write_batch in two halves, for writing on a second connection while the first works:
 *  send returns once the batch is on its way (0, or -1 with err); recv waits for it and fills
 *  items[i].w (0, or -1 with err: the transaction on db is then aborted). Nothing else may run
 *  on db in between. */
int reg_write_batch_send(
    reg_batch_item *items, size_t n, core_db *db, const reg_actor *who, core_err *err);
int reg_write_batch_recv(reg_batch_item *items, size_t n, core_db *db, core_err *err);

/** Run the checks the open transaction on db deferred to its commit (references, partof
 *  loops, deletes still referred to) now: 0, or -1 with err saying what they refused (422 for a
 *  reference to nothing or a loop, 409 for a delete still referred to), as a single write
 *  would. */
int reg_check_deferred(core_db *db, core_err *err);

/** Refresh the planner's statistics of the tables a bulk load's plans depend on (ANALYZE),
 *  outside a transaction: a load that grows them tenfold would otherwise run on plans made for
 *  the empty tables. Returns 0, or -1 with err. */
int reg_analyze(core_db *db, core_err *err);

/** An import's checkpoint (sql/0007_import.sql): source is the import's key. *line: how many
 *  records of the file (in the order the import reads them) are done, 0 when none; *state: new
 * reference to the counters saved with it (NULL when none); *finished: 1 when the import ran to the
 * end. Returns 0, or -1 with err. */
int reg_checkpoint_get(
    long *line, json_t **state, int *finished, core_db *db, const char *source, core_err *err);
/** Save the checkpoint in the caller's transaction (so it commits with the chunk it
 *  describes), with the chunk's issues (borrowed JSON array, appended to the saved ones).
 *  start != 0 forgets the issues of an earlier run first. state: borrowed. Returns 0, or -1. */
int reg_checkpoint_put(core_db *db,
                       const char *source,
                       const char *file_name,
                       long line,
                       const json_t *state,
                       const json_t *issues,
                       int start,
                       int finished,
                       core_err *err);
/** The issues saved with source's checkpoint, in order. *out: new JSON array. */
int reg_checkpoint_issues(json_t **out, core_db *db, const char *source, core_err *err);

/* ---- reads ----------------------------------------------------------------------------------- */

/** The current version of id. out: new reference. version/last_updated may be NULL.
 *  Returns 0, or -1 with err (404 not-found, 410 deleted, 503). */
int reg_read(json_t **out,
             int *version,
             char last_updated[32],
             core_db *db,
             reg_type t,
             const char *id,
             core_err *err);
/** A given version of id. 404 if there is no such version; 410 if that version is a delete. */
int reg_vread(json_t **out,
              char last_updated[32],
              core_db *db,
              reg_type t,
              const char *id,
              int version,
              core_err *err);

/* A history query: system level (type -1), type level (id NULL) or instance level. */
typedef struct reg_history_query {
    int type;            /* reg_type, or -1 for all types */
    const char *id;      /* instance, or NULL */
    const char *since;   /* FHIR instant: versions at or after it; NULL for all */
    int count;           /* page size, 1..max */
    long long before;    /* paging cursor: only entries with seq < before; 0 = newest */
    const char *horizon; /* the walk's horizon (from its first page), or NULL: take it now */
    int unsafe_horizon;  /* 1: the horizon is "now" (tests' negative control only) */
} reg_history_query;

typedef struct reg_history_entry {
    char *text; /* the stored JSON, "resourceType" first (malloc'd); NULL for DELETE */
    reg_type type;
    char id[65];
    int version;
    char last_updated[32];
    char method[8]; /* POST, PUT or DELETE */
    int status;     /* what the write answered: 201 created, 200 updated, 204 deleted */
    long long seq;
} reg_history_entry;

/** Entries newest first (by the feed's sequence), at most q->count. Only versions stamped at
 *  or before the walk's horizon are shown: the start of the oldest transaction still open on
 *  this database when the walk's first page was read (mahali_feed_horizon), written to
 *  horizon_out and pinned by the caller for the walk's later pages (q->horizon). Every version
 *  stamped before it had committed by then, so a walk holds every such version once, and a
 *  client whose next poll asks _since=horizon never skips a version committed later (one
 *  stamped exactly at the horizon may come twice). *entries: malloc'd array (free with
 *  reg_history_free); *next_before: cursor for the next page, or 0 when there is none.
 *  Returns 0 or -1 with err (400 for a bad since or horizon). */
int reg_history(reg_history_entry **entries,
                int *n,
                long long *next_before,
                char horizon_out[32],
                core_db *db,
                const reg_history_query *q,
                core_err *err);
/** The same walk in pieces, for answers streamed while the database reads the next piece:
 *  start checks q and fills horizon_out (q->horizon when pinned, else now); send asks for at
 *  most limit entries older than `before` (0: the newest) and returns at once; recv waits for
 *  them (*entries as reg_history gives them; *n < limit: the walk has no more). Nothing else may
 *  run on db between send and recv. Each returns 0, or -1 with err. */
int reg_history_start(char horizon_out[32], core_db *db, const reg_history_query *q, core_err *err);
int reg_history_send(core_db *db,
                     const reg_history_query *q,
                     const char *horizon,
                     long long before,
                     int limit,
                     core_err *err);
int reg_history_recv(reg_history_entry **entries, int *n, core_db *db, core_err *err);
/** Is s an instant or partial dateTime _since accepts? */
int reg_instant_valid(const char *s);
/** in (an instant, or a date YYYY[-MM[-DD]] meaning its start in UTC) as a full instant in
 *  out; -1 when it is not one or names an impossible date or time. */
int reg_since_normalize(const char *in, char out[40]);
void reg_history_free(reg_history_entry *entries, int n);

/* ---- maintenance ---------------------------------------------------------------------------- */

/** Rebuild the search and spatial index rows of every live resource from its stored content
 *  (after an upgrade changed what is indexed). Each resource in its own transaction; resources
 *  whose references no longer resolve are reported in *failed and left with their old rows.
 *  Calls progress(done, payload) every 1000 resources if given. Returns 0 or -1 with err. */
int reg_reindex(long *done,
                long *failed,
                core_db *db,
                void (*progress)(long done, void *payload),
                void *payload,
                core_err *err);

/* ---- spatial data quality ----------------------------------------------------------------- */

/* One problem with one Location's position (see sql/0004_data_quality.sql for the checks). */
typedef struct reg_dq_row {
    char id[65];
    char *name;            /* malloc'd, may be NULL */
    char jurisdiction[65]; /* the Location it is partOf, or "" */
    char check[32];        /* zero-position, low-precision, outside-jurisdiction, outside-country,
                              swapped-coordinates, same-position, likely-duplicate */
    char *reason;          /* malloc'd, for people */
    char other[65];        /* the other Location involved, or "" */
} reg_dq_row;

/** Check the positions of every Location (root NULL) or of those at or below Location root.
 *  *rows: malloc'd (free with reg_dq_free), ordered by Location id then check.
 *  Returns 0, or -1 with err (404 when root does not exist). */
int reg_data_quality(reg_dq_row **rows, size_t *n, core_db *db, const char *root, core_err *err);
void reg_dq_free(reg_dq_row *rows, size_t n);

/* ---- catchments ------------------------------------------------------------------------------
 * A catchment is a Location partOf its facility, typed REG_LOCATION_ROLE|catchment (approved)
 * or |catchment-draft (generated, waiting for review), with its polygon in the boundary
 * extension; drafts carry the identifier REG_CATCHMENT_DRAFT_ID|<facility id>, approved ones
 * REG_CATCHMENT_ID|<facility id> (docs/DESIGN-NOTES.md, sql/0006_catchments.sql). */

#define REG_LOCATION_ROLE           "https://profiles.mahali.health/fhir/CodeSystem/location-role"
#define REG_CATCHMENT_ID            "https://profiles.mahali.health/fhir/NamingSystem/catchment"
#define REG_CATCHMENT_DRAFT_ID      "https://profiles.mahali.health/fhir/NamingSystem/catchment-draft"
#define REG_CATCHMENT_RADIUS_MAX_KM 100.0
#define REG_CATCHMENT_TOLERANCE_KM2 0.01 /* gaps and overlaps this small are not reported */

typedef enum reg_catchment_method {
    REG_CATCHMENT_VORONOI,
    REG_CATCHMENT_BUFFER
} reg_catchment_method;

/* What became of one facility's draft. */
typedef enum reg_draft_status {
    REG_DRAFT_CREATED,
    REG_DRAFT_UPDATED,
    REG_DRAFT_UNCHANGED, /* the stored draft was already this: no new version */
    REG_DRAFT_SKIPPED,   /* no polygon: no position, or nothing of its cell inside the boundary */
    REG_DRAFT_FAILED     /* the write was refused: see err */
} reg_draft_status;

/* One active facility of the jurisdiction and its draft. */
typedef struct reg_catchment_draft {
    char facility[65];
    char *facility_name; /* malloc'd, may be NULL */
    reg_draft_status status;
    reg_write w;       /* CREATED/UPDATED/UNCHANGED: the stored draft (w.resource new ref) */
    double area_km2;   /* of the draft's polygon (geodesic); 0 when skipped */
    char *shared_with; /* malloc'd: the other facilities at exactly the same position (they
                          share one Voronoi cell), comma-separated; NULL if none */
    char note[24];     /* "no-position", "outside-jurisdiction" (position outside the
                          boundary), "no-area" (no polygon inside the boundary) or "" */
    core_err err;      /* FAILED: why */
} reg_catchment_draft;

/** Generate draft catchments for every active mCSD facility below Location jurisdiction
 *  (partOf, any depth) and write them through the normal write path (validation, versioning,
 *  audit, indexing) as conditional updates by REG_CATCHMENT_DRAFT_ID|<facility id>: a re-run
 *  updates the drafts in place (unchanged ones get no new version), approved catchments are
 *  never touched. Voronoi cells (metric CRS) or geodesic buffers of radius_km (buffer only,
 *  0 < radius_km <= REG_CATCHMENT_RADIUS_MAX_KM), clipped to the jurisdiction's boundary.
 *  Writes go in transactions of up to 200 drafts; if one fails in the database, that chunk is
 *  redone draft by draft so that only the failing draft is lost (status FAILED).
 *  *drafts: malloc'd, one per facility ordered by facility id (free with
 *  reg_catchment_drafts_free). Returns 0, or -1 with err, err->expr naming the parameter:
 *  404/410 jurisdiction unknown or deleted, 422 it has no boundary, 400 radius out of range,
 *  503 database (drafts of earlier chunks stay written; a re-run converges). */
int reg_catchments_generate(reg_catchment_draft **drafts,
                            size_t *n,
                            core_db *db,
                            const char *jurisdiction,
                            reg_catchment_method method,
                            double radius_km,
                            const reg_actor *who,
                            core_err *err);
void reg_catchment_drafts_free(reg_catchment_draft *drafts, size_t n);

/* One finding of reg_catchment_check (see mahali_catchment_check for the checks). */
typedef struct reg_catchment_problem {
    char check[24];     /* gap, overlap, facility-outside, no-catchment, facility-inactive,
                           not-a-facility */
    char facility[65];  /* or "" */
    char catchment[65]; /* or "" */
    char other[65];     /* overlap: the second catchment, else "" */
    double area_km2;    /* gap, overlap; else NAN */
    double distance_m;  /* facility-outside: from the facility to its catchment; else NAN */
    double lat, lon;    /* gap: a point inside it; facility-*: the facility; else NAN */
} reg_catchment_problem;

typedef struct reg_catchment_report {
    long facilities;                 /* active facilities below the jurisdiction */
    long catchments;                 /* catchments checked */
    double area_km2;                 /* the jurisdiction's area */
    reg_catchment_problem *problems; /* malloc'd, ordered by check then ids */
    size_t n;
} reg_catchment_report;

/** Check how the catchments below Location jurisdiction (the approved ones, or the drafts when
 *  drafts != 0) cover its boundary: gaps, overlaps above REG_CATCHMENT_TOLERANCE_KM2,
 *  facilities outside their own catchment, active facilities without one, catchments of
 *  inactive facilities or of non-facilities. out: filled (clear with
 *  reg_catchment_report_clear). Returns 0, or -1 with err (404/410, 422 no boundary). */
int reg_catchment_check(
    reg_catchment_report *out, core_db *db, const char *jurisdiction, int drafts, core_err *err);
void reg_catchment_report_clear(reg_catchment_report *r);

/* ---- exports of the master facility list (registry/export.c) --------------------------------
 * The facilities are the live Locations typed with the mCSD facility code. They are read in
 * pages ordered by id, each page its own statement: no transaction stays open for the length
 * of an export (it would hold back the change feed's horizon), so a facility written during
 * an export is seen as it was when its page was read. */

/* Which facilities; every member may be NULL (no condition). Strings borrowed. */
typedef struct reg_export_filter {
    const char *jurisdiction; /* Location id: the facilities below it (partOf, any depth) */
    const char *type;         /* Location.type: code (any system), system|code, |code (no
                                 system) or system| (any code of system) */
    const char *status;       /* Location.status: active, inactive or suspended */
    int ancestors;            /* 1: deliver the Locations above the facilities too */
    int boundaries;           /* 1: with ancestors, each one's boundary as GeoJSON */
} reg_export_filter;

#define REG_EXPORT_FILTER_INIT \
    {                          \
        NULL, NULL, NULL, 0, 0 \
    }

typedef enum reg_export_kind {
    REG_EXPORT_FACILITY, /* a facility the filter selects */
    REG_EXPORT_ABOVE     /* a Location above one (a jurisdiction, or a facility's parent) */
} reg_export_kind;

/* One Location of an export. Every json_t is borrowed for the length of the callback. */
typedef struct reg_export_item {
    reg_export_kind kind;
    const json_t *location;     /* the stored Location, with id and meta (versionId,
                                   lastUpdated) */
    const json_t *organization; /* its live managingOrganization, or NULL */
    int organization_shared;    /* 1: that Organization manages other Locations too */
    const json_t *above;        /* the Locations above it through partOf, top first: an array
                                   of {"id", "name" (string or null), "facility" (true when it
                                   has the mCSD facility type), "identifier" (as stored, or
                                   null)}; [] for a root */
    const json_t *boundary;     /* ABOVE with filter->boundaries: its boundary as a GeoJSON
                                   geometry (lon/lat, 7 decimals), else NULL */
    int repeat;                 /* FACILITY already delivered as ABOVE (to write it once) */
} reg_export_item;

/* Called once per item; returns 0, or -1 with err set to stop the export. */
typedef int (*reg_export_fn)(const reg_export_item *item, core_err *err, void *payload);

/** Check a filter before anything is written: 400 naming "jurisdiction", "type" or "status"
 *  (err->expr) for a malformed value, 404/410 when the jurisdiction is not a live Location.
 *  Returns 0 or -1 with err. */
int reg_export_check(core_db *db, const reg_export_filter *f, core_err *err);

/** What a table of the export needs before its first row: *systems, a new JSON array of the
 *  identifier systems the selected facilities carry (sorted); *levels, the most Locations
 *  above one of them that are not facilities; *count, how many there are. Returns 0, or -1
 *  with err (400 as reg_export_check, 503). */
int reg_export_shape(json_t **systems,
                     int *levels,
                     long *count,
                     core_db *db,
                     const reg_export_filter *f,
                     core_err *err);

/** Call each for every facility f selects, ordered by id. With f->ancestors, before each page
 *  of facilities, the Locations above them not delivered yet, parents first, so that every
 *  Location comes after the Locations above it; a facility delivered that way comes again in
 *  its place with repeat set. db: this thread's. Returns 0, or -1 with err (400 as
 *  reg_export_check, 503, or what each set when it stopped the export). */
int reg_export_facilities(
    core_db *db, const reg_export_filter *f, reg_export_fn each, void *payload, core_err *err);

/* ---- staffing (registry/staffing.c) ----------------------------------------------------------
 * Health workers posted at a place, derived from the PractitionerRoles that name it (location
 * for a Location, organization for an Organization). Personal data: callers check access as
 * for PractitionerRole. */

/* One role: a coding of PractitionerRole.code, or a concept given only as text (code NULL). */
typedef struct reg_staffing_role {
    char *system;  /* malloc'd, NULL when the coding has none (or for a text-only role) */
    char *code;    /* malloc'd, NULL for a text-only role */
    char *display; /* malloc'd: the coding's display, else the concept's text; may be NULL */
    long count;    /* active postings with this role */
} reg_staffing_role;

typedef struct reg_staffing {
    char *name;               /* malloc'd: the place's name, or NULL */
    char date[11];            /* the day the postings are counted on, YYYY-MM-DD (UTC) */
    long total;               /* active postings (each once, whatever its roles) */
    long practitioners;       /* distinct practitioners holding them */
    long uncoded;             /* postings with neither a role code nor a role text */
    long places;              /* places counted: 1, plus those below with include_below */
    reg_staffing_role *roles; /* malloc'd, most postings first, then by system and code */
    size_t n;
} reg_staffing;

/** Count the active postings at Location or Organization id (t), and, with include_below, at
 *  every place partOf-below it (any depth). A posting is active when its active is not false
 *  and its period, if it has one, covers now (open ends are unbounded; partial dates cover
 *  their whole span, UTC). out: filled (release with reg_staffing_clear, also after failure).
 *  Returns 0, or -1 with err: 400 for another type, 404/410 as reg_read, 503. */
int reg_staffing_count(
    reg_staffing *out, core_db *db, reg_type t, const char *id, int include_below, core_err *err);
void reg_staffing_clear(reg_staffing *s);

/* ---- sync cursors (mahali sync) -------------------------------------------------------------- */

/** The cursor of `mahali sync` for source (a FHIR base URL) and scope (a resource type, or "*"
 *  for the whole system): since (the next poll's _since, "" when none) and how many changes
 *  were applied so far. Returns 0 or -1 with err. */
int reg_sync_cursor_get(char since[40],
                        long long *applied,
                        core_db *db,
                        const char *source,
                        const char *scope,
                        core_err *err);
/** Save the cursor after a walk was applied: since, and applied added to the total. */
int reg_sync_cursor_put(core_db *db,
                        const char *source,
                        const char *scope,
                        const char *since,
                        long long applied,
                        core_err *err);

/* ---- tokens ---------------------------------------------------------------------------------- */

/* Ordered by what they may do to facilities; hr (an HR system's token) reads everything and
 * writes only Practitioner and PractitionerRole. */
typedef enum reg_role {
    REG_ROLE_NONE,
    REG_ROLE_READER,
    REG_ROLE_HR,
    REG_ROLE_EDITOR,
    REG_ROLE_ADMIN
} reg_role;

/** "reader"/"hr"/"editor"/"admin" → role; REG_ROLE_NONE if unknown. */
reg_role reg_role_parse(const char *s);
const char *reg_role_name(reg_role r);

/* The holder of a valid token. */
typedef struct reg_principal {
    reg_role role;
    long long token_id; /* api_token.id */
    char name[128];
} reg_principal;

/** Create a token for role; the token text (shown once; only its hash is stored) goes to
 *  token_out. Returns 0 or -1 with err. */
int
reg_token_create(char token_out[96], core_db *db, reg_role role, const char *name, core_err *err);
/** Look up a presented token. 0 with *out filled, or -1 with err 401 (unknown or revoked). */
int reg_token_check(reg_principal *out, core_db *db, const char *token, core_err *err);

#endif
