"""The message context: one mutable object per message, as Synapse's MessageContext (synapse.md §1).

It holds the payload (built lazily: raw bytes stay raw until a content-aware mediator looks inside),
the scoped properties, the case-insensitive transport headers, the template frames and the fault
stack, and it knows how to turn an HTTP request into a message (builders, §6.2) and a message back
into bytes (formatters, §6.4) and into the HTTP response for the caller (§6.5).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, quote_plus

from lxml import etree
from requests.structures import CaseInsensitiveDict

from sfbulk import xmlsafe
from sfbulk.errors import PayloadError
from sfbulk.secrets import Secret

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.message.engine_view import EngineView
    from sfbulk.registry import Registry

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
PAYLOAD_NS = "http://ws.apache.org/commons/ns/payload"

ENVELOPE_11 = f"{{{SOAP11_NS}}}Envelope"
ENVELOPE_12 = f"{{{SOAP12_NS}}}Envelope"
TEXT_WRAPPER = f"{{{PAYLOAD_NS}}}text"
BINARY_WRAPPER = f"{{{PAYLOAD_NS}}}binary"
#: Root element of a form-urlencoded body's XML view (Axis2 XFormURLEncodedBuilder).
FORM_ROOT = "xformValues"

JSON_DIGIT_PREFIX = "_JsonReader_PD_"
JSON_DOLLAR = "_JsonReader_PS_"

#: Headers never copied onto an outgoing request or response (framing is recomputed; synapse.md §6.5).
#: ``Host`` is ours: echoing the caller's Host back (or to a backend) is never right.
HOP_HEADERS = frozenset(
    h.lower()
    for h in (
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "Content-Length",
        "Date",
        "Server",
        "User-Agent",
        "Host",
    )
)

#: Property scopes the context stores (synapse.md §3.1).
SCOPES = ("default", "transport", "axis2", "axis2-client", "operation", "registry", "system")

#: JVM-style system properties (scope ``system``); process-wide like Java's.
SYSTEM_PROPERTIES: dict[str, str] = {}

_UNSET: Any = object()

_POX_PREFIX = (f'<soapenv:Envelope xmlns:soapenv="{SOAP11_NS}"><soapenv:Header/><soapenv:Body>').encode()
_POX_SUFFIX = b"</soapenv:Body></soapenv:Envelope>"


@dataclass(slots=True)
class HttpResult:
    """What goes back to the HTTP caller."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or None."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None


def base_type(content_type: str | None) -> str:
    """``"Application/XML; charset=UTF-8"`` -> ``"application/xml"``."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _content_type_param(content_type: str | None, name: str) -> str | None:
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"') or None
    return None


def _builder_for(content_type: str | None, body: bytes) -> str:
    """Which builder (§6.2) turns a body of this content type into an envelope."""
    if not body:
        return "empty"
    base = base_type(content_type)
    if base == "text/xml":
        return "soap11"
    if base == "application/soap+xml":
        return "soap12"
    if base == "application/xml" or (base.startswith("application/") and base.endswith("+xml")):
        return "pox"
    if base == "application/json" or (base.startswith("application/") and base.endswith("+json")):
        return "json"
    if base == "text/plain":
        return "text"
    if base == "application/x-www-form-urlencoded":
        return "form"
    if not base and body.lstrip()[:1] == b"<":
        return "pox"
    return "binary"


def _header_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, etree._Element):
        return xmlsafe.serialize(value)
    return str(value)


def _envelope_template(ns: str) -> etree._Element:
    env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soapenv": ns})
    etree.SubElement(env, f"{{{ns}}}Header")
    etree.SubElement(env, f"{{{ns}}}Body")
    return env


_TEMPLATES = {False: _envelope_template(SOAP11_NS), True: _envelope_template(SOAP12_NS)}


def new_envelope(soap12: bool = False) -> etree._Element:
    """An empty SOAP envelope: ``<soapenv:Envelope><soapenv:Header/><soapenv:Body/></soapenv:Envelope>``."""
    return copy.deepcopy(_TEMPLATES[soap12])  # copying a template is 3x faster than building one


def _soap_ns(env: etree._Element) -> str:
    return SOAP12_NS if env.tag == ENVELOPE_12 else SOAP11_NS


def _find_body(env: etree._Element) -> etree._Element:
    tag = f"{{{_soap_ns(env)}}}Body"
    if len(env) and env[-1].tag == tag:  # the usual place: last child
        return env[-1]
    for child in env:
        if child.tag == tag:
            return child
    raise PayloadError("the SOAP envelope has no Body element")


# --- JSON <-> XML (synapse.md §6.3) -------------------------------------------------------------


def _json_key_to_tag(key: str) -> str:
    tag = key.replace("$", JSON_DOLLAR)
    if tag[:1].isdigit():
        tag = JSON_DIGIT_PREFIX + tag
    return tag


def _json_scalar_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return str(value)


def _fill_json_element(el: etree._Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _append_json_member(el, str(key), item)
    elif isinstance(value, list):
        for item in value:
            _fill_json_element(etree.SubElement(el, "jsonElement"), item)
    else:
        el.text = _json_scalar_text(value)


def _append_json_member(parent: etree._Element, key: str, value: Any) -> None:
    tag = _json_key_to_tag(key)
    items = value if isinstance(value, list) else [value]
    for item in items:  # an array value becomes repeated elements; an empty array none at all
        try:
            child = etree.SubElement(parent, tag)
        except ValueError:
            raise PayloadError(
                f"JSON key {key!r} cannot be represented as an XML element name; use json-eval() to read this payload"
            ) from None
        if isinstance(item, list):
            for sub in item:
                _fill_json_element(etree.SubElement(child, "jsonElement"), sub)
        else:
            _fill_json_element(child, item)


def json_to_xml(value: Any) -> etree._Element:
    """The XML view of a JSON value: ``<jsonObject>`` / ``<jsonArray>`` (synapse.md §6.3, J1-J3)."""
    if isinstance(value, list):
        root = etree.Element("jsonArray")
    else:
        root = etree.Element("jsonObject")
    _fill_json_element(root, value)
    return root


class _RawJson(str):
    """JSON text emitted verbatim (numbers keep their XML spelling: ``25.0000``)."""


_JSON_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")


def _tag_to_json_key(tag: str) -> str:
    local = etree.QName(tag).localname if tag.startswith("{") else tag
    if local.startswith(JSON_DIGIT_PREFIX):
        local = local[len(JSON_DIGIT_PREFIX) :]
    return local.replace(JSON_DOLLAR, "$")


def _xml_value(el: etree._Element) -> Any:
    children = [c for c in el if isinstance(c.tag, str)]
    attrs = {
        "@" + etree.QName(k).localname: v
        for k, v in el.attrib.items()
        if not k.startswith("{http://www.w3.org/2001/XMLSchema-instance}")
    }
    if not children:
        text = el.text
        if text is None or text == "":
            return attrs or None
        if attrs:
            attrs["$"] = _xml_scalar(text)
            return attrs
        return _xml_scalar(text)
    if all(etree.QName(c).localname == "jsonElement" for c in children) and el.tag in ("jsonArray",):
        return [_xml_value(c) for c in children]
    obj: dict[str, Any] = dict(attrs)
    for child in children:
        key = _tag_to_json_key(child.tag)
        val = _xml_value(child)
        if key in obj:
            existing = obj[key]
            if isinstance(existing, _Repeated):
                existing.append(val)
            else:
                obj[key] = _Repeated([existing, val])
        else:
            obj[key] = val
    return obj


class _Repeated(list[Any]):
    """Repeated sibling elements (become a JSON array)."""


def _xml_scalar(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if _JSON_NUMBER.fullmatch(text):
        return _RawJson(text)
    return text


def xml_to_json_value(el: etree._Element | None) -> Any:
    """The JSON value of an XML payload element (the JSON formatter's rules, synapse.md §6.3)."""
    if el is None:
        return None
    local = etree.QName(el).localname
    if local == "jsonArray":
        return [_xml_value(c) for c in el if isinstance(c.tag, str)]
    if local == "jsonObject":
        value = _xml_value(el)
        return {} if value is None else value
    return {_tag_to_json_key(el.tag): _xml_value(el)}


def dump_json(value: Any) -> str:
    """Compact JSON text; numbers converted from XML keep their spelling."""
    if isinstance(value, _RawJson):
        return str(value)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(json.dumps(str(k), ensure_ascii=False) + ":" + dump_json(v) for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    if isinstance(value, Secret):
        value = value.reveal()
    if isinstance(value, etree._Element):
        value = xmlsafe.serialize(value)
    return json.dumps(value, ensure_ascii=False)


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_json_text(data: bytes | str, value: Any) -> None:
    """Raise ValueError when parsed JSON holds a lone surrogate (``"\\ud800"``): not Unicode text.

    Python's json accepts such escapes, but the string can then be neither encoded nor sent on;
    RFC 8259 §8.2 leaves them undefined. Checked only when the text has a surrogate escape.
    """
    text = data if isinstance(data, str) else data.decode("utf-8", "replace")
    if not _SURROGATE_ESCAPE.search(text):
        return
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a \\u escape is a lone UTF-16 surrogate (not a Unicode character)") from None


def _parse_json(data: bytes | str) -> Any:
    try:
        value = json.loads(data)
        check_json_text(data, value)
        return value
    except RecursionError:
        raise PayloadError("message body is JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", None)
        col = getattr(exc, "colno", None)
        where = f" (line {line}, column {col})" if line else ""
        msg = getattr(exc, "msg", str(exc))
        raise PayloadError(f"message body is not valid JSON: {msg}{where}") from None


# --- the context ------------------------------------------------------------------------------


class MessageContext:
    """One message being mediated. See docs/architecture.md "Message context" for the contract."""

    __slots__ = (
        "engine",
        "properties",
        "axis2",
        "axis2_client",
        "operation",
        "headers",
        "to",
        "soap_action",
        "message_id",
        "frames",
        "fault_stack",
        "response_ready",
        "dropped",
        "is_response",
        "_src",
        "_src_ctype",
        "_src_kind",
        "_env",
        "_json",
        "_json_sig",
        "_built",
        "_request_header_names",
    )

    def __init__(self, *, engine: EngineView | None = None) -> None:
        self.engine = engine
        self.properties: dict[str, Any] = {}
        self.axis2: dict[str, Any] = {}
        self.axis2_client: dict[str, Any] = {}
        self.operation: dict[str, Any] = {}
        self.headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        self.to: str | None = None
        self.soap_action: str | None = None
        self.message_id: str | None = None
        self.frames: list[dict[str, Any]] = []
        self.fault_stack: list[Any] = []
        self.response_ready = False  # respond/send wrote the response
        self.dropped = False  # drop ended the flow
        self.is_response = False  # the message is a (backend or final) response
        self._src: bytes | None = None  # raw body not built yet
        self._src_ctype = ""
        self._src_kind = "empty"
        self._env: etree._Element | None = None
        self._json: Any = _UNSET  # authoritative JSON value, when the payload is JSON
        self._json_sig: bytes | None = None  # XML view of _json as first built (to detect edits)
        self._built = False  # a content-aware mediator touched the payload: formatters apply
        # Lower-case names of transport headers still as the caller sent them: they are readable
        # ($trp:, get-property('transport', ...)) and go on to backends as in Synapse, but never go
        # back to the caller unless a mediator sets them (docs/server.md, "What flows back").
        self._request_header_names: set[str] = set()

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def from_http(
        cls,
        *,
        method: str,
        uri: str,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        body: bytes = b"",
        rest_url_postfix: str | None = None,
        engine: EngineView | None = None,
    ) -> MessageContext:
        """A message for an inbound HTTP request (synapse.md §6.1-6.2). The body is parsed lazily."""
        ctx = cls(engine=engine)
        items = headers.items() if isinstance(headers, Mapping) else headers
        hdrs = ctx.headers
        for name, value in items:
            if name in hdrs:
                hdrs[name] = f"{hdrs[name]}, {value}"
            else:
                hdrs[name] = value
        ctx._request_header_names = {str(name).lower() for name in hdrs}
        ctx.to = uri
        content_type = hdrs.get("Content-Type")
        action = hdrs.get("SOAPAction")
        if action is not None:
            action = action.strip().strip('"')
        elif base_type(content_type) == "application/soap+xml":
            action = _content_type_param(content_type, "action")
        ctx.soap_action = action or None
        axis2 = ctx.axis2
        axis2["HTTP_METHOD"] = method.upper()
        axis2["REST_URL_POSTFIX"] = rest_url_postfix if rest_url_postfix is not None else _rest_postfix(uri)
        if content_type:
            axis2["ContentType"] = content_type
            axis2["messageType"] = base_type(content_type)
        body = body or b""
        if not body:
            axis2["NO_ENTITY_BODY"] = True
        ctx._set_source(body, content_type or "")
        return ctx

    def _set_source(self, body: bytes, content_type: str) -> None:
        self._src = body
        self._src_ctype = content_type
        self._src_kind = _builder_for(content_type, body)
        self._env = None
        self._json = _UNSET
        self._json_sig = None
        self._built = False

    # --- properties ---------------------------------------------------------------------------

    def get_property(self, name: str, scope: str = "default") -> Any | None:
        """The raw value of ``name`` in ``scope`` (None when missing)."""
        if scope == "default":
            return self.properties.get(name)
        if scope == "transport":
            return self.headers.get(name)
        if scope == "axis2":
            return self.axis2.get(name)
        if scope == "operation":
            return self.operation.get(name)
        if scope == "registry":
            registry = self._registry()
            return registry.get(name) if registry is not None else None
        if scope == "axis2-client":
            return self.axis2_client.get(name)
        if scope == "system":
            return SYSTEM_PROPERTIES.get(name)
        raise ValueError(f"unknown property scope {scope!r}; expected one of {', '.join(SCOPES)}")

    def set_property(self, name: str, value: Any, scope: str = "default") -> None:
        """Set ``name`` in ``scope`` with Synapse's rules (§3.1): None in default scope keeps the old value."""
        if scope == "default":
            if value is not None:
                self.properties[name] = value
        elif scope == "transport":
            self.headers[name] = _header_str(value)
            self._request_header_names.discard(name.lower())
        elif scope == "axis2":
            if value is None:
                self.axis2.pop(name, None)
                return
            self.axis2[name] = value
            if name == "messageType":
                # Synapse's special property (P10): ContentType and the Content-Type header follow,
                # and the message is built so the new formatter applies.
                self.axis2["ContentType"] = value
                self.headers["Content-Type"] = _header_str(value)
                self._built = True
        elif scope == "operation":
            if value is None:
                self.operation.pop(name, None)
            else:
                self.operation[name] = value
        elif scope == "registry":
            registry = self._require_registry()
            registry.put(name, _header_str(value))
        elif scope == "axis2-client":
            self.axis2_client[name] = value
        elif scope == "system":
            SYSTEM_PROPERTIES[name] = _header_str(value)
        else:
            raise ValueError(f"unknown property scope {scope!r}; expected one of {', '.join(SCOPES)}")

    def remove_property(self, name: str, scope: str = "default") -> None:
        """Remove ``name`` from ``scope``; removing a missing key is a no-op."""
        if scope == "default":
            self.properties.pop(name, None)
        elif scope == "transport":
            self.headers.pop(name, None)
            self._request_header_names.discard(name.lower())
        elif scope == "axis2":
            self.axis2.pop(name, None)
        elif scope == "operation":
            self.operation.pop(name, None)
        elif scope == "registry":
            self._require_registry().delete(name)
        elif scope == "axis2-client":
            self.axis2_client.pop(name, None)
        elif scope == "system":
            SYSTEM_PROPERTIES.pop(name, None)
        else:
            raise ValueError(f"unknown property scope {scope!r}; expected one of {', '.join(SCOPES)}")

    def _registry(self) -> Registry | None:
        return self.engine.registry if self.engine is not None else None

    def _require_registry(self) -> Registry:
        registry = self._registry()
        if registry is None:
            from sfbulk.errors import RegistryError

            raise RegistryError("no registry is configured for this engine (registry scope needs one)")
        return registry

    def get_message_id(self) -> str:
        """The WS-A MessageID, made up on first use (``urn:uuid:...``)."""
        if self.message_id is None:
            self.message_id = f"urn:uuid:{uuid.uuid4()}"
        return self.message_id

    # --- template frames -----------------------------------------------------------------------

    def push_frame(self, params: Mapping[str, Any]) -> None:
        """Enter a template: ``$func:`` now reads ``params``."""
        self.frames.append(dict(params))

    def pop_frame(self) -> dict[str, Any]:
        """Leave the innermost template."""
        return self.frames.pop()

    @property
    def frame(self) -> dict[str, Any] | None:
        """The innermost template frame, or None outside templates."""
        return self.frames[-1] if self.frames else None

    # --- payload: reading -----------------------------------------------------------------------

    @property
    def envelope(self) -> etree._Element:
        """The SOAP envelope, built from the raw body on first use (raises PayloadError).

        Reading it marks the message as built: from now on it is serialized by the formatter of
        axis2 ``messageType`` rather than relayed byte for byte.
        """
        env = self._env
        if env is None:
            env = self._build_envelope()
            self._env = env
        self._built = True
        return env

    @property
    def body_element(self) -> etree._Element:
        """The SOAP Body element."""
        return _find_body(self.envelope)

    @property
    def header_element(self) -> etree._Element | None:
        """The SOAP Header element, or None when the envelope has none."""
        env = self.envelope
        return env.find(f"{{{_soap_ns(env)}}}Header")

    @property
    def payload_element(self) -> etree._Element | None:
        """The first element child of the Body (the payload proper), or None when the Body is empty."""
        body = self.body_element
        for child in body:
            if isinstance(child.tag, str):
                return child
        return None

    @property
    def is_built(self) -> bool:
        """True once a content-aware mediator touched the payload (formatters apply on output)."""
        return self._built

    @property
    def payload_kind(self) -> str:
        """``json``, ``xml``, ``text``, ``raw`` or ``empty`` (what the payload currently is)."""
        if self._json is not _UNSET and (self._env is None or self._json_view_unchanged()):
            return "json"
        if self._env is None:
            kind = self._src_kind
            if kind == "empty":
                return "empty"
            return {"soap11": "xml", "soap12": "xml", "pox": "xml", "form": "xml", "binary": "raw"}.get(
                kind, kind
            )
        first = self._first_child(self._env)
        if first is None:
            return "empty"
        if first.tag == TEXT_WRAPPER:
            return "text"
        if first.tag == BINARY_WRAPPER:
            return "raw"
        return "xml"

    def is_json(self) -> bool:
        """True when the payload is JSON (json-eval reads it without an XML round trip)."""
        if self._json is not _UNSET:
            return self._env is None or self._json_view_unchanged()
        return self._env is None and self._src_kind == "json"

    def json_value(self) -> Any:
        """The payload as a JSON value (an XML payload is converted, synapse.md §4.2 rule 4)."""
        if self._json is not _UNSET and (self._env is None or self._json_view_unchanged()):
            return self._json
        if self._env is None and self._src_kind == "json":
            assert self._src is not None
            self._json = _parse_json(self._src)
            return self._json
        if self._env is None and self._src_kind == "empty":
            return None
        first = self._first_child(self.envelope)
        if first is not None and first.tag == TEXT_WRAPPER:
            text = first.text or ""
            try:
                return json.loads(text)
            except ValueError:
                return text
        return xml_to_json_value(first)

    def json_text(self) -> str:
        """The payload as JSON text (original bytes when untouched JSON)."""
        if self._env is None and self._json is _UNSET and self._src_kind == "json" and self._src is not None:
            charset = _content_type_param(self._src_ctype, "charset") or "utf-8"
            return self._src.decode(charset, errors="replace")
        return dump_json(self.json_value())

    def text_payload(self) -> str:
        """The text of a ``text/plain`` payload (or the serialized payload element otherwise)."""
        if self._env is None and self._src_kind == "text" and self._src is not None:
            return self._decode_src()
        first = self._first_child(self.envelope)
        if first is None:
            return ""
        if first.tag == TEXT_WRAPPER:
            return first.text or ""
        if first.tag == BINARY_WRAPPER:
            return base64.b64decode(first.text or "").decode("utf-8", errors="replace")
        return xmlsafe.serialize(first)

    def is_soap_fault(self) -> bool:
        """True when the (already built) body is a SOAP Fault. An unbuilt body is not parsed for this."""
        env = self._env
        if env is None:
            return False
        first = self._first_child(env)
        return first is not None and first.tag == f"{{{_soap_ns(env)}}}Fault"

    # --- payload: replacing ----------------------------------------------------------------------

    def set_body_element(self, el: etree._Element) -> None:
        """Make ``el`` the only Body child (a SOAP Envelope replaces the whole envelope). Headers stay."""
        if el.tag in (ENVELOPE_11, ENVELOPE_12):
            _find_body(el)
            self._replace_payload(el)
            return
        try:
            env = self._env if self._env is not None else self._build_envelope()
        except PayloadError:
            env = new_envelope()
        body = _find_body(env)
        for child in list(body):
            body.remove(child)
        body.text = None
        body.append(el)
        self._replace_payload(env)

    def set_json_payload(self, obj_or_text: Any) -> None:
        """Make the payload JSON: a value, or JSON text (raises PayloadError when invalid)."""
        value = _parse_json(obj_or_text) if isinstance(obj_or_text, (str, bytes)) else obj_or_text
        self._replace_payload(None)
        self._json = value

    def set_text_payload(self, text: str) -> None:
        """Make the payload text (``<text xmlns="http://ws.apache.org/commons/ns/payload">``)."""
        env = new_envelope()
        wrapper = etree.SubElement(_find_body(env), TEXT_WRAPPER, nsmap={None: PAYLOAD_NS})
        wrapper.text = text
        self._replace_payload(env)

    def set_raw_payload(self, data: bytes, content_type: str) -> None:
        """Make ``data`` the payload; relayed unchanged unless a content-aware mediator looks inside."""
        self._set_source(data, content_type)

    def _replace_payload(self, env: etree._Element | None) -> None:
        self._src = None
        self._src_kind = "empty"
        self._env = env
        self._json = _UNSET
        self._json_sig = None
        self._built = True
        self.axis2.pop("NO_ENTITY_BODY", None)

    def set_response(
        self,
        status: int,
        reason: str | None,
        headers: Iterable[tuple[str, str]] | Mapping[str, str],
        body: bytes,
        content_type: str | None = None,
    ) -> None:
        """Turn this message into a backend response (what ``call`` does, synapse.md §3.7 step 4).

        Default-scope properties survive; payload, transport headers and the HTTP_SC family change.
        ``messageType`` becomes the response content type without parameters (the MI rule).
        """
        hdrs: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            if name in hdrs:
                hdrs[name] = f"{hdrs[name]}, {value}"
            else:
                hdrs[name] = value
        encoding = hdrs.get("Content-Encoding")
        if encoding is not None and not _looks_encoded(body or b"", encoding):
            # The HTTP client already decoded the body (requests does for gzip/deflate): the header
            # no longer describes these bytes and would make the next hop decode them again.
            del hdrs["Content-Encoding"]
        self.headers = hdrs
        self._request_header_names = set()  # from now on the headers are the backend's response headers
        if content_type is None:
            content_type = hdrs.get("Content-Type")
        body = body or b""
        axis2 = self.axis2
        axis2["HTTP_SC"] = int(status)
        axis2["HTTP_SC_DESC"] = reason or _reason(int(status))
        if content_type:
            axis2["ContentType"] = content_type
            axis2["messageType"] = base_type(content_type)
        else:
            axis2.pop("ContentType", None)
            if axis2.get("messageType") == "application/x-www-form-urlencoded":
                axis2.pop("messageType", None)
        if body:
            axis2.pop("NO_ENTITY_BODY", None)
        else:
            axis2["NO_ENTITY_BODY"] = True
        if int(status) >= 400:
            axis2["FAULT_MESSAGE"] = "true"
        else:
            axis2.pop("FAULT_MESSAGE", None)
        self.is_response = True
        self._set_source(body, content_type or "")

    # --- building ---------------------------------------------------------------------------------

    def _decode_src(self) -> str:
        assert self._src is not None
        charset = _content_type_param(self._src_ctype, "charset") or "utf-8"
        try:
            return self._src.decode(charset)
        except (LookupError, UnicodeDecodeError) as exc:
            raise PayloadError(f"message body cannot be decoded as {charset}: {exc}") from None

    def _build_envelope(self) -> etree._Element:
        if self._json is not _UNSET:
            return self._build_json_view(self._json)
        kind = self._src_kind
        data = self._src or b""
        if kind == "empty":
            return new_envelope(soap12=base_type(self._src_ctype) == "application/soap+xml")
        if kind == "pox":
            env = self._wrap_pox(data)
            if env is not None:
                return env
        if kind in ("soap11", "soap12", "pox"):
            root = xmlsafe.parse(data, what="message body")
            if root.tag in (ENVELOPE_11, ENVELOPE_12) and kind != "pox":
                _find_body(root)
                return root
            # POX (and, deliberately, a plain XML body sent as text/xml): wrap in an envelope.
            env = new_envelope(soap12=kind == "soap12")
            _find_body(env).append(root)
            return env
        if kind == "json":
            self._json = _parse_json(data)
            return self._build_json_view(self._json)
        env = new_envelope()
        body = _find_body(env)
        if kind == "text":
            wrapper = etree.SubElement(body, TEXT_WRAPPER, nsmap={None: PAYLOAD_NS})
            wrapper.text = self._decode_src()
        elif kind == "form":
            root = etree.SubElement(body, FORM_ROOT)
            for name, value in parse_qsl(self._decode_src(), keep_blank_values=True):
                try:
                    etree.SubElement(root, name).text = value
                except ValueError:
                    raise PayloadError(
                        f"form field name {name!r} cannot be represented as an XML element"
                    ) from None
        else:
            wrapper = etree.SubElement(body, BINARY_WRAPPER, nsmap={"ns": PAYLOAD_NS})
            wrapper.text = base64.b64encode(data).decode("ascii")
        return env

    @staticmethod
    def _wrap_pox(data: bytes) -> etree._Element | None:
        """Parse a POX body straight into a SOAP 1.1 envelope (one parse, no node moves)."""
        if b"soapenv:" in data and b"xmlns:soapenv" not in data:
            return None  # would silently borrow the wrapper's prefix: parse it alone instead
        env = xmlsafe.parse_into(data, _POX_PREFIX, _POX_SUFFIX, what="message body")
        if env is None:
            return None
        body = env[-1]
        elements = [child for child in body if isinstance(child.tag, str)]
        stray_text = (body.text or "").strip() or any((child.tail or "").strip() for child in body)
        if len(elements) != 1 or stray_text:
            xmlsafe.parse(data, what="message body")  # reports the extra content with its position
            raise PayloadError("message body is not well-formed XML: content after the document element")
        return env

    def _build_json_view(self, value: Any) -> etree._Element:
        env = new_envelope()
        view = json_to_xml(value)
        _find_body(env).append(view)
        self._json_sig = etree.tostring(view)
        return env

    def _json_view_unchanged(self) -> bool:
        env = self._env
        if env is None or self._json_sig is None:
            return env is None
        first = self._first_child(env)
        return first is not None and etree.tostring(first) == self._json_sig

    @staticmethod
    def _first_child(env: etree._Element) -> etree._Element | None:
        body = _find_body(env)
        for child in body:
            if isinstance(child.tag, str):
                return child
        return None

    # --- output -------------------------------------------------------------------------------------

    def _default_message_type(self) -> str:
        kind = self.payload_kind
        if kind == "json":
            return "application/json"
        if kind == "text":
            return "text/plain"
        if kind == "raw":
            return base_type(self._src_ctype) or "application/octet-stream"
        if self._env is not None and self._env.tag == ENVELOPE_12:
            return "application/soap+xml"
        if self._src_kind == "soap11":
            return "text/xml"
        return "application/xml"

    def payload_bytes(self) -> tuple[bytes, str]:
        """The payload serialized for the wire and its Content-Type (formatters, synapse.md §6.4).

        An untouched body goes out byte for byte with its original Content-Type.
        """
        if not self._built:
            if self._src is not None and self._src_kind != "empty":
                return self._src, self._src_ctype
            if self._env is None and self._json is _UNSET:
                return b"", ""
        message_type = self.axis2.get("messageType")
        message_type = base_type(str(message_type)) if message_type else self._default_message_type()
        if message_type == "application/json" or message_type.endswith("+json"):
            return self.json_text().encode("utf-8"), "application/json"
        env = self.envelope
        if message_type == "text/xml":
            return _serialize_env(env), "text/xml; charset=UTF-8"
        if message_type == "application/soap+xml":
            return _serialize_env(env), "application/soap+xml; charset=UTF-8"
        first = self._first_child(env)
        if message_type == "application/xml" or message_type.endswith("+xml"):
            content_type = self.axis2.get("ContentType")
            ctype = str(content_type) if content_type else "application/xml"
            if base_type(ctype) in ("text/xml", "application/soap+xml", ""):
                ctype = "application/xml"
            if _content_type_param(ctype, "charset") is None:
                ctype += "; charset=UTF-8"
            return (xmlsafe.serialize_bytes(first) if first is not None else b""), ctype
        if message_type == "text/plain":
            return self.text_payload().encode("utf-8"), "text/plain; charset=UTF-8"
        if message_type == "application/x-www-form-urlencoded":
            return _form_encode(first), "application/x-www-form-urlencoded"
        # Relay types (text/csv, zip/*, application/octet-stream...): the bytes the payload holds.
        content_type = self.axis2.get("ContentType")
        ctype = (
            str(content_type)
            if content_type and base_type(str(content_type)) == message_type
            else message_type
        )
        if first is None:
            return b"", ctype
        if first.tag == BINARY_WRAPPER:
            return base64.b64decode(first.text or ""), ctype
        if first.tag == TEXT_WRAPPER:
            charset = _content_type_param(ctype, "charset") or "utf-8"
            return (first.text or "").encode(charset, errors="replace"), ctype
        return xmlsafe.serialize_bytes(first), ctype

    def to_http_response(self) -> HttpResult:
        """The HTTP response for the caller (synapse.md §6.5)."""
        status = None
        http_sc = self.axis2.get("HTTP_SC")
        if http_sc is not None:
            try:
                status = int(str(http_sc).strip())
            except ValueError:
                status = None
        if status is not None:
            desc = self.axis2.get("HTTP_SC_DESC")
            reason = str(desc) if desc else _reason(status)
        else:
            if self.is_soap_fault() and str(self.axis2.get("FAULTS_AS_HTTP_200", "")).lower() != "true":
                status = 500
            else:
                status = 200
            reason = _reason(status)
        body, content_type = self.payload_bytes()
        if not self._built:
            content_type = self.headers.get("Content-Type") or content_type
        headers: list[tuple[str, str]] = []
        for name, value in self.headers.items():
            lname = name.lower()
            if lname in HOP_HEADERS or lname == "content-type" or value is None:
                continue
            if lname in self._request_header_names:
                continue  # the caller's own header (Authorization, Cookie...): never echoed by accident
            headers.append((name, _header_str(value)))
        if body and content_type:
            headers.append(("Content-Type", content_type))
        return HttpResult(status, reason, headers, body)


def _looks_encoded(body: bytes, encoding: str) -> bool:
    """Whether ``body`` still carries the Content-Encoding ``encoding`` (magic bytes)."""
    coding = encoding.strip().lower()
    if not body or coding in ("", "identity"):
        return True  # nothing to tell apart: keep the header as sent
    if coding in ("gzip", "x-gzip"):
        return body[:2] == b"\x1f\x8b"
    if coding == "deflate":
        return body[:1] == b"\x78" or body.lstrip()[:1] not in (b"<", b"{", b"[")
    return True  # br, compress...: cannot tell, trust the header


def _serialize_env(env: etree._Element) -> bytes:
    return cast(bytes, etree.tostring(env, encoding="utf-8", xml_declaration=False))


def _form_encode(el: etree._Element | None) -> bytes:
    if el is None:
        return b""
    parts = []
    for child in el:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child).localname
        value = child.text or ""
        parts.append(f"{_form_quote(name)}={_form_quote(value)}")
    return "&".join(parts).encode("ascii")


def _form_quote(text: str) -> str:
    # Java URLEncoder (UTF-8) then "+" -> "%20", as Synapse's XFormURLEncodedFormatter does.
    return quote_plus(text, safe="*").replace("+", "%20").replace("~", "%7E")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _rest_postfix(uri: str) -> str:
    """What follows ``/services/<name>`` in the request URI (synapse.md §6.1)."""
    path, sep, query = uri.partition("?")
    marker = "/services/"
    idx = path.find(marker)
    if idx < 0:
        return ("?" + query) if sep else ""
    rest = path[idx + len(marker) :]
    slash = rest.find("/")
    tail = rest[slash:] if slash >= 0 else ""
    return tail + (("?" + query) if sep else "")


def environment_variable(name: str) -> str:
    """``get-property('env', NAME)``: the process environment, "" when unset."""
    return os.environ.get(name, "")


__all__ = [
    "BINARY_WRAPPER",
    "HOP_HEADERS",
    "HttpResult",
    "MessageContext",
    "PAYLOAD_NS",
    "SOAP11_NS",
    "SOAP12_NS",
    "TEXT_WRAPPER",
    "base_type",
    "dump_json",
    "json_to_xml",
    "new_envelope",
    "xml_to_json_value",
]
