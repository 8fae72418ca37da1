"""WSO2 parity of parameter semantics (issue 12 point 2): the proxy's answer equals a direct call's.

As WSO2's own integration tests do, every case sends the same inputs twice: once straight to the
Bulk API (the emulator) with ``requests``, once through ``sfbulk serve`` and the shipped WSO2-style
proxies (examples/synapse, examples/bulk). Status, exceptionCode and exceptionMessage must be
identical: a missing or empty body value is Salesforce's to judge, never a local fault. Only the
values the URL needs (jobId, batchId, resultId) fault locally, with MI's code 500101.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests
from lxml import etree

from sfbulk.connector.connection import Connector
from sfbulk.engine.engine import Engine
from sfbulk.registry import MemoryRegistry
from sfbulk.server.app import start_server

ROOT = Path(__file__).resolve().parents[2]
VERSION = "34.0"
DATALOAD = "http://www.force.com/2009/06/asyncapi/dataload"

#: uploadBatchFile exactly as WSO2's docs write it: only the job id, the zip is relayed as posted.
WSO2_UPLOAD = """<?xml version="1.0" encoding="UTF-8"?>
<proxy xmlns="http://ws.apache.org/ns/synapse" name="wso2_uploadBatchFile" transports="http" startOnLoad="true">
  <target>
    <inSequence>
      <salesforcebulk.init>
        <apiUrl>{$trp:X-Api-Url}</apiUrl>
        <apiVersion>{$url:apiVersion}</apiVersion>
        <accessToken>{$trp:X-Access-Token}</accessToken>
      </salesforcebulk.init>
      <salesforcebulk.uploadBatchFile>
        <jobId>{$url:jobId}</jobId>
      </salesforcebulk.uploadBatchFile>
      <respond/>
    </inSequence>
  </target>
</proxy>
"""


@pytest.fixture(scope="module")
def server(emulator, tmp_path_factory):
    folder = tmp_path_factory.mktemp("parity")
    (folder / "wso2_upload.xml").write_text(WSO2_UPLOAD)
    engine = Engine(registry=str(folder / "registry"))
    engine.load(
        ROOT / "examples" / "synapse",
        ROOT / "examples" / "bulk" / "salesforcebulk_batches.xml",
        ROOT / "examples" / "bulk" / "attachments.yaml",
        folder / "wso2_upload.xml",
    )
    running = start_server(engine, host="127.0.0.1", port=0, threads=4)
    try:
        yield running
    finally:
        running.stop()
        engine.close()


@pytest.fixture(scope="module")
def token(emulator) -> str:
    creds = emulator.credentials
    resp = requests.post(
        f"{emulator.base_url}/services/oauth2/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "client_id": creds["client_id"],
            "client_secret": creds["client_secret"],
            "refresh_token": creds["refresh_token"],
        },
    )
    resp.raise_for_status()
    return str(resp.json()["access_token"])


# --- the two ways of calling -------------------------------------------------------------------


def direct(
    emulator,
    token: str,
    method: str,
    path: str,
    body: bytes | str | None = None,
    content_type: str | None = None,
) -> requests.Response:
    """The Bulk API called straight, as WSO2's tests call it for the expected answer."""
    headers = {"X-SFDC-Session": token}
    if content_type:
        headers["Content-Type"] = content_type
    return requests.request(
        method, f"{emulator.base_url}/services/async/{VERSION}{path}", data=body, headers=headers, timeout=10
    )


def proxied(server, emulator, token: str, proxy: str, action: str, **fields: str | None) -> requests.Response:
    """The same inputs through a shipped WSO2-style proxy; a None field is left out of the request."""
    values: dict[str, str | None] = {
        "apiVersion": VERSION,
        "apiUrl": emulator.base_url,
        "accessToken": token,
        **fields,
    }
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in values.items() if v is not None)
    return requests.post(
        server.service_url(proxy),
        data=f"<request>{inner}</request>".encode(),
        timeout=10,
        headers={"Content-Type": "application/xml", "Action": action},
    )


def fields(resp: requests.Response) -> dict[str, str]:
    """The answer's top-level fields (XML children or JSON keys) as text."""
    if resp.content.lstrip().startswith(b"{"):
        return {k: str(v) for k, v in resp.json().items()}
    root = etree.fromstring(resp.content)
    return {etree.QName(child).localname: child.text or "" for child in root if isinstance(child.tag, str)}


def error_of(resp: requests.Response) -> tuple[int, str, str]:
    found = fields(resp)
    return resp.status_code, found.get("exceptionCode", ""), found.get("exceptionMessage", "")


def job_info(**values: str) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    return f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{DATALOAD}">{inner}</jobInfo>'


def new_job(emulator, token: str, **values: str) -> str:
    resp = direct(emulator, token, "POST", "/job", job_info(**values), "application/xml; charset=UTF-8")
    assert resp.status_code == 201, resp.text
    return fields(resp)["id"]


# --- jobs: missing, empty and wrong body values are relayed ------------------------------------


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (
            {"object": "Contact", "contentType": "CSV"},
            ("InvalidJob", "Unable to parse Job: operation is required"),
        ),
        (
            {"operation": "", "object": "Contact"},
            ("InvalidJob", "Unable to parse Job: operation is required"),
        ),
        ({"operation": "insert"}, ("InvalidJob", "Unable to parse Job: object is required")),
        ({"operation": "insert", "object": ""}, ("InvalidJob", "Unable to parse Job: object is required")),
        ({"operation": "INSERT", "object": "Contact"}, ("InvalidJob", "Unable to parse Job")),
        (
            {"operation": "insert", "object": "Contact", "contentType": "csv"},
            ("InvalidJob", "Unable to parse Job"),
        ),
        (
            {"operation": "upsert", "object": "Contact"},
            ("InvalidJob", "External ID was blank for Contact. An External ID must be specified for upsert."),
        ),
        (
            {"operation": "insert", "object": "NoSuchThing__c"},
            ("InvalidEntity", "Entity 'NoSuchThing__c' is not supported by the Bulk API."),
        ),
        ({}, ("InvalidJob", "Unable to parse Job: operation is required")),
    ],
)
def test_create_job_answers_as_a_direct_call(server, emulator, token, sent, expected):
    through = proxied(server, emulator, token, "salesforcebulk_dispatcher", "urn:createJob", **sent)
    straight = direct(
        emulator,
        token,
        "POST",
        "/job",
        job_info(**{k: v for k, v in sent.items() if v}),
        "application/xml; charset=UTF-8",
    )
    assert error_of(through) == error_of(straight) == (400, *expected)


def test_a_complete_create_job_answers_as_a_direct_call(server, emulator, token):
    sent = {"operation": "insert", "object": "Contact", "contentType": "CSV"}
    through = fields(proxied(server, emulator, token, "salesforcebulk_dispatcher", "urn:createJob", **sent))
    straight = fields(direct(emulator, token, "POST", "/job", job_info(**sent), "application/xml"))
    volatile = {"id", "createdDate", "systemModstamp"}
    assert {k: v for k, v in through.items() if k not in volatile} == {
        k: v for k, v in straight.items() if k not in volatile
    }


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            None,
            ("InvalidJobState", "Invalid job state: (none). A job can only be updated to Closed or Aborted"),
        ),
        (
            "",
            ("InvalidJobState", "Invalid job state: (none). A job can only be updated to Closed or Aborted"),
        ),
        (
            "Open",
            ("InvalidJobState", "Invalid job state: Open. A job can only be updated to Closed or Aborted"),
        ),
    ],
)
def test_update_job_without_a_valid_state_answers_as_a_direct_call(server, emulator, token, state, expected):
    job_id = new_job(emulator, token, operation="insert", object="Contact", contentType="CSV")
    through = proxied(
        server, emulator, token, "salesforcebulk_dispatcher", "urn:updateJob", jobId=job_id, state=state
    )
    straight = direct(
        emulator,
        token,
        "POST",
        f"/job/{job_id}",
        job_info(**({"state": state} if state else {})),
        "application/xml; charset=UTF-8",
    )
    assert error_of(through) == error_of(straight) == (400, *expected)


@pytest.mark.parametrize(
    ("proxy", "action", "extra", "path"),
    [
        ("salesforcebulk_dispatcher", "urn:getJob", {"jobId": "INVALID"}, "/job/INVALID"),
        ("salesforcebulk_batches", "urn:listBatches", {"jobId": "INVALID"}, "/job/INVALID/batch"),
        (
            "salesforcebulk_batches",
            "urn:getBatchStatus",
            {"jobId": "INVALID", "batchId": "INVALID"},
            "/job/INVALID/batch/INVALID",
        ),
    ],
)
def test_unknown_ids_answer_as_a_direct_call(server, emulator, token, proxy, action, extra, path):
    through = proxied(server, emulator, token, proxy, action, **extra)
    straight = direct(emulator, token, "GET", path)
    assert error_of(through) == error_of(straight)
    assert through.status_code == 400 and error_of(through)[1] == "InvalidJob"


def test_unknown_batch_of_a_real_job_answers_as_a_direct_call(server, emulator, token):
    job_id = new_job(emulator, token, operation="insert", object="Contact", contentType="CSV")
    for action, suffix in (
        ("urn:getBatchStatus", ""),
        ("urn:getBatchResults", "/result"),
        ("urn:getBatchRequest", "/request"),
    ):
        through = proxied(
            server, emulator, token, "salesforcebulk_batches", action, jobId=job_id, batchId="INVALID"
        )
        straight = direct(emulator, token, "GET", f"/job/{job_id}/batch/INVALID{suffix}")
        assert error_of(through) == error_of(straight) == (400, "InvalidBatch", "Invalid batch id: INVALID")


# --- addBatch ------------------------------------------------------------------------------------


def wait_done(emulator, token: str, job_id: str, batch_id: str) -> dict[str, str]:
    deadline = time.monotonic() + 20
    while True:
        info = fields(direct(emulator, token, "GET", f"/job/{job_id}/batch/{batch_id}"))
        if info["state"] not in ("Queued", "InProgress") or time.monotonic() > deadline:
            return info
        time.sleep(0.05)


def test_add_batch_without_content_type_sends_xml_as_wso2(server, emulator, token):
    records = "<sObject><LastName>Parity</LastName><FirstName>Xml</FirstName></sObject>"
    job_id = new_job(emulator, token, operation="insert", object="Contact")  # Salesforce's default: XML
    through = proxied(
        server,
        emulator,
        token,
        "salesforcebulk_batches",
        "urn:addBatch",
        jobId=job_id,
        objects=f"<values>{records}</values>",
    )
    straight = direct(
        emulator,
        token,
        "POST",
        f"/job/{job_id}/batch",
        f'<?xml version="1.0" encoding="UTF-8"?><sObjects xmlns="{DATALOAD}">{records}</sObjects>',
        "application/xml; charset=UTF-8",
    )
    assert through.status_code == straight.status_code == 201, through.text
    done = [wait_done(emulator, token, job_id, fields(r)["id"]) for r in (through, straight)]
    assert [(d["state"], d["numberRecordsProcessed"], d["numberRecordsFailed"]) for d in done] == [
        ("Completed", "1", "0")
    ] * 2
    sent = [
        direct(emulator, token, "GET", f"/job/{job_id}/batch/{fields(r)['id']}/request").content
        for r in (through, straight)
    ]
    assert sent[0] == sent[1]


def test_add_batch_without_content_type_to_a_csv_job_is_salesforces_to_refuse(server, emulator, token):
    job_id = new_job(emulator, token, operation="insert", object="Contact", contentType="CSV")
    through = proxied(
        server,
        emulator,
        token,
        "salesforcebulk_batches",
        "urn:addBatch",
        jobId=job_id,
        objects="<values><sObject><LastName>X</LastName></sObject></values>",
    )
    straight = direct(
        emulator,
        token,
        "POST",
        f"/job/{job_id}/batch",
        f'<sObjects xmlns="{DATALOAD}"><sObject><LastName>X</LastName></sObject></sObjects>',
        "application/xml; charset=UTF-8",
    )
    assert error_of(through) == error_of(straight)
    assert error_of(through)[:2] == (400, "InvalidBatch")


@pytest.mark.parametrize("objects", [None, ""])
def test_add_batch_without_records_answers_as_a_direct_call(server, emulator, token, objects):
    job_id = new_job(emulator, token, operation="insert", object="Contact", contentType="CSV")
    through = proxied(
        server,
        emulator,
        token,
        "salesforcebulk_batches",
        "urn:addBatch",
        jobId=job_id,
        contentType="text/csv",
        objects=objects,
    )
    straight = direct(emulator, token, "POST", f"/job/{job_id}/batch", b"", "text/csv")
    assert (
        error_of(through)
        == error_of(straight)
        == (400, "InvalidBatch", "Records not found: the batch is empty")
    )


# --- local faults: only what the URL needs ---------------------------------------------------------


@pytest.mark.parametrize(
    ("proxy", "action", "sent", "missing"),
    [
        ("salesforcebulk_dispatcher", "urn:getJob", {}, "jobId"),
        ("salesforcebulk_dispatcher", "urn:updateJob", {"state": "Closed"}, "jobId"),
        # an empty <jobId/> (without one, this example proxy creates the job first)
        (
            "salesforcebulk_batches",
            "urn:addBatch",
            {"jobId": "", "objects": "LastName\nX", "contentType": "text/csv"},
            "jobId",
        ),
        ("salesforcebulk_batches", "urn:getBatchStatus", {"jobId": "750000000000001AAA"}, "batchId"),
        (
            "salesforcebulk_batches",
            "urn:getBulkQueryResults",
            {"jobId": "750000000000001AAA", "batchId": "751"},
            "resultId",
        ),
    ],
)
def test_a_missing_url_value_is_a_local_500101_fault(server, emulator, token, proxy, action, sent, missing):
    resp = proxied(server, emulator, token, proxy, action, **sent)
    assert resp.status_code == 500  # faultHandlerSeq's answer
    found = fields(resp)
    assert found["code"] == "500101"
    assert f"missing required parameter(s) {missing}" in found["message"]


# --- the caller's Content-Type is relayed ----------------------------------------------------------


def a_zip(request_txt: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("request.txt", request_txt)
    return buf.getvalue()


def upload(server, emulator, token: str, job_id: str, body: bytes, content_type: str) -> requests.Response:
    return requests.post(
        server.service_url("wso2_uploadBatchFile"),
        params={"jobId": job_id, "apiVersion": VERSION},
        data=body,
        timeout=10,
        headers={"Content-Type": content_type, "X-Api-Url": emulator.base_url, "X-Access-Token": token},
    )


def test_upload_batch_file_relays_the_callers_content_type(server, emulator, token):
    job_id = new_job(emulator, token, operation="insert", object="Contact", contentType="ZIP_XML")
    body = a_zip(
        f'<sObjects xmlns="{DATALOAD}"><sObject><LastName>Zip</LastName></sObject></sObjects>'.encode()
    )
    through = upload(server, emulator, token, job_id, body, "zip/xml")
    straight = direct(emulator, token, "POST", f"/job/{job_id}/batch", body, "zip/xml")
    assert through.status_code == straight.status_code == 201, through.text
    # a type that does not match the job is relayed too, and refused by Salesforce, not by us
    through = upload(server, emulator, token, job_id, body, "zip/csv")
    straight = direct(emulator, token, "POST", f"/job/{job_id}/batch", body, "zip/csv")
    assert error_of(through) == error_of(straight)
    assert error_of(through)[:2] == (400, "InvalidBatch")


def test_upload_batch_file_relays_a_plain_csv_batch(server, emulator, token):
    job_id = new_job(emulator, token, operation="insert", object="Contact", contentType="CSV")
    body = b"LastName,FirstName\nRelay,Csv\n"
    through = upload(server, emulator, token, job_id, body, "text/csv; charset=UTF-8")
    assert through.status_code == 201, through.text
    assert wait_done(emulator, token, job_id, fields(through)["id"])["numberRecordsProcessed"] == "1"


def test_create_job_to_upload_batch_file_relays_a_json_job_info(server, emulator, token):
    creds = emulator.credentials
    headers = {
        "X-Sf-Api-Url": emulator.base_url,
        "X-Sf-Refresh-Token": creds["refresh_token"],
        "X-Sf-Client-Id": creds["client_id"],
        "X-Sf-Client-Secret": creds["client_secret"],
        "X-Sf-Token-Endpoint": emulator.base_url,
        "Content-Type": "application/json",
    }
    body = json.dumps({"operation": "insert", "object": "Contact", "contentType": "ZIP_JSON"})
    through = requests.post(
        server.service_url("createJobToUploadBatchFile"), data=body, headers=headers, timeout=10
    )
    straight = requests.post(
        f"{emulator.base_url}/services/async/62.0/job",
        data=body,
        timeout=10,
        headers={"X-SFDC-Session": token, "Content-Type": "application/json"},
    )
    assert through.status_code == straight.status_code == 201, through.text
    assert through.headers["Content-Type"].startswith("application/json")
    assert (fields(through)["contentType"], fields(through)["state"]) == ("ZIP_JSON", "Open")


def test_the_python_api_uses_the_zip_type_only_without_any_content_type(emulator, token):
    job_id = new_job(emulator, token, operation="insert", object="Contact", contentType="ZIP_CSV")
    with Connector.load().connection(
        apiUrl=emulator.base_url, apiVersion=VERSION, accessToken=token, registry=MemoryRegistry()
    ) as conn:
        body = a_zip(b"LastName\nZipDefault\n")
        assert conn.invoke("uploadBatchFile", jobId=job_id, body=body).status == 201  # zip/csv
        refused = conn.invoke("uploadBatchFile", jobId=job_id, body=body, body_content_type="zip/json")
        assert (refused.status, fields_of(refused.content)["exceptionCode"]) == (400, "InvalidBatch")


def fields_of(content: bytes) -> dict[str, Any]:
    root = etree.fromstring(content)
    return {etree.QName(child).localname: child.text for child in root}
