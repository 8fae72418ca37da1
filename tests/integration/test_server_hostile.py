"""Hostile input against the seed proxy over HTTP: every case gets a clear fault, never a traceback,
nothing is sent to Salesforce, and the server keeps answering."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import requests
from lxml import etree

REPO = Path(__file__).resolve().parents[2]
SEED_PROXY = REPO / "examples" / "synapse" / "salesforcebulk_createJob.xml"
FAULT_SEQ = REPO / "examples" / "synapse" / "faultHandlerSeq.xml"
MAX_BODY = 256 * 1024

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE createJob [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<createJob><apiVersion>34.0</apiVersion><object>&x;</object></createJob>"""

XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE createJob [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>
<createJob/>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<createJob><object>&lol9;</object></createJob>"""


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    from sfbulk.engine.engine import Engine
    from sfbulk.server.app import start_server

    engine = Engine(registry=str(tmp_path_factory.mktemp("registry")))
    engine.load(SEED_PROXY, FAULT_SEQ)
    server = start_server(engine, host="127.0.0.1", port=0, threads=4, max_body_bytes=MAX_BODY)
    try:
        yield server
    finally:
        server.stop()


def _post(server, body: bytes, content_type: str = "text/xml", proxy: str = "salesforcebulk_createJob"):
    return requests.post(
        server.service_url(proxy), data=body, headers={"Content-Type": content_type}, timeout=10
    )


def _fault(response) -> tuple[str, str]:
    assert "Traceback" not in response.text
    assert response.headers["Content-Type"].startswith("application/xml")
    root = etree.fromstring(response.content)
    assert root.tag == "fault"
    return root.findtext("code"), root.findtext("message")


def _still_healthy(server) -> None:
    health = requests.get(server.url + "/health", timeout=5)
    assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.mark.parametrize("content_type", ["text/xml", "application/xml", "application/soap+xml"])
def test_malformed_xml_is_400_with_a_clear_message(hostile_server, content_type):
    response = _post(hostile_server, b"<createJob><apiVersion>34.0</createJob>", content_type)
    assert response.status_code == 400
    code, message = _fault(response)
    assert code == "MalformedPayload"
    assert "not well-formed" in message and "line 1" in message
    _still_healthy(hostile_server)


def test_malformed_json_is_400(hostile_server):
    response = requests.post(
        hostile_server.service_url("salesforcebulk_createJob"),
        data=b'{"createJob": ',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["fault"]["code"] == "MalformedPayload"
    assert "not valid JSON" in response.json()["fault"]["message"]


def test_deeply_nested_json_is_400_not_a_crash(hostile_server):
    body = b"[" * 100_000 + b"]" * 100_000
    response = requests.post(
        hostile_server.service_url("salesforcebulk_createJob"),
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    _still_healthy(hostile_server)


@pytest.mark.parametrize("body", [XXE, XXE_PARAMETER], ids=["general-entity", "parameter-entity"])
def test_external_entities_and_dtds_are_never_resolved(hostile_server, body):
    response = _post(hostile_server, body)
    assert response.status_code == 400
    code, message = _fault(response)
    assert code == "MalformedPayload"
    assert "DTD" in message
    assert "root:" not in response.text  # nothing of /etc/passwd
    _still_healthy(hostile_server)


def test_billion_laughs_is_rejected_in_under_a_second(hostile_server):
    started = time.monotonic()
    response = _post(hostile_server, BILLION_LAUGHS)
    elapsed = time.monotonic() - started
    assert response.status_code == 400
    assert _fault(response)[0] == "MalformedPayload"
    assert elapsed < 1.0
    assert len(response.content) < 1000
    _still_healthy(hostile_server)


def test_body_over_the_limit_is_413_without_being_read(hostile_server):
    # a client announcing a huge body gets 413 before sending it
    with socket.create_connection((hostile_server.host, hostile_server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /services/salesforcebulk_createJob HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            b"Content-Length: 50000000\r\n\r\n"
        )
        raw = b""
        while b"</fault>" not in raw:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    assert raw.startswith(b"HTTP/1.1 413 ")
    assert b"<code>PayloadTooLarge</code>" in raw and b"Traceback" not in raw
    _still_healthy(hostile_server)


def test_chunked_body_over_the_limit_is_413(hostile_server):
    def chunks():
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"<a>" + b"x" * 4089 + b"</a>"

    response = requests.post(
        hostile_server.service_url("salesforcebulk_createJob"),
        data=chunks(),
        headers={"Content-Type": "text/xml"},
        timeout=10,
    )
    assert response.status_code == 413
    assert _fault(response)[0] == "PayloadTooLarge"
    _still_healthy(hostile_server)


def test_unknown_proxy_is_404(hostile_server):
    response = _post(hostile_server, b"<createJob/>", proxy="salesforcebulk_nope")
    assert response.status_code == 404
    assert _fault(response)[0] == "NotFound"


def test_wrong_method_is_405(hostile_server):
    response = requests.request("TRACE", hostile_server.service_url("salesforcebulk_createJob"), timeout=10)
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert _fault(response)[0] == "MethodNotAllowed"


def test_garbage_request_line_gets_no_traceback(hostile_server):
    with socket.create_connection((hostile_server.host, hostile_server.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        raw = sock.recv(65536)
    assert raw.startswith(b"HTTP/1.1 400") or raw == b""
    assert b"Traceback" not in raw
    _still_healthy(hostile_server)


@pytest.mark.parametrize(
    ("head", "status", "expected"),
    [
        (
            b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "both Content-Length and Transfer",
        ),
        (b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400, "Content-Length is invalid"),
        (b"Content-Length: -1\r\n\r\n", 400, "Content-Length is invalid"),
        (b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "not supported"),
        (b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400, "Invalid header"),
    ],
    ids=["cl-and-te", "two-content-lengths", "negative-length", "unsupported-coding", "space-before-colon"],
)
def test_ambiguous_framing_is_refused_at_once(hostile_server, head, status, expected):
    # the framings request smuggling relies on: refused with a fault, never guessed
    with socket.create_connection((hostile_server.host, hostile_server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /services/salesforcebulk_createJob HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            + head
        )
        raw = b""
        while b"</fault>" not in raw:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    assert raw.startswith(b"HTTP/1.1 %d " % status), raw
    assert expected in raw.decode()
    _still_healthy(hostile_server)
