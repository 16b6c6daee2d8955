/* From an import record to the mCSD resources it stands for: a facility or a jurisdiction is a
 * Location and an Organization (IHE mCSD FacilityLocation/FacilityOrganization,
 * JurisdictionLocation/JurisdictionOrganization). What the record says is laid over what is
 * stored, so elements a person added in the registry (a phone number, an alias) survive the next
 * import, and laying the same record over the result again changes nothing. */
#include <string.h>

#include <stdio.h>

#include <sodium.h>

#include "importers/imp_int.h"

#define MCSD_SD "https://profiles.ihe.net/ITI/mCSD/StructureDefinition/"

/* A deep copy of the stored resource without versionId and lastUpdated, or a new one. */
static json_t *
start(const json_t *stored, const char *rtype, const char *id)
{
    json_t *r = stored ? json_deep_copy(stored) : json_object();
    json_t *meta;
    if (!r)
        return NULL;
    json_object_set_new(r, "resourceType", json_string(rtype));
    json_object_set_new(r, "id", json_string(id));
    meta = json_object_get(r, "meta");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(r, "meta", meta);
    }
    json_object_del(meta, "versionId");
    json_object_del(meta, "lastUpdated");
    return r;
}

/* meta.profile holds profile (added once). */
static void
profile_add(json_t *r, const char *profile)
{
    json_t *meta = json_object_get(r, "meta"), *p = json_object_get(meta, "profile"), *e;
    size_t i;
    if (!json_is_array(p)) {
        p = json_array();
        json_object_set_new(meta, "profile", p);
    }
    json_array_foreach (p, i, e)
        if (json_is_string(e) && strcmp(json_string_value(e), profile) == 0)
            return;
    json_array_append_new(p, json_string(profile));
}

/* Remove from array every element whose key element (a string) equals value. */
static void
drop_where(json_t *array, const char *key, const char *value)
{
    for (size_t i = json_array_size(array); i-- > 0;) {
        const char *v = json_string_value(json_object_get(json_array_get(array, i), key));
        if (v && strcmp(v, value) == 0)
            json_array_remove(array, i);
    }
}

/* Remove the string value from array. */
static void
drop_string(json_t *array, const char *value)
{
    for (size_t i = json_array_size(array); i-- > 0;) {
        const char *v = json_string_value(json_array_get(array, i));
        if (v && strcmp(v, value) == 0)
            json_array_remove(array, i);
    }
}

static json_t *
array_member(json_t *o, const char *name)
{
    json_t *a = json_object_get(o, name);
    if (!json_is_array(a)) {
        a = json_array();
        json_object_set_new(o, name, a);
    }
    return a;
}

void
imp__provenance(json_t *r, const imp_prov *p)
{
    json_t *meta = json_object_get(r, "meta"), *exts;
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(r, "meta", meta);
    }
    exts = array_member(meta, "extension");
    drop_where(exts, "url", REG_IMPORT_PROVENANCE_URL);
    json_array_append_new(exts, json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s},{s:s,s:o}]}", "url",
                                          REG_IMPORT_PROVENANCE_URL, "extension", "url", "file",
                                          "valueString", p->file, "url", "checksum", "valueString",
                                          p->checksum, "url", "line", "valueInteger",
                                          core_json_integer(p->line)));
}

static int
text_eq(const json_t *j, const char *s)
{
    return json_is_string(j) && strcmp(json_string_value(j), s) == 0;
}

/* meta: the provenance extension (replaced) and the import flag tag (replaced or removed). */
static void
meta_set(json_t *r, const imp_prov *p, const char *flag, const char *flag_display, const char *list)
{
    json_t *meta, *tags;
    imp__provenance(r, p);
    meta = json_object_get(r, "meta");
    tags = array_member(meta, "tag");
    drop_where(tags, "system", IMP_FLAG_SYSTEM);
    if (flag)
        json_array_append_new(tags, json_pack("{s:s,s:s,s:s}", "system", IMP_FLAG_SYSTEM, "code",
                                              flag, "display", flag_display));
    if (list) {
        /* the lists a facility is on accumulate, one tag each; this list's goes last (after the
         * flag), so that laying the same row over the result again changes nothing */
        json_t *t;
        for (size_t k = json_array_size(tags); k-- > 0;) {
            t = json_array_get(tags, k);
            if (text_eq(json_object_get(t, "system"), IMP_LIST_SYSTEM) &&
                text_eq(json_object_get(t, "code"), list))
                json_array_remove(tags, k);
        }
        json_array_append_new(tags,
                              json_pack("{s:s,s:s}", "system", IMP_LIST_SYSTEM, "code", list));
    }
    if (!json_array_size(tags))
        json_object_del(meta, "tag");
}

/* identifier: each of the record's identifiers replaces the value of the same system, or is
 * added. */
static void
identifiers_set(json_t *r, const imp_rec *rec)
{
    json_t *ids = array_member(r, "identifier");
    for (int k = 0; k < rec->nids; k++) {
        json_t *e, *found = NULL;
        size_t i;
        json_array_foreach (ids, i, e) {
            const char *s = json_string_value(json_object_get(e, "system"));
            if (s && strcmp(s, rec->ids[k].system) == 0) {
                found = e;
                break;
            }
        }
        if (found)
            json_object_set_new(found, "value", json_string(rec->ids[k].value));
        else
            json_array_append_new(ids, json_pack("{s:s,s:s}", "system", rec->ids[k].system, "value",
                                                 rec->ids[k].value));
    }
    if (!json_array_size(ids))
        json_object_del(r, "identifier");
}

/* A CodeableConcept in array `member` with a coding of system: replaced by (system, code,
 * display), or added; code NULL only makes sure nothing is replaced. */
static void
coding_set(json_t *r, const char *member, const char *system, const char *code, const char *display)
{
    json_t *arr = array_member(r, member), *cc, *found = NULL;
    size_t i;
    json_array_foreach (arr, i, cc) {
        json_t *cd;
        size_t k;
        json_array_foreach (json_object_get(cc, "coding"), k, cd) {
            const char *s = json_string_value(json_object_get(cd, "system"));
            if (s && strcmp(s, system) == 0)
                found = cc;
        }
        if (found)
            break;
    }
    json_t *coding = json_pack("{s:s,s:s}", "system", system, "code", code);
    if (display)
        json_object_set_new(coding, "display", json_string(display));
    if (found)
        json_object_set_new(found, "coding", json_pack("[o]", coding));
    else
        json_array_append_new(arr, json_pack("{s:[o]}", "coding", coding));
}

/* The mCSD type coding (facility or jurisdiction) present exactly once. */
static void
mcsd_type(json_t *r, const char *code)
{
    coding_set(r, "type", IMP_MCSD_TYPES, code,
               strcmp(code, "facility") == 0 ? "Facility" : "Jurisdiction");
}

static void
ref_set(json_t *r, const char *member, const char *type, const char *id)
{
    if (id && *id)
        json_object_set_new(r, member,
                            json_pack("{s:o}", "reference", json_sprintf("%s/%s", type, id)));
}

static const char *
flag_display(const char *flag)
{
    if (!flag)
        return NULL;
    if (strcmp(flag, "null-island") == 0)
        return "Coordinates 0,0 in the source were not stored";
    if (strcmp(flag, "swapped-coordinates") == 0)
        return "Latitude and longitude look swapped in the source";
    if (strcmp(flag, "swapped-fixed") == 0)
        return "Latitude and longitude were swapped in the source and stored swapped back";
    return "Coordinates in the source were not usable and were not stored";
}

json_t *
imp_build_location(const json_t *stored,
                   const imp_rec *rec,
                   const imp_prov *prov,
                   const char *parent_loc)
{
    int fac = rec->kind == IMP_REC_FACILITY;
    json_t *r = start(stored, "Location", rec->loc_id);
    if (!r)
        return NULL;
    if (!fac)
        profile_add(r, MCSD_SD "IHE.mCSD.JurisdictionLocation");
    meta_set(r, prov, rec->flag, flag_display(rec->flag),
             rec->kind == IMP_REC_FACILITY ? rec->list : NULL);
    identifiers_set(r, rec);
    json_object_set_new(r, "status", json_string(rec->status ? rec->status : "active"));
    if (rec->name)
        json_object_set_new(r, "name", json_string(rec->name));
    mcsd_type(r, fac ? "facility" : "jurisdiction");
    if (fac && rec->type_code)
        coding_set(r, "type", rec->type_system, rec->type_code, rec->type_display);
    /* the FacilityLocation profile wants the facility code and a kind of facility */
    if (fac && json_array_size(json_object_get(r, "type")) >= 2)
        profile_add(r, MCSD_SD "IHE.mCSD.FacilityLocation");
    else if (fac) {
        json_t *meta = json_object_get(r, "meta");
        drop_string(json_object_get(meta, "profile"), MCSD_SD "IHE.mCSD.FacilityLocation");
        if (!json_array_size(json_object_get(meta, "profile")))
            json_object_del(meta, "profile");
    }
    if (!fac)
        json_object_set_new(
            r, "physicalType",
            json_pack("{s:[{s:s,s:s,s:s}]}", "coding", "system",
                      "http://terminology.hl7.org/CodeSystem/location-physical-type", "code", "jdn",
                      "display", "Jurisdiction"));
    if (rec->has_pos) {
        double lat = rec->lat, lon = rec->lon;
        if (rec->flag && strcmp(rec->flag, "swapped-fixed") == 0) {
            lat = rec->lon;
            lon = rec->lat;
        }
        if (rec->crs_epsg) {
            /* the registry converts (registry/crs.c) and keeps what was given */
            json_object_del(r, "position");
            json_t *pos = json_object();
            json_object_set_new(
                pos, "extension",
                json_pack("[{s:s,s:[{s:s,s:o},{s:s,s:o},{s:s,s:o}]}]", "url",
                          "https://profiles.mahali.health/fhir/StructureDefinition/position-source",
                          "extension", "url", "crs", "valueString",
                          json_sprintf("EPSG:%d", rec->crs_epsg), "url", "x", "valueDecimal",
                          core_json_real(lon), "url", "y", "valueDecimal", core_json_real(lat)));
            json_object_set_new(r, "position", pos);
        } else {
            json_object_set_new(r, "position",
                                json_pack("{s:o,s:o}", "longitude", core_json_real(lon), "latitude",
                                          core_json_real(lat)));
        }
    }
    if (rec->boundary) {
        /* replaced where it stands: the registry may have put a boundary-source extension after
         * it (a converted CRS), and moving it would make every re-import a new version */
        static const char url[] =
            "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson";
        json_t *exts = array_member(r, "extension"), *e;
        size_t i, at = json_array_size(exts);
        json_array_foreach (exts, i, e) {
            const char *u = json_string_value(json_object_get(e, "url"));
            if (u && strcmp(u, url) == 0) {
                at = i;
                break;
            }
        }
        drop_where(exts, "url", url); /* at (the first) stays within the array */
        json_array_insert_new(exts, at,
                              json_pack("{s:s,s:{s:s,s:s}}", "url", url, "valueAttachment",
                                        "contentType", "application/geo+json", "data",
                                        rec->boundary));
    }
    if (!json_array_size(json_object_get(r, "extension")))
        json_object_del(r, "extension");
    if (parent_loc)
        ref_set(r, "partOf", "Location", parent_loc);
    ref_set(r, "managingOrganization", "Organization", rec->org_id);
    return r;
}

json_t *
imp_build_organization(const json_t *stored,
                       const imp_rec *rec,
                       const imp_prov *prov,
                       const char *parent_org)
{
    int fac = rec->kind == IMP_REC_FACILITY;
    json_t *r = start(stored, "Organization", rec->org_id);
    if (!r)
        return NULL;
    profile_add(r, fac ? MCSD_SD "IHE.mCSD.FacilityOrganization"
                       : MCSD_SD "IHE.mCSD.JurisdictionOrganization");
    meta_set(r, prov, NULL, NULL, NULL);
    identifiers_set(r, rec);
    json_object_set_new(r, "active",
                        json_boolean(!rec->status || strcmp(rec->status, "active") == 0));
    if (rec->name)
        json_object_set_new(r, "name", json_string(rec->name));
    mcsd_type(r, fac ? "facility" : "jurisdiction");
    if (fac && rec->owner_code)
        coding_set(r, "type", rec->owner_system, rec->owner_code, rec->owner_display);
    if (parent_org)
        ref_set(r, "partOf", "Organization", parent_org);
    return r;
}

const char *
imp_boundary_data(core_arena *a, const json_t *geom, int epsg)
{
    json_t *g = json_pack("{s:O,s:O}", "type", json_object_get(geom, "type"), "coordinates",
                          json_object_get(geom, "coordinates"));
    char *text, *b64;
    size_t len, cap;

    if (!g)
        return NULL;
    if (epsg)
        json_object_set_new(g, "crs",
                            json_pack("{s:s,s:{s:o}}", "type", "name", "properties", "name",
                                      json_sprintf("EPSG:%d", epsg)));
    text = core_json_dump(g, &len);
    json_decref(g);
    if (!text)
        return NULL;
    cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    b64 = core_arena_alloc(a, cap);
    sodium_bin2base64(b64, cap, (const unsigned char *)text, len, sodium_base64_VARIANT_ORIGINAL);
    free(text);
    return b64;
}
