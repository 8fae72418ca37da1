"""`sfbulk serve CONFIG...`: load proxies (Synapse XML and YAML) and serve them over HTTP.

All-or-nothing: a config that fails to load is reported with file, line and reason and the
server does not start (exit status 2). SIGTERM and SIGINT stop it gracefully: no new connections,
in-flight requests finish, then exit 0.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
from dataclasses import asdict, dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import click

from sfbulk.cli.settings import (
    allow_host_options,
    build_host_policy,
    lenient_option,
    load_settings,
    registry_key_option,
    registry_option,
    token_endpoint_option,
)
from sfbulk.errors import ConfigError, ConfigErrors, SfBulkError
from sfbulk.server.app import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_BUFFERED_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_PORT,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_THREADS,
    SERVICES_PREFIX,
    api_contexts,
    proxy_names,
    start_server,
)

if TYPE_CHECKING:
    from sfbulk.engine.engine import Engine

#: Exit status when the configuration (or the command line) is invalid: nothing was served.
EXIT_CONFIG = 2
#: Exit status when the server could not listen (address in use, permission denied).
EXIT_LISTEN = 1

log = logging.getLogger("sfbulk.cli.serve")


@dataclass(frozen=True)
class ServeOptions:
    """The ``start_server`` options a ``sfbulk serve`` worker (or the single process) serves with."""

    threads: int
    max_body_bytes: int
    shutdown_timeout: int
    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    idle_timeout: float
    max_connections: int
    max_buffered_bytes: int
    max_connections_per_client: int

    def as_kwargs(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Banner:
    """What ``sfbulk serve`` prints once it serves: the URLs, then how to stop it."""

    names: list[str]
    apis: dict[str, str]
    allowed_hosts: str

    def print(self, url: str, detail: str) -> None:
        click.echo(f"sfbulk serving at {url}/services/ ({detail})")
        for name in self.names:
            click.echo(f"  {url}{SERVICES_PREFIX}{quote(name, safe='')}")
        for key, context in self.apis.items():
            click.echo(f"  {url}{context}  (API {key})")
        click.echo(f"  health: {url}/health")
        click.echo(f"  outbound hosts allowed for URLs from messages: {self.allowed_hosts}")
        click.echo("Stop with Ctrl-C or SIGTERM.", nl=True)
        sys.stdout.flush()


def _url_of(sock: socket.socket) -> str:
    host, port = socket.getnameinfo(sock.getsockname(), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _serve_workers(
    engine: Engine,
    host: str,
    port: int,
    workers: int,
    options: ServeOptions,
    banner: Banner,
    registry_text: str,
) -> int:
    """``--workers N``: bind once, fork N workers serving the socket; returns the exit status."""
    from sfbulk.server.workers import WorkerContext, bind_listener, serve_in_workers

    logging.getLogger("sfbulk.server.workers").setLevel(logging.INFO)  # worker starts and exits
    try:
        sock = bind_listener(host, port)
    except OSError as exc:
        click.echo(f"sfbulk serve: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        return EXIT_LISTEN
    url = _url_of(sock)

    def worker_main(context: WorkerContext) -> int:
        running = start_server(engine, sock=context.sock, **options.as_kwargs())
        context.ready()
        status = 0
        while not context.stop.wait(0.5):
            if not context.parent_alive():
                log.warning("the sfbulk serve supervisor (pid %d) is gone; draining", context.parent_pid)
                break
            if not running.running:
                log.error("the server thread stopped unexpectedly")
                status = EXIT_LISTEN
                break
        running.stop()
        engine.close()
        return status

    announced: list[bool] = []

    def announce(pids: list[int]) -> None:
        banner.print(url, f"{workers} workers x {options.threads} threads, {registry_text}")
        announced.append(True)

    try:
        status = serve_in_workers(
            sock, workers, worker_main, shutdown_timeout=float(options.shutdown_timeout), on_ready=announce
        )
    except OSError as exc:  # no fork() on this platform
        click.echo(f"sfbulk serve: {exc.strerror or exc}", err=True)
        return EXIT_CONFIG
    finally:
        sock.close()
    engine.close()
    if status == 0:
        click.echo("sfbulk serve: stopped.", err=True)
    elif not announced:
        click.echo("sfbulk serve: the workers did not start (see the errors above).", err=True)
    else:
        click.echo("sfbulk serve: stopped (see the errors above).", err=True)
    return status


def _report_config_error(error: ConfigError) -> None:
    errors = error.errors if isinstance(error, ConfigErrors) else [error]
    click.echo(f"sfbulk serve: {len(errors)} configuration error(s); the server was not started:", err=True)
    for item in errors:
        click.echo(f"  {item}", err=True)


@click.command("serve")
@click.argument("configs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=DEFAULT_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port (0 picks a free one).",
)
@registry_option
@registry_key_option
@click.option(
    "--threads",
    default=DEFAULT_THREADS,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="Worker threads: requests handled at the same time.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Processes serving the port, each with --threads threads (pre-fork; docs/deploy.md). "
    "1 = this process serves.",
)
@click.option(
    "--max-body-bytes",
    default=DEFAULT_MAX_BODY_BYTES,
    show_default=True,
    type=click.IntRange(0),
    help="Largest request body accepted; bigger ones get 413.",
)
@click.option(
    "--max-header-bytes",
    default=DEFAULT_MAX_HEADER_BYTES,
    show_default=True,
    type=click.IntRange(1024),
    help="Largest request line plus headers accepted; bigger ones get 431.",
)
@click.option(
    "--header-timeout",
    default=DEFAULT_HEADER_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds a client has to send the request line and headers, in total; then 408.",
)
@click.option(
    "--body-timeout",
    default=DEFAULT_BODY_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds a client has to send the request body after its headers, in total; then 408.",
)
@click.option(
    "--idle-timeout",
    default=DEFAULT_IDLE_TIMEOUT,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Seconds of silence allowed mid-request (then 408) or on an idle keep-alive connection.",
)
@click.option(
    "--max-connections",
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Open client connections at most; further ones wait in the listen backlog.",
)
@click.option(
    "--max-connections-per-client",
    default=0,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Open connections one client address may hold (503 beyond); 0 = no cap, as behind a proxy.",
)
@click.option(
    "--max-buffered-bytes",
    default=DEFAULT_MAX_BUFFERED_BYTES,
    show_default=True,
    type=click.IntRange(0),
    help="Request bodies buffered at once, all connections together (memory and temp files); "
    "beyond it, reading bodies pauses.",
)
@click.option(
    "--shutdown-timeout",
    default=DEFAULT_SHUTDOWN_TIMEOUT,
    show_default=True,
    type=click.IntRange(0),
    help="Seconds in-flight requests get to finish on SIGTERM/SIGINT.",
)
@token_endpoint_option
@lenient_option
@click.option(
    "--file-root",
    default=None,
    type=click.Path(file_okay=False),
    help="Directory that operations' file paths (uploadJobData and result filePath, taken from "
    "requests) must lie under. Default: none, every file path is refused (docs/security.md).",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One line per request on stderr (client, method, path without query, status, bytes, ms).",
)
@allow_host_options("Salesforce's domains and the --token-endpoint host:port are always allowed.")
def serve_command(
    configs: tuple[str, ...],
    host: str,
    port: int,
    registry_dir: str,
    registry_key_file: str | None,
    threads: int,
    workers: int,
    max_body_bytes: int,
    max_header_bytes: int,
    header_timeout: float,
    body_timeout: float,
    idle_timeout: float,
    max_connections: int,
    max_connections_per_client: int,
    max_buffered_bytes: int,
    shutdown_timeout: int,
    token_endpoint: str | None,
    access_log: bool,
    file_root: str | None,
    lenient: bool,
    allow_hosts: tuple[str, ...],
    settings_file: str | None,
) -> None:
    """Serve the proxies in CONFIG... (Synapse XML files or folders, YAML files, a WSO2 deployment
    folder) at /services/<name>, and their REST APIs at their contexts."""
    from sfbulk.cli.run import token_endpoint_defaults
    from sfbulk.engine.engine import Engine  # imported here so `sfbulk --help` stays fast
    from sfbulk.registry import open_registry
    from sfbulk.transport import RequestsTransport

    try:
        policy = build_host_policy(token_endpoint, load_settings(settings_file), allow_hosts)
        engine = Engine(
            registry=open_registry(registry_dir, key_file=registry_key_file),
            init_defaults=token_endpoint_defaults(token_endpoint),
            transport=RequestsTransport(host_policy=policy),
        )
        engine.file_root = file_root
        engine.load(*configs, lenient=lenient)
    except ConfigError as exc:
        _report_config_error(exc)
        sys.exit(EXIT_CONFIG)
    except SfBulkError as exc:
        click.echo(f"sfbulk serve: {exc}; the server was not started.", err=True)
        sys.exit(EXIT_CONFIG)

    names = proxy_names(engine)
    apis = api_contexts(engine)
    if not names and not apis:
        click.echo("sfbulk serve: the configuration defines no proxy and no API; nothing to serve.", err=True)
        sys.exit(EXIT_CONFIG)

    if access_log:
        logging.getLogger("sfbulk.access").setLevel(logging.INFO)
    options = ServeOptions(
        threads=threads,
        max_body_bytes=max_body_bytes,
        shutdown_timeout=shutdown_timeout,
        max_header_bytes=max_header_bytes,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_buffered_bytes=max_buffered_bytes,
        max_connections_per_client=max_connections_per_client,
    )
    banner = Banner(names, apis, policy.describe())
    if workers > 1:
        sys.exit(
            _serve_workers(
                engine, host, port, workers, options, banner, f"registry {engine.registry.describe()}"
            )
        )
    try:
        running = start_server(engine, host=host, port=port, **options.as_kwargs())
    except OSError as exc:
        click.echo(f"sfbulk serve: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_LISTEN)

    stop_requested = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        banner.print(running.url, f"{threads} threads, registry {engine.registry.describe()}")
        while not stop_requested.wait(0.5):
            if not running.running:
                click.echo("sfbulk serve: the server thread stopped unexpectedly.", err=True)
                sys.exit(EXIT_LISTEN)
        click.echo("sfbulk serve: stopping (finishing in-flight requests)...", err=True)
        running.stop()
        engine.close()
        click.echo("sfbulk serve: stopped.", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
