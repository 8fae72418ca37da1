"""The clean-insert fast path stores exactly what the row-by-row path stores, and declines otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sfbulk.emulator import dml
from sfbulk.emulator.dml import BatchWriter, _clean_insert_columns, resolve_columns
from sfbulk.emulator.payloads import parse_csv
from sfbulk.emulator.schema import Schema
from sfbulk.emulator.store import Store

COLUMNS = ["FirstName", "LastName", "Email", "Birthdate", "HasOptedOutOfEmail", "Salutation", "Description"]
COMPARED = [
    "FirstName",
    "LastName",
    "Email",
    "Birthdate",
    "HasOptedOutOfEmail",
    "Salutation",
    "Description",
    "IsDeleted",
    "CreatedById",
]

text = st.text(st.characters(codec="utf-8", exclude_characters="\x00\r"), max_size=12)
cell = {
    "FirstName": st.one_of(text, st.just(""), st.just("#N/A")),
    "LastName": st.one_of(text.filter(lambda v: v.strip() not in ("", "#N/A")), st.just("")),
    "Email": st.one_of(st.just(""), st.just("a@example.com"), st.just("not-an-email")),
    "Birthdate": st.one_of(st.just(""), st.just("1980-02-29"), st.just("1980-13-01")),
    "HasOptedOutOfEmail": st.sampled_from(["", "true", "false", "1", "maybe"]),
    "Salutation": st.sampled_from(["", "Mr.", "Ms.", "Dr. Who"]),
    "Description": st.one_of(text, st.just("x" * 40)),
}


def csv_bytes(rows: list[dict[str, str]]) -> bytes:
    def quote(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if value else ""

    lines = [",".join(COLUMNS)] + [",".join(quote(r[c]) for c in COLUMNS) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def apply(
    tmp: Path, name: str, data: bytes, *, allow_fast: bool, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    schema = Schema.load(None)
    store = Store(tmp / f"{name}.db", schema)
    try:
        with monkeypatch.context() as patch:
            if not allow_fast:
                patch.setattr(dml, "_clean_insert_columns", lambda *args: None)
            results = BatchWriter(store, schema, schema.get("Contact"), "insert", "005000000000001AAA").run(
                parse_csv(data)
            )
        cols = ", ".join(f'"{c}"' for c in ["Id", *COMPARED])
        stored = store.reader().execute(f'SELECT {cols} FROM "sobj_Contact" ORDER BY "Id"').fetchall()
    finally:
        store.close()
    return results, stored


CLEAN = {
    "FirstName": "Ann",
    "LastName": "Lee",
    "Email": "a@example.com",
    "Birthdate": "1980-02-29",
    "HasOptedOutOfEmail": "true",
    "Salutation": "Ms.",
    "Description": 'multi\nline, "quoted"',
}
BLANKS = {
    "FirstName": "#N/A",
    "LastName": "Roe",
    "Email": "",
    "Birthdate": "",
    "HasOptedOutOfEmail": "",
    "Salutation": "",
    "Description": "",
}


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(rows=[CLEAN, BLANKS])  # clean: the fast path runs (defaults, #N/A, blanks, conversions)
@example(rows=[CLEAN, dict(CLEAN, Email="not-an-email")])  # one bad row: the whole batch takes the row path
@given(rows=st.lists(st.fixed_dictionaries(cell), min_size=1, max_size=6))
def test_fast_and_row_paths_agree(rows: list[dict[str, str]], tmp_path_factory, monkeypatch) -> None:
    tmp = tmp_path_factory.mktemp("paths")
    data = csv_bytes(rows)
    fast = apply(tmp, "fast", data, allow_fast=True, monkeypatch=monkeypatch)
    slow = apply(tmp, "slow", data, allow_fast=False, monkeypatch=monkeypatch)
    assert fast == slow


READ_ONLY = ["Name", "CreatedDate"]
read_only_cell = st.sampled_from(["", "", "", "x", "#N/A", "2024-01-01T00:00:00Z"])


def _with_columns(rows: list[dict[str, str]], columns: list[str]) -> bytes:
    def quote(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if value else ""

    lines = [",".join(columns)] + [",".join(quote(r[c]) for c in columns) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(rows=[dict(CLEAN, Name="", CreatedDate=""), dict(BLANKS, Name="", CreatedDate="")])
@example(rows=[dict(CLEAN, Name="x", CreatedDate=""), dict(BLANKS, Name="#N/A", CreatedDate="2024-01-01")])
@given(
    rows=st.lists(
        st.fixed_dictionaries({**cell, "Name": read_only_cell, "CreatedDate": read_only_cell}),
        min_size=1,
        max_size=6,
    )
)
def test_read_only_columns_fail_only_the_rows_that_set_them(
    rows: list[dict[str, str]], tmp_path_factory, monkeypatch
) -> None:
    """A batch with read-only columns = the same batch without them (fast path allowed) for the rows
    that leave them empty; each other row fails with INVALID_FIELD_FOR_INSERT_UPDATE naming them."""
    tmp = tmp_path_factory.mktemp("readonly")
    with_ro, with_stored = apply(
        tmp, "with", _with_columns(rows, COLUMNS + READ_ONLY), allow_fast=True, monkeypatch=monkeypatch
    )
    clean_rows = [r for r in rows if not any(r[c] for c in READ_ONLY)]
    expected_results: list[Any] = []
    expected_stored: list[Any] = []
    if clean_rows:
        expected_results, expected_stored = apply(
            tmp, "without", _with_columns(clean_rows, COLUMNS), allow_fast=True, monkeypatch=monkeypatch
        )
    clean_results = iter(expected_results)
    for row, result in zip(rows, with_ro, strict=True):
        setting = [c for c in READ_ONLY if row[c]]
        if setting:
            assert result[:3] == [None, False, False]
            assert [e[0] for e in result[3]] == ["INVALID_FIELD_FOR_INSERT_UPDATE"]
            assert result[3][0][2] == setting
        else:
            expect = next(clean_results)
            assert result[1:] == expect[1:]
    assert [r[1:] for r in with_stored] == [r[1:] for r in expected_stored]  # ids aside, the same rows


def test_clean_batches_take_the_fast_path_and_dirty_ones_do_not() -> None:
    schema = Schema.load(None)
    contact = schema.get("Contact")
    assert contact is not None

    def planned(data: bytes) -> Any:
        payload = parse_csv(data)
        return _clean_insert_columns(
            contact, resolve_columns(schema, contact, payload.columns, "insert"), payload
        )

    assert planned(b"LastName,Email\nDoe,a@example.com\nRoe,\n") is not None
    assert planned(b"LastName,Email\nDoe,not-an-email\n") is None  # INVALID_EMAIL_ADDRESS for a row
    assert planned(b"FirstName,Email\nJo,a@example.com\n") is None  # LastName (required) missing everywhere
    assert planned(b"LastName,Email\n,a@example.com\n") is None  # ... or in one row
    assert planned(b"LastName,External_Id__c\nDoe,E1\n") is None  # unique field: needs the database
    assert planned(b"LastName,AccountId\nDoe,001000000000001AAA\n") is None  # reference: needs the database
    assert planned(b"Id,LastName\n003000000000001AAA,Doe\n") is None  # an Id on insert is a row error
    assert planned(b"LastName,Name\nDoe,\n") is None  # a read-only column: rows that set it fail
