"""HTTP front door: serve each proxy at ``/services/<name>`` and each REST API at its context, on
waitress (see ``sfbulk.server.serving``).

The WSGI application (``make_app``) turns an HTTP request into one ``engine.handle(...)`` call and
the engine's ``HttpResult`` back into the response (synapse.md §6). Everything that is the server's
own business lives here and never reaches the engine: the body size limit (413), routing (404),
allowed methods (405), the health and metrics endpoints (``/metrics``: ``sfbulk.server.metrics``),
the access log and the last-resort error handling (500 with a generic message; one log line, the
traceback only at DEBUG, never to the caller).

``start_server`` runs the app on waitress in a background thread and returns a handle whose
``stop()`` finishes in-flight requests before returning (graceful shutdown); the CLI wires it to
SIGTERM/SIGINT (``sfbulk.cli.serve``) and the test fixture uses it directly.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from sfbulk import xmlsafe
from sfbulk.errors import CodedError, PayloadError, SfBulkError, UnknownProxyError, bounded_traceback, clip
from sfbulk.faults import render_fault
from sfbulk.httpheaders import HOP_BY_HOP, SERVER_COMPUTED, name_from_environ_key, reason_phrase
from sfbulk.message.jsonxml import check_json_text
from sfbulk.secrets import install_log_redaction, redact
from sfbulk.server import metrics
from sfbulk.server.serving import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
    ServerLimits,
    ServingThread,
    build_server,
)

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.message.engine_view import ServedEngine
    from sfbulk.message.formatters import HttpResult

log = logging.getLogger("sfbulk.server.app")
access_log = logging.getLogger("sfbulk.access")

#: Default request body limit: 10 MiB, Salesforce's own batch file limit.
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_THREADS = 32
DEFAULT_PORT = 8280
#: Seconds `stop()` waits for in-flight requests (a Salesforce call may take a while).
DEFAULT_SHUTDOWN_TIMEOUT = 30

SERVICES_PREFIX = "/services/"
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
#: environ key of the route (sfbulk.server.metrics.Route) a request was dispatched to
ROUTE_KEY = "sfbulk.route"

#: Methods a proxy accepts. Synapse hands every standard method to the inSequence (synapse.md
#: §6.1); TRACE and CONNECT are proxy/diagnostic methods with no meaning for a mediation flow
#: (TRACE would echo request headers, tokens included), so they get 405 like any unknown method.
PROXY_METHODS: tuple[str, ...] = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")
HEALTH_METHODS: tuple[str, ...] = ("GET", "HEAD")

_READ_CHUNK = 64 * 1024
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_UNPRINTABLE_RE = re.compile(r"[^\x21-\x7e]")


@dataclass(frozen=True)
class Fault:
    """A response the server itself produces: status plus a short code and a human message."""

    status: int
    code: str
    message: str
    allow: tuple[str, ...] = ()


class _FaultResponse(Exception):
    def __init__(self, fault: Fault) -> None:
        super().__init__(fault.message)
        self.fault = fault


@dataclass
class _Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes | Iterable[bytes]


def proxy_names(engine: ServedEngine) -> list[str]:
    """The names of the proxies ``engine`` serves, sorted (for /health and the CLI banner)."""
    return sorted(engine.proxies)


def api_contexts(engine: ServedEngine) -> dict[str, str]:
    """API key -> the path it is served at (version included), sorted by key (for /health and the banner)."""
    apis = engine.apis
    return {key: apis[key].full_context for key in sorted(apis)}


def _routes_to_api(engine: ServedEngine, raw_path: str) -> bool:
    """MI's routing: ``/services/<proxy>`` goes to a deployed proxy; every other path to the REST APIs.

    A ``/services/...`` path that names no proxy still goes to the APIs when one is served under it.
    """
    if not engine.apis:
        return False
    if not raw_path.startswith(SERVICES_PREFIX):
        return True
    name = unquote(raw_path[len(SERVICES_PREFIX) :].partition("/")[0])
    if name and _serves(engine, name):
        return False
    return any(
        raw_path == c or raw_path.startswith(c.rstrip("/") + "/") for c in api_contexts(engine).values()
    )


def _serves(engine: ServedEngine, proxy: str) -> bool:
    return proxy in engine.proxies


def _payload_kind(content_type: str) -> str | None:
    base = content_type.split(";", 1)[0].strip().lower()
    if base in ("text/xml", "application/xml", "application/soap+xml") or base.endswith("+xml"):
        return "xml"
    if base == "application/json" or base.endswith("+json"):
        return "json"
    return None


def check_payload(content_type: str, body: bytes) -> None:
    """Reject a body declared as XML or JSON that is not well-formed, before any mediation.

    Uses the same hardened parser as the message context (``sfbulk.xmlsafe``: no DTD, no entity,
    bounded depth), so XXE and entity bombs are refused here, in microseconds, with a 400. Other
    content types (CSV, zip, text) are relayed as they are and never parsed by the server.
    """
    kind = _payload_kind(content_type)
    if kind == "xml":
        xmlsafe.parse(body, what="request body")
    elif kind == "json":
        try:
            check_json_text(body, json.loads(body))
        except RecursionError:
            raise PayloadError("request body is JSON nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            line, column = getattr(exc, "lineno", None), getattr(exc, "colno", None)
            where = f" (line {line}, column {column})" if line else ""
            raise PayloadError(f"request body is not valid JSON: {getattr(exc, 'msg', exc)}{where}") from None


def fault_response(fault: Fault, *, json_wanted: bool) -> _Response:
    """Render ``fault`` as the small XML (or JSON) document every server-made error uses (sfbulk.faults)."""
    rendered = render_fault(
        fault.code, fault.message, fault.status, document=True, json_wanted=json_wanted, allow=fault.allow
    )
    return _Response(rendered.status, rendered.reason, rendered.headers, rendered.body)


def _reason(status: int, reason: str | None) -> str:
    text = (reason or "").replace("\r", " ").replace("\n", " ").strip()
    if not text:
        text = reason_phrase(status)
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        text = text.encode("latin-1", "replace").decode("latin-1")
    return text


def _latin1(value: str) -> str:
    """A header value as PEP 3333 wants it: a latin-1 'bytes as str'; other text goes out as UTF-8."""
    try:
        value.encode("latin-1")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8").decode("latin-1")


def _wants_json(environ: Mapping[str, Any]) -> bool:
    content_type = str(environ.get("CONTENT_TYPE") or "").lower()
    if "json" in content_type:
        return True
    accept = str(environ.get("HTTP_ACCEPT") or "").lower()
    return "json" in accept and "xml" not in accept


def _log_path(raw_path: str) -> str:
    """The request path for the access log: raw (still %-encoded), no query, nothing unprintable."""
    return _UNPRINTABLE_RE.sub(lambda m: quote(m.group(0), safe=""), raw_path)[:512] or "/"


class ServicesApp:
    """The WSGI application serving ``/services/<proxy>`` and ``/health``."""

    def __init__(
        self,
        engine: ServedEngine,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        validate_payloads: bool = True,
    ) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        self.engine = engine
        self.max_body_bytes = max_body_bytes
        self.validate_payloads = validate_payloads
        install_log_redaction()
        metrics.services_deployed(proxy_names(engine), api_contexts(engine))
        self._routes: dict[tuple[str, str], metrics.Route] = {}

    # --- WSGI entry ----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        method = str(environ.get("REQUEST_METHOD") or "GET").upper()
        raw_uri = self._raw_uri(environ)
        raw_path = raw_uri.split("?", 1)[0]
        try:
            response = self._dispatch(environ, method, raw_uri, raw_path)
        except _FaultResponse as exc:
            response = fault_response(exc.fault, json_wanted=_wants_json(environ))
        except Exception as exc:  # the server stays up whatever happens; details go to the log only
            request_id = uuid.uuid4().hex[:12]
            log.error(
                "Unhandled error serving %s %s (request id %s): %s: %s; the traceback is logged at DEBUG level",
                method[:16],
                _log_path(raw_path),
                request_id,
                type(exc).__name__,
                clip(redact(str(exc)), 300),
            )
            log.debug("traceback of request %s:\n%s", request_id, bounded_traceback(exc, redact))
            response = fault_response(
                Fault(
                    500,
                    "InternalError",
                    f"Internal server error (request id {request_id}); see the server log.",
                ),
                json_wanted=_wants_json(environ),
            )
        return self._send(environ, start_response, method, raw_path, response, started)

    def _send(
        self,
        environ: Mapping[str, Any],
        start_response: Callable[..., Any],
        method: str,
        raw_path: str,
        response: _Response,
        started: float,
    ) -> Iterable[bytes]:
        headers: list[tuple[str, str]] = []
        for name, value in response.headers:
            name, value = str(name), str(value)
            if name.lower() in SERVER_COMPUTED or not _TOKEN_RE.match(name):
                continue
            if "\r" in value or "\n" in value:  # never let a relayed value split the header block
                value = value.replace("\r", " ").replace("\n", " ")
            headers.append((name, _latin1(value)))
        body = response.body
        chunks: Iterable[bytes]
        if isinstance(body, bytes | bytearray | memoryview):
            data = bytes(body)
            headers.append(("Content-Length", str(len(data))))
            chunks = [] if method == "HEAD" else [data]
        else:
            chunks = [] if method == "HEAD" else body
        start_response(f"{response.status} {_reason(response.status, response.reason)}", headers)
        client = str(environ.get("REMOTE_ADDR") or "-")
        route = environ.get(ROUTE_KEY)
        return _LoggedBody(chunks, client, method, _log_path(raw_path), response.status, started, route)

    # --- routing -------------------------------------------------------------------------------

    def _dispatch(self, environ: dict[str, Any], method: str, raw_uri: str, raw_path: str) -> _Response:
        # Read (bounded) first: an unread body would otherwise be drained by the server for
        # keep-alive, unbounded. Over-limit bodies fail here with 413 whatever the route.
        body = self._read_body(environ)
        if method == "CONNECT":  # a tunnel request (authority-form target): never served, whatever the path
            raise _FaultResponse(
                Fault(405, "MethodNotAllowed", "CONNECT is not allowed here.", PROXY_METHODS)
            )
        if raw_path == HEALTH_PATH:
            if method not in HEALTH_METHODS:
                raise _FaultResponse(
                    Fault(
                        405, "MethodNotAllowed", f"{method} is not allowed on {HEALTH_PATH}.", HEALTH_METHODS
                    )
                )
            return self._health()
        if raw_path == METRICS_PATH:
            if method not in HEALTH_METHODS:
                raise _FaultResponse(
                    Fault(
                        405, "MethodNotAllowed", f"{method} is not allowed on {METRICS_PATH}.", HEALTH_METHODS
                    )
                )
            return self._metrics(environ)
        if _routes_to_api(self.engine, raw_path):
            return self._call_api(environ, method, raw_uri, body)
        if not raw_path.startswith(SERVICES_PREFIX):
            raise _FaultResponse(
                Fault(404, "NotFound", "Nothing is served here: proxies are served at /services/<proxyName>.")
            )
        name_part, slash, rest = raw_path[len(SERVICES_PREFIX) :].partition("/")
        proxy = unquote(name_part)
        if not proxy:
            raise _FaultResponse(Fault(404, "NotFound", "No proxy name given: call /services/<proxyName>."))
        if method not in PROXY_METHODS:
            raise _FaultResponse(
                Fault(405, "MethodNotAllowed", f"{method} is not allowed on proxy services.", PROXY_METHODS)
            )
        query = raw_uri.partition("?")[2]
        postfix = (slash + rest) + (f"?{query}" if query else "")
        return self._call_engine(environ, method, proxy, raw_uri, postfix, body)

    def _call_engine(
        self, environ: dict[str, Any], method: str, proxy: str, raw_uri: str, postfix: str, body: bytes
    ) -> _Response:
        if _serves(self.engine, proxy):
            environ[ROUTE_KEY] = self._route(metrics.PROXY, proxy, "")
        if self.validate_payloads and body and _serves(self.engine, proxy):
            try:
                check_payload(str(environ.get("CONTENT_TYPE") or ""), body)
            except PayloadError as exc:
                raise _FaultResponse(Fault(400, "MalformedPayload", clip(redact(exc.message)))) from None
        try:
            result = self.engine.handle(
                proxy,
                method=method,
                uri=raw_uri,
                headers=self._request_headers(environ),
                body=body,
                rest_url_postfix=postfix,
            )
        except UnknownProxyError as exc:
            if exc.name != proxy:  # raised by mediation for another name: the engine's error, not a 404
                raise _engine_fault(exc, f"Proxy {clip(proxy, 200)}") from None
            raise _FaultResponse(
                Fault(
                    404, "NotFound", f"No proxy service named '{proxy}' is deployed; GET /health lists them."
                )
            ) from None
        except SfBulkError as exc:
            raise _engine_fault(exc, f"Proxy {clip(proxy, 200)}") from None
        return _engine_response(result)

    def _call_api(self, environ: dict[str, Any], method: str, raw_uri: str, body: bytes) -> _Response:
        """A request for a REST API: the resource MI would pick, or its 404/405 (sfbulk.mediators.api)."""
        from sfbulk.mediators.api import NoApiMatch

        engine = self.engine
        if method not in PROXY_METHODS:
            raise _FaultResponse(
                Fault(405, "MethodNotAllowed", f"{method} is not allowed on REST APIs.", PROXY_METHODS)
            )
        try:
            match = engine.api_match(method, raw_uri)
        except NoApiMatch as exc:
            code = "MethodNotAllowed" if exc.status == 405 else "NotFound"
            hint = "" if exc.status == 405 else "; GET /health lists the deployed APIs and their contexts"
            raise _FaultResponse(Fault(exc.status, code, f"{exc}{hint}.", exc.allow)) from None
        environ[ROUTE_KEY] = self._route(metrics.API, match.api.key, match.api.full_context)
        if self.validate_payloads and body:
            try:
                check_payload(str(environ.get("CONTENT_TYPE") or ""), body)
            except PayloadError as exc:
                raise _FaultResponse(Fault(400, "MalformedPayload", clip(redact(exc.message)))) from None
        try:
            result = engine.handle_api(
                method=method, uri=raw_uri, headers=self._request_headers(environ), body=body, match=match
            )
        except SfBulkError as exc:
            raise _engine_fault(exc, f"API {clip(match.api.key, 200)}") from None
        return _engine_response(result)

    def _route(self, service_type: str, name: str, context: str) -> metrics.Route:
        """The metrics route of a configured proxy or API (one object each, reused)."""
        key = (service_type, name)
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = metrics.Route(service_type, name, context)
        return route

    def _metrics(self, environ: Mapping[str, Any]) -> _Response:
        body, content_type = metrics.render(str(environ.get("HTTP_ACCEPT") or ""))
        return _Response(200, "OK", [("Content-Type", content_type), ("Cache-Control", "no-store")], body)

    def _health(self) -> _Response:
        payload: dict[str, Any] = {"status": "ok", "proxies": proxy_names(self.engine)}
        apis = api_contexts(self.engine)
        if apis:
            payload["apis"] = apis
        body = json.dumps(payload).encode("utf-8")
        return _Response(
            200, "OK", [("Content-Type", "application/json"), ("Cache-Control", "no-store")], body
        )

    # --- request pieces ------------------------------------------------------------------------

    @staticmethod
    def _raw_uri(environ: Mapping[str, Any]) -> str:
        """The request target as sent (%-encoded path + query): REST_URL_POSTFIX is built from it."""
        uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
        if isinstance(uri, str) and uri.startswith("/"):
            return uri
        path = str(environ.get("SCRIPT_NAME") or "") + str(environ.get("PATH_INFO") or "")
        path = quote(path.encode("latin-1").decode("utf-8", "replace"), safe="/%;:@&=+$,!~*'()-._") or "/"
        query = environ.get("QUERY_STRING")
        return f"{path}?{query}" if query else path

    @staticmethod
    def _request_headers(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
        headers: list[tuple[str, str]] = []
        for key, value in environ.items():
            name = name_from_environ_key(key)
            if name is None or not value or name.lower() in HOP_BY_HOP:
                continue  # not a header, empty, or describing this hop only (the body is de-chunked)
            # WSGI hands headers over as latin-1 'bytes as str'; undo that so UTF-8 survives.
            text = str(value)
            try:
                text = text.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
            headers.append((name, text))
        return headers

    def _read_body(self, environ: Mapping[str, Any]) -> bytes:
        """The request body, at most ``max_body_bytes`` (413 beyond), chunked bodies counted as read."""
        limit = self.max_body_bytes
        stream = environ.get("wsgi.input")
        raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
        chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING") or "").lower()
        too_large = Fault(
            413, "PayloadTooLarge", f"The request body exceeds the limit of {limit} bytes (--max-body-bytes)."
        )
        if raw_length and not chunked:
            if not raw_length.isdigit():
                raise _FaultResponse(Fault(400, "BadRequest", "The Content-Length header is not a number."))
            length = int(raw_length)
            if length > limit:
                raise _FaultResponse(
                    too_large
                )  # refused before reading a byte (the WSGI server usually refused it already)
            if length == 0 or stream is None:
                return b""
            parts: list[bytes] = []
            remaining = length
            while remaining > 0:
                chunk = stream.read(min(remaining, _READ_CHUNK))
                if not chunk:
                    raise _FaultResponse(
                        Fault(400, "BadRequest", "The request body ended before Content-Length bytes.")
                    )
                parts.append(chunk)
                remaining -= len(chunk)
            return b"".join(parts)
        if not chunked or stream is None:
            return b""
        parts = []
        total = 0
        while True:
            chunk = stream.read(_READ_CHUNK)
            if not chunk:
                return b"".join(parts)
            total += len(chunk)
            if total > limit:
                raise _FaultResponse(too_large)
            parts.append(chunk)


def _engine_fault(exc: SfBulkError, where: str) -> _FaultResponse:
    """The server's answer to an error the engine raised instead of answering (proxies and APIs alike).

    A payload the engine could not parse is the caller's 400; any other of our errors carries an
    actionable, secret-free message (redacted anyway, and clipped) with a request id for the log.
    """
    if isinstance(exc, PayloadError):
        message = clip(redact(exc.message or str(exc))) or "The request body could not be parsed."
        return _FaultResponse(Fault(400, "MalformedPayload", message))
    request_id = uuid.uuid4().hex[:12]
    message = clip(redact(str(exc)))
    log.warning("%s failed (request id %s): %s", where, request_id, message)
    code = str(exc.code if isinstance(exc, CodedError) and exc.code else type(exc).__name__)
    return _FaultResponse(Fault(500, code, f"{message} (request id {request_id})"))


def _engine_response(result: HttpResult) -> _Response:
    headers = [(str(name), str(value)) for name, value in result.headers]
    return _Response(result.status, result.reason, headers, result.body)


class _LoggedBody:
    """Response iterable that writes the access-log line once the body has gone out."""

    def __init__(
        self,
        chunks: Iterable[bytes],
        client: str,
        method: str,
        path: str,
        status: int,
        started: float,
        route: metrics.Route | None = None,
    ) -> None:
        self._route = route
        self._chunks = chunks
        self._sent = 0
        self._fields = (client, method, path, status)
        self._started = started
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._chunks, "close", None)
        if callable(close):
            close()
        client, method, path, status = self._fields
        elapsed = time.perf_counter() - self._started
        if self._route is not None:
            metrics.request_done(self._route, status, elapsed)
        access_log.info('%s "%s %s" %d %d %.1fms', client, method, path, status, self._sent, elapsed * 1000.0)


def make_app(
    engine: ServedEngine, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, validate_payloads: bool = True
) -> ServicesApp:
    """The WSGI application serving ``engine``'s proxies at ``/services/<name>`` (plus ``/health``).

    ``validate_payloads``: reject malformed XML/JSON bodies with 400 before mediation (default).
    """
    return ServicesApp(engine, max_body_bytes=max_body_bytes, validate_payloads=validate_payloads)


# --- serving on waitress --------------------------------------------------------------------------


def _render_fault(
    status: int, code: str, message: str, json_wanted: bool
) -> tuple[list[tuple[str, str]], bytes]:
    response = fault_response(Fault(status, code, message), json_wanted=json_wanted)
    return response.headers, bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""


def _log_access(client: str, method: str, path: str, status: int, sent: int, started: float) -> None:
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    access_log.info('%s "%s %s" %d %d %.1fms', client, method[:16], _log_path(path), status, sent, elapsed_ms)


class RunningServer:
    """A started server: ``url`` to call it, ``stop()`` to shut it down gracefully."""

    def __init__(self, serving: ServingThread, app: ServicesApp) -> None:
        self._serving = serving
        self.app = app
        self.engine = app.engine
        self.limits = serving.server.limits
        host, port = str(serving.server.effective_host), int(serving.server.effective_port)
        self.host: str = host
        self.port: int = port
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        self._stopped = False
        self._lock = threading.Lock()

    def service_url(self, proxy: str) -> str:
        return f"{self.url}{SERVICES_PREFIX}{quote(proxy, safe='')}"

    @property
    def running(self) -> bool:
        return self._serving.thread.is_alive()

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the shutdown timeout), then return."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._serving.stop()
        metrics.server_stopped(self.port)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    engine: ServedEngine,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    threads: int = DEFAULT_THREADS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    shutdown_timeout: int = DEFAULT_SHUTDOWN_TIMEOUT,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES,
    max_connections_per_client: int = 0,
    sock: socket.socket | None = None,
) -> RunningServer:
    """Bind ``host:port`` (0 = a free port) and serve ``engine`` on waitress from a background thread.

    ``sock``: serve on this already-listening socket instead (a ``--workers`` worker's inherited one).

    Returns once the socket listens; raises ``OSError`` when the address cannot be bound and
    ``ValueError`` for an impossible limit. The limits are described in ``sfbulk.server.serving``.
    """
    if threads < 1:
        raise ValueError("threads must be >= 1")
    limits = ServerLimits(
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_header_bytes=max_header_bytes,
        max_body_bytes=max_body_bytes,
        max_buffered_bytes=max(max_buffered_bytes, max_body_bytes),
        max_connections_per_client=max_connections_per_client,
    )
    app = make_app(engine, max_body_bytes=max_body_bytes)
    server = build_server(
        app,
        host=host,
        port=port,
        threads=threads,
        limits=limits,
        render_fault=_render_fault,
        log_access=_log_access,
        sock=sock,
    )
    running = RunningServer(ServingThread(server, float(shutdown_timeout)), app)
    metrics.server_started(running.port)
    return running


__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_PORT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
    "DEFAULT_THREADS",
    "PROXY_METHODS",
    "Fault",
    "RunningServer",
    "ServicesApp",
    "check_payload",
    "fault_response",
    "make_app",
    "api_contexts",
    "proxy_names",
    "start_server",
]
