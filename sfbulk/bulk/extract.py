"""``sfbulk extract``: a SOQL query into one CSV file, streamed to disk, PK chunking handled.

A query job gets one batch holding the SOQL. Without PK chunking that batch produces one or more
result files. With PK chunking Salesforce splits the query into chunk batches and marks the
original batch ``NotProcessed``: that is the normal outcome, not a failure (heroku/salesforce-bulk
#62 crashes on it). Every Completed data batch's result files are downloaded in chunks to work
files while other batches still run, then concatenated in batch order into ``--out`` with the
header written once. Memory stays flat whatever the result size.
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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sfbulk import observe
from sfbulk.bulk.client import BatchInfo, BulkClient, parse_batch_info
from sfbulk.bulk.journal import (
    Journal,
    annotate_unfinished,
    discard,
    fsync_file,
    journal_path,
    open_journal,
    replace_durably,
    work_folder,
)
from sfbulk.bulk.load import Progress
from sfbulk.bulk.poll import Backoff, poll_until
from sfbulk.bulk.retry import RetryPolicy, is_transient
from sfbulk.errors import ApiError, BulkError, BulkInputError, BulkInterrupted, TransportError

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.connector.connection import Connection

log = logging.getLogger("sfbulk.bulk.extract")

_FROM = re.compile(r"\bfrom\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_SELECT = re.compile(r"\s*select\s+(.+?)\s+from\s", re.IGNORECASE | re.DOTALL)
NO_RECORDS = b"Records not found for this query"
COPY_CHUNK = 1 << 20


@dataclass
class ExtractOptions:
    query_all: bool = False
    pk_chunking: str | None = None  # None: off; "true" or a chunk size
    object: str | None = None  # defaults to the FROM object of the SOQL
    concurrency: int = 4
    timeout: float | None = 7200.0
    poll_initial: float = 0.1
    poll_cap: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    restart: bool = False  # abandon the job of an unfinished journal and start over
    notify: Callable[[str], None] | None = None  # user-facing notes: job created, resumed
    journal: str | None = None  # the journal file (default: next to the output, journal_path())


@dataclass
class ExtractSummary:
    job_id: str
    rows: int
    batches: int
    result_files: int
    bytes_written: int
    nul_stripped: int
    retries: int
    seconds: float
    out_path: str


def object_of(soql: str) -> str:
    match = _FROM.search(soql)
    if match is None:
        raise BulkInputError("cannot find the object in the query (no FROM clause); pass --object")
    return match.group(1)


def soql_header(soql: str) -> bytes | None:
    """The CSV header line for a query that found no records: its field list as written.

    Salesforce answers an empty result with ``Records not found for this query`` and no header;
    an output file without one breaks every reader (and ``sfbulk load`` refuses it), so the field
    names are taken from the SELECT list, quoted as Salesforce quotes them.
    """
    match = _SELECT.match(soql)
    if match is None:
        return None
    depth = 0
    field: list[str] = []
    fields: list[str] = []
    for ch in match.group(1):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            fields.append("".join(field).strip())
            field = []
        else:
            field.append(ch)
    fields.append("".join(field).strip())
    if not all(fields):
        return None
    return (",".join('"' + f.replace('"', '""') + '"' for f in fields) + "\n").encode("utf-8")


def pk_chunking_header(value: str | None) -> str | None:
    """``--pk-chunking`` value -> Sforce-Enable-PKChunking header (None: off)."""
    if value is None:
        return None
    value = str(value).strip()
    if value.lower() in ("", "true"):
        return "true"
    if value.isdigit() and 1 <= int(value) <= 250_000:
        return f"chunkSize={int(value)}"
    raise BulkInputError(f"--pk-chunking takes a chunk size between 1 and 250,000, got {value!r}")


class _Nul:
    """Counts and strips NUL bytes from result chunks (Salesforce data can carry them)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, chunk: bytes) -> bytes:
        n = chunk.count(b"\0")
        if n:
            with self._lock:
                self.count += n
            return chunk.replace(b"\0", b"")
        return chunk


def extract(
    conn: Connection,
    soql: str,
    out_path: str,
    options: ExtractOptions | None = None,
    progress: Progress | None = None,
) -> ExtractSummary:
    """Run ``soql`` as a Bulk query job and write every record to ``out_path`` (CSV, UTF-8).

    The run is journaled next to ``out_path`` (:mod:`sfbulk.bulk.journal`): the job, its query
    batch and every result file downloaded. Running the same command again after an interruption
    reuses the job and downloads only the result files not finished; a finished extract deletes
    its journal.
    """
    options = options or ExtractOptions()
    progress = progress or Progress()
    started = time.monotonic()
    soql = soql.strip()
    if not soql:
        raise BulkInputError("the query is empty")
    pk = pk_chunking_header(options.pk_chunking)
    sobject = options.object or object_of(soql)
    client = BulkClient(conn, retry=options.retry)
    tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(out_path))).close()  # writable, before a job
    journal = open_journal(options.journal or journal_path(out_path))
    try:
        return _extract(conn, client, journal, soql, sobject, pk, out_path, options, progress, started)
    finally:
        journal.close()  # kept unless the extract finished (then already deleted)
        progress.close()


def _extract(
    conn: Connection,
    client: BulkClient,
    journal: Journal,
    soql: str,
    sobject: str,
    pk: str | None,
    out_path: str,
    options: ExtractOptions,
    progress: Progress,
    started: float,
) -> ExtractSummary:
    notify = options.notify or (lambda message: log.info("%s", message))
    identity = {
        "kind": "extract",
        "soql": soql,
        "object": sobject,
        "query_all": options.query_all,
        "pk_chunking": pk or "",
        "out": os.path.abspath(out_path),
        "api_url": str(getattr(getattr(conn, "params", None), "api_url", "") or ""),
    }
    part = out_path + ".part"
    job_rec = journal.last("job")
    if journal.start is not None:
        if job_rec is None or options.restart:
            _restart(client, journal, job_rec["id"] if job_rec else None, notify, part)
            job_rec = None
        else:
            check_same_command(journal, identity, str(job_rec["id"]), _FLAGS)
    done = journal.last("done")
    if done is not None:  # killed while moving the finished file onto its name
        return _finish(journal, done, part, out_path, started, client)
    work = work_folder(journal, identity, out_path)
    if job_rec is None:
        try:
            job = client.create_job(
                operation="queryAll" if options.query_all else "query",
                object=sobject,
                content_type="CSV",
                pk_chunking=pk,
            )
        except BaseException:
            journal.finish()  # no job: nothing to resume
            shutil.rmtree(work, ignore_errors=True)
            raise
        job_id = job["id"]
        journal.append({"t": "job", "id": job_id})
        notify(f"job {job_id}: created (an interrupted run resumes when re-run)")
    else:
        job_id = str(job_rec["id"])
    fetched = _fetched_files(journal, work)
    if job_rec is not None:
        notify(f"job {job_id}: resuming ({len(fetched)} result files were downloaded before)")
    try:
        batch_rec = journal.last("batch")
        if batch_rec is not None:
            original = str(batch_rec["id"])
        else:
            original = _add_query_batch(client, job_id, soql, resumed=job_rec is not None)
            journal.append({"t": "batch", "id": original})
        parts, data_batches = _run(client, job_id, original, options, progress, work, journal, fetched)
        written, files = _concatenate(parts, part, soql_header(soql))
        client.close_job(job_id)
    except KeyboardInterrupt:
        done_files = len(_fetched_files(journal, work))
        raise BulkInterrupted(
            f"job {job_id}: {done_files} result files downloaded so far; re-run the same command to "
            "resume (only the files not downloaded yet are fetched), or add --restart to start over",
            job_id=job_id,
        ) from None
    except BaseException as exc:
        try:
            client.close_job(job_id)
        except Exception as close_exc:  # noqa: BLE001 - the original error matters more
            log.warning("job %s could not be closed: %s", job_id, close_exc)
        annotate_unfinished(exc, job_id, journal)
        raise
    nuls = sum(int(r.get("nul", 0)) for r in _latest_files(journal).values())
    record = {
        "t": "done",
        "job": job_id,
        "rows": sum(b.records_processed for b in data_batches),
        "batches": len(data_batches),
        "files": files,
        "bytes": written,
        "nul": nuls,
    }
    journal.append(record)
    return _finish(journal, record, part, out_path, started, client)


_FLAGS = {
    "soql": "the query",
    "object": "--object",
    "query_all": "--all",
    "pk_chunking": "--pk-chunking",
    "out": "--out",
    "api_url": "--api-url",
}


def check_same_command(
    journal: Journal, identity: dict[str, Any], job_id: str, flags: dict[str, str]
) -> None:
    """Refuse to resume a journal another extract command wrote; ``flags`` names its keys as the user wrote them."""
    old = (journal.start or {}).get("cmd") or {}
    if old == identity:
        return
    differs = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
    raise BulkInputError(
        f"{journal.path} holds the unfinished extract of another command (job {job_id}; it differs "
        f"in {', '.join(flags.get(k, k) for k in differs)}): re-run that command to finish it, or add "
        "--restart to start this one"
    )


def _latest_files(journal: Journal) -> dict[tuple[str, int], dict[str, Any]]:
    return {(str(r["batch"]), int(r["n"])): r for r in journal.of_type("file")}


def _fetched_files(journal: Journal, work: str) -> dict[tuple[str, int], dict[str, Any]]:
    """Result files an earlier run downloaded that are still there, whole."""
    good = {}
    for key, r in _latest_files(journal).items():
        try:
            if os.path.getsize(os.path.join(work, r["name"])) == int(r["size"]):
                good[key] = r
        except OSError:
            continue
    return good


def _restart(
    client: Any,
    journal: Journal,
    job_id: str | None,
    notify: Any,
    part: str,
    abort: Callable[[str], None] | None = None,
) -> None:
    """``--restart``: abort the journal's job (``abort``, default ``client.abort_job``), remove its work."""
    if job_id:
        try:
            (abort or client.abort_job)(job_id)
            notify(f"job {job_id}: aborted (--restart)")
        except ApiError as exc:
            notify(f"job {job_id}: could not be aborted ({exc}); starting over anyway")
    work = (journal.start or {}).get("work")
    if work:
        shutil.rmtree(work, ignore_errors=True)
    if os.path.exists(part):
        os.unlink(part)
    discard(journal)


def _finish(
    journal: Journal, done: dict[str, Any], part: str, out_path: str, started: float, client: Any
) -> ExtractSummary:
    if os.path.exists(part):
        replace_durably(part, out_path)
    elif not os.path.exists(out_path):
        raise BulkError(f"job {done['job']}: the output {part} is missing; re-run with --restart")
    work = (journal.start or {}).get("work")
    journal.finish()
    if work:
        shutil.rmtree(work, ignore_errors=True)
    return ExtractSummary(
        job_id=done["job"],
        rows=done["rows"],
        batches=done["batches"],
        result_files=done["files"],
        bytes_written=done["bytes"],
        nul_stripped=done["nul"],
        retries=client.stats.retries,
        seconds=time.monotonic() - started,
        out_path=out_path,
    )


def _add_query_batch(client: BulkClient, job_id: str, soql: str, *, resumed: bool = False) -> str:
    """POST the SOQL batch once; after an unknown outcome (or a kill) the job's first batch is ours."""
    if resumed:
        batches = client.list_batches(job_id)
        if batches:
            return batches[0].id
    backoff = client.retry.backoff()
    for attempt in range(1, client.retry.attempts + 1):
        try:
            resp = client._call(
                "addBatch",
                f"adding the query batch to job {job_id}",
                ok=(200, 201),
                jobId=job_id,
                objects=soql,
                contentType="text/csv; charset=UTF-8",
                isQuery="true",
            )
            return parse_batch_info(resp.content).id
        except (TransportError, ApiError) as exc:
            if not is_transient(exc) or attempt == client.retry.attempts:
                raise
            client.stats.retries += 1
            time.sleep(backoff.next_delay())
            batches = client.list_batches(job_id)
            if batches:  # a query job has one batch of ours (chunk batches come after it)
                return batches[0].id
    raise BulkError(f"job {job_id}: the query batch could not be added")


def _run(
    client: BulkClient,
    job_id: str,
    original: str,
    options: ExtractOptions,
    progress: Progress,
    work: str,
    journal: Journal,
    fetched: dict[tuple[str, int], dict[str, Any]],
) -> tuple[list[tuple[str, Future[list[Future[str]]]]], list[BatchInfo]]:
    seen: dict[str, BatchInfo] = {}
    order: list[str] = []
    futures: dict[str, Future[list[Future[str]]]] = {}
    pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="sfbulk-extract")
    # Result files download side by side (a large result comes as several files).
    files = ThreadPoolExecutor(options.concurrency, thread_name_prefix="sfbulk-extract-file")

    def download(batch_id: str, n: int, result_id: str) -> str:
        known = fetched.get((batch_id, n))
        if known is not None and known.get("result") == result_id:
            progress.file_done()
            return os.path.join(work, known["name"])  # downloaded whole by an earlier run
        name = f"{batch_id}-{n}.csv"
        dest = os.path.join(work, name)
        nul = _Nul()
        client.download(
            "getBulkQueryResults",
            dest,
            f"downloading result {result_id} of batch {batch_id}",
            transform=nul,
            jobId=job_id,
            batchId=batch_id,
            resultId=result_id,
        )
        fsync_file(dest)
        journal.append(
            {
                "t": "file",
                "batch": batch_id,
                "n": n,
                "result": result_id,
                "name": name,
                "size": os.path.getsize(dest),
                "nul": nul.count,
            }
        )
        progress.file_done()
        return dest

    def fetch(batch_id: str) -> list[Future[str]]:
        result_ids = client.query_result_ids(job_id, batch_id)
        progress.files_listed(len(result_ids))
        return [files.submit(download, batch_id, n, result_id) for n, result_id in enumerate(result_ids)]

    def check() -> tuple[bool, bool, list[str]]:
        batches = client.list_batches(job_id)
        progressed = False
        for info in batches:
            if info.id not in seen:
                order.append(info.id)
            old = seen.get(info.id)
            seen[info.id] = info
            if info.final and (old is None or not old.final):
                progressed = True
                observe.batch_done("extract", info.state, info.records_processed, info.records_failed)
                if info.state == "Failed":
                    which = "the query" if info.id == original else f"PK chunk batch {info.id}"
                    raise BulkError(f"job {job_id}: {which} failed: {info.state_message or 'no message'}")
                if info.state == "Completed":
                    futures[info.id] = pool.submit(fetch, info.id)
                    progress.batch_done(info)
        root = seen.get(original)
        pending = [b.id for b in seen.values() if not b.final]
        if root is None:
            return False, progressed, [original]
        done = root.final and not pending
        return done, progressed, pending or ([] if root.final else [original])

    try:
        poll_until(
            check,
            job_id=job_id,
            timeout=options.timeout,
            backoff=Backoff(initial=options.poll_initial, factor=1.3, cap=options.poll_cap),
        )
        pool.shutdown(wait=True)  # every batch's result files are listed (and queued) ...
        files.shutdown(wait=True)  # ... and downloaded
    except BaseException:
        # Downloads not finished are not journaled: a re-run fetches them again.
        pool.shutdown(wait=False, cancel_futures=True)
        files.shutdown(wait=False, cancel_futures=True)
        raise
    # With PK chunking the original batch is NotProcessed and has no results: only chunks count.
    data = [seen[b] for b in order if seen[b].state == "Completed"]
    parts = [(b.id, futures[b.id]) for b in data]
    return parts, data


def _concatenate(
    parts: list[tuple[str, Future[list[Future[str]]]]], part_path: str, empty_header: bytes | None = None
) -> tuple[int, int]:
    """Write the result files in order into ``part_path``, the header once (``empty_header`` when no
    file had records), flushed to disk; returns (bytes written, files). The work files stay until the
    caller has moved ``part_path`` onto its final name (a kill before that concatenates again)."""
    header: bytes | None = None
    written = files = 0
    with open(part_path, "wb") as out:
        for batch_id, future in parts:
            for downloaded in future.result():
                name = downloaded.result()
                files += 1
                with open(name, "rb") as fh:
                    first = fh.readline()
                    if first.strip() == NO_RECORDS:
                        continue
                    if header is None:
                        header = first
                        out.write(first)
                        written += len(first)
                    elif first.rstrip(b"\r\n") != header.rstrip(b"\r\n"):
                        raise BulkError(f"batch {batch_id}: result header {first!r} differs from {header!r}")
                    last = first
                    while True:
                        chunk = fh.read(COPY_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        written += len(chunk)
                        last = chunk
                    if not last.endswith(b"\n"):  # never glue two files' records together
                        out.write(b"\n")
                        written += 1
        if header is None and empty_header:
            out.write(empty_header)
            written += len(empty_header)
        out.flush()
        os.fsync(out.fileno())
    return written, files


__all__ = ["ExtractOptions", "ExtractSummary", "extract", "object_of", "pk_chunking_header", "soql_header"]
