/* Unit tests of core/arena.c and core/err.c: allocation, alignment, deferred clean-ups in LIFO
 * order, and error collection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/core.h"

static int order[8], norder;

static void
record(void *p)
{
    order[norder++] = (int)(intptr_t)p;
}

static void
test_alloc_and_defer(void **state)
{
    core_arena *a = core_arena_create();
    char *big;
    (void)state;

    for (int i = 0; i < 1000; i++) {
        char *p = core_arena_alloc(a, (size_t)(i % 37) + 1);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
        assert_int_equal(p[0], 0); /* zeroed */
        memset(p, 0xab, (size_t)(i % 37) + 1);
    }
    big = core_arena_alloc(a, 100000); /* larger than a chunk */
    memset(big, 1, 100000);
    assert_string_equal(core_arena_strdup(a, "Bo"), "Bo");
    assert_string_equal(core_arena_sprintf(a, "%s/%d", "Location", 7), "Location/7");
    norder = 0;
    core_arena_defer(a, record, (void *)1);
    core_arena_defer(a, record, (void *)2);
    core_arena_defer(a, core_defer_json, json_object());
    core_arena_destroy(a);
    assert_int_equal(norder, 2);
    assert_int_equal(order[0], 2); /* LIFO */
    assert_int_equal(order[1], 1);
    core_arena_destroy(NULL);
}

static void
test_err(void **state)
{
    core_err err = CORE_ERR_INIT;
    int n = 0;
    (void)state;

    assert_int_equal(core_err_set_at(&err, 400, CORE_ISSUE_VALUE, "Location.position.latitude",
                                     "latitude must be between -90 and 90 (got %g)", 91.0),
                     -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(core_issue_code(err.code), "value");
    assert_string_equal(err.expr, "Location.position.latitude");
    assert_string_equal(err.msg, "latitude must be between -90 and 90 (got 91)");
    core_err_add(&err, CORE_ISSUE_REQUIRED, 0, "Location.name", "name is required");
    core_err_add(&err, CORE_ISSUE_INVALID, 1, NULL, "warning %d", 2);
    for (core_issue_item *it = err.more; it; it = it->next)
        n++;
    assert_int_equal(n, 2);
    assert_string_equal(err.more->expr, "Location.name");
    assert_int_equal(err.more->next->warning, 1);
    core_err_clear(&err);
    assert_int_equal(err.status, 0);
    assert_null(err.more);
    assert_string_equal(core_issue_code(CORE_ISSUE_NOT_FOUND), "not-found");
    assert_string_equal(core_issue_code((core_issue)999), "exception");
}

static void
test_strlcpy_and_time(void **state)
{
    char buf[4], ts[32];
    (void)state;
    assert_int_equal(core_strlcpy(buf, "Kenema", sizeof(buf)), 6);
    assert_string_equal(buf, "Ken");
    core_time_instant(ts);
    assert_int_equal(strlen(ts), 24);
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[23], 'Z');
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_and_defer),
        cmocka_unit_test(test_err),
        cmocka_unit_test(test_strlcpy_and_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
