"""Bulk API 2.0 over HTTP: ``/services/data/vXX.X/jobs/...`` routes, JSON shapes and JSON-array errors.

Requests carry ``Authorization: Bearer <token>`` (the OAuth sessions of the 1.0 API). Every failure
is answered ``[{"errorCode": ..., "message": ...}]``; an expired or unknown token is a 401
``INVALID_SESSION_ID``. Uploads and result files are streamed, never held whole in memory.
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from . import bulk2_tasks as tasks
from .apierrors import BulkApiError
from .bulk2_jobs import INGEST, MIN_VERSION, QUERY, Bulk2Jobs, decode_locator, encode_locator
from .oauth import Sessions
from .service import BulkService
from .wire import CT_JSON, json_time

log = logging.getLogger("sfbulk.emulator")

MAX_JSON_BODY = 1_000_000
#: result files say their charset (requests would read a bare text/csv as ISO-8859-1)
CSV_TYPE = "text/csv; charset=UTF-8"
#: resultPages appeared in this API version (bulk-api.md §8.2)
RESULT_PAGES_VERSION = 58.0
_READ = 1 << 20
_ROUTES: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(r"^/(?P<kind>ingest|query)$"), "jobs", ("GET", "POST")),
    (re.compile(r"^/(?P<kind>ingest|query)/(?P<id>[^/]+)$"), "job", ("GET", "PATCH", "DELETE")),
    (re.compile(r"^/(?P<kind>ingest)/(?P<id>[^/]+)/batches$"), "batches", ("PUT",)),
    (
        re.compile(
            r"^/(?P<kind>ingest)/(?P<id>[^/]+)/(?P<what>successfulResults|failedResults|unprocessedrecords)$",
            re.IGNORECASE,
        ),
        "ingest_results",
        ("GET",),
    ),
    (re.compile(r"^/(?P<kind>query)/(?P<id>[^/]+)/results$"), "results", ("GET",)),
    (re.compile(r"^/(?P<kind>query)/(?P<id>[^/]+)/resultPages$"), "result_pages", ("GET",)),
]
_RESULT_KINDS = {
    "successfulresults": "successful",
    "failedresults": "failed",
    "unprocessedrecords": "unprocessed",
}


@dataclass
class Reply:
    status: int
    body: bytes | Iterable[bytes]
    content_type: str | None
    headers: list[tuple[str, str]] = field(default_factory=list)


def error_body(code: str, message: str) -> bytes:
    return json.dumps([{"errorCode": code, "message": message}]).encode("utf-8")


class Bulk2Api:
    """Answers every request under ``/services/data/v<ver>/jobs``."""

    def __init__(self, service: BulkService, sessions: Sessions):
        self.service = service
        self.sessions = sessions
        self.jobs = Bulk2Jobs(service)

    def handle(self, environ: dict[str, Any], method: str, ver: str, rest: str) -> Reply:
        try:
            self._authenticate(environ)
            if float(ver) < MIN_VERSION:
                raise BulkApiError("NOT_FOUND", "The requested resource does not exist", 404)
            return self._route(environ, method, ver, rest)
        except BulkApiError as exc:
            return Reply(exc.status, error_body(exc.code, exc.message), CT_JSON)
        except Exception:
            log.exception("unexpected error on %s %s", method, environ.get("PATH_INFO"))
            return Reply(
                500, error_body("UNKNOWN_EXCEPTION", "An unexpected error occurred in the emulator"), CT_JSON
            )

    def _authenticate(self, environ: dict[str, Any]) -> None:
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").strip().partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not self.sessions.valid(token.strip()):
            raise BulkApiError("INVALID_SESSION_ID", "Session expired or invalid", 401)

    def _route(self, environ: dict[str, Any], method: str, ver: str, rest: str) -> Reply:
        for pattern, name, methods in _ROUTES:
            m = pattern.match(rest)
            if m is None:
                continue
            if method not in methods:
                reply = Reply(
                    405,
                    error_body(
                        "METHOD_NOT_ALLOWED",
                        f"HTTP Method '{method}' not allowed. Allowed are {','.join(methods)}",
                    ),
                    CT_JSON,
                )
                reply.headers.append(("Allow", ", ".join(methods)))
                return reply
            args = m.groupdict()
            kind = INGEST if args["kind"] == "ingest" else QUERY
            handler: Callable[..., Reply] = getattr(self, f"_{name}")
            return handler(environ, method, ver, kind, args)
        raise BulkApiError("NOT_FOUND", "The requested resource does not exist", 404)

    # ------------------------------------------------------------------------------------ jobs
    def _jobs(self, environ: dict[str, Any], method: str, ver: str, kind: str, args: dict[str, str]) -> Reply:
        if method == "POST":
            doc = _read_json(environ)
            job = self.jobs.create_ingest(ver, doc) if kind == INGEST else self.jobs.create_query(ver, doc)
            return self._json(environ, _created(job, ver))
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        jobs, locator = self.jobs.list(kind, params)
        base = f"/services/data/v{ver}/jobs/{args['kind']}"
        next_url = None
        if locator is not None:
            others = "".join(f"&{k}={v}" for k, v in params.items() if k != "queryLocator")
            next_url = f"{base}?queryLocator={locator}{others}"
        return self._json(
            environ,
            {
                "done": locator is None,
                "records": [_summary(j, ver) for j in jobs],
                "nextRecordsUrl": next_url,
            },
        )

    def _job(self, environ: dict[str, Any], method: str, ver: str, kind: str, args: dict[str, str]) -> Reply:
        if method == "GET":
            return self._json(environ, _info(self.jobs.get(args["id"], kind), ver))
        if method == "DELETE":
            self.jobs.delete(args["id"], kind)
            return Reply(204, b"", None)
        doc = _read_json(environ)
        for key in doc:
            if key != "state":
                raise BulkApiError(
                    "INVALIDJOB", f"{key} cannot be changed: only the state of a job can be updated"
                )
        return self._json(environ, _created(self.jobs.change_state(args["id"], kind, doc.get("state")), ver))

    def _json(self, environ: dict[str, Any], doc: Any, status: int = 200) -> Reply:
        if environ.get("HTTP_X_PRETTYPRINT"):
            text = json.dumps(doc, indent=2, separators=(",", " : "))
        else:
            text = json.dumps(doc, separators=(",", ":"))
        return Reply(status, text.encode("utf-8"), CT_JSON)

    # ---------------------------------------------------------------------------------- ingest
    def _batches(
        self, environ: dict[str, Any], method: str, ver: str, kind: str, args: dict[str, str]
    ) -> Reply:
        self.jobs.get(args["id"], INGEST)
        media = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if media != "text/csv":
            raise BulkApiError(
                "UNSUPPORTEDCONTENTTYPE",
                f"Unsupported Content-Type {media or '(none)'}: job data is uploaded as text/csv",
                415,
            )
        self.jobs.upload(args["id"], _body_chunks(environ))
        return Reply(201, b"", None)

    def _ingest_results(
        self, environ: dict[str, Any], method: str, ver: str, kind: str, args: dict[str, str]
    ) -> Reply:
        job = self.jobs.get(args["id"], INGEST)
        what = _RESULT_KINDS[args["what"].lower()]
        return Reply(200, tasks.ingest_results(self.service.store, job, what), CSV_TYPE)

    # ----------------------------------------------------------------------------------- query
    def _finished_query(self, ver: str, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id, QUERY)
        if job["apiVersion"] != ver:
            raise BulkApiError(
                "INVALIDVERSION",
                f"Use API version {job['apiVersion']}, the version the job was "
                f"created with, to get its results",
                409,
            )
        if job["state"] != "JobComplete":
            raise BulkApiError(
                "INVALIDJOBSTATE",
                f"The results are available once the job is JobComplete; it is {job['state']}",
            )
        return job

    def _page_params(self, environ: dict[str, Any]) -> tuple[int, int]:
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        locator = params.get("locator", "")
        offset = decode_locator(locator) if locator and locator != "null" else 0
        raw = params.get("maxRecords")
        if raw is None or raw == "":
            return offset, self.service.rows_per_result_file
        if not raw.isdigit() or int(raw) < 1:
            raise BulkApiError("API_ERROR", f"Invalid maxRecords: {raw}. Use a positive whole number")
        return offset, int(raw)

    def _results(
        self, environ: dict[str, Any], method: str, ver: str, kind: str, args: dict[str, str]
    ) -> Reply:
        job = self._finished_query(ver, args["id"])
        offset, count = self._page_params(environ)
        total = job["recordsTotal"] or 0
        if offset > total:
            raise BulkApiError(
                "INVALID_QUERY_LOCATOR", "The locator is beyond the last record of the results"
            )
        n = max(0, min(count, total - offset))
        locator = encode_locator(offset + n) if offset + n < total else "null"
        headers = [("Sforce-Locator", locator), ("Sforce-NumberOfRecords", str(n))]
        return Reply(200, tasks.query_page(self.service.store, job, offset, n), CSV_TYPE, headers)

    def _result_pages(
        self, environ: dict[str, Any], method: str, ver: str, kind: str, args: dict[str, str]
    ) -> Reply:
        """The result split into pages a client may download in parallel (1,000 page links per answer)."""
        if float(ver) < RESULT_PAGES_VERSION:
            raise BulkApiError(
                "NOT_FOUND", f"resultPages is available from API version {RESULT_PAGES_VERSION}", 404
            )
        job = self._finished_query(ver, args["id"])
        offset, count = self._page_params(environ)
        total = job["recordsTotal"] or 0
        base = f"/services/data/v{ver}/jobs/query/{job['id']}"
        pages: list[dict[str, str]] = []
        pos = offset
        while pos < total and len(pages) < 1000:
            locator = f"locator={encode_locator(pos)}&" if pos else ""
            pages.append({"resultUrl": f"{base}/results?{locator}maxRecords={count}"})
            pos += count
        done = pos >= total
        next_url = None if done else f"{base}/resultPages?locator={encode_locator(pos)}&maxRecords={count}"
        return self._json(environ, {"resultPages": pages, "nextRecordsUrl": next_url, "done": done})


# ---------------------------------------------------------------------------------------------
# JSON shapes (GUIDE "Create a Job", "Get Information About an Ingest Job", "Get All Jobs")


def _base(job: dict[str, Any], ver: str) -> dict[str, Any]:
    doc = {
        "id": job["id"],
        "operation": job["operation"],
        "object": job["object"],
        "createdById": job["createdById"],
        "createdDate": json_time(job["createdDate"]),
        "systemModstamp": json_time(job["systemModstamp"]),
        "state": job["state"],
    }
    if job["externalIdFieldName"]:
        doc["externalIdFieldName"] = job["externalIdFieldName"]
    if job["assignmentRuleId"]:
        doc["assignmentRuleId"] = job["assignmentRuleId"]
    doc.update(
        concurrencyMode=job["concurrencyMode"],
        contentType=job["contentType"],
        apiVersion=float(job["apiVersion"]),
    )
    return doc


def _created(job: dict[str, Any], ver: str) -> dict[str, Any]:
    doc = _base(job, ver)
    if job["jobType"] == INGEST:
        doc["contentUrl"] = f"services/data/v{job['apiVersion']}/jobs/ingest/{job['id']}/batches"
    doc.update(lineEnding=job["lineEnding"], columnDelimiter=job["columnDelimiter"])
    return doc


def _summary(job: dict[str, Any], ver: str) -> dict[str, Any]:
    doc = _base(job, ver)
    doc["jobType"] = job["jobType"]
    if job["jobType"] in (INGEST, QUERY):
        if job["jobType"] == INGEST:
            doc["contentUrl"] = f"services/data/v{job['apiVersion']}/jobs/ingest/{job['id']}/batches"
        doc.update(lineEnding=job["lineEnding"], columnDelimiter=job["columnDelimiter"])
    return doc


def _info(job: dict[str, Any], ver: str) -> dict[str, Any]:
    doc = _summary(job, ver)
    doc["numberRecordsProcessed"] = job["numberRecordsProcessed"]
    if job["jobType"] == INGEST:
        doc["numberRecordsFailed"] = job["numberRecordsFailed"]
    doc.update(retries=0, totalProcessingTime=job["totalProcessingTime"])
    if job["jobType"] == INGEST:
        doc.update(apiActiveProcessingTime=job["apiActiveProcessingTime"], apexProcessingTime=0)
    else:
        doc["isPkChunkingSupported"] = True
    if job["errorMessage"]:
        doc["errorMessage"] = job["errorMessage"]
    return doc


# ---------------------------------------------------------------------------------------------
# request bodies


def _read_json(environ: dict[str, Any]) -> dict[str, Any]:
    data = bytearray()
    for chunk in _body_chunks(environ):
        data += chunk
        if len(data) > MAX_JSON_BODY:
            raise BulkApiError("JSON_PARSER_ERROR", f"The request body exceeds {MAX_JSON_BODY} bytes", 413)
    try:
        doc = json.loads(data.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BulkApiError("JSON_PARSER_ERROR", f"The request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BulkApiError("JSON_PARSER_ERROR", "The request body must be a JSON object")
    return doc


def _raw_chunks(environ: dict[str, Any]) -> Iterator[bytes]:
    stream = environ.get("wsgi.input")
    if stream is None:
        return
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            remaining = int(length)
        except ValueError:
            raise BulkApiError("CLIENTINPUTERROR", "Invalid Content-Length") from None
        while remaining > 0:
            data = stream.read(min(remaining, _READ))
            if not data:
                raise BulkApiError("CLIENTINPUTERROR", "The request body ended before its Content-Length")
            remaining -= len(data)
            yield data
    elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        while data := stream.read(_READ):
            yield data


def _body_chunks(environ: dict[str, Any]) -> Iterator[bytes]:
    """The request body, block by block, gunzipped when sent with ``Content-Encoding: gzip``."""
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        yield from _raw_chunks(environ)
        return
    if encoding != "gzip":
        raise BulkApiError(
            "CLIENTINPUTERROR",
            f"Unsupported Content-Encoding: {encoding}. The only valid compression value is gzip",
            415,
        )
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        for data in _raw_chunks(environ):
            while data:
                out = decoder.decompress(data, _READ)
                if out:
                    yield out
                data = decoder.unconsumed_tail
        tail = decoder.flush()
    except zlib.error as exc:
        raise BulkApiError("CLIENTINPUTERROR", f"Invalid gzip content: {exc}") from None
    if tail:
        yield tail


__all__ = ["Bulk2Api", "Reply", "error_body"]
