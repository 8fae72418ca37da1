"""The Bulk API 2.0 calls the ``--api 2`` pipeline makes, through the ``salesforcebulkv2`` bundle's operations.

Every call is ``Connection.invoke`` of a WSO2 SalesforceBulkV2 operation (createJob,
uploadJobData, closeJob, getJobInfo, getSuccessfulResults, getFailedResults,
getUnprocessedResults, createQueryJob, getQueryJobInfo, getQueryJobResults, abortJob,
abortQueryJob) or of the bundle's ``getQueryJobResultPages`` extension (Salesforce's parallel
``resultPages``, API 58.0+), so the token life cycle is the connector's (Bearer token, refreshed
after a 401 and the request replayed once). Uploads pass the job's work file as ``body=``
(seekable, so a replay sends it again); result bodies are streamed (``stream=True``) to the
pipeline's own files.

Retries follow Bulk 1.0's rule (:mod:`sfbulk.bulk.retry`): idempotent calls are retried on
transient failures; the one upload a 2.0 job allows is retried too, because a second PUT after one
that landed is refused with ``Found multiple contents``, which then proves the first one arrived.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sfbulk.bulk.client import stream_to_file
from sfbulk.bulk.retry import RetryPolicy, RetryStats, call_with_retry
from sfbulk.errors import ApiError, BulkError, TransportError
from sfbulk.transport import HttpResponse

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.connector.connection import Connection, OperationResponse

log = logging.getLogger("sfbulk.bulk.v2.client")

INGEST_FINAL = frozenset({"JobComplete", "Failed", "Aborted"})
#: the error Salesforce gives a second upload to the same job (bulk-api.md §8.1)
_MULTIPLE_CONTENTS = "Found multiple contents"


def api_error(response: HttpResponse, context: str) -> ApiError:
    """An ApiError from a 2.0 error answer: ``[{"errorCode": ..., "message": ...}]``."""
    code = message = None
    try:
        body = response.content[:65536]
        data = json.loads(body) if body.lstrip().startswith((b"[", b"{")) else None
    except (TransportError, ValueError):
        data = None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        code = data.get("errorCode") or data.get("exceptionCode")
        message = data.get("message") or data.get("exceptionMessage")
    return ApiError(response.status, code, message, context=context)


def v2_connection(conn: Connection) -> Connection:
    """A ``salesforcebulkv2`` connection for ``conn``: itself, or one sharing its parameters, registry
    (so its token) and transport when ``conn`` is a Bulk 1.0 ``salesforcebulk`` connection."""
    if conn.connector.name == "salesforcebulkv2":
        return conn
    from sfbulk.connector.connection import Connection, Connector

    return Connection(
        Connector.load("salesforcebulkv2"),
        conn.params,
        conn.registry,
        conn.transport,
        host_policy=conn.host_policy,
    )


class Bulk2Client:
    """Thread-safe Bulk API 2.0 calls over one ``salesforcebulkv2`` (or 1.0) connection."""

    def __init__(self, connection: Connection, *, retry: RetryPolicy | None = None) -> None:
        self.conn = v2_connection(connection)
        self.retry = retry or RetryPolicy()
        self.stats = RetryStats()
        self.version = self.conn.params.api_version
        self.resends = 0  # Bulk 1.0's re-sent batches; a 2.0 upload is never sent twice

    # -- plumbing -----------------------------------------------------------------------------

    def _invoke(
        self,
        op: str,
        context: str,
        *,
        ok: tuple[int, ...] = (200, 201),
        stream: bool = False,
        body: Any = None,
        **params: Any,
    ) -> OperationResponse:
        """One operation; a non-``ok`` status raises ApiError (transient ones are retried by callers)."""
        kwargs = {k: v for k, v in params.items() if v not in (None, "")}
        response = self.conn.invoke(
            op, stream=stream, **({"body": body} if body is not None else {}), **kwargs
        )
        if response.status not in ok:
            err = api_error(response.http, context)
            response.close()
            raise err
        return response

    @staticmethod
    def _doc(response: Any, context: str) -> dict[str, Any]:
        content = response.content
        if not content.strip():
            return {}
        try:
            data = json.loads(content)
        except ValueError as exc:
            raise BulkError(f"{context}: Salesforce's answer is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise BulkError(f"{context}: Salesforce's answer is not a JSON object")
        return data

    def _op(self, op: str, context: str, **params: Any) -> dict[str, Any]:
        """An operation answering a JSON object, retried on transient failures."""
        return call_with_retry(
            lambda: self._doc(self._invoke(op, context, **params), context),
            what=context,
            policy=self.retry,
            stats=self.stats,
        )

    # -- ingest -------------------------------------------------------------------------------

    def create_job(
        self, *, operation: str, object: str, external_id: str | None = None, line_ending: str = "LF"
    ) -> dict[str, Any]:
        """createJob. Retried on transient failures (a lost answer can leave one empty Open job behind)."""
        info = self._op(
            "createJob",
            f"creating the {operation} job on {object}",
            object=object,
            operation=operation,
            columnDelimiter="COMMA",
            lineEnding=line_ending,
            externalIdFieldName=external_id,
        )
        if not info.get("id"):
            raise BulkError("Salesforce created a job but its answer carries no job id")
        return info

    def upload_job_data(self, job_id: str, path: str) -> bool:
        """uploadJobData: PUT the CSV file at ``path`` (streamed from disk, sent again on a retry).

        Returns False when Salesforce says the job already has its data: an earlier attempt (of
        this run or of a killed one) landed, and an upload is complete or not at all.
        """
        context = f"uploading the data of job {job_id}"

        def once() -> bool:
            with open(path, "rb") as fh:  # seekable: the connection rewinds it for a replay
                try:
                    self._invoke("uploadJobData", context, body=fh, jobId=job_id).close()
                except ApiError as err:
                    if _MULTIPLE_CONTENTS in (err.exception_message or ""):
                        return False
                    raise
                return True

        return call_with_retry(once, what=context, policy=self.retry, stats=self.stats)

    def close_job(self, job_id: str) -> dict[str, Any]:
        """closeJob (state UploadComplete); a job already closed or finished counts as closed."""
        context = f"closing job {job_id}"
        try:
            return self._op("closeJob", context, jobId=job_id)
        except ApiError as exc:
            if exc.status == 400 and exc.exception_code in ("INVALIDJOBSTATE", "InvalidJobState"):
                info = self.get_job(job_id)
                if info.get("state") != "Open":
                    return info
            raise

    def abort_job(self, job_id: str, kind: str = "ingest") -> None:
        """abortJob / abortQueryJob."""
        if kind == "ingest":
            self._op("abortJob", f"aborting job {job_id}", jobId=job_id)
        else:
            self._op("abortQueryJob", f"aborting job {job_id}", queryJobId=job_id)

    def get_job(self, job_id: str, kind: str = "ingest") -> dict[str, Any]:
        """getJobInfo / getQueryJobInfo."""
        if kind == "ingest":
            return self._op("getJobInfo", f"reading job {job_id}", jobId=job_id)
        return self._op("getQueryJobInfo", f"reading job {job_id}", queryJobId=job_id)

    def download(
        self,
        op: str,
        dest: str,
        context: str,
        *,
        transform: Callable[[bytes], bytes] | None = None,
        **params: Any,
    ) -> tuple[int, dict[str, str]]:
        """Stream one operation's CSV body to ``dest`` (rewritten from scratch on each retry): (bytes, headers)."""

        def once() -> tuple[int, dict[str, str]]:
            response = self._invoke(op, context, ok=(200,), stream=True, **params)
            return stream_to_file(response, dest, context, transform), dict(response.headers)

        return call_with_retry(once, what=context, policy=self.retry, stats=self.stats)

    def download_results(self, job_id: str, kind: str, dest: str) -> int:
        """getSuccessfulResults / getFailedResults / getUnprocessedResults into ``dest``."""
        op, what = {
            "successfulResults": ("getSuccessfulResults", "successful"),
            "failedResults": ("getFailedResults", "failed"),
            "unprocessedrecords": ("getUnprocessedResults", "unprocessed"),
        }[kind]
        return self.download(op, dest, f"downloading the {what} results of job {job_id}", jobId=job_id)[0]

    # -- query --------------------------------------------------------------------------------

    def create_query_job(self, soql: str, *, query_all: bool = False) -> dict[str, Any]:
        info = self._op(
            "createQueryJob",
            "creating the query job",
            operation="queryAll" if query_all else "query",
            query=soql,
            columnDelimiter="COMMA",
            lineEnding="LF",
        )
        if not info.get("id"):
            raise BulkError("Salesforce created a query job but its answer carries no job id")
        return info

    def result_pages(
        self, job_id: str, *, max_records: int | None = None, locator: str | None = None
    ) -> dict[str, Any]:
        """getQueryJobResultPages (API 58.0+): page links, ``nextRecordsUrl``, ``done``."""
        return self._op(
            "getQueryJobResultPages",
            f"listing the result pages of job {job_id}",
            queryJobId=job_id,
            locator=locator,
            maxRecords=max_records,
        )

    def download_page(
        self,
        job_id: str,
        dest: str,
        *,
        locator: str | None = None,
        max_records: int | None = None,
        transform: Callable[[bytes], bytes] | None = None,
    ) -> tuple[int, str | None, int]:
        """getQueryJobResults: one page to ``dest``: (bytes, next locator or None, records in it)."""
        written, headers = self.download(
            "getQueryJobResults",
            dest,
            f"downloading results of job {job_id}" + (f" at locator {locator}" if locator else ""),
            transform=transform,
            queryJobId=job_id,
            locator=locator,
            maxRecords=max_records,
        )
        lowered = {k.lower(): v for k, v in headers.items()}
        nxt = lowered.get("sforce-locator") or "null"
        try:
            records = int(lowered.get("sforce-numberofrecords", "0"))
        except ValueError:
            records = 0
        return written, None if nxt == "null" else nxt, records


__all__ = ["INGEST_FINAL", "Bulk2Client", "api_error", "v2_connection"]
