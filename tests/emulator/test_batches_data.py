"""Batches, processing states, per-row results and data semantics."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

from sfbulk.emulator.ids import checksum_suffix, normalize_id
from tests.emulator.helpers import Bulk, parse


def results_csv(bulk: Bulk, job_id: str, batch_id: str) -> list[dict[str, str]]:
    resp = bulk.get(f"/job/{job_id}/batch/{batch_id}/result")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/csv"
    assert resp.text.startswith('"Id","Success","Created","Error"\n')
    return list(csv.DictReader(io.StringIO(resp.text)))


def run_csv(bulk: Bulk, operation: str, obj: str, data: str, **extra: str) -> list[dict[str, str]]:
    job_id = bulk.create_job(operation, obj, **extra)
    batch_id = bulk.add_batch(job_id, data.encode("utf-8"))
    info = bulk.wait(job_id, batch_id)
    assert info["state"] == "Completed", info
    return results_csv(bulk, job_id, batch_id)


def test_checksum_suffix_matches_salesforce():
    # real 18-character ids captured from Salesforce (bulk-api.md §0.2)
    for real in ("750D00000004SkLIAU", "7509H0000016GUXQA2", "751P0000007qkgoIAA", "0059H0000059qXZQAY"):
        assert checksum_suffix(real[:15]) == real[15:]
        assert normalize_id(real[:15]) == real
    assert normalize_id("750D00000004SkLIAX") is None
    assert normalize_id("750D00000004SkLiau") == "750D00000004SkLIAU"


def test_insert_results_ids_and_counters(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    job_id = bulk.create_job("insert", "Contact")
    data = (
        "FirstName,LastName,Email,Birthdate\nAda,Lovelace,ada@example.com,1815-12-10\n"
        'Bad,,x@example.com,\nC,Dee,not-an-email,\n"Quote ""Q""","Multi\nLine",,1999-01-31Z\n'
    )
    batch_id = bulk.add_batch(job_id, data)
    info = bulk.wait(job_id, batch_id)
    assert info["state"] == "Completed"
    assert info["numberRecordsProcessed"] == "4" and info["numberRecordsFailed"] == "2"
    rows = results_csv(bulk, job_id, batch_id)
    assert [r["Success"] for r in rows] == ["true", "false", "false", "true"]
    assert re.fullmatch(r"003[0-9A-Za-z]{15}", rows[0]["Id"]) and normalize_id(rows[0]["Id"]) == rows[0]["Id"]
    assert rows[1] == {
        "Id": "",
        "Success": "false",
        "Created": "false",
        "Error": "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
    }
    assert rows[2]["Error"].startswith("INVALID_EMAIL_ADDRESS:")
    job = parse(bulk.get(f"/job/{job_id}").content)
    assert job["numberBatchesCompleted"] == "1" and job["numberRecordsProcessed"] == "4"
    assert job["numberRecordsFailed"] == "2"
    # the batch request comes back as sent
    assert bulk.get(f"/job/{job_id}/batch/{batch_id}/request").text == data


def test_unknown_column_fails_batch_and_list(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    job_id = bulk.create_job("insert", "Account")
    resp = bulk.get(f"/job/{job_id}/batch")
    assert resp.text.endswith('<batchInfoList\n   xmlns="http://www.force.com/2009/06/asyncapi/dataload" />')
    batch_id = bulk.add_batch(job_id, "Name,Bogus__c\nx,y\n")
    info = bulk.wait(job_id, batch_id)
    assert info["state"] == "Failed"
    assert info["stateMessage"] == "InvalidBatch : Field name not found : Bogus__c"
    resp = bulk.get(f"/job/{job_id}/batch/{batch_id}/result")
    assert resp.status_code == 400 and parse(resp.content)["exceptionCode"] == "InvalidBatch"
    listing = bulk.get(f"/job/{job_id}/batch").text
    assert "\n <batchInfo>\n  <id>" in listing and "<state>Failed</state>" in listing


def test_update_na_clears_empty_keeps_and_errors(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    rows = run_csv(bulk, "insert", "Contact", "LastName,Title,Department\nOne,CTO,R&D\nTwo,CEO,Ops\n")
    a, b = rows[0]["Id"], rows[1]["Id"]
    missing = "003" + a[3:15][:-1] + "z"
    data = f"Id,Title,Department,LastName\n{a},#N/A,,\n{b[:15]},Boss,,#N/A\nnot-an-id,x,,\n{missing},x,,\n"
    res = run_csv(bulk, "update", "Contact", data)
    assert res[0]["Success"] == "true" and res[0]["Created"] == "false" and res[0]["Id"] == a
    assert res[1]["Error"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
    assert res[2]["Error"] == "MALFORMED_ID:Contact ID: id value of incorrect type: not-an-id:Id --"
    assert res[3]["Error"].startswith("INVALID_CROSS_REFERENCE_KEY:")
    # query back: Title cleared, Department unchanged
    job_id = bulk.create_job("query", "Contact")
    batch_id = bulk.add_batch(job_id, f"SELECT Id, Title, Department FROM Contact WHERE Id = '{a}'")
    assert bulk.wait(job_id, batch_id)["state"] == "Completed"
    result_id = parse(bulk.get(f"/job/{job_id}/batch/{batch_id}/result").content)["result"]
    text = bulk.get(f"/job/{job_id}/batch/{batch_id}/result/{result_id}").text
    assert text == f'"Id","Title","Department"\n"{a}","","R&D"\n'


def test_delete_hard_delete_and_query_all(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    rows = run_csv(bulk, "insert", "Lead", "LastName,Company\nDel,Acme\nHard,Acme\n")
    soft, hard = rows[0]["Id"], rows[1]["Id"]
    res = run_csv(bulk, "delete", "Lead", f"Id\n{soft}\n")
    assert res[0]["Success"] == "true"
    res = run_csv(bulk, "delete", "Lead", f"Id\n{soft}\n")
    assert res[0]["Error"] == "ENTITY_IS_DELETED:entity is deleted:--"
    res = run_csv(bulk, "update", "Lead", f"Id,Company\n{soft},X\n")
    assert res[0]["Error"].startswith("ENTITY_IS_DELETED:")
    assert run_csv(bulk, "hardDelete", "Lead", f"Id\n{hard}\n")[0]["Success"] == "true"

    def ids(operation: str) -> set[str]:
        job_id = bulk.create_job(operation, "Lead")
        batch_id = bulk.add_batch(job_id, f"SELECT Id FROM Lead WHERE Id IN ('{soft}', '{hard}')")
        assert bulk.wait(job_id, batch_id)["state"] == "Completed"
        rid = parse(bulk.get(f"/job/{job_id}/batch/{batch_id}/result").content)["result"]
        text = bulk.get(f"/job/{job_id}/batch/{batch_id}/result/{rid}").text
        return set(re.findall(r"00Q\w{15}", text))

    assert ids("query") == set()
    assert ids("queryAll") == {soft}


def test_upsert_insert_update_and_duplicates(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    res = run_csv(
        bulk,
        "upsert",
        "Account",
        "External_Id__c,Name\nU-1,First\nU-2,Second\n",
        externalIdFieldName="External_Id__c",
    )
    assert [r["Created"] for r in res] == ["true", "true"]
    res = run_csv(
        bulk,
        "upsert",
        "Account",
        "External_Id__c,Name\nU-1,First v2\nU-3,Third\nU-3,Dup\n,NoKey\n",
        externalIdFieldName="External_Id__c",
    )
    assert res[0]["Success"] == "true" and res[0]["Created"] == "false"
    assert res[1]["Error"] == "DUPLICATE_VALUE:Duplicate external id specified: U-3:External_Id__c --"
    assert res[3]["Error"].startswith("MISSING_ARGUMENT:")
    # unique field on insert
    res = run_csv(bulk, "insert", "Account", "Name,External_Id__c\nX,U-2\n")
    assert res[0]["Error"].startswith(
        "DUPLICATE_VALUE:duplicate value found: External_Id__c duplicates value on record with id: 001"
    )
    # relationship column by external id
    res = run_csv(bulk, "insert", "Contact", "LastName,Account.External_Id__c\nRel,U-1\nRel2,NOPE\n")
    assert res[0]["Success"] == "true"
    assert res[1]["Error"] == (
        "INVALID_FIELD:Foreign key external ID: NOPE not found for field External_Id__c in "
        "entity Account:Account.External_Id__c --"
    )


def test_json_xml_and_zip_batches(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    job = bulk.post(
        "/job",
        json.dumps({"operation": "insert", "object": "Account", "contentType": "JSON"}),
        "application/json",
    ).json()
    batch_id = bulk.add_batch(
        job["id"], json.dumps([{"Name": "J1", "NumberOfEmployees": 5}, {"Name": None}]), "application/json"
    )
    # batch URLs answer in the job's format even when the client sends application/xml (salesforce-bulk does)
    info = bulk.wait(job["id"], batch_id, as_json=True)
    assert info["state"] == "Completed" and info["stateMessage"] is None
    results = bulk.get(f"/job/{job['id']}/batch/{batch_id}/result").json()
    assert results[0]["success"] is True and results[0]["errors"] == []
    assert results[1] == {
        "success": False,
        "created": False,
        "id": None,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Name]",
                "fields": ["Name"],
            }
        ],
    }

    job_id = bulk.create_job("insert", "Account", content_type="XML")
    body = (
        '<?xml version="1.0"?><sObjects xmlns="http://www.force.com/2009/06/asyncapi/dataload" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><sObject><Name>X1</Name>'
        '<Description xsi:nil="true"/></sObject><sObject><Website>w</Website></sObject></sObjects>'
    )
    batch_id = bulk.add_batch(job_id, body, "application/xml")
    assert bulk.wait(job_id, batch_id)["state"] == "Completed"
    text = bulk.get(f"/job/{job_id}/batch/{batch_id}/result").text
    assert "<success>true</success>" in text and "<statusCode>REQUIRED_FIELD_MISSING</statusCode>" in text

    parent = run_csv(bulk, "insert", "Account", "Name\nWithFiles\n")[0]["Id"]
    job_id = bulk.create_job("insert", "Attachment", content_type="ZIP_CSV")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("request.txt", f"Name,ParentId,Body\nhello.txt,{parent},#files/hello.txt\n")
        zf.writestr("files/hello.txt", b"hello")
    batch_id = bulk.add_batch(job_id, buf.getvalue(), "zip/csv")
    assert bulk.wait(job_id, batch_id)["state"] == "Completed"
    assert bulk.get(f"/job/{job_id}/batch/{batch_id}/result").text.count('"true","true"') == 1


def test_batch_limits_and_content_type(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    job_id = bulk.create_job("insert", "Account")
    resp = bulk.post(f"/job/{job_id}/batch", "Name\nx\n", "application/xml")
    assert resp.status_code == 400 and parse(resp.content)["exceptionCode"] == "InvalidBatch"
    resp = bulk.post(f"/job/{job_id}/batch", "Name\nx\n", "text/xml")
    assert parse(resp.content)["exceptionMessage"] == "Unsupported content type: text/xml"
    batch_id = bulk.add_batch(job_id, "Name\n" + "n\n" * 10_001)
    info = bulk.wait(job_id, batch_id)
    assert info["state"] == "Failed" and "10000" in info["stateMessage"]
    batch_id = bulk.add_batch(job_id, "Name\n" + "x" * 131_073 + "\n")
    info = bulk.wait(job_id, batch_id)
    assert info["state"] == "Failed" and "131072" in info["stateMessage"]
    batch_id = bulk.add_batch(job_id, "Name\n" + "x" * 256 + "\n")
    assert results_csv(bulk, job_id, bulk.wait(job_id, batch_id)["id"])[0]["Error"].startswith(
        "STRING_TOO_LONG:"
    )


def test_serial_job_processes_one_batch_at_a_time(emulator_factory):
    emu = emulator_factory(processing_delay_ms=60)
    bulk = Bulk(emu.base_url, emu.issue_token())
    resp = bulk.post(
        "/job",
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><operation>insert'
        "</operation><object>Account</object><concurrencyMode>Serial</concurrencyMode>"
        "<contentType>CSV</contentType></jobInfo>",
    )
    job_id = parse(resp.content)["id"]
    for i in range(3):
        bulk.add_batch(job_id, f"Name\nS{i}\n")
    seen_parallel = 0
    while True:  # one listing is one consistent snapshot of all batch states
        states = re.findall(r"<state>(\w+)</state>", bulk.get(f"/job/{job_id}/batch").text)
        seen_parallel = max(seen_parallel, states.count("InProgress"))
        if len(states) == 3 and all(s == "Completed" for s in states):
            break
    assert seen_parallel <= 1
    # aborting a job turns its queued batches NotProcessed
    job_id = bulk.create_job("insert", "Account")
    first = bulk.add_batch(job_id, "Name\nA\n")
    queued = [bulk.add_batch(job_id, "Name\nB\n") for _ in range(4)]
    bulk.post(
        f"/job/{job_id}",
        '<jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload"><state>Aborted</state></jobInfo>',
    )
    emu.wait_idle(10)
    states = [bulk.batch(job_id, b)["state"] for b in [first, *queued]]
    assert "NotProcessed" in states and set(states) <= {"Completed", "NotProcessed"}
