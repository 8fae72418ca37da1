"""`sfbulk run` (mediate one message through a proxy) and `sfbulk validate` (check configs).

Both load configs all-or-nothing and check connector operations against the bundled connector, so
a typo in `<salesforcebulk.createJb>` is reported with its file and line before anything runs.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from sfbulk.cli.settings import allow_host_options, build_host_policy, load_settings
from sfbulk.errors import ConfigError, ConfigErrors, SfBulkError

#: Exit statuses: the answer was an HTTP error or a fault / the configuration is invalid.
EXIT_FAILED = 1
EXIT_CONFIG = 2

_CONTENT_TYPES = {
    ".xml": "application/xml",
    ".json": "application/json",
    ".csv": "text/csv",
    ".txt": "text/plain",
}


def _config_errors(error: ConfigError) -> list[ConfigError]:
    return error.errors if isinstance(error, ConfigErrors) else [error]


def _bundled_connectors() -> dict[str, Any]:
    from sfbulk.connector import Connector

    connector = Connector.load()
    return {connector.name: connector}


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise click.BadParameter(f"{text!r} is not 'Name: value'", param_hint="--header")
    return name.strip(), value.strip()


def _readable(body: bytes, content_type: str) -> str:
    """The body as text, indented when it is XML or JSON (for humans; --raw prints the bytes)."""
    text = body.decode("utf-8", "replace")
    base = content_type.split(";")[0].strip().lower()
    try:
        if base.endswith("json"):
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        if base.endswith("xml") and text.lstrip().startswith("<"):
            from lxml import etree

            from sfbulk import xmlsafe

            root = xmlsafe.parse(body)
            etree.indent(root, space="  ")
            return etree.tostring(root, encoding="unicode")
    except Exception:  # noqa: BLE001 - not parseable: show it as it came
        return text
    return text


@click.command("run")
@click.argument("configs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@click.option("--proxy", "proxy_name", required=True, help="Name of the proxy that mediates the message.")
@click.option(
    "--input",
    "input_file",
    type=click.File("rb"),
    help="Request body (a file, or - for standard input). Without it the request has no body.",
)
@click.option(
    "--header",
    "-H",
    "headers",
    multiple=True,
    help="Request header 'Name: value', repeatable (e.g. 'Action: urn:createJob').",
)
@click.option(
    "--content-type",
    help="Content-Type of the body [default: from the file name, application/xml for .xml].",
)
@click.option("--method", default=None, help="HTTP method [default: POST with --input, else GET].")
@click.option(
    "--registry",
    "registry_dir",
    default="registry",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Root of the file registry (tokens are cached under it).",
)
@click.option(
    "--ca-file", type=click.Path(exists=True, dir_okay=False), help="CA bundle to verify HTTPS backends."
)
@click.option("--token-endpoint", default=None, metavar="URL",
              help="OAuth token endpoint for flows whose init does not pass tokenEndpointHostname "
                   "(default https://login.salesforce.com): https://test.salesforce.com for a sandbox, "
                   "or an emulator's URL.")
@click.option("--include", "-i", is_flag=True, help="Print the response headers too.")
@click.option("--raw", is_flag=True, help="Print the body exactly as received (no indentation).")
@allow_host_options("Without --allow-host or --settings, run trusts its input and checks no host; with them, "
                    "Salesforce's domains and the --token-endpoint host:port are allowed too, as for serve.")
def run_command(
    configs: tuple[str, ...],
    proxy_name: str,
    input_file: Any,
    headers: tuple[str, ...],
    content_type: str | None,
    method: str | None,
    registry_dir: str,
    ca_file: str | None,
    token_endpoint: str | None,
    include: bool,
    raw: bool,
    allow_hosts: tuple[str, ...],
    settings_file: str | None,
) -> None:
    """Mediate one message through PROXY of CONFIG... and print the response status and body.

    Exit status: 0 for a response below 400, 1 for an HTTP error status or a fault, 2 when the
    configuration is invalid.
    """
    from sfbulk.context import MessageContext
    from sfbulk.engine import Engine

    header_list = [_parse_header(h) for h in headers]
    body = input_file.read() if input_file is not None else b""
    if content_type is None and input_file is not None:
        suffix = Path(getattr(input_file, "name", "")).suffix.lower()
        content_type = _CONTENT_TYPES.get(
            suffix, "application/xml" if body.lstrip().startswith(b"<") else "text/plain"
        )
    if content_type and not any(name.lower() == "content-type" for name, _ in header_list):
        header_list.append(("Content-Type", content_type))
    method = (method or ("POST" if input_file is not None else "GET")).upper()

    try:
        from sfbulk.transport import RequestsTransport

        policy = None
        if allow_hosts or settings_file:  # the input is the operator's own file: checked only on request
            policy = build_host_policy(token_endpoint, load_settings(settings_file), allow_hosts)
        init_defaults = {"salesforcebulk": {"tokenEndpointHostname": token_endpoint}} if token_endpoint else None
        engine = Engine(registry=registry_dir, init_defaults=init_defaults,
                        transport=RequestsTransport(verify=ca_file or True, host_policy=policy))
    except ConfigError as exc:
        click.echo(f"sfbulk run: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except SfBulkError as exc:
        click.echo(f"sfbulk run: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    with engine:
        try:
            engine.load(*configs, connectors=_bundled_connectors())
        except ConfigError as exc:
            errors = _config_errors(exc)
            click.echo(f"sfbulk run: {len(errors)} configuration error(s):", err=True)
            for error in errors:
                click.echo(f"  {error}", err=True)
            sys.exit(EXIT_CONFIG)
        if proxy_name not in engine.proxies:
            known = ", ".join(sorted(engine.proxies)) or "none"
            click.echo(f"sfbulk run: no proxy named {proxy_name!r} (loaded: {known})", err=True)
            sys.exit(EXIT_CONFIG)
        uri = f"/services/{proxy_name}"
        ctx = MessageContext.from_http(
            method=method, uri=uri, headers=header_list, body=body, rest_url_postfix="", engine=engine
        )
        result = engine.mediate(proxy_name, ctx)

    click.echo(f"HTTP {result.status} {result.reason}".rstrip())
    response_type = ""
    for name, value in result.headers:
        if name.lower() == "content-type":
            response_type = value
        if include:
            click.echo(f"{name}: {value}")
    if result.body:
        click.echo("")
        if raw:
            sys.stdout.flush()
            sys.stdout.buffer.write(result.body)
            if not result.body.endswith(b"\n"):
                sys.stdout.buffer.write(b"\n")
            sys.stdout.flush()
        else:
            click.echo(_readable(result.body, response_type))
    error_code = ctx.properties.get("ERROR_CODE")
    if error_code is not None:
        message = ctx.properties.get("ERROR_MESSAGE") or ""
        click.echo(f"sfbulk run: fault ERROR_CODE {error_code}: {message}", err=True)
    if result.status >= 400 or error_code is not None:
        sys.exit(EXIT_FAILED)


@click.command("validate")
@click.argument("configs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
def validate_command(configs: tuple[str, ...]) -> None:
    """Check CONFIG... (Synapse XML files or folders, YAML flows) without running anything.

    Prints "OK: N proxies, M sequences" or every error with its file and line (exit status 1).
    Expressions are compiled and connector operations checked against the bundled connector.
    """
    from sfbulk.config import load_paths

    config_log = logging.getLogger("sfbulk.config")
    previous = config_log.level
    config_log.setLevel(logging.ERROR)  # warnings are printed below, once, without log prefixes
    try:
        loaded = load_paths(list(configs), connectors=_bundled_connectors())
    except ConfigError as exc:
        errors = _config_errors(exc)
        for error in errors:
            click.echo(f"error: {error}", err=True)
        click.echo(f"{len(errors)} error(s) found", err=True)
        sys.exit(EXIT_FAILED)
    finally:
        config_log.setLevel(previous)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)
    summary = (
        f"OK: {_count(len(loaded.proxies), 'proxy', 'proxies')}, {_count(len(loaded.sequences), 'sequence')}"
    )
    if loaded.local_entries:
        summary += f", {_count(len(loaded.local_entries), 'local entry', 'local entries')}"
    click.echo(summary)


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
