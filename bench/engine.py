"""Engine overhead: `python bench/engine.py [--iterations N] [--profile]` (also `make bench-engine`).

(a) The createJob + getJob flow through the engine (examples/flows.yaml, connector init included,
    token from the file registry) against the emulator over loopback HTTP, versus the same two Bulk
    API calls made directly with one `requests.Session`. The ratio is what mediation costs on top of
    the HTTP exchange; target <= 1.3x.
(b) Engine-only cost: the same proxies with the HTTP calls answered in-process by a trivial WSGI app
    (canned jobInfo) through `WSGITransport`: messages per second with no network and no emulator.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import requests
from lxml import etree

from sfbulk.emulator import start_emulator
from sfbulk.engine.engine import Engine
from sfbulk.transport import WSGITransport

ROOT = Path(__file__).resolve().parents[1]
FLOWS = ROOT / "examples" / "flows.yaml"
API_VERSION = "34.0"
JOB_NS = "http://www.force.com/2009/06/asyncapi/dataload"


def request_body(root: str, base_url: str, creds: dict[str, str], **fields: str) -> bytes:
    element = etree.Element(root)
    settings = {
        "apiVersion": API_VERSION,
        "apiUrl": base_url,
        "tokenEndpointHostname": base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "intervalTime": "100000000",
    }
    for name, value in {**settings, **fields}.items():
        etree.SubElement(element, name).text = value
    return etree.tostring(element)


def job_id_of(body: bytes) -> str:
    found = etree.fromstring(body).findtext(f"{{{JOB_NS}}}id")
    if not found:
        raise SystemExit(f"no job id in the response: {body[:300]!r}")
    return found


def engine_flow(engine: Engine, base_url: str, creds: dict[str, str]) -> Callable[[], None]:
    create = request_body(
        "createJob", base_url, creds, operation="insert", object="Contact", contentType="CSV"
    )
    headers = [("Content-Type", "application/xml")]

    def flow() -> None:
        created = engine.handle(
            "createJob", method="POST", uri="/services/createJob", headers=headers, body=create
        )
        if created.status != 201:
            raise SystemExit(
                f"createJob through the engine answered {created.status}: {created.body[:300]!r}"
            )
        get = request_body("getJob", base_url, creds, jobId=job_id_of(created.body))
        got = engine.handle("getJob", method="POST", uri="/services/getJob", headers=headers, body=get)
        if got.status != 200:
            raise SystemExit(f"getJob through the engine answered {got.status}")

    return flow


def direct_flow(base_url: str, token: str) -> Callable[[], None]:
    session = requests.Session()
    job_url = f"{base_url}/services/async/{API_VERSION}/job"
    create = (
        f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{JOB_NS}"><operation>insert</operation>'
        "<object>Contact</object><contentType>CSV</contentType></jobInfo>"
    ).encode()
    headers = {"X-SFDC-Session": token, "Content-Type": "application/xml; charset=UTF-8"}

    def flow() -> None:
        created = session.post(job_url, data=create, headers=headers, timeout=60)
        if created.status_code != 201:
            raise SystemExit(f"direct createJob answered {created.status_code}")
        got = session.get(f"{job_url}/{job_id_of(created.content)}", headers=headers, timeout=60)
        if got.status_code != 200:
            raise SystemExit(f"direct getJob answered {got.status_code}")

    return flow


def timed(flow: Callable[[], None], iterations: int, warmup: int = 10) -> list[float]:
    for _ in range(warmup):
        flow()
    samples = []
    for _ in range(iterations):
        started = time.perf_counter()
        flow()
        samples.append(time.perf_counter() - started)
    return samples


# --- (b) a canned in-process Salesforce -------------------------------------------------------------

_JOB_INFO = (
    f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{JOB_NS}"><id>750000000000001AAA</id>'
    "<operation>insert</operation><object>Contact</object><createdById>005000000000001AAA</createdById>"
    "<createdDate>2024-01-01T00:00:00.000Z</createdDate><systemModstamp>2024-01-01T00:00:00.000Z</systemModstamp>"
    "<state>Open</state><concurrencyMode>Parallel</concurrencyMode><contentType>CSV</contentType>"
    "<numberBatchesQueued>0</numberBatchesQueued><numberBatchesInProgress>0</numberBatchesInProgress>"
    "<numberBatchesCompleted>0</numberBatchesCompleted><numberBatchesFailed>0</numberBatchesFailed>"
    "<numberBatchesTotal>0</numberBatchesTotal><numberRecordsProcessed>0</numberRecordsProcessed>"
    "<numberRetries>0</numberRetries><apiVersion>34.0</apiVersion><numberRecordsFailed>0</numberRecordsFailed>"
    "<totalProcessingTime>0</totalProcessingTime><apiActiveProcessingTime>0</apiActiveProcessingTime>"
    "<apexProcessingTime>0</apexProcessingTime></jobInfo>"
).encode()
_TOKEN = (
    b'{"access_token":"00Dcanned!token","instance_url":"http://canned.invalid","id":"x","token_type":"Bearer",'
    b'"issued_at":"1700000000000","signature":"s","scope":"api"}'
)


def canned_salesforce(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Just enough of Salesforce for the flows: the token grant, create job (201) and get job (200)."""
    path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        environ["wsgi.input"].read(length)
    if path.endswith("/oauth2/token"):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [_TOKEN]
    if method == "POST" and path.endswith("/job"):
        start_response(
            "201 Created", [("Content-Type", "application/xml"), ("Content-Length", str(len(_JOB_INFO)))]
        )
        return [_JOB_INFO]
    start_response("200 OK", [("Content-Type", "application/xml"), ("Content-Length", str(len(_JOB_INFO)))])
    return [_JOB_INFO]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=300, help="timed flows per measurement")
    parser.add_argument("--profile", action="store_true", help="print the engine-only hot spots (cProfile)")
    args = parser.parse_args()
    n = args.iterations

    with start_emulator() as emu, tempfile.TemporaryDirectory(prefix="sfbulk-bench-") as tmp:
        creds = emu.credentials
        token = requests.post(
            f"{emu.base_url}/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": creds["client_id"],
                "client_secret": creds["client_secret"],
                "refresh_token": creds["refresh_token"],
            },
            timeout=30,
        ).json()["access_token"]
        with Engine(registry=Path(tmp, "registry")) as engine:
            engine.load(FLOWS)
            through_engine = engine_flow(engine, emu.base_url, creds)
            direct = direct_flow(emu.base_url, token)
            # interleave rounds so drift (SQLite growth, CPU frequency) hits both sides alike
            engine_samples: list[float] = []
            direct_samples: list[float] = []
            rounds = 5
            for _ in range(rounds):
                direct_samples += timed(direct, n // rounds)
                engine_samples += timed(through_engine, n // rounds)

    with tempfile.TemporaryDirectory(prefix="sfbulk-bench-") as tmp:
        with Engine(registry=Path(tmp, "registry"), transport=WSGITransport(canned_salesforce)) as engine:
            engine.load(FLOWS)
            in_process = engine_flow(engine, "http://canned.invalid", creds)
            local_samples = timed(in_process, n)
            if args.profile:
                profiler = cProfile.Profile()
                profiler.runcall(lambda: [in_process() for _ in range(n)])

    engine_ms = statistics.mean(engine_samples) * 1000
    direct_ms = statistics.mean(direct_samples) * 1000
    local_ms = statistics.mean(local_samples) * 1000
    ratio = engine_ms / direct_ms
    print(
        f"bench/engine.py, {len(engine_samples)} flows each (createJob + getJob = 2 messages, 2 HTTP calls)"
    )
    print(
        f"(a) direct requests.Session       : {direct_ms:7.2f} ms/flow (median {statistics.median(direct_samples) * 1000:.2f})"
    )
    print(
        f"    through the engine (YAML flows): {engine_ms:7.2f} ms/flow (median {statistics.median(engine_samples) * 1000:.2f})"
    )
    print(
        f"    ratio engine/direct             : {ratio:7.2f}x  (target <= 1.30x: {'met' if ratio <= 1.3 else 'MISSED'})"
    )
    print(f"    mediation overhead              : {engine_ms - direct_ms:7.2f} ms/flow")
    print("(b) engine only, HTTP answered in-process (WSGITransport, canned jobInfo):")
    print(f"    {local_ms:.3f} ms/flow = {local_ms / 2:.3f} ms/message -> {2000 / local_ms:,.0f} messages/s")
    if args.profile:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
