"""Message builders (synapse.md §6.2): which builder a content type picks, and the SOAP envelope it builds.

Synapse turns every payload into a SOAP envelope: SOAP bodies as sent, POX wrapped in a SOAP 1.1
Body, text and binary in the Axiom payload wrappers, forms as ``<xformValues>``. JSON has its own
view (``sfbulk.message.jsonxml``). The functions here are pure: the context decides when to build.
"""

from __future__ import annotations

import base64
import copy
from urllib.parse import parse_qsl

from lxml import etree

from sfbulk import xmlsafe
from sfbulk.errors import PayloadError

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
PAYLOAD_NS = "http://ws.apache.org/commons/ns/payload"

ENVELOPE_11 = f"{{{SOAP11_NS}}}Envelope"
ENVELOPE_12 = f"{{{SOAP12_NS}}}Envelope"
TEXT_WRAPPER = f"{{{PAYLOAD_NS}}}text"
BINARY_WRAPPER = f"{{{PAYLOAD_NS}}}binary"
#: Root element of a form-urlencoded body's XML view (Axis2 XFormURLEncodedBuilder).
FORM_ROOT = "xformValues"

_POX_PREFIX = (f'<soapenv:Envelope xmlns:soapenv="{SOAP11_NS}"><soapenv:Header/><soapenv:Body>').encode()
_POX_SUFFIX = b"</soapenv:Body></soapenv:Envelope>"


def base_type(content_type: str | None) -> str:
    """``"Application/XML; charset=UTF-8"`` -> ``"application/xml"``."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def content_type_param(content_type: str | None, name: str) -> str | None:
    """The parameter ``name`` of a Content-Type (``charset``, ``action``), unquoted; None when absent."""
    if not content_type:
        return None
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"') or None
    return None


def builder_for(content_type: str | None, body: bytes) -> str:
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


def _envelope_template(ns: str) -> etree._Element:
    env = etree.Element(f"{{{ns}}}Envelope", nsmap={"soapenv": ns})
    etree.SubElement(env, f"{{{ns}}}Header")
    etree.SubElement(env, f"{{{ns}}}Body")
    return env


_TEMPLATES = {False: _envelope_template(SOAP11_NS), True: _envelope_template(SOAP12_NS)}


def new_envelope(soap12: bool = False) -> etree._Element:
    """An empty SOAP envelope: ``<soapenv:Envelope><soapenv:Header/><soapenv:Body/></soapenv:Envelope>``."""
    return copy.deepcopy(_TEMPLATES[soap12])  # copying a template is 3x faster than building one


def soap_ns(env: etree._Element) -> str:
    """The SOAP namespace of an envelope (1.2 when it is a 1.2 Envelope, else 1.1)."""
    return SOAP12_NS if env.tag == ENVELOPE_12 else SOAP11_NS


def find_body(env: etree._Element) -> etree._Element:
    """The envelope's Body element (PayloadError when it has none)."""
    tag = f"{{{soap_ns(env)}}}Body"
    if len(env) and env[-1].tag == tag:  # the usual place: last child
        return env[-1]
    for child in env:
        if child.tag == tag:
            return child
    raise PayloadError("the SOAP envelope has no Body element")


def decode_body(data: bytes, content_type: str | None) -> str:
    """The body as text, in the Content-Type's charset (UTF-8 by default); PayloadError when it is not."""
    charset = content_type_param(content_type, "charset") or "utf-8"
    try:
        return data.decode(charset)
    except (LookupError, UnicodeDecodeError) as exc:
        raise PayloadError(f"message body cannot be decoded as {charset}: {exc}") from None


def build_envelope(kind: str, data: bytes, content_type: str) -> etree._Element:
    """The envelope builder ``kind`` (from ``builder_for``, not ``json``) makes of ``data``; raises PayloadError."""
    if kind == "empty":
        return new_envelope(soap12=base_type(content_type) == "application/soap+xml")
    if kind == "pox":
        env = _wrap_pox(data)
        if env is not None:
            return env
    if kind in ("soap11", "soap12", "pox"):
        root = xmlsafe.parse(data, what="message body")
        if root.tag in (ENVELOPE_11, ENVELOPE_12) and kind != "pox":
            find_body(root)
            return root
        # POX (and, deliberately, a plain XML body sent as text/xml): wrap in an envelope.
        env = new_envelope(soap12=kind == "soap12")
        find_body(env).append(root)
        return env
    env = new_envelope()
    body = find_body(env)
    if kind == "text":
        wrapper = etree.SubElement(body, TEXT_WRAPPER, nsmap={None: PAYLOAD_NS})
        wrapper.text = decode_body(data, content_type)
    elif kind == "form":
        root = etree.SubElement(body, FORM_ROOT)
        for name, value in parse_qsl(decode_body(data, content_type), keep_blank_values=True):
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


def first_element(env: etree._Element) -> etree._Element | None:
    """The first element child of the envelope's Body (the payload proper), or None."""
    for child in find_body(env):
        if isinstance(child.tag, str):
            return child
    return None


def looks_encoded(body: bytes, encoding: str) -> bool:
    """Whether ``body`` still carries the Content-Encoding ``encoding`` (magic bytes)."""
    coding = encoding.strip().lower()
    if not body or coding in ("", "identity"):
        return True  # nothing to tell apart: keep the header as sent
    if coding in ("gzip", "x-gzip"):
        return body[:2] == b"\x1f\x8b"
    if coding == "deflate":
        return body[:1] == b"\x78" or body.lstrip()[:1] not in (b"<", b"{", b"[")
    return True  # br, compress...: cannot tell, trust the header


def rest_postfix(uri: str) -> str:
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


__all__ = [
    "BINARY_WRAPPER",
    "ENVELOPE_11",
    "ENVELOPE_12",
    "FORM_ROOT",
    "PAYLOAD_NS",
    "SOAP11_NS",
    "SOAP12_NS",
    "TEXT_WRAPPER",
    "base_type",
    "build_envelope",
    "builder_for",
    "content_type_param",
    "decode_body",
    "find_body",
    "first_element",
    "looks_encoded",
    "new_envelope",
    "rest_postfix",
    "soap_ns",
]
