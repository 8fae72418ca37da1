"""CSV query results rendered inside SQLite are byte-for-byte what the Python renderer writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfbulk.emulator import query
from sfbulk.emulator.schema import Schema
from sfbulk.emulator.service import BulkService
from sfbulk.emulator.store import Store

USER = "005000000000001AAA"
text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=15)


def _service(path: Path) -> tuple[Store, BulkService]:
    schema = Schema.load(None)
    store = Store(path, schema)
    return store, BulkService(store, schema, USER, rows_per_result_file=7)


def _load(service: BulkService, obj: str, header: list[str], rows: list[list[str]]) -> None:
    def quote(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    body = "\n".join([",".join(header)] + [",".join(quote(v) for v in row) for row in rows]) + "\n"
    job = service.create_job("62.0", {"operation": "insert", "object": obj, "contentType": "CSV"}, None)
    batch = service.add_batch(job["id"], body.encode("utf-8"), "text/csv", "62.0")
    service.process_batch(job["id"], batch["id"])
    assert service.get_batch(job["id"], batch["id"])["state"] == "Completed"


def _results(service: BulkService, soql: str, *, in_sql: bool, expected_rows: int) -> list[bytes]:
    job = service.create_job("62.0", {"operation": "query", "object": "Contact", "contentType": "CSV"}, None)
    batch = service.add_batch(job["id"], soql.encode("utf-8"), "text/csv", "62.0")
    fmt = job["contentType"]
    assert fmt == "CSV"
    rows = query.run_query(
        service.store,
        service.schema,
        service.get_job(job["id"]),
        batch["id"],
        soql,
        service.rows_per_result_file,
        render_in_sql=in_sql,
    )
    assert rows == expected_rows  # the count the batch reports is the rows rendered
    return [
        b"".join(query.stream_result(service.store, rid))
        for rid in query.result_ids(service.store, batch["id"])
    ]


SOQL = (
    "SELECT Id, FirstName, LastName, Email, Description, HasOptedOutOfEmail, Account.Name, "
    "Account.Parent.Name FROM Contact"
)


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(text, text.filter(lambda v: v.strip() != ""), text, st.sampled_from(["true", "false", ""])),
        min_size=0,
        max_size=20,
    )
)
def test_sql_rendering_equals_python_rendering(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, str, str, str]]
) -> None:
    store, service = _service(tmp_path_factory.mktemp("render") / "db.sqlite")
    try:
        _load(service, "Account", ["Name"], [['Acme "quoted", inc\nline two']])
        account = store.reader().execute('SELECT "Id" FROM "sobj_Account"').fetchone()[0]
        data = [
            [first, last, desc, flag, account if i % 2 else ""]
            for i, (first, last, desc, flag) in enumerate(rows)
        ]
        if data:
            _load(
                service,
                "Contact",
                ["FirstName", "LastName", "Description", "HasOptedOutOfEmail", "AccountId"],
                data,
            )
        fast = _results(service, SOQL, in_sql=True, expected_rows=len(rows))
        slow = _results(service, SOQL, in_sql=False, expected_rows=len(rows))
        assert fast == slow
        assert len(fast) == max(1, -(-len(rows) // 7))  # split into files of 7 rows like the Python path
    finally:
        store.close()


def test_numeric_columns_keep_the_python_renderer(tmp_path: Path) -> None:
    store, service = _service(tmp_path / "db.sqlite")
    try:
        schema: Any = service.schema
        account = schema.get("Account")
        compiled = query.compile_query(schema, "Account", "SELECT Id, Name, AnnualRevenue FROM Account")
        assert query.csv_line_sql(compiled[2]) is None  # str(float) and SQLite's REAL text differ
        compiled = query.compile_query(schema, "Account", "SELECT Id, Name FROM Account")
        build = query.csv_line_sql(compiled[2])
        assert build is not None and "printf" in build([f"{account.table}.a", f"{account.table}.b"])
    finally:
        store.close()


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.just(""), st.just("003000000000001AAA"), text),
            st.booleans(),
            st.booleans(),
            st.lists(
                st.tuples(st.just("REQUIRED_FIELD_MISSING"), text, st.lists(text, max_size=2)), max_size=2
            ),
        ),
        max_size=10,
    )
)
def test_ingest_result_rows_take_the_shortcut_only_when_it_renders_the_same(
    rows: list[tuple[Any, ...]],
) -> None:
    from sfbulk.emulator import wire

    data = [[rid, ok, created, [list(e) for e in errors]] for rid, ok, created, errors in rows]
    expected = (
        "\n".join(['"Id","Success","Created","Error"', *(wire.result_csv_row(*r) for r in data)]) + "\n"
    )
    assert wire.results_csv(data) == expected.encode("utf-8")
