"""N processes finding the same expired token make exactly ONE refresh call and end on one token."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from sfbulk.connector import Connector
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
        results.put((conn.auth.refresh_count, statuses, registry.get(f"{REG_PATH}/accessToken"), None))
        conn.close()
    except Exception as exc:  # report, never hang the parent
        results.put((None, [], None, f"{type(exc).__name__}: {exc}"))


@pytest.mark.slow
def test_expired_token_is_refreshed_once_across_processes(emulator, access_token, tmp_path):
    registry = FileRegistry(tmp_path / "registry")
    # a stored token far older than intervalTime: every process will find it stale
    registry.put(f"{REG_PATH}/accessToken", access_token, secret=True)
    registry.put(f"{REG_PATH}/time", str(int(time.time() * 1000) - 10_000_000))
    creds = emulator.credentials
    params = dict(apiUrl=emulator.base_url, apiVersion="62.0", accessToken=access_token,
                  refreshToken=creds["refresh_token"], clientId=creds["client_id"],
                  clientSecret=creds["client_secret"], registryPath=REG_PATH,
                  tokenEndpointHostname=emulator.base_url, timeout="20")
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(str(registry.root), params, barrier, results))
               for _ in range(PROCESSES)]
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
