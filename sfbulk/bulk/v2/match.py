"""Matching Bulk API 2.0 results back to input rows, on disk, so results come out in input order.

Bulk 1.0 returns one result per record in the batch's order; 2.0 returns three files
(successfulResults: ``sf__Id, sf__Created`` + the original fields; failedResults: ``sf__Id,
sf__Error`` + the original fields; unprocessedrecords: the original fields) in no particular
order, and nothing ties a result to an input row but the row's field values. So a row is matched
by its content: the digest of its fields as sent (BLAKE2b-128 of the cells joined by NUL, which
never occurs in sent data: the splitter strips or rejects it).

Identical rows: the outcomes of one distinct content form a multiset, and they are handed to that
content's input rows in input order (the k-th row with that content gets the k-th outcome read
for it: successful first, then failed, then unprocessed, each in file order). This is correct
because rows with identical content are indistinguishable: Salesforce received the same bytes
for each, so no observer can tell which one produced which outcome; any one-to-one assignment
yields the same multiset of (row, outcome) pairs, which is all the result files can state. What
is guaranteed is that every input row gets exactly one outcome, and that the counts per content
and outcome are Salesforce's.

Fast path: Salesforce (and the emulator) usually return each file in the order the rows were
sent. :class:`OrderedMatch` walks the input and the three files side by side, taking a result only
when its fields equal the input row's; the first row no file's next result matches raises
:class:`OutOfOrder`, and the caller falls back to the general join. The general join runs in
SQLite in a work file (window functions number the duplicates on both sides) rather than in a
dict: a 100 MB job has about a million rows, and memory must stay flat.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence

from sfbulk.errors import BulkError

SUCCESS, FAILED, UNPROCESSED = 0, 1, 2
_KINDS = {"successfulResults": SUCCESS, "failedResults": FAILED, "unprocessedrecords": UNPROCESSED}
_BLOCK = 20_000


def digest(cells: Sequence[str]) -> bytes:
    """The key of one row: its fields as Salesforce parsed them."""
    return hashlib.blake2b("\0".join(cells).encode("utf-8"), digest_size=16).digest()


def record_digests(records: Iterable[str]) -> Iterator[bytes]:
    """Digests of input records given as CSV text (as :func:`sfbulk.bulk.results.input_records` gives them)."""
    text = "\n".join(records)
    if text:
        for cells in csv.reader(io.StringIO(text + "\n", newline="")):
            yield digest(cells)


class OutOfOrder(Exception):
    """The results are not in input order: the general (SQLite) join is needed."""


def parse_records(records: Sequence[str]) -> list[list[str]]:
    """Input records (CSV text, one per record) -> their fields."""
    text = "\n".join(records)
    return list(csv.reader(io.StringIO(text + "\n", newline=""))) if text else []


class OrderedMatch:
    """Outcomes when each result file lists its rows in input order (a merge of three sorted streams)."""

    def __init__(self, paths: dict[str, str], width: int, unprocessed_reason: str) -> None:
        self._files = []
        self._heads: list[list[str] | None] = []
        self._readers = []
        self.width = width
        self.reason = unprocessed_reason
        for kind in ("successfulResults", "failedResults", "unprocessedrecords"):
            path = paths.get(kind)
            fh = open(path, encoding="utf-8", newline="") if path else None
            reader = csv.reader(fh) if fh is not None else iter(())
            if fh is not None:
                self._files.append(fh)
                next(reader, None)  # the header
            self._readers.append(reader)
            self._heads.append(self._next(len(self._readers) - 1))

    def _next(self, k: int) -> list[str] | None:
        for row in self._readers[k]:
            if row:
                return row
        return None

    def take(self, cells: list[str]) -> tuple[str, str, str, str]:
        """The outcome of the next input row, whose fields are ``cells``."""
        heads = self._heads
        for k, lead in ((SUCCESS, 2), (FAILED, 2), (UNPROCESSED, 0)):
            head = heads[k]
            if head is not None and head[lead:] == cells:
                heads[k] = self._next(k)
                if k == SUCCESS:
                    return head[0], "true", head[1], ""
                if k == FAILED:
                    return head[0], "false", "false", head[1]
                return "", "false", "false", self.reason
        if all(h is None for h in heads):
            return "", "false", "false", self.reason  # no result for this row at all
        raise OutOfOrder

    def finish(self) -> None:
        """Every result was taken (else some came out of order, or match no row)."""
        if any(h is not None for h in self._heads):
            raise OutOfOrder

    def close(self) -> None:
        for fh in self._files:
            fh.close()


class Matcher:
    """Outcomes of one job, read from its result files, handed out in input order.

    ``add_results`` each downloaded file, ``add_inputs`` the job's rows in input order, then
    :meth:`outcomes` yields one ``(id, success, created, error)`` per input row, in order, as
    :class:`~sfbulk.bulk.results.ResultWriter` takes them.
    """

    def __init__(self, path: str, width: int) -> None:
        if os.path.exists(path):
            os.unlink(path)  # a match killed half-way starts again
        self.path = path
        self.width = width
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-8000;"
            "PRAGMA temp_store=FILE;"
            "CREATE TABLE res (d BLOB, k INTEGER, id TEXT, x TEXT);"
            "CREATE TABLE inp (i INTEGER PRIMARY KEY, d BLOB);"
        )
        self.inputs = 0
        self.results = 0
        self.db.execute("BEGIN")

    def add_results(self, kind: str, rows: Iterable[Sequence[str]], source: str = "") -> int:
        """Rows of one result file, its header excluded; returns how many."""
        k = _KINDS[kind]
        lead = 0 if k == UNPROCESSED else 2
        want = self.width + lead
        count = 0
        block: list[tuple[bytes, int, str, str]] = []
        for cells in rows:
            if not cells:
                continue
            if len(cells) != want:
                raise BulkError(f"{source or kind}: a result row has {len(cells)} fields, expected {want}")
            block.append((digest(cells[lead:]), k, cells[0] if lead else "", cells[1] if lead else ""))
            if len(block) >= _BLOCK:
                self.db.executemany("INSERT INTO res VALUES (?, ?, ?, ?)", block)
                count += len(block)
                block = []
        self.db.executemany("INSERT INTO res VALUES (?, ?, ?, ?)", block)
        count += len(block)
        self.results += count
        return count

    def add_result_file(self, kind: str, path: str) -> int:
        """A downloaded result CSV; its header must be the result columns plus the job's fields."""
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return 0
            return self.add_results(kind, reader, source=os.path.basename(path))

    def add_inputs(self, digests: Iterable[bytes]) -> None:
        start = self.inputs
        rows = [(start + n, d) for n, d in enumerate(digests)]
        self.db.executemany("INSERT INTO inp VALUES (?, ?)", rows)
        self.inputs += len(rows)

    def outcomes(self, unprocessed_reason: str) -> Iterator[tuple[str, str, str, str]]:
        """One outcome per input row in input order; rows with no result get ``unprocessed_reason``."""
        if self.results > self.inputs:
            raise BulkError(
                f"Salesforce returned {self.results:,} result rows for {self.inputs:,} input rows"
            )
        db = self.db
        if db.in_transaction:
            db.execute("COMMIT")
        db.executescript(
            "CREATE TABLE r AS SELECT d, k, id, x, row_number() OVER (PARTITION BY d ORDER BY k, rowid) AS n FROM res;"
            "CREATE INDEX r_dn ON r (d, n);"
            "CREATE TABLE q AS SELECT i, d, row_number() OVER (PARTITION BY d ORDER BY i) AS n FROM inp;"
        )
        matched = db.execute("SELECT count(*) FROM q JOIN r ON r.d = q.d AND r.n = q.n").fetchone()[0]
        if matched != self.results:
            raise BulkError(
                f"{self.results - matched:,} result rows Salesforce returned match no input row "
                "(was the input file changed during the load?)"
            )
        cursor = db.execute(
            "SELECT r.k, r.id, r.x FROM q LEFT JOIN r ON r.d = q.d AND r.n = q.n ORDER BY q.i"
        )
        for k, rid, x in cursor:
            if k == SUCCESS:
                yield rid, "true", x, ""
            elif k == FAILED:
                yield rid, "false", "false", x
            else:
                yield "", "false", "false", unprocessed_reason

    def close(self, remove: bool = True) -> None:
        self.db.close()
        if remove:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


__all__ = [
    "FAILED",
    "SUCCESS",
    "UNPROCESSED",
    "Matcher",
    "OrderedMatch",
    "OutOfOrder",
    "digest",
    "parse_records",
    "record_digests",
]
