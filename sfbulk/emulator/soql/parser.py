"""Parse SOQL text into a SoqlQuery: the Bulk API subset, with Salesforce's own error messages.

The grammar is a recursive descent over the lexer's tokens. Everything valid SOQL that the Bulk API or the
emulator does not serve (aggregates, GROUP BY, subqueries, relative dates, ...) is refused here with a
message naming the construct, so the compiler only ever sees the supported subset.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .lexer import Token, tokenize
from .nodes import And, Comparison, InList, Literal, Node, Not, Or, SoqlError, SoqlQuery, StringLiteral

__all__ = ["MAX_LIMIT", "MAX_NESTING", "parse_soql"]

#: the largest LIMIT (a Java int on Salesforce; emulator choice, docs/emulator.md)
MAX_LIMIT = 2_147_483_647
#: parentheses nested deeper than this are refused (emulator choice: the parser recurses per level)
MAX_NESTING = 100
_INT64 = (-(2**63), 2**63 - 1)
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
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0  # parentheses open around the condition being parsed

    # -- token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def unexpected(self, tok: Token | None = None) -> SoqlError:
        tok = tok or self.tok
        if tok.kind == "ident":
            word = tok.text.upper()
            if word in _UNSUPPORTED_CLAUSES:
                return SoqlError(_UNSUPPORTED_CLAUSES[word], position=tok.start)
        if tok.kind == "op" and tok.text == ":":
            return SoqlError("unexpected token: ':' (bind variables are Apex-only)", position=tok.start)
        return SoqlError(f"unexpected token: '{tok.text}'", position=tok.start)

    def expect_kw(self, word: str) -> Token:
        if not self.tok.is_kw(word):
            raise self.unexpected()
        return self.advance()

    def expect_op(self, op: str) -> Token:
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
                raise SoqlError(
                    f"LIMIT must be an integer from 0 to {MAX_LIMIT}, not {shown}", position=tok.start
                )
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

    def function_error(self, tok: Token) -> SoqlError:
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
                raise SoqlError(
                    f"Too many nested parentheses in the WHERE clause (more than {MAX_NESTING})",
                    position=self.tok.start,
                )
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
            return StringLiteral("string", "".join(c for c, _ in tok.value), tok.text, tuple(tok.value))
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


def _number(tok: Token) -> int | float:
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


def parse_soql(text: str) -> SoqlQuery:
    """Parse one Bulk API SOQL query; raise SoqlError (Salesforce-like message) if malformed/unsupported."""
    if not isinstance(text, str):
        raise SoqlError("query must be text")
    return _Parser(text).query()
