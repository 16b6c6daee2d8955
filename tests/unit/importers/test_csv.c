/* The CSV reader against the traps of real exports: byte-order mark, delimiter detection,
 * quoted line breaks (and the line numbers they shift), CRLF, ragged rows, codes with leading
 * zeros, Latin-1 / Windows-1252, invalid UTF-8 reported with line and column, unclosed quotes,
 * and going on after a damaged record. Files are made in memory with fmemopen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "importers/csv.h"

static imp_csv *
open_text(const char *text, size_t len, const imp_csv_opts *opts, FILE **f)
{
    *f = fmemopen((void *)text, len, "r");
    assert_non_null(*f);
    return imp_csv_open(*f, opts);
}

static void
test_bom_semicolon_quotes_crlf(void **state)
{
    static const char text[] = "\xEF\xBB\xBF"
                               "code;name;lat;lon\r\n"
                               "00123;\"Bo \"\"Govt\"\" Hospital\";7.9645;-11.7383\r\n"
                               "\r\n"
                               "00456;\"Kenema\nChildren's\";7.8;-11.2\r\n";
    FILE *f;
    imp_csv *c = open_text(text, sizeof(text) - 1, NULL, &f);
    imp_csv_row r;
    core_err err = CORE_ERR_INIT;
    (void)state;
    assert_int_equal(imp_csv_delimiter(c), ';');
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(r.nfields, 4);
    assert_string_equal(r.fields[0], "code"); /* the BOM is not part of the first header */
    assert_int_equal(r.line, 1);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_string_equal(r.fields[0], "00123"); /* codes stay text: leading zeros kept */
    assert_string_equal(r.fields[1], "Bo \"Govt\" Hospital");
    assert_string_equal(r.fields[3], "-11.7383");
    assert_int_equal(r.line, 2);
    assert_int_equal(imp_csv_next(c, &r, &err), 1); /* the empty line is no record */
    assert_string_equal(r.fields[1], "Kenema\nChildren's");
    assert_int_equal(r.line, 4);
    assert_int_equal(imp_csv_next(c, &r, &err), 0);
    imp_csv_close(c);
    fclose(f);
}

static void
test_detect_tab_and_ragged_rows(void **state)
{
    static const char text[] = "a\tb\tc\n1\t2\n3\t4\t5\t6\n7\t8\t9"; /* no final line break */
    FILE *f;
    imp_csv *c = open_text(text, sizeof(text) - 1, NULL, &f);
    imp_csv_row r;
    core_err err = CORE_ERR_INIT;
    (void)state;
    assert_int_equal(imp_csv_delimiter(c), '\t');
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(r.nfields, 3);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(r.nfields, 2); /* ragged: kept as it is, the caller reports it */
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(r.nfields, 4);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(r.nfields, 3);
    assert_string_equal(r.fields[2], "9");
    assert_int_equal(r.line, 4);
    assert_int_equal(imp_csv_next(c, &r, &err), 0);
    imp_csv_close(c);
    fclose(f);
}

static void
test_comma_inside_quotes_does_not_win_detection(void **state)
{
    static const char text[] = "\"a,b,c,d\";x\n1;2\n";
    FILE *f;
    imp_csv *c = open_text(text, sizeof(text) - 1, NULL, &f);
    imp_csv_row r;
    core_err err = CORE_ERR_INIT;
    (void)state;
    assert_int_equal(imp_csv_delimiter(c), ';');
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(r.nfields, 2);
    assert_string_equal(r.fields[0], "a,b,c,d");
    imp_csv_close(c);
    fclose(f);
}

static void
test_latin1_and_cp1252(void **state)
{
    static const char text[] = "name,price\nClinique Saint-\xC9tienne,\x80"
                               "5\n";
    imp_csv_opts o = { 0, IMP_CSV_LATIN1 };
    FILE *f;
    imp_csv *c = open_text(text, sizeof(text) - 1, &o, &f);
    imp_csv_row r;
    core_err err = CORE_ERR_INIT;
    (void)state;
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_string_equal(r.fields[0], "Clinique Saint-\xC3\x89tienne");
    assert_string_equal(r.fields[1], "\xC2\x80"
                                     "5"); /* Latin-1: U+0080 */
    imp_csv_close(c);
    fclose(f);
    o.encoding = IMP_CSV_CP1252;
    c = open_text(text, sizeof(text) - 1, &o, &f);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_string_equal(r.fields[1], "\xE2\x82\xAC"
                                     "5"); /* Windows-1252: the euro sign */
    imp_csv_close(c);
    fclose(f);
    assert_int_equal(imp_csv_encoding_parse("ISO-8859-1", &o.encoding, &err), 0);
    assert_int_equal(o.encoding, IMP_CSV_LATIN1);
    assert_int_equal(imp_csv_encoding_parse("ebcdic", &o.encoding, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.expr, "encoding");
    core_err_clear(&err);
}

static void
test_invalid_utf8_named_and_reading_goes_on(void **state)
{
    static const char text[] = "id,name\n1,ok\n2,Saint-\xC9tienne,x\n3,fine\n";
    FILE *f;
    imp_csv *c = open_text(text, sizeof(text) - 1, NULL, &f);
    imp_csv_row r;
    core_err err = CORE_ERR_INIT;
    (void)state;
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(imp_csv_next(c, &r, &err), -1);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.expr, "line 3, column 2");
    assert_non_null(strstr(err.msg, "--encoding"));
    core_err_clear(&err);
    assert_int_equal(imp_csv_next(c, &r, &err), 1); /* the next record is read */
    assert_string_equal(r.fields[1], "fine");
    assert_int_equal(r.line, 4);
    assert_int_equal(imp_csv_next(c, &r, &err), 0);
    imp_csv_close(c);
    fclose(f);
}

static void
test_unclosed_quote_and_text_after_quote(void **state)
{
    static const char bad_after[] = "a,b\n\"x\"y,2\n3,4\n";
    static const char unclosed[] = "a,b\n1,\"never closed\n2,3\n";
    FILE *f;
    imp_csv *c = open_text(bad_after, sizeof(bad_after) - 1, NULL, &f);
    imp_csv_row r;
    core_err err = CORE_ERR_INIT;
    (void)state;
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(imp_csv_next(c, &r, &err), -1);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.expr, "line 2, column 1");
    core_err_clear(&err);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_string_equal(r.fields[0], "3");
    imp_csv_close(c);
    fclose(f);
    c = open_text(unclosed, sizeof(unclosed) - 1, NULL, &f);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(imp_csv_next(c, &r, &err), -1);
    assert_int_equal(err.status, 422);
    assert_string_equal(err.expr, "line 2, column 2");
    core_err_clear(&err);
    assert_int_equal(imp_csv_next(c, &r, &err), 0);
    imp_csv_close(c);
    fclose(f);
}

static void
test_given_delimiter_and_empty_fields(void **state)
{
    static const char text[] = "a|b|c\n|x|\n";
    imp_csv_opts o = { '|', IMP_CSV_UTF8 };
    FILE *f;
    imp_csv *c = open_text(text, sizeof(text) - 1, &o, &f);
    imp_csv_row r;
    core_err err = CORE_ERR_INIT;
    (void)state;
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(r.nfields, 3);
    assert_string_equal(r.fields[0], "");
    assert_string_equal(r.fields[1], "x");
    assert_string_equal(r.fields[2], "");
    imp_csv_close(c);
    fclose(f);
}

static void
test_many_fields(void **state)
{
    char text[4000];
    size_t n = 0;
    FILE *f;
    imp_csv *c;
    imp_csv_row r;
    core_err err = CORE_ERR_INIT;
    (void)state;
    for (int i = 0; i < 600; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%d", i ? "," : "", i % 10);
    text[n++] = '\n';
    c = open_text(text, n, NULL, &f);
    assert_int_equal(imp_csv_next(c, &r, &err), 1);
    assert_int_equal(r.nfields, 600);
    assert_string_equal(r.fields[599], "9");
    imp_csv_close(c);
    fclose(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bom_semicolon_quotes_crlf),
        cmocka_unit_test(test_detect_tab_and_ragged_rows),
        cmocka_unit_test(test_comma_inside_quotes_does_not_win_detection),
        cmocka_unit_test(test_latin1_and_cp1252),
        cmocka_unit_test(test_invalid_utf8_named_and_reading_goes_on),
        cmocka_unit_test(test_unclosed_quote_and_text_after_quote),
        cmocka_unit_test(test_given_delimiter_and_empty_fields),
        cmocka_unit_test(test_many_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
