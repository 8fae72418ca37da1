"""sfbulk load / extract end to end against the emulator: files, exit codes, tokens, faults."""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fixtures.emulator import cli_env, emulator_connection

from sfbulk.bulk.extract import ExtractOptions, extract
from sfbulk.bulk.load import LoadOptions, Progress, load_csv
from sfbulk.bulk.retry import RetryPolicy
from sfbulk.cli import cli
from sfbulk.errors import PollTimeout


def connect(emu: Any, tmp_path: Path) -> Any:
    return emulator_connection(emu, tmp_path / "registry")


def write_contacts(path: Path, n: int, *, tag: str, missing_every: int = 0) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(["FirstName", "LastName", "Email", "Description"])
        for i in range(n):
            last = "" if missing_every and i % missing_every == 3 else f"Läst{i}"
            w.writerow([f"F{i}", last, f"{tag}{i}@example.com", f'line one\nline "two" {i}, ünïcode'])


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_cli_load_retry_and_extract(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "contacts.csv"
    write_contacts(src, 2_500, tag="cli", missing_every=500)
    runner = CliRunner()
    env = cli_env(emu, tmp_path)
    result = runner.invoke(
        cli,
        [
            "load",
            str(src),
            "--object",
            "Contact",
            "--batch-size",
            "1000",
            "--concurrency",
            "3",
            "--no-progress",
        ],
        env=env,
    )
    assert result.exit_code == 1, result.output  # some rows failed
    assert "2,500 rows in 3 batches, 2,495 succeeded, 5 failed" in result.output
    ok, err = read_csv(tmp_path / "contacts.success.csv"), read_csv(tmp_path / "contacts.error.csv")
    assert ok[0] == ["FirstName", "LastName", "Email", "Description", "sf__Id", "sf__Created", "sf__Error"]
    assert len(ok) == 2_496 and len(err) == 6
    # input order within each file, ids of the right prefix, the multi-line cell intact
    assert [r[2] for r in ok[1:4]] == ["cli0@example.com", "cli1@example.com", "cli2@example.com"]
    assert all(r[4].startswith("003") and len(r[4]) == 18 and r[5] == "true" for r in ok[1:])
    assert ok[1][3] == 'line one\nline "two" 0, ünïcode'
    assert [r[2] for r in err[1:]] == [f"cli{i}@example.com" for i in (3, 503, 1003, 1503, 2003)]
    assert all(r[6].startswith("REQUIRED_FIELD_MISSING") for r in err[1:])

    # fix the failed rows in the error file and reload only them
    fixed = [err[0]] + [[*r[:1], "Fixed", *r[2:]] for r in err[1:]]
    with (tmp_path / "contacts.error.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(fixed)
    result = runner.invoke(
        cli,
        [
            "load",
            "--retry-failed",
            str(tmp_path / "contacts.error.csv"),
            "--object",
            "Contact",
            "--no-progress",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "5 rows in 1 batches, 5 succeeded, 0 failed" in result.output
    assert len(read_csv(tmp_path / "contacts.error.retry.success.csv")) == 6

    out = tmp_path / "out.csv"
    result = runner.invoke(
        cli,
        [
            "extract",
            "SELECT Id, Email, Description FROM Contact",
            "--out",
            str(out),
            "--pk-chunking",
            "700",
            "--no-progress",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    rows = read_csv(out)
    assert rows[0] == ["Id", "Email", "Description"]
    emails = [r[1] for r in rows[1:]]
    assert len(emails) == len(set(emails)) == 2_500
    assert {f"cli{i}@example.com" for i in range(2_500)} == set(emails)


def test_cli_reports_bad_input_and_missing_settings(emulator: Any, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"LastName\ncaf\xe9\n")
    result = runner.invoke(cli, ["load", str(bad), "--object", "Contact"], env=cli_env(emulator, tmp_path))
    assert result.exit_code == 2 and "not valid UTF-8" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli, ["load", str(bad), "--object", "Contact"], env={"SFBULK_API_URL": ""})
    assert result.exit_code == 2 and "no Salesforce URL" in result.output


def test_token_expires_mid_load(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(token_ttl=0.5)
    src = tmp_path / "t.csv"
    write_contacts(src, 12_000, tag="tok")
    conn = connect(emu, tmp_path)

    class ExpireEveryFewBatches(Progress):
        """Besides the short lifetime, revoke every token after every second batch is sent."""

        def __init__(self) -> None:
            self.batches = 0

        def sent(self, rows: int) -> None:
            self.batches += 1
            if self.batches % 2 == 0:
                emu.expire_tokens()

    summary = load_csv(
        conn,
        str(src),
        LoadOptions(object="Contact", batch_size=1_000, concurrency=3, poll_initial=0.2),
        ExpireEveryFewBatches(),
    )
    assert (summary.rows, summary.succeeded, summary.failed) == (12_000, 12_000, 0)
    assert conn.auth.refresh_count >= 3  # tokens really expired during the job (refreshes may coalesce)
    out = tmp_path / "t-out.csv"
    extract(conn, "SELECT Email FROM Contact", str(out))
    emails = [r[0] for r in read_csv(out)[1:]]
    assert len(emails) == len(set(emails)) == 12_000  # no batch lost, none sent twice
    conn.close()


@pytest.mark.slow
def test_200k_rows_through_503s_and_resets(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(processing_delay_ms=0)
    src = tmp_path / "big.csv"
    with src.open("w", encoding="utf-8", newline="") as fh:
        fh.write("LastName,Email\n")
        fh.writelines(f"L{i},big{i}@example.com\n" for i in range(200_000))
    conn = connect(emu, tmp_path)
    emu.faults.configure(error_rate=0.05, reset_rate=0.05, seed=7)
    policy = RetryPolicy(attempts=12, initial=0.02, cap=0.5)
    started = time.monotonic()
    summary = load_csv(
        conn,
        str(src),
        LoadOptions(object="Contact", concurrency=4, poll_initial=0.1, poll_cap=1.0, retry=policy),
    )
    assert (summary.rows, summary.succeeded, summary.failed) == (200_000, 200_000, 0)
    out = tmp_path / "big-out.csv"
    ext = extract(
        conn,
        "SELECT Email FROM Contact",
        str(out),
        ExtractOptions(pk_chunking="50000", poll_initial=0.1, poll_cap=1.0, retry=policy),
    )
    emu.faults.configure()
    assert sum(emu.faults.injected.values()) > 0 and summary.retries + ext.retries > 0
    with out.open(encoding="utf-8") as fh:
        assert fh.readline() == '"Email"\n'
        emails = [line.strip().strip('"') for line in fh]
    assert len(emails) == 200_000 and len(set(emails)) == 200_000  # loaded once, extracted once
    assert time.monotonic() - started < 60
    conn.close()


def test_poll_timeout_names_the_job_and_its_batches(emulator_factory: Any, tmp_path: Path) -> None:
    # each batch takes 2 s; the 0.4 s timeout counts from the last upload, so all three are pending
    emu = emulator_factory(processing_delay_ms=2_000)
    src = tmp_path / "slow.csv"
    write_contacts(src, 30, tag="slow")
    conn = connect(emu, tmp_path)
    with pytest.raises(PollTimeout) as info:
        load_csv(conn, str(src), LoadOptions(object="Contact", batch_size=10, timeout=0.4, poll_initial=0.05))
    err = info.value
    # The results so far are in .part files (never under the final name before they are complete),
    # and the journal is kept for a re-run.
    assert read_csv(tmp_path / "slow.success.csv.part")[0][-1] == "sf__Error"
    assert not (tmp_path / "slow.success.csv").exists()
    assert (tmp_path / "slow.success.csv.journal").exists()
    assert err.job_id.startswith("750") and len(err.batch_ids) == 3
    assert err.job_id in str(err) and all(b in str(err) for b in err.batch_ids)
    # A re-run with more time resumes the same job: nothing sent twice, the results complete.
    summary = load_csv(
        conn, str(src), LoadOptions(object="Contact", batch_size=10, timeout=30, poll_initial=0.05)
    )
    assert (summary.job_id, summary.resumed, summary.succeeded, summary.failed) == (err.job_id, True, 30, 0)
    assert len(read_csv(tmp_path / "slow.success.csv")) == 31
    assert not (tmp_path / "slow.success.csv.journal").exists()
    batches = conn.invoke("listBatches", jobId=err.job_id).content
    assert batches.count(b"<batchInfo>") == 3
    conn.close()


def test_update_upsert_and_delete_from_success_ids(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    conn = connect(emu, tmp_path)
    src = tmp_path / "ins.csv"
    write_contacts(src, 40, tag="upd")
    ins = load_csv(conn, str(src), LoadOptions(object="Contact", serial=True, batch_size=15))
    assert (ins.succeeded, ins.batches) == (40, 3)
    ids = [r[4] for r in read_csv(Path(ins.success_path))[1:]]
    upd = tmp_path / "upd.csv"
    upd.write_text(
        "Id,LastName\n" + "".join(f"{i},Renamed{n}\n" for n, i in enumerate(ids)) + "001000000000000AAA,X\n"
    )
    summary = load_csv(conn, str(upd), LoadOptions(object="Contact", operation="update"))
    assert (summary.succeeded, summary.failed) == (40, 1)
    assert read_csv(Path(summary.error_path))[1][0] == "001000000000000AAA"
    ups = tmp_path / "ups.csv"
    ups.write_text("Email,LastName\nupd0@example.com,Upserted\nnew@example.com,Created\n")
    summary = load_csv(conn, str(ups), LoadOptions(object="Contact", operation="upsert", external_id="Email"))
    assert [r[-2] for r in read_csv(Path(summary.success_path))[1:]] == ["false", "true"]  # sf__Created
    dele = tmp_path / "del.csv"
    dele.write_text("Id\n" + "".join(f"{i}\n" for i in ids))
    assert load_csv(conn, str(dele), LoadOptions(object="Contact", operation="delete")).succeeded == 40
    out = tmp_path / "left.csv"
    extract(conn, "SELECT LastName FROM Contact", str(out))
    assert [r[0] for r in read_csv(out)[1:]] == ["Created"]
    conn.close()


def test_failed_batches_send_every_row_to_the_error_file(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    conn = connect(emu, tmp_path)
    src = tmp_path / "badfield.csv"
    src.write_text("LastName,NoSuchField__c\n" + "".join(f"L{i},x\n" for i in range(25)))
    summary = load_csv(conn, str(src), LoadOptions(object="Contact", batch_size=10))
    assert (summary.batches, summary.succeeded, summary.failed) == (3, 0, 25)
    errors = read_csv(Path(summary.error_path))
    assert [r[0] for r in errors[1:]] == [f"L{i}" for i in range(25)]
    assert all("InvalidBatch" in r[-1] and "NoSuchField__c" in r[-1] for r in errors[1:])
    conn.close()


def test_extract_joins_several_result_files_in_order(emulator_factory: Any, tmp_path: Path) -> None:
    """A result split into several files (downloaded side by side) comes out whole, in order, one header."""
    emu = emulator_factory(rows_per_result_file=300)
    src = tmp_path / "c.csv"
    write_contacts(src, 1_000, tag="multi")
    conn = connect(emu, tmp_path)
    assert load_csv(conn, str(src), LoadOptions(object="Contact")).succeeded == 1_000
    out = tmp_path / "out.csv"
    summary = extract(
        conn, "SELECT Email, Description FROM Contact ORDER BY Email", str(out), ExtractOptions(concurrency=3)
    )
    assert (summary.rows, summary.result_files) == (1_000, 4)
    rows = read_csv(out)
    assert rows[0] == ["Email", "Description"]
    assert [r[0] for r in rows[1:]] == sorted(f"multi{i}@example.com" for i in range(1_000))
    assert rows[1][1].startswith('line one\nline "two"')
    conn.close()
