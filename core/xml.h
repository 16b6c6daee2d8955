/* core/xml: a small, safe, non-validating XML 1.0 reader (with namespaces) that builds an
 * arena-owned tree, and a growable output buffer with the escaping rules for writing XML.
 * No DTDs, entity declarations or processing instructions are ever read: only the five
 * predefined entities and character references are decoded. Thread-safe, no globals. */
#ifndef CORE_XML_H
#define CORE_XML_H

#include "core/core.h"

#define CORE_XML_MAX_DEPTH      128     /* element nesting */
#define CORE_XML_MAX_NODES      1000000 /* elements + attributes + text nodes per document */
#define CORE_XML_MAX_ATTRS      256     /* attributes per element, xmlns ones included */
#define CORE_XML_MAX_NAMESPACES 64      /* namespace declarations in scope at once */

#define CORE_XML_NS_XML   "http://www.w3.org/XML/1998/namespace"
#define CORE_XML_NS_XMLNS "http://www.w3.org/2000/xmlns/"

typedef struct core_xml_attr {
    const char *qname; /* as written: "value", "xml:lang", "xmlns", "xmlns:h" */
    const char *local; /* without the prefix: "value", "lang", "xmlns", "h" */
    const char *ns;    /* namespace URI; "" if unprefixed, CORE_XML_NS_XMLNS for declarations */
    const char *value; /* references decoded, whitespace normalised (XML 1.0 §3.3.3) */
    size_t len;        /* strlen(value) */
} core_xml_attr;

typedef enum core_xml_kind { CORE_XML_ELEMENT, CORE_XML_TEXT } core_xml_kind;

typedef struct core_xml_node core_xml_node;
struct core_xml_node {
    core_xml_kind kind;
    int line;              /* 1-based line where the node starts */
    core_xml_node *parent; /* NULL for the root element */
    core_xml_node *next;   /* next sibling, document order */
    core_xml_node *first;  /* first child (elements only) */
    const char *qname;     /* element: name as written ("h:div") */
    const char *local;     /* element: name without prefix ("div") */
    const char *ns;        /* element: namespace URI, "" if none */
    core_xml_attr *attrs;  /* element: in document order */
    size_t nattrs;         /* element */
    size_t start, end;     /* element: input offsets of its '<' and one past its last '>' */
    const char *text;      /* text: character data, references decoded, line ends as LF;
                              adjacent text and CDATA sections (even across comments) are
                              one node */
    size_t len;            /* text: strlen(text) */
};

/** Parse xml[0..len) (UTF-8, optional BOM and <?xml version="1.0" encoding="UTF-8"?>
 *  declaration; comments skipped). Returns the root element; every node and string is owned by
 *  a (free them by destroying it). NULL with err (400 structure, message "invalid XML at line
 *  N: ..."): malformed markup, mismatched tags, undeclared namespace prefixes, DOCTYPE, ENTITY
 *  or any processing instruction, entity references other than &lt; &gt; &amp; &quot; &apos;,
 *  characters XML does not allow (invalid UTF-8, most control characters), duplicate
 *  attributes, and the CORE_XML_MAX_* limits. Time is linear in len. Never reads past xml[len). */
const core_xml_node *core_xml_parse(core_arena *a, const char *xml, size_t len, core_err *err);

/** The value of el's attribute {ns}local (ns "" for unprefixed), borrowed; NULL if absent. */
const core_xml_attr *core_xml_attr_find(const core_xml_node *el, const char *ns, const char *local);

/* ---- writing --------------------------------------------------------------------------------- */

/* A growable malloc'd output buffer. On allocation failure it stops growing and `failed` is
 * set; core_xml_buf_take then returns NULL. */
typedef struct core_xml_buf {
    char *p;
    size_t len, cap;
    int failed;
} core_xml_buf;

#define CORE_XML_BUF_INIT \
    {                     \
        NULL, 0, 0, 0     \
    }

/** Append n bytes as they are (markup). */
void core_xml_put(core_xml_buf *b, const char *s, size_t n);
/** Append s[0..n) as character data: & < > escaped, CR as &#13;, DEL and C1 controls as
 *  numeric references. Returns 0, or -1 (b unchanged past its previous length) if s is not
 *  UTF-8 or holds a character XML 1.0 cannot carry (controls other than tab, LF, CR;
 *  U+FFFE, U+FFFF). */
int core_xml_put_text(core_xml_buf *b, const char *s, size_t n);
/** As core_xml_put_text for an attribute value between double quotes: also " escaped, and
 *  tab, LF, CR as references so that attribute normalisation keeps them. */
int core_xml_put_attr(core_xml_buf *b, const char *s, size_t n);
/** Hand over the NUL-terminated text (caller frees) and its length in *len_out (may be NULL);
 *  b is reset. NULL if an allocation failed (b is released). */
char *core_xml_buf_take(core_xml_buf *b, size_t *len_out);
/** Release b's memory and reset it. */
void core_xml_buf_clear(core_xml_buf *b);

#endif
