"""A durable, append-only journal of one load or extract, so that re-running the command resumes it.

Why: a bulk job outlives the process that drives it. Without a record of what Salesforce already
accepted, a run killed after 34 of 100 batches and started again loads those 34 batches twice.
The journal is a JSON-lines file next to the command's result files. Each record is written and
fsync'ed *before* the step it enables is acted on (the job id before anything is sent to it, a
batch id before its results are awaited, a merged batch before its work file is deleted), so
after kill -9 or a power cut the journal never claims more than happened, and at most what was
in flight when the process died is unknown (a batch upload is then found again with listBatches).

Records are dicts with a ``t`` (type) key; the first is always ``{"t": "start", ...}`` holding
the command's identity (object, operation, input fingerprint, ...) so a different command or a
changed input is refused instead of resumed. A power cut can leave the last line torn (no
newline, or garbage); it is dropped and overwritten. Damage anywhere else is reported.

One process at a time: a ``filelock`` lock next to the journal makes a second concurrent run of
the same command stop at once instead of resuming the same job in parallel.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from typing import Any

from sfbulk.errors import BulkError, BulkInputError

log = logging.getLogger("sfbulk.bulk.journal")

VERSION = 1
_HASH_CHUNK = 4 << 20


def journal_path(result_path: str) -> str:
    """Where the journal of the command writing ``result_path`` (success file or ``--out``) lives."""
    return result_path + ".journal"


def fingerprint(path: str) -> dict[str, Any]:
    """Size and SHA-256 of the whole file.

    A full hash rather than size + mtime: it runs at ~1 GB/s (13 ms for a 14 MB, 200,000-row file,
    ~1 s for a 1 GB one, against minutes to load it), catches an edit that keeps the size and the
    mtime (``cp -p``, editors that restore times), and does not refuse a file that was only copied
    or touched, or the ``--retry-failed`` input that is regenerated identically on every run.
    """
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return {"size": size, "sha256": digest.hexdigest()}


def read_records(path: str) -> tuple[list[dict[str, Any]], int]:
    """The journal's records and the byte length of its intact part (a torn last line excluded).

    Raises BulkError when a record other than the last is unreadable (the file was damaged or
    edited): resuming from it could send rows twice.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")
    for n, line in enumerate(lines):
        last = n == len(lines) - 1
        if last:
            if line:  # no newline after it: the write was torn (or garbage after a power cut)
                log.warning("journal %s: dropping a torn last record (%d bytes)", path, len(line))
            break
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "t" not in record:
                raise ValueError("not a journal record")
        except ValueError:
            if n == len(lines) - 2 and not any(lines[n + 1 :]):
                log.warning("journal %s: dropping an unreadable last record", path)
                break
            raise BulkError(
                f"the journal {path} is damaged at line {n + 1}; it cannot be resumed safely: "
                "pass --restart to abort its job and start over"
            ) from None
        records.append(record)
        good += len(line) + 1
    return records, good


class Journal:
    """An open journal: the records read back (when resuming) and :meth:`append` for new ones.

    Use :func:`open_journal`. Thread-safe: upload and download threads append concurrently.
    """

    def __init__(self, path: str, records: list[dict[str, Any]], lock: Any) -> None:
        self.path = path
        self.records = records
        self.resumed = bool(records)
        self._lock = lock
        self._mutex = threading.Lock()
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    @property
    def start(self) -> dict[str, Any] | None:
        return self.records[0] if self.records else None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("t") == kind]

    def last(self, kind: str) -> dict[str, Any] | None:
        found = self.of_type(kind)
        return found[-1] if found else None

    def append(self, record: dict[str, Any], *, durable: bool = True) -> None:
        """Write ``record`` as one line; with ``durable`` (the default) also fsync it, and every record
        before it, before returning: the step it describes may now happen.

        A record written without ``durable`` survives kill -9 (it is in the OS's cache once written)
        but maybe not a power cut; use it only where losing the record costs redoing work, never
        doing work twice (the next durable record covers it anyway).
        """
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"
        with self._mutex:
            if self._fd is None:
                raise BulkError(f"the journal {self.path} is closed")
            first = not self.records
            os.write(self._fd, line)  # O_APPEND: one write per record, never interleaved
            if durable:
                os.fsync(self._fd)
            if first:
                _fsync_dir(self.path)  # the journal's own directory entry survives a power cut
            self.records.append(record)

    def close(self) -> None:
        """Release the journal, keeping it (the run did not finish: a re-run resumes)."""
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        self._release()

    def finish(self) -> None:
        """The work it describes is complete: delete the journal so no later run mistakes it for unfinished."""
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            _fsync_dir(self.path)
        self._release(remove=True)

    def _release(self, remove: bool = False) -> None:
        if self._lock is None:
            return
        if remove:
            try:
                os.unlink(self._lock.lock_file)  # no litter next to the results; we still hold it
            except OSError:
                pass
        self._lock.release()
        self._lock = None


def open_journal(path: str) -> Journal:
    """Lock and open the journal at ``path``: its records if it exists (a torn tail cut off), else empty.

    For ``--restart`` the caller aborts the old job, then empties the journal with :func:`discard`.
    """
    import filelock  # here, not at module level: start-up time

    lock = filelock.FileLock(path + ".lock", timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise BulkInputError(
            f"another sfbulk run is working on the same files (its journal {path} is locked); "
            "wait for it to finish, or stop it first"
        ) from None
    except OSError as exc:
        raise BulkInputError(
            f"cannot create the journal next to the result files: {exc.strerror}: {path}"
        ) from None
    try:
        records: list[dict[str, Any]] = []
        if os.path.exists(path):
            records, good = read_records(path)
            if os.path.getsize(path) != good:
                with open(path, "r+b") as fh:  # cut the torn tail off before appending after it
                    fh.truncate(good)
                    fh.flush()
                    os.fsync(fh.fileno())
            if records and records[0].get("t") != "start":
                raise BulkError(
                    f"the journal {path} does not start with its command; pass --restart to start over"
                )
            if records and records[0].get("v") != VERSION:
                raise BulkError(f"the journal {path} was written by another sfbulk version; pass --restart")
        journal = Journal(path, records, lock)
    except BaseException:
        lock.release()
        raise
    return journal


def work_folder(journal: Journal, identity: dict[str, Any], near: str, **start: Any) -> str:
    """The run's work folder: made next to ``near`` and recorded in a new journal's ``start`` record
    (with the command's ``identity`` and ``start``'s other fields), or the one an earlier run recorded."""
    if journal.start is None:
        import tempfile

        work = tempfile.mkdtemp(prefix=".sfbulk-", dir=os.path.dirname(os.path.abspath(near)))
        journal.append({"t": "start", "v": VERSION, "cmd": identity, **start, "work": work})
        return work
    work = str(journal.start["work"])
    os.makedirs(work, exist_ok=True)
    return work


def discard(journal: Journal) -> Journal:
    """Empty ``journal`` (after ``--restart`` aborted its job), keeping the lock: a fresh run follows."""
    with journal._mutex:
        if journal._fd is not None:
            os.close(journal._fd)
        os.unlink(journal.path)
        journal.records = []
        journal.resumed = False
        journal._fd = os.open(journal.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return journal


def fsync_file(path: str) -> None:
    """Flush a finished work file to disk before a journal record says it is complete."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_durably(src: str, dest: str) -> None:
    """Rename a complete work file onto its final name, the rename itself made durable."""
    os.replace(src, dest)
    _fsync_dir(dest)


def annotate_unfinished(exc: BaseException, job_id: str, journal: Journal) -> None:
    """Name the job and the journal on an error leaving a load or extract unfinished (the CLI prints them)."""
    if not hasattr(exc, "job_id") or getattr(exc, "job_id", None) is None:
        try:
            exc.job_id = job_id  # type: ignore[attr-defined]
        except AttributeError:
            pass
    try:
        exc.journal = journal.path  # type: ignore[attr-defined]
    except AttributeError:
        pass


__all__ = [
    "VERSION",
    "Journal",
    "annotate_unfinished",
    "discard",
    "fingerprint",
    "fsync_file",
    "journal_path",
    "open_journal",
    "read_records",
    "replace_durably",
    "work_folder",
]
