"""kill -9 the real ``sfbulk load --api 2`` / ``extract --api 2`` at several points, re-run: every row exactly once.

As tests/integration/test_load_resume.py does for Bulk 1.0 (its helpers are reused): the CLI is a real
subprocess killed with SIGKILL when its journal shows the chosen point; the emulator's latency and
processing delay make the windows wide enough to land in.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_load_resume import (
    FAIL_EVERY,
    ROWS,
    SFBULK,
    check_complete,
    count,
    env_for,
    journal,
    kill_when,
    speed_up,
    write_input,
)

MAX_JOB_BYTES = 16_000  # about 4 jobs for the 1,200 rows (~62 KB)


def load2_args(src: Path) -> list[str]:
    return [
        SFBULK,
        "load",
        str(src),
        "--object",
        "Contact",
        "--api",
        "2",
        "--max-job-bytes",
        str(MAX_JOB_BYTES),
        "--concurrency",
        "2",
        "--no-progress",
    ]


def start2(src: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(load2_args(src), env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=src.parent)


KILL_POINTS: dict[str, Callable[..., bool]] = {
    "job-created-before-upload": lambda j: count(j, "job2") >= 1 and count(j, "uploaded") == 0,
    "uploaded-before-close": lambda j: count(j, "uploaded") >= 1 and count(j, "closed") == 0,
    "second-job-uploaded-before-close": lambda j: count(j, "uploaded") >= 2 and count(j, "closed") < 2,
    "closed-mid-poll": lambda j: count(j, "closed") >= 1 and count(j, "fetched2") == 0,
    "mid-download-of-results": lambda j: 1 <= count(j, "fetched2") and count(j, "merged2") < count(j, "job2"),
}
#: (latency of every API call, time each chunk spends InProgress) in ms
SLOWNESS = {"closed-mid-poll": (30, 600)}
DEFAULT_SLOWNESS = (100, 150)


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_rerun_loads_every_row_once_api2(
    point: str, emulator_factory: Any, tmp_path: Path
) -> None:
    latency, delay = SLOWNESS.get(point, DEFAULT_SLOWNESS)
    emu = emulator_factory(processing_delay_ms=delay)
    emu.faults.configure(latency_ms=latency)
    src = tmp_path / "in.csv"
    tag = "v2" + point.replace("-", "") + "."
    emails = write_input(src, tag)
    env = env_for(emu, tmp_path)
    log = tmp_path / "cli.log"
    jpath = tmp_path / "in.success.csv.journal"
    kill_when(start2(src, env, log), jpath, KILL_POINTS[point])
    created = [r["id"] for r in journal(jpath) if r["t"] == "job2"]  # as the killed run left it
    speed_up(emu)
    result = subprocess.run(
        load2_args(src), env=env, capture_output=True, text=True, cwd=tmp_path, timeout=90
    )
    assert result.returncode == 1, result.stdout + result.stderr  # some rows fail by design
    check_complete(emu, tmp_path, src, emails, tag)
    failed = sum(1 for i in range(ROWS) if i % FAIL_EVERY == 5)
    out = result.stderr
    assert f"{ROWS:,} rows in " in out and f"{ROWS - failed:,} succeeded, {failed:,} failed" in out, out
    assert f"job {created[0]}: resuming" in out, out
    # No job created twice: the jobs that got data are the ones journaled plus those the re-run created
    # (a kill between Salesforce's answer to createJob and its journal record can leave one empty Open job).
    used = (
        emu.store.reader()
        .execute("SELECT id FROM bulk2_jobs WHERE job_type = 'V2Ingest' AND upload_state != 0")
        .fetchall()
    )
    assert len(used) == out.count("created for rows") + len(created)
    assert set(created) <= {j[0] for j in used}


@pytest.mark.slow
def test_sigkill_mid_extract_then_rerun_api2(emulator_factory: Any, tmp_path: Path) -> None:
    """Killed while result pages download: the re-run keeps the job and fetches only the missing pages."""
    emu = emulator_factory()
    src = tmp_path / "in.csv"
    emails = write_input(src, "v2ext.")
    env = env_for(emu, tmp_path)
    done = subprocess.run(load2_args(src), env=env, capture_output=True, text=True, cwd=tmp_path, timeout=90)
    assert done.returncode == 1, done.stderr
    emu.faults.configure(latency_ms=150)
    out = tmp_path / "out.csv"
    args = [
        SFBULK,
        "extract",
        "SELECT Email FROM Contact WHERE Email LIKE 'v2ext.%' ORDER BY Email",
        "--out",
        str(out),
        "--api",
        "2",
        "--max-records",
        "100",
        "--concurrency",
        "1",
        "--no-progress",
    ]
    with (tmp_path / "x.log").open("ab") as fh:
        proc = subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=tmp_path)
    jpath = Path(str(out) + ".journal")
    seen = kill_when(proc, jpath, lambda j: 2 <= count(j, "page") < 5)
    speed_up(emu)
    result = subprocess.run(args, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=90)
    assert result.returncode == 0, result.stderr
    job = next(r["id"] for r in seen if r["t"] == "job")
    assert f"job {job}: resuming ({count(seen, 'page')} result pages were downloaded before)" in result.stderr
    assert "records (Bulk API 2.0, 12 result pages)" in result.stderr
    stored = sorted(e for i, e in enumerate(emails) if i % FAIL_EVERY != 5)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '"Email"' and [x.strip('"') for x in lines[1:]] == stored
    assert not jpath.exists()
    assert (
        emu.store.reader().execute("SELECT count(*) FROM bulk2_jobs WHERE job_type = 'V2Query'").fetchone()[0]
        == 1
    )


@pytest.mark.slow
def test_sigterm_then_rerun_api2(emulator_factory: Any, tmp_path: Path) -> None:
    """SIGTERM mid-load: exit 143 naming the jobs, and the re-run finishes them (every row once)."""
    import signal

    emu = emulator_factory(processing_delay_ms=DEFAULT_SLOWNESS[1])
    emu.faults.configure(latency_ms=DEFAULT_SLOWNESS[0])
    src = tmp_path / "in.csv"
    emails = write_input(src, "v2term.")
    env = env_for(emu, tmp_path)
    jpath = tmp_path / "in.success.csv.journal"
    log = tmp_path / "cli.log"
    proc = start2(src, env, log)
    kill_when(proc, jpath, lambda j: count(j, "uploaded") >= 1, signum=signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert (
        "interrupted: jobs 750" in log.read_text() and "re-run the same command to resume" in log.read_text()
    )
    speed_up(emu)
    result = subprocess.run(
        load2_args(src), env=env, capture_output=True, text=True, cwd=tmp_path, timeout=90
    )
    assert result.returncode == 1, result.stderr
    check_complete(emu, tmp_path, src, emails, "v2term.")


@pytest.mark.slow
def test_bad_row_mid_file_then_fixed_api2(emulator_factory: Any, tmp_path: Path) -> None:
    """A row that is not UTF-8 after the first jobs: those jobs finish and the error names the rows
    handled; once the bad bytes are fixed the same command sends the rest (every row once)."""
    emu = emulator_factory()
    src = tmp_path / "in.csv"
    emails = write_input(src, "v2bad.")
    data = src.read_bytes()
    at = data.index(b"v2bad.1000@")
    src.write_bytes(data[:at] + b"\xff" + data[at + 1 :])  # 'v' of row 1,001 becomes an invalid byte
    env = env_for(emu, tmp_path)
    first = subprocess.run(load2_args(src), env=env, capture_output=True, text=True, cwd=tmp_path, timeout=90)
    assert first.returncode == 2, first.stderr
    assert "were loaded in" in first.stderr and "fix the file after those rows" in first.stderr, first.stderr
    assert (tmp_path / "in.success.csv.journal").exists()
    src.write_bytes(data)
    result = subprocess.run(
        load2_args(src), env=env, capture_output=True, text=True, cwd=tmp_path, timeout=90
    )
    assert result.returncode == 1, result.stderr
    check_complete(emu, tmp_path, src, emails, "v2bad.")
