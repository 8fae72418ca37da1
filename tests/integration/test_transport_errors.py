"""Failures below HTTP, mapped by exception type to our TransportErrors, against real loopback sockets.

Each server here is a raw socket that misbehaves one way: closes in the middle of a response, never
answers, stops in the middle of a body, answers something that is not HTTP, or sends a body its
Content-Encoding lies about. The same failures then go through a served flow, which must answer
the Synapse code of each as the engine's default fault (one renderer, exact bytes).
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sfbulk.connector.connection import Connector
from sfbulk.errors import (
    ConnectError,
    ConnectionClosedError,
    MediationFault,
    TransportError,
    TransportTimeout,
)
from sfbulk.registry import FileRegistry
from sfbulk.transport import _ERRORS, _EXCEPTION_MAP, HttpRequest, RequestsTransport

Behaviour = Callable[[socket.socket], None]

HEAD_200 = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n"


class RawServer:
    """A loopback TCP server; each accepted connection is handed to ``behaviour`` on its own thread."""

    def __init__(self, behaviour: Behaviour, *, read_request: bool = True) -> None:
        self.behaviour = behaviour
        self.read_request = read_request
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.read_request:
                _read_head(conn)
            self.behaviour(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


def _read_head(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk


def closes_before_answering(conn: socket.socket) -> None:
    """Read the request, answer nothing, close."""


def closes_mid_body(conn: socket.socket) -> None:
    """Promise 100,000 bytes, send 10, close."""
    conn.sendall(HEAD_200 + b"0123456789")


def resets_mid_body(conn: socket.socket) -> None:
    """Send part of the body, then an RST instead of a FIN (SO_LINGER 0)."""
    conn.sendall(HEAD_200 + b"0123456789")
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def never_answers(conn: socket.socket) -> None:
    """Hold the connection open without a byte of answer (until the test's server closes)."""
    conn.settimeout(10)
    try:
        conn.recv(1)
    except OSError:
        pass


def stalls_mid_body(conn: socket.socket) -> None:
    conn.sendall(HEAD_200 + b"0123456789")
    never_answers(conn)


def answers_garbage(conn: socket.socket) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


def lies_about_gzip(conn: socket.socket) -> None:
    body = b"this is not gzip at all" * 10
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: text/plain\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )


@pytest.fixture
def raw_server() -> Iterator[Callable[[Behaviour], RawServer]]:
    servers: list[RawServer] = []

    def start(behaviour: Behaviour, *, read_request: bool = True) -> RawServer:
        server = RawServer(behaviour, read_request=read_request)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def transport() -> Iterator[RequestsTransport]:
    with RequestsTransport() as t:
        yield t


def _refusing_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _send(transport: RequestsTransport, url: str, *, stream: bool = False, timeout: float = 5) -> bytes:
    response = transport.send(
        HttpRequest("GET", url, {"Authorization": "Bearer tok-must-not-leak"}, timeout=timeout, stream=stream)
    )
    return response.content


#: (server behaviour or None for a refused port, scheme, stream?, timeout, error, code, message)
FAILURES = [
    pytest.param(
        closes_before_answering,
        "http",
        False,
        5,
        ConnectionClosedError,
        101505,
        "{host} closed the connection before answering (GET /x)",
        id="closed-before-answering",
    ),
    *[
        pytest.param(
            behaviour,
            "http",
            stream,
            5,
            ConnectionClosedError,
            101505,
            "{host} closed the connection in the middle of the response",
            id=f"closed-mid-body-{how}-{'streamed' if stream else 'read'}",
        )
        for behaviour, how in ((closes_mid_body, "fin"), (resets_mid_body, "rst"))
        for stream in (False, True)
    ],
    pytest.param(
        never_answers,
        "http",
        False,
        0.3,
        TransportTimeout,
        101504,
        "no response from {host} within 0.3 s (GET /x)",
        id="never-answers",
    ),
    *[
        pytest.param(
            stalls_mid_body,
            "http",
            stream,
            0.3,
            TransportTimeout,
            101504,
            "{host} stopped sending the response for 0.3 s",  # a timeout, not a closed connection
            id=f"stalls-mid-body-{'streamed' if stream else 'read'}",
        )
        for stream in (False, True)
    ],
    pytest.param(
        None,
        "http",
        False,
        5,
        ConnectError,
        101503,
        "cannot connect to {host} (connection refused or host unreachable)",
        id="refused",
    ),
    pytest.param(
        answers_garbage,
        "http",
        False,
        5,
        TransportError,
        101500,  # not "cannot connect"
        "{host} answered something that is not an HTTP response (GET /x)",
        id="not-http",
    ),
    *[
        pytest.param(
            lies_about_gzip,
            "http",
            stream,
            5,
            TransportError,
            101500,  # was a raw requests error
            "the response from {host} could not be decoded (its Content-Encoding is not what it says)",
            id=f"lying-gzip-{'streamed' if stream else 'read'}",
        )
        for stream in (False, True)
    ],
    pytest.param(
        answers_garbage,
        "https",
        False,
        5,
        ConnectError,
        101503,
        "TLS handshake with {host} failed (certificate not trusted or invalid); pass the server's CA "
        "bundle (caFile) if it uses a private CA",
        id="tls-to-a-plain-server",
    ),
]


@pytest.mark.parametrize(("behaviour", "scheme", "stream", "timeout", "error", "code", "message"), FAILURES)
def test_each_failure_below_http_is_its_transport_error(
    raw_server, transport, behaviour, scheme, stream, timeout, error, code, message
) -> None:
    if behaviour is None:
        port = _refusing_port()
    else:
        port = raw_server(behaviour, read_request=scheme == "http").port
    with pytest.raises(TransportError) as info:
        _send(transport, f"{scheme}://127.0.0.1:{port}/x", stream=stream, timeout=timeout)
    assert type(info.value) is error and info.value.code == code
    assert str(info.value) == message.format(host=f"127.0.0.1:{port}")
    assert not isinstance(info.value, MediationFault) and info.value.__cause__ is None
    assert "tok-must-not-leak" not in str(info.value)


def test_every_meaning_in_the_exception_table_has_its_error() -> None:
    assert {meaning for _, meaning in _EXCEPTION_MAP} | {"other"} == set(_ERRORS)


def test_a_closed_connection_object_raises_connection_closed(tmp_path: Path) -> None:
    connection = Connector.load().connection(
        registry=FileRegistry(tmp_path), apiUrl="http://127.0.0.1:9", accessToken="tok", apiVersion="62.0"
    )
    connection.close()
    with pytest.raises(ConnectionClosedError, match="the connection is closed") as info:
        connection.invoke("getJob", jobId="750x")
    assert info.value.code == 101505 and not isinstance(info.value, MediationFault)


# --- the same failures through a served flow: the engine's default fault, one renderer ---------

CALL_PROXY = """<proxy xmlns="http://ws.apache.org/ns/synapse" name="relay">
  <target><inSequence>
    <call><endpoint><http method="get" uri-template="{url}/x"/></endpoint></call>
    <respond/>
  </inSequence></target>
</proxy>
"""


@pytest.mark.parametrize(
    ("behaviour", "code", "message"),
    [
        (None, 101503, "cannot connect to 127.0.0.1:{port} (connection refused or host unreachable)"),
        (closes_before_answering, 101505, "127.0.0.1:{port} closed the connection before answering (GET /x)"),
        (closes_mid_body, 101505, "127.0.0.1:{port} closed the connection in the middle of the response"),
    ],
    ids=["refused", "closed", "closed-mid-body"],
)
def test_a_served_flow_answers_each_transport_failure_with_its_code(
    raw_server, sfbulk_server, tmp_path, behaviour, code, message
) -> None:
    if behaviour is None:
        port = _refusing_port()
    else:
        port = raw_server(behaviour).port
    proxy = tmp_path / "relay.xml"
    proxy.write_text(CALL_PROXY.format(url=f"http://127.0.0.1:{port}"))
    server = sfbulk_server(proxy)
    connection = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=30)
    try:
        connection.request("GET", "/services/relay")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert (response.status, response.reason) == (500, "Internal Server Error")
    assert response.getheader("Content-Type") == "application/xml; charset=UTF-8"
    expected = message.format(port=port)
    assert body == f"<fault><code>{code}</code><message>{expected}</message></fault>".encode()
