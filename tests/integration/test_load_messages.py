"""The messages and exit codes of the interrupted, refused and invalid-input paths: exact counts, the job named."""

from __future__ import annotations

import csv
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fixtures.emulator import emulator_connection
from test_load_resume import SFBULK, count, env_for, journal, stored_emails

from sfbulk.bulk.journal import open_journal
from sfbulk.bulk.load import LoadOptions, load_csv
from sfbulk.cli import cli
from sfbulk.errors import BulkInputError, PollTimeout


def connect(emu: Any, tmp_path: Path) -> Any:
    return emulator_connection(emu, tmp_path / "registry")


def rows_file(path: Path, n: int, tag: str, *, bad_row: int | None = None) -> None:
    with path.open("wb") as fh:
        fh.write(b"LastName,Email\n")
        for i in range(1, n + 1):
            last = b"caf\xe9" if i == bad_row else f"L{i}".encode()
            fh.write(last + f",{tag}{i}@example.com\n".encode())


def job_batches(emu: Any, job_id: str) -> int:
    return int(
        emu.store.reader().execute("SELECT COUNT(*) FROM batches WHERE job_id = ?", (job_id,)).fetchone()[0]
    )


def test_invalid_byte_mid_file_names_exactly_the_rows_sent_and_a_fixed_file_resumes(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emu = emulator_factory()
    src = tmp_path / "in.csv"
    rows_file(src, 3_000, "bad.", bad_row=2_501)
    runner, env = CliRunner(), env_for(emu, tmp_path)
    args = ["load", str(src), "--object", "Contact", "--batch-size", "1000", "--no-progress"]
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    job = out.split("job ", 1)[1].split(":", 1)[0]
    assert (
        f"rows 1 to 2,000 were handled in job {job}: 2,000 sent in 2 batches, 2,000 succeeded, 0 failed "
        f"(results so far in {tmp_path / 'in.success.csv'}.part and {tmp_path / 'in.error.csv'}.part); rows "
        "2,001 and after were not sent: fix the file from row 2,001 on and run the same command again"
    ) in out
    assert "Traceback" not in result.output
    emu.wait_idle(10)
    assert len(stored_emails(emu, "bad.")) == 2_000 == len(set(stored_emails(emu, "bad.")))
    # Fixing the bad row and running the same command sends the rest into the same job, once.
    src.write_bytes(src.read_bytes().replace(b"caf\xe9", b"cafe"))
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert f"job {job}: resuming (2 batches recorded as sent" in result.output
    assert f"job {job}: 3,000 rows in 3 batches, 3,000 succeeded, 0 failed" in result.output
    emu.wait_idle(10)
    assert len(stored_emails(emu, "bad.")) == 3_000 == len(set(stored_emails(emu, "bad.")))
    with (tmp_path / "in.success.csv").open(encoding="utf-8", newline="") as fh:
        assert [r[1] for r in list(csv.reader(fh))[1:]] == [f"bad.{i}@example.com" for i in range(1, 3_001)]
    assert not (tmp_path / "in.success.csv.journal").exists()


def test_a_file_changed_where_rows_were_sent_is_refused(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "in.csv"
    rows_file(src, 3_000, "chg2.", bad_row=2_501)
    runner, env = CliRunner(), env_for(emu, tmp_path)
    args = ["load", str(src), "--object", "Contact", "--batch-size", "1000", "--no-progress"]
    assert runner.invoke(cli, args, env=env).exit_code == 2
    data = src.read_bytes().replace(b"caf\xe9", b"cafe").replace(b"L10,", b"L10x,")  # row 10 was sent
    src.write_bytes(data)
    result = runner.invoke(cli, args, env=env)
    assert result.exit_code == 2, result.output
    assert "changed since job" in result.output and "--restart" in result.output
    emu.wait_idle(10)
    assert len(stored_emails(emu, "chg2.")) == 2_000


def test_invalid_byte_in_the_first_batch_sends_nothing(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "in.csv"
    rows_file(src, 10, "first.", bad_row=1)
    result = CliRunner().invoke(
        cli, ["load", str(src), "--object", "Contact", "--no-progress"], env=env_for(emu, tmp_path)
    )
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert "no row was sent: job 750" in out and "got no batch and was closed" in out
    assert "rows before it were sent" not in out
    assert stored_emails(emu, "first.") == []


def test_changed_input_different_command_lock_and_restart(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(processing_delay_ms=400)
    conn = connect(emu, tmp_path)
    src = tmp_path / "in.csv"
    rows_file(src, 30, "chg.")
    with pytest.raises(PollTimeout) as info:
        load_csv(conn, str(src), LoadOptions(object="Contact", batch_size=10, timeout=0.2, poll_initial=0.05))
    job = info.value.job_id
    assert getattr(info.value, "journal", "") == str(tmp_path / "in.success.csv.journal")

    runner, env = CliRunner(), env_for(emu, tmp_path)
    # another command writing the same files: refused, naming what differs
    result = runner.invoke(
        cli, ["load", str(src), "--object", "Contact", "--batch-size", "20", "--no-progress"], env=env
    )
    assert result.exit_code == 2
    assert f"unfinished run of another command (job {job}; it differs in --batch-size)" in result.output
    # a second run while one holds the journal
    held = open_journal(str(tmp_path / "in.success.csv.journal"))
    try:
        with pytest.raises(BulkInputError, match="another sfbulk run is working on the same files"):
            load_csv(conn, str(src), LoadOptions(object="Contact", batch_size=10))
    finally:
        held.close()
    # the input changed since: refused, naming the file and --restart
    rows_file(src, 31, "chg.")
    result = runner.invoke(
        cli, ["load", str(src), "--object", "Contact", "--batch-size", "10", "--no-progress"], env=env
    )
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert f"{src} changed since job {job} started loading it" in out and "--restart" in out
    # --restart aborts the old job and loads the file from the start
    result = runner.invoke(
        cli,
        ["load", str(src), "--object", "Contact", "--batch-size", "10", "--no-progress", "--restart"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert f"job {job}: aborted (--restart)" in result.output
    new_job = result.output.split("created (an interrupted")[0].rsplit("job ", 1)[1].rstrip(": ")
    assert new_job != job and f"job {new_job}: 31 rows in 4 batches, 31 succeeded, 0 failed" in result.output
    assert not (tmp_path / "in.success.csv.journal").exists()
    conn.close()


def test_a_batch_failing_for_every_batch_stops_the_uploads(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    emu.faults.configure(latency_ms=150)  # uploads slower than Salesforce failing the first batch
    src = tmp_path / "in.csv"
    src.write_text("LastName,Nme__c\n" + "".join(f"L{i},x\n" for i in range(200)))
    result = CliRunner().invoke(
        cli,
        [
            "load",
            str(src),
            "--object",
            "Contact",
            "--batch-size",
            "10",
            "--concurrency",
            "1",
            "--no-progress",
        ],
        env=env_for(emu, tmp_path),
    )
    assert result.exit_code == 1, result.output
    out = result.output
    job = out.split("job ", 1)[1].split(":", 1)[0]
    assert "failed as a whole: InvalidBatch : Field name not found : Nme__c" in out
    assert "the remaining batches are not uploaded" in out
    sent = job_batches(emu, job)
    assert sent < 20
    assert f"{200 - sent * 10:,} rows were not sent (they are in the error file)" in out
    assert f"{sent * 10} \u00d7 InvalidBatch : Field name not found : Nme__c\n" in out
    with (tmp_path / "in.error.csv").open(encoding="utf-8", newline="") as fh:
        errors = list(csv.reader(fh))[1:]
    assert [r[0] for r in errors] == [f"L{i}" for i in range(200)]  # every row, in input order
    assert all(r[-1].startswith("InvalidBatch : Field name not found : Nme__c") for r in errors)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_finishes_in_flight_requests_names_the_job_and_exits_130(
    signum: int, emulator_factory: Any, tmp_path: Path
) -> None:
    emu = emulator_factory(processing_delay_ms=100)
    emu.faults.configure(latency_ms=100)
    src = tmp_path / "in.csv"
    # 30 batches: after the test sees 3 sent, 27 more uploads (100 ms each, two at a time, about
    # 1.4 s) are still ahead when the signal lands. With 10, a loaded machine that keeps the test
    # waiting 0.35 s between reading the journal and signalling can let the load finish first.
    rows_file(src, 3_000, "int.")
    env = env_for(emu, tmp_path)
    args = [
        SFBULK,
        "load",
        str(src),
        "--object",
        "Contact",
        "--batch-size",
        "100",
        "--concurrency",
        "2",
        "--no-progress",
    ]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    jpath = tmp_path / "in.success.csv.journal"
    deadline = time.monotonic() + 30
    while count(journal(jpath), "sent") < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err
    records = journal(jpath)
    job = next(r["id"] for r in records if r["t"] == "job")
    sent = count(records, "sent")
    assert 3 <= sent < 30
    assert (
        f"interrupted: job {job} stays open in Salesforce with {sent} batches "
        f"({sent * 100:,} rows) sent so far" in err
    )
    assert "re-run the same command to resume" in err and "Traceback" not in err
    emu.wait_idle(10)
    assert job_batches(emu, job) == sent  # every in-flight upload finished and was journaled
    emu.faults.configure()
    done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"job {job}: 3,000 rows in 30 batches, 3,000 succeeded, 0 failed" in done.stderr
    emu.wait_idle(10)
    emails = stored_emails(emu, "int.")
    assert len(emails) == len(set(emails)) == 3_000


def test_retry_failed_resumes_after_a_timeout(emulator_factory: Any, tmp_path: Path) -> None:
    """--retry-failed reads a temporary copy of the error file: the journal follows the error file itself."""
    emu = emulator_factory()
    src = tmp_path / "in.csv"
    src.write_text(
        "LastName,Email\n" + "".join(f"{'' if i % 3 == 0 else 'L'},r{i}@example.com\n" for i in range(30))
    )
    runner, env = CliRunner(), env_for(emu, tmp_path)
    result = runner.invoke(cli, ["load", str(src), "--object", "Contact", "--no-progress"], env=env)
    assert result.exit_code == 1 and "10 × REQUIRED_FIELD_MISSING" in result.output, result.output
    errors = tmp_path / "in.error.csv"
    errors.write_text(errors.read_text().replace("\n,r", "\nFixed,r"))
    # batches take 2 s, the run waits 0.2 s: it times out however slowly the machine sends them
    # (with 0.5 s, a loaded machine's upload outlasted the batches and the run ended first)
    emu.service.processing_delay = 2.0
    retry = [
        "load",
        "--retry-failed",
        str(errors),
        "--object",
        "Contact",
        "--batch-size",
        "5",
        "--no-progress",
    ]
    result = runner.invoke(cli, [*retry, "--timeout", "0.2"], env=env)
    assert result.exit_code == 3, result.output
    assert (
        "in.error.retry.success.csv.journal keeps its progress: re-run the same command to resume"
        in " ".join(result.output.split())
    )
    emu.service.processing_delay = 0.0
    result = runner.invoke(cli, retry, env=env)
    assert result.exit_code == 0, result.output
    assert (
        "resuming (2 batches recorded as sent" in result.output
        and "10 rows in 2 batches, 10 succeeded" in result.output
    )
    emu.wait_idle(10)
    assert len(stored_emails(emu, "r")) == len(set(stored_emails(emu, "r"))) == 30


@pytest.mark.slow
def test_ctrl_c_after_every_batch_was_sent_says_the_job_is_closed(
    emulator_factory: Any, tmp_path: Path
) -> None:
    emu = emulator_factory(processing_delay_ms=1_500)
    src = tmp_path / "in.csv"
    rows_file(src, 300, "closed.")
    env = env_for(emu, tmp_path)
    args = [SFBULK, "load", str(src), "--object", "Contact", "--batch-size", "100", "--no-progress"]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    jpath = tmp_path / "in.success.csv.journal"
    deadline = time.monotonic() + 30
    job = None
    while time.monotonic() < deadline:
        job = next((r["id"] for r in journal(jpath) if r["t"] == "job"), None)
        state = (
            emu.store.reader().execute("SELECT state FROM jobs WHERE id = ?", (job,)).fetchone()
            if job
            else None
        )
        if state is not None and state[0] == "Closed":
            break
        time.sleep(0.01)
    # The emulator stores Closed before its answer reaches the client: give the answer time to land
    # (on a loaded machine the signal could otherwise arrive first). Batches take 1.5 s to process.
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert (
        f"interrupted: job {job} is closed in Salesforce (every batch was sent) with 3 batches (300 rows) sent"
        in err
    ), err
    done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"job {job}: 300 rows in 3 batches, 300 succeeded, 0 failed" in done.stderr
