/* Shared inside registry/ only: the store's write path for conditional operations and
 * Bundles, and small helpers. */
#ifndef REG_REGISTRY_INT_H
#define REG_REGISTRY_INT_H

#include "geo/geo.h"
#include "registry/registry.h"

/** Write one version through mahali_write (mode "create", "update" or "delete"); res has
 *  been validated. Works inside an open transaction too (the caller commits). */
int reg__write_row(reg_write *out,
                   core_db *db,
                   reg_type t,
                   const char *id,
                   const char *mode,
                   json_t *res,
                   int if_match,
                   const reg_actor *who,
                   core_err *err);
/** What the store keeps of res (set to id, without a client's meta.versionId/lastUpdated): its
 *  text and its index rows' text (reg_index_build), both malloc'd into *text, *index; parent
 *  (may be NULL): the id its partof reference of the same type names, or "". Returns 0, or -1
 *  with err (500). */
int reg__body_texts(char **text,
                    char **index,
                    char parent[65],
                    json_t *res,
                    reg_type t,
                    const char *id,
                    core_err *err);
/** Set id and meta.versionId/lastUpdated in res (the values the store wrote). */
void reg__stamp(json_t *res, const char *id, int version, const char *instant);
/** res (stolen) with resourceType, id and meta first (a new object). */
json_t *reg__reorder(json_t *src);
/** Map the store's SQLSTATEs (MH404, MH409, MH412, MH422, MH423, MH424, 23505) of the last
 *  failed statement on db onto err; -1 always (err left as is for other states). */
int reg__store_err(core_err *err, core_db *db, reg_type t, const char *id, int if_match);
/** Validate a body as a resource of type t (object, R4 model, mCSD profiles) and, for a
 *  Location, each boundary with GEOS (422 with the reason and place, 413 over the caps); with
 *  who->repair_boundaries an invalid boundary is repaired in res instead. A Location's
 *  coordinates in another CRS are converted in res first (position-source, boundary "crs":
 *  registry/crs.c). who may be NULL. */
int reg__check_body(json_t *res, reg_type t, const reg_actor *who, core_err *err);
/* Coordinates in another CRS (registry/crs.c): the source extensions keep what was sent. */
#define REG_POSITION_SOURCE_URL \
    "https://profiles.mahali.health/fhir/StructureDefinition/position-source"
#define REG_BOUNDARY_SOURCE_URL \
    "https://profiles.mahali.health/fhir/StructureDefinition/boundary-source"
/** Location, before validation: if res.position has a position-source extension (sub-extensions
 *  crs: valueString naming an EPSG CRS as geo_crs_parse accepts, x and y: valueDecimal in its GIS
 *  order), set position.longitude and latitude to the WGS84 conversion rounded to 7 decimals
 *  (JSON numbers written with all 7). Values the client sent too must agree within 1e-6 degree.
 *  The extension is left as given. Returns 0 (also when there is nothing to do), or -1 with err:
 *  422 invalid naming the extension element (missing or mistyped sub-extension, bad or unknown
 *  CRS, point that does not convert), 422 business-rule naming Location.position.latitude or
 *  .longitude (contradiction), 500 (PROJ unavailable, out of memory). */
int reg__crs_position(json_t *res, core_err *err);
/** A boundary of res was converted to WGS84 from another CRS: keep a copy of its attachment att
 *  (borrowed, as received) in res's boundary-source extension, replacing an earlier one, else
 *  appended to res.extension. Call before att is changed. Returns 0, or -1 with err (500). */
int reg__crs_boundary_source(json_t *res, const json_t *att, core_err *err);
/** This thread's GEOS context (created on first use; freed by reg_thread_cleanup). */
geo_ctx *reg__geo(void);
/** Conditional match inside the caller's open transaction: parse the criteria, take the
 *  advisory lock on the type and the canonical (decoded, sorted) criteria, held to commit, then
 *  search. *n = 0 or 1 (id_out set); two or more → 412. The one lock for REST and Bundles. */
int reg__match_locked(
    int *n, char id_out[65], core_db *db, reg_type t, const char *query, core_err *err);
/** A new random id (UUID v4 text) in out. */
void reg__new_id(char out[40]);
/** 1 while db is inside an open transaction block. */
int reg__in_tx(core_db *db);

#endif
