/* The CapabilityStatement at /fhir/metadata, built from the tables below, which list exactly
 * the interactions web/fhir.c implements: a claim here is a promise the e2e tests call. */
#include <stdio.h>
#include <string.h>

#include "web/web_int.h"

#define MCSD_SD "https://profiles.ihe.net/ITI/mCSD/StructureDefinition/"

/* Type-level interactions implemented for every stored type (web/fhir.c routes them). */
static const char *const type_interactions[] = {
    "read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"
};

/* mCSD profiles each type may claim (validated when claimed in meta.profile). */
static const char *const profiles[REG_NTYPES][4] = {
    [REG_ORGANIZATION] = { MCSD_SD "IHE.mCSD.Organization", MCSD_SD "IHE.mCSD.FacilityOrganization",
                           MCSD_SD "IHE.mCSD.JurisdictionOrganization", NULL },
    [REG_LOCATION] = { MCSD_SD "IHE.mCSD.Location", MCSD_SD "IHE.mCSD.FacilityLocation",
                       MCSD_SD "IHE.mCSD.JurisdictionLocation",
                       MCSD_SD "IHE.mCSD.LocationDistance" },
    [REG_HEALTHCARESERVICE] = { MCSD_SD "IHE.mCSD.HealthcareService", NULL },
    [REG_PRACTITIONER] = { MCSD_SD "IHE.mCSD.Practitioner", NULL },
    [REG_PRACTITIONERROLE] = { MCSD_SD "IHE.mCSD.PractitionerRole", NULL },
    [REG_ENDPOINT] = { MCSD_SD "IHE.mCSD.Endpoint", NULL },
    [REG_ORGANIZATIONAFFILIATION] = { MCSD_SD "IHE.mCSD.OrganizationAffiliation", NULL },
};

static json_t *
search_param(const char *name, const char *definition, const char *type, const char *doc)
{
    json_t *p = json_pack("{s:s, s:s, s:s}", "name", name, "definition", definition, "type", type);
    if (doc)
        json_object_set_new(p, "documentation", json_string(doc));
    return p;
}

/* Every parameter of reg_search_params(t), plus _id and _lastUpdated. */
static json_t *
search_params(reg_type t)
{
    json_t *a = json_array();
    const reg_search_param *sp;

    json_array_append_new(a, search_param("_id", "http://hl7.org/fhir/SearchParameter/Resource-id",
                                          "token", "logical id; comma-separated values mean OR"));
    json_array_append_new(
        a, search_param("_lastUpdated", "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated",
                        "date", "prefixes eq ne gt lt ge le sa eb ap"));
    for (sp = reg_search_params((int)t); sp->name; sp++) {
        static const char *const how[] = {
            [REG_SP_STRING] = "starts with, ignoring case and accents; :exact, :contains, :missing",
            [REG_SP_TOKEN] = "code, system|code, |code or system|; :not, :missing",
            [REG_SP_REFERENCE] = "id, Type/id or absolute URL; :[type], :missing, chained "
                                 "parameters (param.name=...)",
            [REG_SP_DATE] =
                "date range by precision; prefixes eq ne gt lt ge le sa eb ap; :missing",
            [REG_SP_SPECIAL] = "",
        };
        char doc[1024];
        snprintf(doc, sizeof(doc), "%s (element %s). %s",
                 sp->doc ? sp->doc : reg_sp_kind_name(sp->kind), sp->paths, how[sp->kind]);
        json_array_append_new(
            a, search_param(sp->name, sp->definition, reg_sp_kind_name(sp->kind), doc));
    }
    return a;
}

/* _include values (Type:param for t's references) or _revinclude values (other types'
 * references that can point at t). */
static json_t *
includes(reg_type t, int rev)
{
    json_t *a = json_array();
    for (int s = 0; s < REG_NTYPES; s++) {
        const reg_search_param *sp;
        if (!rev && s != (int)t)
            continue;
        for (sp = reg_search_params(s); sp->name; sp++) {
            char v[128];
            if (sp->kind != REG_SP_REFERENCE)
                continue;
            if (rev && (!sp->targets || !strstr(sp->targets, reg_type_name(t))))
                continue;
            snprintf(v, sizeof(v), "%s:%s", reg_type_name((reg_type)s), sp->name);
            json_array_append_new(a, json_string(v));
        }
    }
    return a;
}

/* The $staffing operation of Location and Organization (web/staffing.c). */
static json_t *
staffing_operation(reg_type t)
{
    char def[128], doc[1024];
    const char *tn = reg_type_name(t);

    snprintf(def, sizeof(def),
             "https://profiles.mahali.health/fhir/OperationDefinition/%s-staffing", tn);
    snprintf(doc, sizeof(doc),
             "GET [base]/%s/{id}/$staffing[?includeBelow=true] (a token: derived from "
             "PractitionerRole): the active postings (PractitionerRole.%s naming it, active not "
             "false, period covering today if given) counted by role, as Parameters: %s "
             "(valueReference), date, includeBelow, places, total (postings), practitioners "
             "(distinct), uncoded (postings without a role), and one role per "
             "PractitionerRole.code coding with parts code (valueCoding, display from the coding "
             "or the concept's text; a concept with only text gives a part text instead) and "
             "count; includeBelow=true also counts the %ss partOf-below it at any depth; 404 "
             "for an unknown id",
             tn, t == REG_LOCATION ? "location" : "organization",
             t == REG_LOCATION ? "location" : "organization", tn);
    return json_pack("{s:s, s:s, s:s}", "name", "staffing", "definition", def, "documentation",
                     doc);
}

static json_t *
resource_entry(reg_type t)
{
    json_t *res = json_object(), *ia = json_array(), *prof = json_array();

    json_object_set_new(res, "type", json_string(reg_type_name(t)));
    {
        char base[128];
        snprintf(base, sizeof(base), "http://hl7.org/fhir/StructureDefinition/%s",
                 reg_type_name(t));
        json_object_set_new(res, "profile", json_string(base));
    }
    for (int i = 0; i < 4 && profiles[t][i]; i++)
        json_array_append_new(prof, json_string(profiles[t][i]));
    json_object_set_new(res, "supportedProfile", prof);
    for (size_t i = 0; i < sizeof(type_interactions) / sizeof(type_interactions[0]); i++)
        json_array_append_new(ia, json_pack("{s:s}", "code", type_interactions[i]));
    json_object_set_new(res, "interaction", ia);
    json_object_set_new(res, "versioning", json_string("versioned"));
    json_object_set_new(res, "readHistory", json_true());
    json_object_set_new(res, "updateCreate", json_true());
    json_object_set_new(res, "conditionalCreate", json_true());
    json_object_set_new(res, "conditionalRead", json_string("not-supported"));
    json_object_set_new(res, "conditionalUpdate", json_true());
    json_object_set_new(res, "conditionalDelete", json_string("single"));
    json_object_set_new(res, "searchParam", search_params(t));
    if (t == REG_LOCATION)
        json_object_set_new(
            res, "operation",
            json_pack(
                "[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}, "
                "{s:s, s:s, s:s}]",
                "name", "boundaries", "definition",
                "https://profiles.mahali.health/fhir/OperationDefinition/Location-boundaries",
                "documentation",
                "GET [base]/Location/$boundaries[?partof=Location/id][&bbox=minLon,minLat,"
                "maxLon,maxLat][&tolerance=degrees]: the boundaries as one GeoJSON "
                "FeatureCollection (application/geo+json) for web maps, simplified "
                "topology-preserving to tolerance degrees (default 0.001, about 110 m; 0 keeps "
                "them as stored; at most 1), each Feature with id Location/<id> and properties "
                "name, status, partOf, type; partof: that Location and everything below it; at "
                "most 5000 features",
                "name", "data-quality", "definition",
                "https://profiles.mahali.health/fhir/OperationDefinition/Location-data-quality",
                "documentation",
                "GET [base]/Location/$data-quality[?partof=Location/id][&_format=csv]: "
                "problems with facility positions (zero-position, low-precision, "
                "outside-jurisdiction, outside-country, swapped-coordinates, same-position, "
                "likely-duplicate), each with its reason, and counts per jurisdiction",
                "name", "generate-catchments", "definition",
                "https://profiles.mahali.health/fhir/OperationDefinition/"
                "Location-generate-catchments",
                "documentation",
                "POST [base]/Location/$generate-catchments?jurisdiction=Location/id"
                "[&method=voronoi|buffer][&radius=km] (or the same as a Parameters body; editor "
                "or admin): draft catchments (Locations partOf each active facility below the "
                "jurisdiction, type " REG_LOCATION_ROLE
                "|catchment-draft, identifier " REG_CATCHMENT_DRAFT_ID
                "|<facility id>) from the Voronoi cells of the facilities (default) or a buffer "
                "of radius km (default 5, at most 100), clipped to the jurisdiction's boundary; "
                "written as conditional updates, so a re-run updates the drafts and never "
                "touches approved catchments (type catchment). Answers a batch-response Bundle: "
                "a summary OperationOutcome with warnings, then each draft with its status "
                "(created, updated, unchanged) in response.outcome",
                "name", "catchment-check", "definition",
                "https://profiles.mahali.health/fhir/OperationDefinition/Location-catchment-check",
                "documentation",
                "GET [base]/Location/$catchment-check?jurisdiction=Location/id[&drafts=true]"
                "[&_format=csv]: how the approved catchments (or the drafts) below the "
                "jurisdiction cover its boundary: gaps (area, a point inside), overlaps over "
                "0.01 km2 (both catchments, area), facilities outside their catchment "
                "(distance), active facilities without one, catchments of inactive facilities "
                "or of non-facilities; counts per check",
                "name", "export-mfl", "definition",
                "https://profiles.mahali.health/fhir/OperationDefinition/Location-export-mfl",
                "documentation",
                "GET [base]/Location/$export-mfl?format=csv|geojson|ndjson|dhis2"
                "[&jurisdiction=Location/id][&type=code|system|code][&status=active|inactive|"
                "suspended]: the master facility list (Locations with the mCSD facility type) "
                "as a download, streamed (chunked): csv (text/csv, one row per facility: id, "
                "name, status, a column identifier:<system> per identifier system, latitude, "
                "longitude, type, ownership, level_1..level_n jurisdiction names, parent_id, "
                "last_updated; formula-like cells prefixed with an apostrophe; `mahali import "
                "csv --mapping importers/mappings/mahali-export.json` reads it back), geojson "
                "(application/geo+json, a Point Feature per facility with a position), ndjson "
                "(application/fhir+ndjson: the facilities, their Organizations and the "
                "Locations above them, parents first) or dhis2 (application/json, DHIS2 "
                "organisationUnits; ids from the https://dhis2.org/orgunit-uid identifier, else "
                "derived from the resource id); jurisdiction: the facilities below it (404 if "
                "it does not exist); bad parameters: 400 naming the parameter"));
    if (t == REG_LOCATION || t == REG_ORGANIZATION) {
        json_t *ops = json_object_get(res, "operation");
        if (!ops)
            json_object_set_new(res, "operation", ops = json_array());
        json_array_append_new(ops, staffing_operation(t));
    }
    json_object_set_new(res, "searchInclude", includes(t, 0));
    json_object_set_new(res, "searchRevInclude", includes(t, 1));
    if (reg_type_is_personal(t))
        json_object_set_new(
            res, "documentation",
            json_string("health-worker data: every interaction needs a bearer token"));
    return res;
}

json_t *
web_capability(const web_req *r)
{
    json_t *cs = json_object(), *rest = json_object(), *resources = json_array();
    char now[32];

    core_time_instant(now);
    json_object_set_new(cs, "resourceType", json_string("CapabilityStatement"));
    json_object_set_new(cs, "status", json_string("active"));
    json_object_set_new(cs, "date", json_string(now));
    json_object_set_new(cs, "publisher", json_string("Mahali"));
    json_object_set_new(cs, "kind", json_string("instance"));
    /* the mCSD Directory and the options implemented; Location Distance comes with `near` */
    json_object_set_new(
        cs, "instantiates",
        json_pack("[s, s, s]",
                  "https://profiles.ihe.net/ITI/mCSD/CapabilityStatement/IHE.mCSD.Directory",
                  "https://profiles.ihe.net/ITI/mCSD/CapabilityStatement/IHE.mCSD.Directory.Update",
                  "https://profiles.ihe.net/ITI/mCSD/CapabilityStatement/IHE.mCSD.Directory.Feed"));
    json_object_set_new(cs, "software",
                        json_pack("{s:s, s:s}", "name", "Mahali", "version", MAHALI_VERSION));
    json_object_set_new(
        cs, "implementation",
        json_pack("{s:s, s:s}", "description",
                  "Mahali national registry of health facilities and health workers", "url",
                  r->base));
    json_object_set_new(cs, "fhirVersion", json_string("4.0.1"));
    json_object_set_new(
        cs, "format",
        json_pack("[s, s, s, s]", "application/fhir+json", "json", "application/fhir+xml", "xml"));
    json_object_set_new(rest, "mode", json_string("server"));
    json_object_set_new(
        rest, "documentation",
        json_string("Writes need Authorization: Bearer <token> with role editor or admin; "
                    "deletes and imports ($import) need admin. "
                    "Reads of Organization, Location, HealthcareService, Endpoint and "
                    "OrganizationAffiliation are public unless the operator turned that off; "
                    "Practitioner, PractitionerRole and system history always need a token. "
                    "Deletes are soft: read answers 410 and history keeps the deletion. "
                    "History pages hold at most 500 entries (default 50)."));
    json_object_set_new(
        rest, "security",
        json_pack("{s:b, s:s}", "cors", 0, "description",
                  "Bearer tokens created with `mahali token create`; roles reader, hr (HR systems: "
                  "writes Practitioner and PractitionerRole only), editor, admin."));
    for (int t = 0; t < REG_NTYPES; t++)
        json_array_append_new(resources, resource_entry((reg_type)t));
    json_object_set_new(rest, "resource", resources);
    json_object_set_new(rest, "interaction",
                        json_pack("[{s:s}, {s:s}, {s:s}]", "code", "transaction", "code", "batch",
                                  "code", "history-system"));
    json_object_set_new(
        rest, "operation",
        json_pack(
            "[{s:s, s:s, s:s}]", "name", "import", "definition",
            "https://profiles.mahali.health/fhir/OperationDefinition/import", "documentation",
            "POST [base]/$import?format=csv|geojson|dhis2|fhir|csd[&dry_run=true]"
            "[&mapping=<mapping JSON, URL-encoded>][&filename=name][&encoding=utf-8|latin-1|"
            "windows-1252][&delimiter=,|;|||tab][&crs=EPSG:n][&deactivate_missing=true]"
            "[&fix_swapped=true] (admin only), the file as the request body (any Content-Type; "
            "gzip is recognised by its first bytes; at most 200 MB unless the operator set "
            "MAHALI_IMPORT_MAX_BYTES, else 413): imports it in the background exactly as "
            "`mahali import` does (same mappings, checks, identity by identifier, audit under "
            "the token's name, report). Answers 202 Accepted, Location [base]/$import/{job}, "
            "body {\"job\": id, \"status\": \"queued\"}. One import runs at a time and at most "
            "4 wait: beyond that 429 with Retry-After. GET [base]/$import/{job} (application/"
            "json): job, status (queued, running, done, failed), format, dry_run, submitted, "
            "started, finished, progress.rows, report (when done: the JSON report the CLI "
            "writes, counts and every issue by line) and error (when failed, e.g. the file "
            "could not be read); GET [base]/$import/{job}/report.csv: the issues as CSV. "
            "Finished jobs are kept 24 hours (the last 50). Dry run first: post with "
            "dry_run=true, which writes nothing, show its report (what would be created, "
            "updated, unchanged, rejected and why), then post the same file again without "
            "dry_run. mapping: the content of a --mapping file (docs/IMPORT.md), checked "
            "before the upload is accepted (400 naming the member; it must fit in the 16 KiB "
            "request head); without it a CSV's mapping is inferred from the header. filename: "
            "the upload's name (default upload.<format>), kept in each resource's import "
            "provenance and naming the identifier systems of an inferred mapping, so pass the "
            "same name as for the CLI to get the same identifiers. A bad parameter is 400 "
            "naming it."));
    json_object_set_new(cs, "rest", json_pack("[o]", rest));
    return cs;
}
