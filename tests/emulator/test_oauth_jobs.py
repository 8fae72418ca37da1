"""OAuth token endpoint, sessions, jobs and the wire format of the emulator."""

from __future__ import annotations

import json
import re

import pytest
import requests

from tests.emulator.helpers import NS, Bulk, job_xml, parse

TOKEN_FIELDS = {"access_token", "instance_url", "id", "token_type", "issued_at", "signature", "scope"}


def token(emulator, **params):
    return requests.post(f"{emulator.base_url}/services/oauth2/token", data=params, timeout=10)


def test_refresh_grant_gives_salesforce_fields(emulator):
    c = emulator.credentials
    resp = token(
        emulator,
        grant_type="refresh_token",
        client_id=c["client_id"],
        client_secret=c["client_secret"],
        refresh_token=c["refresh_token"],
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    doc = resp.json()
    assert TOKEN_FIELDS <= set(doc)
    assert doc["instance_url"] == emulator.base_url
    assert doc["token_type"] == "Bearer"
    assert re.fullmatch(r"\d{13}", doc["issued_at"])
    assert "refresh_token" not in doc


def test_password_grant_and_query_string_params(emulator):
    c = emulator.credentials
    resp = token(
        emulator,
        grant_type="password",
        client_id=c["client_id"],
        client_secret=c["client_secret"],
        username=c["username"],
        password=c["password"],
    )
    assert resp.status_code == 200 and resp.json()["access_token"]
    # WSO2's integration test sends the parameters in the query string with an empty body
    qs = (
        f"grant_type=refresh_token&client_id={c['client_id']}&client_secret={c['client_secret']}"
        f"&refresh_token={c['refresh_token']}"
    )
    resp = requests.post(f"{emulator.base_url}/services/oauth2/token?{qs}", timeout=10)
    assert resp.status_code == 200 and resp.json()["access_token"]


@pytest.mark.parametrize(
    "params, error, description",
    [
        (
            {"grant_type": "refresh_token", "client_id": "nope", "refresh_token": "x"},
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            {"grant_type": "refresh_token", "client_id": "sfbulk-demo-client-id", "refresh_token": "wrong"},
            "invalid_grant",
            "expired access/refresh token",
        ),
        (
            {
                "grant_type": "refresh_token",
                "client_id": "sfbulk-demo-client-id",
                "client_secret": "bad",
                "refresh_token": "sfbulk-demo-refresh-token",
            },
            "invalid_client",
            "invalid client credentials",
        ),
        (
            {
                "grant_type": "password",
                "client_id": "sfbulk-demo-client-id",
                "client_secret": "sfbulk-demo-client-secret",
                "username": "demo@sfbulk.local",
                "password": "wrong",
            },
            "invalid_grant",
            "authentication failure",
        ),
        ({"grant_type": "client_magic"}, "unsupported_grant_type", "grant type not supported"),
    ],
)
def test_oauth_errors_are_salesforce_json(emulator, params, error, description):
    resp = token(emulator, **params)
    assert resp.status_code == 400
    assert resp.json() == {"error": error, "error_description": description}


def test_missing_and_invalid_session(emulator):
    url = f"{emulator.base_url}/services/async/62.0/job"
    resp = requests.post(url, data=job_xml(operation="insert", object="Account"), timeout=10)
    assert resp.status_code == 400
    assert "<exceptionCode>InvalidSessionId</exceptionCode>" in resp.text
    assert parse(resp.content)["exceptionMessage"] == "Unable to find session id"
    resp = requests.get(url + "/750000000000000AAA", headers={"X-SFDC-Session": "00Dbogus"}, timeout=10)
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/xml"
    assert resp.text == (
        '<?xml version="1.0" encoding="UTF-8"?><error\n   xmlns="http://www.force.com/2009/06/asyncapi/dataload">\n'
        " <exceptionCode>InvalidSessionId</exceptionCode>\n <exceptionMessage>Invalid session id</exceptionMessage>\n"
        "</error>"
    )


def test_token_ttl_and_expire(emulator_factory):
    emu = emulator_factory(token_ttl=3600)
    bulk = Bulk(emu.base_url, emu.issue_token())
    job_id = bulk.create_job("insert", "Account")
    emu.expire_tokens()
    resp = bulk.get(f"/job/{job_id}")
    assert resp.status_code == 400 and parse(resp.content)["exceptionCode"] == "InvalidSessionId"
    bulk.token = emu.issue_token()
    assert bulk.get(f"/job/{job_id}").status_code == 200
    emu.set_token_ttl(0.001)
    assert bulk.get(f"/job/{job_id}").status_code == 400


def test_create_job_xml_element_order_and_location(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    resp = bulk.post(
        "/job",
        job_xml(
            operation="upsert",
            object="contact",
            externalIdFieldName="External_Id__c",
            concurrencyMode="Serial",
            contentType="CSV",
        ),
    )
    assert resp.status_code == 201
    assert resp.headers["Content-Type"] == "application/xml"
    text = resp.text
    assert text.startswith(f'<?xml version="1.0" encoding="UTF-8"?><jobInfo\n   xmlns="{NS}">\n <id>750')
    tags = re.findall(r"^ <(\w+)>", text, re.M)
    assert tags == [
        "id",
        "operation",
        "object",
        "createdById",
        "createdDate",
        "systemModstamp",
        "state",
        "externalIdFieldName",
        "concurrencyMode",
        "contentType",
        "numberBatchesQueued",
        "numberBatchesInProgress",
        "numberBatchesCompleted",
        "numberBatchesFailed",
        "numberBatchesTotal",
        "numberRecordsProcessed",
        "numberRetries",
        "apiVersion",
        "numberRecordsFailed",
        "totalProcessingTime",
        "apiActiveProcessingTime",
        "apexProcessingTime",
    ]
    info = parse(resp.content)
    assert info["object"] == "Contact" and info["state"] == "Open" and info["apiVersion"] == "62.0"
    assert re.fullmatch(r"750[0-9A-Za-z]{15}", info["id"])
    assert resp.headers["Location"] == f"/services/async/62.0/job/{info['id']}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z", info["createdDate"])


def test_json_job_with_integer_concurrency_mode(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    body = json.dumps(
        {"operation": "insert", "object": "Account", "concurrencyMode": 1, "contentType": "JSON"}
    )
    resp = bulk.post("/job", body, "application/json")
    assert resp.status_code == 201 and resp.headers["Content-Type"] == "application/json"
    doc = resp.json()
    assert list(doc) == sorted(doc) and len(doc) == 24
    assert doc["concurrencyMode"] == "Serial" and doc["apiVersion"] == 62.0
    assert doc["externalIdFieldName"] is None and doc["fastPathEnabled"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000", doc["createdDate"])
    # GET follows the request Content-Type
    assert bulk.get(f"/job/{doc['id']}").headers["Content-Type"] == "application/xml"


def test_close_abort_transitions(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    job_id = bulk.create_job("insert", "Account")
    # close with an XML body sent as text/csv, as the WSO2 connector and the guide do
    resp = bulk.post(f"/job/{job_id}", job_xml(state="Closed"), "text/csv; charset=UTF-8")
    assert resp.status_code == 200 and parse(resp.content)["state"] == "Closed"
    resp = bulk.close(job_id)
    assert resp.status_code == 400
    assert parse(resp.content) == {
        "exceptionCode": "InvalidJobState",
        "exceptionMessage": "Closing already closed Job not allowed",
    }
    resp = bulk.add_batch.__self__.post(f"/job/{job_id}/batch", "Name\nx\n", "text/csv")
    assert resp.status_code == 400 and parse(resp.content)["exceptionCode"] == "InvalidJobState"
    assert bulk.post(f"/job/{job_id}", job_xml(state="Aborted")).status_code == 200
    resp = bulk.close(job_id)
    assert parse(resp.content)["exceptionMessage"] == "Closing already aborted Job not allowed"
    resp = bulk.post(
        f"/job/{job_id}", json.dumps({"state": "Closed", "createdById": "x"}), "application/json"
    )
    assert resp.status_code == 400 and resp.json()["exceptionMessage"] == "CreatedById cannot be specified"


@pytest.mark.parametrize(
    "fields, code, message",
    [
        (
            {"operation": "upsert", "object": "Contact", "contentType": "CSV"},
            "InvalidJob",
            "External ID was blank for Contact. An External ID must be specified for upsert.",
        ),
        ({"operation": "INSERT", "object": "Contact"}, "InvalidJob", "Unable to parse Job"),
        (
            {"operation": "insert", "object": "Nope__c"},
            "InvalidEntity",
            "Entity 'Nope__c' is not supported by the Bulk API.",
        ),
        (
            {"operation": "insert", "object": "Account", "contentType": "YAML"},
            "InvalidJob",
            "Unable to parse Job",
        ),
    ],
)
def test_create_job_errors(emulator, access_token, fields, code, message):
    resp = Bulk(emulator.base_url, access_token).post("/job", job_xml(**fields))
    assert resp.status_code == 400
    assert parse(resp.content) == {"exceptionCode": code, "exceptionMessage": message}


def test_empty_external_id_is_absent_and_unknown_job(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    resp = bulk.post(
        "/job", job_xml(operation="insert", object="Account", externalIdFieldName="", contentType="CSV")
    )
    assert resp.status_code == 201 and "externalIdFieldName" not in parse(resp.content)
    resp = bulk.get("/job/INVALID")
    assert resp.status_code == 400 and parse(resp.content)["exceptionCode"] == "InvalidJob"
    resp = bulk.get("/job/INVALID", "application/json")
    assert resp.json()["exceptionCode"] == "InvalidJob"


def test_routes_404_405_slashes_and_malformed(emulator, access_token):
    bulk = Bulk(emulator.base_url, access_token)
    job_id = bulk.create_job("insert", "Account")
    # trailing slash and doubled slashes are tolerated
    url = f"{emulator.base_url}//services/async/62.0/job/{job_id}/"
    assert requests.get(url, headers=bulk.headers(), timeout=10).status_code == 200
    assert (
        requests.get(
            f"{emulator.base_url}/services/async/62.0/nothing", headers=bulk.headers(), timeout=10
        ).status_code
        == 404
    )
    resp = requests.delete(url, headers=bulk.headers(), timeout=10)
    assert resp.status_code == 405 and "<exceptionCode>" in resp.text
    resp = bulk.post("/job", "<jobInfo><operation>insert")
    assert resp.status_code == 400 and parse(resp.content)["exceptionCode"] == "InvalidXml"
    resp = bulk.post("/job", "{not json", "application/json")
    assert resp.status_code == 400 and resp.json()["exceptionCode"] == "InvalidJob"
