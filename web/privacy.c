/* Health-worker data is personal data (DESIGN.md, Security): Practitioner and PractitionerRole
 * need a token for every interaction (access_check in fhir.c, allow_personal in search); a
 * reader sees a subset of a Practitioner; and bulk reads of personal resources are limited per
 * token and minute.
 *
 * The reader's subset (README, "Privacy"): id, meta, identifier, active, name, gender,
 * qualification, communication, and only the telecom and address entries whose use is "work".
 * Left out: birthDate, photo, home and other non-work addresses and contact points (personal
 * phone, home e-mail), text (the narrative may repeat them) and extensions (nationality, marital
 * status and the like); modifierExtension stays, since it changes what the rest means. A
 * resource so reduced carries the security label REDACTED (v3-ObservationValue). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "web/web_int.h"

#define REDACTED_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

int
web_redacts(const web_req *r, int t)
{
    return r->who.role == REG_ROLE_READER && (t < 0 || t == REG_PRACTITIONER);
}

/* Keep the entries of array key whose use is "work". */
static void
keep_work_use(json_t *res, const char *key)
{
    json_t *a = json_object_get(res, key), *kept;
    size_t i;
    json_t *v;

    if (!json_is_array(a))
        return;
    kept = json_array();
    json_array_foreach (a, i, v) {
        const char *use = json_string_value(json_object_get(v, "use"));
        if (use && strcmp(use, "work") == 0)
            json_array_append(kept, v);
    }
    if (json_array_size(kept))
        json_object_set_new(res, key, kept);
    else {
        json_decref(kept);
        json_object_del(res, key);
    }
}

void
web_redact(const web_req *r, json_t *res)
{
    static const char *const keep[] = { "resourceType",  "id",
                                        "meta",          "implicitRules",
                                        "language",      "identifier",
                                        "active",        "name",
                                        "telecom",       "address",
                                        "gender",        "qualification",
                                        "communication", "modifierExtension" };
    const char *type = json_string_value(json_object_get(res, "resourceType"));
    const char *key;
    json_t *v, *meta, *security;
    void *tmp;

    if (r->who.role != REG_ROLE_READER || !type || strcmp(type, "Practitioner") != 0)
        return;
    json_object_foreach_safe (res, tmp, key, v) {
        size_t k;
        for (k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
            if (strcmp(key, keep[k]) == 0)
                break;
        if (k == sizeof(keep) / sizeof(keep[0]))
            json_object_del(res, key);
    }
    keep_work_use(res, "telecom");
    keep_work_use(res, "address");
    meta = json_object_get(res, "meta");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(res, "meta", meta);
    }
    security = json_object_get(meta, "security");
    if (!json_is_array(security)) {
        security = json_array();
        json_object_set_new(meta, "security", security);
    }
    {
        size_t i;
        json_t *label;
        int has = 0;
        json_array_foreach (security, i, label) {
            const char *sys = json_string_value(json_object_get(label, "system"));
            const char *code = json_string_value(json_object_get(label, "code"));
            has |=
                sys && code && strcmp(sys, REDACTED_SYSTEM) == 0 && strcmp(code, "REDACTED") == 0;
        }
        if (!has)
            json_array_append_new(security, json_pack("{s:s, s:s, s:s}", "system", REDACTED_SYSTEM,
                                                      "code", "REDACTED", "display", "redacted"));
    }
    {
        /* resourceType first again, as every other answer has it */
        json_t *o = json_pack("{s:s}", "resourceType", type);
        json_object_foreach (res, key, v)
            if (strcmp(key, "resourceType") != 0)
                json_object_set(o, key, v);
        json_object_clear(res);
        json_object_update(res, o);
        json_decref(o);
    }
}

long
web_redact_all(const web_req *r, json_t *res)
{
    const char *type = json_string_value(json_object_get(res, "resourceType"));
    long personal = 0;

    if (type && strcmp(type, "Bundle") == 0) {
        /* a search inside a Bundle: its entries */
        json_t *e;
        size_t i;
        json_array_foreach (json_object_get(res, "entry"), i, e)
            personal += web_redact_all(r, json_object_get(e, "resource"));
        return personal;
    }
    if (type && reg_type_find(type) >= 0 && reg_type_is_personal((reg_type)reg_type_find(type)))
        personal = 1;
    web_redact(r, res);
    return personal;
}

/* ---- per-token limit on bulk reads of personal resources ------------------------------------- */

#define SLOTS 256

static struct {
    long long token;
    time_t window; /* start of the minute counted */
    long used;
} slots[SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

static int
limited(const web_req *r)
{
    return r->cfg->personal_read_limit > 0 && r->who.role != REG_ROLE_NONE &&
           r->who.role != REG_ROLE_ADMIN;
}

/* The slot of r's token (caller holds slots_lock); a new or the stalest one if absent. */
static int
slot_of(const web_req *r, time_t now)
{
    int oldest = 0;
    for (int i = 0; i < SLOTS; i++) {
        if (slots[i].token == r->who.token_id)
            return i;
        if (slots[i].window < slots[oldest].window)
            oldest = i;
    }
    slots[oldest].token = r->who.token_id;
    slots[oldest].window = now;
    slots[oldest].used = 0;
    return oldest;
}

int
web_personal_throttle(web_req *r)
{
    time_t now = time(NULL);
    long wait = 0;

    if (!limited(r))
        return 0;
    pthread_mutex_lock(&slots_lock);
    {
        int s = slot_of(r, now);
        if (now - slots[s].window >= 60) {
            slots[s].window = now;
            slots[s].used = 0;
        }
        if (slots[s].used >= r->cfg->personal_read_limit)
            wait = 60 - (long)(now - slots[s].window);
    }
    pthread_mutex_unlock(&slots_lock);
    if (!wait)
        return 0;
    {
        core_err err = CORE_ERR_INIT;
        char headers[64];
        json_t *oo;
        core_err_set(&err, 429, CORE_ISSUE_THROTTLED,
                     "this token has read %ld health-worker resources in the last minute, the "
                     "most allowed (MAHALI_PERSONAL_READ_LIMIT); try again in %ld s",
                     r->cfg->personal_read_limit, wait);
        snprintf(headers, sizeof(headers), "Retry-After: %ld\r\n", wait);
        oo = web_outcome(&err);
        web_send_json(r, 429, headers, oo);
        json_decref(oo);
        core_err_clear(&err);
    }
    return -1;
}

void
web_personal_count(web_req *r, long n)
{
    if (n <= 0 || !limited(r))
        return;
    pthread_mutex_lock(&slots_lock);
    {
        time_t now = time(NULL);
        int s = slot_of(r, now);
        if (now - slots[s].window >= 60) {
            slots[s].window = now;
            slots[s].used = 0;
        }
        slots[s].used += n;
    }
    pthread_mutex_unlock(&slots_lock);
}

void
web_count_personal(web_req *r, const reg_history_entry *e, int n)
{
    long k = 0;
    for (int i = 0; i < n; i++)
        k += reg_type_is_personal(e[i].type) && e[i].text;
    web_personal_count(r, k);
}
