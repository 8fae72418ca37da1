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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sfbulk.bulk.client import BatchInfo, BulkClient, parse_batch_info
from sfbulk.bulk.load import Progress
from sfbulk.bulk.poll import Backoff, poll_until
from sfbulk.bulk.retry import RetryPolicy, is_transient
from sfbulk.errors import ApiError, BulkError, BulkInputError, TransportError

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
    depth, field, fields = 0, [], []
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


def extract(conn: Any, soql: str, out_path: str, options: ExtractOptions | None = None,
            progress: Progress | None = None) -> ExtractSummary:
    """Run ``soql`` as a Bulk query job and write every record to ``out_path`` (CSV, UTF-8)."""
    options = options or ExtractOptions()
    progress = progress or Progress()
    started = time.monotonic()
    soql = soql.strip()
    if not soql:
        raise BulkInputError("the query is empty")
    client = BulkClient(conn, retry=options.retry)
    job = client.create_job(operation="queryAll" if options.query_all else "query",
                            object=options.object or object_of(soql), content_type="CSV",
                            pk_chunking=pk_chunking_header(options.pk_chunking))
    job_id = job["id"]
    work = tempfile.mkdtemp(prefix=".sfbulk-", dir=os.path.dirname(os.path.abspath(out_path)))
    nul = _Nul()
    try:
        original = _add_query_batch(client, job_id, soql)
        parts, data_batches = _run(client, job_id, original, options, progress, work, nul)
        written, files = _concatenate(parts, out_path, soql_header(soql))
        client.close_job(job_id)
    except BaseException:
        try:
            client.close_job(job_id)
        except Exception as exc:  # noqa: BLE001 - the original error matters more
            log.warning("job %s could not be closed: %s", job_id, exc)
        raise
    finally:
        progress.close()
        shutil.rmtree(work, ignore_errors=True)
    return ExtractSummary(
        job_id=job_id, rows=sum(b.records_processed for b in data_batches), batches=len(data_batches),
        result_files=files, bytes_written=written, nul_stripped=nul.count, retries=client.stats.retries,
        seconds=time.monotonic() - started, out_path=out_path,
    )


def _add_query_batch(client: BulkClient, job_id: str, soql: str) -> str:
    """POST the SOQL batch once; after an unknown outcome the job's first batch is ours."""
    backoff = client.retry.backoff()
    for attempt in range(1, client.retry.attempts + 1):
        try:
            resp = client._call("addBatch", f"adding the query batch to job {job_id}", ok=(200, 201),
                                jobId=job_id, objects=soql, contentType="text/csv; charset=UTF-8",
                                isQuery="true")
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


def _run(client: BulkClient, job_id: str, original: str, options: ExtractOptions, progress: Progress,
         work: str, nul: _Nul) -> tuple[list[tuple[str, Future[list[Future[str]]]]], list[BatchInfo]]:
    seen: dict[str, BatchInfo] = {}
    order: list[str] = []
    futures: dict[str, Future[list[Future[str]]]] = {}
    pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="sfbulk-extract")
    # Result files download side by side (a large result comes as several files).
    files = ThreadPoolExecutor(options.concurrency, thread_name_prefix="sfbulk-extract-file")

    def download(batch_id: str, result_id: str, dest: str) -> str:
        client.download("getBulkQueryResults", dest, f"downloading result {result_id} of batch {batch_id}",
                        transform=nul, jobId=job_id, batchId=batch_id, resultId=result_id)
        return dest

    def fetch(batch_id: str) -> list[Future[str]]:
        return [files.submit(download, batch_id, result_id, os.path.join(work, f"{batch_id}-{n}.csv"))
                for n, result_id in enumerate(client.query_result_ids(job_id, batch_id))]

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
        poll_until(check, job_id=job_id, timeout=options.timeout,
                   backoff=Backoff(initial=options.poll_initial, factor=1.3, cap=options.poll_cap))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        files.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)  # every batch's result files are listed (and queued) ...
    files.shutdown(wait=True)  # ... and downloaded
    # With PK chunking the original batch is NotProcessed and has no results: only chunks count.
    data = [seen[b] for b in order if seen[b].state == "Completed"]
    parts = [(b.id, futures[b.id]) for b in data]
    return parts, data


def _concatenate(parts: list[tuple[str, Future[list[Future[str]]]]], out_path: str,
                 empty_header: bytes | None = None) -> tuple[int, int]:
    """Write the result files in order, the header once (``empty_header`` when no file had
    records); returns (bytes written, files)."""
    header: bytes | None = None
    written = files = 0
    tmp_out = out_path + ".part"
    with open(tmp_out, "wb") as out:
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
                os.unlink(name)
        if header is None and empty_header:
            out.write(empty_header)
            written += len(empty_header)
    os.replace(tmp_out, out_path)
    return written, files


__all__ = ["ExtractOptions", "ExtractSummary", "extract", "object_of", "pk_chunking_header", "soql_header"]
