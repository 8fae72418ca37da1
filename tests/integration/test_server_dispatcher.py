"""The dispatcher proxy (one proxy, `Action` header → createJob / getJob / updateJob), in the style of
the WSO2 connector's integration tests, compared field by field with direct calls to the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from lxml import etree

REPO = Path(__file__).resolve().parents[2]
SYNAPSE = REPO / "examples" / "synapse"
NS = {"sf": "http://www.force.com/2009/06/asyncapi/dataload"}
JOB_FIELDS = ("operation", "object", "contentType", "state")
API = "34.0"


@pytest.fixture(scope="module")
def dispatcher(tmp_path_factory, emulator):
    from sfbulk.engine.engine import Engine
    from sfbulk.server.app import start_server

    engine = Engine(registry=str(tmp_path_factory.mktemp("registry")))
    engine.load(SYNAPSE / "salesforcebulk_dispatcher.xml", SYNAPSE / "faultHandlerSeq.xml")
    server = start_server(engine, host="127.0.0.1", port=0, threads=4)
    try:
        yield server
    finally:
        server.stop()


def _request(emulator, root: str, **fields: str) -> bytes:
    """The WSO2 sample request for ``root`` (createJob, getJob, updateJob) aimed at the emulator."""
    creds = emulator.credentials
    common = {
        "apiVersion": API,
        "accessToken": "",
        "apiUrl": emulator.base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "intervalTime": "1000000",
        "registryPath": "connectors/SalesforceBulk",
        "tokenEndpointHostname": emulator.base_url,
    }
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in {**common, **fields}.items())
    return f"<{root}>{inner}</{root}>".encode()


def _call(server, emulator, action: str, **fields: str) -> requests.Response:
    return requests.post(
        server.service_url("salesforcebulk_dispatcher"),
        data=_request(emulator, action, **fields),
        headers={"Content-Type": "application/xml", "Action": f"urn:{action}"},
        timeout=20,
    )


def _fields(xml: bytes) -> dict[str, str]:
    return {etree.QName(el).localname: el.text or "" for el in etree.fromstring(xml)}


def _direct(emulator, token: str, method: str, path: str, body: str | None = None) -> requests.Response:
    return requests.request(
        method,
        f"{emulator.base_url}/services/async/{API}{path}",
        data=body.encode() if body else None,
        headers={"X-SFDC-Session": token, "Content-Type": "application/xml"},
        timeout=10,
    )


def _error(xml: bytes) -> tuple[str | None, str | None]:
    root = etree.fromstring(xml)
    return root.findtext("sf:exceptionCode", namespaces=NS), root.findtext(
        "sf:exceptionMessage", namespaces=NS
    )


def _job_info(**fields: str) -> str:
    return (
        f'<jobInfo xmlns="{NS["sf"]}">' + "".join(f"<{k}>{v}</{k}>" for k, v in fields.items()) + "</jobInfo>"
    )


def test_create_get_update_through_the_dispatcher(dispatcher, emulator, access_token):
    created = _call(
        dispatcher, emulator, "createJob", operation="insert", object="Account", contentType="CSV"
    )
    assert created.status_code == 201, created.text
    job_id = _fields(created.content)["id"]
    assert re.fullmatch(r"750[0-9A-Za-z]{15}", job_id)

    got = _call(dispatcher, emulator, "getJob", jobId=job_id)
    assert got.status_code == 200
    direct = _direct(emulator, access_token, "GET", f"/job/{job_id}")
    assert direct.status_code == 200
    ours, theirs = _fields(got.content), _fields(direct.content)
    assert {k: ours[k] for k in JOB_FIELDS} == {k: theirs[k] for k in JOB_FIELDS}
    assert ours["state"] == "Open" and ours["id"] == job_id

    closed = _call(dispatcher, emulator, "updateJob", jobId=job_id, state="Closed")
    assert closed.status_code == 200
    assert _fields(closed.content)["state"] == "Closed"
    assert _fields(_direct(emulator, access_token, "GET", f"/job/{job_id}").content)["state"] == "Closed"


def test_soap_action_selects_the_operation_too(dispatcher, emulator):
    envelope = (
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        + _request(emulator, "createJob", operation="insert", object="Contact", contentType="XML")
        + b"</soapenv:Body></soapenv:Envelope>"
    )
    response = requests.post(
        dispatcher.service_url("salesforcebulk_dispatcher"),
        data=envelope,
        headers={"Content-Type": "text/xml", "SOAPAction": '"urn:createJob"'},
        timeout=20,
    )
    assert response.status_code == 201
    assert _fields(response.content)["contentType"] == "XML"


def test_unknown_object_gives_exactly_the_api_error(dispatcher, emulator, access_token):
    ours = _call(
        dispatcher, emulator, "createJob", operation="insert", object="NoSuchThing__c", contentType="CSV"
    )
    theirs = _direct(
        emulator,
        access_token,
        "POST",
        "/job",
        _job_info(operation="insert", object="NoSuchThing__c", contentType="CSV"),
    )
    assert ours.status_code == theirs.status_code == 400
    assert _error(ours.content) == _error(theirs.content)
    assert _error(ours.content)[0]


@pytest.mark.parametrize("action", ["getJob", "updateJob"])
def test_invalid_job_id_gives_exactly_the_api_error(dispatcher, emulator, access_token, action):
    extra = {"state": "Closed"} if action == "updateJob" else {}
    ours = _call(dispatcher, emulator, action, jobId="INVALID", **extra)
    if action == "getJob":
        theirs = _direct(emulator, access_token, "GET", "/job/INVALID")
    else:
        theirs = _direct(emulator, access_token, "POST", "/job/INVALID", _job_info(state="Closed"))
    assert ours.status_code == theirs.status_code == 400
    assert _error(ours.content) == _error(theirs.content)
    assert _error(ours.content)[0] == "InvalidJob"


def test_closing_twice_relays_the_invalid_state_error(dispatcher, emulator, access_token):
    job_id = _fields(
        _call(dispatcher, emulator, "createJob", operation="insert", object="Lead", contentType="CSV").content
    )["id"]
    assert _call(dispatcher, emulator, "updateJob", jobId=job_id, state="Closed").status_code == 200
    ours = _call(dispatcher, emulator, "updateJob", jobId=job_id, state="Closed")
    theirs = _direct(emulator, access_token, "POST", f"/job/{job_id}", _job_info(state="Closed"))
    assert ours.status_code == theirs.status_code == 400
    assert _error(ours.content) == _error(theirs.content)


def test_unknown_action_is_a_clear_400(dispatcher, emulator):
    response = requests.post(
        dispatcher.service_url("salesforcebulk_dispatcher"),
        data=_request(emulator, "deleteEverything"),
        headers={"Content-Type": "application/xml", "Action": "urn:deleteEverything"},
        timeout=20,
    )
    assert response.status_code == 400
    assert "urn:deleteEverything" in response.text
