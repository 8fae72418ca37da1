"""Jobs and batches: creation, state transitions, counters, and the processing of one batch."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

from lxml import etree

from . import bulk2_tasks
from . import query as queries
from .apierrors import BatchFailure, BulkApiError
from .dml import BatchWriter
from .payloads import load_json, parse_payload, xml_error_text
from .schema import Schema, now_iso
from .store import Store

log = logging.getLogger("sfbulk.emulator")

OPERATIONS = ("insert", "upsert", "update", "delete", "hardDelete", "query", "queryAll")
CONTENT_TYPES = ("XML", "CSV", "JSON", "ZIP_XML", "ZIP_CSV", "ZIP_JSON")
#: request Content-Type (media type) a batch must carry for each job contentType
BATCH_MEDIA_TYPES = {
    "CSV": "text/csv", "XML": "application/xml", "JSON": "application/json",
    "ZIP_CSV": "zip/csv", "ZIP_XML": "zip/xml", "ZIP_JSON": "zip/json",
}  # fmt: skip
KNOWN_MEDIA_TYPES = set(BATCH_MEDIA_TYPES.values())
_CONCURRENCY: dict[object, str] = {
    "Parallel": "Parallel",
    "Serial": "Serial",
    0: "Parallel",
    1: "Serial",
    "0": "Parallel",
    "1": "Serial",
}  # 0/1 also cover False/True (simple-salesforce history)
_CREATE_FIELDS = {
    "operation",
    "object",
    "externalIdFieldName",
    "concurrencyMode",
    "contentType",
    "assignmentRuleId",
    "state",
}
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_DIGITS = re.compile(r"[0-9]+")
DEFAULT_PK_CHUNK = 100_000
MAX_PK_CHUNK = 250_000


#: stateMessage of a batch the emulator failed on for a reason of its own (a bug: the log has the traceback);
#: never a Python exception's name or text, which would mean nothing to a Salesforce client
UNEXPECTED_FAILURE = (
    "InternalServerError : An unexpected error occurred while processing the batch; "
    "the emulator's log has the details"
)


def parse_job_document(body: bytes, as_json: bool) -> dict[str, Any]:
    """A jobInfo request body (XML or JSON) as a dict; element order does not matter."""
    if as_json:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise BulkApiError("InvalidJob", "Unable to parse Job: the body is not valid UTF-8") from None
        doc = load_json(
            text or "null", lambda message: BulkApiError("InvalidJob", message), "Unable to parse Job"
        )
        if not isinstance(doc, dict):
            raise BulkApiError("InvalidJob", "Unable to parse Job")
        return doc
    try:
        root = etree.fromstring(body, _XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise BulkApiError(
            "InvalidXml", f"Unable to parse the request body as XML: {xml_error_text(exc)}"
        ) from None
    if not isinstance(root.tag, str) or etree.QName(root.tag).localname != "jobInfo":
        raise BulkApiError("InvalidJob", "Unable to parse Job")
    doc = {}
    for el in root:
        if isinstance(el.tag, str):
            doc[etree.QName(el.tag).localname] = (el.text or "").strip()
    return doc


def parse_pk_chunking(header: str | None) -> tuple[int | None, str | None]:
    """``Sforce-Enable-PKChunking``: TRUE | FALSE | chunkSize=N; startRow=ID; parent=X (bulk-api.md §1.11)."""
    if header is None:
        return None, None
    size: int | None = None
    start: str | None = None
    enabled = False
    for token in (t.strip() for t in header.split(";")):
        if not token:
            continue
        key, _, value = token.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if key == "true" and not value:
            enabled = True
        elif key == "false" and not value:
            return None, None
        elif key == "chunksize":
            # ASCII digits only (str.isdigit admits "²") and a length check first: int() of thousands of
            # digits raises ValueError past Python's digit limit
            digits = value.lstrip("0")
            if not _DIGITS.fullmatch(value) or len(digits) > 6 or not 0 < int(digits or "0") <= MAX_PK_CHUNK:
                shown = value if len(value) <= 20 else value[:20] + "..."
                raise BulkApiError(
                    "InvalidJob", f"Invalid chunkSize for PK chunking: {shown} (1..{MAX_PK_CHUNK})"
                )
            size, enabled = int(digits), True
        elif key == "startrow":
            start, enabled = value, True
        elif key == "parent":
            enabled = True
        else:
            raise BulkApiError("InvalidJob", f"Unsupported Sforce-Enable-PKChunking option: {token}")
    return (size or DEFAULT_PK_CHUNK, start) if enabled else (None, None)


class BulkService:
    def __init__(self, store: Store, schema: Schema, user_id: str, rows_per_result_file: int):
        self.store = store
        self.schema = schema
        self.user_id = user_id
        self.rows_per_result_file = rows_per_result_file
        self.processor: Any = None  # set by the emulator (Processor)
        self.processing_delay = 0.0

    # ------------------------------------------------------------------------------------ jobs
    def create_job(self, api_version: str, doc: dict[str, Any], pk_header: str | None) -> dict[str, Any]:
        for key in doc:
            if key not in _CREATE_FIELDS:
                raise BulkApiError("InvalidJob", f"{key[:1].upper()}{key[1:]} cannot be specified")
        operation = doc.get("operation") or None
        if operation is None:
            raise BulkApiError("InvalidJob", "Unable to parse Job: operation is required")
        if operation not in OPERATIONS:
            raise BulkApiError("InvalidJob", "Unable to parse Job")
        object_name = doc.get("object") or None
        if not object_name:
            raise BulkApiError("InvalidJob", "Unable to parse Job: object is required")
        obj = self.schema.get(str(object_name))
        if obj is None:
            raise BulkApiError("InvalidEntity", f"Entity '{object_name}' is not supported by the Bulk API.")
        content_type = doc.get("contentType") or "XML"
        if content_type not in CONTENT_TYPES:
            raise BulkApiError("InvalidJob", "Unable to parse Job")
        mode = doc.get("concurrencyMode", "Parallel")
        if mode == "" or mode is None:
            mode = "Parallel"
        if mode not in _CONCURRENCY or isinstance(mode, float):
            raise BulkApiError("InvalidJob", "Unable to parse Job")
        state = doc.get("state") or "Open"
        if state != "Open":
            raise BulkApiError("InvalidJobState", f"A new job must be created in state Open, not {state}")
        ext = doc.get("externalIdFieldName") or None  # WSO2 sends it empty for every operation
        if operation == "upsert":
            if not ext:
                raise BulkApiError(
                    "InvalidJob",
                    f"External ID was blank for {obj.name}. An External ID must be specified for upsert.",
                )
            key_field = obj.field(str(ext))
            if key_field is None or not key_field.upsert_key:
                raise BulkApiError(
                    "InvalidJob",
                    f"External ID field does not exist or is not an external id: {obj.name}.{ext}",
                )
            ext = key_field.name
        elif operation in ("query", "queryAll") and content_type.startswith("ZIP_"):
            raise BulkApiError("InvalidJob", f"Query jobs do not support contentType {content_type}")
        chunk_size, start_row = parse_pk_chunking(pk_header)
        now = now_iso()
        with self.store.write() as conn:
            job_id = self.store.new_id18(conn, "750")
            conn.execute(
                "INSERT INTO jobs (id, operation, object, created_by, created_date, system_modstamp, state, "
                "external_id_field, concurrency_mode, content_type, api_version, assignment_rule_id, pk_chunk_size, "
                "pk_start_row) VALUES (?, ?, ?, ?, ?, ?, 'Open', ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    operation,
                    obj.name,
                    self.user_id,
                    now,
                    now,
                    ext if operation == "upsert" else None,
                    _CONCURRENCY[mode],
                    content_type,
                    api_version,
                    doc.get("assignmentRuleId") or None,
                    chunk_size if operation in ("query", "queryAll") else None,
                    start_row,
                ),
            )
        return self.get_job(job_id)

    def find_job(self, job_id: str) -> dict[str, Any]:
        row = (
            self.store.reader()
            .execute(
                "SELECT id, operation, object, created_by, created_date, system_modstamp, state, external_id_field, "
                "concurrency_mode, content_type, api_version, assignment_rule_id, number_retries, pk_chunk_size, "
                "pk_start_row FROM jobs WHERE id = ?",
                (job_id,),
            )
            .fetchone()
        )
        if row is None:
            raise BulkApiError("InvalidJob", f"Invalid job id: {job_id}")
        keys = (
            "id",
            "operation",
            "object",
            "createdById",
            "createdDate",
            "systemModstamp",
            "state",
            "externalIdFieldName",
            "concurrencyMode",
            "contentType",
            "apiVersion",
            "assignmentRuleId",
            "numberRetries",
            "pkChunkSize",
            "pkStartRow",
        )
        return dict(zip(keys, row, strict=True))

    def get_job(self, job_id: str) -> dict[str, Any]:
        job = self.find_job(job_id)
        counts = {"Queued": 0, "InProgress": 0, "Completed": 0, "Failed": 0, "NotProcessed": 0}
        processed = failed = total_time = api_time = 0
        for state, n, p, f, t, a in self.store.reader().execute(
            "SELECT state, count(*), sum(records_processed), sum(records_failed), sum(total_processing_time), "
            "sum(api_active_processing_time) FROM batches WHERE job_id = ? GROUP BY state",
            (job_id,),
        ):
            counts[state] = n
            processed += p or 0
            failed += f or 0
            total_time += t or 0
            api_time += a or 0
        job.update(
            numberBatchesQueued=counts["Queued"],
            numberBatchesInProgress=counts["InProgress"],
            numberBatchesCompleted=counts["Completed"],
            numberBatchesFailed=counts["Failed"],
            # NotProcessed batches (PK-chunk originals, batches of aborted jobs) are not counted, so that
            # total == completed + failed once the job is done (bulk-api.md §1.11)
            numberBatchesTotal=counts["Queued"]
            + counts["InProgress"]
            + counts["Completed"]
            + counts["Failed"],
            numberRecordsProcessed=processed,
            numberRecordsFailed=failed,
            totalProcessingTime=total_time,
            apiActiveProcessingTime=api_time,
            apexProcessingTime=0,
        )
        return job

    def update_job(self, job_id: str, doc: dict[str, Any]) -> dict[str, Any]:
        job = self.find_job(job_id)
        for key in doc:
            if key != "state":
                raise BulkApiError("InvalidJob", f"{key[:1].upper()}{key[1:]} cannot be specified")
        target = doc.get("state")
        if target not in ("Closed", "Aborted"):
            raise BulkApiError(
                "InvalidJobState",
                f"Invalid job state: {target or '(none)'}. A job can only be updated to Closed or Aborted",
            )
        current = job["state"]
        if current != "Open" and not (current == "Closed" and target == "Aborted"):
            verb = "Closing" if target == "Closed" else "Aborting"
            raise BulkApiError("InvalidJobState", f"{verb} already {current.lower()} Job not allowed")
        now = now_iso()
        with self.store.write() as conn:
            conn.execute("UPDATE jobs SET state = ?, system_modstamp = ? WHERE id = ?", (target, now, job_id))
            if target == "Aborted":
                conn.execute(
                    "UPDATE batches SET state = 'NotProcessed', system_modstamp = ? "
                    "WHERE job_id = ? AND state = 'Queued'",
                    (now, job_id),
                )
        return self.get_job(job_id)

    # --------------------------------------------------------------------------------- batches
    def add_batch(self, job_id: str, body: bytes, media_type: str, api_version: str) -> dict[str, Any]:
        job = self.find_job(job_id)
        if job["state"] != "Open":
            raise BulkApiError("InvalidJobState", f"Job: {job_id} is not open")
        expected = BATCH_MEDIA_TYPES[job["contentType"]]
        if media_type not in KNOWN_MEDIA_TYPES:
            raise BulkApiError(
                "UnsupportedContentType", f"Unsupported content type: {media_type or '(none)'}"
            )
        if media_type != expected:
            raise BulkApiError(
                "InvalidBatch",
                f"Content-Type {media_type} does not match the job's contentType "
                f"{job['contentType']} (expected {expected})",
            )
        if job["apiVersion"] != api_version:
            raise BulkApiError(
                "InvalidVersion",
                f"The API version {api_version} of the batch does not match the "
                f"API version {job['apiVersion']} of the job",
            )
        if not body:
            raise BulkApiError("InvalidBatch", "Records not found: the batch is empty")
        now = now_iso()
        with self.store.write() as conn:
            batch_id = self.store.queue_batch(conn, job_id, media_type, body, now)
        # The answer is the batch as received (bulk-api.md §1.5: "only acknowledges that the batch was
        # received"), built before the workers see it: re-reading it afterwards could show a worker's
        # InProgress, Completed or Failed.
        received = self._batch_dict((batch_id, job_id, "Queued", None, now, now, 0, 0, 0, 0))
        if self.processor is not None:
            self.processor.submit(job_id, batch_id, job["concurrencyMode"] == "Serial")
        return received

    _BATCH_COLUMNS = (
        "id, job_id, state, state_message, created_date, system_modstamp, records_processed, "
        "records_failed, total_processing_time, api_active_processing_time"
    )

    @staticmethod
    def _batch_dict(row: tuple[Any, ...]) -> dict[str, Any]:
        keys = (
            "id",
            "jobId",
            "state",
            "stateMessage",
            "createdDate",
            "systemModstamp",
            "numberRecordsProcessed",
            "numberRecordsFailed",
            "totalProcessingTime",
            "apiActiveProcessingTime",
        )
        batch = dict(zip(keys, row, strict=True))
        batch["apexProcessingTime"] = 0
        return batch

    def get_batch(self, job_id: str, batch_id: str) -> dict[str, Any]:
        row = (
            self.store.reader()
            .execute(
                f"SELECT {self._BATCH_COLUMNS} FROM batches WHERE id = ? AND job_id = ?", (batch_id, job_id)
            )
            .fetchone()
        )
        if row is None:
            raise BulkApiError("InvalidBatch", f"Invalid batch id: {batch_id}")
        return self._batch_dict(row)

    def list_batches(self, job_id: str) -> list[dict[str, Any]]:
        self.find_job(job_id)
        rows = self.store.reader().execute(
            f"SELECT {self._BATCH_COLUMNS} FROM batches WHERE job_id = ? ORDER BY seq", (job_id,)
        )
        return [self._batch_dict(r) for r in rows]

    def batch_request(self, job_id: str, batch_id: str) -> bytes:
        self.get_batch(job_id, batch_id)
        row = (
            self.store.reader()
            .execute("SELECT data FROM batch_requests WHERE batch_id = ?", (batch_id,))
            .fetchone()
        )
        return bytes(row[0]) if row else b""

    def _completed(self, job_id: str, batch_id: str) -> dict[str, Any]:
        batch = self.get_batch(job_id, batch_id)
        if batch["state"] != "Completed":
            raise BulkApiError("InvalidBatch", "Batch not completed")
        return batch

    def ingest_results(self, job_id: str, batch_id: str) -> list[list[Any]]:
        self._completed(job_id, batch_id)
        row = (
            self.store.reader()
            .execute("SELECT data FROM batch_results WHERE batch_id = ?", (batch_id,))
            .fetchone()
        )
        return json.loads(row[0]) if row else []

    def query_result_ids(self, job_id: str, batch_id: str) -> list[str]:
        self._completed(job_id, batch_id)
        return queries.result_ids(self.store, batch_id)

    def query_result(self, job_id: str, batch_id: str, result_id: str) -> Iterator[bytes]:
        self._completed(job_id, batch_id)
        if result_id not in queries.result_ids(self.store, batch_id):
            raise BulkApiError("InvalidBatch", f"Invalid result id: {result_id}")
        return queries.stream_result(self.store, result_id)

    # ------------------------------------------------------------------------------ processing
    def pending_batches(self) -> list[tuple[str, str, bool]]:
        """Batches left Queued/InProgress by a previous run (persistent --db), to process again."""
        with self.store.write() as conn:
            conn.execute("UPDATE batches SET state = 'Queued' WHERE state = 'InProgress'")
        rows = self.store.reader().execute(
            "SELECT b.job_id, b.id, j.concurrency_mode FROM batches b JOIN jobs j ON j.id = b.job_id "
            "WHERE b.state = 'Queued' ORDER BY b.job_id, b.seq"
        )
        return [(j, b, mode == "Serial") for j, b, mode in rows]

    def _set_state(self, batch_id: str, state: str, message: str | None = None, **counts: int) -> None:
        sets = ["state = ?", "state_message = ?", "system_modstamp = ?"]
        params: list[Any] = [state, message, now_iso()]
        for column, value in counts.items():
            sets.append(f"{column} = ?")
            params.append(value)
        with self.store.write() as conn:
            conn.execute(f"UPDATE batches SET {', '.join(sets)} WHERE id = ?", (*params, batch_id))

    def process_batch(self, job_id: str, batch_id: str) -> None:
        """Run one Queued batch to Completed or Failed (called by a worker thread)."""
        batch = (
            self.store.reader()
            .execute("SELECT state, request_type FROM batches WHERE id = ?", (batch_id,))
            .fetchone()
        )
        if batch is None or batch[0] != "Queued":
            return  # aborted meanwhile (NotProcessed)
        self._set_state(batch_id, "InProgress")
        started = time.monotonic()
        if self.processing_delay:
            time.sleep(self.processing_delay)
        job = self.get_job(job_id)
        data = self.batch_request(job_id, batch_id)
        try:
            if (
                batch[1] in bulk2_tasks.TASKS
            ):  # Bulk API 2.0 work: split an upload, run a query (bulk2_tasks.py)
                bulk2_tasks.run_task(self, job, batch_id, batch[1], data, started)
            elif job["operation"] in ("query", "queryAll"):
                self._process_query(job, batch_id, data, started)
            else:
                self._process_ingest(job, batch_id, data, started)
        except BatchFailure as exc:
            self._set_state(
                batch_id,
                "Failed",
                exc.state_message,
                total_processing_time=(elapsed := _ms(started)),
                api_active_processing_time=elapsed,
            )
        except Exception:  # never leave a batch InProgress forever; the details go to the log only
            log.exception("batch %s failed unexpectedly", batch_id)
            self._set_state(batch_id, "Failed", UNEXPECTED_FAILURE)

    def _process_ingest(self, job: dict[str, Any], batch_id: str, data: bytes, started: float) -> None:
        obj = self.schema.get(job["object"])
        assert obj is not None
        payload = parse_payload(data, job["contentType"])
        writer = BatchWriter(
            self.store, self.schema, obj, job["operation"], self.user_id, job["externalIdFieldName"]
        )
        results = writer.apply(payload)
        failed = results.failed()
        blob = results.to_json()
        with self.store.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO batch_results (batch_id, data) VALUES (?, ?)", (batch_id, blob)
            )
            conn.execute(
                "UPDATE batches SET state = 'Completed', state_message = NULL, system_modstamp = ?, "
                "records_processed = ?, records_failed = ?, total_processing_time = ?, api_active_processing_time = ? "
                "WHERE id = ?",
                (now_iso(), len(results), failed, (elapsed := _ms(started)), elapsed, batch_id),
            )

    def _process_query(self, job: dict[str, Any], batch_id: str, data: bytes, started: float) -> None:
        try:
            soql = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise BatchFailure("Failed to read query: not valid UTF-8") from None
        if len(soql) > 100_000:
            raise BatchFailure("Failed to read query. Exceeded max size limit of 100000")
        is_chunk = (
            self.store.reader()
            .execute("SELECT id_low IS NOT NULL FROM batches WHERE id = ?", (batch_id,))
            .fetchone()[0]
        )
        if job["pkChunkSize"] and not is_chunk:
            self._split_pk_chunks(job, batch_id, soql)
            return
        rows = queries.run_query(self.store, self.schema, job, batch_id, soql, self.rows_per_result_file)
        self._set_state(
            batch_id,
            "Completed",
            None,
            records_processed=rows,
            records_failed=0,
            total_processing_time=(elapsed := _ms(started)),
            api_active_processing_time=elapsed,
        )

    def _split_pk_chunks(self, job: dict[str, Any], batch_id: str, soql: str) -> None:
        q, obj, _outputs, _column = queries.compile_query(self.schema, job["object"], soql)
        bounds = queries.chunk_boundaries(self.store, obj, job["pkChunkSize"], job["pkStartRow"])
        ranges = [(lo, bounds[i + 1] if i + 1 < len(bounds) else None) for i, lo in enumerate(bounds)]
        now = now_iso()
        created = []
        with self.store.write() as conn:
            seq = conn.execute("SELECT max(seq) FROM batches WHERE job_id = ?", (job["id"],)).fetchone()[0]
            request_type = conn.execute(
                "SELECT request_type FROM batches WHERE id = ?", (batch_id,)
            ).fetchone()[0]
            for lo, hi in ranges:
                seq += 1
                chunk_id = self.store.new_id18(conn, "751")
                conn.execute(
                    "INSERT INTO batches (id, job_id, seq, state, created_date, system_modstamp, request_type, id_low, "
                    "id_high) VALUES (?, ?, ?, 'Queued', ?, ?, ?, ?, ?)",
                    (chunk_id, job["id"], seq, now, now, request_type, lo or "", hi),
                )
                conn.execute(
                    "INSERT INTO batch_requests (batch_id, data) VALUES (?, ?)",
                    (chunk_id, q.with_id_range(lo, hi).encode("utf-8")),
                )
                created.append(chunk_id)
            conn.execute(
                "UPDATE batches SET state = 'NotProcessed', state_message = NULL, system_modstamp = ? "
                "WHERE id = ?",
                (now, batch_id),
            )
        for chunk_id in created:
            self.processor.submit(job["id"], chunk_id, job["concurrencyMode"] == "Serial")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
