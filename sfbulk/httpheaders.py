"""HTTP header names: the one hop-by-hop list, canonical spellings, WSGI keys and case-insensitive lookup.

HTTP header names are case-insensitive (RFC 9110 §5.1). The server meets them as WSGI environ keys
(``HTTP_SOAPACTION``), the context and the transport keep them in case-insensitive dicts, mediators
and the CLI look them up in lists of pairs. Every one of those conversions lives here, once.

A foundation module: standard library only (no requests, no lxml), so every layer may import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from http import HTTPStatus

#: Headers that describe one connection only (RFC 9110 §7.6.1, plus the legacy Keep-Alive and
#: Proxy-Connection): never handed from one hop to the next. The server drops them from requests
#: before the engine sees them (the body is handed over de-chunked; the connection is the server's).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade"})

#: Never copied from the message onto an outgoing request (call/send) or onto the response to the
#: caller: Synapse's ``PassThroughTransportUtils.removeUnwantedHeaders`` list (framing, Date, Server
#: and User-Agent are the sending side's own) plus ``Host`` (echoing the caller's Host to a backend
#: or back to the caller is never right). Derived from HOP_BY_HOP because Content-Length is
#: recomputed for the new body, which the inbound side must keep (it sizes the request body).
NOT_RELAYED = HOP_BY_HOP | frozenset({"content-length", "date", "server", "user-agent", "host"})

#: Response headers the WSGI server computes itself and drops from what the app returns (PEP 3333
#: forbids hop-by-hop headers from apps; Synapse strips the same before writing, synapse.md §6.5).
#: User-Agent and Host are not response headers, so unlike NOT_RELAYED they are not listed;
#: Trailer(s) and Proxy-Authenticate are, because the server writes neither trailers nor proxy auth.
SERVER_COMPUTED = HOP_BY_HOP | frozenset(
    {"trailer", "trailers", "proxy-authenticate", "content-length", "date", "server"}
)

#: Canonical spellings of headers that title-casing gets wrong (``Soapaction``, ``Etag``...).
CANONICAL_NAMES = {
    "soapaction": "SOAPAction",
    "x-sfdc-session": "X-SFDC-Session",
    "content-md5": "Content-MD5",
    "www-authenticate": "WWW-Authenticate",
    "etag": "ETag",
}

#: The two request headers WSGI keeps without the ``HTTP_`` prefix (PEP 3333).
_UNPREFIXED = ("CONTENT_TYPE", "CONTENT_LENGTH")


def canonical_name(name: str) -> str:
    """``content-type`` -> ``Content-Type``, ``soapaction`` -> ``SOAPAction``: how a name is written out."""
    title = "-".join(part.capitalize() for part in name.replace("_", "-").split("-"))
    return CANONICAL_NAMES.get(title.lower(), title)


def name_from_environ_key(key: str) -> str | None:
    """The header name of a WSGI environ key (``HTTP_X_SFDC_SESSION`` -> ``X-SFDC-Session``).

    ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` are headers too; any other key (``PATH_INFO``,
    ``wsgi.input``...) is not a header: None.
    """
    if key.startswith("HTTP_"):
        return canonical_name(key[5:])
    if key in _UNPREFIXED:
        return canonical_name(key)
    return None


def environ_key(name: str) -> str:
    """The WSGI environ key of header ``name`` (``Content-Type`` -> ``CONTENT_TYPE``, ``X-A`` -> ``HTTP_X_A``)."""
    key = name.upper().replace("-", "_")
    return key if key in _UNPREFIXED else "HTTP_" + key


def header_value(headers: Iterable[tuple[str, str]] | Mapping[str, str], name: str) -> str | None:
    """The first value of header ``name`` (any case) in a list of pairs or a mapping, or None."""
    lname = name.lower()
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key.lower() == lname:
            return value
    return None


def join_repeated(
    headers: Iterable[tuple[str, str]] | Mapping[str, str], into: MutableMapping[str, str]
) -> MutableMapping[str, str]:
    """Add ``headers`` to the case-insensitive ``into``; a repeated name joins its values with ``", "``.

    RFC 9110 §5.3: a recipient may combine repeated fields into one, values in order, comma-separated.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        if name in into:
            into[name] = f"{into[name]}, {value}"
        else:
            into[name] = value
    return into


def reason_phrase(status: int, *, unknown: str = "Unknown") -> str:
    """The standard reason phrase of ``status`` ("Service Unavailable"); ``unknown`` for a code HTTP does
    not name (the server's own faults say "Unknown"; a mediated message leaves it empty, as Synapse does)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return unknown


__all__ = [
    "reason_phrase",
    "CANONICAL_NAMES",
    "HOP_BY_HOP",
    "NOT_RELAYED",
    "SERVER_COMPUTED",
    "canonical_name",
    "environ_key",
    "header_value",
    "join_repeated",
    "name_from_environ_key",
]
