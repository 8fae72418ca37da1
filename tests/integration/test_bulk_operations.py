"""The batch, query-result and attachment operations through the Python API, against the emulator."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sfbulk.bulk.client import parse_batch_list, parse_result_list
from sfbulk.connector.connection import Connector
from sfbulk.errors import ParameterError
from sfbulk.registry import FileRegistry

NS = "http://www.force.com/2009/06/asyncapi/dataload"


@pytest.fixture
def conn(emulator: Any, tmp_path: Path) -> Any:
    creds = emulator.credentials
    connection = Connector.load().connection(
        registry=FileRegistry(str(tmp_path / "registry")),
        apiUrl=emulator.base_url,
        accessToken="-",
        refreshToken=creds["refresh_token"],
        clientId=creds["client_id"],
        clientSecret=creds["client_secret"],
        tokenEndpointHostname=emulator.base_url,
    )
    yield connection
    connection.close()


def job(conn: Any, operation: str, content_type: str, obj: str = "Contact") -> str:
    resp = conn.invoke("createJob", operation=operation, object=obj, contentType=content_type)
    assert resp.status == 201, resp.text
    return str(resp.properties["jobId"])


def wait(conn: Any, job_id: str, batch_id: str) -> Any:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        resp = conn.invoke("getBatchStatus", jobId=job_id, batchId=batch_id)
        assert resp.status == 200
        if resp.properties["state"] in ("Completed", "Failed", "NotProcessed"):
            return resp
        time.sleep(0.05)
    raise AssertionError("batch did not finish")


def test_add_batch_csv_xml_json_and_the_wso2_objects_form(conn: Any) -> None:
    csv_job = job(conn, "insert", "CSV")
    # the WSO2 serialised form: <objects><values>CSV</values></objects>, entities decoded
    resp = conn.invoke(
        "addBatch",
        jobId=csv_job,
        contentType="text/csv",
        objects="<objects><values>LastName,Description\nO&apos;Brien,a &amp; b</values></objects>",
    )
    assert resp.status == 201 and resp.properties["batchId"].startswith("751")
    batch = resp.properties["batchId"]
    assert wait(conn, csv_job, batch).properties["numberRecordsProcessed"] == "1"
    request = conn.invoke("getBatchRequest", jobId=csv_job, batchId=batch)
    assert request.status == 200 and request.content == b"LastName,Description\nO'Brien,a & b"
    results = conn.invoke("getBatchResults", jobId=csv_job, batchId=batch)
    assert results.status == 200 and b'"true","true",""' in results.content

    xml_job = job(conn, "insert", "XML")
    resp = conn.invoke(
        "addBatch",
        jobId=xml_job,
        contentType="application/xml",
        objects="<values><sObject><LastName>X &amp; Y</LastName></sObject>"
        "<sObject><LastName>Z</LastName></sObject></values>",
    )
    assert resp.status == 201
    assert wait(conn, xml_job, resp.properties["batchId"]).properties["numberRecordsProcessed"] == "2"
    request = conn.invoke("getBatchRequest", jobId=xml_job, batchId=resp.properties["batchId"])
    assert b"<sObjects" in request.content and b"X &amp; Y" in request.content

    json_job = job(conn, "insert", "JSON")
    resp = conn.invoke(
        "addBatch",
        jobId=json_job,
        contentType="application/json",
        objects='[{"LastName": "J1"}, {"LastName": "J2"}, {"FirstName": "no last name"}]',
    )
    assert resp.status == 201
    info = wait(conn, json_job, resp.properties["batchId"])
    assert info.properties["numberRecordsFailed"] == "1"

    listed = conn.invoke("listBatches", jobId=csv_job)
    assert [b.id for b in parse_batch_list(listed.content)] == [batch]
    for j in (csv_job, xml_job, json_job):
        assert conn.invoke("updateJob", jobId=j, state="Closed").status == 200


def test_query_batch_and_result_files(conn: Any) -> None:
    loader = job(conn, "insert", "CSV", "Account")
    rows = "Name\n" + "".join(f"QAcct{i}\n" for i in range(30))
    resp = conn.invoke(
        "uploadBatchFile", jobId=loader, contentType="text/csv", body=io.BytesIO(rows.encode())
    )
    assert resp.status == 201
    wait(conn, loader, resp.properties["batchId"])

    qjob = job(conn, "query", "XML", "Account")
    resp = conn.invoke(
        "addBatch",
        jobId=qjob,
        contentType="application/xml",
        isQuery="true",
        objects="<values>SELECT Id, Name FROM Account WHERE Name LIKE 'QAcct%'</values>",
    )
    assert resp.status == 201
    qbatch = resp.properties["batchId"]
    wait(conn, qjob, qbatch)
    ids = parse_result_list(conn.invoke("getBatchResults", jobId=qjob, batchId=qbatch).content)
    assert len(ids) >= 1 and all(re.fullmatch(r"752\w{12}", i) for i in ids)
    with conn.invoke(
        "getBulkQueryResults", jobId=qjob, batchId=qbatch, resultId=ids[0], stream=True
    ) as result:
        body = b"".join(result.iter_content(1024))
    assert body.count(b"<records") == 30 and b"QAcct29" in body


def test_zip_attachments(conn: Any) -> None:
    created = conn.invoke(
        "createJobToUploadBatchFile",
        body=(
            f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{NS}"><operation>insert</operation>'
            "<object>Contact</object><contentType>ZIP_CSV</contentType></jobInfo>"
        ),
    )
    assert created.status == 201, created.text
    job_id = created.properties["jobId"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("request.txt", "LastName,Description\nZipped,from a zip batch\n")
        zf.writestr("notes/readme.txt", b"binary attachment")
    resp = conn.invoke("uploadBatchFile", jobId=job_id, contentType="zip/csv", body=buf.getvalue())
    assert resp.status == 201, resp.text
    assert wait(conn, job_id, resp.properties["batchId"]).properties["state"] == "Completed"


def test_errors_come_back_as_salesforce_answers(conn: Any) -> None:
    resp = conn.invoke("getBatchStatus", jobId="750000000000000AAA", batchId="INVALID")
    assert resp.status == 400 and b"<exceptionCode>" in resp.content
    with pytest.raises(ParameterError, match=r"uploadBatchFile: a request body is required \(body=\.\.\.\)"):
        conn.invoke("uploadBatchFile", jobId="750000000000000AAA")
