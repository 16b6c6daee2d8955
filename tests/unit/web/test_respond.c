/* Unit tests of web/respond.c: HTTP dates and OperationOutcome rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "web/web_int.h"

static void
test_http_date(void **state)
{
    char d[40];
    (void)state;
    web_http_date("2026-11-21T16:23:13.123Z", d);
    assert_string_equal(d, "Sat, 21 Nov 2026 16:23:13 GMT");
    web_http_date("2000-02-29T00:00:00Z", d);
    assert_string_equal(d, "Tue, 29 Feb 2000 00:00:00 GMT");
    web_http_date("1970-01-01T00:00:00Z", d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    web_http_date("garbage", d); /* never crashes; falls back to the epoch */
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
}

static void
test_outcome(void **state)
{
    core_err err = CORE_ERR_INIT;
    json_t *oo, *issues;
    (void)state;

    core_err_set_at(&err, 400, CORE_ISSUE_STRUCTURE, "Location.foo", "unknown element \"foo\"");
    core_err_add(&err, CORE_ISSUE_REQUIRED, 0, "Location.name", "name is required");
    oo = web_outcome(&err);
    assert_string_equal(json_string_value(json_object_get(oo, "resourceType")), "OperationOutcome");
    issues = json_object_get(oo, "issue");
    assert_int_equal(json_array_size(issues), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(issues, 0), "severity")),
                        "error");
    assert_string_equal(json_string_value(json_object_get(json_array_get(issues, 0), "code")),
                        "structure");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_array_get(issues, 0), "expression"), 0)),
                        "Location.foo");
    assert_string_equal(json_string_value(json_object_get(json_array_get(issues, 1), "code")),
                        "required");
    json_decref(oo);
    core_err_clear(&err);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_date),
        cmocka_unit_test(test_outcome),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
