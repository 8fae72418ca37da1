"""Filter mediators: filter and switch, each running the branch its condition picks (synapse.md §3.2-3.3)."""

from __future__ import annotations

import re
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sfbulk.errors import ConfigError
from sfbulk.mediators.base import Mediator, run_mediators
from sfbulk.mediators.flow import SequenceReference

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.expressions.expression import Expression
    from sfbulk.message.context import MessageContext


class FilterMediator:
    """``<filter>``: ``xpath`` boolean, or ``source`` + ``regex`` (whole-string match); then/else lists.

    A branch may instead name a sequence (``then_sequence``/``else_sequence``). No branch taken → True.
    """

    def __init__(
        self,
        *,
        xpath: Expression | None = None,
        source: Expression | None = None,
        regex: re.Pattern[str] | None = None,
        then: SequenceABC[Mediator] = (),
        else_: SequenceABC[Mediator] | None = None,
        then_sequence: str | None = None,
        else_sequence: str | None = None,
    ) -> None:
        if xpath is None and (source is None or regex is None):
            raise ConfigError("filter: needs an xpath, or both source and regex")
        self.xpath = xpath
        self.source = None if xpath is not None else source
        self.regex = None if xpath is not None else regex
        self.then = tuple(then)
        self.else_ = None if else_ is None else tuple(else_)
        self.then_sequence = then_sequence
        self.else_sequence = else_sequence

    def test(self, ctx: MessageContext) -> bool:
        if self.xpath is not None:
            return bool(self.xpath.boolean_value(ctx))
        assert self.source is not None and self.regex is not None
        value = self.source.string_value(ctx)
        return value is not None and self.regex.fullmatch(value) is not None

    def mediate(self, ctx: MessageContext) -> bool:
        if self.test(ctx):
            return _run_branch(ctx, self.then, self.then_sequence)
        if self.else_ is not None or self.else_sequence:
            return _run_branch(ctx, self.else_ or (), self.else_sequence)
        return True


def _run_branch(ctx: MessageContext, mediators: SequenceABC[Mediator], sequence_key: str | None) -> bool:
    if sequence_key:
        return SequenceReference(sequence_key).mediate(ctx)
    return run_mediators(mediators, ctx)


@dataclass(frozen=True)
class SwitchCase:
    """A ``<case regex>``: runs when the regex matches the WHOLE source string."""

    regex: re.Pattern[str]
    mediators: tuple[Mediator, ...] = ()


class SwitchMediator:
    """``<switch source>``: the first full-match case runs, else ``default`` (None source → default)."""

    def __init__(
        self,
        source: Expression,
        cases: SequenceABC[SwitchCase] = (),
        default: SequenceABC[Mediator] | None = None,
    ) -> None:
        self.source = source
        self.cases = tuple(cases)
        self.default = None if default is None else tuple(default)

    def mediate(self, ctx: MessageContext) -> bool:
        value = self.source.string_value(ctx)
        if value is not None:
            for case in self.cases:
                if case.regex.fullmatch(value):
                    return run_mediators(case.mediators, ctx)
        if self.default is not None:
            return run_mediators(self.default, ctx)
        return True
