"""``sfbulk load``: a CSV file into Salesforce through Bulk API 1.0, streaming, resumable, with per-row results.

Pipeline (memory stays flat: at most ``2 * concurrency`` batches of bytes exist at once):

1. the splitter cuts the file into batches (<= 10,000 records, <= 10,000,000 bytes);
2. a thread pool uploads them concurrently, each POST made exactly once (``BulkClient.add_batch``);
3. a poller lists the job's batches with capped exponential backoff and an overall deadline, and
   as each batch finishes, its result CSV is downloaded to a work file;
4. the job is closed once every batch is sent;
5. the results are paired with the input rows (re-read from the file by byte range) into
   ``success.csv`` and ``error.csv`` in input order (``.part`` files, renamed when complete).

Every step is recorded in a journal (:mod:`sfbulk.bulk.journal`) before it is acted on: the job,
each batch's byte range and id once Salesforce accepted it, each result file fetched, each batch
merged. Running the same command again after kill -9, Ctrl-C, a timeout or any error resumes the
job: accepted batches are never sent again, an upload cut mid-request is looked up with
listBatches, merged rows are kept. A finished load deletes its journal.

Rows of a batch that could not be sent, or of a batch Salesforce failed as a whole, go to the
error file with the reason, so ``--retry-failed`` can resend them; nothing is dropped silently.
When a batch fails as a whole for a reason that fails every batch (an unknown field), the
remaining batches are not uploaded; their rows go to the error file with that reason.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfbulk import observe
from sfbulk.bulk.client import BatchInfo, BulkClient
from sfbulk.bulk.csvsplit import MAX_CHARS, MAX_RECORDS, Batch, CsvSplitter
from sfbulk.bulk.journal import (
    Journal,
    annotate_unfinished,
    discard,
    fingerprint,
    journal_path,
    open_journal,
    replace_durably,
    work_folder,
)
from sfbulk.bulk.poll import Backoff, poll_until
from sfbulk.bulk.precheck import InputPlan, check_file, check_outputs
from sfbulk.bulk.results import ResultWriter, error_reasons, input_records, parse_header, result_rows
from sfbulk.bulk.retry import RetryPolicy
from sfbulk.errors import ApiError, BulkError, BulkInputError, BulkInterrupted, SfBulkError

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.bulk.v2.client import Bulk2Client
    from sfbulk.connector.connection import Connection

log = logging.getLogger("sfbulk.bulk.load")

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")

#: stateMessages of a batch Failed as a whole that every other batch of the job would fail with too
#: (they are about the header or the job, not about the batch's rows)
_FAILS_EVERY_BATCH = re.compile(
    r"Field name not found|Duplicate field name|Invalid CSV header|No such column|InvalidJob|"
    r"Unsupported content type|Failed to parse CSV header|INVALID_FIELD|InvalidOperation",
    re.IGNORECASE,
)

#: at most this often the merged results are made durable and journaled (see _Run.merger)
CHECKPOINT_SECONDS = 1.0

#: journal identity key -> how the user spells it (for "this command differs in ..." messages)
_IDENTITY_FLAGS = {
    "input": "the input file",
    "object": "--object",
    "operation": "--operation",
    "external_id": "--external-id",
    "serial": "--serial",
    "batch_size": "--batch-size",
    "max_chars": "the batch byte limit",
    "encoding": "--encoding",
    "nul": "--reject-nul",
    "api_url": "--api-url",
    "errors": "--errors",
    "success": "--success",
}


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
    timeout: float | None = 7200.0  # overall polling deadline, seconds, from the last upload
    poll_initial: float = 0.1
    poll_cap: float = 10.0
    success_path: str | None = None
    error_path: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    restart: bool = False  # abort the job of an unfinished journal and start over
    source_name: str | None = (
        None  # the file the user named, for messages and the journal (default: the path)
    )
    notify: Callable[[str], None] | None = None  # user-facing notes: job created, resumed, uploads stopped
    journal: str | None = None  # the journal file (default: next to the success file, journal_path())

    def validate(self) -> None:
        if self.operation not in OPERATIONS:
            raise BulkInputError(f"operation must be one of {', '.join(OPERATIONS)}, got {self.operation!r}")
        if self.operation == "upsert" and not self.external_id:
            raise BulkInputError(
                "upsert needs --external-id naming the external id field (e.g. --external-id Email__c)"
            )
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
    resumed: bool = False  # this run continued a job an earlier run had started
    unsent_rows: int = 0  # rows put in the error file without being sent (uploads stopped)
    stop_reason: str | None = (
        None  # why uploads stopped early (a batch failed in a way that fails every batch)
    )
    reasons: list[tuple[str, int]] = field(default_factory=list)  # top error reasons, most frequent first


class Progress:
    """Progress hooks; the CLI implements them with tqdm or plain lines. Called from worker threads."""

    def cut(self, rows: int, end: int) -> None:
        """A batch of ``rows`` was cut from the input, up to byte ``end`` (before it is sent)."""

    def split_done(self, rows: int, batches: int) -> None:
        """The whole input is split: the exact totals."""

    def sent(self, rows: int) -> None: ...

    def batch_done(self, info: BatchInfo) -> None: ...

    def files_listed(self, count: int) -> None:
        """Extract: ``count`` more result files to download."""

    def file_done(self) -> None:
        """Extract: one result file downloaded."""

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
    merged: bool = False  # written to the result files by an earlier run


@dataclass
class _Resume:
    """What the journal says an earlier run did."""

    job_id: str | None = None
    batch_ids: dict[int, str] = field(default_factory=dict)  # batch index -> id Salesforce gave it
    sent: dict[int, dict[str, Any]] = field(default_factory=dict)  # batch index -> its "sent" record
    fetched: dict[int, dict[str, Any]] = field(default_factory=dict)  # batch index -> its "fetched" record
    merged: int = 0  # batches 0..merged-1 are in the .part files
    offsets: tuple[int, int, int, int] = (0, 0, 0, 0)  # part file lengths, succeeded, failed after them
    done: dict[str, Any] | None = None

    @classmethod
    def of(cls, journal: Journal) -> _Resume:
        state = cls()
        for r in journal.records:
            t = r.get("t")
            if t == "job":
                state.job_id = r["id"]
            elif t == "sent":
                state.batch_ids[int(r["i"])] = r["id"]
                state.sent[int(r["i"])] = r
            elif t == "fetched":
                state.fetched[int(r["i"])] = r
            elif t == "merged":
                state.merged = int(r["i"]) + 1
                state.offsets = (int(r["ok_bytes"]), int(r["err_bytes"]), int(r["ok"]), int(r["failed"]))
            elif t == "done":
                state.done = r
        return state


def default_outputs(path: str) -> tuple[str, str]:
    p = Path(path)
    stem = p.name[:-4] if p.name.lower().endswith(".csv") else p.name
    return str(p.with_name(stem + ".success.csv")), str(p.with_name(stem + ".error.csv"))


def load_csv(
    conn: Connection, path: str, options: LoadOptions, progress: Progress | None = None
) -> LoadSummary:
    """Load the CSV file at ``path``, or resume the unfinished load of the same command; returns the
    summary (``failed`` > 0 when any row failed).

    Errors raised once the job exists carry ``job_id`` and ``journal`` attributes: the job id and the
    journal a re-run resumes from.
    """
    options.validate()
    progress = progress or Progress()
    started = time.monotonic()
    success_path, error_path = default_outputs(path)
    success_path = options.success_path or success_path
    error_path = options.error_path or error_path
    source = options.source_name or path
    client = BulkClient(conn, retry=options.retry)
    plan = check_before_job(path, source, options, success_path, error_path)
    journal = open_journal(options.journal or journal_path(success_path))
    try:
        return _load(
            conn, client, journal, path, source, options, progress, success_path, error_path, started, plan
        )
    finally:
        journal.close()  # kept unless the load finished (then already deleted)
        progress.close()


def check_before_job(
    path: str, source: str, options: LoadOptions, success_path: str, error_path: str
) -> InputPlan:
    """What is checked before anything exists in Salesforce: the input is not empty, its header
    (sfbulk.bulk.precheck), the outputs are not the input, their folders are writable (the work
    folder and the journal live there). Returns what is sent for the header."""
    if os.path.getsize(path) == 0:
        raise BulkInputError(f"{source} is empty: a CSV header line naming the fields is required")
    with open(path, "rb") as head:
        plan = check_file(
            head,
            source,
            operation=options.operation,
            external_id=options.external_id,
            encoding=options.encoding,
            nul=options.nul,
        )
    check_outputs(path, success_path, error_path)
    if plan.note:
        log.info("%s: %s", source, plan.note)
    for folder in {os.path.dirname(os.path.abspath(p)) for p in (success_path, error_path)}:
        tempfile.TemporaryFile(dir=folder).close()
    return plan


def _identity(
    conn: Connection, source: str, options: LoadOptions, success_path: str, error_path: str
) -> dict[str, Any]:
    """What makes two runs "the same command": a re-run with the same identity resumes the journal."""
    return {
        "kind": "load",
        "input": os.path.abspath(source),
        "object": options.object,
        "operation": options.operation,
        "external_id": options.external_id or "",
        "serial": options.serial,
        "batch_size": options.batch_size,
        "max_chars": options.max_chars,
        "encoding": options.encoding,
        "nul": options.nul,
        "api_url": str(getattr(getattr(conn, "params", None), "api_url", "") or ""),
        "success": os.path.abspath(success_path),
        "errors": os.path.abspath(error_path),
    }


def check_resumable(
    journal: Journal,
    identity: dict[str, Any],
    input_fp: dict[str, Any] | None,
    source: str,
    job_id: str | None,
) -> None:
    """Refuse to resume a journal written by a different command, or for an input that changed since."""
    start = journal.start or {}
    old = start.get("cmd") or {}
    if old != identity:
        differs = [
            _IDENTITY_FLAGS.get(k, k)
            for k in sorted(set(old) | set(identity))
            if old.get(k) != identity.get(k)
        ]
        raise BulkInputError(
            f"{journal.path} holds the unfinished run of another command (job {job_id}; it differs in "
            f"{', '.join(differs)}): re-run that command to finish it, or add --restart to abort job {job_id} "
            "and run this one"
        )
    latest = journal.last("input") or start
    if input_fp is not None and latest.get("input") != input_fp:
        stopped = journal.last("input_error")
        if (
            stopped is not None
            and _prefix_digest(source_path(journal, source), int(stopped["prefix_end"]))
            == stopped["prefix_sha256"]
        ):
            # The run stopped at a bad row and the file was fixed after the rows it had handled:
            # those rows are unchanged, so the re-run continues with the rest.
            journal.append({"t": "input", "input": input_fp})
            return
        was = latest.get("input") or {}
        raise BulkInputError(
            f"{source} changed since job {job_id} started loading it (then {was.get('size', 0):,} bytes, "
            f"sha256 {str(was.get('sha256', ''))[:12]}; now {input_fp['size']:,} bytes, sha256 "
            f"{input_fp['sha256'][:12]}), so the unfinished load in {journal.path} cannot be resumed safely: "
            f"restore the file and re-run to resume, or add --restart to abort job {job_id} and load the file "
            "from the start (rows that job already loaded stay in Salesforce)"
        )


def source_path(journal: Journal, source: str) -> str:
    """The file being read (a --retry-failed run reads a temporary copy; see _load)."""
    return getattr(journal, "reading", None) or source


def record_input_error(journal: Journal, path: str, end: int, error: Exception) -> None:
    """Journal a stop at a bad row: the rows before byte ``end`` were handled, and their digest lets
    the re-run (once the file is fixed after them) check they are unchanged (1.0 and 2.0 loads)."""
    journal.append(
        {
            "t": "input_error",
            "prefix_end": end,
            "prefix_sha256": _prefix_digest(path, end),
            "message": str(error),
        }
    )


def _prefix_digest(path: str, end: int) -> str:
    """SHA-256 of the first ``end`` bytes of ``path``."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        remaining = end
        while remaining > 0:
            chunk = fh.read(min(remaining, 4 << 20))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def restart(
    client: BulkClient,
    journal: Journal,
    job_id: str | None,
    notify: Callable[[str], None],
    leftovers: list[str],
) -> None:
    """``--restart``: abort the journal's job, remove its work files, empty the journal."""
    if job_id:
        try:
            client.abort_job(job_id)
            notify(f"job {job_id}: aborted (--restart); rows its processed batches loaded stay in Salesforce")
        except ApiError as exc:
            notify(f"job {job_id}: could not be aborted ({exc}); starting over anyway")
    start = journal.start or {}
    if start.get("work"):
        shutil.rmtree(start["work"], ignore_errors=True)
    for leftover in leftovers:
        try:
            os.unlink(leftover)
        except FileNotFoundError:
            pass
    discard(journal)


def _load(
    conn: Connection,
    client: BulkClient,
    journal: Journal,
    path: str,
    source: str,
    options: LoadOptions,
    progress: Progress,
    success_path: str,
    error_path: str,
    started: float,
    plan: InputPlan | None = None,
) -> LoadSummary:
    notify = options.notify or (lambda message: log.info("%s", message))
    identity = _identity(conn, source, options, success_path, error_path)
    input_fp = fingerprint(path)
    journal.reading = path  # type: ignore[attr-defined]
    ok_part, err_part = success_path + ".part", error_path + ".part"
    state = _Resume.of(journal)
    if journal.start is not None:
        if state.job_id is None:  # killed before the job existed: nothing was sent, nothing to resume
            restart(client, journal, None, notify, [ok_part, err_part])
        elif options.restart:
            restart(client, journal, state.job_id, notify, [ok_part, err_part])
        else:
            check_resumable(journal, identity, input_fp, source, state.job_id)
        state = _Resume.of(journal)
    if state.done is not None:  # killed while renaming the finished files
        notify(f"job {state.job_id}: resuming (the load had finished: moving its result files into place)")
        return _finish(
            journal, state.done, ok_part, err_part, success_path, error_path, started, resumed=True
        )
    work = work_folder(journal, identity, error_path, input=input_fp)
    if state.merged and not (_at_least(ok_part, state.offsets[0]) and _at_least(err_part, state.offsets[1])):
        log.warning(
            "the partial result files of job %s are missing or cut short: writing them again", state.job_id
        )
        state.merged, state.offsets = 0, (0, 0, 0, 0)
    resumed = state.job_id is not None
    with open(path, "rb") as fh:
        splitter = CsvSplitter(
            fh,
            max_records=options.batch_size,
            max_chars=options.max_chars,
            encoding=options.encoding,
            nul=options.nul,
            columns=plan,
        )
        job_id = state.job_id
        if job_id is None:
            try:
                job = client.create_job(
                    operation=options.operation,
                    object=options.object,
                    content_type="CSV",
                    external_id=options.external_id,
                    concurrency="Serial" if options.serial else None,
                )
            except BaseException:
                journal.finish()  # no job, nothing sent: no journal to resume
                shutil.rmtree(work, ignore_errors=True)
                raise
            job_id = job["id"]
            journal.append({"t": "job", "id": job_id})
            for stale in (success_path, error_path):  # the results of an earlier load are being replaced
                if os.path.exists(stale):
                    os.unlink(stale)
            notify(f"job {job_id}: created (an interrupted run resumes when re-run)")
        else:
            notify(
                f"job {job_id}: resuming ({len(state.batch_ids)} batches recorded as sent, {state.merged} merged)"
            )
        log.info("job %s: %s %s", job_id, options.operation, options.object)
        try:
            run = _Run(
                client,
                job_id,
                path,
                splitter,
                options,
                progress,
                work,
                ok_part,
                err_part,
                journal,
                state,
                notify,
            )
            run.go()
        except BaseException as exc:
            annotate_unfinished(exc, job_id, journal)
            raise
    if run.input_error is not None and run.slots:
        # Stop at the bad row but keep the job and the journal: once the file is fixed (after the rows
        # handled, which must stay as they are), the same command sends the rest into the same job.
        end = run.slots[-1].batch.end
        record_input_error(journal, path, end, run.input_error)
        error = BulkInputError(_input_error_message(run, job_id, success_path, error_path))
        annotate_unfinished(error, job_id, journal)
        raise error from run.input_error
    summary = {
        "rows": splitter.rows,
        "batches": len(run.slots),
        "succeeded": run.counts[0],
        "failed": run.counts[1],
        "nul": splitter.nul_count,
        "blank": splitter.blank_lines,
        "job": job_id,
        "unsent": run.unsent_rows,
        "stop": run.stop_reason,
    }
    result = _finish(
        journal,
        {"t": "done", **summary},
        ok_part,
        err_part,
        success_path,
        error_path,
        started,
        resumed=resumed,
        client=client,
    )
    if run.input_error is not None:  # in the first batch: nothing was sent, the job has no batch
        raise BulkInputError(
            f"{run.input_error} -- no row was sent: job {job_id} got no batch and was closed; "
            "fix the file and run the command again"
        ) from run.input_error
    return result


def _at_least(path: str, size: int) -> bool:
    try:
        return os.path.getsize(path) >= size
    except OSError:
        return False


def _input_error_message(run: _Run, job_id: str, success_path: str, error_path: str) -> str:
    """Exact counts: which rows were handled (sent, or put in the error file) and where the rest begins."""
    covered = sum(s.batch.rows for s in run.slots)
    sent = [s for s in run.slots if s.batch_id]
    sent_rows = sum(s.batch.rows for s in sent)
    not_sent = covered - sent_rows
    extra = f" ({not_sent:,} of them not sent, for the error file)" if not_sent else ""
    return (
        f"{run.input_error} -- rows 1 to {covered:,} were handled in job {job_id}{extra}: {sent_rows:,} sent in "
        f"{len(sent)} batches, {run.counts[0]:,} succeeded, {run.counts[1]:,} failed (results so far in "
        f"{success_path}.part and {error_path}.part); rows {covered + 1:,} and after were not sent: fix the "
        f"file from row {covered + 1:,} on and run the same command again to send them into the same job "
        "(the rows handled are not sent again; leave them unchanged), or add --restart to start over"
    )


def _finish(
    journal: Journal,
    done: dict[str, Any],
    ok_part: str,
    err_part: str,
    success_path: str,
    error_path: str,
    started: float,
    *,
    resumed: bool,
    client: BulkClient | Bulk2Client | None = None,
) -> LoadSummary:
    """Record the load as done, move the complete files onto their names, delete the journal."""
    if journal.last("done") is None:
        journal.append(done)
    for part, final in ((ok_part, success_path), (err_part, error_path)):
        if os.path.exists(part):
            replace_durably(part, final)
        elif not os.path.exists(final):
            raise BulkError(f"job {done['job']}: the result file {part} is missing; re-run with --restart")
    work = (journal.start or {}).get("work")
    journal.finish()
    if work:
        shutil.rmtree(work, ignore_errors=True)
    reasons = error_reasons(error_path).most_common(5) if done["failed"] else []
    return LoadSummary(
        job_id=done["job"],
        rows=done["rows"],
        batches=done["batches"],
        succeeded=done["succeeded"],
        failed=done["failed"],
        nul_stripped=done["nul"],
        blank_lines=done["blank"],
        retries=client.stats.retries if client else 0,
        resends=client.resends if client else 0,
        seconds=time.monotonic() - started,
        success_path=success_path,
        error_path=error_path,
        resumed=resumed,
        unsent_rows=done.get("unsent", 0),
        stop_reason=done.get("stop"),
        reasons=reasons,
    )


class _Run:
    """One run of the pipeline: upload, poll, download and merge, overlapped, every step journaled."""

    def __init__(
        self,
        client: BulkClient,
        job_id: str,
        path: str,
        splitter: CsvSplitter,
        options: LoadOptions,
        progress: Progress,
        work: str,
        ok_part: str,
        err_part: str,
        journal: Journal,
        state: _Resume,
        notify: Callable[[str], None],
    ) -> None:
        self.client, self.job_id, self.path, self.splitter = client, job_id, path, splitter
        self.options, self.progress, self.work, self.journal, self.state = (
            options,
            progress,
            work,
            journal,
            state,
        )
        self.ok_part, self.err_part, self.notify = ok_part, err_part, notify
        self.slots: list[_Slot] = []
        self.cv = threading.Condition()
        self.uploads_done = threading.Event()
        self.stop = threading.Event()  # no more uploads (an error, a batch failing for every batch, Ctrl-C)
        self.halt = threading.Event()  # Ctrl-C: poller and merger end after their current step
        self.in_flight = threading.BoundedSemaphore(options.concurrency * 2)
        self.fatal: list[BaseException] = []
        self.errors: list[BaseException] = []  # poller / merger failures, handed to the main thread
        self.by_id: dict[str, _Slot] = {}
        self.counts = [0, 0]
        self.merged_upto = state.merged
        self.input_error: BulkInputError | None = None
        self.fed_all = False  # the splitter reached the end of the input
        self.stop_reason: str | None = None
        self.stop_note = "not sent: the load stopped after an earlier error"
        self.orphans = 0  # batches of the job no journal record names (uploads cut off by a kill)
        self.job_closed = False  # closeJob answered: no batch can be added any more
        self._lock = threading.Lock()
        self.uploader = ThreadPoolExecutor(options.concurrency, thread_name_prefix="sfbulk-upload")
        self.downloader = ThreadPoolExecutor(options.concurrency, thread_name_prefix="sfbulk-results")

    @property
    def unsent_rows(self) -> int:
        return sum(s.batch.rows for s in self.slots if s.send_error is not None)

    # -- workers ------------------------------------------------------------------------------

    def mark_ready(self, slot: _Slot) -> None:
        with self.cv:
            slot.ready = True
            self.cv.notify_all()

    def upload(self, slot: _Slot) -> None:
        sent = False
        batch = slot.batch
        try:
            if self.stop.is_set():
                slot.send_error = self.stop_note
                return
            info = None
            if self.orphans > 0:  # resumed: was this batch's upload cut off after Salesforce took it?
                info = self.client.find_sent(self.job_id, batch.data)
                if info is not None:
                    with self._lock:
                        self.orphans -= 1
                    log.info(
                        "job %s: batch %d reached Salesforce before the interruption (%s); not sending it "
                        "again",
                        self.job_id,
                        batch.index + 1,
                        info.id,
                    )
            if info is None:
                info = self.client.add_batch(self.job_id, batch.data, label=f"batch {batch.index + 1}")
            # Written at once (a kill -9 cannot lose it) but not fsync'ed on its own: after a power
            # cut a lost "sent" record is recovered from listBatches, like an upload cut mid-request.
            self.journal.append(
                {
                    "t": "sent",
                    "i": batch.index,
                    "start": batch.start,
                    "end": batch.end,
                    "rows": batch.rows,
                    "id": info.id,
                },
                durable=False,
            )
            with self.cv:
                slot.batch_id = info.id
                self.by_id[info.id] = slot
            sent = True
            self.progress.sent(batch.rows)
        except SfBulkError as exc:
            slot.send_error = f"not sent: {exc}"
            log.error("job %s: batch %d not sent: %s", self.job_id, batch.index + 1, exc)
            if not isinstance(exc, BulkError) or "could not be sent" not in str(exc):
                self.stop.set()  # a non-transient answer (bad job, bad content type) will fail every batch
                self.fatal.append(exc)
        except BaseException as exc:  # noqa: BLE001 - the journal could not be written (disk full...)
            self.errors.append(exc)
            self.stop.set()
            with self.cv:
                self.cv.notify_all()
        finally:
            # The batch's bytes are no longer needed: results are paired with the file, not memory.
            slot.batch = _without_data(batch)
            self.in_flight.release()
            if not sent:
                self.mark_ready(slot)

    def fetch(self, slot: _Slot) -> None:
        info = slot.info
        assert info is not None and slot.batch_id is not None
        try:
            name = None
            if info.state == "Completed" or (info.state == "Failed" and info.records_processed > 0):
                name = f"{slot.batch.index}.csv"
                dest = os.path.join(self.work, name)
                self.client.download_batch_results(self.job_id, slot.batch_id, dest)
                slot.result_file = dest  # not fsync'ed: see _fetched_ok for what a power cut can leave
            self.journal.append(
                {
                    "t": "fetched",
                    "i": slot.batch.index,
                    "file": name,
                    "size": os.path.getsize(slot.result_file) if slot.result_file else 0,
                    "state": info.state,
                    "msg": info.state_message,
                    "processed": info.records_processed,
                    "failed": info.records_failed,
                },
                durable=False,
            )  # lost in a power cut: the results are downloaded again
        except BaseException as exc:  # noqa: BLE001 - re-raised by the merger in order
            slot.fetch_error = exc
        finally:
            self.mark_ready(slot)

    def check(self) -> tuple[bool, bool, list[str]]:
        finished = self.uploads_done.is_set()
        with self.cv:
            pending_ids = [s.batch_id for s in self.slots if s.batch_id and s.info is None and not s.merged]
        if not pending_ids:
            return finished, False, []
        progressed = False
        for info in self.client.list_batches(self.job_id):
            with self.cv:
                slot = self.by_id.get(info.id)
            if slot is None or slot.info is not None or not info.final:
                continue
            slot.info = info
            progressed = True
            self.progress.batch_done(info)
            observe.batch_done("load", info.state, info.records_processed, info.records_failed)
            if (
                info.state == "Failed"
                and info.records_processed == 0
                and not self.stop.is_set()
                and _FAILS_EVERY_BATCH.search(info.state_message or "")
            ):
                self.stop_reason = info.state_message
                self.stop_note = (
                    f"{info.state_message} (not sent: batch {slot.batch.index + 1} failed as a whole "
                    "for this reason, which fails every batch)"
                )
                self.stop.set()
                self.journal.append({"t": "stop", "reason": self.stop_reason, "note": self.stop_note})
                self.notify(
                    f"job {self.job_id}: batch {slot.batch.index + 1} failed as a whole: "
                    f"{info.state_message}; every batch would fail the same way, so the remaining "
                    "batches are not uploaded (their rows go to the error file with that reason)"
                )
            self.downloader.submit(self.fetch, slot)
        with self.cv:
            pending = [s.batch_id for s in self.slots if s.batch_id and s.info is None and not s.merged]
        return finished and not pending, progressed, [p for p in pending if p]

    def poller(self) -> None:
        try:
            poll_until(
                self.check,
                job_id=self.job_id,
                timeout=self.options.timeout,
                stop=self.halt,
                backoff=Backoff(initial=self.options.poll_initial, factor=1.3, cap=self.options.poll_cap),
                clock_from=self.uploads_done,
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.errors.append(exc)
            self.stop.set()
            with self.cv:
                self.cv.notify_all()

    def open_writer(self) -> ResultWriter:
        fields = parse_header(self.splitter.header)
        if self.state.merged:
            return ResultWriter(self.ok_part, self.err_part, fields, resume=self.state.offsets)
        return ResultWriter(self.ok_part, self.err_part, fields)

    def merger(self) -> None:
        """Write each batch's rows as soon as it and every batch before it are done (input order)."""
        writer: ResultWriter | None = None
        index = self.state.merged
        cv, slots = self.cv, self.slots
        # Checkpoints: the result files are fsync'ed and a "merged" record written at most every
        # CHECKPOINT_SECONDS (and at the end), not after every batch: fsync can cost 5-50 ms on a
        # busy or networked disk. Batches merged after the last checkpoint are merged again by a
        # re-run (their result files are kept until the checkpoint covers them).
        boundary: tuple[int, int, int, int, int] | None = None  # after the last whole batch written
        uncovered: list[str] = []  # result files of batches merged since the last checkpoint
        last_checkpoint = time.monotonic()

        def checkpoint() -> None:
            nonlocal boundary, last_checkpoint
            assert writer is not None
            if boundary is not None:
                writer.sync()
                ok_bytes, err_bytes, ok, failed, upto = boundary
                self.journal.append(
                    {
                        "t": "merged",
                        "i": upto,
                        "ok_bytes": ok_bytes,
                        "err_bytes": err_bytes,
                        "ok": ok,
                        "failed": failed,
                    }
                )
                boundary = None
            for name in uncovered:
                os.unlink(name)
            uncovered.clear()
            last_checkpoint = time.monotonic()

        try:
            while True:
                with cv:
                    while (
                        not self.errors
                        and not self.halt.is_set()
                        and not (index < len(slots) and slots[index].ready)
                        and not (self.uploads_done.is_set() and index >= len(slots))
                    ):
                        cv.wait(0.5)
                    if self.halt.is_set() or index >= len(slots) or not slots[index].ready:
                        break  # every batch written, or a failure: keep what is done, in order
                    slot = slots[index]
                if writer is None:
                    writer = self.open_writer()
                _write_slot(writer, self.path, self.splitter, slot)
                ok_bytes, err_bytes = writer.sync(durable=False)
                boundary = (ok_bytes, err_bytes, writer.succeeded, writer.failed, index)
                if slot.result_file is not None:
                    uncovered.append(slot.result_file)
                index += 1
                self.merged_upto = index
                if time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                    checkpoint()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.errors.append(exc)
            self.stop.set()
        finally:
            if writer is None:  # no batch done (or none at all): the files still exist, with their header
                try:
                    writer = self.open_writer()
                except OSError as exc:
                    self.errors.append(exc)
            if writer is not None:
                try:
                    checkpoint()  # what is written stays written (a partial batch after it is cut by a re-run)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self.errors.append(exc)
                if boundary is None:
                    self.counts[:] = [writer.succeeded, writer.failed]
                writer.close()

    # -- the main thread ----------------------------------------------------------------------

    def go(self) -> None:
        """Run to the end; raises BulkInterrupted on Ctrl-C once in-flight requests are journaled."""
        poll_thread = threading.Thread(target=self.poller, name="sfbulk-poll", daemon=True)
        merge_thread = threading.Thread(target=self.merger, name="sfbulk-merge", daemon=True)
        try:
            stopped = self.journal.last("stop")
            if stopped is not None:  # an earlier run stopped the uploads: a re-run does not start them again
                self.stop_reason, self.stop_note = stopped["reason"], stopped["note"]
                self.stop.set()
            if self.state.job_id is not None:
                for batch_id in self.state.batch_ids.values():
                    self.client.claim(batch_id)
                known = set(self.state.batch_ids.values())
                self.orphans = sum(1 for b in self.client.list_batches(self.job_id) if b.id not in known)
                if self.orphans:
                    self.notify(
                        f"job {self.job_id}: {self.orphans} more batches reached Salesforce before the "
                        "interruption without being recorded; each is matched to its rows, which are not "
                        "sent again"
                    )
            poll_thread.start()
            merge_thread.start()
            self._feed()
            self.uploader.shutdown(wait=True)
            with self.cv:
                self.uploads_done.set()
                self.cv.notify_all()
            if self.errors:
                raise self.errors[0]
            if self.input_error is None or not self.slots:  # else kept open for the rows after the bad one
                self.client.close_job(self.job_id)
                self.job_closed = True
            poll_thread.join()
            self.downloader.shutdown(wait=True)
            merge_thread.join()
        except KeyboardInterrupt:
            self._wind_down(poll_thread, merge_thread)
            raise BulkInterrupted(self._interrupted_message(), job_id=self.job_id) from None
        except BaseException:
            self._wind_down(poll_thread, merge_thread)
            raise
        if self.errors:
            raise self.errors[0]
        if self.orphans > 0:
            log.warning(
                "job %s: %d batches of the job match no batch of the input", self.job_id, self.orphans
            )
        if self.fatal and not any(s.batch_id for s in self.slots):
            raise BulkError(f"job {self.job_id}: no batch could be sent: {self.fatal[0]}") from self.fatal[0]

    def _feed(self) -> None:
        """Cut the input into batches and hand them to the uploaders (batches done before are skipped)."""
        state = self.state
        batches = iter(self.splitter)
        while True:
            try:
                batch = next(batches)
                self.progress.cut(batch.rows, batch.end)
            except StopIteration:
                self.fed_all = True
                self.progress.split_done(self.splitter.rows, self.splitter.batches)
                break
            except BulkInputError as exc:
                self.input_error = (
                    exc  # bad input mid-file: finish what was sent (results written), then report it
                )
                break
            index = batch.index
            batch_id = state.batch_ids.get(index)
            known = state.sent.get(index)
            if known is not None and (int(known["start"]), int(known["end"]), int(known["rows"])) != (
                batch.start,
                batch.end,
                batch.rows,
            ):
                raise BulkInputError(
                    f"batch {index + 1} of the input (rows {batch.first_row + 1:,} to "
                    f"{batch.first_row + batch.rows:,}) is not the batch job {self.job_id} was sent: the file "
                    "changed where rows were already sent, so resuming could send rows twice; restore it, or "
                    "add --restart"
                )
            if index < state.merged or batch_id is not None:
                slot = _Slot(_without_data(batch), batch_id=batch_id, merged=index < state.merged)
                slot.ready = slot.merged
                record = state.fetched.get(index)
                if not slot.merged and batch_id and record is not None and self._fetched_ok(record):
                    slot.info = BatchInfo(
                        batch_id,
                        self.job_id,
                        record["state"],
                        record.get("msg") or "",
                        int(record["processed"]),
                        int(record["failed"]),
                    )
                    slot.result_file = os.path.join(self.work, record["file"]) if record["file"] else None
                    slot.ready = True
                with self.cv:
                    self.slots.append(slot)
                    if batch_id and not slot.ready:
                        self.by_id[batch_id] = slot
                    self.cv.notify_all()
                if batch_id or slot.merged:
                    self.progress.sent(batch.rows)
                if record is not None and (
                    slot.merged or slot.info is not None
                ):  # finished in an earlier run
                    self.progress.batch_done(
                        BatchInfo(
                            batch_id or "",
                            self.job_id,
                            record["state"],
                            record.get("msg") or "",
                            int(record["processed"]),
                            int(record["failed"]),
                        )
                    )
                continue
            self.in_flight.acquire()
            slot = _Slot(batch)
            with self.cv:
                self.slots.append(slot)
            if self.stop.is_set():
                slot.send_error = self.stop_note
                slot.batch = _without_data(batch)
                self.in_flight.release()
                self.mark_ready(slot)
                continue
            self.uploader.submit(self.upload, slot)

    def _fetched_ok(self, record: dict[str, Any]) -> bool:
        """A result file an earlier run downloaded is still there, whole (else it is downloaded again).

        Result files are not fsync'ed (that cost more than the rest of the journal): after a power
        cut one may be missing, short, or (on some file systems) the right length but zero-filled.
        """
        if not record.get("file"):
            return True
        name = os.path.join(self.work, record["file"])
        try:
            if os.path.getsize(name) != int(record["size"]):
                return False
            with open(name, "rb") as fh:
                return b"\0" not in fh.read(4096)
        except OSError:
            return False

    def _wind_down(self, poll_thread: threading.Thread, merge_thread: threading.Thread) -> None:
        """Let in-flight requests finish (their journal records written), start nothing new.

        The job stays open: a re-run uploads the batches not sent yet.
        """
        self.stop.set()
        self.uploader.shutdown(wait=True, cancel_futures=True)
        self.halt.set()
        with self.cv:
            self.uploads_done.set()
            self.cv.notify_all()
        if poll_thread.is_alive():
            poll_thread.join()
        self.downloader.shutdown(wait=True, cancel_futures=True)
        if merge_thread.is_alive():
            merge_thread.join()

    def _interrupted_message(self) -> str:
        sent = [s for s in self.slots if s.batch_id]
        done = sum(1 for s in sent if s.info is not None)
        rows = sum(s.batch.rows for s in sent)
        more = "" if self.fed_all and not self.stop.is_set() else " so far"
        state = (
            "is closed in Salesforce (every batch was sent)"
            if self.job_closed
            else "stays open in Salesforce"
        )
        return (
            f"job {self.job_id} {state} with {len(sent)} batches "
            f"({rows:,} rows) sent{more}, {done} of them processed, {self.merged_upto} batches' results "
            "written; re-run the same command to resume (nothing is sent twice), or add --restart to abort "
            "the job and start over"
        )


def _without_data(batch: Batch) -> Batch:
    return Batch(batch.index, batch.first_row, batch.rows, batch.start, batch.end, b"")


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


__all__ = [
    "OPERATIONS",
    "LoadOptions",
    "LoadSummary",
    "Progress",
    "check_before_job",
    "check_resumable",
    "default_outputs",
    "load_csv",
    "restart",
]
