/* Unit tests of core/xml.c: the tree the reader builds (names, namespaces, attributes, text,
 * references, CDATA, offsets, lines), every refusal with its exact message (DTDs, entities,
 * processing instructions, malformed markup, bad characters, limits), hostile input that must
 * fail cleanly (every truncation and many corruptions of a document), and the escaping writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/xml.h"

/* Parse s (NUL-terminated) in a fresh arena; the arena is returned in *a (destroy it). */
static const core_xml_node *
parse(core_arena **a, const char *s, core_err *err)
{
    *a = core_arena_create();
    return core_xml_parse(*a, s, strlen(s), err);
}

/* s must be refused with exactly this message. */
static void
expect_refused_n(const char *s, size_t len, const char *msg)
{
    core_arena *a = core_arena_create();
    core_err err = CORE_ERR_INIT;
    const core_xml_node *root = core_xml_parse(a, s, len, &err);

    if (root)
        fail_msg("expected refusal \"%s\", got a document", msg);
    assert_int_equal(err.status, 400);
    assert_int_equal(err.code, CORE_ISSUE_STRUCTURE);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("expected \"%s\"\n     got \"%s\"", msg, err.msg);
    core_arena_destroy(a);
}

static void
expect_refused(const char *s, const char *msg)
{
    expect_refused_n(s, strlen(s), msg);
}

static const core_xml_node *
child(const core_xml_node *el, int k)
{
    const core_xml_node *c = el->first;
    while (c && k-- > 0)
        c = c->next;
    assert_non_null(c);
    return c;
}

/* ---- the tree -------------------------------------------------------------------------------- */

static void
test_tree(void **state)
{
    const char *doc = "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\" standalone=\"yes\"?>\n"
                      "<!-- before -->\n"
                      "<f:Location xmlns:f=\"http://hl7.org/fhir\" xmlns=\"urn:d\">\n"
                      "  <name value=\"a &lt;&amp;&gt; &quot;&apos; &#65;&#x42;&#x20AC;\"/>\n"
                      "  <f:x a = 'q\"' f:b=\"2\">t<!-- c -->u<![CDATA[<&>]]>v</f:x>\n"
                      "  <n xmlns=\"\" xml:lang=\"fr\">\xC3\xA9t\xC3\xA9</n>\n"
                      "</f:Location >\n<!-- after -->\n";
    core_arena *a;
    core_err err = CORE_ERR_INIT;
    const core_xml_node *root = parse(&a, doc, &err), *name, *x, *n, *t;
    (void)state;

    if (!root)
        fail_msg("%s", err.msg);
    assert_int_equal(root->kind, CORE_XML_ELEMENT);
    assert_string_equal(root->qname, "f:Location");
    assert_string_equal(root->local, "Location");
    assert_string_equal(root->ns, "http://hl7.org/fhir");
    assert_null(root->parent);
    assert_int_equal(root->line, 3);
    assert_int_equal(root->nattrs, 2);
    assert_string_equal(root->attrs[0].qname, "xmlns:f");
    assert_string_equal(root->attrs[0].local, "f");
    assert_string_equal(root->attrs[0].ns, CORE_XML_NS_XMLNS);
    assert_string_equal(root->attrs[1].qname, "xmlns");
    assert_string_equal(root->attrs[1].value, "urn:d");
    /* offsets: the whole root element, '<' to the '>' of its end tag */
    assert_int_equal(root->start, strstr(doc, "<f:Location") - doc);
    assert_int_equal(root->end, strstr(doc, "</f:Location >") - doc + 14);

    /* whitespace text between elements is kept */
    t = child(root, 0);
    assert_int_equal(t->kind, CORE_XML_TEXT);
    assert_string_equal(t->text, "\n  ");
    assert_ptr_equal(t->parent, root);

    name = child(root, 1);
    assert_string_equal(name->qname, "name");
    assert_string_equal(name->ns, "urn:d"); /* default namespace */
    assert_int_equal(name->line, 4);
    assert_null(name->first);
    assert_int_equal(name->nattrs, 1);
    assert_string_equal(name->attrs[0].ns, ""); /* unprefixed attributes: no namespace */
    assert_string_equal(name->attrs[0].value, "a <&> \"' AB\xE2\x82\xAC");
    assert_int_equal(name->attrs[0].len, strlen("a <&> \"' AB\xE2\x82\xAC"));
    assert_int_equal(name->end - name->start, strlen("<name value=\"a &lt;&amp;&gt; &quot;&apos; "
                                                     "&#65;&#x42;&#x20AC;\"/>"));

    x = child(root, 3);
    assert_string_equal(x->local, "x");
    assert_string_equal(x->ns, "http://hl7.org/fhir");
    assert_int_equal(x->nattrs, 2);
    assert_string_equal(x->attrs[0].value, "q\"");
    assert_string_equal(x->attrs[1].ns, "http://hl7.org/fhir");
    assert_string_equal(x->attrs[1].local, "b");
    assert_ptr_equal(core_xml_attr_find(x, "http://hl7.org/fhir", "b"), &x->attrs[1]);
    assert_ptr_equal(core_xml_attr_find(x, "", "a"), &x->attrs[0]);
    assert_null(core_xml_attr_find(x, "", "b"));
    /* text, a comment, text and CDATA make one text node */
    assert_int_equal(x->first->kind, CORE_XML_TEXT);
    assert_null(x->first->next);
    assert_string_equal(x->first->text, "tu<&>v");
    assert_int_equal(x->first->len, 6);

    n = child(root, 5);
    assert_string_equal(n->ns, ""); /* xmlns="" undeclares the default namespace */
    assert_string_equal(n->attrs[1].ns, CORE_XML_NS_XML);
    assert_string_equal(n->attrs[1].local, "lang");
    assert_string_equal(n->first->text, "\xC3\xA9t\xC3\xA9");
    assert_string_equal(child(root, 6)->text, "\n");
    assert_null(child(root, 6)->next);
    core_arena_destroy(a);
}

static void
test_normalisation(void **state)
{
    /* XML 1.0 §2.11: CR LF and lone CR are LF; §3.3.3: literal whitespace in attribute values
     * is a space each (CR LF one), references are kept */
    const char *doc = "<r a=\"x\r\ny\tz\nw&#10;&#9;&#13;\">1\r\n2\r3\r\n<![CDATA[4\r\n5]]></r>";
    core_arena *a;
    core_err err = CORE_ERR_INIT;
    const core_xml_node *root = parse(&a, doc, &err);
    (void)state;

    assert_non_null(root);
    assert_string_equal(root->attrs[0].value, "x y z w\n\t\r");
    assert_string_equal(root->first->text, "1\n2\n3\n4\n5");
    core_arena_destroy(a);
}

static void
test_lines_and_minimal(void **state)
{
    core_arena *a;
    core_err err = CORE_ERR_INIT;
    const core_xml_node *root = parse(&a, "<a/>", &err), *c;
    (void)state;

    assert_non_null(root);
    assert_string_equal(root->qname, "a");
    assert_int_equal(root->start, 0);
    assert_int_equal(root->end, 4);
    assert_null(root->first);
    core_arena_destroy(a);

    root = parse(&a, "<a>\n\n<b\n/>\n<c></c></a>", &err);
    assert_non_null(root);
    c = child(root, 1);
    assert_string_equal(c->qname, "b");
    assert_int_equal(c->line, 3);
    assert_string_equal(child(root, 3)->qname, "c");
    assert_int_equal(child(root, 3)->line, 5);
    core_arena_destroy(a);
}

/* ---- refusals -------------------------------------------------------------------------------- */

static void
test_dtd_and_entities(void **state)
{
    (void)state;
    expect_refused("<!DOCTYPE r><r/>", "invalid XML at line 1: DTDs (<!DOCTYPE>) are not accepted");
    /* billion laughs: refused at the DOCTYPE, before any entity could be declared */
    expect_refused("<?xml version=\"1.0\"?>\n"
                   "<!DOCTYPE lolz [\n"
                   " <!ENTITY lol \"lol\">\n"
                   " <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
                   " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
                   "]>\n"
                   "<lolz>&lol3;</lolz>",
                   "invalid XML at line 2: DTDs (<!DOCTYPE>) are not accepted");
    /* external entity (XXE) */
    expect_refused("<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><r>&x;</r>",
                   "invalid XML at line 1: DTDs (<!DOCTYPE>) are not accepted");
    expect_refused("<r>\n<!ENTITY x \"y\"></r>",
                   "invalid XML at line 2: entity declarations (<!ENTITY>) are not accepted");
    expect_refused("<r>\n<!DOCTYPE r></r>",
                   "invalid XML at line 2: DTDs (<!DOCTYPE>) are not accepted");
    /* references to entities nobody declared (nor could) */
    expect_refused("<r>&x;</r>", "invalid XML at line 1: undeclared entity reference &x; (only "
                                 "&lt; &gt; &amp; &quot; &apos; and character references are "
                                 "accepted)");
    expect_refused("<r a=\"&nbsp;\"/>", "invalid XML at line 1: undeclared entity reference "
                                        "&nbsp; (only &lt; &gt; &amp; &quot; &apos; and "
                                        "character references are accepted)");
    expect_refused("<r>&lol3;</r>", "invalid XML at line 1: undeclared entity reference &lol3; "
                                    "(only &lt; &gt; &amp; &quot; &apos; and character "
                                    "references are accepted)");
    expect_refused("<r>a & b</r>",
                   "invalid XML at line 1: malformed reference: a literal & must be written &amp;");
    expect_refused("<r>&#;</r>", "invalid XML at line 1: malformed character reference");
    expect_refused("<r>&#x;</r>", "invalid XML at line 1: malformed character reference");
    expect_refused("<r>&#12a;</r>", "invalid XML at line 1: malformed character reference");
    expect_refused("<r>&#65</r>", "invalid XML at line 1: malformed character reference");
    expect_refused("<r>&#0;</r>",
                   "invalid XML at line 1: character reference &#0; is not a character XML allows");
    expect_refused(
        "<r>&#x1;</r>",
        "invalid XML at line 1: character reference &#x1; is not a character XML allows");
    expect_refused("<r>&#xD800;</r>", "invalid XML at line 1: character reference &#xD800; is not "
                                      "a character XML allows");
    expect_refused("<r>&#x110000;</r>", "invalid XML at line 1: character reference &#x110000; is "
                                        "not a character XML allows");
    expect_refused("<r>&#99999999999999999999999;</r>",
                   "invalid XML at line 1: character reference &#99999999999999999999999; is "
                   "not a character XML allows");
}

static void
test_processing_instructions(void **state)
{
    (void)state;
    expect_refused("<?xml-stylesheet href=\"a.xsl\"?><r/>",
                   "invalid XML at line 1: processing instructions are not accepted");
    expect_refused("<r><?php echo 1; ?></r>",
                   "invalid XML at line 1: processing instructions are not accepted");
    expect_refused("<r/>\n<?pi?>",
                   "invalid XML at line 2: processing instructions are not accepted");
    expect_refused(" <?xml version=\"1.0\"?><r/>",
                   "invalid XML at line 1: the XML declaration is allowed only at the very start");
    expect_refused("<r><?xml version=\"1.0\"?></r>",
                   "invalid XML at line 1: the XML declaration is allowed only at the very start");
    expect_refused("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r/>",
                   "invalid XML at line 1: encoding must be UTF-8 (got \"ISO-8859-1\")");
    expect_refused("<?xml version=\"2.0\"?><r/>",
                   "invalid XML at line 1: XML version must be 1.0 (got \"2.0\")");
    expect_refused("<?xml encoding=\"UTF-8\"?><r/>",
                   "invalid XML at line 1: malformed XML declaration");
    expect_refused("<?xml version=\"1.0\" standalone=\"maybe\"?><r/>",
                   "invalid XML at line 1: standalone must be \"yes\" or \"no\"");
    expect_refused("<?xml version=\"1.0\"", "invalid XML at line 1: malformed XML declaration");
}

static void
test_malformed(void **state)
{
    (void)state;
    expect_refused("", "invalid XML at line 1: no root element");
    expect_refused("  \n ", "invalid XML at line 2: no root element");
    expect_refused("hello", "invalid XML at line 1: text is not allowed outside the root element");
    expect_refused("<r/>x", "invalid XML at line 1: text is not allowed outside the root element");
    expect_refused("<r/><s/>", "invalid XML at line 1: only one root element is allowed");
    expect_refused("<r>", "invalid XML at line 1: unexpected end of input: <r> is not closed");
    expect_refused("<r>\n<a>\n<b></b>\n",
                   "invalid XML at line 4: unexpected end of input: <a> is not closed");
    expect_refused("<r><a></b></r>",
                   "invalid XML at line 1: mismatched end tag: expected </a> (got </b>)");
    expect_refused("<p:r xmlns:p=\"u\"></r>",
                   "invalid XML at line 1: mismatched end tag: expected </p:r> (got </r>)");
    expect_refused("<r></r >x",
                   "invalid XML at line 1: text is not allowed outside the root element");
    expect_refused("<r></r", "invalid XML at line 1: malformed end tag </r>");
    expect_refused("<r", "invalid XML at line 1: unterminated start tag <r>");
    expect_refused("<r a=\"1\"", "invalid XML at line 1: unterminated start tag <r>");
    expect_refused("<r a=1/>", "invalid XML at line 1: attribute value must be quoted");
    expect_refused("<r a/>", "invalid XML at line 1: attribute \"a\" has no value");
    expect_refused(
        "<r a=\"1\"b=\"2\"/>",
        "invalid XML at line 1: malformed start tag <r> (attributes need a space before)");
    expect_refused("<r a=\"1\" a=\"2\"/>", "invalid XML at line 1: duplicate attribute \"a\"");
    expect_refused(
        "<r xmlns:p=\"u\" xmlns:q=\"u\" p:a=\"1\" q:a=\"2\"/>",
        "invalid XML at line 1: duplicate attribute \"q:a\" (same namespace as \"p:a\")");
    expect_refused(
        "<r a=\"<\"/>",
        "invalid XML at line 1: \"<\" is not allowed in an attribute value (write &lt;)");
    expect_refused("<r a=\"x/>", "invalid XML at line 1: unterminated attribute value");
    expect_refused("<1r/>", "invalid XML at line 1: malformed element name");
    expect_refused("< r/>", "invalid XML at line 1: malformed element name");
    expect_refused("<:r/>", "invalid XML at line 1: malformed element name");
    expect_refused("<a:b:c/>", "invalid XML at line 1: malformed element name \"a:b\" (more than "
                               "one colon)");
    expect_refused("<p:r/>", "invalid XML at line 1: undeclared namespace prefix \"p\"");
    expect_refused("<r p:a=\"1\"/>", "invalid XML at line 1: undeclared namespace prefix \"p\"");
    expect_refused("<p:r xmlns:p=\"\"/>",
                   "invalid XML at line 1: namespace prefix \"p\" must not be undeclared");
    expect_refused("<r xmlns:xml=\"urn:x\"/>",
                   "invalid XML at line 1: reserved namespace prefix or name in \"xmlns:xml\"");
    expect_refused("<xmlns:r xmlns:xmlns=\"urn:x\"/>",
                   "invalid XML at line 1: reserved namespace prefix or name in \"xmlns:xmlns\"");
    /* a prefix is in scope only inside the element that declares it */
    expect_refused("<r><a xmlns:p=\"u\"/><p:b/></r>",
                   "invalid XML at line 1: undeclared namespace prefix \"p\"");
    expect_refused("<r>]]></r>",
                   "invalid XML at line 1: \"]]>\" is not allowed in text (write ]]&gt;)");
    expect_refused("<r><!-- a -- b --></r>",
                   "invalid XML at line 1: \"--\" is not allowed inside a comment");
    expect_refused("<r><!-- a ---></r>",
                   "invalid XML at line 1: \"--\" is not allowed inside a comment");
    expect_refused("<r><!-- a </r>", "invalid XML at line 1: unterminated comment");
    expect_refused("<r><![CDATA[ a </r>", "invalid XML at line 1: unterminated CDATA section");
    expect_refused(
        "<![CDATA[x]]><r/>",
        "invalid XML at line 1: CDATA sections are allowed only inside the root element");
    expect_refused("<r><!x></r>", "invalid XML at line 1: malformed markup \"<!\"");
}

static void
test_characters(void **state)
{
    (void)state;
    expect_refused("<r>\xC3</r>", "invalid XML at line 1: invalid UTF-8 (byte 0xC3)");
    expect_refused("<r>\n\x80</r>", "invalid XML at line 2: invalid UTF-8 (byte 0x80)");
    expect_refused("<r>\xC0\xAF</r>",
                   "invalid XML at line 1: invalid UTF-8 (byte 0xC0)"); /* overlong */
    expect_refused("<r>\xE0\x80\xAF</r>", "invalid XML at line 1: invalid UTF-8 (byte 0xE0)");
    expect_refused("<r>\xED\xA0\x80</r>",
                   "invalid XML at line 1: invalid UTF-8 (byte 0xED)"); /* surrogate */
    expect_refused("<r>\xF4\x90\x80\x80</r>", "invalid XML at line 1: invalid UTF-8 (byte 0xF4)");
    expect_refused("<r>\xFF</r>", "invalid XML at line 1: invalid UTF-8 (byte 0xFF)");
    expect_refused("<r a=\"\xE2\x82\"/>", "invalid XML at line 1: invalid UTF-8 (byte 0xE2)");
    expect_refused("<r>\x01</r>", "invalid XML at line 1: character U+0001 is not allowed in XML");
    expect_refused("<r>\xEF\xBF\xBE</r>",
                   "invalid XML at line 1: character U+FFFE is not allowed in XML");
    expect_refused_n("<r>\0</r>", 8,
                     "invalid XML at line 1: character U+0000 is not allowed in XML");
    /* even in comments */
    expect_refused("<r><!-- \x1B --></r>",
                   "invalid XML at line 1: character U+001B is not allowed in XML");
}

/* n elements nested in one another: <e><e>...</e></e> */
static char *
nested(int n)
{
    char *s = malloc((size_t)n * 7 + 1), *w = s;
    int k;
    for (k = 0; k < n; k++)
        w += sprintf(w, "<e>");
    for (k = 0; k < n; k++)
        w += sprintf(w, "</e>");
    return s;
}

static void
test_limits(void **state)
{
    core_arena *a;
    core_err err = CORE_ERR_INIT;
    char *s, *w;
    int k;
    (void)state;

    s = nested(CORE_XML_MAX_DEPTH);
    assert_non_null(parse(&a, s, &err));
    core_arena_destroy(a);
    free(s);
    s = nested(CORE_XML_MAX_DEPTH + 1);
    expect_refused(s, "invalid XML at line 1: elements are nested more than 128 levels deep");
    free(s);
    s = nested(200);
    expect_refused(s, "invalid XML at line 1: elements are nested more than 128 levels deep");
    free(s);
    /* deep and empty is still deep */
    s = nested(CORE_XML_MAX_DEPTH);
    memcpy(strstr(s, "<e></e>"), "<e/>   ", 7);
    assert_non_null(parse(&a, s, &err));
    core_arena_destroy(a);
    free(s);

    /* attributes per element: 256 accepted, 257 refused */
    s = malloc(16 * 300);
    w = s + sprintf(s, "<r");
    for (k = 0; k < CORE_XML_MAX_ATTRS; k++)
        w += sprintf(w, " a%d=\"\"", k);
    sprintf(w, "/>");
    assert_non_null(parse(&a, s, &err));
    assert_int_equal(core_xml_parse(a, s, strlen(s), &err)->nattrs, CORE_XML_MAX_ATTRS);
    core_arena_destroy(a);
    sprintf(w, " z=\"\"/>");
    expect_refused(s, "invalid XML at line 1: element <r> has more than 256 attributes");
    /* duplicates among many attributes (found by hashing, not pairwise) */
    w = s + sprintf(s, "<r");
    for (k = 0; k < 200; k++)
        w += sprintf(w, " a%d=\"\"", k);
    sprintf(w, " a17=\"\"/>");
    expect_refused(s, "invalid XML at line 1: duplicate attribute \"a17\"");
    w = s + sprintf(s, "<r xmlns:p=\"u\" xmlns:q=\"u\"");
    for (k = 0; k < 100; k++)
        w += sprintf(w, " p:a%d=\"\"", k);
    sprintf(w, " q:a99=\"\"/>");
    expect_refused(s, "invalid XML at line 1: duplicate attribute \"q:a99\" (same namespace as "
                      "\"p:a99\")");

    /* namespace declarations in scope: 64 accepted, 65 refused */
    w = s + sprintf(s, "<r");
    for (k = 0; k < 32; k++)
        w += sprintf(w, " xmlns:a%d=\"u\"", k);
    w += sprintf(w, "><e");
    for (k = 0; k < 32; k++)
        w += sprintf(w, " xmlns:b%d=\"u\"", k);
    sprintf(w, "/></r>");
    assert_non_null(parse(&a, s, &err));
    core_arena_destroy(a);
    sprintf(w, " xmlns=\"u\"/></r>");
    expect_refused(s, "invalid XML at line 1: more than 64 namespace declarations in scope");
    free(s);
}

/* More than CORE_XML_MAX_NODES nodes: 4000 elements of 250 attributes (1,004,001 nodes). */
static void
test_node_limit(void **state)
{
    size_t per = 0, cap;
    char one[16 * 256], *s, *w;
    int k;
    (void)state;

    w = one + sprintf(one, "<e");
    for (k = 0; k < 250; k++)
        w += sprintf(w, " a%d=\"\"", k);
    w += sprintf(w, "/>");
    per = (size_t)(w - one);
    cap = per * 4000 + 16;
    s = malloc(cap);
    w = s + sprintf(s, "<r>");
    for (k = 0; k < 4000; k++) {
        memcpy(w, one, per);
        w += per;
    }
    sprintf(w, "</r>");
    expect_refused(s, "invalid XML at line 1: more than 1000000 nodes (elements, attributes and "
                      "text)");
    /* 3900 of them fit */
    sprintf(s + 3 + per * 3900, "</r>");
    {
        core_arena *a;
        core_err err = CORE_ERR_INIT;
        const core_xml_node *root = parse(&a, s, &err);
        if (!root)
            fail_msg("%s", err.msg);
        core_arena_destroy(a);
    }
    free(s);
}

/* Every prefix of a valid document is refused (never a crash or a read past the end), and
 * so are many corruptions of it; ASan watches the reads. */
static void
test_hostile(void **state)
{
    const char *doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<Location xmlns=\"http://hl7.org/fhir\" xmlns:h=\"urn:h\">"
                      "<name value=\"a &amp; &#x20AC; b\" h:x='1'/><!-- c --><text>"
                      "<div xmlns=\"http://www.w3.org/1999/xhtml\">x<![CDATA[<y>]]>\xC3\xA9"
                      "<br/></div></text></Location>\n";
    static const char bytes[] = "<>&;\"'/!?-[]=#x \xC3\xFF\0";
    size_t n = strlen(doc), cut, k;
    unsigned seed = 12345;
    char *buf = malloc(n);
    (void)state;

    for (cut = 0; cut < n; cut++) {
        core_arena *a = core_arena_create();
        core_err err = CORE_ERR_INIT;
        const core_xml_node *root;

        memcpy(buf, doc, cut); /* exactly cut bytes: ASan flags any read beyond */
        root = core_xml_parse(a, buf, cut, &err);
        /* the only valid prefix is the whole element with or without its final newline */
        if (cut == n - 1)
            assert_non_null(root);
        else if (root)
            fail_msg("prefix of %zu bytes accepted", cut);
        else
            assert_int_equal(err.status, 400);
        core_arena_destroy(a);
    }
    for (k = 0; k < 20000; k++) {
        core_arena *a = core_arena_create();
        core_err err = CORE_ERR_INIT;
        int flips = 1 + (int)(k % 4), f;

        memcpy(buf, doc, n);
        for (f = 0; f < flips; f++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % n] = bytes[(seed >> 20) % (sizeof(bytes) - 1)];
        }
        if (!core_xml_parse(a, buf, n, &err))
            assert_int_equal(err.status, 400);
        core_arena_destroy(a);
    }
    free(buf);
}

/* ---- writing --------------------------------------------------------------------------------- */

static void
expect_put(int attr, const char *in, size_t n, const char *out)
{
    core_xml_buf b = CORE_XML_BUF_INIT;
    char *s;
    size_t len;

    core_xml_put(&b, "[", 1);
    assert_int_equal(attr ? core_xml_put_attr(&b, in, n) : core_xml_put_text(&b, in, n), 0);
    core_xml_put(&b, "]", 1);
    s = core_xml_buf_take(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, out);
    assert_int_equal(len, strlen(out));
    assert_null(b.p);
    free(s);
}

static void
expect_put_refused(const char *in, size_t n)
{
    core_xml_buf b = CORE_XML_BUF_INIT;
    char *s;

    core_xml_put(&b, "ok", 2);
    assert_int_equal(core_xml_put_text(&b, in, n), -1);
    assert_int_equal(core_xml_put_attr(&b, in, n), -1);
    s = core_xml_buf_take(&b, NULL);
    assert_string_equal(s, "ok"); /* nothing of the refused text is left */
    free(s);
}

static void
test_writer(void **state)
{
    const char *all = "a<&>\"'\t\n\r\x7F\xC2\x85\xC2\xA0\xE2\x82\xAC\xF0\x9F\x98\x80";
    (void)state;

    expect_put(0, all, strlen(all),
               "[a&lt;&amp;&gt;\"'\t\n&#13;&#127;&#133;\xC2\xA0\xE2\x82\xAC\xF0\x9F\x98\x80]");
    expect_put(1, all, strlen(all),
               "[a&lt;&amp;&gt;&quot;'&#9;&#10;&#13;&#127;&#133;\xC2\xA0\xE2\x82\xAC"
               "\xF0\x9F\x98\x80]");
    expect_put(1, "", 0, "[]");
    expect_put_refused("a\x01", 2);
    expect_put_refused("\x1F", 1);
    expect_put_refused("a\0b", 3);
    expect_put_refused("\xC3", 1);
    expect_put_refused("\xED\xA0\x80", 3);
    expect_put_refused("\xEF\xBF\xBF", 3);

    /* an empty buffer still hands over "" */
    {
        core_xml_buf b = CORE_XML_BUF_INIT;
        size_t len = 99;
        char *s = core_xml_buf_take(&b, &len);
        assert_string_equal(s, "");
        assert_int_equal(len, 0);
        free(s);
        core_xml_buf_clear(&b);
    }
}

/* What the writer escapes, the reader reads back exactly. */
static void
test_writer_reader(void **state)
{
    const char *v = "x<&>\"'\t\n\ry \xC2\x85\xE2\x82\xAC";
    core_xml_buf b = CORE_XML_BUF_INIT;
    core_arena *a;
    core_err err = CORE_ERR_INIT;
    const core_xml_node *root;
    char *s;
    (void)state;

    core_xml_put(&b, "<r a=\"", 6);
    core_xml_put_attr(&b, v, strlen(v));
    core_xml_put(&b, "\">", 2);
    core_xml_put_text(&b, v, strlen(v));
    core_xml_put(&b, "</r>", 4);
    s = core_xml_buf_take(&b, NULL);
    root = parse(&a, s, &err);
    assert_non_null(root);
    assert_string_equal(root->attrs[0].value, v);
    assert_string_equal(root->first->text, v);
    core_arena_destroy(a);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_normalisation),
        cmocka_unit_test(test_lines_and_minimal),
        cmocka_unit_test(test_dtd_and_entities),
        cmocka_unit_test(test_processing_instructions),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_characters),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_node_limit),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_writer),
        cmocka_unit_test(test_writer_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
