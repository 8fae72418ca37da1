"""A small JSONPath for ``json-eval(...)`` (synapse.md §4.2 rule 4): compiled once, run over the parsed JSON payload.

Supports ``$``, ``.key``, ``['key']``, ``[n]``, ``[*]``, ``.*`` and ``..key``: what Synapse configs
use. Anything else is a ConfigError at load, naming the unsupported part.
"""

from __future__ import annotations

import re
from typing import Any

from sfbulk.errors import ConfigError
from sfbulk.message.jsonxml import dump_json

#: What ``JsonPath.find`` returns when a definite path matches nothing (None is JSON null).
NOT_FOUND: Any = object()

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
        """The match (definite paths), a list of matches (wildcards, ``..``), or ``NOT_FOUND``."""
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
            return current[0] if current else NOT_FOUND
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
    if value is NOT_FOUND:
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


__all__ = ["NOT_FOUND", "JsonPath", "json_string"]
