/* Unit tests of registry/validate.c: valid resources pass (inline examples after the IHE mCSD IG,
 * CC-BY-4.0, and every official R4 example of the seven mCSD resource types when the npm package
 * hl7.fhir.r4.examples is at hand), and each rule fails with its exact status, issue code,
 * FHIRPath and message. JSON below is written with ' for " (see dq). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/validate.h"

#define MCSD     "https://profiles.ihe.net/ITI/mCSD/StructureDefinition/IHE.mCSD."
#define TYPES    "https://profiles.ihe.net/ITI/mCSD/CodeSystem/IHE.mCSD.Organization.Location.Types"
#define BOUNDARY "http://hl7.org/fhir/StructureDefinition/location-boundary-geojson"
#define XHTML    "http://www.w3.org/1999/xhtml"

static int
setup(void **state)
{
    core_err err = CORE_ERR_INIT;
    (void)state;
    return reg_model_load(&err);
}

/* A malloc'd copy of s with every ' turned into ". */
static char *
dq(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

/* Validate s (single-quoted JSON) as type; returns reg_validate's result, err filled. */
static int
validate(const char *s, const char *type, core_err *err)
{
    char *text = dq(s);
    json_t *j = core_json_parse(text, strlen(text), err);
    int rc;

    if (!j)
        fail_msg("test JSON does not parse: %s\n%s", err->msg, text);
    free(text);
    rc = reg_validate(j, type, err);
    json_decref(j);
    return rc;
}

static void
expect_valid(const char *s, const char *type)
{
    core_err err = CORE_ERR_INIT;
    if (validate(s, type, &err) != 0)
        fail_msg("expected valid, got %d %s at %s: %s\n%s", err.status, core_issue_code(err.code),
                 err.expr, err.msg, s);
    assert_int_equal(err.status, 0);
    assert_null(err.more);
}

/* The leading issue must be exactly this, followed by `more` further issues. */
static void
expect_issue(const char *s,
             const char *type,
             int status,
             core_issue code,
             const char *expr,
             const char *msg,
             int more)
{
    core_err err = CORE_ERR_INIT;
    int n = 0;

    assert_int_equal(validate(s, type, &err), -1);
    assert_int_equal(err.status, status);
    assert_string_equal(core_issue_code(err.code), core_issue_code(code));
    assert_string_equal(err.expr, expr);
    assert_string_equal(err.msg, msg);
    for (core_issue_item *it = err.more; it; it = it->next)
        n++;
    assert_int_equal(n, more);
    core_err_clear(&err);
}

/* ---- valid resources ------------------------------------------------------------------------ */

#define FACILITY_ORG                                                          \
    "{'resourceType':'Organization','id':'MCSDFacilityOrganization-Example'," \
    "'meta':{'profile':['" MCSD "FacilityOrganization']},"                    \
    "'type':[{'coding':[{'code':'facility','system':'" TYPES "'}]}],"         \
    "'name':'MCSDFacilityOrganization-Example','active':true,"                \
    "'partOf':{'reference':'Organization/MCSDJurisdictionOrganization-Example'}}"

#define FACILITY_LOC                                                                              \
    "{'resourceType':'Location','id':'MCSDFacilityLocation-Example',"                             \
    "'meta':{'profile':['" MCSD "FacilityLocation']},"                                            \
    "'type':[{'coding':[{'code':'facility','system':'" TYPES "'}]},"                              \
    "{'coding':[{'code':'HOSP','system':'http://terminology.hl7.org/CodeSystem/v3-RoleCode'}]}]," \
    "'name':'MCSDFacilityLocation-Example','status':'active',"                                    \
    "'managingOrganization':{'reference':'Organization/MCSDFacilityOrganization-Example'},"       \
    "'partOf':{'reference':'Location/MCSDJurisdictionLocation-Example'}}"

#define JURISDICTION_LOC                                                                          \
    "{'resourceType':'Location','id':'MCSDJurisdictionLocation-Example',"                         \
    "'meta':{'profile':['" MCSD "JurisdictionLocation']},"                                        \
    "'extension':[{'url':'" BOUNDARY "','valueAttachment':{'contentType':'application/geo+json'," \
    "'data':'eyJ0eXBlIjoiUG9pbnQiLCJjb29yZGluYXRlcyI6WzM2LjgsLTEuM119'}}],"                       \
    "'type':[{'coding':[{'code':'jurisdiction','system':'" TYPES "'}]}],"                         \
    "'name':'MCSDJurisdictionLocation-Example','status':'active',"                                \
    "'managingOrganization':{'reference':'Organization/MCSDJurisdictionOrganization-Example'},"   \
    "'physicalType':{'coding':[{'code':'jdn',"                                                    \
    "'system':'http://terminology.hl7.org/CodeSystem/location-physical-type'}]}}"

#define DISTANCE_LOC                                                                     \
    "{'resourceType':'Location','id':'MCSDLocationDistance-Example',"                    \
    "'meta':{'profile':['" MCSD "LocationDistance|4.0.0']},"                             \
    "'name':'MCSDLocationDistance-Example','status':'active',"                           \
    "'type':[{'coding':[{'code':'HOSP','system':'http://terminology.hl7.org/CodeSystem/" \
    "v3-RoleCode'}]}],"                                                                  \
    "'position':{'latitude':-1.46929510804737,'longitude':-78.81700744576973}}"

#define PRACTITIONER                                                  \
    "{'resourceType':'Practitioner','id':'MCSDPractitioner-Example'," \
    "'meta':{'profile':['" MCSD "Practitioner']},'name':[{'text':'John Galt'}]}"

#define PRACTITIONER_ROLE                                                     \
    "{'resourceType':'PractitionerRole','id':'MCSDPractitionerRole-Example'," \
    "'meta':{'profile':['" MCSD "PractitionerRole']},"                        \
    "'code':[{'coding':[{'code':'nurse',"                                     \
    "'system':'http://terminology.hl7.org/CodeSystem/practitioner-role'}]}]," \
    "'location':[{'reference':'Location/MCSDFacilityLocation-Example'}],"     \
    "'practitioner':{'reference':'Practitioner/MCSDPractitioner-Example'}}"

#define HEALTHCARE_SERVICE                                                              \
    "{'resourceType':'HealthcareService','id':'MCSDHealthcareService-Example',"         \
    "'meta':{'profile':['" MCSD "HealthcareService']},'name':'ANC',"                    \
    "'type':[{'coding':[{'code':'124','system':'http://terminology.hl7.org/CodeSystem/" \
    "service-type','display':'General Practice'}]}]}"

#define ORG_AFFILIATION                                                                     \
    "{'resourceType':'OrganizationAffiliation','id':'MCSDOrganizationAffiliation-Example'," \
    "'meta':{'profile':['" MCSD "OrganizationAffiliation']},'active':true,"                 \
    "'organization':{'reference':'Organization/A'},"                                        \
    "'participatingOrganization':{'reference':'Organization/B'},"                           \
    "'code':[{'coding':[{'code':'admin',"                                                   \
    "'system':'https://profiles.ihe.net/ITI/mCSD/CodeSystem/mcsd-example-hierarchy'}]}]}"

#define ENDPOINT                                                                  \
    "{'resourceType':'Endpoint','id':'ex-endpointXCAquery',"                      \
    "'meta':{'profile':['" MCSD "Endpoint.DocShare']},'status':'active',"         \
    "'connectionType':{'code':'ihe-xca',"                                         \
    "'system':'https://profiles.ihe.net/ITI/mCSD/CodeSystem/MCSDEndpointTypes'}," \
    "'managingOrganization':{'reference':'Organization/ex-OrgA'},"                \
    "'period':{'start':'2022-02-10'},"                                            \
    "'payloadType':[{'coding':[{'code':'urn:ihe:pcc:ips:2020'}]}],"               \
    "'payloadMimeType':['application/fhir+json','text/xml'],"                     \
    "'address':'http://example.org/xca/query'}"

static void
test_mcsd_examples(void **state)
{
    (void)state;
    expect_valid(FACILITY_ORG, "Organization");
    expect_valid(FACILITY_LOC, "Location");
    expect_valid(JURISDICTION_LOC, "Location");
    expect_valid(DISTANCE_LOC, "Location");
    expect_valid(PRACTITIONER, "Practitioner");
    expect_valid(PRACTITIONER_ROLE, "PractitionerRole");
    expect_valid(HEALTHCARE_SERVICE, "HealthcareService");
    expect_valid(ORG_AFFILIATION, "OrganizationAffiliation");
    expect_valid(ENDPOINT, "Endpoint");
    expect_valid(ENDPOINT, NULL); /* NULL: by its own resourceType */
    expect_valid("{'resourceType':'Bundle','meta':{'profile':['" MCSD "ProcessCareServices']},"
                 "'type':'transaction','entry':[{'fullUrl':'urn:uuid:1a0e4d5e-0000-4000-8000-"
                 "000000000001','resource':" FACILITY_LOC ",'request':{'method':'PUT',"
                 "'url':'Location/MCSDFacilityLocation-Example'}},{'request':{'method':'DELETE',"
                 "'url':'Location/old'}}]}",
                 "Bundle");
}

/* JSON features a strict validator could get wrong: primitive companions, nulls aligned with
 * them, choice types, contained resources, narrative, decimals kept as written. */
static void
test_valid_features(void **state)
{
    (void)state;
    expect_valid("{'resourceType':'Location','id':'a.B-1',"
                 "'text':{'status':'generated','div':'<div xmlns=\\'" XHTML "\\'><p>Ward "
                 "<b>7</b></p><!-- x --><a href=\\'#x\\' title=\\'one\\'>x</a></div>'},"
                 "'contained':[{'resourceType':'Organization','id':'o1','name':'Owner'}],"
                 "'managingOrganization':{'reference':'#o1'},"
                 "'extension':[{'url':'http://example.org/a','valueDecimal':8.4800},"
                 "{'url':'http://example.org/b','extension':[{'url':'c','valueBoolean':false}]}],"
                 "'name':'Ward 7','_name':{'extension':[{'url':'http://example.org/n',"
                 "'valueString':'x'}]},"
                 "'_status':{'extension':[{'url':'http://hl7.org/fhir/StructureDefinition/"
                 "data-absent-reason','valueCode':'unknown'}]},"
                 "'alias':['W7',null],'_alias':[null,{'id':'a2','extension':[{'url':'u',"
                 "'valueInteger':-2147483648}]}],"
                 "'hoursOfOperation':[{'daysOfWeek':['mon','tue'],'openingTime':'08:00:00',"
                 "'closingTime':'17:30:00.5'}],"
                 "'position':{'latitude':-90,'longitude':180.0,'altitude':1E3},"
                 "'meta':{'lastUpdated':'2024-02-29T23:59:60.123+14:00','versionId':'1',"
                 "'tag':[{'system':'urn:oid:2.16.840.1.113883','code':'a b'}]}}",
                 "Location");
}

static const char *const mcsd_types[] = { "Organization",           "Location",
                                          "HealthcareService",      "Practitioner",
                                          "PractitionerRole",       "Endpoint",
                                          "OrganizationAffiliation" };
#define NMCSD_TYPES (sizeof(mcsd_types) / sizeof(mcsd_types[0]))

/* Validate every resource of the seven mCSD types in dir (files named <resourceType>-<id>.json,
 * as in the npm package and the IG); *checked counts them. Returns the failures (each printed),
 * or -1 if dir cannot be opened. */
static int
validate_dir(const char *dir, int *checked)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int failed = 0;

    *checked = 0;
    if (!d)
        return -1;
    while ((de = readdir(d))) {
        char path[2048];
        FILE *f;
        long len;
        char *buf;
        json_t *j;
        core_err err = CORE_ERR_INIT;
        const char *rt;
        size_t n = strlen(de->d_name), t;

        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        /* read only candidates */
        for (t = 0; t < NMCSD_TYPES; t++) {
            size_t tl = strlen(mcsd_types[t]);
            if (strncmp(de->d_name, mcsd_types[t], tl) == 0 && de->d_name[tl] == '-')
                break;
        }
        if (t == NMCSD_TYPES)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!(f = fopen(path, "rb")))
            continue;
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = malloc((size_t)len + 1);
        assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        j = core_json_parse(buf, (size_t)len, &err);
        free(buf);
        if (!j) {
            core_err_clear(&err);
            continue; /* not all files are resources (package.json...) */
        }
        rt = json_string_value(json_object_get(j, "resourceType"));
        for (t = 0; rt && t < NMCSD_TYPES && strcmp(rt, mcsd_types[t]); t++)
            ;
        if (rt && t < NMCSD_TYPES) {
            (*checked)++;
            if (reg_validate(j, rt, &err) != 0) {
                failed++;
                print_error("%s: %d %s at %s: %s\n", de->d_name, err.status,
                            core_issue_code(err.code), err.expr, err.msg);
            }
            core_err_clear(&err);
        }
        json_decref(j);
    }
    closedir(d);
    return failed;
}

/* Every official R4 example of the seven mCSD types (npm hl7.fhir.r4.examples@4.0.1): from
 * $MAHALI_FHIR_EXAMPLES, else tests/node_modules (npm ci in tests/); skipped if neither. */
static void
test_official_examples(void **state)
{
    char dir[1024];
    const char *env = getenv("MAHALI_FHIR_EXAMPLES"), *src = getenv("MAHALI_SOURCE_DIR");
    int checked, failed;
    (void)state;

    if (env)
        snprintf(dir, sizeof(dir), "%s", env);
    else
        snprintf(dir, sizeof(dir), "%s/tests/node_modules/hl7.fhir.r4.examples", src ? src : ".");
    if ((failed = validate_dir(dir, &checked)) < 0) {
        print_message("no FHIR examples in %s (set MAHALI_FHIR_EXAMPLES)\n", dir);
        skip();
    }
    assert_int_equal(failed, 0);
    assert_int_equal(checked, 42); /* in hl7.fhir.r4.examples 4.0.1 */
}

/* Every example of the mCSD IG of the seven types (../shared/conformance/mcsd-json, beside the
 * checkout, as test_xml uses it); skipped if absent. */
static void
test_mcsd_ig_examples(void **state)
{
    char dir[1024];
    const char *src = getenv("MAHALI_SOURCE_DIR");
    int checked, failed;
    (void)state;

    snprintf(dir, sizeof(dir), "%s/../shared/conformance/mcsd-json", src ? src : ".");
    if ((failed = validate_dir(dir, &checked)) < 0) {
        print_message("mCSD examples skipped: %s not found\n", dir);
        skip();
    }
    print_message("mCSD IG examples: %d valid of %d\n", checked - failed, checked);
    assert_int_equal(failed, 0);
    assert_true(checked > 0);
}

/* ---- structure ------------------------------------------------------------------------------ */

static void
test_resource_type(void **state)
{
    (void)state;
    expect_issue("{'resourceType':'Organization','name':'x'}", "Location", 400, CORE_ISSUE_INVALID,
                 "Location.resourceType",
                 "resourceType must be \"Location\" (got \"Organization\")", 0);
    expect_issue("{'name':'x'}", "Location", 400, CORE_ISSUE_STRUCTURE, "Location.resourceType",
                 "missing required element \"resourceType\"", 0);
    expect_issue("{'resourceType':'Patio'}", NULL, 400, CORE_ISSUE_STRUCTURE, "resourceType",
                 "unknown resource type \"Patio\"", 0);
    expect_issue("{'resourceType':'Location.position'}", NULL, 400, CORE_ISSUE_STRUCTURE,
                 "resourceType", "unknown resource type \"Location.position\"", 0);
    expect_issue("{'resourceType':7}", "Location", 400, CORE_ISSUE_STRUCTURE,
                 "Location.resourceType", "resourceType must be a string (got 7)", 0);
    expect_issue("{'resourceType':'Location'}", "Place", 400, CORE_ISSUE_NOT_SUPPORTED, "",
                 "unknown resource type \"Place\"", 0);
    expect_issue("['Location']", "Location", 400, CORE_ISSUE_STRUCTURE, "",
                 "a resource must be a JSON object", 0);
    /* resourceType only at resource roots */
    expect_issue("{'resourceType':'Location','meta':{'resourceType':'Meta'}}", "Location", 400,
                 CORE_ISSUE_STRUCTURE, "Location.meta.resourceType",
                 "unknown element \"resourceType\"", 0);
}

static void
test_unknown_elements(void **state)
{
    (void)state;
    expect_issue("{'resourceType':'Location','foo':1}", "Location", 400, CORE_ISSUE_STRUCTURE,
                 "Location.foo", "unknown element \"foo\"", 0);
    expect_issue("{'resourceType':'Location','identifier':[{'system':'urn:a'},{'sytem':'urn:b'}]}",
                 "Location", 400, CORE_ISSUE_STRUCTURE, "Location.identifier[1].sytem",
                 "unknown element \"sytem\"", 0);
    /* choice types only under their expanded names */
    expect_issue("{'resourceType':'Location','extension':[{'url':'u','value':'x'}]}", "Location",
                 400, CORE_ISSUE_STRUCTURE, "Location.extension[0].value",
                 "unknown element \"value\"", 0);
    expect_issue("{'resourceType':'Location','extension':[{'url':'u','valuestring':'x'}]}",
                 "Location", 400, CORE_ISSUE_STRUCTURE, "Location.extension[0].valuestring",
                 "unknown element \"valuestring\"", 0);
    /* `_x` only for primitives, and not for XML attributes (Element.id, Extension.url) */
    expect_issue("{'resourceType':'Location','_address':{'id':'a'}}", "Location", 400,
                 CORE_ISSUE_STRUCTURE, "Location._address", "unknown element \"_address\"", 0);
    expect_issue("{'resourceType':'Location','extension':[{'url':'u','_url':{'id':'a'},"
                 "'valueCode':'a'}]}",
                 "Location", 400, CORE_ISSUE_STRUCTURE, "Location.extension[0]._url",
                 "unknown element \"_url\"", 0);
    expect_issue(
        "{'resourceType':'Location','text':{'status':'generated','div':'<div xmlns=\\'" XHTML
        "\\'>x</div>','_div':{'id':'a'}}}",
        "Location", 400, CORE_ISSUE_STRUCTURE, "Location.text._div", "unknown element \"_div\"", 0);
}

static void
test_json_kinds(void **state)
{
    (void)state;
    expect_issue("{'resourceType':'Location','position':{'latitude':'abc','longitude':1}}",
                 "Location", 400, CORE_ISSUE_VALUE, "Location.position.latitude",
                 "latitude must be a decimal number (got \"abc\")", 0);
    expect_issue("{'resourceType':'Organization','active':'true'}", "Organization", 400,
                 CORE_ISSUE_VALUE, "Organization.active",
                 "active must be a boolean (true or false) (got \"true\")", 0);
    expect_issue("{'resourceType':'Location','name':12}", "Location", 400, CORE_ISSUE_VALUE,
                 "Location.name",
                 "name must be a string without control characters other than tab, CR and LF "
                 "(got 12)",
                 0);
    expect_issue("{'resourceType':'Location','name':['a']}", "Location", 400, CORE_ISSUE_STRUCTURE,
                 "Location.name", "name must be a single value, not an array", 0);
    expect_issue("{'resourceType':'Location','alias':'b'}", "Location", 400, CORE_ISSUE_STRUCTURE,
                 "Location.alias", "alias must be an array", 0);
    expect_issue("{'resourceType':'Location','address':'Main St'}", "Location", 400,
                 CORE_ISSUE_STRUCTURE, "Location.address",
                 "address must be an object (got \"Main St\")", 0);
    expect_issue("{'resourceType':'Location','identifier':{'value':'a'}}", "Location", 400,
                 CORE_ISSUE_STRUCTURE, "Location.identifier", "identifier must be an array", 0);
    expect_issue("{'resourceType':'Location','position':[{'latitude':1,'longitude':2}]}",
                 "Location", 400, CORE_ISSUE_STRUCTURE, "Location.position",
                 "position must be a single value, not an array", 0);
}

static void
test_empty_and_null(void **state)
{
    (void)state;
    expect_issue("{'resourceType':'Location','name':'','alias':[],'address':{},'status':null,"
                 "'type':[null]}",
                 "Location", 400, CORE_ISSUE_VALUE, "Location.name", "name must not be empty", 4);
    expect_issue("{'resourceType':'Location','alias':['a',null]}", "Location", 400,
                 CORE_ISSUE_VALUE, "Location.alias[1]", "alias must not be null", 0);
    expect_issue("{'resourceType':'Location','alias':['a',null],'_alias':[null,null]}", "Location",
                 400, CORE_ISSUE_VALUE, "Location.alias[1]", "alias must not be null", 0);
    expect_issue("{'resourceType':'Location','alias':['a','b'],'_alias':[null]}", "Location", 400,
                 CORE_ISSUE_STRUCTURE, "Location.alias",
                 "_alias must have as many entries as alias (got 1, expected 2)", 0);
    expect_issue("{'resourceType':'Location','_name':{}}", "Location", 400, CORE_ISSUE_VALUE,
                 "Location.name", "_name must not be empty", 0);
    expect_issue("{'resourceType':'Location','_name':'x'}", "Location", 400, CORE_ISSUE_STRUCTURE,
                 "Location.name", "_name must be an object (got \"x\")", 0);
}

static void
test_cardinality_and_choice(void **state)
{
    (void)state;
    expect_issue("{'resourceType':'Location','position':{'longitude':1}}", "Location", 400,
                 CORE_ISSUE_REQUIRED, "Location.position.latitude",
                 "missing required element \"latitude\"", 0);
    expect_issue("{'resourceType':'Location','extension':[{'valueString':'a'}]}", "Location", 400,
                 CORE_ISSUE_REQUIRED, "Location.extension[0].url",
                 "missing required element \"url\"", 0);
    /* a primitive may be absent if its `_x` is there, which satisfies min too */
    expect_valid("{'resourceType':'Location','position':{'longitude':1,'_latitude':{'extension':"
                 "[{'url':'http://hl7.org/fhir/StructureDefinition/data-absent-reason',"
                 "'valueCode':'unknown'}]}}}",
                 "Location");
    expect_issue("{'resourceType':'Location','extension':[{'url':'u','valueString':'a',"
                 "'valueInteger':1}]}",
                 "Location", 400, CORE_ISSUE_STRUCTURE, "Location.extension[0].valueInteger",
                 "only one of valueString and valueInteger may be present", 0);
    expect_issue("{'resourceType':'Location','extension':[{'url':'u','valueString':'a',"
                 "'_valueCode':{'id':'x'}}]}",
                 "Location", 400, CORE_ISSUE_STRUCTURE, "Location.extension[0].valueCode",
                 "only one of valueString and valueCode may be present", 0);
}

static void
test_resources_inside(void **state)
{
    (void)state;
    expect_issue("{'resourceType':'Location','contained':[{'resourceType':'Organization',"
                 "'id':'o1','name':3}]}",
                 "Location", 400, CORE_ISSUE_VALUE, "Location.contained[0].name",
                 "name must be a string without control characters other than tab, CR and LF "
                 "(got 3)",
                 0);
    expect_issue("{'resourceType':'Location','contained':[{'resourceType':'Spaceship'}]}",
                 "Location", 400, CORE_ISSUE_STRUCTURE, "Location.contained[0].resourceType",
                 "unknown resource type \"Spaceship\"", 0);
    expect_issue("{'resourceType':'Location','contained':[{'id':'x'}]}", "Location", 400,
                 CORE_ISSUE_STRUCTURE, "Location.contained[0].resourceType",
                 "missing required element \"resourceType\"", 0);
    expect_issue("{'resourceType':'Bundle','type':'transaction','entry':[{'resource':"
                 "{'resourceType':'Location','position':{'latitude':1}}}]}",
                 "Bundle", 400, CORE_ISSUE_REQUIRED, "Bundle.entry[0].resource.position.longitude",
                 "missing required element \"longitude\"", 0);
    expect_issue("{'resourceType':'Parameters','parameter':[{'name':'a','resource':"
                 "{'resourceType':'Patient','gender':'x y '}}]}",
                 "Parameters", 400, CORE_ISSUE_VALUE, "Parameters.parameter[0].resource.gender",
                 "gender must be a code without leading, trailing or repeated whitespace (got \"x "
                 "y \")",
                 0);
}

static void
test_coordinates(void **state)
{
    (void)state;
    expect_issue("{'resourceType':'Location','position':{'latitude':91,'longitude':0}}", "Location",
                 400, CORE_ISSUE_VALUE, "Location.position.latitude",
                 "latitude must be between -90 and 90 (got 91)", 0);
    expect_issue("{'resourceType':'Location','position':{'latitude':0,'longitude':-180.5}}",
                 "Location", 400, CORE_ISSUE_VALUE, "Location.position.longitude",
                 "longitude must be between -180 and 180 (got -180.5)", 0);
    expect_issue("{'resourceType':'Location','position':{'latitude':1e400,'longitude':0}}",
                 "Location", 400, CORE_ISSUE_VALUE, "Location.position.latitude",
                 "latitude must be between -90 and 90 (got 1e400)", 0);
    expect_issue("{'resourceType':'Location','contained':[{'resourceType':'Location',"
                 "'position':{'latitude':-90.0001,'longitude':0}}]}",
                 "Location", 400, CORE_ISSUE_VALUE, "Location.contained[0].position.latitude",
                 "latitude must be between -90 and 90 (got -90.0001)", 0);
}

/* Elements of type code with a required binding hold only codes of the bound value set. */
static void
test_required_bindings(void **state)
{
    (void)state;
    expect_issue("{'resourceType':'Location','name':'Ward 7','status':'bogus-status'}", "Location",
                 400, CORE_ISSUE_VALUE, "Location.status",
                 "status must be one of active, suspended, inactive (got \"bogus-status\")", 0);
    expect_issue(
        "{'resourceType':'Endpoint','status':'on','connectionType':{'code':'hl7-fhir-rest',"
        "'system':'http://terminology.hl7.org/CodeSystem/endpoint-connection-type'},"
        "'payloadType':[{'text':'any'}],'address':'http://example.org/fhir'}",
        "Endpoint", 400, CORE_ISSUE_VALUE, "Endpoint.status",
        "status must be one of active, suspended, error, off, entered-in-error, test (got "
        "\"on\")",
        0);
    /* inside complex types and backbones, in arrays, in contained resources */
    expect_issue("{'resourceType':'Location','address':{'use':'office','city':'Bo'}}", "Location",
                 400, CORE_ISSUE_VALUE, "Location.address.use",
                 "use must be one of home, work, temp, old, billing (got \"office\")", 0);
    expect_issue("{'resourceType':'Practitioner','name':[{'use':'formal','family':'Galt'}]}",
                 "Practitioner", 400, CORE_ISSUE_VALUE, "Practitioner.name[0].use",
                 "use must be one of usual, official, temp, nickname, anonymous, old, maiden (got "
                 "\"formal\")",
                 0);
    expect_issue("{'resourceType':'Location','hoursOfOperation':[{'allDay':true,"
                 "'daysOfWeek':['mon','Tue']}]}",
                 "Location", 400, CORE_ISSUE_VALUE, "Location.hoursOfOperation[0].daysOfWeek[1]",
                 "daysOfWeek must be one of mon, tue, wed, thu, fri, sat, sun (got \"Tue\")", 0);
    expect_issue("{'resourceType':'Organization','name':'x','contained':[{'resourceType':"
                 "'Location','status':'closed'}]}",
                 "Organization", 400, CORE_ISSUE_VALUE, "Organization.contained[0].status",
                 "status must be one of active, suspended, inactive (got \"closed\")", 0);
    expect_issue("{'resourceType':'Bundle','type':'bag','entry':[{'request':{'method':'FETCH',"
                 "'url':'Location'}}]}",
                 "Bundle", 400, CORE_ISSUE_VALUE, "Bundle.type",
                 "type must be one of document, message, transaction, transaction-response, "
                 "batch, batch-response, history, searchset, collection (got \"bag\")",
                 1);
    expect_issue("{'resourceType':'Bundle','type':'batch','entry':[{'request':{'method':'FETCH',"
                 "'url':'Location'}}]}",
                 "Bundle", 400, CORE_ISSUE_VALUE, "Bundle.entry[0].request.method",
                 "method must be one of GET, HEAD, POST, PUT, DELETE, PATCH (got \"FETCH\")", 0);
    /* a long value set: the first codes, then its size and canonical */
    expect_issue("{'resourceType':'SearchParameter','url':'http://example.org/sp','name':'x',"
                 "'status':'active','description':'x','code':'x','base':['Location','Place'],"
                 "'type':'token'}",
                 "SearchParameter", 400, CORE_ISSUE_VALUE, "SearchParameter.base[1]",
                 "base must be one of Account, ActivityDefinition, AdverseEvent, "
                 "AllergyIntolerance, Appointment, AppointmentResponse, AuditEvent, Basic, Binary, "
                 "BiologicallyDerivedProduct, ... (148 codes of "
                 "http://hl7.org/fhir/ValueSet/resource-types) (got \"Place\")",
                 0);
    /* codes are case-sensitive; a malformed code is reported once, as malformed */
    expect_issue("{'resourceType':'Practitioner','gender':'Male'}", "Practitioner", 400,
                 CORE_ISSUE_VALUE, "Practitioner.gender",
                 "gender must be one of male, female, other, unknown (got \"Male\")", 0);
    expect_issue("{'resourceType':'Location','status':'active '}", "Location", 400,
                 CORE_ISSUE_VALUE, "Location.status",
                 "status must be a code without leading, trailing or repeated whitespace (got "
                 "\"active \")",
                 0);
    /* with a `_x` companion only the value is checked; a companion alone has none */
    expect_issue("{'resourceType':'Location','status':'gone','_status':{'id':'s1'}}", "Location",
                 400, CORE_ISSUE_VALUE, "Location.status",
                 "status must be one of active, suspended, inactive (got \"gone\")", 0);
    expect_issue("{'resourceType':'Location','hoursOfOperation':[{'daysOfWeek':['mon',null,'x'],"
                 "'_daysOfWeek':[null,{'id':'d2'},null]}]}",
                 "Location", 400, CORE_ISSUE_VALUE, "Location.hoursOfOperation[0].daysOfWeek[2]",
                 "daysOfWeek must be one of mon, tue, wed, thu, fri, sat, sun (got \"x\")", 0);
    /* every issue is collected */
    expect_issue("{'resourceType':'Location','status':'open','mode':'type','telecom':[{'system':"
                 "'beeper','value':'1','use':'home'},{'system':'fax','value':'2','use':'desk'}]}",
                 "Location", 400, CORE_ISSUE_VALUE, "Location.status",
                 "status must be one of active, suspended, inactive (got \"open\")", 3);
    /* valid codes pass, wherever they are */
    expect_valid("{'resourceType':'Location','status':'suspended','mode':'instance',"
                 "'_status':{'id':'s1'},'identifier':[{'use':'official','value':'7'}],"
                 "'telecom':[{'system':'phone','value':'1','use':'work'},"
                 "{'system':'url','value':'http://example.org','use':'temp','period':"
                 "{'start':'2020'}}],"
                 "'address':{'use':'billing','type':'both','line':['Main St']},"
                 "'hoursOfOperation':[{'daysOfWeek':['sat','sun'],'allDay':true}],"
                 "'text':{'status':'extensions','div':'<div xmlns=\\'" XHTML "\\'>x</div>'}}",
                 "Location");
    expect_valid("{'resourceType':'Practitioner','gender':'unknown','name':[{'use':'maiden',"
                 "'family':'Galt'}],'telecom':[{'system':'sms','value':'1'}]}",
                 "Practitioner");
    expect_valid("{'resourceType':'Location','_status':{'extension':[{'url':'http://hl7.org/fhir/"
                 "StructureDefinition/data-absent-reason','valueCode':'unknown'}]}}",
                 "Location");
}

/* value[x] of an extension with a bad (expect != NULL) or good value. */
static void
check_value(const char *type, const char *value, const char *expect)
{
    char buf[512];
    snprintf(buf, sizeof(buf),
             "{'resourceType':'Location','extension':[{'url':'http://example.org/x','value%s':%s}"
             "]}",
             type, value);
    if (!expect) {
        expect_valid(buf, "Location");
    } else {
        char expr[128];
        snprintf(expr, sizeof(expr), "Location.extension[0].value%s", type);
        expect_issue(buf, "Location", 400, CORE_ISSUE_VALUE, expr, expect, 0);
    }
}

static void
test_primitive_formats(void **state)
{
    (void)state;
    check_value("Id", "'a-b.C9'", NULL);
    check_value("Id", "'a_b'",
                "valueId must be an id of 1 to 64 letters, digits, \"-\" or \".\" "
                "(got \"a_b\")");
    check_value("Id", "'0123456789012345678901234567890123456789012345678901234567890123456789'",
                "valueId must be an id of 1 to 64 letters, digits, \"-\" or \".\" (got "
                "\"0123456789012345678901234567890123456789...\")");
    check_value("Code", "'a b'", NULL);
    check_value("Code", "' a'",
                "valueCode must be a code without leading, trailing or repeated whitespace (got "
                "\" a\")");
    check_value("Date", "'2024'", NULL);
    check_value("Date", "'2024-02'", NULL);
    check_value("Date", "'2024-02-29'", NULL);
    check_value("Date", "'2023-02-29'",
                "valueDate must be a date as YYYY, YYYY-MM or YYYY-MM-DD (got \"2023-02-29\")");
    check_value("Date", "'2024-13'",
                "valueDate must be a date as YYYY, YYYY-MM or YYYY-MM-DD (got \"2024-13\")");
    check_value("Date", "'0000'",
                "valueDate must be a date as YYYY, YYYY-MM or YYYY-MM-DD (got \"0000\")");
    check_value("DateTime", "'2024-05-01T10:00:00Z'", NULL);
    check_value("DateTime", "'2024-05-01T10:00:00.25-14:00'", NULL);
    check_value("DateTime", "'2024-05-01T10:00:00'",
                "valueDateTime must be a dateTime as YYYY, YYYY-MM, YYYY-MM-DD or "
                "YYYY-MM-DDThh:mm:ss[.fff] with a time zone (got \"2024-05-01T10:00:00\")");
    check_value("DateTime", "'2024-05-01T10:00Z'",
                "valueDateTime must be a dateTime as YYYY, YYYY-MM, YYYY-MM-DD or "
                "YYYY-MM-DDThh:mm:ss[.fff] with a time zone (got \"2024-05-01T10:00Z\")");
    check_value("DateTime", "'2024-05-01T10:00:00+14:30'",
                "valueDateTime must be a dateTime as YYYY, YYYY-MM, YYYY-MM-DD or "
                "YYYY-MM-DDThh:mm:ss[.fff] with a time zone (got \"2024-05-01T10:00:00+14:30\")");
    check_value("Instant", "'2024-05-01T10:00:00.123Z'", NULL);
    check_value("Instant", "'2024-05-01'",
                "valueInstant must be an instant as YYYY-MM-DDThh:mm:ss[.fff] with a time zone "
                "(got \"2024-05-01\")");
    check_value("Time", "'23:59:59.999'", NULL);
    check_value("Time", "'24:00:00'",
                "valueTime must be a time as hh:mm:ss[.fff] (got \"24:00:00\")");
    check_value("Decimal", "-0.0", NULL);
    check_value("Decimal", "'1.5'", "valueDecimal must be a decimal number (got \"1.5\")");
    check_value("Integer", "-2147483648", NULL);
    check_value("Integer", "2147483648",
                "valueInteger must be an integer between -2147483648 and 2147483647 (got "
                "2147483648)");
    check_value("Integer", "1.0",
                "valueInteger must be an integer between -2147483648 and 2147483647 (got 1.0)");
    check_value("Integer", "1e2",
                "valueInteger must be an integer between -2147483648 and 2147483647 (got 1e2)");
    check_value("PositiveInt", "1", NULL);
    check_value("PositiveInt", "0",
                "valuePositiveInt must be an integer between 1 and 2147483647 (got 0)");
    check_value("UnsignedInt", "0", NULL);
    check_value("UnsignedInt", "-1",
                "valueUnsignedInt must be an integer between 0 and 2147483647 (got -1)");
    check_value("Boolean", "true", NULL);
    check_value("Boolean", "1", "valueBoolean must be a boolean (true or false) (got 1)");
    check_value("Uri", "'urn:x:y'", NULL);
    check_value("Uri", "'http://a b'",
                "valueUri must be a URI without whitespace (got \"http://a b\")");
    check_value("Url", "'http://a\\tb'",
                "valueUrl must be a URL without whitespace (got \"http://a?b\")");
    check_value("Canonical", "'http://x/y|1.0'", NULL);
    check_value("Oid", "'urn:oid:2.16.840.1'", NULL);
    check_value("Oid", "'urn:oid:2.016'",
                "valueOid must be an OID as urn:oid: followed by dotted numbers (got "
                "\"urn:oid:2.016\")");
    check_value("Uuid", "'urn:uuid:c757873d-ec9a-4326-a141-556f43239520'", NULL);
    check_value("Uuid", "'urn:uuid:C757873D-EC9A-4326-A141-556F43239520'",
                "valueUuid must be a UUID as urn:uuid: followed by lower-case hex digits "
                "8-4-4-4-12 (got \"urn:uuid:C757873D-EC9A-4326-A141-556F432...\")");
    check_value("Base64Binary", "'aGVs bG8h'", NULL);
    check_value("Base64Binary", "'aGVsbG8'",
                "valueBase64Binary must be base64 data (groups of 4 characters from A-Z, a-z, "
                "0-9, \"+\", \"/\" and \"=\") (got \"aGVsbG8\")");
    check_value("String", "'tab\\tand\\nnewline'", NULL);
    check_value("String", "'bell\\u0007'",
                "valueString must be a string without control characters other than tab, CR "
                "and LF (got \"bell?\")");
    check_value("Markdown", "'**bold**'", NULL);
}

static void
test_string_size(void **state)
{
    size_t n = 1048577;
    char *big = malloc(n + 64);
    core_err err = CORE_ERR_INIT;
    json_t *j;
    (void)state;

    memset(big, 'a', n);
    big[n] = '\0';
    j = json_pack("{s:s, s:s}", "resourceType", "Location", "name", big);
    assert_int_equal(reg_validate(j, "Location", &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.expr, "Location.name");
    assert_string_equal(err.msg, "name must not be longer than 1048576 bytes (got 1048577)");
    core_err_clear(&err);
    json_object_set_new(j, "name", json_stringn(big, n - 1));
    assert_int_equal(reg_validate(j, "Location", &err), 0);
    json_decref(j);
    free(big);
}

static void
test_narrative(void **state)
{
    (void)state;
#define DIV(x) "{'resourceType':'Location','text':{'status':'generated','div':'" x "'}}"
    expect_issue(DIV("<div xmlns=\\'" XHTML "\\'><SCRIPT>alert(1)</SCRIPT></div>"), "Location", 422,
                 CORE_ISSUE_INVALID, "Location.text.div",
                 "narrative must not contain <script> elements", 0);
    expect_issue(DIV("<div xmlns=\\'" XHTML "\\'><img src=\\'x\\' onError=\\'alert(1)\\'/></div>"),
                 "Location", 422, CORE_ISSUE_INVALID, "Location.text.div",
                 "narrative must not contain event handler attributes (got \"onError\")", 0);
    expect_issue(DIV("<div xmlns=\\'" XHTML "\\'><a href=\\'JavaScript:alert(1)\\'>x</a></div>"),
                 "Location", 422, CORE_ISSUE_INVALID, "Location.text.div",
                 "narrative must not contain javascript: or vbscript: URLs", 0);
    expect_issue(
        DIV("<div xmlns=\\'" XHTML "\\'><a href=\\'&#106;ava&#x09;script&#58;x()\\'>x</a></div>"),
        "Location", 422, CORE_ISSUE_INVALID, "Location.text.div",
        "narrative must not contain javascript: or vbscript: URLs", 0);
    expect_issue(DIV("<div xmlns=\\'" XHTML "\\'><iframe src=\\'http://x\\'></iframe></div>"),
                 "Location", 422, CORE_ISSUE_INVALID, "Location.text.div",
                 "narrative must not contain <iframe> elements", 0);
    expect_issue(DIV("<div><p>x</p></div>"), "Location", 422, CORE_ISSUE_INVALID,
                 "Location.text.div",
                 "narrative <div> must declare the XHTML namespace (xmlns=\"" XHTML "\")", 0);
    expect_issue(DIV("<p xmlns=\\'" XHTML "\\'>x</p>"), "Location", 422, CORE_ISSUE_INVALID,
                 "Location.text.div",
                 "narrative must be an XHTML <div> element (got \"<p xmlns=?http://www.w3.org/1999/"
                 "xhtml?>...\")",
                 0);
    /* text that merely mentions "on" or "script" is fine */
    expect_valid(
        DIV("<div xmlns=\\'" XHTML "\\'><p class=\\'one\\'>Turn on=off; scripts</p></div>"),
        "Location");
    expect_issue("{'resourceType':'Location','text':{'status':'generated','div':7}}", "Location",
                 400, CORE_ISSUE_VALUE, "Location.text.div",
                 "div must be an XHTML <div> element (got 7)", 0);
#undef DIV
}

/* All issues are collected; a 400 one leads even if a 422 one came first. */
static void
test_collects_all_issues(void **state)
{
    core_err err = CORE_ERR_INIT;
    const core_issue_item *it;
    (void)state;

    assert_int_equal(validate("{'resourceType':'Location','meta':{'profile':['" MCSD "Location']},"
                              "'text':{'status':'generated','div':'<div xmlns=\\'" XHTML
                              "\\'><script/></div>'},"
                              "'identifier':[{'system':'urn:a'},{'system':'a b'}],'bogus':true,"
                              "'position':{'latitude':100,'longitude':0}}",
                              "Location", &err),
                     -1);
    assert_int_equal(err.status, 400);
    assert_int_equal(err.code, CORE_ISSUE_VALUE);
    assert_string_equal(err.expr, "Location.identifier[1].system");
    assert_string_equal(err.msg, "system must be a URI without whitespace (got \"a b\")");
    it = err.more;
    assert_non_null(it);
    assert_int_equal(it->code, CORE_ISSUE_INVALID);
    assert_string_equal(it->expr, "Location.text.div");
    it = it->next;
    assert_non_null(it);
    assert_int_equal(it->code, CORE_ISSUE_STRUCTURE);
    assert_string_equal(it->expr, "Location.bogus");
    it = it->next;
    assert_non_null(it);
    assert_int_equal(it->code, CORE_ISSUE_VALUE);
    assert_string_equal(it->expr, "Location.position.latitude");
    it = it->next;
    assert_non_null(it); /* then the profile: status, name, type required */
    assert_int_equal(it->code, CORE_ISSUE_REQUIRED);
    assert_string_equal(it->expr, "Location.status");
    assert_string_equal(it->msg, "element \"status\" is required by profile IHE.mCSD.Location");
    assert_non_null(it->next);
    assert_non_null(it->next->next);
    assert_null(it->next->next->next);
    core_err_clear(&err);

    /* a lone 422 keeps its status */
    expect_issue("{'resourceType':'Practitioner','meta':{'profile':['" MCSD "Practitioner']}}",
                 "Practitioner", 422, CORE_ISSUE_REQUIRED, "Practitioner.name",
                 "element \"name\" is required by profile IHE.mCSD.Practitioner", 0);
}

static void
test_issue_cap(void **state)
{
    json_t *j = json_pack("{s:s}", "resourceType", "Location");
    core_err err = CORE_ERR_INIT;
    const core_issue_item *it, *last = NULL;
    int n = 1;
    (void)state;

    for (int i = 0; i < 150; i++) {
        char key[16];
        snprintf(key, sizeof(key), "x%d", i);
        json_object_set_new(j, key, json_true());
    }
    assert_int_equal(reg_validate(j, "Location", &err), -1);
    for (it = err.more; it; it = it->next, n++)
        last = it;
    assert_int_equal(n, 101);
    assert_int_equal(last->warning, 1);
    assert_string_equal(last->msg, "50 further issues were not reported");
    core_err_clear(&err);
    json_decref(j);
}

/* A json_t built in code can nest deeper than the parser allows: the validator stops. */
static void
test_depth_guard(void **state)
{
    json_t *root = json_pack("{s:s}", "resourceType", "Location"), *cur = root;
    core_err err = CORE_ERR_INIT;
    (void)state;

    for (int i = 0; i < 200; i++) {
        json_t *ext = json_pack("{s:s}", "url", "http://example.org/x");
        json_object_set_new(cur, "extension", json_pack("[o]", ext));
        cur = ext;
    }
    json_object_set_new(cur, "valueString", json_string("deep"));
    assert_int_equal(reg_validate(root, "Location", &err), -1);
    assert_int_equal(err.status, 400);
    assert_int_equal(err.code, CORE_ISSUE_STRUCTURE);
    assert_string_equal(err.msg, "elements are nested more than 64 levels deep");
    assert_null(err.more);
    core_err_clear(&err);
    json_decref(root);
}

/* ---- mCSD profiles -------------------------------------------------------------------------- */

static void
test_mcsd_common(void **state)
{
    (void)state;
    expect_issue("{'resourceType':'Organization','meta':{'profile':['" MCSD "Organization']},"
                 "'implicitRules':'http://x','type':[{'text':'x'}],'name':'x'}",
                 "Organization", 422, CORE_ISSUE_PROCESSING, "Organization.implicitRules",
                 "element \"implicitRules\" is not allowed by profile IHE.mCSD.Organization", 0);
    expect_issue("{'resourceType':'HealthcareService','meta':{'profile':['" MCSD
                 "HealthcareService']},'modifierExtension':[{'url':'http://x','valueBoolean':true}"
                 "],'type':[{'text':'x'}],'name':'x'}",
                 "HealthcareService", 422, CORE_ISSUE_PROCESSING,
                 "HealthcareService.modifierExtension",
                 "element \"modifierExtension\" is not allowed by profile "
                 "IHE.mCSD.HealthcareService",
                 0);
    expect_issue("{'resourceType':'Organization','meta':{'profile':['" MCSD "Organization']},"
                 "'type':[{'text':'x'}]}",
                 "Organization", 422, CORE_ISSUE_REQUIRED, "Organization.name",
                 "element \"name\" is required by profile IHE.mCSD.Organization", 0);
    expect_issue("{'resourceType':'Location','meta':{'profile':['" MCSD "Organization']},"
                 "'name':'x'}",
                 "Location", 422, CORE_ISSUE_PROCESSING, "Location.meta.profile[0]",
                 "profile IHE.mCSD.Organization applies to Organization resources, not Location",
                 0);
    expect_issue("{'resourceType':'PractitionerRole','meta':{'profile':['" MCSD
                 "PractitionerRole|4.0.0']}}",
                 "PractitionerRole", 422, CORE_ISSUE_REQUIRED, "PractitionerRole.code",
                 "element \"code\" is required by profile IHE.mCSD.PractitionerRole", 0);
    expect_issue("{'resourceType':'Endpoint','meta':{'profile':['" MCSD "Endpoint']},"
                 "'status':'active','connectionType':{'code':'x'},'payloadType':[{'text':'x'}],"
                 "'address':'http://x'}",
                 "Endpoint", 422, CORE_ISSUE_REQUIRED, "Endpoint.managingOrganization",
                 "element \"managingOrganization\" is required by profile IHE.mCSD.Endpoint", 0);
    expect_issue("{'resourceType':'Endpoint','meta':{'profile':['" MCSD "Endpoint.DocShare']},"
                 "'status':'active','connectionType':{'code':'x'},'payloadType':[{'text':'x'}],"
                 "'address':'http://x','name':'n','managingOrganization':{'reference':'O/1'}}",
                 "Endpoint", 422, CORE_ISSUE_PROCESSING, "Endpoint.name",
                 "element \"name\" is not allowed by profile IHE.mCSD.Endpoint.DocShare", 0);
    expect_issue(
        "{'resourceType':'OrganizationAffiliation','meta':{'profile':['" MCSD
        "OrganizationAffiliation']},'active':true,'organization':{'reference':'O/1'},"
        "'participatingOrganization':{'reference':'O/2'},'code':[{'text':'x'}],"
        "'network':[{'reference':'O/3'}]}",
        "OrganizationAffiliation", 422, CORE_ISSUE_PROCESSING, "OrganizationAffiliation.network",
        "element \"network\" is not allowed by profile IHE.mCSD.OrganizationAffiliation", 0);
    expect_issue("{'resourceType':'OrganizationAffiliation','meta':{'profile':['" MCSD
                 "OrganizationAffiliation']}}",
                 "OrganizationAffiliation", 422, CORE_ISSUE_REQUIRED,
                 "OrganizationAffiliation.active",
                 "element \"active\" is required by profile IHE.mCSD.OrganizationAffiliation", 3);
    /* other profiles are somebody else's business */
    expect_valid("{'resourceType':'Organization','meta':{'profile':['http://example.org/P',"
                 "'" MCSD "Unknown']}}",
                 "Organization");
}

static void
test_mcsd_facility_and_jurisdiction(void **state)
{
    (void)state;
    /* FacilityLocation without its second type and managingOrganization */
    expect_issue("{'resourceType':'Location','meta':{'profile':['" MCSD "FacilityLocation']},"
                 "'name':'x','status':'active',"
                 "'type':[{'coding':[{'system':'" TYPES "','code':'facility'}]}]}",
                 "Location", 422, CORE_ISSUE_REQUIRED, "Location.managingOrganization",
                 "element \"managingOrganization\" is required by profile "
                 "IHE.mCSD.FacilityLocation",
                 1);
    expect_issue("{'resourceType':'Location','meta':{'profile':['" MCSD "FacilityLocation']},"
                 "'name':'x','status':'active','managingOrganization':{'reference':'O/1'},"
                 "'type':[{'coding':[{'system':'" TYPES "','code':'facility'}]}]}",
                 "Location", 422, CORE_ISSUE_PROCESSING, "Location.type",
                 "type must have at least 2 entries, the facility code and a service type such as "
                 "HOSP (profile IHE.mCSD.FacilityLocation, got 1)",
                 0);
    expect_issue("{'resourceType':'Location','meta':{'profile':['" MCSD "FacilityLocation']},"
                 "'name':'x','status':'active','managingOrganization':{'reference':'O/1'},"
                 "'type':[{'coding':[{'system':'" TYPES "','code':'jurisdiction'}]},"
                 "{'text':'hospital'}]}",
                 "Location", 422, CORE_ISSUE_PROCESSING, "Location.type",
                 "type must include the code \"facility\" of system " TYPES
                 " (profile IHE.mCSD.FacilityLocation)",
                 0);
    /* the parent profile's rules apply too */
    expect_issue("{'resourceType':'Location','meta':{'profile':['" MCSD "FacilityLocation']},"
                 "'status':'active','managingOrganization':{'reference':'O/1'},"
                 "'type':[{'coding':[{'system':'" TYPES "','code':'facility'}]},{'text':'x'}]}",
                 "Location", 422, CORE_ISSUE_REQUIRED, "Location.name",
                 "element \"name\" is required by profile IHE.mCSD.Location", 0);
    expect_issue("{'resourceType':'Organization','meta':{'profile':['" MCSD
                 "JurisdictionOrganization']},'name':'x','type':[{'coding':[{'system':'urn:x',"
                 "'code':'jurisdiction'}]}]}",
                 "Organization", 422, CORE_ISSUE_PROCESSING, "Organization.type",
                 "type must include the code \"jurisdiction\" of system " TYPES
                 " (profile IHE.mCSD.JurisdictionOrganization)",
                 0);
    expect_issue("{'resourceType':'Location','meta':{'profile':['" MCSD "LocationDistance']},"
                 "'name':'x','status':'active','type':[{'text':'x'}]}",
                 "Location", 422, CORE_ISSUE_REQUIRED, "Location.position",
                 "element \"position\" is required by profile IHE.mCSD.LocationDistance", 0);
}

static void
test_mcsd_boundary(void **state)
{
    (void)state;
#define JLOC(ext)                                                                     \
    "{'resourceType':'Location','meta':{'profile':['" MCSD "JurisdictionLocation']}," \
    "'name':'x','status':'active','managingOrganization':{'reference':'O/1'},"        \
    "'type':[{'coding':[{'system':'" TYPES "','code':'jurisdiction'}]}],'extension':[" ext "]}"
    expect_issue(JLOC("{'url':'" BOUNDARY "','valueAttachment':{'contentType':'application/json',"
                      "'data':'e30='}}"),
                 "Location", 422, CORE_ISSUE_PROCESSING,
                 "Location.extension[0].valueAttachment.contentType",
                 "the boundary contentType must be \"application/geo+json\" (profile "
                 "IHE.mCSD.Location, got \"application/json\")",
                 0);
    expect_issue(JLOC("{'url':'" BOUNDARY
                      "','valueAttachment':{'contentType':'application/geo+json',"
                      "'url':'http://x/b.geojson'}}"),
                 "Location", 422, CORE_ISSUE_REQUIRED, "Location.extension[0].valueAttachment.data",
                 "the boundary attachment must hold the GeoJSON inline in data (profile "
                 "IHE.mCSD.Location)",
                 0);
    expect_issue(
        JLOC("{'url':'http://x','valueString':'a'},{'url':'" BOUNDARY "','valueString':'a'}"),
        "Location", 422, CORE_ISSUE_REQUIRED, "Location.extension[1].valueAttachment",
        "the boundary extension must have a valueAttachment (profile IHE.mCSD.Location)", 0);
    expect_issue(
        JLOC("{'url':'" BOUNDARY "','valueAttachment':{'contentType':'application/geo+json',"
             "'data':'e30='}},{'url':'" BOUNDARY "','valueAttachment':{'contentType':"
             "'application/geo+json','data':'e30='}}"),
        "Location", 422, CORE_ISSUE_PROCESSING, "Location.extension",
        "at most one boundary extension is allowed (profile IHE.mCSD.JurisdictionLocation, "
        "got 2)",
        0);
#undef JLOC
}

static void
test_mcsd_process_bundle(void **state)
{
    (void)state;
    expect_issue("{'resourceType':'Bundle','meta':{'profile':['" MCSD "ProcessCareServices']},"
                 "'type':'batch','entry':[{'resource':" PRACTITIONER "},"
                 "{'resource':" PRACTITIONER ",'request':{'method':'GET','url':'Practitioner'}}]}",
                 "Bundle", 422, CORE_ISSUE_PROCESSING, "Bundle.type",
                 "type must be \"transaction\" (profile IHE.mCSD.ProcessCareServices, got "
                 "\"batch\")",
                 2);
}

/* The model is shared, read-only: concurrent validations are safe (run under TSan in CI). */
static void *
worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        core_err err = CORE_ERR_INIT;
        if (validate(FACILITY_LOC, "Location", &err) != 0)
            abort();
        if (validate("{'resourceType':'Location','x':1}", "Location", &err) != -1)
            abort();
        core_err_clear(&err);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    pthread_t t[4];
    (void)state;

    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
}

static void
test_model(void **state)
{
    (void)state;
    assert_true(reg_model_is_resource_type("Location"));
    assert_true(reg_model_is_resource_type("Bundle"));
    assert_true(reg_model_is_resource_type("OrganizationAffiliation"));
    assert_false(reg_model_is_resource_type("Location.position"));
    assert_false(reg_model_is_resource_type("Address"));
    assert_false(reg_model_is_resource_type("string"));
    assert_false(reg_model_is_resource_type("Resource"));
    assert_false(reg_model_is_resource_type("DomainResource"));
    assert_false(reg_model_is_resource_type("location"));
    assert_false(reg_model_is_resource_type(""));
    assert_false(reg_model_is_resource_type(NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_mcsd_examples),
        cmocka_unit_test(test_valid_features),
        cmocka_unit_test(test_official_examples),
        cmocka_unit_test(test_mcsd_ig_examples),
        cmocka_unit_test(test_resource_type),
        cmocka_unit_test(test_unknown_elements),
        cmocka_unit_test(test_json_kinds),
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_cardinality_and_choice),
        cmocka_unit_test(test_resources_inside),
        cmocka_unit_test(test_coordinates),
        cmocka_unit_test(test_required_bindings),
        cmocka_unit_test(test_primitive_formats),
        cmocka_unit_test(test_string_size),
        cmocka_unit_test(test_narrative),
        cmocka_unit_test(test_collects_all_issues),
        cmocka_unit_test(test_issue_cap),
        cmocka_unit_test(test_depth_guard),
        cmocka_unit_test(test_mcsd_common),
        cmocka_unit_test(test_mcsd_facility_and_jurisdiction),
        cmocka_unit_test(test_mcsd_boundary),
        cmocka_unit_test(test_mcsd_process_bundle),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
