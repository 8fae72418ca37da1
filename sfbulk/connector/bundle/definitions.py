"""The connector bundle (connector.yaml + operations/*.yaml + templates/) as frozen definitions.

``sfbulk.connector.bundle.loader.load_bundle`` builds them from a bundle directory;
``OperationDef.bind`` checks parameter values and ``OperationDef.render`` turns them into the
pieces of one HTTP request. The format is documented in docs/connector.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfbulk.connector.bundle.templates import Renderable
from sfbulk.errors import ParameterError
from sfbulk.javatext import java_string

log = logging.getLogger("sfbulk.connector.connection")


# --- definitions ------------------------------------------------------------------------------


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
class CompiledRequest:
    """An operation's request templates, ready to render (compiled on first use)."""

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
    compiled: CompiledRequest = field(default_factory=CompiledRequest, compare=False, repr=False)

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
                raise ParameterError(
                    f"{self.name}: parameter {name!r} must be text, got {type(raw).__name__}"
                )
            value = "" if raw is None else java_string(raw)
            if value == "" and param.default is not None:
                value = param.default
            if value == "" and param.required:
                raise ParameterError(
                    f"{self.name}: parameter {name!r} is required"
                    + (f" ({param.description})" if param.description else "")
                )
            if value != "" and param.type == "integer":
                _check_integer(self.name, param, value)
            if value != "" and param.allowed is not None and value not in param.allowed:
                allowed = ", ".join(param.allowed)
                if param.strict:
                    raise ParameterError(
                        f"{self.name}: parameter {name!r} must be one of {allowed} (case-sensitive), got {value!r}"
                    )
                log.debug(
                    "%s: %s=%r is not a documented value (%s); passed through",
                    self.name,
                    name,
                    value,
                    allowed,
                )
            bound[name] = value
        return bound

    def render(self, bound: Mapping[str, str]) -> RenderedRequest:
        """The request pieces for bound parameter values (see ``bind``)."""
        if self.request is None or self.compiled.path is None:
            raise ParameterError(f"{self.name} is not an HTTP operation")
        for name in self.compiled.path_variables:
            if bound.get(name, "") == "":
                raise ParameterError(
                    f"{self.name}: parameter {name!r} is needed in the URL path and is empty"
                )
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
        raise ParameterError(
            f"{operation}: parameter {param.name!r} must be a whole number{least}, got {value!r}"
        )


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


__all__ = [
    "BodyDef",
    "CompiledRequest",
    "ConnectorDef",
    "OutputDef",
    "OperationDef",
    "ParameterDef",
    "RenderedRequest",
    "RequestDef",
    "ResponseDef",
]
