"""Loading a connector bundle directory into frozen definitions, with every problem found at once.

``load_bundle`` reads connector.yaml and operations/*.yaml (``sfbulk.yamlfile``), checks them
against their JSON Schemas (``schema``), then cross-checks what a schema cannot: templates exist
and compile, every template variable is a declared parameter, names match. Loading is on the
start-up path of every ``sfbulk load``/``extract``, so the results of its pure steps are kept in
the start-up cache (``cache``) and templates are compiled on first render (``templates``).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jinja2

from sfbulk.connector.bundle.cache import ParseCache, open_cache
from sfbulk.connector.bundle.definitions import (
    BodyDef,
    CompiledRequest,
    ConnectorDef,
    OperationDef,
    OutputDef,
    ParameterDef,
    RequestDef,
    ResponseDef,
)
from sfbulk.connector.bundle.schema import CONNECTOR_SCHEMA, OPERATION_SCHEMA, validate
from sfbulk.connector.bundle.templates import (
    INLINE_ENVIRONMENT,
    PATH_ENVIRONMENT,
    Renderable,
    body_environment,
    body_template,
    inline_template,
)
from sfbulk.errors import ConfigError, ConfigErrors
from sfbulk.javatext import java_string
from sfbulk.yamlfile import LineDict, field_path, line_of, parse_cached, read_text


def _load_checked(
    path: Path, display: str, schema: dict[str, Any], kind: str, cache: ParseCache | None
) -> Any:
    """One bundle document, parsed and checked against ``schema``; the check is skipped when the
    start-up cache says this very text passed it before (jsonschema is then not even imported)."""
    text = read_text(path, display)
    document = parse_cached(text, display, cache)
    if cache is None or cache.get(kind, text) is not True:
        validate(document, schema, display)
        if cache is not None:
            cache.put(kind, text, True)
    return document


class _Builder:
    """Turns one validated operation document into an OperationDef, collecting cross-check errors."""

    def __init__(
        self,
        doc: LineDict,
        display: str,
        templates_dir: Path,
        templates_display: str,
        body_env: jinja2.Environment,
        cache: ParseCache | None = None,
    ) -> None:
        self.doc = doc
        self.cache = cache
        self.display = display
        self.templates_dir = templates_dir
        self.templates_display = templates_display
        self.body_env = body_env
        self.errors: list[ConfigError] = []

    def error(
        self, message: str, path: list[Any], *, file: str | None = None, line: int | None = None
    ) -> None:
        self.errors.append(
            ConfigError(
                message,
                file=file or self.display,
                line=line if line is not None else line_of(self.doc, path),
                field=field_path(path) or None,
            )
        )

    def inline(
        self, env: jinja2.Environment, source: str, path: list[Any], declared: set[str]
    ) -> tuple[Renderable | None, frozenset[str]]:
        try:
            template, variables = inline_template(env, source, self.cache)
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
            allowed = tuple(java_string(v) for v in raw["allowed"]) if "allowed" in raw else None
            default = java_string(raw["default"]) if "default" in raw else None
            if default and allowed and raw.get("strict", True) and default not in allowed:
                self.error(
                    f"default {default!r} is not one of the allowed values", ["parameters", index, "default"]
                )
            params.append(
                ParameterDef(
                    name=pname,
                    required=bool(raw.get("required", False)),
                    default=default,
                    description=str(raw.get("description", "")).strip(),
                    allowed=allowed,
                    strict=bool(raw.get("strict", True)),
                    type=raw.get("type", "string"),
                    minimum=raw.get("minimum"),
                    alias_of=raw.get("aliasOf"),
                )
            )
            if "aliasOf" in raw and kind != "init":
                self.error("aliasOf is only for init parameters", ["parameters", index, "aliasOf"])
        declared = set(seen)
        raw_response = doc.get("response", {})
        output = None
        if "output" in raw_response:
            raw_output = raw_response["output"]
            for key in ("mode", "file", "delimiter"):
                if key in raw_output and raw_output[key] not in declared:
                    self.error(
                        f"names {raw_output[key]!r}, which is not a declared parameter",
                        ["response", "output", key],
                    )
            output = OutputDef(
                mode=raw_output.get("mode"),
                file=raw_output.get("file"),
                convert=raw_output.get("convert", "none"),
                delimiter=raw_output.get("delimiter"),
            )
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
            return OperationDef(
                name,
                kind,
                str(doc.get("description", "")).strip(),
                tuple(params),
                None,
                response,
                self.display,
            )
        if "request" not in doc:
            self.error("'request' is required (or declare 'kind: init')", [])
            return OperationDef(name, kind, "", tuple(params), None, response, self.display)
        raw_req = doc["request"]
        path_template, path_vars = self.inline(
            PATH_ENVIRONMENT, raw_req["path"], ["request", "path"], declared
        )
        query = []
        for qname, source in raw_req.get("query", {}).items():
            template, _ = self.inline(INLINE_ENVIRONMENT, source, ["request", "query", qname], declared)
            if template is not None:
                query.append((qname, template))
        headers = []
        lowered = set()
        for hname, source in raw_req.get("headers", {}).items():
            if hname.lower() in ("x-sfdc-session", "content-type", "content-length", "host", "authorization"):
                self.error(
                    f"header {hname!r} is set by the connector itself"
                    + (" (use request.contentType)" if hname.lower() == "content-type" else ""),
                    ["request", "headers", hname],
                )
            if hname.lower() in lowered:
                self.error(
                    f"header {hname!r} is declared twice (header names are case-insensitive)",
                    ["request", "headers", hname],
                )
            lowered.add(hname.lower())
            template, _ = self.inline(INLINE_ENVIRONMENT, source, ["request", "headers", hname], declared)
            if template is not None:
                headers.append((hname, template))
        content_type = None
        if "contentType" in raw_req:
            content_type, _ = self.inline(
                INLINE_ENVIRONMENT, raw_req["contentType"], ["request", "contentType"], declared
            )
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
                    self.error(
                        f"names {raw_body[key]!r}, which is not a declared parameter",
                        ["request", "body", key],
                    )
            if "inline" not in raw_body and "file" not in raw_body:
                self.error("a body 'from: input' needs 'inline' or 'file' (or both)", ["request", "body"])
            body_def = BodyDef(
                "input", mode=raw_body.get("mode"), inline=raw_body.get("inline"), file=raw_body.get("file")
            )
        elif raw_body is not None:
            relay = raw_body.get("callerContentType")
            if relay is not None and relay not in declared:
                self.error(
                    f"names {relay!r}, which is not a declared parameter",
                    ["request", "body", "callerContentType"],
                )
            body_def = BodyDef("caller", None, bool(raw_body.get("required", False)), relay)
        request = RequestDef(
            method=raw_req["method"],
            path=raw_req["path"],
            query=tuple((k, v) for k, v in raw_req.get("query", {}).items()),
            headers=tuple((k, v) for k, v in raw_req.get("headers", {}).items()),
            content_type=raw_req.get("contentType"),
            body=body_def,
            auth=raw_req.get("auth", "session"),
        )
        compiled = CompiledRequest(
            path=path_template,
            query=tuple(query),
            headers=tuple(headers),
            content_type=content_type,
            body=body_template,
            path_variables=path_vars,
        )
        return OperationDef(
            name,
            kind,
            str(doc.get("description", "")).strip(),
            tuple(params),
            request,
            response,
            self.display,
            compiled,
        )

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
            self.error(
                f"uses {name!r}, which is not a declared parameter of the operation",
                path,
                file=display,
                line=_first_line_mentioning(source, name),
            )
        return template


def _first_line_mentioning(source: str, name: str) -> int | None:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, text in enumerate(source.splitlines(), 1):
        if pattern.search(text):
            return number
    return None


def load_bundle(root: Path, display_root: str | None = None) -> ConnectorDef:
    """Load and validate a bundle directory; all problems found are raised together.

    A bundle this process loaded before from the very same files is returned again (its
    definitions are frozen): every Engine loads the bundled connectors, and a server or a test
    process makes many, each of which used to read, decode and build both bundles again (10 ms,
    more with a big start-up cache). The files are read and hashed to know; nothing else is trusted.
    """
    root = Path(root)
    # the folder, and the path as written (a definition keeps it: templates are found through it)
    key = (str(root.absolute()), str(root), display_root)
    with _LOADED_LOCK:
        found = _LOADED.get(key)
    if found is not None and _signature(root, found[0]) == found[1]:
        return found[2]
    # Signed before loading, so that a file edited while it loads is never taken as loaded: the
    # operation files are the ones under operations/ (where bundles keep them); one named
    # elsewhere in connector.yaml is signed after the load.
    walked = _files_under(root, "operations")
    before = _signature(root, walked)
    cache = open_cache()
    read: list[str] = []
    try:
        definition = _load_bundle(root, display_root, cache, read)
    finally:
        if cache is not None:
            cache.save()
    made_of: tuple[Any, ...] | None
    if before is not None and {os.path.normpath(rel) for rel in read} <= set(walked):
        operation_files, made_of = walked, before
    else:
        operation_files = tuple(read)
        made_of = _signature(root, operation_files)
    if made_of is not None:
        with _LOADED_LOCK:
            _LOADED[key] = (operation_files, made_of, definition)
            _LOADED.move_to_end(key)
            while len(_LOADED) > _LOADED_LIMIT:
                _LOADED.popitem(last=False)
    return definition


#: bundles loaded by this process: (folder, root as given, display root) ->
#: (operation files, signature, definition)
_LOADED: OrderedDict[tuple[str, str, str | None], tuple[tuple[str, ...], tuple[Any, ...], ConnectorDef]] = (
    OrderedDict()
)
_LOADED_LIMIT = 32
_LOADED_LOCK = threading.Lock()


def _files_under(root: Path, folder: str) -> tuple[str, ...]:
    """Every file below ``root/folder``, as normalised paths relative to ``root``, in a fixed order."""
    found: list[str] = []
    for directory, subdirectories, files in os.walk(root / folder):
        subdirectories.sort()
        found.extend(os.path.relpath(os.path.join(directory, name), root) for name in sorted(files))
    return tuple(found)


def _signature(root: Path, operation_files: tuple[str, ...]) -> tuple[Any, ...] | None:
    """What a bundle is made of: connector.yaml, its operation files and every file under
    templates/, by path and SHA-256 of the bytes (None when one cannot be read)."""
    parts: list[tuple[str, bytes]] = []
    named = ["connector.yaml", *operation_files, *_files_under(root, "templates")]
    for rel in named:
        try:
            data = (root / rel).read_bytes()
        except OSError:
            return None
        parts.append((rel, hashlib.sha256(data).digest()))
    return tuple(parts)


def _load_bundle(
    root: Path, display_root: str | None, cache: ParseCache | None, operation_files: list[str]
) -> ConnectorDef:
    """The bundle at ``root``; the operation files it names are appended to ``operation_files``."""
    root = Path(root)
    shown = (display_root or str(root)).rstrip("/")

    def show(rel: str) -> str:
        return f"{shown}/{rel}" if shown else rel

    manifest_display = show("connector.yaml")
    manifest = _load_checked(
        root / "connector.yaml", manifest_display, CONNECTOR_SCHEMA, "valid-connector", cache
    )
    templates_dir = root / "templates"
    body_env = body_environment(templates_dir)
    operations: dict[str, OperationDef] = {}
    errors: list[ConfigError] = []
    for op_name, rel in manifest["operations"].items():
        operation_files.append(str(rel))
        rel_path = Path(rel)
        display = show(rel)
        if rel_path.is_absolute() or ".." in rel_path.parts:
            errors.append(
                ConfigError(
                    "operation files must be inside the bundle",
                    file=manifest_display,
                    line=manifest["operations"].lines.get(op_name),
                    field=f"operations.{op_name}",
                )
            )
            continue
        try:
            doc = _load_checked(root / rel_path, display, OPERATION_SCHEMA, "valid-operation", cache)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        except ConfigError as exc:
            if exc.message == "file not found":
                exc = ConfigError(
                    f"operation file {rel} not found",
                    file=manifest_display,
                    line=manifest["operations"].lines.get(op_name),
                    field=f"operations.{op_name}",
                )
            errors.append(exc)
            continue
        if doc["name"] != op_name:
            errors.append(
                ConfigError(
                    f"operation is listed as {op_name!r} in connector.yaml but named {doc['name']!r} here",
                    file=display,
                    line=doc.lines.get("name"),
                    field="name",
                )
            )
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
        raise ConfigError(
            "basePath may only use {{ apiVersion }}",
            file=manifest_display,
            line=manifest.lines.get("basePath"),
            field="basePath",
        )
    return ConnectorDef(
        name=manifest["name"],
        version=java_string(manifest["version"]),
        description=str(manifest.get("description", "")).strip(),
        root=root,
        operations=operations,
        aliases=tuple(manifest.get("aliases", ())),
        base_path=base_path,
        session=manifest.get("session", ConnectorDef.session),
    )


__all__ = ["load_bundle"]
