"""`sfbulk emulator`: serve the emulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

from .schema import SchemaError


@click.command("emulator")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (keep it on loopback)."
)
@click.option(
    "--port", default=8281, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port."
)
@click.option(
    "--db",
    default=":memory:",
    show_default=True,
    help="SQLite file holding records, jobs and results (kept across restarts); :memory: = a temporary file.",
)
@click.option(
    "--token-ttl",
    default=7200.0,
    show_default=True,
    type=click.FloatRange(min=0.001),
    help="Seconds an access token stays valid.",
)
@click.option(
    "--processing-delay",
    "processing_delay",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="MS",
    help="Extra time each batch spends InProgress, in milliseconds.",
)
@click.option("--tls", is_flag=True, help="Serve HTTPS with a generated test CA (its path is printed).")
@click.option("--json", "as_json", is_flag=True, help="Print the start-up information as one JSON object.")
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML file adding objects/fields (format of sfbulk/emulator/schema.yaml).",
)
@click.option(
    "--result-file-rows",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Query results are split into several result files above this many rows.",
)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of requests answered 503.",
)
@click.option(
    "--reset-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Fraction of requests whose connection is cut without a response.",
)
@click.option(
    "--latency-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Latency added to every request.",
)
@click.option("--fault-oauth", is_flag=True, help="Inject faults on the OAuth token endpoint too.")
@click.option(
    "--rotate-refresh-tokens",
    is_flag=True,
    help="Refresh-token rotation, as Salesforce does it: each refresh answers a new refresh_token and "
    "the one used stops working.",
)
@click.option(
    "--demo-app-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep the demo app's JWT key pair (private_key.pem, certificate.pem) in this folder, made "
    "there on the first start and reused after; default: a temporary folder deleted on exit.",
)
@click.option("--fault-seed", default=None, type=int, help="Seed for reproducible fault injection.")
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Batches processed at the same time.",
)
@click.option(
    "--worker-processes/--worker-threads",
    default=True,
    show_default=True,
    help="Process batches in worker processes (one core each) or in threads of this process.",
)
def emulator_command(
    host: str,
    port: int,
    db: str,
    token_ttl: float,
    processing_delay: float,
    tls: bool,
    as_json: bool,
    schema_file: str | None,
    result_file_rows: int,
    fault_rate: float,
    reset_rate: float,
    latency_ms: float,
    fault_oauth: bool,
    fault_seed: int | None,
    workers: int,
    worker_processes: bool,
    rotate_refresh_tokens: bool,
    demo_app_dir: str | None,
) -> None:
    """Run the local Salesforce Bulk API 1.0 / 2.0 + OAuth emulator (demo credentials are printed on purpose)."""
    from .server import Emulator

    try:
        emu = Emulator(
            host=host,
            port=port,
            db=db,
            token_ttl=token_ttl,
            processing_delay_ms=processing_delay,
            tls=tls,
            schema_file=schema_file,
            rows_per_result_file=result_file_rows,
            workers=workers,
            worker_processes=worker_processes,
            rotate_refresh_tokens=rotate_refresh_tokens,
            demo_app_dir=demo_app_dir,
        )
    except SchemaError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot start the emulator on {host}:{port}: {exc}") from exc
    try:
        emu.faults.configure(
            error_rate=fault_rate,
            reset_rate=reset_rate,
            latency_ms=latency_ms,
            seed=fault_seed,
            include_oauth=fault_oauth,
        )
    except ValueError as exc:
        emu.stop()
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        emu.start()
    except OSError as exc:
        emu.stop()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from exc
    info: dict[str, Any] = {"base_url": emu.base_url, **emu.credentials}
    try:
        info["jwt_private_key_file"] = emu.jwt_private_key_file
    except (OSError, ValueError) as exc:
        emu.stop()
        raise click.ClickException(
            f"--demo-app-dir {demo_app_dir}: cannot keep the demo app's key pair there: {exc}"
        ) from exc
    info["jwt_certificate_file"] = emu.jwt_certificate_file
    info["jwt_users"] = sorted(emu.oauth.users)
    info["rotate_refresh_tokens"] = rotate_refresh_tokens
    if emu.ca_file:
        info["ca_file"] = emu.ca_file
    if as_json:
        click.echo(json.dumps(info))
    else:
        click.echo(f"sfbulk emulator listening on {emu.base_url}")
        click.echo(f"  Bulk API:   {emu.base_url}/services/async/<version>/job")
        click.echo(f"  Bulk 2.0:   {emu.base_url}/services/data/v<version>/jobs/ingest (and /jobs/query)")
        click.echo(f"  OAuth:      {emu.base_url}/services/oauth2/token")
        click.echo("  Demo connected app (public, emulator only):")
        for key in ("client_id", "client_secret", "refresh_token", "username", "password"):
            click.echo(f"    {key}: {emu.credentials[key]}")
        click.echo(f"    client_credentials_user: {emu.credentials['client_credentials_user']}")
        click.echo(f"    JWT users: {', '.join(sorted(emu.oauth.users))}")
        click.echo(f"    JWT private key: {emu.jwt_private_key_file}")
        click.echo(f"    JWT certificate: {emu.jwt_certificate_file}")
        if rotate_refresh_tokens:
            click.echo("    refresh tokens are rotated at each use (--rotate-refresh-tokens)")
        if emu.ca_file:
            click.echo(f"  TLS CA file: {emu.ca_file}")
        click.echo(f"  Database:   {db}")
        click.echo("Press Ctrl-C to stop.")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emu.stop()
    if not as_json:
        click.echo("sfbulk emulator stopped.")
