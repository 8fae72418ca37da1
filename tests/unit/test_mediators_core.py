"""property, log, header, payloadFactory, enrich: the synapse.md vectors P1-P13, L1-L2, H1-H2, PF1-PF6, EN1."""

from __future__ import annotations

import json
import logging
import re

import pytest
from lxml import etree

from sfbulk.errors import ConfigError, MediationFault
from sfbulk.expressions.expression import compile_expression as X
from sfbulk.mediators import (
    EnrichMediator,
    EnrichSource,
    EnrichTarget,
    HeaderMediator,
    LogMediator,
    LogProperty,
    PayloadArg,
    PayloadFactoryMediator,
    PropertyMediator,
)
from sfbulk.message.context import MessageContext

SYNAPSE_NS = "http://ws.apache.org/ns/synapse"


def ctx_for(
    body: bytes = b"<r/>", content_type: str = "application/xml", engine=None, headers=(), uri="/services/P"
):
    hdrs = [("Content-Type", content_type), *headers] if content_type else list(headers)
    return MessageContext.from_http(method="POST", uri=uri, headers=hdrs, body=body, engine=engine)


def body_xml(ctx: MessageContext) -> str:
    data, _ = ctx.payload_bytes()
    return data.decode()


# --- property ----------------------------------------------------------------------------------


def test_p1_p2_text_expression_and_empty_node_set():
    ctx = ctx_for(b"<r><apiUrl>https://x</apiUrl></r>")
    PropertyMediator("a", expression=X("//apiUrl/text()")).mediate(ctx)
    assert ctx.properties["a"] == "https://x"
    ctx = ctx_for(b"<r/>")
    PropertyMediator("a", expression=X("//apiUrl/text()")).mediate(ctx)
    assert ctx.properties["a"] == ""


@pytest.mark.parametrize("expr", ["$ctx:missing", "get-property('missing')"])
def test_p3_p4_null_result_keeps_old_value(expr):
    ctx = ctx_for()
    ctx.properties["a"] = "old"
    assert PropertyMediator("a", expression=X(expr)).mediate(ctx) is True
    assert ctx.properties["a"] == "old"


def test_p5_p6_p7_number_boolean_literal():
    ctx = ctx_for(b"<r><i/><i/></r>")
    PropertyMediator("n", expression=X("count(//i)")).mediate(ctx)
    PropertyMediator("b", expression=X("boolean(//x)")).mediate(ctx)
    PropertyMediator("v", value="3000000").mediate(ctx)
    assert (ctx.properties["n"], ctx.properties["b"], ctx.properties["v"]) == ("2.0", "false", "3000000")


def test_p8_types():
    ctx = ctx_for()
    PropertyMediator("f", value="TRUE", type="BOOLEAN").mediate(ctx)
    PropertyMediator("g", value="nope", type="BOOLEAN").mediate(ctx)
    PropertyMediator("i", value="42", type="INTEGER").mediate(ctx)
    PropertyMediator("d", value="2.5", type="DOUBLE").mediate(ctx)
    assert ctx.properties["f"] is True and ctx.properties["g"] is False
    assert ctx.properties["i"] == 42 and ctx.properties["d"] == 2.5
    with pytest.raises(ConfigError, match="cannot be converted to INTEGER"):
        PropertyMediator("i", value="2.0", type="INTEGER")
    ctx = ctx_for(b"<r><n>2.0</n></r>")
    with pytest.raises(MediationFault, match="cannot be converted"):
        PropertyMediator("i", expression=X("//n/text()"), type="INTEGER").mediate(ctx)


def test_p9_pattern_is_a_whole_string_match():
    prop = PropertyMediator("id", expression=X("//s/text()"), pattern=re.compile(r"ID-(\d+)"), group=1)
    ctx = ctx_for(b"<r><s>ID-42</s></r>")
    prop.mediate(ctx)
    assert ctx.properties["id"] == "42"
    ctx = ctx_for(b"<r><s>x ID-42</s></r>")
    prop.mediate(ctx)
    assert ctx.properties["id"] == ""


def test_p10_message_type_drags_content_type_along():
    ctx = ctx_for(b"<r/>")
    PropertyMediator("messageType", value="text/plain", scope="axis2", type="STRING").mediate(ctx)
    assert ctx.axis2["messageType"] == "text/plain"
    assert ctx.axis2["ContentType"] == "text/plain"
    assert ctx.headers["content-type"] == "text/plain"


def test_p11_remove_transport_header_and_transport_null_is_empty():
    ctx = ctx_for(headers=[("Content-Encoding", "gzip")])
    PropertyMediator("Content-Encoding", action="remove", scope="transport").mediate(ctx)
    assert "Content-Encoding" not in ctx.headers
    PropertyMediator("X-Empty", expression=X("$ctx:missing"), scope="transport").mediate(ctx)
    assert ctx.headers["X-Empty"] == ""
    PropertyMediator("nothing", action="remove").mediate(ctx)  # removing a missing key is a no-op


def test_p12_element_without_text_is_serialized():
    ctx = ctx_for(b"<r><objects>\n <values><sObject>a</sObject></values></objects></r>")
    PropertyMediator("objects", expression=X("//objects")).mediate(ctx)
    assert ctx.properties["objects"] == "<objects>\n <values><sObject>a</sObject></values></objects>"


def test_p13_registry_scope_writes_a_file(engine):
    ctx = ctx_for(engine=engine)
    PropertyMediator("conf:/a/b", value="hi", scope="registry").mediate(ctx)
    assert (engine.registry.root / "config" / "a" / "b").read_text() == "hi"
    assert engine.registry.get("conf:/a/b") == "hi"


def test_property_operation_scope_and_inline_element():
    ctx = ctx_for()
    element = etree.fromstring("<saved><x>1</x></saved>")
    PropertyMediator("keep", element=element, scope="operation").mediate(ctx)
    stored = ctx.operation["keep"]
    assert stored is not element and etree.tostring(stored) == b"<saved><x>1</x></saved>"


def test_property_config_errors():
    with pytest.raises(ConfigError, match="scope"):
        PropertyMediator("a", value="x", scope="galaxy")
    with pytest.raises(ConfigError, match="required"):
        PropertyMediator("a")
    with pytest.raises(ConfigError, match="type"):
        PropertyMediator("a", value="1", type="COMPLEX")


# --- log ---------------------------------------------------------------------------------------


def test_l1_l2_custom_level(caplog):
    caplog.set_level(logging.INFO, logger="sfbulk.mediation")
    ctx = ctx_for()
    ctx.properties["a"] = "1"
    assert LogMediator(level="custom", properties=[LogProperty("x", expression=X("$ctx:a"))]).mediate(ctx)
    LogMediator(
        level="custom", separator=";", properties=[LogProperty("a", "1"), LogProperty("b", "2")]
    ).mediate(ctx)
    LogMediator(level="custom", properties=[LogProperty("m", expression=X("$ctx:missing"))]).mediate(ctx)
    messages = [r.getMessage() for r in caplog.records if r.name == "sfbulk.mediation"]
    assert messages == ["x = 1", "a = 1;b = 2", "m = null"]


def test_log_simple_full_category_and_secrets(caplog):
    caplog.set_level(logging.DEBUG, logger="sfbulk.mediation")
    secret = "00Dxx!SuperSecretSessionToken"
    body = f"<r><accessToken>{secret}</accessToken><a>visible</a></r>".encode()
    ctx = ctx_for(body, uri="/services/StockQuote", headers=[("SOAPAction", '"urn:getQuote"')])
    ctx.properties["uri.var.accessToken"] = secret
    LogMediator(
        level="simple",
        category="warn",
        properties=[LogProperty("tok", expression=X("$ctx:uri.var.accessToken"))],
    ).mediate(ctx)
    LogMediator(level="full", category="DEBUG").mediate(ctx)
    LogMediator(
        level="custom", properties=[LogProperty("accessToken", expression=X("$ctx:uri.var.accessToken"))]
    ).mediate(ctx)
    records = [r for r in caplog.records if r.name == "sfbulk.mediation"]
    simple, full, custom = (r.getMessage() for r in records)
    assert records[0].levelno == logging.WARNING and records[1].levelno == logging.DEBUG
    assert simple.startswith("To: /services/StockQuote, WSAction: urn:getQuote, SOAPAction: urn:getQuote")
    assert "Direction: request" in simple
    assert "Envelope: <" in full and "<a>visible</a>" in full
    assert custom == "accessToken = ***"
    assert all(secret not in r.getMessage() for r in records)


def test_log_never_changes_the_message():
    ctx = ctx_for(b"<r/>")
    LogMediator(level="custom", properties=[LogProperty("a", "1")]).mediate(ctx)
    assert ctx.payload_bytes() == (b"<r/>", "application/xml")


# --- header ------------------------------------------------------------------------------------


def test_h1_h2_transport_headers():
    ctx = ctx_for(headers=[("cache-control", "no-cache")])
    ctx.properties["uri.var.accessToken"] = "t1"
    HeaderMediator(
        "X-SFDC-Session", expression=X("get-property('uri.var.accessToken')"), scope="transport"
    ).mediate(ctx)
    HeaderMediator("Cache-Control", action="remove", scope="transport").mediate(ctx)
    assert ctx.headers["X-SFDC-Session"] == "t1"
    assert "cache-control" not in ctx.headers
    HeaderMediator("X-None", expression=X("$ctx:missing"), scope="transport").mediate(ctx)
    assert "X-None" not in ctx.headers  # null header is not sent


def test_header_default_scope_addressing_and_soap_header():
    ctx = ctx_for(b"<r/>")
    HeaderMediator("To", value="http://elsewhere/").mediate(ctx)
    HeaderMediator("Action", value="urn:x").mediate(ctx)
    assert ctx.to == "http://elsewhere/" and ctx.soap_action == "urn:x"
    HeaderMediator("m:Trace", value="on", namespace="urn:m").mediate(ctx)
    header = ctx.envelope.find("{*}Header")
    assert header.find("{urn:m}Trace").text == "on"
    HeaderMediator("m:Trace", action="remove", namespace="urn:m").mediate(ctx)
    assert header.find("{urn:m}Trace") is None
    with pytest.raises(ConfigError, match="namespace qualified"):
        HeaderMediator("Custom", value="x")
    with pytest.raises(ConfigError, match="scope"):
        HeaderMediator("X", value="x", scope="axis2")


# --- payloadFactory ----------------------------------------------------------------------------

JOB_FORMAT = (
    '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>$1</operation>'
    "<object>$2</object></jobInfo>"
)


def _pf1(operation: str) -> str:
    ctx = ctx_for(b"<createJob/>")
    ctx.properties.update({"uri.var.operation": operation, "uri.var.object": "Contact"})
    args = [
        PayloadArg(expression=X("get-property('uri.var.operation')")),
        PayloadArg(expression=X("get-property('uri.var.object')")),
    ]
    PayloadFactoryMediator(JOB_FORMAT, args=args).mediate(ctx)
    return body_xml(ctx)


def test_pf1_pf2_create_job_body_and_escaping():
    assert _pf1("insert") == (
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>insert</operation>'
        "<object>Contact</object></jobInfo>"
    )
    assert "<operation>a&amp;b</operation>" in _pf1("a&b")
    assert "<operation>&lt;/operation&gt;&lt;x/&gt;</operation>" in _pf1("</operation><x/>")


def test_pf3_synapse_default_namespace_quirk():
    ctx = ctx_for()
    PayloadFactoryMediator(f'<r xmlns="{SYNAPSE_NS}">$1</r>', args=[PayloadArg(value="x")]).mediate(ctx)
    assert body_xml(ctx) == f'<r xmlns="{SYNAPSE_NS}">x</r>'
    assert ctx.axis2["messageType"] == "application/xml"


def test_pf4_json_escaping_without_quotes():
    ctx = ctx_for()
    ctx.properties["t"] = 'ab"c'
    fmt = '{"refresh_token":"$1","grant_type":"refresh_token"}'
    PayloadFactoryMediator(fmt, media_type="json", args=[PayloadArg(expression=X("$ctx:t"))]).mediate(ctx)
    data, ctype = ctx.payload_bytes()
    assert json.loads(data) == {"refresh_token": 'ab"c', "grant_type": "refresh_token"}
    assert ctype == "application/json" and ctx.axis2["messageType"] == "application/json"


def test_pf5_text_element_with_csv():
    ctx = ctx_for()
    ctx.properties["objects"] = "a,b\n1,2"
    fmt = '<text xmlns="http://ws.apache.org/commons/ns/payload">$1</text>'
    PayloadFactoryMediator(fmt, args=[PayloadArg(expression=X("$ctx:objects"))]).mediate(ctx)
    assert ctx.text_payload() == "a,b\n1,2"


def test_pf6_xml_argument_inserted_as_markup():
    ctx = ctx_for(b"<in><b>1</b></in>")
    PayloadFactoryMediator('<r xmlns="">$1</r>', args=[PayloadArg(expression=X("//b"))]).mediate(ctx)
    # //b has text "1": its string value is "1" (not XML), so it is escaped text
    assert body_xml(ctx) == "<r>1</r>"
    ctx = ctx_for(b"<in><b>1</b></in>")
    ctx.properties["frag"] = "<b>1</b>"
    PayloadFactoryMediator('<r xmlns="">$1</r>', args=[PayloadArg(expression=X("$ctx:frag"))]).mediate(ctx)
    assert body_xml(ctx) == "<r><b>1</b></r>"
    ctx = ctx_for(b"<in/>")
    ctx.properties["frag"] = "<b>1</b>"
    PayloadFactoryMediator(
        '<r xmlns="">$1</r>', args=[PayloadArg(expression=X("$ctx:frag"), literal=True)]
    ).mediate(ctx)
    assert body_xml(ctx) == "<r>&lt;b&gt;1&lt;/b&gt;</r>"


def test_payload_factory_text_media_type_and_missing_argument():
    ctx = ctx_for()
    PayloadFactoryMediator("hello $1 and $2", media_type="text", args=[PayloadArg(value="a")]).mediate(ctx)
    assert ctx.text_payload() == "hello a and $2"  # mis-match stops replacement
    assert ctx.axis2["messageType"] == "text/plain"
    with pytest.raises(ConfigError, match="well-formed"):
        PayloadFactoryMediator("<unclosed>")


def test_payload_factory_keeps_soap_message_type_and_soap_headers():
    env = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h xmlns="urn:h">1</h></s:Header>'
        b"<s:Body><old/></s:Body></s:Envelope>"
    )
    ctx = ctx_for(env, content_type="text/xml")
    PayloadFactoryMediator('<ok xmlns=""/>').mediate(ctx)
    assert ctx.axis2["messageType"] == "text/xml"
    assert ctx.envelope.find("{*}Header/{urn:h}h") is not None
    assert [c.tag for c in ctx.body_element] == ["ok"]


def test_payload_factory_json_with_xml_argument():
    ctx = ctx_for()
    ctx.properties["x"] = "<a><b>1</b><b>2</b></a>"
    PayloadFactoryMediator('{"v":$1}', media_type="json", args=[PayloadArg(expression=X("$ctx:x"))]).mediate(
        ctx
    )
    assert json.loads(ctx.payload_bytes()[0]) == {"v": {"a": {"b": [1, 2]}}}


# --- enrich ------------------------------------------------------------------------------------


def test_en1_save_and_restore_the_body():
    ctx = ctx_for(b"<orig><a>1</a></orig>")
    EnrichMediator(EnrichSource(type="body"), EnrichTarget(type="property", property="ORIG")).mediate(ctx)
    PayloadFactoryMediator('<other xmlns=""/>').mediate(ctx)
    assert body_xml(ctx) == "<other/>"
    EnrichMediator(EnrichSource(type="property", property="ORIG"), EnrichTarget(type="body")).mediate(ctx)
    assert body_xml(ctx) == "<orig><a>1</a></orig>"


def test_enrich_inline_child_sibling_and_custom():
    ctx = ctx_for(b"<r><a>1</a></r>")
    EnrichMediator(
        EnrichSource(type="inline", inline=etree.fromstring("<b>2</b>")),
        EnrichTarget(xpath=X("//r"), action="child"),
    ).mediate(ctx)
    EnrichMediator(
        EnrichSource(type="inline", inline=etree.fromstring("<c/>")),
        EnrichTarget(xpath=X("//a"), action="sibling"),
    ).mediate(ctx)
    EnrichMediator(EnrichSource(type="inline", inline="9"), EnrichTarget(xpath=X("//a"))).mediate(ctx)
    assert body_xml(ctx) == "<r><a>9</a><c/><b>2</b></r>"
    ctx.properties["p"] = "7"
    EnrichMediator(EnrichSource(type="property", property="p"), EnrichTarget(xpath=X("//b"))).mediate(ctx)
    assert body_xml(ctx) == "<r><a>9</a><c/><b>7</b></r>"
    with pytest.raises(ConfigError):
        EnrichMediator(EnrichSource(type="custom"), EnrichTarget(type="body"))
    with pytest.raises(MediationFault, match="selects no element"):
        EnrichMediator(EnrichSource(type="inline", inline="x"), EnrichTarget(xpath=X("//missing"))).mediate(
            ctx
        )


def test_log_lines_are_bounded_whatever_the_message_carries(caplog):
    caplog.set_level(logging.INFO, logger="sfbulk.mediation")
    secret = "00Dxx!SuperSecretSessionToken"
    big = "v" * 20_000
    body = f"<r><accessToken>{secret}</accessToken><a>{big}</a></r>".encode()
    ctx = ctx_for(body)
    ctx.properties["accessToken"] = secret
    ctx.properties["long"] = "x" * 995 + secret + "y" * 5000  # the cut falls inside the secret
    LogMediator(level="custom", properties=[LogProperty("v", expression=X("$ctx:long"))]).mediate(ctx)
    LogMediator(level="full").mediate(ctx)
    custom, full = (r.getMessage() for r in caplog.records if r.name == "sfbulk.mediation")
    assert len(custom) < 1100 and "more characters" in custom
    assert len(full) < 9000 and "<a>vvv" in full
    assert secret[:8] not in custom + full
