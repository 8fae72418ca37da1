"""Synapse's core (non-messaging) mediators: property and log (synapse.md §3.1, 3.4).

Each class is built once from already-compiled expressions; ``mediate`` never parses configuration.
``mask_secrets`` lives here because the log mediator and the engine's fault logging share it.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from lxml import etree

from sfbulk.errors import ConfigError, MediationFault
from sfbulk.javatext import java_string
from sfbulk.secrets import MASK, is_secret_name, redact

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.expressions.expression import Expression
    from sfbulk.message.context import MessageContext

log = logging.getLogger("sfbulk.mediation")

# --- property ----------------------------------------------------------------------------------

PROPERTY_SCOPES = ("default", "transport", "axis2", "axis2-client", "operation", "registry")
PROPERTY_TYPES = ("STRING", "BOOLEAN", "INTEGER", "LONG", "SHORT", "FLOAT", "DOUBLE", "OM", "JSON")
_INT_RANGES = {"SHORT": 16, "INTEGER": 32, "LONG": 64}
_JAVA_INT = re.compile(r"[+-]?[0-9]+")
_JAVA_FLOAT = re.compile(r"[+-]?(NaN|Infinity|((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)[fFdD]?)")


def convert_property_type(value: str, type_: str) -> Any:
    """Java-style conversion of a property string (PropertyMediator.convertValue); ValueError on failure."""
    if type_ == "STRING":
        return value
    if type_ == "BOOLEAN":
        return value.strip().lower() in ("true", "yes", "1")
    if type_ in _INT_RANGES:
        if not _JAVA_INT.fullmatch(value):
            raise ValueError(value)
        number = int(value)
        bits = _INT_RANGES[type_]
        if not -(2 ** (bits - 1)) <= number < 2 ** (bits - 1):
            raise ValueError(value)
        return number
    if type_ in ("FLOAT", "DOUBLE"):
        text = value.strip()
        if not _JAVA_FLOAT.fullmatch(text):
            raise ValueError(value)
        text = text.rstrip("fFdD") if text[-1:] in "fFdD" and not text.endswith("Infinity") else text
        return float(text.replace("Infinity", "inf"))
    if type_ == "OM":
        from sfbulk.xmlsafe import parse

        return parse(value, what="OM property value")
    if type_ == "JSON":
        return json.loads(value)
    raise ValueError(f"unknown type {type_}")


class PropertyMediator:
    """``<property>``: set or remove a property in one scope (synapse.md §3.1, vectors P1-P13)."""

    def __init__(
        self,
        name: str,
        *,
        value: str | None = None,
        expression: Expression | None = None,
        element: etree._Element | None = None,
        scope: str = "default",
        type: str = "STRING",  # noqa: A002 - Synapse's attribute name
        action: str = "set",
        pattern: re.Pattern[str] | None = None,
        group: int = 0,
    ) -> None:
        scope = (scope or "default").lower()
        type_ = (type or "STRING").upper()
        action = (action or "set").lower()
        if scope not in PROPERTY_SCOPES:
            raise ConfigError(
                f"property {name!r}: unsupported scope {scope!r} (use one of {', '.join(PROPERTY_SCOPES)})"
            )
        if type_ not in PROPERTY_TYPES:
            raise ConfigError(
                f"property {name!r}: unknown type {type!r} (use one of {', '.join(PROPERTY_TYPES)})"
            )
        if action not in ("set", "remove"):
            raise ConfigError(f"property {name!r}: action must be 'set' or 'remove', not {action!r}")
        if action == "set" and value is None and expression is None and element is None:
            raise ConfigError(f"property {name!r}: one of value, expression or an inline element is required")
        self.name = name
        self.scope = "axis2" if scope == "axis2-client" else scope
        self.type = type_
        self.action = action
        self.expression = expression
        self.element = element
        self.pattern = pattern
        self.group = group
        self.value: Any = None
        # Precedence (PropertyMediatorFactory): value > inline element > expression.
        if value is not None:
            try:
                self.value = convert_property_type(value, type_)
            except Exception as exc:
                raise ConfigError(
                    f"property {name!r}: value {value!r} cannot be converted to {type_}"
                ) from exc
            self.element = None
            self.expression = None
        elif element is not None:
            self.expression = None

    def _result(self, ctx: MessageContext) -> Any:
        if self.value is not None:
            return self.value
        if self.element is not None:
            return copy.deepcopy(self.element)
        assert self.expression is not None
        result: Any = self.expression.string_value(ctx)
        if result is None:
            return None
        if self.pattern is not None:
            match = self.pattern.fullmatch(result)
            if match is None:
                result = ""
            else:
                result = match.group(self.group) if self.group <= (self.pattern.groups or 0) else result
                result = "" if result is None else result
        try:
            return convert_property_type(result, self.type)
        except Exception as exc:
            raise MediationFault(
                f"Unknown type : {self.type} for the value {result} cannot be converted"
            ) from exc

    def mediate(self, ctx: MessageContext) -> bool:
        if self.action == "remove":
            ctx.remove_property(self.name, self.scope)
            return True
        value = self._result(ctx)
        scope = self.scope
        if scope == "registry":
            if value is not None:
                ctx.set_property(self.name, java_string(value), "registry")
            return True
        if scope == "transport":
            ctx.set_property(self.name, java_string(value, null=""), "transport")
            return True
        if value is None and scope == "default":
            return True  # Axis2MessageContext.setProperty: null is a no-op, the old value stays
        # axis2 messageType is special (P10): the context drags ContentType and Content-Type along.
        ctx.set_property(self.name, value, scope)
        return True


def display_value(value: Any) -> str:
    """Java ``String.valueOf`` of a property value for logs and faults (secrets stay masked)."""
    return java_string(value)


# --- log ---------------------------------------------------------------------------------------

LOG_LEVELS = ("simple", "headers", "full", "custom")
#: Longest value one ``<log>`` property writes, and longest payload ``level="full"`` writes
#: (characters): the request decides how long they are, the log must not (docs/security.md).
LOG_VALUE_LIMIT = 1000
LOG_PAYLOAD_LIMIT = 8000
_CATEGORIES = {
    "TRACE": 5,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
}


@dataclass(frozen=True)
class LogProperty:
    """A ``<property>`` child of ``<log>``: a literal value or an expression."""

    name: str
    value: str | None = None
    expression: Expression | None = None


class LogMediator:
    """``<log>``: one line on ``sfbulk.mediation``; never changes the message (synapse.md §3.4)."""

    def __init__(
        self,
        *,
        level: str = "simple",
        category: str = "INFO",
        separator: str = ", ",
        properties: Sequence[LogProperty] = (),
    ) -> None:
        level = (level or "simple").lower()
        if level not in LOG_LEVELS:
            raise ConfigError(f"log: unknown level {level!r} (use one of {', '.join(LOG_LEVELS)})")
        category_key = (category or "INFO").upper()
        if category_key not in _CATEGORIES:
            raise ConfigError(f"log: unknown category {category!r} (use one of {', '.join(_CATEGORIES)})")
        self.level = level
        self.category = category_key
        self.log_level = _CATEGORIES[category_key]
        self.separator = ", " if separator is None else separator
        self.properties = tuple(properties)

    def mediate(self, ctx: MessageContext) -> bool:
        if log.isEnabledFor(self.log_level):
            log.log(self.log_level, "%s", mask_secrets(ctx, self.message(ctx)))
        return True

    def message(self, ctx: MessageContext) -> str:
        """The log line (without logger prefixes); secrets masked."""
        parts: list[str] = []
        if self.level in ("simple", "full"):
            parts.extend(_simple_parts(ctx))
        elif self.level == "headers":
            parts.extend(_header_parts(ctx))
        text = self.separator.join(parts)
        for prop in self.properties:
            if prop.expression is not None:
                value = display_value(prop.expression.string_value(ctx))
            else:
                value = display_value(prop.value)
            if is_secret_name(prop.name):
                value = MASK
            # masked before it is cut, so a cut never leaves half a secret in clear
            text += self.separator + prop.name + " = " + _bounded(mask_secrets(ctx, value), LOG_VALUE_LIMIT)
        if self.level == "full":
            text += self.separator + _bounded(mask_secrets(ctx, _payload_part(ctx)), LOG_PAYLOAD_LIMIT)
        if not parts and text.startswith(self.separator):
            text = text[len(self.separator) :]
        return text


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def mask_secrets(ctx: MessageContext, text: str) -> str:
    """Mask secrets in ``text``: known secret values, secret-looking fields, and the values of any
    property or header with a secret name (a token copied under another name stays hidden)."""
    values: set[str] = set()
    for mapping in (ctx.properties, ctx.headers, ctx.operation):
        for name, value in mapping.items():
            if isinstance(value, str) and len(value) >= 4 and is_secret_name(str(name)):
                values.add(value)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return redact(text)


def _simple_parts(ctx: MessageContext) -> list[str]:
    parts = [f"To: {ctx.to or ''}"]
    action = ctx.soap_action
    if action:
        parts.append(f"WSAction: {action}")
        parts.append(f"SOAPAction: {action}")
    message_id = ctx.properties.get("MessageID")
    if message_id:
        parts.append(f"MessageID: {message_id}")
    parts.append("Direction: " + ("response" if ctx.is_response else "request"))
    return parts


def _header_parts(ctx: MessageContext) -> list[str]:
    header = ctx.envelope.find("{*}Header")
    parts = []
    if header is not None:
        for block in header:
            if isinstance(block.tag, str):
                local = etree.QName(block).localname
                parts.append(f"{local} : {MASK if is_secret_name(local) else (block.text or '')}")
    return parts


def _payload_part(ctx: MessageContext) -> str:
    message_type = str(ctx.axis2.get("messageType") or "")
    if "json" in message_type:
        data, _ = ctx.payload_bytes()
        return "Payload: " + data.decode("utf-8", "replace")
    return "Envelope: " + cast(str, etree.tostring(ctx.envelope, encoding="unicode"))


# --- header ------------------------------------------------------------------------------------
