"""The load/extract journal: durable appends, torn tails after a power cut, damage, locking, fingerprints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sfbulk.bulk.journal import discard, fingerprint, open_journal, read_records
from sfbulk.errors import BulkError, BulkInputError


def test_records_survive_reopening_and_finish_leaves_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "x.journal")
    j = open_journal(path)
    assert not j.resumed and j.start is None
    j.append({"t": "start", "v": 1, "cmd": {"a": 1}})
    j.append({"t": "job", "id": "750x"})
    j.close()
    j = open_journal(path)
    assert (
        j.resumed
        and j.start == {"t": "start", "v": 1, "cmd": {"a": 1}}
        and j.last("job") == {"t": "job", "id": "750x"}
    )
    j.finish()
    assert os.listdir(tmp_path) == []  # neither the journal nor its lock file is left behind


@pytest.mark.parametrize("tail", [b'{"t":"sent","i":3,"st', b"\0\0\0\0\0\0", b"garbage\n"])
def test_a_torn_last_record_is_dropped_and_overwritten(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "x.journal"
    good = b'{"t":"start","v":1}\n{"t":"job","id":"750x"}\n'
    path.write_bytes(good + tail)
    records, length = read_records(str(path))
    assert [r["t"] for r in records] == ["start", "job"] and length == len(good)
    j = open_journal(str(path))
    j.append({"t": "sent", "i": 0, "id": "751a"})
    j.close()
    assert path.read_bytes() == good + b'{"t":"sent","i":0,"id":"751a"}\n'


def test_damage_before_the_last_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.journal"
    path.write_bytes(b'{"t":"start","v":1}\nnot json\n{"t":"job","id":"750x"}\n')
    with pytest.raises(BulkError, match=r"damaged at line 2.*--restart"):
        open_journal(str(path))
    path.write_bytes(b'{"t":"job","id":"750x"}\n')
    with pytest.raises(BulkError, match="does not start with its command"):
        open_journal(str(path))


def test_a_second_run_cannot_take_the_same_journal(tmp_path: Path) -> None:
    path = str(tmp_path / "x.journal")
    first = open_journal(path)
    try:
        with pytest.raises(BulkInputError, match="another sfbulk run is working on the same files"):
            open_journal(path)
    finally:
        first.close()
    open_journal(path).close()  # free again


def test_discard_empties_the_journal_keeping_the_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "x.journal")
    j = open_journal(path)
    j.append({"t": "start", "v": 1})
    discard(j)
    assert j.records == [] and os.path.getsize(path) == 0
    with pytest.raises(BulkInputError):
        open_journal(path)
    j.close()


def test_fingerprint_follows_the_content_not_the_clock(tmp_path: Path) -> None:
    f = tmp_path / "in.csv"
    f.write_bytes(b"Id\n1\n")
    before = fingerprint(str(f))
    os.utime(f, (1, 1))
    assert fingerprint(str(f)) == before  # touched or copied: still the same input
    f.write_bytes(b"Id\n2\n")  # same size, other content
    assert fingerprint(str(f))["size"] == before["size"] and fingerprint(str(f)) != before
