"""Flow containers and references: Sequence, Proxy, ``<sequence key>``, ``<in>``/``<out>`` (synapse.md §2.2-2.3, 3.14).

``<in>`` and ``<out>`` (Synapse's InMediator/OutMediator) run their children only on a request,
resp. only on a response. Modern configs rarely use them, but the ``main`` sequence every WSO2
deployment ships is written with them, so a deployment folder loads unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sfbulk.errors import MediationFault
from sfbulk.mediators.base import Mediator, engine_of, run_mediators

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.expressions.expression import Value
    from sfbulk.mediators.http import Endpoint
    from sfbulk.message.context import MessageContext

log = logging.getLogger("sfbulk.mediation")


class Sequence:
    """A named (or anonymous in/out/fault) mediator list; ``on_error`` names the fault sequence.

    Entering pushes the ``on_error`` handler on the fault stack; completing with True pops it
    (SequenceMediator). A name that does not resolve only logs a warning, as in Synapse.
    """

    def __init__(
        self,
        name: str | None,
        mediators: SequenceABC[Mediator] = (),
        on_error: str | None = None,
    ) -> None:
        self.name = name
        self.mediators = tuple(mediators)
        self.on_error = on_error or None

    def mediate(self, ctx: MessageContext) -> bool:
        pushed = False
        if self.on_error:
            handler = ctx.engine.sequence(self.on_error) if ctx.engine is not None else None
            if handler is None:
                owner = f"sequence {self.name!r}" if self.name else "an inline sequence"
                log.warning("onError sequence %r of %s cannot be found", self.on_error, owner)
            else:
                ctx.fault_stack.append(handler)
                pushed = True
        result = run_mediators(self.mediators, ctx)
        if result and pushed and ctx.fault_stack:
            ctx.fault_stack.pop()
        return result

    def __repr__(self) -> str:
        return f"Sequence({self.name!r}, {len(self.mediators)} mediators, on_error={self.on_error!r})"


SequenceOrKey = Sequence | str | None


@dataclass
class Proxy:
    """A ``<proxy>``: its in/out/fault sequences given inline (``Sequence``) or by key (``str``).

    ``endpoint`` (an ``HttpEndpoint``) is the target endpoint: used when the inSequence completes
    with True, the response then runs the outSequence (synapse.md §2.2 step 3).
    """

    name: str
    in_sequence: SequenceOrKey = None
    out_sequence: SequenceOrKey = None
    fault_sequence: SequenceOrKey = None
    transports: tuple[str, ...] = ("http", "https")
    start_on_load: bool = True
    endpoint: Endpoint | None = None
    description: str = ""
    source: str | None = field(default=None, compare=False)  # file:line the proxy came from, for messages


class SequenceReference:
    """``<sequence key="k"/>``: run a named sequence; its result is ours. ``key`` may be dynamic (a Value)."""

    def __init__(self, key: str | Value) -> None:
        self.key = key

    def mediate(self, ctx: MessageContext) -> bool:
        key = self.key if isinstance(self.key, str) else self.key.evaluate(ctx)
        engine = engine_of(ctx, "a sequence reference")
        sequence = engine.sequence(key) if key else None
        if sequence is None:
            raise MediationFault(f"Sequence named Value {{name ='null', keyValue ='{key}'}} cannot be found")
        return bool(sequence.mediate(ctx))


class DirectionMediator:
    """``<in>`` (``response=False``) or ``<out>`` (``response=True``): children run in that direction only."""

    def __init__(self, mediators: SequenceABC[Mediator] = (), *, response: bool) -> None:
        self.mediators = tuple(mediators)
        self.response = response

    def mediate(self, ctx: MessageContext) -> bool:
        if ctx.is_response != self.response:
            return True
        return run_mediators(self.mediators, ctx)
