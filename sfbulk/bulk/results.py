"""Success and error CSVs in input order, Data Loader style.

Salesforce returns one result row per input record, in the batch's record order (bulk-api.md §1.9),
and nothing that ties a result to an input row except that position. We pair them per batch: the
batch's input rows are read back from the source file by byte range (so the input is never held in
memory), transformed exactly as they were sent, and zipped with the downloaded result CSV.

Every input row lands in exactly one of the two files, with the input columns followed by
``sf__Id``, ``sf__Created`` and ``sf__Error``. A batch that failed as a whole (state ``Failed``)
sends its rows to the error file with the batch's ``stateMessage``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import IO

from sfbulk.bulk.csvsplit import Batch, read_range, transform
from sfbulk.errors import BulkError, BulkInputError

RESULT_COLUMNS = ("sf__Id", "sf__Created", "sf__Error")


def parse_header(header: bytes) -> list[str]:
    """Field names of a UTF-8 header line."""
    return next(csv.reader(io.StringIO(header.decode("utf-8"), newline="")), [])


def input_rows(path: str, batch: Batch, encoding: str, nul: str = "strip") -> list[list[str]]:
    """The batch's input records as field lists, exactly as they were sent."""
    raw = read_range(path, batch.start, batch.end)
    body, _ = transform(raw, encoding, nul=nul)
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    if len(rows) != batch.rows:
        raise BulkError(
            f"batch {batch.index + 1}: re-reading the input gave {len(rows)} records, expected {batch.rows}; "
            "was the input file changed during the load?"
        )
    return rows


def result_rows(stream: IO[str]) -> Iterator[tuple[str, str, str, str]]:
    """(Id, Success, Created, Error) of each row of an ingest result CSV."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    names = [h.strip().lower() for h in header]
    try:
        i_id, i_ok, i_created, i_error = (names.index(n) for n in ("id", "success", "created", "error"))
    except ValueError:
        raise BulkError(f"unexpected batch result header {header!r}; expected Id, Success, Created, Error") from None
    for row in reader:
        if not row:
            continue
        yield row[i_id], row[i_ok], row[i_created], row[i_error]


class ResultWriter:
    """Writes ``success.csv`` and ``error.csv``; call :meth:`add_batch` in batch order."""

    def __init__(self, success_path: str, error_path: str, fields: list[str]) -> None:
        self.success_path = success_path
        self.error_path = error_path
        self._files: list[IO[str]] = [open(success_path, "w", encoding="utf-8", newline="")]
        self._files.append(open(error_path, "w", encoding="utf-8", newline=""))
        self._ok = csv.writer(self._files[0], lineterminator="\n")
        self._err = csv.writer(self._files[1], lineterminator="\n")
        header = list(fields) + list(RESULT_COLUMNS)
        self._ok.writerow(header)
        self._err.writerow(header)
        self.succeeded = 0
        self.failed = 0

    def add_batch(
        self,
        rows: list[list[str]],
        results: Iterable[tuple[str, str, str, str]] | None,
        batch_error: str | None = None,
    ) -> tuple[int, int]:
        """Pair ``rows`` with ``results`` by position; returns (succeeded, failed) for the batch.

        Rows without a result (a Failed batch, or results cut short) go to the error file with
        ``batch_error``.
        """
        it = iter(results) if results is not None else iter(())
        good: list[list[str]] = []
        bad: list[list[str]] = []
        for row, res in zip(rows, it):  # one result per input row, same order (bulk-api.md §1.9)
            rid, success, created, error = res
            if success == "true" or success.strip().lower() == "true":
                row.extend((rid, created, ""))
                good.append(row)
            else:
                row.extend((rid, created, error))
                bad.append(row)
        missing = rows[len(good) + len(bad):]
        for row in missing:  # a Failed batch, or results cut short
            row.extend(("", "false", batch_error or "no result returned for this row"))
        bad.extend(missing)
        extra = sum(1 for _ in it)
        if extra:
            raise BulkError(f"Salesforce returned {extra} more result rows than the batch had records")
        # Whole batches per writerows call: the csv module's C loop, not one Python call per row.
        self._ok.writerows(good)
        self._err.writerows(bad)
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


__all__ = ["RESULT_COLUMNS", "ResultWriter", "input_rows", "parse_header", "result_rows", "strip_result_columns"]
