"""`serve` and `run` refuse a connector parameter the operation does not declare; `--lenient` runs it.

With ``--lenient`` the extra parameter is ignored as Synapse ignores it, and the flow works
against the emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sfbulk.cli import cli

FLOW = """proxies:
  getJobTypo:
    inSequence:
      - property: {{name: jobId, expression: "//jobId/text()"}}
      - salesforcebulk.init:
          apiUrl: "{url}"
          accessToken: "{{$trp:X-Token}}"
          connectionName: extra-on-purpose
      - salesforcebulk.getJob:
          jobId: "{{$ctx:jobId}}"
      - respond
"""


def write_flow(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(FLOW.format(url=url))
    return path


@pytest.mark.slow
def test_serve_refuses_the_typo_and_starts_with_lenient(tmp_path):
    flow = write_flow(tmp_path, "https://example.my.salesforce.com")
    command = [
        sys.executable,
        "-m",
        "sfbulk",
        "serve",
        str(flow),
        "--port",
        "0",
        "--registry",
        str(tmp_path / "reg"),
    ]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert refused.returncode == 2
    assert f"{flow}:8: " in refused.stderr
    assert "salesforcebulk.init has no parameter 'connectionName'" in refused.stderr
    assert "sfbulk serving" not in refused.stdout

    proc = subprocess.Popen(
        [*command, "--lenient"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("sfbulk serving at ")
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert "connectionName" in err and "ignored (--lenient)" in err


def test_run_with_lenient_ignores_the_extra_parameter(tmp_path, emulator, access_token):
    flow = write_flow(tmp_path, emulator.base_url)
    request = tmp_path / "getJob.xml"
    request.write_text("<getJob><jobId>750000000000000AAA</jobId></getJob>")
    args = [
        "run",
        str(flow),
        "--proxy",
        "getJobTypo",
        "--input",
        str(request),
        "-H",
        f"X-Token: {access_token}",
        "--registry",
        str(tmp_path / "reg"),
    ]
    strict = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert strict.exit_code == 2 and "connectionName" in strict.stderr
    lenient = CliRunner().invoke(cli, [*args, "--lenient"], catch_exceptions=False)
    # the call reached the emulator: its own 400 for an unknown job, not a configuration error
    assert lenient.exit_code == 1, lenient.output
    assert "HTTP 400" in lenient.stdout and "InvalidJob" in lenient.stdout
    assert "Invalid job id: 750000000000000AAA" in lenient.stdout
