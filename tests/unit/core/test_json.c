/* Unit tests of core/json.c: numbers keep their exact text through parse and dump, and the
 * parser refuses what FHIR JSON may not hold (deep nesting, duplicate keys, invalid UTF-8, NUL,
 * bad numbers), naming line and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* Parse text, which must succeed. */
static json_t *
parse_ok(const char *text)
{
    core_err err = CORE_ERR_INIT;
    json_t *j = core_json_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("parse of %s failed: %s", text, err.msg);
    assert_int_equal(err.status, 0);
    return j;
}

/* Parse text, which must fail with 400 structure and exactly this message. */
static void
parse_fails(const char *text, size_t len, const char *msg)
{
    core_err err = CORE_ERR_INIT;
    json_t *j = core_json_parse(text, len, &err);
    assert_null(j);
    assert_int_equal(err.status, 400);
    assert_int_equal(err.code, CORE_ISSUE_STRUCTURE);
    assert_string_equal(err.msg, msg);
    assert_null(err.more);
}

/* dump(parse(text)) must be text itself (text compact, as jansson writes it). */
static void
round_trip(const char *text)
{
    json_t *j = parse_ok(text);
    size_t len = 0;
    char *out = core_json_dump(j, &len);
    assert_non_null(out);
    assert_string_equal(out, text);
    assert_int_equal(len, strlen(text));
    free(out);
    json_decref(j);
}

static void
test_decimals_round_trip(void **state)
{
    (void)state;
    round_trip("{\"latitude\":8.4800,\"a\":-0.0,\"b\":1e400,\"c\":1E-7,\"d\":100,\"e\":-12.5e+3}");
    round_trip("[0,-0,0.0000000000000000000000001,123456789012345678901234567890]");
    round_trip(
        "{\"s\":\"caf\xc3\xa9 \xe2\x82\xac\",\"n\":null,\"t\":true,\"f\":false,\"o\":{},\"a\":[]}");
    round_trip("5");
    round_trip("\"text\"");
}

static void
test_number_helpers(void **state)
{
    json_t *j = parse_ok("{\"lat\":8.4800,\"big\":1e400,\"neg\":-0.0,\"s\":\"8.48\",\"i\":42}");
    const json_t *lat = json_object_get(j, "lat"), *s = json_object_get(j, "s");
    double d = 0;
    (void)state;

    assert_true(core_json_is_number(lat));
    assert_false(core_json_is_text(lat));
    assert_true(json_is_string(lat)); /* the representation core.h documents */
    assert_string_equal(core_json_number_text(lat), "8.4800");
    assert_int_equal(core_json_number_get(lat, &d), 0);
    assert_true(d == 8.48);

    assert_false(core_json_is_number(s));
    assert_true(core_json_is_text(s));
    assert_null(core_json_number_text(s));
    assert_int_equal(core_json_number_get(s, &d), -1);

    assert_int_equal(core_json_number_get(json_object_get(j, "big"), &d), -1); /* overflows */
    assert_int_equal(core_json_number_get(json_object_get(j, "neg"), &d), 0);
    assert_true(d == 0 && signbit(d));
    assert_int_equal(core_json_number_get(json_object_get(j, "i"), &d), 0);
    assert_true(d == 42);

    assert_false(core_json_is_number(NULL));
    assert_false(core_json_is_text(NULL));
    assert_false(core_json_is_number(json_object_get(j, "missing")));
    json_decref(j);
}

static void
check_real(double v, const char *text)
{
    json_t *j = core_json_real(v);
    assert_non_null(j);
    assert_string_equal(core_json_number_text(j), text);
    json_decref(j);
}

static void
test_build_numbers(void **state)
{
    json_t *o = json_object(), *j;
    char *out;
    (void)state;

    check_real(0.1, "0.1");
    check_real(0.1 + 0.2, "0.30000000000000004");
    check_real(100, "100");
    check_real(-36.8219, "-36.8219");
    check_real(1e21, "1e+21");
    check_real(1e-7, "1e-07");
    check_real(-0.0, "-0");
    check_real(5e-324, "5e-324");
    check_real(1.7976931348623157e308, "1.7976931348623157e+308");
    check_real(123456789012.5, "123456789012.5");
    assert_null(core_json_real(NAN));
    assert_null(core_json_real(INFINITY));

    j = core_json_integer(LLONG_MIN);
    assert_string_equal(core_json_number_text(j), "-9223372036854775808");
    json_decref(j);

    json_object_set_new(o, "value", core_json_number("12.50"));
    json_object_set_new(o, "count", core_json_integer(-3));
    json_object_set_new(o, "text", json_string("12.50"));
    json_object_set_new(o, "marker", json_string("\\u0000N1")); /* looks like the marker as text */
    out = core_json_dump(o, NULL);
    assert_string_equal(
        out, "{\"value\":12.50,\"count\":-3,\"text\":\"12.50\",\"marker\":\"\\\\u0000N1\"}");
    free(out);
    json_decref(o);
}

static void
test_dump_pretty(void **state)
{
    json_t *j = parse_ok("{\"a\":[1.50,\"x\"],\"b\":{\"c\":-0.0}}");
    char *out;
    (void)state;

    out = core_json_dump_pretty(j, 2, NULL);
    assert_string_equal(
        out, "{\n  \"a\": [\n    1.50,\n    \"x\"\n  ],\n  \"b\": {\n    \"c\": -0.0\n  }\n}");
    free(out);
    json_decref(j);
}

static void
test_escapes_survive(void **state)
{
    /* Escaped quotes, backslashes and a literal "\u0000N" text (escaped backslash) are strings. */
    json_t *j =
        parse_ok("[\"a\\\"b\",\"c\\\\\",\"\\\\u0000N5\",\"\\u00e9\\ud83d\\ude00\",\"\\/\"]");
    char *out = core_json_dump(j, NULL);
    (void)state;

    assert_true(core_json_is_text(json_array_get(j, 2)));
    assert_string_equal(json_string_value(json_array_get(j, 2)), "\\u0000N5");
    assert_string_equal(
        out, "[\"a\\\"b\",\"c\\\\\",\"\\\\u0000N5\",\"\xc3\xa9\xf0\x9f\x98\x80\",\"/\"]");
    free(out);
    json_decref(j);
}

static void
test_depth(void **state)
{
    char buf[2 * 70 + 1];
    char *deep;
    json_t *j;
    (void)state;

    memset(buf, '[', 64);
    memset(buf + 64, ']', 64);
    buf[128] = '\0';
    j = parse_ok(buf);
    json_decref(j);

    memset(buf, '[', 65);
    memset(buf + 65, ']', 65);
    buf[130] = '\0';
    parse_fails(buf, 130, "invalid JSON at line 1, column 65: nesting deeper than 64 levels");

    /* objects count too: {"a":{"a":... 65 levels */
    deep = malloc(65 * 5 + 65 + 2);
    deep[0] = '\0';
    for (int i = 0; i < 65; i++)
        strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < 65; i++)
        strcat(deep, "}");
    parse_fails(deep, strlen(deep),
                "invalid JSON at line 1, column 321: nesting deeper than 64 levels");
    free(deep);

    /* 10000 '[' (and no closing ones): refused early, no recursion */
    deep = malloc(10000);
    memset(deep, '[', 10000);
    parse_fails(deep, 10000, "invalid JSON at line 1, column 65: nesting deeper than 64 levels");
    free(deep);
}

static void
test_refused(void **state)
{
    (void)state;
    parse_fails("{\"a\":1,\"a\":2}", 13,
                "invalid JSON at line 1, column 10: duplicate object key near '\"a\"'");
    parse_fails("[\"\xff\"]", 4,
                "invalid JSON at line 1, column 2: unable to decode byte 0xff near '\"'");
    parse_fails("[\"\xc0\xaf\"]", 5,
                "invalid JSON at line 1, column 2: unable to decode byte 0xc0 near '\"'");
    parse_fails("[\"\\ud800\"]", 10,
                "invalid JSON at line 1, column 9: invalid Unicode '\\uD800' near '\"\\ud800\"'");
    parse_fails(
        "[\"a\\u0000b\"]", 12,
        "invalid JSON at line 1, column 4: NUL character (\\u0000) is not allowed in strings");
    parse_fails("{\"a\":\n  [1.5, 2,\n   3", 21,
                "invalid JSON at line 3, column 4: ']' expected near end of file");
    parse_fails("{\"a\": tru}", 10, "invalid JSON at line 1, column 9: invalid token near 'tru'");
    parse_fails("[1.5, 2.25 3]", 13, "invalid JSON at line 1, column 12: ']' expected near '3'");
    parse_fails("[NaN]", 5, "invalid JSON at line 1, column 4: invalid token near 'NaN'");
    parse_fails("[Infinity]", 10,
                "invalid JSON at line 1, column 9: invalid token near 'Infinity'");
    parse_fails("[-Infinity]", 11,
                "invalid JSON at line 1, column 2: invalid number \"-Infinity\"");
    parse_fails("[01]", 4, "invalid JSON at line 1, column 2: invalid number \"01\"");
    parse_fails("[1.]", 4, "invalid JSON at line 1, column 2: invalid number \"1.\"");
    parse_fails("[.5]", 4, "invalid JSON at line 1, column 2: invalid token near '.'");
    parse_fails("[0x1F]", 6, "invalid JSON at line 1, column 2: invalid number \"0x1F\"");
    parse_fails("{1:2}", 5,
                "invalid JSON at line 1, column 2: object key must be a string, not \"1\"");
    parse_fails("{\"a\":1} x", 9,
                "invalid JSON at line 1, column 9: end of file expected near 'x'");
    parse_fails("", 0, "invalid JSON at line 1, column 0: unexpected token near end of file");
    /* the length counts, not where a NUL byte is */
    parse_fails("[1]\0", 4,
                "invalid JSON at line 1, column 4: end of file expected near end of file");
}

/* Parsing and dumping share nothing between threads. */
static void *
worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        core_err err = CORE_ERR_INIT;
        const char *text = "{\"latitude\":-1.2921,\"longitude\":36.8219,\"name\":\"Nairobi\"}";
        json_t *j = core_json_parse(text, strlen(text), &err);
        char *out = core_json_dump(j, NULL);
        if (!out || strcmp(out, text) != 0)
            abort();
        free(out);
        json_decref(j);
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimals_round_trip),
        cmocka_unit_test(test_number_helpers),
        cmocka_unit_test(test_build_numbers),
        cmocka_unit_test(test_dump_pretty),
        cmocka_unit_test(test_escapes_survive),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
