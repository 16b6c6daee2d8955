/* Validation of FHIR R4 resources against the R4 model (generated from the official
 * StructureDefinitions into registry/fhir_model.json, embedded in the binary) and against the
 * IHE mCSD profile rules for the profiles a resource claims in meta.profile.
 * Included by registry/registry.h; the model is loaded once, before threads start. */
#ifndef REG_VALIDATE_H
#define REG_VALIDATE_H

#include "core/core.h"

/** Load the embedded R4 model. Call once before any thread uses the functions below.
 *  Returns 0, or -1 with err set (500: the binary's embedded model is broken). */
int reg_model_load(core_err *err);

/** 1 if name is an R4 resource type ("Location", "Bundle"...), else 0. Needs reg_model_load. */
int reg_model_is_resource_type(const char *name);

/** 1 if the JSON property json_name ("name", "_name", "valueString") of the resource type is a
 *  summary element (isSummary: kept by _summary=true), else 0. */
int reg_model_is_summary(const char *type, const char *json_name);
/** 1 if the JSON property json_name of the resource type is a mandatory element (min >= 1:
 *  kept by _summary=text and _elements so that a subset stays valid FHIR), else 0. */
int reg_model_is_mandatory(const char *type, const char *json_name);

/** Validate res as a resource of the given type. Checks, collecting every issue (first in err,
 *  the rest in err->more), each with the FHIRPath of the element ("Location.position.latitude"):
 *  - resourceType present and equal to type (400 structure / invalid);
 *  - every property is a known element of its type (choice types as valueString etc., `_x`
 *    primitive companions), JSON kind per element (object, array iff max > 1, primitive
 *    JSON kinds), cardinality min/max, primitive formats per the R4 regexes (id, date,
 *    dateTime, instant, uri, code, decimal, integer ranges, base64...), contained resources
 *    and Bundle entries by their own resourceType (400 structure / required / value);
 *  - codes of required bindings (400 value: "status must be one of active, ...");
 *  - no empty objects, arrays or strings (400 value), xhtml narrative with no script or event
 *    handler attributes (422 invalid);
 *  - mCSD rules of ../shared/mcsd.md §4 for each mCSD profile canonical in meta.profile
 *    (422 processing / required).
 *  res: borrowed, parsed by core_json_parse. Returns 0 or -1 with err set. */
int reg_validate(const json_t *res, const char *type, core_err *err);

#endif
