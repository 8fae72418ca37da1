"""Split a CSV byte stream into Bulk API batches without loading it whole.

Salesforce's Bulk API 1.0 takes at most 10,000 records and 10,000,000 characters per batch
(bulk-api.md §6). Peers get the tail wrong (simple-salesforce #693 drops a lone last record) or
split inside quoted fields (ForceCLI #439). This splitter works on bytes, never decodes the whole
input, and finds record boundaries by quote parity: a newline ends a record only when the number
of ``"`` seen since the record began is even (RFC 4180 escapes a quote by doubling it, so parity
is exact for well-formed input).

Every batch is the header line plus a contiguous run of records, so a batch can be found again in
the source file by its byte range (``start``, ``end``). That is how the result writer pairs each
result row with its input row without keeping the input in memory.

Decisions (documented in docs/bulk.md):

* The limit is applied to the **bytes** sent, header included. UTF-8 has at least one byte per
  character, so this also keeps every batch under 10,000,000 characters and under the 10 MB file
  limit. For other input encodings the byte budget is divided by 3 (one cp1252/latin-1 byte may
  become up to three UTF-8 bytes) so the transcoded batch still fits.
* A UTF-8 byte-order mark at the start is dropped (else Salesforce sees a field named ``\\ufeffId``).
* NUL bytes cannot be stored in Salesforce and break CSV parsers: they are **stripped**, and the
  count is reported (``nul_count``) so the CLI can warn. Set ``nul="reject"`` to fail instead.
* Blank lines (only ``\\n``, ``\\r\\n`` or ``\\r``) between records are skipped and counted: Salesforce would
  otherwise return a result for them or not, breaking the row-to-result mapping. A batch never
  spans a skipped line, so its byte range stays contiguous.
* A record ends at LF, CRLF or a lone CR outside quotes (Excel's "CSV (Macintosh)" ends records
  with CR; files that mix the three are read too). CRLF and LF record terminators are sent
  unchanged (Salesforce accepts both); a lone-CR terminator is sent as LF (see :func:`transform`).
  Line breaks inside quoted values are data and are never touched.
* Invalid input bytes for the declared encoding raise :class:`~sfbulk.errors.BulkInputError` naming the
  line, before anything of that batch is sent.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from sfbulk.errors import BulkInputError

MAX_RECORDS = 10_000
MAX_CHARS = 10_000_000
READ_SIZE = 4 << 20
_BOM = codecs.BOM_UTF8
_EOL = re.compile(rb"[\r\n]").search  # a record ends at LF, CRLF or a lone CR (outside quotes)
_LONE_CR_RE = re.compile(rb"\r(?!\n)")
_LONE_CR = _LONE_CR_RE.finditer
_FIND_LONE_CR = _LONE_CR_RE.search


@dataclass(frozen=True)
class Batch:
    """One batch ready to send: ``data`` is the UTF-8 header line plus ``rows`` records."""

    index: int
    first_row: int  # 0-based index of the batch's first data record in the whole input
    rows: int
    start: int  # byte range of the records in the source (header excluded)
    end: int
    data: bytes


class Columns(Protocol):
    """Which columns are sent (see :class:`sfbulk.bulk.precheck.InputPlan`)."""

    @property
    def keep(self) -> tuple[int, ...] | None: ...

    def header_line(self) -> bytes: ...

    def project(self, body: bytes) -> bytes: ...


class _Reader:
    """Turns a binary file or an iterable of byte chunks into a read(n) source."""

    def __init__(self, source: BinaryIO | Iterable[bytes]) -> None:
        if hasattr(source, "read"):
            self._read: Callable[[int], bytes] = source.read
            self._it: Iterator[bytes] | None = None
        else:
            self._it = iter(source)

    def read(self) -> bytes:
        if self._it is None:
            return self._read(READ_SIZE)
        for chunk in self._it:
            if chunk:
                return bytes(chunk)
        return b""


def check_encoding(encoding: str) -> str:
    """Return the codec's canonical name; reject encodings where ``"``, ``,`` and ``\\n`` are not single ASCII bytes."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise BulkInputError(
            f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or cp1252"
        ) from None
    if '",\r\n'.encode(info.name) != b'",\r\n' or "a".encode(info.name) != b"a":
        raise BulkInputError(
            f"encoding {encoding!r} is not ASCII-compatible; convert the file to UTF-8 first "
            "(for example: iconv -f UTF-16 -t UTF-8 in.csv > out.csv)"
        )
    return info.name


def transform(raw: bytes, encoding: str, *, nul: str = "strip", where: str = "") -> tuple[bytes, int]:
    """Source bytes -> UTF-8 bytes to send, and the number of NUL bytes removed.

    Shared by the splitter and the result writer so both see exactly the same rows. ``raw`` must
    start at a record boundary: a lone CR that ends a record (outside quotes) becomes LF, since
    Salesforce documents LF and CRLF line ends only; CR, LF and CRLF inside quoted values are data
    and stay as they are.
    """
    if b"\r" in raw and _FIND_LONE_CR(raw):
        raw = _lone_cr_to_lf(raw)
    nuls = raw.count(b"\0")
    if nuls:
        if nul == "reject":
            line = raw[: raw.index(b"\0")].count(b"\n") + 1
            raise BulkInputError(
                f"NUL byte in the input{where} (line {line} of that batch); "
                "remove it or load with NUL stripping (the default)"
            )
        raw = raw.replace(b"\0", b"")
    if encoding == "utf-8":
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise BulkInputError(
                f"the input is not valid UTF-8{where} (line {line} of that batch, byte 0x{raw[exc.start]:02x}); "
                "pass --encoding with the file's encoding, e.g. --encoding cp1252"
            ) from None
        return raw, nuls
    try:
        return raw.decode(encoding).encode("utf-8"), nuls
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BulkInputError(
            f"the input is not valid {encoding}{where} (line {line} of that batch)"
        ) from None


def _lone_cr_to_lf(raw: bytes) -> bytes:
    """Lone CRs that end records (an even count of quotes before them) -> LF."""
    if b'"' not in raw:  # no quoted values: every lone CR ends a record
        return _LONE_CR_RE.sub(b"\n", raw)
    out: list[bytes] = []
    done = counted = quotes = 0
    for match in _LONE_CR(raw):
        at = match.start()
        quotes += raw.count(b'"', counted, at)
        counted = at
        if not quotes & 1:
            out.append(raw[done:at])
            out.append(b"\n")
            done = at + 1
    if not out:
        return raw
    out.append(raw[done:])
    return b"".join(out)


class CsvSplitter:
    """Iterate over :class:`Batch` objects cut from a CSV byte stream.

    ``max_records`` and ``max_chars`` default to Salesforce's limits and may only be lowered.
    After iteration, ``rows``, ``nul_count`` and ``blank_lines`` describe the whole input.
    """

    def __init__(
        self,
        source: BinaryIO | Iterable[bytes],
        *,
        max_records: int = MAX_RECORDS,
        max_chars: int = MAX_CHARS,
        encoding: str = "utf-8",
        nul: str = "strip",
        columns: Columns | None = None,
    ) -> None:
        if not 1 <= max_records <= MAX_RECORDS:
            raise BulkInputError(
                f"batch size must be between 1 and {MAX_RECORDS:,} records, got {max_records}"
            )
        if not 2 <= max_chars <= MAX_CHARS:
            raise BulkInputError(
                f"batch character limit must be between 2 and {MAX_CHARS:,}, got {max_chars}"
            )
        if nul not in ("strip", "reject"):
            raise BulkInputError(f"nul must be 'strip' or 'reject', got {nul!r}")
        self.encoding = check_encoding(encoding)
        self.max_records = max_records
        self.max_bytes = max_chars if self.encoding == "utf-8" else max_chars // 3
        self.nul = nul
        self._reader = _Reader(source)
        # Only some columns sent (a result file as input): records are rewritten, not copied.
        self.columns = columns if columns is not None and columns.keep is not None else None
        self.header: bytes = b""  # UTF-8 header line, with its line terminator
        self.header_raw: bytes = b""  # as in the source
        self.data_start = 0  # byte offset of the first record in the source
        self.rows = 0
        self.nul_count = 0
        self.blank_lines = 0
        self.batches = 0
        self._header_only = False  # read_header(): stop once the header line is read

    # -- scanning and batching ----------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        buf = b""
        base = 0  # source offset of buf[0]
        batch_start = 0  # start of the current batch's records within buf
        batch_rows = 0
        pos = 0  # start of the current record within buf
        scan = 0  # where to continue looking for a newline
        quotes = 0  # quotes seen in the current record before scan
        have_header = False
        hdr_len = 0
        eof = False
        first = True
        max_rows, max_bytes = self.max_records, self.max_bytes
        slow_until = 0  # buf offset before which the fast path found something to look at record by record
        while True:
            if have_header and scan == pos and pos >= slow_until and 0 < batch_rows < max_rows:
                # Fast path: a run of plain one-line records, taken as a whole (see _plain_lines).
                want = max_rows - batch_rows
                budget = max_bytes - hdr_len - (pos - batch_start)
                taken, end, looked_at = _plain_lines(buf, pos, want, budget)
                if taken:
                    batch_rows += taken
                    self.rows += taken
                    pos = scan = end
                if taken < want:
                    slow_until = looked_at
                if taken:
                    continue
            m = _EOL(buf, scan)
            last = m is None
            nl = len(buf) if m is None else m.start()
            if m is not None:
                q = buf.count(b'"', scan, nl)
                if (quotes + q) & 1:  # the line break is inside a quoted value
                    quotes += q
                    scan = nl + 1
                    continue
                if buf[nl] == 10:  # \n
                    end = nl + 1
                elif nl + 1 < len(buf):  # \r: CRLF, or a lone CR (Excel's "CSV (Macintosh)")
                    end = nl + 2 if buf[nl + 1] == 10 else nl + 1
                elif eof:
                    end = nl + 1
                else:
                    end = -1  # a \r at the end of what was read: is it CRLF? read on
            if m is None or end < 0:
                if not eof:
                    chunk = self._reader.read()
                    if first and chunk:
                        first = False
                        while len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                            more = self._reader.read()
                            if not more:
                                break
                            chunk += more
                        if chunk.startswith(_BOM):
                            chunk = chunk[len(_BOM) :]
                            base = len(_BOM)
                            self.data_start = base
                    if chunk:
                        quotes += buf.count(b'"', scan, nl)
                        keep = batch_start if have_header else pos
                        buf = buf[keep:] + chunk
                        base += keep
                        batch_start -= keep
                        pos -= keep
                        slow_until -= keep
                        scan = nl - keep
                        continue
                    eof = True
                    if m is not None:
                        continue  # the \r was the input's last byte: a lone CR after all
                if pos >= len(buf):
                    break
                if (quotes + buf.count(b'"', scan)) & 1:
                    raise BulkInputError(
                        f"the input ends inside a quoted field (record starting at byte {base + pos}); "
                        "a closing quote is missing"
                    )
                end = len(buf)
            # A complete record: buf[pos:end]
            if end - pos <= 2 and buf[pos:end] in (b"\n", b"\r\n", b"\r"):
                self.blank_lines += 1
                if have_header and batch_rows:
                    yield self._emit(buf, base, batch_start, pos, batch_rows)
                    batch_rows = 0
                batch_start = end
            elif not have_header:
                have_header = True
                self.header_raw = buf[pos:end]
                if not self.header_raw.endswith((b"\n", b"\r")):
                    self.header_raw += b"\n"
                self.header, nuls = transform(self.header_raw, self.encoding, nul=self.nul, where=" header")
                self.nul_count += nuls
                hdr_len = len(self.header)  # the file's header: never shorter than the one sent
                if self.columns is not None:
                    self.header = self.columns.header_line()
                self.data_start = base + end
                batch_start = end
            else:
                if batch_rows and (batch_rows >= max_rows or hdr_len + end - batch_start > max_bytes):
                    yield self._emit(buf, base, batch_start, pos, batch_rows)
                    batch_start = pos
                    batch_rows = 0
                if hdr_len + end - pos > max_bytes:
                    raise BulkInputError(
                        f"record {self.rows + 1} (byte {base + pos}) is {end - pos:,} bytes: with the header it "
                        f"exceeds the batch limit of {max_bytes:,}; Salesforce cannot take it in one batch"
                    )
                batch_rows += 1
                self.rows += 1
            pos = scan = end
            quotes = 0
            if last:
                break
            if self._header_only and have_header:
                return
        if not have_header:
            raise BulkInputError("the input is empty: a CSV header line naming the fields is required")
        if batch_rows:
            yield self._emit(buf, base, batch_start, pos, batch_rows)

    def sent_records(self, raw: bytes) -> bytes:
        """Source bytes of whole records -> the UTF-8 records as sent (how results find them again)."""
        body, _ = transform(raw, self.encoding, nul=self.nul)
        return body if self.columns is None else self.columns.project(body)

    def _emit(self, buf: bytes, base: int, start: int, end: int, rows: int) -> Batch:
        raw = buf[start:end]
        if not raw.endswith((b"\n", b"\r")):
            raw += b"\n"  # the file's last record had no line terminator
        first = self.rows - rows + 1  # 1-based data rows of this batch, the header not counted
        body, nuls = transform(
            raw,
            self.encoding,
            nul=self.nul,
            where=f" in batch {self.batches + 1} (data rows {first:,} to {self.rows:,})",
        )
        self.nul_count += nuls
        if self.columns is not None:
            body = self.columns.project(body)
        batch = Batch(
            index=self.batches,
            first_row=self.rows - rows,
            rows=rows,
            start=base + start,
            end=base + end,
            data=self.header + body,
        )
        self.batches += 1
        return batch


def _plain_lines(buf: bytes, pos: int, want: int, budget: int) -> tuple[int, int, int]:
    """Up to ``want`` records from ``buf[pos:]`` that are each one complete, non-blank line with an
    even number of quotes, within ``budget`` bytes: ``(records, end offset, offset looked up to)``.

    Such a line is a whole record by the same quote-parity rule as the record-by-record scan, so
    taking a run of them at once (bytes.split in C) gives the same batches, only faster. The first
    line that is blank, has an odd quote count (a quoted line break) or holds a lone CR (a CR-only
    record end, or a CR in a quoted value) stops the run; everything up to ``offset looked up to``
    is then left to the record-by-record scan.
    """
    if budget <= 0 or want <= 0:
        return 0, pos, pos
    seg = buf[pos : pos + budget]
    cr_only = b"\n" not in seg and b"\r" in seg  # Excel's "CSV (Macintosh)": records end with CR
    parts = seg.split(b"\r" if cr_only else b"\n", want)
    lines = parts[:-1]  # complete lines; the last part is what follows the last newline taken
    looked = len(seg) - len(parts[-1])
    if cr_only and lines and looked == len(seg):
        # The segment ends with a CR: an LF may follow it (CRLF). Leave that line to the scan.
        looked -= len(lines.pop()) + 1
    taken = len(lines)
    if not taken:
        # No line break in the whole budget: a CR-only file, or one huge record. Leave all of it to
        # the record-by-record scan rather than slicing the budget again for every record.
        return 0, pos, pos + len(seg)
    lone = _FIND_LONE_CR(seg, 0, looked) if b"\r" in seg and not cr_only else None
    if lone is not None:
        # A lone CR: a record end (CR-only or mixed line ends) or quoted data; the scan decides.
        taken = seg.count(b"\n", 0, lone.start())
        looked = len(seg)
    if b"" in lines:
        taken = min(taken, lines.index(b""))
    if b"\r" in lines:
        taken = min(taken, lines.index(b"\r"))
    if b'"' in seg:
        odd = [line.count(b'"') & 1 for line in lines[:taken]]
        if 1 in odd:
            taken = odd.index(1)
    end = looked if taken == len(lines) else sum(map(len, lines[:taken])) + taken
    return taken, pos + end, pos + looked


def split_file(path: str, **options: object) -> Iterator[Batch]:
    """Convenience: split the CSV file at ``path`` (see :class:`CsvSplitter` for options)."""
    with open(path, "rb") as fh:
        yield from CsvSplitter(fh, **options)  # type: ignore[arg-type]


def read_header(source: BinaryIO | Iterable[bytes], *, encoding: str = "utf-8", nul: str = "strip") -> bytes:
    """The UTF-8 header line of a CSV stream, read exactly as :class:`CsvSplitter` reads it (BOM,
    leading blank lines, quoted line breaks, any line end), without reading the records.

    This is what the checks before a job is created look at (:mod:`sfbulk.bulk.precheck`).
    """
    splitter = CsvSplitter(source, encoding=encoding, nul=nul)
    splitter._header_only = True
    for _ in splitter:
        pass
    return splitter.header


def read_range(path: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of a file: how a batch's input rows are found again for its results."""
    with open(path, "rb") as fh:
        fh.seek(start)
        return fh.read(end - start)


__all__ = [
    "MAX_CHARS",
    "MAX_RECORDS",
    "Batch",
    "Columns",
    "CsvSplitter",
    "check_encoding",
    "read_header",
    "read_range",
    "split_file",
    "transform",
]
