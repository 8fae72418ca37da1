"""The Bulk API 2.0 REST calls the ``--api 2`` pipeline makes, with the connection's token life cycle.

Deliberate choice: these calls go to ``/services/data/vXX.X/jobs/...`` through the connection's
transport and its :class:`~sfbulk.connector.auth.TokenManager` (Bearer token, refreshed after a 401
and the request replayed once), not through ``Connection.invoke``: the ``salesforcebulkv2`` bundle
was not on a branch this pipeline could build on when it was written, and the pipeline needs two
things operations-as-data did not offer yet (a request body streamed from a file that can be sent
again on replay, and a response streamed to a file). The method names follow WSO2's SalesforceBulkV2
operations (createJob, uploadJobData, closeJob, getJobInfo, ...) so switching to the bundle is a
change inside this module only.

Retries follow Bulk 1.0's rule (:mod:`sfbulk.bulk.retry`): idempotent calls are retried on
transient failures; the one upload a 2.0 job allows is retried too, because a second PUT after one
that landed is refused with ``Found multiple contents`` — which then proves the first one arrived.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from sfbulk.bulk.retry import RetryPolicy, RetryStats, call_with_retry
from sfbulk.errors import ApiError, BulkError, TransportError
from sfbulk.transport import HttpRequest, HttpResponse, check_host

log = logging.getLogger("sfbulk.bulk.v2.client")

INGEST_FINAL = frozenset({"JobComplete", "Failed", "Aborted"})
#: the error Salesforce gives a second upload to the same job (bulk-api.md §8.1)
_MULTIPLE_CONTENTS = "Found multiple contents"
DOWNLOAD_CHUNK = 256 * 1024


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


class Bulk2Client:
    """Thread-safe Bulk API 2.0 calls over one :class:`~sfbulk.connector.connection.Connection`."""

    def __init__(self, connection: Any, *, retry: RetryPolicy | None = None) -> None:
        self.conn = connection
        self.retry = retry or RetryPolicy()
        self.stats = RetryStats()
        self.version = connection.params.api_version

    # -- plumbing -----------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, query: dict[str, Any] | None = None,
              body: Callable[[], Any] | None = None, headers: dict[str, str] | None = None,
              stream: bool = False) -> HttpResponse:
        """One request with the session; a 401 refreshes the token and replays it once."""
        auth = self.conn.auth
        session = auth.current()
        response = self._once(method, path, session, query, body, headers, stream)
        if response.status != 401:
            auth.confirm(session)
            return response
        fresh = auth.refresh_after_failure(session)
        if fresh is None:
            return response
        log.debug("%s %s: session rejected; replaying once with the refreshed token", method, path)
        response.close()
        return self._once(method, path, fresh, query, body, headers, stream)

    def _once(self, method: str, path: str, session: Any, query: dict[str, Any] | None,
              body: Callable[[], Any] | None, headers: dict[str, str] | None, stream: bool) -> HttpResponse:
        check_host(self.conn.host_policy, session.instance_url, "the instance URL of the session")
        url = f"{session.instance_url}/services/data/v{self.version}/jobs{path}"
        if query:
            url += "?" + urlencode(query)
        sent = {"Accept": "application/json", **(headers or {})}
        if session.token:
            sent["Authorization"] = "Bearer " + session.token.reveal()
        params = self.conn.params
        request = HttpRequest(method, url, sent, body() if body is not None else None, timeout=params.timeout,
                              stream=stream, verify=params.ca_file)
        return self.conn.transport.send(request)

    def _json(self, method: str, path: str, context: str, *, doc: dict[str, Any] | None = None,
              ok: tuple[int, ...] = (200, 201), retry: bool = True) -> dict[str, Any]:
        payload = None if doc is None else json.dumps(doc).encode("utf-8")

        def once() -> dict[str, Any]:
            response = self._send(method, path, body=(lambda: payload) if payload is not None else None,
                                  headers={"Content-Type": "application/json"} if payload is not None else None)
            if response.status not in ok:
                raise api_error(response, context)
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

        if not retry:
            return once()
        return call_with_retry(once, what=context, policy=self.retry, stats=self.stats)

    # -- ingest -------------------------------------------------------------------------------

    def create_job(self, *, operation: str, object: str, external_id: str | None = None,
                   line_ending: str = "LF") -> dict[str, Any]:
        """createJob. Retried on transient failures (a lost answer can leave one empty Open job behind)."""
        doc: dict[str, Any] = {"object": object, "operation": operation, "contentType": "CSV",
                               "columnDelimiter": "COMMA", "lineEnding": line_ending}
        if external_id:
            doc["externalIdFieldName"] = external_id
        info = self._json("POST", "/ingest", f"creating the {operation} job on {object}", doc=doc)
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
            with open(path, "rb") as fh:
                response = self._send("PUT", f"/ingest/{job_id}/batches", body=lambda: _rewound(fh),
                                      headers={"Content-Type": "text/csv"})
                if response.status in (200, 201):
                    response.close()
                    return True
                err = api_error(response, context)
                if _MULTIPLE_CONTENTS in (err.exception_message or ""):
                    return False
                raise err

        return call_with_retry(once, what=context, policy=self.retry, stats=self.stats)

    def close_job(self, job_id: str) -> dict[str, Any]:
        """closeJob (state UploadComplete); a job already closed or finished counts as closed."""
        context = f"closing job {job_id}"
        try:
            return self._json("PATCH", f"/ingest/{job_id}", context, doc={"state": "UploadComplete"})
        except ApiError as exc:
            if exc.status == 400 and exc.exception_code in ("INVALIDJOBSTATE", "InvalidJobState"):
                info = self.get_job(job_id)
                if info.get("state") != "Open":
                    return info
            raise

    def abort_job(self, job_id: str, kind: str = "ingest") -> None:
        self._json("PATCH", f"/{kind}/{job_id}", f"aborting job {job_id}", doc={"state": "Aborted"})

    def get_job(self, job_id: str, kind: str = "ingest") -> dict[str, Any]:
        """getJobInfo / getQueryJobInfo."""
        return self._json("GET", f"/{kind}/{job_id}", f"reading job {job_id}")

    def download(self, path: str, dest: str, context: str, *, query: dict[str, Any] | None = None,
                 accept: str = "text/csv", transform: Callable[[bytes], bytes] | None = None,
                 ) -> tuple[int, dict[str, str]]:
        """Stream one CSV body to ``dest`` (rewritten from scratch on each retry): (bytes, headers)."""
        def once() -> tuple[int, dict[str, str]]:
            response = self._send("GET", path, query=query, headers={"Accept": accept,
                                                                    "Accept-Encoding": "gzip"}, stream=True)
            if response.status != 200:
                err = api_error(response, context)
                response.close()
                raise err
            written = 0
            try:
                with open(dest, "wb") as fh:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK):
                        if transform is not None:
                            chunk = transform(chunk)
                        fh.write(chunk)
                        written += len(chunk)
            except (OSError, ValueError) as exc:  # requests' ChunkedEncodingError etc. surface here
                raise TransportError(f"{context}: download interrupted ({type(exc).__name__})") from exc
            finally:
                response.close()
            return written, dict(response.headers)

        return call_with_retry(once, what=context, policy=self.retry, stats=self.stats)

    def download_results(self, job_id: str, kind: str, dest: str) -> int:
        """getSuccessfulResults / getFailedResults / getUnprocessedResults into ``dest``."""
        what = {"successfulResults": "successful", "failedResults": "failed",
                "unprocessedrecords": "unprocessed"}[kind]
        return self.download(f"/ingest/{job_id}/{kind}", dest, f"downloading the {what} results of job {job_id}")[0]

    # -- query --------------------------------------------------------------------------------

    def create_query_job(self, soql: str, *, query_all: bool = False) -> dict[str, Any]:
        doc = {"operation": "queryAll" if query_all else "query", "query": soql, "contentType": "CSV",
               "columnDelimiter": "COMMA", "lineEnding": "LF"}
        info = self._json("POST", "/query", "creating the query job", doc=doc)
        if not info.get("id"):
            raise BulkError("Salesforce created a query job but its answer carries no job id")
        return info

    def result_pages(self, job_id: str, *, max_records: int | None = None,
                     locator: str | None = None) -> dict[str, Any]:
        """One answer of ``resultPages`` (API 58.0+): page links, ``nextRecordsUrl``, ``done``."""
        query: dict[str, Any] = {}
        if locator:
            query["locator"] = locator
        if max_records:
            query["maxRecords"] = max_records
        path = f"/query/{job_id}/resultPages" + ("?" + urlencode(query) if query else "")
        return self._json("GET", path, f"listing the result pages of job {job_id}")

    def download_page(self, job_id: str, dest: str, *, locator: str | None = None, max_records: int | None = None,
                      transform: Callable[[bytes], bytes] | None = None) -> tuple[int, str | None, int]:
        """getQueryJobResults: one page to ``dest``: (bytes, next locator or None, records in it)."""
        query: dict[str, Any] = {}
        if locator:
            query["locator"] = locator
        if max_records:
            query["maxRecords"] = max_records
        written, headers = self.download(f"/query/{job_id}/results", dest,
                                         f"downloading results of job {job_id}"
                                         + (f" at locator {locator}" if locator else ""), query=query,
                                         transform=transform)
        lowered = {k.lower(): v for k, v in headers.items()}
        nxt = lowered.get("sforce-locator") or "null"
        try:
            records = int(lowered.get("sforce-numberofrecords", "0"))
        except ValueError:
            records = 0
        return written, None if nxt == "null" else nxt, records


def _rewound(fh: Any) -> Any:
    fh.seek(0)
    return fh


__all__ = ["INGEST_FINAL", "Bulk2Client", "api_error"]
