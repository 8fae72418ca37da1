"""The ingest fast paths (block-built ids, multi-row inserts) give exactly what the general paths give."""

from __future__ import annotations

import csv
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfbulk.emulator import dml, payloads
from sfbulk.emulator import ids as ids_module
from sfbulk.emulator import schema as schema_module
from sfbulk.emulator.apierrors import BatchFailure
from sfbulk.emulator.ids import make_id18, make_ids18
from sfbulk.emulator.payloads import parse_csv
from sfbulk.emulator.schema import Field, FieldValueError, make_column_check, make_converter
from tests.emulator.test_clean_insert_path import CLEAN, apply, cell, csv_bytes

ID_SPACE = 62**10  # ten base-62 counter digits after the 3-char prefix and the 2-char pod
BLOCK = 62 * 62
HIGH = 62**5


@pytest.mark.parametrize(
    "first", [0, 1, BLOCK - 3, 5 * BLOCK - 1, HIGH - 2, 7 * HIGH + BLOCK - 1, ID_SPACE - 40]
)
@pytest.mark.parametrize("prefix", ["003", "001", "a0Z", "ZZZ"])
def test_block_ids_equal_make_id18_across_block_boundaries(prefix: str, first: int) -> None:
    count = min(2 * BLOCK + 5, ID_SPACE - first)
    assert make_ids18(prefix, first, count) == [make_id18(prefix, c) for c in range(first, first + count)]


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.text(st.sampled_from(ids_module.BASE62), min_size=3, max_size=3),
    first=st.integers(0, ID_SPACE - 1),
    count=st.integers(0, 300),
)
def test_block_ids_equal_make_id18_anywhere(prefix: str, first: int, count: int) -> None:
    count = min(count, ID_SPACE - first)
    assert make_ids18(prefix, first, count) == [make_id18(prefix, c) for c in range(first, first + count)]


def test_block_ids_run_out_at_the_end_of_the_id_space_like_make_id18() -> None:
    with pytest.raises(OverflowError):
        make_id18("003", ID_SPACE)
    with pytest.raises(OverflowError):
        make_ids18("003", ID_SPACE - 2, 5)
    assert make_ids18("003", ID_SPACE - 2, 2)[-1] == make_id18("003", ID_SPACE - 1)


def test_other_prefix_lengths_take_the_general_path() -> None:
    assert make_ids18("75", 10, 3) == [make_id18("75", c) for c in (10, 11, 12)]
    assert make_ids18("003", 5, 0) == []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.fixed_dictionaries(cell), min_size=1, max_size=12), per_statement=st.integers(1, 5))
def test_multi_row_inserts_store_what_the_row_path_stores(
    rows: list[dict[str, str]], per_statement: int, tmp_path_factory: Any, monkeypatch: Any
) -> None:
    tmp = tmp_path_factory.mktemp("multi")
    data = csv_bytes(rows)
    monkeypatch.setattr(dml, "ROWS_PER_INSERT", per_statement)
    assert apply(tmp, "fast", data, allow_fast=True, monkeypatch=monkeypatch) == apply(
        tmp, "slow", data, allow_fast=False, monkeypatch=monkeypatch
    )


@pytest.mark.parametrize("count", [1, 63, 64, 65, 200])
def test_clean_batches_of_any_size_store_what_the_row_path_stores(
    count: int, tmp_path: Any, monkeypatch: Any
) -> None:
    rows = [dict(CLEAN, FirstName=f"F{i}", Description=f"row {i}, café") for i in range(count)]
    data = csv_bytes(rows)
    fast = apply(tmp_path, "fast", data, allow_fast=True, monkeypatch=monkeypatch)
    assert len(fast[1]) == count
    assert fast == apply(tmp_path, "slow", data, allow_fast=False, monkeypatch=monkeypatch)


# --------------------------------------------------------------------------------------- CSV parsing
def _outcome(parse: Any, data: bytes) -> Any:
    try:
        payload = parse(data)
    except BatchFailure as exc:
        return ("failed", exc.state_message)
    for index in range(len(payload.columns)):  # the column view (when kept) is the rows' cells exactly
        assert all(
            a is b for a, b in zip(payload.column(index), [row[index] for row in payload.rows], strict=True)
        )
    return payload


def _rows_parser(data: bytes) -> Any:
    """``parse_csv`` with the whole-batch reader switched off: the row-by-row parser only."""
    whole = payloads._parse_csv_whole
    payloads._parse_csv_whole = lambda text: None  # type: ignore[assignment]
    try:
        return parse_csv(data)
    finally:
        payloads._parse_csv_whole = whole


_CSV_CHARS = st.sampled_from([",", '"', "\n", "\r", "a", "Z", " ", "é", "€", "𝄞", "#", "N", "/", "A", "0"])
_cell_text = st.one_of(
    st.just(""),
    st.just("#N/A"),
    st.just(" "),
    st.text(_CSV_CHARS, max_size=6),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6),
)


def _field(value: str, quote: bool) -> str:
    if quote or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_documents(draw: Any) -> bytes:
    """Mostly well-formed CSV (quotes, embedded newlines, CRLF, blank lines, blanks, #N/A, multibyte text),
    sometimes with ragged rows, a blank header name or raw garbage appended."""
    width = draw(st.integers(1, 4))
    header = draw(
        st.lists(st.sampled_from(["A", "b", " C ", "Name", "x.y", " ", ""]), min_size=width, max_size=width)
    )
    lines = [",".join(header)]
    for _ in range(draw(st.integers(0, 6))):
        cells = draw(
            st.lists(
                _cell_text,
                min_size=width - 1 if draw(st.booleans()) and width > 1 else width,
                max_size=width + (1 if draw(st.integers(0, 9)) == 0 else 0),
            )
        )
        lines.append(",".join(_field(c, draw(st.booleans())) for c in cells))
        if draw(st.integers(0, 5)) == 0:
            lines.append("")  # blank line
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))
    if draw(st.integers(0, 4)) == 0:
        text += draw(st.text(_CSV_CHARS, max_size=8))
    data = text.encode("utf-8")
    if draw(st.integers(0, 9)) == 0:
        data = (
            draw(st.sampled_from([b"\xef\xbb\xbf", b""]))
            + data
            + draw(st.sampled_from([b"\xff", b"\xc3", b""]))
        )
    return data


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(data=csv_documents())
def test_whole_batch_csv_parsing_equals_the_row_parser(data: bytes) -> None:
    assert _outcome(parse_csv, data) == _outcome(_rows_parser, data)


@settings(max_examples=200, deadline=None)
@given(data=st.text(_CSV_CHARS, max_size=40).map(lambda t: t.encode("utf-8")))
def test_whole_batch_csv_parsing_equals_the_row_parser_on_arbitrary_text(data: bytes) -> None:
    assert _outcome(parse_csv, data) == _outcome(_rows_parser, data)


@pytest.mark.parametrize(
    "data",
    [
        b'A,B\n1,2\n"unterminated\n',  # CSV error after good rows
        b"A,B\n1,2\n1,2,3\n",  # ragged row
        b"A,B\n1,2\n\n3,4\n",  # blank line
        b"A,,B\n1,2,3\n",  # empty header name
        b'A\n"x"y\n',  # strict quoting
        b"\n\nA\n1\n",  # blank header line
        b"A,B\n,#N/A\n#N/A,\n",  # blanks and #N/A
        'Name,Desc\r\n"caf\u00e9\r\nbar","\u20ac, ""q"""\r\n'.encode(),
    ],
)
def test_whole_batch_csv_parsing_equals_the_row_parser_on_known_cases(data: bytes) -> None:
    assert _outcome(parse_csv, data) == _outcome(_rows_parser, data)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_the_record_limit_fails_the_same_way(count: int, monkeypatch: Any) -> None:
    monkeypatch.setattr(payloads, "MAX_RECORDS", 3)
    data = ("A\n" + "x\n" * count + '"bad"x\n').encode()  # a CSV error after the rows: which comes first?
    assert _outcome(parse_csv, data) == _outcome(_rows_parser, data)
    data = ("A\n" + "x\n" * count).encode()
    assert _outcome(parse_csv, data) == _outcome(_rows_parser, data)


def test_oversized_fields_fail_the_same_way() -> None:
    data = b"A\n" + b"x" * (csv.field_size_limit() + 1) + b"\n"
    assert _outcome(parse_csv, data) == _outcome(_rows_parser, data)


# ---------------------------------------------------------------------------------- column checks
_TEXT_FIELDS = [
    Field("Name", "string", length=5),
    Field("Mail", "email", length=12),
    Field("Kind", "picklist", length=255, values=("Mr.", "Ms."), restricted=True),
    Field("Open", "picklist", length=3, values=("Mr.", "Ms.")),
    Field("Memo", "textarea", length=8),
]
_EMAIL_CHARS = st.sampled_from(
    ["a", "B", "@", ".", " ", "\n", "\t", "\xa0", "\u2028", "é", "-", "M", "r", "s"]
)


def _converter_keeps_every_cell(f: Field, cells: list[str]) -> bool:
    convert = make_converter(f)
    try:
        return all(convert(c) == c for c in cells)
    except FieldValueError:
        return False


@settings(max_examples=400, deadline=None)
@given(
    f=st.sampled_from(_TEXT_FIELDS),
    cells=st.lists(
        st.one_of(
            st.text(_EMAIL_CHARS, max_size=14),
            st.sampled_from(["a@b.cd", "Mr.", "Ms.", "x@y.z\n"]),
            st.builds(lambda n: f"user{n}@example.com", st.integers(0, 999)),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_a_passing_column_check_means_the_converter_keeps_every_cell(f: Field, cells: list[str]) -> None:
    check = make_column_check(f)
    assert check is not None
    keeps = _converter_keeps_every_cell(f, cells)
    if check(cells):
        assert keeps
    if f.type == "email":
        each = all(schema_module._EMAIL.match(c) for c in cells)
        if any("\n" in c for c in cells):
            assert not schema_module._all_emails(cells)  # conservative: the cells decide one by one
        else:
            assert schema_module._all_emails(cells) == each
    else:
        assert check(cells) == keeps  # exact for non-email text types


def test_the_joined_email_check_stays_linear_when_the_last_cell_is_bad() -> None:
    cells = ["a@b.c.d.e.f"] * 5000 + ["no at sign"]
    assert not schema_module._all_emails(cells)
    assert schema_module._all_emails(cells[:-1])


def test_non_text_fields_have_no_column_check() -> None:
    assert make_column_check(Field("N", "int")) is None
    assert make_column_check(Field("D", "date")) is None


# ---------------------------------------------------------------------------------------- results
@settings(max_examples=50, deadline=None)
@given(first=st.integers(0, ID_SPACE - 50), count=st.integers(0, 40))
def test_clean_insert_results_encode_like_json_dumps(first: int, count: int) -> None:
    new_ids = make_ids18("003", first, count)
    lazy = dml.BatchResults(created_ids=new_ids)
    assert (
        lazy.to_json() == json.dumps([[i, True, True, []] for i in new_ids], separators=(",", ":")).encode()
    )
    assert len(lazy) == count and lazy.failed() == 0
    assert lazy.rows() == [[i, True, True, []] for i in new_ids]


def test_general_results_are_json_dumps_of_the_rows() -> None:
    rows = [
        ["003", True, True, []],
        [None, False, False, [["REQUIRED_FIELD_MISSING", 'caf\u00e9 "x"', ["LastName"]]]],
    ]
    results = dml.BatchResults(rows)
    assert results.to_json() == json.dumps(rows, separators=(",", ":")).encode("utf-8")
    assert len(results) == 2 and results.failed() == 1 and results.rows() is rows


def test_attachments_drop_the_column_view() -> None:
    payload = parse_csv(b"Name,Body\na,#f.txt\n")
    assert payload.by_column is not None
    payloads.resolve_attachments(payload, {"f.txt": b"data"})
    assert payload.by_column is None and payload.column(1) == [b"data"]
