"""Server plumbing over real HTTP: routing, REST_URL_POSTFIX, limits, methods, faults, health, access log.

These tests drive the shipped server (`start_server`) with a tiny recorder defined here that
implements the server's seam (`ServedEngine`), so routing and limits are checked independently of
the mediation engine. The real
engine is exercised end to end in test_server_seed.py, test_server_dispatcher.py and friends.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from lxml import etree

from sfbulk.errors import PayloadError, UnknownProxyError
from sfbulk.mediators import Proxy
from sfbulk.mediators.api import Api, ApiMatch, NoApiMatch
from sfbulk.message.engine_view import ServedEngine
from sfbulk.message.formatters import HttpResult
from sfbulk.server.app import PROXY_METHODS, start_server

_Result = HttpResult


@dataclass
class RecordingEngine:
    """Stands in for the Engine on the server's seam (``ServedEngine``): records each call, answers per proxy name."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    names: tuple[str, ...] = ("echo", "boom", "bad_payload", "slow", "keyerror", "relay")
    proxies: dict[str, Proxy] = field(init=False)
    apis: dict[str, Api] = field(default_factory=dict)  # none: every request goes to a proxy

    def __post_init__(self) -> None:
        self.proxies = {name: Proxy(name) for name in self.names}

    def api_match(self, method: str, uri: str) -> ApiMatch:
        raise NoApiMatch(404, f"no API is deployed for {method} {uri}")

    def handle_api(
        self, *, method: str, uri: str, headers, body: bytes, match: ApiMatch | None
    ) -> HttpResult:
        raise NoApiMatch(404, f"no API is deployed for {method} {uri}")

    def handle(
        self, proxy: str, *, method: str, uri: str, headers, body: bytes, rest_url_postfix: str | None
    ) -> HttpResult:
        self.calls.append(
            {
                "proxy": proxy,
                "method": method,
                "uri": uri,
                "headers": list(headers),
                "body": body,
                "postfix": rest_url_postfix,
            }
        )
        if proxy not in self.proxies:
            raise UnknownProxyError(proxy, list(self.proxies))
        if proxy == "boom":
            raise RuntimeError("secret-internal-detail at /srv/app.py line 3")
        if proxy == "keyerror":
            raise KeyError("inner")
        if proxy == "bad_payload":
            raise PayloadError("Malformed XML payload: Opening and ending tag mismatch (line 1, column 12)")
        if proxy == "slow":
            time.sleep(1.0)
        if proxy == "relay":
            return _Result(
                201,
                "Created",
                [
                    ("Content-Type", "application/xml"),
                    ("Connection", "keep-alive"),
                    ("Content-Length", "999"),
                    ("X-Custom", "a\r\nInjected: yes"),
                ],
                b"<jobInfo/>",
            )
        return _Result(200, "OK", [("Content-Type", "application/octet-stream")], body)


@pytest.fixture(scope="module")
def _plumbing_server():
    engine = RecordingEngine()
    server = start_server(
        engine, host="127.0.0.1", port=0, threads=4, max_body_bytes=1000, shutdown_timeout=5
    )
    try:
        yield server, engine
    finally:
        server.stop()


@pytest.fixture
def plumbing(_plumbing_server):
    server, engine = _plumbing_server
    engine.calls.clear()
    return server, engine


def _raw_request(server, data: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("path", "postfix"),
    [
        ("/services/echo", ""),
        ("/services/echo?x=1&y=%20z", "?x=1&y=%20z"),
        ("/services/echo/a/b", "/a/b"),
        ("/services/echo/a/b?x=1", "/a/b?x=1"),
    ],
)
def test_routes_to_engine_with_rest_url_postfix(plumbing, path, postfix):
    server, engine = plumbing
    response = requests.post(
        server.url + path,
        data=b"<a/>",
        headers={"Content-Type": "application/xml", "SOAPAction": '"urn:x"'},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.content == b"<a/>"
    call = engine.calls[-1]
    assert call["proxy"] == "echo"
    assert call["postfix"] == postfix
    assert call["uri"] == path
    headers = dict(call["headers"])
    assert headers["Content-Type"] == "application/xml"
    assert headers["SOAPAction"] == '"urn:x"'
    assert "Connection" not in headers


@pytest.mark.parametrize("method", PROXY_METHODS)
def test_every_standard_method_reaches_the_proxy(plumbing, method):
    server, engine = plumbing
    response = requests.request(
        method, server.service_url("echo"), data=b"xy" if method != "GET" else None, timeout=5
    )
    assert response.status_code == 200
    assert engine.calls[-1]["method"] == method
    if method == "HEAD":
        assert response.content == b""


@pytest.mark.parametrize("method", ["TRACE", "FOOBAR", "PROPFIND"])
def test_other_methods_get_405_with_allow(plumbing, method):
    server, engine = plumbing
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    conn.request(method, "/services/echo")
    response = conn.getresponse()
    body = response.read()
    assert response.status == 405
    assert set(response.getheader("Allow").split(", ")) == set(PROXY_METHODS)
    assert etree.fromstring(body).findtext("code") == "MethodNotAllowed"
    assert engine.calls == []


def test_connect_is_refused_with_405(plumbing):
    server, engine = plumbing
    raw = _raw_request(server, b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 405 ")
    assert b"<code>MethodNotAllowed</code>" in raw
    assert engine.calls == []


def test_unknown_proxy_is_404_fault(plumbing):
    server, _ = plumbing
    response = requests.post(
        server.service_url("nope"), data=b"<a/>", headers={"Content-Type": "text/xml"}, timeout=5
    )
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/xml")
    fault = etree.fromstring(response.content)
    assert fault.tag == "fault"
    assert fault.findtext("code") == "NotFound"
    assert "nope" in fault.findtext("message")


@pytest.mark.parametrize("path", ["/", "/services", "/services/", "/other/echo"])
def test_paths_outside_services_are_404(plumbing, path):
    server, engine = plumbing
    response = requests.get(server.url + path, timeout=5)
    assert response.status_code == 404
    assert etree.fromstring(response.content).findtext("code") == "NotFound"
    assert engine.calls == []


def test_json_clients_get_json_faults(plumbing):
    server, _ = plumbing
    response = requests.post(server.service_url("nope"), json={"a": 1}, timeout=5)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["fault"]["code"] == "NotFound"
    response = requests.get(server.service_url("nope"), headers={"Accept": "application/json"}, timeout=5)
    assert response.json()["fault"]["code"] == "NotFound"


def test_body_over_limit_by_content_length_is_413_before_the_engine(plumbing):
    server, engine = plumbing
    response = requests.post(server.service_url("echo"), data=b"x" * 1001, timeout=5)
    assert response.status_code == 413
    assert etree.fromstring(response.content).findtext("code") == "PayloadTooLarge"
    assert engine.calls == []
    # exactly at the limit is fine
    assert requests.post(server.service_url("echo"), data=b"x" * 1000, timeout=5).status_code == 200


def test_chunked_body_is_counted_while_reading(plumbing):
    server, engine = plumbing

    def chunks(total):
        for _ in range(total // 100):
            yield b"y" * 100

    response = requests.post(server.service_url("echo"), data=chunks(2000), timeout=5)
    assert response.status_code == 413
    assert engine.calls == []
    response = requests.post(server.service_url("echo"), data=chunks(900), timeout=5)
    assert response.status_code == 200
    assert engine.calls[-1]["body"] == b"y" * 900


def test_bad_content_length_is_400(plumbing):
    server, engine = plumbing
    raw = _raw_request(
        server,
        b"POST /services/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\nConnection: close\r\n\r\n",
    )
    assert raw.split(b"\r\n", 1)[0].split(b" ")[1] in (b"400",)
    assert b"Traceback" not in raw
    assert engine.calls == []


def test_payload_error_is_400_with_the_parser_message(plumbing):
    server, _ = plumbing
    response = requests.post(server.service_url("bad_payload"), data=b"<a>", timeout=5)
    assert response.status_code == 400
    fault = etree.fromstring(response.content)
    assert fault.findtext("code") == "MalformedPayload"
    assert "tag mismatch" in fault.findtext("message")


def test_unexpected_errors_are_500_without_details_and_logged(plumbing, caplog):
    server, _ = plumbing
    with caplog.at_level(logging.DEBUG, logger="sfbulk.server.app"):
        response = requests.post(server.service_url("boom"), data=b"<a/>", timeout=5)
    assert response.status_code == 500
    text = response.text
    assert "Traceback" not in text and "secret-internal-detail" not in text and "app.py" not in text
    message = etree.fromstring(response.content).findtext("message")
    request_id = message.split("request id ")[1].split(")")[0]
    logged = [r for r in caplog.records if r.name == "sfbulk.server.app" and request_id in r.getMessage()]
    # one ERROR line without traceback; the traceback only at DEBUG level
    assert [r.levelno for r in logged] == [logging.ERROR, logging.DEBUG]
    assert logged[0].exc_info is None and "RuntimeError" in logged[0].getMessage()
    assert "Traceback (most recent call last)" in logged[1].getMessage()
    # a KeyError raised inside a known proxy is a 500, not a misleading 404
    assert requests.post(server.service_url("keyerror"), data=b"<a/>", timeout=5).status_code == 500
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_relayed_headers_are_cleaned_and_framing_recomputed(plumbing):
    server, _ = plumbing
    response = requests.post(server.service_url("relay"), data=b"", timeout=5)
    assert response.status_code == 201
    assert response.reason == "Created"
    assert response.headers["Content-Length"] == str(len(b"<jobInfo/>"))
    assert "Injected" not in response.headers
    assert "\n" not in response.headers["X-Custom"]


def test_health_lists_the_proxies(plumbing):
    server, engine = plumbing
    response = requests.get(server.url + "/health", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "proxies": sorted(engine.proxies)}
    assert requests.post(server.url + "/health", timeout=5).status_code == 405


def test_access_log_has_one_line_per_request_and_no_query(plumbing, caplog):
    server, _ = plumbing
    with caplog.at_level(logging.INFO, logger="sfbulk.access"):
        requests.post(server.url + "/services/echo/x?access_token=SEKRETTOKEN123&y=2", data=b"abc", timeout=5)
        requests.get(server.url + "/services/nope", timeout=5)
        deadline = time.time() + 2
        while len([r for r in caplog.records if r.name == "sfbulk.access"]) < 2 and time.time() < deadline:
            time.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if r.name == "sfbulk.access"]
    assert len(lines) == 2
    assert lines[0].startswith('127.0.0.1 "POST /services/echo/x" 200 3 ')
    assert lines[0].endswith("ms")
    assert lines[1].startswith('127.0.0.1 "GET /services/nope" 404 ')
    assert not any("SEKRETTOKEN123" in line or "access_token" in line for line in lines)


def test_stop_finishes_in_flight_requests():
    engine = RecordingEngine()
    server = start_server(engine, host="127.0.0.1", port=0, threads=2, shutdown_timeout=10)
    results: list[int] = []
    thread = threading.Thread(
        target=lambda: results.append(
            requests.post(server.service_url("slow"), data=b"z", timeout=10).status_code
        )
    )
    thread.start()
    deadline = time.time() + 5
    while not engine.calls and time.time() < deadline:
        time.sleep(0.01)
    started = time.time()
    server.stop()
    thread.join(5)
    assert results == [200]
    assert time.time() - started < 5
    assert not server.running
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/health", timeout=2)


def test_many_concurrent_clients(plumbing):
    server, engine = plumbing
    statuses: list[int] = []
    lock = threading.Lock()

    def client():
        with requests.Session() as session:
            for i in range(10):
                response = session.post(server.service_url("echo"), data=str(i).encode(), timeout=10)
                with lock:
                    statuses.append(response.status_code)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 160


def test_health_json_is_valid_even_with_odd_names():
    class Odd(RecordingEngine):
        pass

    engine = Odd(names=('a"b', "c<d"))
    with start_server(engine, host="127.0.0.1", port=0, threads=1) as server:
        assert json.loads(requests.get(server.url + "/health", timeout=5).text)["proxies"] == ['a"b', "c<d"]


def test_the_recorder_implements_the_server_seam():
    assert isinstance(RecordingEngine(), ServedEngine)
