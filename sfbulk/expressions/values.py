"""Value conversions shared by the expression engine: Synapse's stringValueOf, XPath string()/boolean(),
Java number formatting, a small JSONPath and Java SimpleDateFormat patterns (synapse.md §4.2, §4.4).

Kept apart from ``expressions`` so that module stays about compiling and evaluating.
"""

from __future__ import annotations

import math
import re
import time
from decimal import Decimal
from typing import Any

from lxml import etree

from sfbulk import xmlsafe
from sfbulk.errors import ConfigError
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


# --- JSONPath (subset) ----------------------------------------------------------------------------

_NOT_FOUND: Any = object()

_SEGMENT = re.compile(
    r"""
    \.\.(?P<deep>[^.\[\]]+|\*)          # ..key
  | \.(?P<key>[^.\[\]]+|\*)             # .key  .*
  | \[\s*(?P<quoted>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*\]   # ['key']
  | \[\s*(?P<index>-?\d+)\s*\]          # [n]
  | \[\s*(?P<star>\*)\s*\]              # [*]
    """,
    re.X,
)


class JsonPath:
    """A compiled JSONPath: ``$``, ``.key``, ``['key']``, ``[n]``, ``[*]``, ``.*``, ``..key``."""

    __slots__ = ("text", "steps", "definite", "whole")

    def __init__(self, text: str) -> None:
        self.text = text
        path = text.strip()
        if not path.startswith("$"):
            raise ConfigError(f"invalid JSONPath '{text}': it must start with '$'")
        self.whole = path in ("$", "$.")
        self.steps: list[tuple[str, Any]] = []
        self.definite = True
        pos = 1
        if self.whole:
            return
        while pos < len(path):
            match = _SEGMENT.match(path, pos)
            if match is None:
                raise ConfigError(
                    f"unsupported JSONPath '{text}' at '{path[pos:]}': supported are $, .key, ['key'], [n], [*], .* and ..key"
                )
            if match.group("deep") is not None:
                self.steps.append(("deep", match.group("deep")))
                self.definite = False
            elif match.group("key") is not None:
                key = match.group("key").strip()
                if key == "*":
                    self.steps.append(("star", None))
                    self.definite = False
                else:
                    self.steps.append(("key", key))
            elif match.group("quoted") is not None:
                raw = match.group("quoted")[1:-1]
                self.steps.append(("key", re.sub(r"\\(.)", r"\1", raw)))
            elif match.group("index") is not None:
                self.steps.append(("index", int(match.group("index"))))
            else:
                self.steps.append(("star", None))
                self.definite = False
            pos = match.end()

    def find(self, document: Any) -> Any:
        """The match (definite paths), a list of matches (wildcards, ``..``), or ``_NOT_FOUND``."""
        if self.whole:
            return document
        current = [document]
        for kind, arg in self.steps:
            nxt: list[Any] = []
            for node in current:
                if kind == "key":
                    if isinstance(node, dict) and arg in node:
                        nxt.append(node[arg])
                elif kind == "index":
                    if isinstance(node, list) and -len(node) <= arg < len(node):
                        nxt.append(node[arg])
                elif kind == "star":
                    if isinstance(node, dict):
                        nxt.extend(node.values())
                    elif isinstance(node, list):
                        nxt.extend(node)
                else:
                    _deep_scan(node, arg, nxt)
            current = nxt
        if self.definite:
            return current[0] if current else _NOT_FOUND
        return current


def _deep_scan(node: Any, key: str, out: list[Any]) -> None:
    if isinstance(node, dict):
        for name, value in node.items():
            if key == "*" or name == key:
                out.append(value)
            _deep_scan(value, key, out)
    elif isinstance(node, list):
        for value in node:
            if key == "*":
                out.append(value)
            _deep_scan(value, key, out)


def json_string(value: Any) -> str:
    """String form of a JSONPath result (§4.2 rule 4): primitives unquoted, structures as JSON."""
    if value is _NOT_FOUND:
        return ""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return dump_json(value)
    return dump_json(value)


# --- dates --------------------------------------------------------------------------------------------

_DATE_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.S)
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

#: ``new SimpleDateFormat()`` default pattern (en_US).
DEFAULT_DATE_PATTERN = "M/d/yy h:mm a"


def format_java_date(pattern: str | None, epoch_ms: int) -> str:
    """Format an epoch-millisecond time with a Java ``SimpleDateFormat`` pattern (common letters)."""
    pattern = pattern or DEFAULT_DATE_PATTERN
    seconds, millis = divmod(epoch_ms, 1000)
    tm = time.localtime(seconds)
    out: list[str] = []
    for match in _DATE_TOKEN.finditer(pattern):
        token = match.group(0)
        if token.startswith("'"):
            out.append(token[1:-1].replace("''", "'") if token != "''" else "'")
            continue
        letter = match.group(1)
        if letter is None:
            out.append(token)
            continue
        n = len(token)
        if letter == "y":
            out.append(f"{tm.tm_year % 100:02d}" if n == 2 else f"{tm.tm_year:0{n}d}")
        elif letter == "M":
            out.append(
                _MONTHS[tm.tm_mon - 1]
                if n >= 4
                else _MONTHS[tm.tm_mon - 1][:3]
                if n == 3
                else f"{tm.tm_mon:0{n}d}"
            )
        elif letter == "d":
            out.append(f"{tm.tm_mday:0{n}d}")
        elif letter == "H":
            out.append(f"{tm.tm_hour:0{n}d}")
        elif letter == "k":
            out.append(f"{tm.tm_hour or 24:0{n}d}")
        elif letter == "h":
            out.append(f"{(tm.tm_hour % 12) or 12:0{n}d}")
        elif letter == "K":
            out.append(f"{tm.tm_hour % 12:0{n}d}")
        elif letter == "m":
            out.append(f"{tm.tm_min:0{n}d}")
        elif letter == "s":
            out.append(f"{tm.tm_sec:0{n}d}")
        elif letter == "S":
            out.append(f"{millis:0{max(n, 3)}d}"[: max(n, 3)] if n >= 3 else f"{millis:0{n}d}")
        elif letter == "a":
            out.append("AM" if tm.tm_hour < 12 else "PM")
        elif letter == "E":
            out.append(_DAYS[tm.tm_wday] if n >= 4 else _DAYS[tm.tm_wday][:3])
        elif letter == "D":
            out.append(f"{tm.tm_yday:0{n}d}")
        elif letter in ("Z", "X", "z"):
            offset = tm.tm_gmtoff or 0
            sign = "+" if offset >= 0 else "-"
            hours, minutes = divmod(abs(offset) // 60, 60)
            if letter == "z":
                out.append(tm.tm_zone or f"GMT{sign}{hours:02d}:{minutes:02d}")
            elif letter == "X" and offset == 0:
                out.append("Z")
            elif letter == "X" and n >= 3:
                out.append(f"{sign}{hours:02d}:{minutes:02d}")
            elif letter == "X" and n == 1:
                out.append(f"{sign}{hours:02d}")
            else:
                out.append(f"{sign}{hours:02d}{minutes:02d}")
        else:
            raise ConfigError(f"unsupported date pattern letter '{letter}' in '{pattern}'")
    return "".join(out)


__all__ = [
    "JsonPath",
    "boolean_value_of",
    "element_string",
    "format_java_date",
    "java_double",
    "json_string",
    "string_value_of",
    "to_xpath_value",
    "xpath_number_string",
    "xpath_string",
]
