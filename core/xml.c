/* A minimal XML 1.0 + Namespaces reader for untrusted input. One forward pass over the buffer
 * (after a first pass that checks UTF-8 and the XML character set) builds an arena-owned tree;
 * nothing is ever expanded beyond the five predefined entities and character references, so
 * DTDs, entity declarations and processing instructions are refused rather than skipped, and
 * depth, node and attribute counts are capped. Also the escaping rules for writing XML. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xml.h"

#define LIT(s)     (s), (sizeof(s) - 1)
#define CAP(n)     ((int)((n) > 64 ? 64 : (n))) /* at most this much of a name in a message */
#define DUP_SLOTS  1024 /* hash slots for finding duplicate attributes: > 2 * CORE_XML_MAX_ATTRS */
#define DUP_LINEAR 16   /* up to this many attributes, compare each pair instead */

/* A namespace declaration in scope: prefix (into the input; plen 0 for the default
 * namespace) bound to uri (arena; "" undeclares the default namespace). */
typedef struct binding {
    const char *prefix;
    size_t plen;
    const char *uri;
} binding;

/* An attribute as read, before namespaces are resolved. */
typedef struct rawattr {
    size_t q, qlen, colon; /* qname offset and length in the input; colon: index in it or 0 */
    char *val;             /* decoded, arena */
    size_t vlen;
} rawattr;

typedef struct parser {
    core_arena *a;
    const char *s;
    size_t n, i;
    core_err *err;
    int line;        /* line number at offset line_off */
    size_t line_off; /* newlines before it are counted */
    size_t nodes;
    int depth;                                   /* open elements */
    core_xml_node *open[CORE_XML_MAX_DEPTH + 1]; /* open[d]: the open element at depth d */
    core_xml_node *last[CORE_XML_MAX_DEPTH + 1]; /* last child of open[d] */
    size_t marks[CORE_XML_MAX_DEPTH + 1];        /* bindings in scope before open[d] */
    binding *b;                                  /* malloc'd stack */
    size_t nb, bcap;
    char *t; /* malloc'd text being gathered */
    size_t tlen, tcap;
    int tline;
    int tpending;
    rawattr ra[CORE_XML_MAX_ATTRS];
    unsigned hash[CORE_XML_MAX_ATTRS]; /* of each attribute's name */
    unsigned short slots[DUP_SLOTS];   /* open addressing: attribute index + 1, or 0 */
} parser;

/* ---- errors and positions -------------------------------------------------------------------- */

/* Line of input offset off; moving forward costs only the bytes in between. */
static int
line_of(parser *p, size_t off)
{
    const char *s, *e;

    if (off > p->n)
        off = p->n;
    if (off < p->line_off) {
        p->line = 1;
        p->line_off = 0;
    }
    s = p->s + p->line_off;
    e = p->s + off;
    while (s < e && (s = memchr(s, '\n', (size_t)(e - s))) != NULL) {
        p->line++;
        s++;
    }
    p->line_off = off;
    return p->line;
}

static size_t utf8_decode(const unsigned char *s, size_t n, unsigned long *cp);
static int fail(parser *p, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Names quoted in messages are cut at a byte count: whatever that split becomes '?', so the
 * message stays UTF-8 (it ends up in a JSON OperationOutcome). */
static void
utf8_repair(char *msg)
{
    unsigned char *u = (unsigned char *)msg;
    size_t n = strlen(msg), i = 0, k;
    unsigned long c;

    while (i < n) {
        k = utf8_decode(u + i, n - i, &c);
        if (k == 0) {
            u[i] = '?';
            k = 1;
        }
        i += k;
    }
}

static int
fail(parser *p, size_t off, const char *fmt, ...)
{
    char msg[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_repair(msg);
    return core_err_set(p->err, 400, CORE_ISSUE_STRUCTURE, "invalid XML at line %d: %s",
                        line_of(p, off), msg);
}

/* ---- characters ------------------------------------------------------------------------------ */

/* XML 1.0 §2.2 Char. */
static int
char_ok(unsigned long c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
           (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

/* Decode one UTF-8 sequence at s[0..n) (n >= 1); returns its length, or 0 if it is not
 * well-formed (overlong, surrogate, beyond U+10FFFF, truncated). */
static size_t
utf8_decode(const unsigned char *s, size_t n, unsigned long *cp)
{
    unsigned long c = s[0];
    size_t len, k;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        c &= 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        c &= 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[k] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static size_t
utf8_encode(char *out, unsigned long c)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | c >> 6);
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | c >> 12);
        out[1] = (char)(0x80 | (c >> 6 & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | c >> 18);
    out[1] = (char)(0x80 | (c >> 12 & 0x3F));
    out[2] = (char)(0x80 | (c >> 6 & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* The whole input must be UTF-8 made of XML characters (comments included): checked once up
 * front, so the parser proper only looks at ASCII. */
static int
check_chars(parser *p)
{
    const unsigned char *s = (const unsigned char *)p->s;
    size_t i = 0, n = p->n, k;
    unsigned long c;

    while (i < n) {
        if (s[i] >= 0x20 && s[i] < 0x80) {
            i++;
            continue;
        }
        k = utf8_decode(s + i, n - i, &c);
        if (k == 0)
            return fail(p, i, "invalid UTF-8 (byte 0x%02X)", s[i]);
        if (!char_ok(c))
            return fail(p, i, "character U+%04lX is not allowed in XML", c);
        i += k;
    }
    return 0;
}

static int
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Name characters, restricted to ASCII; any non-ASCII character (already checked to be
 * well-formed UTF-8) is accepted in names, as most XML 1.0 name ranges cover them. */
static int
name_start(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || c >= 0x80;
}

static int
name_char(unsigned char c)
{
    return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static size_t
skip_ws(parser *p)
{
    size_t from = p->i;
    while (p->i < p->n && is_ws(p->s[p->i]))
        p->i++;
    return p->i - from;
}

static int
at(const parser *p, const char *lit, size_t len)
{
    return p->n - p->i >= len && memcmp(p->s + p->i, lit, len) == 0;
}

/* A QName at p->i (Namespaces in XML §4: at most one colon, not first or last). Sets *len and
 * *colon (index of the colon in the name, 0 if none) and moves past it; -1 with err set. */
static int
scan_qname(parser *p, size_t *len, size_t *colon, const char *what)
{
    size_t from = p->i;

    *colon = 0;
    if (p->i >= p->n || !name_start((unsigned char)p->s[p->i]) || p->s[p->i] == ':')
        return fail(p, from, "malformed %s", what);
    while (p->i < p->n && name_char((unsigned char)p->s[p->i])) {
        if (p->s[p->i] == ':') {
            if (*colon)
                return fail(p, from, "malformed %s \"%.*s\" (more than one colon)", what,
                            CAP(p->i - from), p->s + from);
            *colon = p->i - from;
        }
        p->i++;
    }
    *len = p->i - from;
    if (*colon && *colon + 1 == *len)
        return fail(p, from, "malformed %s \"%.*s\"", what, CAP(*len), p->s + from);
    return 0;
}

/* The reference starting at p->s[*i] ('&'): its UTF-8 into out (up to 4 bytes); *i moves
 * past the ';'. Returns the byte count, or -1 with err set. */
static int
decode_ref(parser *p, size_t *i, char out[4])
{
    static const struct {
        const char *name;
        char c;
    } predef[] = {
        { "lt", '<' }, { "gt", '>' }, { "amp", '&' }, { "quot", '"' }, { "apos", '\'' }
    };
    const char *s = p->s;
    size_t j = *i + 1, n = p->n, from = *i, k;

    if (j < n && s[j] == '#') {
        unsigned long c = 0;
        int hex = 0, digits = 0;

        j++;
        if (j < n && s[j] == 'x') {
            hex = 1;
            j++;
        }
        for (; j < n && s[j] != ';'; j++) {
            int d;
            char ch = s[j];
            if (ch >= '0' && ch <= '9')
                d = ch - '0';
            else if (hex && ch >= 'a' && ch <= 'f')
                d = ch - 'a' + 10;
            else if (hex && ch >= 'A' && ch <= 'F')
                d = ch - 'A' + 10;
            else
                return fail(p, from, "malformed character reference");
            c = c * (hex ? 16 : 10) + (unsigned long)d;
            if (c > 0x10FFFF)
                c = 0x110000; /* saturate: stays out of range, never overflows */
            digits++;
        }
        if (j >= n || digits == 0)
            return fail(p, from, "malformed character reference");
        if (!char_ok(c))
            return fail(p, from, "character reference %.*s; is not a character XML allows",
                        CAP(j - from), s + from);
        *i = j + 1;
        return (int)utf8_encode(out, c);
    }
    for (k = j; k < n && k - j < 64 && name_char((unsigned char)s[k]); k++)
        ;
    if (k == j || k >= n || s[k] != ';')
        return fail(p, from, "malformed reference: a literal & must be written &amp;");
    for (size_t e = 0; e < sizeof(predef) / sizeof(predef[0]); e++) {
        if (strlen(predef[e].name) == k - j && memcmp(s + j, predef[e].name, k - j) == 0) {
            out[0] = predef[e].c;
            *i = k + 1;
            return 1;
        }
    }
    return fail(p, from,
                "undeclared entity reference &%.*s; (only &lt; &gt; &amp; &quot; &apos; and "
                "character references are accepted)",
                (int)(k - j), s + j);
}

/* ---- text ------------------------------------------------------------------------------------ */

static int
text_put(parser *p, const char *s, size_t n)
{
    if (p->tcap - p->tlen < n + 1) {
        size_t cap = p->tcap ? p->tcap : 256;
        char *t;
        while (cap - p->tlen < n + 1)
            cap *= 2;
        t = realloc(p->t, cap);
        if (!t)
            return core_err_set(p->err, 500, CORE_ISSUE_EXCEPTION, "out of memory reading XML");
        p->t = t;
        p->tcap = cap;
    }
    memcpy(p->t + p->tlen, s, n);
    p->tlen += n;
    return 0;
}

static void
text_begin(parser *p)
{
    if (!p->tpending) {
        p->tpending = 1;
        p->tlen = 0;
        p->tline = line_of(p, p->i);
    }
}

static int
count_nodes(parser *p, size_t k)
{
    p->nodes += k;
    if (p->nodes > CORE_XML_MAX_NODES)
        return fail(p, p->i, "more than %d nodes (elements, attributes and text)",
                    CORE_XML_MAX_NODES);
    return 0;
}

static void
append_child(parser *p, core_xml_node *node)
{
    core_xml_node *parent = p->open[p->depth];

    node->parent = parent;
    if (p->last[p->depth])
        p->last[p->depth]->next = node;
    else
        parent->first = node;
    p->last[p->depth] = node;
}

/* Make the gathered text (if any) a node of the open element. */
static int
text_flush(parser *p)
{
    core_xml_node *node;
    char *copy;

    if (!p->tpending)
        return 0;
    p->tpending = 0;
    if (count_nodes(p, 1) < 0)
        return -1;
    node = core_arena_alloc(p->a, sizeof(*node));
    copy = core_arena_alloc(p->a, p->tlen + 1);
    memcpy(copy, p->t, p->tlen);
    node->kind = CORE_XML_TEXT;
    node->line = p->tline;
    node->text = copy;
    node->len = p->tlen;
    append_child(p, node);
    return 0;
}

/* Character data up to the next '<' (XML 1.0 §2.4): references decoded, CR LF and lone CR
 * read as LF (§2.11), "]]>" refused. */
static int
read_text(parser *p)
{
    const char *s = p->s;
    char ref[4];

    text_begin(p);
    while (p->i < p->n && s[p->i] != '<') {
        size_t j = p->i;
        int k;

        while (j < p->n && s[j] != '<' && s[j] != '&' && s[j] != '\r' && s[j] != ']')
            j++;
        if (j > p->i) {
            if (text_put(p, s + p->i, j - p->i) < 0)
                return -1;
            p->i = j;
            continue;
        }
        switch (s[j]) {
        case '&':
            if ((k = decode_ref(p, &p->i, ref)) < 0 || text_put(p, ref, (size_t)k) < 0)
                return -1;
            break;
        case '\r':
            if (text_put(p, "\n", 1) < 0)
                return -1;
            p->i++;
            if (p->i < p->n && s[p->i] == '\n')
                p->i++;
            break;
        default: /* ']' */
            if (at(p, LIT("]]>")))
                return fail(p, p->i, "\"]]>\" is not allowed in text (write ]]&gt;)");
            if (text_put(p, "]", 1) < 0)
                return -1;
            p->i++;
            break;
        }
    }
    return 0;
}

/* <![CDATA[ ... ]]> inside an element: its content joins the current text. */
static int
read_cdata(parser *p)
{
    size_t from = p->i, j;

    text_begin(p);
    p->i += 9;
    for (j = p->i; j + 3 <= p->n; j++) {
        if (p->s[j] == ']' && p->s[j + 1] == ']' && p->s[j + 2] == '>')
            break;
    }
    if (j + 3 > p->n)
        return fail(p, from, "unterminated CDATA section");
    while (p->i < j) {
        const char *cr = memchr(p->s + p->i, '\r', j - p->i);
        size_t stop = cr ? (size_t)(cr - p->s) : j;
        if (text_put(p, p->s + p->i, stop - p->i) < 0)
            return -1;
        p->i = stop;
        if (cr) {
            if (text_put(p, "\n", 1) < 0)
                return -1;
            p->i++;
            if (p->i < j && p->s[p->i] == '\n')
                p->i++;
        }
    }
    p->i = j + 3;
    return 0;
}

/* <!-- ... --> (XML 1.0 §2.5: "--" may not occur inside). */
static int
skip_comment(parser *p)
{
    size_t from = p->i, j;

    for (j = p->i + 4; j + 1 < p->n; j++) {
        if (p->s[j] == '-' && p->s[j + 1] == '-') {
            if (j + 2 < p->n && p->s[j + 2] == '>') {
                p->i = j + 3;
                return 0;
            }
            return fail(p, j, "\"--\" is not allowed inside a comment");
        }
    }
    return fail(p, from, "unterminated comment");
}

/* Markup this reader never accepts: DTDs, entity declarations, processing instructions. */
static int
refuse_markup(parser *p)
{
    if (at(p, LIT("<!DOCTYPE")))
        return fail(p, p->i, "DTDs (<!DOCTYPE>) are not accepted");
    if (at(p, LIT("<!ENTITY")))
        return fail(p, p->i, "entity declarations (<!ENTITY>) are not accepted");
    if (at(p, LIT("<![CDATA[")))
        return fail(p, p->i, "CDATA sections are allowed only inside the root element");
    if (at(p, LIT("<?xml")) && (p->n - p->i == 5 || is_ws(p->s[p->i + 5]) || p->s[p->i + 5] == '?'))
        return fail(p, p->i, "the XML declaration is allowed only at the very start");
    if (at(p, LIT("<?")))
        return fail(p, p->i, "processing instructions are not accepted");
    return fail(p, p->i, "malformed markup \"<!\"");
}

/* ---- XML declaration ------------------------------------------------------------------------- */

static int
eq_ascii_ci(const char *s, size_t n, const char *word)
{
    size_t k;

    if (strlen(word) != n)
        return 0;
    for (k = 0; k < n; k++) {
        char c = s[k];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c != word[k])
            return 0;
    }
    return 1;
}

/* <?xml version="1.x" encoding="UTF-8" standalone="yes|no"?> (XML 1.0 §2.8, §4.3.3). Only
 * UTF-8 input is read, so any other declared encoding is refused. */
static int
read_decl(parser *p)
{
    static const char *const names[] = { "version", "encoding", "standalone" };
    size_t from = p->i;
    int next = 0;

    p->i += 5;
    for (;;) {
        size_t ws = skip_ws(p), nm, vs, ve;
        int which;
        char q;

        if (at(p, LIT("?>"))) {
            p->i += 2;
            break;
        }
        if (!ws || p->i >= p->n)
            return fail(p, from, "malformed XML declaration");
        nm = p->i;
        while (p->i < p->n && p->s[p->i] >= 'a' && p->s[p->i] <= 'z')
            p->i++;
        for (which = next; which < 3; which++) {
            if (strlen(names[which]) == p->i - nm &&
                memcmp(p->s + nm, names[which], p->i - nm) == 0)
                break;
        }
        if (which == 3 || (which > 0 && next == 0))
            return fail(p, from, "malformed XML declaration");
        next = which + 1;
        skip_ws(p);
        if (p->i >= p->n || p->s[p->i] != '=')
            return fail(p, from, "malformed XML declaration");
        p->i++;
        skip_ws(p);
        if (p->i >= p->n || (p->s[p->i] != '"' && p->s[p->i] != '\''))
            return fail(p, from, "malformed XML declaration");
        q = p->s[p->i++];
        vs = p->i;
        while (p->i < p->n && p->s[p->i] != q && p->s[p->i] != '<')
            p->i++;
        if (p->i >= p->n || p->s[p->i] != q)
            return fail(p, from, "malformed XML declaration");
        ve = p->i++;
        if (which == 0) {
            size_t k = vs + 2;
            if (ve - vs < 3 || memcmp(p->s + vs, "1.", 2) != 0)
                return fail(p, from, "XML version must be 1.0 (got \"%.*s\")", CAP(ve - vs),
                            p->s + vs);
            for (; k < ve; k++)
                if (p->s[k] < '0' || p->s[k] > '9')
                    return fail(p, from, "XML version must be 1.0 (got \"%.*s\")", CAP(ve - vs),
                                p->s + vs);
        } else if (which == 1) {
            if (!eq_ascii_ci(p->s + vs, ve - vs, "UTF-8"))
                return fail(p, from, "encoding must be UTF-8 (got \"%.*s\")", CAP(ve - vs),
                            p->s + vs);
        } else if (!(ve - vs == 3 && memcmp(p->s + vs, "yes", 3) == 0) &&
                   !(ve - vs == 2 && memcmp(p->s + vs, "no", 2) == 0)) {
            return fail(p, from, "standalone must be \"yes\" or \"no\"");
        }
    }
    if (next == 0)
        return fail(p, from, "the XML declaration must give the version");
    return 0;
}

/* ---- elements -------------------------------------------------------------------------------- */

static char *
arena_strndup(core_arena *a, const char *s, size_t n)
{
    char *d = core_arena_alloc(a, n + 1);
    memcpy(d, s, n);
    return d;
}

/* The namespace bound to prefix s[0..len) (len 0: the default namespace), or NULL. */
static const char *
lookup_ns(const parser *p, const char *s, size_t len)
{
    size_t k;

    if (len == 3 && memcmp(s, "xml", 3) == 0)
        return CORE_XML_NS_XML;
    for (k = p->nb; k-- > 0;) {
        if (p->b[k].plen == len && memcmp(p->b[k].prefix, s, len) == 0)
            return p->b[k].uri;
    }
    return len == 0 ? "" : NULL;
}

static int
push_binding(parser *p, const char *prefix, size_t plen, const char *uri)
{
    /* lookups scan the declarations in scope, so they must stay few */
    if (p->nb == CORE_XML_MAX_NAMESPACES)
        return fail(p, p->i, "more than %d namespace declarations in scope",
                    CORE_XML_MAX_NAMESPACES);
    if (p->nb == p->bcap) {
        size_t cap = p->bcap ? p->bcap * 2 : 16;
        binding *b = realloc(p->b, cap * sizeof(*b));
        if (!b)
            return core_err_set(p->err, 500, CORE_ISSUE_EXCEPTION, "out of memory reading XML");
        p->b = b;
        p->bcap = cap;
    }
    p->b[p->nb].prefix = prefix;
    p->b[p->nb].plen = plen;
    p->b[p->nb].uri = uri;
    p->nb++;
    return 0;
}

/* One attribute value between quotes at p->i, decoded into the arena (XML 1.0 §3.3.3: each
 * literal tab, LF, CR or CR LF becomes a space; references are decoded after that). */
static int
read_attr_value(parser *p, rawattr *ra)
{
    const char *s = p->s, *close;
    size_t vs, ve, k, w = 0;
    char q;
    int r;

    if (p->i >= p->n || (s[p->i] != '"' && s[p->i] != '\''))
        return fail(p, p->i, "attribute value must be quoted");
    q = s[p->i++];
    vs = p->i;
    close = memchr(s + vs, q, p->n - vs);
    if (!close)
        return fail(p, vs, "unterminated attribute value");
    ve = (size_t)(close - s);
    if (memchr(s + vs, '<', ve - vs))
        return fail(p, vs, "\"<\" is not allowed in an attribute value (write &lt;)");
    ra->val = core_arena_alloc(p->a, ve - vs + 1);
    for (k = vs; k < ve;) {
        char c = s[k];
        if (c == '&') {
            if ((r = decode_ref(p, &k, ra->val + w)) < 0)
                return -1;
            w += (size_t)r;
        } else if (c == '\r' || c == '\n' || c == '\t') {
            ra->val[w++] = ' ';
            k++;
            if (c == '\r' && k < ve && s[k] == '\n')
                k++;
        } else {
            ra->val[w++] = c;
            k++;
        }
    }
    ra->vlen = w;
    p->i = ve + 1;
    return 0;
}

/* The namespace declarations among the element's attributes (Namespaces in XML §3). */
static int
declare_namespaces(parser *p, size_t nattr)
{
    size_t k;

    for (k = 0; k < nattr; k++) {
        const rawattr *ra = &p->ra[k];
        const char *q = p->s + ra->q;
        const char *prefix;
        size_t plen;

        if (ra->colon == 5 && memcmp(q, "xmlns", 5) == 0) {
            prefix = q + 6;
            plen = ra->qlen - 6;
            if (ra->vlen == 0)
                return fail(p, ra->q, "namespace prefix \"%.*s\" must not be undeclared", CAP(plen),
                            prefix);
        } else if (ra->colon == 0 && ra->qlen == 5 && memcmp(q, "xmlns", 5) == 0) {
            prefix = q;
            plen = 0;
        } else {
            continue;
        }
        if ((plen == 5 && memcmp(prefix, "xmlns", 5) == 0) ||
            strcmp(ra->val, CORE_XML_NS_XMLNS) == 0 ||
            ((plen == 3 && memcmp(prefix, "xml", 3) == 0) !=
             (strcmp(ra->val, CORE_XML_NS_XML) == 0)))
            return fail(p, ra->q, "reserved namespace prefix or name in \"%.*s\"", CAP(ra->qlen),
                        q);
        if (push_binding(p, prefix, plen, ra->val) < 0)
            return -1;
    }
    return 0;
}

/* FNV-1a, continuing from h. */
static unsigned
hash_bytes(unsigned h, const char *s, size_t n)
{
    while (n--)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static int
same_qname(const parser *p, const core_xml_node *el, size_t a, size_t b)
{
    (void)el;
    return p->ra[a].qlen == p->ra[b].qlen &&
           memcmp(p->s + p->ra[a].q, p->s + p->ra[b].q, p->ra[a].qlen) == 0;
}

/* Same namespace and local name, for namespaced attributes only. */
static int
same_expanded(const parser *p, const core_xml_node *el, size_t a, size_t b)
{
    (void)p;
    return el->attrs[a].ns[0] && strcmp(el->attrs[a].ns, el->attrs[b].ns) == 0 &&
           strcmp(el->attrs[a].local, el->attrs[b].local) == 0;
}

/* The index of the first of n attributes that equals an earlier one (p->hash[] holds their
 * hashes), or n. Linear in n: hostile input may give every element 256 attributes. */
static size_t
find_duplicate(parser *p,
               size_t n,
               int (*same)(const parser *, const core_xml_node *, size_t, size_t),
               const core_xml_node *el)
{
    size_t k, j, pos;

    if (n <= DUP_LINEAR) {
        for (k = 1; k < n; k++)
            for (j = 0; j < k; j++)
                if (p->hash[j] == p->hash[k] && same(p, el, j, k))
                    return k;
        return n;
    }
    memset(p->slots, 0, sizeof(p->slots));
    for (k = 0; k < n; k++) {
        for (pos = p->hash[k] & (DUP_SLOTS - 1); p->slots[pos]; pos = (pos + 1) & (DUP_SLOTS - 1)) {
            j = p->slots[pos] - 1u;
            if (p->hash[j] == p->hash[k] && same(p, el, j, k))
                return k;
        }
        p->slots[pos] = (unsigned short)(k + 1);
    }
    return n;
}

/* The start tag at p->i ('<' then a name). Appends the element to the open one (or makes it
 * the root); opens it unless it is empty. */
static int
read_start_tag(parser *p, core_xml_node **root)
{
    const char *s = p->s;
    size_t start = p->i, qlen, colon, nattr = 0, k, j, mark = p->nb;
    core_xml_node *el;
    const char *ns;
    int empty = 0;

    p->i++;
    if (scan_qname(p, &qlen, &colon, "element name") < 0)
        return -1;
    for (;;) {
        size_t ws = skip_ws(p);
        rawattr *ra;

        if (p->i >= p->n)
            return fail(p, start, "unterminated start tag <%.*s>", CAP(qlen), s + start + 1);
        if (s[p->i] == '>') {
            p->i++;
            break;
        }
        if (s[p->i] == '/') {
            if (p->i + 1 < p->n && s[p->i + 1] == '>') {
                p->i += 2;
                empty = 1;
                break;
            }
            return fail(p, p->i, "malformed start tag <%.*s>", CAP(qlen), s + start + 1);
        }
        if (!ws)
            return fail(p, p->i, "malformed start tag <%.*s> (attributes need a space before)",
                        CAP(qlen), s + start + 1);
        if (nattr == CORE_XML_MAX_ATTRS)
            return fail(p, start, "element <%.*s> has more than %d attributes", CAP(qlen),
                        s + start + 1, CORE_XML_MAX_ATTRS);
        ra = &p->ra[nattr];
        ra->q = p->i;
        if (scan_qname(p, &ra->qlen, &ra->colon, "attribute name") < 0)
            return -1;
        skip_ws(p);
        if (p->i >= p->n || s[p->i] != '=')
            return fail(p, ra->q, "attribute \"%.*s\" has no value", CAP(ra->qlen), s + ra->q);
        p->i++;
        skip_ws(p);
        if (read_attr_value(p, ra) < 0)
            return -1;
        nattr++;
    }
    if (p->depth >= CORE_XML_MAX_DEPTH)
        return fail(p, start, "elements are nested more than %d levels deep", CORE_XML_MAX_DEPTH);
    for (k = 0; k < nattr; k++)
        p->hash[k] = hash_bytes(2166136261u, s + p->ra[k].q, p->ra[k].qlen);
    if ((j = find_duplicate(p, nattr, same_qname, NULL)) < nattr)
        return fail(p, p->ra[j].q, "duplicate attribute \"%.*s\"", CAP(p->ra[j].qlen),
                    s + p->ra[j].q);
    if (count_nodes(p, 1 + nattr) < 0 || declare_namespaces(p, nattr) < 0)
        return -1;

    el = core_arena_alloc(p->a, sizeof(*el));
    el->kind = CORE_XML_ELEMENT;
    el->line = line_of(p, start);
    el->start = start;
    el->qname = arena_strndup(p->a, s + start + 1, qlen);
    el->local = colon ? el->qname + colon + 1 : el->qname;
    if (colon && colon == 5 && memcmp(el->qname, "xmlns", 5) == 0)
        return fail(p, start, "element names must not use the prefix \"xmlns\"");
    ns = lookup_ns(p, el->qname, colon);
    if (!ns)
        return fail(p, start, "undeclared namespace prefix \"%.*s\"", CAP(colon), el->qname);
    el->ns = ns;
    el->nattrs = nattr;
    el->attrs = nattr ? core_arena_alloc(p->a, nattr * sizeof(core_xml_attr)) : NULL;
    for (k = 0; k < nattr; k++) {
        const rawattr *ra = &p->ra[k];
        core_xml_attr *at_ = &el->attrs[k];
        char *q = arena_strndup(p->a, s + ra->q, ra->qlen);

        at_->qname = q;
        at_->local = ra->colon ? q + ra->colon + 1 : q;
        at_->value = ra->val;
        at_->len = ra->vlen;
        if ((ra->colon == 5 && memcmp(q, "xmlns", 5) == 0) || strcmp(q, "xmlns") == 0) {
            at_->ns = CORE_XML_NS_XMLNS;
        } else if (ra->colon == 0) {
            at_->ns = "";
        } else if (!(at_->ns = lookup_ns(p, q, ra->colon))) {
            return fail(p, ra->q, "undeclared namespace prefix \"%.*s\"", CAP(ra->colon), q);
        }
    }
    /* Namespaces §6.3: no two attributes with the same expanded name (the qnames differ) */
    for (k = 0; k < nattr; k++) {
        const core_xml_attr *at_ = &el->attrs[k];
        p->hash[k] = hash_bytes(hash_bytes(2166136261u, at_->ns, strlen(at_->ns)), at_->local,
                                strlen(at_->local));
    }
    if ((j = find_duplicate(p, nattr, same_expanded, el)) < nattr) {
        for (k = 0; !same_expanded(p, el, k, j); k++)
            ;
        return fail(p, p->ra[j].q, "duplicate attribute \"%.64s\" (same namespace as \"%.64s\")",
                    el->attrs[j].qname, el->attrs[k].qname);
    }

    if (p->depth == 0)
        *root = el;
    else
        append_child(p, el);
    if (empty) {
        el->end = p->i;
        p->nb = mark;
        return 0;
    }
    p->depth++;
    p->open[p->depth] = el;
    p->last[p->depth] = NULL;
    p->marks[p->depth] = mark;
    return 0;
}

static int
read_end_tag(parser *p)
{
    core_xml_node *el = p->open[p->depth];
    size_t from = p->i, qlen, colon, want = strlen(el->qname);

    p->i += 2;
    if (scan_qname(p, &qlen, &colon, "end tag") < 0)
        return -1;
    if (qlen != want || memcmp(p->s + from + 2, el->qname, qlen) != 0)
        return fail(p, from, "mismatched end tag: expected </%.64s> (got </%.*s>)", el->qname,
                    CAP(qlen), p->s + from + 2);
    skip_ws(p);
    if (p->i >= p->n || p->s[p->i] != '>')
        return fail(p, from, "malformed end tag </%.64s>", el->qname);
    p->i++;
    el->end = p->i;
    p->nb = p->marks[p->depth];
    p->depth--;
    return 0;
}

/* Comments and whitespace before or after the root element. Stops at the root's '<' (before)
 * or at the end (after). */
static int
read_misc(parser *p, int after_root)
{
    for (;;) {
        skip_ws(p);
        if (p->i >= p->n) {
            if (after_root)
                return 0;
            return fail(p, p->i, "no root element");
        }
        if (p->s[p->i] != '<')
            return fail(p, p->i, "text is not allowed outside the root element");
        if (at(p, LIT("<!--"))) {
            if (skip_comment(p) < 0)
                return -1;
            continue;
        }
        if (at(p, LIT("<!")) || at(p, LIT("<?")))
            return refuse_markup(p);
        if (after_root)
            return fail(p, p->i, "only one root element is allowed");
        return 0;
    }
}

static int
read_document(parser *p, core_xml_node **root)
{
    if (check_chars(p) < 0)
        return -1;
    if (at(p, LIT("\xEF\xBB\xBF")))
        p->i = 3;
    if (at(p, LIT("<?xml")) && p->n - p->i > 5 && is_ws(p->s[p->i + 5]) && read_decl(p) < 0)
        return -1;
    if (read_misc(p, 0) < 0 || read_start_tag(p, root) < 0)
        return -1;
    while (p->depth > 0) {
        if (p->i >= p->n)
            return fail(p, p->i, "unexpected end of input: <%.64s> is not closed",
                        p->open[p->depth]->qname);
        if (p->s[p->i] != '<') {
            if (read_text(p) < 0)
                return -1;
        } else if (at(p, LIT("</"))) {
            if (text_flush(p) < 0 || read_end_tag(p) < 0)
                return -1;
        } else if (at(p, LIT("<!--"))) {
            if (skip_comment(p) < 0)
                return -1;
        } else if (at(p, LIT("<![CDATA["))) {
            if (read_cdata(p) < 0)
                return -1;
        } else if (at(p, LIT("<!")) || at(p, LIT("<?"))) {
            return refuse_markup(p);
        } else {
            if (text_flush(p) < 0 || read_start_tag(p, root) < 0)
                return -1;
        }
    }
    return read_misc(p, 1);
}

const core_xml_node *
core_xml_parse(core_arena *a, const char *xml, size_t len, core_err *err)
{
    parser *p = malloc(sizeof(parser));
    core_xml_node *root = NULL;
    int rc;

    if (!p) {
        core_err_set(err, 500, CORE_ISSUE_EXCEPTION, "out of memory reading XML");
        return NULL;
    }
    memset(p, 0, offsetof(parser, ra));
    p->a = a;
    p->s = xml ? xml : "";
    p->n = xml ? len : 0;
    p->err = err;
    p->line = 1;
    rc = read_document(p, &root);
    free(p->b);
    free(p->t);
    free(p);
    return rc < 0 ? NULL : root;
}

const core_xml_attr *
core_xml_attr_find(const core_xml_node *el, const char *ns, const char *local)
{
    size_t k;

    for (k = 0; el && k < el->nattrs; k++) {
        if (strcmp(el->attrs[k].local, local) == 0 && strcmp(el->attrs[k].ns, ns) == 0)
            return &el->attrs[k];
    }
    return NULL;
}

/* ---- writing --------------------------------------------------------------------------------- */

void
core_xml_put(core_xml_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 1024;
        char *np;
        while (cap - b->len < n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static int
put_escaped(core_xml_buf *b, const char *s, size_t n, int attr)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, was = b->len;

    while (i < n) {
        size_t j = i, k;
        unsigned long c;
        char ref[16];

        /* the run of bytes that need nothing */
        while (j < n && u[j] >= 0x20 && u[j] < 0x7F && u[j] != '&' && u[j] != '<' && u[j] != '>' &&
               !(attr && u[j] == '"'))
            j++;
        if (j > i) {
            core_xml_put(b, s + i, j - i);
            i = j;
            continue;
        }
        switch (u[i]) {
        case '&':
            core_xml_put(b, LIT("&amp;"));
            i++;
            continue;
        case '<':
            core_xml_put(b, LIT("&lt;"));
            i++;
            continue;
        case '>':
            core_xml_put(b, LIT("&gt;"));
            i++;
            continue;
        case '"':
            core_xml_put(b, LIT("&quot;"));
            i++;
            continue;
        case '\t':
        case '\n':
            if (attr) {
                core_xml_put(b, u[i] == '\t' ? "&#9;" : "&#10;", u[i] == '\t' ? 4 : 5);
            } else {
                core_xml_put(b, s + i, 1);
            }
            i++;
            continue;
        case '\r':
            core_xml_put(b, LIT("&#13;"));
            i++;
            continue;
        default:
            break;
        }
        k = utf8_decode(u + i, n - i, &c);
        if (k == 0 || !char_ok(c)) {
            b->len = was;
            return -1;
        }
        if (c == 0x7F || (c >= 0x80 && c <= 0x9F)) {
            snprintf(ref, sizeof(ref), "&#%lu;", c);
            core_xml_put(b, ref, strlen(ref));
        } else {
            core_xml_put(b, s + i, k);
        }
        i += k;
    }
    return 0;
}

int
core_xml_put_text(core_xml_buf *b, const char *s, size_t n)
{
    return put_escaped(b, s, n, 0);
}

int
core_xml_put_attr(core_xml_buf *b, const char *s, size_t n)
{
    return put_escaped(b, s, n, 1);
}

char *
core_xml_buf_take(core_xml_buf *b, size_t *len_out)
{
    char *s;

    if (!b->failed && !b->p)
        core_xml_put(b, "", 0);
    if (b->failed) {
        core_xml_buf_clear(b);
        return NULL;
    }
    s = b->p;
    s[b->len] = '\0';
    if (len_out)
        *len_out = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return s;
}

void
core_xml_buf_clear(core_xml_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->failed = 0;
}
