"""`sfbulk serve CONFIG...`: load proxies (Synapse XML and YAML) and serve them over HTTP.

All-or-nothing: a config that fails to load is reported with file, line and reason and the
server does not start (exit status 2). SIGTERM and SIGINT stop it gracefully: no new connections,
in-flight requests finish, then exit 0.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

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
    api_contexts,
    proxy_names,
    start_server,
)

#: Exit status when the configuration (or the command line) is invalid: nothing was served.
EXIT_CONFIG = 2
#: Exit status when the server could not listen (address in use, permission denied).
EXIT_LISTEN = 1


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
    try:
        running = start_server(
            engine,
            host=host,
            port=port,
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
    except OSError as exc:
        click.echo(f"sfbulk serve: cannot listen on {host}:{port}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_LISTEN)

    stop_requested = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        click.echo(
            f"sfbulk serving at {running.url}/services/ ({threads} threads, registry {engine.registry.describe()})"
        )
        for name in names:
            click.echo(f"  {running.service_url(name)}")
        for key, context in apis.items():
            click.echo(f"  {running.url}{context}  (API {key})")
        click.echo(f"  health: {running.url}/health")
        click.echo(f"  outbound hosts allowed for URLs from messages: {policy.describe()}")
        click.echo("Stop with Ctrl-C or SIGTERM.", nl=True)
        sys.stdout.flush()
        while not stop_requested.wait(0.5):
            if not running.running:
                click.echo("sfbulk serve: the server thread stopped unexpectedly.", err=True)
                sys.exit(EXIT_LISTEN)
        click.echo("sfbulk serve: stopping (finishing in-flight requests)...", err=True)
        running.stop()
        close = getattr(engine, "close", None)
        if callable(close):
            close()
        click.echo("sfbulk serve: stopped.", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
