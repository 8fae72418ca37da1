"""Success and error CSVs in input order, Data Loader style.

Salesforce returns one result row per input record, in the batch's record order (bulk-api.md §1.9),
and nothing that ties a result to an input row except that position. We pair them per batch: the
batch's input rows are read back from the source file by byte range (so the input is never held in
memory), transformed exactly as they were sent, and zipped with the downloaded result CSV.

Every input row lands in exactly one of the two files, with the input columns followed by
``sf__Id``, ``sf__Created`` and ``sf__Error``. Each input record is copied as it was sent (its own
quoting kept; only the line terminator becomes ``\n``), so pairing never parses the input. A batch
that failed as a whole (state ``Failed``) sends its rows to the error file with the batch's
``stateMessage``.
"""

from __future__ import annotations

import csv
import io
import operator
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from typing import IO

from sfbulk.bulk.csvsplit import Batch, read_range, transform
from sfbulk.errors import BulkError, BulkInputError

RESULT_COLUMNS = ("sf__Id", "sf__Created", "sf__Error")


def parse_header(header: bytes) -> list[str]:
    """Field names of a UTF-8 header line."""
    return next(csv.reader(io.StringIO(header.decode("utf-8"), newline="")), [])


def input_records(
    path: str, batch: Batch, encoding: str, nul: str = "strip", sent: Callable[[bytes], bytes] | None = None
) -> list[str]:
    """The batch's input records as sent, each as its CSV text without the line terminator.

    Records are written back verbatim (the user's own quoting), so they are cut, not parsed: a
    line ends a record when its quote count leaves the record's quotes balanced, the rule the
    splitter used to cut the batch. ``sent`` (``CsvSplitter.sent_records``) turns the source bytes
    into what was sent when that is more than :func:`transform` (only some columns sent).
    """
    raw = read_range(path, batch.start, batch.end)
    body = sent(raw) if sent is not None else transform(raw, encoding, nul=nul)[0]
    text = body.decode("utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the batch's last terminator
    if '"' in text and any(map(operator.and_, map(str.count, lines, repeat('"')), repeat(1))):
        lines = _join_quoted_line_breaks(lines)  # some line has an odd quote count
    records = [line[:-1] if line.endswith("\r") else line for line in lines] if "\r" in text else lines
    if len(records) != batch.rows:
        raise BulkError(
            f"batch {batch.index + 1}: re-reading the input gave {len(records)} records, expected {batch.rows}; "
            "was the input file changed during the load?"
        )
    return records


def _join_quoted_line_breaks(lines: list[str]) -> list[str]:
    """Lines -> records, gluing back the lines of a quoted value that holds line breaks."""
    records: list[str] = []
    pending: list[str] = []
    quotes = 0
    for line in lines:
        pending.append(line)
        quotes += line.count('"')
        if not quotes & 1:
            records.append("\n".join(pending))
            pending, quotes = [], 0
    if pending:
        records.append("\n".join(pending))  # unbalanced tail: the count check reports it
    return records


_NEEDS_QUOTES = re.compile(r'[,"\r\n]').search


def _cell(value: str) -> str:
    """One CSV field, quoted only when it must be (as the csv module's QUOTE_MINIMAL does)."""
    return '"' + value.replace('"', '""') + '"' if _NEEDS_QUOTES(value) else value


def result_rows(stream: IO[str]) -> Iterator[Sequence[str]]:
    """(Id, Success, Created, Error) of each row of an ingest result CSV.

    The header is checked at once (a wrong one raises BulkError here); rows are read lazily.
    """
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return iter(())
    names = [h.strip().lower() for h in header]
    try:
        i_id, i_ok, i_created, i_error = (names.index(n) for n in ("id", "success", "created", "error"))
    except ValueError:
        raise BulkError(
            f"unexpected batch result header {header!r}; expected Id, Success, Created, Error"
        ) from None
    if (i_id, i_ok, i_created, i_error) == (0, 1, 2, 3) and len(names) == 4:
        return filter(
            None, reader
        )  # Salesforce's own column order: the rows as they are (blank ones skipped)
    return ((row[i_id], row[i_ok], row[i_created], row[i_error]) for row in reader if row)


class ResultWriter:
    """Writes ``success.csv`` and ``error.csv``; call :meth:`add_batch` in batch order."""

    def __init__(
        self,
        success_path: str,
        error_path: str,
        fields: list[str],
        *,
        resume: tuple[int, int, int, int] | None = None,
    ) -> None:
        """``resume`` = (success bytes, error bytes, succeeded, failed) of files written by an
        interrupted run: they are cut back to those lengths and appended to (no header written)."""
        self.success_path = success_path
        self.error_path = error_path
        self.succeeded = 0
        self.failed = 0
        if resume is not None:
            os.truncate(success_path, resume[0])
            os.truncate(error_path, resume[1])
            self.succeeded, self.failed = resume[2], resume[3]
        mode = "w" if resume is None else "a"
        self._files: list[IO[str]] = [open(success_path, mode, encoding="utf-8", newline="")]
        self._files.append(open(error_path, mode, encoding="utf-8", newline=""))
        self._ok = csv.writer(self._files[0], lineterminator="\n")
        self._err = csv.writer(self._files[1], lineterminator="\n")
        if resume is None:
            header = list(fields) + list(RESULT_COLUMNS)
            self._ok.writerow(header)
            self._err.writerow(header)

    def sync(self, *, durable: bool = True) -> tuple[int, int]:
        """Flush both files (to disk too when ``durable``); returns their lengths (what a resumed run
        cuts back to)."""
        sizes = []
        for fh in self._files:
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
            sizes.append(fh.tell())
        return sizes[0], sizes[1]

    def add_batch(
        self,
        records: list[str],
        results: Iterable[Sequence[str]] | None,
        batch_error: str | None = None,
    ) -> tuple[int, int]:
        """Pair ``records`` (CSV text, see :func:`input_records`) with ``results`` by position;
        returns (succeeded, failed) for the batch.

        Records without a result (a Failed batch, or results cut short) go to the error file with
        ``batch_error``.
        """
        it = iter(results) if results is not None else iter(())
        good: list[str] = []
        bad: list[str] = []
        paired = 0
        for record, res in zip(
            records, it, strict=False
        ):  # one result per row, same order (bulk-api.md §1.9)
            rid, success, created, error = res
            paired += 1
            if success == "true" or success.strip().lower() == "true":
                if rid.isalnum() and created.isalpha():  # an id and true/false: nothing to quote
                    good.append(f"{record},{rid},{created},\n")
                else:
                    good.append(f"{record},{_cell(rid)},{_cell(created)},\n")
            else:
                bad.append(f"{record},{_cell(rid)},{_cell(created)},{_cell(error)}\n")
        if paired < len(records):  # a Failed batch, or results cut short
            tail = f",,false,{_cell(batch_error or 'no result returned for this row')}\n"
            bad.extend(record + tail for record in records[paired:])
        extra = sum(1 for _ in it)
        if extra:
            raise BulkError(f"Salesforce returned {extra} more result rows than the batch had records")
        # One write per file and batch: the lines are joined in C, not written one call per row.
        self._files[0].write("".join(good))
        self._files[1].write("".join(bad))
        ok, failed = len(good), len(bad)
        self.succeeded += ok
        self.failed += failed
        return ok, failed

    def close(self) -> None:
        for fh in self._files:
            fh.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def error_reasons(error_csv: str) -> Counter[str]:
    """How many rows of an error file we wrote failed for each reason (its ``sf__Error``, normalised).

    Salesforce's row errors read ``CODE:message:fields --``; the fields part is dropped so rows
    failing the same way count together: ``REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]``.
    """
    reasons: Counter[str] = Counter()
    with open(error_csv, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or header[-1] != "sf__Error":
            return reasons
        for row in reader:
            if row:
                reasons[normalise_reason(row[-1])] += 1
    return reasons


_ROW_ERROR = re.compile(r"^([A-Z][A-Z0-9_]+):(.*?)(?::[^:]*--)?$", re.DOTALL)


def normalise_reason(error: str) -> str:
    """``REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --`` ->
    ``REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]``; other texts as they are."""
    error = error.strip()
    match = _ROW_ERROR.match(error)
    if match is None:
        return error or "no error message"
    return f"{match.group(1)}: {match.group(2).strip()}"


def strip_result_columns(error_csv: str, out: IO[str]) -> int:
    """Copy ``error_csv`` (a file we wrote) to ``out`` without the sf__ columns; returns rows copied.

    This is how ``--retry-failed`` reloads only the failed rows, with their original columns.
    """
    with open(error_csv, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise BulkInputError(f"{error_csv} is empty; expected an error file written by sfbulk load")
        keep = [i for i, name in enumerate(header) if name not in RESULT_COLUMNS]
        if len(keep) == len(header):
            raise BulkInputError(
                f"{error_csv} has no sf__Error column: pass the error file written by a previous sfbulk load"
            )
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([header[i] for i in keep])
        count = 0
        for row in reader:
            if not row:
                continue
            writer.writerow([row[i] if i < len(row) else "" for i in keep])
            count += 1
        return count


__all__ = [
    "RESULT_COLUMNS",
    "ResultWriter",
    "error_reasons",
    "input_records",
    "normalise_reason",
    "parse_header",
    "result_rows",
    "strip_result_columns",
]
