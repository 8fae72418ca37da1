"""SOQL subset: parsing, rejections, and real result rows from an in-memory SQLite table."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfbulk.emulator.soql import And, Comparison, InList, Not, Or, SoqlError, SoqlQuery, parse_soql, to_sql

IDS = [f"001000000000{n:03d}AAA" for n in range(1, 9)]
ROWS = [
    # Id, Name, Industry, AnnualRevenue, CreatedDate, IsPartner, is_deleted
    (IDS[0], "Acme", "Tech", 1000.0, "2024-01-10T09:00:00.000Z", "true", 0),
    (IDS[1], "acme labs", "Tech", 50.5, "2024-01-31T10:00:00.000Z", "false", 0),
    (IDS[2], "Beta", None, None, "2024-02-01T00:00:00.000Z", "false", 0),
    (IDS[3], "Gamma_1", "Retail", 200, "2023-12-31T23:59:59.000Z", "true", 0),
    (IDS[4], "100% Cotton", "Retail", 0, None, "false", 0),
    (IDS[5], None, "Energy", 300, "2024-03-01T00:00:00.000Z", "false", 0),
    (IDS[6], "O'Brien\\Co", "tech", 10, "2024-01-31T08:00:00.000Z", "true", 0),
    (IDS[7], "Deleted Corp", "Tech", 999, "2024-01-01T00:00:00.000Z", "true", 1),
]
COLUMNS = ["Id", "Name", "Industry", "AnnualRevenue", "CreatedDate", "IsPartner"]
LIVE = "is_deleted = 0"


def column(field: str) -> str:
    """What the emulator's column() does: case-insensitive lookup, INVALID_FIELD for unknown names."""
    for name in COLUMNS:
        if name.lower() == field.lower():
            return f'"c_{name.lower()}"'
    raise SoqlError(f"No such column '{field}' on entity 'Account'", code="INVALID_FIELD")


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        'CREATE TABLE "sobj_Account" (c_id TEXT PRIMARY KEY, c_name TEXT, c_industry TEXT,'
        " c_annualrevenue REAL, c_createddate TEXT, c_ispartner TEXT, is_deleted INTEGER)"
    )
    conn.executemany('INSERT INTO "sobj_Account" VALUES (?, ?, ?, ?, ?, ?, ?)', ROWS)
    return conn


def run(db: sqlite3.Connection, soql: str, **kwargs) -> list[tuple]:
    kwargs.setdefault("extra_where", LIVE)
    sql, params = to_sql(parse_soql(soql), table='"sobj_Account"', column=column, **kwargs)
    return db.execute(sql, params).fetchall()


def names(db: sqlite3.Connection, where: str) -> set[str | None]:
    return {row[0] for row in run(db, f"SELECT Name FROM Account WHERE {where}")}


def ordered(db: sqlite3.Connection, soql: str, **kwargs) -> list:
    return [row[0] for row in run(db, soql, **kwargs)]


# ------------------------------------------------------------------------------------------- parse


def test_contract_example_parses() -> None:
    q = parse_soql("SELECT Id, Name FROM Account WHERE Name LIKE 'A%' ORDER BY Name DESC NULLS LAST LIMIT 10")
    assert q.object == "Account"
    assert q.fields == ["Id", "Name"]
    assert q.where == Comparison("Name", "LIKE", q.where.value)
    assert q.where.value.value == "A%"
    assert q.order_by == [("Name", False, False)]
    assert q.limit == 10


def test_keywords_case_insensitive_names_kept_as_written() -> None:
    q = parse_soql("select id, owner.Name, My_Field__c from account where NAME = 'x' order by name limit 5")
    assert q.object == "account"
    assert q.fields == ["id", "owner.Name", "My_Field__c"]
    assert q.where == Comparison("NAME", "=", q.where.value)
    assert q.order_by == [("name", True, None)]
    assert q.limit == 5


def test_where_ast_shapes() -> None:
    q = parse_soql("SELECT Id FROM Account WHERE (A = 1 OR B != null) AND C NOT IN ('x', 'y') AND D <> 2")
    assert isinstance(q.where, And)
    first, second, third = q.where.operands
    assert isinstance(first, Or) and first.operands[1].value.kind == "null"
    assert second == InList("C", second.values, negated=True)
    assert [v.value for v in second.values] == ["x", "y"]
    assert third.op == "!="  # <> is normalised
    assert parse_soql("SELECT Id FROM Account").where is None
    not_q = parse_soql("SELECT Id FROM Account WHERE NOT Name = 'x'")
    assert isinstance(not_q.where, Not)


def test_literals() -> None:
    def value(literal: str):
        v = parse_soql(f"SELECT Id FROM Account WHERE X = {literal}").where.value
        return v.kind, v.value

    assert value("'it\\'s \\\\ \\n \\t \\u00e9'") == ("string", "it's \\ \n \t é")
    assert value("42") == ("number", 42)
    assert value("-3.25") == ("number", -3.25)
    assert value("TRUE") == ("boolean", True)
    assert value("false") == ("boolean", False)
    assert value("NULL") == ("null", None)
    assert value("2024-01-31") == ("date", "2024-01-31")
    assert value("2024-01-31T10:00:00Z") == ("datetime", "2024-01-31T10:00:00.000Z")
    assert value("2024-01-31T10:00:00.5+02:00") == ("datetime", "2024-01-31T08:00:00.500Z")
    assert value("2024-01-31T23:30:00-0100") == ("datetime", "2024-02-01T00:30:00.000Z")


def test_whitespace_and_byte_order_mark_are_ignored() -> None:
    q = parse_soql("\ufeff\n  select Id\r\n  from Account\n")
    assert (q.object, q.fields) == ("Account", ["Id"])
    assert q.with_id_range("a", "b") == "\ufeff\n  select Id\r\n  from Account WHERE Id >= 'a' AND Id < 'b'\n"


def test_where_fields_lists_tested_fields() -> None:
    q = parse_soql("SELECT Name FROM Account WHERE (Id > '001' OR (NOT Name = 'x')) AND Industry IN ('a')")
    assert q.where_fields() == ["Id", "Name", "Industry"]


# --------------------------------------------------------------------------------------- execution


def test_select_list_and_extra_where(db) -> None:
    rows = run(db, "SELECT name, ID FROM Account WHERE Id = '001000000000001AAA'")
    assert rows == [("Acme", IDS[0])]
    assert len(run(db, "SELECT Id FROM Account")) == 7  # the deleted row is filtered by extra_where
    assert len(run(db, "SELECT Id FROM Account", extra_where=None)) == 8


def test_equality_is_case_insensitive(db) -> None:
    assert names(db, "Name = 'ACME'") == {"Acme"}
    assert names(db, "Industry = 'TECH'") == {"Acme", "acme labs", "O'Brien\\Co"}


def test_not_equal_includes_nulls(db) -> None:
    expected = {"Beta", "Gamma_1", "100% Cotton", None}
    assert names(db, "Industry != 'Tech'") == expected
    assert names(db, "Industry <> 'tech'") == expected


def test_numeric_comparisons_exclude_nulls(db) -> None:
    assert names(db, "AnnualRevenue > 200") == {"Acme", None}
    assert names(db, "AnnualRevenue >= 200") == {"Acme", "Gamma_1", None}
    assert names(db, "AnnualRevenue < 10") == {"100% Cotton"}
    assert names(db, "AnnualRevenue <= 10") == {"100% Cotton", "O'Brien\\Co"}
    assert names(db, "AnnualRevenue = 50.5") == {"acme labs"}
    assert names(db, "AnnualRevenue != 0") == {"Acme", "acme labs", "Beta", "Gamma_1", None, "O'Brien\\Co"}


def test_numbers_stored_as_text_compare_numerically() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE t ("c_id" TEXT, "c_annualrevenue" TEXT, is_deleted INTEGER DEFAULT 0)')
    conn.executemany("INSERT INTO t (c_id, c_annualrevenue) VALUES (?, ?)", [("a", "9"), ("b", "10.5")])
    sql, params = to_sql(parse_soql("SELECT Id FROM Account WHERE AnnualRevenue > 9.5"), "t", column)
    assert conn.execute(sql, params).fetchall() == [("b",)]


def test_string_range_comparison_ignores_case(db) -> None:
    assert names(db, "Name < 'b'") == {"Acme", "acme labs", "100% Cotton"}
    assert names(db, "Name >= 'GAMMA'") == {"Gamma_1", "O'Brien\\Co"}


def test_like_wildcards_and_case(db) -> None:
    assert names(db, "Name LIKE 'acme%'") == {"Acme", "acme labs"}
    assert names(db, "Name LIKE '%LABS'") == {"acme labs"}
    assert names(db, "Name LIKE 'Bet_'") == {"Beta"}
    assert names(db, "Name LIKE '%'") == {
        "Acme",
        "acme labs",
        "Beta",
        "Gamma_1",
        "100% Cotton",
        "O'Brien\\Co",
    }


def test_like_escaped_wildcards_are_literal(db) -> None:
    assert names(db, "Name LIKE '100\\%%'") == {"100% Cotton"}
    assert names(db, "Name LIKE '%\\%%'") == {"100% Cotton"}
    assert names(db, "Name LIKE '%\\_%'") == {"Gamma_1"}
    assert names(db, "Name LIKE 'Gamma\\_1'") == {"Gamma_1"}
    assert names(db, "Name LIKE 'Gamma\\_'") == set()
    assert names(db, "Name LIKE 'O\\'Brien\\\\Co'") == {"O'Brien\\Co"}
    assert names(db, "Name LIKE 'O\\'Brien\\\\%'") == {"O'Brien\\Co"}


def test_in_and_not_in(db) -> None:
    assert names(db, "Industry IN ('retail', 'Energy')") == {"Gamma_1", "100% Cotton", None}
    assert names(db, "Industry NOT IN ('Tech', 'Retail')") == {"Beta", None}  # NOT IN keeps nulls
    assert names(db, "Industry IN (null, 'Energy')") == {"Beta", None}
    assert names(db, "AnnualRevenue IN (0, 10, 50.5)") == {"100% Cotton", "O'Brien\\Co", "acme labs"}
    assert names(db, "Id IN ('001000000000003AAA')") == {"Beta"}


def test_null_comparisons(db) -> None:
    assert names(db, "Industry = null") == {"Beta"}
    assert names(db, "Name = NULL") == {None}
    assert len(names(db, "Industry != null")) == 6
    assert names(db, "CreatedDate = null") == {"100% Cotton"}


def test_boolean_comparisons(db) -> None:
    assert names(db, "IsPartner = true") == {"Acme", "Gamma_1", "O'Brien\\Co"}
    assert names(db, "IsPartner = FALSE") == {"acme labs", "Beta", "100% Cotton", None}
    assert names(db, "IsPartner != true") == {"acme labs", "Beta", "100% Cotton", None}


def test_date_and_datetime_literals(db) -> None:
    assert names(db, "CreatedDate > 2024-01-31T09:00:00Z") == {"acme labs", "Beta", None}
    # 10:00+02:00 is 08:00Z: the offset is applied before comparing ISO strings.
    assert names(db, "CreatedDate = 2024-01-31T10:00:00+02:00") == {"O'Brien\\Co"}
    assert names(db, "CreatedDate < 2024-01-01") == {"Gamma_1"}
    assert names(db, "CreatedDate >= 2024-02-01T00:00:00.000Z") == {"Beta", None}


def test_and_or_not_and_parentheses(db) -> None:
    assert names(db, "Industry = 'Tech' AND AnnualRevenue > 20") == {"Acme", "acme labs"}
    assert names(db, "Name = 'Beta' OR Name = 'Acme' OR Industry = 'Energy'") == {"Beta", "Acme", None}
    # Same atoms, different grouping, different rows: parentheses decide.
    assert names(db, "(Industry = 'Retail' OR Industry = 'Tech') AND AnnualRevenue >= 200") == {
        "Acme",
        "Gamma_1",
    }
    assert names(db, "Industry = 'Retail' OR (Industry = 'Tech' AND AnnualRevenue >= 200)") == {
        "Acme",
        "Gamma_1",
        "100% Cotton",
    }
    assert names(db, "NOT Industry = 'Tech'") == {"Beta", "Gamma_1", "100% Cotton", None}
    assert names(db, "NOT (AnnualRevenue > 100)") == {"acme labs", "Beta", "100% Cotton", "O'Brien\\Co"}
    assert names(db, "Industry = 'Retail' AND (NOT Name LIKE '1%')") == {"Gamma_1"}
    assert names(db, "NOT (Industry = 'Retail' OR Industry = 'Tech')") == {"Beta", None}


@pytest.mark.parametrize(
    ("where", "token"),
    [
        ("A = 1 AND B = 2 OR C = 3", "OR"),
        ("A = 1 OR B = 2 AND C = 3", "AND"),
        ("A = 1 AND NOT B = 2", "NOT"),
        ("A = 1 AND NOT (B = 2)", "NOT"),
    ],
)
def test_mixing_and_or_needs_parentheses_like_salesforce(where: str, token: str) -> None:
    with pytest.raises(SoqlError, match=f"^unexpected token: '{token}'$"):
        parse_soql(f"SELECT Id FROM Account WHERE {where}")


def test_order_by_null_defaults_and_explicit(db) -> None:
    asc = ordered(db, "SELECT Industry FROM Account ORDER BY Industry")
    assert asc[0] is None and asc[1:] == ["Energy", "Retail", "Retail", "Tech", "Tech", "tech"]
    desc = ordered(db, "SELECT AnnualRevenue FROM Account ORDER BY AnnualRevenue DESC")
    assert desc == [1000.0, 300, 200, 50.5, 10, 0, None]
    assert ordered(db, "SELECT AnnualRevenue FROM Account ORDER BY AnnualRevenue ASC NULLS LAST")[-1] is None
    assert ordered(db, "SELECT AnnualRevenue FROM Account ORDER BY AnnualRevenue DESC NULLS FIRST")[0] is None


def test_order_by_is_case_insensitive_with_multiple_keys(db) -> None:
    rows = run(
        db, "SELECT Industry, Name FROM Account WHERE Industry != null ORDER BY Industry DESC, Name ASC"
    )
    assert [r[1] for r in rows[:3]] == ["Acme", "acme labs", "O'Brien\\Co"]  # Tech/tech tie, then Name
    assert [r[1] for r in rows[3:]] == ["100% Cotton", "Gamma_1", None]


def test_limit(db) -> None:
    assert ordered(db, "SELECT Id FROM Account ORDER BY Id LIMIT 2") == IDS[:2]
    assert run(db, "SELECT Id FROM Account LIMIT 0") == []


def test_tiebreak_orders_without_soql_order_by(db) -> None:
    rows = run(db, "SELECT Id FROM Account", tiebreak='"c_id" DESC')
    assert [r[0] for r in rows] == list(reversed(IDS[:7]))


def test_id_range_restricts_rows(db) -> None:
    assert ordered(db, "SELECT Id FROM Account ORDER BY Id", id_range=(IDS[1], IDS[4])) == IDS[1:4]
    assert ordered(db, "SELECT Id FROM Account ORDER BY Id", id_range=(IDS[5], None)) == IDS[5:7]
    assert names(db, "Industry = 'Tech'") >= {"Acme"}
    rows = run(
        db, "SELECT Name FROM Account WHERE Industry = 'Tech' OR Name = 'Beta'", id_range=(IDS[1], IDS[6])
    )
    assert {r[0] for r in rows} == {"acme labs", "Beta"}


def test_with_id_range_text() -> None:
    plain = "Select Id,Name,Email from Contact"
    assert parse_soql(plain).with_id_range("003A", "003B") == f"{plain} WHERE Id >= '003A' AND Id < '003B'"
    q = parse_soql("SELECT Name FROM Account WHERE Industry = 'Tech' OR Name = 'Beta' ORDER BY Name LIMIT 5")
    assert q.with_id_range("001", "002") == (
        "SELECT Name FROM Account WHERE (Industry = 'Tech' OR Name = 'Beta') AND Id >= '001' AND Id < '002'"
        " ORDER BY Name LIMIT 5"
    )
    assert parse_soql("SELECT Id FROM Account LIMIT 3").with_id_range("a'b", None) == (
        "SELECT Id FROM Account WHERE Id >= 'a\\'b' LIMIT 3"
    )


def test_with_id_range_text_runs_like_id_range(db) -> None:
    soql = "SELECT Name FROM Account WHERE Industry = 'Tech' OR Name = 'Beta'"
    chunk_soql = parse_soql(soql).with_id_range(IDS[1], IDS[6])
    assert run(db, chunk_soql) == run(db, soql, id_range=(IDS[1], IDS[6]))
    assert {r[0] for r in run(db, chunk_soql)} == {"acme labs", "Beta"}


def test_hand_built_query_renders_and_chunks() -> None:
    q = SoqlQuery(
        object="Account",
        fields=["Id"],
        where=Comparison("Name", "=", parse_soql("SELECT Id FROM A WHERE X = 'n'").where.value),
    )
    assert q.with_id_range("1", "2") == "SELECT Id FROM Account WHERE (Name = 'n') AND Id >= '1' AND Id < '2'"


# ------------------------------------------------------------------------------------------ safety


def test_hostile_literal_cannot_inject_sql(db) -> None:
    # SOQL escapes quotes with a backslash, so the doubled quote ends the literal: a parse error.
    with pytest.raises(SoqlError, match="unexpected token"):
        parse_soql("SELECT Id FROM Account WHERE Name = 'x'' OR 1=1 --'")
    hostile = "x' OR 1=1 --"
    soql = "SELECT Id FROM Account WHERE Name = 'x\\' OR 1=1 --'"
    sql, params = to_sql(parse_soql(soql), '"sobj_Account"', column, extra_where=LIVE)
    assert hostile not in sql and "1=1" not in sql
    assert hostile in params
    assert db.execute(sql, params).fetchall() == []
    drop = "SELECT Id FROM Account WHERE Name LIKE '%\\'; DROP TABLE \"sobj_Account\"; --'"
    assert run(db, drop) == []
    assert db.execute('SELECT COUNT(*) FROM "sobj_Account"').fetchone() == (8,)


@settings(max_examples=40, deadline=None)
# Lone surrogates (category Cs) cannot occur in UTF-8 payloads, so they are not SOQL input.
@given(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=12))
def test_any_string_value_round_trips_through_equality_and_like(value: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute('CREATE TABLE t ("c_id" TEXT, "c_name" TEXT)')
    conn.executemany("INSERT INTO t VALUES (?, ?)", [("1", value), ("2", value + "x")])
    quoted = value.replace("\\", "\\\\").replace("'", "\\'")
    like = quoted.replace("%", "\\%").replace("_", "\\_")
    for where in (f"Name = '{quoted}'", f"Name LIKE '{like}'"):
        sql, params = to_sql(parse_soql(f"SELECT Id FROM Account WHERE {where}"), "t", column)
        assert conn.execute(sql, params).fetchall() == [("1",)]


_fields = st.sampled_from(["Name", "Industry", "AnnualRevenue", "My_Field__c", "Owner.Name"])
_literals = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(
        ["null", "true", "FALSE", "2024-01-31", "2024-01-31T10:00:00Z", "1.5", "'a\\'b'", "'%x_'"]
    ),
    st.text(alphabet="ab%_' \\", max_size=5).map(
        lambda s: "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"
    ),
)


@st.composite
def _atoms(draw) -> str:
    field = draw(_fields)
    kind = draw(st.sampled_from(["cmp", "like", "in"]))
    if kind == "like":
        pattern = draw(st.sampled_from(["a%", "b_c", "\\\\%"]))
        return f"{field} LIKE '{pattern}'"
    if kind == "in":
        values = draw(
            st.lists(_literals.filter(lambda v: v.lower() not in ("true", "false")), min_size=1, max_size=3)
        )
        return f"{field} {draw(st.sampled_from(['IN', 'NOT IN']))} ({', '.join(values)})"
    literal = draw(_literals)
    ops = ["=", "!="] if literal.lower() in ("null", "true", "false") else ["=", "!=", "<>", "<", ">=", "<="]
    return f"{field} {draw(st.sampled_from(ops))} {literal}"


_conditions = st.recursive(
    _atoms(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: " AND ".join(f"({x})" for x in xs)),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: " OR ".join(f"({x})" for x in xs)),
        inner.map(lambda x: f"NOT ({x})"),
    ),
    max_leaves=5,
)


@settings(max_examples=40, deadline=None)
@given(_conditions)
def test_canonical_text_round_trips(where: str) -> None:
    q = parse_soql(f"SELECT Id, Name FROM Account WHERE {where} ORDER BY Name DESC NULLS FIRST LIMIT 7")
    again = parse_soql(q.to_soql())
    assert again.where == q.where
    assert (again.fields, again.order_by, again.limit) == (q.fields, q.order_by, q.limit)
    assert again.to_soql() == q.to_soql()


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("soql", "message"),
    [
        ("SELECT Id FORM Account", "unexpected token: 'FORM'"),
        ("SELECT Id, FROM Account", "unexpected token: 'FROM'"),
        ("SELECT FROM Account", "unexpected token: 'FROM'"),
        ("SELECT Id FROM", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM Account WHERE", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM Account WHERE Name = ", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM Account WHERE (Name = 'x'", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM Account WHERE Name 'x'", "unexpected token: ''x''"),
        ("SELECT Id FROM Account a", "unexpected token: 'a'"),
        ("SELECT Id FROM Account;", "unexpected token: ';'"),
        ("SELECT Id FROM Account LIMIT 2.5", "unexpected token: '2.5'"),
        ("SELECT Id FROM Account LIMIT 5 ORDER BY Id", "unexpected token: 'ORDER'"),
        ("SELECT Id FROM Account ORDER Id", "unexpected token: 'Id'"),
        ("SELECT Id FROM Account ORDER BY Id NULLS", "unexpected token: '<EOF>'"),
        ("SELECT Id FROM Account WHERE Name = :name", "unexpected token: ':'"),
        ("", "empty query"),
        ("UPDATE Account SET Name = 'x'", "unexpected token: 'UPDATE'"),
        (
            "SELECT Id FROM Account WHERE CreatedDate > 2024-01-31T10:00:00",
            "datetime needs seconds and a time zone",
        ),
        (
            "SELECT Id FROM Account WHERE CreatedDate > 2024-01-31T10:00Z",
            "invalid date/time literal at column 44",
        ),
        ("SELECT Id FROM Account UPDATE VIEWSTAT", "UPDATE TRACKING and UPDATE VIEWSTAT are not supported"),
        ("SELECT Id, Name, ID FROM Account", "duplicate field selected: ID"),
        ("SELECT Id FROM Account WHERE Name = 'abc", "unterminated string literal"),
        ("SELECT Id FROM Account WHERE Name = 'a\\qb'", "illegal escape sequence '\\q'"),
        ("SELECT Id FROM Account WHERE AnnualRevenue < null", "null can only be compared with = or !="),
        ("SELECT Id FROM Account WHERE IsPartner > true", "true/false can only be compared"),
        ("SELECT Id FROM Account WHERE Name LIKE 5", "LIKE needs a quoted string pattern"),
        ("SELECT Id FROM Account WHERE CreatedDate > 2024-02-30", "invalid date/time literal: '2024-02-30'"),
        ("SELECT Industry FROM Account GROUP BY Industry", "GROUP BY is not supported by Bulk API"),
        ("SELECT Id FROM Account HAVING Id = 'x'", "HAVING is not supported by Bulk API"),
        ("SELECT Id FROM Account LIMIT 5 OFFSET 10", "OFFSET is not supported by Bulk API"),
        ("SELECT TYPEOF What WHEN Account THEN Name END FROM Event", "TYPEOF is not supported by Bulk API"),
        ("SELECT COUNT() FROM Account", "Aggregate queries are not supported by Bulk API"),
        ("SELECT count(Id) FROM Account", "Aggregate queries are not supported by Bulk API"),
        ("SELECT Id, SUM(AnnualRevenue) FROM Account", "Aggregate queries are not supported by Bulk API"),
        (
            "SELECT Id FROM Account WHERE MAX(AnnualRevenue) > 1",
            "Aggregate queries are not supported by Bulk API",
        ),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "Nested queries"),
        ("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)", "Semi-join"),
        ("SELECT Id FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact)", "Semi-join"),
        ("SELECT Id FROM Account WHERE (SELECT Id FROM Contact)", "Semi-join"),
        ("SELECT Id FROM Account FOR UPDATE", "FOR VIEW, FOR REFERENCE and FOR UPDATE are not supported"),
        (
            "SELECT Id FROM Account WHERE CALENDAR_YEAR(CreatedDate) = 2024",
            "Date functions are not supported",
        ),
        ("SELECT DAY_ONLY(CreatedDate) FROM Account", "Date functions are not supported"),
        ("SELECT FIELDS(ALL) FROM Account", "FIELDS() is not supported by Bulk API"),
        ("SELECT toLabel(Industry) FROM Account", "Function toLabel() is not supported"),
        ("SELECT Id FROM Account WITH SECURITY_ENFORCED", "WITH clauses are not supported"),
        ("SELECT Id FROM Account USING SCOPE Mine", "USING SCOPE is not supported"),
        ("SELECT Id FROM Account WHERE CreatedDate > TODAY", "Relative date literal TODAY is not supported"),
        ("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:5", "Relative date literal LAST_N_DAYS"),
        ("SELECT Id FROM Account WHERE Tags__c INCLUDES ('a')", "INCLUDES and EXCLUDES"),
    ],
)
def test_rejections(soql: str, message: str) -> None:
    with pytest.raises(SoqlError) as info:
        parse_soql(soql)
    assert message in str(info.value)
    assert info.value.code == "MALFORMED_QUERY"


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Foo FROM Account",
        "SELECT Id FROM Account WHERE Foo = 1",
        "SELECT Id FROM Account WHERE Name = 'x' OR Foo IN ('a')",
        "SELECT Id FROM Account ORDER BY Foo",
        "SELECT Owner.Name FROM Account",
    ],
)
def test_unknown_field_error_from_column_propagates(soql: str) -> None:
    q = parse_soql(soql)
    with pytest.raises(SoqlError) as info:
        to_sql(q, '"sobj_Account"', column)
    assert info.value.code == "INVALID_FIELD"
    assert "on entity 'Account'" in str(info.value)


# ------------------------------------------------------------------------ typed store (field_type)

TYPES = {
    "id": "id",
    "name": "string",
    "industry": "picklist",
    "annualrevenue": "currency",
    "createddate": "datetime",
    "ispartner": "boolean",
    "ownerid": "reference",
    "logo": "base64",
}


def field_type(field: str) -> str | None:
    return TYPES.get(field.lower())


def typed_column(field: str) -> str:
    if field.lower() in TYPES:
        return '"' + next(n for n in [*COLUMNS, "OwnerId", "Logo"] if n.lower() == field.lower()) + '"'
    raise SoqlError(f"No such column '{field}' on entity 'Account'", code="INVALID_FIELD")


@pytest.fixture(scope="module")
def typed_db() -> sqlite3.Connection:
    """Laid out like the emulator's store: typed columns named after fields, booleans 0/1, WITHOUT ROWID."""
    conn = sqlite3.connect(":memory:")
    conn.execute(
        'CREATE TABLE "Account" ("Id" TEXT PRIMARY KEY, "Name" TEXT, "Industry" TEXT, "AnnualRevenue" REAL,'
        ' "CreatedDate" TEXT, "IsPartner" INTEGER, "OwnerId" TEXT, "Logo" TEXT, is_deleted INTEGER) WITHOUT ROWID'
    )
    conn.executemany(
        'INSERT INTO "Account" VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?)',
        [(*row[:5], 1 if row[5] == "true" else 0, row[6]) for row in ROWS],
    )
    return conn


def typed_names(conn: sqlite3.Connection, where: str) -> set[str | None]:
    q = parse_soql(f"SELECT Name FROM Account WHERE {where}")
    sql, params = to_sql(q, '"Account"', typed_column, extra_where=LIVE, field_type=field_type)
    return {row[0] for row in conn.execute(sql, params)}


def test_typed_store_results(typed_db) -> None:
    assert typed_names(typed_db, "IsPartner = true") == {"Acme", "Gamma_1", "O'Brien\\Co"}
    assert typed_names(typed_db, "IsPartner != true") == {"acme labs", "Beta", "100% Cotton", None}
    assert typed_names(typed_db, "AnnualRevenue > 200") == {"Acme", None}
    assert typed_names(typed_db, "AnnualRevenue IN (0, 10)") == {"100% Cotton", "O'Brien\\Co"}
    assert typed_names(typed_db, "Industry = 'TECH' AND Name LIKE 'a%'") == {"Acme", "acme labs"}
    assert typed_names(typed_db, "CreatedDate < 2024-01-01T00:00:00Z") == {"Gamma_1"}
    sql, params = to_sql(
        parse_soql("SELECT Name FROM Account ORDER BY AnnualRevenue DESC, Name"),
        '"Account"',
        typed_column,
        extra_where=LIVE,
        field_type=field_type,
    )
    assert [r[0] for r in typed_db.execute(sql, params)][:3] == ["Acme", None, "Gamma_1"]


def test_fifteen_character_id_literal_matches_stored_id(db, typed_db) -> None:
    assert names(db, "Id = '001000000000003'") == {"Beta"}
    assert names(db, "Id IN ('001000000000001', '001000000000002AAA')") == {"Acme", "acme labs"}
    assert typed_names(typed_db, "Id != '001000000000003'") == {r[1] for r in ROWS[:7]} - {"Beta"}


def test_pk_range_uses_the_primary_key_index(typed_db) -> None:
    sql, params = to_sql(
        parse_soql("SELECT Name FROM Account WHERE Name != null"),
        '"Account"',
        typed_column,
        extra_where=LIVE,
        id_range=(IDS[1], IDS[4]),
        field_type=field_type,
    )
    plan = " ".join(str(row[-1]) for row in typed_db.execute("EXPLAIN QUERY PLAN " + sql, params))
    assert "SEARCH" in plan and "PRIMARY KEY" in plan
    assert {r[0] for r in typed_db.execute(sql, params)} == {"acme labs", "Beta", "Gamma_1"}


@pytest.mark.parametrize(
    ("where", "message", "code"),
    [
        (
            "Name = 5",
            "field 'Name' must be of type string and should be enclosed in quotes",
            "MALFORMED_QUERY",
        ),
        ("Industry IN ('a', 3)", "field 'Industry' must be of type string", "MALFORMED_QUERY"),
        (
            "AnnualRevenue = '5'",
            "must be of type double and should not be enclosed in quotes",
            "MALFORMED_QUERY",
        ),
        ("CreatedDate > 2024-01-01", "field 'CreatedDate' must be of type dateTime", "MALFORMED_QUERY"),
        ("CreatedDate > '2024-01-01T00:00:00Z'", "must be of type dateTime", "MALFORMED_QUERY"),
        (
            "IsPartner = 'true'",
            "must be of type boolean and should not be enclosed in quotes",
            "MALFORMED_QUERY",
        ),
        ("Id = 5", "must be of type id and should be enclosed in quotes", "MALFORMED_QUERY"),
        ("Id = 'abc'", "invalid ID field: abc", "INVALID_QUERY_FILTER_OPERATOR"),
        ("OwnerId IN ('005000000000001', 'nope')", "invalid ID field: nope", "INVALID_QUERY_FILTER_OPERATOR"),
        ("AnnualRevenue LIKE '1%'", "invalid operator on field 'AnnualRevenue'", "MALFORMED_QUERY"),
        ("Logo = 'x'", "field 'Logo' can not be filtered in a query call", "INVALID_FIELD"),
    ],
)
def test_typed_filter_value_errors(where: str, message: str, code: str) -> None:
    q = parse_soql(f"SELECT Id FROM Account WHERE {where}")
    with pytest.raises(SoqlError) as info:
        to_sql(q, '"Account"', typed_column, field_type=field_type)
    assert message in str(info.value)
    assert info.value.code == code


def test_like_pattern_with_nul_is_rejected() -> None:
    with pytest.raises(SoqlError, match="NUL"):
        to_sql(parse_soql("SELECT Id FROM Account WHERE Name LIKE 'a\x00%'"), "t", column)
