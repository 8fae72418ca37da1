"""`sfbulk run` and `sfbulk validate` against the emulator (in-process CLI, real HTTP on loopback)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from sfbulk.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def request_file(tmp_path: Path, emulator, name: str = "createJob", **fields: str) -> Path:
    """examples/createJob.xml pointed at the emulator, with fields replaced or added."""
    text = (EXAMPLES / "createJob.xml").read_text().replace("http://127.0.0.1:8281", emulator.base_url)
    text = text.replace("<createJob>", f"<{name}>").replace("</createJob>", f"</{name}>")
    for key, value in fields.items():
        if f"<{key}>" in text:
            text = re.sub(rf"<{key}>.*?</{key}>", f"<{key}>{value}</{key}>", text)
        else:
            text = text.replace(f"</{name}>", f"   <{key}>{value}</{key}>\n</{name}>")
    path = tmp_path / f"{name}.xml"
    path.write_text(text)
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run(tmp_path: Path, *args: str, registry: str = "registry"):
    return invoke("run", *args, "--registry", str(tmp_path / registry))


def test_validate_reports_ok_and_counts():
    result = invoke("validate", str(EXAMPLES), str(EXAMPLES / "synapse"))
    assert result.exit_code == 0, result.output
    # other areas add examples too: at least our six proxies and three sequences
    counts = re.fullmatch(r"OK: (\d+) proxies, (\d+) sequences(, .+)?", result.stdout.strip())
    assert counts and int(counts.group(1)) >= 6 and int(counts.group(2)) >= 3, result.stdout
    assert "createJob.xml: not a Synapse config" in result.stderr  # the sample request is skipped, said so


def test_validate_reports_every_error_with_file_and_line(tmp_path):
    bad = tmp_path / "flows.yaml"
    bad.write_text(
        'proxies:\n  p:\n    inSequence:\n      - property: {name: a, expression: "//a[["}\n      - salesforcebulk.createJb: {}\n'
    )
    result = invoke("validate", str(bad))
    assert result.exit_code == 1
    assert f"error: {bad}:4: proxies.p.inSequence[0].property.expression: " in result.stderr
    assert (
        f"error: {bad}:5: proxies.p.inSequence[1].salesforcebulk.createJb: connector 'salesforcebulk' has no operation 'createJb'"
        in result.stderr
    )
    assert "2 error(s) found" in result.stderr


def test_run_create_then_get_through_yaml_and_xml_proxies(tmp_path, emulator):
    result = run(
        tmp_path,
        str(EXAMPLES / "flows.yaml"),
        "--proxy",
        "createJob",
        "--input",
        str(request_file(tmp_path, emulator)),
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("HTTP 201 Created\n")
    job_id = re.search(r"<id>(750\w+)</id>", result.stdout).group(1)
    assert "<state>Open</state>" in result.stdout

    get = request_file(tmp_path, emulator, "getJob", jobId=job_id)
    result = run(
        tmp_path,
        str(EXAMPLES),
        "--proxy",
        "salesforcebulk_dispatcher",
        "--input",
        str(get),
        "-H",
        "Action: urn:getJob",
        "-i",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("HTTP 200")
    assert "Content-Type: application/xml" in result.stdout and f"<id>{job_id}</id>" in result.stdout


def test_the_seed_proxy_runs_verbatim_with_an_access_token(tmp_path, emulator, access_token):
    # no refresh credentials: the supplied token is used as is (the seed proxy has no tokenEndpointHostname)
    body = request_file(
        tmp_path, emulator, accessToken=access_token, refreshToken="", clientId="", clientSecret=""
    )
    result = run(
        tmp_path,
        str(EXAMPLES / "synapse"),
        "--proxy",
        "salesforcebulk_createJob",
        "--input",
        str(body),
        "--content-type",
        "text/xml",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("HTTP 201") and "<object>Contact</object>" in result.stdout
    assert access_token not in result.output


def test_the_seed_proxy_refreshes_at_the_token_endpoint_option(tmp_path, emulator):
    # the demo app's refresh credentials, no access token: init refreshes first, at --token-endpoint
    body = request_file(tmp_path, emulator, accessToken="")
    args = [
        str(EXAMPLES / "synapse"),
        "--proxy",
        "salesforcebulk_createJob",
        "--input",
        str(body),
        "--content-type",
        "text/xml",
    ]
    result = run(tmp_path, *args, "--token-endpoint", emulator.base_url)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("HTTP 201")
    assert emulator.credentials["client_secret"] not in result.output
    assert emulator.credentials["refresh_token"] not in result.output


@pytest.mark.slow
def test_http_errors_and_faults_exit_non_zero(tmp_path, emulator):
    bad_object = request_file(tmp_path, emulator, object="NoSuchObject__x")
    result = run(tmp_path, str(EXAMPLES / "flows.yaml"), "--proxy", "createJob", "--input", str(bad_object))
    assert result.exit_code == 1 and result.stdout.startswith("HTTP 400")
    assert "exceptionCode" in result.stdout

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    unreachable = request_file(tmp_path, emulator, apiUrl=closed, tokenEndpointHostname=closed)
    # a fresh registry: a stored token would carry the emulator's instance URL and win over apiUrl
    result = run(
        tmp_path,
        str(EXAMPLES / "flows.yaml"),
        "--proxy",
        "createJob",
        "--input",
        str(unreachable),
        registry="r2",
    )
    assert result.exit_code == 1 and result.stdout.startswith("HTTP 500")
    assert re.search(r"fault ERROR_CODE 1015\d\d", result.stderr)
    assert "<code>1015" in result.stdout  # jobFaultHandler answered
    assert (
        "sfbulk-demo-client-secret" not in result.output and "sfbulk-demo-refresh-token" not in result.output
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--proxy", "nope"), "no proxy named 'nope'"),
        (("--proxy", "createJob", "-H", "no colon"), "is not 'Name: value'"),
    ],
)
def test_usage_errors_exit_2(tmp_path, args, message):
    result = run(tmp_path, str(EXAMPLES / "flows.yaml"), *args)
    assert result.exit_code == 2 and message in result.output
