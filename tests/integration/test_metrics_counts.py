"""sfbulk's own counters, fed by the lower layers: token grant tries by outcome (against a real
loopback token endpoint that fails on cue) and Bulk batches and rows by outcome (a real load and
extract against the emulator, Bulk API 1.0 and 2.0). Read from the process's /metrics exposition,
as differences (other tests in this process count too)."""

from __future__ import annotations

import csv
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.emulator import emulator_connection
from prometheus_client.parser import text_string_to_metric_families

from sfbulk.bulk.extract import ExtractOptions, extract
from sfbulk.bulk.load import LoadOptions, load_csv
from sfbulk.bulk.v2.load import load_csv_v2
from sfbulk.errors import TransportError
from sfbulk.server import metrics
from sfbulk.transport import HttpRequest, RequestsTransport, RetryPolicy, send_with_retry


def counters() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    metrics.enable()
    text, _ = metrics.render(None)
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def delta(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


class _TokenEndpoint(http.server.BaseHTTPRequestHandler):
    """Answers each POST with the next status of ``script`` (then 200 with a token)."""

    protocol_version = "HTTP/1.1"
    script: list[int] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = type(self).script.pop(0) if type(self).script else 200
        body = (
            {"access_token": "00D!fresh", "instance_url": "http://127.0.0.1:1"}
            if status == 200
            else {"error": "invalid_grant", "error_description": "expired"}
        )
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def token_endpoint() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/services/oauth2/token"
    finally:
        server.shutdown()
        server.server_close()


def test_each_try_of_a_token_grant_is_counted_by_outcome(token_endpoint: str) -> None:
    quick = RetryPolicy(attempts=3, initial=0.001, cap=0.01)
    body = b"grant_type=refresh_token&refresh_token=5Aep-secret&client_id=app"

    def grant(url: str = token_endpoint, form: bytes = body) -> int:
        request = HttpRequest(
            "POST", url, {"Content-Type": "application/x-www-form-urlencoded"}, form, timeout=5
        )
        with RequestsTransport() as transport:
            return send_with_retry(transport, request, what="test grant", policy=quick).status

    before = counters()
    _TokenEndpoint.script = [503]
    assert grant() == 200  # one 503 retried, then the token
    _TokenEndpoint.script = [400]
    assert grant() == 400  # refused at once: not retried
    _TokenEndpoint.script = [503, 503, 503]
    assert grant() == 503  # every try transient: two retried, the last a failure
    _TokenEndpoint.script = [503]
    jwt = b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=eyJ"
    assert grant(form=jwt) == 200
    with pytest.raises(TransportError):
        grant("http://127.0.0.1:9/services/oauth2/token")  # nothing listens: two retried, then a failure
    assert grant(form=b"<notAGrant/>") == 200  # not a token grant: not counted
    after = counters()
    refresh = {"grant_type": "refresh_token"}
    assert delta(before, after, "sfbulk_token_grants_total", outcome="success", **refresh) == 1
    assert delta(before, after, "sfbulk_token_grants_total", outcome="retried", **refresh) == 1 + 2 + 2
    assert delta(before, after, "sfbulk_token_grants_total", outcome="failure", **refresh) == 1 + 1 + 1
    jwt_bearer = {"grant_type": "jwt_bearer"}
    assert delta(before, after, "sfbulk_token_grants_total", outcome="retried", **jwt_bearer) == 1
    assert delta(before, after, "sfbulk_token_grants_total", outcome="success", **jwt_bearer) == 1
    assert "5Aep-secret" not in metrics.render(None)[0].decode()


def write_contacts(path: Path, n: int, missing_last_name: set[int]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(["FirstName", "LastName", "Email"])
        for i in range(n):
            w.writerow([f"F{i}", "" if i in missing_last_name else f"L{i}", f"m{i}@example.com"])


def test_bulk_batches_and_rows_are_counted_by_outcome(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "contacts.csv"
    write_contacts(src, 250, missing_last_name={3, 150})
    before = counters()
    with emulator_connection(emu, tmp_path / "registry") as conn:
        loaded = load_csv(conn, str(src), LoadOptions(object="Contact", batch_size=100))
        assert (loaded.batches, loaded.succeeded, loaded.failed) == (3, 248, 2)
        extracted = extract(conn, "SELECT Id FROM Contact", str(tmp_path / "out.csv"), ExtractOptions())
        assert extracted.rows == 248
    after = counters()
    load = {"pipeline": "load"}
    assert delta(before, after, "sfbulk_bulk_batches_total", outcome="processed", **load) == 3
    assert delta(before, after, "sfbulk_bulk_batches_total", outcome="failed", **load) == 0
    assert (
        delta(before, after, "sfbulk_bulk_rows_total", outcome="processed", **load) == 250
    )  # failed ones included
    assert delta(before, after, "sfbulk_bulk_rows_total", outcome="failed", **load) == 2
    query = {"pipeline": "extract"}
    assert (
        delta(before, after, "sfbulk_bulk_batches_total", outcome="processed", **query) == extracted.batches
    )
    assert delta(before, after, "sfbulk_bulk_rows_total", outcome="processed", **query) == 248


def test_bulk2_jobs_are_counted_as_batches(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "contacts.csv"
    write_contacts(src, 40, missing_last_name={5})
    before = counters()
    with emulator_connection(emu, tmp_path / "registry", "salesforcebulkv2") as conn:
        loaded = load_csv_v2(conn, str(src), LoadOptions(object="Contact"))
        assert (loaded.batches, loaded.succeeded, loaded.failed) == (1, 39, 1)
    after = counters()
    load = {"pipeline": "load"}
    assert delta(before, after, "sfbulk_bulk_batches_total", outcome="processed", **load) == 1
    assert delta(before, after, "sfbulk_bulk_rows_total", outcome="processed", **load) == 40
    assert delta(before, after, "sfbulk_bulk_rows_total", outcome="failed", **load) == 1


STATUS_FLOW = """
proxies:
  batchStatus:
    inSequence:
      - property: {name: apiUrl, expression: //apiUrl/text()}
      - property: {name: accessToken, expression: //accessToken/text()}
      - property: {name: jobId, expression: //jobId/text()}
      - property: {name: batchId, expression: //batchId/text()}
      - salesforcebulk.init:
          apiVersion: "34.0"
          apiUrl: "{$ctx:apiUrl}"
          accessToken: "{$ctx:accessToken}"
      - salesforcebulk.getBatchStatus:
          jobId: "{$ctx:jobId}"
          batchId: "{$ctx:batchId}"
      - respond
"""
JOB = "{http://www.force.com/2009/06/asyncapi/dataload}"


def test_a_batch_a_flow_sees_finished_is_counted_once(
    sfbulk_server: Any, emulator: Any, access_token: str, tmp_path: Path
) -> None:
    """getBatchStatus in a message flow (the server runs Bulk operations): each batch counted once."""
    import requests
    from lxml import etree

    base = f"{emulator.base_url}/services/async/34.0"
    session = {"X-SFDC-Session": access_token}
    job = requests.post(
        f"{base}/job",
        data=b'<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>insert</operation>'
        b"<object>Contact</object><contentType>CSV</contentType></jobInfo>",
        headers={**session, "Content-Type": "application/xml"},
        timeout=10,
    )
    job_id = etree.fromstring(job.content).findtext(f"{JOB}id")
    rows = b"FirstName,LastName\n" + b"".join(b"a%d,b%d\n" % (i, i) for i in range(7)) + b"x,\n"
    batch = requests.post(
        f"{base}/job/{job_id}/batch", data=rows, headers={**session, "Content-Type": "text/csv"}, timeout=10
    )
    batch_id = etree.fromstring(batch.content).findtext(f"{JOB}id")
    flow = tmp_path / "status.yaml"
    flow.write_text(STATUS_FLOW)
    server = sfbulk_server(flow)
    body = (
        f"<q><apiUrl>{emulator.base_url}</apiUrl><accessToken>{access_token}</accessToken>"
        f"<jobId>{job_id}</jobId><batchId>{batch_id}</batchId></q>"
    )
    before = counters()
    states = []
    for _ in range(50):
        answer = requests.post(
            server.service_url("batchStatus"), data=body, headers={"Content-Type": "text/xml"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        states.append(etree.fromstring(answer.content).findtext(f"{JOB}state"))
        if states[-1] == "Completed" and len(states) >= 2 and states[-2] == "Completed":
            break  # seen final twice: counted once
        time.sleep(0.05)
    assert states[-2:] == ["Completed", "Completed"]
    after = counters()
    flow_labels = {"pipeline": "flow"}
    assert delta(before, after, "sfbulk_bulk_batches_total", outcome="processed", **flow_labels) == 1
    assert delta(before, after, "sfbulk_bulk_rows_total", outcome="processed", **flow_labels) == 8
    assert delta(before, after, "sfbulk_bulk_rows_total", outcome="failed", **flow_labels) == 1


def test_a_bulk2_job_a_flow_sees_finished_is_counted_once(emulator: Any, tmp_path: Path) -> None:
    """getJobInfo through the examples/bulk2 dispatcher: the counts come from the job's JSON answer."""
    from lxml import etree

    from sfbulk.engine.engine import Engine

    creds = emulator.credentials
    settings = {
        "apiUrl": emulator.base_url,
        "tokenEndpointHostname": emulator.base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
    }

    def send(engine: Engine, action: str, **fields: str) -> Any:
        root = etree.Element("request")
        for name, text in {**settings, **fields}.items():
            etree.SubElement(root, name).text = text
        result = engine.handle(
            "salesforcebulkv2_dispatcher",
            method="POST",
            uri="/services/salesforcebulkv2_dispatcher",
            headers=[("Content-Type", "application/xml"), ("Action", f"urn:{action}")],
            body=etree.tostring(root),
        )
        assert result.status in (200, 201), result.body
        return json.loads(result.body) if result.body else None

    with Engine(registry=tmp_path / "registry") as engine:
        engine.load(Path(__file__).resolve().parents[2] / "examples" / "bulk2")
        job = send(engine, "createJob", operation="insert", object="Contact")
        send(engine, "uploadJobData", jobId=job["id"], inputData="FirstName,LastName\nA,B\nC,\nE,F\n")
        send(engine, "closeJob", jobId=job["id"])
        before = counters()
        seen_final = 0
        for _ in range(200):
            info = send(engine, "getJobInfo", jobId=job["id"])
            seen_final += info["state"] == "JobComplete"
            if seen_final == 2:
                break
            time.sleep(0.05)
        assert seen_final == 2
        after = counters()
    flow_labels = {"pipeline": "flow"}
    assert delta(before, after, "sfbulk_bulk_batches_total", outcome="processed", **flow_labels) == 1
    assert delta(before, after, "sfbulk_bulk_rows_total", outcome="processed", **flow_labels) == 3
    assert delta(before, after, "sfbulk_bulk_rows_total", outcome="failed", **flow_labels) == 1
