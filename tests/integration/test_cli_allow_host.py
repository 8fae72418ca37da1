"""`--allow-host` and `--settings` on the real `sfbulk serve` process and on `sfbulk run`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from lxml import etree

from sfbulk.cli import cli
from sfbulk.transport import HOST_NOT_ALLOWED_CODE

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "serve",
            str(EXAMPLES / "synapse"),
            "--port",
            "0",
            "--registry",
            str(tmp_path / "reg"),
            *args,
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    banner = [proc.stdout.readline()]
    while not banner[-1].startswith("Stop with") and banner[-1]:
        banner.append(proc.stdout.readline())
    return proc, banner


def _request(emulator, api_url: str) -> bytes:
    return (
        (EXAMPLES / "createJob.xml")
        .read_text()
        .replace("<apiUrl>http://127.0.0.1:8281</apiUrl>", f"<apiUrl>{api_url}</apiUrl>")
        .replace("http://127.0.0.1:8281", emulator.base_url)
        .encode()
    )


def test_serve_allows_the_token_endpoint_and_refuses_other_hosts(tmp_path, emulator, emulator_factory):
    other = emulator_factory()  # a real server the default allow-list does not name
    settings = tmp_path / "settings.yaml"
    settings.write_text("security:\n  allow_hosts:\n    - '*.corp.example'\n")
    proc, banner = _serve(
        tmp_path,
        "--token-endpoint",
        emulator.base_url,
        "--settings",
        str(settings),
        "--allow-host",
        "proxy.corp.example:8443",
    )
    try:
        url = banner[0].split(" at ", 1)[1].split("/services/", 1)[0]
        listed = next(line for line in banner if "outbound hosts" in line)
        assert "*.salesforce.com" in listed and emulator.base_url.split("//")[1] in listed
        assert "*.corp.example" in listed and "proxy.corp.example:8443" in listed
        ok = requests.post(
            f"{url}/services/salesforcebulk_createJob",
            data=_request(emulator, emulator.base_url),
            headers={"Content-Type": "text/xml"},
            timeout=20,
        )
        assert ok.status_code == 201, ok.text  # the README tour's shape
        refused = requests.post(
            f"{url}/services/salesforcebulk_createJob",
            data=_request(emulator, other.base_url),
            headers={"Content-Type": "text/xml"},
            timeout=20,
        )
        fault = etree.fromstring(refused.content)
        assert fault.findtext("code") == str(HOST_NOT_ALLOWED_CODE)
        assert "apiUrl refused: host 127.0.0.1:" in fault.findtext("message")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        proc.communicate(timeout=10)


@pytest.mark.slow
def test_serve_refuses_a_bad_pattern_or_settings_file_before_starting(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "serve",
            str(EXAMPLES / "synapse"),
            "--port",
            "0",
            "--allow-host",
            "http://x.example",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "--allow-host" in result.stderr and "not a URL" in result.stderr
    assert "Traceback" not in result.stderr
    settings = tmp_path / "s.yaml"
    settings.write_text("security:\n  allow_host: []\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "serve",
            str(EXAMPLES / "synapse"),
            "--port",
            "0",
            "--settings",
            str(settings),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and f"{settings}:2: unknown key security.allow_host" in result.stderr
    assert "sfbulk serving" not in result.stdout


def test_run_checks_hosts_only_when_asked(tmp_path, emulator):
    body = tmp_path / "createJob.xml"
    body.write_bytes(_request(emulator, emulator.base_url))
    args = ["run", str(EXAMPLES / "flows.yaml"), "--proxy", "createJob", "--input", str(body)]
    trusted = CliRunner().invoke(cli, [*args, "--registry", str(tmp_path / "r1")], catch_exceptions=False)
    assert trusted.exit_code == 0 and trusted.stdout.startswith("HTTP 201"), trusted.output
    checked = CliRunner().invoke(
        cli,
        [*args, "--registry", str(tmp_path / "r2"), "--allow-host", "a.example.com"],
        catch_exceptions=False,
    )
    assert checked.exit_code == 1
    assert f"fault ERROR_CODE {HOST_NOT_ALLOWED_CODE}: apiUrl refused" in checked.stderr, checked.output
    with_endpoint = CliRunner().invoke(
        cli,
        [
            *args,
            "--registry",
            str(tmp_path / "r3"),
            "--allow-host",
            "a.example.com",
            "--token-endpoint",
            emulator.base_url,
        ],
        catch_exceptions=False,
    )
    assert with_endpoint.exit_code == 0, with_endpoint.output
