"""Background batch processing: a small pool of worker threads; Serial jobs run one batch at a time."""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable

log = logging.getLogger("sfbulk.emulator")


class Processor:
    def __init__(self, process: Callable[[str, str], None], workers: int = 2):
        self._process = process
        self._queue: queue.Queue[tuple[str, str, bool] | None] = queue.Queue()
        self._serial: dict[str, deque[str]] = {}  # job id -> waiting batch ids
        self._serial_busy: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._threads = [
            threading.Thread(target=self._run, name=f"sfbulk-emulator-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def submit(self, job_id: str, batch_id: str, serial: bool) -> None:
        with self._lock:
            self._pending += 1
            if serial:
                if job_id in self._serial_busy:
                    self._serial.setdefault(job_id, deque()).append(batch_id)
                    return
                self._serial_busy.add(job_id)
        self._queue.put((job_id, batch_id, serial))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job_id, batch_id, serial = item
            try:
                self._process(job_id, batch_id)
            except Exception:  # the service already records failures; keep the worker alive
                log.exception("worker error on batch %s", batch_id)
            nxt = None
            with self._lock:
                self._pending -= 1
                if serial:
                    waiting = self._serial.get(job_id)
                    if waiting:
                        nxt = waiting.popleft()
                    else:
                        self._serial.pop(job_id, None)
                        self._serial_busy.discard(job_id)
                if self._pending == 0:
                    self._idle.notify_all()
            if nxt is not None:
                self._queue.put((job_id, nxt, True))

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no batch is queued or running (tests, benchmarks)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=5)
