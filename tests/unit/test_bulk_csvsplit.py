"""The streaming splitter: no record lost, duplicated or cut, at the limits and with hostile CSV."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfbulk.bulk.csvsplit import MAX_RECORDS, CsvSplitter, read_range, transform
from sfbulk.errors import BulkError


def _field(value: str) -> str:
    # Quote when needed (Python's csv writer leaves a lone \r unquoted, which no reader can undo).
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _csv_bytes(rows: list[list[str]], header: list[str], terminator: str | list[str] = "\n") -> bytes:
    """``terminator``: one for every line, or one per line (header first) for mixed line ends."""
    lines = [",".join(_field(f) for f in row) for row in [header, *rows]]
    ends = [terminator] * len(lines) if isinstance(terminator, str) else terminator
    return "".join(line + end for line, end in zip(lines, ends, strict=True)).encode("utf-8")


def _record_ends(data: bytes) -> list[bytes]:
    """The line terminators that end records (outside quotes) in ``data``."""
    ends, quotes, i = [], 0, 0
    while i < len(data):
        c = data[i : i + 1]
        if c == b'"':
            quotes += 1
        elif c in b"\r\n" and not quotes & 1:
            end = b"\r\n" if data[i : i + 2] == b"\r\n" else c
            ends.append(end)
            i += len(end)
            continue
        i += 1
    return ends


terminators = st.sampled_from(["\n", "\r\n", "\r"])


def _records(batch_data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(batch_data.decode("utf-8"), newline="")))


def _split(data: bytes, chunk: int | None = None, **kw: object) -> tuple[CsvSplitter, list]:
    source = io.BytesIO(data) if chunk is None else (data[i : i + chunk] for i in range(0, len(data), chunk))
    splitter = CsvSplitter(source, **kw)  # type: ignore[arg-type]
    return splitter, list(splitter)


@pytest.mark.parametrize("n", [1, 9_999, 10_000, 10_001, 20_001])
def test_row_counts_at_the_record_limit(n: int) -> None:
    data = b"Id,Name\n" + b"".join(b"%d,n%d\n" % (i, i) for i in range(n))
    splitter, batches = _split(data)
    assert sum(b.rows for b in batches) == n == splitter.rows
    assert all(b.rows <= MAX_RECORDS for b in batches)
    assert len(batches) == -(-n // MAX_RECORDS)
    got = [r for b in batches for r in _records(b.data)[1:]]
    assert got == [[str(i), f"n{i}"] for i in range(n)]
    assert all(_records(b.data)[0] == ["Id", "Name"] for b in batches)


def test_character_limit_cuts_before_overflow() -> None:
    row = b"x" * 95 + b"\n"  # 96 bytes per record
    data = b"Name\n" + row * 1000
    _, batches = _split(data, max_chars=1000)
    assert sum(b.rows for b in batches) == 1000
    assert all(len(b.data) <= 1000 for b in batches)
    assert batches[0].rows == (1000 - 5) // 96


def test_record_larger_than_the_limit_is_a_clear_error() -> None:
    with pytest.raises(BulkError, match="exceeds the batch limit"):
        _split(b"Name\n" + b"y" * 200 + b"\n", max_chars=100)


field = st.text(
    alphabet=st.sampled_from(list('ab ,"\n\r\t') + ["é", "日", "🙂", "\u2028", "\x00"]), max_size=12
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(field, min_size=2, max_size=2), min_size=1, max_size=60),
    max_records=st.integers(1, 7),
    terminator=st.one_of(terminators, st.just("mixed")),
    mixed=st.lists(terminators, min_size=61, max_size=61),
    chunk=st.one_of(st.none(), st.integers(1, 17)),
    trailing_newline=st.booleans(),
)
def test_property_every_record_exactly_once(
    rows, max_records, terminator, mixed, chunk, trailing_newline
) -> None:
    """LF, CRLF, CR-only (Excel's "CSV (Macintosh)") and mixed line ends; quoted CR/LF are data."""
    # A row of only empty fields would be written as a blank line; Salesforce cannot take it either.
    rows = [r if any(r) else ["x", ""] for r in rows]
    ends = [terminator] * (len(rows) + 1) if terminator != "mixed" else mixed[: len(rows) + 1]
    data = _csv_bytes(rows, ["A", "B"], ends)
    if not trailing_newline:
        data = data[: -len(ends[-1])]
    splitter, batches = _split(data, chunk=chunk, max_records=max_records, max_chars=400)
    got = [r for b in batches for r in _records(b.data)[1:]]
    assert got == [[f.replace("\x00", "") for f in r] for r in rows]  # NULs are stripped, nothing else
    assert splitter.nul_count == sum(f.count("\x00") for r in rows for f in r)
    assert splitter.rows == len(rows)
    header_end = b"\n" if ends[0] == "\r" else ends[0].encode()
    for b in batches:
        assert 1 <= b.rows <= max_records and len(b.data) <= 400
        assert b.data.startswith(b"A,B" + header_end)
        # what Salesforce gets: records end in LF or CRLF, never a lone CR
        assert len(_record_ends(b.data)) == b.rows + 1 and b"\r" not in _record_ends(b.data)
    # each batch's byte range in the source holds exactly its records
    for b in batches:
        assert _records(transform(data[b.start : b.end], "utf-8")[0]) == _records(b.data)[1:]


def test_crlf_and_embedded_newlines_are_kept() -> None:
    data = b'Id,Desc\r\n1,"line one\r\nline two"\r\n2,plain\r\n'
    _, batches = _split(data, max_records=1)
    assert [b.data for b in batches] == [
        b'Id,Desc\r\n1,"line one\r\nline two"\r\n',
        b"Id,Desc\r\n2,plain\r\n",
    ]


def test_cr_only_line_ends_are_read_and_sent_as_lf() -> None:
    """Excel's "CSV (Macintosh)": every record found; a CR inside a quoted value stays data."""
    data = b'Id,Desc\r1,"two\rlines"\r2,plain\r\r3,"a\r\nb"\r4,last'
    splitter, batches = _split(data, max_records=2)
    assert [b.data for b in batches] == [
        b'Id,Desc\n1,"two\rlines"\n2,plain\n',
        b'Id,Desc\n3,"a\r\nb"\n4,last\n',
    ]
    assert (splitter.rows, splitter.blank_lines) == (4, 1)
    # the byte ranges re-read from the source give the same records (the result writer's view)
    assert [_records(transform(data[b.start : b.end], "utf-8")[0]) for b in batches] == [
        _records(b.data)[1:] for b in batches
    ]
    assert transform(data[batches[0].start : batches[0].end], "utf-8")[0] == batches[0].data[8:]


def test_cr_only_file_of_1000_rows_split_in_chunks() -> None:
    data = b"LastName,Email\r" + b"".join(b"L%d,e%d@example.com\r" % (i, i) for i in range(1000))
    for chunk in (None, 1, 7, 4096):
        splitter, batches = _split(data, chunk=chunk, max_records=300)
        assert splitter.rows == 1000 and [b.rows for b in batches] == [300, 300, 300, 100]
        got = [r for b in batches for r in _records(b.data)[1:]]
        assert got == [[f"L{i}", f"e{i}@example.com"] for i in range(1000)]


def test_mixed_line_ends_in_one_file() -> None:
    data = b"Id,Name\r\n1,a\n2,b\r3,c\r\n4,d\r"
    splitter, batches = _split(data)
    assert batches[0].data == b"Id,Name\r\n1,a\n2,b\n3,c\r\n4,d\n" and splitter.rows == 4


def test_read_header_reads_only_the_header() -> None:
    from sfbulk.bulk.csvsplit import read_header

    assert read_header(io.BytesIO(b'\xef\xbb\xbf\nId,"Na\rme"\r1,a\r' + b"\xff" * 10)) == b'Id,"Na\rme"\n'
    assert (
        read_header(io.BytesIO("Nom,Prénom\n".encode("cp1252")), encoding="cp1252") == "Nom,Prénom\n".encode()
    )
    with pytest.raises(BulkError, match="empty"):
        read_header(io.BytesIO(b"\r\n\n"))


def test_nul_bytes_are_stripped_and_counted() -> None:
    splitter, batches = _split(b"Id,Name\x00\n1,a\x00b\n2,\x00\x00c\n")
    assert batches[0].data == b"Id,Name\n1,ab\n2,c\n"
    assert splitter.nul_count == 4


def test_nul_bytes_rejected_on_request() -> None:
    with pytest.raises(BulkError, match="NUL byte"):
        _split(b"Id\n1\x00\n", nul="reject")


def test_bom_blank_lines_and_missing_final_newline() -> None:
    splitter, batches = _split(b"\xef\xbb\xbfId,Name\n1,a\n\n2,b\r\n\r\n3,c", max_records=5)
    assert [b.data for b in batches] == [b"Id,Name\n1,a\n", b"Id,Name\n2,b\r\n", b"Id,Name\n3,c\n"]
    assert splitter.blank_lines == 2 and splitter.rows == 3


def test_invalid_utf8_names_the_line_and_the_fix() -> None:
    with pytest.raises(BulkError, match=r"not valid UTF-8.*line 2.*--encoding"):
        _split(b"Id,Name\n1,ok\n2,caf\xe9\n")


def test_cp1252_input_is_transcoded() -> None:
    _, batches = _split("Id,Name\n1,café €\n".encode("cp1252"), encoding="cp1252")
    assert batches[0].data.decode("utf-8") == "Id,Name\n1,café €\n"


def test_utf16_is_refused_with_advice() -> None:
    with pytest.raises(BulkError, match="not ASCII-compatible"):
        CsvSplitter(io.BytesIO(b""), encoding="utf-16")


def test_unclosed_quote_and_empty_input() -> None:
    with pytest.raises(BulkError, match="closing quote"):
        _split(b'Id,Name\n1,"open\n2,b\n')
    with pytest.raises(BulkError, match="empty"):
        _split(b"")
    splitter, batches = _split(b"Id,Name\n")
    assert batches == [] and splitter.rows == 0


def test_read_range_finds_a_batch_again(tmp_path) -> None:
    data = b"\xef\xbb\xbfId\n" + b"".join(b"%d\n" % i for i in range(25))
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    _, batches = _split(data, max_records=10)
    assert [read_range(str(path), b.start, b.end) for b in batches] == [b.data[3:] for b in batches]


blank_or_row = st.one_of(st.lists(field, min_size=2, max_size=2), st.sampled_from(["", "\r"]))


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(blank_or_row, min_size=0, max_size=80),
    max_records=st.integers(1, 12),
    max_chars=st.integers(60, 600),
    terminator=st.one_of(terminators, st.just("mixed")),
    mixed=st.lists(terminators, min_size=81, max_size=81),
    chunk=st.one_of(st.none(), st.integers(1, 40)),
)
def test_run_of_plain_lines_fast_path_cuts_the_same_batches(
    monkeypatch, rows, max_records, max_chars, terminator, mixed, chunk
) -> None:
    """Taking plain one-line records in runs gives exactly the batches of the record-by-record scan,
    whatever the line ends (LF, CRLF, CR-only, mixed) and with quoted CR/LF in values."""
    from sfbulk.bulk import csvsplit

    lines = ["A,B"] + [r if isinstance(r, str) else ",".join(_field(f) for f in r) for r in rows]
    ends = [terminator] * len(lines) if terminator != "mixed" else mixed[: len(lines)]
    data = "".join(line + end for line, end in zip(lines, ends, strict=True)).encode("utf-8")

    def outcome() -> tuple:
        try:
            splitter, batches = _split(data, chunk=chunk, max_records=max_records, max_chars=max_chars)
        except BulkError as exc:
            return ("error", str(exc))
        return (
            [(b.index, b.first_row, b.rows, b.start, b.end, b.data) for b in batches],
            splitter.rows,
            splitter.nul_count,
            splitter.blank_lines,
        )

    fast = outcome()
    with monkeypatch.context() as patch:
        patch.setattr(csvsplit, "_plain_lines", lambda buf, pos, want, budget: (0, pos, pos))
        slow = outcome()
    assert fast == slow


def test_plain_lines_stops_at_a_quoted_line_break_and_a_blank_line() -> None:
    from sfbulk.bulk.csvsplit import _plain_lines

    buf = b'a,"x"\nb,"two\nlines"\nc,d\n'
    assert _plain_lines(buf, 0, 10, 1000) == (1, 6, len(buf))
    buf = b"a,b\nc,d\n\ne,f\n"
    assert _plain_lines(buf, 0, 10, 1000) == (2, 8, len(buf))
    assert _plain_lines(buf, 0, 1, 1000) == (1, 4, 4)
    assert _plain_lines(buf, 0, 10, 5) == (1, 4, 4)  # the byte budget
    # no complete line yet: the record-by-record scan takes it (not the fast path once per record)
    assert _plain_lines(b"a,b", 0, 10, 1000) == (0, 0, 3)
    # CR-only: runs taken as a whole too, except a CR at the very end (an LF may follow: CRLF)
    assert _plain_lines(b"a,b\rc,d\re,f\r", 0, 10, 1000) == (2, 8, 8)
    assert _plain_lines(b"a,b\rc,d\re,f\rg", 0, 10, 1000) == (3, 12, 12)
    assert _plain_lines(b'a,b\r"c\rd",e\rf,g\rh', 0, 10, 1000) == (1, 4, 16)  # a quoted CR stops the run
    assert _plain_lines(b"a,b\r\rc,d\re", 0, 10, 1000) == (1, 4, 9)  # so does a blank line
    buf = b"a,b\nc,d\re,f\ng,h\n"
    assert _plain_lines(buf, 0, 10, 1000) == (1, 4, len(buf))  # stops before the line with a lone CR
    buf = b"a,b\r\nc,d\r\n"
    assert _plain_lines(buf, 0, 10, 1000) == (2, len(buf), len(buf))  # CRLF is not a lone CR
