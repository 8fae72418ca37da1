"""Compile a parsed SoqlQuery into one parameterised SQLite SELECT.

The SQL keeps SOQL's semantics (see the package docstring): every predicate is TRUE or FALSE, never NULL,
strings compare case-insensitively except on ``Id``, and ORDER BY puts nulls where SOQL does. Every
literal reaches SQLite as a bound parameter; only SQL produced here and the caller's ``table``,
``column()``, ``extra_where`` and ``tiebreak`` fragments are interpolated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .nodes import And, Comparison, InList, Literal, Node, Not, Or, SoqlError, SoqlQuery, StringLiteral

__all__ = ["to_sql"]


def to_sql(
    query: SoqlQuery,
    table: str,
    column: Callable[[str], str],
    extra_where: str | None = None,
    id_range: tuple[str | None, str | None] | None = None,
    *,
    tiebreak: str | None = None,
    field_type: Callable[[str], str | None] | None = None,
    select: Callable[[list[str]], str] | None = None,
) -> tuple[str, list[Any]]:
    """SQLite SELECT for ``query`` and its parameters.

    ``table`` and ``column(field)`` return trusted SQL fragments (``column`` raises SoqlError for an
    unknown field); ``extra_where`` is a trusted SQL condition AND-ed in (e.g. ``is_deleted = 0``);
    ``id_range=(lo, hi)`` restricts to ``lo <= Id < hi`` (either bound may be None); ``tiebreak`` is an
    SQL expression appended to ORDER BY (always, even without a SOQL ORDER BY) so paging is stable.
    ``field_type(field)`` (optional) returns the field's Salesforce type (string, picklist, int, double,
    currency, percent, boolean, date, datetime, id, reference, base64...) or None: filter values are
    then type-checked as on Salesforce and comparisons use the stored SQLite type.
    The result columns are ``query.fields`` in order, unless ``select(expressions)`` (optional) turns
    the fields' SQL expressions into another select list (e.g. one rendered CSV line).
    """
    params: list[Any] = []
    translator = _Sql(column, params, field_type)
    expressions = [_paren(column(name)) for name in query.fields]
    columns_sql = select(expressions) if select is not None else ", ".join(expressions)
    conditions: list[str] = []
    if extra_where:
        conditions.append(f"({extra_where})")
    if query.where is not None:
        conditions.append(translator.node(query.where))
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
    for name, ascending, nulls_first in query.order_by:
        col = _paren(column(name))
        if nulls_first is None:
            nulls_first = ascending
        order.append(f"{col} IS NULL {'DESC' if nulls_first else 'ASC'}")
        ftype = translator.type_of(name)
        text_like = ftype in _TEXT_TYPES if field_type is not None and ftype is not None else ftype != "id"
        collate = " COLLATE NOCASE" if text_like else ""
        order.append(f"{col}{collate} {'ASC' if ascending else 'DESC'}")
    if tiebreak:
        order.append(tiebreak)
    if order:
        sql += " ORDER BY " + ", ".join(order)
    if query.limit is not None:
        sql += " LIMIT ?"
        params.append(query.limit)
    return sql, params


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
            return _balanced(
                [self.node(o) for o in node.operands], " AND " if isinstance(node, And) else " OR "
            )
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
            assert isinstance(value, StringLiteral)
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
