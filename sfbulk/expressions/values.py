"""Value conversions shared by the expression engine: Synapse's stringValueOf, XPath string()/boolean(),
Java number formatting (synapse.md §4.2). JSONPath is in ``jsonpath``, Java date patterns in ``javadate``.

Kept apart from ``expressions`` so that module stays about compiling and evaluating.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from lxml import etree

from sfbulk import xmlsafe
from sfbulk.message.jsonxml import dump_json
from sfbulk.secrets import Secret

_WHITESPACE = " \t\r\n\xa0"


# --- numbers -------------------------------------------------------------------------------------


def java_double(value: float) -> str:
    """Java ``Double.toString``: ``2.0``, ``0.5``, ``1.0E7``, ``NaN``, ``Infinity``."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = repr(value)
        if "e" in text or "E" in text:  # defensive: repr never uses exponents in this range
            text = f"{value:f}".rstrip("0")
        return text if "." in text else text + ".0"
    # Shortest digits that round-trip (Python repr), laid out Java style: "d.dddE<exp>".
    sign, digit_tuple, exp = Decimal(repr(value)).as_tuple()
    digits = list(digit_tuple)
    exponent = len(digits) - 1 + int(exp)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
    mantissa = f"{digits[0]}." + ("".join(map(str, digits[1:])) or "0")
    return ("-" if sign else "") + f"{mantissa}E{exponent}"


def xpath_number_string(value: float) -> str:
    """XPath 1.0 ``string()`` of a number: ``2``, ``2.5``, ``NaN``, ``Infinity``."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value):
        return str(int(value))
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    return text


# --- node-sets and results ------------------------------------------------------------------------


def element_string(el: etree._Element) -> str:
    """Synapse's rule for an element: its direct text children, or the element as XML when blank."""
    parts = [el.text or ""]
    for child in el:
        if child.tail:
            parts.append(child.tail)
    text = "".join(parts)
    if text.strip(_WHITESPACE):
        return text
    return xmlsafe.serialize(el)


def _node_string(node: Any) -> str:
    if isinstance(node, etree._Element):
        if isinstance(node.tag, str):
            return element_string(node)
        return node.text or ""  # comment / processing instruction
    if isinstance(node, tuple):  # namespace node: (prefix, uri)
        return str(node[1])
    return str(node)


def string_value_of(result: Any) -> str | None:
    """Synapse ``stringValueOf`` (§4.2): None stays None, numbers print as Java doubles, node-sets concatenate."""
    if result is None:
        return None
    if isinstance(result, str):
        return str(result)
    if isinstance(result, bool):
        return "true" if result else "false"
    if isinstance(result, int):
        return str(result)
    if isinstance(result, float):
        return java_double(result)
    if isinstance(result, list):
        return "".join(_node_string(node) for node in result)
    if isinstance(result, Secret):
        return result.reveal()
    if isinstance(result, etree._Element):
        return _node_string(result)
    if isinstance(result, dict):
        return dump_json(result)
    return str(result)


def xpath_string(value: Any) -> str:
    """XPath 1.0 ``string()`` of an extension-function argument."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return xpath_number_string(value)
    if isinstance(value, list):
        if not value:
            return ""
        first = value[0]
        if isinstance(first, etree._Element):
            if isinstance(first.tag, str):
                return "".join(first.itertext())
            return first.text or ""
        if isinstance(first, tuple):
            return str(first[1])
        return str(first)
    if value is None:
        return ""
    return str(value)


def boolean_value_of(result: Any) -> bool:
    """XPath ``boolean()`` with Jaxen's null rule (None is false)."""
    if result is None:
        return False
    if isinstance(result, bool):
        return result
    if isinstance(result, (int, float)):
        return result == result and result != 0
    if isinstance(result, (str, list, dict)):
        return len(result) > 0
    if isinstance(result, Secret):
        return bool(result)
    return True


def to_xpath_value(value: Any) -> Any:
    """A Python value as an lxml XPath variable. None becomes an empty node-set (Jaxen null rules)."""
    if value is None:
        return []
    if isinstance(value, (str, bool, float)):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, etree._Element):
        return [value]
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, list):
        if all(isinstance(v, etree._Element) for v in value):
            return value
        return dump_json(value)
    if isinstance(value, dict):
        return dump_json(value)
    return str(value)


__all__ = [
    "boolean_value_of",
    "element_string",
    "java_double",
    "string_value_of",
    "to_xpath_value",
    "xpath_number_string",
    "xpath_string",
]
