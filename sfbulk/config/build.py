"""Turn a config ``Document`` (from YAML or Synapse XML) into proxies, APIs, sequences, endpoints and local entries.

The one place that knows the mediator constructors: one method per mediator family, each
compiling its expressions, regexes and XML fragments once (expressions never compile per message).
Every problem becomes a ``ConfigError`` naming the file, line and field; errors are collected so a
user sees all of them at once, and nothing half-built escapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree

from sfbulk import mediators as m
from sfbulk import xmlsafe
from sfbulk.config.document import Document, Path
from sfbulk.errors import ConfigError, PayloadError
from sfbulk.javatext import java_string
from sfbulk.mediators.api import Api, Resource
from sfbulk.mediators.flow import DirectionMediator
from sfbulk.mediators.http import AddressEndpoint, EndpointReference

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.connector.connection import Connector

#: mediators written as a bare word in YAML (``- respond``)
_BARE = {"respond", "drop", "send", "loopback", "log"}
#: Where a user who needs another connector is sent.
CONNECTOR_DOCS = "docs/connector.md"


@dataclass
class Built:
    """What one document defines, built. ``imports`` maps a connector name to its status and origin."""

    proxies: dict[str, m.Proxy] = field(default_factory=dict)
    sequences: dict[str, m.Sequence] = field(default_factory=dict)
    local_entries: dict[str, Any] = field(default_factory=dict)
    apis: dict[str, Api] = field(default_factory=dict)
    endpoints: dict[str, Any] = field(default_factory=dict)
    imports: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (status, file:line)


class Builder:
    """Builds one document; problems are appended to ``errors`` (shared across files by the loader)."""

    def __init__(
        self,
        doc: Document,
        errors: list[ConfigError],
        connectors: Mapping[str, Connector] | None = None,
        *,
        lenient: bool = False,
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
            from sfbulk.expressions.expression import compile_expression

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
            from sfbulk.expressions.expression import Value

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

    def build(self) -> Built:
        data = self.doc.data or {}
        built = Built()
        sections: tuple[tuple[str, dict[str, Any], Callable[[str, Any, Path], Any]], ...] = (
            ("imports", built.imports, self.connector_import),
            ("localEntries", built.local_entries, lambda name, spec, path: self.local_entry(spec, path)),
            ("endpoints", built.endpoints, self.named_endpoint),
            ("sequences", built.sequences, self.sequence),
            ("proxies", built.proxies, self.proxy),
            ("apis", built.apis, self.api),
        )
        for section, table, make in sections:
            for name, spec in (data.get(section) or {}).items():
                try:
                    value = make(name, spec, (section, name))
                except ConfigError as exc:
                    self.record(exc)
                    continue
                table[value.key if isinstance(value, Api) else name] = value
        return built

    def record(self, exc: ConfigError) -> None:
        if not isinstance(exc, _Reported):
            self.errors.append(exc)

    def local_entry(self, spec: Any, path: Path) -> Any:
        if isinstance(spec, dict):
            return self.element(spec["xml"], (*path, "xml"))
        return java_string(spec).strip()

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

    def api(self, key: str, spec: dict[str, Any], path: Path) -> Api:
        errors_before = len(self.errors)
        name = str(spec.get("name") or key)
        resources = []
        for index, item in enumerate(spec.get("resources") or []):
            resource_path = (*path, "resources", index)
            try:
                resources.append(self.resource(item, resource_path))
            except ConfigError as exc:
                self.record(exc)
        if len(self.errors) > errors_before:
            raise _Reported()
        version = spec.get("version")
        line = self.doc.line_of(path)
        try:
            return Api(
                name,
                str(spec["context"]),
                tuple(resources),
                version=java_string(version) if version is not None and version != "" else None,
                version_type=spec.get("version-type"),
                source=f"{self.doc.filename}:{line}" if line else self.doc.filename,
            )
        except ConfigError as exc:
            raise self.relocate(exc, path) from None

    def resource(self, spec: dict[str, Any], path: Path) -> Resource:
        if not spec:  # the reader already reported why this resource is missing
            raise _Reported()
        slots: dict[str, Any] = {}
        errors_before = len(self.errors)
        for slot in ("inSequence", "outSequence", "faultSequence"):
            try:
                slots[slot] = self.slot(spec.get(slot), (*path, slot))
            except ConfigError as exc:
                self.record(exc)
        if len(self.errors) > errors_before:
            raise _Reported()
        methods = spec.get("methods") or ()
        if isinstance(methods, str):
            methods = [m for m in re.split(r"[\s,]+", methods) if m]
        try:
            return Resource(
                tuple(str(m) for m in methods),
                uri_template=spec.get("uri-template"),
                url_mapping=spec.get("url-mapping"),
                in_sequence=slots.get("inSequence"),
                out_sequence=slots.get("outSequence"),
                fault_sequence=slots.get("faultSequence"),
            )
        except ConfigError as exc:
            field_name = _resource_field(spec, exc.message)
            raise self.relocate(exc, (*path, field_name) if field_name else path) from None

    def named_endpoint(self, name: str, spec: dict[str, Any], path: Path) -> Any:
        if "key" in spec:
            raise self.error(
                f"endpoint {name!r} must define an http or address endpoint, not refer to one", path
            )
        return self.endpoint(spec, path, name=name)

    def connector_import(self, name: str, spec: dict[str, Any], path: Path) -> tuple[str, str]:
        """An import enables a connector; one sfbulk does not ship is an error that says what to do."""
        spec = spec or {}
        status = str(spec.get("status") or "enabled")
        if status not in ("enabled", "disabled"):
            raise self.error(
                f"import {name!r}: status {status!r} is not enabled or disabled", (*path, "status")
            )
        if self.connectors is not None and name not in self.connectors:
            package = spec.get("package") or "org.wso2.carbon.connector"
            raise self.error(
                f"the WSO2 connector {name!r} ({package}) is not available in sfbulk: only "
                f"{', '.join(sorted(self.connectors)) or 'no connector'} is; see {CONNECTOR_DOCS}",
                path,
            )
        line = self.doc.line_of(path)
        return status, f"{self.doc.filename}:{line}" if line else self.doc.filename

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
            value=java_string(spec["value"]) if "value" in spec else None,
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
                    value=java_string(prop["value"]) if "value" in prop else None,
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
                    value=java_string(arg["value"]) if "value" in arg else None,
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
            value=java_string(spec["value"]) if "value" in spec else None,
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

    def endpoint(self, spec: dict[str, Any], path: Path, name: str | None = None) -> Any:
        """An endpoint spec: ``{key}`` (named, resolved when sending), ``{http: ...}`` or ``{address: ...}``."""
        if "key" in spec:
            return EndpointReference(str(spec["key"]))
        kind = "http" if "http" in spec else "address" if "address" in spec else None
        if kind is None:
            raise self.error("an endpoint needs an http or address element, or a key", path)
        body = spec[kind] or {}
        kind_path = (*path, kind)
        timeout = body.get("timeout")
        options: dict[str, Any] = {
            "properties": {k: java_string(v) for k, v in (body.get("properties") or {}).items()},
            "timeout": float(timeout) if timeout is not None else None,
            "name": name,
            "response_action": body.get("responseAction"),
        }
        try:
            if kind == "http":
                return m.HttpEndpoint(body["uri-template"], method=body.get("method"), **options)
            return AddressEndpoint(body["uri"], format=body.get("format"), **options)
        except ConfigError as exc:
            raise self.relocate(exc, kind_path) from None

    def call(self, spec: dict[str, Any], path: Path) -> m.CallMediator:
        return m.CallMediator(
            self.endpoint(spec["endpoint"], (*path, "endpoint")), blocking=bool(spec.get("blocking", False))
        )

    def send(self, spec: dict[str, Any], path: Path) -> m.SendMediator:
        endpoint = spec.get("endpoint")
        return m.SendMediator(self.endpoint(endpoint, (*path, "endpoint")) if endpoint else None)

    def in_(self, spec: Any, path: Path) -> DirectionMediator:
        return DirectionMediator(self.mediators(spec or [], path), response=False)

    def out(self, spec: Any, path: Path) -> DirectionMediator:
        return DirectionMediator(self.mediators(spec or [], path), response=True)

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
                    f"unknown connector {connector_name!r} in {kind!r}: sfbulk ships only {known}; "
                    f"see {CONNECTOR_DOCS}",
                    path,
                )
            from sfbulk.mediators.connector import operation_parameters

            if operation_parameters(connector, operation) is None:
                names = _operation_names(connector)
                hint = f" (operations: {', '.join(names)})" if names else ""
                raise self.error(f"connector {connector_name!r} has no operation {operation!r}{hint}", path)
            self.check_connector_parameters(connector, kind, spec, path)
        params = {}
        for name, raw in spec.items():
            text = "" if raw is None else java_string(raw)
            if text == "":
                continue  # empty text: the parameter is not passed at all (synapse.md §2.4)
            params[name] = self.value(text, (*path, name))
        return m.ConnectorOperationMediator(connector_name, operation, params)

    def check_connector_parameters(
        self, connector: Connector, kind: str, spec: Mapping[str, Any], path: Path
    ) -> None:
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
    "in": Builder.in_,
    "out": Builder.out,
}


def _resource_field(spec: dict[str, Any], message: str) -> str | None:
    """The resource attribute an error message is about (for its file:line:field)."""
    if "method" in message and "methods" in spec:
        return "methods"
    for key in ("uri-template", "url-mapping"):
        if key in message and key in spec:
            return key
    return next((k for k in ("uri-template", "url-mapping") if k in spec), None)


def _operation_names(connector: Connector) -> list[str]:
    return sorted(connector.operations)
