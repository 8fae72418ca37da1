"""Operators that move files, not payloads: load a CSV, extract a query to CSV, run an sfbulk flow.

Rows never go through XCom: a task returns the paths of the files it wrote, counts and job ids
(a few hundred bytes), and the next task reads the files. Loads and extracts are journaled
(:mod:`sfbulk.bulk.journal`), so a task killed mid-job and retried by Airflow resumes the same
job: nothing is sent twice. A failure Airflow's retries cannot cure (bad input, rows Salesforce
refused) fails the task without a retry (``AirflowFailException``); a job that could not finish
(network, timeout, API error) fails it with a retry, which resumes.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sfbulk.airflow.hooks import SfBulkHook
from sfbulk.airflow.settings import DEFAULT_CONN_ID
from sfbulk.errors import (
    BulkInputError,
    ConfigError,
    ParameterError,
    SfBulkError,
)

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
#: what a task keeps in its receipt (and returns through XCom) of a finished load
_LOAD_FIELDS = ("job_id", "rows", "batches", "succeeded", "failed", "success_path", "error_path", "resumed")


class _LogStream(io.TextIOBase):
    """The progress display's periodic lines, as lines of the task log."""

    def __init__(self, log: Any) -> None:  # a logging.Logger, or the task's structlog logger
        self._log = log
        self._buffer = ""

    def write(self, text: str) -> int:
        self._buffer += text
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                self._log.info("%s", line)
        return len(text)

    def isatty(self) -> bool:
        return False


class _SfBulkOperator(BaseOperator):
    """What the three operators share: the connection, the Bulk API version, errors as task failures."""

    ui_color = "#e3f2fd"

    def __init__(
        self,
        *,
        sfbulk_conn_id: str = DEFAULT_CONN_ID,
        api: int | str = 1,
        concurrency: int = 4,
        poll_timeout: float = 7200.0,
        progress_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sfbulk_conn_id = sfbulk_conn_id
        if str(api) not in ("1", "2"):
            raise ValueError(f"{self.task_id}: api must be 1 (Bulk API 1.0) or 2 (Bulk API 2.0), got {api!r}")
        self.api = int(api)
        if not isinstance(concurrency, int) or not 1 <= concurrency <= 32:
            raise ValueError(
                f"{self.task_id}: concurrency must be a whole number from 1 to 32, got {concurrency!r}"
            )
        self.concurrency = concurrency
        if not poll_timeout > 0:
            raise ValueError(f"{self.task_id}: poll_timeout must be a number of seconds above 0")
        self.poll_timeout = float(poll_timeout)
        self.progress_interval = float(progress_interval)

    def hook(self) -> SfBulkHook:
        return SfBulkHook(self.sfbulk_conn_id)

    def _fail(self, exc: Exception, hook: SfBulkHook | None = None) -> AirflowException:
        """The task failure for ``exc``: no retry for what a retry cannot change."""
        text = hook.message(str(exc)) if hook is not None else str(exc)
        journal = getattr(exc, "journal", None)
        job = getattr(exc, "job_id", None)
        if job and journal and os.path.exists(journal):
            text += f" (job {job}: {journal} keeps its progress; a retry of this task resumes it)"
        if isinstance(exc, (BulkInputError, ParameterError, ConfigError)):
            return AirflowFailException(text)
        if isinstance(exc, OSError):
            return AirflowFailException(f"{exc.strerror or exc}: {exc.filename}")
        return AirflowException(text)


class SfBulkLoadOperator(_SfBulkOperator):
    """Load a CSV file into Salesforce with the Bulk API; success and error CSVs in input order.

    :param input_path: the CSV file (templated).
    :param object: the sObject, e.g. ``Contact`` (templated).
    :param operation: insert, update, upsert, delete or hardDelete.
    :param external_id: the external id field of an upsert.
    :param api: 1 (Bulk API 1.0 batches) or 2 (Bulk API 2.0 jobs).
    :param success_path, error_path: the result files (templated; default next to the input).
    :param journal_path: the journal a retry resumes from (templated; default next to the success file).
    :param allow_row_errors: succeed even when Salesforce refused rows (they are in the error file).
    :returns: (XCom) ``job_id``, ``rows``, ``succeeded``, ``failed``, ``batches``, ``resumed``,
        ``success_path``, ``error_path``.
    """

    template_fields: Sequence[str] = (
        "input_path",
        "object",
        "operation",
        "external_id",
        "success_path",
        "error_path",
        "journal_path",
    )

    def __init__(
        self,
        *,
        input_path: str,
        object: str,  # noqa: A002 - the Bulk API's own name for it
        operation: str = "insert",
        external_id: str | None = None,
        success_path: str | None = None,
        error_path: str | None = None,
        journal_path: str | None = None,
        allow_row_errors: bool = False,
        batch_size: int = 10_000,
        serial: bool = False,
        encoding: str = "utf-8",
        max_job_bytes: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if "{{" not in operation + (external_id or ""):  # templated: checked once rendered
            _check_operation(self.task_id, operation, external_id)
        if self.api == 2 and serial:
            raise ValueError(f"{self.task_id}: serial is a Bulk API 1.0 setting: drop it, or use api=1")
        if self.api == 1 and max_job_bytes is not None:
            raise ValueError(
                f"{self.task_id}: max_job_bytes applies to Bulk API 2.0 jobs: use api=2, or drop it"
            )
        self.input_path = input_path
        self.object = object
        self.operation = operation
        self.external_id = external_id or None
        self.success_path = success_path
        self.error_path = error_path
        self.journal_path = journal_path
        self.allow_row_errors = allow_row_errors
        self.batch_size = batch_size
        self.serial = serial
        self.encoding = encoding
        self.max_job_bytes = max_job_bytes

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from sfbulk.bulk.journal import fingerprint, journal_path
        from sfbulk.bulk.load import LoadOptions, default_outputs, load_csv
        from sfbulk.bulk.progress import LoadDisplay

        source = self.input_path
        try:
            _check_operation(self.task_id, self.operation, self.external_id)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        if not os.path.isfile(source):
            raise AirflowFailException(f"input_path {source} does not exist (or is not a file)")
        d_ok, d_err = default_outputs(source)
        success, errors = self.success_path or d_ok, self.error_path or d_err
        journal = self.journal_path or journal_path(success)
        receipt = Receipt(journal + ".receipt", context)
        try:
            digest = fingerprint(source)["sha256"]
        except OSError as exc:
            raise self._fail(exc) from None
        result = receipt.read(digest)
        if result is not None:
            self.log.info(
                "job %s: this task instance already loaded %s (try %s); not loading it again",
                result["job_id"],
                source,
                result.get("try_number", "?"),
            )
        else:
            options = LoadOptions(
                object=self.object,
                operation=self.operation,
                external_id=self.external_id or None,
                serial=self.serial,
                batch_size=self.batch_size,
                concurrency=self.concurrency,
                encoding=self.encoding,
                timeout=self.poll_timeout,
                success_path=success,
                error_path=errors,
                journal=journal,
                notify=lambda note: self.log.info("%s", note),
            )
            hook = self.hook()
            try:
                os.makedirs(os.path.dirname(os.path.abspath(journal)), exist_ok=True)
                progress = LoadDisplay(
                    os.path.getsize(source),
                    tty=False,
                    interval=self.progress_interval,
                    stream=_LogStream(self.log),
                    unit="jobs" if self.api == 2 else "batches",
                )
                try:
                    with hook.get_conn(self.api) as conn:
                        if self.api == 2:
                            from sfbulk.bulk.v2.load import MAX_JOB_BYTES, load_csv_v2

                            summary = load_csv_v2(
                                conn,
                                source,
                                options,
                                progress,
                                max_job_bytes=self.max_job_bytes or MAX_JOB_BYTES,
                            )
                        else:
                            summary = load_csv(conn, source, options, progress)
                finally:
                    progress.close()
            except (SfBulkError, OSError) as exc:
                raise self._fail(exc, hook) from None
            data = asdict(summary)
            result = {name: data[name] for name in _LOAD_FIELDS}
            result["seconds"] = round(summary.seconds, 3)
            result["reasons"] = [[reason[:200], count] for reason, count in summary.reasons[:5]]
            receipt.write(digest, result)
            self.log.info(
                "job %s: %s rows, %s succeeded, %s failed%s; success: %s, errors: %s",
                result["job_id"],
                f"{summary.rows:,}",
                f"{summary.succeeded:,}",
                f"{summary.failed:,}",
                " (resumed an interrupted run)" if summary.resumed else "",
                success,
                errors,
            )
        result.pop("try_number", None)
        if result["failed"] and not self.allow_row_errors:
            ti = context.get("ti")
            if ti is not None:  # the paths for whoever looks into the failure
                ti.xcom_push(key="return_value", value=result)
            reasons = "; ".join(f"{count} x {reason}" for reason, count in result["reasons"])
            raise AirflowFailException(
                f"job {result['job_id']}: {result['failed']:,} of {result['rows']:,} rows failed "
                f"({reasons}); they are in {result['error_path']}. Not retried: the other rows are loaded, and a "
                "re-run of this task loads nothing again. Fix the rows and load the error file (sfbulk load "
                "--retry-failed), or set allow_row_errors=True to let the task succeed with row errors"
            )
        return result


def _check_operation(task_id: str, operation: str, external_id: str | None) -> None:
    if operation not in OPERATIONS:
        raise ValueError(f"{task_id}: operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")
    if operation == "upsert" and not external_id:
        raise ValueError(f"{task_id}: operation upsert needs external_id (e.g. external_id='Email__c')")


class Receipt:
    """What a finished load of this task instance returned, so that a retry of the *same* try
    (killed after the load finished, before Airflow recorded it) does not load the file again.

    Keyed by dag, task, run and map index (not the try number) and the input's SHA-256: another
    run of the DAG, or a changed input, loads again.
    """

    def __init__(self, path: str, context: Mapping[str, Any]) -> None:
        self.path = path
        ti = context.get("ti")
        run_id = context.get("run_id") or getattr(ti, "run_id", None) or ""
        self.key = {
            "dag_id": str(getattr(ti, "dag_id", "") or ""),
            "task_id": str(getattr(ti, "task_id", "") or ""),
            "run_id": str(run_id),
            "map_index": int(
                getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1
            ),
        }
        self.try_number = getattr(ti, "try_number", None)

    def read(self, digest: str) -> dict[str, Any] | None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != self.key or data.get("input_sha256") != digest:
            return None
        result = data.get("result")
        return result if isinstance(result, dict) else None

    def write(self, digest: str, result: dict[str, Any]) -> None:
        if not self.key["run_id"]:
            return  # not run by Airflow (a test calling execute()): nothing to protect
        data = {"key": self.key, "input_sha256": digest, "result": {**result, "try_number": self.try_number}}
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


class SfBulkExtractOperator(_SfBulkOperator):
    """Extract the records of a SOQL query into one CSV file.

    :param soql: the query (templated).
    :param output_path: the CSV file written (templated).
    :param query_all: include deleted and archived records (queryAll).
    :param pk_chunking: Bulk API 1.0: split the query by record id ranges (True, or a chunk size).
    :param journal_path: the journal a retry resumes from (templated; default next to the output).
    :returns: (XCom) ``job_id``, ``rows``, ``output_path``, ``batches``, ``result_files``, ``bytes``.
    """

    template_fields: Sequence[str] = ("soql", "output_path", "journal_path", "object")
    template_ext: Sequence[str] = (".soql",)

    def __init__(
        self,
        *,
        soql: str,
        output_path: str,
        query_all: bool = False,
        pk_chunking: bool | int = False,
        object: str | None = None,  # noqa: A002 - the Bulk API's own name for it
        journal_path: str | None = None,
        max_records: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if self.api == 2 and pk_chunking:
            raise ValueError(
                f"{self.task_id}: pk_chunking is a Bulk API 1.0 setting (Salesforce chunks 2.0 query jobs itself)"
            )
        if self.api == 2 and object:
            raise ValueError(
                f"{self.task_id}: object is a Bulk API 1.0 setting (2.0 takes it from the query)"
            )
        if self.api == 1 and max_records is not None:
            raise ValueError(f"{self.task_id}: max_records applies to Bulk API 2.0 result pages: use api=2")
        if (
            pk_chunking is not False
            and pk_chunking is not True
            and not (isinstance(pk_chunking, int) and 1 <= pk_chunking <= 250_000)
        ):
            raise ValueError(f"{self.task_id}: pk_chunking is True, False or a chunk size up to 250,000")
        self.soql = soql
        self.output_path = output_path
        self.query_all = query_all
        self.pk_chunking = pk_chunking
        self.object = object
        self.journal_path = journal_path
        self.max_records = max_records

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        from sfbulk.bulk.extract import ExtractOptions, extract
        from sfbulk.bulk.journal import journal_path
        from sfbulk.bulk.progress import ExtractDisplay

        pk = (
            None
            if self.pk_chunking is False
            else ("true" if self.pk_chunking is True else str(self.pk_chunking))
        )
        journal = self.journal_path or journal_path(self.output_path)
        options = ExtractOptions(
            query_all=self.query_all,
            pk_chunking=pk,
            object=self.object or None,
            concurrency=self.concurrency,
            timeout=self.poll_timeout,
            journal=journal,
            notify=lambda note: self.log.info("%s", note),
        )
        hook = self.hook()
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.output_path)), exist_ok=True)
            os.makedirs(os.path.dirname(os.path.abspath(journal)), exist_ok=True)
            progress = ExtractDisplay(tty=False, interval=self.progress_interval, stream=_LogStream(self.log))
            try:
                with hook.get_conn(self.api) as conn:
                    if self.api == 2:
                        from sfbulk.bulk.v2.extract import PAGE_RECORDS, extract_v2

                        summary = extract_v2(
                            conn,
                            self.soql,
                            self.output_path,
                            options,
                            progress,
                            page_records=self.max_records or PAGE_RECORDS,
                        )
                    else:
                        summary = extract(conn, self.soql, self.output_path, options, progress)
            finally:
                progress.close()
        except (SfBulkError, OSError) as exc:
            raise self._fail(exc, hook) from None
        self.log.info(
            "job %s: %s records written to %s in %.1f s",
            summary.job_id,
            f"{summary.rows:,}",
            summary.out_path,
            summary.seconds,
        )
        return {
            "job_id": summary.job_id,
            "rows": summary.rows,
            "output_path": summary.out_path,
            "batches": summary.batches,
            "result_files": summary.result_files,
            "bytes": summary.bytes_written,
            "seconds": round(summary.seconds, 3),
        }


#: Content-Type of a payload file, by its suffix (as ``sfbulk run --input`` guesses it)
_CONTENT_TYPES = {
    ".xml": "application/xml",
    ".json": "application/json",
    ".csv": "text/csv",
    ".txt": "text/plain",
}


class SfBulkFlowOperator(_SfBulkOperator):
    """Run a proxy or a sequence of our YAML or Synapse XML configs with one message.

    The flow's ``salesforcebulk.init`` gets the Airflow connection's settings for every parameter
    it leaves empty, so the same flow runs under ``sfbulk serve`` with its settings in the request
    and here with the connection's.

    :param configs: YAML / Synapse XML files or folders (templated).
    :param proxy: the proxy to run, or
    :param sequence: the named sequence to run (its resulting message is the response).
    :param payload_path: the message body from a file (templated), or
    :param payload: the message body as a string (templated).
    :param response_path: where the response body is written (templated; default next to the
        payload file, else in a folder per DAG run under the temporary directory).
    :param fail_on_error: fail the task on a response status of 400 or above, or a fault.
    :returns: (XCom) ``status``, ``reason``, ``content_type``, ``response_path``, ``bytes``, ``error_code``.
    """

    template_fields: Sequence[str] = ("configs", "payload_path", "payload", "response_path", "headers")

    def __init__(
        self,
        *,
        configs: str | Sequence[str],
        proxy: str | None = None,
        sequence: str | None = None,
        payload_path: str | None = None,
        payload: str | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        path: str = "",
        response_path: str | None = None,
        file_root: str = ".",
        fail_on_error: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (proxy is None) == (sequence is None):
            raise ValueError(f"{self.task_id}: give exactly one of proxy or sequence")
        if payload_path is not None and payload is not None:
            raise ValueError(f"{self.task_id}: give payload_path or payload, not both")
        self.configs = [configs] if isinstance(configs, str) else list(configs)
        self.proxy = proxy
        self.sequence = sequence
        self.payload_path = payload_path
        self.payload = payload
        self.content_type = content_type
        self.headers = dict(headers or {})
        self.method = method
        self.path = path
        self.response_path = response_path
        self.file_root = file_root
        self.fail_on_error = fail_on_error

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        body, content_type = self._body()
        response_path = self.response_path or self._default_response_path(context)
        hook = self.hook()
        try:
            with hook.engine(file_root=self.file_root) as engine:
                engine.load(*self.configs)
                result, ctx = self._mediate(engine, body, content_type)
        except SfBulkError as exc:
            raise self._fail(exc, hook) from None
        os.makedirs(os.path.dirname(os.path.abspath(response_path)), exist_ok=True)
        tmp = response_path + ".part"
        with open(tmp, "wb") as fh:
            fh.write(result.body)
        os.replace(tmp, response_path)
        error_code = ctx.properties.get("ERROR_CODE")
        outcome = {
            "status": result.status,
            "reason": result.reason,
            "content_type": result.header("Content-Type") or "",
            "response_path": response_path,
            "bytes": len(result.body),
            "error_code": None if error_code is None else str(error_code),
        }
        target = f"proxy {self.proxy}" if self.proxy else f"sequence {self.sequence}"
        self.log.info(
            "%s: HTTP %s %s, %s bytes in %s",
            target,
            result.status,
            result.reason,
            len(result.body),
            response_path,
        )
        if self.fail_on_error and (result.status >= 400 or error_code is not None):
            message = ctx.properties.get("ERROR_MESSAGE") or ""
            fault = f"; fault {error_code}: {hook.message(str(message))}" if error_code is not None else ""
            raise AirflowException(
                f"{target} answered HTTP {result.status} {result.reason}{fault}; the response body is in "
                f"{response_path} (fail_on_error=False lets the task succeed)"
            )
        return outcome

    def _body(self) -> tuple[bytes, str]:
        if self.payload_path is not None:
            try:
                with open(self.payload_path, "rb") as fh:
                    body = fh.read()
            except OSError as exc:
                raise AirflowFailException(
                    f"payload_path {self.payload_path}: {exc.strerror or exc}"
                ) from None
            suffix = os.path.splitext(self.payload_path)[1].lower()
            guessed = _CONTENT_TYPES.get(suffix)
        else:
            body = (self.payload or "").encode("utf-8")
            guessed = None
        if self.content_type:
            return body, self.content_type
        if guessed:
            return body, guessed
        stripped = body.lstrip()
        if stripped.startswith(b"<"):
            return body, "application/xml"
        if stripped.startswith((b"{", b"[")):
            return body, "application/json"
        return body, "text/plain"

    def _default_response_path(self, context: Mapping[str, Any]) -> str:
        if self.payload_path is not None:
            return self.payload_path + ".response"
        run = re.sub(r"[^A-Za-z0-9._-]+", "_", str(context.get("run_id") or "run"))
        dag = re.sub(r"[^A-Za-z0-9._-]+", "_", str(getattr(context.get("dag"), "dag_id", "") or "dag"))
        return os.path.join(tempfile.gettempdir(), "sfbulk-airflow", dag, run, f"{self.task_id}.response")

    def _mediate(self, engine: Any, body: bytes, content_type: str) -> tuple[Any, Any]:
        from sfbulk.mediators.flow import Proxy, Sequence, SequenceReference
        from sfbulk.mediators.http import RespondMediator
        from sfbulk.message.context import MessageContext

        if self.sequence is not None:
            if engine.sequence(self.sequence) is None:
                known = ", ".join(sorted(engine.sequences)) or "none"
                raise AirflowFailException(
                    f"no sequence named {self.sequence!r} in {self.configs} (loaded: {known})"
                )
            # The sequence's resulting message is the response, as if it ended with <respond/>.
            name = f"airflow-{self.task_id}"
            engine.add_proxy(
                Proxy(
                    name=name,
                    in_sequence=Sequence(None, [SequenceReference(self.sequence), RespondMediator()]),
                )
            )
        else:
            name = str(self.proxy)
            if name not in engine.proxies:
                known = ", ".join(sorted(engine.proxies)) or "none"
                raise AirflowFailException(f"no proxy named {name!r} in {self.configs} (loaded: {known})")
        headers = [(k, v) for k, v in self.headers.items() if k.lower() != "content-type"]
        headers.append(("Content-Type", self.headers.get("Content-Type") or content_type))
        method = (self.method or ("POST" if body else "GET")).upper()
        ctx = MessageContext.from_http(
            method=method,
            uri=f"/services/{name}{self.path}",
            headers=headers,
            body=body,
            rest_url_postfix=self.path,
            engine=engine,
        )
        return engine.mediate(name, ctx), ctx
