"""kill -9 the real ``sfbulk extract`` process, re-run it: the same job, only missing result files fetched."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest
from fixtures.emulator import emulator_connection
from test_load_resume import SFBULK, count, env_for, kill_when

from sfbulk.bulk.load import LoadOptions, load_csv

ROWS = 1_000
CHUNK = 100  # PK chunks of 100 ids: 10 chunk batches ...
FILE_ROWS = 50  # ... each with 2 result files


def seed(emu: Any, tmp_path: Path) -> None:
    conn = emulator_connection(emu, tmp_path / "seed-registry")
    src = tmp_path / "seed.csv"
    src.write_text("LastName,Email\n" + "".join(f"L{i},x{i}@example.com\n" for i in range(ROWS)))
    assert load_csv(conn, str(src), LoadOptions(object="Contact")).succeeded == ROWS
    conn.close()


def extract_args(out: Path) -> list[str]:
    return [
        SFBULK,
        "extract",
        "SELECT Id, Email FROM Contact",
        "--out",
        str(out),
        "--pk-chunking",
        str(CHUNK),
        "--concurrency",
        "2",
        "--no-progress",
    ]


KILL_POINTS = {
    "before-the-job": lambda j: count(j, "start") == 1 and count(j, "job") == 0,
    "job-created-no-batch": lambda j: count(j, "job") == 1 and count(j, "batch") == 0,
    "mid-poll": lambda j: count(j, "batch") == 1 and count(j, "file") == 0,
    "mid-download": lambda j: 3 <= count(j, "file") < 2 * ROWS // CHUNK,
}


@pytest.mark.slow
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_rerun_extracts_every_record_once(
    point: str, emulator_factory: Any, tmp_path: Path
) -> None:
    import subprocess

    emu = emulator_factory(rows_per_result_file=FILE_ROWS)
    seed(emu, tmp_path)
    emu.service.processing_delay = 0.15
    emu.faults.configure(latency_ms=150)  # each step a window wide enough to kill in on a busy machine
    out = tmp_path / "out.csv"
    env = env_for(emu, tmp_path)
    with (tmp_path / "cli.log").open("ab") as log:
        proc = subprocess.Popen(
            extract_args(out), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    seen = kill_when(proc, Path(str(out) + ".journal"), KILL_POINTS[point])
    assert not out.exists()  # never a partial file under the final name
    emu.faults.configure()
    emu.service.processing_delay = 0.0
    result = subprocess.run(
        extract_args(out), env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Id", "Email"]
    emails = [r[1] for r in rows[1:]]
    assert len(emails) == len(set(emails)) == ROWS
    assert (
        f"{ROWS:,} records from {ROWS // CHUNK} batches ({2 * ROWS // CHUNK} result files)" in result.stderr
    )
    jobs = [r["id"] for r in seen if r["t"] == "job"]
    if jobs:  # the same job, and the files downloaded before the kill were not fetched again
        match = re.search(
            rf"job {jobs[0]}: resuming \((\d+) result files were downloaded before\)", result.stderr
        )
        assert match is not None, result.stderr
        assert int(match.group(1)) >= count(seen, "file")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".sfbulk"))) == ["out.csv"]


@pytest.mark.slow
def test_ctrl_c_mid_download_exits_130_naming_the_job(emulator_factory: Any, tmp_path: Path) -> None:
    import signal
    import subprocess

    emu = emulator_factory(rows_per_result_file=FILE_ROWS)
    seed(emu, tmp_path)
    emu.service.processing_delay = 0.15
    emu.faults.configure(latency_ms=150)  # each step a window wide enough to kill in on a busy machine
    out = tmp_path / "out.csv"
    env = env_for(emu, tmp_path)
    proc = subprocess.Popen(
        extract_args(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    jpath = Path(str(out) + ".journal")
    seen = kill_when(proc, jpath, lambda j: count(j, "file") >= 2, signum=signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    job = next(r["id"] for r in seen if r["t"] == "job")
    assert re.search(
        rf"interrupted: job {job}: \d+ result files downloaded so far; re-run the same command", err
    )
    emu.faults.configure()
    emu.service.processing_delay = 0.0
    result = subprocess.run(
        extract_args(out), env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert f"job {job}: resuming" in result.stderr
    with out.open(encoding="utf-8", newline="") as fh:
        emails = [r[1] for r in list(csv.reader(fh))[1:]]
    assert len(emails) == len(set(emails)) == ROWS
