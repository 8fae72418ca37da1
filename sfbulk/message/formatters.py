"""Message formatters (synapse.md §6.4) and the HTTP response for the caller (§6.5).

Once a mediator has looked inside a message, axis2 ``messageType`` picks the formatter that writes
it back out: JSON, SOAP 1.1/1.2, POX, text, form or the relay types' bytes. ``http_response`` then
applies Synapse's response rules: HTTP_SC/HTTP_SC_DESC, a SOAP fault as 500, and only the headers a
mediator or the backend set (never the caller's own, never hop-by-hop ones).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

from lxml import etree

from sfbulk import xmlsafe
from sfbulk.httpheaders import NOT_RELAYED, header_value, reason_phrase
from sfbulk.javatext import java_string
from sfbulk.message.builders import BINARY_WRAPPER, TEXT_WRAPPER, base_type, content_type_param

if TYPE_CHECKING:
    from sfbulk.message.context import MessageContext


@dataclass(slots=True)
class HttpResult:
    """What goes back to the HTTP caller."""

    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or None."""
        return header_value(self.headers, name)


def format_payload(ctx: MessageContext, message_type: str) -> tuple[bytes, str]:
    """A built message serialized by the formatter of ``message_type``, with its Content-Type."""
    if message_type == "application/json" or message_type.endswith("+json"):
        return ctx.json_text().encode("utf-8"), "application/json"
    env = ctx.envelope
    if message_type == "text/xml":
        return serialize_envelope(env), "text/xml; charset=UTF-8"
    if message_type == "application/soap+xml":
        return serialize_envelope(env), "application/soap+xml; charset=UTF-8"
    first = ctx.payload_element
    if message_type == "application/xml" or message_type.endswith("+xml"):
        content_type = ctx.axis2.get("ContentType")
        ctype = str(content_type) if content_type else "application/xml"
        if base_type(ctype) in ("text/xml", "application/soap+xml", ""):
            ctype = "application/xml"
        if content_type_param(ctype, "charset") is None:
            ctype += "; charset=UTF-8"
        return (xmlsafe.serialize_bytes(first) if first is not None else b""), ctype
    if message_type == "text/plain":
        return ctx.text_payload().encode("utf-8"), "text/plain; charset=UTF-8"
    if message_type == "application/x-www-form-urlencoded":
        return form_encode(first), "application/x-www-form-urlencoded"
    # Relay types (text/csv, zip/*, application/octet-stream...): the bytes the payload holds.
    content_type = ctx.axis2.get("ContentType")
    ctype = (
        str(content_type) if content_type and base_type(str(content_type)) == message_type else message_type
    )
    if first is None:
        return b"", ctype
    if first.tag == BINARY_WRAPPER:
        return base64.b64decode(first.text or ""), ctype
    if first.tag == TEXT_WRAPPER:
        charset = content_type_param(ctype, "charset") or "utf-8"
        return (first.text or "").encode(charset, errors="replace"), ctype
    return xmlsafe.serialize_bytes(first), ctype


def http_response(ctx: MessageContext) -> HttpResult:
    """The HTTP response for the caller (synapse.md §6.5)."""
    status = None
    http_sc = ctx.axis2.get("HTTP_SC")
    if http_sc is not None:
        try:
            status = int(str(http_sc).strip())
        except ValueError:
            status = None
    if status is not None:
        desc = ctx.axis2.get("HTTP_SC_DESC")
        reason = str(desc) if desc else reason_phrase(status, unknown="")
    else:
        if ctx.is_soap_fault() and str(ctx.axis2.get("FAULTS_AS_HTTP_200", "")).lower() != "true":
            status = 500
        else:
            status = 200
        reason = reason_phrase(status, unknown="")
    body, content_type = ctx.payload_bytes()
    if not ctx.is_built:
        content_type = ctx.headers.get("Content-Type") or content_type
    headers: list[tuple[str, str]] = []
    for name, value in ctx.headers.items():
        lname = name.lower()
        if lname in NOT_RELAYED or lname == "content-type" or value is None:
            continue
        if ctx.is_request_header(lname):
            continue  # the caller's own header (Authorization, Cookie...): never echoed by accident
        headers.append((name, java_string(value, null="", reveal=True)))
    if body and content_type:
        headers.append(("Content-Type", content_type))
    return HttpResult(status, reason, headers, body)


def serialize_envelope(env: etree._Element) -> bytes:
    """A whole SOAP envelope as UTF-8 bytes, without an XML declaration."""
    data: bytes = etree.tostring(env, encoding="utf-8", xml_declaration=False)
    return data


def form_encode(el: etree._Element | None) -> bytes:
    """The children of a form view (``<xformValues>``) as ``application/x-www-form-urlencoded`` bytes."""
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


__all__ = ["HttpResult", "form_encode", "format_payload", "http_response", "serialize_envelope"]
