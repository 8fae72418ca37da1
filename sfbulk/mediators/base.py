"""The mediator protocol and the list runner every container shares.

A mediator is a small immutable object built once by a config front-end; ``mediate(ctx)`` returns
True to continue with the next sibling and False to stop the whole current flow (synapse.md §1).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sfbulk.errors import MediationFault
from sfbulk.httpheaders import header_value

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.message.context import MessageContext
    from sfbulk.message.engine_view import EngineView
    from sfbulk.transport import HttpResponse


@runtime_checkable
class Mediator(Protocol):
    """Anything with ``mediate(ctx) -> bool``."""

    def mediate(self, ctx: MessageContext) -> bool: ...


def run_mediators(mediators: Iterable[Mediator], ctx: MessageContext) -> bool:
    """Run a mediator list in order; the first False stops it and is returned (AbstractListMediator)."""
    for mediator in mediators:
        if not mediator.mediate(ctx):
            return False
    return True


def as_tuple(mediators: Sequence[Mediator] | None) -> tuple[Mediator, ...]:
    return tuple(mediators or ())


def engine_of(ctx: MessageContext, what: str) -> EngineView:
    """The engine behind ``ctx``; mediators that need one (sequences by key, call, connectors) fail clearly."""
    engine = ctx.engine
    if engine is None:
        raise MediationFault(f"{what} needs an Engine: build the message context with engine=...")
    return engine


def relay_response(ctx: MessageContext, response: HttpResponse) -> None:
    """A backend's answer becomes the current message (4xx/5xx included); the connection goes back to the pool."""
    try:
        content = response.content
    finally:
        response.close()
    headers = list(response.headers.items())
    content_type = header_value(headers, "Content-Type")
    ctx.set_response(response.status, response.reason or "", headers, content, content_type)


def mark_responded(ctx: MessageContext) -> None:
    """Record that the current message is the answer to the caller (respond, send back)."""
    ctx.is_response = True
    ctx.response_ready = True
