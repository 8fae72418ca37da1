"""Identity-bound token caching through the Python API (sfbulk/connector/auth.py), against the emulator.

The server-level attacks (hijack, poisoning) are in test_server_trust.py; these pin the rules:
who may read and write which entry, when the supplied token is stored, and that identities do not
wait for each other.
"""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest

from sfbulk.connector.connection import Connector
from sfbulk.errors import AuthError
from sfbulk.registry import FileRegistry

REG_PATH = "connectors/SalesforceBulk"


def params(emu, **overrides: str) -> dict[str, str]:
    creds = emu.credentials
    values = {
        "apiUrl": emu.base_url,
        "apiVersion": "62.0",
        "accessToken": "",
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "registryPath": REG_PATH,
        "tokenEndpointHostname": emu.base_url,
        "timeout": "10",
    }
    values.update(overrides)
    return values


def create_job(conn) -> int:
    return conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV").status


def resources(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts
    )


def test_a_token_without_an_identity_is_never_used(emulator, tmp_path, access_token):
    registry = FileRegistry(tmp_path / "r")
    registry.put(f"{REG_PATH}/accessToken", "planted-token", secret=True)  # e.g. copied in by someone
    registry.put(f"{REG_PATH}/time", str(int(time.time() * 1000)))
    with Connector.load().connection(registry=registry, **params(emulator)) as conn:
        assert create_job(conn) == 201
        assert conn.auth.refresh_count == 1  # its own grant, not the planted token
    assert registry.get(f"{REG_PATH}/accessToken") not in ("planted-token", access_token)


def test_the_supplied_token_is_stored_only_after_salesforce_accepted_it(emulator, tmp_path, access_token):
    registry = FileRegistry(tmp_path / "r")
    # a bogus supplied token with refresh credentials that fail: rejected, refresh refused, nothing written
    with Connector.load().connection(
        registry=registry, **params(emulator, refreshToken="wrong", accessToken="bogus")
    ) as bogus:
        with pytest.raises(AuthError, match="check refreshToken"):
            create_job(bogus)
    assert resources(registry.root) == []
    with Connector.load().connection(registry=registry, **params(emulator, accessToken=access_token)) as good:
        assert create_job(good) == 201 and good.auth.refresh_count == 0
    assert registry.get(f"{REG_PATH}/accessToken") == access_token
    assert resources(registry.root) == [
        ".sfbulk-identity-key",
        f"{REG_PATH}/accessToken",
        f"{REG_PATH}/apiUrl",
        f"{REG_PATH}/identity",
        f"{REG_PATH}/time",
    ]


class SlowTokenEndpoint:
    """A token endpoint that takes ``delay`` seconds, then refuses: another identity's slow grant."""

    def __init__(self, delay: float) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay)
                body = b'{"error":"invalid_grant","error_description":"authentication failure"}'
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.mark.slow
def test_another_identitys_slow_grant_does_not_hold_up_this_identitys_refresh(emulator, tmp_path):
    slow = SlowTokenEndpoint(delay=3.0)
    registry = FileRegistry(tmp_path / "r")
    try:
        attacker = Connector.load().connection(
            registry=registry, **params(emulator, tokenEndpointHostname=slow.url, timeout="20")
        )
        victim = Connector.load().connection(registry=registry, **params(emulator))
        started = threading.Event()

        def attack() -> None:
            started.set()
            try:
                create_job(attacker)
            except Exception:  # noqa: BLE001 - refused after 3 s, as intended
                pass

        thread = threading.Thread(target=attack)
        thread.start()
        started.wait(5)
        time.sleep(0.3)  # the attacker's grant is in flight, holding its lock
        begun = time.monotonic()
        assert create_job(victim) == 201  # needs a grant of its own: same registryPath, other identity
        assert time.monotonic() - begun < 2.0
        thread.join(10)
    finally:
        slow.server.shutdown()
        slow.server.server_close()


def test_two_identities_claiming_one_folder_at_once_end_with_one_owner(emulator_factory, tmp_path):
    emus = [emulator_factory(), emulator_factory()]
    registry = FileRegistry(tmp_path / "r")
    conns = [Connector.load().connection(registry=registry, **params(emu)) for emu in emus]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def run(conn) -> None:
        barrier.wait(5)
        statuses.append(create_job(conn))

    threads = [threading.Thread(target=run, args=(conn,)) for conn in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert statuses == [201, 201]
    tokens = [p for p in resources(registry.root) if p.endswith("/accessToken")]
    assert len(tokens) == 2 and f"{REG_PATH}/accessToken" in tokens
    owner = registry.get(f"{REG_PATH}/identity")
    assert owner in {conn.auth.identity() for conn in conns}
    for conn in conns:  # and each keeps using its own token afterwards
        assert create_job(conn) == 201 and conn.auth.refresh_count == 1
        conn.close()
