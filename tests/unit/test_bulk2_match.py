"""Property tests: Bulk API 2.0 results (three files, any order) matched back to input rows.

The truth is drawn first (each input row's outcome), the result files are built from it the way
Salesforce builds them (original fields echoed, rows shuffled), and the matcher must give every
row exactly one outcome, the exact one for a row whose content is unique, and for identical rows
the same multiset of outcomes.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfbulk.bulk.v2.match import Matcher, digest, record_digests
from sfbulk.errors import BulkError

# Few distinct values, so identical rows are common; values that need quoting included.
CELL = st.sampled_from(["a", "b", "", "x,y", 'say "hi"', "two\nlines", "ü", " a"])
OUTCOME = st.sampled_from(["ok", "created", "fail", "unprocessed", "missing"])


def as_record(cells: list[str], quote_all: bool) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerow(
        cells
    )
    return buf.getvalue()[:-1]


def run(
    tmp: Path, rows: list[list[str]], truth: list[str], seed: int, quote_all: bool
) -> tuple[list[tuple[str, str, str, str]], dict[int, tuple[str, str, str, str]]]:
    """The matcher's outcomes, and each row's true (id, success, created, error)."""
    expected: dict[int, tuple[str, str, str, str]] = {}
    files: dict[str, list[list[str]]] = {
        "successfulResults": [],
        "failedResults": [],
        "unprocessedrecords": [],
    }
    for i, (cells, outcome) in enumerate(zip(rows, truth, strict=True)):
        rid = f"003{i:015d}"
        if outcome in ("ok", "created"):
            created = "true" if outcome == "created" else "false"
            files["successfulResults"].append([rid, created, *cells])
            expected[i] = (rid, "true", created, "")
        elif outcome == "fail":
            files["failedResults"].append(["", f"ERR{i}", *cells])
            expected[i] = ("", "false", "false", f"ERR{i}")
        elif outcome == "unprocessed":
            files["unprocessedrecords"].append(list(cells))
            expected[i] = ("", "false", "false", "REASON")
        else:
            expected[i] = ("", "false", "false", "REASON")  # no result at all: reported, never dropped
    rng = random.Random(seed)
    matcher = Matcher(str(tmp / f"m{seed}.db"), len(rows[0]) if rows else 1)
    try:
        for kind, found in files.items():
            rng.shuffle(found)  # 2.0 returns results in no particular order
            matcher.add_results(kind, found)
        matcher.add_inputs(record_digests([as_record(r, quote_all) for r in rows]))
        return list(matcher.outcomes("REASON")), expected
    finally:
        matcher.close()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(width=st.integers(1, 3), data=st.data(), seed=st.integers(0, 10_000), quote_all=st.booleans())
def test_every_row_gets_one_outcome_and_duplicates_share_theirs(
    tmp_path: Path, width: int, data: st.DataObject, seed: int, quote_all: bool
) -> None:
    rows = data.draw(st.lists(st.lists(CELL, min_size=width, max_size=width), min_size=1, max_size=40))
    truth = data.draw(st.lists(OUTCOME, min_size=len(rows), max_size=len(rows)))
    got, expected = run(tmp_path, rows, truth, seed, quote_all)
    assert len(got) == len(rows)  # one outcome per input row, in input order
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, cells in enumerate(rows):
        groups.setdefault(tuple(cells), []).append(i)
    for members in groups.values():
        # identical rows: the same multiset of outcomes as Salesforce gave them
        assert Counter(got[i] for i in members) == Counter(expected[i] for i in members)
        if len(members) == 1:
            assert got[members[0]] == expected[members[0]]  # a unique row: its own outcome exactly
    ids = [o[0] for o in got if o[0]]
    assert len(ids) == len(set(ids))  # no result handed to two rows


@given(
    cells=st.lists(
        st.text(alphabet=st.characters(blacklist_characters="\0\r", blacklist_categories=("Cs",))),
        min_size=1,
        max_size=5,
    ),
    quote_all=st.booleans(),
)
def test_a_record_and_its_echoed_fields_have_one_digest(cells: list[str], quote_all: bool) -> None:
    """However the input quoted a row, the digest of the text sent is the digest of the fields Salesforce echoes."""
    assert list(record_digests([as_record(cells, quote_all)])) == [digest(cells)]


def test_duplicates_are_assigned_in_input_order_success_first(tmp_path: Path) -> None:
    rows = [["same"]] * 3
    matcher = Matcher(str(tmp_path / "m.db"), 1)
    matcher.add_results("failedResults", [["", "E1", "same"]])
    matcher.add_results("successfulResults", [["003A", "true", "same"], ["003B", "true", "same"]])
    matcher.add_inputs(record_digests([as_record(r, False) for r in rows]))
    assert [o[0] for o in matcher.outcomes("R")] == ["003A", "003B", ""]
    matcher.close()


def test_more_results_than_rows_or_a_stranger_is_an_error(tmp_path: Path) -> None:
    matcher = Matcher(str(tmp_path / "m.db"), 1)
    matcher.add_results("successfulResults", [["003A", "true", "other"]])
    matcher.add_inputs(record_digests(["mine"]))
    with pytest.raises(BulkError, match="match no input row"):
        list(matcher.outcomes("R"))
    matcher.close()
    matcher = Matcher(str(tmp_path / "m2.db"), 1)
    with pytest.raises(BulkError, match="has 2 fields, expected 3"):
        matcher.add_results("failedResults", [["", "E"]])
    matcher.close()
