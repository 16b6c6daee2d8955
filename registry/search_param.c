/* The search parameters of the stored types (IHE mCSD ITI-90 SHALL and SHOULD, plus common R4
 * ones), and how their values are taken out of a resource when it is written. The table is the
 * only list: indexing, queries and the CapabilityStatement all read it. Paths are element paths
 * from the resource ('|' = union), the subset of FHIRPath the R4 definitions of these
 * parameters use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/registry_int.h"

#define SP "http://hl7.org/fhir/SearchParameter/"

/* clang-format off */
static const reg_search_param params_organization[] = {
    { REG_ORGANIZATION, "active", REG_SP_TOKEN, "active", NULL, SP "Organization-active", "whether the organization's record is in active use" },
    { REG_ORGANIZATION, "identifier", REG_SP_TOKEN, "identifier", NULL, SP "Organization-identifier", "any identifier: system|value" },
    { REG_ORGANIZATION, "name", REG_SP_STRING, "name|alias", NULL, SP "Organization-name", "name or alias; starts-with, :exact, :contains; case and accents ignored" },
    { REG_ORGANIZATION, "type", REG_SP_TOKEN, "type", NULL, SP "Organization-type", "kind of organization, e.g. the mCSD facility or jurisdiction code" },
    { REG_ORGANIZATION, "partof", REG_SP_REFERENCE, "partOf", "Organization", SP "Organization-partof", "parent organization; :below and :above walk the hierarchy at any depth" },
    { REG_ORGANIZATION, "endpoint", REG_SP_REFERENCE, "endpoint", "Endpoint", SP "Organization-endpoint", "technical endpoints of the organization" },
    { REG_ORGANIZATION, "address", REG_SP_STRING, "address", NULL, SP "Organization-address", "any part of the address" },
    { REG_ORGANIZATION, "address-city", REG_SP_STRING, "address.city", NULL, SP "Organization-address-city", NULL },
    { REG_ORGANIZATION, "address-state", REG_SP_STRING, "address.state", NULL, SP "Organization-address-state", NULL },
    { REG_ORGANIZATION, "address-country", REG_SP_STRING, "address.country", NULL, SP "Organization-address-country", NULL },
    { REG_ORGANIZATION, NULL, 0, NULL, NULL, NULL, NULL },
};
static const reg_search_param params_location[] = {
    { REG_LOCATION, "identifier", REG_SP_TOKEN, "identifier", NULL, SP "Location-identifier", "any identifier: system|value" },
    { REG_LOCATION, "name", REG_SP_STRING, "name|alias", NULL, SP "Location-name", "name or alias; starts-with, :exact, :contains; case and accents ignored" },
    { REG_LOCATION, "organization", REG_SP_REFERENCE, "managingOrganization", "Organization", SP "Location-organization", "the managing organization" },
    { REG_LOCATION, "status", REG_SP_TOKEN, "status", NULL, SP "Location-status", "active | suspended | inactive" },
    { REG_LOCATION, "type", REG_SP_TOKEN, "type", NULL, SP "Location-type", "kind of location, e.g. the mCSD facility or jurisdiction code" },
    { REG_LOCATION, "partof", REG_SP_REFERENCE, "partOf", "Location", SP "Location-partof", "parent location; :below and :above walk the hierarchy at any depth" },
    { REG_LOCATION, "operational-status", REG_SP_TOKEN, "operationalStatus", NULL, SP "Location-operational-status", NULL },
    { REG_LOCATION, "endpoint", REG_SP_REFERENCE, "endpoint", "Endpoint", SP "Location-endpoint", NULL },
    { REG_LOCATION, "address", REG_SP_STRING, "address", NULL, SP "Location-address", "any part of the address" },
    { REG_LOCATION, "address-city", REG_SP_STRING, "address.city", NULL, SP "Location-address-city", NULL },
    { REG_LOCATION, "address-state", REG_SP_STRING, "address.state", NULL, SP "Location-address-state", NULL },
    { REG_LOCATION, "address-country", REG_SP_STRING, "address.country", NULL, SP "Location-address-country", NULL },
    { REG_LOCATION, "address-postalcode", REG_SP_STRING, "address.postalCode", NULL, SP "Location-address-postalcode", NULL },
    { REG_LOCATION, "contains", REG_SP_SPECIAL, "extension(location-boundary-geojson)", NULL, "http://hl7.org/fhir/SearchParameter/Location-contains", "latitude|longitude (WGS84): Locations whose boundary (location-boundary-geojson) covers the point, innermost (smallest area) first; the R5 parameter" },
    { REG_LOCATION, "within", REG_SP_SPECIAL, "position", NULL, "https://profiles.mahali.health/fhir/SearchParameter/Location-within", "Location/id: Locations whose position lies inside (or on the edge of) that Location's boundary, whatever partOf says" },
    { REG_LOCATION, "bbox", REG_SP_SPECIAL, "position", NULL, "https://profiles.mahali.health/fhir/SearchParameter/Location-bbox", "minLongitude,minLatitude,maxLongitude,maxLatitude (WGS84): Locations whose position lies in the box, for maps" },
    { REG_LOCATION, "near", REG_SP_SPECIAL, "position", NULL, SP "Location-near", "latitude|longitude|distance|unit (WGS84; units km (default), m, [mi_i]): Locations whose position lies within that true geodesic distance (PostGIS geography on the WGS84 spheroid), nearest first unless _sort says otherwise, the distance reported per entry with the location-distance extension (in the unit asked for). Without a distance: 50 km. At most 1000 km. Algorithm: candidates in the GiST index's nearest-neighbour order (great circle), re-ranked by the spheroid distance and widened until the page is exact. Bundle.total only with _total=accurate|estimate, or when the first page holds every match" },
    { REG_LOCATION, "near-distance", REG_SP_SPECIAL, "position", NULL, "http://hl7.org/fhir/SearchParameter/Location-near-distance", "value|system|code, value||code or value (quantity; units km (default), m, [mi_i]): the radius of near=latitude|longitude (the STU3 form that the mCSD Location Distance option lists); a distance inside near itself wins. Only with near" },
    { REG_LOCATION, NULL, 0, NULL, NULL, NULL, NULL },
};
static const reg_search_param params_healthcareservice[] = {
    { REG_HEALTHCARESERVICE, "active", REG_SP_TOKEN, "active", NULL, SP "HealthcareService-active", NULL },
    { REG_HEALTHCARESERVICE, "identifier", REG_SP_TOKEN, "identifier", NULL, SP "HealthcareService-identifier", NULL },
    { REG_HEALTHCARESERVICE, "location", REG_SP_REFERENCE, "location", "Location", SP "HealthcareService-location", "where the service is offered" },
    { REG_HEALTHCARESERVICE, "name", REG_SP_STRING, "name", NULL, SP "HealthcareService-name", NULL },
    { REG_HEALTHCARESERVICE, "organization", REG_SP_REFERENCE, "providedBy", "Organization", SP "HealthcareService-organization", "the organization providing the service" },
    { REG_HEALTHCARESERVICE, "service-type", REG_SP_TOKEN, "type", NULL, SP "HealthcareService-service-type", NULL },
    { REG_HEALTHCARESERVICE, "service-category", REG_SP_TOKEN, "category", NULL, SP "HealthcareService-service-category", NULL },
    { REG_HEALTHCARESERVICE, "specialty", REG_SP_TOKEN, "specialty", NULL, SP "HealthcareService-specialty", NULL },
    { REG_HEALTHCARESERVICE, "coverage-area", REG_SP_REFERENCE, "coverageArea", "Location", SP "HealthcareService-coverage-area", NULL },
    { REG_HEALTHCARESERVICE, "endpoint", REG_SP_REFERENCE, "endpoint", "Endpoint", SP "HealthcareService-endpoint", NULL },
    { REG_HEALTHCARESERVICE, NULL, 0, NULL, NULL, NULL, NULL },
};
static const reg_search_param params_practitioner[] = {
    { REG_PRACTITIONER, "active", REG_SP_TOKEN, "active", NULL, SP "Practitioner-active", NULL },
    { REG_PRACTITIONER, "identifier", REG_SP_TOKEN, "identifier", NULL, SP "Practitioner-identifier", "any identifier, e.g. the licence number: system|value" },
    { REG_PRACTITIONER, "name", REG_SP_STRING, "name", NULL, SP "Practitioner-name", "any part of any name" },
    { REG_PRACTITIONER, "given", REG_SP_STRING, "name.given", NULL, SP "individual-given", NULL },
    { REG_PRACTITIONER, "family", REG_SP_STRING, "name.family", NULL, SP "individual-family", NULL },
    { REG_PRACTITIONER, "gender", REG_SP_TOKEN, "gender", NULL, SP "individual-gender", NULL },
    { REG_PRACTITIONER, "communication", REG_SP_TOKEN, "communication", NULL, SP "Practitioner-communication", NULL },
    { REG_PRACTITIONER, NULL, 0, NULL, NULL, NULL, NULL },
};
static const reg_search_param params_practitionerrole[] = {
    { REG_PRACTITIONERROLE, "active", REG_SP_TOKEN, "active", NULL, SP "PractitionerRole-active", NULL },
    { REG_PRACTITIONERROLE, "identifier", REG_SP_TOKEN, "identifier", NULL, SP "PractitionerRole-identifier", NULL },
    { REG_PRACTITIONERROLE, "location", REG_SP_REFERENCE, "location", "Location", SP "PractitionerRole-location", NULL },
    { REG_PRACTITIONERROLE, "organization", REG_SP_REFERENCE, "organization", "Organization", SP "PractitionerRole-organization", NULL },
    { REG_PRACTITIONERROLE, "practitioner", REG_SP_REFERENCE, "practitioner", "Practitioner", SP "PractitionerRole-practitioner", NULL },
    { REG_PRACTITIONERROLE, "role", REG_SP_TOKEN, "code", NULL, SP "PractitionerRole-role", NULL },
    { REG_PRACTITIONERROLE, "service", REG_SP_REFERENCE, "healthcareService", "HealthcareService", SP "PractitionerRole-service", NULL },
    { REG_PRACTITIONERROLE, "specialty", REG_SP_TOKEN, "specialty", NULL, SP "PractitionerRole-specialty", NULL },
    { REG_PRACTITIONERROLE, "date", REG_SP_DATE, "period", NULL, SP "PractitionerRole-date", NULL },
    { REG_PRACTITIONERROLE, "endpoint", REG_SP_REFERENCE, "endpoint", "Endpoint", SP "PractitionerRole-endpoint", NULL },
    { REG_PRACTITIONERROLE, NULL, 0, NULL, NULL, NULL, NULL },
};
static const reg_search_param params_endpoint[] = {
    { REG_ENDPOINT, "identifier", REG_SP_TOKEN, "identifier", NULL, SP "Endpoint-identifier", NULL },
    { REG_ENDPOINT, "organization", REG_SP_REFERENCE, "managingOrganization", "Organization", SP "Endpoint-organization", NULL },
    { REG_ENDPOINT, "status", REG_SP_TOKEN, "status", NULL, SP "Endpoint-status", NULL },
    { REG_ENDPOINT, "name", REG_SP_STRING, "name", NULL, SP "Endpoint-name", NULL },
    { REG_ENDPOINT, "connection-type", REG_SP_TOKEN, "connectionType", NULL, SP "Endpoint-connection-type", NULL },
    { REG_ENDPOINT, NULL, 0, NULL, NULL, NULL, NULL },
};
static const reg_search_param params_organizationaffiliation[] = {
    { REG_ORGANIZATIONAFFILIATION, "active", REG_SP_TOKEN, "active", NULL, SP "OrganizationAffiliation-active", NULL },
    { REG_ORGANIZATIONAFFILIATION, "date", REG_SP_DATE, "period", NULL, SP "OrganizationAffiliation-date", NULL },
    { REG_ORGANIZATIONAFFILIATION, "identifier", REG_SP_TOKEN, "identifier", NULL, SP "OrganizationAffiliation-identifier", NULL },
    { REG_ORGANIZATIONAFFILIATION, "participating-organization", REG_SP_REFERENCE, "participatingOrganization", "Organization", SP "OrganizationAffiliation-participating-organization", NULL },
    { REG_ORGANIZATIONAFFILIATION, "primary-organization", REG_SP_REFERENCE, "organization", "Organization", SP "OrganizationAffiliation-primary-organization", NULL },
    { REG_ORGANIZATIONAFFILIATION, "role", REG_SP_TOKEN, "code", NULL, SP "OrganizationAffiliation-role", NULL },
    { REG_ORGANIZATIONAFFILIATION, "specialty", REG_SP_TOKEN, "specialty", NULL, SP "OrganizationAffiliation-specialty", NULL },
    { REG_ORGANIZATIONAFFILIATION, "location", REG_SP_REFERENCE, "location", "Location", SP "OrganizationAffiliation-location", NULL },
    { REG_ORGANIZATIONAFFILIATION, "network", REG_SP_REFERENCE, "network", "Organization", SP "OrganizationAffiliation-network", NULL },
    { REG_ORGANIZATIONAFFILIATION, "service", REG_SP_REFERENCE, "healthcareService", "HealthcareService", SP "OrganizationAffiliation-service", NULL },
    { REG_ORGANIZATIONAFFILIATION, "endpoint", REG_SP_REFERENCE, "endpoint", "Endpoint", SP "OrganizationAffiliation-endpoint", NULL },
    { REG_ORGANIZATIONAFFILIATION, NULL, 0, NULL, NULL, NULL, NULL },
};
/* clang-format on */

static const reg_search_param *const all_params[REG_NTYPES] = {
    [REG_ORGANIZATION] = params_organization,
    [REG_LOCATION] = params_location,
    [REG_HEALTHCARESERVICE] = params_healthcareservice,
    [REG_PRACTITIONER] = params_practitioner,
    [REG_PRACTITIONERROLE] = params_practitionerrole,
    [REG_ENDPOINT] = params_endpoint,
    [REG_ORGANIZATIONAFFILIATION] = params_organizationaffiliation,
};

const reg_search_param *
reg_search_params(int type)
{
    static const reg_search_param none[] = { { 0, NULL, 0, NULL, NULL, NULL, NULL } };
    return type >= 0 && type < REG_NTYPES ? all_params[type] : none;
}

const reg_search_param *
reg_search_param_find(int type, const char *name)
{
    const reg_search_param *p;
    if (type < 0 || type >= REG_NTYPES)
        return NULL;
    for (p = all_params[type]; p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

const char *
reg_sp_kind_name(reg_sp_kind k)
{
    static const char *const names[] = { "string", "token", "reference", "date", "special" };
    return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "special";
}

/* ---- dates ------------------------------------------------------------------------------------
 */

static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
    long long era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
civil_from_days(long long z, int *y, unsigned *m, unsigned *d)
{
    long long era, doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Milliseconds since the epoch → "YYYY-MM-DDThh:mm:ss.mmmZ". */
static void
format_ms(long long ms, char out[32])
{
    long long days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    long long rem = ms - days * 86400000;
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, 32, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", y % 10000, m % 100, d % 100,
             (unsigned)(rem / 3600000) % 100, (unsigned)(rem / 60000 % 60),
             (unsigned)(rem / 1000 % 60), (unsigned)(rem % 1000));
}

static int
digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int
days_in_month(int y, int m)
{
    static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int
reg_date_range(const char *s, char lo[32], char hi[32])
{
    int y, mo = 1, d = 1, h = 0, mi = 0, sec = 0, ms = 0, tz = 0;
    long long start, span;
    size_t n = strlen(s);
    const char *p;

    if (n < 4 || digits(s, 4, &y) < 0)
        return -1;
    if (n == 4) {
        start = days_from_civil(y, 1, 1) * 86400000LL;
        span = (days_from_civil(y + 1, 1, 1) - days_from_civil(y, 1, 1)) * 86400000LL;
        goto done;
    }
    if (s[4] != '-' || n < 7 || digits(s + 5, 2, &mo) < 0 || mo < 1 || mo > 12)
        return -1;
    if (n == 7) {
        start = days_from_civil(y, (unsigned)mo, 1) * 86400000LL;
        span = (long long)days_in_month(y, mo) * 86400000LL;
        goto done;
    }
    if (s[7] != '-' || n < 10 || digits(s + 8, 2, &d) < 0 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (n == 10) {
        start = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000LL;
        span = 86400000LL;
        goto done;
    }
    /* dateTime: Thh:mm[:ss[.fff]] then Z or ±hh:mm (search values may leave the zone out) */
    if (s[10] != 'T' || n < 16 || digits(s + 11, 2, &h) < 0 || s[13] != ':' ||
        digits(s + 14, 2, &mi) < 0 || h > 23 || mi > 59)
        return -1;
    p = s + 16;
    span = 60000;
    if (*p == ':') {
        if (digits(p + 1, 2, &sec) < 0 || sec > 59)
            return -1;
        p += 3;
        span = 1000;
        if (*p == '.') {
            int nd = 0;
            p++;
            ms = 0;
            while (*p >= '0' && *p <= '9') {
                if (nd < 3)
                    ms = ms * 10 + (*p - '0');
                nd++;
                p++;
            }
            if (nd == 0)
                return -1;
            for (int k = nd; k < 3; k++)
                ms *= 10;
            span = 1;
        }
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int th, tm;
        if (digits(p + 1, 2, &th) < 0 || p[3] != ':' || digits(p + 4, 2, &tm) < 0 || th > 14 ||
            tm > 59)
            return -1;
        tz = (th * 60 + tm) * (*p == '-' ? -1 : 1);
        p += 6;
    }
    if (*p)
        return -1;
    start = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000LL +
            ((long long)h * 3600 + mi * 60 + sec) * 1000LL + ms - (long long)tz * 60000LL;
done:
    format_ms(start, lo);
    format_ms(start + span, hi);
    return 0;
}

/* ---- references
 * ---------------------------------------------------------------------------------- */

int
reg_ref_split(const char *ref, char type[64], char id[65])
{
    const char *segs[8];
    size_t lens[8];
    int n = 0;
    const char *p = ref, *q;

    if (!ref || !*ref || ref[0] == '#' || strncmp(ref, "urn:", 4) == 0)
        return -1;
    /* collect the last path segments; "Type/id" or ".../Type/id" or ".../Type/id/_history/v" */
    while (*p && n < 8) {
        q = strchr(p, '/');
        segs[n] = p;
        lens[n] = q ? (size_t)(q - p) : strlen(p);
        n++;
        if (!q)
            break;
        p = q + 1;
    }
    if (*p && n == 8 && strchr(p, '/'))
        return -1;
    if (n >= 4 && lens[n - 2] == 8 && strncmp(segs[n - 2], "_history", 8) == 0)
        n -= 2;
    if (n < 2 || lens[n - 2] == 0 || lens[n - 2] >= 64 || lens[n - 1] == 0 || lens[n - 1] > 64)
        return -1;
    memcpy(type, segs[n - 2], lens[n - 2]);
    type[lens[n - 2]] = '\0';
    memcpy(id, segs[n - 1], lens[n - 1]);
    id[lens[n - 1]] = '\0';
    if (!reg_model_is_resource_type(type) || !reg_id_valid(id))
        return -1;
    return 0;
}

/* ---- index extraction
 * ---------------------------------------------------------------------------- */

static void
add_string(json_t *out, const char *param, const json_t *v)
{
    if (core_json_is_text(v) && json_string_length(v) > 0)
        json_array_append_new(out, json_pack("{s:s, s:s, s:O}", "p", param, "k", "s", "v", v));
}

/* Strings of a value: a string itself, or the parts of a HumanName or an Address. */
static void
strings_of(json_t *out, const char *param, const json_t *v)
{
    static const char *const parts[] = { "text",   "family",     "given",   "prefix",
                                         "suffix", "line",       "city",    "district",
                                         "state",  "postalCode", "country", NULL };
    if (core_json_is_text(v)) {
        add_string(out, param, v);
        return;
    }
    if (!json_is_object(v))
        return;
    for (int i = 0; parts[i]; i++) {
        const json_t *x = json_object_get(v, parts[i]);
        size_t k;
        const json_t *e;
        if (json_is_array(x)) {
            json_array_foreach (x, k, e) {
                add_string(out, param, e);
            }
        } else if (x) {
            add_string(out, param, x);
        }
    }
}

static void
add_token(json_t *out, const char *param, const json_t *system, const json_t *code)
{
    json_t *e;
    if (!core_json_is_text(code) || json_string_length(code) == 0)
        return;
    e = json_pack("{s:s, s:s, s:O}", "p", param, "k", "t", "c", code);
    if (core_json_is_text(system))
        json_object_set(e, "s", (json_t *)system);
    json_array_append_new(out, e);
}

/* Tokens of a value: code/string/boolean, Coding, CodeableConcept, Identifier, ContactPoint. */
static void
tokens_of(json_t *out, const char *param, const json_t *v)
{
    const json_t *coding;
    if (json_is_boolean(v)) {
        json_t *b = json_string(json_is_true(v) ? "true" : "false");
        add_token(out, param, NULL, b);
        json_decref(b);
        return;
    }
    if (core_json_is_text(v)) {
        add_token(out, param, NULL, v);
        return;
    }
    if (!json_is_object(v))
        return;
    if ((coding = json_object_get(v, "coding")) && json_is_array(coding)) {
        size_t k;
        const json_t *c;
        json_array_foreach (coding, k, c) {
            add_token(out, param, json_object_get(c, "system"), json_object_get(c, "code"));
        }
    } else if (json_object_get(v, "code")) {
        add_token(out, param, json_object_get(v, "system"), json_object_get(v, "code"));
    } else if (json_object_get(v, "value")) {
        add_token(out, param, json_object_get(v, "system"), json_object_get(v, "value"));
    }
}

static void
refs_of(json_t *out, const char *param, const json_t *v)
{
    char type[64], id[65];
    const char *ref = json_string_value(json_object_get(v, "reference"));
    if (!ref || !core_json_is_text(json_object_get(v, "reference")) ||
        reg_ref_split(ref, type, id) < 0)
        return;
    json_array_append_new(
        out, json_pack("{s:s, s:s, s:s, s:s}", "p", param, "k", "r", "rt", type, "ri", id));
}

static void
dates_of(json_t *out, const char *param, const json_t *v)
{
    char lo[32], hi[32], lo2[32], hi2[32];
    if (core_json_is_text(v)) {
        if (reg_date_range(json_string_value(v), lo, hi) == 0)
            json_array_append_new(
                out, json_pack("{s:s, s:s, s:s, s:s}", "p", param, "k", "d", "lo", lo, "hi", hi));
        return;
    }
    if (json_is_object(v)) { /* Period: open ends reach to the ends of time */
        const char *s = json_string_value(json_object_get(v, "start"));
        const char *e = json_string_value(json_object_get(v, "end"));
        if (!s && !e)
            return;
        if (s && reg_date_range(s, lo, hi2) < 0)
            return;
        if (e && reg_date_range(e, lo2, hi) < 0)
            return;
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s}", "p", param, "k", "d", "lo",
                                             s ? lo : "-infinity", "hi", e ? hi : "infinity"));
    }
}

/* Call fn on every value at the dotted path below v (arrays are flattened at each step). */
static void
walk(json_t *out, const reg_search_param *sp, const json_t *v, const char *path)
{
    const char *dot;
    char seg[64];
    size_t len;

    if (json_is_array(v)) {
        size_t k;
        const json_t *e;
        json_array_foreach (v, k, e) {
            walk(out, sp, e, path);
        }
        return;
    }
    if (!*path) {
        switch (sp->kind) {
        case REG_SP_STRING:
            strings_of(out, sp->name, v);
            break;
        case REG_SP_TOKEN:
            tokens_of(out, sp->name, v);
            break;
        case REG_SP_REFERENCE:
            refs_of(out, sp->name, v);
            break;
        case REG_SP_DATE:
            dates_of(out, sp->name, v);
            break;
        default:
            break;
        }
        return;
    }
    if (!json_is_object(v))
        return;
    dot = strchr(path, '.');
    len = dot ? (size_t)(dot - path) : strlen(path);
    if (len >= sizeof(seg))
        return;
    memcpy(seg, path, len);
    seg[len] = '\0';
    walk(out, sp, json_object_get(v, seg), dot ? dot + 1 : "");
}

/* Location.position as a point for `near` (WGS84, decimal degrees; validation has checked the
 * ranges). The numbers keep their text. */
static void
position_of(json_t *out, const json_t *res)
{
    const json_t *pos = json_object_get(res, "position");
    const json_t *lon = json_object_get(pos, "longitude"), *lat = json_object_get(pos, "latitude");
    if (!core_json_is_number(lon) || !core_json_is_number(lat))
        return;
    json_array_append_new(
        out, json_pack("{s:s, s:s, s:O, s:O}", "p", "position", "k", "g", "lon", lon, "lat", lat));
}

/* Each boundary extension as GeoJSON for PostGIS (already validated, and repaired if asked,
 * by reg__check_body; one that fails here is left out of the index rather than failing). */
static void
boundaries_of(json_t *out, const json_t *res)
{
    const json_t *exts = json_object_get(res, "extension"), *ext;
    size_t i;

    json_array_foreach (exts, i, ext) {
        const json_t *data = json_object_get(json_object_get(ext, "valueAttachment"), "data");
        const char *url = json_string_value(json_object_get(ext, "url"));
        geo_boundary_opts o = GEO_BOUNDARY_OPTS_INIT;
        geo_boundary *b = NULL;
        core_err err = CORE_ERR_INIT;
        char *gj = NULL;
        size_t len = 0;

        if (!url || strcmp(url, GEO_BOUNDARY_URL) != 0 || !core_json_is_text(data))
            continue;
        if (geo_boundary_parse(&b, reg__geo(), json_string_value(data), json_string_length(data),
                               &o, &err) == 0 &&
            geo_boundary_geojson(&gj, &len, reg__geo(), b, &err) == 0)
            json_array_append_new(
                out, json_pack("{s:s, s:s, s:s}", "p", "boundary", "k", "b", "gj", gj));
        free(gj);
        geo_boundary_free(reg__geo(), b);
        core_err_clear(&err);
    }
}

json_t *
reg_index_build(const json_t *res, int type)
{
    json_t *out = json_array();
    const reg_search_param *sp;

    if (type == REG_LOCATION) {
        position_of(out, res);
        boundaries_of(out, res);
    }

    for (sp = reg_search_params(type); sp->name; sp++) {
        char paths[256], *save = NULL, *tok;
        if (sp->kind == REG_SP_SPECIAL)
            continue;
        core_strlcpy(paths, sp->paths, sizeof(paths));
        for (tok = strtok_r(paths, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
            walk(out, sp, res, tok);
    }
    return out;
}
