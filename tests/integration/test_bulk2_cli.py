"""--file-root on `sfbulk run` and `sfbulk serve` with the salesforcebulkv2 examples, against the emulator.

serve refuses every file path unless --file-root is given (700404, and the message names the
flag); run confines to --file-root (default the current directory).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner
from lxml import etree

from sfbulk.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "bulk2"
CSV = "LastName\nKnuth\n"


def _request(emulator: Any, **fields: str) -> bytes:
    creds = emulator.credentials
    root = etree.Element("request")
    values = {
        "apiUrl": emulator.base_url,
        "tokenEndpointHostname": emulator.base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        **fields,
    }
    for name, value in values.items():
        etree.SubElement(root, name).text = value
    return etree.tostring(root)


def _job(emulator: Any, access_token: str) -> str:
    answer = requests.post(
        f"{emulator.base_url}/services/data/v62.0/jobs/ingest",
        timeout=10,
        headers={"Authorization": f"Bearer {access_token}"},
        json={"object": "Contact", "operation": "insert", "contentType": "CSV"},
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def test_run_confines_file_paths_to_file_root(tmp_path: Path, emulator: Any, access_token: str) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "in.csv").write_text(CSV)
    (tmp_path / "outside.csv").write_text(CSV)
    outcomes = {}
    for name, path in (("inside", "in.csv"), ("outside", str(tmp_path / "outside.csv"))):
        request = tmp_path / f"{name}.xml"
        request.write_bytes(
            _request(emulator, jobId=_job(emulator, access_token), inputType="FILE", filePath=path)
        )
        result = CliRunner().invoke(
            cli,
            [
                "run",
                str(EXAMPLES / "flows.yaml"),
                "--proxy",
                "v2dispatcher",
                "--header",
                "Action: urn:uploadJobData",
                "--input",
                str(request),
                "--registry",
                str(tmp_path / "registry"),
                "--file-root",
                str(files),
                "-i",
            ],
            catch_exceptions=False,
        )
        outcomes[name] = (result.exit_code, result.output)
    assert outcomes["inside"][0] == 0 and "201" in outcomes["inside"][1], outcomes
    assert outcomes["outside"][0] == 1 and "700404" in outcomes["outside"][1], outcomes


def test_serve_refuses_files_without_file_root(tmp_path: Path, emulator: Any, access_token: str) -> None:
    (tmp_path / "in.csv").write_text(CSV)
    answers = []
    for extra in ([], ["--file-root", str(tmp_path)]):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sfbulk",
                "serve",
                str(EXAMPLES),
                "--port",
                "0",
                "--no-access-log",
                "--registry",
                str(tmp_path / "registry"),
                "--token-endpoint",
                emulator.base_url,
                *extra,
            ],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            assert banner.startswith("sfbulk serving at "), banner + (
                proc.stderr.read() if proc.stderr else ""
            )
            base = banner.split(" at ", 1)[1].split("/services/", 1)[0]
            body = _request(
                emulator,
                jobId=_job(emulator, access_token),
                inputType="FILE",
                filePath=str(tmp_path / "in.csv"),
            )
            answer = requests.post(
                f"{base}/services/v2dispatcher",
                data=body,
                timeout=30,
                headers={"Content-Type": "application/xml", "Action": "urn:uploadJobData"},
            )
            answers.append((answer.status_code, answer.text))
        finally:
            proc.terminate()
            proc.communicate(timeout=30)
    (refused_status, refused), (allowed_status, allowed) = answers
    fault = etree.fromstring(refused.encode())
    assert refused_status == 500 and fault.findtext("code") == "700404", refused
    assert "--file-root" in fault.findtext("message")
    assert allowed_status == 201, allowed


def test_validate_knows_both_connectors_and_the_wso2_alias(tmp_path: Path) -> None:
    flow = tmp_path / "typo.yaml"
    flow.write_text(
        "proxies:\n  p:\n    inSequence:\n      - salesforcebulkv2.getQueryJobResults: {queryJobID: x}\n"
        "      - salesforce_bulkapi_v2.getJobInfo: {jobId: x}\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(flow)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "has no parameter 'queryJobID'; did you mean 'queryJobId'?" in result.output
    assert "getJobInfo" not in result.output
