"""The counting seam: lower layers report what happened; whoever exports metrics listens.

The transport, the token grant and the bulk pipeline sit below the server in the layer table, so
they cannot import ``sfbulk.server.metrics`` (nor should ``sfbulk load`` pay for importing
prometheus_client at start-up). They call the functions here instead; each is a few attribute
reads when nothing listens. The server installs a :class:`Sink` that feeds its Prometheus metrics
(``sfbulk.server.metrics``); the CLI reads :func:`last_api_usage` for its summaries.

What is reported:

* ``limit_info(url, header)``: a Salesforce answer's ``Sforce-Limit-Info: api-usage=25/15000``
  (every HTTP answer passes the transport); the last one per host is kept, for the CLI;
* ``grant_attempt(body, outcome)``: one try of an OAuth token grant, by grant type and outcome
  (``success``, ``failure``, ``retried``);
* ``batch_done(pipeline, state, processed, failed)``: a Bulk batch (or 2.0 job) that reached a
  final state in ``sfbulk load``/``extract`` or the Python API;
* ``operation_answer(operation, properties, content)``: a connector operation a message flow ran;
  a getBatchStatus (2.0: getJobInfo) answer showing a final state counts that batch once, under
  the pipeline ``flow``.

Label values are bounded here: grant types are mapped onto a fixed set and at most
:data:`MAX_HOSTS` Salesforce hosts are tracked, whatever a backend answers.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

#: Hosts whose API usage is tracked; answers from more hosts than this are not recorded.
MAX_HOSTS = 32

#: Answers this close together arrive in any order from parallel threads: a lower count among them
#: is an older answer, not a drop of Salesforce's rolling 24-hour count.
RACE_SECONDS = 2.0

#: OAuth grant_type values -> the label they are counted under (anything else: "other").
GRANT_TYPES = {
    "refresh_token": "refresh_token",
    "password": "password",
    "client_credentials": "client_credentials",
    "urn:ietf:params:oauth:grant-type:jwt-bearer": "jwt_bearer",
    "authorization_code": "authorization_code",
}

GRANT_OUTCOMES = ("success", "failure", "retried")

_API_USAGE = re.compile(r"(?:^|[;,\s])api-usage\s*=\s*(\d+)\s*/\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class ApiUsage:
    """Salesforce's count of API requests in the rolling 24 hours, as one answer reported it."""

    host: str
    used: int
    limit: int
    #: time.time() of the answer that carried it
    seen: float

    def describe(self) -> str:
        """``25 of 15,000 API requests used (0.2%) at host`` for the CLI summaries."""
        share = f" ({100.0 * self.used / self.limit:.1f}%)" if self.limit else ""
        return f"{self.used:,} of {self.limit:,} API requests used{share} at {self.host}"

    def as_json(self) -> dict[str, object]:
        return {"host": self.host, "used": self.used, "limit": self.limit}


class Sink(Protocol):
    """What a metrics exporter implements (``sfbulk.server.metrics`` does, on Prometheus)."""

    def api_usage(self, usage: ApiUsage) -> None: ...

    def grant(self, grant_type: str, outcome: str) -> None: ...

    def batch(self, pipeline: str, outcome: str, processed: int, failed: int) -> None: ...


_sink: Sink | None = None
_usage: dict[str, ApiUsage] = {}
_last: ApiUsage | None = None
_lock = threading.Lock()


def install(sink: Sink | None) -> None:
    """Send every later report to ``sink`` as well (None: stop); one sink per process."""
    global _sink
    _sink = sink


def parse_limit_info(header: str) -> tuple[int, int] | None:
    """``api-usage=25/15000; per-app-api-usage=...`` -> (25, 15000); None when it has no api-usage."""
    match = _API_USAGE.search(header)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def limit_info(url: str, header: str | None) -> None:
    """Record the ``Sforce-Limit-Info`` header of an answer from ``url`` (None: the answer had none)."""
    global _last
    if not header:
        return
    parsed = parse_limit_info(header)
    if parsed is None:
        return
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return
    usage = ApiUsage(host, parsed[0], parsed[1], time.time())
    with _lock:
        known = _usage.get(host)
        if known is None and len(_usage) >= MAX_HOSTS:
            return  # bounded: a flow calling many hosts must not grow the metrics without end
        if known is not None and usage.used < known.used and usage.seen - known.seen < RACE_SECONDS:
            return  # an answer overtaken by a later one on another thread (the count only grows meanwhile)
        _usage[host] = usage
        _last = usage
    sink = _sink
    if sink is not None:
        sink.api_usage(usage)


def last_api_usage() -> ApiUsage | None:
    """The most recent API usage any answer in this process reported (for the CLI summaries)."""
    return _last


def api_usage_by_host() -> dict[str, ApiUsage]:
    """The last API usage seen per host."""
    with _lock:
        return dict(_usage)


def grant_type_of(body: object) -> str | None:
    """The counted grant type of a token request's form body (None: not a token grant)."""
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    if not isinstance(body, bytes) or b"grant_type=" not in body:
        return None
    for key, value in parse_qsl(body.decode("ascii", "replace")):
        if key == "grant_type":
            return GRANT_TYPES.get(value, "other")
    return None


def grant_attempt(body: object, outcome: str) -> None:
    """Count one try of a token grant whose form body is ``body`` (not a grant: nothing counted)."""
    sink = _sink
    if sink is None:
        return
    grant_type = grant_type_of(body)
    if grant_type is not None:
        sink.grant(grant_type, outcome)


#: final batch states -> the outcome label
BATCH_OUTCOMES = {"Completed": "processed", "JobComplete": "processed", "Failed": "failed"}


def batch_done(pipeline: str, state: str, processed: int, failed: int) -> None:
    """Count a batch (or 2.0 job) of ``pipeline`` (``load``/``extract``) that reached ``state``.

    ``processed``/``failed`` are Salesforce's numberRecordsProcessed/numberRecordsFailed
    (processed includes the failed rows, as Salesforce counts them).
    """
    sink = _sink
    if sink is not None:
        sink.batch(pipeline, BATCH_OUTCOMES.get(state, "not_processed"), processed, failed)


#: connector operations whose answer is the status of one batch (2.0: one job) -> its id property
STATUS_OPERATIONS = {"getBatchStatus": "batchId", "getJobInfo": "jobId"}
FINAL_STATES = frozenset({"Completed", "Failed", "Not Processed", "JobComplete", "Aborted"})
#: batch ids already counted from flows (a flow polls a batch until it is final, then maybe again)
MAX_SEEN_BATCHES = 10_000
_seen_batches: OrderedDict[str, None] = OrderedDict()


def _count(value: object) -> int:
    try:
        return max(0, int(str(value)))
    except ValueError:
        return 0


def operation_answer(operation: str, properties: Mapping[str, str], content: Callable[[], bytes]) -> None:
    """A message flow ran connector ``operation``; count the batch its answer shows final, once.

    ``properties`` are the values the operation extracted (state, numberRecordsProcessed, ...);
    ``content`` reads the answer's body, for the counts a 2.0 job answer carries but does not extract.
    """
    id_property = STATUS_OPERATIONS.get(operation)
    if id_property is None or _sink is None:
        return
    state, batch_id = properties.get("state"), properties.get(id_property)
    if state not in FINAL_STATES or not batch_id:
        return
    with _lock:
        if batch_id in _seen_batches:
            return
        _seen_batches[batch_id] = None
        if len(_seen_batches) > MAX_SEEN_BATCHES:
            _seen_batches.popitem(last=False)
    numbers: Mapping[str, object] = properties
    if "numberRecordsProcessed" not in properties:
        try:
            answer = json.loads(content())
        except Exception:  # noqa: BLE001 - not JSON, or not readable: counting never fails a flow
            answer = None
        numbers = answer if isinstance(answer, dict) else {}
    batch_done(
        "flow",
        state,
        _count(numbers.get("numberRecordsProcessed", 0)),
        _count(numbers.get("numberRecordsFailed", 0)),
    )


def reset() -> None:
    """Forget the API usage and the batches seen (a new CLI run; tests)."""
    global _last
    with _lock:
        _usage.clear()
        _seen_batches.clear()
        _last = None


__all__ = [
    "ApiUsage",
    "BATCH_OUTCOMES",
    "GRANT_OUTCOMES",
    "GRANT_TYPES",
    "MAX_HOSTS",
    "Sink",
    "api_usage_by_host",
    "batch_done",
    "grant_attempt",
    "grant_type_of",
    "install",
    "operation_answer",
    "last_api_usage",
    "limit_info",
    "parse_limit_info",
    "reset",
]
