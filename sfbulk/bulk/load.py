"""``sfbulk load``: a CSV file into Salesforce through Bulk API 1.0, streaming, with per-row results.

Pipeline (memory stays flat: at most ``2 * concurrency`` batches of bytes exist at once):

1. the splitter cuts the file into batches (<= 10,000 records, <= 10,000,000 bytes);
2. a thread pool uploads them concurrently, each POST made exactly once (``BulkClient.add_batch``);
3. a poller lists the job's batches with capped exponential backoff and an overall deadline, and
   as each batch finishes, its result CSV is downloaded to a work file;
4. the job is closed once every batch is sent;
5. the results are paired with the input rows (re-read from the file by byte range) into
   ``success.csv`` and ``error.csv`` in input order.

Rows of a batch that could not be sent, or of a batch Salesforce failed as a whole, go to the
error file with the reason, so ``--retry-failed`` can resend them; nothing is dropped silently.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfbulk.bulk.client import BatchInfo, BulkClient
from sfbulk.bulk.csvsplit import MAX_CHARS, MAX_RECORDS, Batch, CsvSplitter
from sfbulk.bulk.poll import Backoff, poll_until
from sfbulk.bulk.precheck import check_file, check_outputs
from sfbulk.bulk.results import ResultWriter, input_records, parse_header, result_rows
from sfbulk.bulk.retry import RetryPolicy
from sfbulk.errors import BulkError, BulkInputError, SfBulkError

log = logging.getLogger("sfbulk.bulk.load")

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")


@dataclass
class LoadOptions:
    object: str
    operation: str = "insert"
    external_id: str | None = None
    serial: bool = False
    batch_size: int = MAX_RECORDS
    max_chars: int = MAX_CHARS
    concurrency: int = 4
    encoding: str = "utf-8"
    nul: str = "strip"
    timeout: float | None = 7200.0  # overall polling deadline, seconds
    poll_initial: float = 0.1
    poll_cap: float = 10.0
    success_path: str | None = None
    error_path: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def validate(self) -> None:
        if self.operation not in OPERATIONS:
            raise BulkInputError(f"operation must be one of {', '.join(OPERATIONS)}, got {self.operation!r}")
        if self.operation == "upsert" and not self.external_id:
            raise BulkInputError("upsert needs --external-id naming the external id field (e.g. --external-id Email__c)")
        if not 1 <= self.concurrency <= 32:
            raise BulkInputError(f"concurrency must be between 1 and 32, got {self.concurrency}")


@dataclass
class LoadSummary:
    job_id: str
    rows: int
    batches: int
    succeeded: int
    failed: int
    nul_stripped: int
    blank_lines: int
    retries: int
    resends: int
    seconds: float
    success_path: str
    error_path: str


class Progress:
    """Progress hooks; the CLI implements them with tqdm or plain lines. Called from worker threads."""

    def sent(self, rows: int) -> None: ...

    def batch_done(self, info: BatchInfo) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Slot:
    batch: Batch
    info: BatchInfo | None = None  # the final batchInfo
    batch_id: str | None = None
    send_error: str | None = None
    result_file: str | None = None
    fetch_error: BaseException | None = None
    ready: bool = False  # final and its results (if any) on disk: the merger may write it


def default_outputs(path: str) -> tuple[str, str]:
    p = Path(path)
    stem = p.name[:-4] if p.name.lower().endswith(".csv") else p.name
    return str(p.with_name(stem + ".success.csv")), str(p.with_name(stem + ".error.csv"))


def load_csv(conn: Any, path: str, options: LoadOptions, progress: Progress | None = None) -> LoadSummary:
    """Load the CSV file at ``path``; returns the summary (``failed`` > 0 when any row failed)."""
    options.validate()
    progress = progress or Progress()
    started = time.monotonic()
    success_path, error_path = default_outputs(path)
    success_path = options.success_path or success_path
    error_path = options.error_path or error_path
    client = BulkClient(conn, retry=options.retry)
    if os.path.getsize(path) == 0:
        raise BulkInputError(f"{path} is empty: a CSV header line naming the fields is required")
    # The header is checked before anything exists in Salesforce (sfbulk.bulk.precheck).
    with open(path, "rb") as head:
        plan = check_file(head, path, operation=options.operation, external_id=options.external_id,
                          encoding=options.encoding, nul=options.nul)
    check_outputs(path, success_path, error_path)
    if plan.note:
        log.info("%s: %s", path, plan.note)
    # Output folders are checked (the work folder lives there) before a job exists in Salesforce.
    if os.path.dirname(os.path.abspath(success_path)) != os.path.dirname(os.path.abspath(error_path)):
        tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(success_path))).close()
    work = tempfile.mkdtemp(prefix=".sfbulk-", dir=os.path.dirname(os.path.abspath(error_path)))
    with open(path, "rb") as source:
        splitter = CsvSplitter(source, max_records=options.batch_size, max_chars=options.max_chars,
                               encoding=options.encoding, nul=options.nul, columns=plan)
        try:
            job = client.create_job(operation=options.operation, object=options.object, content_type="CSV",
                                    external_id=options.external_id,
                                    concurrency="Serial" if options.serial else None)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        job_id = job["id"]
        log.info("job %s: %s %s", job_id, options.operation, options.object)
        try:
            slots, input_error, (succeeded, failed) = _run(client, job_id, path, splitter, options, progress,
                                                           work, success_path, error_path)
            if input_error is not None:
                raise BulkInputError(
                    f"{input_error} -- the {splitter.rows:,} rows before it were sent in job {job_id}: "
                    f"{succeeded:,} succeeded ({success_path}), {failed:,} failed ({error_path}); "
                    "fix the file and load the remaining rows"
                ) from input_error
        finally:
            progress.close()
            shutil.rmtree(work, ignore_errors=True)
    return LoadSummary(
        job_id=job_id, rows=splitter.rows, batches=len(slots), succeeded=succeeded, failed=failed,
        nul_stripped=splitter.nul_count, blank_lines=splitter.blank_lines, retries=client.stats.retries,
        resends=client.resends, seconds=time.monotonic() - started,
        success_path=success_path, error_path=error_path,
    )


def _run(client: BulkClient, job_id: str, path: str, splitter: CsvSplitter, options: LoadOptions,
         progress: Progress, work: str, success_path: str,
         error_path: str) -> tuple[list[_Slot], BulkInputError | None, tuple[int, int]]:
    """Upload, poll, download and merge, overlapped; returns the slots, a mid-file input error and counts."""
    slots: list[_Slot] = []
    cv = threading.Condition()
    uploads_done = threading.Event()
    stop = threading.Event()
    in_flight = threading.BoundedSemaphore(options.concurrency * 2)
    fatal: list[BaseException] = []
    errors: list[BaseException] = []  # poller / merger failures, handed to the main thread
    uploader = ThreadPoolExecutor(options.concurrency, thread_name_prefix="sfbulk-upload")
    downloader = ThreadPoolExecutor(options.concurrency, thread_name_prefix="sfbulk-results")
    by_id: dict[str, _Slot] = {}
    counts = [0, 0]

    def mark_ready(slot: _Slot) -> None:
        with cv:
            slot.ready = True
            cv.notify_all()

    def upload(slot: _Slot) -> None:
        sent = False
        try:
            if stop.is_set():
                slot.send_error = "not sent: the load stopped after an earlier error"
                return
            info = client.add_batch(job_id, slot.batch.data, label=f"batch {slot.batch.index + 1}")
            with cv:
                slot.batch_id = info.id
                by_id[info.id] = slot
            sent = True
            progress.sent(slot.batch.rows)
        except SfBulkError as exc:
            slot.send_error = f"not sent: {exc}"
            log.error("job %s: batch %d not sent: %s", job_id, slot.batch.index + 1, exc)
            if not isinstance(exc, BulkError) or "could not be sent" not in str(exc):
                stop.set()  # a non-transient answer (bad job, bad content type) will fail every batch
                fatal.append(exc)
        finally:
            # The batch's bytes are no longer needed: results are paired with the file, not memory.
            slot.batch = _without_data(slot.batch)
            in_flight.release()
            if not sent:
                mark_ready(slot)

    def fetch(slot: _Slot) -> None:
        info = slot.info
        assert info is not None and slot.batch_id is not None
        try:
            if info.state == "Completed" or (info.state == "Failed" and info.records_processed > 0):
                dest = os.path.join(work, f"{slot.batch.index}.csv")
                client.download_batch_results(job_id, slot.batch_id, dest)
                slot.result_file = dest
        except BaseException as exc:  # noqa: BLE001 - re-raised by the merger in order
            slot.fetch_error = exc
        finally:
            mark_ready(slot)

    def check() -> tuple[bool, bool, list[str]]:
        finished = uploads_done.is_set()
        with cv:
            pending_ids = [s.batch_id for s in slots if s.batch_id and s.info is None]
        if not pending_ids:
            return finished, False, []
        progressed = False
        for info in client.list_batches(job_id):
            with cv:
                slot = by_id.get(info.id)
            if slot is None or slot.info is not None or not info.final:
                continue
            slot.info = info
            progressed = True
            progress.batch_done(info)
            downloader.submit(fetch, slot)
        with cv:
            pending = [s.batch_id for s in slots if s.batch_id and s.info is None]
        return finished and not pending, progressed, [p for p in pending if p]

    def poller() -> None:
        try:
            poll_until(check, job_id=job_id, timeout=options.timeout,
                       backoff=Backoff(initial=options.poll_initial, factor=1.3, cap=options.poll_cap))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            stop.set()
            with cv:
                cv.notify_all()

    def merger() -> None:
        """Write each batch's rows as soon as it and every batch before it are done (input order)."""
        writer: ResultWriter | None = None
        index = 0
        try:
            while True:
                with cv:
                    while not errors and not (index < len(slots) and slots[index].ready) and not (
                            uploads_done.is_set() and index >= len(slots)):
                        cv.wait(0.5)
                    if index >= len(slots) or not slots[index].ready:
                        break  # every batch written, or a poll failure: keep what is done, in order
                    slot = slots[index]
                if writer is None:
                    writer = ResultWriter(success_path, error_path, parse_header(splitter.header))
                _write_slot(writer, path, splitter, slot)
                index += 1
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            stop.set()
        finally:
            if writer is None:  # no batch done (or none at all): the files still exist, with their header
                try:
                    writer = ResultWriter(success_path, error_path, parse_header(splitter.header))
                except OSError as exc:
                    errors.append(exc)
            if writer is not None:
                counts[:] = [writer.succeeded, writer.failed]
                writer.close()

    poll_thread = threading.Thread(target=poller, name="sfbulk-poll", daemon=True)
    merge_thread = threading.Thread(target=merger, name="sfbulk-merge", daemon=True)
    poll_thread.start()
    merge_thread.start()
    input_error: list[BulkInputError] = []
    try:
        batches = iter(splitter)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except BulkInputError as exc:
                # Bad input mid-file: finish what was sent (results written), then report it.
                input_error.append(exc)
                break
            in_flight.acquire()
            slot = _Slot(batch)
            with cv:
                slots.append(slot)
            if stop.is_set():
                slot.send_error = "not sent: the load stopped after an earlier error"
                slot.batch = _without_data(batch)
                in_flight.release()
                mark_ready(slot)
                continue
            uploader.submit(upload, slot)
        uploader.shutdown(wait=True)
    except BaseException:
        stop.set()
        uploader.shutdown(wait=True)
        uploads_done.set()
        _close_quietly(client, job_id)
        poll_thread.join(timeout=5)
        merge_thread.join(timeout=5)
        downloader.shutdown(wait=False, cancel_futures=True)
        raise
    with cv:
        uploads_done.set()
        cv.notify_all()
    try:
        client.close_job(job_id)
    finally:
        poll_thread.join()
        downloader.shutdown(wait=True)
        merge_thread.join()
    if errors:
        raise errors[0]
    if fatal and not any(s.batch_id for s in slots):
        raise BulkError(f"job {job_id}: no batch could be sent: {fatal[0]}") from fatal[0]
    return slots, (input_error[0] if input_error else None), (counts[0], counts[1])


def _without_data(batch: Batch) -> Batch:
    return Batch(batch.index, batch.first_row, batch.rows, batch.start, batch.end, b"")


def _close_quietly(client: BulkClient, job_id: str) -> None:
    try:
        client.close_job(job_id)
    except SfBulkError as exc:
        log.warning("job %s could not be closed: %s", job_id, exc)


def _write_slot(writer: ResultWriter, path: str, splitter: CsvSplitter, slot: _Slot) -> None:
    if slot.fetch_error is not None:
        raise slot.fetch_error
    rows = input_records(path, slot.batch, splitter.encoding, splitter.nul, splitter.sent_records)
    if slot.send_error is not None:
        writer.add_batch(rows, None, slot.send_error)
        return
    info = slot.info
    message = (info.state_message if info else "") or (f"batch {info.state}" if info else "no result")
    if slot.result_file is None:
        writer.add_batch(rows, None, message)
        return
    with open(slot.result_file, encoding="utf-8", newline="") as fh:
        writer.add_batch(rows, result_rows(fh), message)
    os.unlink(slot.result_file)


__all__ = ["OPERATIONS", "LoadOptions", "LoadSummary", "Progress", "default_outputs", "load_csv"]
