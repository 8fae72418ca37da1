"""The progress display of ``sfbulk load`` and ``sfbulk extract``.

On a terminal a tqdm bar; otherwise (CI logs, pipes, files) one plain line every ``interval``
seconds. Both are redrawn from a timer thread, not only when something happens: Salesforce can
take minutes over a batch, and a frozen clock looks like a hang.

Load shows rows processed by Salesforce against the total, with the percentage, rows sent,
batches done/total, failed rows so far, the rate and the ETA. The total is exact once the whole
file has been split (the splitter runs ahead of the uploads, at most ``2 x concurrency`` batches
ahead); until then it is estimated from the bytes split so far against the file size, and shown
with a ``~``. The rate is rows processed over the time elapsed, so it falls (and the ETA grows)
while Salesforce is busy, instead of freezing at the last burst.

Extract shows records in the completed batches and result files downloaded/listed.

The counters are updated from worker threads (the hooks of :class:`sfbulk.bulk.load.Progress`);
everything is under one lock.
"""

from __future__ import annotations

import functools
import io
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from sfbulk.bulk.load import Progress

REFRESH = 0.5  # seconds between redraws of the bar


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _count(n: float) -> str:
    return f"{int(n):,}"


class _Display(Progress):
    """The timer thread, the lock and the choice between a bar and plain lines."""

    def __init__(
        self,
        *,
        tty: bool | None = None,
        interval: float = 5.0,
        stream: IO[str] | None = None,
        refresh: float = REFRESH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar: Any = None
        use_bar = _isatty(self.stream) and _columns(self.stream) != 0 if tty is None else tty
        if use_bar:
            self._bar = _bar_class()(
                self,
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
                mininterval=refresh,
                bar_format=self.bar_format(),
                total=None,
            )
        period = refresh if use_bar else interval
        self._thread = threading.Thread(
            target=self._tick, args=(period,), name="sfbulk-progress", daemon=True
        )
        self._thread.start()

    # -- subclasses ---------------------------------------------------------------------------

    def bar_format(self) -> str:
        raise NotImplementedError

    def narrow_formats(self) -> tuple[str, ...]:
        """Bar-less formats for terminals too narrow for :meth:`bar_format`, widest first.

        The counts come first, so a terminal narrower than the last one still shows them and loses
        only the clock and the rate at the line's end.
        """
        return ()

    def fitted_format(self, columns: int | None) -> str:
        """The widest format whose line fits in ``columns`` (the bar needs 10 more to be worth drawing)."""
        formats = (self.bar_format(), *self.narrow_formats())
        if not columns or self._bar is None:
            return formats[0]
        values = dict(self._bar.format_dict)
        for fmt in formats:
            room = columns - (10 if "{bar}" in fmt else 0)
            values.update(bar_format=fmt.replace("{bar}", ""), ncols=None)
            if len(self._bar.format_meter(**values)) <= room:
                return fmt
        return formats[-1]

    def fields(self, elapsed: float) -> dict[str, Any]:
        """Named pieces for the bar format (and for :meth:`line`)."""
        raise NotImplementedError

    def position(self) -> tuple[int, int | None]:
        """(done, total or None) for the bar."""
        raise NotImplementedError

    def line(self) -> str:
        raise NotImplementedError

    # -- drawing ------------------------------------------------------------------------------

    def elapsed(self) -> float:
        return self.clock() - self.started

    def _tick(self, period: float) -> None:
        while not self._stop.wait(period):
            self.draw()

    def draw(self) -> None:
        """Redraw the bar, or print one plain line."""
        with self._lock:
            try:
                if self._bar is not None:
                    self._bar.n, self._bar.total = self.position()
                    self._bar.bar_format = self.fitted_format(_columns(self.stream))
                    self._bar.refresh(nolock=False)
                else:
                    print(self.line(), file=self.stream, flush=True)
            except (OSError, ValueError):  # the terminal went away (closed pipe): nothing to show
                self._stop.set()

    def write(self, message: str) -> None:
        """A note printed above the bar (or between the plain lines), not through it."""
        with self._lock:
            if self._bar is not None:
                self._bar.clear(nolock=False)
                print(message, file=self.stream, flush=True)
                self._bar.refresh(nolock=False)
            else:
                print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(timeout=2)
        with self._lock:
            if self._bar is not None:
                self._bar.n, self._bar.total = self.position()
                self._bar.bar_format = self.fitted_format(_columns(self.stream))
                self._bar.refresh()
                self._bar.close()
                self._bar = None
            elif self.elapsed() >= self.interval:  # a long run ends with its final figures
                print(self.line(), file=self.stream, flush=True)


def _columns(stream: IO[str]) -> int | None:
    """The terminal's width; 0 when it reports no size (some pseudo-terminals), None when unknown."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return None


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@functools.cache
def _bar_class() -> type:
    """tqdm with our own named fields and an average rate that keeps moving while nothing happens.

    Built on first use: importing tqdm adds 10-20 ms to a load's start, and only a terminal shows
    a bar (logs, pipes and CI get plain lines)."""
    from tqdm import tqdm

    class _Bar(tqdm):  # type: ignore[misc]
        def __init__(self, display: _Display, **kwargs: Any) -> None:
            self._display = display
            super().__init__(**kwargs)

        @property
        def format_dict(self) -> dict[str, Any]:
            d: dict[str, Any] = super().format_dict
            display = getattr(self, "_display", None)
            if display is None:
                return d
            elapsed = d.get("elapsed") or 0.0
            d["rate"] = (self.n / elapsed) if elapsed > 0 and self.n else None
            d.update(display.fields(elapsed))
            return d

    return _Bar


class LoadDisplay(_Display):
    """What ``sfbulk load`` shows: ``size`` is the input file's size in bytes (for the estimate)."""

    def __init__(self, size: int, *, unit: str = "batches", **kwargs: Any) -> None:
        self.size = max(1, size)
        self.unit = unit  # what the input is sent as: Bulk 1.0 batches, Bulk 2.0 jobs
        self.rows_cut = 0
        self.bytes_cut = 0
        self.batches_cut = 0
        self.total_rows: int | None = None  # exact, once the whole file is split
        self.total_batches: int | None = None
        self.rows_sent = 0
        self.rows_processed = 0
        self.rows_failed = 0
        self.batches_done = 0
        self.batches_failed = 0  # failed as a whole
        super().__init__(**kwargs)

    # -- hooks (worker threads) ---------------------------------------------------------------

    def cut(self, rows: int, end: int) -> None:
        with self._lock:
            self.rows_cut += rows
            self.batches_cut += 1
            self.bytes_cut = max(self.bytes_cut, end)

    def split_done(self, rows: int, batches: int) -> None:
        with self._lock:
            self.total_rows, self.total_batches = rows, batches

    def sent(self, rows: int) -> None:
        with self._lock:
            self.rows_sent += rows

    def batch_done(self, info: Any) -> None:
        with self._lock:
            self.batches_done += 1
            self.rows_processed += int(getattr(info, "records_processed", 0))
            self.rows_failed += int(getattr(info, "records_failed", 0))
            if getattr(info, "state", "") == "Failed" and not getattr(info, "records_processed", 0):
                self.batches_failed += 1

    # -- figures ------------------------------------------------------------------------------

    def totals(self) -> tuple[int | None, int | None, bool]:
        """(rows, batches, exact): the split's totals, or an estimate from the bytes split so far."""
        if self.total_rows is not None:
            return self.total_rows, self.total_batches, True
        if not self.rows_cut or not self.bytes_cut:
            return None, None, False
        scale = self.size / self.bytes_cut
        rows = max(self.rows_cut, round(self.rows_cut * scale))
        batches = max(self.batches_cut, math.ceil(self.batches_cut * scale - 1e-9))
        return rows, batches, False

    def position(self) -> tuple[int, int | None]:
        rows, _, _ = self.totals()
        return self.rows_processed, rows

    def bar_format(self) -> str:
        return (
            "{percentage:3.0f}%|{bar}| {done}/{of} rows processed [{elapsed}<{remaining}, {speed}] "
            "sent {sent} · " + self.unit + " {batches} · failed {failed}"
        )

    def narrow_formats(self) -> tuple[str, ...]:
        return (
            "{percentage:3.0f}% {done}/{of} rows · sent {sent} · "
            + self.unit
            + " {batches} · failed {failed} "
            "[{elapsed}<{remaining}, {speed}]",
            "{percentage:3.0f}% {done}/{of} · "
            + self.unit
            + " {batches} · failed {failed} [{elapsed}<{remaining}]",
        )

    def fields(self, elapsed: float) -> dict[str, Any]:
        rows, batches, exact = self.totals()
        mark = "" if exact else "~"
        rate = self.rows_processed / elapsed if elapsed > 0 else 0.0
        failed = _count(self.rows_failed)
        if self.batches_failed:
            one = self.unit[:-2] if self.unit.endswith("es") else self.unit[:-1]
            failed += (
                f" (+{self.batches_failed} {one if self.batches_failed == 1 else self.unit} failed whole)"
            )
        return {
            "done": _count(self.rows_processed),
            "of": "?" if rows is None else mark + _count(rows),
            "sent": _count(self.rows_sent),
            "batches": f"{self.batches_done}/{'?' if batches is None else mark + str(batches)}",
            "failed": failed,
            "speed": f"{rate:,.0f} rows/s" if self.rows_processed else "- rows/s",
        }

    def line(self) -> str:
        elapsed = self.elapsed()
        f = self.fields(elapsed)
        rows, _, _ = self.totals()
        pct = f" ({100 * self.rows_processed / rows:.0f}%)" if rows else ""
        rate = self.rows_processed / elapsed if elapsed > 0 else 0.0
        eta = ""
        if rows and rate > 0 and self.rows_processed < rows:
            eta = f", ETA {_clock((rows - self.rows_processed) / rate)}"
        return (
            f"progress: {f['done']} of {f['of']} rows processed{pct}, {f['sent']} sent, "
            f"{self.unit} {f['batches']} done, {f['failed']} failed, {f['speed']}, "
            f"elapsed {_clock(elapsed)}{eta}"
        )


class ExtractDisplay(_Display):
    """What ``sfbulk extract`` shows: records of the completed batches, result files downloaded."""

    def __init__(self, **kwargs: Any) -> None:
        self.records = 0
        self.batches_done = 0
        self.files_total = 0
        self.files_done = 0
        super().__init__(**kwargs)

    def batch_done(self, info: Any) -> None:
        with self._lock:
            self.batches_done += 1
            self.records += int(getattr(info, "records_processed", 0))

    def files_listed(self, count: int) -> None:
        with self._lock:
            self.files_total += count

    def file_done(self) -> None:
        with self._lock:
            self.files_done += 1

    def position(self) -> tuple[int, int | None]:
        return self.records, None

    def bar_format(self) -> str:
        return "{done} records [{elapsed}, {speed}] result files {files} · batches done {batches}"

    def narrow_formats(self) -> tuple[str, ...]:
        return ("{done} records · result files {files} · batches {batches} [{elapsed}]",)

    def fields(self, elapsed: float) -> dict[str, Any]:
        rate = self.records / elapsed if elapsed > 0 else 0.0
        return {
            "done": _count(self.records),
            "files": f"{self.files_done}/{self.files_total}",
            "batches": str(self.batches_done),
            "speed": f"{rate:,.0f} records/s" if self.records else "- records/s",
        }

    def line(self) -> str:
        f = self.fields(self.elapsed())
        return (
            f"progress: {f['done']} records, result files {f['files']} downloaded, "
            f"{f['batches']} batches done, {f['speed']}, elapsed {_clock(self.elapsed())}"
        )


__all__ = ["ExtractDisplay", "LoadDisplay"]
