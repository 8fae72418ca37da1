"""Prometheus metrics of ``sfbulk serve`` under WSO2 MI's names, so MI's dashboards work unchanged.

MI's Prometheus handler (``org.wso2.micro.integrator.observability.metric.handler.prometheus``)
exports per proxy and per API a request counter, an error counter and a latency histogram, plus
``wso2_integration_server_up`` and ``wso2_integration_service_up``; the same names, label names
and histogram buckets are used here (docs/server.md, "Metrics", lists them). sfbulk adds its own,
prefixed ``sfbulk_``: token grants, Salesforce API usage (``Sforce-Limit-Info``) and Bulk batches,
fed through the ``sfbulk.observe`` seam by the layers below the server.

Cardinality is bounded by construction: ``service_name`` and ``invocation_url`` only ever hold the
name and context of a configured proxy or API (a request for an unknown path is not counted), never
a value taken from a request.

With ``serve --workers N`` every worker counts into files of one folder (prometheus_client's
multiprocess mode): the pre-fork supervisor calls :func:`prepare_multiprocess` before forking and
:func:`worker_exited` when a worker ends, and ``/metrics`` in any worker adds up all of them.

prometheus_client is imported on first use, not with this module, so that importing the server
costs nothing for the commands that never serve.
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sfbulk import observe

#: prometheus_client's switch to multiprocess mode: the folder every process counts into.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Latency buckets in seconds: WSO2 MI's defaults for proxies and APIs (PrometheusReporter).
LATENCY_BUCKETS: tuple[float, ...] = (0.19, 0.20, 0.25, 0.30, 0.35, 0.40, 0.50, 0.60, 1.0, 5.0)

#: A status at or above this counts as an error (a fault; a backend's 4xx relayed is an answer).
ERROR_STATUS = 500

PROXY = "proxy"
API = "api"


@dataclass(frozen=True)
class Route:
    """What a request was served by: a configured proxy or API (the only label values used)."""

    service_type: str
    service_name: str
    #: the API's context (MI's invocation_url label); empty for proxies
    invocation_url: str = ""


class _Metrics:
    """The metric objects, built once per process (after the multiprocess mode is known)."""

    def __init__(self) -> None:
        import prometheus_client
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call] # MI has no *_created
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        service = ["service_name", "service_type"]
        api = ["service_name", "service_type", "invocation_url"]
        self.proxy_requests = Counter(
            "wso2_integration_proxy_request_count", "Total number of requests to a proxy service.", service,
            registry=r,
        )  # fmt: skip
        self.proxy_errors = Counter(
            "wso2_integration_proxy_request_count_error",
            "Total number of requests to a proxy service that ended in an error.",
            service,
            registry=r,
        )
        self.proxy_latency = Histogram(
            "wso2_integration_proxy_latency_seconds",
            "Latency of requests to a proxy service.",
            service,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.api_requests = Counter(
            "wso2_integration_api_request_count", "Total number of requests to an API.", api, registry=r
        )
        self.api_errors = Counter(
            "wso2_integration_api_request_count_error",
            "Total number of requests to an API that ended in an error.",
            api,
            registry=r,
        )
        self.api_latency = Histogram(
            "wso2_integration_api_latency_seconds",
            "Latency of requests to an API.",
            api,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.server_up = Gauge(
            "wso2_integration_server_up",
            "When the server came up, in Unix seconds, as MI sets it (javaHome/javaVersion: the Python executable and version).",
            ["host", "port", "javaHome", "javaVersion"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.service_up = Gauge(
            "wso2_integration_service_up",
            "When each deployed proxy service and API came up, in Unix seconds, as MI sets it.",
            service,
            registry=r,
            multiprocess_mode="livemax",
        )
        self.grants = Counter(
            "sfbulk_token_grants",
            "OAuth token grant attempts by grant type and outcome (success, failure, retried).",
            ["grant_type", "outcome"],
            registry=r,
        )
        self.api_used = Gauge(
            "sfbulk_salesforce_api_requests_used",
            "Salesforce API requests used in the last 24 hours (Sforce-Limit-Info api-usage).",
            ["host"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.api_limit = Gauge(
            "sfbulk_salesforce_api_requests_limit",
            "Salesforce API requests allowed per 24 hours (Sforce-Limit-Info api-usage).",
            ["host"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.batches = Counter(
            "sfbulk_bulk_batches",
            "Bulk batches (Bulk API 2.0: jobs) that reached a final state, by outcome.",
            ["pipeline", "outcome"],
            registry=r,
        )
        self.rows = Counter(
            "sfbulk_bulk_rows",
            "Rows of finished Bulk batches: processed (failed ones included, as Salesforce counts) and failed.",
            ["pipeline", "outcome"],
            registry=r,
        )
        #: route -> (requests, errors, latency) children, so a request costs no label lookup
        self._children: dict[Route, tuple[Any, Any, Any]] = {}
        self._lock = threading.Lock()

    def children(self, route: Route) -> tuple[Any, Any, Any]:
        found = self._children.get(route)
        if found is not None:
            return found
        with self._lock:
            if route.service_type == API:
                labels: tuple[str, ...] = (route.service_name, API, route.invocation_url)
                family = (self.api_requests, self.api_errors, self.api_latency)
            else:
                labels = (route.service_name, PROXY)
                family = (self.proxy_requests, self.proxy_errors, self.proxy_latency)
            found = (family[0].labels(*labels), family[1].labels(*labels), family[2].labels(*labels))
            self._children[route] = found
        return found


class _Sink:
    """Feeds the reports of the lower layers (``sfbulk.observe``) into the metrics."""

    def __init__(self, metrics: _Metrics) -> None:
        self.metrics = metrics

    def api_usage(self, usage: observe.ApiUsage) -> None:
        self.metrics.api_used.labels(usage.host).set(usage.used)
        self.metrics.api_limit.labels(usage.host).set(usage.limit)

    def grant(self, grant_type: str, outcome: str) -> None:
        self.metrics.grants.labels(grant_type, outcome).inc()

    def batch(self, pipeline: str, outcome: str, processed: int, failed: int) -> None:
        m = self.metrics
        m.batches.labels(pipeline, outcome).inc()
        if processed:
            m.rows.labels(pipeline, "processed").inc(processed)
        if failed:
            m.rows.labels(pipeline, "failed").inc(failed)


_metrics: _Metrics | None = None
_build_lock = threading.Lock()


def _get() -> _Metrics:
    global _metrics
    metrics = _metrics
    if metrics is None:
        with _build_lock:
            if _metrics is None:
                _metrics = _Metrics()
                observe.install(_Sink(_metrics))
            metrics = _metrics
    return metrics


def enable() -> None:
    """Build the metrics (once per process) and start taking the lower layers' reports."""
    _get()


def multiprocess_dir() -> str | None:
    """The folder all workers count into, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess(directory: str | os.PathLike[str]) -> None:
    """Before forking workers: make them count into ``directory`` (created; old counts removed).

    Called by the pre-fork supervisor. Metrics built earlier in this process are dropped, so that
    the workers build theirs on prometheus_client's multiprocess values.
    """
    global _metrics
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in path.glob("*.db"):  # counts of an earlier run would be added to this one's
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    from prometheus_client import values

    # prometheus_client picks its value class at import; pick again, from the variable just set
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    with _build_lock:
        _metrics = None
        observe.install(None)


def worker_exited(pid: int) -> None:
    """A worker ended: drop its live gauges (server_up, service_up); its counts stay in the total."""
    directory = multiprocess_dir()
    if directory is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def request_done(route: Route, status: int, seconds: float) -> None:
    """Count one request served by ``route`` with ``status``, ``seconds`` from arrival to last byte."""
    requests, errors, latency = _get().children(route)
    requests.inc()
    if status >= ERROR_STATUS:
        errors.inc()
    latency.observe(seconds)


def services_deployed(proxies: list[str], apis: dict[str, str]) -> None:
    """``wso2_integration_service_up`` for each proxy name and API key deployed: the time it came up
    (MI's PrometheusReporter calls setToCurrentTime; dashboards compute uptimes from it)."""
    metrics = _get()
    for name in proxies:
        metrics.service_up.labels(name, PROXY).set_to_current_time()
    for key in apis:
        metrics.service_up.labels(key, API).set_to_current_time()


def _server_labels(port: int) -> tuple[str, str, str, str]:
    return socket.gethostname(), str(port), sys.executable, platform.python_version()


def server_started(port: int) -> None:
    """``wso2_integration_server_up`` for this host and port: the time it came up, as in MI."""
    _get().server_up.labels(*_server_labels(port)).set_to_current_time()


def server_stopped(port: int) -> None:
    _get().server_up.labels(*_server_labels(port)).set(0)


def render(accept: str | None) -> tuple[bytes, str]:
    """The exposition (Prometheus text, or OpenMetrics when ``accept`` asks for it) and its content type.

    In multiprocess mode the values of every worker, alive or gone, are added up (gauges: the
    live workers' maximum, or the most recent API usage).
    """
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    metrics = _get()
    registry = metrics.registry
    directory = multiprocess_dir()
    if directory is not None:
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


__all__ = [
    "API",
    "ERROR_STATUS",
    "LATENCY_BUCKETS",
    "MULTIPROC_ENV",
    "PROXY",
    "Route",
    "enable",
    "multiprocess_dir",
    "prepare_multiprocess",
    "render",
    "request_done",
    "server_started",
    "server_stopped",
    "services_deployed",
    "worker_exited",
]
