"""Property scopes (synapse.md §3.1, §4.3, §4.4): the one table of where each scope's values live.

Synapse reads and writes properties three ways: the ``<property>`` mediator and code
(``MessageContext.get/set/remove_property``), ``$prefix:name`` variables and
``get-property(scope, name)``. All three dispatch through ``SCOPE_TABLE``, so a scope means the
same thing everywhere. Each entry says how to read a name, how to set and remove it (None for the
read-only scopes ``func`` and ``env``), and what an expression reads for a missing name (Synapse
gives ``""`` for system, registry and env lookups but null for the others).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sfbulk.javatext import java_string

if TYPE_CHECKING:
    from sfbulk.message.context import MessageContext
    from sfbulk.registry import Registry

#: Property scopes the context stores (synapse.md §3.1): ``get/set/remove_property`` accept these.
SCOPES = ("default", "transport", "axis2", "axis2-client", "operation", "registry", "system")

#: JVM-style system properties (scope ``system``); process-wide like Java's.
SYSTEM_PROPERTIES: dict[str, str] = {}

Getter = Callable[["MessageContext", str], Any]
Setter = Callable[["MessageContext", str, Any], None]
Remover = Callable[["MessageContext", str], None]


@dataclass(frozen=True, slots=True)
class Scope:
    """One property scope: where its values live and how each entry point reaches them."""

    name: str
    get: Getter
    set: Setter | None = None  # None: read-only (expressions only)
    remove: Remover | None = None
    missing: Any = None  # what ``$var:``/``get-property`` read for an absent name
    get_property: bool = True  # ``get-property(scope, name)`` reads it (axis2-client is config-only)

    @property
    def stored(self) -> bool:
        """True for the scopes the context stores (``SCOPES``): settable and removable."""
        return self.set is not None


def registry_of(ctx: MessageContext) -> Registry | None:
    """The engine's registry, or None (no engine, or an engine without one)."""
    return ctx.engine.registry if ctx.engine is not None else None


def _require_registry(ctx: MessageContext) -> Registry:
    registry = registry_of(ctx)
    if registry is None:
        from sfbulk.errors import RegistryError

        raise RegistryError("no registry is configured for this engine (registry scope needs one)")
    return registry


# --- default ---


def _set_default(ctx: MessageContext, name: str, value: Any) -> None:
    if value is not None:  # Axis2MessageContext.setProperty: null keeps the old value
        ctx.properties[name] = value


# --- transport: the message's transport headers ---


def _set_transport(ctx: MessageContext, name: str, value: Any) -> None:
    ctx.set_header(name, value)


def _remove_transport(ctx: MessageContext, name: str) -> None:
    ctx.remove_header(name)


# --- axis2 ---


def _set_axis2(ctx: MessageContext, name: str, value: Any) -> None:
    if value is None:
        ctx.axis2.pop(name, None)
    elif name == "messageType":
        ctx.set_message_type(value)
    else:
        ctx.axis2[name] = value


# --- operation ---


def _set_operation(ctx: MessageContext, name: str, value: Any) -> None:
    if value is None:
        ctx.operation.pop(name, None)
    else:
        ctx.operation[name] = value


# --- registry ---


def _get_registry(ctx: MessageContext, name: str) -> Any:
    registry = registry_of(ctx)
    return registry.get(name) if registry is not None else None


def _set_registry(ctx: MessageContext, name: str, value: Any) -> None:
    _require_registry(ctx).put(name, java_string(value, null="", reveal=True))


def _remove_registry(ctx: MessageContext, name: str) -> None:
    _require_registry(ctx).delete(name)


# --- axis2-client ---


def _set_axis2_client(ctx: MessageContext, name: str, value: Any) -> None:
    ctx.axis2_client[name] = value


# --- system ---


def _set_system(ctx: MessageContext, name: str, value: Any) -> None:
    SYSTEM_PROPERTIES[name] = java_string(value, null="", reveal=True)


# --- func: the innermost template frame ---


def _get_func(ctx: MessageContext, name: str) -> Any:
    frame = ctx.frames[-1] if ctx.frames else None
    return None if frame is None else frame.get(name)


def _remove_default(ctx: MessageContext, name: str) -> None:
    ctx.properties.pop(name, None)


def _remove_axis2(ctx: MessageContext, name: str) -> None:
    ctx.axis2.pop(name, None)


def _remove_axis2_client(ctx: MessageContext, name: str) -> None:
    ctx.axis2_client.pop(name, None)


def _remove_operation(ctx: MessageContext, name: str) -> None:
    ctx.operation.pop(name, None)


def _remove_system(ctx: MessageContext, name: str) -> None:
    SYSTEM_PROPERTIES.pop(name, None)


#: Every scope, by the name config and ``get-property`` use.
SCOPE_TABLE: dict[str, Scope] = {
    scope.name: scope
    for scope in (
        Scope("default", lambda ctx, name: ctx.properties.get(name), _set_default, _remove_default),
        Scope("transport", lambda ctx, name: ctx.headers.get(name), _set_transport, _remove_transport),
        Scope("axis2", lambda ctx, name: ctx.axis2.get(name), _set_axis2, _remove_axis2),
        Scope(
            "axis2-client",
            lambda ctx, name: ctx.axis2_client.get(name),
            _set_axis2_client,
            _remove_axis2_client,
            get_property=False,
        ),
        Scope("operation", lambda ctx, name: ctx.operation.get(name), _set_operation, _remove_operation),
        Scope("registry", _get_registry, _set_registry, _remove_registry, missing=""),
        Scope(
            "system", lambda ctx, name: SYSTEM_PROPERTIES.get(name), _set_system, _remove_system, missing=""
        ),
        Scope("func", _get_func),
        Scope("env", lambda ctx, name: os.environ.get(name), missing=""),
    )
}

#: ``$prefix:name`` variables that read a scope (``$url:``, ``$body``... read the message itself).
VARIABLE_SCOPES: dict[str, Scope] = {
    prefix: SCOPE_TABLE[scope]
    for prefix, scope in (
        ("ctx", "default"),
        ("trp", "transport"),
        ("axis2", "axis2"),
        ("func", "func"),
        ("operation", "operation"),
        ("sys", "system"),
    )
}


#: The scopes the context stores, by name: ``get/set/remove_property`` look them up here.
STORED_SCOPES: dict[str, Scope] = {name: scope for name, scope in SCOPE_TABLE.items() if scope.stored}


def unknown_scope(scope: str) -> ValueError:
    """The error for a scope the context does not store, naming the ones it does."""
    return ValueError(f"unknown property scope {scope!r}; expected one of {', '.join(SCOPES)}")


__all__ = [
    "SCOPES",
    "SCOPE_TABLE",
    "SYSTEM_PROPERTIES",
    "VARIABLE_SCOPES",
    "STORED_SCOPES",
    "Scope",
    "registry_of",
    "unknown_scope",
]
