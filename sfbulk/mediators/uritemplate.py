"""RFC 6570 URI-template expansion as Synapse's http endpoint does it (synapse.md §3.7 step 2).

String values only (Synapse's variables are property strings). Undefined variables expand to
nothing; ``{var}`` encodes everything but unreserved characters, ``{+var}`` keeps reserved ones
and existing %XX triplets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_EXPRESSION = re.compile(r"\{([^{}]*)\}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_RESERVED = frozenset(":/?#[]@!$&'()*+,;=")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
# (first, separator, named, if-empty, allow reserved)
_OPERATORS: dict[str, tuple[str, str, bool, str, bool]] = {
    "": ("", ",", False, "", False),
    "+": ("", ",", False, "", True),
    "#": ("#", ",", False, "", True),
    ".": (".", ".", False, "", False),
    "/": ("/", "/", False, "", False),
    ";": (";", ";", True, "", False),
    "?": ("?", "&", True, "=", False),
    "&": ("&", "&", True, "=", False),
}
#: Characters a java.net.URI accepts outside escapes (used to decide whether expansion "parsed").
_URI_CHARS = _UNRESERVED | _RESERVED | frozenset("%")


def _encode(value: str, allow_reserved: bool) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if allow_reserved and ch == "%" and _PCT.match(value, i):
            out.append(value[i : i + 3])
            i += 3
            continue
        if ch in _UNRESERVED or (allow_reserved and ch in _RESERVED):
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
        i += 1
    return "".join(out)


def expand(template: str, variables: Mapping[str, Any]) -> str:
    """Expand ``template`` with ``variables`` (values stringified; None = undefined)."""

    def replace(match: re.Match[str]) -> str:
        body = match.group(1)
        operator = body[:1] if body[:1] in _OPERATORS and body[:1] != "" else ""
        if operator:
            body = body[1:]
        first, sep, named, if_empty, allow_reserved = _OPERATORS[operator]
        pieces: list[str] = []
        for spec in body.split(","):
            spec = spec.strip()
            prefix_len: int | None = None
            if spec.endswith("*"):
                spec = spec[:-1]
            elif ":" in spec:
                spec, _, length = spec.partition(":")
                prefix_len = int(length) if length.isdigit() else None
            value = variables.get(spec)
            if value is None:
                continue
            text = value if isinstance(value, str) else str(value)
            if prefix_len is not None:
                text = text[:prefix_len]
            encoded = _encode(text, allow_reserved)
            if named:
                pieces.append(spec + (("=" + encoded) if encoded else if_empty))
            else:
                pieces.append(encoded)
        if not pieces:
            return ""
        return first + sep.join(pieces)

    return _EXPRESSION.sub(replace, template)


def _parses_as_uri(text: str) -> bool:
    return all(ch in _URI_CHARS for ch in text) and all(
        _PCT.match(text, i) for i, ch in enumerate(text) if ch == "%"
    )


def resolve_endpoint_url(template: str, variables: Mapping[str, Any]) -> str:
    """HTTPEndpoint.resolveUrlTemplate: no variables → template as is; leading ``{x`` → ``{+x``;
    expand; a result java.net.URI would reject → the raw template."""
    defined = {k: v for k, v in variables.items() if v is not None}
    if not defined:
        return template
    if len(template) > 1 and template[0] == "{" and template[1] != "+":
        template = "{+" + template[1:]
    expanded = expand(template, defined)
    return expanded if _parses_as_uri(expanded) else template
