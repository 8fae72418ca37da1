"""JSON <-> XML: the XML view of a JSON payload and the JSON text of an XML one (synapse.md §6.3).

Synapse's JSON builder gives a JSON body an XML face (``<jsonObject>``/``<jsonArray>``) so XPath
mediators can read it, and its JSON formatter maps XML back. Both directions and the strict JSON
parse live here, apart from the message context that decides when to convert.
"""

from __future__ import annotations

import json
import re
from typing import Any

from lxml import etree

from sfbulk import xmlsafe
from sfbulk.errors import PayloadError
from sfbulk.secrets import Secret

JSON_DIGIT_PREFIX = "_JsonReader_PD_"
JSON_DOLLAR = "_JsonReader_PS_"


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


def parse_json(data: bytes | str) -> Any:
    """Parse a JSON body; PayloadError with line and column when it is not valid JSON."""
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


__all__ = [
    "JSON_DIGIT_PREFIX",
    "JSON_DOLLAR",
    "check_json_text",
    "dump_json",
    "json_to_xml",
    "parse_json",
    "xml_to_json_value",
]
