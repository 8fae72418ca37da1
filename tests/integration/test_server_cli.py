"""`sfbulk serve` as a real process: refuses bad configs, serves, and shuts down gracefully on SIGTERM."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from fixtures.backends import slow_backend

DATA = Path(__file__).resolve().parents[1] / "data" / "server"


def _start_serve(*args: str, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """Start `sfbulk serve ARGS --port 0` and return the process and its base URL (from the banner)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfbulk", "serve", *args, "--port", "0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first.startswith("sfbulk serving at "):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"sfbulk serve did not start: {first!r} {err}")
    url = first.split(" at ", 1)[1].split("/services/", 1)[0]
    return proc, url


def test_a_broken_config_is_reported_with_file_and_line_and_nothing_is_served(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "serve",
            str(DATA / "echo_proxy.xml"),
            str(DATA / "broken_proxy.xml"),
            "--port",
            "0",
            "--registry",
            str(tmp_path / "reg"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "sfbulk serving" not in result.stdout
    assert "broken_proxy.xml:6" in result.stderr
    assert "not started" in result.stderr
    assert "Traceback" not in result.stderr


_SlowBackend = slow_backend(1.0)


def test_serve_answers_logs_access_and_finishes_in_flight_requests_on_sigterm(tmp_path):
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowBackend)
    threading.Thread(target=backend.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    config = tmp_path / "slow.xml"
    config.write_text(
        '<proxy xmlns="http://ws.apache.org/ns/synapse" name="slow"><target><inSequence>'
        f'<call><endpoint><http method="get" uri-template="http://127.0.0.1:{backend.server_port}/slow"/></endpoint></call>'
        "<respond/></inSequence></target></proxy>"
    )
    proc, url = _start_serve(
        str(config), str(DATA / "echo_proxy.xml"), "--registry", str(tmp_path / "reg"), cwd=tmp_path
    )
    try:
        health = requests.get(f"{url}/health", timeout=5)
        assert health.json() == {"status": "ok", "proxies": ["echo", "slow"]}
        echoed = requests.post(
            f"{url}/services/echo?access_token=QUERYSECRET99",
            data=b"<a>1</a>",
            headers={"Content-Type": "application/xml"},
            timeout=5,
        )
        assert echoed.status_code == 200 and echoed.content == b"<a>1</a>"

        results: list[requests.Response] = []
        client = threading.Thread(
            target=lambda: results.append(requests.get(f"{url}/services/slow", timeout=15))
        )
        client.start()
        assert _SlowBackend.received.wait(10), "the proxy never called the backend"
        proc.send_signal(signal.SIGTERM)
        client.join(15)
        assert len(results) == 1
        assert results[0].status_code == 200
        assert results[0].content == b"<slow>done</slow>"
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        backend.shutdown()
    _, stderr = proc.communicate(timeout=10)
    assert "stopped." in stderr
    assert '"POST /services/echo" 200 8 ' in stderr
    assert '"GET /services/slow" 200 ' in stderr
    assert "QUERYSECRET99" not in stderr and "access_token" not in stderr
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/health", timeout=2)


def test_a_busy_port_is_a_clear_error(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "sfbulk",
                "serve",
                str(DATA / "echo_proxy.xml"),
                "--port",
                str(port),
                "--registry",
                str(tmp_path / "reg"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_endpoint_option_lets_the_unchanged_seed_proxy_refresh_locally(tmp_path, emulator):
    """`--token-endpoint` gives init the tokenEndpointHostname the seed proxy never passes."""
    repo = Path(__file__).resolve().parents[2]
    proc, url = _start_serve(
        str(repo / "examples" / "synapse"),
        "--registry",
        str(tmp_path / "reg"),
        "--token-endpoint",
        emulator.base_url,
        cwd=tmp_path,
    )
    try:
        creds = emulator.credentials
        body = (
            "<createJob><apiVersion>34.0</apiVersion><accessToken></accessToken>"
            f"<apiUrl>{emulator.base_url}</apiUrl><refreshToken>{creds['refresh_token']}</refreshToken>"
            f"<clientId>{creds['client_id']}</clientId><clientSecret>{creds['client_secret']}</clientSecret>"
            "<intervalTime>1000000</intervalTime><registryPath>connectors/SalesforceBulk</registryPath>"
            "<operation>insert</operation><contentType>CSV</contentType><object>Contact</object></createJob>"
        )
        response = requests.post(
            f"{url}/services/salesforcebulk_createJob",
            data=body.encode(),
            headers={"Content-Type": "text/xml"},
            timeout=20,
        )
        assert response.status_code == 201, response.text
        stored = (tmp_path / "reg" / "connectors" / "SalesforceBulk" / "accessToken").read_text()
        assert stored  # the refreshed token, cached in the registry
        assert stored not in response.text
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        proc.communicate(timeout=10)
