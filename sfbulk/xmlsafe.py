"""The one hardened XML parser every part of sfbulk uses (message bodies, config files, backend replies).

Untrusted XML reaches us from HTTP callers and backends, so the parser never expands entities, never
touches the network, never loads a DTD and keeps libxml2's size limits (``huge_tree=False``). A
DOCTYPE is rejected outright, before parsing, so external entities (XXE) and entity bombs ("billion
laughs") fail fast with a clear message instead of being half-processed. Nesting is limited to
``MAX_DEPTH`` levels (libxml2's own limit without ``XML_PARSE_HUGE``).
"""

from __future__ import annotations

import copy
import re
import threading
from typing import cast

from lxml import etree

from sfbulk.errors import PayloadError

#: Deepest element nesting accepted (libxml2's limit when huge_tree is off).
MAX_DEPTH = 256

_local = threading.local()

# The prolog may hold an XML declaration, processing instructions, comments and whitespace; a
# DOCTYPE can only appear there, before the root element.
_PROLOG_ITEM = re.compile(rb"\s+|<\?.*?\?>|<!--.*?-->", re.S)
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.I)


def _parser() -> etree.XMLParser:
    """One parser per thread: lxml parsers are not safe to share between threads."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=False,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


def _has_doctype(data: bytes) -> bool:
    """True when a DOCTYPE declaration appears in the prolog (cheap scan, no parsing)."""
    pos = 0
    if data.startswith(b"\xef\xbb\xbf"):
        pos = 3
    end = len(data)
    while pos < end:
        match = _PROLOG_ITEM.match(data, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
    return _DOCTYPE.match(data, pos) is not None


def parse(data: bytes | str, *, what: str = "XML input") -> etree._Element:
    """Parse ``data`` and return the document (root) element.

    ``what`` names the input in error messages ("request body", "config file x.xml"). Raises
    ``PayloadError`` with line and column for malformed XML, DTDs, undefined entities and excessive
    nesting.
    """
    if isinstance(data, str):
        # lxml refuses str input that carries an encoding declaration; bytes are unambiguous.
        data = data.encode("utf-8")
        data = _strip_declared_encoding(data)
    if not data.strip():
        raise PayloadError(f"{what} is empty: expected an XML document")
    if _has_doctype(data):
        raise PayloadError(f"{what}: DTDs are not allowed (DOCTYPE declarations are rejected for safety)")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise PayloadError(_syntax_message(what, exc), detail=str(exc)) from None
    except ValueError as exc:  # e.g. unsupported encoding declarations
        raise PayloadError(f"{what} is not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        # Only reachable for exotic encodings (UTF-16) that hide the DOCTYPE from the byte scan.
        raise PayloadError(f"{what}: DTDs are not allowed (DOCTYPE declarations are rejected for safety)")
    return root


_UTF8_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml\s[^>]*?\?>", re.S)
_DECLARED_ENCODING = re.compile(rb"encoding\s*=\s*['\"]([^'\"]*)['\"]")


def parse_into(
    data: bytes, prefix: bytes, suffix: bytes, *, what: str = "XML input"
) -> etree._Element | None:
    """Parse ``prefix + data + suffix`` in one go and return the root (``data`` lands inside it).

    This is how a POX body is wrapped in a SOAP envelope without parsing twice and moving nodes
    between documents. ``data`` must be one well-formed document: it is checked for a DOCTYPE and
    for being a single element; on any error ``data`` is parsed alone so the message and the
    line/column refer to the caller's input. Returns None when ``data`` is not UTF-8 (declared
    otherwise or a UTF-16 BOM): the caller then parses it alone and wraps the result.
    """
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    declaration = _UTF8_DECLARATION.match(data)
    if declaration is not None:
        encoding = _DECLARED_ENCODING.search(declaration.group(0))
        if encoding is not None and encoding.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
            return None
        data = data[declaration.end() :]
    elif data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if _has_doctype(data):
        raise PayloadError(f"{what}: DTDs are not allowed (DOCTYPE declarations are rejected for safety)")
    try:
        root = etree.fromstring(prefix + data + suffix, _parser())
    except (etree.XMLSyntaxError, ValueError):
        root = None
    if root is None:
        parse(data, what=what)  # raises with the caller's line/column
        raise PayloadError(f"{what} is not well-formed XML")
    return root


_ENCODING_DECL = re.compile(rb"^(\s*<\?xml[^>]*?)\s+encoding\s*=\s*(['\"])[^'\"]*\2", re.S)


def _strip_declared_encoding(data: bytes) -> bytes:
    """Drop an ``encoding=`` pseudo-attribute: the text was str, we re-encoded it as UTF-8."""
    return _ENCODING_DECL.sub(rb"\1", data, count=1)


def _syntax_message(what: str, exc: etree.XMLSyntaxError) -> str:
    msg = (exc.msg or str(exc)).strip()
    # lxml appends ", line L, column C" to its messages; we report the position ourselves.
    msg = re.sub(r",\s*line \d+, column \d+$", "", msg)
    line, column = exc.position if exc.position else (exc.lineno, None)
    where = f" (line {line}, column {column})" if column is not None else f" (line {line})"
    if "Excessive depth" in msg:
        return f"{what} is nested too deeply: more than {MAX_DEPTH} levels of elements{where}"
    if "Entity '" in msg and "not defined" in msg:
        return f"{what} is not well-formed XML: {msg}{where}; entity references other than &lt; &gt; &amp; &quot; &apos; are not allowed"
    return f"{what} is not well-formed XML: {msg}{where}"


def serialize(el: etree._Element) -> str:
    """The element as XML text, without its tail and without namespace declarations it does not use.

    lxml copies every namespace in scope onto a serialized sub-element (a Body child would carry
    ``xmlns:soapenv``); Axiom, which Synapse uses, writes only the ones the element needs, and so do we.
    """
    if el.getparent() is not None and _inherits_unused_namespaces(el):
        el = _detached_copy(el)
    return cast(str, etree.tostring(el, encoding="unicode", with_tail=False))


def serialize_bytes(el: etree._Element) -> bytes:
    """Like ``serialize`` but UTF-8 bytes, without an XML declaration."""
    if el.getparent() is not None and _inherits_unused_namespaces(el):
        el = _detached_copy(el)
    return cast(bytes, etree.tostring(el, encoding="utf-8", with_tail=False, xml_declaration=False))


def _inherits_unused_namespaces(el: etree._Element) -> bool:
    parent = el.getparent()
    return parent is not None and bool(parent.nsmap)


def _detached_copy(el: etree._Element) -> etree._Element:
    dup = copy.deepcopy(el)
    dup.tail = None
    etree.cleanup_namespaces(dup)
    return dup


__all__ = ["MAX_DEPTH", "parse", "parse_into", "serialize", "serialize_bytes"]
