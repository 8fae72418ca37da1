"""The Bulk API calls the load/extract pipeline needs, made through the connector's operations.

Everything goes through ``Connection.invoke`` (so tokens are refreshed and replayed there); this
module adds what a pipeline needs on top: parsing batchInfo/result-list XML, turning error
answers into :class:`~sfbulk.errors.ApiError`, retrying idempotent calls, downloading results
to disk in chunks, and a batch POST that never creates the same batch twice.

Why the batch POST is special: when the connection drops after Salesforce created the batch but
before we read its answer, a blind re-send would load those rows twice. So after an unknown
outcome (transport error, 5xx, 429) we list the job's batches and look for ours among the ones
nobody claimed yet, comparing the request Salesforce kept (``getBatchRequest``) with what we sent
(SHA-256). Only when it is not there is the batch sent again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lxml import etree

from sfbulk import xmlsafe
from sfbulk.bulk.retry import RetryPolicy, RetryStats, call_with_retry, is_transient
from sfbulk.errors import ApiError, BulkError, PayloadError, TransportError

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.connector.connection import Connection, OperationResponse

log = logging.getLogger("sfbulk.bulk.client")

FINAL_STATES = frozenset({"Completed", "Failed", "NotProcessed"})


@dataclass(frozen=True)
class BatchInfo:
    id: str
    job_id: str
    state: str
    state_message: str
    records_processed: int
    records_failed: int

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _children(el: Any) -> dict[str, str]:
    return {_local(c): (c.text or "") for c in el if isinstance(c.tag, str)}


def _int(value: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        return 0


def _batch_info(fields: dict[str, str]) -> BatchInfo:
    return BatchInfo(
        id=fields.get("id", ""),
        job_id=fields.get("jobId", ""),
        state=fields.get("state", ""),
        state_message=fields.get("stateMessage", ""),
        records_processed=_int(fields.get("numberRecordsProcessed", "0")),
        records_failed=_int(fields.get("numberRecordsFailed", "0")),
    )


def parse_batch_info(content: bytes) -> BatchInfo:
    return _batch_info(_children(xmlsafe.parse(content, what="batchInfo")))


def parse_batch_list(content: bytes) -> list[BatchInfo]:
    root = xmlsafe.parse(content, what="batchInfoList")
    return [_batch_info(_children(el)) for el in root if _local(el) == "batchInfo"]


def parse_result_list(content: bytes) -> list[str]:
    root = xmlsafe.parse(content, what="result-list")
    return [(el.text or "").strip() for el in root if _local(el) == "result"]


def parse_job_info(content: bytes) -> dict[str, str]:
    return _children(xmlsafe.parse(content, what="jobInfo"))


def api_error(response: Any, context: str) -> ApiError:
    """An ApiError from an error answer (Salesforce's <error> XML or JSON when present)."""
    code = message = None
    body = b""
    try:
        body = response.content[:65536]
    except TransportError:
        pass
    if body.lstrip().startswith(b"<"):
        try:
            fields = _children(xmlsafe.parse(body, what="error"))
            code, message = fields.get("exceptionCode"), fields.get("exceptionMessage")
        except PayloadError:
            pass
    elif body.lstrip().startswith(b"{"):
        import json

        try:
            data = json.loads(body)
            if isinstance(data, dict):
                code, message = data.get("exceptionCode"), data.get("exceptionMessage")
        except ValueError:
            pass
    return ApiError(response.status, code, message, context=context)


class BulkClient:
    """Thread-safe helper over one Connection for the load/extract pipeline."""

    def __init__(self, connection: Connection, *, retry: RetryPolicy | None = None) -> None:
        self.conn = connection
        self.retry = retry or RetryPolicy()
        self.stats = RetryStats()
        self._claim_lock = threading.Lock()
        self._claimed: set[str] = set()  # batch ids known to belong to a batch we sent
        self._digests: dict[str, str] = {}  # batch id -> sha256 of its request, fetched during recovery
        self.resends = 0  # batches sent again after checking they were not created

    # -- plumbing -----------------------------------------------------------------------------

    def _call(
        self, op: str, context: str, *, ok: tuple[int, ...] = (200,), stream: bool = False, **params: Any
    ) -> OperationResponse:
        """One invoke; a non-``ok`` status raises ApiError (transient ones are retried by callers)."""
        response = self.conn.invoke(op, stream=stream, **params)
        if response.status not in ok:
            err = api_error(response, context)
            response.close()
            raise err
        return response

    def _get(self, op: str, context: str, **params: Any) -> bytes:
        def once() -> bytes:
            return bytes(self._call(op, context, **params).content)

        return call_with_retry(once, what=context, policy=self.retry, stats=self.stats)

    # -- jobs ---------------------------------------------------------------------------------

    def create_job(
        self,
        *,
        operation: str,
        object: str,
        content_type: str = "CSV",
        external_id: str | None = None,
        concurrency: str | None = None,
        pk_chunking: str | None = None,
    ) -> dict[str, str]:
        """Create a job; retried on transient failures (a lost answer can leave one empty open job)."""
        params: dict[str, Any] = {
            "operation": operation,
            "object": object,
            "contentType": content_type,
            "externalIdFieldName": external_id or "",
            "concurrencyMode": concurrency or "",
            "pkChunking": pk_chunking or "",
        }

        def once() -> dict[str, str]:
            resp = self._call(
                "createJob", f"creating the {operation} job on {object}", ok=(200, 201), **params
            )
            return parse_job_info(resp.content)

        info = call_with_retry(once, what="createJob", policy=self.retry, stats=self.stats)
        if not info.get("id"):
            raise BulkError("Salesforce created a job but its answer carries no job id")
        return info

    def close_job(self, job_id: str) -> None:
        """Close the job; idempotent (an already closed job counts as closed)."""

        def once() -> None:
            try:
                self._call("updateJob", f"closing job {job_id}", jobId=job_id, state="Closed")
            except ApiError as exc:
                if exc.exception_code == "InvalidJobState" and "already closed" in (
                    exc.exception_message or ""
                ):
                    return
                raise

        call_with_retry(once, what=f"closing job {job_id}", policy=self.retry, stats=self.stats)

    def abort_job(self, job_id: str) -> None:
        self._get("updateJob", f"aborting job {job_id}", jobId=job_id, state="Aborted")

    def get_job(self, job_id: str) -> dict[str, str]:
        return parse_job_info(self._get("getJob", f"reading job {job_id}", jobId=job_id))

    # -- batches ------------------------------------------------------------------------------

    def list_batches(self, job_id: str) -> list[BatchInfo]:
        return parse_batch_list(
            self._get("listBatches", f"listing the batches of job {job_id}", jobId=job_id)
        )

    def batch_request_digest(self, job_id: str, batch_id: str) -> str:
        content = self._get(
            "getBatchRequest", f"reading the request of batch {batch_id}", jobId=job_id, batchId=batch_id
        )
        return _digest(content)

    def claim(self, batch_id: str) -> None:
        with self._claim_lock:
            self._claimed.add(batch_id)

    def add_batch(
        self, job_id: str, data: bytes, *, content_type: str = "text/csv; charset=UTF-8", label: str = "batch"
    ) -> BatchInfo:
        """POST one batch exactly once (see the module docstring)."""
        digest = None
        backoff = self.retry.backoff()
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._call(
                    "uploadBatchFile",
                    f"adding {label} to job {job_id}",
                    ok=(200, 201),
                    jobId=job_id,
                    contentType=content_type,
                    body=data,
                )
                info = parse_batch_info(resp.content)
                self.claim(info.id)
                return info
            except (TransportError, ApiError) as exc:
                if not is_transient(exc):
                    raise
                if attempt >= self.retry.attempts:
                    raise BulkError(
                        f"job {job_id}: {label} could not be sent after {attempt} attempts: {exc}"
                    ) from exc
                log.info(
                    "adding %s to job %s: outcome unknown (%s); checking listBatches", label, job_id, exc
                )
                self.stats.retries += 1
            time.sleep(backoff.next_delay())
            digest = digest or _digest(data)
            found = self._find_sent(job_id, digest)
            if found is not None:
                log.info(
                    "%s of job %s was created before the failure (%s); not sending it again",
                    label,
                    job_id,
                    found.id,
                )
                return found
            self.resends += 1

    def find_sent(self, job_id: str, data: bytes) -> BatchInfo | None:
        """The job's batch holding exactly ``data`` that nobody claimed yet (claimed now), or None.

        How a resumed load learns whether an upload cut off by kill -9 reached Salesforce.
        """
        return self._find_sent(job_id, _digest(data))

    def _find_sent(self, job_id: str, digest: str) -> BatchInfo | None:
        """A batch of the job nobody claimed whose request has ``digest``, claimed for the caller."""
        with self._claim_lock:
            batches = self.list_batches(job_id)
            for info in batches:
                if info.id in self._claimed:
                    continue
                known = self._digests.get(info.id)
                if known is None:
                    known = self._digests[info.id] = self.batch_request_digest(job_id, info.id)
                if known == digest:
                    self._claimed.add(info.id)
                    return info
        return None

    # -- results ------------------------------------------------------------------------------

    def download(
        self,
        op: str,
        dest: str,
        context: str,
        *,
        transform: Callable[[bytes], bytes] | None = None,
        **params: Any,
    ) -> int:
        """Stream one result body to ``dest`` (rewritten from scratch on each retry); returns bytes written."""

        def once() -> int:
            return stream_to_file(self._call(op, context, stream=True, **params), dest, context, transform)

        return call_with_retry(once, what=context, policy=self.retry, stats=self.stats)

    def download_batch_results(self, job_id: str, batch_id: str, dest: str) -> int:
        return self.download(
            "getBatchResults",
            dest,
            f"downloading the results of batch {batch_id}",
            jobId=job_id,
            batchId=batch_id,
        )

    def query_result_ids(self, job_id: str, batch_id: str) -> list[str]:
        return parse_result_list(
            self._get(
                "getBatchResults",
                f"listing the result files of batch {batch_id}",
                jobId=job_id,
                batchId=batch_id,
            )
        )


def stream_to_file(
    response: OperationResponse, dest: str, context: str, transform: Callable[[bytes], bytes] | None = None
) -> int:
    """Write a streamed response body to ``dest`` (from scratch) and close it; returns the bytes written.

    A body cut off mid-way is a TransportError, so callers retry it like any transient failure.
    """
    written = 0
    try:
        with open(dest, "wb") as fh:
            for chunk in response.iter_content(256 * 1024):
                if transform is not None:
                    chunk = transform(chunk)
                fh.write(chunk)
                written += len(chunk)
    except (OSError, ValueError) as exc:  # the file cannot be written, or the transform failed
        raise TransportError(f"{context}: download interrupted ({type(exc).__name__})") from exc
    finally:
        response.close()
    return written


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = [
    "FINAL_STATES",
    "BatchInfo",
    "BulkClient",
    "api_error",
    "parse_batch_info",
    "parse_batch_list",
    "parse_job_info",
    "parse_result_list",
    "stream_to_file",
]
