"""kill -9 the real ``sfbulk load`` process at many points, re-run the same command: every row exactly once.

The emulator runs in the test process (its store is counted directly); the CLI is a real subprocess
(``.venv/bin/sfbulk``) killed with SIGKILL. Windows to kill in come from the emulator's request
latency and per-batch processing delay; the kill point is chosen by polling the load's journal (the
same file a re-run reads), never by a hook in the code under test.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fixtures.emulator import cli_env

ROWS, BATCH = 1_200, 100  # 12 batches
BATCHES = ROWS // BATCH
FAIL_EVERY = 97  # rows with no LastName fail (REQUIRED_FIELD_MISSING): both result files get rows

SFBULK = str(Path(sys.executable).with_name("sfbulk"))


def env_for(emu: Any, tmp_path: Path) -> dict[str, str]:
    """This process's environment plus the emulator's (the CLI runs as a subprocess)."""
    return {**os.environ, **cli_env(emu, tmp_path)}


def write_input(path: Path, tag: str) -> list[str]:
    emails = []
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["FirstName", "LastName", "Email", "Description"])
        for i in range(ROWS):
            email = f"{tag}{i}@example.com"
            emails.append(email)
            w.writerow([f"F{i}", "" if i % FAIL_EVERY == 5 else f"L{i}", email, f'multi\nline, "{i}"'])
    return emails


def journal(path: Path) -> list[dict[str, Any]]:
    """The complete records of the journal at ``path`` (none if it does not exist yet)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for line in data.split(b"\n")[:-1]:
        try:
            records.append(json.loads(line))
        except ValueError:
            break
    return records


def count(records: list[dict[str, Any]], kind: str) -> int:
    return sum(1 for r in records if r.get("t") == kind)


def load_args(src: Path) -> list[str]:
    return [
        SFBULK,
        "load",
        str(src),
        "--object",
        "Contact",
        "--batch-size",
        str(BATCH),
        "--concurrency",
        "2",
        "--no-progress",
    ]


def start(src: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(load_args(src), env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=src.parent)


def merged_rows(jpath: Path) -> int:
    """Rows in the success .part file next to the journal ``jpath`` (merged so far, checkpointed or not)."""
    try:
        return (jpath.parent / jpath.name.replace(".journal", ".part")).read_bytes().count(b"@example.com")
    except FileNotFoundError:
        return 0


def kill_when(
    proc: subprocess.Popen[Any],
    jpath: Path,
    when: Callable[..., bool],
    timeout: float = 30.0,
    signum: int = signal.SIGKILL,
) -> list[dict[str, Any]]:
    """SIGKILL ``proc`` as soon as its journal (and, if ``when`` takes a second argument, the rows
    merged into the success .part file) satisfy ``when``; returns the journal seen then."""
    deadline = time.monotonic() + timeout
    wants_rows = when.__code__.co_argcount > 1
    while time.monotonic() < deadline:
        records = journal(jpath)
        if when(records, merged_rows(jpath)) if wants_rows else when(records):
            proc.send_signal(signum)
            if signum == signal.SIGKILL:
                proc.wait(timeout=10)
            return records
        if proc.poll() is not None:
            pytest.fail(f"the load ended (exit {proc.returncode}) before the kill point; journal: {records}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"kill point not reached in {timeout} s; journal: {journal(jpath)}")


def stored_emails(emu: Any, tag: str) -> list[str]:
    rows = emu.store.reader().execute('SELECT "Email" FROM "sobj_Contact" WHERE "Email" LIKE ?', (tag + "%",))
    return [r[0] for r in rows]


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def check_complete(emu: Any, tmp_path: Path, src: Path, emails: list[str], tag: str) -> None:
    """Every input row exactly once in the org; the two result files together hold every input row,
    each in input order; nothing left behind that a later run could take for unfinished work."""
    emu.wait_idle(10)
    stored = stored_emails(emu, tag)
    expected_ok = [e for i, e in enumerate(emails) if i % FAIL_EVERY != 5]
    assert len(stored) == len(set(stored)), "a row was loaded twice"
    assert sorted(stored) == sorted(expected_ok)
    ok = read_csv(tmp_path / "in.success.csv")
    err = read_csv(tmp_path / "in.error.csv")
    assert ok[0][-3:] == err[0][-3:] == ["sf__Id", "sf__Created", "sf__Error"]
    assert [r[2] for r in ok[1:]] == expected_ok  # input order
    assert [r[2] for r in err[1:]] == [e for i, e in enumerate(emails) if i % FAIL_EVERY == 5]
    assert all(r[-1].startswith("REQUIRED_FIELD_MISSING") for r in err[1:])
    assert all(r[4].startswith("003") for r in ok[1:])
    assert ok[1][3] == 'multi\nline, "0"'
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("in.", ".sfbulk"))) == [
        "in.csv",
        "in.error.csv",
        "in.success.csv",
    ]


# name -> the journal state to kill at (what the run was doing then)
KILL_POINTS: dict[str, Callable[..., bool]] = {
    "before-the-job": lambda j: count(j, "start") == 1 and count(j, "job") == 0,
    "job-created-nothing-sent": lambda j: count(j, "job") == 1 and count(j, "sent") == 0,
    "mid-upload-first-batch": lambda j: 1 <= count(j, "sent") < BATCHES,
    "between-batches-4": lambda j: 4 <= count(j, "sent") < BATCHES,
    "between-batches-9": lambda j: 9 <= count(j, "sent") < BATCHES,
    "mid-poll-all-sent": lambda j: count(j, "sent") == BATCHES and count(j, "fetched") == 0,
    # results arriving: with 100 ms per request a download is in flight most of the time
    "mid-download": lambda j: 1 <= count(j, "fetched") < 4,
    "mid-download-late": lambda j: count(j, "fetched") >= 7 and count(j, "fetched") < BATCHES,
    # merging: rows are in the .part files, maybe beyond the last "merged" checkpoint
    "mid-merge": lambda j, rows: 150 <= rows < 500,
    "mid-merge-late": lambda j, rows: 800 <= rows and count(j, "fetched") < BATCHES,
}


#: (latency of every Bulk API call, time each batch spends InProgress), in ms: the windows to kill in
SLOWNESS = {"mid-poll-all-sent": (20, 600)}  # uploads done long before the first batch is processed
DEFAULT_SLOWNESS = (100, 200)


def speed_up(emu: Any) -> None:
    """The re-run needs no slowness."""
    emu.faults.configure()
    emu.service.processing_delay = 0.0


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_rerun_loads_every_row_once(point: str, emulator_factory: Any, tmp_path: Path) -> None:
    latency, delay = SLOWNESS.get(point, DEFAULT_SLOWNESS)
    emu = emulator_factory(processing_delay_ms=delay)
    emu.faults.configure(latency_ms=latency)
    src = tmp_path / "in.csv"
    tag = point.replace("-", "") + "."
    emails = write_input(src, tag)
    env = env_for(emu, tmp_path)
    log = tmp_path / "cli.log"
    jpath = tmp_path / "in.success.csv.journal"
    seen = kill_when(start(src, env, log), jpath, KILL_POINTS[point])
    jobs = [r["id"] for r in seen if r["t"] == "job"]

    speed_up(emu)
    result = subprocess.run(load_args(src), env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr  # some rows fail by design
    out = result.stderr
    check_complete(emu, tmp_path, src, emails, tag)
    failed = sum(1 for i in range(ROWS) if i % FAIL_EVERY == 5)
    assert f"{ROWS:,} rows in {BATCHES} batches, {ROWS - failed:,} succeeded, {failed:,} failed" in out
    assert f"{failed} \u00d7 REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]" in out
    if jobs:  # the re-run continued the job the killed run had created
        assert f"job {jobs[0]}: resuming" in out, out
        assert f"job {jobs[0]}: {ROWS:,} rows" in out
        if count(seen, "sent"):  # printed right after the job's record, before any upload
            assert f"job {jobs[0]}: created (an interrupted run resumes when re-run)" in log.read_text()
        listed = (
            emu.store.reader()
            .execute("SELECT COUNT(*) FROM batches WHERE job_id = ?", (jobs[0],))
            .fetchone()[0]
        )
        assert listed == BATCHES  # no batch was sent twice
    else:
        assert "created (an interrupted run resumes when re-run)" in out


@pytest.mark.slow
def test_killed_twice_and_a_torn_journal_record(emulator_factory: Any, tmp_path: Path) -> None:
    """Kill mid-upload, kill the resumed run mid-download, tear the journal's last record as a power
    cut would, then finish: still every row once."""
    emu = emulator_factory(processing_delay_ms=DEFAULT_SLOWNESS[1])
    emu.faults.configure(latency_ms=DEFAULT_SLOWNESS[0])
    src = tmp_path / "in.csv"
    emails = write_input(src, "twice.")
    env = env_for(emu, tmp_path)
    log = tmp_path / "cli.log"
    jpath = tmp_path / "in.success.csv.journal"
    kill_when(start(src, env, log), jpath, lambda j: 3 <= count(j, "sent") < BATCHES)
    kill_when(start(src, env, log), jpath, lambda j: count(j, "fetched") >= 2 and count(j, "done") == 0)
    with jpath.open("ab") as fh:
        fh.write(b'{"t":"sent","i":11,"start":0,"en')  # a record cut short by a power cut
    speed_up(emu)
    result = subprocess.run(load_args(src), env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stderr
    check_complete(emu, tmp_path, src, emails, "twice.")


@pytest.mark.slow
def test_upload_accepted_but_not_journaled_is_found_with_list_batches(
    emulator_factory: Any, tmp_path: Path
) -> None:
    """The narrowest window: Salesforce accepted a batch, the process died before its journal record.

    The on-disk state of that crash is made exactly: kill after some batches, then drop the journal
    records of the last two accepted batches. The re-run must find them in the job and not resend.
    """
    emu = emulator_factory(processing_delay_ms=DEFAULT_SLOWNESS[1])
    emu.faults.configure(latency_ms=DEFAULT_SLOWNESS[0])
    src = tmp_path / "in.csv"
    emails = write_input(src, "lost.")
    env = env_for(emu, tmp_path)
    jpath = tmp_path / "in.success.csv.journal"
    kill_when(start(src, env, tmp_path / "cli.log"), jpath, lambda j: 5 <= count(j, "sent") < BATCHES)
    lines = jpath.read_bytes().split(b"\n")[:-1]
    records = [json.loads(x) for x in lines]
    sent = [n for n, r in enumerate(records) if r["t"] == "sent"]
    keep = [
        line
        for n, line in enumerate(lines)
        if n not in sent[-2:] and records[n]["t"] in ("start", "job", "sent")
    ]
    jpath.write_bytes(b"\n".join(keep) + b"\n")
    speed_up(emu)
    result = subprocess.run(load_args(src), env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 1, result.stderr
    check_complete(emu, tmp_path, src, emails, "lost.")
    job = records[1]["id"]
    # the two uploads the journal lost (and any still in flight at the kill) are reported, not resent
    assert re.search(
        rf"job {job}: [2-9] more batches reached Salesforce before the interruption without being "
        r"recorded; each is matched to its rows, which are not sent again",
        result.stderr,
    ), result.stderr
    listed = emu.store.reader().execute("SELECT COUNT(*) FROM batches WHERE job_id = ?", (job,)).fetchone()[0]
    assert listed == BATCHES
