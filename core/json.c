/* JSON that keeps FHIR decimals: jansson parses numbers into doubles, but FHIR requires a
 * decimal's text ("8.4800") to survive a round trip. Before jansson sees the input, a small lexer
 * rewrites every number token into the JSON string "\u0000N<text>" (and refuses what jansson
 * would otherwise let through: nesting beyond CORE_JSON_MAX_DEPTH, NUL escapes, bad numbers);
 * when dumping, those strings are written back as the bare number text. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* The marker a number string starts with: NUL then 'N'. As JSON text it is `"\u0000N`. */
#define MARK_JSON     "\"\\u0000N"
#define MARK_JSON_LEN 8

#define STR_(x) #x
#define STR(x)  STR_(x)

/* A growable malloc'd byte buffer. */
typedef struct buf {
    char *p;
    size_t len;
    size_t cap;
    int oom;
} buf;

static int
buf_reserve(buf *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->oom)
        return -1;
    if (b->len + more + 1 <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void
buf_put(buf *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* ---- parsing ------------------------------------------------------------------------------ */

static int
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Characters a number token is made of, for finding its end. Letters are included so that
 * "1abc", "0x10" or "-Infinity" are reported whole, as one bad number. */
static int
is_number_char(char c)
{
    return is_digit(c) || c == '-' || c == '+' || c == '.' || (c >= 'a' && c <= 'z') ||
           (c >= 'A' && c <= 'Z');
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (also FHIR's decimal regex). */
static int
number_valid(const char *s, size_t n)
{
    size_t i = 0;

    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && is_digit(s[i]))
            i++;
    } else {
        return 0;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return 0;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i == n;
}

/* Line and column (1-based, counted in characters as jansson does) of input offset off. */
static void
line_col(const char *in, size_t off, int *line, int *col)
{
    size_t i;

    *line = 1;
    *col = 0;
    for (i = 0; i < off; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\n') {
            (*line)++;
            *col = 0;
        } else if ((c & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

/* Report an error at input offset off (the offending character, counted as read). */
static void
fail_at(core_err *err, const char *in, size_t off, const char *what, const char *tok, int toklen)
{
    int line, col;

    line_col(in, off + 1, &line, &col);
    if (tok)
        core_err_set(err, 400, CORE_ISSUE_STRUCTURE,
                     "invalid JSON at line %d, column %d: %s \"%.*s\"", line, col, what, toklen,
                     tok);
    else
        core_err_set(err, 400, CORE_ISSUE_STRUCTURE, "invalid JSON at line %d, column %d: %s", line,
                     col, what);
}

/* Rewrite in[0..len) into out with each number token wrapped as "\u0000N<text>". Outside
 * strings only structure characters, literals and numbers can occur; anything else is copied
 * and left for jansson to refuse. Returns 0, or -1 with err set. */
static int
rewrite_numbers(buf *out, const char *in, size_t len, core_err *err)
{
    /* Open containers ('{' or '['); deeper than CORE_JSON_MAX_DEPTH is refused, so it fits. */
    char stack[CORE_JSON_MAX_DEPTH + 1];
    int depth = 0;
    int expect_key = 0; /* just after '{' or after ',' inside an object */
    size_t i = 0, start;

    while (i < len) {
        char c = in[i];
        if (c == '"') {
            start = i++;
            while (i < len && in[i] != '"') {
                if (in[i] == '\\' && i + 1 < len) {
                    /* FHIR strings may not hold NUL, and NUL marks our number strings. */
                    if (in[i + 1] == 'u' && i + 5 < len && memcmp(in + i + 2, "0000", 4) == 0) {
                        fail_at(err, in, i, "NUL character (\\u0000) is not allowed in strings",
                                NULL, 0);
                        return -1;
                    }
                    i++;
                }
                i++;
            }
            if (i < len)
                i++;
            buf_put(out, in + start, i - start);
            expect_key = 0;
        } else if (c == '-' || is_digit(c)) {
            start = i;
            while (i < len && is_number_char(in[i]))
                i++;
            if (expect_key) {
                fail_at(err, in, start, "object key must be a string, not", in + start,
                        (int)(i - start > 40 ? 40 : i - start));
                return -1;
            }
            if (!number_valid(in + start, i - start)) {
                fail_at(err, in, start, "invalid number", in + start,
                        (int)(i - start > 40 ? 40 : i - start));
                return -1;
            }
            buf_put(out, MARK_JSON, MARK_JSON_LEN);
            buf_put(out, in + start, i - start);
            buf_put(out, "\"", 1);
        } else {
            if (c == '{' || c == '[') {
                if (depth >= CORE_JSON_MAX_DEPTH) {
                    fail_at(err, in, i, "nesting deeper than " STR(CORE_JSON_MAX_DEPTH) " levels",
                            NULL, 0);
                    return -1;
                }
                stack[depth++] = c;
                expect_key = c == '{';
            } else if (c == '}' || c == ']') {
                if (depth > 0)
                    depth--;
                expect_key = 0;
            } else if (c == ',') {
                expect_key = depth > 0 && stack[depth - 1] == '{';
            } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                expect_key = 0;
            }
            buf_put(out, &c, 1);
            i++;
        }
    }
    if (out->oom) {
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory parsing JSON");
        return -1;
    }
    return 0;
}

/* Map an offset in the rewritten text back to the input: walk both, skipping the 8 bytes of
 * each marker and the closing quote of each wrapped number. */
static size_t
input_offset(const char *in, size_t len, const char *out, size_t out_len, size_t pos)
{
    size_t i = 0, o = 0;
    int in_number = 0;

    while (o < pos && o < out_len) {
        if (in_number) {
            if (i < len && is_number_char(in[i])) {
                i++;
                o++;
            } else {
                in_number = 0;
                o++; /* closing quote */
            }
        } else if (i < len && (in[i] == '-' || is_digit(in[i])) && out[o] == '"') {
            in_number = 1;
            o += MARK_JSON_LEN;
        } else {
            /* Inside strings the texts are identical, so byte-by-byte is exact there too; a
             * digit in a string is matched by the same digit, never by a quote. */
            i++;
            o++;
        }
    }
    return i < len ? i : len;
}

/* Copy jansson's message, turning `"\u0000N1.5"` (a wrapped number it quotes) back into 1.5. */
static void
clean_message(char *dst, size_t cap, const char *src)
{
    size_t d = 0;

    while (*src && d + 1 < cap) {
        if (strncmp(src, MARK_JSON, MARK_JSON_LEN) == 0) {
            src += MARK_JSON_LEN;
            while (*src && *src != '"' && d + 1 < cap)
                dst[d++] = *src++;
            if (*src == '"')
                src++;
            continue;
        }
        dst[d++] = *src++;
    }
    dst[d] = '\0';
}

json_t *
core_json_parse(const char *buf_in, size_t len, core_err *err)
{
    buf out = { 0 };
    json_error_t jerr;
    json_t *j;

    if (buf_reserve(&out, len + len / 4 + 16) < 0) {
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory parsing JSON");
        return NULL;
    }
    out.p[0] = '\0';
    if (rewrite_numbers(&out, buf_in, len, err) < 0) {
        free(out.p);
        return NULL;
    }
    /* JSON_ALLOW_NUL for the markers; jansson refuses invalid UTF-8 and NUL in keys itself. */
    j = json_loadb(out.p, out.len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY,
                   &jerr);
    if (!j) {
        char msg[JSON_ERROR_TEXT_LENGTH];
        int line, col;
        size_t pos = jerr.position < 0 ? 0 : (size_t)jerr.position;
        size_t off = input_offset(buf_in, len, out.p, out.len, pos);

        line_col(buf_in, off, &line, &col);
        clean_message(msg, sizeof(msg), jerr.text);
        core_err_set(err, 400, CORE_ISSUE_STRUCTURE, "invalid JSON at line %d, column %d: %s", line,
                     col, msg);
    }
    free(out.p);
    return j;
}

/* ---- dumping ------------------------------------------------------------------------------ */

static int
dump_cb(const char *s, size_t n, void *payload)
{
    buf *b = payload;
    buf_put(b, s, n);
    return b->oom ? -1 : 0;
}

/* In place: `"\u0000N<text>"` -> `<text>`. Only a string's opening quote can be followed by
 * the marker (a closing quote is followed by , : ] } or space; an escaped one is inside a
 * string, and an escaped NUL there would not be preceded by a quote), but walk the strings
 * properly anyway so that content is never misread. */
static size_t
unwrap_numbers(char *s, size_t n)
{
    size_t r = 0, w = 0;

    while (r < n) {
        if (s[r] != '"') {
            s[w++] = s[r++];
            continue;
        }
        if (n - r >= MARK_JSON_LEN && memcmp(s + r, MARK_JSON, MARK_JSON_LEN) == 0) {
            r += MARK_JSON_LEN;
            while (r < n && s[r] != '"')
                s[w++] = s[r++];
            r++; /* closing quote */
            continue;
        }
        s[w++] = s[r++]; /* opening quote of an ordinary string: copy it through */
        while (r < n && s[r] != '"') {
            if (s[r] == '\\' && r + 1 < n)
                s[w++] = s[r++];
            s[w++] = s[r++];
        }
        if (r < n)
            s[w++] = s[r++];
    }
    s[w] = '\0';
    return w;
}

static char *
dump(const json_t *j, size_t flags, size_t *len_out)
{
    buf b = { 0 };

    if (!j || buf_reserve(&b, 1024) < 0)
        return NULL;
    if (json_dump_callback(j, dump_cb, &b, flags | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY) != 0 ||
        b.oom) {
        free(b.p);
        return NULL;
    }
    b.p[b.len] = '\0';
    b.len = unwrap_numbers(b.p, b.len);
    if (len_out)
        *len_out = b.len;
    return b.p;
}

char *
core_json_dump(const json_t *j, size_t *len_out)
{
    return dump(j, JSON_COMPACT, len_out);
}

char *
core_json_dump_pretty(const json_t *j, int indent, size_t *len_out)
{
    if (indent < 1)
        indent = 1;
    if (indent > 8)
        indent = 8;
    return dump(j, JSON_INDENT(indent), len_out);
}

/* ---- number nodes ------------------------------------------------------------------------- */

int
core_json_is_number(const json_t *j)
{
    const char *s;

    if (!json_is_string(j) || json_string_length(j) < 2)
        return 0;
    s = json_string_value(j);
    return s[0] == '\0' && s[1] == 'N';
}

int
core_json_is_text(const json_t *j)
{
    return json_is_string(j) && !core_json_is_number(j);
}

const char *
core_json_number_text(const json_t *j)
{
    return core_json_is_number(j) ? json_string_value(j) + 2 : NULL;
}

/* strtod is locale-dependent; the server never calls setlocale, so "." is the decimal point.
 * Underflow (1e-400) yields the nearest double (0 or subnormal) and counts as fitting. */
int
core_json_number_get(const json_t *j, double *out)
{
    const char *text = core_json_number_text(j);
    char *end;
    double v;

    if (!text)
        return -1;
    errno = 0;
    v = strtod(text, &end);
    if (*end != '\0' || end == text || (errno == ERANGE && isinf(v)))
        return -1;
    *out = v;
    return 0;
}

json_t *
core_json_number(const char *text)
{
    char small[64];
    size_t n = strlen(text);
    char *s = n + 2 <= sizeof(small) ? small : malloc(n + 2);
    json_t *j;

    if (!s)
        return NULL;
    s[0] = '\0';
    s[1] = 'N';
    memcpy(s + 2, text, n);
    j = json_stringn_nocheck(s, n + 2);
    if (s != small)
        free(s);
    return j;
}

json_t *
core_json_integer(long long v)
{
    char text[32];

    snprintf(text, sizeof(text), "%lld", v);
    return core_json_number(text);
}

/* The shortest "%.<p>g" text that reads back as v. If p digits round-trip, so do p+1 (the
 * nearest p+1-digit decimal is at least as close), so p can be found by bisection. Magnitudes
 * in [1e-4, 1e15) are printed without exponent ("100", not "1e+02"). NaN and infinities have
 * no JSON form: NULL. */
json_t *
core_json_real(double v)
{
    char text[400]; /* "%.17g" needs ~25 bytes; sized so the compiler sees no truncation */
    int lo = 1, hi = DBL_DECIMAL_DIG, p;

    if (!isfinite(v))
        return NULL;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(text, sizeof(text), "%.*g", mid, v);
        if (strtod(text, NULL) == v)
            hi = mid;
        else
            lo = mid + 1;
    }
    p = lo;
    if (v != 0) {
        double mag = fabs(v);
        if (mag >= 1e-4 && mag < 1e15) {
            int digits = (int)floor(log10(mag)) + 1; /* digits before the decimal point */
            if (digits > p)
                p = digits;
        }
    }
    snprintf(text, sizeof(text), "%.*g", p, v);
    return core_json_number(text);
}
