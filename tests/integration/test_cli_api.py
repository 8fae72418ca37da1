"""`sfbulk validate`, `run` and `serve` with REST APIs and a WSO2 deployment folder (real HTTP to the emulator)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from sfbulk.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = ROOT / "examples" / "deployment"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def run(tmp_path, emulator):
    def run(*args: str):
        return invoke(
            "run",
            str(DEPLOYMENT),
            *args,
            "--registry",
            str(tmp_path / "registry"),
            "--token-endpoint",
            emulator.base_url,
        )

    return run


def test_validate_counts_apis_endpoints_and_local_entries():
    result = invoke("validate", str(DEPLOYMENT))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "OK: 1 proxy, 2 sequences, 1 API, 1 endpoint, 5 local entries"


def test_validate_reports_a_connector_sfbulk_does_not_have(tmp_path):
    folder = tmp_path / "synapse-configs" / "default" / "imports"
    folder.mkdir(parents=True)
    (folder / "{org.wso2.carbon.connector}gmail.xml").write_text(
        '<import xmlns="http://ws.apache.org/ns/synapse" name="gmail" package="org.wso2.carbon.connector"/>'
    )
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 1
    assert "the WSO2 connector 'gmail'" in result.stderr and "docs/connector.md" in result.stderr


def test_run_through_an_api_by_name_path_and_url(run, tmp_path):
    request = tmp_path / "job.json"
    request.write_text(json.dumps({"operation": "insert", "object": "Contact", "contentType": "CSV"}))
    created = run("--api", "BulkJobs", "--path", "/jobs", "--input", str(request))
    assert created.exit_code == 0, created.output
    assert created.stdout.startswith("HTTP 201")
    job_id = re.search(r"<id>(\w+)</id>", created.stdout).group(1)
    read = run("--url", f"/bulk/v1/jobs/{job_id}")
    assert read.exit_code == 0 and "<state>Open</state>" in read.stdout
    closed = run("--api", "BulkJobs:vv1", "--path", f"jobs/{job_id}/close", "--method", "POST")
    assert closed.exit_code == 0 and "<state>Closed</state>" in closed.stdout
    status = run("--url", "/bulk/v1/status?q=x", "--raw")
    assert json.loads(status.stdout.split("\n", 2)[2])["q"] == "x"


def test_run_answers_404_and_405_as_the_server_does(run):
    missing = run("--api", "BulkJobs", "--path", "/nothing")
    assert missing.exit_code == 1 and missing.stdout.startswith("HTTP 404 Not Found")
    assert "No resource of API 'BulkJobs:vv1'" in missing.stdout
    wrong = run("--url", "/bulk/v1/jobs", "--method", "DELETE")
    assert wrong.exit_code == 1 and wrong.stdout.startswith("HTTP 405")


def test_run_reaches_a_proxy_by_url(run, emulator, access_token):
    result = run(
        "--url",
        f"/services/BulkJobStatus?instance={emulator.base_url}&jobId=750000000000000AAA",
        "-H",
        f"X-SFDC-Session: {access_token}",
    )
    assert result.stdout.startswith("HTTP 400") and "InvalidJob" in result.stdout  # Salesforce's own answer


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give exactly one of --proxy NAME, --api NAME or --url PATH"),
        (("--proxy", "BulkJobStatus", "--api", "BulkJobs"), "give exactly one of"),
        (("--url", "/bulk/v1/status", "--path", "/x"), "--path goes with --proxy or --api"),
        (("--api", "Nope"), "no API named 'Nope' (loaded: BulkJobs:vv1)"),
        (("--url", "bulk/v1"), "must be a path starting with /"),
        (("--url", "/services/Nope?x=1"), "no proxy named 'Nope' (loaded: BulkJobStatus)"),
    ],
)
def test_run_usage_errors_exit_2(run, args, message):
    result = run(*args)
    assert result.exit_code == 2 and message in result.output


def test_serve_a_deployment_folder(tmp_path, emulator):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "serve",
            str(DEPLOYMENT / "synapse-configs" / "default"),
            "--port",
            "0",
            "--registry",
            str(tmp_path / "reg"),
            "--token-endpoint",
            emulator.base_url,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("sfbulk serving at "), (
            first + proc.stderr.read() if proc.poll() is not None else first
        )
        url = first.split(" at ", 1)[1].split("/services/", 1)[0]
        banner = [proc.stdout.readline() for _ in range(2)]
        assert banner[0].strip() == f"{url}/services/BulkJobStatus"
        assert banner[1].strip() == f"{url}/bulk/v1  (API BulkJobs:vv1)"
        created = requests.post(
            f"{url}/bulk/v1/jobs", json={"operation": "insert", "object": "Account"}, timeout=30
        )
        assert created.status_code == 201, created.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        proc.communicate(timeout=10)
