"""The ingest fast paths (block-built ids, multi-row inserts) give exactly what the general paths give."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfbulk.emulator import dml
from sfbulk.emulator import ids as ids_module
from sfbulk.emulator.ids import make_id18, make_ids18
from tests.emulator.test_clean_insert_path import CLEAN, apply, cell, csv_bytes

ID_SPACE = 62**10  # ten base-62 counter digits after the 3-char prefix and the 2-char pod
BLOCK = 62 * 62
HIGH = 62**5


@pytest.mark.parametrize("first", [0, 1, BLOCK - 3, 5 * BLOCK - 1, HIGH - 2, 7 * HIGH + BLOCK - 1, ID_SPACE - 40])
@pytest.mark.parametrize("prefix", ["003", "001", "a0Z", "ZZZ"])
def test_block_ids_equal_make_id18_across_block_boundaries(prefix: str, first: int) -> None:
    count = min(2 * BLOCK + 5, ID_SPACE - first)
    assert make_ids18(prefix, first, count) == [make_id18(prefix, c) for c in range(first, first + count)]


@settings(max_examples=200, deadline=None)
@given(prefix=st.text(st.sampled_from(ids_module.BASE62), min_size=3, max_size=3),
       first=st.integers(0, ID_SPACE - 1), count=st.integers(0, 300))
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
def test_multi_row_inserts_store_what_the_row_path_stores(rows: list[dict[str, str]], per_statement: int,
                                                          tmp_path_factory: Any, monkeypatch: Any) -> None:
    tmp = tmp_path_factory.mktemp("multi")
    data = csv_bytes(rows)
    monkeypatch.setattr(dml, "ROWS_PER_INSERT", per_statement)
    assert apply(tmp, "fast", data, allow_fast=True, monkeypatch=monkeypatch) == \
        apply(tmp, "slow", data, allow_fast=False, monkeypatch=monkeypatch)


@pytest.mark.parametrize("count", [1, 63, 64, 65, 200])
def test_clean_batches_of_any_size_store_what_the_row_path_stores(count: int, tmp_path: Any,
                                                                  monkeypatch: Any) -> None:
    rows = [dict(CLEAN, FirstName=f"F{i}", Description=f"row {i}, café") for i in range(count)]
    data = csv_bytes(rows)
    fast = apply(tmp_path, "fast", data, allow_fast=True, monkeypatch=monkeypatch)
    assert len(fast[1]) == count
    assert fast == apply(tmp_path, "slow", data, allow_fast=False, monkeypatch=monkeypatch)
