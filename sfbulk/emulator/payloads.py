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
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from .apierrors import BatchFailure

MAX_RECORDS = 10_000
MAX_CHARACTERS = 10_000_000
FIELD_LIMIT = 131_072
#: zip batches (bulk-api.md §6 "Binary attachments"): the zip itself (documented) ...
MAX_ZIP_BYTES = 10 * 1024 * 1024
#: ... and, not confirmed by any source we have (docs/emulator.md flags them): the unzipped content,
#: the files in the zip (directories not counted), request.txt alone (as a plain batch file), a file name
MAX_UNZIPPED_BYTES = 20 * 1024 * 1024
MAX_ZIP_FILES = 1_000
MAX_REQUEST_TXT_BYTES = 10 * 1024 * 1024
MAX_ZIP_NAME_BYTES = 512
#: attachment bytes one batch may reference, a file referenced twice counting twice (emulator choice:
#: without it, 10,000 rows naming one 20 MB file would write 270 GB of base64)
MAX_REFERENCED_BYTES = MAX_UNZIPPED_BYTES
_ZIP_READ = 64 * 1024


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


#: line-end characters above which a CSV batch is not read in one go (10,000 records with CRLF ends and a
#: few multi-line values stay below; ten million blank lines would cost ~900 MB as one list)
_WHOLE_PARSE_LINE_ENDS = 4 * MAX_RECORDS


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
    if text.count("\n") + text.count("\r") > _WHOLE_PARSE_LINE_ENDS:
        return None  # millions of (blank) lines would be millions of lists at once: the row parser streams
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


def xml_error_text(exc: etree.XMLSyntaxError) -> str:
    """libxml2's message without Python's ``(<string>, line 1)`` tail or advice about parser options."""
    text = str(getattr(exc, "msg", None) or exc)
    return text.replace(", use XML_PARSE_HUGE option", "")


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def parse_xml(data: bytes) -> Payload:
    _decode(data)
    try:
        root = etree.fromstring(data, _XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise BatchFailure(f"Failed to parse XML: {xml_error_text(exc)}") from None
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
    doc = load_json(text, BatchFailure, "Failed to parse JSON", records=True)
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


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def load_json(text: str, error: Callable[[str], Exception], prefix: str, *, records: bool = False) -> Any:
    """``json.loads`` for untrusted text: every failure is ``error(f"{prefix}: ...")``, never a Python error.

    Covers what ``json.loads`` lets through or raises beyond JSONDecodeError: nesting deeper than the
    interpreter's recursion limit, integers past Python's digit limit, ``NaN``/``Infinity`` (not JSON), and
    lone surrogate escapes (``"\\ud800"``: no UTF-8 form, SQLite and every response would choke on it).
    ``records=True``: a top-level array is read one element at a time and refused past ``MAX_RECORDS``
    elements, so three million ``{}`` never exist at once.
    """
    try:
        doc = _load_records(text) if records else _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise error(f"{prefix}: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise error(f"{prefix}: the document is nested too deeply") from None
    except ValueError as exc:  # a number with thousands of digits, NaN, Infinity
        reason = str(exc) if "is not a JSON value" in str(exc) else "a number is too large"
        raise error(f"{prefix}: {reason}") from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(doc):
        raise error(
            f"{prefix}: a string holds an unpaired surrogate (\\ud800-\\udfff), which is not valid Unicode"
        )
    return doc


_DECODER = json.JSONDecoder(parse_constant=_no_constant)
_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, pos: int) -> int:
    """The position after the JSON whitespace at ``pos``."""
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _load_records(text: str) -> Any:
    """``json.loads(text)`` for a batch: an array is decoded element by element, stopping past MAX_RECORDS."""
    pos = _skip(text, 0)
    if text[pos : pos + 1] != "[":
        return _DECODER.decode(text)  # not an array: the caller refuses it (or the decoder's error)
    pos = _skip(text, pos + 1)
    items: list[Any] = []
    if text[pos : pos + 1] == "]":
        pos += 1
    else:
        while True:
            item, pos = _DECODER.raw_decode(text, pos)
            items.append(item)
            _check_count(len(items))
            pos = _skip(text, pos)
            delimiter = text[pos : pos + 1]
            if delimiter == "]":
                pos += 1
                break
            if delimiter != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            pos = _skip(text, pos + 1)
    end = _skip(text, pos)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return items


def _has_lone_surrogate(doc: Any) -> bool:
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _records_payload(records: list[dict[str, Any]]) -> Payload:
    columns: dict[str, None] = {}
    for record in records:
        for key in record:
            columns.setdefault(key, None)
    names = list(columns)
    return Payload(names, [[r.get(name, MISSING) for name in names] for r in records])


def parse_zip(data: bytes, inner: str) -> tuple[Payload, dict[str, bytes]]:
    """A zip batch: ``request.txt`` in ``inner`` format plus binary attachments referenced as ``#path``.

    Sizes in the zip's headers are never trusted: every member is read through the decompressor with a
    running count of the bytes it really yields, and reading stops at the first byte past a limit.
    """
    if len(data) > MAX_ZIP_BYTES:
        raise BatchFailure(f"Zip file exceeds the maximum size of {MAX_ZIP_BYTES} bytes")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MAX_ZIP_FILES:
            raise BatchFailure(
                f"The zip file contains {len(members)} files, more than the maximum of "
                f"{MAX_ZIP_FILES} (directories do not count)"
            )
        for info in members:
            if len(info.filename.encode("utf-8", "replace")) > MAX_ZIP_NAME_BYTES:
                raise BatchFailure(
                    f"A file name in the zip file is longer than {MAX_ZIP_NAME_BYTES} bytes: "
                    f"{info.filename[:80]}..."
                )
        if not any(info.filename == "request.txt" for info in members):
            raise BatchFailure("request.txt not found in the zip file")
        budget = [MAX_UNZIPPED_BYTES]
        request = b""
        files: dict[str, bytes] = {}
        for info in members:
            if info.filename == "request.txt":
                request = _read_member(archive, info, budget, MAX_REQUEST_TXT_BYTES)
            else:
                files[info.filename] = _read_member(archive, info, budget, None)
    except BatchFailure:
        raise
    except Exception as exc:  # zipfile, zlib, bz2 and lzma each have their own errors for corrupt input
        raise BatchFailure(f"Failed to read zip file: {_zip_error_text(exc)}") from None
    payload = parse_payload(request, inner)
    return payload, files


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int], own_limit: int | None
) -> bytes:
    """One member's bytes, decompressed a block at a time against the batch's remaining ``budget``."""
    out = bytearray()
    with archive.open(info) as stream:
        while True:
            block = stream.read(_ZIP_READ)
            if not block:
                return bytes(out)
            out += block
            budget[0] -= len(block)
            if budget[0] < 0:
                raise BatchFailure(
                    f"The unzipped content of the zip file exceeds the maximum of {MAX_UNZIPPED_BYTES} bytes"
                )
            if own_limit is not None and len(out) > own_limit:
                raise BatchFailure(f"request.txt exceeds the maximum size of {own_limit} bytes")


def _zip_error_text(exc: Exception) -> str:
    """What went wrong, in words (zipfile's own BadZipFile texts are fine: "File is not a zip file")."""
    if isinstance(exc, zipfile.BadZipFile) and str(exc):
        return str(exc)
    if isinstance(exc, NotImplementedError | zipfile.LargeZipFile):
        return "unsupported compression method or zip feature"
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return "a file in the zip is encrypted"
    if isinstance(exc, EOFError):
        return "the compressed data is truncated"
    return "the compressed data is corrupt"


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
    referenced = 0
    for row in payload.rows:
        for i, cell in enumerate(row):
            if isinstance(cell, str) and cell.startswith("#"):
                name = cell[1:]
                if name in files:
                    row[i] = files[name]
                    referenced += len(files[name])
                    if referenced > MAX_REFERENCED_BYTES:
                        raise BatchFailure(
                            f"The attachments referenced by the batch exceed {MAX_REFERENCED_BYTES} "
                            f"bytes in total (a file referenced twice counts twice)"
                        )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
