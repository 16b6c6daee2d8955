/* Integration tests of the versioned store against a real PostgreSQL + PostGIS (the ctest
 * fixture `pg`): optimistic locking under concurrent writers, racing update-as-create, no-op
 * updates, history paging and the change feed's safe horizon. Each run uses its own database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry/registry.h"

static char conninfo[2048];
static char admin_conninfo[2048];
static char dbname[64];

static core_db *
db_open(void)
{
    return core_db_create(conninfo, "test_store");
}

static json_t *
location(const char *id, const char *name)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s}", "resourceType", "Location", "name", name, "status", "active");
    if (id)
        json_object_set_new(j, "id", json_string(id));
    return j;
}

static void
test_crud(void **state)
{
    core_db *db = db_open();
    core_err err = CORE_ERR_INIT;
    reg_write w, w2;
    reg_actor who = { "test", "127.0.0.1", 0 };
    json_t *res = location(NULL, "Bo Government Hospital"), *got;
    int version;
    char lu[32];
    (void)state;

    assert_int_equal(reg_create(&w, db, REG_LOCATION, res, &who, &err), 0);
    assert_int_equal(w.version, 1);
    assert_true(w.created);
    assert_int_equal(reg_read(&got, &version, lu, db, REG_LOCATION, w.id, &err), 0);
    assert_int_equal(version, 1);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "Bo Government Hospital");
    json_decref(got);

    /* update, then a stale If-Match is refused with 412 */
    json_object_set_new(res, "name", json_string("Bo Regional Hospital"));
    assert_int_equal(reg_update(&w2, db, REG_LOCATION, w.id, res, 1, &who, &err), 0);
    assert_int_equal(w2.version, 2);
    reg_write_clear(&w2);
    assert_int_equal(reg_update(&w2, db, REG_LOCATION, w.id, res, 1, &who, &err), -1);
    assert_int_equal(err.status, 412);
    core_err_clear(&err);

    /* delete: read answers 410, a second delete is a no-op, vread of the deletion is 410 */
    assert_int_equal(reg_delete(&w2, db, REG_LOCATION, w.id, 0, &who, &err), 0);
    assert_int_equal(w2.version, 3);
    reg_write_clear(&w2);
    assert_int_equal(reg_read(&got, NULL, NULL, db, REG_LOCATION, w.id, &err), -1);
    assert_int_equal(err.status, 410);
    core_err_clear(&err);
    assert_int_equal(reg_delete(&w2, db, REG_LOCATION, w.id, 0, &who, &err), 0);
    assert_true(w2.noop);
    reg_write_clear(&w2);
    assert_int_equal(reg_vread(&got, lu, db, REG_LOCATION, w.id, 1, &err), 0);
    assert_string_equal(json_string_value(json_object_get(got, "name")), "Bo Government Hospital");
    json_decref(got);
    assert_int_equal(reg_vread(&got, lu, db, REG_LOCATION, w.id, 3, &err), -1);
    assert_int_equal(err.status, 410);
    core_err_clear(&err);
    assert_int_equal(reg_delete(&w2, db, REG_LOCATION, "never-existed", 0, &who, &err), -1);
    assert_int_equal(err.status, 404);
    core_err_clear(&err);

    reg_write_clear(&w);
    json_decref(res);
    core_db_free(db);
}

static void
test_noop_update(void **state)
{
    core_db *db = db_open();
    core_err err = CORE_ERR_INIT;
    reg_write w;
    json_t *res = location("noop-1", "Kenema Clinic");
    (void)state;

    assert_int_equal(reg_update(&w, db, REG_LOCATION, "noop-1", res, 0, NULL, &err), 0);
    assert_true(w.created);
    reg_write_clear(&w);
    /* the same content again (with a client's stale meta) creates no new version */
    json_object_set_new(res, "meta", json_pack("{s:s}", "versionId", "77"));
    assert_int_equal(reg_update(&w, db, REG_LOCATION, "noop-1", res, 0, NULL, &err), 0);
    assert_true(w.noop);
    assert_int_equal(w.version, 1);
    reg_write_clear(&w);
    /* a real change does */
    json_object_set_new(res, "name", json_string("Kenema Health Centre"));
    assert_int_equal(reg_update(&w, db, REG_LOCATION, "noop-1", res, 0, NULL, &err), 0);
    assert_false(w.noop);
    assert_int_equal(w.version, 2);
    reg_write_clear(&w);
    json_decref(res);
    core_db_free(db);
}

/* ---- concurrency ------------------------------------------------------------------------- */

#define WRITERS  8
#define ATTEMPTS 40

typedef struct racer {
    pthread_barrier_t *start;
    const char *id;
    int ok, conflicts, created, errors;
} racer;

/* Read the version, then write it back with If-Match: every success must bump the version by
 * exactly one, whatever the interleaving. */
static void *
if_match_writer(void *arg)
{
    racer *r = arg;
    core_db *db = db_open();
    pthread_barrier_wait(r->start);
    for (int i = 0; i < ATTEMPTS; i++) {
        core_err err = CORE_ERR_INIT;
        json_t *got;
        int version;
        reg_write w;
        if (reg_read(&got, &version, NULL, db, REG_LOCATION, r->id, &err) < 0) {
            r->errors++;
            core_err_clear(&err);
            continue;
        }
        char text[48];
        snprintf(text, sizeof(text), "writer %p attempt %d", (void *)r, i);
        json_object_set_new(got, "description", json_string(text));
        if (reg_update(&w, db, REG_LOCATION, r->id, got, version, NULL, &err) == 0) {
            r->ok += !w.noop;
            reg_write_clear(&w);
        } else if (err.status == 412) {
            r->conflicts++;
        } else {
            r->errors++;
        }
        core_err_clear(&err);
        json_decref(got);
    }
    core_db_free(db);
    return NULL;
}

static void
test_if_match_race(void **state)
{
    core_db *db = db_open();
    core_err err = CORE_ERR_INIT;
    pthread_barrier_t start;
    pthread_t th[WRITERS];
    racer r[WRITERS];
    reg_write w;
    json_t *res = location("race-1", "Race Clinic"), *got;
    int ok = 0, conflicts = 0, errors = 0, final;
    (void)state;

    assert_int_equal(reg_update(&w, db, REG_LOCATION, "race-1", res, 0, NULL, &err), 0);
    reg_write_clear(&w);
    pthread_barrier_init(&start, NULL, WRITERS);
    for (int i = 0; i < WRITERS; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].start = &start;
        r[i].id = "race-1";
        pthread_create(&th[i], NULL, if_match_writer, &r[i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].ok;
        conflicts += r[i].conflicts;
        errors += r[i].errors;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(reg_read(&got, &final, NULL, db, REG_LOCATION, "race-1", &err), 0);
    json_decref(got);
    printf("if-match race: lost_updates=%d ok=%d conflicts=%d errors=%d\n", 1 + ok - final, ok,
           conflicts, errors);
    assert_int_equal(errors, 0);
    assert_int_equal(final, 1 + ok); /* no lost update */
    assert_true(ok > 0);
    json_decref(res);
    core_db_free(db);
}

static void *
put_creator(void *arg)
{
    racer *r = arg;
    core_db *db = db_open();
    core_err err = CORE_ERR_INIT;
    reg_write w;
    json_t *res = location(r->id, "Created Once");
    pthread_barrier_wait(r->start);
    if (reg_update(&w, db, REG_LOCATION, r->id, res, 0, NULL, &err) == 0) {
        r->created += w.created;
        r->ok++;
        reg_write_clear(&w);
    } else {
        r->errors++;
        core_err_clear(&err);
    }
    json_decref(res);
    core_db_free(db);
    return NULL;
}

static void
test_put_create_race(void **state)
{
    enum { N = 16, ROUNDS = 5 };
    int duplicates = 0, errors = 0;
    (void)state;

    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_t start;
        pthread_t th[N];
        racer r[N];
        char id[32];
        int created = 0;
        snprintf(id, sizeof(id), "put-race-%d", round);
        pthread_barrier_init(&start, NULL, N);
        for (int i = 0; i < N; i++) {
            memset(&r[i], 0, sizeof(r[i]));
            r[i].start = &start;
            r[i].id = id;
            pthread_create(&th[i], NULL, put_creator, &r[i]);
        }
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            created += r[i].created;
            errors += r[i].errors;
        }
        pthread_barrier_destroy(&start);
        duplicates += created - 1;
    }
    printf("put-create race: duplicates=%d errors=%d rounds=%d writers=%d\n", duplicates, errors,
           ROUNDS, N);
    assert_int_equal(duplicates, 0);
    assert_int_equal(errors, 0);
}

/* ---- history ----------------------------------------------------------------------------- */

static void
test_history_paging(void **state)
{
    core_db *db = db_open();
    core_err err = CORE_ERR_INIT;
    reg_write w;
    json_t *res = location("hist-1", "v1");
    reg_history_query q = { .type = REG_LOCATION, .id = "hist-1", .count = 3 };
    char horizon[32], pinned[32];
    int seen[8] = { 0 }, total = 0;
    (void)state;

    for (int v = 1; v <= 7; v++) {
        char name[8];
        snprintf(name, sizeof(name), "v%d", v);
        json_object_set_new(res, "name", json_string(name));
        assert_int_equal(reg_update(&w, db, REG_LOCATION, "hist-1", res, 0, NULL, &err), 0);
        reg_write_clear(&w);
    }
    for (;;) {
        reg_history_entry *e;
        int n;
        long long next;
        assert_int_equal(reg_history(&e, &n, &next, horizon, db, &q, &err), 0);
        for (int i = 0; i < n; i++) {
            assert_true(e[i].version >= 1 && e[i].version <= 7);
            seen[e[i].version]++;
            if (i > 0)
                assert_true(e[i].version < e[i - 1].version); /* newest first */
        }
        total += n;
        reg_history_free(e, n);
        if (!next)
            break;
        q.before = next;
        memcpy(pinned, horizon, sizeof(pinned)); /* the walk keeps its first page's horizon */
        q.horizon = pinned;
    }
    assert_int_equal(total, 7);
    for (int v = 1; v <= 7; v++)
        assert_int_equal(seen[v], 1);

    q.since = "not-a-date";
    q.before = 0;
    q.horizon = NULL;
    {
        reg_history_entry *e;
        int n;
        long long next;
        assert_int_equal(reg_history(&e, &n, &next, horizon, db, &q, &err), -1);
        assert_int_equal(err.status, 400);
        core_err_clear(&err);
    }
    json_decref(res);
    core_db_free(db);
}

/* A write whose transaction is still open hides every later change from the feed, so a client
 * that advances past the later change cannot skip the earlier one when it commits. */
static void
test_feed_horizon(void **state)
{
    core_db *slow = db_open(), *fast = db_open(), *reader = db_open();
    core_err err = CORE_ERR_INIT;
    reg_write w;
    json_t *a = location("feed-a", "A"), *b = location("feed-b", "B");
    reg_history_query q = { .type = REG_LOCATION, .count = 500 };
    char horizon[32];
    reg_history_entry *e;
    int n, has_b = 0, has_a = 0;
    long long next;
    (void)state;

    assert_int_equal(core_db_run(slow, "BEGIN", &err), 0);
    assert_int_equal(reg_update(&w, slow, REG_LOCATION, "feed-a", a, 0, NULL, &err), 0);
    reg_write_clear(&w);
    assert_int_equal(reg_update(&w, fast, REG_LOCATION, "feed-b", b, 0, NULL, &err), 0);
    reg_write_clear(&w);

    assert_int_equal(reg_history(&e, &n, &next, horizon, reader, &q, &err), 0);
    for (int i = 0; i < n; i++)
        has_b |= strcmp(e[i].id, "feed-b") == 0;
    reg_history_free(e, n);
    assert_false(has_b); /* held back while feed-a's transaction is open */

    assert_int_equal(core_db_run(slow, "COMMIT", &err), 0);
    assert_int_equal(reg_history(&e, &n, &next, horizon, reader, &q, &err), 0);
    for (int i = 0; i < n; i++) {
        has_b |= strcmp(e[i].id, "feed-b") == 0;
        has_a |= strcmp(e[i].id, "feed-a") == 0;
    }
    reg_history_free(e, n);
    printf("feed horizon: held_back_until_commit=1 visible_after=%d\n", has_a && has_b);
    assert_true(has_a && has_b);
    json_decref(a);
    json_decref(b);
    core_db_free(slow);
    core_db_free(fast);
    core_db_free(reader);
}

/* ---- set-up: a database of our own in the fixture's cluster ----------------------------- */

static int
admin_run(const char *sql)
{
    core_db *db = core_db_create(admin_conninfo, "test_store_admin");
    core_err err = CORE_ERR_INIT;
    int rc = core_db_run(db, sql, &err);
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", sql, err.msg);
    core_err_clear(&err);
    core_db_free(db);
    return rc;
}

int
main(void)
{
    const char *dir = getenv("MAHALI_TEST_DIR");
    char path[1024], sql[128], base[1024] = "";
    core_err err = CORE_ERR_INIT;
    FILE *f;
    int rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crud),           cmocka_unit_test(test_noop_update),
        cmocka_unit_test(test_if_match_race),  cmocka_unit_test(test_put_create_race),
        cmocka_unit_test(test_history_paging), cmocka_unit_test(test_feed_horizon),
    };

    snprintf(path, sizeof(path), "%s/conninfo", dir ? dir : ".");
    if (!dir || !(f = fopen(path, "r"))) {
        printf("skipped: no test database (%s missing)\n", path);
        return 77;
    }
    if (!fgets(base, sizeof(base), f))
        base[0] = '\0';
    fclose(f);
    base[strcspn(base, "\r\n")] = '\0';
    if (core_init() < 0 || reg_model_load(&err) < 0) {
        fprintf(stderr, "init: %s\n", err.msg);
        return 1;
    }
    snprintf(dbname, sizeof(dbname), "itest_store_%d", (int)getpid());
    /* in a key=value conninfo the last dbname wins */
    snprintf(admin_conninfo, sizeof(admin_conninfo), "%s dbname=postgres", base);
    snprintf(conninfo, sizeof(conninfo), "%s dbname=%s", base, dbname);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
    if (admin_run(sql) < 0)
        return 1;
    {
        core_db *db = db_open();
        if (core_migrate(db, &err) < 0) {
            fprintf(stderr, "migrate: %s\n", err.msg);
            return 1;
        }
        core_db_free(db);
    }
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", dbname);
    admin_run(sql);
    return rc;
}
