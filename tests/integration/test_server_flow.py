"""Flow semantics seen over HTTP (synapse.md §5-6): respond relays the backend, drop gives 202,
onError sequences answer the caller, unreachable backends give a fault quickly, never a hang."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from lxml import etree

FLOW = Path(__file__).resolve().parents[1] / "data" / "server" / "flow"


class _StatusBackend(http.server.BaseHTTPRequestHandler):
    """GET /status/<code> answers <code> with a custom header and a small XML body."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        code = int(self.path.rsplit("/", 1)[-1])
        body = f"<backend><status>{code}</status></backend>".encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/xml")
        self.send_header("X-Backend-Header", "from-backend")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def status_backend():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusBackend)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def flow_server(sfbulk_server, status_backend, tmp_path):
    generated = tmp_path / "generated"
    generated.mkdir()
    (generated / "flow_relay.xml").write_text(
        '<proxy xmlns="http://ws.apache.org/ns/synapse" name="flow_relay"><target><inSequence>'
        '<property name="uri.var.code" expression="$trp:X-Want-Status"/>'
        f'<call><endpoint><http method="get" uri-template="{status_backend}/status/{{uri.var.code}}"/></endpoint></call>'
        "<respond/></inSequence></target></proxy>"
    )
    (generated / "flow_unreachable.xml").write_text(
        '<proxy xmlns="http://ws.apache.org/ns/synapse" name="flow_unreachable"><target><inSequence>'
        f'<call><endpoint><http method="get" uri-template="http://127.0.0.1:{_closed_port()}/x"/></endpoint></call>'
        "<respond/></inSequence></target></proxy>"
    )
    return sfbulk_server(FLOW, generated)


@pytest.mark.parametrize("status", [200, 201, 400, 404, 500])
def test_respond_relays_backend_status_headers_and_body(flow_server, status):
    response = requests.get(
        flow_server.service_url("flow_relay"), headers={"X-Want-Status": str(status)}, timeout=10
    )
    assert response.status_code == status
    assert response.headers["X-Backend-Header"] == "from-backend"
    assert response.headers["Content-Type"].startswith("application/xml")
    assert etree.fromstring(response.content).findtext("status") == str(status)


def test_drop_answers_202_with_an_empty_body(flow_server):
    response = requests.post(
        flow_server.service_url("flow_drop"),
        data=b"<x>1</x>",
        headers={"Content-Type": "application/xml"},
        timeout=10,
    )
    assert response.status_code == 202
    assert response.content == b""


def test_on_error_sequence_answers_the_caller(flow_server):
    response = requests.post(
        flow_server.service_url("flow_onerror"),
        data=b"<x>1</x>",
        headers={"Content-Type": "application/xml"},
        timeout=10,
    )
    assert response.status_code == 503
    handled = etree.fromstring(response.content)
    assert handled.tag == "handled"
    assert handled.findtext("code") == "0"
    assert "noSuchSequence" in handled.findtext("message")


def test_unreachable_backend_is_a_fault_quickly_not_a_hang(flow_server):
    started = time.monotonic()
    response = requests.get(flow_server.service_url("flow_unreachable"), timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < 5
    assert response.status_code == 500
    fault = etree.fromstring(response.content)
    assert fault.findtext("code") == "101503"
    assert "Traceback" not in response.text
    assert requests.get(flow_server.url + "/health", timeout=5).status_code == 200


def test_a_folder_is_loaded_whole(flow_server):
    proxies = requests.get(flow_server.url + "/health", timeout=5).json()["proxies"]
    assert proxies == ["flow_drop", "flow_echo", "flow_onerror", "flow_relay", "flow_unreachable"]


def test_respond_without_call_echoes_the_request_body_but_not_its_headers(flow_server):
    response = requests.post(
        flow_server.service_url("flow_echo") + "/a?b=1",
        data=b"<x>1</x>",
        headers={"Content-Type": "application/xml", "X-Custom": "mine", "Authorization": "Bearer SECRET"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.content == b"<x>1</x>"
    assert "X-Custom" not in response.headers and "Authorization" not in response.headers  # docs/server.md
