"""MessageContext: properties and scopes, builders (§6.2), JSON view (§6.3), formatters (§6.4), responses (§6.5)."""

from __future__ import annotations

import base64
import json

import pytest
from lxml import etree

from sfbulk import xmlsafe
from sfbulk.errors import PayloadError
from sfbulk.message.builders import PAYLOAD_NS, SOAP11_NS, SOAP12_NS
from sfbulk.message.context import MessageContext

CREATE_JOB = b"<createJob><apiVersion>34.0</apiVersion><object>Contact</object></createJob>"


def request(
    body: bytes = b"", content_type: str | None = "application/xml", uri: str = "/services/P", **kw
) -> MessageContext:
    headers = [("Content-Type", content_type)] if content_type else []
    headers += list(kw.pop("headers", []))
    return MessageContext.from_http(
        method=kw.pop("method", "POST"), uri=uri, headers=headers, body=body, **kw
    )


# --- properties ---------------------------------------------------------------------------------


def test_default_scope_null_is_a_no_op() -> None:
    ctx = MessageContext()
    ctx.set_property("a", "old")
    ctx.set_property("a", None)
    assert ctx.get_property("a") == "old"
    ctx.remove_property("a")
    ctx.remove_property("a")  # removing a missing key is fine
    assert ctx.get_property("a") is None


def test_transport_scope_is_case_insensitive_and_null_is_empty() -> None:
    ctx = request(CREATE_JOB, headers=[("Cache-Control", "no-cache")])
    assert ctx.get_property("content-type", "transport") == "application/xml"
    ctx.set_property("X-Empty", None, "transport")
    assert ctx.headers["x-empty"] == ""
    ctx.remove_property("cache-control", "transport")  # H2 / P11
    assert "Cache-Control" not in ctx.headers


def test_axis2_operation_and_system_scopes() -> None:
    ctx = MessageContext()
    ctx.set_property("FORCE_SC_ACCEPTED", "true", "axis2")
    ctx.set_property("k", 1, "operation")
    ctx.set_property("sfbulk.test.prop", "v", "system")
    assert ctx.axis2["FORCE_SC_ACCEPTED"] == "true"
    assert ctx.get_property("k", "operation") == 1
    assert ctx.get_property("sfbulk.test.prop", "system") == "v"
    ctx.remove_property("sfbulk.test.prop", "system")
    with pytest.raises(ValueError, match="unknown property scope"):
        ctx.set_property("x", "y", "bogus")


def test_message_type_is_a_special_axis2_property() -> None:  # P10
    ctx = request(CREATE_JOB)
    assert not ctx.is_built
    ctx.set_property("messageType", "text/plain", "axis2")
    assert ctx.axis2["messageType"] == "text/plain"
    assert ctx.axis2["ContentType"] == "text/plain"
    assert ctx.headers["Content-Type"] == "text/plain"
    assert ctx.is_built  # forces the formatter to apply


def test_registry_scope_goes_through_the_engine_registry(engine, tmp_path) -> None:  # P13-ish
    ctx = MessageContext(engine=engine)
    ctx.set_property("conf:/a/b", "hi", "registry")
    assert (tmp_path / "registry" / "config" / "a" / "b").read_text() == "hi"
    assert ctx.get_property("conf:/a/b", "registry") == "hi"
    ctx.remove_property("conf:/a/b", "registry")
    assert ctx.get_property("conf:/a/b", "registry") is None


def test_frames_and_fault_stack() -> None:
    ctx = MessageContext()
    assert ctx.frame is None
    ctx.push_frame({"jobId": "750x"})
    ctx.push_frame({})
    assert ctx.frame == {}
    assert ctx.pop_frame() == {}
    assert ctx.frame == {"jobId": "750x"}
    ctx.fault_stack.append("handler")
    assert ctx.fault_stack == ["handler"]


# --- inbound request ------------------------------------------------------------------------------


def test_from_http_sets_to_action_and_axis2() -> None:
    ctx = request(
        CREATE_JOB,
        uri="/services/P/a/b?x=1",
        headers=[("SOAPAction", '"urn:x"'), ("Action", "urn:createJob")],
        method="post",
    )
    assert ctx.to == "/services/P/a/b?x=1"
    assert ctx.soap_action == "urn:x"
    assert ctx.headers["action"] == "urn:createJob"
    assert ctx.axis2["HTTP_METHOD"] == "POST"
    assert ctx.axis2["REST_URL_POSTFIX"] == "/a/b?x=1"
    assert ctx.axis2["messageType"] == "application/xml"
    assert ctx.axis2["ContentType"] == "application/xml"
    assert "NO_ENTITY_BODY" not in ctx.axis2


def test_rest_url_postfix_given_by_the_server_wins_and_get_has_no_body() -> None:
    ctx = request(b"", content_type=None, uri="/services/P?x=1", method="GET", rest_url_postfix="?x=1")
    assert ctx.axis2["REST_URL_POSTFIX"] == "?x=1"
    assert ctx.axis2["NO_ENTITY_BODY"] is True
    assert len(ctx.body_element) == 0


def test_soap12_action_from_content_type() -> None:
    env = f'<e:Envelope xmlns:e="{SOAP12_NS}"><e:Body><x/></e:Body></e:Envelope>'.encode()
    ctx = request(env, content_type='application/soap+xml; charset=UTF-8; action="urn:a"')
    assert ctx.soap_action == "urn:a"
    assert ctx.envelope.tag == f"{{{SOAP12_NS}}}Envelope"


# --- builders ---------------------------------------------------------------------------------------


def test_pox_is_wrapped_in_a_soap11_envelope() -> None:
    ctx = request(CREATE_JOB)
    env = ctx.envelope
    assert env.tag == f"{{{SOAP11_NS}}}Envelope"
    assert [etree.QName(c).localname for c in env] == ["Header", "Body"]
    assert ctx.payload_element.tag == "createJob"


def test_text_xml_soap_envelope_is_used_as_is() -> None:
    env = f'<soapenv:Envelope xmlns:soapenv="{SOAP11_NS}"><soapenv:Body><createJob/></soapenv:Body></soapenv:Envelope>'
    ctx = request(env.encode(), content_type="text/xml")
    assert ctx.payload_element.tag == "createJob"
    assert ctx.header_element is None


def test_plain_xml_on_text_xml_is_accepted_and_wrapped() -> None:  # deliberate deviation (§6.2)
    ctx = request(CREATE_JOB, content_type="text/xml; charset=UTF-8")
    assert ctx.envelope.tag == f"{{{SOAP11_NS}}}Envelope"
    assert ctx.payload_element.tag == "createJob"
    body, ctype = ctx.payload_bytes()  # messageType text/xml -> the whole envelope
    assert ctype == "text/xml; charset=UTF-8"
    assert body.startswith(b"<soapenv:Envelope") and CREATE_JOB in body


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        (b"<a><b></a>", "application/xml", "not well-formed"),
        (b"<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>", "text/xml", "DTDs are not allowed"),
        (b'{"a": ', "application/json", "not valid JSON"),
        (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"/>', "text/xml", "no Body"),
    ],
)
def test_build_errors_are_payload_errors(body: bytes, content_type: str, message: str) -> None:
    ctx = request(body, content_type=content_type)
    with pytest.raises(PayloadError, match=message):
        ctx.envelope  # noqa: B018


def test_text_plain_builder() -> None:
    ctx = request("héllo".encode(), content_type="text/plain; charset=UTF-8")
    first = ctx.payload_element
    assert first.tag == f"{{{PAYLOAD_NS}}}text" and first.text == "héllo"
    assert ctx.payload_kind == "text"


def test_form_builder_and_formatter() -> None:
    ctx = request(b"a=1+2&b=x%26y&c=", content_type="application/x-www-form-urlencoded")
    first = ctx.payload_element
    assert [(c.tag, c.text) for c in first] == [("a", "1 2"), ("b", "x&y"), ("c", "")]
    body, ctype = ctx.payload_bytes()
    assert body == b"a=1%202&b=x%26y&c=" and ctype == "application/x-www-form-urlencoded"


def test_binary_is_relayed_unchanged_and_viewable_as_base64() -> None:
    data = b"Name,Email\nA,a@x\n"
    ctx = request(data, content_type="text/csv")
    assert ctx.payload_bytes() == (data, "text/csv")
    assert ctx.payload_kind == "raw"
    first = ctx.payload_element
    assert first.tag == f"{{{PAYLOAD_NS}}}binary"
    assert base64.b64decode(first.text) == data
    assert ctx.payload_bytes() == (data, "text/csv")  # relay formatter decodes the wrapper


# --- JSON ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc, xml",
    [
        ('{"a":"x","b":[1,2]}', "<jsonObject><a>x</a><b>1</b><b>2</b></jsonObject>"),  # J1
        ("[1,2]", "<jsonArray><jsonElement>1</jsonElement><jsonElement>2</jsonElement></jsonArray>"),  # J2
        (
            '{"32X32":"i.png"}',
            "<jsonObject><_JsonReader_PD_32X32>i.png</_JsonReader_PD_32X32></jsonObject>",
        ),  # J3
        ('{"$id":1,"e":[],"o":{}}', "<jsonObject><_JsonReader_PS_id>1</_JsonReader_PS_id><o/></jsonObject>"),
    ],
)
def test_json_xml_view(doc: str, xml: str) -> None:
    ctx = request(doc.encode(), content_type="application/json")
    assert xmlsafe.serialize(ctx.payload_element) == xml


def test_json_is_relayed_untouched_and_reserialized_as_json() -> None:
    doc = b'{ "a" : "x",  "b": [1, 2] }'
    ctx = request(doc, content_type="application/json")
    assert ctx.json_value() == {"a": "x", "b": [1, 2]}
    assert ctx.payload_bytes() == (doc, "application/json")  # json-eval does not re-serialize
    ctx.envelope  # noqa: B018 - an XPath mediator looked at it
    body, ctype = ctx.payload_bytes()
    assert json.loads(body) == {"a": "x", "b": [1, 2]} and ctype == "application/json"


def test_editing_the_json_view_changes_the_json() -> None:
    ctx = request(b'{"a":"x"}', content_type="application/json")
    etree.SubElement(ctx.payload_element, "n").text = "25.0000"
    assert ctx.payload_bytes() == (b'{"a":"x","n":25.0000}', "application/json")


def test_xml_payload_as_json() -> None:
    ctx = request(b"<r><a>x</a><b>1</b><b>true</b><e/></r>")
    ctx.set_property("messageType", "application/json", "axis2")
    assert ctx.payload_bytes() == (b'{"r":{"a":"x","b":[1,true],"e":null}}', "application/json")


def test_set_json_payload_and_xml_output() -> None:
    ctx = request(CREATE_JOB)
    ctx.set_json_payload('{"k":"v"}')
    assert ctx.is_json() and ctx.json_value() == {"k": "v"}
    # messageType is still the request's application/xml: the formatter writes the XML view (§6.4).
    assert ctx.payload_bytes() == (b"<jsonObject><k>v</k></jsonObject>", "application/xml; charset=UTF-8")
    ctx.axis2["messageType"] = "application/json"
    assert ctx.payload_bytes() == (b'{"k":"v"}', "application/json")
    with pytest.raises(PayloadError):
        ctx.set_json_payload("{nope")


# --- formatters -------------------------------------------------------------------------------------------


def test_application_xml_formatter_writes_the_first_body_child() -> None:
    ctx = request(CREATE_JOB)
    ctx.payload_element.find("object").text = "Account"
    body, ctype = ctx.payload_bytes()
    assert body == CREATE_JOB.replace(b"Contact", b"Account")
    assert ctype == "application/xml; charset=UTF-8"


def test_content_type_axis2_property_picks_the_xml_content_type() -> None:
    ctx = request(CREATE_JOB)
    ctx.envelope  # noqa: B018
    ctx.axis2["ContentType"] = "application/vnd.x+xml"
    assert ctx.payload_bytes()[1] == "application/vnd.x+xml; charset=UTF-8"


def test_text_plain_formatter_and_set_text_payload() -> None:
    ctx = request(CREATE_JOB)
    ctx.set_text_payload("a,b\n1,2")
    ctx.set_property("messageType", "text/plain", "axis2")
    assert ctx.payload_bytes() == (b"a,b\n1,2", "text/plain; charset=UTF-8")
    ctx.set_property("messageType", "text/csv", "axis2")
    assert ctx.payload_bytes() == (b"a,b\n1,2", "text/csv")


def test_set_body_element_replaces_body_children_and_keeps_headers() -> None:
    env = f'<s:Envelope xmlns:s="{SOAP11_NS}"><s:Header><h/></s:Header><s:Body><a/><b/></s:Body></s:Envelope>'
    ctx = request(env.encode(), content_type="text/xml")
    ctx.set_body_element(etree.fromstring("<jobInfo/>"))
    assert [c.tag for c in ctx.body_element] == ["jobInfo"]
    assert ctx.header_element[0].tag == "h"


def test_set_raw_payload_is_relayed() -> None:
    ctx = request(CREATE_JOB)
    ctx.set_raw_payload(b"PK\x03\x04", "zip/csv")
    assert ctx.payload_bytes() == (b"PK\x03\x04", "zip/csv")


# --- responses ---------------------------------------------------------------------------------------------


def test_set_response_replaces_payload_headers_and_axis2() -> None:
    ctx = request(CREATE_JOB, content_type="text/xml", headers=[("Action", "urn:createJob")])
    ctx.set_property("jobId", "750x")
    ctx.set_response(
        201,
        "Created",
        [("Content-Type", "application/xml; charset=UTF-8"), ("Cache-Control", "no")],
        b"<jobInfo><id>750</id></jobInfo>",
    )
    assert ctx.get_property("jobId") == "750x"  # default scope survives
    assert "Action" not in ctx.headers and ctx.headers["cache-control"] == "no"
    assert ctx.axis2["HTTP_SC"] == 201 and ctx.axis2["HTTP_SC_DESC"] == "Created"
    assert ctx.axis2["messageType"] == "application/xml"  # the MI rule
    assert ctx.axis2["ContentType"] == "application/xml; charset=UTF-8"
    assert "FAULT_MESSAGE" not in ctx.axis2 and "NO_ENTITY_BODY" not in ctx.axis2
    assert ctx.payload_element.find("id").text == "750"


def test_set_response_error_and_empty() -> None:
    ctx = request(CREATE_JOB)
    ctx.set_response(400, "Bad Request", {"Content-Type": "application/xml"}, b"<error/>")
    assert ctx.axis2["FAULT_MESSAGE"] == "true"
    ctx.set_response(204, "", [], b"")
    assert ctx.axis2["NO_ENTITY_BODY"] is True and "FAULT_MESSAGE" not in ctx.axis2
    assert ctx.axis2["HTTP_SC_DESC"] == "No Content"


def test_call_then_respond_relays_backend_response() -> None:  # U7
    ctx = request(CREATE_JOB, headers=[("Host", "me"), ("User-Agent", "curl")])
    ctx.set_response(
        404, "Not Found", [("Content-Type", "application/xml"), ("Date", "x"), ("X-Id", "1")], b"<e/>"
    )
    result = ctx.to_http_response()
    assert (result.status, result.reason, result.body) == (404, "Not Found", b"<e/>")
    assert result.headers == [("X-Id", "1"), ("Content-Type", "application/xml")]


def test_no_hop_by_hop_or_framing_header_reaches_the_caller() -> None:
    ctx = request(CREATE_JOB)
    ctx.set_response(
        200,
        "OK",
        [
            ("Content-Type", "application/xml"),
            ("Connection", "close"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("TE", "trailers"),
            ("Proxy-Connection", "x"),
            ("Content-Length", "4"),
            ("Server", "sf"),
            ("Date", "d"),
            ("X-Kept", "1"),
        ],
        b"<r/>",
    )
    ctx.set_property("User-Agent", "mediator", "transport")
    ctx.set_property("Host", "mediator", "transport")
    assert ctx.to_http_response().headers == [("X-Kept", "1"), ("Content-Type", "application/xml")]


def test_respond_without_call_echoes_no_request_header() -> None:
    # Deliberate deviation from Synapse (synapse.md §6.5 echoes them): the caller's headers,
    # credentials included, never come back unless a mediator sets them (docs/server.md).
    ctx = request(
        CREATE_JOB,
        headers=[
            ("Host", "me"),
            ("Accept", "*/*"),
            ("Content-Length", "9"),
            ("Action", "urn:a"),
            ("Authorization", "Bearer SECRET"),
            ("Cookie", "sid=SECRET"),
        ],
    )
    assert ctx.get_property("Authorization", "transport") == "Bearer SECRET"  # still readable ($trp:)
    result = ctx.to_http_response()
    assert result.status == 200
    assert result.body == CREATE_JOB
    assert result.headers == [("Content-Type", "application/xml")]


def test_request_headers_a_mediator_sets_do_flow_back() -> None:
    ctx = request(
        CREATE_JOB, headers=[("X-Correlation-Id", "c-1"), ("Authorization", "Bearer SECRET"), ("X-Gone", "1")]
    )
    ctx.set_property(
        "X-Correlation-Id", ctx.get_property("X-Correlation-Id", "transport"), "transport"
    )  # copied
    ctx.set_property("X-New", "n", "transport")
    ctx.remove_property("X-Gone", "transport")
    ctx.set_property("X-Gone", "back", "transport")
    result = ctx.to_http_response()
    assert result.headers == [
        ("X-Correlation-Id", "c-1"),
        ("X-New", "n"),
        ("X-Gone", "back"),
        ("Content-Type", "application/xml"),
    ]


def test_soap_fault_gives_500_unless_http_sc() -> None:
    fault = f'<s:Envelope xmlns:s="{SOAP11_NS}"><s:Body><s:Fault><faultcode>x</faultcode></s:Fault></s:Body></s:Envelope>'
    ctx = request(fault.encode(), content_type="text/xml")
    ctx.envelope  # noqa: B018
    assert ctx.is_soap_fault()
    assert ctx.to_http_response().status == 500
    ctx.axis2["HTTP_SC"] = "200"
    assert ctx.to_http_response().status == 200


def test_touched_response_is_reserialized_by_message_type() -> None:
    ctx = request(CREATE_JOB, content_type="text/xml")
    ctx.set_response(200, "OK", [("Content-Type", "application/xml")], b"<r>\n  <a>1</a>\n</r>")
    ctx.payload_element  # noqa: B018
    result = ctx.to_http_response()
    assert result.body == b"<r>\n  <a>1</a>\n</r>"
    assert result.header("Content-Type") == "application/xml; charset=UTF-8"


def test_json_response_goes_back_as_json() -> None:
    ctx = request(b"", content_type=None, method="GET")
    ctx.set_json_payload({"ok": True})
    result = ctx.to_http_response()
    assert result.body == b'{"ok":true}' and result.header("Content-Type") == "application/json"


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0" encoding="UTF-8"?>\n<a>\xc3\xa9</a>',
        b'<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>',
        b"\xef\xbb\xbf<a>\xc3\xa9</a>",
        "<a>é</a>".encode("utf-16"),
        b"<!-- c --><a>\xc3\xa9</a><!-- d -->",
    ],
)
def test_pox_encodings_and_prolog(body: bytes) -> None:
    ctx = request(body)
    assert ctx.payload_element.text == "é"
    assert ctx.payload_bytes() == ("<a>é</a>".encode(), "application/xml; charset=UTF-8")


@pytest.mark.parametrize("body", [b"<a/><b/>", b"<a/>junk", b"<a><!DOCTYPE x></a>", b"<s:a/>"])
def test_pox_must_be_one_well_formed_document(body: bytes) -> None:
    with pytest.raises(PayloadError, match=r"message body is not well-formed XML: .*\(line 1, column \d+\)"):
        request(body).envelope  # noqa: B018


def test_pox_cannot_borrow_the_envelope_prefix() -> None:
    with pytest.raises(PayloadError, match="soapenv"):
        request(b"<soapenv:x/>").envelope  # noqa: B018


def test_content_encoding_of_an_already_decoded_body_is_dropped() -> None:
    import gzip

    ctx = request(CREATE_JOB)
    ctx.set_response(200, "OK", [("Content-Type", "application/xml"), ("Content-Encoding", "gzip")], b"<r/>")
    assert (
        "Content-Encoding" not in ctx.headers
    )  # requests decoded it; relaying the header would break the caller
    packed = gzip.compress(b"<r/>")
    ctx.set_response(200, "OK", [("Content-Type", "application/xml"), ("Content-Encoding", "gzip")], packed)
    assert ctx.headers["Content-Encoding"] == "gzip"  # still encoded: relayed as is
    assert ctx.to_http_response().body == packed
