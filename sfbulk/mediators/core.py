"""Content mediators: property, log, header, payloadFactory, enrich (synapse.md §3.1, 3.4, 3.8-3.10).

Each class is built once from already-compiled expressions; ``mediate`` never parses configuration.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from sfbulk.errors import ConfigError, MediationFault
from sfbulk.javatext import java_string
from sfbulk.secrets import MASK, is_secret_name, redact

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.expressions.expression import Expression
    from sfbulk.message.context import MessageContext

log = logging.getLogger("sfbulk.mediation")

# --- property ----------------------------------------------------------------------------------

PROPERTY_SCOPES = ("default", "transport", "axis2", "axis2-client", "operation", "registry")
PROPERTY_TYPES = ("STRING", "BOOLEAN", "INTEGER", "LONG", "SHORT", "FLOAT", "DOUBLE", "OM", "JSON")
_INT_RANGES = {"SHORT": 16, "INTEGER": 32, "LONG": 64}
_JAVA_INT = re.compile(r"[+-]?[0-9]+")
_JAVA_FLOAT = re.compile(r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?)")


def convert_property_type(value: str, type_: str) -> Any:
    """Java-style conversion of a property string (PropertyMediator.convertValue); ValueError on failure."""
    if type_ == "STRING":
        return value
    if type_ == "BOOLEAN":
        return value.strip().lower() in ("true", "yes", "1")
    if type_ in _INT_RANGES:
        if not _JAVA_INT.fullmatch(value):
            raise ValueError(value)
        number = int(value)
        bits = _INT_RANGES[type_]
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise ValueError(value)
        return number
    if type_ in ("FLOAT", "DOUBLE"):
        text = value.strip()
        if not _JAVA_FLOAT.fullmatch(text):
            raise ValueError(value)
        text = text.rstrip("fFdD") if text[-1:] in "fFdD" and not text.endswith("Infinity") else text
        return float(text.replace("Infinity", "inf"))
    if type_ == "OM":
        from sfbulk.xmlsafe import parse

        return parse(value, what="OM property value")
    if type_ == "JSON":
        return json.loads(value)
    raise ValueError(f"unknown type {type_}")


class PropertyMediator:
    """``<property>``: set or remove a property in one scope (synapse.md §3.1, vectors P1-P13)."""

    def __init__(
        self,
        name: str,
        *,
        value: str | None = None,
        expression: Expression | None = None,
        element: etree._Element | None = None,
        scope: str = "default",
        type: str = "STRING",  # noqa: A002 - Synapse's attribute name
        action: str = "set",
        pattern: re.Pattern[str] | None = None,
        group: int = 0,
    ) -> None:
        scope = (scope or "default").lower()
        type_ = (type or "STRING").upper()
        action = (action or "set").lower()
        if scope not in PROPERTY_SCOPES:
            raise ConfigError(f"property {name!r}: unsupported scope {scope!r} (use one of {', '.join(PROPERTY_SCOPES)})")
        if type_ not in PROPERTY_TYPES:
            raise ConfigError(f"property {name!r}: unknown type {type!r} (use one of {', '.join(PROPERTY_TYPES)})")
        if action not in ("set", "remove"):
            raise ConfigError(f"property {name!r}: action must be 'set' or 'remove', not {action!r}")
        if action == "set" and value is None and expression is None and element is None:
            raise ConfigError(f"property {name!r}: one of value, expression or an inline element is required")
        self.name = name
        self.scope = "axis2" if scope == "axis2-client" else scope
        self.type = type_
        self.action = action
        self.expression = expression
        self.element = element
        self.pattern = pattern
        self.group = group
        self.value: Any = None
        # Precedence (PropertyMediatorFactory): value > inline element > expression.
        if value is not None:
            try:
                self.value = convert_property_type(value, type_)
            except Exception as exc:
                raise ConfigError(f"property {name!r}: value {value!r} cannot be converted to {type_}") from exc
            self.element = None
            self.expression = None
        elif element is not None:
            self.expression = None

    def _result(self, ctx: MessageContext) -> Any:
        if self.value is not None:
            return self.value
        if self.element is not None:
            return copy.deepcopy(self.element)
        assert self.expression is not None
        result: Any = self.expression.string_value(ctx)
        if result is None:
            return None
        if self.pattern is not None:
            match = self.pattern.fullmatch(result)
            if match is None:
                result = ""
            else:
                result = match.group(self.group) if self.group <= (self.pattern.groups or 0) else result
                result = "" if result is None else result
        try:
            return convert_property_type(result, self.type)
        except Exception as exc:
            raise MediationFault(f"Unknown type : {self.type} for the value {result} cannot be converted") from exc

    def mediate(self, ctx: MessageContext) -> bool:
        if self.action == "remove":
            ctx.remove_property(self.name, self.scope)
            return True
        value = self._result(ctx)
        scope = self.scope
        if scope == "registry":
            if value is not None:
                ctx.set_property(self.name, java_string(value), "registry")
            return True
        if scope == "transport":
            ctx.set_property(self.name, java_string(value, null=""), "transport")
            return True
        if value is None and scope == "default":
            return True  # Axis2MessageContext.setProperty: null is a no-op, the old value stays
        # axis2 messageType is special (P10): the context drags ContentType and Content-Type along.
        ctx.set_property(self.name, value, scope)
        return True


def display_value(value: Any) -> str:
    """Java ``String.valueOf`` of a property value for logs and faults (secrets stay masked)."""
    return java_string(value)


# --- log ---------------------------------------------------------------------------------------

LOG_LEVELS = ("simple", "headers", "full", "custom")
#: Longest value one ``<log>`` property writes, and longest payload ``level="full"`` writes
#: (characters): the request decides how long they are, the log must not (docs/security.md).
LOG_VALUE_LIMIT = 1000
LOG_PAYLOAD_LIMIT = 8000
_CATEGORIES = {
    "TRACE": 5,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
}


@dataclass(frozen=True)
class LogProperty:
    """A ``<property>`` child of ``<log>``: a literal value or an expression."""

    name: str
    value: str | None = None
    expression: Expression | None = None


class LogMediator:
    """``<log>``: one line on ``sfbulk.mediation``; never changes the message (synapse.md §3.4)."""

    def __init__(
        self,
        *,
        level: str = "simple",
        category: str = "INFO",
        separator: str = ", ",
        properties: Sequence[LogProperty] = (),
    ) -> None:
        level = (level or "simple").lower()
        if level not in LOG_LEVELS:
            raise ConfigError(f"log: unknown level {level!r} (use one of {', '.join(LOG_LEVELS)})")
        category_key = (category or "INFO").upper()
        if category_key not in _CATEGORIES:
            raise ConfigError(f"log: unknown category {category!r} (use one of {', '.join(_CATEGORIES)})")
        self.level = level
        self.category = category_key
        self.log_level = _CATEGORIES[category_key]
        self.separator = ", " if separator is None else separator
        self.properties = tuple(properties)

    def mediate(self, ctx: MessageContext) -> bool:
        if log.isEnabledFor(self.log_level):
            log.log(self.log_level, "%s", mask_secrets(ctx, self.message(ctx)))
        return True

    def message(self, ctx: MessageContext) -> str:
        """The log line (without logger prefixes); secrets masked."""
        parts: list[str] = []
        if self.level in ("simple", "full"):
            parts.extend(_simple_parts(ctx))
        elif self.level == "headers":
            parts.extend(_header_parts(ctx))
        text = self.separator.join(parts)
        for prop in self.properties:
            if prop.expression is not None:
                value = display_value(prop.expression.string_value(ctx))
            else:
                value = display_value(prop.value)
            if is_secret_name(prop.name):
                value = MASK
            # masked before it is cut, so a cut never leaves half a secret in clear
            text += self.separator + prop.name + " = " + _bounded(mask_secrets(ctx, value), LOG_VALUE_LIMIT)
        if self.level == "full":
            text += self.separator + _bounded(mask_secrets(ctx, _payload_part(ctx)), LOG_PAYLOAD_LIMIT)
        if not parts and text.startswith(self.separator):
            text = text[len(self.separator) :]
        return text


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def mask_secrets(ctx: MessageContext, text: str) -> str:
    """Mask secrets in ``text``: known secret values, secret-looking fields, and the values of any
    property or header with a secret name (a token copied under another name stays hidden)."""
    values: set[str] = set()
    for mapping in (ctx.properties, ctx.headers, ctx.operation):
        for name, value in mapping.items():
            if isinstance(value, str) and len(value) >= 4 and is_secret_name(str(name)):
                values.add(value)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return redact(text)


def _simple_parts(ctx: MessageContext) -> list[str]:
    parts = [f"To: {ctx.to or ''}"]
    action = getattr(ctx, "soap_action", None)
    if action:
        parts.append(f"WSAction: {action}")
        parts.append(f"SOAPAction: {action}")
    message_id = ctx.properties.get("MessageID") if hasattr(ctx, "properties") else None
    if message_id:
        parts.append(f"MessageID: {message_id}")
    parts.append("Direction: " + ("response" if getattr(ctx, "is_response", False) else "request"))
    return parts


def _header_parts(ctx: MessageContext) -> list[str]:
    header = ctx.envelope.find("{*}Header")
    parts = []
    if header is not None:
        for block in header:
            if isinstance(block.tag, str):
                local = etree.QName(block).localname
                parts.append(f"{local} : {MASK if is_secret_name(local) else (block.text or '')}")
    return parts


def _payload_part(ctx: MessageContext) -> str:
    message_type = str(ctx.axis2.get("messageType") or "")
    if "json" in message_type:
        data, _ = ctx.payload_bytes()
        return "Payload: " + data.decode("utf-8", "replace")
    return "Envelope: " + etree.tostring(ctx.envelope, encoding="unicode")


# --- header ------------------------------------------------------------------------------------

WSA_NS = "http://www.w3.org/2005/08/addressing"
ADDRESSING_HEADERS = ("To", "From", "Action", "FaultTo", "ReplyTo", "RelatesTo")


class HeaderMediator:
    """``<header>``: transport headers, or SOAP/addressing headers in the default scope (synapse.md §3.9).

    ``name`` is the header name; for a namespaced SOAP header pass ``namespace`` (the URI the
    config's ``prefix:`` is bound to). Addressing names (To, From, Action, ...) need none.
    """

    def __init__(
        self,
        name: str,
        *,
        value: str | None = None,
        expression: Expression | None = None,
        scope: str = "default",
        action: str = "set",
        namespace: str | None = None,
    ) -> None:
        scope = (scope or "default").lower()
        action = (action or "set").lower()
        if scope not in ("default", "transport"):
            raise ConfigError(f"header {name!r}: scope must be 'default' or 'transport', not {scope!r}")
        if action not in ("set", "remove"):
            raise ConfigError(f"header {name!r}: action must be 'set' or 'remove', not {action!r}")
        if action == "set" and value is None and expression is None:
            raise ConfigError(f"header {name!r}: a value or an expression is required")
        if scope == "default" and name not in ADDRESSING_HEADERS and not namespace:
            raise ConfigError(f"header {name!r}: All SOAP headers must be namespace qualified")
        self.name = name
        self.value = value
        self.expression = expression
        self.scope = scope
        self.action = action
        self.namespace = namespace

    def _value(self, ctx: MessageContext) -> str | None:
        if self.value is not None:
            return self.value
        assert self.expression is not None
        return self.expression.string_value(ctx)

    def mediate(self, ctx: MessageContext) -> bool:
        if self.scope == "transport":
            if self.action == "remove":
                ctx.remove_property(self.name, "transport")
                return True
            value = self._value(ctx)
            if value is None:
                # [WS17] keeps a null header, which the pass-through sender then skips: same as absent.
                ctx.remove_property(self.name, "transport")
            else:
                ctx.set_property(self.name, value, "transport")
            return True
        value = None if self.action == "remove" else self._value(ctx)
        if self.name == "To":
            ctx.to = value
        elif self.name == "Action":
            ctx.soap_action = value
        else:
            self._soap_header(ctx, value)
        return True

    def _soap_header(self, ctx: MessageContext, value: str | None) -> None:
        envelope = ctx.envelope
        soap_ns = etree.QName(envelope).namespace
        header = envelope.find(f"{{{soap_ns}}}Header")
        tag = f"{{{self.namespace or WSA_NS}}}{self.name.split(':')[-1]}"
        if header is not None:
            for old in header.findall(tag):
                header.remove(old)
        if value is None:
            return
        if header is None:
            header = etree.Element(f"{{{soap_ns}}}Header")
            envelope.insert(0, header)
        element = etree.SubElement(header, tag)
        if self.namespace is None and self.name in ("From", "FaultTo", "ReplyTo"):
            etree.SubElement(element, f"{{{WSA_NS}}}Address").text = value
        else:
            element.text = value


# --- payloadFactory ----------------------------------------------------------------------------

PAYLOAD_NS = "http://ws.apache.org/commons/ns/payload"
_XML_TYPES = ("application/xml", "text/xml", "application/soap+xml")
_PLACEHOLDER = re.compile(r"\$(\d+)|\$\{(\d+)\}")


@dataclass(frozen=True)
class PayloadArg:
    """An ``<arg>``: a literal ``value`` or an ``expression`` (``evaluator`` "xml"/"json", ``literal``)."""

    value: str | None = None
    expression: Expression | None = None
    evaluator: str | None = None
    literal: bool = False


def escape_xml(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
    )


def escape_json(text: str) -> str:
    """JSON string escaping without the surrounding quotes (the format supplies them)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def looks_like_xml(text: str) -> bool:
    """PayloadFactoryMediator.isXML: parses as one XML element and ends with '>'."""
    stripped = text.strip()
    if not stripped.startswith("<") or not stripped.endswith(">"):
        return False
    try:
        from sfbulk.xmlsafe import parse

        parse(stripped)
    except Exception:
        return False
    return True


class PayloadFactoryMediator:
    """``<payloadFactory>``: build a new body from a format with ``$n`` arguments (synapse.md §3.8).

    ``format`` is what the config captured at load time: for media-type xml the serialized first
    child element of ``<format>`` (it carries the in-scope default namespace, the Synapse quirk of
    PF3), for json/text the element's text.
    """

    def __init__(
        self,
        format: str,  # noqa: A002 - Synapse's element name
        *,
        media_type: str = "xml",
        args: Sequence[PayloadArg] = (),
    ) -> None:
        media_type = (media_type or "xml").lower()
        if media_type not in ("xml", "json", "text"):
            raise ConfigError(f"payloadFactory: media-type must be xml, json or text, not {media_type!r}")
        if media_type == "xml":
            try:
                from sfbulk.xmlsafe import parse

                parse(_PLACEHOLDER.sub("0", format), what="payloadFactory format")
            except Exception as exc:
                raise ConfigError(f"payloadFactory: the xml format is not well-formed XML: {exc}") from exc
        self.format = format
        self.media_type = media_type
        self.args = tuple(args)

    def _arg_values(self, ctx: MessageContext) -> list[str]:
        values: list[str] = []
        for arg in self.args:
            if arg.expression is None:
                raw = arg.value or ""
                values.append(raw if looks_like_xml(raw) else escape_xml(raw))
                continue
            text = arg.expression.string_value(ctx)
            text = "" if text is None else text
            is_json_eval = (arg.evaluator or "").lower() == "json" or getattr(arg.expression, "is_json", False)
            if self.media_type == "json":
                if arg.literal:
                    values.append(escape_json(text))
                elif is_json_eval and text.lstrip()[:1] in ("{", "["):
                    values.append(text)
                elif looks_like_xml(text):
                    values.append(_xml_text_to_json(text))
                else:
                    values.append(escape_json(text))
            else:
                if not arg.literal and looks_like_xml(text):
                    values.append(text)
                else:
                    values.append(escape_xml(text))
        return values

    def render(self, ctx: MessageContext) -> str:
        """The format with ``$n`` replaced; a ``$n`` without argument stops replacement (WS17 'Mis-match')."""
        values = self._arg_values(ctx)
        out: list[str] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(self.format):
            index = int(match.group(1) or match.group(2))
            if not 1 <= index <= len(values):
                log.error("payloadFactory: mis-match detected between number of formatters and arguments")
                break
            out.append(self.format[pos : match.start()])
            out.append(values[index - 1])
            pos = match.end()
        out.append(self.format[pos:])
        return "".join(out)

    def mediate(self, ctx: MessageContext) -> bool:
        text = self.render(ctx)
        if self.media_type == "xml":
            from sfbulk.xmlsafe import parse

            element = parse(text, what="payloadFactory result")
            ctx.set_body_element(element)  # a SOAP Envelope replaces the whole envelope
            if ctx.axis2.get("messageType") not in _XML_TYPES:
                ctx.set_property("messageType", "application/xml", "axis2")
                ctx.set_property("ContentType", "application/xml", "axis2")
        elif self.media_type == "json":
            ctx.set_json_payload(text)
            ctx.set_property("messageType", "application/json", "axis2")
            ctx.set_property("ContentType", "application/json", "axis2")
        else:
            ctx.set_text_payload(text)
            ctx.set_property("messageType", "text/plain", "axis2")
        ctx.remove_property("NO_ENTITY_BODY", "axis2")
        return True


def _xml_text_to_json(text: str) -> str:
    """XML-looking argument in a JSON format: convert (wrapped in <jsonObject>) to JSON text."""
    from sfbulk.xmlsafe import parse

    element = parse("<jsonObject>" + text.strip() + "</jsonObject>", what="payloadFactory argument")
    return json.dumps(_element_to_json(element), ensure_ascii=False)


def _element_to_json(element: etree._Element) -> Any:
    children = [c for c in element if isinstance(c.tag, str)]
    if not children:
        text = element.text
        if text is None or text == "":
            return None
        for caster in (int, float):
            try:
                caster(text)
                return json.loads(text) if re.fullmatch(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", text) else text
            except ValueError:
                continue
        if text in ("true", "false"):
            return text == "true"
        return text
    result: dict[str, Any] = {}
    for child in children:
        key = etree.QName(child).localname
        value = _element_to_json(child)
        if key in result:
            if not isinstance(result[key], list):
                result[key] = [result[key]]
            result[key].append(value)
        else:
            result[key] = value
    return result


# --- enrich ------------------------------------------------------------------------------------

ENRICH_SOURCE_TYPES = ("custom", "envelope", "body", "property", "inline")
ENRICH_TARGET_TYPES = ("custom", "envelope", "body", "property")


@dataclass(frozen=True)
class EnrichSource:
    """``<source>`` of enrich: ``type`` custom (``xpath``), envelope, body, property (``property``), inline."""

    type: str = "custom"
    xpath: Expression | None = None
    property: str | None = None
    inline: etree._Element | str | None = None
    clone: bool = True


@dataclass(frozen=True)
class EnrichTarget:
    """``<target>`` of enrich: ``type`` custom (``xpath``), envelope, body, property; ``action`` replace/child/sibling."""

    type: str = "custom"
    action: str = "replace"
    xpath: Expression | None = None
    property: str | None = None


class EnrichMediator:
    """``<enrich>``: copy a node set, the body, a property or inline XML into the body, a property or a node."""

    def __init__(self, source: EnrichSource, target: EnrichTarget) -> None:
        if source.type not in ENRICH_SOURCE_TYPES:
            raise ConfigError(f"enrich: unknown source type {source.type!r}")
        if target.type not in ENRICH_TARGET_TYPES:
            raise ConfigError(f"enrich: unknown target type {target.type!r}")
        if target.action not in ("replace", "child", "sibling"):
            raise ConfigError(f"enrich: unknown target action {target.action!r}")
        if target.type == "envelope" and target.action != "replace":
            raise ConfigError("enrich: an envelope target only supports action 'replace'")
        if source.type == "custom" and source.xpath is None or target.type == "custom" and target.xpath is None:
            raise ConfigError("enrich: a custom source/target needs an xpath")
        if source.type == "property" and not source.property or target.type == "property" and not target.property:
            raise ConfigError("enrich: a property source/target needs a property name")
        if source.type == "inline" and source.inline is None:
            raise ConfigError("enrich: an inline source needs inline XML or text")
        self.source = source
        self.target = target

    def _source_items(self, ctx: MessageContext) -> list[Any]:
        """Elements and/or strings to copy."""
        src = self.source
        items: list[Any]
        if src.type == "body":
            items = [c for c in _body(ctx) if isinstance(c.tag, str)][:1]
        elif src.type == "envelope":
            items = [ctx.envelope]
        elif src.type == "inline":
            items = [src.inline]
        elif src.type == "property":
            value = ctx.get_property(src.property or "")
            if value is None:
                raise MediationFault(f"enrich: property {src.property!r} is not set")
            items = list(value) if isinstance(value, list) else [value]
        else:
            assert src.xpath is not None
            result = src.xpath.evaluate(ctx)
            items = list(result) if isinstance(result, list) else [result]
            items = [i for i in items if i is not None]
        if src.clone or src.type == "inline":
            items = [copy.deepcopy(i) if isinstance(i, etree._Element) else i for i in items]
        return [str(i) if not isinstance(i, etree._Element) else i for i in items]

    def mediate(self, ctx: MessageContext) -> bool:
        items = self._source_items(ctx)
        tgt = self.target
        if tgt.type == "property":
            assert tgt.property is not None
            if tgt.action == "child" and isinstance(ctx.get_property(tgt.property), etree._Element):
                parent = ctx.get_property(tgt.property)
                for item in items:
                    _append(parent, item)
                return True
            value: Any = items[0] if len(items) == 1 else items
            ctx.set_property(tgt.property, value)
            return True
        if tgt.type == "envelope":
            element = next((i for i in items if isinstance(i, etree._Element)), None)
            if element is None:
                raise MediationFault("enrich: an envelope target needs an XML source")
            ctx.set_body_element(element)  # an Envelope element replaces the whole envelope
            return True
        if tgt.type == "body":
            elements = [i for i in items if isinstance(i, etree._Element)]
            if tgt.action == "replace":
                if not elements:
                    raise MediationFault("enrich: a body target needs an XML source")
                ctx.set_body_element(elements[0])
                body = _body(ctx)
                for extra in elements[1:]:
                    body.append(extra)
            else:
                body = _body(ctx)
                anchor = body if tgt.action == "child" else next((c for c in body if isinstance(c.tag, str)), None)
                for item in items:
                    if anchor is None or tgt.action == "child":
                        _append(body, item)
                    else:
                        _add_after(anchor, item)
            _touched(ctx)
            return True
        assert tgt.xpath is not None
        result = tgt.xpath.evaluate(ctx)
        nodes = list(result) if isinstance(result, list) else [result]
        node = next((n for n in nodes if isinstance(n, etree._Element)), None)
        if node is None:
            raise MediationFault("enrich: the target xpath selects no element")
        if tgt.action == "replace":
            if len(items) == 1 and isinstance(items[0], str):
                for child in list(node):
                    node.remove(child)
                node.text = items[0]
            else:
                parent = node.getparent()
                if parent is None:
                    raise MediationFault("enrich: cannot replace the document element")
                for item in items:
                    _add_before(node, item)
                parent.remove(node)
        elif tgt.action == "child":
            for item in items:
                _append(node, item)
        else:
            for item in reversed(items):
                _add_after(node, item)
        _touched(ctx)
        return True


def _body(ctx: MessageContext) -> etree._Element:
    return ctx.body_element


def _touched(ctx: MessageContext) -> None:
    ctx.envelope  # noqa: B018 - reading it marks the payload as built (re-serialized, not relayed)


def _append(parent: etree._Element, item: Any) -> None:
    if isinstance(item, etree._Element):
        parent.append(item)
    elif len(parent):
        last = parent[-1]
        last.tail = (last.tail or "") + item
    else:
        parent.text = (parent.text or "") + item


def _add_after(node: etree._Element, item: Any) -> None:
    if isinstance(item, etree._Element):
        node.addnext(item)
    else:
        node.tail = item + (node.tail or "")


def _add_before(node: etree._Element, item: Any) -> None:
    if isinstance(item, etree._Element):
        node.addprevious(item)
    else:
        prev = node.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + item
        else:
            parent = node.getparent()
            assert parent is not None
            parent.text = (parent.text or "") + item
