"""The progress display, read off a real pseudo-terminal (and off a pipe) while Salesforce is busy."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fixtures.emulator import cli_env, emulator_connection

from sfbulk.bulk.client import BatchInfo
from sfbulk.bulk.load import LoadOptions, load_csv
from sfbulk.bulk.progress import LoadDisplay
from sfbulk.cli import cli
from sfbulk.errors import PollTimeout


def write_rows(path: Path, n: int, tag: str) -> None:
    path.write_text("LastName,Email\n" + "".join(f"L{i},{tag}{i}@example.com\n" for i in range(n)))


def run_on_a_terminal(
    args: list[str], env: dict[str, str], timeout: float = 60, columns: int = 200
) -> tuple[int, str]:
    """Run ``sfbulk ARGS`` with a pseudo-terminal as stdin/stdout/stderr; returns (status, screen bytes).

    ``columns`` 0 is a terminal that reports no size (``script`` and some CI runners give one).
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40 if columns else 0, columns, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfbulk", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, **env},
        close_fds=True,
    )
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        status = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return status, out.decode("utf-8", "replace")


def frames(screen: str) -> list[str]:
    """What the terminal showed, redraw by redraw (tqdm rewrites its line after a carriage return)."""
    clean = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", screen)
    return [f.strip() for f in re.split(r"[\r\n]+", clean) if f.strip()]


def seconds(clock: str) -> int:
    parts = [int(p) for p in clock.split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


@pytest.mark.slow
def test_load_bar_on_a_terminal_keeps_its_clock_moving(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(processing_delay_ms=1_500)
    src = tmp_path / "tty.csv"
    write_rows(src, 2_000, "tty")
    status, screen = run_on_a_terminal(
        ["load", str(src), "--object", "Contact", "--batch-size", "1000", "--concurrency", "1"],
        cli_env(emu, tmp_path),
    )
    assert status == 0, screen
    bars = [f for f in frames(screen) if "rows processed" in f]
    assert bars, screen
    last = bars[-1]
    # every piece: percentage and bar, processed/total, clock<ETA and rate, rows sent, batches, failed rows
    assert re.search(
        r"100%\|[^|]+\| 2,000/2,000 rows processed \[\d\d:\d\d<\d\d:\d\d, [\d,]+ rows/s\] "
        r"sent 2,000 · batches 2/2 · failed 0",
        last,
    ), last
    # while Salesforce processed the first batch nothing changed, yet the clock moved on
    waiting = [f for f in bars if f.split(" rows processed")[0].endswith((" 0/2,000", " 0/~2,000", " 0/?"))]
    clocks = {seconds(m.group(1)) for f in waiting if (m := re.search(r"\[(\d\d:\d\d)<", f))}
    assert len(clocks) >= 2, waiting
    assert "job 750" in screen and "2,000 rows in 2 batches, 2,000 succeeded, 0 failed" in screen


@pytest.mark.slow
def test_narrow_and_sizeless_terminals_still_show_every_count(emulator_factory: Any, tmp_path: Path) -> None:
    """At 80 columns the counts stay on the line (the bar gives way); with no size, plain lines."""
    emu = emulator_factory(processing_delay_ms=300)
    env = cli_env(emu, tmp_path)
    src = tmp_path / "narrow.csv"
    write_rows(src, 2_000, "narrow")
    status, screen = run_on_a_terminal(
        ["load", str(src), "--object", "Contact", "--batch-size", "1000", "--concurrency", "1"],
        env,
        columns=80,
    )
    assert status == 0, screen
    bars = [f for f in frames(screen) if " · batches " in f]
    assert bars, screen
    assert all(len(f) <= 80 for f in bars), [f for f in bars if len(f) > 80]
    assert re.search(r"100% 2,000/2,000 .*batches 2/2 · failed 0", bars[-1]), bars[-1]
    src2 = tmp_path / "sizeless.csv"
    write_rows(src2, 200, "sizeless")
    status, screen = run_on_a_terminal(
        [
            "load",
            str(src2),
            "--object",
            "Contact",
            "--batch-size",
            "100",
            "--concurrency",
            "1",
            "--progress-interval",
            "0.2",
        ],
        env,
        columns=0,
    )
    assert status == 0, screen
    assert "progress: 200 of 200 rows processed (100%)" in screen, screen


def test_without_a_terminal_a_plain_line_every_interval(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(processing_delay_ms=800)
    src = tmp_path / "pipe.csv"
    write_rows(src, 200, "pipe")
    result = CliRunner().invoke(
        cli,
        [
            "load",
            str(src),
            "--object",
            "Contact",
            "--batch-size",
            "100",
            "--concurrency",
            "1",
            "--progress-interval",
            "0.3",
        ],
        env=cli_env(emu, tmp_path),
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("progress: ")]
    assert len(lines) >= 3, result.output
    # (before the first batch is cut the total is not known yet: "0 of ? rows processed")
    assert all(
        re.match(
            r"progress: [\d,]+ of (~?[\d,]+|\?) rows processed( \(\d+%\))?, [\d,]+ sent, "
            r"batches \d+/(~?\d+|\?) done, \d+ failed, .* elapsed \d\d:\d\d",
            line,
        )
        for line in lines
    ), lines
    assert lines[-1].startswith(
        "progress: 200 of 200 rows processed (100%), 200 sent, batches 2/2 done, 0 failed"
    )
    assert "\r" not in result.output  # no bar redraws in a log file


def test_extract_shows_records_and_result_files(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory(rows_per_result_file=150)
    src = tmp_path / "x.csv"
    write_rows(src, 400, "ext")
    env = cli_env(emu, tmp_path)
    assert (
        CliRunner().invoke(cli, ["load", str(src), "--object", "Contact", "--no-progress"], env=env).exit_code
        == 0
    )
    status, screen = run_on_a_terminal(
        ["extract", "SELECT Id, Email FROM Contact", "--out", str(tmp_path / "out.csv")], env
    )
    assert status == 0, screen
    bars = [f for f in frames(screen) if " records [" in f]
    assert bars and re.search(
        r"400 records \[\d\d:\d\d, [\d,]+ records/s\] result files 3/3 · batches done 1", bars[-1]
    ), screen


def test_load_estimate_then_exact_totals() -> None:
    """Until the file is split the total is an estimate from bytes (marked ~), then exact."""
    display = LoadDisplay(1_000, tty=False, stream=io.StringIO(), interval=3600)
    try:
        assert display.totals() == (None, None, False)
        display.cut(100, 250)  # 100 rows in the first quarter of the file
        assert display.totals() == (400, 4, False)
        display.batch_done(BatchInfo("751", "750", "Completed", "", 100, 7))
        display.batch_done(BatchInfo("752", "750", "Failed", "InvalidBatch : Field name not found : X", 0, 0))
        display.split_done(390, 4)
        assert display.totals() == (390, 4, True)
        fields = display.fields(elapsed=10.0)
        assert fields["of"] == "390" and fields["batches"] == "2/4" and fields["speed"] == "10 rows/s"
        assert fields["failed"] == "7 (+1 batch failed whole)"
        assert display.line().startswith("progress: 100 of 390 rows processed (26%)")
    finally:
        display.close()


def test_a_resumed_load_counts_the_batches_an_earlier_run_finished(
    emulator_factory: Any, tmp_path: Path
) -> None:
    """After --timeout stopped a load, the re-run's display still ends at every row processed."""
    emu = emulator_factory(processing_delay_ms=300)
    conn = emulator_connection(emu, tmp_path / "registry")
    src = tmp_path / "resume.csv"
    write_rows(src, 40, "res")
    options = dict(object="Contact", batch_size=10, serial=True, poll_initial=0.05)
    with pytest.raises(PollTimeout):
        load_csv(conn, str(src), LoadOptions(**options, timeout=0.5))  # type: ignore[arg-type]
    display = LoadDisplay(src.stat().st_size, tty=False, stream=io.StringIO(), interval=3600)
    summary = load_csv(conn, str(src), LoadOptions(**options), display)  # type: ignore[arg-type]
    conn.close()
    assert (summary.rows, summary.succeeded) == (40, 40)
    assert display.totals() == (40, 4, True)
    assert (display.rows_processed, display.batches_done, display.rows_sent) == (40, 4, 40)
