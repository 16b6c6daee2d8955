/* FHIR XML (http://hl7.org/fhir/xml.html) <-> the JSON form the registry works in, driven by
 * the R4 model (element order, repeating elements, primitive types, choice types). Included
 * by registry/registry.h. The XML reader refuses DTDs, entity declarations and processing
 * beyond the XML 1.0 basics, with size and depth limits. */
#ifndef REG_XML_H
#define REG_XML_H

#include "core/core.h"

/** Parse a FHIR XML resource (root element = resource type, namespace http://hl7.org/fhir)
 *  into the FHIR JSON form: arrays for repeating elements, `_name` companions for primitive
 *  ids/extensions, numbers and booleans as JSON numbers (core_json_number, text kept exactly)
 *  and booleans, xhtml narrative as a string. Needs reg_model_load.
 *  Returns a new reference, or NULL with err (400 structure: malformed XML, DTD or entity
 *  declaration, unknown element for the type, too deep or too large; the message names the
 *  line and element). */
json_t *reg_xml_parse(const char *xml, size_t len, core_err *err);

/** Serialise a resource (FHIR JSON form, as core_json_parse returns or reg_xml_parse makes)
 *  as FHIR XML: elements in StructureDefinition order, `value` attributes, `id`/`url`
 *  attributes, primitive extensions, xhtml narrative verbatim, resources inside contained /
 *  Bundle.entry.resource wrapped in their type element. Returns malloc'd NUL-terminated text
 *  (caller frees), length in *len_out (may be NULL); NULL with err (500) if res does not fit
 *  the model (which validated resources always do). */
char *reg_xml_dump(const json_t *res, size_t *len_out, core_err *err);

#endif
