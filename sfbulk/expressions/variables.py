"""Synapse's variables (``$ctx:x``, ``$trp:x``, ``$url:x``, ``$body``..., synapse.md §4.3) and ``get-property`` (§4.4).

Both read property scopes through the one table in ``sfbulk.message.scopes``; what is theirs alone
is the message-part variables (``$url:``, ``$body``, ``$header``, ``$env``), the default scope's
special names (``To``, ``MessageID``, ``SYSTEM_TIME``...) and the local-entry fallback.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote_plus

from sfbulk.errors import ExpressionError
from sfbulk.expressions.base import Expression
from sfbulk.expressions.javadate import format_java_date
from sfbulk.message.context import MessageContext
from sfbulk.message.scopes import SCOPE_TABLE, VARIABLE_SCOPES

#: ``$prefix:name`` variable kinds (the scope ones, and ``$url:`` for the request's query), and the
#: prefix-less ones that read the envelope.
VARIABLE_PREFIXES = frozenset(VARIABLE_SCOPES) | {"url"}
BARE_VARIABLES = frozenset(["body", "header", "env"])

#: Scopes ``get-property(scope, name)`` knows (two-argument calls with any other first argument are
#: ``get-property(name, dateFormat)``). ``file`` is known so that using it is reported, not taken
#: for a date format.
GET_PROPERTY_SCOPES = frozenset(name for name, scope in SCOPE_TABLE.items() if scope.get_property) | {"file"}


def current_time_ms() -> int:
    """Epoch milliseconds for ``SYSTEM_TIME`` (tests replace this to pin the clock)."""
    return int(time.time() * 1000)


def variable_value(ctx: MessageContext, kind: str, name: str) -> Any:
    """The raw value of a Synapse variable (§4.3); None when missing (``$url:``/``$sys:``: "")."""
    scope = VARIABLE_SCOPES.get(kind)
    if scope is not None:
        value = scope.get(ctx, name)
        if value is None:
            return scope.missing
        if kind == "func" and isinstance(value, Expression):
            return value.evaluate(ctx)  # a template parameter given as an expression
        return value
    if kind == "url":
        return url_parameter(ctx.to, name)
    if kind == "body":
        return ctx.body_element
    if kind == "header":
        return ctx.header_element
    if kind == "env":
        return ctx.envelope
    raise ExpressionError(f"unknown variable kind {kind!r}")


def url_parameter(uri: str | None, name: str) -> str:
    """``$url:name``: the query parameter of the request URI (case-insensitive name, "" when absent)."""
    if not uri or "?" not in uri:
        return ""
    query = uri.split("?", 1)[1]
    lname = name.lower()
    for pair in query.split("&"):
        parts = pair.split("=")
        if parts[0].lower() == lname and len(parts) > 1:
            return unquote_plus(parts[1])
    return ""


# --- get-property ----------------------------------------------------------------------------------------


def get_property(ctx: MessageContext, args: tuple[str, ...] | list[str]) -> Any:
    """Synapse's ``get-property`` (§4.4). Returns the raw value, "" or None (missing default-scope name)."""
    if not args:
        raise ExpressionError("get-property() needs at least one argument")
    if len(args) == 1:
        scope, name, date_format = "default", args[0], None
    elif len(args) == 2:
        if args[0] in GET_PROPERTY_SCOPES:
            scope, name, date_format = args[0], args[1], None
        else:
            scope, name, date_format = "default", args[0], args[1]
    else:
        scope, name, date_format = args[0], args[1], args[2]
    if not name:
        return ""
    if name == "SYSTEM_TIME":
        return str(current_time_ms())
    if name == "SYSTEM_DATE":
        return format_java_date(date_format, current_time_ms())
    if scope == "default":
        return _default_scope_property(ctx, name)
    if scope == "func":
        return variable_value(ctx, "func", name)
    if scope == "registry" and "@" in name:
        raise ExpressionError(
            f"registry resource properties are not supported: get-property('registry', '{name}')"
        )
    entry = SCOPE_TABLE.get(scope)
    if entry is None or not entry.get_property:
        raise ExpressionError(f"get-property scope '{scope}' is not supported")
    value = entry.get(ctx, name)
    return entry.missing if value is None else value


def _default_scope_property(ctx: MessageContext, name: str) -> Any:
    special = _SPECIAL_PROPERTIES.get(name)
    if special is not None:
        return special(ctx)
    value = ctx.properties.get(name)
    if value is not None:
        return value
    if ctx.engine is not None:
        return ctx.engine.local_entry(name)
    return None


def _message_format(ctx: MessageContext) -> str:
    message_type = str(ctx.axis2.get("messageType") or "")
    if message_type == "text/xml":
        return "soap11"
    if message_type == "application/soap+xml":
        return "soap12"
    if str(ctx.axis2.get("HTTP_METHOD", "")).upper() == "GET":
        return "get"
    return "pox"


def _fault_flag(ctx: MessageContext) -> str:
    if str(ctx.axis2.get("FAULT_MESSAGE", "")).lower() == "true" or ctx.is_soap_fault():
        return "true"
    return ""


_SPECIAL_PROPERTIES: dict[str, Any] = {
    "To": lambda ctx: ctx.to or "",
    "From": lambda ctx: "",
    "Action": lambda ctx: ctx.soap_action or "",
    "FaultTo": lambda ctx: "",
    "ReplyTo": lambda ctx: "",
    "RelatesTo": lambda ctx: "",
    "MessageID": lambda ctx: ctx.get_message_id(),
    "FAULT": _fault_flag,
    "MESSAGE_FORMAT": _message_format,
    "OperationName": lambda ctx: "mediate",
    "OperationNamespace": lambda ctx: "http://ws.apache.org/ns/synapse",
}

__all__ = [
    "BARE_VARIABLES",
    "GET_PROPERTY_SCOPES",
    "VARIABLE_PREFIXES",
    "current_time_ms",
    "get_property",
    "url_parameter",
    "variable_value",
]
