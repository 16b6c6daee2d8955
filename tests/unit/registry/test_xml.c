/* Unit tests of registry/xml.c: exact XML written for known JSON (element order, value
 * attributes, primitive extensions, contained resources, narrative, escaping, decimals), exact
 * JSON read from XML, every refusal with status, issue code, FHIRPath and message, and
 * JSON -> XML -> JSON identity for every official R4 example and IHE mCSD example of the seven
 * mCSD resource types (when they are at hand). JSON below is written with ' for " (see dq). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry/validate.h"
#include "registry/xml.h"

#define DECL  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
#define FHIR  "xmlns=\"http://hl7.org/fhir\""
#define XHTML "http://www.w3.org/1999/xhtml"

static const char *const mcsd_types[] = { "Organization",           "Location",
                                          "HealthcareService",      "Practitioner",
                                          "PractitionerRole",       "Endpoint",
                                          "OrganizationAffiliation" };
#define NTYPES (sizeof(mcsd_types) / sizeof(mcsd_types[0]))

static int
setup(void **state)
{
    core_err err = CORE_ERR_INIT;
    (void)state;
    return reg_model_load(&err);
}

/* A malloc'd copy of s with every ' turned into ". */
static char *
dq(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static json_t *
json_of(const char *single_quoted)
{
    core_err err = CORE_ERR_INIT;
    char *text = dq(single_quoted);
    json_t *j = core_json_parse(text, strlen(text), &err);
    if (!j)
        fail_msg("test JSON does not parse: %s\n%s", err.msg, text);
    free(text);
    return j;
}

/* JSON (single-quoted) must be written as exactly xml (after the XML declaration), and read
 * back as the same JSON, property order included (model order). */
static void
expect_xml(const char *json, const char *xml)
{
    json_t *j = json_of(json), *back;
    core_err err = CORE_ERR_INIT;
    size_t len;
    char *out = reg_xml_dump(j, &len, &err), *a, *b;

    if (!out)
        fail_msg("dump failed: %s at %s", err.msg, err.expr);
    assert_int_equal(len, strlen(out));
    if (strncmp(out, DECL, strlen(DECL)) != 0 || strcmp(out + strlen(DECL), xml) != 0)
        fail_msg("expected %s\n     got %s", xml, out);
    back = reg_xml_parse(out, len, &err);
    if (!back)
        fail_msg("reading back failed: %s at %s\n%s", err.msg, err.expr, out);
    a = core_json_dump(j, NULL);
    b = core_json_dump(back, NULL);
    if (!json_equal(j, back))
        fail_msg("round trip differs:\n%s\n%s", a, b);
    free(a);
    free(b);
    free(out);
    json_decref(back);
    json_decref(j);
}

/* xml must be read as exactly this JSON text (single-quoted; property order checked). */
static void
expect_json(const char *xml, const char *json)
{
    core_err err = CORE_ERR_INIT;
    json_t *j = reg_xml_parse(xml, strlen(xml), &err);
    char *want = dq(json), *got;

    if (!j)
        fail_msg("parse failed: %d %s at %s", err.status, err.msg, err.expr);
    got = core_json_dump(j, NULL);
    if (strcmp(got, want) != 0)
        fail_msg("expected %s\n     got %s", want, got);
    free(got);
    free(want);
    json_decref(j);
}

static void
expect_parse_error(const char *xml, int status, core_issue code, const char *expr, const char *msg)
{
    core_err err = CORE_ERR_INIT;
    json_t *j = reg_xml_parse(xml, strlen(xml), &err);

    if (j) {
        char *s = core_json_dump(j, NULL);
        fail_msg("expected \"%s\", got %s", msg, s);
    }
    assert_int_equal(err.status, status);
    assert_int_equal(err.code, code);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("expected \"%s\"\n     got \"%s\"", msg, err.msg);
    assert_string_equal(err.expr, expr);
}

static void
expect_dump_error(const char *json, const char *expr, const char *msg)
{
    json_t *j = json_of(json);
    core_err err = CORE_ERR_INIT;
    size_t len = 7;
    char *out = reg_xml_dump(j, &len, &err);

    if (out)
        fail_msg("expected \"%s\", got %s", msg, out);
    assert_int_equal(err.status, 500);
    assert_int_equal(err.code, CORE_ISSUE_EXCEPTION);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("expected \"%s\"\n     got \"%s\"", msg, err.msg);
    assert_string_equal(err.expr, expr);
    json_decref(j);
}

/* ---- writing and reading --------------------------------------------------------------------- */

static void
test_order_and_values(void **state)
{
    (void)state;
    /* JSON order is free; XML follows the StructureDefinition */
    expect_xml("{'resourceType':'Location','position':{'latitude':-1.5,'longitude':8.4800},"
               "'name':'Ward','status':'active','id':'x1',"
               "'hoursOfOperation':[{'allDay':true,'daysOfWeek':['mon']}]}",
               "<Location " FHIR "><id value=\"x1\"/><status value=\"active\"/>"
               "<name value=\"Ward\"/><position><longitude value=\"8.4800\"/>"
               "<latitude value=\"-1.5\"/></position><hoursOfOperation>"
               "<daysOfWeek value=\"mon\"/><allDay value=\"true\"/></hoursOfOperation>"
               "</Location>");
    /* a bare resource */
    expect_xml("{'resourceType':'Organization'}", "<Organization " FHIR "/>");
    /* numbers keep their text; booleans are typed */
    expect_json("<Location " FHIR "><position><longitude value=\"8.4800\"/>"
                "<latitude value=\"1E-7\"/><altitude value=\"-0.0\"/></position></Location>",
                "{'resourceType':'Location','position':{'longitude':8.4800,'latitude':1E-7,"
                "'altitude':-0.0}}");
    expect_json("<Organization " FHIR "><active value=\"false\"/></Organization>",
                "{'resourceType':'Organization','active':false}");
}

static void
test_decimal(void **state)
{
    json_t *j;
    core_err err = CORE_ERR_INIT;
    const char *xml = "<Location " FHIR "><position><longitude value=\"8.4800\"/>"
                      "<latitude value=\"0.000\"/></position></Location>";
    (void)state;

    j = reg_xml_parse(xml, strlen(xml), &err);
    assert_non_null(j);
    assert_string_equal(
        core_json_number_text(json_object_get(json_object_get(j, "position"), "longitude")),
        "8.4800");
    assert_string_equal(
        core_json_number_text(json_object_get(json_object_get(j, "position"), "latitude")),
        "0.000");
    json_decref(j);
    expect_xml("{'resourceType':'Location','position':{'longitude':8.4800,'latitude':0.000}}",
               "<Location " FHIR "><position><longitude value=\"8.4800\"/>"
               "<latitude value=\"0.000\"/></position></Location>");
}

static void
test_escaping(void **state)
{
    (void)state;
    expect_xml("{'resourceType':'Organization','name':'<&>\\u0027 \\\"x\\\"'}",
               "<Organization " FHIR "><name value=\"&lt;&amp;&gt;' &quot;x&quot;\"/>"
               "</Organization>");
    /* tab, LF and CR survive attribute normalisation as references */
    expect_xml("{'resourceType':'Organization','name':'a\\tb\\nc\\r\\nd \\u00e9\\u20ac'}",
               "<Organization " FHIR
               "><name value=\"a&#9;b&#10;c&#13;&#10;d \xC3\xA9\xE2\x82\xAC\"/>"
               "</Organization>");
    expect_json("<Organization " FHIR "><name value=\"&lt;&amp;&gt;&quot;&#x41;\"/>"
                "</Organization>",
                "{'resourceType':'Organization','name':'<&>\\\"A'}");
    {
        const char *x = "<Organization " FHIR "><name value=\"&apos;'\"/></Organization>";
        core_err err = CORE_ERR_INIT;
        json_t *j = reg_xml_parse(x, strlen(x), &err);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "name")), "''");
        json_decref(j);
    }
    /* a control character XML cannot carry */
    expect_dump_error("{'resourceType':'Organization','name':'a\\u0001'}", "Organization.name",
                      "cannot write the resource as XML: the value holds a character XML cannot "
                      "carry");
}

static void
test_primitive_extensions(void **state)
{
    (void)state;
    expect_xml("{'resourceType':'Location','name':'a','_name':{'extension':[{'url':'x',"
               "'valueString':'y'}]}}",
               "<Location " FHIR "><name value=\"a\"><extension url=\"x\">"
               "<valueString value=\"y\"/></extension></name></Location>");
    expect_json("<Location " FHIR "><name value=\"a\"><extension url=\"x\">"
                "<valueString value=\"y\"/></extension></name></Location>",
                "{'resourceType':'Location','name':'a','_name':{'extension':[{'url':'x',"
                "'valueString':'y'}]}}");
    /* id and extension, no value */
    expect_xml("{'resourceType':'Location','_status':{'id':'s1','extension':[{'url':"
               "'http://hl7.org/fhir/StructureDefinition/data-absent-reason',"
               "'valueCode':'unknown'}]}}",
               "<Location " FHIR "><status id=\"s1\"><extension "
               "url=\"http://hl7.org/fhir/StructureDefinition/data-absent-reason\">"
               "<valueCode value=\"unknown\"/></extension></status></Location>");
    /* repeating primitives: arrays aligned with nulls */
    expect_xml("{'resourceType':'Location','alias':['a',null,'c'],"
               "'_alias':[null,{'id':'b'},{'extension':[{'url':'u','valueInteger':-2}]}]}",
               "<Location " FHIR "><alias value=\"a\"/><alias id=\"b\"/><alias value=\"c\">"
               "<extension url=\"u\"><valueInteger value=\"-2\"/></extension></alias>"
               "</Location>");
    expect_xml("{'resourceType':'Location','alias':['a','b']}",
               "<Location " FHIR "><alias value=\"a\"/><alias value=\"b\"/></Location>");
    /* only companions: no value array */
    expect_xml("{'resourceType':'Location','_alias':[{'id':'q'}]}",
               "<Location " FHIR "><alias id=\"q\"/></Location>");
    /* a repeating element with one occurrence is still an array */
    expect_json("<Location " FHIR "><alias value=\"a\"/><identifier><value value=\"1\"/>"
                "</identifier></Location>",
                "{'resourceType':'Location','identifier':[{'value':'1'}],'alias':['a']}");
    /* extensions on complex elements, ids, nested extensions, modifierExtension */
    expect_xml("{'resourceType':'Location','extension':[{'url':'a','extension':[{'url':'b',"
               "'valueDecimal':1.50}]}],'modifierExtension':[{'url':'m','valueBoolean':true}],"
               "'address':{'id':'ad','extension':[{'url':'e','valueCoding':{'code':'c'}}],"
               "'city':'K'}}",
               "<Location " FHIR "><extension url=\"a\"><extension url=\"b\">"
               "<valueDecimal value=\"1.50\"/></extension></extension>"
               "<modifierExtension url=\"m\"><valueBoolean value=\"true\"/></modifierExtension>"
               "<address id=\"ad\"><extension url=\"e\"><valueCoding><code value=\"c\"/>"
               "</valueCoding></extension><city value=\"K\"/></address></Location>");
}

static void
test_contained(void **state)
{
    (void)state;
    expect_xml("{'resourceType':'Location','id':'l','contained':[{'resourceType':'Organization',"
               "'id':'o1','name':'Owner'},{'resourceType':'Endpoint','id':'e',"
               "'status':'active','connectionType':{'code':'hl7-fhir-rest'},"
               "'payloadType':[{'text':'x'}],'address':'http://a'}],"
               "'managingOrganization':{'reference':'#o1'}}",
               "<Location " FHIR "><id value=\"l\"/><contained><Organization>"
               "<id value=\"o1\"/><name value=\"Owner\"/></Organization></contained>"
               "<contained><Endpoint><id value=\"e\"/><status value=\"active\"/>"
               "<connectionType><code value=\"hl7-fhir-rest\"/></connectionType>"
               "<payloadType><text value=\"x\"/></payloadType><address value=\"http://a\"/>"
               "</Endpoint></contained><managingOrganization><reference value=\"#o1\"/>"
               "</managingOrganization></Location>");
    /* Bundle.entry.resource, any resource type */
    expect_xml("{'resourceType':'Bundle','type':'collection','entry':[{'fullUrl':'urn:a',"
               "'resource':{'resourceType':'Patient','active':true}}]}",
               "<Bundle " FHIR "><type value=\"collection\"/><entry>"
               "<fullUrl value=\"urn:a\"/><resource><Patient><active value=\"true\"/>"
               "</Patient></resource></entry></Bundle>");
}

static void
test_narrative(void **state)
{
    const char *div = "<div xmlns=\\'" XHTML "\\'><p class=\\'a\\'>x &amp; y<br/>"
                      "&#160;</p><!-- c --></div>";
    char json[512], xml[512];
    (void)state;

    /* the XHTML goes out verbatim and comes back verbatim */
    snprintf(json, sizeof(json),
             "{'resourceType':'Location','text':{'status':'generated','div':'%s'}}", div);
    snprintf(xml, sizeof(xml),
             "<Location " FHIR "><text><status value=\"generated\"/><div xmlns=\"" XHTML
             "\"><p class=\"a\">x &amp; y<br/>&#160;</p><!-- c --></div></text></Location>");
    expect_xml(json, xml);
    /* a prefixed div is written back canonically */
    expect_json("<Location " FHIR " xmlns:h=\"" XHTML "\"><text><status value=\"generated\"/>"
                "<h:div><h:p xml:lang=\"en\" class=\"&lt;&quot;\">a&#160;"
                "<![CDATA[<b>]]></h:p><h:br/></h:div></text></Location>",
                "{'resourceType':'Location','text':{'status':'generated','div':"
                "'<div xmlns=\\\"" XHTML "\\\"><p xml:lang=\\\"en\\\" class=\\\"&lt;&quot;\\\">"
                "a\xC2\xA0&lt;b&gt;</p><br/></div>'}}");
    expect_parse_error("<Location " FHIR " xmlns:h=\"" XHTML "\"><text>"
                       "<status value=\"generated\"/><h:div><h:p h:x=\"1\"/></h:div></text>"
                       "</Location>",
                       400, CORE_ISSUE_STRUCTURE, "Location.text.div",
                       "narrative attributes must not be in a namespace (got \"h:x\") (line 1)");
    expect_parse_error("<Location " FHIR "><text><status value=\"generated\"/>"
                       "<div>x</div></text></Location>",
                       400, CORE_ISSUE_STRUCTURE, "Location.text.div",
                       "narrative <div> must be in the XHTML namespace "
                       "(xmlns=\"http://www.w3.org/1999/xhtml\") (line 1)");
    expect_parse_error("<Location " FHIR "><text><status value=\"generated\"/>"
                       "<div xmlns=\"" XHTML "\"><svg xmlns=\"urn:svg\"/></div></text></Location>",
                       400, CORE_ISSUE_STRUCTURE, "Location.text.div",
                       "narrative may contain only XHTML elements (got <svg> in namespace "
                       "\"urn:svg\") (line 1)");
    /* writing: the narrative must be one well-formed XHTML div */
    expect_dump_error("{'resourceType':'Location','text':{'status':'generated','div':"
                      "'<div xmlns=\\'" XHTML "\\'>a<b></div>'}}",
                      "Location.text.div",
                      "cannot write the resource as XML: narrative is not well-formed XML: "
                      "invalid XML at line 1: mismatched end tag: expected </b> (got </div>)");
    expect_dump_error("{'resourceType':'Location','text':{'status':'generated','div':"
                      "'<div xmlns=\\'" XHTML "\\'>&nbsp;</div>'}}",
                      "Location.text.div",
                      "cannot write the resource as XML: narrative is not well-formed XML: "
                      "invalid XML at line 1: undeclared entity reference &nbsp; (only &lt; "
                      "&gt; &amp; &quot; &apos; and character references are accepted)");
    expect_dump_error("{'resourceType':'Location','text':{'status':'generated','div':"
                      "'<div xmlns=\\'" XHTML "\\'>a</div><x/>'}}",
                      "Location.text.div",
                      "cannot write the resource as XML: narrative is not well-formed XML: "
                      "invalid XML at line 1: only one root element is allowed");
    expect_dump_error("{'resourceType':'Location','text':{'status':'generated','div':"
                      "'<div xmlns=\\'" XHTML "\\'>a</div><!-- x -->'}}",
                      "Location.text.div",
                      "cannot write the resource as XML: narrative must be one <div> element "
                      "in the XHTML namespace");
    expect_dump_error("{'resourceType':'Location','text':{'status':'generated','div':"
                      "'<div>a</div>'}}",
                      "Location.text.div",
                      "cannot write the resource as XML: narrative must be one <div> element "
                      "in the XHTML namespace");
    expect_dump_error("{'resourceType':'Location','text':{'status':'generated','div':"
                      "'<?xml version=\\'1.0\\'?><div xmlns=\\'" XHTML "\\'/>'}}",
                      "Location.text.div",
                      "cannot write the resource as XML: narrative must be one <div> element "
                      "in the XHTML namespace");
}

static void
test_lenient_order_and_noise(void **state)
{
    (void)state;
    /* any element order, comments, whitespace, an XML declaration, a prefixed FHIR namespace,
     * xsi:schemaLocation */
    expect_json("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- a -->\n"
                "<f:Location xmlns:f=\"http://hl7.org/fhir\" "
                "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
                "xsi:schemaLocation=\"http://hl7.org/fhir location.xsd\">\n"
                "  <f:alias value=\"b1\"/>\n  <f:name value=\"n\"/><!-- c -->\n"
                "  <f:alias value=\"b2\"/>\n  <f:id value=\"i\"/>\n</f:Location>\n",
                "{'resourceType':'Location','id':'i','name':'n','alias':['b1','b2']}");
}

/* ---- refusals -------------------------------------------------------------------------------- */

static void
test_parse_errors(void **state)
{
    (void)state;
    expect_parse_error("<Location/>", 400, CORE_ISSUE_STRUCTURE, "",
                       "the root element must be in the namespace http://hl7.org/fhir (got "
                       "<Location> in namespace \"\") (line 1)");
    expect_parse_error("\n<Location xmlns=\"http://hl7.org/fhir/\"/>", 400, CORE_ISSUE_STRUCTURE,
                       "",
                       "the root element must be in the namespace http://hl7.org/fhir (got "
                       "<Location> in namespace \"http://hl7.org/fhir/\") (line 2)");
    expect_parse_error("<Place " FHIR "/>", 400, CORE_ISSUE_STRUCTURE, "",
                       "unknown resource type \"Place\" (line 1)");
    expect_parse_error("<Quantity " FHIR "/>", 400, CORE_ISSUE_STRUCTURE, "",
                       "unknown resource type \"Quantity\" (line 1)");
    expect_parse_error("<Location " FHIR ">\n  <name value=\"a\"/>\n  <foo value=\"1\"/>\n"
                       "</Location>",
                       400, CORE_ISSUE_STRUCTURE, "Location.foo",
                       "unknown element \"foo\" (line 3)");
    expect_parse_error("<Location " FHIR "><identifier><value value=\"1\"/></identifier>"
                       "<identifier>\n<sytem value=\"1\"/></identifier></Location>",
                       400, CORE_ISSUE_STRUCTURE, "Location.identifier[1].sytem",
                       "unknown element \"sytem\" (line 2)");
    expect_parse_error("<Location " FHIR "><name xmlns=\"urn:other\" value=\"a\"/></Location>", 400,
                       CORE_ISSUE_STRUCTURE, "Location.name",
                       "unknown element \"name\" (namespace \"urn:other\", expected "
                       "\"http://hl7.org/fhir\") (line 1)");
    expect_parse_error("<Location " FHIR " id=\"x\"/>", 400, CORE_ISSUE_STRUCTURE, "Location",
                       "unknown attribute \"id\" on a resource element (line 1)");
    expect_parse_error("<Location " FHIR "><name value=\"a\" foo=\"b\"/></Location>", 400,
                       CORE_ISSUE_STRUCTURE, "Location.name", "unknown attribute \"foo\" (line 1)");
    expect_parse_error("<Location " FHIR "><address value=\"a\"/></Location>", 400,
                       CORE_ISSUE_STRUCTURE, "Location.address",
                       "unknown attribute \"value\" (line 1)");
    expect_parse_error("<Location " FHIR "><address><id value=\"a\"/></address></Location>", 400,
                       CORE_ISSUE_STRUCTURE, "Location.address.id",
                       "\"id\" must be an attribute, not an element (line 1)");
    expect_parse_error("<Location " FHIR "><name>Ward</name></Location>", 400, CORE_ISSUE_STRUCTURE,
                       "Location.name",
                       "text is not allowed in a primitive element (its value goes in the value "
                       "attribute) (got \"Ward\") (line 1)");
    expect_parse_error("<Location " FHIR ">x<name value=\"a\"/></Location>", 400,
                       CORE_ISSUE_STRUCTURE, "Location",
                       "text is not allowed in FHIR elements (values go in value attributes) "
                       "(got \"x\") (line 1)");
    expect_parse_error("<Location " FHIR "><name/></Location>", 400, CORE_ISSUE_VALUE,
                       "Location.name",
                       "element \"name\" has no value attribute, id or extension (line 1)");
    expect_parse_error("<Location " FHIR "><name value=\"a\"/><name value=\"b\"/></Location>", 400,
                       CORE_ISSUE_STRUCTURE, "Location.name",
                       "element \"name\" must not repeat (line 1)");
    expect_parse_error("<Location " FHIR "><extension url=\"u\"><valueString value=\"a\"/>"
                       "<valueCode value=\"b\"/></extension></Location>",
                       400, CORE_ISSUE_STRUCTURE, "Location.extension[0].valueString",
                       "only one of valueString and valueCode may be present (line 1)");
    expect_parse_error("<Organization " FHIR "><active value=\"yes\"/></Organization>", 400,
                       CORE_ISSUE_VALUE, "Organization.active",
                       "boolean must be true or false (got \"yes\") (line 1)");
    expect_parse_error("<Location " FHIR "><position><longitude value=\"1,5\"/>"
                       "<latitude value=\"2\"/></position></Location>",
                       400, CORE_ISSUE_VALUE, "Location.position.longitude",
                       "decimal must be a number (got \"1,5\") (line 1)");
    expect_parse_error("<Location " FHIR "><position><longitude value=\" 1\"/>"
                       "</position></Location>",
                       400, CORE_ISSUE_VALUE, "Location.position.longitude",
                       "decimal must be a number (got \" 1\") (line 1)");
    expect_parse_error("<Location " FHIR "><contained/></Location>", 400, CORE_ISSUE_STRUCTURE,
                       "Location.contained[0]",
                       "element \"contained\" must hold a resource (line 1)");
    expect_parse_error("<Location " FHIR "><contained><Organization/><Endpoint/></contained>"
                       "</Location>",
                       400, CORE_ISSUE_STRUCTURE, "Location.contained[0]",
                       "element \"contained\" must hold one resource only (line 1)");
    expect_parse_error("<Location " FHIR "><contained><Coding/></contained></Location>", 400,
                       CORE_ISSUE_STRUCTURE, "Location.contained[0]",
                       "unknown resource type \"Coding\" (line 1)");
    expect_parse_error("<Location " FHIR "><contained><Organization>\n<foo/></Organization>"
                       "</contained></Location>",
                       400, CORE_ISSUE_STRUCTURE, "Location.contained[0].foo",
                       "unknown element \"foo\" (line 2)");
    /* the reader's refusals come through unchanged */
    expect_parse_error("<!DOCTYPE Location><Location " FHIR "/>", 400, CORE_ISSUE_STRUCTURE, "",
                       "invalid XML at line 1: DTDs (<!DOCTYPE>) are not accepted");
    expect_parse_error("<?xml version=\"1.0\"?>\n<!DOCTYPE l [<!ENTITY a \"b\">]>\n"
                       "<Location " FHIR "><name value=\"&a;\"/></Location>",
                       400, CORE_ISSUE_STRUCTURE, "",
                       "invalid XML at line 2: DTDs (<!DOCTYPE>) are not accepted");
    expect_parse_error("<Location " FHIR "><name value=\"&a;\"/></Location>", 400,
                       CORE_ISSUE_STRUCTURE, "",
                       "invalid XML at line 1: undeclared entity reference &a; (only &lt; &gt; "
                       "&amp; &quot; &apos; and character references are accepted)");
    expect_parse_error("<Location " FHIR "><name value=\"\xC3\x28\"/></Location>", 400,
                       CORE_ISSUE_STRUCTURE, "",
                       "invalid XML at line 1: invalid UTF-8 (byte 0xC3)");
    expect_parse_error("<Location " FHIR ">\n<name value=\"a\">\n</Location>", 400,
                       CORE_ISSUE_STRUCTURE, "",
                       "invalid XML at line 3: mismatched end tag: expected </name> (got "
                       "</Location>)");
    expect_parse_error("<Location " FHIR "><name value=\"a\"/>", 400, CORE_ISSUE_STRUCTURE, "",
                       "invalid XML at line 1: unexpected end of input: <Location> is not closed");
}

static void
test_deep(void **state)
{
    /* 200 nested extensions: refused by the reader's depth limit */
    char *s = malloc(200 * 40 + 100), *w = s;
    int k;
    (void)state;

    w += sprintf(w, "<Location " FHIR ">");
    for (k = 0; k < 200; k++)
        w += sprintf(w, "<extension url=\"u\">");
    for (k = 0; k < 200; k++)
        w += sprintf(w, "</extension>");
    sprintf(w, "</Location>");
    expect_parse_error(s, 400, CORE_ISSUE_STRUCTURE, "",
                       "invalid XML at line 1: elements are nested more than 128 levels deep");
    free(s);
}

static void
test_dump_errors(void **state)
{
    (void)state;
    expect_dump_error("{'resourceType':'Location','foo':1}", "Location",
                      "cannot write the resource as XML: unknown element \"foo\" in Location");
    expect_dump_error("{'resourceType':'Location','_address':{}}", "Location",
                      "cannot write the resource as XML: unknown element \"_address\" in Location");
    expect_dump_error("{'resourceType':'Place'}", "",
                      "cannot write the resource as XML: unknown resource type");
    expect_dump_error("{'name':'x'}", "",
                      "cannot write the resource as XML: unknown resource type");
    expect_dump_error("{'resourceType':'Location','name':['a']}", "Location.name",
                      "cannot write the resource as XML: name must not be an array");
    expect_dump_error("{'resourceType':'Location','alias':'a'}", "Location.alias",
                      "cannot write the resource as XML: alias must be an array");
    expect_dump_error("{'resourceType':'Location','alias':['a'],'_alias':[null,{'id':'x'}]}",
                      "Location.alias",
                      "cannot write the resource as XML: _alias must have as many entries as "
                      "alias");
    expect_dump_error("{'resourceType':'Location','alias':[null]}", "Location.alias[0]",
                      "cannot write the resource as XML: alias must not be null");
    expect_dump_error("{'resourceType':'Location','identifier':{'value':'1'}}",
                      "Location.identifier",
                      "cannot write the resource as XML: identifier must be an array");
    expect_dump_error("{'resourceType':'Location','position':{'longitude':'1','latitude':2}}",
                      "Location.position.longitude",
                      "cannot write the resource as XML: longitude must be a number");
    expect_dump_error("{'resourceType':'Organization','active':'true'}", "Organization.active",
                      "cannot write the resource as XML: active must be true or false");
    expect_dump_error("{'resourceType':'Organization','name':7}", "Organization.name",
                      "cannot write the resource as XML: name must be a string");
    expect_dump_error("{'resourceType':'Location','extension':[{'url':'u','valueString':'a',"
                      "'valueCode':'b'}]}",
                      "Location.extension[0]",
                      "cannot write the resource as XML: only one of valueString and valueCode "
                      "may be present");
    expect_dump_error("{'resourceType':'Location','extension':[{'url':7}]}",
                      "Location.extension[0]",
                      "cannot write the resource as XML: extension.url must be a string");
    expect_dump_error("{'resourceType':'Location','contained':[{'id':'a'}]}",
                      "Location.contained[0]",
                      "cannot write the resource as XML: unknown resource type");
    expect_dump_error("{'resourceType':'Location','address':{'resourceType':'Address'}}",
                      "Location.address",
                      "cannot write the resource as XML: unknown element \"resourceType\" in "
                      "Address");
}

/* Every prefix of a resource's XML is refused with a 400, and so are corruptions of it unless
 * they happen to be valid; nothing crashes (ASan watches) or answers anything else. */
static void
test_hostile(void **state)
{
    json_t *j = json_of("{'resourceType':'Location','id':'l','text':{'status':'generated',"
                        "'div':'<div xmlns=\\'" XHTML "\\'>a<b>&amp;</b></div>'},"
                        "'contained':[{'resourceType':'Organization','name':'O'}],"
                        "'name':'a','_name':{'extension':[{'url':'u','valueDecimal':8.4800}]},"
                        "'alias':[null,'x'],'_alias':[{'id':'i'},null],"
                        "'position':{'longitude':1,'latitude':2}}");
    static const char bytes[] = "<>&;\"'/!?-=#x \xC3\xFF\0";
    core_err err = CORE_ERR_INIT;
    size_t n, cut, k;
    char *xml = reg_xml_dump(j, &n, &err), *buf;
    unsigned seed = 777;
    (void)state;

    assert_non_null(xml);
    buf = malloc(n);
    for (cut = 0; cut < n; cut++) {
        json_t *r;
        core_err e = CORE_ERR_INIT;
        memcpy(buf, xml, cut); /* exactly cut bytes: ASan flags any read beyond */
        r = reg_xml_parse(buf, cut, &e);
        if (r)
            fail_msg("prefix of %zu bytes accepted", cut);
        assert_int_equal(e.status, 400);
    }
    for (k = 0; k < 5000; k++) {
        json_t *r;
        core_err e = CORE_ERR_INIT;
        int f;
        memcpy(buf, xml, n);
        for (f = 0; f < 1 + (int)(k % 3); f++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % n] = bytes[(seed >> 20) % (sizeof(bytes) - 1)];
        }
        r = reg_xml_parse(buf, n, &e);
        if (r)
            json_decref(r);
        else
            assert_int_equal(e.status, 400);
    }
    free(buf);
    free(xml);
    json_decref(j);
}

/* ---- the official and mCSD examples ---------------------------------------------------------- */

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *buf;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int
is_mcsd_type(const char *rt)
{
    size_t t;
    for (t = 0; rt && t < NTYPES; t++)
        if (strcmp(rt, mcsd_types[t]) == 0)
            return 1;
    return 0;
}

/* The file is named <one of the seven types>-<id>.<ext>. */
static int
named_mcsd(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext), t;

    if (n <= e || strcmp(name + n - e, ext) != 0)
        return 0;
    for (t = 0; t < NTYPES; t++) {
        size_t tl = strlen(mcsd_types[t]);
        if (strncmp(name, mcsd_types[t], tl) == 0 && name[tl] == '-')
            return 1;
    }
    return 0;
}

/* JSON -> XML -> JSON must give the same JSON (numbers compared by their text), and writing
 * that again the same XML. 1 if so; 0 after printing why. */
static int
roundtrip(const char *label, const json_t *j, int validate)
{
    core_err err = CORE_ERR_INIT;
    size_t len, len2;
    char *xml = reg_xml_dump(j, &len, &err), *xml2;
    json_t *back;
    int ok;

    if (!xml) {
        print_error("%s: dump: %s at %s\n", label, err.msg, err.expr);
        return 0;
    }
    back = reg_xml_parse(xml, len, &err);
    if (!back) {
        print_error("%s: parse: %s at %s\n", label, err.msg, err.expr);
        free(xml);
        return 0;
    }
    ok = json_equal(j, back);
    if (!ok) {
        char *a = core_json_dump(j, NULL), *b = core_json_dump(back, NULL);
        print_error("%s: round trip differs\n%s\n%s\n", label, a, b);
        free(a);
        free(b);
    }
    xml2 = reg_xml_dump(back, &len2, &err);
    if (ok && (!xml2 || len2 != len || memcmp(xml, xml2, len) != 0)) {
        print_error("%s: XML written twice differs\n", label);
        ok = 0;
    }
    if (ok && validate &&
        reg_validate(back, json_string_value(json_object_get(j, "resourceType")), &err) != 0) {
        print_error("%s: invalid after the round trip: %s at %s\n", label, err.msg, err.expr);
        ok = 0;
    }
    core_err_clear(&err);
    free(xml2);
    free(xml);
    json_decref(back);
    return ok;
}

/* Round-trip every file of dir named <type>-*.json (if named) whose resourceType is one of the
 * seven. *total counts them, returns how many passed; -1 if dir cannot be read. */
static int
roundtrip_dir(const char *dir, int named, int validate, int *total)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int ok = 0;

    *total = 0;
    if (!d)
        return -1;
    while ((de = readdir(d))) {
        char path[2048];
        size_t len;
        char *buf;
        json_t *j;
        core_err err = CORE_ERR_INIT;

        if (named ? !named_mcsd(de->d_name, ".json")
                  : strlen(de->d_name) < 6 ||
                        strcmp(de->d_name + strlen(de->d_name) - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!(buf = slurp(path, &len)))
            continue;
        j = core_json_parse(buf, len, &err);
        free(buf);
        if (!j) {
            core_err_clear(&err);
            continue;
        }
        if (is_mcsd_type(json_string_value(json_object_get(j, "resourceType")))) {
            (*total)++;
            ok += roundtrip(de->d_name, j, validate);
        }
        json_decref(j);
    }
    closedir(d);
    return ok;
}

/* The examples package: tests/node_modules/hl7.fhir.r4.examples (npm ci --prefix tests), files
 * either in package/ or at the top (as the npm package 4.0.1 has them). */
static int
examples_dir(char *dir, size_t cap)
{
    const char *src = getenv("MAHALI_SOURCE_DIR");
    DIR *d;

    snprintf(dir, cap, "%s/tests/node_modules/hl7.fhir.r4.examples/package", src ? src : ".");
    if ((d = opendir(dir))) {
        closedir(d);
        return 0;
    }
    snprintf(dir, cap, "%s/tests/node_modules/hl7.fhir.r4.examples", src ? src : ".");
    if ((d = opendir(dir))) {
        closedir(d);
        return 0;
    }
    return -1;
}

static void
test_examples(void **state)
{
    char dir[1024], mcsd[1024];
    const char *src = getenv("MAHALI_SOURCE_DIR");
    int n = -1, m = 0, k = -1, l = 0;
    (void)state;

    if (examples_dir(dir, sizeof(dir)) == 0)
        n = roundtrip_dir(dir, 1, 1, &m);
    else
        print_message("official R4 examples skipped: %s not found (run npm ci --prefix tests)\n",
                      dir);
    snprintf(mcsd, sizeof(mcsd), "%s/../shared/conformance/mcsd-json", src ? src : ".");
    k = roundtrip_dir(mcsd, 0, 0, &l);
    if (k < 0)
        print_message("mCSD examples skipped: %s not found\n", mcsd);
    print_message("xml roundtrip: %d/%d official examples, %d/%d mCSD examples\n", n < 0 ? 0 : n, m,
                  k < 0 ? 0 : k, l);
    if (n >= 0) {
        assert_int_equal(n, m);
        assert_int_equal(m, 42); /* in hl7.fhir.r4.examples 4.0.1 */
    }
    if (k >= 0) {
        assert_int_equal(k, l);
        assert_true(l > 0);
    }
    if (n < 0 && k < 0)
        skip();
}

/* Official XML examples, if the package has any: XML -> JSON must equal the JSON example. */
static void
test_xml_examples(void **state)
{
    char dir[1024];
    DIR *d;
    struct dirent *de;
    int checked = 0, failed = 0;
    (void)state;

    if (examples_dir(dir, sizeof(dir)) != 0 || !(d = opendir(dir))) {
        print_message("official XML examples skipped: no examples package\n");
        skip();
        return;
    }
    while ((de = readdir(d))) {
        char path[2048], jpath[2048];
        size_t len, jlen, n = strlen(de->d_name);
        char *xml, *js;
        json_t *from_xml, *from_json;
        core_err err = CORE_ERR_INIT;

        if (!named_mcsd(de->d_name, ".xml"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        snprintf(jpath, sizeof(jpath), "%s/%.*s.json", dir, (int)(n - 4), de->d_name);
        if (!(xml = slurp(path, &len)))
            continue;
        checked++;
        from_xml = reg_xml_parse(xml, len, &err);
        js = slurp(jpath, &jlen);
        from_json = js ? core_json_parse(js, jlen, &err) : NULL;
        if (!from_xml || !from_json || !json_equal(from_xml, from_json)) {
            failed++;
            print_error("%s: %s\n", de->d_name,
                        !from_xml    ? err.msg
                        : !from_json ? "no JSON twin"
                                     : "differs from JSON");
        }
        core_err_clear(&err);
        json_decref(from_xml);
        json_decref(from_json);
        free(xml);
        free(js);
    }
    closedir(d);
    if (checked == 0) {
        print_message("official XML examples skipped: %s holds JSON only\n", dir);
        skip();
        return;
    }
    print_message("xml examples: %d/%d official XML examples read as their JSON\n",
                  checked - failed, checked);
    assert_int_equal(failed, 0);
}

/* ---- threads --------------------------------------------------------------------------------- */

static void *
worker(void *arg)
{
    const char *json = arg;
    int k, *ok = malloc(sizeof(int));

    *ok = 1;
    for (k = 0; k < 200 && *ok; k++) {
        core_err err = CORE_ERR_INIT;
        json_t *j = core_json_parse(json, strlen(json), &err);
        size_t len;
        char *xml = reg_xml_dump(j, &len, &err);
        json_t *back = xml ? reg_xml_parse(xml, len, &err) : NULL;
        *ok = back && json_equal(j, back);
        json_decref(back);
        json_decref(j);
        free(xml);
    }
    return ok;
}

static void
test_threads(void **state)
{
    char *json = dq("{'resourceType':'Location','name':'a','_name':{'id':'n'},'alias':['x'],"
                    "'position':{'longitude':8.4800,'latitude':1},'text':{'status':'generated',"
                    "'div':'<div xmlns=\\'" XHTML "\\'>a</div>'}}");
    pthread_t th[4];
    int k;
    (void)state;

    for (k = 0; k < 4; k++)
        assert_int_equal(pthread_create(&th[k], NULL, worker, json), 0);
    for (k = 0; k < 4; k++) {
        void *ok;
        assert_int_equal(pthread_join(th[k], &ok), 0);
        assert_int_equal(*(int *)ok, 1);
        free(ok);
    }
    free(json);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_values),
        cmocka_unit_test(test_decimal),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_primitive_extensions),
        cmocka_unit_test(test_contained),
        cmocka_unit_test(test_narrative),
        cmocka_unit_test(test_lenient_order_and_noise),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_deep),
        cmocka_unit_test(test_dump_errors),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_xml_examples),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
