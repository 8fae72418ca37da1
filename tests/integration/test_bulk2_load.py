"""``sfbulk load --api 2`` end to end against the emulator's Bulk API 2.0: several jobs, results in input order."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from sfbulk.bulk.load import LoadOptions
from sfbulk.bulk.retry import RetryPolicy
from sfbulk.bulk.v2.load import load_csv_v2
from sfbulk.cli import cli
from tests.integration.test_bulk_load import connect, env_for, read_csv, write_contacts


def stored(emu: Any, tag: str) -> list[str]:
    rows = emu.store.reader().execute('SELECT "Email" FROM "sobj_Contact" WHERE "Email" LIKE ?', (tag + "%",))
    return [r[0] for r in rows]


def test_cli_load_api2_splits_into_jobs_and_keeps_input_order(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "contacts.csv"
    write_contacts(src, 3_000, tag="v2cli", missing_every=250)
    result = CliRunner().invoke(cli, ["load", str(src), "--object", "Contact", "--api", "2", "--max-job-bytes",
                                      "60000", "--concurrency", "3", "--no-progress"], env=env_for(emu, tmp_path))
    assert result.exit_code == 1, result.output  # some rows fail by design (no LastName)
    jobs = emu.store.reader().execute("SELECT count(*) FROM bulk2_jobs WHERE job_type = 'V2Ingest'").fetchone()[0]
    assert jobs >= 4
    assert f"rows in {jobs} jobs (Bulk API 2.0), 2,988 succeeded, 12 failed" in result.output
    ok = read_csv(tmp_path / "contacts.success.csv")
    err = read_csv(tmp_path / "contacts.error.csv")
    assert ok[0] == err[0] == ["FirstName", "LastName", "Email", "Description", "sf__Id", "sf__Created", "sf__Error"]
    assert [r[2] for r in ok[1:]] == [f"v2cli{i}@example.com" for i in range(3_000) if i % 250 != 3]
    assert [r[2] for r in err[1:]] == [f"v2cli{i}@example.com" for i in range(3_000) if i % 250 == 3]
    assert all(r[4].startswith("003") and r[5] == "true" for r in ok[1:])
    assert all(r[6].startswith("REQUIRED_FIELD_MISSING") for r in err[1:])
    assert ok[1][3] == 'line one\nline "two" 0, ünïcode'
    assert sorted(stored(emu, "v2cli")) == sorted(r[2] for r in ok[1:])
    assert not list(tmp_path.glob(".sfbulk-*")) and not list(tmp_path.glob("*.journal"))


def test_identical_rows_each_get_one_outcome(emulator_factory: Any, tmp_path: Path) -> None:
    """Duplicates and rows whose outcome differs only by position: the counts per content are Salesforce's."""
    emu = emulator_factory()
    src = tmp_path / "dups.csv"
    rng = random.Random(7)
    rows = [["Same", "Row" if rng.random() < 0.7 else "", "dup@example.com"] for _ in range(400)]
    with src.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["FirstName", "LastName", "Email"])
        w.writerows(rows)
    summary = load_csv_v2(connect(emu, tmp_path), str(src), LoadOptions(object="Contact", concurrency=2,
                          retry=RetryPolicy(initial=0.01)), max_job_bytes=2_000)
    ok = read_csv(tmp_path / "dups.success.csv")[1:]
    err = read_csv(tmp_path / "dups.error.csv")[1:]
    assert summary.batches > 3
    assert len(ok) == sum(1 for r in rows if r[1]) and len(err) == sum(1 for r in rows if not r[1])
    assert all(r[1] == "Row" for r in ok) and all(r[1] == "" for r in err)
    assert len({r[3] for r in ok}) == len(ok)  # every id once
