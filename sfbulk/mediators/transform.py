"""Transformation mediators: header, payloadFactory, enrich (synapse.md §3.8-3.10).

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

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.expressions.expression import Expression
    from sfbulk.message.context import MessageContext

log = logging.getLogger("sfbulk.mediation")


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
            is_json_eval = (arg.evaluator or "").lower() == "json"
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
        if (
            source.type == "custom"
            and source.xpath is None
            or target.type == "custom"
            and target.xpath is None
        ):
            raise ConfigError("enrich: a custom source/target needs an xpath")
        if (
            source.type == "property"
            and not source.property
            or target.type == "property"
            and not target.property
        ):
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
                anchor = (
                    body if tgt.action == "child" else next((c for c in body if isinstance(c.tag, str)), None)
                )
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
