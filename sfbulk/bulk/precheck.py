"""Checks on a load's input made before any job exists in Salesforce.

A header Salesforce will refuse fails every batch (``InvalidBatch : Field name not found``), after
the whole file was uploaded, and leaves a closed job with nothing in it. These checks read only
the header row, so a bad file is refused in milliseconds with a message naming the file, the
column and the flag to fix:

* ``update``, ``delete`` and ``hardDelete`` need an ``Id`` column; ``upsert`` needs the
  ``--external-id`` column;
* every column needs a name, and no name may appear twice; Salesforce field names ignore case,
  so ``Email`` and ``email`` are the same column;
* a success or error file written by ``sfbulk load`` (``sf__Id``, ``sf__Created``, ``sf__Error``
  columns) is taken as input as it is: ``sf__Id`` is sent as ``Id`` (update, delete, hardDelete,
  and upsert on ``Id``) when there is no ``Id`` column, and the ``sf__`` columns are not sent.
  This is "load, then update (or delete) what was loaded". For delete and hardDelete only the id
  is sent, as Salesforce wants.

Everything here is a pure function of the header (plus :func:`check_file`, which reads it), so it
is unit-tested without a server.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from sfbulk.bulk.csvsplit import read_header
from sfbulk.bulk.results import RESULT_COLUMNS
from sfbulk.errors import BulkInputError

_RESULT_KEYS = {name.lower() for name in RESULT_COLUMNS}
_NEEDS_ID = {"update": "update", "delete": "delete", "hardDelete": "delete"}


@dataclass(frozen=True)
class InputPlan:
    """What is sent for a file's header: all columns unchanged, or a projection of them.

    ``keep`` lists the file's column indexes sent, in order (``None``: every column, the records
    sent byte for byte); ``send`` is the header sent; ``note`` says what was changed, for the user.
    """

    fields: tuple[str, ...]
    send: tuple[str, ...]
    keep: tuple[int, ...] | None = None
    note: str = ""

    def header_line(self) -> bytes:
        """The UTF-8 header line sent (minimal quoting, LF)."""
        return _write([list(self.send)])

    def project(self, body: bytes) -> bytes:
        """UTF-8 records (as the splitter sends them) -> the same records with only the kept columns.

        Used for the batch sent and again for the rows copied to the result files, so both agree.
        """
        if self.keep is None:
            return body
        keep = self.keep
        rows = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
        return _write([[row[i] if i < len(row) else "" for i in keep] for row in rows if row])


def _write(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def _listing(fields: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(f or "(empty)" for f in fields[:limit])
    return shown + (f", ... ({len(fields)} columns)" if len(fields) > limit else "")


def check_header(
    fields: Sequence[str], *, operation: str, external_id: str | None = None, source: str = "the input"
) -> InputPlan:
    """Refuse a header Salesforce would refuse; return what to send.

    Raises :class:`~sfbulk.errors.BulkInputError` (a usage/input error: exit status 2) naming
    ``source``, the column and the flag.
    """
    fields = tuple(fields)
    seen: dict[str, int] = {}
    for n, name in enumerate(fields, 1):
        key = name.strip().lower()
        if not key:
            raise BulkInputError(
                f"{source}: column {n} of the header has no name (header: {_listing(fields)}); "
                "name it after a field of the object, or remove the column"
            )
        if key in seen:
            first = fields[seen[key] - 1]
            same = f"{first!r} and {name!r}" if first != name else f"both {name!r}"
            raise BulkInputError(
                f"{source}: columns {seen[key]} and {n} are {same}"
                f"{' (Salesforce field names ignore case)' if first != name else ''}; keep one of them"
            )
        seen[key] = n
    keys = [f.strip().lower() for f in fields]
    ours = [i for i, k in enumerate(keys) if k in _RESULT_KEYS]
    keep: list[int] = list(range(len(fields)))
    send = list(fields)
    note = ""
    if ours:
        keep, send, note = _from_result_file(fields, keys, operation, external_id)
    send_keys = [s.strip().lower() for s in send]
    if operation in _NEEDS_ID and "id" not in send_keys:
        raise BulkInputError(
            f"{source}: --operation {operation} needs an Id column with the ids of the records to "
            f"{_NEEDS_ID[operation]}; the header has: {_listing(fields)}"
        )
    if operation == "upsert":
        if not external_id:
            raise BulkInputError(
                "--operation upsert needs --external-id naming the external id field "
                "(e.g. --external-id Email__c)"
            )
        if external_id.strip().lower() not in send_keys:
            raise BulkInputError(
                f"{source}: --operation upsert --external-id {external_id} needs a {external_id} column "
                f"(the value records are matched on); the header has: {_listing(fields)}"
            )
    if keep == list(range(len(fields))) and send == list(fields):
        return InputPlan(fields, fields)
    return InputPlan(fields, tuple(send), tuple(keep), note)


def _from_result_file(
    fields: tuple[str, ...], keys: list[str], operation: str, external_id: str | None
) -> tuple[list[int], list[str], str]:
    """A success/error file of ours as input: which columns to send, under which names."""
    id_col = keys.index("id") if "id" in keys else None
    sf_id = keys.index("sf__id") if "sf__id" in keys else None
    rename = (
        sf_id is not None
        and id_col is None
        and (
            operation in _NEEDS_ID or (operation == "upsert" and (external_id or "").strip().lower() == "id")
        )
    )
    keep: list[int] = []
    send: list[str] = []
    for i, (name, key) in enumerate(zip(fields, keys, strict=True)):
        if key in _RESULT_KEYS and not (rename and i == sf_id):
            continue
        if operation in ("delete", "hardDelete") and not (key == "id" or (rename and i == sf_id)):
            continue
        keep.append(i)
        send.append("Id" if rename and i == sf_id else name)
    dropped = [f for i, f in enumerate(fields) if i not in keep]
    parts = []
    if rename:
        parts.append(f"{fields[sf_id]} is sent as Id")  # type: ignore[index]
    if dropped:
        parts.append(f"not sent: {', '.join(dropped)}")
    return keep, send, "a result file of sfbulk load as input: " + "; ".join(parts)


def check_file(
    source: BinaryIO,
    name: str,
    *,
    operation: str,
    external_id: str | None = None,
    encoding: str = "utf-8",
    nul: str = "strip",
) -> InputPlan:
    """Read the header of the open file ``source`` (then rewind it) and :func:`check_header` it."""
    header = read_header(source, encoding=encoding, nul=nul)
    source.seek(0)
    fields = next(csv.reader(io.StringIO(header.decode("utf-8"), newline="")), [])
    return check_header(fields, operation=operation, external_id=external_id, source=name)


def check_outputs(source: str, *outputs: str) -> None:
    """Refuse a result file that is the input itself: writing it would destroy the rows being read."""
    for out in outputs:
        if os.path.exists(out) and os.path.samefile(source, out):
            raise BulkInputError(f"{out} is the input file; give another --success / --errors path")


__all__ = ["InputPlan", "check_file", "check_header", "check_outputs"]
