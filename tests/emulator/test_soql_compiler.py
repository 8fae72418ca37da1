"""The SOQL compiler alone: hand-built queries (no parser) -> SQLite SQL text and bound parameters."""

from __future__ import annotations

import sqlite3

import pytest

from sfbulk.emulator.soql import And, Comparison, InList, Literal, Not, Or, SoqlError, SoqlQuery, to_sql
from sfbulk.emulator.soql.nodes import StringLiteral

TYPES = {"id": "id", "ownerid": "reference", "name": "string", "isactive": "boolean", "annualrevenue": "currency",
         "logo": "base64"}  # fmt: skip


def column(name: str) -> str:
    if name.lower() not in TYPES:
        raise SoqlError(f"No such column '{name}' on entity 'Account'", code="INVALID_FIELD")
    return f'"c_{name.lower()}"'


def field_type(name: str) -> str | None:
    return TYPES.get(name.lower())


def text(value: str) -> Literal:
    return Literal("string", value, "'" + value + "'")


NULL = Literal("null", None, "null")


def test_equality_on_text_is_nocase_and_never_null() -> None:
    q = SoqlQuery("Account", ["Id", "Name"], where=Comparison("Name", "=", text("x")))
    assert to_sql(q, '"t"', column) == (
        'SELECT "c_id", "c_name" FROM "t" WHERE ("c_name" IS NOT NULL AND "c_name" COLLATE NOCASE = ?)',
        ["x"],
    )


def test_not_equal_and_not_in_match_nulls_and_untyped_numbers_are_cast() -> None:
    where = And((
        Comparison("Name", "!=", text("x")),
        InList("Name", (text("a"), NULL), negated=True),
        Comparison("AnnualRevenue", ">", Literal("number", 9.5, "9.5")),
    ))  # fmt: skip
    assert to_sql(SoqlQuery("Account", ["Name"], where=where), '"t"', column) == (
        'SELECT "c_name" FROM "t" WHERE ((NOT ("c_name" IS NOT NULL AND "c_name" COLLATE NOCASE = ?))'
        ' AND (NOT ("c_name" IS NULL OR ("c_name" IS NOT NULL AND "c_name" COLLATE NOCASE IN (?))))'
        ' AND ("c_annualrevenue" IS NOT NULL AND CAST("c_annualrevenue" AS NUMERIC) > ?))',
        ["x", "a", 9.5],
    )


def test_null_literals_become_is_null_tests_without_a_parameter() -> None:
    where = Or((Comparison("Name", "=", NULL), Not(Comparison("OwnerId", "!=", NULL))))
    assert to_sql(SoqlQuery("Account", ["Id"], where=where), '"t"', column) == (
        'SELECT "c_id" FROM "t" WHERE (("c_name" IS NULL) OR (NOT ("c_ownerid" IS NOT NULL)))',
        [],
    )


def test_clauses_and_their_parameters_come_in_sql_order() -> None:
    q = SoqlQuery("Account", ["Name"], where=Comparison("Id", "<", text("001Z")),
                  order_by=[("Name", False, None), ("Id", True, False)], limit=5)  # fmt: skip
    sql, params = to_sql(q, '"t"', column, extra_where="is_deleted = 0", id_range=("001A", None),
                         tiebreak='"rowid"')  # fmt: skip
    assert sql == (
        'SELECT "c_name" FROM "t" WHERE (is_deleted = 0) AND ("c_id" IS NOT NULL AND "c_id" < ?) AND "c_id" >= ?'
        ' ORDER BY "c_name" IS NULL ASC, "c_name" COLLATE NOCASE DESC, "c_id" IS NULL ASC, "c_id" ASC, "rowid"'
        " LIMIT ?"
    )
    assert params == ["001Z", "001A", 5]


def test_known_field_types_compare_the_stored_type_and_widen_15_character_ids() -> None:
    where = Or((
        Comparison("OwnerId", "=", text("005000000000001")),
        Comparison("IsActive", "=", Literal("boolean", True, "true")),
        Comparison("AnnualRevenue", "<=", Literal("number", 10, "10")),
    ))  # fmt: skip
    assert to_sql(SoqlQuery("Account", ["Id"], where=where), '"t"', column, field_type=field_type) == (
        'SELECT "c_id" FROM "t" WHERE (("c_ownerid" IS NOT NULL AND "c_ownerid" = ?)'
        ' OR ("c_isactive" IS NOT NULL AND "c_isactive" = ?)'
        ' OR ("c_annualrevenue" IS NOT NULL AND "c_annualrevenue" <= ?))',
        ["005000000000001AAA", 1, 10],
    )


def test_like_keeps_unescaped_wildcards_and_escapes_the_rest() -> None:
    chars = (("5", False), ("0", False), ("%", True), ("_", False), ("\\", True), ("%", False))
    pattern = StringLiteral("string", "50%_\\%", "'50\\%_\\\\%'", chars)
    q = SoqlQuery("Account", ["Id"], where=Comparison("Name", "LIKE", pattern))
    assert to_sql(q, '"t"', column) == (
        'SELECT "c_id" FROM "t" WHERE ("c_name" IS NOT NULL AND "c_name" LIKE ? ESCAPE \'\\\')',
        ["50\\%_\\\\%"],
    )


def test_a_select_callback_replaces_the_column_list() -> None:
    q = SoqlQuery("Account", ["Id", "Name"])
    sql, params = to_sql(q, '"t"', column, select=lambda exprs: " || ',' || ".join(exprs))
    assert (sql, params) == ('SELECT "c_id" || \',\' || "c_name" FROM "t"', [])


def test_long_or_chains_are_balanced_so_sqlite_accepts_thousands_of_terms() -> None:
    where = Or(tuple(Comparison("Name", "=", text(f"n{i}")) for i in range(3000)))
    sql, params = to_sql(SoqlQuery("Account", ["Name"], where=where), '"t"', column)
    assert params == [f"n{i}" for i in range(3000)]
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE "t" (c_name TEXT)')
    conn.executemany('INSERT INTO "t" VALUES (?)', [("N2999",), ("other",), (None,)])
    assert conn.execute(sql, params).fetchall() == [("N2999",)]
    flat = 'SELECT c_name FROM "t" WHERE ' + " OR ".join(["c_name = ?"] * 3000)
    with pytest.raises(sqlite3.OperationalError, match="too large"):  # what the balancing avoids
        conn.execute(flat, params)


@pytest.mark.parametrize(
    ("where", "message", "code"),
    [
        (
            Comparison("Logo", "=", text("x")),
            "field 'Logo' can not be filtered in a query call",
            "INVALID_FIELD",
        ),
        (
            Comparison("IsActive", "=", text("true")),
            "must be of type boolean and should not be enclosed in quotes",
            "MALFORMED_QUERY",
        ),
        (Comparison("OwnerId", "=", text("005")), "invalid ID field: 005", "INVALID_QUERY_FILTER_OPERATOR"),
        (Comparison("Bogus", "=", text("x")), "No such column 'Bogus' on entity 'Account'", "INVALID_FIELD"),
    ],
)
def test_typed_checks_and_unknown_fields_raise_soql_errors(
    where: Comparison, message: str, code: str
) -> None:
    with pytest.raises(SoqlError, match=message) as info:
        to_sql(SoqlQuery("Account", ["Id"], where=where), '"t"', column, field_type=field_type)
    assert info.value.code == code


def test_the_compiler_does_not_change_the_query() -> None:
    q = SoqlQuery(
        "Account", ["Id"], where=Comparison("Name", "!=", text("x")), order_by=[("Name", True, None)]
    )
    before = (q.to_soql(), repr(q))
    assert to_sql(q, '"t"', column) == to_sql(q, '"t"', column)
    assert (q.to_soql(), repr(q)) == before
