"""Every example loads, `make run`'s demo succeeds, and both dispatcher proxies (YAML and Synapse XML)
drive createJob / getJob / updateJob against the emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from sfbulk.engine.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
JOB = "{http://www.force.com/2009/06/asyncapi/dataload}"


def sfbulk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sfbulk", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_sfbulk_validate_examples():
    result = sfbulk("validate", "examples/", "examples/synapse/")
    assert result.returncode == 0, result.stderr
    # other areas add examples too: at least our six proxies and three sequences
    counts = re.fullmatch(r"OK: (\d+) proxies, (\d+) sequences(, .+)?", result.stdout.strip())
    assert counts and int(counts.group(1)) >= 6 and int(counts.group(2)) >= 3, result.stdout


@pytest.mark.slow
def test_make_run_demo_succeeds_and_prints_no_secrets():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "=== createJob: HTTP 201 Created" in out
    assert "=== getJob: HTTP 200" in out and "=== updateJob: HTTP 200" in out
    assert out.count("<state>Closed</state>") == 1
    for secret in ("sfbulk-demo-client-secret", "sfbulk-demo-refresh-token"):
        assert secret not in out + result.stderr


def body(root: str, emulator, **fields: str) -> bytes:
    creds = emulator.credentials
    settings = {
        "apiUrl": emulator.base_url,
        "tokenEndpointHostname": emulator.base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "apiVersion": "34.0",
    }
    element = etree.Element(root)
    for name, value in {**settings, **fields}.items():
        etree.SubElement(element, name).text = value
    return etree.tostring(element)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with Engine(registry=tmp_path_factory.mktemp("registry")) as engine:
        engine.load(EXAMPLES, EXAMPLES / "synapse")
        yield engine


@pytest.mark.parametrize("proxy", ["dispatcher", "salesforcebulk_dispatcher"])
def test_dispatchers_create_get_and_close_a_job(engine, emulator, proxy):
    def send(action: str, payload: bytes, header: str = "Action"):
        result = engine.handle(
            proxy,
            method="POST",
            uri=f"/services/{proxy}",
            headers=[("Content-Type", "application/xml"), (header, action)],
            body=payload,
        )
        root = etree.fromstring(result.body)
        return result.status, root

    status, job = send(
        "urn:createJob", body("createJob", emulator, operation="insert", object="Account", contentType="CSV")
    )
    assert status == 201
    job_id = job.findtext(f"{JOB}id")
    assert job_id and job_id.startswith("750")

    # SOAPAction works as well as an Action header
    status, got = send('"urn:getJob"', body("getJob", emulator, jobId=job_id), header="SOAPAction")
    assert status == 200
    assert [got.findtext(f"{JOB}{f}") for f in ("operation", "object", "contentType", "state")] == [
        "insert",
        "Account",
        "CSV",
        "Open",
    ]

    status, closed = send("urn:updateJob", body("updateJob", emulator, jobId=job_id, state="Closed"))
    assert status == 200 and closed.findtext(f"{JOB}state") == "Closed"

    status, invalid = send("urn:getJob", body("getJob", emulator, jobId="INVALID"))
    assert status == 400 and invalid.findtext(f"{JOB}exceptionCode")

    status, unknown = send("urn:deleteEverything", body("x", emulator))
    assert status == 400 and "Unknown action 'urn:deleteEverything'" in unknown.findtext("message")
