"""`sfbulk run` (mediate one message through a proxy or REST API) and `sfbulk validate` (check configs).

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
from sfbulk.httpheaders import header_value

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
    from sfbulk.connector.connection import bundled_connectors

    return dict(bundled_connectors())


def token_endpoint_defaults(token_endpoint: str | None) -> dict[str, dict[str, str]] | None:
    """``--token-endpoint`` as the init default of every bundled connector (1.0 and 2.0)."""
    if not token_endpoint:
        return None
    from sfbulk.connector.connection import BUNDLED

    return {name: {"tokenEndpointHostname": token_endpoint} for name in BUNDLED}


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
            return str(etree.tostring(root, encoding="unicode"))
    except Exception:  # noqa: BLE001 - not parseable: show it as it came
        return text
    return text


@click.command("run")
@click.argument("configs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@click.option("--proxy", "proxy_name", default=None, help="Name of the proxy that mediates the message.")
@click.option(
    "--api",
    "api_name",
    default=None,
    metavar="NAME",
    help="Name of the REST API that mediates the message (name:v<version> when several versions are loaded).",
)
@click.option(
    "--path",
    "sub_path",
    default=None,
    metavar="PATH",
    help="With --api: the request path below the API's context (and version), query included, "
    "e.g. /jobs/750x?state=Closed [default: /]. With --proxy: what follows /services/<proxy>.",
)
@click.option(
    "--url",
    "url_path",
    default=None,
    metavar="PATH",
    help="The request path (and query) as sent to `sfbulk serve`, e.g. /salesforcebulk/createJob: "
    "routed as the server routes it (/services/<proxy>, else the API whose context matches).",
)
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
@registry_option
@registry_key_option
@click.option(
    "--ca-file", type=click.Path(exists=True, dir_okay=False), help="CA bundle to verify HTTPS backends."
)
@token_endpoint_option
@lenient_option
@click.option(
    "--file-root",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory that operations' file paths (uploadJobData and result filePath) must lie under.",
)
@click.option("--include", "-i", is_flag=True, help="Print the response headers too.")
@click.option("--raw", is_flag=True, help="Print the body exactly as received (no indentation).")
@allow_host_options(
    "Without --allow-host or --settings, run trusts its input and checks no host; with them, "
    "Salesforce's domains and the --token-endpoint host:port are allowed too, as for serve."
)
def run_command(
    configs: tuple[str, ...],
    proxy_name: str | None,
    api_name: str | None,
    sub_path: str | None,
    url_path: str | None,
    input_file: Any,
    headers: tuple[str, ...],
    content_type: str | None,
    method: str | None,
    registry_dir: str,
    registry_key_file: str | None,
    ca_file: str | None,
    token_endpoint: str | None,
    file_root: str,
    include: bool,
    raw: bool,
    lenient: bool,
    allow_hosts: tuple[str, ...],
    settings_file: str | None,
) -> None:
    """Mediate one message through a proxy (--proxy) or REST API (--api, --url) of CONFIG... and
    print the response status and body.

    Exit status: 0 for a response below 400, 1 for an HTTP error status or a fault, 2 when the
    configuration is invalid.
    """
    from sfbulk.engine.engine import Engine
    from sfbulk.registry import open_registry

    chosen = [
        flag for flag, value in (("--proxy", proxy_name), ("--api", api_name), ("--url", url_path)) if value
    ]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --proxy NAME, --api NAME or --url PATH")
    if sub_path is not None and url_path is not None:
        raise click.UsageError("--path goes with --proxy or --api; --url already holds the whole path")
    header_list = [_parse_header(h) for h in headers]
    body = input_file.read() if input_file is not None else b""
    if content_type is None and input_file is not None:
        suffix = Path(getattr(input_file, "name", "")).suffix.lower()
        content_type = _CONTENT_TYPES.get(
            suffix, "application/xml" if body.lstrip().startswith(b"<") else "text/plain"
        )
    if content_type and header_value(header_list, "Content-Type") is None:
        header_list.append(("Content-Type", content_type))
    method = (method or ("POST" if input_file is not None else "GET")).upper()

    try:
        from sfbulk.transport import RequestsTransport

        policy = None
        if allow_hosts or settings_file:  # the input is the operator's own file: checked only on request
            policy = build_host_policy(token_endpoint, load_settings(settings_file), allow_hosts)
        engine = Engine(
            registry=open_registry(registry_dir, key_file=registry_key_file),
            init_defaults=token_endpoint_defaults(token_endpoint),
            transport=RequestsTransport(verify=ca_file or True, host_policy=policy),
        )
        engine.file_root = file_root
    except ConfigError as exc:
        click.echo(f"sfbulk run: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    except SfBulkError as exc:
        click.echo(f"sfbulk run: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    with engine:
        try:
            engine.load(*configs, connectors=_bundled_connectors(), lenient=lenient)
        except ConfigError as exc:
            errors = _config_errors(exc)
            click.echo(f"sfbulk run: {len(errors)} configuration error(s):", err=True)
            for error in errors:
                click.echo(f"  {error}", err=True)
            sys.exit(EXIT_CONFIG)
        outcome = _mediate(engine, proxy_name, api_name, sub_path, url_path, method, header_list, body)
        if isinstance(outcome, str):
            click.echo(f"sfbulk run: {outcome}", err=True)
            sys.exit(EXIT_CONFIG)
        result, ctx = outcome

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
    error_code = ctx.properties.get("ERROR_CODE") if ctx is not None else None
    if error_code is not None:
        message = ctx.properties.get("ERROR_MESSAGE") or ""
        click.echo(f"sfbulk run: fault ERROR_CODE {error_code}: {message}", err=True)
    if result.status >= 400 or error_code is not None:
        sys.exit(EXIT_FAILED)


def _mediate(
    engine: Any,
    proxy_name: str | None,
    api_name: str | None,
    sub_path: str | None,
    url_path: str | None,
    method: str,
    headers: list[tuple[str, str]],
    body: bytes,
) -> tuple[Any, Any] | str:
    """Route the message as `sfbulk serve` would and mediate it: (result, context), or a usage problem.

    A path no resource takes is answered as the server answers it (404/405, context None).
    """
    from sfbulk.engine.engine import fault_response
    from sfbulk.mediators.api import NoApiMatch, select_api
    from sfbulk.message.context import MessageContext

    if url_path is not None:
        if not url_path.startswith("/"):
            return f"--url {url_path!r} must be a path starting with / (e.g. /salesforcebulk/createJob)"
        name, _, rest = url_path.removeprefix("/services/").partition("/")
        name = name.partition("?")[0]
        if url_path.startswith("/services/") and name in engine.proxies:
            proxy_name, sub_path = name, url_path[len("/services/") + len(name) :]
        elif url_path.startswith("/services/") and not any(
            api.sub_path(url_path.partition("?")[0]) is not None for api in engine.apis.values()
        ):
            proxy_name = name  # reported below as an unknown proxy
    if proxy_name is not None:
        if proxy_name not in engine.proxies:
            known = ", ".join(sorted(engine.proxies)) or "none"
            return f"no proxy named {proxy_name!r} (loaded: {known})"
        postfix = sub_path or ""
        ctx = MessageContext.from_http(
            method=method,
            uri=f"/services/{proxy_name}{postfix}",
            headers=headers,
            body=body,
            rest_url_postfix=postfix,
            engine=engine,
        )
        return engine.mediate(proxy_name, ctx), ctx
    try:
        if api_name is not None:
            api = _find_api(engine, api_name)
            if isinstance(api, str):
                return api
            path = sub_path or "/"
            if not path.startswith(("/", "?")):
                path = "/" + path
            uri = (api.full_context.rstrip("/") + path) if path != "/" else api.full_context
            match = select_api([api], method, uri)
        else:
            assert url_path is not None
            uri = url_path
            match = engine.api_match(method, uri)
    except NoApiMatch as exc:
        result = fault_response("MethodNotAllowed" if exc.status == 405 else "NotFound", str(exc), exc.status)
        result.reason = "Method Not Allowed" if exc.status == 405 else "Not Found"
        return result, None
    ctx = MessageContext.from_http(
        method=method,
        uri=uri,
        headers=headers,
        body=body,
        rest_url_postfix=match.rest_url_postfix,
        engine=engine,
    )
    return engine.mediate_api(match, ctx), ctx


def _find_api(engine: Any, name: str) -> Any:
    """The API called ``name`` (its key, or its name when only one version is loaded), or a message."""
    apis = engine.apis
    if name in apis:
        return apis[name]
    versions = [api for api in apis.values() if api.name == name]
    if len(versions) == 1:
        return versions[0]
    if versions:
        keys = ", ".join(sorted(api.key for api in versions))
        return f"API {name!r} is loaded in several versions: use --api with one of {keys}"
    known = ", ".join(sorted(apis)) or "none"
    return f"no API named {name!r} (loaded: {known})"


@click.command("validate")
@click.argument("configs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=True))
@lenient_option
def validate_command(configs: tuple[str, ...], lenient: bool) -> None:
    """Check CONFIG... (Synapse XML files or folders, YAML flows, WSO2 deployment folders) without
    running anything.

    Prints "OK: N proxies, M sequences" (then APIs, endpoints and local entries, when there are any)
    or every error with its file and line (exit status 1).
    Expressions are compiled and connector operations checked against the bundled connector: a
    parameter the operation does not declare is an error naming the closest declared one.
    """
    from sfbulk.config import load_paths

    config_log = logging.getLogger("sfbulk.config")
    previous = config_log.level
    config_log.setLevel(logging.ERROR)  # warnings are printed below, once, without log prefixes
    try:
        loaded = load_paths(list(configs), connectors=_bundled_connectors(), lenient=lenient)
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
    for count, singular, plural in (
        (len(loaded.apis), "API", "APIs"),
        (len(loaded.endpoints), "endpoint", "endpoints"),
        (len(loaded.local_entries), "local entry", "local entries"),
    ):
        if count:
            summary += f", {_count(count, singular, plural)}"
    click.echo(summary)


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
