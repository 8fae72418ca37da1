"""Serving the emulator with cheroot (multi-threaded WSGI, optional TLS) and its Python handle."""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

from cheroot import server as cheroot_server
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from .app import ABORT_KEY, EmulatorApp
from .faults import Faults
from .oauth import DEMO_CREDENTIALS, USER_ID, OAuthServer, Sessions
from .processor import Processor
from .schema import Schema
from .service import BulkService
from .store import Store

log = logging.getLogger("sfbulk.emulator")


class _Gateway(wsgi.Gateway_10):
    """Honours the app's request to cut the connection: no status line, an RST on the socket."""

    def respond(self) -> None:
        response = self.req.server.wsgi_app(self.env, self.start_response)
        if self.env.get(ABORT_KEY):
            if hasattr(response, "close"):
                response.close()
            req = self.req
            try:
                req.conn.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            req.sent_headers = True  # nothing will be written
            req.close_connection = True
            req.chunked_write = False
            return
        try:
            for chunk in filter(None, response):
                self.write(chunk)
        finally:
            self.req.ensure_headers_sent()
            if hasattr(response, "close"):
                response.close()


class _CollapseLeadingSlashes:
    """Reads the request line with ``//services/...`` turned into ``/services/...`` (some clients send it;
    cheroot would reject it as an absolute URI)."""

    def __init__(self, rfile: Any):
        self._rfile = rfile

    def readline(self, *args: Any) -> bytes:
        line: bytes = self._rfile.readline(*args)
        return re.sub(rb"^(\S+ )/{2,}", rb"\1/", line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rfile, name)


class _Request(cheroot_server.HTTPRequest):
    def read_request_line(self) -> Any:
        original = self.rfile
        self.rfile = _CollapseLeadingSlashes(original)
        try:
            return super().read_request_line()  # type: ignore[no-untyped-call]  # cheroot's method is untyped
        finally:
            self.rfile = original


class _Connection(cheroot_server.HTTPConnection):
    RequestHandlerClass = _Request


class _Server(wsgi.Server):
    ConnectionClass = _Connection

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gateway = _Gateway


class Emulator:
    """A running emulator. Use ``start_emulator()``; stop with ``stop()`` or as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        db: str | os.PathLike[str] = ":memory:",
        token_ttl: float = 7200,
        processing_delay_ms: float = 0,
        tls: bool = False,
        schema_file: str | os.PathLike[str] | None = None,
        rows_per_result_file: int = 100_000,
        workers: int = 2,
        threads: int = 16,
        credentials: dict[str, str] | None = None,
        worker_processes: bool = False,
        rotate_refresh_tokens: bool = False,
        demo_app_dir: str | os.PathLike[str] | None = None,
    ):
        self.host = host
        self.credentials = dict(credentials or DEMO_CREDENTIALS)
        self.schema = Schema.load(schema_file)
        self.store = Store(db, self.schema)
        self.sessions = Sessions(token_ttl)
        #: the demo app's token endpoint: its grants, rotation and JWT key pair (oauth.py)
        self.oauth = OAuthServer(
            self.sessions,
            self.credentials,
            rotate_refresh_tokens=rotate_refresh_tokens,
            demo_app_dir=demo_app_dir,
        )
        self.faults = Faults()
        self.service = BulkService(self.store, self.schema, USER_ID, rows_per_result_file)
        self.service.processing_delay = processing_delay_ms / 1000.0
        # Batches run in worker threads (cheap to start: tests) or worker processes (``worker_processes``:
        # one core each, for real loads and benchmarks; see workers.py).
        self._runner: Any = None
        process: Any = self.service.process_batch
        if worker_processes:
            from .workers import make_runner

            self._runner = process = make_runner(self.service, self.store, schema_file, USER_ID, workers)
        self.processor = Processor(process, workers=workers)
        if self._runner is not None:
            self._runner.resubmit = self.processor.submit
        self.service.processor = self.processor
        self.ca_file: str | None = None
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        self._scheme = "https" if tls else "http"
        self._port = port
        self.wsgi_app = EmulatorApp(
            self.service, self.sessions, self.faults, self.credentials, lambda: self.base_url, self.oauth
        )
        self._server = _Server(
            (host, port),
            self.wsgi_app,
            numthreads=threads,
            server_name="sfbulk-emulator",
            request_queue_size=128,
            timeout=30,
            shutdown_timeout=2,
        )
        if tls:
            self._setup_tls()
        self._thread: threading.Thread | None = None
        for job_id, batch_id, serial in self.service.pending_batches():
            self.processor.submit(job_id, batch_id, serial)

    def _setup_tls(self) -> None:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self._tls_dir = tempfile.TemporaryDirectory(prefix="sfbulk-emulator-tls-")
        base = Path(self._tls_dir.name)
        self.ca_file = str(base / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_file)
        chain = base / "server.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
        self._server.ssl_adapter = BuiltinSSLAdapter(str(chain), str(chain))

    # ---------------------------------------------------------------------------------- serving
    def start(self) -> Emulator:
        """Bind and serve in a background thread; returns once the port accepts connections."""
        self._server.prepare()
        self._port = self._server.bind_addr[1]
        self._thread = threading.Thread(target=self._server.serve, name="sfbulk-emulator-http", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until ``stop()`` (called from a signal handler, say)."""
        if not self._server.ready:
            self._server.prepare()
            self._port = self._server.bind_addr[1]
        self._server.serve()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"{self._scheme}://{host}:{self._port}"

    def set_token_ttl(self, seconds: float) -> None:
        """Applies to tokens already issued too (their age is compared with the current TTL)."""
        self.sessions.ttl = float(seconds)

    def expire_tokens(self) -> None:
        """Every access token issued so far becomes invalid (InvalidSessionId on the next call)."""
        self.sessions.expire_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no batch is queued or in progress."""
        return self.processor.wait_idle(timeout)

    @property
    def jwt_private_key_file(self) -> str:
        """The demo app's private key (PEM) for JWT bearer assertions; made on first use."""
        return self.oauth.keys.private_key_file

    @property
    def jwt_certificate_file(self) -> str:
        """The demo app's certificate (PEM), the one an admin uploads to a connected app."""
        return self.oauth.keys.certificate_file

    def issue_token(self) -> str:
        """A valid access token without an HTTP round trip (tests)."""
        return self.sessions.issue()

    def stop(self) -> None:
        try:
            self._server.stop()
        finally:
            if self._thread is not None:
                self._thread.join(timeout=5)
            self.processor.stop()
            if self._runner is not None:
                self._runner.close()
            self.store.close()
            if self._tls_dir is not None:
                self._tls_dir.cleanup()
            self.oauth.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_emulator(
    host: str = "127.0.0.1",
    port: int = 0,
    db: str | os.PathLike[str] = ":memory:",
    token_ttl: float = 7200,
    processing_delay_ms: float = 0,
    tls: bool = False,
    **options: Any,
) -> Emulator:
    """Start an emulator serving in background threads; returns once it accepts connections."""
    return Emulator(
        host=host,
        port=port,
        db=db,
        token_ttl=token_ttl,
        processing_delay_ms=processing_delay_ms,
        tls=tls,
        **options,
    ).start()
