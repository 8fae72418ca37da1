"""The WSGI application: routing, authentication, format negotiation (bulk-api.md §0.5), error bodies.

Every failure is answered with Salesforce's ``<error>`` document (or its JSON form); an unexpected
exception becomes a 500 ``UnknownException`` error document, never a traceback.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from . import wire
from .apierrors import BulkApiError
from .bulk2 import Bulk2Api
from .faults import Faults
from .oauth import OAuthError, OAuthServer, Sessions
from .service import BulkService, parse_job_document

log = logging.getLogger("sfbulk.emulator")

StartResponse = Callable[..., Any]
MAX_BODY = 30_000_000  # bytes; batches are limited to 10,000,000 characters (multi-byte UTF-8 allowed)
ABORT_KEY = "sfbulk.emulator.abort"  # environ flag: the server cuts the connection without a response
#: The org's allowance of API requests per 24 hours, sent in Sforce-Limit-Info (a Developer Edition's)
DAILY_API_REQUESTS = 15_000

_VERSION = r"(?P<ver>\d+\.\d+)"
_ID = r"(?P<{}>[^/]+)"
ROUTES: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(r"^/services/oauth2/token$"), "token", ("POST",)),
    (re.compile(r"^/services/oauth2/revoke$"), "revoke", ("POST",)),
    (re.compile(rf"^/services/async/{_VERSION}/job$"), "jobs", ("POST",)),
    (re.compile(rf"^/services/async/{_VERSION}/job/{_ID.format('job')}$"), "job", ("GET", "POST")),
    (re.compile(rf"^/services/async/{_VERSION}/job/{_ID.format('job')}/batch$"), "batches", ("GET", "POST")),
    (
        re.compile(rf"^/services/async/{_VERSION}/job/{_ID.format('job')}/batch/{_ID.format('batch')}$"),
        "batch",
        ("GET",),
    ),
    (
        re.compile(
            rf"^/services/async/{_VERSION}/job/{_ID.format('job')}/batch/{_ID.format('batch')}/request$"
        ),
        "request",
        ("GET",),
    ),
    (
        re.compile(
            rf"^/services/async/{_VERSION}/job/{_ID.format('job')}/batch/{_ID.format('batch')}/result$"
        ),
        "results",
        ("GET",),
    ),
    (
        re.compile(
            rf"^/services/async/{_VERSION}/job/{_ID.format('job')}/batch/{_ID.format('batch')}/result/"
            rf"{_ID.format('result')}$"
        ),
        "result",
        ("GET",),
    ),
    # Bulk API 2.0 (bulk2.py routes and answers everything below /jobs itself)
    (re.compile(r"^/services/data/v(?P<ver>\d+\.\d+)/jobs(?P<rest>/.*)?$"), "bulk2", ()),
]
_SERVICE_UNAVAILABLE = wire.error_xml("ServerUnavailable", "Server temporarily unavailable, please retry")


class Response:
    def __init__(
        self,
        status: int,
        body: bytes | Iterable[bytes],
        content_type: str | None,
        headers: list[tuple[str, str]] | None = None,
    ):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or []


_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    500: "Server Error",
    503: "Service Unavailable",
}


def _media_type(environ: dict[str, Any]) -> str:
    return str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()


def _wants_json(environ: dict[str, Any]) -> bool:
    return _media_type(environ) == "application/json"


def _error(exc: BulkApiError, as_json: bool) -> Response:
    if as_json:
        return Response(exc.status, wire.error_json(exc.code, exc.message), wire.CT_JSON)
    return Response(exc.status, wire.error_xml(exc.code, exc.message), wire.CT_XML)


class EmulatorApp:
    """WSGI callable. ``base_url`` is read at request time (the port is known only once serving)."""

    def __init__(
        self,
        service: BulkService,
        sessions: Sessions,
        faults: Faults,
        credentials: dict[str, str],
        base_url: Callable[[], str],
        oauth: OAuthServer | None = None,
    ):
        self.service = service
        self.sessions = sessions
        self.faults = faults
        self.credentials = credentials
        self.oauth = oauth or OAuthServer(sessions, credentials)
        self.base_url = base_url
        self.bulk2 = Bulk2Api(service, sessions)
        self._api_requests = itertools.count(1)  # next() is atomic: one count per answer, across threads

    # ------------------------------------------------------------------------------ entry point
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = re.sub(r"/{2,}", "/", environ.get("PATH_INFO", "") or "/")
        if len(path) > 1:
            path = path.rstrip("/")
        fault, latency = self.faults.draw(is_oauth=path.startswith("/services/oauth2/"))
        if latency:
            time.sleep(latency)
        if fault == "error":
            return self._send(start_response, Response(503, _SERVICE_UNAVAILABLE, wire.CT_XML))
        if fault == "reset-before":
            environ[ABORT_KEY] = True
            return []
        response = self._handle(environ, path)
        if not path.startswith("/services/oauth2/"):  # as Salesforce: every REST/Bulk answer, not OAuth's
            usage = f"api-usage={next(self._api_requests)}/{DAILY_API_REQUESTS}"
            response.headers.append(("Sforce-Limit-Info", usage))
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "").lower() and response.content_type:
            _gzip(response)  # Salesforce compresses responses for clients that accept gzip (API 27.0+)
        if fault == "reset-after":
            if not isinstance(response.body, bytes | bytearray):
                for _ in response.body:  # the work is done, only the answer is lost
                    pass
            environ[ABORT_KEY] = True
            return []
        return self._send(start_response, response)

    def _send(self, start_response: StartResponse, response: Response) -> Iterable[bytes]:
        headers = list(response.headers)
        if response.content_type:
            headers.append(("Content-Type", response.content_type))
        if isinstance(response.body, bytes | bytearray):
            headers.append(("Content-Length", str(len(response.body))))
            start_response(f"{response.status} {_REASONS.get(response.status, 'Unknown')}", headers)
            return [bytes(response.body)]
        start_response(f"{response.status} {_REASONS.get(response.status, 'Unknown')}", headers)
        return response.body

    def _handle(self, environ: dict[str, Any], path: str) -> Response:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        as_json = _wants_json(environ)
        try:
            for pattern, name, methods in ROUTES:
                m = pattern.match(path)
                if m is None:
                    continue
                if name == "bulk2":
                    reply = self.bulk2.handle(environ, method, m["ver"], m["rest"] or "")
                    return Response(reply.status, reply.body, reply.content_type, reply.headers)
                if method not in methods:
                    allowed = ",".join(methods)
                    exc = BulkApiError(
                        "MethodNotAllowed", f"HTTP Method '{method}' not allowed. Allowed are {allowed}", 405
                    )
                    resp = _error(exc, as_json)
                    resp.headers.append(("Allow", ", ".join(methods)))
                    return resp
                if name in ("token", "revoke"):
                    return self._oauth(environ, name)
                return self._bulk(environ, name, method, m.groupdict())
            return _error(
                BulkApiError("InvalidUrl", f"The requested resource does not exist: {path}", 404), as_json
            )
        except BulkApiError as exc:
            return _error(exc, as_json)
        except Exception:
            log.exception("unexpected error on %s %s", method, path)
            return _error(
                BulkApiError("UnknownException", "An unexpected error occurred in the emulator", 500), as_json
            )

    # ----------------------------------------------------------------------------------- oauth
    def _oauth(self, environ: dict[str, Any], name: str) -> Response:
        params = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        body = _read_body(environ)
        if body and _media_type(environ) in ("application/x-www-form-urlencoded", ""):
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if name == "revoke":
            self.sessions.revoke(params.get("token", ""))
            self.oauth.revoke_refresh_token(params.get("token", ""))
            return Response(200, b"", None)
        try:
            doc = self.oauth.token_response(params, environ.get("HTTP_AUTHORIZATION"), self.base_url())
        except OAuthError as exc:
            return Response(
                exc.status,
                exc.body(),
                wire.CT_JSON,
                [("Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private")],
            )
        return Response(
            200,
            json.dumps(doc).encode("utf-8"),
            wire.CT_JSON,
            [("Cache-Control", "no-cache,must-revalidate,max-age=0,no-store,private")],
        )

    # ------------------------------------------------------------------------------------ bulk
    def _authenticate(self, environ: dict[str, Any]) -> None:
        token = environ.get("HTTP_X_SFDC_SESSION", "").strip()
        if not token:
            raise BulkApiError("InvalidSessionId", "Unable to find session id")
        if not self.sessions.valid(token):
            raise BulkApiError("InvalidSessionId", "Invalid session id")

    def _bulk(self, environ: dict[str, Any], name: str, method: str, args: dict[str, str]) -> Response:
        self._authenticate(environ)
        ver = args["ver"]
        svc = self.service
        request_json = _wants_json(environ)
        if name == "jobs":
            doc = parse_job_document(_read_body(environ), request_json)
            job = svc.create_job(ver, doc, environ.get("HTTP_SFORCE_ENABLE_PKCHUNKING"))
            return self._job_response(
                job, request_json, 201, [("Location", f"/services/async/{ver}/job/{job['id']}")]
            )
        job_id = args["job"]
        if name == "job":
            if method == "GET":
                return self._job_response(svc.get_job(job_id), request_json, 200)
            svc.find_job(job_id)
            body = _read_body(environ)
            doc = parse_job_document(body, request_json or body.lstrip()[:1] == b"{")
            return self._job_response(svc.update_job(job_id, doc), request_json, 200)
        # batch URLs answer in the job's format
        try:
            job = svc.find_job(job_id)
        except BulkApiError as exc:
            return _error(exc, request_json)
        job_json = job["contentType"] in ("JSON", "ZIP_JSON")
        try:
            return self._batch_route(environ, name, method, args, job, job_json)
        except BulkApiError as exc:
            return _error(exc, job_json)

    def _job_response(
        self, job: dict[str, Any], as_json: bool, status: int, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        if as_json:
            return Response(status, wire.job_json(job), wire.CT_JSON, headers)
        return Response(status, wire.job_xml(job), wire.CT_XML, headers)

    def _batch_route(
        self,
        environ: dict[str, Any],
        name: str,
        method: str,
        args: dict[str, str],
        job: dict[str, Any],
        job_json: bool,
    ) -> Response:
        svc = self.service
        job_id = job["id"]
        is_query = job["operation"] in ("query", "queryAll")
        if name == "batches":
            if method == "GET":
                batches = svc.list_batches(job_id)
                if job_json:
                    return Response(200, wire.batch_list_json(batches), wire.CT_JSON)
                return Response(200, wire.batch_list_xml(batches), wire.CT_XML)
            body = _read_body(environ)
            batch = svc.add_batch(job_id, body, _media_type(environ), args["ver"])
            location = [("Location", f"/services/async/{args['ver']}/job/{job_id}/batch/{batch['id']}")]
            return self._batch_response(batch, job_json, 201, location)
        batch_id = args["batch"]
        if name == "batch":
            return self._batch_response(svc.get_batch(job_id, batch_id), job_json, 200)
        if name == "request":
            data = svc.batch_request(job_id, batch_id)
            if is_query:
                return Response(
                    200,
                    data,
                    wire.CT_CSV if job["contentType"] == "CSV" else wire.CT_JSON if job_json else wire.CT_XML,
                )
            ctype = {"CSV": wire.CT_CSV, "XML": wire.CT_XML, "JSON": wire.CT_JSON}.get(
                job["contentType"], wire.CT_ZIP
            )
            return Response(200, data, ctype)
        if name == "results":
            if is_query:
                ids = svc.query_result_ids(job_id, batch_id)
                if job_json:
                    return Response(200, wire.result_list_json(ids), wire.CT_JSON)
                return Response(200, wire.result_list_xml(ids), wire.CT_XML)
            rows = svc.ingest_results(job_id, batch_id)
            fmt = job["contentType"].removeprefix("ZIP_")
            if fmt == "CSV":
                return Response(200, wire.results_csv(rows), wire.CT_CSV)
            if fmt == "JSON":
                return Response(200, wire.results_json(rows), wire.CT_JSON)
            return Response(200, wire.results_xml(rows), wire.CT_XML)
        # name == "result": one query result file, streamed
        if not is_query:
            raise BulkApiError("InvalidBatch", "Result files are only available for query jobs")
        chunks = svc.query_result(job_id, batch_id, args["result"])
        fmt = job["contentType"].removeprefix("ZIP_")
        ctype = {"CSV": wire.CT_CSV, "JSON": wire.CT_JSON}.get(fmt, wire.CT_XML)
        return Response(200, _closing(chunks), ctype)

    def _batch_response(
        self, batch: dict[str, Any], as_json: bool, status: int, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        if as_json:
            return Response(status, wire.batch_json(batch), wire.CT_JSON, headers)
        return Response(status, wire.batch_xml(batch), wire.CT_XML, headers)


def _closing(chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield from chunks


def _gzip(response: Response) -> None:
    response.headers.append(("Content-Encoding", "gzip"))
    if isinstance(response.body, bytes | bytearray):
        comp = zlib.compressobj(1, zlib.DEFLATED, 31)
        response.body = comp.compress(response.body) + comp.flush()
    else:
        response.body = _gzip_stream(response.body)


def _gzip_stream(chunks: Iterable[bytes]) -> Iterator[bytes]:
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    for chunk in chunks:
        out = comp.compress(chunk)
        if out:
            yield out
    yield comp.flush()


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        try:
            size = int(length) if length.isascii() and length.isdigit() else -1
        except ValueError:
            size = -1
        if size < 0:  # also "-5" (a negative read would mean "until the client closes")
            raise BulkApiError("ClientInputError", "Invalid Content-Length")
        if size > MAX_BODY:
            raise BulkApiError("InvalidBatch", f"Exceeded max size limit of {MAX_BODY} bytes", 413)
        data = stream.read(size) if size else b""
    elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        data = stream.read(MAX_BODY + 1)
        if len(data) > MAX_BODY:
            raise BulkApiError("InvalidBatch", f"Exceeded max size limit of {MAX_BODY} bytes", 413)
    else:
        data = b""
    encoding = environ.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding != "gzip":
        raise BulkApiError(
            "ClientInputError",
            f"Unsupported Content-Encoding: {encoding}. The only valid compression value is gzip",
            415,
        )
    try:
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = decoder.decompress(data, MAX_BODY + 1)
    except zlib.error as exc:
        raise BulkApiError("ClientInputError", f"Invalid gzip content: {exc}") from None
    if len(out) > MAX_BODY:
        raise BulkApiError("InvalidBatch", f"Exceeded max size limit of {MAX_BODY} bytes", 413)
    return out


__all__ = ["ABORT_KEY", "EmulatorApp"]
