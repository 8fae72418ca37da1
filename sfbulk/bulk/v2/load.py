"""``sfbulk load --api 2``: a CSV file into Salesforce through Bulk API 2.0, resumable, results in input order.

Pipeline (the pieces are Bulk 1.0's: :mod:`~sfbulk.bulk.csvsplit`, :mod:`~sfbulk.bulk.journal`,
:mod:`~sfbulk.bulk.results`, :mod:`~sfbulk.bulk.precheck`, :mod:`~sfbulk.bulk.poll`, the progress hooks):

1. the splitter cuts the file on row boundaries into chunks, and consecutive chunks are grouped
   into jobs of at most ``max_job_bytes`` (100 MB of CSV: Salesforce takes 150 MB base64 per
   upload); each job's CSV is written to a work file (a retried or replayed upload sends it again);
2. the jobs run in parallel (``concurrency``): create, one upload, UploadComplete, poll until
   JobComplete/Failed/Aborted, download the successful, failed and unprocessed results;
3. each job's results are matched back to its input rows by content (:mod:`sfbulk.bulk.v2.match`)
   and written to ``success.csv`` and ``error.csv`` in input order, job after job, every input
   column kept, as Bulk 1.0 writes them.

Every step is journaled before it is acted on: a job's byte range and id, its upload, its close,
its result files, each merged job. Re-running the same command resumes: a job recorded as created
is never created again, an upload cut by kill -9 is sent again only if the job is still Open and
has no data (Salesforce refuses a second upload, which proves the first one landed), merged jobs
are kept.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any

from sfbulk import observe
from sfbulk.bulk.client import BatchInfo
from sfbulk.bulk.csvsplit import MAX_CHARS, MAX_RECORDS, Batch, CsvSplitter
from sfbulk.bulk.journal import (
    Journal,
    annotate_unfinished,
    fingerprint,
    journal_path,
    open_journal,
    work_folder,
)
from sfbulk.bulk.load import (
    LoadOptions,
    LoadSummary,
    Progress,
    _at_least,
    _finish,
    _identity,
    check_before_job,
    check_resumable,
    default_outputs,
    record_input_error,
    restart,
)
from sfbulk.bulk.poll import Backoff, poll_until
from sfbulk.bulk.precheck import InputPlan
from sfbulk.bulk.results import ResultWriter, input_records, parse_header
from sfbulk.bulk.v2.client import INGEST_FINAL, Bulk2Client
from sfbulk.bulk.v2.match import Matcher, OrderedMatch, OutOfOrder, parse_records, record_digests
from sfbulk.errors import ApiError, BulkError, BulkInputError, BulkInterrupted

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.connector.connection import Connection

log = logging.getLogger("sfbulk.bulk.v2.load")

#: raw CSV per job: Salesforce takes at most 150 MB base64 per upload, i.e. 100 MB of CSV (bulk-api.md §8.1)
MAX_JOB_BYTES = 100_000_000
RESULT_KINDS = ("successfulResults", "failedResults", "unprocessedrecords")
POLL_CAP = 2.0  # seconds between two status reads of a job, at most


@dataclass
class _Job:
    n: int
    chunks: list[Batch] = field(default_factory=list)  # the chunks' byte ranges (no data)
    size: int = 0  # bytes of the job's CSV, header included
    file: str | None = None  # the job's CSV in the work folder, until it is uploaded
    id: str | None = None
    uploaded: bool = False
    closed: bool = False
    fetched: dict[str, Any] | None = None  # the "fetched" record: final state, counts, result files
    error: BaseException | None = None
    ready: bool = False  # results on disk (or an error): the merger may take it
    merged: bool = False  # written to the result files by an earlier run

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chunks)

    @property
    def start(self) -> int:
        return self.chunks[0].start

    @property
    def end(self) -> int:
        return self.chunks[-1].end


@dataclass
class _Resume:
    jobs: dict[int, dict[str, Any]] = field(default_factory=dict)  # job index -> its "job" record
    uploaded: set[int] = field(default_factory=set)
    closed: set[int] = field(default_factory=set)
    fetched: dict[int, dict[str, Any]] = field(default_factory=dict)
    merged: int = 0  # jobs 0..merged-1 are in the .part files
    offsets: tuple[int, int, int, int] = (0, 0, 0, 0)
    done: dict[str, Any] | None = None

    @classmethod
    def of(cls, journal: Journal) -> _Resume:
        state = cls()
        for r in journal.records:
            t, n = r.get("t"), r.get("n")
            if t == "job2":
                state.jobs[int(r["n"])] = r
            elif t == "uploaded":
                state.uploaded.add(int(n))  # type: ignore[arg-type]
            elif t == "closed":
                state.closed.add(int(n))  # type: ignore[arg-type]
            elif t == "fetched2":
                state.fetched[int(n)] = r  # type: ignore[arg-type]
            elif t == "merged2":
                state.merged = int(r["n"]) + 1
                state.offsets = (int(r["ok_bytes"]), int(r["err_bytes"]), int(r["ok"]), int(r["failed"]))
            elif t == "done":
                state.done = r
        return state


def load_csv_v2(
    conn: Connection,
    path: str,
    options: LoadOptions,
    progress: Progress | None = None,
    *,
    max_job_bytes: int = MAX_JOB_BYTES,
) -> LoadSummary:
    """Load the CSV file at ``path`` through Bulk API 2.0 (or resume the same command's unfinished load).

    ``LoadSummary.job_id`` lists the jobs' ids, comma-separated; ``batches`` is the number of jobs.
    """
    options.validate()
    if not 1_000 <= max_job_bytes <= MAX_JOB_BYTES:
        raise BulkInputError(
            f"--max-job-bytes must be between 1,000 and {MAX_JOB_BYTES:,}, got {max_job_bytes:,}"
        )
    progress = progress or Progress()
    started = time.monotonic()
    d_ok, d_err = default_outputs(path)
    success_path, error_path = options.success_path or d_ok, options.error_path or d_err
    source = options.source_name or path
    client = Bulk2Client(conn, retry=options.retry)
    plan = check_before_job(path, source, options, success_path, error_path)
    journal = open_journal(options.journal or journal_path(success_path))
    try:
        return _load(
            conn,
            client,
            journal,
            path,
            source,
            options,
            progress,
            success_path,
            error_path,
            started,
            plan,
            max_job_bytes,
        )
    finally:
        journal.close()
        progress.close()


def _load(
    conn: Connection,
    client: Bulk2Client,
    journal: Journal,
    path: str,
    source: str,
    options: LoadOptions,
    progress: Progress,
    success_path: str,
    error_path: str,
    started: float,
    plan: InputPlan,
    max_job_bytes: int,
) -> LoadSummary:
    notify = options.notify or (lambda message: log.info("%s", message))
    identity = {
        **_identity(conn, source, options, success_path, error_path),
        "api": 2,
        "max_job_bytes": max_job_bytes,
    }
    input_fp = fingerprint(path)
    journal.reading = path  # type: ignore[attr-defined]
    ok_part, err_part = success_path + ".part", error_path + ".part"
    state = _Resume.of(journal)
    if journal.start is not None:
        ids = [r["id"] for r in state.jobs.values()]
        if options.restart or not ids:
            for job_id in ids[1:]:
                _abort_quietly(client, job_id, notify)
            restart(client, journal, ids[0] if ids else None, notify, [ok_part, err_part])  # type: ignore[arg-type]
        else:
            check_resumable(journal, identity, input_fp, source, ", ".join(ids))
        state = _Resume.of(journal)
    if state.done is not None:
        notify(
            f"job {state.done['job']}: resuming (the load had finished: moving its result files into place)"
        )
        return _finish(
            journal,
            state.done,
            ok_part,
            err_part,
            success_path,
            error_path,
            started,
            resumed=True,
            client=client,
        )
    work = work_folder(journal, identity, error_path, input=input_fp)
    if state.merged and not (_at_least(ok_part, state.offsets[0]) and _at_least(err_part, state.offsets[1])):
        log.warning("the partial result files are missing or cut short: writing them again")
        state.merged, state.offsets = 0, (0, 0, 0, 0)
    resumed = bool(state.jobs)
    if resumed:
        notify(
            f"job {state.jobs[min(state.jobs)]['id']}: resuming ({len(state.jobs)} jobs recorded as created, "
            f"{len(state.uploaded)} uploaded, {state.merged} merged)"
        )
    else:
        for stale in (success_path, error_path):  # the results of an earlier load are being replaced
            if os.path.exists(stale):
                os.unlink(stale)
    with open(path, "rb") as fh:
        splitter = CsvSplitter(
            fh,
            max_records=MAX_RECORDS,
            max_chars=min(MAX_CHARS, max_job_bytes),
            encoding=options.encoding,
            nul=options.nul,
            columns=plan,
        )
        run = _Run(
            client,
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
            max_job_bytes,
        )
        try:
            run.go()
        except BaseException as exc:
            annotate_unfinished(exc, run.first_id or "", journal)
            raise
    ids = [j.id for j in run.jobs if j.id]
    if run.input_error is not None:
        if not run.jobs:
            journal.finish()
            shutil.rmtree(work, ignore_errors=True)
            raise run.input_error
        end = run.jobs[-1].end
        record_input_error(journal, path, end, run.input_error)
        error = BulkInputError(
            f"{run.input_error} -- rows 1 to {sum(j.rows for j in run.jobs):,} were loaded in {len(ids)} jobs "
            f"({', '.join(ids)}; results so far in {success_path}.part and {error_path}.part); the rows after "
            "them were not sent: fix the file after those rows and run the same command again to send the rest "
            "(the rows handled are not sent again; leave them unchanged), or add --restart to start over"
        )
        annotate_unfinished(error, ids[0], journal)
        raise error from run.input_error
    summary = {
        "rows": splitter.rows,
        "batches": len(run.jobs),
        "succeeded": run.counts[0],
        "failed": run.counts[1],
        "nul": splitter.nul_count,
        "blank": splitter.blank_lines,
        "job": ",".join(ids),
        "unsent": 0,
        "stop": None,
    }
    return _finish(
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


def _abort_quietly(client: Bulk2Client, job_id: str, notify: Callable[[str], None]) -> None:
    try:
        client.abort_job(job_id)
        notify(f"job {job_id}: aborted (--restart)")
    except ApiError as exc:
        notify(f"job {job_id}: could not be aborted ({exc}); starting over anyway")


class _Run:
    """One run: jobs cut, created and uploaded in order, processed in parallel, merged in order."""

    def __init__(
        self,
        client: Bulk2Client,
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
        max_job_bytes: int,
    ) -> None:
        self.client, self.path, self.splitter, self.options = client, path, splitter, options
        self.progress, self.work, self.journal, self.state, self.notify = (
            progress,
            work,
            journal,
            state,
            notify,
        )
        self.ok_part, self.err_part, self.max_job_bytes = ok_part, err_part, max_job_bytes
        self.jobs: list[_Job] = []
        self.cv = threading.Condition()
        self.fed_all = False
        self.fed_done = False  # no more jobs will be added (the merger ends after the last one)
        self.halt = threading.Event()  # Ctrl-C or a failure: workers stop after their current step
        self.errors: list[BaseException] = []
        self.counts = [0, 0]
        self.merged_upto = state.merged
        self.input_error: BulkInputError | None = None
        self.in_flight = threading.Semaphore(options.concurrency)
        self.pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="sfbulk-job")

    @property
    def first_id(self) -> str | None:
        return next((j.id for j in self.jobs if j.id), None)

    # -- cutting and creating jobs (main thread) ----------------------------------------------

    def _feed(self) -> None:
        job: _Job | None = None
        out: Any = None
        header = b""
        chunks = iter(self.splitter)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except BulkInputError as exc:
                self.input_error = exc
                job = None  # the rows of the unfinished job are not sent: the re-run sends them
                if out is not None:
                    out.close()
                break
            if not header:
                header = self.splitter.header
            body = len(chunk.data) - len(header)
            if job is not None and job.size + body > self.max_job_bytes:
                self._dispatch(job, out)
                job = out = None
                if self.halt.is_set():
                    return
            if job is None:
                job = _Job(len(self.jobs), size=len(header))
                if self._needs_data(job.n):
                    job.file = os.path.join(self.work, f"job-{job.n}.csv")
                    out = open(job.file, "wb")
                    out.write(header)
            if out is not None:
                out.write(memoryview(chunk.data)[len(header) :])
            job.size += body
            job.chunks.append(Batch(chunk.index, chunk.first_row, chunk.rows, chunk.start, chunk.end, b""))
            self.progress.cut(chunk.rows, chunk.end)
            if self.halt.is_set():
                if out is not None:
                    out.close()
                return
        if job is not None:
            self._dispatch(job, out)
        self.fed_all = self.input_error is None
        self.progress.split_done(self.splitter.rows, len(self.jobs))

    def _needs_data(self, n: int) -> bool:
        return n >= self.state.merged and n not in self.state.uploaded

    def _dispatch(self, job: _Job, out: Any) -> None:
        """The job's chunks are all cut: create it in Salesforce (or find it in the journal), start it."""
        if out is not None:
            out.close()
        state = self.state
        known = state.jobs.get(job.n)
        if known is not None and (int(known["start"]), int(known["end"]), int(known["rows"])) != (
            job.start,
            job.end,
            job.rows,
        ):
            raise BulkInputError(
                f"job {known['id']} was sent rows {int(known['first']) + 1:,} to "
                f"{int(known['first']) + int(known['rows']):,} of the input, which the file no longer has in the "
                "same place: it changed where rows were already sent, so resuming could send rows twice; "
                "restore it, or add --restart"
            )
        job.merged = job.n < state.merged
        if job.merged:
            job.id, job.ready = known["id"] if known else None, True
            with self.cv:
                self.jobs.append(job)
            self.progress.sent(job.rows)
            return
        while not self.in_flight.acquire(timeout=0.2):  # at most `concurrency` jobs between cut and merged
            if self.halt.is_set():
                return
        if known is None:
            info = self.client.create_job(
                operation=self.options.operation,
                object=self.options.object,
                external_id=self.options.external_id,
                line_ending="CRLF" if self.splitter.header.endswith(b"\r\n") else "LF",
            )
            job.id = str(info["id"])
            self.journal.append(
                {
                    "t": "job2",
                    "n": job.n,
                    "id": job.id,
                    "start": job.start,
                    "end": job.end,
                    "rows": job.rows,
                    "first": job.chunks[0].first_row,
                }
            )
            self.notify(
                f"job {job.id}: created for rows {job.chunks[0].first_row + 1:,} to "
                f"{job.chunks[0].first_row + job.rows:,} (an interrupted run resumes when re-run)"
            )
        else:
            job.id = str(known["id"])
            job.uploaded = job.n in state.uploaded
            job.closed = job.n in state.closed
            job.fetched = state.fetched.get(job.n)
        with self.cv:
            self.jobs.append(job)
        self.pool.submit(self._work, job)

    # -- one job (worker threads) -------------------------------------------------------------

    def _work(self, job: _Job) -> None:
        try:
            assert job.id is not None
            if job.fetched is not None and self._fetched_ok(job.fetched):
                self._done(job, job.fetched, resumed=True)
                return
            if not job.uploaded:
                if job.n in self.state.jobs and self.client.get_job(job.id).get("state") != "Open":
                    log.info("job %s: already closed by an earlier run: its data was uploaded", job.id)
                elif not self.client.upload_job_data(job.id, str(job.file)):
                    log.info("job %s: Salesforce already has its data (an earlier attempt landed)", job.id)
                self.journal.append({"t": "uploaded", "n": job.n})
                job.uploaded = True
            self.progress.sent(job.rows)
            if job.file is not None:
                os.unlink(job.file)
                job.file = None
            if self.halt.is_set():
                return
            if not job.closed:
                self.client.close_job(job.id)
                self.journal.append({"t": "closed", "n": job.n})
                job.closed = True
            info = self._poll(job)
            if info is None:
                return
            if self.halt.is_set():
                return
            job_id = job.id

            def fetch(kind: str) -> tuple[str, int]:
                name = f"job-{job.n}-{kind}.csv"
                return name, self.client.download_results(job_id, kind, os.path.join(self.work, name))

            with ThreadPoolExecutor(len(RESULT_KINDS), thread_name_prefix="sfbulk-results") as fetchers:
                files = dict(zip(RESULT_KINDS, fetchers.map(fetch, RESULT_KINDS), strict=True))
            record = {
                "t": "fetched2",
                "n": job.n,
                "state": info.get("state"),
                "msg": info.get("errorMessage") or "",
                "processed": int(info.get("numberRecordsProcessed") or 0),
                "failed": int(info.get("numberRecordsFailed") or 0),
                "files": {k: list(v) for k, v in files.items()},
            }
            self.journal.append(record, durable=False)  # lost in a power cut: downloaded again
            self._done(job, record)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the merger, in job order
            job.error = exc
            self.halt.set()
            with self.cv:
                job.ready = True
                self.cv.notify_all()

    def _poll(self, job: _Job) -> dict[str, Any] | None:
        found: dict[str, Any] = {}
        assert job.id is not None
        job_id = job.id

        def check() -> tuple[bool, bool, list[str]]:
            info = self.client.get_job(job_id)
            if info.get("state") in INGEST_FINAL:
                found.update(info)
                return True, True, []
            return False, False, [job_id]

        # A 2.0 job reports no per-batch progress to reset the backoff on, so the delay is capped at
        # POLL_CAP: one GET per job every 2 s at most, never 10 s of waiting after the job finished.
        poll_until(
            check,
            job_id=job_id,
            timeout=self.options.timeout,
            stop=self.halt,
            what="jobs",
            backoff=Backoff(
                initial=self.options.poll_initial,
                factor=1.3,
                cap=max(self.options.poll_initial, min(self.options.poll_cap, POLL_CAP)),
            ),
        )
        return found or None

    def _fetched_ok(self, record: dict[str, Any]) -> bool:
        try:
            return all(
                os.path.getsize(os.path.join(self.work, name)) == int(size)
                for name, size in record["files"].values()
            )
        except OSError:
            return False

    def _done(self, job: _Job, record: dict[str, Any], resumed: bool = False) -> None:
        job.fetched = record
        if not resumed:  # a job finished in an earlier run was counted by that run
            observe.batch_done("load", record["state"], record["processed"], record["failed"])
        self.progress.batch_done(
            BatchInfo(
                job.id or "",
                job.id or "",
                "Failed" if record["state"] != "JobComplete" else "Completed",
                record["msg"],
                record["processed"],
                record["failed"],
            )
        )
        with self.cv:
            job.ready = True
            self.cv.notify_all()

    # -- merging (its own thread) -------------------------------------------------------------

    def merger(self) -> None:
        writer: ResultWriter | None = None
        index = self.state.merged
        try:
            fields = None
            while True:
                with self.cv:
                    while (
                        not self.halt.is_set()
                        and not (index < len(self.jobs) and self.jobs[index].ready)
                        and not (self.fed_done and index >= len(self.jobs))
                    ):
                        self.cv.wait(0.5)
                    if index >= len(self.jobs) or not self.jobs[index].ready:
                        break
                    job = self.jobs[index]
                if job.error is not None:
                    raise job.error
                if fields is None:
                    fields = parse_header(self.splitter.header)
                if writer is None:
                    resume = self.state.offsets if self.state.merged else None
                    writer = ResultWriter(self.ok_part, self.err_part, fields, resume=resume)
                if not job.merged:
                    writer = self._merge(writer, job, len(fields))
                    ok_bytes, err_bytes = writer.sync()
                    self.journal.append(
                        {
                            "t": "merged2",
                            "n": job.n,
                            "ok_bytes": ok_bytes,
                            "err_bytes": err_bytes,
                            "ok": writer.succeeded,
                            "failed": writer.failed,
                        }
                    )
                    for name, _size in (job.fetched or {}).get("files", {}).values():
                        os.unlink(os.path.join(self.work, name))
                    self.in_flight.release()
                index += 1
                self.merged_upto = index
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.errors.append(exc)
            self.halt.set()
        finally:
            if writer is None and not self.errors:
                try:
                    fields = parse_header(self.splitter.header) if self.splitter.header else []
                    resume = self.state.offsets if self.state.merged else None
                    writer = ResultWriter(self.ok_part, self.err_part, fields, resume=resume)
                except OSError as exc:
                    self.errors.append(exc)
            if writer is not None:
                self.counts[:] = [writer.succeeded, writer.failed]
                writer.close()

    def _merge(self, writer: ResultWriter, job: _Job, width: int) -> ResultWriter:
        """Write the job's rows in input order; returns the writer (a new one after a fallback)."""
        record = job.fetched or {}
        paths = {
            kind: os.path.join(self.work, name) for kind, (name, _size) in record.get("files", {}).items()
        }
        state, msg = record.get("state"), record.get("msg")
        reason = f"not processed: job {job.id} ended {state}" + (f": {msg}" if msg else "")
        sp = self.splitter
        ok_bytes, err_bytes = writer.sync(durable=False)
        before = (ok_bytes, err_bytes, writer.succeeded, writer.failed)
        ordered = OrderedMatch(paths, width, reason)
        try:
            for chunk in job.chunks:
                records = input_records(self.path, chunk, sp.encoding, sp.nul, sp.sent_records)
                writer.add_batch(records, [ordered.take(cells) for cells in parse_records(records)], reason)
            ordered.finish()
            return writer
        except OutOfOrder:
            log.info("job %s: results not in input order; matching them by content", job.id)
        finally:
            ordered.close()
        writer.close()  # cut back to where this job began, then the general join
        writer = ResultWriter(self.ok_part, self.err_part, parse_header(sp.header), resume=before)
        matcher = Matcher(os.path.join(self.work, f"job-{job.n}.match"), width)
        try:
            for kind, path in paths.items():
                matcher.add_result_file(kind, path)
            for chunk in job.chunks:
                matcher.add_inputs(
                    record_digests(input_records(self.path, chunk, sp.encoding, sp.nul, sp.sent_records))
                )
            outcomes = matcher.outcomes(reason)
            for chunk in job.chunks:
                records = input_records(self.path, chunk, sp.encoding, sp.nul, sp.sent_records)
                writer.add_batch(records, list(islice(outcomes, len(records))), reason)
        finally:
            matcher.close()
        return writer

    # -- the main thread ----------------------------------------------------------------------

    def go(self) -> None:
        merge_thread = threading.Thread(target=self.merger, name="sfbulk-merge", daemon=True)
        merge_thread.start()
        try:
            self._feed()
            with self.cv:
                self.fed_done = True
                self.cv.notify_all()
            merge_thread.join()
            self.pool.shutdown(wait=True)
        except KeyboardInterrupt:
            self._wind_down(merge_thread)
            raise BulkInterrupted(self._interrupted_message(), job_id=self.first_id) from None
        except BaseException:
            self._wind_down(merge_thread)
            raise
        if self.errors:
            raise self.errors[0]
        failed = next((j.error for j in self.jobs if j.error is not None), None)
        if failed is not None:  # a job failed after the merger stopped at an earlier one
            raise failed
        if self.merged_upto < len(self.jobs):
            raise BulkError(f"{len(self.jobs) - self.merged_upto} jobs' results were not written")

    def _wind_down(self, merge_thread: threading.Thread) -> None:
        self.halt.set()
        with self.cv:
            self.fed_done = True
            self.cv.notify_all()
        self.pool.shutdown(wait=True, cancel_futures=True)
        if merge_thread.is_alive():
            merge_thread.join()

    def _interrupted_message(self) -> str:
        ids = [j.id for j in self.jobs if j.id]
        uploaded = sum(1 for j in self.jobs if j.uploaded or j.merged)
        return (
            f"jobs {', '.join(ids) or '(none)'}: {uploaded} of {len(ids)} uploaded, {self.merged_upto} "
            "jobs' results written; re-run the same command to resume (nothing is sent twice), or add "
            "--restart to abort the jobs and start over"
        )


__all__ = ["MAX_JOB_BYTES", "load_csv_v2"]
