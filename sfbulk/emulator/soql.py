"""Parse the SOQL subset the Bulk API emulator serves and translate it to parameterised SQLite SQL.

Salesforce semantics kept on purpose:

* keywords are case-insensitive; field and object names are kept as written (``column()`` resolves
  them case-insensitively);
* ``AND`` and ``OR`` may not be mixed without parentheses and ``NOT`` may only start a condition
  (``a AND NOT b`` is ``unexpected token: 'NOT'``, as on Salesforce);
* two-valued logic: ``null`` is a value, so ``Name != 'x'`` and ``NOT (Name = 'x')`` include rows whose
  ``Name`` is null, while ``<``, ``>``, ``LIKE`` and ``IN`` never match a null;
* ``=``, ``!=``, ``<``, ``>``, ``IN`` and ``LIKE`` on strings ignore case (SQLite ``NOCASE``; ASCII only),
  except on ``Id`` where the binary order is what PK chunking ranges rely on;
* ``ORDER BY`` defaults to NULLS FIRST for ASC and NULLS LAST for DESC.

Every literal reaches SQLite as a bound parameter; only SQL produced by this module and the caller's
``table``/``column()``/``extra_where`` fragments are ever interpolated.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "And",
    "Comparison",
    "InList",
    "Literal",
    "Not",
    "Or",
    "SoqlError",
    "SoqlQuery",
    "parse_soql",
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


# --------------------------------------------------------------------------------------------- AST


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


# ------------------------------------------------------------------------------------------- lexer

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
# re.ASCII: \d is 0-9 only (SOQL has no other digits; int() would take them)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2}))?(?![A-Za-z0-9_.:])",
    re.ASCII,
)
_DATETIME_START = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?![A-Za-z_])", re.ASCII)
#: the largest LIMIT (a Java int on Salesforce; emulator choice, docs/emulator.md)
MAX_LIMIT = 2_147_483_647
#: parentheses nested deeper than this are refused (emulator choice: the parser recurses per level)
MAX_NESTING = 100
_INT64 = (-(2**63), 2**63 - 1)
_OPERATORS = ("!=", "<>", "<=", ">=", "=", "<", ">", "(", ")", ",", ":")
_STRING_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # ident | string | number | date | datetime | op | eof
    text: str  # as written (strings include their quotes)
    start: int
    end: int
    value: Any = None

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, size = 0, len(text)
    while pos < size:
        ch = text[pos]
        if ch.isspace() or ch == "\ufeff":  # a byte-order mark may lead a text/csv batch body
            pos += 1
            continue
        if ch == "'":
            end, value = _scan_string(text, pos)
            tokens.append(_Token("string", text[pos:end], pos, end, value))
            pos = end
            continue
        m = _DATETIME.match(text, pos)
        if m:
            kind = "datetime" if m.group(4) else "date"
            tokens.append(_Token(kind, m.group(0), pos, m.end(), _date_value(m, text)))
            pos = m.end()
            continue
        if _DATETIME_START.match(text, pos):
            raise SoqlError(
                f"invalid date/time literal at column {pos + 1}: use 2024-01-31 or 2024-01-31T10:00:00Z "
                "(a datetime needs seconds and a time zone: Z or +hh:mm)",
                position=pos,
            )
        m = _NUMBER.match(text, pos)
        if m and (ch not in "+-" or _sign_allowed(tokens)):
            tokens.append(_Token("number", m.group(0), pos, m.end()))
            pos = m.end()
            continue
        m = _IDENT.match(text, pos)
        if m:
            tokens.append(_Token("ident", m.group(0), pos, m.end()))
            pos = m.end()
            continue
        for op in _OPERATORS:
            if text.startswith(op, pos):
                tokens.append(_Token("op", op, pos, pos + len(op)))
                pos += len(op)
                break
        else:
            raise SoqlError(f"unexpected token: '{ch}'", position=pos)
    tokens.append(_Token("eof", "<EOF>", size, size))
    return tokens


def _sign_allowed(tokens: list[_Token]) -> bool:
    """A leading +/- belongs to a number only where a value is expected (after an operator)."""
    return bool(tokens) and tokens[-1].kind == "op" and tokens[-1].text not in (")",)


def _scan_string(text: str, start: int) -> tuple[int, list[tuple[str, bool]]]:
    """Scan a quoted literal; return its end and its characters as (char, was_escaped) pairs.

    Keeping the escaped flag lets LIKE tell a literal ``\\%`` from the ``%`` wildcard.
    """
    chars: list[tuple[str, bool]] = []
    pos = start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == "'":
            return pos + 1, chars
        if ch == "\\":
            if pos + 1 >= len(text):
                break
            esc = text[pos + 1]
            if esc in _STRING_ESCAPES:
                chars.append((_STRING_ESCAPES[esc], True))
                pos += 2
            elif esc in "%_":
                chars.append((esc, True))
                pos += 2
            elif esc == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[pos + 2 : pos + 6]):
                code = int(text[pos + 2 : pos + 6], 16)
                pos += 6
                if 0xD800 <= code <= 0xDBFF and text[pos : pos + 2] == "\\u" and re.fullmatch(
                        r"[dD][c-fC-F][0-9A-Fa-f]{2}", text[pos + 2 : pos + 6]):
                    low = int(text[pos + 2 : pos + 6], 16)  # a UTF-16 pair: one character
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    pos += 6
                elif 0xD800 <= code <= 0xDFFF:
                    raise SoqlError("Invalid string literal: unpaired surrogate escape "
                                    f"'{text[pos - 6 : pos]}'", position=pos - 6)
                chars.append((chr(code), True))
            else:
                raise SoqlError(f"Invalid string literal: illegal escape sequence '\\{esc}'", position=pos)
            continue
        chars.append((ch, False))
        pos += 1
    raise SoqlError("unterminated string literal: missing closing quote (')", position=start)


def _date_value(m: re.Match[str], text: str) -> str:
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    try:
        if not m.group(4):
            return _dt.date(year, month, day).isoformat()
        fraction = (m.group(7) or ".0")[1:]
        micros = int(fraction[:6].ljust(6, "0"))
        zone = m.group(8)
        if zone == "Z":
            tz = _dt.UTC
        else:
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            offset = _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            tz = _dt.timezone(sign * offset)
        moment = _dt.datetime(
            year, month, day, int(m.group(4)), int(m.group(5)), int(m.group(6)), micros, tzinfo=tz
        ).astimezone(_dt.UTC)
    except (ValueError, OverflowError) as exc:  # OverflowError: 9999-12-31T23:59:59-10:00 is past year 9999 in UTC
        raise SoqlError(f"invalid date/time literal: '{m.group(0)}' ({exc})", position=m.start()) from exc
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# ------------------------------------------------------------------------------------------ parser

_AGGREGATES = {"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"}
_DATE_FUNCTIONS = {
    "CALENDAR_MONTH", "CALENDAR_QUARTER", "CALENDAR_YEAR", "DAY_IN_MONTH", "DAY_IN_WEEK", "DAY_IN_YEAR",
    "DAY_ONLY", "FISCAL_MONTH", "FISCAL_QUARTER", "FISCAL_YEAR", "HOUR_IN_DAY", "WEEK_IN_MONTH",
    "WEEK_IN_YEAR", "CONVERTTIMEZONE",
}  # fmt: skip
_RELATIVE_DATES = re.compile(
    r"(YESTERDAY|TODAY|TOMORROW|(LAST|THIS|NEXT)_(WEEK|MONTH|QUARTER|YEAR|FISCAL_QUARTER|FISCAL_YEAR)|"
    r"LAST_90_DAYS|NEXT_90_DAYS|(LAST|NEXT)_N_\w+|N_\w+_AGO)",
    re.IGNORECASE,
)
# Keywords that are valid SOQL but outside the Bulk API / emulator subset, wherever they appear.
_UNSUPPORTED_CLAUSES = {
    "GROUP": "GROUP BY is not supported by Bulk API",
    "HAVING": "HAVING is not supported by Bulk API",
    "OFFSET": "OFFSET is not supported by Bulk API",
    "TYPEOF": "TYPEOF is not supported by Bulk API",
    "FOR": "FOR VIEW, FOR REFERENCE and FOR UPDATE are not supported by Bulk API",
    "UPDATE": "UPDATE TRACKING and UPDATE VIEWSTAT are not supported by Bulk API",
    "WITH": "WITH clauses are not supported by the sfbulk emulator",
    "USING": "USING SCOPE is not supported by the sfbulk emulator",
    "INCLUDES": "INCLUDES and EXCLUDES (multi-select picklists) are not supported by the sfbulk emulator",
    "EXCLUDES": "INCLUDES and EXCLUDES (multi-select picklists) are not supported by the sfbulk emulator",
    "ROLLUP": "Aggregate queries are not supported by Bulk API",
    "CUBE": "Aggregate queries are not supported by Bulk API",
}
# SOQL reserved words (never a field name) plus the unsupported clause keywords above.
_RESERVED = {
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES", "LAST", "LIKE",
    "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH", "TRUE", "FALSE", "ORDER", "BY",
    "OFFSET", "TYPEOF", "FOR", "UPDATE", "USING",
}  # fmt: skip
_COMPARISON_OPS = {"=", "!=", "<>", "<", ">", "<=", ">="}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0  # parentheses open around the condition being parsed

    # -- token helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def unexpected(self, tok: _Token | None = None) -> SoqlError:
        tok = tok or self.tok
        if tok.kind == "ident":
            word = tok.text.upper()
            if word in _UNSUPPORTED_CLAUSES:
                return SoqlError(_UNSUPPORTED_CLAUSES[word], position=tok.start)
        if tok.kind == "op" and tok.text == ":":
            return SoqlError("unexpected token: ':' (bind variables are Apex-only)", position=tok.start)
        return SoqlError(f"unexpected token: '{tok.text}'", position=tok.start)

    def expect_kw(self, word: str) -> _Token:
        if not self.tok.is_kw(word):
            raise self.unexpected()
        return self.advance()

    def expect_op(self, op: str) -> _Token:
        if not (self.tok.kind == "op" and self.tok.text == op):
            raise self.unexpected()
        return self.advance()

    def at_op(self, op: str) -> bool:
        return self.tok.kind == "op" and self.tok.text == op

    # -- grammar
    def query(self) -> SoqlQuery:
        if self.tok.kind == "eof":
            raise SoqlError("empty query: expected SELECT ... FROM ...", position=0)
        if not self.tok.is_kw("SELECT"):
            raise SoqlError(f"unexpected token: '{self.tok.text}'", position=self.tok.start)
        self.advance()
        fields = self.select_list()
        self.expect_kw("FROM")
        obj = self.tok
        if obj.kind != "ident" or "." in obj.text:
            raise self.unexpected()
        self.advance()
        insert_at = obj.end
        where: Node | None = None
        where_span: tuple[int, int] | None = None
        if self.tok.is_kw("WHERE"):
            self.advance()
            start = self.tok.start
            where = self.condition()
            where_span = (start, self.tokens[self.i - 1].end)
        order_by: list[tuple[str, bool, bool | None]] = []
        if self.tok.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            order_by = self.order_list()
        limit: int | None = None
        if self.tok.is_kw("LIMIT"):
            self.advance()
            tok = self.tok
            if tok.kind != "number" or not tok.text.isdigit():
                raise self.unexpected()
            self.advance()
            digits = tok.text.lstrip("0") or "0"
            if len(digits) > len(str(MAX_LIMIT)) or int(digits) > MAX_LIMIT:
                shown = tok.text if len(tok.text) <= 24 else tok.text[:24] + "..."
                raise SoqlError(f"LIMIT must be an integer from 0 to {MAX_LIMIT}, not {shown}", position=tok.start)
            limit = int(digits)
        if self.tok.kind != "eof":
            raise self.unexpected()
        return SoqlQuery(
            object=obj.text,
            fields=fields,
            where=where,
            order_by=order_by,
            limit=limit,
            text=self.text,
            _where_span=where_span,
            _insert_at=insert_at,
        )

    def select_list(self) -> list[str]:
        fields: list[str] = []
        seen: set[str] = set()
        while True:
            tok = self.tok
            if self.at_op("("):
                if self.peek().is_kw("SELECT"):
                    raise SoqlError(
                        "Nested queries (relationship subqueries) are not supported by Bulk API",
                        position=tok.start,
                    )
                raise self.unexpected()
            name = self.field_name()
            if name.upper() in seen:
                raise SoqlError(f"duplicate field selected: {name}", position=tok.start)
            seen.add(name.upper())
            fields.append(name)
            if not self.at_op(","):
                return fields
            self.advance()

    def field_name(self) -> str:
        tok = self.tok
        if tok.kind != "ident" or tok.text.upper() in _RESERVED:
            raise self.unexpected()
        if self.peek().kind == "op" and self.peek().text == "(":
            raise self.function_error(tok)
        self.advance()
        return tok.text

    def function_error(self, tok: _Token) -> SoqlError:
        name = tok.text.upper()
        if name in _AGGREGATES:
            return SoqlError("Aggregate queries are not supported by Bulk API", position=tok.start)
        if name in _DATE_FUNCTIONS:
            return SoqlError(
                f"Date functions are not supported by Bulk API: {tok.text}()", position=tok.start
            )
        if name == "FIELDS":
            return SoqlError("FIELDS() is not supported by Bulk API", position=tok.start)
        return SoqlError(f"Function {tok.text}() is not supported by the sfbulk emulator", position=tok.start)

    def condition(self) -> Node:
        """condition := [NOT] simple ((AND simple)* | (OR simple)*)  -- mixing needs parentheses."""
        if self.tok.is_kw("NOT"):
            self.advance()
            first: Node = Not(self.simple())
        else:
            first = self.simple()
        if not self.tok.is_kw("AND", "OR"):
            return first
        joiner = self.tok.text.upper()
        operands = [first]
        while self.tok.is_kw("AND", "OR"):
            if self.tok.text.upper() != joiner:
                raise self.unexpected()
            self.advance()
            operands.append(self.simple())
        return And(tuple(operands)) if joiner == "AND" else Or(tuple(operands))

    def simple(self) -> Node:
        if self.at_op("("):
            if self.depth >= MAX_NESTING:
                raise SoqlError(f"Too many nested parentheses in the WHERE clause (more than {MAX_NESTING})",
                                position=self.tok.start)
            self.advance()
            if self.tok.is_kw("SELECT"):
                raise self.semi_join_error()
            self.depth += 1
            node = self.condition()
            self.depth -= 1
            self.expect_op(")")
            return node
        return self.field_expression()

    def semi_join_error(self) -> SoqlError:
        return SoqlError(
            "Semi-join and anti-join subqueries (IN (SELECT ...)) are not supported by the sfbulk emulator",
            position=self.tok.start,
        )

    def field_expression(self) -> Node:
        name = self.field_name()
        tok = self.tok
        if tok.kind == "op" and tok.text in _COMPARISON_OPS:
            self.advance()
            op = "!=" if tok.text == "<>" else tok.text
            value = self.value()
            if value.kind == "null" and op not in ("=", "!="):
                raise SoqlError(f"null can only be compared with = or !=, not {tok.text}", position=tok.start)
            if value.kind == "boolean" and op not in ("=", "!="):
                raise SoqlError(
                    f"true/false can only be compared with = or !=, not {tok.text}", position=tok.start
                )
            return Comparison(name, op, value)
        if tok.is_kw("LIKE"):
            self.advance()
            value = self.value()
            if value.kind != "string":
                raise SoqlError(f"LIKE needs a quoted string pattern, got {value.raw}", position=tok.start)
            return Comparison(name, "LIKE", value)
        negated = False
        if tok.is_kw("NOT") and self.peek().is_kw("IN"):
            self.advance()
            negated = True
        if self.tok.is_kw("IN"):
            self.advance()
            self.expect_op("(")
            if self.tok.is_kw("SELECT"):
                raise self.semi_join_error()
            values = [self.value()]
            while self.at_op(","):
                self.advance()
                values.append(self.value())
            self.expect_op(")")
            for v in values:
                if v.kind == "boolean":
                    raise SoqlError("true/false cannot be used in an IN list", position=tok.start)
            return InList(name, tuple(values), negated)
        raise self.unexpected()

    def value(self) -> Literal:
        tok = self.tok
        if tok.kind == "string":
            self.advance()
            return _StringLiteral("string", "".join(c for c, _ in tok.value), tok.text, tuple(tok.value))
        if tok.kind == "number":
            self.advance()
            return Literal("number", _number(tok), tok.text)
        if tok.kind in ("date", "datetime"):
            self.advance()
            return Literal(tok.kind, tok.value, tok.text)
        if tok.kind == "ident":
            word = tok.text.upper()
            if word in ("TRUE", "FALSE"):
                self.advance()
                return Literal("boolean", word == "TRUE", tok.text)
            if word == "NULL":
                self.advance()
                return Literal("null", None, tok.text)
            if _RELATIVE_DATES.fullmatch(tok.text):
                raise SoqlError(
                    f"Relative date literal {tok.text} is not supported by the sfbulk emulator; "
                    "use an explicit date (2024-01-31) or datetime (2024-01-31T00:00:00Z)",
                    position=tok.start,
                )
            if self.peek().kind == "op" and self.peek().text == "(":
                raise self.function_error(tok)
        raise self.unexpected()

    def order_list(self) -> list[tuple[str, bool, bool | None]]:
        items: list[tuple[str, bool, bool | None]] = []
        while True:
            name = self.field_name()
            ascending = True
            if self.tok.is_kw("ASC", "DESC"):
                ascending = self.advance().text.upper() == "ASC"
            nulls_first: bool | None = None
            if self.tok.is_kw("NULLS"):
                self.advance()
                if not self.tok.is_kw("FIRST", "LAST"):
                    raise self.unexpected()
                nulls_first = self.advance().text.upper() == "FIRST"
            items.append((name, ascending, nulls_first))
            if not self.at_op(","):
                return items
            self.advance()


@dataclass(frozen=True)
class _StringLiteral(Literal):
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


def _number(tok: _Token) -> int | float:
    """An integer when it fits SQLite's 64 bits (a larger one cannot be bound), else a float (maybe inf)."""
    text = tok.text
    try:
        if re.fullmatch(r"[+-]?\d+", text) and len(text) <= 20:
            value = int(text)
            if _INT64[0] <= value <= _INT64[1]:
                return value
        return float(Decimal(text))
    except (ValueError, InvalidOperation) as exc:  # pragma: no cover - the lexer only admits numbers
        raise SoqlError(f"invalid number: '{text}'", position=tok.start) from exc


# ------------------------------------------------------------------------------------------ query


@dataclass
class SoqlQuery:
    """A parsed SOQL query. ``order_by`` items are (field, ascending, nulls_first or None = SOQL default)."""

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
        parts = [f"SELECT {', '.join(self.fields)} FROM {self.object}"]
        if self.where is not None:
            parts.append(f"WHERE {self.where.to_soql()}")
        if self.order_by:
            items = []
            for name, ascending, nulls_first in self.order_by:
                item = f"{name} {'ASC' if ascending else 'DESC'}"
                if nulls_first is not None:
                    item += " NULLS FIRST" if nulls_first else " NULLS LAST"
                items.append(item)
            parts.append("ORDER BY " + ", ".join(items))
        if self.limit is not None:
            parts.append(f"LIMIT {self.limit}")
        return " ".join(parts)

    def with_id_range(self, lo: str | None, hi: str | None) -> str:
        """The original SOQL text restricted to ``lo <= Id < hi`` (a PK-chunk batch); None = unbounded."""
        bounds = []
        if lo is not None:
            bounds.append(f"Id >= {_soql_quote(lo)}")
        if hi is not None:
            bounds.append(f"Id < {_soql_quote(hi)}")
        if not self.text:  # built by hand, not by parse_soql: work on the canonical text
            return parse_soql(self.to_soql()).with_id_range(lo, hi)
        text = self.text
        if not bounds:
            return text
        range_soql = " AND ".join(bounds)
        if self._where_span is not None:
            start, end = self._where_span
            return f"{text[:start]}({text[start:end]}) AND {range_soql}{text[end:]}"
        at = self._insert_at if self._insert_at is not None else len(text)
        return f"{text[:at]} WHERE {range_soql}{text[at:]}"

    def to_sql(
        self,
        table: str,
        column: Callable[[str], str],
        extra_where: str | None = None,
        id_range: tuple[str | None, str | None] | None = None,
        *,
        tiebreak: str | None = None,
        field_type: Callable[[str], str | None] | None = None,
        select: Callable[[list[str]], str] | None = None,
    ) -> tuple[str, list[Any]]:
        """SQLite SELECT for this query and its parameters.

        ``table`` and ``column(field)`` return trusted SQL fragments (``column`` raises SoqlError for an
        unknown field); ``extra_where`` is a trusted SQL condition AND-ed in (e.g. ``is_deleted = 0``);
        ``id_range=(lo, hi)`` restricts to ``lo <= Id < hi`` (either bound may be None); ``tiebreak`` is an
        SQL expression appended to ORDER BY (always, even without a SOQL ORDER BY) so paging is stable.
        ``field_type(field)`` (optional) returns the field's Salesforce type (string, picklist, int, double,
        currency, percent, boolean, date, datetime, id, reference, base64...) or None: filter values are
        then type-checked as on Salesforce and comparisons use the stored SQLite type.
        The result columns are ``self.fields`` in order, unless ``select(expressions)`` (optional) turns
        the fields' SQL expressions into another select list (e.g. one rendered CSV line).
        """
        params: list[Any] = []
        translator = _Sql(column, params, field_type)
        expressions = [_paren(column(name)) for name in self.fields]
        columns_sql = select(expressions) if select is not None else ", ".join(expressions)
        conditions: list[str] = []
        if extra_where:
            conditions.append(f"({extra_where})")
        if self.where is not None:
            conditions.append(translator.node(self.where))
        if id_range is not None:
            lo, hi = id_range
            id_col = _paren(column("Id"))
            if lo is not None:
                conditions.append(f"{id_col} >= ?")
                params.append(lo)
            if hi is not None:
                conditions.append(f"{id_col} < ?")
                params.append(hi)
        sql = f"SELECT {columns_sql} FROM {table}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        order: list[str] = []
        for name, ascending, nulls_first in self.order_by:
            col = _paren(column(name))
            if nulls_first is None:
                nulls_first = ascending
            order.append(f"{col} IS NULL {'DESC' if nulls_first else 'ASC'}")
            ftype = translator.type_of(name)
            text_like = (
                ftype in _TEXT_TYPES if field_type is not None and ftype is not None else ftype != "id"
            )
            collate = " COLLATE NOCASE" if text_like else ""
            order.append(f"{col}{collate} {'ASC' if ascending else 'DESC'}")
        if tiebreak:
            order.append(tiebreak)
        if order:
            sql += " ORDER BY " + ", ".join(order)
        if self.limit is not None:
            sql += " LIMIT ?"
            params.append(self.limit)
        return sql, params


def _soql_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _paren(expr: str) -> str:
    return expr if re.fullmatch(r'"[^"]*"|\w+|\w+\."[^"]*"|\w+\.\w+', expr) else f"({expr})"


def _is_id(name: str) -> bool:
    return name.lower() == "id"


_TEXT_TYPES = {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
_NUMBER_TYPES = {"int", "double", "currency", "percent", "long"}
_ID_TYPES = {"id", "reference"}
_ID_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Which literal kind a field type accepts, and the type name Salesforce's error message uses.
_LITERAL_FOR_TYPE = {
    **{t: ("string", "string") for t in _TEXT_TYPES},
    **{t: ("string", "id") for t in _ID_TYPES},
    **{t: ("number", "double" if t != "int" else "int") for t in _NUMBER_TYPES},
    "boolean": ("boolean", "boolean"),
    "date": ("date", "date"),
    "datetime": ("datetime", "dateTime"),
}


def _id18(value: str) -> str:
    """The 18-character form of a 15-character id (Salesforce accepts both in filters)."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(value[start : start + 5]) if "A" <= ch <= "Z")
        suffix += _ID_SUFFIX_ALPHABET[bits]
    return value + suffix


class _Sql:
    """Translate a WHERE AST to SQL where every predicate is TRUE or FALSE, never NULL (SOQL logic).

    With ``field_type`` (field -> Salesforce type name, or None when unknown) literals are checked against
    the field's type like Salesforce does, and comparisons use the stored type directly (indexes usable);
    without it the literal's kind decides (numbers are CAST, strings compared NOCASE except on ``Id``).
    """

    def __init__(
        self,
        column: Callable[[str], str],
        params: list[Any],
        field_type: Callable[[str], str | None] | None = None,
    ) -> None:
        self.column = column
        self.params = params
        self.field_type = field_type

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def type_of(self, name: str) -> str | None:
        if self.field_type is not None:
            kind = self.field_type(name)
            if kind is not None:
                return kind.lower()
        return "id" if _is_id(name) else None

    def node(self, node: Node) -> str:
        if isinstance(node, And | Or):
            return _balanced([self.node(o) for o in node.operands], " AND " if isinstance(node, And) else " OR ")
        if isinstance(node, Not):
            return f"(NOT {self.node(node.operand)})"
        if isinstance(node, InList):
            return self.in_list(node)
        return self.comparison(node)

    def comparison(self, node: Comparison) -> str:
        col = _paren(self.column(node.field))
        value = node.value
        ftype = self.type_of(node.field)
        if value.kind == "null":
            return f"({col} IS NULL)" if node.op == "=" else f"({col} IS NOT NULL)"
        if node.op == "!=":
            # null is a value in SOQL: "!= x" matches nulls, i.e. it is NOT (= x).
            return f"(NOT {self.comparison(Comparison(node.field, '=', value))})"
        if node.op == "LIKE":
            assert isinstance(value, _StringLiteral)
            if self.field_type is not None and ftype is not None and ftype not in _TEXT_TYPES:
                raise SoqlError(
                    f"invalid operator on field '{node.field}': LIKE needs a text field, not {ftype}"
                )
            pattern = value.like_pattern()
            if "\0" in pattern:
                raise SoqlError("LIKE patterns cannot contain a NUL character")
            return f"({col} IS NOT NULL AND {col} LIKE {self.bind(pattern)} ESCAPE '\\')"
        self.check(node.field, ftype, value, equality=node.op == "=")
        if value.kind == "boolean":
            if ftype == "boolean":
                return f"({col} IS NOT NULL AND {col} = {self.bind(1 if value.value else 0)})"
            words = ("true", "1") if value.value else ("false", "0")
            return f"({col} IS NOT NULL AND lower({col}) IN ({self.bind(words[0])}, {self.bind(words[1])}))"
        lhs = self.typed(col, ftype, value)
        bound = self.value_for(ftype, value, equality=node.op == "=")
        return f"({col} IS NOT NULL AND {lhs} {node.op} {self.bind(bound)})"

    def in_list(self, node: InList) -> str:
        col = _paren(self.column(node.field))
        ftype = self.type_of(node.field)
        for v in node.values:
            self.check(node.field, ftype, v, equality=True)
        values = [v for v in node.values if v.kind != "null"]
        parts = []
        if len(values) != len(node.values):
            parts.append(f"{col} IS NULL")
        if values:
            kinds = {v.kind for v in values}
            sample = values[0] if len(kinds) == 1 else Literal("string", "", "''")
            lhs = self.typed(col, ftype, sample)
            marks = ", ".join(self.bind(self.value_for(ftype, v, equality=True)) for v in values)
            parts.append(f"({col} IS NOT NULL AND {lhs} IN ({marks}))")
        sql = "(" + " OR ".join(parts) + ")"
        return f"(NOT {sql})" if node.negated else sql

    def check(self, name: str, ftype: str | None, value: Literal, *, equality: bool) -> None:
        """Salesforce's type checks on filter values (only when the caller told us the field types)."""
        if self.field_type is None or ftype is None or value.kind == "null":
            return
        if ftype == "base64":
            raise SoqlError(f"field '{name}' can not be filtered in a query call", code="INVALID_FIELD")
        expected = _LITERAL_FOR_TYPE.get(ftype)
        if expected is None:
            return
        kind, label = expected
        if value.kind != kind:
            quoting = "be enclosed in quotes" if kind == "string" else "not be enclosed in quotes"
            raise SoqlError(
                f"value of filter criterion for field '{name}' must be of type {label} and should {quoting}"
            )
        if (
            ftype in _ID_TYPES
            and equality
            and not re.fullmatch(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?", value.value)
        ):
            raise SoqlError(f"invalid ID field: {value.value}", code="INVALID_QUERY_FILTER_OPERATOR")

    @staticmethod
    def value_for(ftype: str | None, value: Literal, *, equality: bool) -> Any:
        """The bound value: a 15-character id literal is matched as its 18-character form."""
        if (
            equality
            and ftype in _ID_TYPES
            and value.kind == "string"
            and re.fullmatch(r"[0-9A-Za-z]{15}", value.value)
        ):
            return _id18(value.value)
        return value.value

    @staticmethod
    def typed(col: str, ftype: str | None, value: Literal) -> str:
        """Left-hand side: stored type when known, else follow the literal (numbers numeric, text NOCASE)."""
        if ftype in _NUMBER_TYPES or ftype in _ID_TYPES or ftype in ("date", "datetime", "boolean"):
            return col
        if ftype in _TEXT_TYPES:
            return f"{col} COLLATE NOCASE"
        if value.kind == "number":
            return f"CAST({col} AS NUMERIC)"
        if value.kind == "string":
            return f"{col} COLLATE NOCASE"
        return col


def _balanced(parts: list[str], joiner: str) -> str:
    """``(a OR b OR c ...)`` grouped as a balanced tree: SQLite parses a flat chain into an expression tree
    as deep as it is long, and refuses depths past 1,000 (a few hundred OR terms)."""
    if len(parts) <= 8:
        return "(" + joiner.join(parts) + ")"
    half = len(parts) // 2
    return "(" + _balanced(parts[:half], joiner) + joiner + _balanced(parts[half:], joiner) + ")"


def parse_soql(text: str) -> SoqlQuery:
    """Parse one Bulk API SOQL query; raise SoqlError (Salesforce-like message) if malformed/unsupported."""
    if not isinstance(text, str):
        raise SoqlError("query must be text")
    return _Parser(text).query()
