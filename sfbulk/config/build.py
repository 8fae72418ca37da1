"""Turn a config ``Document`` (from YAML or Synapse XML) into proxies, sequences and local entries.

The one place that knows the mediator constructors: one method per mediator family, each
compiling its expressions, regexes and XML fragments once (expressions never compile per message).
Every problem becomes a ``ConfigError`` naming the file, line and field; errors are collected so a
user sees all of them at once, and nothing half-built escapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from lxml import etree

from sfbulk import mediators as m
from sfbulk import xmlsafe
from sfbulk.config.document import Document, Path
from sfbulk.errors import ConfigError, PayloadError

#: mediators written as a bare word in YAML (``- respond``)
_BARE = {"respond", "drop", "send", "loopback", "log"}


class Builder:
    """Builds one document; problems are appended to ``errors`` (shared across files by the loader)."""

    def __init__(
        self, doc: Document, errors: list[ConfigError], connectors: Mapping[str, Any] | None = None,
        *, lenient: bool = False,
    ) -> None:
        self.doc = doc
        self.errors = errors
        self.connectors = connectors
        #: undeclared connector parameters are warnings (in ``warnings``) instead of errors
        self.lenient = lenient
        self.warnings: list[str] = []
        self._compile_expression: Callable[..., Any] | None = None
        self._value_parse: Callable[..., Any] | None = None

    # --- locations and compilation ---------------------------------------------------------

    def error(self, message: str, path: Path) -> ConfigError:
        return ConfigError(
            message, file=self.doc.filename, line=self.doc.line_of(path), field=self.doc.field_of(path)
        )

    def relocate(self, exc: ConfigError, path: Path) -> ConfigError:
        """A ConfigError raised without a location (by a constructor or the compiler) gets ours."""
        if exc.file:
            return exc
        return self.error(exc.message, path)

    def expression(self, text: str, path: Path, *, json: bool = False) -> Any:
        if self._compile_expression is None:
            from sfbulk.expressions import compile_expression

            self._compile_expression = compile_expression
        if json and not text.lstrip().startswith("json-eval("):
            text = f"json-eval({text})"
        try:
            return self._compile_expression(text, namespaces=self.doc.namespaces_at(path))
        except ConfigError as exc:
            raise self.relocate(exc, path) from None
        except Exception as exc:  # a compiler bug must still point at the config line
            raise self.error(f"invalid expression {text!r}: {exc}", path) from None

    def value(self, text: str, path: Path) -> Any:
        """A literal or ``{expression}`` value (connector parameters, call-template params)."""
        if self._value_parse is None:
            from sfbulk.expressions import Value

            self._value_parse = Value.parse
        try:
            return self._value_parse(text, self.doc.namespaces_at(path))
        except ConfigError as exc:
            raise self.relocate(exc, path) from None

    def regex(self, text: str, path: Path) -> re.Pattern[str]:
        try:
            return re.compile(text)
        except re.error as exc:
            raise self.error(f"invalid regular expression {text!r}: {exc}", path) from None

    def element(self, text: str, path: Path) -> etree._Element:
        try:
            return xmlsafe.parse(text, what="inline XML")
        except PayloadError as exc:
            raise self.error(exc.message, path) from None

    # --- definitions -----------------------------------------------------------------------

    def build(self) -> tuple[dict[str, m.Proxy], dict[str, m.Sequence], dict[str, Any]]:
        data = self.doc.data or {}
        proxies: dict[str, m.Proxy] = {}
        sequences: dict[str, m.Sequence] = {}
        entries: dict[str, Any] = {}
        for name, spec in (data.get("localEntries") or {}).items():
            try:
                entries[name] = self.local_entry(spec, ("localEntries", name))
            except ConfigError as exc:
                self.record(exc)
        for name, spec in (data.get("sequences") or {}).items():
            try:
                sequences[name] = self.sequence(name, spec, ("sequences", name))
            except ConfigError as exc:
                self.record(exc)
        for name, spec in (data.get("proxies") or {}).items():
            try:
                proxies[name] = self.proxy(name, spec, ("proxies", name))
            except ConfigError as exc:
                self.record(exc)
        return proxies, sequences, entries

    def record(self, exc: ConfigError) -> None:
        if not isinstance(exc, _Reported):
            self.errors.append(exc)

    def local_entry(self, spec: Any, path: Path) -> Any:
        if isinstance(spec, dict):
            return self.element(spec["xml"], (*path, "xml"))
        return _text(spec).strip()

    def sequence(self, name: str | None, spec: Any, path: Path) -> m.Sequence:
        if isinstance(spec, list):
            return m.Sequence(name, self.mediators(spec, path))
        on_error = spec.get("onError")
        return m.Sequence(
            name, self.mediators(spec.get("mediators") or [], (*path, "mediators")), on_error=on_error
        )

    def slot(self, spec: Any, path: Path) -> m.Sequence | str | None:
        if spec is None:
            return None
        if isinstance(spec, str):
            return spec
        return self.sequence(None, spec, path)

    def proxy(self, name: str, spec: dict[str, Any], path: Path) -> m.Proxy:
        errors_before = len(self.errors)
        transports = spec.get("transports")
        if isinstance(transports, str):
            transports = [t for t in re.split(r"[\s,]+", transports) if t]
        if not transports or "all" in transports:
            transports = ["http", "https"]
        slots = {}
        for slot in ("inSequence", "outSequence", "faultSequence"):
            try:
                slots[slot] = self.slot(spec.get(slot), (*path, slot))
            except ConfigError as exc:
                self.record(exc)
        if spec.get("inSequence") is None and not spec.get("endpoint"):
            raise self.error(
                f"proxy {name!r} has neither an inSequence nor an endpoint: it would do nothing", path
            )
        endpoint = self.endpoint(spec["endpoint"], (*path, "endpoint")) if spec.get("endpoint") else None
        if len(self.errors) > errors_before:
            raise _Reported()
        line = self.doc.line_of(path)
        return m.Proxy(
            name,
            in_sequence=slots.get("inSequence"),
            out_sequence=slots.get("outSequence"),
            fault_sequence=slots.get("faultSequence"),
            transports=tuple(transports),
            start_on_load=bool(spec.get("startOnLoad", True)),
            endpoint=endpoint,
            description=spec.get("description") or "",
            source=f"{self.doc.filename}:{line}" if line else self.doc.filename,
        )

    # --- mediator lists --------------------------------------------------------------------

    def mediators(self, items: list[Any], path: Path) -> tuple[Any, ...]:
        """Build every item; a broken one is reported and the rest still checked."""
        built = []
        errors_before = len(self.errors)
        for index, item in enumerate(items):
            item_path = (*path, index)
            try:
                built.append(self.mediator(item, item_path))
            except ConfigError as exc:
                self.record(exc)
        if len(self.errors) > errors_before:
            # the caller must not build a container around a broken list; the errors are recorded
            raise _Reported()
        return tuple(built)

    def mediator(self, item: Any, path: Path) -> Any:
        if isinstance(item, str):
            kind, spec = item, None
        else:
            ((kind, spec),) = item.items()
        body_path = (*path, kind)
        method = _METHODS.get(kind)
        try:
            if method is not None:
                return method(self, spec or {}, body_path)
            if "." in kind:
                return self.connector_operation(kind, spec or {}, body_path)
            raise self.error(f"unknown mediator {kind!r}", path)
        except _Reported:
            raise
        except ConfigError as exc:
            raise self.relocate(exc, body_path) from None

    def branch(self, spec: Any, path: Path) -> tuple[tuple[Any, ...] | None, str | None]:
        if spec is None:
            return None, None
        if isinstance(spec, str):
            return None, spec
        return self.mediators(spec, path), None

    # --- one method per mediator -----------------------------------------------------------

    def property(self, spec: dict[str, Any], path: Path) -> m.PropertyMediator:
        given = [k for k in ("value", "xml", "expression") if k in spec]
        if len(given) > 1:
            raise self.error(
                f"property: give only one of value, expression or xml (got {', '.join(given)})", path
            )
        pattern = spec.get("pattern")
        return m.PropertyMediator(
            spec["name"],
            value=_text(spec["value"]) if "value" in spec else None,
            expression=self.expression(spec["expression"], (*path, "expression"))
            if "expression" in spec
            else None,
            element=self.element(spec["xml"], (*path, "xml")) if "xml" in spec else None,
            scope=spec.get("scope", "default"),
            type=spec.get("type", "STRING"),
            action=spec.get("action", "set"),
            pattern=self.regex(pattern, (*path, "pattern")) if pattern is not None else None,
            group=int(spec.get("group", 0)),
        )

    def filter(self, spec: dict[str, Any], path: Path) -> m.FilterMediator:
        xpath = source = regex = None
        if "xpath" in spec:
            xpath = self.expression(spec["xpath"], (*path, "xpath"))
        elif "source" in spec and "regex" in spec:
            source = self.expression(spec["source"], (*path, "source"))
            regex = self.regex(spec["regex"], (*path, "regex"))
        else:
            raise self.error("filter: give either 'xpath' or both 'source' and 'regex'", path)
        then, then_key = self.branch(spec.get("then"), (*path, "then"))
        else_, else_key = self.branch(spec.get("else"), (*path, "else"))
        return m.FilterMediator(
            xpath=xpath,
            source=source,
            regex=regex,
            then=then or (),
            else_=else_,
            then_sequence=then_key,
            else_sequence=else_key,
        )

    def switch(self, spec: dict[str, Any], path: Path) -> m.SwitchMediator:
        source = self.expression(spec["source"], (*path, "source"))
        cases = []
        for index, case in enumerate(spec.get("cases") or []):
            case_path = (*path, "cases", index)
            cases.append(
                m.SwitchCase(
                    self.regex(case["regex"], (*case_path, "regex")),
                    self.mediators(case.get("mediators") or [], (*case_path, "mediators")),
                )
            )
        default = spec.get("default")
        return m.SwitchMediator(
            source, cases, None if default is None else self.mediators(default, (*path, "default"))
        )

    def log(self, spec: dict[str, Any], path: Path) -> m.LogMediator:
        props = []
        for index, prop in enumerate(spec.get("properties") or []):
            prop_path = (*path, "properties", index)
            if ("value" in prop) == ("expression" in prop):
                raise self.error("log: a property needs exactly one of value or expression", prop_path)
            props.append(
                m.LogProperty(
                    prop["name"],
                    value=_text(prop["value"]) if "value" in prop else None,
                    expression=self.expression(prop["expression"], (*prop_path, "expression"))
                    if "expression" in prop
                    else None,
                )
            )
        return m.LogMediator(
            level=spec.get("level", "simple"),
            category=spec.get("category", "INFO"),
            separator=spec.get("separator", ", "),
            properties=props,
        )

    def payload_factory(self, spec: dict[str, Any], path: Path) -> m.PayloadFactoryMediator:
        args = []
        for index, arg in enumerate(spec.get("args") or []):
            arg_path = (*path, "args", index)
            if ("value" in arg) == ("expression" in arg):
                raise self.error("payloadFactory: an arg needs exactly one of value or expression", arg_path)
            evaluator = arg.get("evaluator")
            expression = None
            if "expression" in arg:
                expression = self.expression(
                    arg["expression"], (*arg_path, "expression"), json=evaluator == "json"
                )
            args.append(
                m.PayloadArg(
                    value=_text(arg["value"]) if "value" in arg else None,
                    expression=expression,
                    evaluator=evaluator,
                    literal=bool(arg.get("literal", False)),
                )
            )
        try:
            return m.PayloadFactoryMediator(
                spec["format"], media_type=spec.get("media-type", "xml"), args=args
            )
        except ConfigError as exc:
            raise self.relocate(exc, (*path, "format")) from None

    def header(self, spec: dict[str, Any], path: Path) -> m.HeaderMediator:
        if "value" in spec and "expression" in spec:
            raise self.error("header: give only one of value or expression", path)
        name = spec["name"]
        namespace = None
        scope = spec.get("scope", "default")
        if scope == "default" and ":" in name:
            prefix = name.split(":", 1)[0]
            namespace = self.doc.namespaces_at(path).get(prefix)
            if namespace is None:
                raise self.error(
                    f"header {name!r}: the prefix {prefix!r} is not bound to a namespace "
                    "(All SOAP headers must be namespace qualified)",
                    (*path, "name"),
                )
        return m.HeaderMediator(
            name,
            value=_text(spec["value"]) if "value" in spec else None,
            expression=self.expression(spec["expression"], (*path, "expression"))
            if "expression" in spec
            else None,
            scope=scope,
            action=spec.get("action", "set"),
            namespace=namespace,
        )

    def enrich(self, spec: dict[str, Any], path: Path) -> m.EnrichMediator:
        src = spec.get("source") or {}
        tgt = spec.get("target") or {}
        src_path, tgt_path = (*path, "source"), (*path, "target")
        inline: Any = None
        if "inline" in src:
            text = src["inline"]
            inline = self.element(text, (*src_path, "inline")) if text.strip().startswith("<") else text
        source = m.EnrichSource(
            type=src.get("type", "custom"),
            xpath=self.expression(src["xpath"], (*src_path, "xpath")) if "xpath" in src else None,
            property=src.get("property"),
            inline=inline,
            clone=bool(src.get("clone", True)),
        )
        target = m.EnrichTarget(
            type=tgt.get("type", "custom"),
            action=tgt.get("action", "replace"),
            xpath=self.expression(tgt["xpath"], (*tgt_path, "xpath")) if "xpath" in tgt else None,
            property=tgt.get("property"),
        )
        return m.EnrichMediator(source, target)

    def endpoint(self, spec: dict[str, Any], path: Path) -> m.HttpEndpoint:
        if "http" in spec:
            http = spec["http"]
            http_path = (*path, "http")
            timeout = http.get("timeout")
            try:
                return m.HttpEndpoint(
                    http["uri-template"],
                    method=http.get("method"),
                    properties={k: _text(v) for k, v in (http.get("properties") or {}).items()},
                    timeout=float(timeout) if timeout is not None else None,
                )
            except ConfigError as exc:
                raise self.relocate(exc, http_path) from None
        if "address" in spec:
            raise self.error(
                "<address> endpoints are not supported yet: use <http uri-template=...> (YAML: http: {uri-template: ...})",
                (*path, "address"),
            )
        raise self.error("an endpoint needs an http element", path)

    def call(self, spec: dict[str, Any], path: Path) -> m.CallMediator:
        return m.CallMediator(
            self.endpoint(spec["endpoint"], (*path, "endpoint")), blocking=bool(spec.get("blocking", False))
        )

    def send(self, spec: dict[str, Any], path: Path) -> m.SendMediator:
        endpoint = spec.get("endpoint")
        return m.SendMediator(self.endpoint(endpoint, (*path, "endpoint")) if endpoint else None)

    def respond(self, spec: Any, path: Path) -> m.RespondMediator:
        return m.RespondMediator()

    def drop(self, spec: Any, path: Path) -> m.DropMediator:
        return m.DropMediator()

    def loopback(self, spec: Any, path: Path) -> m.LoopbackMediator:
        return m.LoopbackMediator()

    def sequence_reference(self, spec: Any, path: Path) -> m.SequenceReference:
        key = spec if isinstance(spec, str) else spec["key"]
        return m.SequenceReference(key)

    def call_template(self, spec: dict[str, Any], path: Path) -> Any:
        raise self.error(
            "call-template is not supported: sfbulk runs connector operations (<salesforcebulk.createJob>), "
            "not user templates",
            path,
        )

    def connector_operation(
        self, kind: str, spec: dict[str, Any], path: Path
    ) -> m.ConnectorOperationMediator:
        connector_name, operation = kind.split(".", 1)
        if self.connectors is not None:
            connector = self.connectors.get(connector_name)
            if connector is None:
                known = ", ".join(sorted(self.connectors)) or "none"
                raise self.error(
                    f"unknown connector {connector_name!r} in {kind!r} (loaded connectors: {known})", path
                )
            from sfbulk.mediators.connector import operation_parameters

            if operation_parameters(connector, operation) is None:
                names = _operation_names(connector)
                hint = f" (operations: {', '.join(names)})" if names else ""
                raise self.error(f"connector {connector_name!r} has no operation {operation!r}{hint}", path)
            self.check_connector_parameters(connector, kind, spec, path)
        params = {}
        for name, raw in spec.items():
            text = "" if raw is None else _text(raw)
            if text == "":
                continue  # empty text: the parameter is not passed at all (synapse.md §2.4)
            params[name] = self.value(text, (*path, name))
        return m.ConnectorOperationMediator(connector_name, operation, params)


    def check_connector_parameters(self, connector: Any, kind: str, spec: Mapping[str, Any], path: Path) -> None:
        """A parameter the operation does not declare is a typo: an error, a warning with ``lenient``.

        Synapse ignores undeclared names, so ``<resultsId>`` would silently pass nothing at run time.
        """
        from sfbulk.mediators.connector import undeclared_parameters

        operation = kind.split(".", 1)[1]
        for name, message in undeclared_parameters(connector, operation, spec, label=kind):
            error = self.error(message, (*path, name))
            if self.lenient:
                self.warnings.append(f"{error}; ignored (--lenient)")
            else:
                self.errors.append(error)


class _Reported(ConfigError):
    """Internal: errors below were already recorded; unwind without recording again."""

    def __init__(self) -> None:
        super().__init__("errors already reported")


_METHODS: dict[str, Callable[[Builder, Any, Path], Any]] = {
    "property": Builder.property,
    "filter": Builder.filter,
    "switch": Builder.switch,
    "log": Builder.log,
    "payloadFactory": Builder.payload_factory,
    "header": Builder.header,
    "enrich": Builder.enrich,
    "call": Builder.call,
    "send": Builder.send,
    "respond": Builder.respond,
    "drop": Builder.drop,
    "loopback": Builder.loopback,
    "sequence": Builder.sequence_reference,
    "call-template": Builder.call_template,
}


def _text(value: Any) -> str:
    """A YAML scalar as Synapse would read its text: booleans lower-case, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _operation_names(connector: Any) -> list[str]:
    ops = getattr(connector, "operations", None)
    if isinstance(ops, Mapping):
        return sorted(ops)
    names = getattr(connector, "operation_names", None)
    if callable(names):
        return sorted(names())
    return []
