"""``<in>`` and ``<out>``: run their children only on a request, resp. only on a response.

Synapse's InMediator/OutMediator (``synCtx.isResponse()``). Modern configs rarely use them, but
the ``main`` sequence every WSO2 deployment ships is written with them, so a deployment folder
loads unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from typing import TYPE_CHECKING

from sfbulk.mediators.base import Mediator, run_mediators

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.message.context import MessageContext


class DirectionMediator:
    """``<in>`` (``response=False``) or ``<out>`` (``response=True``): children run in that direction only."""

    def __init__(self, mediators: SequenceABC[Mediator] = (), *, response: bool) -> None:
        self.mediators = tuple(mediators)
        self.response = response

    def mediate(self, ctx: MessageContext) -> bool:
        if bool(getattr(ctx, "is_response", False)) != self.response:
            return True
        return run_mediators(self.mediators, ctx)


__all__ = ["DirectionMediator"]
