"""The message context: one mutable object per message, as Synapse's MessageContext (synapse.md §1).

It holds the payload (built lazily: raw bytes stay raw until a content-aware mediator looks inside),
the scoped properties, the case-insensitive transport headers, the template frames and the fault
stack. Its helpers each live in a module of their own: property scopes (``scopes``), builders
(``builders``, §6.2), JSON<->XML (``jsonxml``, §6.3) and formatters with the HTTP response
(``formatters``, §6.4-6.5).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lxml import etree
from requests.structures import CaseInsensitiveDict

from sfbulk import xmlsafe
from sfbulk.errors import PayloadError
from sfbulk.httpheaders import join_repeated, reason_phrase
from sfbulk.javatext import java_string
from sfbulk.message import formatters
from sfbulk.message.builders import (
    BINARY_WRAPPER,
    ENVELOPE_11,
    ENVELOPE_12,
    PAYLOAD_NS,
    TEXT_WRAPPER,
    base_type,
    build_envelope,
    builder_for,
    content_type_param,
    decode_body,
    find_body,
    first_element,
    looks_encoded,
    new_envelope,
    rest_postfix,
    soap_ns,
)
from sfbulk.message.formatters import HttpResult
from sfbulk.message.jsonxml import dump_json, json_to_xml, parse_json, xml_to_json_value
from sfbulk.message.scopes import STORED_SCOPES, unknown_scope

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.message.engine_view import EngineView

_UNSET: Any = object()


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
        self.headers: CaseInsensitiveDict[Any] = CaseInsensitiveDict()
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
        hdrs = ctx.headers
        join_repeated(headers, hdrs)
        ctx._request_header_names = {str(name).lower() for name in hdrs}
        ctx.to = uri
        content_type = hdrs.get("Content-Type")
        action = hdrs.get("SOAPAction")
        if action is not None:
            action = action.strip().strip('"')
        elif base_type(content_type) == "application/soap+xml":
            action = content_type_param(content_type, "action")
        ctx.soap_action = action or None
        axis2 = ctx.axis2
        axis2["HTTP_METHOD"] = method.upper()
        axis2["REST_URL_POSTFIX"] = rest_url_postfix if rest_url_postfix is not None else rest_postfix(uri)
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
        self._src_kind = builder_for(content_type, body)
        self._env = None
        self._json = _UNSET
        self._json_sig = None
        self._built = False

    # --- properties ---------------------------------------------------------------------------

    def get_property(self, name: str, scope: str = "default") -> Any | None:
        """The raw value of ``name`` in ``scope`` (None when missing); ValueError for an unknown scope."""
        entry = STORED_SCOPES.get(scope)
        if entry is None:
            raise unknown_scope(scope)
        return entry.get(self, name)

    def set_property(self, name: str, value: Any, scope: str = "default") -> None:
        """Set ``name`` in ``scope`` with Synapse's rules (§3.1): None in default scope keeps the old value."""
        entry = STORED_SCOPES.get(scope)
        if entry is None or entry.set is None:  # stored scopes are settable
            raise unknown_scope(scope)
        entry.set(self, name, value)

    def remove_property(self, name: str, scope: str = "default") -> None:
        """Remove ``name`` from ``scope``; removing a missing key is a no-op."""
        entry = STORED_SCOPES.get(scope)
        if entry is None or entry.remove is None:  # stored scopes are removable
            raise unknown_scope(scope)
        entry.remove(self, name)

    def set_header(self, name: str, value: Any) -> None:
        """Set transport header ``name`` (as Java text; None is ""): it now goes back to the caller too."""
        self.headers[name] = java_string(value, null="", reveal=True)
        self._request_header_names.discard(name.lower())

    def remove_header(self, name: str) -> None:
        """Remove transport header ``name`` (any case); a missing header is a no-op."""
        self.headers.pop(name, None)
        self._request_header_names.discard(name.lower())

    def is_request_header(self, lname: str) -> bool:
        """True when lower-case header ``lname`` is still the caller's own (never echoed back to it)."""
        return lname in self._request_header_names

    def set_message_type(self, value: Any) -> None:
        """Set axis2 ``messageType``, Synapse's special property (P10).

        ContentType and the Content-Type header follow, and the message is built so the new
        formatter applies.
        """
        self.axis2["messageType"] = value
        self.axis2["ContentType"] = value
        self.headers["Content-Type"] = java_string(value, null="", reveal=True)
        self._built = True

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
        return find_body(self.envelope)

    @property
    def header_element(self) -> etree._Element | None:
        """The SOAP Header element, or None when the envelope has none."""
        env = self.envelope
        return env.find(f"{{{soap_ns(env)}}}Header")

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
        first = first_element(self._env)
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
            self._json = parse_json(self._src)
            return self._json
        if self._env is None and self._src_kind == "empty":
            return None
        first = first_element(self.envelope)
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
            charset = content_type_param(self._src_ctype, "charset") or "utf-8"
            return self._src.decode(charset, errors="replace")
        return dump_json(self.json_value())

    def text_payload(self) -> str:
        """The text of a ``text/plain`` payload (or the serialized payload element otherwise)."""
        if self._env is None and self._src_kind == "text" and self._src is not None:
            return self._decode_src()
        first = first_element(self.envelope)
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
        first = first_element(env)
        return first is not None and first.tag == f"{{{soap_ns(env)}}}Fault"

    # --- payload: replacing ----------------------------------------------------------------------

    def set_body_element(self, el: etree._Element) -> None:
        """Make ``el`` the only Body child (a SOAP Envelope replaces the whole envelope). Headers stay."""
        if el.tag in (ENVELOPE_11, ENVELOPE_12):
            find_body(el)
            self._replace_payload(el)
            return
        try:
            env = self._env if self._env is not None else self._build_envelope()
        except PayloadError:
            env = new_envelope()
        body = find_body(env)
        for child in list(body):
            body.remove(child)
        body.text = None
        body.append(el)
        self._replace_payload(env)

    def set_json_payload(self, obj_or_text: Any) -> None:
        """Make the payload JSON: a value, or JSON text (raises PayloadError when invalid)."""
        value = parse_json(obj_or_text) if isinstance(obj_or_text, (str, bytes)) else obj_or_text
        self._replace_payload(None)
        self._json = value

    def set_text_payload(self, text: str) -> None:
        """Make the payload text (``<text xmlns="http://ws.apache.org/commons/ns/payload">``)."""
        env = new_envelope()
        wrapper = etree.SubElement(find_body(env), TEXT_WRAPPER, nsmap={None: PAYLOAD_NS})
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
        hdrs: CaseInsensitiveDict[Any] = CaseInsensitiveDict()
        join_repeated(headers, hdrs)
        encoding = hdrs.get("Content-Encoding")
        if encoding is not None and not looks_encoded(body or b"", encoding):
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
        axis2["HTTP_SC_DESC"] = reason or reason_phrase(int(status), unknown="")
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
        return decode_body(self._src, self._src_ctype)

    def _build_envelope(self) -> etree._Element:
        if self._json is not _UNSET:
            return self._build_json_view(self._json)
        data = self._src or b""
        if self._src_kind == "json":
            self._json = parse_json(data)
            return self._build_json_view(self._json)
        return build_envelope(self._src_kind, data, self._src_ctype)

    def _build_json_view(self, value: Any) -> etree._Element:
        env = new_envelope()
        view = json_to_xml(value)
        find_body(env).append(view)
        self._json_sig = etree.tostring(view)
        return env

    def _json_view_unchanged(self) -> bool:
        env = self._env
        if env is None or self._json_sig is None:
            return env is None
        first = first_element(env)
        return first is not None and etree.tostring(first) == self._json_sig

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
        return formatters.format_payload(self, message_type)

    def to_http_response(self) -> HttpResult:
        """The HTTP response for the caller (synapse.md §6.5)."""
        return formatters.http_response(self)


__all__ = ["MessageContext"]
