"""Issue 15 point 3, standing in for three hosts: three `sfbulk serve` processes on three ports share
one PostgreSQL registry (a real server, tests/fixtures/postgres.py). A Salesforce stand-in counts the
token grants (tests/fixtures/grants.py); the stored token is expired.

* 300 concurrent seed-proxy requests spread over the three make exactly one refresh grant, and every
  request succeeds; the first instance runs `--workers 2`, so pre-forked workers share the
  PostgreSQL registry too (each opens its own connections after the fork).
* An instance SIGKILLed while it holds the refresh lock (its token endpoint is slow, so it is still
  holding it) does not block the others: they refresh within the lock timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from sfbulk.connector.connection import Connector
from sfbulk.registry import open_registry

REPO = Path(__file__).resolve().parents[2]
SEED_PROXY = REPO / "examples" / "synapse" / "salesforcebulk_createJob.xml"
FAULT_SEQ = REPO / "examples" / "synapse" / "faultHandlerSeq.xml"
REG_PATH = "connectors/SalesforceBulk"
INTERVAL_MS = "1000000"
INSTANCES = 3
REQUESTS = 300
#: The token manager's lock timeout (sfbulk.connector.auth takes the registry's default, 30 s).
LOCK_TIMEOUT = 30.0


class Instance:
    """One `sfbulk serve` process (a "host"), its output in files under ``work``."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, out: Path, err: Path) -> None:
        self.proc, self.url, self.out, self.err = proc, url, out, err

    @property
    def proxy(self) -> str:
        return f"{self.url}/services/salesforcebulk_createJob"


def _start(
    work: Path, number: int, registry: str, token_endpoint: str, api_host: str, workers: int = 1
) -> Instance:
    out, err = work / f"serve{number}.out", work / f"serve{number}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sfbulk",
                "serve",
                str(SEED_PROXY),
                str(FAULT_SEQ),
                "--port",
                "0",
                "--registry",
                registry,
                "--threads",
                "24",
                "--no-access-log",
                "--token-endpoint",
                token_endpoint,
                "--allow-host",
                api_host,
                "--workers",
                str(workers),
            ],
            cwd=work,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        first = out.read_text(errors="replace").splitlines()[:1]
        if first and first[0].startswith("sfbulk serving at "):
            return Instance(proc, first[0].split(" at ", 1)[1].split("/services/", 1)[0], out, err)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait(10)
    pytest.fail(f"sfbulk serve {number} did not start: {out.read_text()} {err.read_text()}")


@pytest.fixture
def hosts(
    tmp_path: Path, pg_registry_url: str, grant_counter: Any, emulator: Any
) -> Iterator[Callable[[], list[Instance]]]:
    """``hosts(first_workers=1)``: three `sfbulk serve` instances on one PostgreSQL registry, their
    token endpoint the grant counter; stopped (SIGKILL if need be) at the end of the test."""
    started: list[Instance] = []
    api_host = urlsplit(emulator.base_url).netloc

    def start(first_workers: int = 1) -> list[Instance]:
        def one(n: int) -> Instance:
            workers = first_workers if n == 0 else 1
            return _start(tmp_path, n, pg_registry_url, grant_counter.url, api_host, workers)

        with ThreadPoolExecutor(INSTANCES) as pool:
            new = list(pool.map(one, range(INSTANCES)))
        started.extend(new)
        return new

    yield start
    for instance in started:
        if instance.proc.poll() is None:
            instance.proc.send_signal(signal.SIGTERM)
    for instance in started:
        try:
            instance.proc.wait(20)
        except subprocess.TimeoutExpired:
            instance.proc.kill()
            instance.proc.wait(10)


def _init_params(emulator: Any, token_endpoint: str) -> dict[str, str]:
    """The seed proxy's init as the servers run it (their --token-endpoint is the grant counter)."""
    creds = emulator.credentials
    return dict(
        apiUrl=emulator.base_url,
        apiVersion="34.0",
        accessToken="",
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
        intervalTime=INTERVAL_MS,
        registryPath=REG_PATH,
        tokenEndpointHostname=token_endpoint,
    )


def _store_expired_token(registry_url: str, params: dict[str, str], token: str) -> Any:
    registry = open_registry(registry_url, environ={})
    with Connector.load().connection(registry=registry, **params) as conn:
        conn.auth.store(token, stamp_ms=int(time.time() * 1000) - 10 * int(INTERVAL_MS))
    return registry


def _seed_body(params: dict[str, str], access_token: str) -> bytes:
    return (
        "<createJob>"
        f"<apiVersion>{params['apiVersion']}</apiVersion><accessToken>{access_token}</accessToken>"
        f"<apiUrl>{params['apiUrl']}</apiUrl><refreshToken>{params['refreshToken']}</refreshToken>"
        f"<clientId>{params['clientId']}</clientId><clientSecret>{params['clientSecret']}</clientSecret>"
        f"<intervalTime>{INTERVAL_MS}</intervalTime><registryPath>{REG_PATH}</registryPath>"
        "<operation>insert</operation><contentType>CSV</contentType><object>Contact</object>"
        "</createJob>"
    ).encode()


def _post(url: str, body: bytes) -> tuple[int, str]:
    try:
        resp = requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=90)
        return resp.status_code, resp.text[:300]
    except requests.RequestException as exc:
        return 0, f"{type(exc).__name__}: {exc}"


@pytest.mark.slow
def test_three_hosts_300_concurrent_requests_make_exactly_one_refresh_grant(
    hosts: Callable[..., list[Instance]],
    pg_registry_url: str,
    grant_counter: Any,
    emulator: Any,
    access_token: str,
) -> None:
    params = _init_params(emulator, grant_counter.url)
    registry = _store_expired_token(pg_registry_url, params, access_token)
    instances = hosts(first_workers=2)
    assert grant_counter.count() == 0
    body = _seed_body(params, access_token)
    gate = threading.Barrier(REQUESTS)

    def one(number: int) -> tuple[int, str]:
        gate.wait(60)  # all 300 in flight at once
        return _post(instances[number % INSTANCES].proxy, body)

    started = time.monotonic()
    with ThreadPoolExecutor(REQUESTS) as pool:
        answers = list(pool.map(one, range(REQUESTS)))
    elapsed = time.monotonic() - started
    failed = [a for a in answers if a[0] != 201]
    assert failed == [], f"{len(failed)} of {REQUESTS} failed, e.g. {failed[:3]}"
    assert grant_counter.count("refresh_token") == 1, grant_counter.grants
    assert grant_counter.count() == 1
    stored = registry.get(f"{REG_PATH}/accessToken")
    assert stored and stored != access_token
    print(f"{REQUESTS} requests over {INSTANCES} instances in {elapsed:.2f} s, 1 grant")
    registry.close()


@pytest.mark.slow
def test_a_lock_holder_killed_mid_refresh_leaves_the_others_able_to_refresh(
    hosts: Callable[[], list[Instance]],
    pg_registry_url: str,
    grant_counter: Any,
    emulator: Any,
    access_token: str,
) -> None:
    params = _init_params(emulator, grant_counter.url)
    registry = _store_expired_token(pg_registry_url, params, access_token)
    victim, *others = hosts()
    body = _seed_body(params, access_token)
    grant_counter.hold_next(60)  # the victim's grant hangs: it holds the refresh lock meanwhile
    with ThreadPoolExecutor(12) as pool:
        doomed = pool.submit(_post, victim.proxy, body)
        assert grant_counter.arrived.wait(30), "the victim never asked for a grant"
        # the others queue behind the victim's lock (they find the same expired token)
        waiting = [pool.submit(_post, others[n % len(others)].proxy, body) for n in range(10)]
        time.sleep(1.0)
        assert not any(f.done() for f in waiting), [f.result() for f in waiting if f.done()]
        killed_at = time.monotonic()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        answers = [f.result(timeout=LOCK_TIMEOUT + 30) for f in waiting]
        recovered = time.monotonic() - killed_at
        assert doomed.result(timeout=90)[0] != 201  # its server died under it
    assert [a for a in answers if a[0] != 201] == []
    assert recovered < LOCK_TIMEOUT, f"the others took {recovered:.1f} s after the kill"
    # the victim's grant (never answered) and exactly one more, by whichever survivor got the lock
    assert grant_counter.count("refresh_token") == 2, grant_counter.grants
    stored = registry.get(f"{REG_PATH}/accessToken")
    assert stored and stored != access_token
    print(f"the survivors refreshed {recovered:.2f} s after the lock holder was killed")
    registry.close()
