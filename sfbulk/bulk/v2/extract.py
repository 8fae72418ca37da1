"""``sfbulk extract --api 2``: a SOQL query into one CSV file through a Bulk API 2.0 query job.

The job's result pages are streamed to work files and joined in order into ``--out`` with the
header once; memory stays flat whatever the result size. From API 58.0 the page links come from
``resultPages`` and are downloaded in parallel (``concurrency``); before it the pages are a chain
(each page's ``Sforce-Locator`` names the next) and are downloaded one after the other.

Journaled like Bulk 1.0's extract (:mod:`sfbulk.bulk.journal`): the job, then every page downloaded
(with the locator it came from and, on the chain, the next one). Re-running the same command
reuses the job and downloads only the pages not finished.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from sfbulk import observe
from sfbulk.bulk.client import BatchInfo
from sfbulk.bulk.extract import (
    COPY_CHUNK,
    ExtractOptions,
    ExtractSummary,
    _finish,
    _Nul,
    _restart,
    check_same_command,
    soql_header,
)
from sfbulk.bulk.journal import (
    Journal,
    annotate_unfinished,
    journal_path,
    open_journal,
    work_folder,
)
from sfbulk.bulk.load import Progress
from sfbulk.bulk.poll import Backoff, poll_until
from sfbulk.bulk.v2.client import Bulk2Client
from sfbulk.bulk.v2.load import POLL_CAP
from sfbulk.errors import BulkError, BulkInputError, BulkInterrupted

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.connector.connection import Connection

log = logging.getLogger("sfbulk.bulk.v2.extract")

#: resultPages appeared in API 58.0 (bulk-api.md §8.2)
RESULT_PAGES_VERSION = 58.0
#: records per page: pages small enough to spread over the workers, large enough to keep requests few
PAGE_RECORDS = 50_000
QUERY_FINAL = frozenset({"JobComplete", "Failed", "Aborted"})
_FLAGS = {
    "soql": "the query",
    "query_all": "--all",
    "out": "--out",
    "api_url": "--api-url",
    "api": "--api",
    "max_records": "--max-records",
}


def extract_v2(
    conn: Connection,
    soql: str,
    out_path: str,
    options: ExtractOptions | None = None,
    progress: Progress | None = None,
    *,
    page_records: int = PAGE_RECORDS,
) -> ExtractSummary:
    """Run ``soql`` as a Bulk API 2.0 query job and write every record to ``out_path`` (CSV, UTF-8)."""
    options = options or ExtractOptions()
    progress = progress or Progress()
    started = time.monotonic()
    soql = soql.strip()
    if not soql:
        raise BulkInputError("the query is empty")
    if options.pk_chunking is not None:
        raise BulkInputError(
            "--pk-chunking is a Bulk API 1.0 setting (2.0 query jobs are chunked by Salesforce "
            "itself): drop it, or use --api 1"
        )
    client = Bulk2Client(conn, retry=options.retry)
    tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(out_path))).close()  # writable, before a job
    journal = open_journal(options.journal or journal_path(out_path))
    try:
        return _extract(conn, client, journal, soql, out_path, options, progress, started, page_records)
    finally:
        journal.close()
        progress.close()


def _extract(
    conn: Connection,
    client: Bulk2Client,
    journal: Journal,
    soql: str,
    out_path: str,
    options: ExtractOptions,
    progress: Progress,
    started: float,
    page_records: int,
) -> ExtractSummary:
    notify = options.notify or (lambda message: log.info("%s", message))
    identity = {
        "kind": "extract",
        "api": 2,
        "soql": soql,
        "query_all": options.query_all,
        "out": os.path.abspath(out_path),
        "max_records": page_records,
        "api_url": str(getattr(getattr(conn, "params", None), "api_url", "") or ""),
    }
    part = out_path + ".part"
    job_rec = journal.last("job")
    if journal.start is not None:
        if job_rec is None or options.restart:
            _restart(
                client,
                journal,
                str(job_rec["id"]) if job_rec else None,
                notify,
                part,
                abort=lambda job_id: client.abort_job(job_id, "query"),
            )
            job_rec = None
        else:
            check_same_command(journal, identity, str(job_rec["id"]), _FLAGS)
    done = journal.last("done")
    if done is None:
        work = work_folder(journal, identity, out_path)
        if job_rec is None:
            try:
                job_id = str(client.create_query_job(soql, query_all=options.query_all)["id"])
            except BaseException:
                journal.finish()  # no job: nothing to resume
                shutil.rmtree(work, ignore_errors=True)
                raise
            journal.append({"t": "job", "id": job_id})
            notify(f"job {job_id}: created (an interrupted run resumes when re-run)")
        else:
            job_id = str(job_rec["id"])
            notify(
                f"job {job_id}: resuming ({len(_pages(journal, work))} result pages were downloaded before)"
            )
        try:
            done = _run(client, journal, job_id, soql, part, work, options, progress, page_records)
        except KeyboardInterrupt:
            raise BulkInterrupted(
                f"job {job_id}: {len(_pages(journal, work))} result pages downloaded so far; re-run the same "
                "command to resume (only the pages not downloaded yet are fetched), or add --restart to start "
                "over",
                job_id=job_id,
            ) from None
        except BaseException as exc:
            annotate_unfinished(exc, job_id, journal)
            raise
    return _finish(journal, done, part, out_path, started, client)


def _pages(journal: Journal, work: str) -> dict[int, dict[str, Any]]:
    """Pages an earlier run downloaded that are still there, whole."""
    good = {}
    for r in journal.of_type("page"):
        try:
            if os.path.getsize(os.path.join(work, r["name"])) == int(r["size"]):
                good[int(r["n"])] = r
        except OSError:
            continue
    return good


def _run(
    client: Bulk2Client,
    journal: Journal,
    job_id: str,
    soql: str,
    part: str,
    work: str,
    options: ExtractOptions,
    progress: Progress,
    page_records: int,
) -> dict[str, Any]:
    info: dict[str, Any] = {}

    def check() -> tuple[bool, bool, list[str]]:
        info.update(client.get_job(job_id, "query"))
        return info.get("state") in QUERY_FINAL, False, [job_id]

    poll_until(
        check,
        job_id=job_id,
        timeout=options.timeout,
        what="query jobs",
        backoff=Backoff(
            initial=options.poll_initial,
            factor=1.3,
            cap=max(options.poll_initial, min(options.poll_cap, POLL_CAP)),
        ),
    )
    if info.get("state") != "JobComplete":
        observe.batch_done("extract", str(info.get("state")), int(info.get("numberRecordsProcessed") or 0), 0)
        raise BulkError(
            f"job {job_id}: the query job ended {info.get('state')}"
            + (f": {info['errorMessage']}" if info.get("errorMessage") else "")
        )
    total = int(info.get("numberRecordsProcessed") or 0)
    observe.batch_done("extract", "JobComplete", total, 0)
    progress.batch_done(BatchInfo(job_id, job_id, "Completed", "", total, 0))
    nul = _Nul()
    have = _pages(journal, work)

    def download(n: int, locator: str | None, max_records: int | None) -> dict[str, Any]:
        known = have.get(n)
        if known is not None and known.get("locator") == locator:
            progress.file_done()
            return known
        name = f"page-{n}.csv"
        dest = os.path.join(work, name)
        size, nxt, records = client.download_page(
            job_id, dest, locator=locator, max_records=max_records, transform=nul
        )
        record = {
            "t": "page",
            "n": n,
            "locator": locator,
            "next": nxt,
            "name": name,
            "size": size,
            "records": records,
            "nul": nul.count,
        }
        journal.append(record, durable=False)  # lost in a power cut: that page is downloaded again
        progress.file_done()
        return record

    if float(client.version) >= RESULT_PAGES_VERSION:
        pages = _parallel(client, job_id, options, progress, page_records, download)
    else:
        pages = _chain(progress, page_records, download, have)
    written, files = _join(work, pages, part, soql_header(soql))
    rows = sum(int(p["records"]) for p in pages)
    if rows != total:
        raise BulkError(f"job {job_id}: the result pages hold {rows:,} records, the job reports {total:,}")
    record = {
        "t": "done",
        "job": job_id,
        "rows": rows,
        "batches": 1,
        "files": files,
        "bytes": written,
        "nul": sum(int(p.get("nul", 0)) for p in pages),
    }
    journal.append(record)
    return record


def _parallel(
    client: Bulk2Client,
    job_id: str,
    options: ExtractOptions,
    progress: Progress,
    page_records: int,
    download: Any,
) -> list[dict[str, Any]]:
    """resultPages: every page link listed, then downloaded ``concurrency`` at a time."""
    links: list[tuple[str | None, int | None]] = []
    locator: str | None = None
    while True:
        answer = client.result_pages(job_id, max_records=page_records, locator=locator)
        for page in answer.get("resultPages") or []:
            query = dict(parse_qsl(urlsplit(str(page.get("resultUrl", ""))).query))
            size = query.get("maxRecords")
            links.append((query.get("locator") or None, int(size) if size and size.isdigit() else None))
        progress.files_listed(len(answer.get("resultPages") or []))
        nxt = answer.get("nextRecordsUrl")
        if answer.get("done", True) or not nxt:
            break
        locator = dict(parse_qsl(urlsplit(str(nxt)).query)).get("locator")
        if not locator:
            raise BulkError(f"job {job_id}: resultPages answered a nextRecordsUrl without a locator: {nxt}")
    with ThreadPoolExecutor(options.concurrency, thread_name_prefix="sfbulk-pages") as pool:
        futures = [pool.submit(download, n, loc, size) for n, (loc, size) in enumerate(links)]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _chain(
    progress: Progress, page_records: int, download: Any, have: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Before API 58.0: each page's Sforce-Locator names the next one."""
    pages: list[dict[str, Any]] = []
    locator: str | None = None
    while True:
        progress.files_listed(1)
        page = download(len(pages), locator, page_records)
        pages.append(page)
        locator = page.get("next")
        if not locator:
            return pages


def _join(work: str, pages: list[dict[str, Any]], part: str, empty_header: bytes | None) -> tuple[int, int]:
    """The pages in order into ``part``, the header once; returns (bytes, pages with data)."""
    written = files = 0
    with open(part, "wb") as out:
        header: bytes | None = None
        for page in pages:
            with open(os.path.join(work, page["name"]), "rb") as fh:
                first = fh.readline()
                if not first:
                    continue
                files += 1
                if header is None:
                    header = first
                    out.write(first)
                    written += len(first)
                while block := fh.read(COPY_CHUNK):
                    out.write(block)
                    written += len(block)
        if header is None and empty_header:
            out.write(empty_header)
            written += len(empty_header)
        out.flush()
        os.fsync(out.fileno())
    return written, files


__all__ = ["PAGE_RECORDS", "RESULT_PAGES_VERSION", "extract_v2"]
