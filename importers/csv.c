/* Streaming CSV reader (importers/csv.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "importers/csv.h"

struct imp_csv {
    FILE *f;
    imp_csv_opts opts;
    unsigned char *pre; /* the first record's bytes, read ahead to detect the delimiter */
    size_t npre, ipre;
    long line;  /* line of the next byte (1-based) */
    int pushed; /* a byte given back (-2: none) */
    char *buf;  /* the record's fields, NUL-separated */
    size_t len, cap;
    size_t *starts; /* offset of each field in buf */
    char **fields;
    int nfields, cap_fields;
};

/* Windows-1252 0x80-0x9F; 0 where the code page leaves it undefined (kept as Latin-1). */
static const unsigned short cp1252[32] = { 0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020,
                                           0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0,
                                           0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D,
                                           0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A,
                                           0x0153, 0,      0x017E, 0x0178 };

int
imp_csv_encoding_parse(const char *name, imp_csv_encoding *out, core_err *err)
{
    if (!name || !strcasecmp(name, "utf-8") || !strcasecmp(name, "utf8"))
        *out = IMP_CSV_UTF8;
    else if (!strcasecmp(name, "latin-1") || !strcasecmp(name, "latin1") ||
             !strcasecmp(name, "iso-8859-1") || !strcasecmp(name, "iso8859-1"))
        *out = IMP_CSV_LATIN1;
    else if (!strcasecmp(name, "windows-1252") || !strcasecmp(name, "cp1252"))
        *out = IMP_CSV_CP1252;
    else
        return core_err_set_at(err, 400, CORE_ISSUE_VALUE, "encoding",
                               "unknown encoding \"%.40s\"; use utf-8, latin-1 or windows-1252",
                               name);
    return 0;
}

static int
raw_byte(imp_csv *c)
{
    int ch;
    if (c->pushed != -2) {
        ch = c->pushed;
        c->pushed = -2;
    } else if (c->ipre < c->npre) {
        ch = c->pre[c->ipre++];
    } else {
        ch = getc(c->f);
    }
    if (ch == '\n')
        c->line++;
    return ch;
}

static void
unget_byte(imp_csv *c, int ch)
{
    if (ch == '\n')
        c->line--;
    c->pushed = ch;
}

/* The delimiter that occurs most often outside quotes in the first record (comma if none).
 * The bytes read for it are kept in c->pre and parsed first. */
static void
detect(imp_csv *c)
{
    static const char cand[] = { ',', ';', '\t', '|' };
    size_t count[4] = { 0 }, cap = c->npre + 4096;
    int quoted = 0, ch, best = 0;

    c->pre = realloc(c->pre, cap);
    if (!c->pre)
        abort();
    for (size_t i = 0;; i++) {
        if (i < c->npre) {
            ch = c->pre[i];
        } else {
            if ((ch = getc(c->f)) == EOF)
                break;
            if (c->npre == cap) {
                if (cap >= IMP_CSV_MAX_FIELD * 4)
                    break; /* a first line this long: comma, and read on as it comes */
                c->pre = realloc(c->pre, cap *= 2);
                if (!c->pre)
                    abort();
            }
            c->pre[c->npre++] = (unsigned char)ch;
        }
        if (ch == '"')
            quoted = !quoted;
        else if (ch == '\n' && !quoted)
            break;
        else if (!quoted)
            for (int k = 0; k < 4; k++)
                if (ch == cand[k])
                    count[k]++;
    }
    for (int k = 1; k < 4; k++)
        if (count[k] > count[best])
            best = k;
    c->opts.delimiter = cand[best];
}

imp_csv *
imp_csv_open(FILE *f, const imp_csv_opts *opts)
{
    imp_csv *c = calloc(1, sizeof(*c));
    unsigned char head[3];
    size_t nh = 0;
    int ch;
    if (!c)
        abort();
    c->f = f;
    if (opts)
        c->opts = *opts;
    c->line = 1;
    c->pushed = -2;
    /* a UTF-8 byte-order mark (spreadsheets write one): skipped; other bytes are kept */
    while (nh < 3 && (ch = getc(f)) != EOF) {
        head[nh++] = (unsigned char)ch;
        if (head[nh - 1] != (unsigned char)"\xEF\xBB\xBF"[nh - 1])
            break;
    }
    if (nh == 3 && memcmp(head, "\xEF\xBB\xBF", 3) == 0)
        nh = 0;
    c->pre = malloc(nh ? nh : 1);
    if (!c->pre)
        abort();
    memcpy(c->pre, head, nh);
    c->npre = nh;
    if (!c->opts.delimiter)
        detect(c);
    return c;
}

char
imp_csv_delimiter(const imp_csv *c)
{
    return c->opts.delimiter;
}

static void
put(imp_csv *c, const char *s, size_t n)
{
    if (c->len + n + 1 > c->cap) {
        while (c->len + n + 1 > c->cap)
            c->cap = c->cap ? c->cap * 2 : 256;
        c->buf = realloc(c->buf, c->cap);
        if (!c->buf)
            abort();
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
}

/* One input byte as UTF-8 in the chosen encoding. */
static void
put_byte(imp_csv *c, int ch)
{
    char u[3];
    unsigned cp = (unsigned)ch;
    if (c->opts.encoding == IMP_CSV_UTF8 || ch < 0x80) {
        u[0] = (char)ch;
        put(c, u, 1);
        return;
    }
    if (c->opts.encoding == IMP_CSV_CP1252 && ch < 0xA0 && cp1252[ch - 0x80])
        cp = cp1252[ch - 0x80];
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        put(c, u, 2);
    } else {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        put(c, u, 3);
    }
}

/* Offset of the first invalid UTF-8 sequence in s[0..n), or n. */
static size_t
utf8_bad(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char b = s[i];
        size_t k;
        unsigned cp;
        if (b < 0x80) {
            i++;
            continue;
        }
        if (b >= 0xC2 && b <= 0xDF)
            k = 1, cp = b & 0x1F;
        else if (b >= 0xE0 && b <= 0xEF)
            k = 2, cp = b & 0x0F;
        else if (b >= 0xF0 && b <= 0xF4)
            k = 3, cp = b & 0x07;
        else
            return i;
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += k + 1;
    }
    return n;
}

/* Skip to the start of the next line. */
static void
skip_line(imp_csv *c)
{
    int ch;
    while ((ch = raw_byte(c)) != EOF && ch != '\n')
        ;
}

static int
fail(imp_csv *c, core_err *err, long line, int status, core_issue code, const char *msg)
{
    char where[64];
    snprintf(where, sizeof(where), "line %ld, column %d", line, c->nfields + 1);
    core_err_set_at(err, status, code, where, "%s", msg);
    return -1;
}

static void
end_field(imp_csv *c)
{
    if (c->nfields + 1 >= c->cap_fields) {
        c->cap_fields = c->cap_fields ? c->cap_fields * 2 : 16;
        c->starts = realloc(c->starts, sizeof(*c->starts) * (size_t)c->cap_fields);
        if (!c->starts)
            abort();
    }
    put(c, "", 1); /* NUL */
    c->nfields++;
}

int
imp_csv_next(imp_csv *c, imp_csv_row *row, core_err *err)
{
    const char d = c->opts.delimiter;
    for (;;) {
        int ch = raw_byte(c), quoted = 0, after_quote = 0;
        size_t field_start = 0;
        long line = c->line;

        if (ch == EOF)
            return ferror(c->f)
                   ? core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "the file could not be read"),
                   -1 : 0;
        if (ch == '\n')
            continue; /* an empty line is no record */
        if (ch == '\r') {
            int n = raw_byte(c);
            if (n == '\n' || n == EOF)
                continue;
            unget_byte(c, n);
        }
        line = c->line;
        c->len = 0;
        c->nfields = 0;
        if (!c->cap_fields) {
            c->cap_fields = 16;
            c->starts = malloc(sizeof(*c->starts) * 16);
            if (!c->starts)
                abort();
        }
        c->starts[0] = 0;
        for (;;) {
            if (ch == EOF) {
                if (quoted) {
                    fail(c, err, line, 422, CORE_ISSUE_STRUCTURE,
                         "a quoted field is not closed before the end of the file");
                    return -1;
                }
                break;
            }
            if (quoted) {
                if (ch == '"') {
                    int n = raw_byte(c);
                    if (n == '"') {
                        put(c, "\"", 1);
                    } else {
                        quoted = 0;
                        after_quote = 1;
                        unget_byte(c, n);
                    }
                } else {
                    put_byte(c, ch);
                }
            } else if (ch == d || ch == '\n' || ch == '\r') {
                int eol = ch != d;
                if (ch == '\r') {
                    int n = raw_byte(c);
                    if (n != '\n' && n != EOF)
                        unget_byte(c, n);
                }
                if (c->len - field_start > IMP_CSV_MAX_FIELD) {
                    fail(c, err, line, 413, CORE_ISSUE_TOO_LONG, "a field is over 1 MiB");
                    if (!eol)
                        skip_line(c);
                    return -1;
                }
                if (c->opts.encoding == IMP_CSV_UTF8 &&
                    utf8_bad((unsigned char *)c->buf + field_start, c->len - field_start) <
                        c->len - field_start) {
                    fail(c, err, line, 422, CORE_ISSUE_VALUE,
                         "invalid UTF-8 (is the file in another encoding? try --encoding "
                         "latin-1 or windows-1252)");
                    if (!eol)
                        skip_line(c);
                    return -1;
                }
                end_field(c);
                if (c->nfields >= IMP_CSV_MAX_FIELDS) {
                    fail(c, err, line, 413, CORE_ISSUE_TOO_LONG, "a record has over 1000 fields");
                    if (!eol)
                        skip_line(c);
                    return -1;
                }
                if (eol)
                    goto record;
                c->starts[c->nfields] = c->len;
                field_start = c->len;
                after_quote = 0;
            } else if (after_quote) {
                fail(c, err, line, 422, CORE_ISSUE_STRUCTURE,
                     "a character follows the closing quote of a field");
                skip_line(c);
                return -1;
            } else if (ch == '"' && c->len == field_start) {
                quoted = 1;
            } else {
                put_byte(c, ch);
            }
            if (c->len - field_start > IMP_CSV_MAX_FIELD + 8) {
                fail(c, err, line, 413, CORE_ISSUE_TOO_LONG, "a field is over 1 MiB");
                skip_line(c);
                return -1;
            }
            ch = raw_byte(c);
        }
        /* end of file after a record without a final line break */
        if (c->opts.encoding == IMP_CSV_UTF8 &&
            utf8_bad((unsigned char *)c->buf + field_start, c->len - field_start) <
                c->len - field_start)
            return fail(c, err, line, 422, CORE_ISSUE_VALUE,
                        "invalid UTF-8 (is the file in another encoding? try --encoding "
                        "latin-1 or windows-1252)");
        end_field(c);
    record:
        c->fields = realloc(c->fields, sizeof(*c->fields) * (size_t)c->nfields);
        if (!c->fields)
            abort();
        for (int i = 0; i < c->nfields; i++)
            c->fields[i] = c->buf + c->starts[i];
        row->fields = c->fields;
        row->nfields = c->nfields;
        row->line = line;
        return 1;
    }
}

void
imp_csv_close(imp_csv *c)
{
    if (!c)
        return;
    free(c->pre);
    free(c->buf);
    free(c->starts);
    free(c->fields);
    free(c);
}
