"""The connector bundle (connector.yaml + operations/*.yaml + templates/) as frozen definitions.

``load_bundle`` reads a bundle directory, validates it (JSON Schema, then cross-checks: templates
exist and compile, every template variable is a declared parameter) and turns it into frozen
dataclasses; ``OperationDef.bind`` checks parameter values and ``OperationDef.render`` turns them
into the pieces of one HTTP request. The format is documented in docs/connector.md.

Loading is on the start-up path of every ``sfbulk load``/``extract``; the steps with a fast path
live in their own modules: ``sfbulk.yamlfile`` (YAML with line numbers, libyaml when it reads
the same), ``sfbulk.connector.bundle.schema`` (validity without jsonschema), ``sfbulk.connector.bundle.templates``
(templates analysed without compiling them) and ``sfbulk.connector.bundle.cache`` (results kept between runs).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from sfbulk.connector.bundle.cache import ParseCache, open_cache
from sfbulk.connector.bundle.schema import CONNECTOR_SCHEMA, OPERATION_SCHEMA, is_valid, validate
from sfbulk.connector.bundle.templates import (
    INLINE_ENVIRONMENT,
    PATH_ENVIRONMENT,
    Renderable,
    body_environment,
    body_template,
    inline_template,
    simple_template_variables,
)
from sfbulk.errors import ConfigError, ConfigErrors, ParameterError
from sfbulk.yamlfile import LineDict, field_path, line_of, load_yaml, parse_yaml

log = logging.getLogger("sfbulk.connector.connection")


# --- definitions ------------------------------------------------------------------------------


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class ParameterDef:
    name: str
    required: bool = False
    default: str | None = None
    description: str = ""
    allowed: tuple[str, ...] | None = None
    strict: bool = True
    #: "string", or "integer": a whole number (at least ``minimum``), checked before any call
    type: str = "string"
    minimum: float | None = None
    #: init only: another name for the init parameter ``alias_of`` (WSO2 v2's instanceUrl -> apiUrl)
    alias_of: str | None = None


@dataclass(frozen=True)
class BodyDef:
    #: "none", "template" (rendered from templates/) or "caller" (the caller's body relayed as is)
    kind: str = "none"
    template: str | None = None
    required: bool = False
    #: with "caller": the parameter that takes the Content-Type the caller's body came with, unless the call sets it
    caller_content_type: str | None = None
    #: with "input": the parameters choosing the source (INLINE/FILE), holding the text, naming the file
    mode: str | None = None
    inline: str | None = None
    file: str | None = None


@dataclass(frozen=True)
class RequestDef:
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    body: BodyDef = BodyDef()
    auth: str = "session"


@dataclass(frozen=True)
class OutputDef:
    """Where a successful response body goes (docs/connector.md, ``response.output``)."""

    #: parameter whose value FILE sends the body to a file; anything else keeps it in the message
    mode: str | None = None
    #: parameter naming the file (confined, see sfbulk/connector/files.py)
    file: str | None = None
    #: what happens to a body kept in the message: "none" or "csvToJson"
    convert: str = "none"
    #: parameter naming the CSV column delimiter (COMMA, TAB, ...) for csvToJson
    delimiter: str | None = None


@dataclass(frozen=True)
class ResponseDef:
    stream: bool = False
    extract: tuple[tuple[str, str], ...] = ()
    #: property name -> response header, copied into ``properties`` (also for streamed responses)
    headers: tuple[tuple[str, str], ...] = ()
    output: OutputDef | None = None


@dataclass(frozen=True)
class RenderedRequest:
    """The operation-specific part of an HTTP request (auth and base URL are added by the connection)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes | None
    body_from_caller: bool
    body_required: bool



@dataclass(frozen=True)
class _Compiled:
    path: Renderable | None = None
    query: tuple[tuple[str, Renderable], ...] = ()
    headers: tuple[tuple[str, Renderable], ...] = ()
    content_type: Renderable | None = None
    body: Renderable | None = None
    path_variables: frozenset[str] = frozenset()


@dataclass(frozen=True)
class OperationDef:
    name: str
    kind: str  # "http" or "init"
    description: str
    parameters: tuple[ParameterDef, ...]
    request: RequestDef | None
    response: ResponseDef
    source: str
    compiled: _Compiled = field(default_factory=_Compiled, compare=False, repr=False)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def parameter(self, name: str) -> ParameterDef | None:
        for param in self.parameters:
            if param.name == name:
                return param
        return None

    def bind(self, values: Mapping[str, Any]) -> dict[str, str]:
        """Apply defaults, check required and allowed values; unknown names are errors (typos)."""
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ParameterError(
                f"{self.name}: unknown parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(u) for u in unknown)}; parameters are: {', '.join(known) or '(none)'}"
            )
        bound: dict[str, str] = {}
        for name, param in known.items():
            raw = values.get(name)
            if raw is not None and not isinstance(raw, (str, int, float, bool)):
                raise ParameterError(f"{self.name}: parameter {name!r} must be text, got {type(raw).__name__}")
            value = "" if raw is None else _to_text(raw)
            if value == "" and param.default is not None:
                value = param.default
            if value == "" and param.required:
                raise ParameterError(f"{self.name}: parameter {name!r} is required"
                                     + (f" ({param.description})" if param.description else ""))
            if value != "" and param.type == "integer":
                _check_integer(self.name, param, value)
            if value != "" and param.allowed is not None and value not in param.allowed:
                allowed = ", ".join(param.allowed)
                if param.strict:
                    raise ParameterError(
                        f"{self.name}: parameter {name!r} must be one of {allowed} (case-sensitive), got {value!r}"
                    )
                log.debug("%s: %s=%r is not a documented value (%s); passed through", self.name, name, value, allowed)
            bound[name] = value
        return bound

    def render(self, bound: Mapping[str, str]) -> RenderedRequest:
        """The request pieces for bound parameter values (see ``bind``)."""
        if self.request is None or self.compiled.path is None:
            raise ParameterError(f"{self.name} is not an HTTP operation")
        for name in self.compiled.path_variables:
            if bound.get(name, "") == "":
                raise ParameterError(f"{self.name}: parameter {name!r} is needed in the URL path and is empty")
        path = self.compiled.path.render(bound)
        query = []
        for name, template in self.compiled.query:
            value = template.render(bound)
            if value != "":
                _no_newlines(self.name, name, value)
                query.append((name, value))
        headers: dict[str, str] = {}
        for name, template in self.compiled.headers:
            value = template.render(bound).strip()
            if value != "":
                _no_newlines(self.name, name, value)
                headers[name] = value
        if self.compiled.content_type is not None:
            content_type = self.compiled.content_type.render(bound).strip()
            if content_type:
                _no_newlines(self.name, "contentType", content_type)
                headers["Content-Type"] = content_type
        body: bytes | None = None
        if self.compiled.body is not None:
            body = self.compiled.body.render(bound).encode("utf-8")
        return RenderedRequest(
            method=self.request.method,
            path=path,
            query=tuple(query),
            headers=headers,
            body=body,
            body_from_caller=self.request.body.kind == "caller",
            body_required=self.request.body.required,
        )


def _check_integer(operation: str, param: ParameterDef, value: str) -> None:
    """An integer parameter is a whole number in decimal digits, at least ``minimum``."""
    text = value.strip()
    ok = text.isascii() and text.isdigit()
    if ok and param.minimum is not None and int(text) < param.minimum:
        ok = False
    if not ok:
        least = f" of at least {param.minimum:g}" if param.minimum is not None else ""
        raise ParameterError(f"{operation}: parameter {param.name!r} must be a whole number{least}, got {value!r}")


def _no_newlines(operation: str, name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ParameterError(f"{operation}: the value for {name!r} must not contain line breaks")


@dataclass(frozen=True)
class ConnectorDef:
    name: str
    version: str
    description: str
    root: Path
    operations: Mapping[str, OperationDef]
    #: other names configs may use for this connector (``aliases`` in connector.yaml)
    aliases: tuple[str, ...] = ()
    #: operation paths are relative to this; ``{{ apiVersion }}`` is replaced by the init apiVersion
    base_path: str = "/services/async/{{ apiVersion }}"
    #: "x-sfdc-session" (X-SFDC-Session: token) or "bearer" (Authorization: Bearer token)
    session: str = "x-sfdc-session"

    def base(self, api_version: str) -> str:
        """The base path for ``api_version``: ``/services/async/62.0``, ``/services/data/v62.0/jobs``."""
        return self.base_path.replace("{{ apiVersion }}", api_version)


# --- loading ----------------------------------------------------------------------------------


class _Builder:
    """Turns one validated operation document into an OperationDef, collecting cross-check errors."""

    def __init__(self, doc: LineDict, display: str, templates_dir: Path, templates_display: str,
                 body_env: jinja2.Environment, cache: ParseCache | None = None) -> None:
        self.doc = doc
        self.cache = cache
        self.display = display
        self.templates_dir = templates_dir
        self.templates_display = templates_display
        self.body_env = body_env
        self.errors: list[ConfigError] = []

    def error(self, message: str, path: list[Any], *, file: str | None = None, line: int | None = None) -> None:
        self.errors.append(ConfigError(message, file=file or self.display,
                                       line=line if line is not None else line_of(self.doc, path),
                                       field=field_path(path) or None))

    def inline(self, env: jinja2.Environment, source: str, path: list[Any], declared: set[str]
               ) -> tuple[Renderable | None, frozenset[str]]:
        try:
            template, variables = inline_template(env, source)
        except jinja2.TemplateSyntaxError as exc:
            self.error(f"template syntax error: {exc.message}", path)
            return None, frozenset()
        for name in sorted(variables - declared):
            self.error(f"uses {name!r}, which is not a declared parameter", path)
        return template, variables

    def build(self) -> OperationDef:
        doc = self.doc
        name = doc["name"]
        kind = doc.get("kind", "http")
        params: list[ParameterDef] = []
        seen: set[str] = set()
        for index, raw in enumerate(doc.get("parameters", [])):
            pname = raw["name"]
            if pname in seen:
                self.error(f"duplicate parameter {pname!r}", ["parameters", index, "name"])
            seen.add(pname)
            allowed = tuple(_to_text(v) for v in raw["allowed"]) if "allowed" in raw else None
            default = _to_text(raw["default"]) if "default" in raw else None
            if default and allowed and raw.get("strict", True) and default not in allowed:
                self.error(f"default {default!r} is not one of the allowed values", ["parameters", index, "default"])
            params.append(ParameterDef(
                name=pname, required=bool(raw.get("required", False)), default=default,
                description=str(raw.get("description", "")).strip(), allowed=allowed,
                strict=bool(raw.get("strict", True)), type=raw.get("type", "string"),
                minimum=raw.get("minimum"), alias_of=raw.get("aliasOf"),
            ))
            if "aliasOf" in raw and kind != "init":
                self.error("aliasOf is only for init parameters", ["parameters", index, "aliasOf"])
        declared = set(seen)
        raw_response = doc.get("response", {})
        output = None
        if "output" in raw_response:
            raw_output = raw_response["output"]
            for key in ("mode", "file", "delimiter"):
                if key in raw_output and raw_output[key] not in declared:
                    self.error(f"names {raw_output[key]!r}, which is not a declared parameter",
                               ["response", "output", key])
            output = OutputDef(mode=raw_output.get("mode"), file=raw_output.get("file"),
                               convert=raw_output.get("convert", "none"), delimiter=raw_output.get("delimiter"))
        response = ResponseDef(
            stream=bool(raw_response.get("stream", False)),
            extract=tuple((k, v) for k, v in raw_response.get("extract", {}).items()),
            headers=tuple((k, v) for k, v in raw_response.get("headers", {}).items()),
            output=output,
        )
        if kind == "init":
            for key in ("request", "response"):
                if key in doc:
                    self.error(f"an init operation has no {key!r}: its behaviour is the auth code", [key])
            return OperationDef(name, kind, str(doc.get("description", "")).strip(), tuple(params), None,
                                response, self.display)
        if "request" not in doc:
            self.error("'request' is required (or declare 'kind: init')", [])
            return OperationDef(name, kind, "", tuple(params), None, response, self.display)
        raw_req = doc["request"]
        path_template, path_vars = self.inline(PATH_ENVIRONMENT, raw_req["path"], ["request", "path"], declared)
        query = []
        for qname, source in raw_req.get("query", {}).items():
            template, _ = self.inline(INLINE_ENVIRONMENT, source, ["request", "query", qname], declared)
            if template is not None:
                query.append((qname, template))
        headers = []
        lowered = set()
        for hname, source in raw_req.get("headers", {}).items():
            if hname.lower() in ("x-sfdc-session", "content-type", "content-length", "host", "authorization"):
                self.error(f"header {hname!r} is set by the connector itself"
                           + (" (use request.contentType)" if hname.lower() == "content-type" else ""),
                           ["request", "headers", hname])
            if hname.lower() in lowered:
                self.error(f"header {hname!r} is declared twice (header names are case-insensitive)",
                           ["request", "headers", hname])
            lowered.add(hname.lower())
            template, _ = self.inline(INLINE_ENVIRONMENT, source, ["request", "headers", hname], declared)
            if template is not None:
                headers.append((hname, template))
        content_type = None
        if "contentType" in raw_req:
            content_type, _ = self.inline(INLINE_ENVIRONMENT, raw_req["contentType"], ["request", "contentType"], declared)
        body_def = BodyDef()
        body_template = None
        raw_body = raw_req.get("body")
        if raw_body is not None and "template" in raw_body:
            template_name = raw_body["template"]
            body_def = BodyDef("template", template_name)
            body_template = self.load_body_template(template_name, declared)
        elif raw_body is not None and raw_body.get("from") == "input":
            for key in ("mode", "inline", "file"):
                if key in raw_body and raw_body[key] not in declared:
                    self.error(f"names {raw_body[key]!r}, which is not a declared parameter", ["request", "body", key])
            if "inline" not in raw_body and "file" not in raw_body:
                self.error("a body 'from: input' needs 'inline' or 'file' (or both)", ["request", "body"])
            body_def = BodyDef("input", mode=raw_body.get("mode"), inline=raw_body.get("inline"),
                               file=raw_body.get("file"))
        elif raw_body is not None:
            relay = raw_body.get("callerContentType")
            if relay is not None and relay not in declared:
                self.error(f"names {relay!r}, which is not a declared parameter", ["request", "body", "callerContentType"])
            body_def = BodyDef("caller", None, bool(raw_body.get("required", False)), relay)
        request = RequestDef(
            method=raw_req["method"], path=raw_req["path"],
            query=tuple((k, v) for k, v in raw_req.get("query", {}).items()),
            headers=tuple((k, v) for k, v in raw_req.get("headers", {}).items()),
            content_type=raw_req.get("contentType"), body=body_def, auth=raw_req.get("auth", "session"),
        )
        compiled = _Compiled(path=path_template, query=tuple(query), headers=tuple(headers),
                             content_type=content_type, body=body_template, path_variables=path_vars)
        return OperationDef(name, kind, str(doc.get("description", "")).strip(), tuple(params), request,
                            response, self.display, compiled)

    def load_body_template(self, template_name: str, declared: set[str]) -> Renderable | None:
        path = ["request", "body", "template"]
        display = f"{self.templates_display}/{template_name}"
        if "/" in template_name or "\\" in template_name or template_name.startswith("."):
            self.error("template must be a file name inside templates/", path)
            return None
        file = self.templates_dir / template_name
        if not file.is_file():
            self.error(f"template {display} not found", path)
            return None
        source = file.read_text(encoding="utf-8")
        try:
            template, variables = body_template(self.body_env, template_name, str(file), source, self.cache)
        except jinja2.TemplateSyntaxError as exc:
            self.error(f"template syntax error: {exc.message}", path, file=display, line=exc.lineno)
            return None
        for name in sorted(set(variables) - declared):
            self.error(f"uses {name!r}, which is not a declared parameter of the operation", path,
                       file=display, line=_first_line_mentioning(source, name))
        return template


def _first_line_mentioning(source: str, name: str) -> int | None:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, text in enumerate(source.splitlines(), 1):
        if pattern.search(text):
            return number
    return None


def load_bundle(root: Path, display_root: str | None = None) -> ConnectorDef:
    """Load and validate a bundle directory; all problems found are raised together."""
    cache = open_cache()
    try:
        return _load_bundle(root, display_root, cache)
    finally:
        if cache is not None:
            cache.save()


def _load_bundle(root: Path, display_root: str | None, cache: ParseCache | None) -> ConnectorDef:
    root = Path(root)
    shown = (display_root or str(root)).rstrip("/")

    def show(rel: str) -> str:
        return f"{shown}/{rel}" if shown else rel

    manifest_display = show("connector.yaml")
    manifest = load_yaml(root / "connector.yaml", manifest_display, cache)
    validate(manifest, CONNECTOR_SCHEMA, manifest_display)
    templates_dir = root / "templates"
    body_env = body_environment(templates_dir)
    operations: dict[str, OperationDef] = {}
    errors: list[ConfigError] = []
    for op_name, rel in manifest["operations"].items():
        rel_path = Path(rel)
        display = show(rel)
        if rel_path.is_absolute() or ".." in rel_path.parts:
            errors.append(ConfigError("operation files must be inside the bundle", file=manifest_display,
                                      line=manifest["operations"].lines.get(op_name), field=f"operations.{op_name}"))
            continue
        try:
            doc = load_yaml(root / rel_path, display, cache)
            validate(doc, OPERATION_SCHEMA, display)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        except ConfigError as exc:
            if exc.message == "file not found":
                exc = ConfigError(f"operation file {rel} not found", file=manifest_display,
                                  line=manifest["operations"].lines.get(op_name), field=f"operations.{op_name}")
            errors.append(exc)
            continue
        if doc["name"] != op_name:
            errors.append(ConfigError(f"operation is listed as {op_name!r} in connector.yaml but named "
                                      f"{doc['name']!r} here", file=display, line=doc.lines.get("name"), field="name"))
            continue
        builder = _Builder(doc, display, templates_dir, show("templates"), body_env, cache)
        operation = builder.build()
        if builder.errors:
            errors.extend(builder.errors)
            continue
        operations[op_name] = operation
    inits = [op for op in operations.values() if op.kind == "init"]
    if len(inits) > 1:
        errors.append(ConfigError("only one operation may have kind: init", file=manifest_display))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    base_path = manifest.get("basePath", ConnectorDef.base_path)
    if "{" in base_path.replace("{{ apiVersion }}", "") or "}" in base_path.replace("{{ apiVersion }}", ""):
        raise ConfigError("basePath may only use {{ apiVersion }}", file=manifest_display,
                          line=manifest.lines.get("basePath"), field="basePath")
    return ConnectorDef(
        name=manifest["name"], version=_to_text(manifest["version"]),
        description=str(manifest.get("description", "")).strip(), root=root, operations=operations,
        aliases=tuple(manifest.get("aliases", ())), base_path=base_path,
        session=manifest.get("session", ConnectorDef.session),
    )


__all__ = [
    "BodyDef",
    "ConnectorDef",
    "OutputDef",
    "ParseCache",
    "OperationDef",
    "ParameterDef",
    "RenderedRequest",
    "RequestDef",
    "ResponseDef",
    "is_valid",
    "load_bundle",
    "load_yaml",
    "parse_yaml",
    "simple_template_variables",
    "validate",
]
