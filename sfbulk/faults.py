"""The one fault renderer: the small ``<fault><code>..</code><message>..</message></fault>`` body
(or its JSON form) with its status, reason and headers, for the engine's default fault handler and
the server's own errors alike.

Two framings, on purpose: the engine's fault is a mediated payload, serialised like every payload a
flow answers (no XML declaration, no final newline: ``<fault>...</fault>``); the server's own faults
(404, 405, 413, 500...) are whole documents (``<?xml ...?>`` then the element and a newline), as
docs/server.md shows them. ``document`` picks the framing. The caller masks secrets in ``message``
first; this module only escapes it. Standard library only, so every layer may import it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sfbulk.httpheaders import reason_phrase

XML_CONTENT_TYPE = "application/xml; charset=UTF-8"
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as entities: xml.sax.saxutils.escape, without its 0.1 s of imports (urllib.request)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class RenderedFault:
    """A fault answer ready to send: status line parts, headers and the encoded body."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def render_fault(
    code: object,
    message: str,
    status: int = 500,
    *,
    document: bool = False,
    json_wanted: bool = False,
    allow: Sequence[str] = (),
) -> RenderedFault:
    """``code`` and ``message`` as a fault body answered with ``status``.

    ``json_wanted``: ``{"fault": {"code": .., "message": ..}}`` instead of XML (``code`` as given:
    a string stays a string). ``document``: the XML gets a declaration and a final newline (the
    server's framing). ``allow``: the methods of an ``Allow`` header (405 answers).
    """
    if json_wanted:
        body = json.dumps({"fault": {"code": code, "message": message}}).encode("utf-8")
        content_type = JSON_CONTENT_TYPE
    else:
        element = f"<fault><code>{escape(str(code))}</code><message>{escape(message)}</message></fault>"
        body = (f"{_DECLARATION}{element}\n" if document else element).encode("utf-8")
        content_type = XML_CONTENT_TYPE
    headers = [("Content-Type", content_type)]
    if allow:
        headers.append(("Allow", ", ".join(allow)))
    return RenderedFault(status, reason_phrase(status), headers, body)


__all__ = ["JSON_CONTENT_TYPE", "XML_CONTENT_TYPE", "RenderedFault", "render_fault"]
