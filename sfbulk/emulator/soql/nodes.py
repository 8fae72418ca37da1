"""The parsed form of a SOQL query: SoqlError, the WHERE-clause AST and SoqlQuery, as plain frozen data.

This module is the bottom of the package (the lexer, parser and compiler all import it, it imports none
of them). It knows how to print itself back as SOQL (``to_soql``, ``with_id_range``) but nothing of SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "And",
    "Comparison",
    "InList",
    "Literal",
    "Node",
    "Not",
    "Or",
    "SoqlError",
    "SoqlQuery",
    "StringLiteral",
]


class SoqlError(Exception):
    """Malformed or unsupported SOQL, with a Salesforce-like message.

    ``code`` is the Salesforce exception code the emulator should report (``MALFORMED_QUERY`` for syntax,
    ``INVALID_FIELD`` for unknown fields); ``position`` is the 0-based character offset, when known.
    """

    def __init__(self, message: str, *, code: str = "MALFORMED_QUERY", position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.position = position


@dataclass(frozen=True)
class Literal:
    """A SOQL literal. ``kind`` is string | number | boolean | null | date | datetime.

    ``value`` is the Python value bound to SQLite (str, int, float, bool or None); dates and datetimes are
    ISO strings (datetimes normalised to UTC ``YYYY-MM-DDTHH:MM:SS.sssZ``). ``raw`` is the text as written.
    """

    kind: str
    value: Any
    raw: str

    def to_soql(self) -> str:
        return self.raw


@dataclass(frozen=True)
class StringLiteral(Literal):
    """A string literal that remembers which characters were backslash-escaped (for LIKE)."""

    chars: tuple[tuple[str, bool], ...] = ()

    def like_pattern(self) -> str:
        """SQLite LIKE pattern with ESCAPE '\\': SOQL wildcards stay wildcards, everything else literal."""
        out = []
        for ch, escaped in self.chars:
            if ch in "%_" and not escaped:
                out.append(ch)
            elif ch in "%_\\":
                out.append("\\" + ch)
            else:
                out.append(ch)
        return "".join(out)


@dataclass(frozen=True)
class Comparison:
    """``field op value`` with op one of = != < > <= >= LIKE (``<>`` is normalised to ``!=``)."""

    field: str
    op: str
    value: Literal

    def to_soql(self) -> str:
        return f"{self.field} {self.op} {self.value.to_soql()}"


@dataclass(frozen=True)
class InList:
    """``field IN (v, ...)`` or ``field NOT IN (v, ...)``."""

    field: str
    values: tuple[Literal, ...]
    negated: bool = False

    def to_soql(self) -> str:
        values = ", ".join(v.to_soql() for v in self.values)
        return f"{self.field} {'NOT IN' if self.negated else 'IN'} ({values})"


@dataclass(frozen=True)
class Not:
    operand: Node

    def to_soql(self) -> str:
        return f"NOT ({self.operand.to_soql()})"


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]

    def to_soql(self) -> str:
        return " AND ".join(_wrapped(o) for o in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]

    def to_soql(self) -> str:
        return " OR ".join(_wrapped(o) for o in self.operands)


Node = Comparison | InList | Not | And | Or


def _wrapped(node: Node) -> str:
    text = node.to_soql()
    return f"({text})" if isinstance(node, And | Or | Not) else text


@dataclass
class SoqlQuery:
    """A parsed SOQL query. ``order_by`` items are (field, ascending, nulls_first or None = SOQL default).

    ``text`` is the SOQL as written (empty for a query built by hand); the parser also records where its
    WHERE condition lies in ``text`` and where a WHERE clause would go, so ``with_id_range`` can edit the
    user's own text rather than a re-rendering of it.
    """

    object: str
    fields: list[str]
    where: Node | None = None
    order_by: list[tuple[str, bool, bool | None]] = field(default_factory=list)
    limit: int | None = None
    text: str = ""
    _where_span: tuple[int, int] | None = field(default=None, repr=False, compare=False)
    _insert_at: int | None = field(default=None, repr=False, compare=False)

    def where_fields(self) -> list[str]:
        """Fields the WHERE clause tests, as written (e.g. to disable PK chunking on Id filters)."""
        found: list[str] = []

        def walk(node: Node) -> None:
            if isinstance(node, Comparison | InList):
                found.append(node.field)
            elif isinstance(node, Not):
                walk(node.operand)
            else:
                for operand in node.operands:
                    walk(operand)

        if self.where is not None:
            walk(self.where)
        return found

    def to_soql(self) -> str:
        """Canonical SOQL text of this query (keywords upper-case, NOT always parenthesised)."""
        return self._canonical()[0]

    def _canonical(self) -> tuple[str, tuple[int, int] | None, int]:
        """The canonical text, the span of its WHERE condition and where a WHERE clause would be inserted."""
        head = f"SELECT {', '.join(self.fields)} FROM {self.object}"
        text, where_span = head, None
        if self.where is not None:
            start = len(head) + len(" WHERE ")
            text = f"{head} WHERE {self.where.to_soql()}"
            where_span = (start, len(text))
        if self.order_by:
            items = []
            for name, ascending, nulls_first in self.order_by:
                item = f"{name} {'ASC' if ascending else 'DESC'}"
                if nulls_first is not None:
                    item += " NULLS FIRST" if nulls_first else " NULLS LAST"
                items.append(item)
            text += " ORDER BY " + ", ".join(items)
        if self.limit is not None:
            text += f" LIMIT {self.limit}"
        return text, where_span, len(head)

    def with_id_range(self, lo: str | None, hi: str | None) -> str:
        """The original SOQL text restricted to ``lo <= Id < hi`` (a PK-chunk batch); None = unbounded."""
        bounds = []
        if lo is not None:
            bounds.append(f"Id >= {_soql_quote(lo)}")
        if hi is not None:
            bounds.append(f"Id < {_soql_quote(hi)}")
        if self.text:
            text, where_span, insert_at = self.text, self._where_span, self._insert_at
        else:  # built by hand, not by parse_soql: work on the canonical text
            text, where_span, insert_at = self._canonical()
        if not bounds:
            return text
        range_soql = " AND ".join(bounds)
        if where_span is not None:
            start, end = where_span
            return f"{text[:start]}({text[start:end]}) AND {range_soql}{text[end:]}"
        at = insert_at if insert_at is not None else len(text)
        return f"{text[:at]} WHERE {range_soql}{text[at:]}"


def _soql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
