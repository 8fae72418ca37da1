"""Load: 50 concurrent clients, 1,000 createJob requests through the seed proxy, one expired token.

The registry starts with a stale token whose time is older than intervalTime, so every early request
finds the token expired at once. Exactly one refresh-token grant must reach the token endpoint, every
request must get the emulator's 201, and the registry must end consistent.

The proxy is the seed proxy, unchanged. It never passes `tokenEndpointHostname` to init, so the
engine is given that default the way `sfbulk serve --token-endpoint URL` does (`init_defaults`):
a counting relay in front of the emulator's token endpoint, which is how the test counts grants.
"""

from __future__ import annotations

import http.server
import itertools
import threading
import time
from pathlib import Path

import pytest
import requests
from lxml import etree

REPO = Path(__file__).resolve().parents[2]
SEED_PROXY = REPO / "examples" / "synapse" / "salesforcebulk_createJob.xml"
FAULT_SEQ = REPO / "examples" / "synapse" / "faultHandlerSeq.xml"
CLIENTS = 50
REQUESTS = 1000
STALE_TOKEN = "00D000000000001!stale-token-from-yesterday"


class _CountingTokenRelay(http.server.BaseHTTPRequestHandler):
    """Forwards POST /services/oauth2/token to the emulator and counts the grants."""

    protocol_version = "HTTP/1.1"
    upstream = ""
    grants = 0
    lock = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with type(self).lock:
            type(self).grants += 1
        upstream = requests.post(
            type(self).upstream + self.path,
            data=body,
            headers={"Content-Type": self.headers.get("Content-Type", "")},
            timeout=10,
        )
        self.send_response(upstream.status_code)
        self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.slow
def test_50_clients_1000_requests_one_refresh(sfbulk_server, emulator_factory, tmp_path):
    emulator = emulator_factory()
    _CountingTokenRelay.upstream = emulator.base_url
    _CountingTokenRelay.grants = 0
    relay = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CountingTokenRelay)
    threading.Thread(target=relay.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    registry = tmp_path / "registry"
    token_dir = registry / "connectors" / "SalesforceBulk"
    token_dir.mkdir(parents=True)
    (token_dir / "accessToken").write_text(STALE_TOKEN)
    expired_at = int(time.time() * 1000) - 10_000_000  # older than intervalTime (1,000,000 ms)
    (token_dir / "time").write_text(str(expired_at))

    relay_url = f"http://127.0.0.1:{relay.server_port}"
    server = sfbulk_server(
        SEED_PROXY,
        FAULT_SEQ,
        registry=registry,
        threads=32,
        init_defaults={"salesforcebulk": {"tokenEndpointHostname": relay_url}},
    )
    creds = emulator.credentials
    body = (
        "<createJob><apiVersion>34.0</apiVersion>"
        f"<accessToken>{STALE_TOKEN}</accessToken><apiUrl>{emulator.base_url}</apiUrl>"
        f"<refreshToken>{creds['refresh_token']}</refreshToken><clientId>{creds['client_id']}</clientId>"
        f"<clientSecret>{creds['client_secret']}</clientSecret><intervalTime>1000000</intervalTime>"
        "<registryPath>connectors/SalesforceBulk</registryPath>"
        "<operation>insert</operation><contentType>CSV</contentType><object>Contact</object></createJob>"
    ).encode()

    tickets = itertools.count()
    statuses: list[int] = []
    job_ids: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    url = server.service_url("salesforcebulk_createJob")
    start_gate = threading.Barrier(CLIENTS)

    def client() -> None:
        with requests.Session() as session:
            start_gate.wait()
            while next(tickets) < REQUESTS:
                try:
                    response = session.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=30)
                except requests.RequestException as exc:
                    with lock:
                        failures.append(repr(exc))
                    continue
                with lock:
                    statuses.append(response.status_code)
                    if response.status_code == 201:
                        job_ids.append(
                            etree.fromstring(response.content).findtext(
                                "{http://www.force.com/2009/06/asyncapi/dataload}id"
                            )
                        )
                    elif len(failures) < 5:
                        failures.append(f"{response.status_code} {response.text[:300]}")

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    elapsed = time.monotonic() - started
    relay.shutdown()
    relay.server_close()

    assert not failures, failures[:5]
    assert len(statuses) == REQUESTS
    assert set(statuses) == {201}
    assert len(set(job_ids)) == REQUESTS
    assert _CountingTokenRelay.grants == 1

    # the registry is consistent: the stored token is the one the emulator accepts, the time is fresh
    stored_token = (token_dir / "accessToken").read_text()
    assert stored_token != STALE_TOKEN
    check = requests.get(
        f"{emulator.base_url}/services/async/34.0/job/{job_ids[0]}",
        headers={"X-SFDC-Session": stored_token},
        timeout=10,
    )
    assert check.status_code == 200
    stored_time = int((token_dir / "time").read_text())
    assert expired_at < stored_time <= int(time.time() * 1000)
    assert elapsed < 50, f"1,000 requests took {elapsed:.1f} s"
