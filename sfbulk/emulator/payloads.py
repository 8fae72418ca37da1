"""Batch payloads (CSV, XML, JSON, zip) turned into one shape: column names + rows of cells.

A cell is the raw value, `MISSING` (empty CSV cell, absent key: leave the field alone) or `NULL`
(``#N/A``, ``xsi:nil``, JSON null: clear the field). Nested relationship values
(``<Account><sObject><External_Id__c>`` / ``{"Account": {"External_Id__c": ...}}``) become the column
``Account.External_Id__c``, as in CSV.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from .apierrors import BatchFailure

MAX_RECORDS = 10_000
MAX_CHARACTERS = 10_000_000
MAX_ZIP_BYTES = 10 * 1024 * 1024
FIELD_LIMIT = 131_072


class _Sentinel:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


MISSING: Any = _Sentinel("MISSING")
NULL: Any = _Sentinel("NULL")


@dataclass
class Payload:
    columns: list[str]
    rows: list[list[Any]]
    #: the same cells column by column, when the parser had them anyway; None once ``rows`` change
    by_column: list[list[Any]] | None = field(default=None, repr=False, compare=False)

    def column(self, index: int) -> list[Any]:
        """The cells of column ``index``, in row order."""
        if self.by_column is not None:
            return self.by_column[index]
        return [row[index] for row in self.rows]


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchFailure(f"Batch content is not valid UTF-8 (byte {exc.start})") from None
    if len(text) > MAX_CHARACTERS:
        raise BatchFailure(f"Exceeded max size limit of {MAX_CHARACTERS} characters")
    return text


def _check_count(count: int) -> None:
    if count > MAX_RECORDS:
        raise BatchFailure(f"Records in a batch exceeds {MAX_RECORDS}")


def parse_csv(data: bytes) -> Payload:
    text = _decode(data)
    if not text.strip():
        raise BatchFailure("Records not found: the batch is empty")
    payload = _parse_csv_whole(text)
    return payload if payload is not None else _parse_csv_rows(text)


def _parse_csv_whole(text: str) -> Payload | None:
    """The batch read in one go by the C reader and checked as a whole; None when any check fails.

    Well-formed batches (every row as wide as the header, within the record limit, no CSV error)
    come out exactly as `_parse_csv_rows` makes them; for anything else it is that row-by-row parser
    that runs, and it reports the error it meets first.
    """
    try:
        rows: list[list[Any]] = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return None
    if not rows:
        return None
    header = rows[0]
    if not header or any(not h.strip() for h in header):
        return None
    del rows[0]
    width = len(header)
    widths = set(map(len, rows))
    if 0 in widths:
        rows = [row for row in rows if row]  # blank lines
        widths.discard(0)
    if len(rows) > MAX_RECORDS or widths - {width}:
        return None
    by_column = []
    for index in range(width):
        cells = [row[index] for row in rows]  # (a list comprehension per column beats zip(*rows) here)
        for marker, sentinel in (("", MISSING), ("#N/A", NULL)):
            if marker in cells:
                _mark(rows, index, cells, marker, sentinel)
        by_column.append(cells)
    return Payload([h.strip() for h in header], rows, by_column)


def _mark(rows: list[list[Any]], index: int, cells: list[Any], marker: str, sentinel: Any) -> None:
    """Put ``sentinel`` in column ``index`` of every row (and in ``cells``) where the cell is ``marker``."""
    position = cells.index(marker)
    try:
        while True:
            rows[position][index] = cells[position] = sentinel
            position = cells.index(marker, position + 1)
    except ValueError:
        return


def _parse_csv_rows(text: str) -> Payload:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        if any(not h.strip() for h in header):
            raise BatchFailure("Invalid CSV header: empty column name")
        width = len(header)
        rows: list[list[Any]] = []
        append = rows.append
        for row in reader:
            if not row:
                continue  # blank line
            if len(row) != width:
                raise BatchFailure(
                    f"Row {reader.line_num - 1} has {len(row)} columns but the header has {width}"
                )
            append([MISSING if v == "" else NULL if v == "#N/A" else v for v in row])
            if len(rows) > MAX_RECORDS:
                _check_count(len(rows))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise BatchFailure(f"Field value exceeds the maximum of {FIELD_LIMIT} characters") from None
        raise BatchFailure(f"Failed to parse CSV: {exc} (line {reader.line_num})") from None
    return Payload([h.strip() for h in header], rows)


_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def parse_xml(data: bytes) -> Payload:
    _decode(data)
    try:
        root = etree.fromstring(data, _XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise BatchFailure(f"Failed to parse XML: {exc}", code="InvalidBatch") from None
    if _local(root.tag) != "sObjects":
        raise BatchFailure(f"Expected root element sObjects, found {_local(root.tag)}")
    records: list[dict[str, Any]] = []
    for obj in root:
        if not isinstance(obj.tag, str):
            continue
        if _local(obj.tag) != "sObject":
            raise BatchFailure(f"Unexpected element {_local(obj.tag)} in sObjects")
        record: dict[str, Any] = {}
        for el in obj:
            if not isinstance(el.tag, str):
                continue
            name = _local(el.tag)
            if el.get(_XSI_NIL) in ("true", "1"):
                record[name] = NULL
                continue
            nested = [c for c in el if isinstance(c.tag, str) and _local(c.tag) == "sObject"]
            if nested:
                for c in nested[0]:
                    if isinstance(c.tag, str) and _local(c.tag) != "type":
                        record[f"{name}.{_local(c.tag)}"] = c.text or MISSING
                continue
            record[name] = el.text if el.text else MISSING
        records.append(record)
        _check_count(len(records))
    return _records_payload(records)


def parse_json(data: bytes) -> Payload:
    text = _decode(data)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BatchFailure(f"Failed to parse JSON: {exc}") from None
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise BatchFailure("JSON batch must be an array of record objects")
    _check_count(len(doc))
    records: list[dict[str, Any]] = []
    for item in doc:
        record: dict[str, Any] = {}
        for key, value in item.items():
            if key == "attributes":
                continue
            if value is None:
                record[key] = NULL
            elif isinstance(value, dict):
                for sub, subvalue in value.items():
                    if sub != "attributes":
                        record[f"{key}.{sub}"] = NULL if subvalue is None else subvalue
            elif isinstance(value, list):
                raise BatchFailure(f"Field {key}: arrays are not supported")
            else:
                record[key] = MISSING if value == "" else value
        records.append(record)
    return _records_payload(records)


def _records_payload(records: list[dict[str, Any]]) -> Payload:
    columns: dict[str, None] = {}
    for record in records:
        for key in record:
            columns.setdefault(key, None)
    names = list(columns)
    return Payload(names, [[r.get(name, MISSING) for name in names] for r in records])


def parse_zip(data: bytes, inner: str) -> tuple[Payload, dict[str, bytes]]:
    """A zip batch: ``request.txt`` in ``inner`` format plus binary attachments referenced as ``#path``."""
    if len(data) > MAX_ZIP_BYTES:
        raise BatchFailure(f"Zip file exceeds the maximum size of {MAX_ZIP_BYTES} bytes")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        if "request.txt" not in names:
            raise BatchFailure("request.txt not found in the zip file")
        request = archive.read("request.txt")
        files = {name: archive.read(name) for name in names if name != "request.txt" and not name.endswith("/")}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise BatchFailure(f"Failed to read zip file: {exc}") from None
    payload = parse_payload(request, inner)
    return payload, files


def parse_payload(data: bytes, content_type: str) -> Payload:
    """``content_type`` is the job's (CSV, XML, JSON, ZIP_*)."""
    if content_type == "CSV":
        return parse_csv(data)
    if content_type == "XML":
        return parse_xml(data)
    if content_type == "JSON":
        return parse_json(data)
    if content_type.startswith("ZIP_"):
        payload, files = parse_zip(data, content_type[4:])
        resolve_attachments(payload, files)
        return payload
    raise BatchFailure(f"Unsupported content type {content_type}")


def resolve_attachments(payload: Payload, files: dict[str, bytes]) -> None:
    """Replace ``#path`` cells by the attachment bytes (base64-encoded later by the field converter)."""
    payload.by_column = None  # the rows change below
    for row in payload.rows:
        for i, cell in enumerate(row):
            if isinstance(cell, str) and cell.startswith("#"):
                name = cell[1:]
                if name in files:
                    row[i] = files[name]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
