"""`sfbulk serve --workers N` as real processes: one port, N pids, one token refresh, clean drains.

Issue 15 point 3: N pre-forked workers share the port and the file registry. With the stored token
expired, 300 concurrent seed-proxy requests make exactly ONE refresh grant (counted by a loopback
stand-in in front of the emulator's token endpoint) and all succeed; a worker killed while it holds
the refresh lock leaves the others to refresh; SIGTERM drains every worker (a slow request in
flight completes with 200, exit 0); a worker killed with SIGKILL is replaced; workers whose
supervisor died exit; workers that cannot start are retried with a backoff, then given up on.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import requests
from fixtures.backends import slow_backend
from test_server_seed import seed_request

from sfbulk.connector.connection import Connector
from sfbulk.registry import FileRegistry

REPO = Path(__file__).resolve().parents[2]
SEED_PROXY = REPO / "examples" / "synapse" / "salesforcebulk_createJob.xml"
FAULT_SEQ = REPO / "examples" / "synapse" / "faultHandlerSeq.xml"
ECHO_PROXY = REPO / "tests" / "data" / "server" / "echo_proxy.xml"
REG_PATH = "connectors/SalesforceBulk"
EXPIRED_TOKEN = "00Dexpired!not-a-live-session"
STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")
ENDED = re.compile(r"worker (\d+) \(pid (\d+)\) (?:stopped|exited)")
ACCESS_PID = re.compile(r"sfbulk\.access: \[worker \d+ pid (\d+)\]")


class ServeProcess:
    """`sfbulk serve ARGS --port 0` with stderr in a file (the workers' access log can be long)."""

    def __init__(self, args: list[str], work: Path) -> None:
        self.stderr_path = work / f"serve-stderr-{len(list(work.glob('serve-stderr-*.log')))}.log"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sfbulk", "serve", *args, "--port", "0"],
            cwd=work,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first.startswith("sfbulk serving at "):
            self.proc.kill()
            self.proc.wait(10)
            pytest.fail(f"sfbulk serve did not start: {first!r} {self.stderr()}")
        self.banner = first
        self.url = first.split(" at ", 1)[1].split("/services/", 1)[0]

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def worker_pids(self) -> set[int]:
        """Pids of the workers running now, from the supervisor's start and exit lines."""
        text = self.stderr()
        started = {int(m.group(2)) for m in STARTED.finditer(text)}
        ended = {int(m.group(2)) for m in ENDED.finditer(text)}
        return started - ended

    def access_pids(self) -> set[int]:
        return {int(m.group(1)) for m in ACCESS_PID.finditer(self.stderr())}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for pid in self.worker_pids():
            _kill_quietly(pid)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


def _kill_quietly(pid: int) -> None:
    """SIGKILL a leftover worker, if ``pid`` is still an sfbulk process (never a reused pid)."""
    try:
        if b"sfbulk" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return
    except OSError:
        return  # gone (or no /proc: leave it)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    """``pid`` runs (a zombie an init without reaping left behind counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        process = ServeProcess(list(args), tmp_path)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.close()


class GrantCounter:
    """A loopback token endpoint that relays to ``target``'s and counts the grants, by grant_type.

    ``hold_first``: the first grant gets no answer until ``release`` is set (``held`` is set when
    it arrives): its caller sits in the grant, holding the registry's refresh lock.
    """

    def __init__(self, target: str, *, hold_first: bool = False) -> None:
        self.grants: dict[str, int] = {}
        self.held = threading.Event()
        self.release = threading.Event()
        self._hold = hold_first
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                grant = parse_qs(data.decode()).get("grant_type", ["?"])[0]
                with outer._lock:
                    outer.grants[grant] = outer.grants.get(grant, 0) + 1
                    hold, outer._hold = outer._hold, False
                if hold:
                    outer.held.set()
                    outer.release.wait(60)
                    return  # no answer: the caller was killed meanwhile
                relayed = requests.post(
                    target + self.path,
                    data=data,
                    timeout=10,
                    headers={"Content-Type": self.headers["Content-Type"]},
                )
                self.send_response(relayed.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(relayed.content)))
                self.end_headers()
                self.wfile.write(relayed.content)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _store_expired_token(emulator, registry: FileRegistry, token_endpoint: str) -> None:
    """Store, for the identity the seed proxy's init computes (the same apiUrl, credentials and
    token endpoint), an expired token: a bogus value stamped far older than the seed's intervalTime."""
    creds = emulator.credentials
    with Connector.load().connection(
        registry=registry,
        apiUrl=emulator.base_url,
        accessToken="-",
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
        registryPath=REG_PATH,
        tokenEndpointHostname=token_endpoint,
    ) as conn:
        conn.auth.store(EXPIRED_TOKEN, stamp_ms=int(time.time() * 1000) - 10_000_000)


def _serve_seed(serve, emulator, registry: FileRegistry, token_endpoint: str, workers: int) -> ServeProcess:
    return serve(
        str(SEED_PROXY),
        str(FAULT_SEQ),
        "--workers",
        str(workers),
        "--threads",
        "16",
        "--registry",
        str(registry.root),
        "--token-endpoint",
        token_endpoint,
        "--allow-host",
        emulator.base_url.split("://", 1)[1],
    )


def _lock_holders(lock_dir: Path) -> set[int]:
    """Pids holding an flock on a file of ``lock_dir`` (from /proc/locks; waiters left out)."""
    inodes = {entry.stat().st_ino for entry in lock_dir.iterdir()} if lock_dir.is_dir() else set()
    holders = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue
        if int(fields[5].rsplit(":", 1)[1]) in inodes:
            holders.add(int(fields[4]))
    return holders


# --- the command line ---------------------------------------------------------------------------


@pytest.mark.parametrize("workers", ["0", "-2", "many"])
def test_workers_below_one_is_an_error_naming_the_flag(tmp_path, workers):
    result = subprocess.run(
        [sys.executable, "-m", "sfbulk", "serve", str(ECHO_PROXY), "--workers", workers, "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--workers" in result.stderr
    assert "sfbulk serving" not in result.stdout
    assert "Traceback" not in result.stderr


def test_the_banner_names_the_workers_and_a_busy_port_is_a_clear_error(serve, tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "sfbulk", "serve", str(ECHO_PROXY), "--workers", "2", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert "started (pid" not in result.stderr  # nothing was forked

    server = serve(str(ECHO_PROXY), "--workers", "2", "--threads", "4", "--registry", str(tmp_path / "reg"))
    assert "(2 workers x 4 threads, registry " in server.banner
    assert len(server.worker_pids()) == 2
    assert requests.get(f"{server.url}/health", timeout=5).json() == {"status": "ok", "proxies": ["echo"]}
    assert "threads run in the supervisor" not in server.stderr()  # it forks single-threaded


# --- one refresh across workers -----------------------------------------------------------------


@pytest.mark.slow
def test_four_workers_and_the_file_registry_make_one_refresh_grant_for_300_concurrent_requests(
    serve, emulator, access_token, tmp_path
):
    relay = GrantCounter(emulator.base_url)
    registry = FileRegistry(tmp_path / "registry")
    creds = emulator.credentials
    _store_expired_token(emulator, registry, relay.url)
    try:
        server = _serve_seed(serve, emulator, registry, relay.url, workers=4)
        # A live token in the request: were the stored (expired) one not found, it would be used
        # as is and no grant made, so the single grant below is the stale stored token's refresh.
        body = seed_request(emulator, access_token).encode()
        url = f"{server.url}/services/salesforcebulk_createJob"
        clients = 300
        gate = threading.Barrier(clients)
        statuses: list[int] = []
        failures: list[str] = []

        def client() -> None:
            try:
                gate.wait(30)
                response = requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=60)
                statuses.append(response.status_code)
                if response.status_code != 201:
                    failures.append(response.text[:300])
            except Exception as exc:  # report every client's failure, not a hang
                failures.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert not failures, failures[:3]
        assert statuses == [201] * clients
        assert relay.grants == {"refresh_token": 1}
        stored = registry.get(f"{REG_PATH}/accessToken")
        assert stored and stored != EXPIRED_TOKEN
        assert int(registry.get(f"{REG_PATH}/time") or 0) > time.time() * 1000 - 120_000
        assert len(server.access_pids()) > 1, "every request was served by one worker"
        assert server.access_pids() <= server.worker_pids()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    finally:
        relay.close()
    log = server.stderr()
    assert creds["client_secret"] not in log and creds["refresh_token"] not in log
    assert stored not in log and access_token not in log


@pytest.mark.slow
@pytest.mark.skipif(
    not Path("/proc/locks").exists(), reason="needs Linux's /proc/locks to see the lock holder"
)
def test_a_worker_killed_while_it_holds_the_refresh_lock_leaves_the_others_to_refresh(
    serve, emulator, access_token, tmp_path
):
    relay = GrantCounter(emulator.base_url, hold_first=True)
    registry = FileRegistry(tmp_path / "registry")
    _store_expired_token(emulator, registry, relay.url)
    try:
        server = _serve_seed(serve, emulator, registry, relay.url, workers=4)
        body = seed_request(emulator, access_token).encode()
        url = f"{server.url}/services/salesforcebulk_createJob"
        outcomes: list[tuple[float, object]] = []

        def client() -> None:
            try:
                response = requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=60)
                outcomes.append((time.monotonic(), response.status_code))
            except requests.ConnectionError as exc:  # the killed worker's own requests
                outcomes.append((time.monotonic(), exc))

        threads = [threading.Thread(target=client) for _ in range(40)]
        for thread in threads:
            thread.start()
        assert relay.held.wait(30), "no worker asked for a token"
        lock_dir = registry.root / ".locks"
        _wait_for(lambda: bool(_lock_holders(lock_dir) & server.worker_pids()), 10, "the refresh lock holder")
        (holder,) = _lock_holders(lock_dir) & server.worker_pids()
        os.kill(holder, signal.SIGKILL)
        killed_at = time.monotonic()
        for thread in threads:
            thread.join(90)
        successes = [at for at, outcome in outcomes if outcome == 201]
        others = [outcome for _, outcome in outcomes if outcome != 201]
        assert len(outcomes) == 40
        assert all(isinstance(outcome, requests.ConnectionError) for outcome in others), others
        assert successes, "no request succeeded after the lock holder died"
        assert min(successes) - killed_at < 30  # within the registry's lock timeout
        # the dead worker's grant (never answered) and ONE grant after it, by whoever took the lock
        assert relay.grants == {"refresh_token": 2}
        assert registry.get(f"{REG_PATH}/accessToken") not in (None, EXPIRED_TOKEN)
        _wait_for(lambda: len(server.worker_pids()) == 4, 15, "the killed worker's replacement")
        for _ in range(10):
            again = requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=30)
            assert again.status_code == 201
        assert relay.grants == {"refresh_token": 2}  # the stored token serves everyone now
        assert f"(pid {holder}) exited unexpectedly (killed by SIGKILL)" in server.stderr()
    finally:
        relay.close()


# --- draining and replacing ---------------------------------------------------------------------


_SlowBackend = slow_backend(1.5)


def test_sigterm_drains_every_worker_and_the_request_in_flight_completes(serve, tmp_path):
    _SlowBackend.received.clear()
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowBackend)
    threading.Thread(target=backend.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    config = tmp_path / "slow.xml"
    config.write_text(
        '<proxy xmlns="http://ws.apache.org/ns/synapse" name="slow"><target><inSequence>'
        f'<call><endpoint><http method="get" uri-template="http://127.0.0.1:{backend.server_port}/slow"/></endpoint></call>'
        "<respond/></inSequence></target></proxy>"
    )
    try:
        server = serve(str(config), "--workers", "3", "--registry", str(tmp_path / "reg"))
        pids = server.worker_pids()
        assert len(pids) == 3
        results: list[requests.Response] = []
        client = threading.Thread(
            target=lambda: results.append(requests.get(f"{server.url}/services/slow", timeout=20))
        )
        client.start()
        assert _SlowBackend.received.wait(10), "the proxy never called the backend"
        server.proc.send_signal(signal.SIGTERM)
        client.join(20)
        assert [r.status_code for r in results] == [200]
        assert results[0].content == b"<slow>done</slow>"
        assert server.proc.wait(timeout=30) == 0
    finally:
        backend.shutdown()
    assert not [pid for pid in pids if _alive(pid)]
    log = server.stderr()
    assert "SIGTERM: stopping 3 workers" in log
    assert all(f"(pid {pid}) stopped: exit status 0" in log for pid in pids)
    assert "sfbulk serve: stopped." in log
    assert '"GET /services/slow" 200 ' in log
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/health", timeout=2)


def test_a_worker_killed_with_sigkill_is_replaced_and_requests_keep_succeeding(serve, tmp_path):
    server = serve(str(ECHO_PROXY), "--workers", "2", "--registry", str(tmp_path / "reg"))
    before = server.worker_pids()
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    _wait_for(lambda: len(server.worker_pids() - before) == 1, 15, "a replacement worker")
    after = server.worker_pids()
    assert len(after) == 2 and victim not in after
    assert f"(pid {victim}) exited unexpectedly (killed by SIGKILL)" in server.stderr()
    with requests.Session() as session:
        for n in range(20):
            echoed = requests.post(
                f"{server.url}/services/echo",
                data=f"<a>{n}</a>".encode(),
                headers={"Content-Type": "application/xml"},
                timeout=10,
            )
            assert echoed.status_code == 200 and echoed.content == f"<a>{n}</a>".encode()
        assert session.get(f"{server.url}/health", timeout=5).status_code == 200
    assert victim not in server.access_pids()  # only the live workers answered
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=30) == 0
    assert not [pid for pid in after if _alive(pid)]


def test_workers_drain_and_exit_by_themselves_when_the_supervisor_is_killed(serve, tmp_path):
    server = serve(str(ECHO_PROXY), "--workers", "2", "--registry", str(tmp_path / "reg"))
    pids = server.worker_pids()
    assert len(pids) == 2
    server.proc.kill()
    server.proc.wait(10)
    _wait_for(lambda: not [pid for pid in pids if _alive(pid)], 15, "the orphaned workers to exit")
    assert "the sfbulk serve supervisor" in server.stderr() and "is gone; draining" in server.stderr()


# --- the supervisor's policy, with a worker that cannot start ---------------------------------------

_FAILING_SUPERVISOR = """
import json, logging, os, sys
from sfbulk.server.workers import Supervisor, bind_listener

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

def before_fork(directory):
    print(json.dumps({"before_fork": directory, "exists": os.path.isdir(directory)}), flush=True)

def exited(pid):
    print(json.dumps({"exited": pid}), flush=True)

def serve(context):
    raise RuntimeError("cannot start: the example failure")

sock = bind_listener("127.0.0.1", 0)
status = Supervisor(
    sock=sock, workers=2, serve=serve, shutdown_timeout=1, on_before_fork=before_fork,
    on_worker_exit=exited, first_backoff=0.2, start_failure_limit=4,
).run()
print(json.dumps({"status": status}), flush=True)
"""


def test_workers_that_die_at_start_up_are_retried_with_backoff_then_the_supervisor_gives_up(tmp_path):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _FAILING_SUPERVISOR], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    elapsed = time.monotonic() - started
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stderr
    assert events[0]["exists"] is True and events[-1] == {"status": 1}
    assert not os.path.exists(events[0]["before_fork"])  # the shared state folder is removed at exit
    starts = [int(m.group(2)) for m in STARTED.finditer(result.stderr)]
    assert len(starts) == 4  # 2 first workers, 2 replacements, then it gives up: no fork loop
    assert sorted(e["exited"] for e in events if "exited" in e) == sorted(starts)
    assert result.stderr.count("RuntimeError: cannot start: the example failure") == 4
    assert "starting a new one in 0.2 s" in result.stderr
    assert "4 workers in a row died at start-up; stopping" in result.stderr
    assert elapsed >= 0.2  # the replacements waited


# --- metrics across workers (runs once sfbulk.server.metrics exists: issue 15 point 4) ----------


def _proxy_request_total(text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "wso2_integration_proxy_request_count_total"
    )


def test_metrics_count_the_requests_of_every_worker_whichever_worker_is_scraped(serve, tmp_path):
    pytest.importorskip("sfbulk.server.metrics", reason="the metrics module (issue 15 point 4) is not merged")
    server = serve(str(ECHO_PROXY), "--workers", "3", "--registry", str(tmp_path / "reg"))
    for n in range(30):  # a new connection each: they spread over the workers
        echoed = requests.post(
            f"{server.url}/services/echo",
            data=f"<a>{n}</a>".encode(),
            headers={"Content-Type": "application/xml"},
            timeout=10,
        )
        assert echoed.status_code == 200
    assert len(server.access_pids()) > 1
    scrapes = [requests.get(f"{server.url}/metrics", timeout=10) for _ in range(6)]
    assert all(scrape.status_code == 200 for scrape in scrapes)
    assert {_proxy_request_total(scrape.text) for scrape in scrapes} == {30.0}
    # a worker's counts outlive it: the totals do not drop when one is killed and replaced
    victim = min(server.worker_pids())
    os.kill(victim, signal.SIGKILL)
    _wait_for(
        lambda: len(server.worker_pids()) == 3 and victim not in server.worker_pids(), 15, "a replacement"
    )
    assert _proxy_request_total(requests.get(f"{server.url}/metrics", timeout=10).text) == 30.0
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0


def test_a_failing_before_fork_hook_stops_the_supervisor_before_any_fork(tmp_path):
    script = """
import logging, sys
from sfbulk.server.workers import Supervisor, bind_listener
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
def before_fork(directory):
    raise OSError(28, "No space left on device")
status = Supervisor(sock=bind_listener("127.0.0.1", 0), workers=2, serve=lambda context: 0,
                    shutdown_timeout=1, on_before_fork=before_fork).run()
print(status)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=tmp_path
    )
    assert result.stdout.strip() == "1"
    assert (
        "preparing the workers' shared state failed: OSError: [Errno 28] No space left on device"
        in result.stderr
    )
    assert "started (pid" not in result.stderr and "Traceback" not in result.stderr


def _stuck_backend() -> type[http.server.BaseHTTPRequestHandler]:
    """A backend handler that never answers until its ``release`` event is set (events per test)."""

    class Stuck(http.server.BaseHTTPRequestHandler):
        received = threading.Event()
        release = threading.Event()

        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            type(self).received.set()
            type(self).release.wait(60)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Stuck


@pytest.mark.slow
def test_a_request_stuck_past_the_shutdown_timeout_does_not_hold_the_stop(serve, tmp_path):
    stuck = _stuck_backend()
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), stuck)
    threading.Thread(target=backend.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    config = tmp_path / "stuck.xml"
    config.write_text(
        '<proxy xmlns="http://ws.apache.org/ns/synapse" name="stuck"><target><inSequence>'
        f'<call><endpoint><http method="get" uri-template="http://127.0.0.1:{backend.server_port}/"/></endpoint></call>'
        "<respond/></inSequence></target></proxy>"
    )
    try:
        server = serve(
            str(config), "--workers", "2", "--shutdown-timeout", "1", "--registry", str(tmp_path / "r")
        )
        pids = server.worker_pids()
        outcome: list[object] = []

        def call() -> None:
            try:
                outcome.append(requests.get(f"{server.url}/services/stuck", timeout=60).status_code)
            except requests.ConnectionError as exc:
                outcome.append(exc)

        client = threading.Thread(target=call, daemon=True)
        client.start()
        assert stuck.received.wait(10)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        status = server.proc.wait(timeout=40)
        took = time.monotonic() - started
    finally:
        stuck.release.set()
        backend.shutdown()
    # the stuck worker gives up on its request (1 s, then at most 5 + 5 s for its threads) and
    # exits by itself, before the supervisor's kill at 1 + 15 s
    assert took < 16, took
    assert status == 0
    assert not [pid for pid in pids if _alive(pid)]
    assert "did not drain in time" not in server.stderr()
    client.join(10)
    # past --shutdown-timeout the connection is closed, as for a single process (docs/server.md)
    assert len(outcome) == 1 and isinstance(outcome[0], requests.ConnectionError), outcome
