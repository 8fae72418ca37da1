"""Named, address and http endpoints against a real loopback backend: REST_URL_POSTFIX, formats,
uri.var substitution from an API's uri-template, references resolved at send time, timeouts."""

from __future__ import annotations

import socket

import pytest

from sfbulk.expressions.expression import compile_expression as X
from sfbulk.mediators import (
    CallMediator,
    HttpEndpoint,
    LogMediator,
    PayloadArg,
    PayloadFactoryMediator,
    PropertyMediator,
    Proxy,
    RespondMediator,
    SendMediator,
    Sequence,
)
from sfbulk.mediators.api import Api, Resource
from sfbulk.mediators.http import AddressEndpoint, EndpointReference


def proxy(engine, mediators, **kw):
    engine.add_proxy(Proxy("P", in_sequence=Sequence(None, mediators), **kw))


def test_address_endpoint_appends_the_proxy_rest_url_postfix(engine, backend):
    proxy(engine, [CallMediator(AddressEndpoint(backend.url + "/svc")), RespondMediator()])
    result = engine.handle(
        "P",
        method="PUT",
        uri="/services/P/orders/7?x=1",
        body=b"<a/>",
        headers=[("Content-Type", "application/xml")],
        rest_url_postfix="/orders/7?x=1",
    )
    sent = backend.requests[0]
    assert (sent.method, sent.path, sent.body) == ("PUT", "/svc/orders/7?x=1", b"<a/>")  # the inbound method
    assert result.status == 200 and result.body == b"<ok/>"


@pytest.mark.parametrize(
    ("uri", "postfix", "path"),
    [("/svc/", "/a", "/svc/a"), ("/svc", "?q=1", "/svc?q=1"), ("/svc", "", "/svc"), ("/svc", "a", "/svc/a")],
)
def test_address_postfix_joins(engine, backend, uri, postfix, path):
    proxy(engine, [CallMediator(AddressEndpoint(backend.url + uri)), RespondMediator()])
    engine.handle("P", method="GET", uri="/services/P", rest_url_postfix=postfix)
    assert backend.requests[0].path == path


def test_address_format_soap11_sends_an_envelope_and_get_sends_a_get(engine, backend):
    proxy(
        engine,
        [
            CallMediator(AddressEndpoint(backend.url + "/soap", format="soap11")),
            CallMediator(AddressEndpoint(backend.url + "/get", format="get")),
            RespondMediator(),
        ],
    )
    engine.handle(
        "P",
        method="POST",
        uri="/services/P",
        body=b"<q>1</q>",
        headers=[("Content-Type", "application/xml")],
        rest_url_postfix="",
    )
    soap, get = backend.requests
    assert (
        soap.header("Content-Type").startswith("text/xml")
        and b"Envelope" in soap.body
        and b"<q>1</q>" in soap.body
    )
    assert (get.method, get.body) == ("GET", b"")


def test_named_endpoints_are_resolved_when_the_message_is_sent(engine, backend):
    proxy(engine, [CallMediator(EndpointReference("later")), RespondMediator()])
    result = engine.handle("P", method="GET", uri="/services/P")
    assert result.status == 500 and b"Reference to non-existent endpoint for key : later" in result.body
    engine.add_endpoint("later", HttpEndpoint(backend.url + "/named", method="get"))
    assert engine.handle("P", method="GET", uri="/services/P").status == 200
    assert backend.requests[0].path == "/named"


def test_a_proxy_target_endpoint_by_key_runs_the_out_sequence(engine, backend):
    backend.reply(201, b"<made/>", [("Content-Type", "application/xml")])
    engine.add_endpoint("ep", AddressEndpoint(backend.url + "/t"))
    engine.add_proxy(
        Proxy(
            "P",
            in_sequence=Sequence(None, [LogMediator()]),
            endpoint=EndpointReference("ep"),
            out_sequence=Sequence(
                None,
                [PropertyMediator("HTTP_SC", value="202", scope="axis2", type="INTEGER"), SendMediator()],
            ),
        )
    )
    result = engine.handle(
        "P",
        method="POST",
        uri="/services/P/x",
        body=b"<a/>",
        headers=[("Content-Type", "application/xml")],
        rest_url_postfix="/x",
    )
    assert backend.requests[0].path == "/t/x" and (result.status, result.body) == (202, b"<made/>")


def test_an_api_uri_template_feeds_an_http_endpoints_uri_vars(engine, backend):
    engine.add_endpoint(
        "jobEP", HttpEndpoint("{uri.var.base}/job/{uri.var.jobId}?q={query.param.q}", method="get")
    )
    engine.add_api(
        Api(
            "Jobs",
            "/jobs",
            (
                Resource(
                    ("GET",),
                    "/{jobId}",
                    in_sequence=Sequence(
                        None,
                        [
                            PropertyMediator("uri.var.base", value=backend.url + "/async"),
                            CallMediator(EndpointReference("jobEP")),
                            RespondMediator(),
                        ],
                    ),
                ),
            ),
        )
    )
    result = engine.handle_api(method="GET", uri="/jobs/75%2F0?q=a%20b")
    assert result.status == 200
    assert backend.requests[0].path == "/async/job/75%2F0?q=a%20b"  # {var}: decoded, then encoded again


def test_rest_properties_and_address_postfix_under_an_api(engine, backend):
    echo = PayloadFactoryMediator(
        '<r xmlns="">$1|$2|$3|$4</r>',
        args=[
            PayloadArg(expression=X(e))
            for e in (
                "get-property('REST_METHOD')",
                "get-property('SYNAPSE_REST_API')",
                "$ctx:query.param.limit",
                "$url:LIMIT",
            )
        ],
    )
    engine.add_api(
        Api(
            "Shop",
            "/shop",
            (
                Resource(
                    ("POST",),
                    url_mapping="/orders/*",
                    in_sequence=Sequence(
                        None, [CallMediator(AddressEndpoint(backend.url + "/backend")), RespondMediator()]
                    ),
                ),
                Resource(("GET",), in_sequence=Sequence(None, [echo, RespondMediator()])),
            ),
            version="2",
            version_type="url",
        )
    )
    engine.handle_api(
        method="POST",
        uri="/shop/2/orders/7?limit=5",
        body=b"<o/>",
        headers=[("Content-Type", "application/xml")],
    )
    assert backend.requests[0].path == "/backend/orders/7?limit=5"  # the path below the context, as MI
    result = engine.handle_api(method="GET", uri="/shop/2/anything?limit=5")
    assert result.body == b"<r>GET|Shop:v2|5|5</r>"


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (the backlog holds them)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_timeout_fault_is_101504_and_discard_drops_the_message(engine, silent_port):
    url = f"http://127.0.0.1:{silent_port}/slow"
    proxy(
        engine,
        [
            CallMediator(HttpEndpoint(url, method="get", timeout=0.2, response_action="fault")),
            RespondMediator(),
        ],
    )
    result = engine.handle("P", method="GET", uri="/services/P")
    assert result.status == 500 and b"<code>101504</code>" in result.body
    engine.add_proxy(
        Proxy(
            "D",
            in_sequence=Sequence(
                None,
                [
                    CallMediator(HttpEndpoint(url, method="get", timeout=0.2, response_action="discard")),
                    PropertyMediator("HTTP_SC", value="299", scope="axis2", type="INTEGER"),
                    RespondMediator(),
                ],
            ),
        )
    )
    dropped = engine.handle("D", method="GET", uri="/services/D")
    assert (dropped.status, dropped.body) == (202, b"")  # nothing after the call ran


def test_endpoint_definition_errors():
    from sfbulk.errors import ConfigError

    with pytest.raises(ConfigError, match="responseAction 'later'"):
        HttpEndpoint("http://x/", response_action="later")
    with pytest.raises(ConfigError, match="format 'soap13'"):
        AddressEndpoint("http://x/", format="soap13")
    with pytest.raises(ConfigError, match="uri is required"):
        AddressEndpoint("")


def test_send_in_an_api_resource_runs_the_resources_out_sequence(engine, backend):
    backend.reply(201, b"<made/>", [("Content-Type", "application/xml")])
    engine.add_api(
        Api(
            "Orders",
            "/orders",
            (
                Resource(
                    ("POST",),
                    in_sequence=Sequence(
                        None, [SendMediator(AddressEndpoint(backend.url + "/o")), LogMediator()]
                    ),
                    out_sequence=Sequence(
                        None,
                        [
                            PropertyMediator("HTTP_SC", value="299", scope="axis2", type="INTEGER"),
                            SendMediator(),
                        ],
                    ),
                ),
            ),
        )
    )
    result = engine.handle_api(
        method="POST", uri="/orders/7", body=b"<o/>", headers=[("Content-Type", "application/xml")]
    )
    assert backend.requests[0].path == "/o/7" and (result.status, result.body) == (299, b"<made/>")


def test_a_second_load_may_not_serve_an_api_where_one_is_served(engine, tmp_path):
    from sfbulk.errors import ConfigError

    for name in ("a", "b"):
        (tmp_path / f"{name}.xml").write_text(
            f'<api xmlns="http://ws.apache.org/ns/synapse" name="{name}" context="/same"><resource/></api>'
        )
    engine.load(tmp_path / "a.xml")
    with pytest.raises(ConfigError, match=r"already loaded: b \(at /same, as a\)"):
        engine.load(tmp_path / "b.xml")
    assert set(engine.apis) == {"a"}


def test_removing_rest_url_postfix_keeps_the_address_uri_as_is(engine, backend):
    """The common MI idiom before an address endpoint: <property name="REST_URL_POSTFIX" scope="axis2" action="remove"/>."""
    engine.add_api(
        Api(
            "Orders",
            "/orders",
            (
                Resource(
                    in_sequence=Sequence(
                        None,
                        [
                            PropertyMediator("REST_URL_POSTFIX", scope="axis2", action="remove"),
                            CallMediator(AddressEndpoint(backend.url + "/fixed")),
                            RespondMediator(),
                        ],
                    )
                ),
            ),
        )
    )
    engine.handle_api(method="GET", uri="/orders/7/lines?x=1")
    assert backend.requests[0].path == "/fixed"
