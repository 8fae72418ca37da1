"""``sfbulk load --api 2`` end to end against the emulator's Bulk API 2.0: several jobs, results in input order."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from fixtures.emulator import cli_env, emulator_connection

from sfbulk.bulk.extract import ExtractOptions
from sfbulk.bulk.load import LoadOptions, Progress
from sfbulk.bulk.retry import RetryPolicy
from sfbulk.bulk.v2.extract import extract_v2
from sfbulk.bulk.v2.load import load_csv_v2
from sfbulk.cli import cli
from tests.integration.test_bulk_load import connect, read_csv, write_contacts


def connect2(emu: Any, tmp_path: Path) -> Any:
    """A salesforcebulkv2 connection (the pipeline also takes a 1.0 one and opens its v2 sibling)."""
    return emulator_connection(emu, tmp_path / "registry", "salesforcebulkv2")


def stored(emu: Any, tag: str) -> list[str]:
    rows = emu.store.reader().execute('SELECT "Email" FROM "sobj_Contact" WHERE "Email" LIKE ?', (tag + "%",))
    return [r[0] for r in rows]


def test_cli_load_api2_splits_into_jobs_and_keeps_input_order(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "contacts.csv"
    write_contacts(src, 3_000, tag="v2cli", missing_every=250)
    result = CliRunner().invoke(
        cli,
        [
            "load",
            str(src),
            "--object",
            "Contact",
            "--api",
            "2",
            "--max-job-bytes",
            "60000",
            "--concurrency",
            "3",
            "--no-progress",
            "--progress-interval",
            "0.1",
        ],
        env=cli_env(emu, tmp_path),
    )
    assert result.exit_code == 1, result.output  # some rows fail by design (no LastName)
    jobs = (
        emu.store.reader()
        .execute("SELECT count(*) FROM bulk2_jobs WHERE job_type = 'V2Ingest'")
        .fetchone()[0]
    )
    assert jobs >= 4
    assert f"rows in {jobs} jobs (Bulk API 2.0), 2,988 succeeded, 12 failed" in result.output
    assert f"3,000 sent, jobs {jobs}/{jobs} done, 12 failed" in result.output  # the progress line counts jobs
    ok = read_csv(tmp_path / "contacts.success.csv")
    err = read_csv(tmp_path / "contacts.error.csv")
    assert (
        ok[0]
        == err[0]
        == ["FirstName", "LastName", "Email", "Description", "sf__Id", "sf__Created", "sf__Error"]
    )
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
    summary = load_csv_v2(
        connect(emu, tmp_path),
        str(src),
        LoadOptions(object="Contact", concurrency=2, retry=RetryPolicy(initial=0.01)),
        max_job_bytes=2_000,
    )
    ok = read_csv(tmp_path / "dups.success.csv")[1:]
    err = read_csv(tmp_path / "dups.error.csv")[1:]
    assert summary.batches > 3
    assert len(ok) == sum(1 for r in rows if r[1]) and len(err) == sum(1 for r in rows if not r[1])
    assert all(r[1] == "Row" for r in ok) and all(r[1] == "" for r in err)
    assert len({r[3] for r in ok}) == len(ok)  # every id once


def test_cli_extract_api2_parallel_pages_and_locator_chain(emulator_factory: Any, tmp_path: Path) -> None:
    """resultPages (API 62.0) and the Sforce-Locator chain (API 57.0) give the same file, rows in order."""
    emu = emulator_factory()
    src = tmp_path / "contacts.csv"
    write_contacts(src, 1_500, tag="v2x")
    env = cli_env(emu, tmp_path)
    runner = CliRunner()
    assert (
        runner.invoke(
            cli, ["load", str(src), "--object", "Contact", "--api", "2", "--no-progress"], env=env
        ).exit_code
        == 0
    )
    soql = "SELECT Email, Description FROM Contact WHERE Email LIKE 'v2x%' ORDER BY Email"
    outputs = {}
    for version in ("62.0", "57.0"):
        out = tmp_path / f"out-{version}.csv"
        conn = connect(emu, tmp_path)
        conn.params = type(conn.params)(**{**conn.params.__dict__, "api_version": version})
        summary = extract_v2(conn, soql, str(out), ExtractOptions(concurrency=3), page_records=200)
        assert summary.rows == 1_500 and summary.result_files == 8
        outputs[version] = out.read_bytes()
    assert outputs["62.0"] == outputs["57.0"]
    rows = read_csv(tmp_path / "out-62.0.csv")
    assert rows[0] == ["Email", "Description"]
    assert [r[0] for r in rows[1:]] == sorted(f"v2x{i}@example.com" for i in range(1_500))
    result = runner.invoke(
        cli, ["extract", soql, "--out", str(tmp_path / "cli.csv"), "--api", "2", "--no-progress"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "1,500 records (Bulk API 2.0, 1 result pages)" in result.output
    assert (tmp_path / "cli.csv").read_bytes() == outputs["62.0"]


def test_tokens_expiring_mid_job_are_refreshed_and_replayed(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(token_ttl=0.5)
    src = tmp_path / "t.csv"
    write_contacts(src, 6_000, tag="v2tok")
    conn = connect2(emu, tmp_path)

    class ExpireOnEveryUpload(Progress):
        def sent(self, rows: int) -> None:
            emu.expire_tokens()

    summary = load_csv_v2(
        conn,
        str(src),
        LoadOptions(object="Contact", concurrency=3, poll_initial=0.2),
        ExpireOnEveryUpload(),
        max_job_bytes=200_000,
    )
    assert (summary.rows, summary.succeeded, summary.failed) == (6_000, 6_000, 0) and summary.batches >= 3
    assert conn.auth.refresh_count >= 3
    emu.expire_tokens()
    out = tmp_path / "t-out.csv"
    extract_v2(conn, "SELECT Email FROM Contact WHERE Email LIKE 'v2tok%'", str(out), page_records=1_000)
    emails = [r[0] for r in read_csv(out)[1:]]
    assert len(emails) == len(set(emails)) == 6_000
    conn.close()


def test_load_and_extract_through_503s_and_resets(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "f.csv"
    with src.open("w", encoding="utf-8", newline="") as fh:
        fh.write("LastName,Email\n")
        fh.writelines(f"L{i},v2f{i}@example.com\n" for i in range(20_000))
    conn = connect(emu, tmp_path)
    emu.faults.configure(error_rate=0.08, reset_rate=0.08, seed=11)
    policy = RetryPolicy(attempts=12, initial=0.02, cap=0.3)
    summary = load_csv_v2(
        conn,
        str(src),
        LoadOptions(object="Contact", concurrency=4, poll_initial=0.05, poll_cap=0.5, retry=policy),
        max_job_bytes=100_000,
    )
    out = tmp_path / "f-out.csv"
    ext = extract_v2(
        conn,
        "SELECT Email FROM Contact WHERE Email LIKE 'v2f%'",
        str(out),
        ExtractOptions(poll_initial=0.05, poll_cap=0.5, retry=policy),
        page_records=2_000,
    )
    emu.faults.configure()
    assert (summary.rows, summary.succeeded, summary.failed) == (20_000, 20_000, 0)
    assert sum(emu.faults.injected.values()) > 0 and summary.retries + ext.retries > 0
    assert sorted(stored(emu, "v2f")) == sorted(f"v2f{i}@example.com" for i in range(20_000))  # once each
    ok = read_csv(tmp_path / "f.success.csv")
    assert [r[1] for r in ok[1:]] == [f"v2f{i}@example.com" for i in range(20_000)]
    assert ext.rows == 20_000
    conn.close()


def test_results_out_of_input_order_are_matched_by_content(
    emulator_factory: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """When a result file is not in input order (Salesforce promises none), the rows written by the
    ordered fast path are cut back and the job is matched by content: the same files as in order."""
    from sfbulk.bulk.v2 import match

    emu = emulator_factory()
    src = tmp_path / "c.csv"
    write_contacts(src, 2_000, tag="v2ord", missing_every=300)
    options = LoadOptions(
        object="Contact",
        concurrency=2,
        success_path=str(tmp_path / "a.ok.csv"),
        error_path=str(tmp_path / "a.err.csv"),
    )
    load_csv_v2(connect(emu, tmp_path), str(src), options, max_job_bytes=50_000)
    expected = [read_csv(tmp_path / "a.ok.csv"), read_csv(tmp_path / "a.err.csv")]
    real_take, calls = match.OrderedMatch.take, [0]

    def disorder_after_some_rows(self: Any, cells: list[str]) -> Any:
        calls[0] += 1
        if calls[0] % 500 == 0:
            raise match.OutOfOrder
        return real_take(self, cells)

    monkeypatch.setattr(match.OrderedMatch, "take", disorder_after_some_rows)
    options = LoadOptions(
        object="Contact",
        operation="upsert",
        external_id="Email",
        concurrency=2,
        success_path=str(tmp_path / "b.ok.csv"),
        error_path=str(tmp_path / "b.err.csv"),
    )
    load_csv_v2(connect(emu, tmp_path), str(src), options, max_job_bytes=50_000)
    ok, err = read_csv(tmp_path / "b.ok.csv"), read_csv(tmp_path / "b.err.csv")
    assert calls[0] >= 1_000
    assert [r[:4] for r in ok] == [r[:4] for r in expected[0]] and [r[:4] for r in err] == [
        r[:4] for r in expected[1]
    ]
    assert [r[4] for r in ok[1:]] == [r[4] for r in expected[0][1:]]  # the upsert found the same records
    assert all(r[5] == "false" for r in ok[1:])  # updated, not created


def test_cli_api2_retry_failed_and_flags_of_the_other_api(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "r.csv"
    write_contacts(src, 300, tag="v2retry", missing_every=100)
    env = cli_env(emu, tmp_path)
    runner = CliRunner()
    first = runner.invoke(
        cli, ["load", str(src), "--object", "Contact", "--api", "2", "--no-progress"], env=env
    )
    assert first.exit_code == 1 and "297 succeeded, 3 failed" in first.output, first.output
    fixed = tmp_path / "r.error.csv"
    rows = read_csv(fixed)
    rows[1:] = [[*r[:1], "Fixed", *r[2:]] for r in rows[1:]]
    with fixed.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    again = runner.invoke(
        cli,
        ["load", "--retry-failed", str(fixed), "--object", "Contact", "--api", "2", "--no-progress"],
        env=env,
    )
    assert again.exit_code == 0 and "3 rows in 1 job (Bulk API 2.0), 3 succeeded, 0 failed" in again.output
    assert [r[2] for r in read_csv(tmp_path / "r.error.retry.success.csv")[1:]] == [r[2] for r in rows[1:]]
    for args, flag in (
        (["load", str(src), "--object", "Contact", "--api", "2", "--serial"], "--serial"),
        (["load", str(src), "--object", "Contact", "--api", "2", "--batch-size", "10"], "--batch-size"),
        (["load", str(src), "--object", "Contact", "--max-job-bytes", "5000"], "--max-job-bytes"),
        (
            [
                "extract",
                "SELECT Id FROM Contact",
                "--out",
                str(tmp_path / "o.csv"),
                "--api",
                "2",
                "--pk-chunking",
            ],
            "--pk-chunking",
        ),
        (
            ["extract", "SELECT Id FROM Contact", "--out", str(tmp_path / "o.csv"), "--max-records", "10"],
            "--max-records",
        ),
    ):
        result = runner.invoke(cli, [*args, "--no-progress"], env=env)
        assert result.exit_code == 2 and flag in result.output, (args, result.output)
    assert not (tmp_path / "o.csv").exists()
