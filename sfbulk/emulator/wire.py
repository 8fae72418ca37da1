"""Bytes on the wire, written the way the real service writes them (bulk-api.md §0.4, §3).

XML documents: declaration immediately followed by the root start tag, a newline and three spaces
before ``xmlns=``, children indented one space, LF line ends, empty lists self-closed. JSON: compact,
keys in alphabetical order. Timestamps are stored in the XML form and converted for JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

NS = "http://www.force.com/2009/06/asyncapi/dataload"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>'

CT_XML = "application/xml"
CT_JSON = "application/json"
CT_CSV = "text/csv"
CT_ZIP = "application/zip"

JOB_FIELD_ORDER = (
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
    "numberBatchesQueued",
    "numberBatchesInProgress",
    "numberBatchesCompleted",
    "numberBatchesFailed",
    "numberBatchesTotal",
    "numberRecordsProcessed",
    "numberRetries",
    "apiVersion",
    "assignmentRuleId",
    "numberRecordsFailed",
    "totalProcessingTime",
    "apiActiveProcessingTime",
    "apexProcessingTime",
)
BATCH_FIELD_ORDER = (
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
    "apexProcessingTime",
)
_TIME_FIELDS = {"createdDate", "systemModstamp"}


def json_time(xml_time: str) -> str:
    """2024-11-21T09:28:59.000Z -> 2024-11-21T09:28:59.000+0000 (the JSON form)."""
    return xml_time[:-1] + "+0000" if xml_time.endswith("Z") else xml_time


#: characters XML 1.0 cannot carry, even as character references (a stored value or an error message
#: quoting the caller's input may hold them): written as U+FFFD so that the document stays well-formed
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _escape(text: str) -> str:
    """&, < and > as entities (xml.sax.saxutils.escape's rule, without importing urllib.request with it)."""
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


def xml_escape(text: str) -> str:
    """``escape`` plus U+FFFD for the characters XML 1.0 forbids."""
    return _NOT_XML.sub("\ufffd", _escape(text))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return xml_escape(str(value))


def _xml_root_open(root: str) -> str:
    return f'{XML_DECL}<{root}\n   xmlns="{NS}">'


def xml_document(root: str, fields: Iterable[tuple[str, Any]], indent: str = " ") -> str:
    """A flat document: one element per (name, value) pair, None values omitted."""
    lines = [_xml_root_open(root)]
    for name, value in fields:
        if value is None:
            continue
        lines.append(f"{indent}<{name}>{_text(value)}</{name}>")
    lines.append(f"</{root}>")
    return "\n".join(lines)


def job_xml(job: Mapping[str, Any]) -> bytes:
    return xml_document("jobInfo", ((k, job.get(k)) for k in JOB_FIELD_ORDER)).encode("utf-8")


def job_json(job: Mapping[str, Any]) -> bytes:
    doc: dict[str, Any] = {k: job.get(k) for k in JOB_FIELD_ORDER}
    doc["fastPathEnabled"] = False
    for k in _TIME_FIELDS:
        doc[k] = json_time(doc[k])
    doc["apiVersion"] = float(doc["apiVersion"])
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _batch_xml_lines(batch: Mapping[str, Any], indent: str) -> list[str]:
    return [f"{indent}<{k}>{_text(batch[k])}</{k}>" for k in BATCH_FIELD_ORDER if batch.get(k) is not None]


def batch_xml(batch: Mapping[str, Any]) -> bytes:
    lines = [_xml_root_open("batchInfo"), *_batch_xml_lines(batch, " "), "</batchInfo>"]
    return "\n".join(lines).encode("utf-8")


def _batch_json_doc(batch: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {k: batch.get(k) for k in BATCH_FIELD_ORDER}
    for k in _TIME_FIELDS:
        doc[k] = json_time(doc[k])
    return doc


def batch_json(batch: Mapping[str, Any]) -> bytes:
    return json.dumps(_batch_json_doc(batch), sort_keys=True, separators=(",", ":")).encode("utf-8")


def batch_list_xml(batches: Sequence[Mapping[str, Any]]) -> bytes:
    if not batches:
        return f'{XML_DECL}<batchInfoList\n   xmlns="{NS}" />'.encode()
    lines = [_xml_root_open("batchInfoList")]
    for batch in batches:
        lines.append(" <batchInfo>")
        lines.extend(_batch_xml_lines(batch, "  "))
        lines.append(" </batchInfo>")
    lines.append("</batchInfoList>")
    return "\n".join(lines).encode("utf-8")


def batch_list_json(batches: Sequence[Mapping[str, Any]]) -> bytes:
    doc = {"batchInfo": [_batch_json_doc(b) for b in batches]}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def error_xml(code: str, message: str) -> bytes:
    return xml_document("error", (("exceptionCode", code), ("exceptionMessage", message))).encode("utf-8")


def error_json(code: str, message: str) -> bytes:
    return json.dumps({"exceptionCode": code, "exceptionMessage": message}, separators=(",", ":")).encode(
        "utf-8"
    )


def result_list_xml(result_ids: list[str]) -> bytes:
    if not result_ids:
        return f'{XML_DECL}<result-list\n   xmlns="{NS}" />'.encode()
    lines = [_xml_root_open("result-list"), *(f" <result>{r}</result>" for r in result_ids), "</result-list>"]
    return "\n".join(lines).encode("utf-8")


def result_list_json(result_ids: list[str]) -> bytes:
    return json.dumps(result_ids).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# ingest results. Internally a row is [id, success, created, errors]; errors = [[code, message, [fields]]]


def csv_quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def error_cell(errors: list[list[Any]]) -> str:
    """Salesforce's Error column: ``CODE:message:field1,field2 --`` (several errors joined)."""
    return " ".join(
        f"{code}:{message}:{','.join(fields)} --" if fields else f"{code}:{message}:--"
        for code, message, fields in errors
    )


def result_csv_row(rid: str | None, success: Any, created: Any, errors: list[list[Any]]) -> str:
    """One row of an ingest result CSV (without its line break)."""
    return (
        f'{csv_quote(rid or "")},"{"true" if success else "false"}","{"true" if created else "false"}",'
        f"{csv_quote(error_cell(errors) if errors else '')}"
    )


def results_csv(rows: list[list[Any]]) -> bytes:
    out = ['"Id","Success","Created","Error"']
    append = out.append
    for rid, success, created, errors in rows:
        if success and not errors and rid and '"' not in rid:  # the common row, rendered in one step
            append('"' + rid + ('","true","true",""' if created else '","true","false",""'))
        else:
            append(result_csv_row(rid, success, created, errors))
    return ("\n".join(out) + "\n").encode("utf-8")


def results_xml(rows: list[list[Any]]) -> bytes:
    if not rows:
        return f'{XML_DECL}<results\n   xmlns="{NS}" />'.encode()
    lines = [_xml_root_open("results")]
    for rid, success, created, errors in rows:
        lines.append(" <result>")
        for code, message, fields in errors:
            lines.append("  <errors>")
            lines.extend(f"   <fields>{xml_escape(f)}</fields>" for f in fields)
            lines.append(f"   <message>{xml_escape(message)}</message>")
            lines.append(f"   <statusCode>{code}</statusCode>")
            lines.append("  </errors>")
        if rid:
            lines.append(f"  <id>{rid}</id>")
        lines.append(f"  <success>{'true' if success else 'false'}</success>")
        lines.append(f"  <created>{'true' if created else 'false'}</created>")
        lines.append(" </result>")
    lines.append("</results>")
    return "\n".join(lines).encode("utf-8")


def results_json(rows: list[list[Any]]) -> bytes:
    doc = [
        {
            "success": bool(success),
            "created": bool(created),
            "id": rid or None,
            "errors": [{"statusCode": c, "message": m, "fields": list(f)} for c, m, f in errors],
        }
        for rid, success, created, errors in rows
    ]
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")
