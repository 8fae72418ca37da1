"""One fault renderer (``sfbulk.faults``) behind both fault answers, with the bytes each sends.

The engine's default fault is a mediated payload (no XML declaration); the server's own faults are
whole documents (declaration, final newline) or JSON. Both pass through ``render_fault``; these
tests pin their bytes, so a change to one framing cannot slip into the other.
"""

from __future__ import annotations

import pytest

from sfbulk.engine.engine import fault_response as engine_fault_response
from sfbulk.faults import render_fault
from sfbulk.httpheaders import reason_phrase
from sfbulk.server.app import Fault, _render_fault
from sfbulk.server.app import fault_response as server_fault_response

XML = ("Content-Type", "application/xml; charset=UTF-8")
JSON = ("Content-Type", "application/json; charset=UTF-8")


def test_the_engine_fault_is_a_bare_element() -> None:
    result = engine_fault_response(101503, "a <b> & c", 500)
    assert (result.status, result.reason, result.headers) == (500, "Internal Server Error", [XML])
    assert result.body == b"<fault><code>101503</code><message>a &lt;b&gt; &amp; c</message></fault>"


def test_the_engine_fault_masks_secrets_in_its_message() -> None:
    result = engine_fault_response(0, "refused: access_token=00Dxx0000001gPL!AQ0AQ-secret-value", 401)
    assert b"secret-value" not in result.body and result.reason == "Unauthorized"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "Bad Request"),
        (401, "Unauthorized"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
        (500, "Internal Server Error"),
        (503, "Service Unavailable"),
        (599, "Unknown"),
    ],
)
def test_both_answers_give_the_standard_reason_phrase(status: int, reason: str) -> None:
    # The engine once answered "Error" for any status but 400/401/500 (503 from an unavailable
    # token endpoint, 404/405 of `sfbulk run`); it now says what the server's faults say.
    assert engine_fault_response("X", "m", status).reason == reason == reason_phrase(status)
    assert server_fault_response(Fault(status, "X", "m"), json_wanted=False).reason == reason


def test_the_server_fault_is_a_document_with_an_allow_header() -> None:
    response = server_fault_response(
        Fault(405, "MethodNotAllowed", "x <y> & z", ("GET", "HEAD")), json_wanted=False
    )
    assert (response.status, response.reason) == (405, "Method Not Allowed")
    assert response.headers == [XML, ("Allow", "GET, HEAD")]
    assert response.body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<fault><code>MethodNotAllowed</code><message>x &lt;y&gt; &amp; z</message></fault>\n"
    )


def test_the_server_fault_in_json() -> None:
    response = server_fault_response(Fault(404, "NotFound", 'no "x" <here>'), json_wanted=True)
    assert response.headers == [JSON]
    assert response.body == b'{"fault": {"code": "NotFound", "message": "no \\"x\\" <here>"}}'


def test_the_waitress_renderer_sends_the_server_fault() -> None:
    headers, body = _render_fault(503, "TooManyConnections", "busy", False)
    assert headers == [XML]
    assert body == render_fault("TooManyConnections", "busy", 503, document=True).body
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<fault><code>TooManyConnections</code>')


def test_both_paths_are_the_one_renderer_with_the_framing_as_a_parameter() -> None:
    bare = render_fault(700101, "token refresh failed", 401)
    document = render_fault(700101, "token refresh failed", 401, document=True)
    assert document.body == b'<?xml version="1.0" encoding="UTF-8"?>\n' + bare.body + b"\n"
    engine = engine_fault_response(700101, "token refresh failed", 401)
    server = server_fault_response(Fault(401, "700101", "token refresh failed"), json_wanted=False)
    assert (engine.status, engine.reason, engine.headers, engine.body) == (
        bare.status,
        bare.reason,
        bare.headers,
        bare.body,
    )
    assert (server.status, server.reason, server.headers, server.body) == (
        document.status,
        document.reason,
        document.headers,
        document.body,
    )


def test_a_json_code_keeps_its_type() -> None:
    assert render_fault(101503, "m", json_wanted=True).body == b'{"fault": {"code": 101503, "message": "m"}}'
