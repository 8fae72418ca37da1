"""Run the WSGI app on waitress, hardened against slow and hostile clients.

waitress reads every request (request line, headers and body) in one asynchronous I/O loop and
hands it to a worker thread only once it is complete, so a client that trickles bytes holds a
socket, never a worker: ``/health`` and the proxies keep answering whatever the slow clients do.
waitress itself offers a connection cap, header and body size limits, and an *inactivity*
timeout; a client that sends one byte a second never trips the latter. This module adds:

* **read deadlines in total time**: the request line and headers must arrive within
  ``header_timeout`` seconds of their first byte, the body within ``body_timeout`` seconds of the
  end of the headers; a request silent for ``idle_timeout`` seconds is cut too. The caller gets
  ``408`` and the connection is closed;
* ``400`` at once when a client closes its side in the middle of a request (a body shorter than
  its ``Content-Length``, a chunked body without its last chunk), where waitress would drop the
  connection without an answer;
* sfbulk's fault body for the errors waitress answers itself (malformed framing 400, 413, 431);
* a graceful drain for ``stop()``: stop accepting, close idle connections, let requests in
  flight finish (up to ``shutdown_timeout``), then close everything;
* a process file-descriptor limit raised to fit the connection cap (``poll()`` is used, so there
  is no ``select()`` FD_SETSIZE ceiling).
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask
from waitress.utilities import (
    BadRequest,
    Error,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    ServerNotImplemented,
)

log = logging.getLogger("sfbulk.server.app")

#: Default total time for the request line and headers, from their first byte (seconds).
DEFAULT_HEADER_TIMEOUT = 15.0
#: Default total time for the request body, from the end of the headers (10 MiB at ~1.5 Mbit/s).
DEFAULT_BODY_TIMEOUT = 60.0
#: Default silence allowed in the middle of a request, and on an idle keep-alive connection.
DEFAULT_IDLE_TIMEOUT = 15.0
#: Default cap on open client connections (beyond it, new ones wait in the listen backlog).
DEFAULT_MAX_CONNECTIONS = 1000
#: Default cap on the request line plus headers (bytes); beyond it, 431.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
#: Default cap on request bodies buffered at once, all connections together (memory + temp files).
DEFAULT_MAX_BUFFERED_BYTES = 512 * 1024 * 1024
#: How often deadlines are checked (seconds): a deadline is enforced within this much.
_CHECK_INTERVAL = 0.5
#: How soon the I/O loop looks again at a response a worker is in the middle of writing (seconds).
_BUSY_WRITE_RETRY = 0.005
#: File descriptors kept free beyond the connection cap (registry, logs, outbound connections).
_FD_HEADROOM = 256

#: ``(status, code, message, json_wanted) -> (headers, body)``: the server's fault rendering.
FaultRenderer = Callable[[int, str, str, bool], tuple[list[tuple[str, str]], bytes]]
#: ``(client, method, path, status, bytes_sent, started_perf_counter)``: one access-log line.
AccessLogger = Callable[[str, str, str, int, int, float], None]


@dataclass(frozen=True)
class ServerLimits:
    """What one client may take from the server; every field is a ``sfbulk serve`` option."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_body_bytes: int = 10 * 1024 * 1024
    max_buffered_bytes: int = DEFAULT_MAX_BUFFERED_BYTES
    #: Open connections one client address may hold; 0 = no per-client cap (e.g. behind a proxy).
    max_connections_per_client: int = 0

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "idle_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds")
        if self.max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        if self.max_connections_per_client < 0:
            raise ValueError("max_connections_per_client must be >= 0 (0: no cap)")
        if self.max_header_bytes < 1024:
            raise ValueError("max_header_bytes must be >= 1024")
        if self.max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        if self.max_buffered_bytes < self.max_body_bytes:
            raise ValueError("max_buffered_bytes must be >= max_body_bytes (one whole body must fit)")


class RequestTimeout(Error):
    """408: the request did not arrive within its deadline."""

    code = 408
    reason = "Request Timeout"


class _Parser(HTTPRequestParser):
    """waitress's parser, timestamped: when the request began and when its headers ended."""

    def __init__(self, adj: Any) -> None:
        super().__init__(adj)
        self.started = time.monotonic()
        self.headers_done_at: float | None = None

    def received(self, data: bytes) -> int:
        consumed = int(super().received(data))
        if self.headers_finished and self.headers_done_at is None:
            self.headers_done_at = time.monotonic()
        return consumed

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            # RFC 9112 §6.3 lets a server pick chunked, but front and back ends that pick
            # differently are how requests get smuggled: refuse the ambiguity.
            raise ParsingError("the request has both Content-Length and Transfer-Encoding; send only one")


def _fault_for(error: Any, limits: ServerLimits) -> tuple[int, str, str]:
    """(status, code, message) for an error waitress (or this module) found in the framing."""
    detail = str(getattr(error, "body", "") or "")[:200]
    if isinstance(error, RequestEntityTooLarge):
        return (
            413,
            "PayloadTooLarge",
            f"The request body exceeds the limit of {limits.max_body_bytes} bytes (--max-body-bytes).",
        )
    if isinstance(error, RequestHeaderFieldsTooLarge):
        return (
            431,
            "HeadersTooLarge",
            f"The request line and headers exceed the limit of {limits.max_header_bytes} bytes (--max-header-bytes).",
        )
    if isinstance(error, RequestTimeout):
        return 408, "RequestTimeout", detail
    if isinstance(error, ServerNotImplemented):
        return 501, "NotImplemented", detail or "This request framing is not supported."
    if isinstance(error, BadRequest):
        return 400, "BadRequest", f"Malformed HTTP request: {detail}" if detail else "Malformed HTTP request."
    return 500, "InternalError", "Internal server error; see the server log."


class _ErrorTask(ErrorTask):
    """Answers a framing error or a missed deadline with sfbulk's fault body, then closes."""

    def __init__(self, channel: Any, request: Any) -> None:
        super().__init__(channel, request)
        if not getattr(request, "command", None):
            self.version = "1.1"  # the request line was never understood: answer in the current version

    def execute(self) -> None:
        server: HardenedServer = self.channel.server
        request = self.request
        status, code, message = _fault_for(request.error, server.limits)
        headers = request.headers or {}
        wants_json = "json" in str(headers.get("CONTENT_TYPE", "")).lower() or (
            "json" in str(headers.get("ACCEPT", "")).lower()
            and "xml" not in str(headers.get("ACCEPT", "")).lower()
        )
        response_headers, body = server.render_fault(status, code, message, wants_json)
        self.status = f"{status} {type(request.error).reason if status != 500 else 'Internal Server Error'}"
        self.response_headers.extend(response_headers)
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        method = str(getattr(request, "command", "") or "-")
        path = str(getattr(request, "path", "") or "-")
        log.info("refused a request from %s: %d %s", self.channel.addr[0], status, message)
        server.log_access(
            str(self.channel.addr[0]), method, path, status, len(body), server.started_of(request)
        )


class _Channel(HTTPChannel):
    """One client connection: timestamped parser, fault bodies, 400 on a half-closed request."""

    parser_class = _Parser
    error_task_class = _ErrorTask
    request: Any = None  # the request being read (waitress's attribute, typed for mypy)
    _counted_client: str | None = None  # the address counted for --max-connections-per-client

    def readable(self) -> bool:
        # Over the buffering budget, bodies being read wait (their deadline still runs); headers
        # and new requests are still read, so /health and small requests keep flowing.
        server = self.server
        if (
            server.buffered_bytes >= server.limits.max_buffered_bytes
            and self.request is not None
            and self.request.headers_finished
        ):
            return False
        return bool(super().readable())

    def writable(self) -> bool:
        # A worker writes its response and sends it itself (waitress's send_bytes=1), holding the
        # channel's buffer lock. Asking poll() for POLLOUT meanwhile returns at once, the loop
        # cannot take the lock, and polls again: a busy loop holding the GIL the worker needs to
        # finish its send (~30 spins a request at 50 clients). Left out of this round instead; the
        # loop looks again within _BUSY_WRITE_RETRY (a slow reader's leftover is still flushed).
        if self.will_close or self.close_when_flushed:
            return True
        if not self.total_outbufs_len:
            return False
        if self.requests:
            if not self.outbuf_lock.acquire(False):
                self.server.write_deferred = True
                return False
            self.outbuf_lock.release()
        return True

    def received(self, data: bytes) -> bool:
        self.server.buffered_bytes += len(data)  # exact figure recomputed by maintenance()
        return bool(super().received(data))

    def del_channel(self, map: Any = None) -> None:
        counted = getattr(self, "_counted_client", None)
        if counted is not None:
            self._counted_client = None
            self.server.release_client(counted)
        super().del_channel(map)

    def handle_read(self) -> None:
        if self.request is None or self.requests:
            super().handle_read()  # between requests, EOF is a plain close
            return
        try:
            data = self.socket.recv(self.adj.recv_bytes)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.handle_close()
            return
        if data:
            self.last_activity = time.time()
            self.received(data)
            return
        if not self.request.headers_finished and not self.request.header_plus.strip():
            self.handle_close()  # only blank lines between requests, then a close: nothing to answer
            return
        self.fail_request(BadRequest(_truncation_message(self.request)))

    def fail_request(self, error: Error) -> None:
        """Turn the request being read into ``error``: a worker answers it, then the connection closes."""
        with self.requests_lock:
            request = self.request if self.request is not None else self.parser_class(self.adj)
            self.request = None
            if not request.headers_finished:
                request.version = "1.1"
                request.headers = {}
            request.error = error
            request.completed = True
            self.requests.append(request)
            if len(self.requests) == 1:
                self.server.add_task(self)


def _truncation_message(request: Any) -> str:
    if not request.headers_finished:
        return "the connection was closed before the end of the request headers"
    if request.chunked:
        return "the chunked request body ended before its last (zero-size) chunk"
    return (
        f"the request body ended after {request.body_bytes_received} of the "
        f"{request.content_length} bytes its Content-Length announced"
    )


class HardenedServer(TcpWSGIServer):
    """waitress's TCP server with total-time read deadlines, fault bodies and a graceful drain."""

    channel_class = _Channel
    next_channel_cleanup: float = 0.0

    def __init__(
        self,
        app: Any,
        *,
        limits: ServerLimits,
        render_fault: FaultRenderer,
        log_access: AccessLogger,
        **adjustments: Any,
    ) -> None:
        self.limits = limits
        self.render_fault = render_fault
        self.log_access = log_access
        self.draining = False
        self.busy = True
        self.buffered_bytes = 0
        self.over_budget = False
        self.per_client: dict[str, int] = {}
        self._last_refusal_log = 0.0
        self._exit = False
        self.write_deferred = False  # set by a channel whose response a worker is writing
        super().__init__(app, **adjustments)

    # --- deadlines (run in the I/O loop thread) ------------------------------------------------

    def maintenance(self, now: float) -> None:
        """Cut idle connections and requests past their deadline (waitress calls it from its loop)."""
        limits = self.limits
        mono = time.monotonic()
        idle_cutoff = now - limits.idle_timeout
        busy = False
        buffered = 0
        paused = self.buffered_bytes >= limits.max_buffered_bytes  # bodies are not being read
        for channel in list(self.active_channels.values()):
            buffered += sum(int(queued.body_bytes_received) for queued in channel.requests)
            if channel.request is not None:
                buffered += int(channel.request.body_bytes_received)
            if channel.requests or channel.total_outbufs_len:
                busy = True  # a worker is on it, or its response is still going out
                continue
            if channel.will_close or channel.close_when_flushed:
                continue
            request = channel.request
            if request is None:
                if self.draining or channel.last_activity < idle_cutoff:
                    channel.will_close = True
                continue
            if paused and request.headers_finished:
                channel.last_activity = now  # the server is not reading it: silence is not the client's
            message = None
            if request.headers_done_at is None:
                if mono - request.started > limits.header_timeout:
                    message = (
                        f"the request headers did not arrive within {limits.header_timeout:g} s "
                        "(--header-timeout)"
                    )
            elif mono - request.headers_done_at > limits.body_timeout:
                message = f"the request body did not arrive within {limits.body_timeout:g} s (--body-timeout)"
            if message is None and channel.last_activity < idle_cutoff:
                message = f"nothing was received for {limits.idle_timeout:g} s in the middle of the request (--idle-timeout)"
            if message is not None:
                channel.fail_request(RequestTimeout(message))
                busy = True
        self.busy = busy
        self.buffered_bytes = buffered
        over = buffered >= limits.max_buffered_bytes
        if over and not self.over_budget:
            log.warning(
                "request bodies buffered reached %d bytes (--max-buffered-bytes); "
                "reading bodies pauses until some are served",
                buffered,
            )
        self.over_budget = over

    # --- accepting, with the per-client cap (I/O loop thread) ------------------------------------

    def handle_accept(self) -> None:
        try:
            accepted = self.accept()
            if accepted is None:
                return
            conn, addr = accepted
            self.set_socket_options(conn)
        except OSError:
            return  # the client went away before accept() (waitress does the same)
        addr = self.fix_addr(addr)
        client = str(addr[0])
        cap = self.limits.max_connections_per_client
        if cap and self.per_client.get(client, 0) >= cap:
            self._refuse(conn, client, cap)
            return
        channel = self.channel_class(self, conn, addr, self.adj, map=self._map)
        self.per_client[client] = self.per_client.get(client, 0) + 1
        channel._counted_client = client

    def release_client(self, client: str) -> None:
        left = self.per_client.get(client, 0) - 1
        if left > 0:
            self.per_client[client] = left
        else:
            self.per_client.pop(client, None)

    def _refuse(self, conn: Any, client: str, cap: int) -> None:
        """503 and close, at once: this address already holds ``cap`` connections."""
        message = (
            f"This client already has {cap} open connections (--max-connections-per-client); "
            "reuse one or close some."
        )
        headers, body = self.render_fault(503, "TooManyConnections", message, False)
        head = "".join(f"{name}: {value}\r\n" for name, value in headers)
        try:
            conn.setblocking(False)
            conn.send(
                f"HTTP/1.1 503 Service Unavailable\r\n{head}Content-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode("latin-1")
                + body
            )
        except OSError:
            pass
        finally:
            conn.close()
        now = time.monotonic()
        if now - self._last_refusal_log >= 10.0:
            self._last_refusal_log = now
            log.warning(
                "refusing connections from %s: %d already open (--max-connections-per-client)", client, cap
            )

    @staticmethod
    def started_of(request: Any) -> float:
        """perf_counter-based start of ``request`` for the access log."""
        started = getattr(request, "started", None)
        if started is None:
            return time.perf_counter()
        return time.perf_counter() - (time.monotonic() - float(started))

    # --- serving and stopping ------------------------------------------------------------------

    def serve_forever(self) -> None:
        """The I/O loop; returns once ``request_exit`` was called, with every socket closed."""
        try:
            if hasattr(select, "poll"):
                while not self._exit:
                    self._poll_once()
            else:  # Windows: select(), without the busy-write retry
                while not self._exit:
                    wasyncore.loop(timeout=_CHECK_INTERVAL, use_poll=False, map=self._map, count=1)
        finally:
            wasyncore.close_all(self._map, ignore_all=True)

    def _poll_once(self) -> None:
        """One round of waitress's ``poll2``, waiting less when a response is being written by a worker."""
        self.write_deferred = False
        pollster = select.poll()
        for fd, obj in list(self._map.items()):
            flags = 0
            if obj.readable():
                flags |= select.POLLIN | select.POLLPRI
            if obj.writable() and not obj.accepting:
                flags |= select.POLLOUT
            if flags:
                pollster.register(fd, flags)
        wait = _BUSY_WRITE_RETRY if self.write_deferred else _CHECK_INTERVAL
        try:
            ready = pollster.poll(int(wait * 1000))
        except InterruptedError:
            return
        for fd, flags in ready:
            obj = self._map.get(fd)
            if obj is not None:
                wasyncore.readwrite(obj, flags)

    def readable(self) -> bool:
        now = time.time()
        if now >= self.next_channel_cleanup:
            self.next_channel_cleanup = now + _CHECK_INTERVAL
            try:
                self.maintenance(now)
            except Exception as exc:  # noqa: BLE001 - a bug here must not stop the I/O loop (and the server)
                log.error("connection maintenance failed: %s: %s", type(exc).__name__, str(exc)[:300])
        return bool(super().readable())

    def call_in_loop(self, thunk: Callable[[], None]) -> None:
        """Run ``thunk`` in the I/O loop thread (waitress's channels are not thread-safe)."""
        self.trigger.pull_trigger(thunk)

    def begin_drain(self) -> None:
        """Stop accepting (the listening socket closes: new clients are refused) and close idle connections."""
        self.draining = True
        if self.socket is not None and self._fileno in self._map:
            wasyncore.dispatcher.close(self)
        self.maintenance(time.time())

    def drain_step(self) -> None:
        self.maintenance(time.time())

    def request_exit(self) -> None:
        self._exit = True
        try:
            self.trigger.pull_trigger()
        except OSError:
            pass


class _WaitressLogFilter(logging.Filter):
    """Keeps waitress's own log bounded: lines clipped (they can quote a request path), and the
    "Task queue depth" warning (one per queued request when every thread is busy) at most every 10 s."""

    def __init__(self) -> None:
        super().__init__()
        self._last_queue_warning = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "waitress.queue":
            now = time.monotonic()
            if now - self._last_queue_warning < 10.0:
                return False
            self._last_queue_warning = now
        text = record.getMessage()
        if len(text) > 500:
            record.msg, record.args = f"{text[:500]}...", None
        if record.exc_info and not log.isEnabledFor(logging.DEBUG):
            record.exc_info, record.exc_text = None, None  # tracebacks only at DEBUG, as for sfbulk's own
        return True


_WAITRESS_FILTER = _WaitressLogFilter()


def _bound_waitress_logs() -> None:
    for name in ("waitress", "waitress.queue"):
        logger = logging.getLogger(name)
        if _WAITRESS_FILTER not in logger.filters:
            logger.addFilter(_WAITRESS_FILTER)


def raise_fd_limit(max_connections: int) -> int:
    """Raise the soft RLIMIT_NOFILE to fit ``max_connections``; return the cap that fits (logged if lower)."""
    try:
        import resource
    except ImportError:  # Windows: no rlimit; waitress uses select() there
        return min(max_connections, 500)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max_connections + _FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < need:
        fitted = max(1, int(soft) - _FD_HEADROOM)
        log.warning(
            "the open-file limit (%d) is too low for --max-connections %d; serving at most %d connections "
            "(raise it with `ulimit -n`)",
            soft,
            max_connections,
            fitted,
        )
        return fitted
    return max_connections


class ServingThread:
    """A started ``HardenedServer`` on its own thread; ``stop()`` drains it."""

    def __init__(self, server: HardenedServer, shutdown_timeout: float) -> None:
        self.server = server
        self.shutdown_timeout = shutdown_timeout
        self.thread = threading.Thread(
            target=server.serve_forever, name=f"sfbulk-server-{server.effective_port}", daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        """No new connections; idle ones closed; in-flight requests finish (up to the timeout); then exit."""
        server = self.server
        if not self.thread.is_alive():
            return
        server.call_in_loop(server.begin_drain)
        deadline = time.monotonic() + self.shutdown_timeout
        while time.monotonic() < deadline and self.thread.is_alive():
            done = threading.Event()

            def step(done: threading.Event = done) -> None:
                server.drain_step()
                done.set()

            server.call_in_loop(step)
            done.wait(1.0)
            if done.is_set() and not server.busy:
                break
            time.sleep(0.05)
        server.request_exit()
        self.thread.join(timeout=5.0)
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)


def build_server(
    app: Any,
    *,
    host: str,
    port: int,
    threads: int,
    limits: ServerLimits,
    render_fault: FaultRenderer,
    log_access: AccessLogger,
    sock: socket.socket | None = None,
) -> HardenedServer:
    """Bind ``host:port`` and return the (not yet running) server; ``OSError`` when it cannot bind.

    With ``sock`` (a socket already listening, inherited from the ``--workers`` supervisor),
    ``host`` and ``port`` are ignored and the server accepts from that socket.
    """
    _bound_waitress_logs()
    connections = raise_fd_limit(limits.max_connections)
    # waitress refuses a body when its *framed* size reaches the limit (chunk headers included);
    # the app checks the exact de-chunked size, so leave waitress a little slack.
    framing_slack = max(64 * 1024, limits.max_body_bytes // 50)
    where: dict[str, Any] = {"host": host, "port": port}
    if sock is not None:
        family, kind, proto = sock.family, sock.type, sock.proto
        where = {"_sock": sock, "bind_socket": False, "sockinfo": (family, kind, proto, sock.getsockname())}
    return HardenedServer(
        app,
        limits=limits,
        render_fault=render_fault,
        log_access=log_access,
        **where,
        threads=threads,
        # the I/O loop's map also holds the listening socket and the wake-up trigger
        connection_limit=connections + 2,
        channel_timeout=max(1, int(limits.idle_timeout)),
        max_request_header_size=limits.max_header_bytes,
        max_request_body_size=limits.max_body_bytes + framing_slack,
        asyncore_use_poll=True,
        ident="sfbulk",
        expose_tracebacks=False,
        log_socket_errors=False,
        backlog=1024,
        clear_untrusted_proxy_headers=False,
    )


__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_BUFFERED_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_HEADER_BYTES",
    "HardenedServer",
    "RequestTimeout",
    "ServerLimits",
    "ServingThread",
    "build_server",
    "raise_fd_limit",
]
