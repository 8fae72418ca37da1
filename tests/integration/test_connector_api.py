"""The connector's HTTP layer and Python API over real loopback servers.

Part 1 drives RequestsTransport/WSGITransport against tiny servers started here (timeouts, refused
and dropped connections, streaming both ways). Part 2 runs createJob → getJob → updateJob through
``Connector.load().connection(...).invoke(...)`` against the emulator.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sfbulk.connector.connection import Connector
from sfbulk.errors import ConnectError, ConnectionClosedError, TimeoutError_
from sfbulk.registry import FileRegistry
from sfbulk.transport import HttpRequest, RequestsTransport, WSGITransport

BIG = bytes(range(256)) * 20_000  # ~5 MB
PORTS: list[tuple[str, int]] = []  # (path, client port) of each POST: which connection carried it


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length)

    def _reply(self, status: int, payload: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/slow"):
            time.sleep(1.5)
            self._reply(200, b"late")
        elif self.path.startswith("/gzip"):
            import gzip

            payload = gzip.compress(b"<jobInfo/>" * 100)
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        elif self.path.startswith("/big"):
            self._reply(200, BIG, "application/octet-stream")
        else:
            self._reply(200, b"ok")

    def do_POST(self) -> None:  # noqa: N802
        PORTS.append((self.path, self.client_address[1]))
        if self.path.startswith("/early"):  # answers before reading the upload, as a 400 may
            self._reply(400, b"InvalidSessionId")
            self._body()  # drained afterwards: the connection itself stays usable
            return
        body = self._body()
        mode = self.headers.get("Transfer-Encoding", "length")
        self._reply(200, f"{len(body)} {hashlib.sha256(body).hexdigest()} {mode}".encode())

    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # clients that time out break the pipe
        pass


@pytest.fixture(scope="module")
def http_server():
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture()
def transport():
    with RequestsTransport() as t:
        yield t


def test_timeout_is_honoured_and_coded(http_server, transport):
    started = time.monotonic()
    with pytest.raises(TimeoutError_) as info:
        transport.send(
            HttpRequest("GET", http_server + "/slow", {"X-SFDC-Session": "tok-should-not-leak"}, timeout=0.3)
        )
    assert time.monotonic() - started < 1.2
    assert info.value.code == 101504
    assert "127.0.0.1" in str(info.value) and "0.3 s" in str(info.value)
    assert "tok-should-not-leak" not in str(info.value)


def test_connection_refused_is_a_connect_error(transport):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(ConnectError) as info:
        transport.send(HttpRequest("GET", f"http://127.0.0.1:{port}/x", timeout=2))
    assert info.value.code == 101503 and f"127.0.0.1:{port}" in str(info.value)


def test_connection_closed_without_answer(transport):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def accept_and_drop():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=accept_and_drop, daemon=True)
    thread.start()
    try:
        with pytest.raises(ConnectionClosedError) as info:
            transport.send(HttpRequest("GET", f"http://127.0.0.1:{port}/x", timeout=5))
        assert info.value.code == 101505
    finally:
        thread.join(5)
        listener.close()


def test_bodies_stream_from_files_and_iterators(http_server, transport, tmp_path):
    data = BIG
    file = tmp_path / "batch.csv"
    file.write_bytes(data)
    expected = f"{len(data)} {hashlib.sha256(data).hexdigest()}"
    with open(file, "rb") as handle:
        resp = transport.send(HttpRequest("POST", http_server + "/up", {}, handle))
    assert resp.text == expected + " chunked"
    chunks = (data[i : i + 100_000] for i in range(0, len(data), 100_000))
    assert transport.send(HttpRequest("POST", http_server + "/up", {}, chunks)).text == expected + " chunked"
    assert transport.send(HttpRequest("POST", http_server + "/up", {}, data)).text == expected + " length"


def test_connections_are_pooled_but_never_after_a_streamed_upload(http_server, transport):
    PORTS.clear()
    assert transport.send(HttpRequest("POST", http_server + "/up", {}, b"abc")).text.startswith("3 ")
    assert transport.send(HttpRequest("POST", http_server + "/up", {}, b"abcd")).text.startswith("4 ")
    chunks = (b"x" * 1000 for _ in range(50))
    assert transport.send(HttpRequest("POST", http_server + "/early", {}, chunks)).status == 400
    assert transport.send(HttpRequest("POST", http_server + "/up", {}, b"ab")).text.startswith("2 ")
    ports = [port for _, port in PORTS]
    assert ports[0] == ports[1] == ports[2]  # keep-alive: one pooled connection
    # the upload's connection may hold unread bytes on a real server: it is closed, not reused
    assert ports[3] != ports[2]


def test_streamed_response_arrives_in_chunks(http_server, transport):
    resp = transport.send(HttpRequest("GET", http_server + "/big", stream=True))
    assert resp.status == 200
    parts = list(resp.iter_content(65536))
    assert len(parts) > 10 and b"".join(parts) == BIG
    resp.close()
    whole = transport.send(HttpRequest("GET", http_server + "/big"))
    assert whole.content == BIG and whole.headers["content-type"] == "application/octet-stream"


def test_gzip_bodies_arrive_decoded_with_consistent_headers(http_server, transport):
    resp = transport.send(HttpRequest("GET", http_server + "/gzip"))
    assert resp.content == b"<jobInfo/>" * 100
    # relaying these headers with this body must not announce an encoding the body no longer has
    assert "Content-Encoding" not in resp.headers and "Content-Length" not in resp.headers
    assert resp.headers["Content-Type"] == "application/xml"


def test_debug_log_has_method_path_status_but_no_headers(http_server, transport, caplog):
    caplog.set_level(logging.DEBUG, logger="sfbulk")
    transport.send(
        HttpRequest("POST", http_server + "/up?x=1", {"X-SFDC-Session": "sess-abc-123456"}, b"payload-xyz")
    )
    text = caplog.text
    assert "POST /up -> 200" in text
    assert "sess-abc-123456" not in text and "payload-xyz" not in text and "x=1" not in text


def test_tls_verification_cannot_be_disabled():
    with pytest.raises(ValueError):
        RequestsTransport(verify=False)


def test_wsgi_transport_answers_in_process():
    def app(environ, start_response):
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"] or 0))
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Path", environ["PATH_INFO"])])
        return [
            environ["REQUEST_METHOD"].encode(),
            b" ",
            body,
            b" ",
            environ.get("HTTP_X_SFDC_SESSION", "").encode(),
        ]

    resp = WSGITransport(app).send(
        HttpRequest("POST", "http://sf.local/services/async/62.0/job/a%2Fb", {"X-SFDC-Session": "s"}, b"<x/>")
    )
    assert (resp.status, resp.reason, resp.content) == (201, "Created", b"POST <x/> s")
    assert resp.headers["x-path"] == "/services/async/62.0/job/a/b"


def test_init_timeout_parameter_reaches_every_call(http_server, tmp_path):
    connector = Connector.load()
    conn = connector.connection(
        apiUrl=http_server, accessToken="t", timeout="0.3", registry=FileRegistry(tmp_path)
    )
    # getJob's path lands on the slow handler through a job id
    conn_slow = connector.connection(
        apiUrl=http_server + "/slow", accessToken="t", timeout=0.3, registry=FileRegistry(tmp_path)
    )
    with pytest.raises(TimeoutError_):
        conn_slow.invoke("getJob", jobId="750x")
    assert conn.params.timeout == 0.3
    conn.close()
    conn_slow.close()


def test_the_documented_python_example_runs(capsys):
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "connector.md").read_text()
    start = doc.index("```python\nimport tempfile")
    code = doc[start + len("```python\n") : doc.index("```", start + 10)]
    exec(compile(code, "docs/connector.md", "exec"), {"__name__": "docs_example"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("201 750") and lines[1] == "Open" and lines[2] == "200 Closed"
