"""The batch operations called from message flows: examples/bulk in YAML and Synapse XML, through Engine.handle."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sfbulk.engine.engine import Engine

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = Engine(registry=str(tmp_path / "registry"))
    eng.load(
        EXAMPLES / "bulk" / "batches.yaml",
        EXAMPLES / "bulk" / "attachments.yaml",
        EXAMPLES / "bulk" / "salesforcebulk_batches.xml",
        EXAMPLES / "synapse" / "faultHandlerSeq.xml",
    )
    return eng


def settings(emu: Any, **params: str) -> str:
    c = emu.credentials
    xml = (
        f"<apiUrl>{emu.base_url}</apiUrl><apiVersion>62.0</apiVersion><accessToken>seed</accessToken>"
        f"<refreshToken>{c['refresh_token']}</refreshToken><clientId>{c['client_id']}</clientId>"
        f"<clientSecret>{c['client_secret']}</clientSecret><tokenEndpointHostname>{emu.base_url}"
        "</tokenEndpointHostname>"
    )
    return xml + "".join(f"<{k}>{v}</{k}>" for k, v in params.items())


def call(engine: Engine, proxy: str, body: str, action: str | None = None) -> Any:
    headers = [("Content-Type", "application/xml")] + ([("Action", action)] if action else [])
    return engine.handle(
        proxy,
        method="POST",
        uri=f"/services/{proxy}",
        headers=headers,
        body=f"<request>{body}</request>".encode(),
    )


def tag(body: bytes, name: str) -> str:
    match = re.search(rf"<{name}>(.*?)</{name}>".encode(), body)
    assert match, body[:300]
    return match.group(1).decode()


def wait_done(engine: Engine, emu: Any, job: str, batch: str) -> bytes:
    for _ in range(200):
        r = call(engine, "getBatchStatus", settings(emu, jobId=job, batchId=batch))
        assert r.status == 200
        if tag(r.body, "state") in ("Completed", "Failed"):
            return r.body
        time.sleep(0.05)
    raise AssertionError("batch did not finish")


def create_job(engine: Engine, emu: Any, operation: str, content_type: str, obj: str) -> str:
    from sfbulk.connector.connection import Connector

    c = emu.credentials
    conn = engine.connection(
        "salesforcebulk",
        {
            "apiUrl": emu.base_url,
            "accessToken": "seed",
            "refreshToken": c["refresh_token"],
            "clientId": c["client_id"],
            "clientSecret": c["client_secret"],
            "tokenEndpointHostname": emu.base_url,
        },
    )
    assert isinstance(engine.connector("salesforcebulk"), Connector)
    resp = conn.invoke("createJob", operation=operation, object=obj, contentType=content_type)
    assert resp.status == 201
    return str(resp.properties["jobId"])


def test_yaml_flows_csv_batch_and_query_results(engine: Engine, emulator: Any) -> None:
    job = create_job(engine, emulator, "insert", "CSV", "Account")
    csv_rows = "Name\n" + "".join(f"FlowAcct{i}\n" for i in range(5))
    r = call(
        engine,
        "addBatch",
        settings(emulator, jobId=job, contentType="text/csv", isQuery="false")
        + f"<objects><values>{csv_rows}</values></objects>",
    )
    assert r.status == 201, r.body
    batch = tag(r.body, "id")
    assert tag(wait_done(engine, emulator, job, batch), "numberRecordsProcessed") == "5"
    r = call(engine, "listBatches", settings(emulator, jobId=job))
    assert r.status == 200 and batch.encode() in r.body
    r = call(engine, "getBatchResults", settings(emulator, jobId=job, batchId=batch))
    assert r.status == 200 and r.body.count(b'"true","true"') == 5

    qjob = create_job(engine, emulator, "query", "CSV", "Account")
    r = call(
        engine,
        "addBatch",
        settings(emulator, jobId=qjob, contentType="text/csv", isQuery="true")
        + "<objects>SELECT Name FROM Account WHERE Name LIKE 'FlowAcct%'</objects>",
    )
    assert r.status == 201, r.body
    qbatch = tag(r.body, "id")
    wait_done(engine, emulator, qjob, qbatch)
    r = call(engine, "getBatchResults", settings(emulator, jobId=qjob, batchId=qbatch))
    result_id = tag(r.body, "result")
    r = call(
        engine, "getBulkQueryResults", settings(emulator, jobId=qjob, batchId=qbatch, resultId=result_id)
    )
    assert r.status == 200 and r.body.count(b"FlowAcct") == 5


def test_xml_proxy_xml_batch_and_errors(engine: Engine, emulator: Any) -> None:
    job = create_job(engine, emulator, "insert", "XML", "Contact")
    r = call(
        engine,
        "salesforcebulk_batches",
        settings(emulator, jobId=job, contentType="application/xml", isQuery="false")
        + "<objects><values><sObject><LastName>A &amp; B</LastName></sObject>"
        "<sObject><LastName>C</LastName></sObject></values></objects>",
        "urn:addBatch",
    )
    assert r.status == 201, r.body
    batch = tag(r.body, "id")
    r = call(
        engine, "salesforcebulk_batches", settings(emulator, jobId=job, batchId=batch), "urn:getBatchRequest"
    )
    assert r.status == 200 and b"<LastName>A &amp; B</LastName>" in r.body and b"<sObjects" in r.body
    # Salesforce's 400 comes back unchanged, as WSO2 users expect
    r = call(
        engine,
        "salesforcebulk_batches",
        settings(emulator, jobId=job, batchId="INVALID"),
        "urn:getBatchStatus",
    )
    assert r.status == 400 and b"<exceptionCode>InvalidBatch</exceptionCode>" in r.body


def test_zip_attachments_through_flows(engine: Engine, emulator: Any) -> None:
    eng = engine
    c = emulator.credentials
    headers = [
        ("X-Sf-Api-Url", emulator.base_url),
        ("X-Sf-Refresh-Token", c["refresh_token"]),
        ("X-Sf-Client-Id", c["client_id"]),
        ("X-Sf-Client-Secret", c["client_secret"]),
        ("X-Sf-Token-Endpoint", emulator.base_url),
    ]
    job_info = (
        b'<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>insert</operation>'
        b"<object>Contact</object><contentType>ZIP_CSV</contentType></jobInfo>"
    )
    r = eng.handle(
        "createJobToUploadBatchFile",
        method="POST",
        uri="/services/createJobToUploadBatchFile",
        headers=[("Content-Type", "application/xml"), *headers],
        body=job_info,
    )
    assert r.status == 201, r.body
    job = tag(r.body, "id")
    assert tag(r.body, "contentType") == "ZIP_CSV"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("request.txt", "LastName,Description\nZipFlow,from a flow\n")
        zf.writestr("photo.bin", bytes(range(256)))
    r = eng.handle(
        "uploadBatchFile",
        method="POST",
        uri=f"/services/uploadBatchFile?jobId={job}",
        headers=[("Content-Type", "zip/csv"), *headers],
        body=buf.getvalue(),
        rest_url_postfix=f"?jobId={job}",
    )
    assert r.status == 201, r.body
    body = wait_done(eng, emulator, job, tag(r.body, "id"))
    assert tag(body, "state") == "Completed" and tag(body, "numberRecordsProcessed") == "1"
