"""N processes finding the same expired token make exactly ONE refresh call and end on one token;
aliased spellings of one registryPath (``a//b/``, ``conf:x`` = ``config/x``) share that one grant."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from sfbulk.connector.connection import Connector
from sfbulk.registry import FileRegistry

REG_PATH = "connectors/SalesforceBulk"
PROCESSES = 6


def _worker(root: str, params: dict, barrier, results) -> None:
    try:
        registry = FileRegistry(root)
        conn = Connector.load().connection(registry=registry, **params)
        barrier.wait(10)  # everyone finds the stale token at the same moment
        statuses = []
        for _ in range(3):
            resp = conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV")
            statuses.append(resp.status)
        token_key = f"{params['registryPath'].rstrip('/')}/accessToken"
        results.put((conn.auth.refresh_count, statuses, registry.get(token_key), None))
        conn.close()
    except Exception as exc:  # report, never hang the parent
        results.put((None, [], None, f"{type(exc).__name__}: {exc}"))


@pytest.mark.slow
def test_expired_token_is_refreshed_once_across_processes(emulator, access_token, tmp_path):
    registry = FileRegistry(tmp_path / "registry")
    params = _params(emulator, REG_PATH, access_token)
    # a stored token far older than intervalTime: every process will find it stale
    with Connector.load().connection(registry=registry, **params) as conn:
        conn.auth.store(access_token, stamp_ms=int(time.time() * 1000) - 10_000_000)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(str(registry.root), params, barrier, results))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(10)
    errors = [r[3] for r in reports if r[3]]
    assert not errors
    assert sum(r[0] for r in reports) == 1
    assert all(r[1] == [201, 201, 201] for r in reports)
    final = registry.get(f"{REG_PATH}/accessToken")
    assert final and final != access_token
    assert {r[2] for r in reports} == {final}


def _params(emulator, registry_path: str, access_token: str = "") -> dict:
    creds = emulator.credentials
    return dict(
        apiUrl=emulator.base_url,
        apiVersion="62.0",
        accessToken=access_token,
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
        registryPath=registry_path,
        tokenEndpointHostname=emulator.base_url,
        timeout="20",
    )


#: Two canonical registry paths, each spelled two ways: the spellings must share one lock and one file.
ALIASES = (("connectors/A", "connectors//A/"), ("conf:sfb/B", "config/sfb/B"))


@pytest.mark.slow
def test_eight_processes_over_aliased_keys_make_one_grant_per_canonical_key(emulator, tmp_path):
    registry = FileRegistry(tmp_path / "registry")
    spellings = [spelling for pair in ALIASES for spelling in pair]
    assignments = spellings * 2  # 8 processes, two per spelling, four per canonical key
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(assignments))
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(str(registry.root), _params(emulator, path), barrier, results))
        for path in assignments
    ]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
    assert not [r[3] for r in reports if r[3]]
    assert all(r[1] == [201, 201, 201] for r in reports)
    # an empty registry: every process needs a token, and exactly one grant per canonical key is due
    assert sum(r[0] for r in reports) == len(ALIASES)
    for first, second in ALIASES:
        assert registry.get(f"{first}/accessToken") == registry.get(f"{second}/accessToken")
    assert len({r[2] for r in reports}) == len(ALIASES)
    # one file per canonical key: no second copy under another spelling
    assert sorted(p.relative_to(registry.root).as_posix() for p in registry.root.rglob("accessToken")) == [
        "config/sfb/B/accessToken",
        "connectors/A/accessToken",
    ]
