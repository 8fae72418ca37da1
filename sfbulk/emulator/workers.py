"""Batch processing in worker processes.

Parsing and applying a batch is CPU-bound Python, and worker threads share one core under the
GIL, so a threaded emulator could not ingest faster than one core allows. Every batch's state
lives in SQLite, so a worker process needs nothing but its own Store and BulkService over the
same database file; SQLite's write lock (with the store's busy timeout) serialises the commits.
The parent keeps scheduling (Serial jobs, ``wait_idle``): a worker only runs one batch and
reports the follow-up batches it created (PK chunks) for the parent to queue.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from .schema import Schema
from .service import BulkService
from .store import Store

log = logging.getLogger("sfbulk.emulator")

_service: BulkService | None = None


class _Collector:
    """Stands in for the Processor inside a worker: records the batches the service queues."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, str, bool]] = []

    def submit(self, job_id: str, batch_id: str, serial: bool) -> None:
        self.submitted.append((job_id, batch_id, serial))


def _init_worker(
    db_path: str, schema_file: str | None, user_id: str, rows_per_result_file: int, processing_delay: float
) -> None:
    global _service
    schema = Schema.load(schema_file)
    _service = BulkService(Store(db_path, schema), schema, user_id, rows_per_result_file)
    _service.processing_delay = processing_delay


def _process_in_worker(job_id: str, batch_id: str) -> list[tuple[str, str, bool]]:
    assert _service is not None, "worker not initialised"
    collector = _Collector()
    _service.processor = collector
    _service.process_batch(job_id, batch_id)
    return collector.submitted


class ProcessBatchRunner:
    """Callable ``(job_id, batch_id)`` for the Processor's threads; runs the batch in a worker process."""

    def __init__(
        self,
        *,
        service: BulkService,
        db_path: str,
        schema_file: str | os.PathLike[str] | None,
        user_id: str,
        workers: int,
    ) -> None:
        self._service = service  # the parent's: marks a batch Failed if its worker dies
        self.resubmit: Callable[[str, str, bool], None] | None = None
        self._pool = ProcessPoolExecutor(
            max_workers=max(1, workers),
            # spawn, not fork: the parent runs HTTP and SQLite threads whose locks must not be copied
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(
                db_path,
                os.fspath(schema_file) if schema_file else None,
                user_id,
                service.rows_per_result_file,
                service.processing_delay,
            ),
        )
        # Workers start with the first batches (the pool spawns one per batch waiting, up to
        # ``workers``), not with the emulator: each is an interpreter importing the emulator, about
        # 0.2 s of CPU, which an emulator used for OAuth, queries or a few calls never needs.

    def __call__(self, job_id: str, batch_id: str) -> None:
        try:
            follow_ups = self._pool.submit(_process_in_worker, job_id, batch_id).result()
        except Exception as exc:  # a worker died (killed, out of memory): never leave the batch InProgress
            log.error("worker process failed on batch %s: %s", batch_id, exc)
            self._service._set_state(
                batch_id,
                "Failed",
                "InternalServerError : The worker process processing the "
                "batch stopped (killed or out of memory); the emulator's log has the details",
            )
            return
        if self.resubmit is not None:
            for follow_up in follow_ups:
                self.resubmit(*follow_up)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_runner(
    service: BulkService, store: Store, schema_file: Any, user_id: str, workers: int
) -> ProcessBatchRunner:
    return ProcessBatchRunner(
        service=service, db_path=store.path, schema_file=schema_file, user_id=user_id, workers=workers
    )
