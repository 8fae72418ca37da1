"""``--json-summary PATH`` of ``sfbulk load`` / ``extract``: the run's outcome as one JSON document.

Schedulers and scripts read it instead of parsing the human summary on stderr: counts, job ids,
result file paths, elapsed time and the Salesforce API usage (from the last ``Sforce-Limit-Info``
an answer carried, ``sfbulk.observe``). It is written on every exit, failures and interruptions
included, atomically (a reader never sees half a file). docs/bulk.md, "JSON summary", lists the
fields; ``SUMMARY_VERSION`` changes only when a field changes meaning or goes away.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from typing import Any

import click

from sfbulk import observe

SUMMARY_VERSION = 1

#: exit status -> the summary's status
STATUSES = {
    0: "succeeded",
    1: "rows_failed",
    2: "failed",
    3: "failed",
    130: "interrupted",
    143: "interrupted",
}


def check_path(path: str | None) -> None:
    """Refuse, before any work, a --json-summary PATH that could not be written at the end."""
    if not path:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise click.UsageError(f"--json-summary {path} is a folder: give a file name")
    if not os.path.isdir(folder):
        raise click.UsageError(f"--json-summary {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise click.UsageError(f"--json-summary {path}: the folder {folder} is not writable")


def new_run() -> None:
    """Forget the API usage seen so far: a summary reports this run's (runs may share a process)."""
    observe.reset()


def api_usage() -> dict[str, Any] | None:
    usage = observe.last_api_usage()
    return usage.as_json() if usage else None


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec="seconds")


def document(command: str, exit_code: int, started: float, fields: dict[str, Any]) -> dict[str, Any]:
    """The summary: the common head (command, status, times, API usage), then ``fields``."""
    finished = datetime.datetime.now(datetime.UTC).timestamp()
    head: dict[str, Any] = {
        "version": SUMMARY_VERSION,
        "command": command,
        "status": STATUSES.get(exit_code, "failed"),
        "exit_code": exit_code,
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "elapsed_seconds": round(max(0.0, finished - started), 3),
    }
    return {**head, **fields, "api_usage": api_usage()}


def write(path: str, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``path`` atomically; a failure is reported, naming the flag and file."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sfbulk-summary-", suffix=".json", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(doc, out, indent=2)
                out.write("\n")
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        click.echo(f"error: cannot write --json-summary {path}: {exc.strerror or exc}", err=True)


def load_fields(summary: Any, *, bulk_api: str, sobject: str, operation: str, source: str) -> dict[str, Any]:
    """The fields of a finished load (``sfbulk.bulk.load.LoadSummary``)."""
    return {
        "bulk_api": bulk_api,
        "object": sobject,
        "operation": operation,
        "input_file": source,
        "job_ids": [j for j in summary.job_id.split(",") if j],
        "rows": summary.rows,
        "succeeded": summary.succeeded,
        "failed": summary.failed,
        "unsent_rows": summary.unsent_rows,
        "batches": summary.batches,
        "success_file": summary.success_path,
        "error_file": summary.error_path,
        "resumed": summary.resumed,
        "retries": summary.retries,
        "resends": summary.resends,
        "nul_stripped": summary.nul_stripped,
        "blank_lines": summary.blank_lines,
        "stop_reason": summary.stop_reason,
        "top_errors": [{"reason": reason, "count": count} for reason, count in summary.reasons],
        "job_seconds": round(summary.seconds, 3),
    }


def extract_fields(summary: Any, *, bulk_api: str, soql: str) -> dict[str, Any]:
    """The fields of a finished extract (``sfbulk.bulk.extract.ExtractSummary``)."""
    return {
        "bulk_api": bulk_api,
        "query": soql,
        "job_ids": [summary.job_id] if summary.job_id else [],
        "records": summary.rows,
        "batches": summary.batches,
        "result_files": summary.result_files,
        "bytes_written": summary.bytes_written,
        "out_file": summary.out_path,
        "retries": summary.retries,
        "nul_stripped": summary.nul_stripped,
        "job_seconds": round(summary.seconds, 3),
    }


def failure_fields(error: str, job_id: str | None, journal: str | None) -> dict[str, Any]:
    """The fields of a run that ended without its result (an error or an interruption)."""
    return {
        "error": error,
        "job_ids": [j for j in (job_id or "").split(",") if j],
        "journal": journal if journal and os.path.exists(journal) else None,
    }


def usage_line() -> str | None:
    """``API usage: 25 of 15,000 API requests used (0.2%) at host`` (None: no answer carried it)."""
    usage = observe.last_api_usage()
    return f"API usage: {usage.describe()}" if usage else None


__all__ = [
    "STATUSES",
    "SUMMARY_VERSION",
    "api_usage",
    "check_path",
    "document",
    "extract_fields",
    "failure_fields",
    "load_fields",
    "new_run",
    "usage_line",
    "write",
]
