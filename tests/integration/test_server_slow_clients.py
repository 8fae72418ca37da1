"""Slow and half-finished clients over raw sockets: they cannot starve the server, and each gets a clear answer.

The load test opens 200 connections trickling headers and 200 trickling bodies (one byte per
connection every 0.3 s) and, while they trickle, probes ``/health`` and the seed proxy against the
emulator: every probe must answer within 2 s. The full 30 s figure is measured by
``bench/slow_clients.py`` (docs/server.md). The other tests check the deadlines (408 although the
client keeps sending), 400 at once for truncated or malformed framing, and the size limits.
"""

from __future__ import annotations

import resource
import socket
import time
from pathlib import Path

import pytest
import requests
from lxml import etree
from test_server_seed import FAULT_SEQ, SEED_PROXY, seed_request

HEALTH_DEADLINE_S = 2.0


@pytest.fixture(scope="module", autouse=True)
def _enough_file_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2048 if hard == resource.RLIM_INFINITY else min(2048, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    yield
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Tricklers:
    """``count`` raw connections, each sending ``prefix`` then one more byte of ``drip`` per ``tick()``."""

    def __init__(self, host: str, port: int, count: int, prefix: bytes, drip: bytes) -> None:
        self.address = (host, port)
        self.prefix = prefix
        self.drip = drip
        self.socks: list[socket.socket] = []
        self.offsets: list[int] = []
        for _ in range(count):
            self.socks.append(self._open())
            self.offsets.append(0)
        self.reopened = 0

    def _open(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=5)
        sock.sendall(self.prefix)
        sock.setblocking(False)
        return sock

    def tick(self) -> None:
        for i, sock in enumerate(self.socks):
            try:
                sock.send(self.drip[self.offsets[i] % len(self.drip) :][:1])
                self.offsets[i] += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:  # cut by a deadline: a persistent attacker comes straight back
                sock.close()
                self.socks[i] = self._open()
                self.offsets[i] = 0
                self.reopened += 1

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def _probe(server, emulator, access_token) -> tuple[float, float]:
    started = time.monotonic()
    health = requests.get(server.url + "/health", timeout=HEALTH_DEADLINE_S + 3)
    health_s = time.monotonic() - started
    assert health.status_code == 200
    started = time.monotonic()
    seed = requests.post(
        server.service_url("salesforcebulk_createJob"),
        data=seed_request(emulator, access_token).encode(),
        headers={"Content-Type": "text/xml"},
        timeout=HEALTH_DEADLINE_S + 3,
    )
    seed_s = time.monotonic() - started
    assert seed.status_code == 201, seed.text
    return health_s, seed_s


@pytest.mark.slow
def test_400_trickling_clients_do_not_starve_health_or_the_seed_proxy(sfbulk_server, emulator, access_token):
    # 8 worker threads only: with a thread-per-connection server, 8 tricklers would be enough.
    server = sfbulk_server(SEED_PROXY, FAULT_SEQ, threads=8)
    target = b"POST /services/salesforcebulk_createJob HTTP/1.1\r\nHost: x\r\n"
    headers = Tricklers(server.host, server.port, 200, target, b"X-Slow: " + b"a" * 4000 + b"\r\n")
    bodies = Tricklers(
        server.host,
        server.port,
        200,
        target + b"Content-Type: text/xml\r\nContent-Length: 100000\r\n\r\n<a>",
        b"x" * 100000,
    )
    timings: list[tuple[float, float]] = []
    try:
        ends = time.monotonic() + 4.0
        next_probe = time.monotonic() + 0.5
        while time.monotonic() < ends:
            headers.tick()
            bodies.tick()
            if time.monotonic() >= next_probe:
                timings.append(_probe(server, emulator, access_token))
                next_probe = time.monotonic() + 0.5
            time.sleep(0.3)
        assert len(server.engine.proxies) == 1
    finally:
        headers.close()
        bodies.close()
    assert len(timings) >= 3
    worst = max(max(pair) for pair in timings)
    assert worst < HEALTH_DEADLINE_S, timings


def _read_response(sock: socket.socket, limit_s: float = 10.0) -> bytes:
    sock.settimeout(limit_s)
    raw = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        raw += chunk
    return raw


def _fault(raw: bytes) -> tuple[str, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    root = etree.fromstring(body)
    return root.findtext("code") or "", root.findtext("message") or ""


@pytest.fixture
def quick_server(sfbulk_server):
    return sfbulk_server(
        SEED_PROXY, FAULT_SEQ, threads=2, header_timeout=1.0, body_timeout=1.0, idle_timeout=5.0
    )


def test_headers_trickled_past_the_header_deadline_get_408(quick_server):
    with socket.create_connection((quick_server.host, quick_server.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        started = time.monotonic()
        answer = b""
        while time.monotonic() - started < 5:
            try:
                sock.sendall(b"X")  # never silent: an inactivity timeout alone would never fire
            except OSError:
                break
            sock.settimeout(0.2)
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            if b"</fault>" in answer:
                break
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert _fault(answer)[0] == "RequestTimeout"
    assert "--header-timeout" in _fault(answer)[1]
    assert elapsed < 3.0


def test_body_trickled_past_the_body_deadline_gets_408(quick_server):
    with socket.create_connection((quick_server.host, quick_server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /services/salesforcebulk_createJob HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 1000\r\n\r\n"
        )
        started = time.monotonic()
        answer = b""
        while time.monotonic() - started < 5 and b"</fault>" not in answer:
            try:
                sock.sendall(b"x")
            except OSError:
                break
            sock.settimeout(0.2)
            try:
                answer += sock.recv(65536)
            except TimeoutError:
                continue
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert "--body-timeout" in _fault(answer)[1]
    assert elapsed < 3.0


def test_body_shorter_than_content_length_gets_400_at_once(quick_server):
    with socket.create_connection((quick_server.host, quick_server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /services/salesforcebulk_createJob HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            b"Content-Length: 100\r\n\r\n<createJob/>"
        )
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        raw = _read_response(sock)
    assert time.monotonic() - started < 1.0
    assert raw.startswith(b"HTTP/1.1 400 "), raw
    code, message = _fault(raw)
    assert code == "BadRequest"
    assert "12 of the 100 bytes" in message


@pytest.mark.parametrize(
    ("framing", "expected"),
    [
        (b"zz\r\n<a/>\r\n0\r\n\r\n", "Invalid chunk size"),
        (b"4\r\n<a/>XX0\r\n\r\n", "Chunk not properly terminated"),
        (b"4;" + b"\x00" + b"\r\n<a/>\r\n0\r\n\r\n", "Invalid chunk extension"),
    ],
    ids=["bad-size", "unterminated", "bad-extension"],
)
def test_malformed_chunked_body_gets_400_at_once(quick_server, framing, expected):
    with socket.create_connection((quick_server.host, quick_server.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(
            b"POST /services/salesforcebulk_createJob HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + framing
        )
        raw = _read_response(sock)
    assert time.monotonic() - started < 1.0
    assert raw.startswith(b"HTTP/1.1 400 "), raw
    code, message = _fault(raw)
    assert code == "BadRequest" and expected in message


def test_chunked_body_without_last_chunk_gets_400_when_the_client_closes(quick_server):
    with socket.create_connection((quick_server.host, quick_server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /services/salesforcebulk_createJob HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n4\r\n<a/>\r\n"
        )
        started = time.monotonic()
        sock.shutdown(socket.SHUT_WR)
        raw = _read_response(sock)
    assert time.monotonic() - started < 1.0
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert "last (zero-size) chunk" in _fault(raw)[1]


def test_stalled_short_body_gets_408_after_the_idle_timeout(sfbulk_server):
    server = sfbulk_server(SEED_PROXY, FAULT_SEQ, threads=2, idle_timeout=1.0)
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /services/salesforcebulk_createJob HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n"
            b"Content-Length: 100\r\n\r\n<createJob/>"
        )
        started = time.monotonic()
        raw = _read_response(sock)
    assert raw.startswith(b"HTTP/1.1 408 "), raw
    assert "--idle-timeout" in _fault(raw)[1]
    assert time.monotonic() - started < 3.0


def test_headers_over_the_limit_get_431(sfbulk_server):
    server = sfbulk_server(SEED_PROXY, FAULT_SEQ, threads=2, max_header_bytes=4096)
    response = requests.get(server.url + "/health", headers={"X-Big": "a" * 5000}, timeout=5)
    assert response.status_code == 431
    assert etree.fromstring(response.content).findtext("code") == "HeadersTooLarge"
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_the_connection_cap_queues_extra_clients_until_a_slot_frees(sfbulk_server):
    server = sfbulk_server(SEED_PROXY, FAULT_SEQ, threads=2, max_connections=3, idle_timeout=1.0)
    idle = [socket.create_connection((server.host, server.port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.3)
        started = time.monotonic()
        # the fourth client waits in the backlog until the idle timeout frees a slot, then is served
        response = requests.get(server.url + "/health", timeout=10)
        waited = time.monotonic() - started
    finally:
        for sock in idle:
            sock.close()
    assert response.status_code == 200
    assert 0.5 < waited < 4.0


def test_sfbulk_serve_documents_its_limits():
    text = (Path(__file__).resolve().parents[2] / "docs" / "server.md").read_text()
    for option in (
        "--header-timeout",
        "--body-timeout",
        "--idle-timeout",
        "--max-connections",
        "--max-header-bytes",
        "--max-connections-per-client",
        "--max-buffered-bytes",
    ):
        assert option in text


def test_bodies_wait_when_the_buffering_budget_is_spent_and_small_requests_still_flow(sfbulk_server):
    server = sfbulk_server(
        SEED_PROXY,
        FAULT_SEQ,
        threads=2,
        max_body_bytes=1_000_000,
        max_buffered_bytes=1_000_000,
        body_timeout=1.0,
        idle_timeout=5.0,
    )
    post = b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
    hogs = [socket.create_connection((server.host, server.port), timeout=5) for _ in range(2)]
    waiting = socket.create_connection((server.host, server.port), timeout=5)
    try:
        for hog in hogs:
            hog.sendall(post % 1_000_000 + b"x" * 600_000)  # together more than the budget, never finished
        time.sleep(0.6)
        waiting.sendall(post % 100)
        time.sleep(0.2)
        waiting.sendall(b"y" * 100)  # complete, but not read while the budget is spent
        assert requests.get(server.url + "/health", timeout=2).status_code == 200  # no body: still served
        answer = _read_response(waiting, 5)
    finally:
        for hog in hogs:
            hog.close()
        waiting.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert "--body-timeout" in _fault(answer)[1]
    time.sleep(0.6)  # the hogs were cut by their deadline too: the budget is free again
    response = requests.post(server.url + "/health", data=b"z" * 100, timeout=5)
    assert response.status_code == 405  # its body was read, then the method refused


def test_a_blank_line_then_close_after_a_request_is_a_plain_close(quick_server):
    with socket.create_connection((quick_server.host, quick_server.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n\r\n")
        time.sleep(0.2)
        sock.shutdown(socket.SHUT_WR)
        raw = _read_response(sock)
    assert raw.startswith(b"HTTP/1.1 200 ")
    assert raw.count(b"HTTP/1.1 ") == 1  # no 400 for the trailing blank line


def test_one_client_address_cannot_take_more_than_its_share(sfbulk_server):
    server = sfbulk_server(SEED_PROXY, FAULT_SEQ, threads=2, max_connections_per_client=3)
    held = [socket.create_connection((server.host, server.port), timeout=5) for _ in range(3)]
    try:
        time.sleep(0.2)
        with socket.create_connection((server.host, server.port), timeout=5) as extra:
            raw = _read_response(extra, 5)
        assert raw.startswith(b"HTTP/1.1 503 "), raw
        assert _fault(raw)[0] == "TooManyConnections" and "--max-connections-per-client" in _fault(raw)[1]
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.3)  # the closed connections give the address its slots back
    assert requests.get(server.url + "/health", timeout=5).status_code == 200
    with requests.Session() as session:  # keep-alive reuse counts once
        assert all(session.get(server.url + "/health", timeout=5).status_code == 200 for _ in range(5))
