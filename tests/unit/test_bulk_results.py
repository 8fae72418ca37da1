"""Result files pair every input row with its result, in input order; polling gives up loudly."""

from __future__ import annotations

import csv
import io
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfbulk.bulk.csvsplit import CsvSplitter
from sfbulk.bulk.poll import Backoff, poll_until
from sfbulk.bulk.results import ResultWriter, input_records, parse_header, result_rows, strip_result_columns
from sfbulk.bulk.retry import RetryPolicy, call_with_retry
from sfbulk.errors import ApiError, BulkError, ConnectionClosedError, PollTimeout


def _read(path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_results_split_into_success_and_error_in_input_order(tmp_path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes('LastName,Note\nA,"multi\nline"\n,x\nC,日本\n'.encode())
    splitter = CsvSplitter(src.open("rb"), max_records=2)
    batches = list(splitter)
    results = [
        '"Id","Success","Created","Error"\n"003A","true","true",""\n"","false","false","REQUIRED_FIELD_MISSING:x --"\n',
        '"Id","Success","Created","Error"\n"003C","true","true",""\n',
    ]
    with ResultWriter(
        str(tmp_path / "s.csv"), str(tmp_path / "e.csv"), parse_header(splitter.header)
    ) as writer:
        for batch, text in zip(batches, results, strict=True):
            writer.add_batch(input_records(str(src), batch, "utf-8"), result_rows(io.StringIO(text)))
    assert _read(tmp_path / "s.csv") == [
        ["LastName", "Note", "sf__Id", "sf__Created", "sf__Error"],
        ["A", "multi\nline", "003A", "true", ""],
        ["C", "日本", "003C", "true", ""],
    ]
    assert _read(tmp_path / "e.csv")[1] == ["", "x", "", "false", "REQUIRED_FIELD_MISSING:x --"]
    assert (writer.succeeded, writer.failed) == (2, 1)

    out = io.StringIO()
    assert strip_result_columns(str(tmp_path / "e.csv"), out) == 1
    assert out.getvalue() == "LastName,Note\n,x\n"


def test_failed_batch_sends_every_row_to_errors(tmp_path) -> None:
    with ResultWriter(str(tmp_path / "s.csv"), str(tmp_path / "e.csv"), ["Name"]) as writer:
        assert writer.add_batch(["a", "b"], None, "InvalidBatch : Field name not found : Nme") == (0, 2)
    assert [r[-1] for r in _read(tmp_path / "e.csv")[1:]] == ["InvalidBatch : Field name not found : Nme"] * 2


def test_more_results_than_rows_is_an_error(tmp_path) -> None:
    with ResultWriter(str(tmp_path / "s.csv"), str(tmp_path / "e.csv"), ["Name"]) as writer:
        with pytest.raises(BulkError, match="more result rows"):
            writer.add_batch(["a"], [("1", "true", "true", ""), ("2", "true", "true", "")])


def test_retry_file_must_be_an_error_file(tmp_path) -> None:
    (tmp_path / "x.csv").write_text("Name\na\n")
    with pytest.raises(BulkError, match="sf__Error"):
        strip_result_columns(str(tmp_path / "x.csv"), io.StringIO())


def test_backoff_grows_capped_and_resets() -> None:
    b = Backoff(initial=0.1, factor=2, cap=0.5, jitter=0)
    assert [b.next_delay() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    b.reset()
    assert b.next_delay() == 0.1


def test_poll_timeout_names_job_and_batches() -> None:
    start = time.monotonic()
    with pytest.raises(PollTimeout) as info:
        poll_until(
            lambda: (False, False, ["751A", "751B"]),
            job_id="750J",
            timeout=0.3,
            backoff=Backoff(initial=0.05, cap=0.1),
        )
    assert time.monotonic() - start < 1.5
    assert info.value.job_id == "750J" and info.value.batch_ids == ["751A", "751B"]
    assert "750J" in str(info.value) and "751B" in str(info.value)


def test_retry_only_transient_failures() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionClosedError("reset") if len(calls) == 1 else ApiError(503)
        return "ok"

    assert call_with_retry(flaky, what="t", policy=RetryPolicy(initial=0.001)) == "ok" and len(calls) == 3

    def bad() -> None:
        calls.append(1)
        raise ApiError(400, "InvalidBatch", "nope")

    calls.clear()
    with pytest.raises(ApiError):
        call_with_retry(bad, what="t", policy=RetryPolicy(initial=0.001))
    assert len(calls) == 1


_field = st.text(alphabet=st.sampled_from(list('ab ,"\n\r') + ["é", "日", "🙂"]), max_size=8)


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n') else value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(_field, _field), min_size=1, max_size=25),
    outcomes=st.lists(st.tuples(st.booleans(), _field), min_size=25, max_size=25),
    terminator=st.sampled_from(["\n", "\r\n"]),
    max_records=st.integers(1, 6),
)
def test_records_are_copied_verbatim_and_parse_back_to_the_input(
    tmp_path, rows, outcomes, terminator, max_records
) -> None:
    """Whatever the quoting and line breaks, success/error rows parse back to input fields + results."""
    rows = [r if any(r) else ("x", "") for r in rows]  # an all-empty row would be a blank line
    src = tmp_path / "in.csv"
    src.write_bytes(
        "".join(",".join(_quoted(f) for f in r) + terminator for r in [("A", "B"), *rows]).encode()
    )
    with src.open("rb") as fh:
        splitter = CsvSplitter(fh, max_records=max_records)
        batches = list(splitter)
    expected_ok, expected_err = [], []
    with ResultWriter(
        str(tmp_path / "s.csv"), str(tmp_path / "e.csv"), parse_header(splitter.header)
    ) as writer:
        n = 0
        for batch in batches:
            lines = ['"Id","Success","Created","Error"']
            for i in range(batch.rows):
                ok, error = outcomes[n + i]
                rid = f"003{n + i:015d}" if ok else ""
                lines.append(
                    ",".join(
                        '"' + v.replace('"', '""') + '"'
                        for v in (rid, str(ok).lower(), str(ok).lower(), "" if ok else error)
                    )
                )
                (expected_ok if ok else expected_err).append(
                    [*rows[n + i], rid, str(ok).lower(), "" if ok else error]
                )
            n += batch.rows
            writer.add_batch(
                input_records(str(src), batch, "utf-8"), result_rows(io.StringIO("\n".join(lines) + "\n"))
            )
    assert _read(tmp_path / "s.csv") == [["A", "B", "sf__Id", "sf__Created", "sf__Error"], *expected_ok]
    assert _read(tmp_path / "e.csv") == [["A", "B", "sf__Id", "sf__Created", "sf__Error"], *expected_err]
    assert (writer.succeeded, writer.failed) == (len(expected_ok), len(expected_err))
