"""The examples/bulk samples run end to end with no hand edits: addBatch without a jobId creates the
job it uses (YAML and Synapse XML), the other proxies fall back to the last job and batch, and
getBulkQueryResults finds its result id. The samples are used as shipped, pointed at the test emulator."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from sfbulk.engine.engine import Engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BULK = EXAMPLES / "bulk"


def sample(name: str, emulator: Any) -> bytes:
    text = (BULK / name).read_text(encoding="utf-8")
    root = etree.fromstring(text.encode())
    assert root.find("jobId") is None and root.find("batchId") is None  # nothing to edit by hand
    return text.replace("http://127.0.0.1:8281", emulator.base_url).encode()


def tag(body: bytes, name: str) -> str:
    match = re.search(rf"<{name}>(.*?)</{name}>".encode(), body)
    assert match, body[:400]
    return match.group(1).decode()


@pytest.fixture
def engine(tmp_path: Path):
    with Engine(registry=tmp_path / "registry") as eng:
        eng.load(BULK, EXAMPLES / "synapse" / "faultHandlerSeq.xml")
        yield eng


def call(engine: Engine, proxy: str, body: bytes, action: str | None = None):
    headers = [("Content-Type", "application/xml")] + ([("Action", action)] if action else [])
    return engine.handle(proxy, method="POST", uri=f"/services/{proxy}", headers=headers, body=body)


def wait_completed(engine: Engine, emulator: Any) -> bytes:
    for _ in range(200):
        status = call(engine, "getBatchStatus", sample("batch.xml", emulator))
        assert status.status == 200, status.body
        if tag(status.body, "state") in ("Completed", "Failed"):
            return status.body
        time.sleep(0.05)
    raise AssertionError("the batch did not finish")


def test_yaml_samples_create_the_job_then_follow_the_last_batch(engine, emulator):
    added = call(engine, "addBatch", sample("addBatch-csv.xml", emulator))
    assert added.status == 201, added.body
    job, batch = tag(added.body, "jobId"), tag(added.body, "id")
    assert job.startswith("750") and batch.startswith("751")
    assert tag(wait_completed(engine, emulator), "id") == batch  # getBatchStatus on the remembered batch
    results = call(engine, "getBatchResults", sample("batch.xml", emulator))
    assert results.status == 200 and results.body.count(b'"true","true"') == 1
    listed = call(engine, "listBatches", sample("batch.xml", emulator))
    assert listed.status == 200 and batch.encode() in listed.body
    request = call(engine, "getBatchRequest", sample("batch.xml", emulator))
    assert request.status == 200 and b"Dameon" in request.body

    query = call(engine, "addBatch", sample("addBatch-query.xml", emulator))
    assert query.status == 201, query.body
    assert tag(query.body, "jobId") != job  # a new (query) job
    wait_completed(engine, emulator)
    rows = call(engine, "getBulkQueryResults", sample("batch.xml", emulator))
    assert rows.status == 200, rows.body
    assert b'"Id","LastName"' in rows.body and b"Dameon" in rows.body


def test_a_refused_job_is_relayed_and_nothing_is_remembered(engine, emulator):
    body = sample("addBatch-csv.xml", emulator).replace(
        b"<object>Contact</object>", b"<object>NoSuchThing</object>"
    )
    refused = call(engine, "addBatch", body)
    assert refused.status == 400 and b"<exceptionCode>InvalidEntity</exceptionCode>" in refused.body
    assert engine.registry.get("conf:/sfbulk-examples/lastJobId") is None


def test_synapse_proxy_creates_the_job_for_the_sample(engine, emulator):
    added = call(engine, "salesforcebulk_batches", sample("addBatch-csv.xml", emulator), "urn:addBatch")
    assert added.status == 201, added.body
    job = tag(added.body, "jobId")
    info = engine.connection(
        "salesforcebulk",
        {
            "apiUrl": emulator.base_url,
            "apiVersion": "34.0",
            "accessToken": "seed",
            "refreshToken": emulator.credentials["refresh_token"],
            "clientId": emulator.credentials["client_id"],
            "clientSecret": emulator.credentials["client_secret"],
            "tokenEndpointHostname": emulator.base_url,
        },
    ).invoke("getJob", jobId=job)
    assert info.status == 200
    assert [tag(info.content, f) for f in ("operation", "object", "contentType", "apiVersion")] == [
        "insert",
        "Contact",
        "CSV",
        "34.0",
    ]


def test_zip_samples_chain_create_and_upload_without_a_job_id(engine, emulator):
    c = emulator.credentials
    headers = [
        ("X-Sf-Api-Url", emulator.base_url),
        ("X-Sf-Refresh-Token", c["refresh_token"]),
        ("X-Sf-Client-Id", c["client_id"]),
        ("X-Sf-Client-Secret", c["client_secret"]),
        ("X-Sf-Token-Endpoint", emulator.base_url),
    ]
    created = engine.handle(
        "createJobToUploadBatchFile",
        method="POST",
        uri="/services/createJobToUploadBatchFile",
        headers=[("Content-Type", "application/xml"), *headers],
        body=(BULK / "zipJob.xml").read_bytes(),
    )
    assert created.status == 201, created.body
    job = tag(created.body, "id")
    uploaded = engine.handle(
        "uploadBatchFile",
        method="POST",
        uri="/services/uploadBatchFile",  # no ?jobId=: the job just created
        headers=[("Content-Type", "zip/csv"), *headers],
        body=(BULK / "attachments.zip").read_bytes(),
    )
    assert uploaded.status == 201, uploaded.body
    assert tag(uploaded.body, "jobId") == job
    done = wait_completed(engine, emulator)  # batches.yaml's getBatchStatus follows the zip batch too
    assert tag(done, "state") == "Completed" and tag(done, "numberRecordsProcessed") == "1"
