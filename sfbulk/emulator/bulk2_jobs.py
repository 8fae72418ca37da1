"""Bulk API 2.0 jobs: their table, the state machine, uploads to disk, listing and deletion.

A 2.0 job is also a row of the Bulk 1.0 ``jobs`` table (created through ``BulkService.create_job``,
so objects, operations and external ids are validated once, and data loaded by either API is
the other's to query). The 1.0 row is Closed at once, so no 1.0 batch can be added to it. Work runs
as 1.0 batches of the job, processed by the usual workers (threads or processes):

* ``bulk2/split``: cut the uploaded CSV into 1.0 CSV batches of at most 10,000 records, which the
  unchanged 1.0 ingest path then applies;
* ``bulk2/query``: run the SOQL into result pages (``bulk2_tasks.py``).

The 2.0 state (Open → UploadComplete → InProgress → JobComplete | Failed, or Aborted) is stored
here; the move to a final state is made when the job is read, from the state of its batches.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import query as queries
from .apierrors import BatchFailure, BulkApiError
from .schema import now_iso
from .soql import SoqlError, parse_soql
from .store import Store

if TYPE_CHECKING:
    from .service import BulkService

INGEST, QUERY = "V2Ingest", "V2Query"
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
QUERY_OPERATIONS = ("query", "queryAll")
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
TASK_SPLIT, TASK_QUERY = "bulk2/split", "bulk2/query"
CHUNK_TYPE = "text/csv"  # request_type of the 1.0 batches a 2.0 upload is cut into
FINAL_STATES = ("JobComplete", "Failed", "Aborted")
#: 150 MB of base64 per job (Salesforce's limit) is this much raw data
MAX_UPLOAD_BYTES = 150 * 1024 * 1024 // 4 * 3
LIST_PAGE = 1000
MIN_VERSION = 41.0  # Bulk API 2.0 exists from API 41.0

_TABLES = """
CREATE TABLE IF NOT EXISTS bulk2_jobs (
    id TEXT PRIMARY KEY, job_type TEXT NOT NULL, state TEXT NOT NULL, column_delimiter TEXT NOT NULL,
    line_ending TEXT NOT NULL, query TEXT, error_message TEXT, system_modstamp TEXT NOT NULL,
    upload_state INTEGER NOT NULL DEFAULT 0, upload_bytes INTEGER NOT NULL DEFAULT 0,
    header TEXT, records_total INTEGER
);
CREATE TABLE IF NOT EXISTS bulk2_query_chunks (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, first_row INTEGER NOT NULL, rows INTEGER NOT NULL,
    data BLOB NOT NULL, offsets BLOB NOT NULL, PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
"""
_UPLOAD_NONE, _UPLOAD_RECEIVING, _UPLOAD_DONE = 0, 1, 2
_ready: set[str] = set()
_ready_lock = threading.Lock()

_JOB_COLUMNS = (
    "j.id, j.operation, j.object, j.created_by, j.created_date, j.concurrency_mode, j.api_version, "
    "j.external_id_field, j.assignment_rule_id, j.pk_chunk_size, j.state, b.job_type, b.state, "
    "b.column_delimiter, b.line_ending, b.query, b.error_message, b.system_modstamp, b.upload_state, "
    "b.header, b.records_total, j.system_modstamp, j.content_type"
)


def ensure_tables(store: Store, force: bool = False) -> None:
    """Create the 2.0 tables once per database and process (worker processes open their own Store)."""
    with _ready_lock:
        if store.path in _ready and not force:
            return
        with store.write() as conn:
            for statement in filter(str.strip, _TABLES.split(";")):
                conn.execute(statement)
        _ready.add(store.path)


def uploads_dir(store: Store) -> Path:
    """Uploaded job data lives next to the database file (``<db>-bulk2/``), never in memory."""
    return Path(f"{store.path}-bulk2")


def upload_path(store: Store, job_id: str) -> Path:
    return uploads_dir(store) / f"{job_id}.csv"


def encode_locator(offset: int) -> str:
    """Salesforce's locators look like base64 of the record offset without padding (``MTAwMDA``)."""
    return base64.b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int:
    try:
        text = base64.b64decode(locator + "=" * (-len(locator) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.isdigit():
        raise BulkApiError("INVALID_LOCATOR", f"Invalid locator: {locator}")
    return int(text)


def _job_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = (
        "id",
        "operation",
        "object",
        "createdById",
        "createdDate",
        "concurrencyMode",
        "apiVersion",
        "externalIdFieldName",
        "assignmentRuleId",
        "pkChunkSize",
        "classicState",
        "jobType",
        "state",
        "columnDelimiter",
        "lineEnding",
        "query",
        "errorMessage",
        "systemModstamp",
        "uploadState",
        "header",
        "recordsTotal",
        "classicModstamp",
        "contentType",
    )
    job = dict(zip(keys, row, strict=True))
    if job["jobType"] is None:  # a Bulk 1.0 job, as the 2.0 job list shows it
        job.update(jobType="Classic", state=job["classicState"], systemModstamp=job["classicModstamp"])
    return job


class Bulk2Jobs:
    """The 2.0 job store and state machine, over the emulator's Store and 1.0 BulkService."""

    def __init__(self, service: BulkService):
        self.service = service
        self.store = service.store
        self.max_upload_bytes = MAX_UPLOAD_BYTES  # both changeable at run time (tests)
        self.list_page = LIST_PAGE
        ensure_tables(self.store, force=True)  # a database file may have been replaced at the same path
        uploads_dir(self.store).mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------------------------- create
    def create_ingest(self, ver: str, doc: dict[str, Any]) -> dict[str, Any]:
        _known(
            doc,
            (
                "object",
                "operation",
                "externalIdFieldName",
                "columnDelimiter",
                "lineEnding",
                "contentType",
                "assignmentRuleId",
            ),
        )
        operation = doc.get("operation")
        if operation not in INGEST_OPERATIONS:
            if operation in QUERY_OPERATIONS:
                raise BulkApiError(
                    "INVALIDJOB",
                    f"Operation {operation} is not an ingest operation: create query "
                    f"jobs with POST /services/data/v{ver}/jobs/query",
                )
            raise BulkApiError(
                "INVALIDJOB", f"Invalid operation: {operation!r}. Use one of {', '.join(INGEST_OPERATIONS)}"
            )
        delimiter, line_ending = _format(doc)
        v1 = {
            "operation": operation,
            "object": doc.get("object"),
            "contentType": "CSV",
            "externalIdFieldName": doc.get("externalIdFieldName"),
            "assignmentRuleId": doc.get("assignmentRuleId"),
        }
        return self._create(
            ver, {k: v for k, v in v1.items() if v is not None}, INGEST, "Open", delimiter, line_ending, None
        )

    def create_query(self, ver: str, doc: dict[str, Any]) -> dict[str, Any]:
        _known(doc, ("operation", "query", "columnDelimiter", "lineEnding", "contentType"))
        operation = doc.get("operation", "query")
        if operation not in QUERY_OPERATIONS:
            raise BulkApiError("INVALIDJOB", f"Invalid operation: {operation!r}. Use query or queryAll")
        soql = doc.get("query")
        if not isinstance(soql, str) or not soql.strip():
            raise BulkApiError("INVALIDJOB", "The query is required (a SOQL text in the field query)")
        delimiter, line_ending = _format(doc)
        object_name = self._check_query(soql)
        job = self._create(
            ver,
            {"operation": operation, "object": object_name, "contentType": "CSV"},
            QUERY,
            "UploadComplete",
            delimiter,
            line_ending,
            soql,
        )
        with self.store.write() as conn:
            self._queue_task(conn, job["id"], TASK_QUERY, soql.encode("utf-8"))
        self._submit(job["id"])
        return job

    def _check_query(self, soql: str) -> str:
        """Salesforce checks a 2.0 query when the job is created: a bad one is a 400, not a Failed job."""
        try:
            q = parse_soql(soql)
        except SoqlError as exc:
            raise BulkApiError(exc.code, exc.message) from None
        obj = self.service.schema.get(q.object)
        if obj is None:
            raise BulkApiError("INVALID_TYPE", f"sObject type '{q.object}' is not supported.")
        try:
            queries.compile_query(self.service.schema, obj.name, soql)
        except BatchFailure as exc:
            detail = exc.state_message.split(" : ", 1)[-1].removeprefix("Failed to process query: ")
            code, sep, message = detail.partition(": ")
            raise BulkApiError(
                code if sep and code.isupper() else "INVALIDJOB", message if sep else detail
            ) from None
        return obj.name

    def _create(
        self,
        ver: str,
        v1_doc: dict[str, Any],
        job_type: str,
        state: str,
        delimiter: str,
        line_ending: str,
        soql: str | None,
    ) -> dict[str, Any]:
        try:
            job = self.service.create_job(ver, v1_doc, None)
            self.service.update_job(job["id"], {"state": "Closed"})  # no 1.0 batch may be added to it
        except BulkApiError as exc:
            raise BulkApiError(exc.code.upper(), exc.message, exc.status) from None
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO bulk2_jobs (id, job_type, state, column_delimiter, line_ending, query, system_modstamp) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job["id"], job_type, state, delimiter, line_ending, soql, now_iso()),
            )
        return self.get(job["id"], job_type)

    # ------------------------------------------------------------------------------------ read
    def get(self, job_id: str, job_type: str) -> dict[str, Any]:
        """A 2.0 job of ``job_type`` with its counters; 404 for unknown ids and jobs of the other kind."""
        row = (
            self.store.reader()
            .execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs j JOIN bulk2_jobs b ON b.id = j.id WHERE j.id = ?",
                (job_id,),
            )
            .fetchone()
        )
        if row is None or row[11] != job_type:
            raise BulkApiError("NOT_FOUND", "The requested resource does not exist", 404)
        job = _job_dict(row)
        self._refresh(job)
        return job

    def _counters(self, job_id: str) -> dict[str, Any]:
        counts: dict[str, dict[str, int]] = {}
        processed = failed = total_time = api_time = 0
        for kind, state, n, p, f, t, a in self.store.reader().execute(
            "SELECT request_type, state, count(*), sum(records_processed), sum(records_failed), "
            "sum(total_processing_time), sum(api_active_processing_time) FROM batches WHERE job_id = ? "
            "GROUP BY request_type, state",
            (job_id,),
        ):
            counts.setdefault(kind, {})[state] = n
            if state == "Completed":
                processed += p or 0
                failed += f or 0
            total_time += t or 0
            api_time += a or 0
        return {
            "batches": counts,
            "numberRecordsProcessed": processed,
            "numberRecordsFailed": failed,
            "totalProcessingTime": total_time,
            "apiActiveProcessingTime": api_time,
        }

    def _refresh(self, job: dict[str, Any]) -> None:
        """Add the counters; move a running job to its final state once its batches are done."""
        job.update(self._counters(job["id"]))
        state = job["state"]
        if state in FINAL_STATES or state == "Open":
            return
        batches = job["batches"]
        task = batches.get(TASK_QUERY if job["jobType"] == QUERY else TASK_SPLIT, {})
        if not task:
            return  # the split task is queued in the same transaction as UploadComplete
        busy = task.get("Queued", 0) + task.get("InProgress", 0)
        if job["jobType"] == QUERY:
            new = "InProgress" if task.get("InProgress") else state
            if not busy:
                new = "JobComplete" if task.get("Completed") else "Failed"
        else:
            chunks = batches.get(CHUNK_TYPE, {})
            busy += chunks.get("Queued", 0) + chunks.get("InProgress", 0)
            new = "InProgress" if busy and (task.get("InProgress") or task.get("Completed")) else state
            if not busy:
                new = (
                    "Failed"
                    if task.get("Failed") or chunks.get("Failed") or job["errorMessage"]
                    else "JobComplete"
                )
        if new == state:
            return
        message = job["errorMessage"]
        if new == "Failed" and not message:
            message = self._first_failure(job["id"])
        with self.store.write() as conn:
            changed = conn.execute(
                "UPDATE bulk2_jobs SET state = ?, error_message = ?, system_modstamp = ? WHERE id = ? AND state = ?",
                (new, message, now_iso(), job["id"], state),
            ).rowcount
        if changed:
            job.update(state=new, errorMessage=message)
        else:  # aborted meanwhile
            row = (
                self.store.reader()
                .execute("SELECT state, error_message FROM bulk2_jobs WHERE id = ?", (job["id"],))
                .fetchone()
            )
            if row is not None:
                job.update(state=row[0], errorMessage=row[1])

    def _first_failure(self, job_id: str) -> str | None:
        row = (
            self.store.reader()
            .execute(
                "SELECT state_message FROM batches WHERE job_id = ? AND state = 'Failed' ORDER BY seq LIMIT 1",
                (job_id,),
            )
            .fetchone()
        )
        return row[0] if row else None

    def list(self, kind: str, params: dict[str, str]) -> tuple[list[dict[str, Any]], str | None]:
        """One page of jobs (``list_page``, 1,000) and the locator of the next page, or None on the last one.

        ``kind`` INGEST lists Bulk 1.0 jobs (jobType Classic) too, as Salesforce's job list does.
        """
        where: list[str] = []
        args: list[Any] = []
        job_type = params.get("jobType")
        allowed = ("Classic", INGEST, "BigObjectIngest") if kind == INGEST else (QUERY,)
        if job_type is not None and job_type not in allowed:
            raise BulkApiError("INVALIDJOB", f"Invalid jobType: {job_type}. Use one of {', '.join(allowed)}")
        if kind == QUERY or job_type in (INGEST, QUERY):
            where.append("b.job_type = ?")
            args.append(job_type or kind)
        elif job_type == "Classic":
            where.append("b.job_type IS NULL")
        elif job_type == "BigObjectIngest":
            where.append("0")
        else:
            where.append("(b.job_type IS NULL OR b.job_type = ?)")
            args.append(INGEST)
        pk = params.get("isPkChunkingEnabled")
        if pk is not None:
            if pk.lower() not in ("true", "false"):
                raise BulkApiError("INVALIDJOB", f"Invalid isPkChunkingEnabled: {pk}. Use true or false")
            where.append("j.pk_chunk_size IS NOT NULL" if pk.lower() == "true" else "j.pk_chunk_size IS NULL")
        mode = params.get("concurrencyMode")
        if mode is not None:
            if mode not in ("Parallel", "Serial"):
                raise BulkApiError("INVALIDJOB", f"Invalid concurrencyMode: {mode}. Use Parallel or Serial")
            where.append("j.concurrency_mode = ?")
            args.append(mode)
        locator = params.get("queryLocator")
        if locator is not None:
            m = re.fullmatch(r"([0-9A-Za-z]{18})-(\d+)", locator)
            if m is None:
                raise BulkApiError("INVALID_QUERY_LOCATOR", f"Invalid queryLocator: {locator}")
            where.append("j.id > ?")
            args.append(m.group(1))
        rows = (
            self.store.reader()
            .execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs j LEFT JOIN bulk2_jobs b ON b.id = j.id WHERE {' AND '.join(where)} "
                f"ORDER BY j.id LIMIT ?",
                (*args, self.list_page + 1),
            )
            .fetchall()
        )
        jobs = [_job_dict(r) for r in rows[: self.list_page]]
        for job in jobs:
            if job["jobType"] in (INGEST, QUERY):
                self._refresh(job)
        seen = (int(locator.rsplit("-", 1)[1]) if locator else 0) + len(jobs)
        return jobs, f"{jobs[-1]['id']}-{seen}" if len(rows) > self.list_page else None

    # ------------------------------------------------------------------------------- transitions
    def change_state(self, job_id: str, job_type: str, target: Any) -> dict[str, Any]:
        job = self.get(job_id, job_type)
        state = job["state"]
        word = "Completed" if state == "JobComplete" else state
        if target == "Aborted":
            if state in FINAL_STATES:
                raise BulkApiError("INVALIDJOBSTATE", f"Aborting already {word} Job not allowed")
            with self.store.write() as conn:
                conn.execute(
                    "UPDATE bulk2_jobs SET state = 'Aborted', system_modstamp = ? WHERE id = ?",
                    (now_iso(), job_id),
                )
                conn.execute(
                    "UPDATE batches SET state = 'NotProcessed', system_modstamp = ? "
                    "WHERE job_id = ? AND state = 'Queued'",
                    (now_iso(), job_id),
                )
        elif target == "UploadComplete" and job_type == INGEST:
            if state != "Open":
                raise BulkApiError("INVALIDJOBSTATE", f"Closing already {word} Job not allowed")
            with self.store.write() as conn:
                conn.execute(
                    "UPDATE bulk2_jobs SET state = 'UploadComplete', system_modstamp = ? WHERE id = ?",
                    (now_iso(), job_id),
                )
                self._queue_task(conn, job_id, TASK_SPLIT, b"")
            closed = self.get(job_id, job_type)  # answered UploadComplete, as Salesforce does
            self._submit(job_id)
            return closed
        else:
            allowed = "UploadComplete or Aborted" if job_type == INGEST else "Aborted"
            raise BulkApiError(
                "INVALIDJOBSTATE", f"Invalid state: {target!r}. A job can only be set to {allowed}"
            )
        return self.get(job_id, job_type)

    def _queue_task(self, conn: Any, job_id: str, kind: str, data: bytes) -> None:
        self.store.queue_batch(conn, job_id, kind, data, now_iso())

    def _submit(self, job_id: str) -> None:
        rows = (
            self.store.reader()
            .execute(
                "SELECT id FROM batches WHERE job_id = ? AND state = 'Queued' AND request_type LIKE 'bulk2/%'",
                (job_id,),
            )
            .fetchall()
        )
        if self.service.processor is not None:
            for (batch_id,) in rows:
                self.service.processor.submit(job_id, batch_id, False)

    # ---------------------------------------------------------------------------------- upload
    def upload(self, job_id: str, chunks: Iterable[bytes]) -> int:
        """Stream one upload to disk (``chunks`` raises BulkApiError on a bad body); returns its size."""
        with self.store.write() as conn:
            row = conn.execute(
                "SELECT job_type, state, upload_state FROM bulk2_jobs WHERE id = ?", (job_id,)
            ).fetchone()
            if row is None or row[0] != INGEST:
                raise BulkApiError("NOT_FOUND", "The requested resource does not exist", 404)
            if row[2] != _UPLOAD_NONE:
                raise BulkApiError(
                    "BULK_API_ERROR",
                    f"Found multiple contents for job: <{job_id}>, please 'Close' / "
                    f"'Abort' / 'Delete' the current Job then create a new Job and make sure you only "
                    f"do 'PUT' once on a given Job.",
                )
            if row[1] != "Open":
                raise BulkApiError(
                    "INVALIDJOBSTATE",
                    f"Job {job_id} is in state {row[1]}: data can only be uploaded to an Open job",
                )
            conn.execute("UPDATE bulk2_jobs SET upload_state = ? WHERE id = ?", (_UPLOAD_RECEIVING, job_id))
        final = upload_path(self.store, job_id)
        part = final.with_suffix(".part")
        size = 0
        try:
            with open(part, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_upload_bytes:
                        raise BulkApiError(
                            "BULK_API_ERROR",
                            f"The job data exceeds the limit of 150 MB after base64 "
                            f"encoding ({self.max_upload_bytes} bytes of CSV). Split the data into "
                            f"several jobs",
                            413,
                        )
                    out.write(chunk)
            if size == 0:
                raise BulkApiError("INVALIDBATCH", "Records not found: the uploaded job data is empty")
            os.replace(part, final)
        except BaseException:
            part.unlink(missing_ok=True)
            with self.store.write() as conn:
                conn.execute("UPDATE bulk2_jobs SET upload_state = ? WHERE id = ?", (_UPLOAD_NONE, job_id))
            raise
        with self.store.write() as conn:
            conn.execute(
                "UPDATE bulk2_jobs SET upload_state = ?, upload_bytes = ?, system_modstamp = ? WHERE id = ?",
                (_UPLOAD_DONE, size, now_iso(), job_id),
            )
        return size

    # ---------------------------------------------------------------------------------- delete
    def delete(self, job_id: str, job_type: str) -> None:
        job = self.get(job_id, job_type)
        allowed = ("UploadComplete", *FINAL_STATES) if job_type == INGEST else FINAL_STATES
        if job["state"] not in allowed:
            raise BulkApiError(
                "API_ERROR", "Error encountered when deleting the job because the job is not terminated"
            )
        with self.store.write() as conn:
            batch_ids = [(r[0],) for r in conn.execute("SELECT id FROM batches WHERE job_id = ?", (job_id,))]
            conn.executemany("DELETE FROM batch_requests WHERE batch_id = ?", batch_ids)
            conn.executemany("DELETE FROM batch_results WHERE batch_id = ?", batch_ids)
            conn.execute("DELETE FROM batches WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM bulk2_query_chunks WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM bulk2_jobs WHERE id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        upload_path(self.store, job_id).unlink(missing_ok=True)


def _known(doc: dict[str, Any], fields: tuple[str, ...]) -> None:
    for key in doc:
        if key not in fields:
            raise BulkApiError(
                "JSON_PARSER_ERROR",
                f'Unrecognized field "{key}": the fields of this request are {", ".join(fields)}',
            )


def _format(doc: dict[str, Any]) -> tuple[str, str]:
    content_type = doc.get("contentType", "CSV")
    if content_type != "CSV":
        raise BulkApiError(
            "INVALIDJOB", f"Invalid contentType: {content_type!r}. Bulk API 2.0 supports CSV only"
        )
    delimiter = doc.get("columnDelimiter", "COMMA")
    if delimiter not in DELIMITERS:
        raise BulkApiError(
            "INVALIDJOB", f"Invalid columnDelimiter: {delimiter!r}. Use one of {', '.join(DELIMITERS)}"
        )
    line_ending = doc.get("lineEnding", "LF")
    if line_ending not in LINE_ENDINGS:
        raise BulkApiError("INVALIDJOB", f"Invalid lineEnding: {line_ending!r}. Use LF or CRLF")
    return delimiter, line_ending
