"""Bulk API 2.0 background work and result files.

Tasks run inside ``BulkService.process_batch`` (a worker thread or process), as 1.0 batches with the
request types ``bulk2/split`` and ``bulk2/query``:

* the split reads the uploaded file once, checks it as Salesforce does before processing (UTF-8,
  line ending, header, column counts) and cuts it into 1.0 CSV batches of at most 10,000 records,
  queued only once the whole file is good (a bad file fails the job with nothing processed);
* the query task runs the SOQL into pages of rendered CSV lines with their byte offsets, so any
  ``locator`` + ``maxRecords`` window is served without rendering or holding the result again.

Result files are streamed chunk by chunk: memory stays flat whatever the job's size.
"""

from __future__ import annotations

import csv
import io
import json
import time
from array import array
from collections.abc import Iterator
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from . import query as queries
from .apierrors import BatchFailure
from .bulk2_jobs import (
    CHUNK_TYPE,
    DELIMITERS,
    LINE_ENDINGS,
    TASK_QUERY,
    TASK_SPLIT,
    ensure_tables,
    upload_path,
)
from .dml import resolve_columns
from .payloads import FIELD_LIMIT, MAX_CHARACTERS, MAX_RECORDS
from .schema import now_iso
from .soql import SoqlError, to_sql
from .store import Store
from .wire import csv_quote, error_cell

if TYPE_CHECKING:
    from .service import BulkService

TASKS = (TASK_SPLIT, TASK_QUERY)
#: a chunk batch is cut before it reaches the 1.0 batch limit of 10,000,000 characters
CHUNK_CHARACTERS = MAX_CHARACTERS - 500_000
_READ_BLOCK = 1 << 20


def run_task(
    service: BulkService, job: dict[str, Any], batch_id: str, kind: str, data: bytes, started: float
) -> None:
    """Run one 2.0 task batch (already InProgress); BatchFailure fails it (and so the job)."""
    ensure_tables(service.store)
    row = (
        service.store.reader()
        .execute("SELECT state, column_delimiter, line_ending FROM bulk2_jobs WHERE id = ?", (job["id"],))
        .fetchone()
    )
    if row is None or row[0] == "Aborted":
        service._set_state(batch_id, "NotProcessed")
        return
    delimiter, eol = DELIMITERS[row[1]], LINE_ENDINGS[row[2]]
    if kind == TASK_SPLIT:
        _split(service, job, batch_id, delimiter, eol, started)
    else:
        _query(service, job, batch_id, data.decode("utf-8"), delimiter, eol, started)


def _aborted(store: Store, job_id: str) -> bool:
    row = store.reader().execute("SELECT state FROM bulk2_jobs WHERE id = ?", (job_id,)).fetchone()
    return row is None or row[0] == "Aborted"


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# ---------------------------------------------------------------------------------------------
# ingest: the upload cut into 1.0 batches


def _split(
    service: BulkService, job: dict[str, Any], batch_id: str, delimiter: str, eol: str, started: float
) -> None:
    store = service.store
    job_id = job["id"]
    path = upload_path(store, job_id)
    if not path.exists():
        raise BatchFailure(
            "No job data was uploaded: PUT the CSV to the job's contentUrl before UploadComplete",
            code="ClientInputError",
        )
    obj = service.schema.get(job["object"])
    assert obj is not None
    written: list[str] = []  # chunk batch ids whose request is stored, queued only at the end
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            first = f.readline()
            _check_line_ending(first, eol)
            # the common case, comma-separated with a one-line header: the records are kept as sent
            raw = delimiter == "," and first.count('"') % 2 == 0
            if raw:
                header = _header(csv.reader(io.StringIO(first, newline=""), strict=True), service, obj, job)
                total = _cut_raw(store, job_id, f, first, len(header), written)
        if not raw:
            with open(path, encoding="utf-8-sig", newline="") as f:
                reader = csv.reader(f, delimiter=delimiter, strict=True)
                header = _header(reader, service, obj, job)
                total = _cut(store, job_id, reader, [h.strip() for h in header], written)
    except UnicodeDecodeError as exc:
        _forget(store, written)
        raise BatchFailure(
            f"The job data is not valid UTF-8 (byte {exc.start} of a read block)", code="ClientInputError"
        ) from None
    except csv.Error as exc:
        _forget(store, written)
        if "field larger than field limit" in str(exc):
            raise BatchFailure(f"Field value exceeds the maximum of {FIELD_LIMIT} characters") from None
        raise BatchFailure(f"Failed to parse CSV: {exc}") from None
    except BaseException:
        _forget(store, written)
        raise
    if total is None:  # aborted while splitting
        _forget(store, written)
        service._set_state(batch_id, "NotProcessed")
        return
    now = now_iso()
    with store.write() as conn:
        alive = conn.execute("SELECT state FROM bulk2_jobs WHERE id = ?", (job_id,)).fetchone()
        if alive is None or alive[0] == "Aborted":  # deleted or aborted during the last chunk
            conn.executemany("DELETE FROM batch_requests WHERE batch_id = ?", [(b,) for b in written])
            conn.execute(
                "UPDATE batches SET state = 'NotProcessed', system_modstamp = ? WHERE id = ?", (now, batch_id)
            )
            return
        seq = conn.execute(
            "SELECT coalesce(max(seq), 0) FROM batches WHERE job_id = ?", (job_id,)
        ).fetchone()[0]
        conn.executemany(
            "INSERT INTO batches (id, job_id, seq, state, created_date, system_modstamp, request_type) "
            "VALUES (?, ?, ?, 'Queued', ?, ?, ?)",
            [
                (chunk_id, job_id, seq + i, now, now, CHUNK_TYPE)
                for i, chunk_id in enumerate(written, start=1)
            ],
        )
        conn.execute(
            "UPDATE bulk2_jobs SET header = ?, records_total = ?, system_modstamp = ? WHERE id = ?",
            (json.dumps(header), total, now, job_id),
        )
        # in the same transaction as the chunks: a reader never sees the split done and no chunk queued
        conn.execute(
            "UPDATE batches SET state = 'Completed', state_message = NULL, system_modstamp = ?, "
            "total_processing_time = ?, api_active_processing_time = ? WHERE id = ?",
            (now, (elapsed := _ms(started)), elapsed, batch_id),
        )
    path.unlink(missing_ok=True)  # every record is in a chunk batch now
    for chunk_id in written:
        service.processor.submit(job_id, chunk_id, False)


def _header(reader: Any, service: BulkService, obj: Any, job: dict[str, Any]) -> list[str]:
    header = next(reader, None)
    if not header or header == [""]:
        raise BatchFailure("The job data has no header row", code="ClientInputError")
    names = [h.strip() for h in header]
    if any(not n for n in names):
        raise BatchFailure("Invalid CSV header: empty column name")
    resolve_columns(service.schema, obj, names, job["operation"])  # unknown or duplicate fields
    return list(header)


def _check_line_ending(first_line: str, eol: str) -> None:
    crlf = first_line.endswith("\r\n")
    if (eol == "\n" and crlf) or (eol == "\r\n" and not crlf and first_line.endswith("\n")):
        setting = "LF" if eol == "\n" else "CRLF"
        raise BatchFailure(
            f"LineEnding is invalid on user data. Current LineEnding setting is {setting}",
            code="ClientInputError",
        )


def _cut(store: Store, job_id: str, reader: Any, names: list[str], written: list[str]) -> int | None:
    """Write the records as 1.0 CSV batch requests; the number of records, or None when aborted."""
    width = len(names)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)  # MINIMAL leaves a lone \r bare
    writer.writerow(names)
    head = buf.tell()
    rows = total = 0
    for row in reader:
        if not row:
            continue  # blank line
        if len(row) != width:
            raise BatchFailure(
                f"Line {reader.line_num} has {len(row)} columns but the header has {width}",
                code="ClientInputError",
            )
        writer.writerow(row)
        rows += 1
        if rows == MAX_RECORDS or buf.tell() >= CHUNK_CHARACTERS:
            if _aborted(store, job_id):
                return None
            written.append(_store_chunk(store, buf.getvalue()))
            total += rows
            rows = 0
            buf.seek(head)
            buf.truncate()
    if rows:
        written.append(_store_chunk(store, buf.getvalue()))
        total += rows
    if not total:
        raise BatchFailure(
            "Records not found: the job data has a header but no records", code="ClientInputError"
        )
    return total


def _cut_raw(
    store: Store, job_id: str, f: Any, header_line: str, width: int, written: list[str]
) -> int | None:
    """As `_cut`, for comma-separated data: records are cut at line ends outside quotes (an even number
    of quote characters so far) and stored as sent, after each chunk is checked by the csv reader."""
    lines = [header_line]
    size = len(header_line)
    rows = total = 0
    odd = False
    opened = line_no = 1  # line_no: of the last line read; opened: where the current quote opened
    chunk_line = 2  # file line of the chunk's first record
    for line in f:
        line_no += 1
        if not odd and line in ("\n", "\r\n", "\r"):
            continue  # blank line
        lines.append(line)
        size += len(line)
        if line.count('"') % 2:
            odd = not odd
            opened = line_no
        if odd:
            continue
        rows += 1
        if rows == MAX_RECORDS or size >= CHUNK_CHARACTERS:
            if _aborted(store, job_id):
                return None
            written.append(_store_chunk(store, _checked("".join(lines), rows, width, chunk_line)))
            total += rows
            rows, lines, size, chunk_line = 0, [header_line], len(header_line), line_no + 1
    if odd:
        raise BatchFailure(
            f"Failed to parse CSV: unexpected end of data (a quote opened on line {opened} is never "
            f"closed; a quote inside a value needs the value quoted and the quote doubled)"
        )
    if rows:
        written.append(_store_chunk(store, _checked("".join(lines), rows, width, chunk_line)))
        total += rows
    if not total:
        raise BatchFailure(
            "Records not found: the job data has a header but no records", code="ClientInputError"
        )
    return total


def _checked(text: str, rows: int, width: int, first_line: int) -> str:
    """``text`` (header + ``rows`` records), once the csv reader agrees on its records and their widths."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    next(reader)
    seen = 0
    for row in reader:
        if not row:
            continue
        seen += 1
        if len(row) != width:
            raise BatchFailure(
                f"Line {first_line + reader.line_num - 2} has {len(row)} columns but the header has {width}",
                code="ClientInputError",
            )
    if seen != rows:  # a quote inside an unquoted value made the line count and the records disagree
        raise BatchFailure(
            f"Failed to parse CSV: a quote character inside an unquoted value, between lines "
            f"{first_line} and {first_line + text.count(chr(10)) - 2}; quote such values and "
            f"double their quotes"
        )
    return text


def _store_chunk(store: Store, text: str) -> str:
    with store.write() as conn:
        chunk_id = store.new_id18(conn, "751")
        conn.execute(
            "INSERT INTO batch_requests (batch_id, data) VALUES (?, ?)", (chunk_id, text.encode("utf-8"))
        )
    return chunk_id


def _forget(store: Store, written: list[str]) -> None:
    if written:
        with store.write() as conn:
            conn.executemany("DELETE FROM batch_requests WHERE batch_id = ?", [(b,) for b in written])
        written.clear()


# ---------------------------------------------------------------------------------------------
# ingest result files


def _line(cells: list[str], delimiter: str, eol: str) -> str:
    return delimiter.join([csv_quote(c) for c in cells]) + eol


def ingest_results(store: Store, job: dict[str, Any], kind: str) -> Iterator[bytes]:
    """``kind``: successful (``sf__Id``, ``sf__Created``), failed (``sf__Id``, ``sf__Error``) or unprocessed
    (the original columns only); each followed by the record's original fields, one chunk batch at a time."""
    delimiter, eol = DELIMITERS[job["columnDelimiter"]], LINE_ENDINGS[job["lineEnding"]]
    header = json.loads(job["header"]) if job["header"] else None
    if header is None:  # never split: nothing processed
        if kind == "unprocessed":
            yield from _raw_upload(store, job["id"])
            return
        header = []
    extra = {"successful": ["sf__Id", "sf__Created"], "failed": ["sf__Id", "sf__Error"], "unprocessed": []}[
        kind
    ]
    yield _line(extra + header, delimiter, eol).encode("utf-8")
    wanted = ("NotProcessed", "Failed") if kind == "unprocessed" else ("Completed",)
    chunks = (
        store.reader()
        .execute(
            "SELECT id, state FROM batches WHERE job_id = ? AND request_type = ? ORDER BY seq",
            (job["id"], CHUNK_TYPE),
        )
        .fetchall()
    )
    for chunk_id, state in chunks:
        if state not in wanted:
            continue
        request = (
            store.reader()
            .execute("SELECT data FROM batch_requests WHERE batch_id = ?", (chunk_id,))
            .fetchone()
        )
        records = csv.reader(io.StringIO(bytes(request[0]).decode("utf-8"), newline=""))
        next(records)
        out = []
        if kind == "unprocessed":
            out = [_line(cells, delimiter, eol) for cells in records if cells]
        else:
            result = (
                store.reader()
                .execute("SELECT data FROM batch_results WHERE batch_id = ?", (chunk_id,))
                .fetchone()
            )
            rows = json.loads(result[0]) if result else []
            for cells, (rid, success, created, errors) in zip(filter(None, records), rows, strict=False):
                if kind == "successful" and success:
                    out.append(_line([rid or "", "true" if created else "false", *cells], delimiter, eol))
                elif kind == "failed" and not success:
                    out.append(_line([rid or "", error_cell(errors), *cells], delimiter, eol))
        if out:
            yield "".join(out).encode("utf-8")
    store.reader().execute("PRAGMA shrink_memory")  # as in query_page


def _raw_upload(store: Store, job_id: str) -> Iterator[bytes]:
    try:
        f = open(upload_path(store, job_id), "rb")
    except FileNotFoundError:
        return
    with f:
        while block := f.read(_READ_BLOCK):
            yield block


# ---------------------------------------------------------------------------------------------
# query: pages of rendered lines


def _query(
    service: BulkService,
    job: dict[str, Any],
    batch_id: str,
    soql: str,
    delimiter: str,
    eol: str,
    started: float,
) -> None:
    store = service.store
    job_id = job["id"]
    q, obj, outputs, column = queries.compile_query(service.schema, job["object"], soql)
    extra = None if job["operation"] == "queryAll" else f'{obj.table}."IsDeleted" = 0'
    line_sql = queries.csv_line_sql(outputs) if delimiter == "," else None
    try:
        sql, params = to_sql(q, obj.table, column, extra_where=extra, select=line_sql)
    except SoqlError as exc:
        raise BatchFailure(f"Failed to process query: {exc.code}: {exc.message}") from None
    with store.write() as conn:
        conn.execute("DELETE FROM bulk2_query_chunks WHERE job_id = ?", (job_id,))  # a rerun after a restart
    header = delimiter.join(csv_quote(o.name) for o in outputs) + eol
    value = queries._csv_value
    cursor = store.reader().execute(sql, params)
    total = seq = 0
    try:
        while block := cursor.fetchmany(queries.FETCH_ROWS):
            if seq % 16 == 15 and _aborted(store, job_id):
                with store.write() as conn:
                    if conn.execute("SELECT 1 FROM bulk2_jobs WHERE id = ?", (job_id,)).fetchone() is None:
                        conn.execute("DELETE FROM bulk2_query_chunks WHERE job_id = ?", (job_id,))  # deleted
                service._set_state(batch_id, "NotProcessed")
                return
            if line_sql is not None:
                lines = [r[0] for r in block]
            else:
                lines = [
                    delimiter.join([value(o.field, v) for o, v in zip(outputs, r, strict=True)])
                    for r in block
                ]
            text = eol.join(lines) + eol
            sizes = map(len, lines) if text.isascii() else (len(line.encode("utf-8")) for line in lines)
            offsets = array("Q", accumulate((n + len(eol) for n in sizes), initial=0))
            with store.write() as conn:
                conn.execute(
                    "INSERT INTO bulk2_query_chunks (job_id, seq, first_row, rows, data, offsets) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (job_id, seq, total, len(block), text.encode("utf-8"), offsets.tobytes()),
                )
            total += len(block)
            seq += 1
    finally:
        cursor.close()
    now = now_iso()
    with store.write() as conn:
        if not conn.execute(
            "UPDATE bulk2_jobs SET header = ?, records_total = ?, system_modstamp = ? WHERE id = ?",
            (header, total, now, job_id),
        ).rowcount:
            conn.execute("DELETE FROM bulk2_query_chunks WHERE job_id = ?", (job_id,))  # deleted meanwhile
        conn.execute(
            "UPDATE batches SET state = 'Completed', state_message = NULL, system_modstamp = ?, "
            "records_processed = ?, total_processing_time = ?, api_active_processing_time = ? WHERE id = ?",
            (now, total, (elapsed := _ms(started)), elapsed, batch_id),
        )


def query_page(store: Store, job: dict[str, Any], offset: int, count: int) -> Iterator[bytes]:
    """Records ``offset`` .. ``offset + count`` of a finished query, after the header (nothing if no record)."""
    total = job["recordsTotal"] or 0
    end = min(offset + count, total)
    if offset >= end:
        return
    yield job["header"].encode("utf-8")
    reader = store.reader()
    row = reader.execute(
        "SELECT seq FROM bulk2_query_chunks WHERE job_id = ? AND first_row <= ? ORDER BY seq DESC LIMIT 1",
        (job["id"], offset),
    ).fetchone()
    seq = row[0] if row else 0
    pos = offset
    while pos < end:
        chunk = reader.execute(
            "SELECT first_row, rows, data, offsets FROM bulk2_query_chunks WHERE job_id = ? AND seq = ?",
            (job["id"], seq),
        ).fetchone()
        if chunk is None:
            return  # deleted while being read
        first, rows, data, blob = chunk
        offsets = array("Q")
        offsets.frombytes(blob)
        a, b = pos - first, min(rows, end - first)
        yield bytes(data[offsets[a] : offsets[b]])
        pos = first + b
        seq += 1
    # Each HTTP thread has its own reader, whose page cache a page fills: give it back, or 16 threads
    # serving pages of a big result would hold 16 caches.
    reader.execute("PRAGMA shrink_memory")
