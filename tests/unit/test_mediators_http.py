"""call / send against a real loopback backend: U7, FC7, FH4, FH5 and what goes on the wire (§3.7)."""

from __future__ import annotations

import logging

from fixtures.engine import free_port_refusing

from sfbulk.expressions.expression import compile_expression as X
from sfbulk.mediators import (
    CallMediator,
    HeaderMediator,
    HttpEndpoint,
    LogMediator,
    LogProperty,
    PayloadFactoryMediator,
    PropertyMediator,
    Proxy,
    RespondMediator,
    SendMediator,
    Sequence,
)

REQUEST_HEADERS = [
    ("Content-Type", "application/xml"),
    ("Action", "urn:createJob"),
    ("User-Agent", "curl/8"),
    ("Accept", "*/*"),
]


def run(
    engine,
    mediators,
    *,
    method="POST",
    body=b"<createJob><a>1</a></createJob>",
    fault=None,
    out=None,
    endpoint=None,
):
    engine.add_proxy(
        Proxy(
            "P",
            in_sequence=Sequence(None, mediators),
            fault_sequence=fault,
            out_sequence=out,
            endpoint=endpoint,
        )
    )
    return engine.handle("P", method=method, uri="/services/P?x=1", headers=REQUEST_HEADERS, body=body)


def test_call_sends_payload_and_forwardable_headers(engine, backend):
    backend.reply(
        201,
        b"<jobInfo><id>750x</id></jobInfo>",
        [("Content-Type", "application/xml"), ("Cache-Control", "no-cache")],
    )
    result = run(
        engine,
        [
            PropertyMediator("uri.var.apiUrl", value=backend.url + "/services/async/34.0"),
            HeaderMediator("X-SFDC-Session", value="tok123", scope="transport"),
            PayloadFactoryMediator('<jobInfo xmlns="urn:x"><operation>insert</operation></jobInfo>'),
            CallMediator(HttpEndpoint("{+uri.var.apiUrl}/job", method="post")),
            HeaderMediator("Cache-Control", action="remove", scope="transport"),
            RespondMediator(),
        ],
    )
    sent = backend.requests[0]
    assert (sent.method, sent.path) == ("POST", "/services/async/34.0/job")
    assert sent.body == b'<jobInfo xmlns="urn:x"><operation>insert</operation></jobInfo>'
    assert sent.header("Content-Type").startswith("application/xml")
    assert sent.header("Action") == "urn:createJob" and sent.header("X-SFDC-Session") == "tok123"
    assert sent.header("User-Agent") != "curl/8"  # hop-by-hop/unwanted headers are not forwarded
    assert (result.status, result.body) == (201, b"<jobInfo><id>750x</id></jobInfo>")
    assert result.header("Cache-Control") is None and result.header("Content-Type") == "application/xml"


def test_get_sends_no_body_and_keeps_a_literal_content_type(engine, backend):
    backend.reply(200, b"<jobInfo/>", [("Content-Type", "application/xml")])
    run(
        engine,
        [
            PropertyMediator("Content-Type", value="application/xml; charset=UTF-8", scope="transport"),
            PropertyMediator("uri.var.other", value="1"),  # some uri.var.* is set: the template expands
            CallMediator(HttpEndpoint(backend.url + "/job/{uri.var.jobId}", method="GET")),
            RespondMediator(),
        ],
    )
    sent = backend.requests[0]
    assert (sent.method, sent.path, sent.body) == ("GET", "/job/", b"")
    assert sent.header("Content-Type") == "application/xml; charset=UTF-8"


def test_method_defaults_to_the_inbound_one_and_http_method_property(engine, backend):
    backend.reply(200, b"", [])
    seen = {}

    class Capture:
        def mediate(self, ctx):
            seen.update(ctx.properties)
            return True

    run(engine, [CallMediator(HttpEndpoint(backend.url + "/x")), Capture()], method="PUT")
    assert backend.requests[0].method == "PUT" and "HTTP_METHOD" not in seen
    run(engine, [CallMediator(HttpEndpoint(backend.url + "/x", method="delete")), Capture()])
    assert backend.requests[1].method == "DELETE" and seen["HTTP_METHOD"] == "DELETE"


def test_u7_and_fh4_backend_errors_are_responses(engine, backend):
    backend.reply(404, b"<e/>", [("Content-Type", "application/xml")])
    result = run(engine, [CallMediator(HttpEndpoint(backend.url + "/x", method="get")), RespondMediator()])
    assert (result.status, result.body, result.header("Content-Type")) == (404, b"<e/>", "application/xml")
    backend.reply(500, b"<boom/>", [("Content-Type", "application/xml")])
    fault = Sequence(None, [PayloadFactoryMediator('<fault-ran xmlns=""/>'), RespondMediator()])
    result = run(
        engine, [CallMediator(HttpEndpoint(backend.url + "/x", method="get")), RespondMediator()], fault=fault
    )
    assert (result.status, result.body) == (500, b"<boom/>")


def test_fc7_no_content(engine, backend):
    backend.reply(204, b"", [])
    result = run(engine, [CallMediator(HttpEndpoint(backend.url + "/x", method="get")), RespondMediator()])
    assert (result.status, result.body) == (204, b"")


def test_fh5_connection_refused_is_fault_101503(engine, caplog):
    caplog.set_level(logging.INFO, logger="sfbulk.mediation")
    url = f"http://127.0.0.1:{free_port_refusing()}/x"
    fault = Sequence(
        None,
        [
            LogMediator(level="custom", properties=[LogProperty("code", expression=X("$ctx:ERROR_CODE"))]),
            RespondMediator(),
        ],
    )
    result = run(engine, [CallMediator(HttpEndpoint(url, method="post")), RespondMediator()], fault=fault)
    assert any(r.getMessage() == "code = 101503" for r in caplog.records)
    assert result.status == 200  # what the fault sequence responds (the request, echoed)
    result = run(engine, [CallMediator(HttpEndpoint(url, method="post")), RespondMediator()])
    assert result.status == 500 and b"<code>101503</code>" in result.body and b"Traceback" not in result.body


def test_send_with_endpoint_runs_the_out_sequence(engine, backend):
    backend.reply(200, b"<resp/>", [("Content-Type", "application/xml")])
    out = Sequence(None, [PropertyMediator("HTTP_SC", value="299", scope="axis2"), SendMediator()])
    result = run(engine, [SendMediator(HttpEndpoint(backend.url + "/x", method="post"))], out=out)
    assert (result.status, result.body) == (299, b"<resp/>")
    # a proxy target endpoint does the same when the inSequence completes
    backend.reply(200, b"<target/>", [("Content-Type", "application/xml")])
    result = run(
        engine,
        [PropertyMediator("x", value="1")],
        out=Sequence(None, [SendMediator()]),
        endpoint=HttpEndpoint(backend.url + "/t"),
    )
    assert (result.status, result.body) == (200, b"<target/>")
