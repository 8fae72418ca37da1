"""The base class of compiled expressions (kept alone so the variables module can know one without a cycle)."""

from __future__ import annotations

from typing import Any

from sfbulk.expressions.values import boolean_value_of, string_value_of
from sfbulk.message.context import MessageContext


class Expression:
    """A compiled expression. ``evaluate`` gives the raw result; the two helpers apply Synapse's conversions."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def evaluate(self, ctx: MessageContext) -> Any:
        raise NotImplementedError

    def string_value(self, ctx: MessageContext) -> str | None:
        """Synapse ``stringValueOf`` (§4.2): None for a missing top-level value."""
        return string_value_of(self.evaluate(ctx))

    def boolean_value(self, ctx: MessageContext) -> bool:
        """XPath ``boolean()`` of the result (None is false)."""
        return boolean_value_of(self.evaluate(ctx))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


__all__ = ["Expression"]
