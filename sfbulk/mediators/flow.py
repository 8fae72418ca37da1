"""Flow mediators and containers: filter, switch, sequence (by key), Sequence, Proxy (synapse.md §2.2-2.3, 3.2-3.3, 3.14)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sfbulk.errors import ConfigError, MediationFault
from sfbulk.mediators.base import Mediator, engine_of, run_mediators

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.expressions.expression import Expression, Value
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
            engine = getattr(ctx, "engine", None)
            handler = engine.sequence(self.on_error) if engine is not None else None
            if handler is None:
                log.warning("onError sequence %r of sequence %r cannot be found", self.on_error, self.name)
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
    endpoint: Any = None
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
