"""The seed works verbatim: the WSO2 docs' proxy, createJob.xml and curl command, against the emulator.

The proxy is `examples/synapse/salesforcebulk_createJob.xml` (copied unchanged from the seed, stray
text included) plus the `faultHandlerSeq` it names; createJob.xml is the seed's file with the
placeholders replaced by the emulator's URL and demo credentials.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from lxml import etree

REPO = Path(__file__).resolve().parents[2]
SEED_PROXY = REPO / "examples" / "synapse" / "salesforcebulk_createJob.xml"
FAULT_SEQ = REPO / "examples" / "synapse" / "faultHandlerSeq.xml"
SEED_CREATE_JOB = REPO / "tests" / "data" / "server" / "createJob.xml"
NS = {"sf": "http://www.force.com/2009/06/asyncapi/dataload"}
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"


def seed_request(emulator, access_token: str, **overrides: str) -> str:
    """The seed's createJob.xml (verbatim layout) with the emulator's URL and credentials filled in."""
    values = {
        "apiUrl": emulator.base_url,
        "accessToken": access_token,
        "refreshToken": emulator.credentials["refresh_token"],
        "clientId": emulator.credentials["client_id"],
        "clientSecret": emulator.credentials["client_secret"],
        **overrides,
    }
    text = SEED_CREATE_JOB.read_text()
    for name, value in values.items():
        text, count = re.subn(rf"<{name}>[^<]*</{name}>", f"<{name}>{value}</{name}>", text)
        assert count == 1, name
    return text


def job_fields(xml: bytes) -> dict[str, str]:
    root = etree.fromstring(xml)
    return {etree.QName(el).localname: el.text or "" for el in root}


def get_job_directly(emulator, token: str, job_id: str, version: str = "34.0") -> requests.Response:
    return requests.get(
        f"{emulator.base_url}/services/async/{version}/job/{job_id}",
        headers={"X-SFDC-Session": token},
        timeout=10,
    )


@pytest.fixture
def seed_server(sfbulk_server):
    return sfbulk_server(SEED_PROXY, FAULT_SEQ)


def _assert_created_job(emulator, access_token, status: int, body: bytes) -> dict[str, str]:
    assert status == 201, body
    job = job_fields(body)
    assert re.fullmatch(r"750[0-9A-Za-z]{15}", job["id"])
    assert (job["operation"], job["object"], job["contentType"], job["state"]) == (
        "insert",
        "Contact",
        "CSV",
        "Open",
    )
    # Salesforce (the emulator) really holds that job with those fields: what went out was a plain jobInfo.
    direct = get_job_directly(emulator, access_token, job["id"])
    assert direct.status_code == 200
    stored = job_fields(direct.content)
    assert {k: stored[k] for k in ("id", "operation", "object", "contentType", "state")} == {
        k: job[k] for k in ("id", "operation", "object", "contentType", "state")
    }
    return job


@pytest.mark.skipif(shutil.which("curl") is None, reason="the curl binary is not installed")
def test_the_seed_curl_command_verbatim(seed_server, emulator, access_token, tmp_path):
    (tmp_path / "createJob.xml").write_text(seed_request(emulator, access_token))
    url = f"http://localhost:{seed_server.port}/services/salesforcebulk_createJob"
    completed = subprocess.run(
        [
            "curl",
            url,
            "-H",
            "Content-Type: text/xml",
            "-d",
            "@createJob.xml",
            "-s",
            "-S",
            "-D",
            "headers.txt",
            "--max-time",
            "20",
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=30,
    )
    assert completed.returncode == 0, completed.stderr
    status_line = (tmp_path / "headers.txt").read_text().splitlines()[0]
    status = int(status_line.split()[1])
    job = _assert_created_job(emulator, access_token, status, completed.stdout)
    # the registry now caches the token under the seed's registryPath (synapse.md §7.3)
    token_file = seed_server.registry_root / "connectors" / "SalesforceBulk" / "accessToken"
    assert token_file.read_text() == access_token
    assert job["apiVersion"] in ("34", "34.0")


def _soap11(inner: str) -> str:
    return f'<soapenv:Envelope xmlns:soapenv="{SOAP11}"><soapenv:Header/><soapenv:Body>{inner}</soapenv:Body></soapenv:Envelope>'


def _soap12(inner: str) -> str:
    return f'<soap:Envelope xmlns:soap="{SOAP12}"><soap:Body>{inner}</soap:Body></soap:Envelope>'


def _json_body(xml_text: str) -> str:
    root = etree.fromstring(xml_text.encode())
    return json.dumps({"createJob": {el.tag: el.text or "" for el in root}})


@pytest.mark.parametrize(
    ("content_type", "wrap"),
    [
        ("text/xml", lambda xml: xml),
        ("text/xml; charset=UTF-8", _soap11),
        ("application/soap+xml; charset=UTF-8", _soap12),
        ("application/xml", lambda xml: xml),
        ("application/json", _json_body),
    ],
    ids=["plain-text-xml", "soap11", "soap12", "application-xml", "json"],
)
def test_every_body_kind_creates_the_same_plain_job(seed_server, emulator, access_token, content_type, wrap):
    xml = seed_request(emulator, access_token).strip()
    response = requests.post(
        seed_server.service_url("salesforcebulk_createJob"),
        data=wrap(xml).encode(),
        headers={"Content-Type": content_type},
        timeout=20,
    )
    _assert_created_job(emulator, access_token, response.status_code, response.content)


def test_salesforce_errors_are_relayed_unchanged(seed_server, emulator, access_token):
    xml = seed_request(emulator, access_token).replace(
        "<object>Contact</object>", "<object>NoSuchObject__x</object>"
    )
    response = requests.post(
        seed_server.service_url("salesforcebulk_createJob"),
        data=xml.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=20,
    )
    direct = requests.post(
        f"{emulator.base_url}/services/async/34.0/job",
        data=(
            f'<jobInfo xmlns="{NS["sf"]}"><operation>insert</operation><object>NoSuchObject__x</object>'
            "<contentType>CSV</contentType></jobInfo>"
        ).encode(),
        headers={"X-SFDC-Session": access_token, "Content-Type": "application/xml"},
        timeout=10,
    )
    assert response.status_code == direct.status_code == 400
    ours, theirs = etree.fromstring(response.content), etree.fromstring(direct.content)
    for field in ("exceptionCode", "exceptionMessage"):
        assert ours.findtext(f"sf:{field}", namespaces=NS) == theirs.findtext(f"sf:{field}", namespaces=NS)


def test_unreachable_salesforce_gives_the_fault_sequence_answer_quickly(seed_server, emulator, access_token):
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    xml = seed_request(emulator, access_token, apiUrl=f"http://127.0.0.1:{closed}")
    started = time.monotonic()
    response = requests.post(
        seed_server.service_url("salesforcebulk_createJob"),
        data=xml.encode(),
        headers={"Content-Type": "text/xml"},
        timeout=30,
    )
    assert time.monotonic() - started < 5
    assert response.status_code == 500
    fault = etree.fromstring(response.content)
    assert fault.findtext("code") == "101503"
    assert access_token not in response.text
