"""`GET /metrics` of a real `sfbulk serve` process: WSO2 MI's names, labels and values, and sfbulk's own.

Each test starts its own `sfbulk serve` (a fresh process: the counters start at zero, so the values
are exact) with the seed proxy, the WSO2 connector's REST API example and a fresh emulator, sends
requests, and scrapes /metrics as Prometheus would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from sfbulk.server.metrics import LATENCY_BUCKETS, MULTIPROC_ENV

REPO = Path(__file__).resolve().parents[2]
SYNAPSE = REPO / "examples" / "synapse"
SEED = "salesforcebulk_createJob"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> tuple[Samples, dict[str, str], requests.Response]:
    """/metrics as samples {(name, labels): value}, the type of each family, and the response."""
    response = requests.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types, response


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def came_up_recently(seconds: float | None) -> bool:
    """MI's *_up gauges hold the time the server or service came up (setToCurrentTime), not 1."""
    return seconds is not None and time.time() - 3600 < seconds <= time.time() + 1


def named(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


class Serve:
    """A `sfbulk serve` process on a free port."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sfbulk", "serve", *args, "--port", "0"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first.startswith("sfbulk serving at "):
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            pytest.fail(f"sfbulk serve did not start: {first!r} {err}")
        self.url = first.split(" at ", 1)[1].split("/services/", 1)[0].strip()
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)
        self.proc.communicate(timeout=10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[Serve] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Serve:
        server = Serve(*args, cwd=tmp_path, env=env)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def create_job_xml(emu: Any, **overrides: str) -> bytes:
    creds = emu.credentials
    fields = {
        "apiVersion": "34.0",
        "accessToken": "",
        "apiUrl": emu.base_url,
        "refreshToken": creds["refresh_token"],
        "clientId": creds["client_id"],
        "clientSecret": creds["client_secret"],
        "intervalTime": "1000000",
        "registryPath": "connectors/SalesforceBulk",
        "operation": "insert",
        "contentType": "CSV",
        "object": "Contact",
        **overrides,
    }
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f"<createJob>{inner}</createJob>".encode()


def api_usage_sent_so_far(emu: Any) -> int:
    """How many API requests the emulator has counted: one direct call reads its Sforce-Limit-Info."""
    answer = requests.get(f"{emu.base_url}/services/async/62.0/job/750000000000000AAA", timeout=10)
    used, limit = answer.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/")
    assert int(limit) == 15000
    return int(used) - 1  # this call was counted too


def test_proxy_and_api_requests_are_counted_under_mi_names(serve: Any, emulator_factory: Any, tmp_path: Path):
    emu = emulator_factory()
    server = serve(str(SYNAPSE), "--registry", str(tmp_path / "reg"), "--token-endpoint", emu.base_url)
    seed = f"{server.url}/services/{SEED}"
    xml = {"Content-Type": "text/xml"}
    for _ in range(2):
        ok = requests.post(seed, data=create_job_xml(emu), headers=xml, timeout=30)
        assert ok.status_code == 201, ok.text
        assert ok.headers["Sforce-Limit-Info"].startswith("api-usage=")  # relayed from the backend
    refused = requests.post(seed, data=create_job_xml(emu, clientSecret="wrong"), headers=xml, timeout=30)
    assert refused.status_code == 500, (
        refused.text
    )  # the seed's faultHandlerSeq answers the grant's AuthError
    malformed = requests.post(seed, data=b"<createJob>", headers=xml, timeout=30)
    assert malformed.status_code == 400
    job = json.loads((SYNAPSE / "api" / "createJob.json").read_text())
    job.update(apiUrl=emu.base_url)
    created = requests.post(f"{server.url}/salesforcebulk/createJob", json=job, timeout=30)
    assert created.status_code == 201, created.text
    # never counted: unknown names, raw paths, the server's own endpoints
    for path in ("/services/nope", "/services/%00evil", "/salesforcebulkX/createJob", "/health"):
        requests.get(server.url + path, timeout=10)
    used = api_usage_sent_so_far(emu)

    samples, types, response = scrape(server.url)
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    proxy = {"service_name": SEED, "service_type": "proxy"}
    assert value(samples, "wso2_integration_proxy_request_count_total", **proxy) == 4
    assert value(samples, "wso2_integration_proxy_request_count_error_total", **proxy) == 1
    assert value(samples, "wso2_integration_proxy_latency_seconds_count", **proxy) == 4
    assert 0 < value(samples, "wso2_integration_proxy_latency_seconds_sum", **proxy) < 60  # type: ignore[operator]
    buckets = {
        dict(labels)["le"] for labels in named(samples, "wso2_integration_proxy_latency_seconds_bucket")
    }
    assert buckets == {str(b) for b in LATENCY_BUCKETS} | {"+Inf"}
    api = {"service_name": "salesforcebulk", "service_type": "api", "invocation_url": "/salesforcebulk"}
    assert value(samples, "wso2_integration_api_request_count_total", **api) == 1
    assert value(samples, "wso2_integration_api_request_count_error_total", **api) == 0
    assert value(samples, "wso2_integration_api_latency_seconds_count", **api) == 1
    assert (
        types["wso2_integration_proxy_latency_seconds"]
        == types["wso2_integration_api_latency_seconds"]
        == "histogram"
    )
    # only configured names ever become label values
    names = {
        dict(labels)["service_name"]
        for labels in named(samples, "wso2_integration_proxy_request_count_total")
    }
    assert names == {SEED}
    assert len(named(samples, "wso2_integration_api_request_count_total")) == 1

    (up,) = named(samples, "wso2_integration_server_up").items()
    labels = dict(up[0])
    assert came_up_recently(up[1]) and labels["port"] == str(server.port) and labels["host"]
    assert labels["javaHome"] == sys.executable and labels["javaVersion"] == ".".join(
        map(str, sys.version_info[:3])
    )
    services = {
        (dict(k)["service_name"], dict(k)["service_type"]): came_up_recently(v)
        for k, v in named(samples, "wso2_integration_service_up").items()
    }
    assert services == {
        (SEED, "proxy"): True,
        ("salesforcebulk_dispatcher", "proxy"): True,
        ("salesforcebulk", "api"): True,
    }

    # sfbulk's own: one refresh grant made the token every later call reused; the wrong secret's one try failed
    assert named(samples, "sfbulk_token_grants_total") == {
        frozenset({("grant_type", "refresh_token"), ("outcome", "success")}): 1,
        frozenset({("grant_type", "refresh_token"), ("outcome", "failure")}): 1,
    }
    assert value(samples, "sfbulk_salesforce_api_requests_used", host="127.0.0.1") == used
    assert value(samples, "sfbulk_salesforce_api_requests_limit", host="127.0.0.1") == 15000
    assert used >= 3  # the two createJob calls of the proxy and the API's


def test_openmetrics_is_served_to_a_scraper_asking_for_it(serve: Any, tmp_path: Path) -> None:
    server = serve(str(SYNAPSE), "--registry", str(tmp_path / "reg"))
    response = requests.get(
        f"{server.url}/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    assert "wso2_integration_server_up{" in response.text
    head = requests.head(f"{server.url}/metrics", timeout=10)
    assert head.status_code == 200 and head.content == b""
    post = requests.post(f"{server.url}/metrics", data=b"x", timeout=10)
    assert post.status_code == 405 and post.headers["Allow"] == "GET, HEAD"


@pytest.mark.slow
def test_workers_sharing_a_folder_are_added_up(
    serve: Any, emulator_factory: Any, tmp_path: Path, monkeypatch
):
    """Two processes counting into one PROMETHEUS_MULTIPROC_DIR (what `serve --workers` sets up):
    /metrics of either shows the sum; a worker that ended keeps its counts but not its server_up."""
    from sfbulk.server import metrics

    emu = emulator_factory()
    shared = tmp_path / "metrics"
    shared.mkdir()
    env = {MULTIPROC_ENV: str(shared)}
    args = (str(SYNAPSE), "--registry", str(tmp_path / "reg"), "--token-endpoint", emu.base_url)
    first, second = serve(*args, env=env), serve(*args, env=env)
    for server, times in ((first, 2), (second, 3)):
        for _ in range(times):
            ok = requests.post(
                f"{server.url}/services/{SEED}",
                data=create_job_xml(emu),
                headers={"Content-Type": "text/xml"},
                timeout=30,
            )
            assert ok.status_code == 201, ok.text
    proxy = {"service_name": SEED, "service_type": "proxy"}
    for server in (first, second):
        samples, _, _ = scrape(server.url)
        assert value(samples, "wso2_integration_proxy_request_count_total", **proxy) == 5
        assert value(samples, "wso2_integration_proxy_latency_seconds_count", **proxy) == 5
        ports = {
            dict(labels)["port"]: came_up_recently(v)
            for labels, v in named(samples, "wso2_integration_server_up").items()
        }
        assert ports == {str(first.port): True, str(second.port): True}
        assert came_up_recently(value(samples, "wso2_integration_service_up", **proxy))
        # both processes share one registry: at most one grant each, at least one in all
        grants = value(samples, "sfbulk_token_grants_total", grant_type="refresh_token", outcome="success")
        assert grants is not None and 1 <= grants <= 2
        assert value(samples, "sfbulk_salesforce_api_requests_limit", host="127.0.0.1") == 15000

    pid = second.proc.pid
    second.stop()
    monkeypatch.setenv(MULTIPROC_ENV, str(shared))
    metrics.worker_exited(pid)  # what the supervisor does when a worker ends
    samples, _, _ = scrape(first.url)
    assert value(samples, "wso2_integration_proxy_request_count_total", **proxy) == 5  # its counts stay
    ports = {dict(labels)["port"] for labels in named(samples, "wso2_integration_server_up")}
    assert ports == {str(first.port)}


FORKED_WORKERS = r"""
import json, os, sys
from sfbulk.server import metrics

metrics.enable()  # built before the supervisor prepares: prepare_multiprocess must start them afresh
metrics.request_done(metrics.Route("proxy", "before"), 200, 0.1)
metrics.prepare_multiprocess(sys.argv[1])
metrics.services_deployed(["p"], {})  # built again in the supervisor, then inherited by the forked workers
children = []
for n in (1, 2):
    pid = os.fork()
    if pid == 0:
        metrics.server_started(9000 + n)
        for _ in range(n * 10):
            metrics.request_done(metrics.Route("proxy", "p"), 200, 0.3)
        metrics.request_done(metrics.Route("api", "a", "/a"), 502, 2.0)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
before_exit, _ = metrics.render(None)
for pid in children:
    metrics.worker_exited(pid)
after_exit, _ = metrics.render(None)
print(json.dumps([before_exit.decode(), after_exit.decode()]))
"""


def test_forked_workers_after_prepare_multiprocess_count_into_one_total(tmp_path: Path) -> None:
    shared = tmp_path / "m"
    shared.mkdir()
    (shared / "counter_999999.db").write_bytes(b"stale counts of an earlier run")
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    done = subprocess.run(
        [sys.executable, "-c", FORKED_WORKERS, str(shared)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    before_exit, after_exit = json.loads(done.stdout)

    def parse(text: str) -> Samples:
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    for text in (before_exit, after_exit):
        samples = parse(text)
        proxy = {"service_name": "p", "service_type": "proxy"}
        assert value(samples, "wso2_integration_proxy_request_count_total", **proxy) == 30
        assert value(samples, "wso2_integration_proxy_latency_seconds_bucket", le="0.3", **proxy) == 30
        assert value(samples, "wso2_integration_proxy_latency_seconds_bucket", le="0.25", **proxy) == 0
        api = {"service_name": "a", "service_type": "api", "invocation_url": "/a"}
        assert value(samples, "wso2_integration_api_request_count_error_total", **api) == 2
        # the count made before prepare_multiprocess (and the stale file) are not in the total
        assert (
            value(
                samples,
                "wso2_integration_proxy_request_count_total",
                service_name="before",
                service_type="proxy",
            )
            is None
        )
    assert {dict(k)["port"] for k in named(parse(before_exit), "wso2_integration_server_up")} == {
        "9001",
        "9002",
    }
    assert named(parse(after_exit), "wso2_integration_server_up") == {}
    # the supervisor's own gauge (it is alive) outlives the workers'
    assert came_up_recently(
        value(parse(after_exit), "wso2_integration_service_up", service_name="p", service_type="proxy")
    )
