"""HTTP client layer: one request/response shape for every caller, two ways to send it.

``RequestsTransport`` pools one ``requests.Session`` (keep-alive, TLS verification always on,
timeouts honoured) and turns failures below HTTP, by exception type in one table, into
``TransportError``s carrying Synapse's codes: ``ConnectError`` (101503), ``TransportTimeout``
(101504), ``ConnectionClosedError`` (101505). Their messages name the host, never a header or
body, so no token can leak through them. ``WSGITransport`` answers from a
WSGI app in-process, which lets benchmarks measure our overhead without sockets.

Debug logs carry method, URL path, status and elapsed time only.

Two policies live here because every outbound call passes this layer:

* ``HostPolicy``, the outbound host allow-list (issue 11): URLs that came from a caller (apiUrl,
  tokenEndpointHostname, an instance_url a token endpoint returned, a dynamic uri-template) are
  checked against it before any connection. A transport carries the engine-wide policy in
  ``host_policy`` (None: no check, the Python API's default); callers check, since only they know
  whether a URL was written by the operator or taken from a message.
* ``send_with_retry``: capped exponential backoff for requests that are safe to repeat (the OAuth
  token grant), on connection failures and 408/429/5xx, with the Bulk API calls' numbers.

Both report to ``sfbulk.observe``: every answer's ``Sforce-Limit-Info`` (API usage), and each try
of a token grant sent through ``send_with_retry`` by grant type and outcome.
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import logging
import random
import re
import socket
import ssl
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Union
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.structures import CaseInsensitiveDict

from sfbulk import observe
from sfbulk.errors import (
    ConnectError,
    ConnectionClosedError,
    ParameterError,
    TransportError,
    TransportTimeout,
)
from sfbulk.httpheaders import environ_key

log = logging.getLogger("sfbulk.transport")

#: Request bodies: bytes/str, a binary file object, an iterator of bytes (streamed), or None.
Body = Union[bytes, str, IO[bytes], Iterable[bytes], None]  # noqa: UP007 - runtime alias

DEFAULT_TIMEOUT = 60.0
CHUNK_SIZE = 64 * 1024


@dataclass
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Body = None
    timeout: float = DEFAULT_TIMEOUT
    stream: bool = False
    #: CA bundle path for this request (e.g. init's caFile); None → the transport's own setting
    verify: str | None = None


class HttpResponse:
    """Status, reason, case-insensitive headers and a body that is either read or streamable.

    With ``stream=False`` the body is read before ``send`` returns (``content``). With
    ``stream=True`` nothing is read: iterate ``iter_content()`` (or read ``content`` once) and
    ``close()`` to give the connection back to the pool.
    """

    def __init__(
        self,
        status: int,
        reason: str,
        headers: Mapping[str, str],
        content: bytes | None = None,
        *,
        chunks: Iterator[bytes] | None = None,
        closer: Callable[[], None] | None = None,
        url: str = "",
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(headers)
        self.url = url
        self._content = content
        self._chunks = chunks
        self._closer = closer
        self._consumed = content is not None

    @property
    def content(self) -> bytes:
        if self._content is None:
            if self._consumed:
                raise TransportError("the streamed response body was already consumed by iter_content()")
            self._content = b"".join(self.iter_content())
            self._consumed = True
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode(self.charset or "utf-8", errors="replace")

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def charset(self) -> str | None:
        for part in self.content_type.split(";")[1:]:
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                return value.strip('"')
        return None

    def iter_content(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        if self._content is not None:
            for start in range(0, len(self._content), chunk_size):
                yield self._content[start : start + chunk_size]
            return
        if self._consumed or self._chunks is None:
            raise TransportError("the streamed response body was already consumed")
        self._consumed = True
        try:
            yield from self._chunks
        finally:
            self.close()

    def close(self) -> None:
        closer, self._closer = self._closer, None
        if closer is not None:
            closer()

    def __enter__(self) -> HttpResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<HttpResponse {self.status} {self.reason}>"


class Transport(ABC):
    #: The outbound allow-list for URLs taken from messages; None = no check (see HostPolicy).
    host_policy: HostPolicy | None = None

    @abstractmethod
    def send(self, request: HttpRequest) -> HttpResponse:
        """Send one request; HTTP error statuses are responses, failures below HTTP raise."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release pooled connections."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _host(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] or url


def _path(url: str) -> str:
    return urlsplit(url).path or "/"


def _stream_body(body: Body) -> Any:
    """What requests should send: bytes as is, str as UTF-8, files and iterators streamed."""
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if hasattr(body, "read"):
        return _FileChunks(body)  # type: ignore[arg-type]
    return iter(body)


class _FileChunks:
    """Iterate a file in chunks so requests streams it (chunked) instead of reading it whole."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle

    def __iter__(self) -> Iterator[bytes]:
        while True:
            chunk = self.handle.read(CHUNK_SIZE)
            if not chunk:
                return
            yield chunk if isinstance(chunk, bytes) else chunk.encode("utf-8")


#: What a failure below HTTP means, by exception *type* (as httpx's ``map_exceptions`` maps httpcore's):
#: the first row with a type matching the raised exception, or one it wraps (requests wraps urllib3,
#: which wraps http.client and socket errors, in args, ``reason``, cause and context), wins. Rows go
#: from the most telling cause to the least: a refused connection wrapped in a retry error is
#: "cannot connect" even though urllib3 files NewConnectionError under ConnectTimeoutError.
_EXCEPTION_MAP: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError), "undecodable"),
    ((requests.exceptions.SSLError, urllib3.exceptions.SSLError, ssl.SSLError), "tls"),
    ((requests.exceptions.InvalidURL, urllib3.exceptions.LocationParseError), "invalid-url"),
    ((urllib3.exceptions.NewConnectionError, ConnectionRefusedError, socket.gaierror), "unreachable"),
    ((requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError), "timeout"),
    (
        (
            http.client.RemoteDisconnected,
            http.client.IncompleteRead,
            ConnectionResetError,
            BrokenPipeError,
            ConnectionAbortedError,
            requests.exceptions.ChunkedEncodingError,
        ),
        "closed",
    ),
    ((http.client.HTTPException,), "not-http"),  # a status line or header that is not HTTP
    ((requests.exceptions.ConnectionError,), "unreachable"),
)

#: Our error for each meaning, and its message while sending (no response yet) and while reading a
#: body; the messages name host, method and path, never a header or a body (no token can leak).
_ERRORS: dict[str, tuple[type[TransportError], str, str]] = {
    "undecodable": (
        TransportError,
        "the response from {host} could not be decoded ({method} {path})",
        "the response from {host} could not be decoded (its Content-Encoding is not what it says)",
    ),
    "tls": (
        ConnectError,
        "TLS handshake with {host} failed (certificate not trusted or invalid); "
        "pass the server's CA bundle (caFile) if it uses a private CA",
        "{host} closed the connection in the middle of the response",
    ),
    "invalid-url": (ConnectError, "invalid URL for host {host}", "invalid URL for host {host}"),
    "unreachable": (
        ConnectError,
        "cannot connect to {host} (connection refused or host unreachable)",
        "{host} closed the connection in the middle of the response",
    ),
    "timeout": (
        TransportTimeout,
        "no response from {host} within {timeout:g} s ({method} {path})",
        "{host} stopped sending the response for {timeout:g} s",
    ),
    "not-http": (
        TransportError,
        "{host} answered something that is not an HTTP response ({method} {path})",
        "{host} sent something that is not HTTP in the middle of the response",
    ),
    "closed": (
        ConnectionClosedError,
        "{host} closed the connection before answering ({method} {path})",
        "{host} closed the connection in the middle of the response",
    ),
    "other": (
        TransportError,
        "HTTP call to {host} failed: {name}",
        "reading the response from {host} failed: {name}",
    ),
}


def _meaning(exc: BaseException) -> str:
    """The ``_EXCEPTION_MAP`` meaning of ``exc``: what it, or anything it wraps, is an instance of."""
    chain: list[BaseException] = []
    pending: list[object] = [exc]
    while pending:
        current = pending.pop(0)
        if not isinstance(current, BaseException) or any(current is seen for seen in chain):
            continue
        chain.append(current)
        pending.extend(current.args)
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
    for types, meaning in _EXCEPTION_MAP:
        if any(isinstance(found, types) for found in chain):
            return meaning
    return "other"


def transport_error(exc: BaseException, request: HttpRequest, *, reading: bool = False) -> TransportError:
    """The ``TransportError`` for ``exc``, raised by the HTTP client sending ``request`` (or reading its body).

    A failure while reading a body is a closed connection or a timeout (the connection was made):
    a TLS or connection error there means the peer went away.
    """
    error, sending, while_reading = _ERRORS[_meaning(exc)]
    if reading and error is ConnectError:
        error = ConnectionClosedError
    template = while_reading if reading else sending
    return error(
        template.format(
            host=_host(request.url),
            method=request.method,
            path=_path(request.url),
            timeout=request.timeout,
            name=type(exc).__name__,
        )
    )


#: Content-Encodings that requests/urllib3 decode (requests only advertises what urllib3 can decode).
_DECODED_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate", "br", "zstd"})


class RequestsTransport(Transport):
    """A pooled ``requests.Session``; ``verify`` is True (system CAs) or a CA bundle path."""

    def __init__(
        self, *, verify: bool | str = True, pool_maxsize: int = 32, host_policy: HostPolicy | None = None
    ) -> None:
        if verify is False:
            raise ValueError("TLS verification cannot be turned off; pass a CA bundle path instead")
        self.verify = verify
        self.host_policy = host_policy
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy / netrc surprises; loopback and explicit URLs only
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_maxsize, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def send(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        headers = dict(request.headers)
        # A server may answer a streamed upload before reading all of it (400 InvalidSessionId,
        # 413...); the connection then holds unread request bytes and must never be reused, or the
        # next request on it is parsed after those bytes. Such connections are closed, not pooled.
        streamed_upload = request.body is not None and not isinstance(request.body, (bytes, str))
        if streamed_upload:
            headers["Connection"] = "close"
        try:
            resp = self.session.request(
                request.method,
                request.url,
                headers=headers,
                data=_stream_body(request.body),
                timeout=request.timeout,
                stream=True,
                verify=request.verify or self.verify,
                allow_redirects=False,
            )
        except (requests.exceptions.RequestException, TimeoutError) as exc:
            raise transport_error(exc, request) from None

        closer = resp.close
        if streamed_upload and hasattr(resp.raw, "_pool"):
            resp.raw._pool = None  # urllib3: release_conn() then keeps the connection out of the pool

            def closer() -> None:
                resp.raw.close()  # closes the socket too
                resp.close()

        def chunks() -> Iterator[bytes]:
            try:
                yield from resp.iter_content(CHUNK_SIZE)
            except (
                requests.exceptions.RequestException,
                urllib3.exceptions.HTTPError,
                http.client.HTTPException,
                OSError,
            ) as exc:
                raise transport_error(exc, request, reading=True) from None

        response_headers = CaseInsensitiveDict(resp.headers)
        if response_headers.get("Content-Encoding", "").strip().lower() in _DECODED_ENCODINGS:
            # requests hands us the decoded body; headers describing the encoded one would be lies
            # (a relayed response would announce gzip for plain bytes).
            del response_headers["Content-Encoding"]
            response_headers.pop("Content-Length", None)
        observe.limit_info(request.url, response_headers.get("Sforce-Limit-Info"))
        response = HttpResponse(
            resp.status_code,
            resp.reason or "",
            response_headers,
            chunks=chunks(),
            closer=closer,
            url=request.url,
        )
        if not request.stream:
            try:
                response._content = b"".join(chunks())
                response._consumed = True
            finally:
                closer()
                response._closer = None
        log.debug(
            "%s %s -> %d (%.1f ms%s)",
            request.method,
            _path(request.url),
            resp.status_code,
            (time.perf_counter() - started) * 1000,
            ", streaming" if request.stream else "",
        )
        return response

    def close(self) -> None:
        self.session.close()


class WSGITransport(Transport):
    """Answer requests by calling a WSGI app in-process (no sockets): for benchmarks and tests."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def send(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        parts = urlsplit(request.url)
        body = request.body
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode("utf-8")
        elif hasattr(body, "read"):
            data = b"".join(_FileChunks(body))  # type: ignore[arg-type]
        else:
            data = b"".join(body)
        host, _, port = parts.netloc.rpartition("@")[2].partition(":")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method.upper(),
            "SCRIPT_NAME": "",
            "PATH_INFO": _unquote_path(parts.path or "/"),
            "QUERY_STRING": parts.query,
            "SERVER_NAME": host or "localhost",
            "SERVER_PORT": port or ("443" if parts.scheme == "https" else "80"),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": parts.scheme or "http",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(data)),
        }
        for name, value in request.headers.items():
            key = environ_key(name)
            if key != "CONTENT_LENGTH":  # the length of ``data``, set above
                environ[key] = value
        captured: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            captured["status"] = status
            captured["headers"] = headers
            return lambda _data: None

        result = self.app(environ, start_response)
        try:
            content = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        code, _, reason = captured["status"].partition(" ")
        log.debug(
            "%s %s -> %s (%.2f ms, in-process)",
            request.method,
            parts.path,
            code,
            (time.perf_counter() - started) * 1000,
        )
        response = HttpResponse(
            int(code), reason, CaseInsensitiveDict(captured["headers"]), content, url=request.url
        )
        observe.limit_info(request.url, response.headers.get("Sforce-Limit-Info"))
        return response


def _unquote_path(path: str) -> str:
    from urllib.parse import unquote_to_bytes

    # PEP 3333: PATH_INFO is the URL-decoded path as latin-1 characters.
    return unquote_to_bytes(path).decode("latin-1")


# --- the outbound host allow-list -----------------------------------------------------------------

#: Where Salesforce serves instances, My Domain logins and token endpoints (login/test.salesforce.com,
#: <name>.my.salesforce.com, legacy naN.salesforce.com, *.force.com, *.cloudforce.com, *.database.com,
#: Experience Cloud *.salesforce-sites.com, Government Cloud Plus *.salesforce.mil, Alibaba China
#: *.sfcrmproducts.cn). docs/security.md lists them; --allow-host adds to them.
SALESFORCE_HOST_PATTERNS = (
    "*.salesforce.com",
    "*.force.com",
    "*.cloudforce.com",
    "*.database.com",
    "*.salesforce-sites.com",
    "*.salesforce.mil",
    "*.sfcrmproducts.cn",
)
#: The ERROR_CODE of a refused host (an sfbulk code: Synapse has none for an allow-list).
HOST_NOT_ALLOWED_CODE = 700403
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*$")


class HostNotAllowedError(ParameterError):
    """A URL taken from a message names a host outside the allow-list; nothing was sent."""

    error_code = HOST_NOT_ALLOWED_CODE


class _Pattern:
    """``host``, ``*.domain``, ``[v6]`` or ``*``, optionally ``:port`` or ``:*``. No port = the scheme's default."""

    def __init__(self, text: str) -> None:
        raw = text.strip().lower()
        self.text = raw
        if not raw:
            raise ValueError(
                "an empty host pattern; give e.g. '*.my.salesforce.com' or 'proxy.example.com:8443'"
            )
        if "/" in raw or "@" in raw:
            raise ValueError(f"host pattern {text!r} must be a host name with an optional ':port', not a URL")
        host, port = raw, ""
        if raw.startswith("["):
            close = raw.find("]")
            if close < 0:
                raise ValueError(f"host pattern {text!r}: unclosed '[' of an IPv6 address")
            host, rest = raw[1:close], raw[close + 1 :]
            if rest and not rest.startswith(":"):
                raise ValueError(f"host pattern {text!r}: only ':port' may follow ']'")
            port = rest[1:]
        elif raw.count(":") == 1:
            host, port = raw.split(":")
        elif raw.count(":") > 1:
            raise ValueError(f"host pattern {text!r}: write an IPv6 address in brackets, e.g. [::1]:8281")
        self.any_host = host == "*"
        self.suffix = host[1:] if host.startswith("*.") else None
        name = self.suffix[1:] if self.suffix else host
        if not self.any_host and _normal_host(name) is None:
            raise ValueError(
                f"host pattern {text!r}: {name!r} is not a host name or IP address "
                "('*' is allowed only as the first label, as in *.example.com)"
            )
        self.host = _normal_host(name) if not self.any_host and self.suffix is None else None
        if port in ("", "*"):
            self.port: int | None = None
            self.any_port = port == "*" or (self.any_host and raw == "*")
        else:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"host pattern {text!r}: port {port!r} is not a number from 1 to 65535")
            self.port, self.any_port = int(port), False

    def matches(self, host: str, port: int, default_port: int) -> bool:
        if self.any_port:
            pass
        elif self.port is None:
            if port != default_port:
                return False
        elif port != self.port:
            return False
        if self.any_host:
            return True
        if self.suffix is not None:
            return host.endswith(self.suffix) and len(host) > len(self.suffix)
        return host == self.host


def _normal_host(host: str) -> str | None:
    """Lower-case host name or canonical IP text; None when it is neither (odd characters, IDN tricks)."""
    host = host.strip().lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    return host if _HOST_NAME.match(host) else None


def _endpoint(url: str) -> tuple[str, int, int] | str:
    """(host, port, scheme's default port) of an http(s) URL, or the reason it cannot be checked."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme not in _DEFAULT_PORTS:
        return "only http and https URLs are allowed"
    if "@" in parts.netloc:
        return "URLs with user credentials are not allowed"
    host = _normal_host(parts.hostname or "")
    if host is None:
        return "its host is not a plain host name or IP address"
    default = _DEFAULT_PORTS[parts.scheme]
    return host, port if port is not None else default, default


class HostPolicy:
    """The outbound allow-list: which hosts (and ports) a URL taken from a message may name."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = [_Pattern(p) for p in patterns]

    @classmethod
    def default(cls, *endpoints: str | None, extra: Iterable[str] = ()) -> HostPolicy:
        """Salesforce's domains, the host:port of each endpoint URL given (e.g. --token-endpoint), ``extra``."""
        patterns = list(SALESFORCE_HOST_PATTERNS)
        for url in endpoints:
            if url:
                found = _endpoint(url)
                if isinstance(found, str):
                    raise ValueError(
                        f"{url!r} must be an http(s) URL such as https://test.salesforce.com ({found})"
                    )
                host, port, _ = found
                patterns.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        patterns.extend(extra)
        return cls(patterns)

    def describe(self) -> str:
        return ", ".join(p.text for p in self.patterns) or "(nothing)"

    def refusal(self, url: str) -> str | None:
        """None when ``url`` may be called, else why not (names the host, never the path or query)."""
        found = _endpoint(url)
        if isinstance(found, str):
            return found
        host, port, default = found
        if any(p.matches(host, port, default) for p in self.patterns):
            return None
        shown = f"[{host}]" if ":" in host else host
        return (
            f"host {shown}:{port} is not in the outbound allow-list (sfbulk serve --allow-host, or "
            "security.allow_hosts in the --settings file, adds hosts)"
        )

    def check(self, url: str, source: str) -> None:
        """Raise HostNotAllowedError when ``url`` (taken from ``source``, e.g. 'apiUrl') is refused."""
        reason = self.refusal(url)
        if reason is not None:
            raise HostNotAllowedError(f"{source} refused: {reason}")

    def __repr__(self) -> str:
        return f"HostPolicy([{self.describe()}])"


def check_host(policy: HostPolicy | None, url: str, source: str) -> None:
    """``policy.check(url, source)``, or nothing when there is no policy (the trusted Python API)."""
    if policy is not None:
        policy.check(url, source)


# --- retrying requests that are safe to repeat ------------------------------------------------------

#: HTTP statuses worth another try: rate limiting and server-side hiccups (as for Bulk API calls).
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff; the same numbers as sfbulk.bulk.retry's Bulk API calls."""

    attempts: int = 8  # total tries, the first included
    initial: float = 0.05
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 0.1

    def delay(self, retry: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based); a Retry-After in seconds is honoured up to ``cap``."""
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after.strip()), self.cap)
        base = min(self.cap, self.initial * self.factor ** (retry - 1))
        return min(self.cap, base * (1 + random.uniform(-self.jitter, self.jitter)))


def send_with_retry(
    transport: Transport,
    request: HttpRequest,
    *,
    what: str,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpResponse:
    """Send ``request`` (its body must be bytes/str: it is sent again) and retry transient failures.

    Returns the last response (a transient status after the last attempt included); re-raises the
    last ``TransportError`` when no attempt got an answer.
    """
    policy = policy or RetryPolicy()
    attempt = 1
    while True:
        try:
            response = transport.send(request)
        except TransportError as exc:
            if attempt >= policy.attempts or isinstance(exc, HostNotAllowedError):
                observe.grant_attempt(request.body, "failure")
                raise
            observe.grant_attempt(request.body, "retried")
            delay = policy.delay(attempt)
            log.info("%s failed (%s); retry %d/%d in %.2f s", what, exc, attempt, policy.attempts - 1, delay)
        else:
            if response.status not in TRANSIENT_STATUSES or attempt >= policy.attempts:
                observe.grant_attempt(request.body, "success" if response.status == 200 else "failure")
                return response
            observe.grant_attempt(request.body, "retried")
            delay = policy.delay(attempt, response.headers.get("Retry-After"))
            log.info(
                "%s answered HTTP %d; retry %d/%d in %.2f s",
                what,
                response.status,
                attempt,
                policy.attempts - 1,
                delay,
            )
            response.close()
        sleep(delay)
        attempt += 1


__all__ = [
    "Body",
    "DEFAULT_TIMEOUT",
    "HOST_NOT_ALLOWED_CODE",
    "HostNotAllowedError",
    "HostPolicy",
    "HttpRequest",
    "HttpResponse",
    "RequestsTransport",
    "RetryPolicy",
    "SALESFORCE_HOST_PATTERNS",
    "TRANSIENT_STATUSES",
    "Transport",
    "WSGITransport",
    "check_host",
    "send_with_retry",
    "transport_error",
]
