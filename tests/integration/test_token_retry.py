"""Issue 10 point 3: token-endpoint faults are transient; only Salesforce's credential errors say so.

A "flaky" token endpoint is a real loopback server in front of the emulator's: it answers 503, 429 or
cuts the connection for its first N requests, then relays to the emulator. The 100,000-row test
runs the real `sfbulk load` / `sfbulk extract` processes against an emulator configured exactly as
`sfbulk emulator --fault-oauth --fault-rate 0.1 --reset-rate 0.05 --token-ttl 1` configures it.
"""

from __future__ import annotations

import csv
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from fixtures.emulator import cli_env

from sfbulk.connector.auth import InitParams, TokenEndpointUnavailable, TokenManager
from sfbulk.connector.connection import Connector
from sfbulk.engine.engine import Engine
from sfbulk.errors import AuthError, ConnectionClosedError
from sfbulk.registry import FileRegistry
from sfbulk.transport import RequestsTransport, RetryPolicy

REPO = Path(__file__).resolve().parents[2]
SYNAPSE = REPO / "examples" / "synapse"


class FlakyTokenEndpoint:
    """``faults`` is the list of answers for the first requests ("503", "429", "reset", "invalid_grant");
    after them every request is relayed to ``target``'s token endpoint."""

    def __init__(self, target: str, faults: list[str]) -> None:
        self.faults = list(faults)
        self.calls = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.calls += 1
                fault = outer.faults.pop(0) if outer.faults else None
                if fault == "reset":
                    self.close_connection = True
                    self.connection.shutdown(2)  # no answer at all
                    return
                if fault in ("503", "429"):
                    status, body = int(fault), b'{"error":"unavailable","error_description":"try later"}'
                elif fault == "invalid_grant":
                    status, body = (
                        400,
                        b'{"error":"invalid_grant","error_description":"expired access/refresh token"}',
                    )
                else:
                    relayed = requests.post(
                        target + self.path,
                        data=data,
                        timeout=10,
                        headers={"Content-Type": self.headers["Content-Type"]},
                    )
                    status, body = relayed.status_code, relayed.content
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky(emulator):
    started: list[FlakyTokenEndpoint] = []

    def make(*faults: str) -> FlakyTokenEndpoint:
        endpoint = FlakyTokenEndpoint(emulator.base_url, list(faults))
        started.append(endpoint)
        return endpoint

    yield make
    for endpoint in started:
        endpoint.close()


def _dispatcher_request(emulator, token_endpoint: str) -> bytes:
    creds = emulator.credentials
    fields = {
        "apiVersion": "34.0",
        "accessToken": "",
        "apiUrl": emulator.base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "registryPath": "connectors/SalesforceBulk",
        "tokenEndpointHostname": token_endpoint,
        "operation": "insert",
        "contentType": "CSV",
        "object": "Contact",
    }
    return ("<createJob>" + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + "</createJob>").encode()


@pytest.mark.parametrize("faults", [("503",), ("503", "reset", "429")], ids=["one-503", "503-reset-429"])
def test_a_flow_whose_init_refresh_hits_transient_faults_retries_and_succeeds(
    sfbulk_server, tmp_path, emulator, flaky, faults, caplog
):
    endpoint = flaky(*faults)
    engine = Engine(registry=str(tmp_path / "registry"))
    engine.load(SYNAPSE / "salesforcebulk_dispatcher.xml", SYNAPSE / "faultHandlerSeq.xml")
    server = sfbulk_server(engine=engine)
    answer = requests.post(
        server.service_url("salesforcebulk_dispatcher"),
        data=_dispatcher_request(emulator, endpoint.url),
        headers={"Content-Type": "application/xml", "Action": "urn:createJob"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    assert endpoint.calls == len(faults) + 1  # every fault retried, then the real grant
    assert "check refreshToken" not in caplog.text


def test_a_credential_error_is_not_retried_and_says_check_the_credentials(tmp_path, emulator, flaky):
    endpoint = flaky("invalid_grant")
    conn = Connector.load().connection(
        registry=FileRegistry(tmp_path / "r"), **_params(emulator, endpoint.url)
    )
    with pytest.raises(AuthError, match="invalid_grant.*check refreshToken, clientId and clientSecret"):
        conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV")
    assert endpoint.calls == 1
    written = [p for p in (tmp_path / "r").rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert written == []  # a failed grant writes nothing (the lock folder aside)
    conn.close()


def test_when_the_endpoint_stays_down_the_error_says_it_is_not_the_credentials(tmp_path, emulator, flaky):
    endpoint = flaky(*["503"] * 3)
    params = InitParams.from_params(_params(emulator, endpoint.url))
    with RequestsTransport() as transport:
        manager = TokenManager(
            params, FileRegistry(tmp_path / "r"), transport, retry=RetryPolicy(attempts=3, initial=0.01)
        )
        with pytest.raises(
            TokenEndpointUnavailable, match="HTTP 503.*after 3 attempts.*not a credentials problem"
        ):
            manager.current()
    assert endpoint.calls == 3


def test_connection_failures_are_retried_then_reported_as_such(tmp_path, emulator, flaky):
    endpoint = flaky(*["reset"] * 2)
    params = InitParams.from_params(_params(emulator, endpoint.url))
    with RequestsTransport() as transport:
        manager = TokenManager(
            params, FileRegistry(tmp_path / "r"), transport, retry=RetryPolicy(attempts=2, initial=0.01)
        )
        with pytest.raises(ConnectionClosedError):
            manager.current()
        manager.retry = RetryPolicy(attempts=3, initial=0.01)
        endpoint.faults = ["reset", "reset"]
        assert manager.current().token  # the third attempt gets the real grant
    assert endpoint.calls == 5


def _params(emulator, token_endpoint: str) -> dict[str, str]:
    creds = emulator.credentials
    return {
        "apiUrl": emulator.base_url,
        "accessToken": "",
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "tokenEndpointHostname": token_endpoint,
        "timeout": "10",
    }


# --- the acceptance run: 100,000 rows through token-endpoint faults and 1 s tokens ----------------

ROWS = 100_000


@pytest.mark.slow
def test_load_and_extract_100k_rows_through_token_endpoint_faults(emulator_factory, tmp_path):
    emu = emulator_factory(
        token_ttl=1, processing_delay_ms=300
    )  # --token-ttl 1; slower batches: more expiries
    grants = {"oauth": 0, "oauth_faults": 0}
    draw = emu.faults.draw

    def counting_draw(
        is_oauth: bool,
    ):  # counts what the emulator's own fault injection did at the token endpoint
        fault, latency = draw(is_oauth)
        if is_oauth:
            grants["oauth"] += 1
            grants["oauth_faults"] += fault is not None
        return fault, latency

    emu.faults.draw = counting_draw
    # = sfbulk emulator --fault-oauth --fault-rate 0.1 --reset-rate 0.05 (sfbulk/emulator/cli.py)
    emu.faults.configure(error_rate=0.1, reset_rate=0.05, include_oauth=True)
    src = tmp_path / "contacts.csv"
    with src.open("w", encoding="utf-8", newline="") as fh:
        fh.write("LastName,Email\n")
        fh.writelines(f"L{i},tf{i}@example.com\n" for i in range(ROWS))
    env = {**os.environ, **cli_env(emu, tmp_path)}
    load = subprocess.run(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "load",
            str(src),
            "--object",
            "Contact",
            "--batch-size",
            "5000",
            "--no-progress",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert load.returncode == 0, load.stdout + load.stderr
    out = tmp_path / "out.csv"
    extract = subprocess.run(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "extract",
            "SELECT Email FROM Contact",
            "--out",
            str(out),
            "--no-progress",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert extract.returncode == 0, extract.stdout + extract.stderr
    emu.faults.configure()
    db = emu.store.reader()
    assert db.execute('SELECT COUNT(*), COUNT(DISTINCT Email) FROM "sobj_Contact"').fetchone() == (ROWS, ROWS)
    with out.open(encoding="utf-8", newline="") as fh:
        emails = [row[0] for row in list(csv.reader(fh))[1:]]
    assert len(emails) == len(set(emails)) == ROWS  # extracted exactly once
    assert grants["oauth"] >= 3  # 1 s tokens really were refreshed during the runs
    assert "check refreshToken" not in load.stderr + extract.stderr
