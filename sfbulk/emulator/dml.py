"""insert / update / upsert / delete / hardDelete of one batch, with per-row results like Salesforce's.

A result row is ``[id, success, created, errors]`` with errors ``[[statusCode, message, [fields]]]``.
Rows are converted outside the database lock; existence/uniqueness checks and writes happen in one
write transaction per batch (bulk ``executemany``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from .apierrors import BatchFailure
from .ids import make_ids18, normalize_id
from .payloads import MISSING, NULL, Payload
from .schema import (
    Field,
    FieldValueError,
    Schema,
    SObject,
    make_column_check,
    make_converter,
    now_iso,
)
from .store import Store

IN_CHUNK = 900
#: rows per multi-row INSERT of the clean-insert path, and the most parameters one such statement binds
ROWS_PER_INSERT = 64
MAX_BOUND_PER_INSERT = 999
_READONLY_MSG = (
    "Unable to create/update fields: {0}. Please check the security settings of this field and verify "
    "that it is read/write for your profile or permission set."
)


@dataclass
class Column:
    index: int
    name: str  # as written in the payload
    field: Field | None  # the target field (the reference field for a relationship column)
    convert: Callable[[Any], Any] | None
    lookup: tuple[SObject, Field] | None = None  # relationship column: (target object, key field)
    readonly: bool = False
    text_limit: int | None = None  # plain text field: a str cell within this length is stored as is
    column_check: Callable[[Sequence[str]], bool] | None = (
        None  # text field: whole-column test (make_column_check)
    )


def resolve_columns(schema: Schema, obj: SObject, names: list[str], operation: str) -> list[Column]:
    """Map payload column names to fields; an unknown name fails the whole batch, as in Salesforce."""
    seen: set[str] = set()
    columns: list[Column] = []
    for i, name in enumerate(names):
        low = name.lower()
        if low in seen:
            raise BatchFailure(f"Duplicate field name: {name}")
        seen.add(low)
        if operation in ("delete", "hardDelete") and low != "id":
            continue  # only the Id column matters for deletes
        if "." in name:
            rel, _, key = name.partition(".")
            ref = obj.relationship(rel)
            target = schema.get(ref.reference_to) if ref is not None and ref.reference_to else None
            key_field = target.field(key) if target is not None else None
            if ref is None or target is None or key_field is None or not key_field.upsert_key:
                raise BatchFailure(f"Field name not found : {name}")
            columns.append(Column(i, name, ref, make_converter(key_field), (target, key_field)))
            continue
        f = obj.field(name)
        if f is None:
            raise BatchFailure(f"Field name not found : {name}")
        if not f.writable:  # a per-row error for each row that gives it a value, as on Salesforce
            columns.append(Column(i, name, f, None, readonly=True))
            continue
        plain = f.type in ("string", "textarea", "phone", "url") or (
            f.type == "picklist" and not f.restricted
        )
        columns.append(
            Column(
                i,
                name,
                f,
                make_converter(f),
                text_limit=(f.length or 255) if plain else None,
                column_check=make_column_check(f),
            )
        )
    return columns


_NONE: list[Any] = []  # shared empty list: never appended to (RowState replaces it)


class RowState:
    """One input row on its way to a result."""

    __slots__ = ("raw_id", "id", "values", "lookups", "errors", "created")

    def __init__(self) -> None:
        self.raw_id: str | None = None
        self.id: str | None = None
        self.values: dict[Field, Any] = {}
        self.lookups: list[tuple[Column, Any]] = _NONE  # replaced by a list on first use
        self.errors: list[list[Any]] = _NONE
        self.created = False

    def fail(self, code: str, message: str, fields: Iterable[str] = ()) -> None:
        if not self.errors:
            self.errors = [[code, message, list(fields)]]


def _convert_rows(obj: SObject, columns: list[Column], payload: Payload) -> list[RowState]:
    id_col = next((c for c in columns if c.field is not None and c.field.name == "Id"), None)
    id_index = id_col.index if id_col is not None else None
    # (index, field, text limit or -1, column) in a flat tuple for the hot loop
    plan = [
        (c.index, c.field, c.text_limit if c.text_limit is not None else -1, c)
        for c in columns
        if c is not id_col and c.field is not None
    ]
    missing, null = MISSING, NULL
    states: list[RowState] = []
    append = states.append
    for row in payload.rows:
        st = RowState()
        values = st.values
        readonly: list[str] = _NONE
        if id_index is not None:
            cell = row[id_index]
            if cell is not missing and cell is not null:
                st.raw_id = str(cell).strip()
        for index, f, limit, col in plan:
            assert f is not None
            cell = row[index]
            if cell is missing:
                continue
            if limit >= 0 and type(cell) is str and len(cell) <= limit:
                values[f] = cell
                continue
            if col.readonly:  # (readonly columns have no text limit: never stored above)
                if not readonly:
                    readonly = []
                readonly.append(f.name)
                continue
            if col.lookup is not None:
                if cell is not null:
                    if not st.lookups:
                        st.lookups = []
                    st.lookups.append((col, cell))
                else:
                    values[f] = None
                continue
            if cell is null:
                values[f] = None
                continue
            try:
                values[f] = col.convert(cell)  # type: ignore[misc]
            except FieldValueError as exc:
                st.fail(exc.status_code, exc.message, exc.fields)
        if readonly:  # one error naming every read-only field the row sets; it wins over value errors
            st.errors = [
                ["INVALID_FIELD_FOR_INSERT_UPDATE", _READONLY_MSG.format(", ".join(readonly)), readonly]
            ]
        append(st)
    return states


def _clean_insert_columns(
    obj: SObject, columns: list[Column], payload: Payload
) -> list[tuple[Field, Sequence[Any]]] | None:
    """Column-wise values of an insert batch in which no row can fail, or None (use the row path).

    Most insert batches are clean: every value fits its field, required fields are filled, and no
    column needs a database check (lookups, references, unique fields, an Id). For those, converting
    column by column and inserting with one ``executemany`` gives the same rows and results as the
    row-by-row path at a fraction of the cost. Anything that could produce a per-row error (or needs
    the database to decide) returns None, and the general path handles the whole batch.

    A text column of plain strings is first tested as a whole (`make_column_check`) and stored as it
    is when the test passes; otherwise, and for other types, each cell goes through the converter.
    """
    rows = payload.rows
    if not rows:
        return None
    for col in columns:
        f = col.field
        if (
            f is None
            or f.name == "Id"
            or col.lookup is not None
            or col.readonly
            or f.unique
            or f.type == "reference"
        ):
            return None
    missing, null = MISSING, NULL
    planned: list[tuple[Field, Sequence[Any]]] = []
    for col in columns:
        f = col.field
        assert f is not None
        cells = payload.column(col.index)
        check = col.column_check
        if check is not None and set(map(type, cells)) == {str} and check(cells):
            planned.append((f, cells))  # no empty cell, every value stored as is
            continue
        values: list[Any] = []
        append = values.append
        limit = col.text_limit
        convert = col.convert
        assert convert is not None
        for cell in cells:
            if cell is missing or cell is null:
                append(None)
                continue
            if limit is not None and type(cell) is str and len(cell) <= limit:
                append(cell)
                continue
            try:
                append(convert(cell))
            except FieldValueError:
                return None
        if f.default is not None:
            default = make_converter(f)(f.default)
            values = [default if v is None else v for v in values]
        elif f.required and None in values:
            return None  # REQUIRED_FIELD_MISSING for some row
        planned.append((f, values))
    present = {f for f, _ in planned}
    if any(f.required and f.default is None and f not in present for f in obj.data_fields):
        return None  # every row misses a required field
    return planned


def _chunks(items: list[Any], size: int = IN_CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _select_in(conn: sqlite3.Connection, sql: str, values: list[Any]) -> list[tuple[Any, ...]]:
    """``sql`` has one ``{marks}`` placeholder for the IN list."""
    out: list[tuple[Any, ...]] = []
    for part in _chunks(list(dict.fromkeys(values))):
        out.extend(conn.execute(sql.format(marks=",".join("?" * len(part))), part).fetchall())
    return out


class BatchResults:
    """The per-row results of one batch: ``[id, success, created, errors]`` rows, or for a clean insert
    just the new ids (every row created), turned into rows or JSON only when asked."""

    def __init__(self, rows: list[list[Any]] | None = None, created_ids: list[str] | None = None):
        self._rows = rows
        self._created_ids = created_ids

    def rows(self) -> list[list[Any]]:
        if self._rows is None:
            self._rows = [[new_id, True, True, []] for new_id in self._created_ids or ()]
        return self._rows

    def __len__(self) -> int:
        return len(self._created_ids) if self._created_ids is not None else len(self.rows())

    def failed(self) -> int:
        return 0 if self._created_ids is not None else sum(1 for r in self.rows() if not r[1])

    def to_json(self) -> bytes:
        """``json.dumps(rows, separators=(",", ":"))`` as UTF-8; for new ids (only ``[0-9A-Za-z]``, nothing
        to escape) joined directly."""
        ids = self._created_ids
        if ids is not None and self._rows is None:
            return (
                ('[["' + '",true,true,[]],["'.join(ids) + '",true,true,[]]]').encode("ascii")
                if ids
                else b"[]"
            )
        return json.dumps(self.rows(), separators=(",", ":")).encode("utf-8")


class BatchWriter:
    """Applies one batch of one job to the store."""

    def __init__(
        self,
        store: Store,
        schema: Schema,
        obj: SObject,
        operation: str,
        user_id: str,
        external_id_field: str | None = None,
    ):
        self.store = store
        self.schema = schema
        self.obj = obj
        self.operation = operation
        self.user_id = user_id
        self.external_id_field = external_id_field
        self._batch_fields: set[Field] = set()

    # -------------------------------------------------------------------------------------------
    def run(self, payload: Payload) -> list[list[Any]]:
        """Apply the batch; one ``[id, success, created, errors]`` row per input row."""
        return self.apply(payload).rows()

    def apply(self, payload: Payload) -> BatchResults:
        """Apply the batch; its results in a form that is cheap for a clean insert (just the new ids)."""
        columns = resolve_columns(self.schema, self.obj, payload.columns, self.operation)
        self._batch_fields = {c.field for c in columns if c.field is not None}
        if self.operation == "insert":
            planned = _clean_insert_columns(self.obj, columns, payload)
            if planned is not None:
                count = len(payload.rows)
                # Ids are reserved in a short transaction and built outside it, so parallel batch
                # workers hold the database's write lock only for the insert itself.
                with self.store.write() as conn:
                    first = self.store.allocate(conn, self.obj.key_prefix, count)
                ids = make_ids18(self.obj.key_prefix, first, count)
                with self.store.write() as conn:
                    self.conn = conn
                    self.now = now_iso()
                    self._write_columns(planned, ids)
                return BatchResults(created_ids=ids)
        states = _convert_rows(self.obj, columns, payload)
        with self.store.write() as conn:
            self.conn = conn
            self.now = now_iso()
            if self.operation == "insert":
                self._insert(states)
            elif self.operation == "update":
                self._update(states, by_id=True)
            elif self.operation == "upsert":
                self._upsert(states)
            else:
                self._delete(states, hard=self.operation == "hardDelete")
        return BatchResults(
            [[st.id, not st.errors, st.created and not st.errors, st.errors] for st in states]
        )

    # ----------------------------------------------------------------------------- shared checks
    def _malformed(self, st: RowState, value: str) -> None:
        st.fail("MALFORMED_ID", f"{self.obj.name} ID: id value of incorrect type: {value}", ["Id"])

    def _normalize_ids(self, states: list[RowState], missing_message: str) -> None:
        for st in states:
            if st.errors:
                continue
            if st.raw_id is None:
                st.fail("MISSING_ARGUMENT", missing_message)
                continue
            norm = normalize_id(st.raw_id)
            if norm is None or norm[:3] != self.obj.key_prefix:
                self._malformed(st, st.raw_id)
            else:
                st.id = norm

    def _existing(self, ids: list[str]) -> dict[str, int]:
        """Id -> IsDeleted for the ids that exist."""
        rows = _select_in(
            self.conn, f'SELECT "Id", "IsDeleted" FROM {self.obj.table} WHERE "Id" IN ({{marks}})', ids
        )
        return {r[0]: r[1] for r in rows}

    def _resolve_lookups(self, states: list[RowState]) -> None:
        wanted: dict[tuple[str, str], list[Any]] = {}
        for st in states:
            for col, raw in st.lookups:
                target, key = col.lookup  # type: ignore[misc]
                wanted.setdefault((target.name, key.name), []).append(raw)
        found: dict[tuple[str, str], dict[str, list[str]]] = {}
        for (tname, kname), raws in wanted.items():
            target = self.schema.get(tname)
            assert target is not None
            key = target.field(kname)
            assert key is not None
            conv = make_converter(key)
            values = []
            for raw in raws:
                try:
                    values.append(conv(raw))
                except FieldValueError:
                    pass
            rows = _select_in(
                self.conn,
                f'SELECT {key.column}, "Id" FROM {target.table} '
                f'WHERE "IsDeleted" = 0 AND {key.column} IN ({{marks}})',
                values,
            )
            by_value: dict[str, list[str]] = {}
            for value, rid in rows:
                by_value.setdefault(str(value), []).append(rid)
            found[(tname, kname)] = by_value
        for st in states:
            for col, raw in st.lookups:
                target, key = col.lookup  # type: ignore[misc]
                matches = found[(target.name, key.name)].get(str(raw).strip(), [])
                if not matches:
                    st.fail(
                        "INVALID_FIELD",
                        f"Foreign key external ID: {raw} not found for field {key.name} "
                        f"in entity {target.name}",
                        [col.name],
                    )
                elif len(matches) > 1:
                    st.fail(
                        "INVALID_FIELD",
                        f"More than 1 record found for External ID field: {key.name} = {raw}",
                        [col.name],
                    )
                else:
                    st.values[col.field] = matches[0]  # type: ignore[index]

    def _check_references(self, states: list[RowState]) -> None:
        set_fields = self._batch_fields  # fields no column sets need no check
        refs = [f for f in self.obj.data_fields if f.type == "reference" and f in set_fields]
        if not refs:
            return
        by_prefix: dict[str, list[str]] = {}
        for st in states:
            if st.errors:
                continue
            for f in refs:
                value = st.values.get(f)
                if value is None:
                    continue
                norm = normalize_id(value)
                if norm is None:
                    st.fail("MALFORMED_ID", f"{f.name}: id value of incorrect type: {value}", [f.name])
                    continue
                target = self.schema.by_prefix(norm[:3])
                if target is None or (f.reference_to != "*" and target.name != f.reference_to):
                    st.fail(
                        "FIELD_INTEGRITY_EXCEPTION",
                        f"{f.name}: id value of incorrect type: {value}",
                        [f.name],
                    )
                    continue
                st.values[f] = norm
                by_prefix.setdefault(norm[:3], []).append(norm)
        alive: dict[str, int] = {}
        for prefix, ids in by_prefix.items():
            target = self.schema.by_prefix(prefix)
            assert target is not None
            for rid, deleted in _select_in(
                self.conn, f'SELECT "Id", "IsDeleted" FROM {target.table} WHERE "Id" IN ({{marks}})', ids
            ):
                alive[rid] = deleted
        for st in states:
            if st.errors:
                continue
            for f in refs:
                value = st.values.get(f)
                if value is None:
                    continue
                if value not in alive:
                    st.fail("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
                elif alive[value]:
                    st.fail("ENTITY_IS_DELETED", "entity is deleted", [f.name])

    def _check_unique(self, states: list[RowState]) -> None:
        for f in self.obj.data_fields:
            if not f.unique:
                continue
            pending = [st for st in states if not st.errors and st.values.get(f) is not None]
            if not pending:
                continue
            rows = _select_in(
                self.conn,
                f'SELECT {f.column}, "Id" FROM {self.obj.table} '
                f'WHERE "IsDeleted" = 0 AND {f.column} IN ({{marks}})',
                [st.values[f] for st in pending],
            )
            owner = {value: rid for value, rid in rows}
            for st in pending:
                value = st.values[f]
                holder = owner.get(value)
                if holder is not None and holder != st.id:
                    st.fail(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {f.name} duplicates value on record with id: {holder}",
                        [f.name],
                    )
                elif holder is None:
                    owner[value] = st.id or ""  # later rows of this batch collide with this one

    def _check_required(self, states: list[RowState], inserting: bool) -> None:
        required = [f for f in self.obj.data_fields if f.required]
        for st in states:
            if st.errors:
                continue
            if inserting:
                missing = [f.name for f in required if st.values.get(f) is None and f.default is None]
            else:
                missing = [f.name for f in required if f in st.values and st.values[f] is None]
            if missing:
                st.fail(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
                )

    # ----------------------------------------------------------------------------- operations
    def _insert(self, states: list[RowState]) -> None:
        for st in states:
            if st.raw_id and not st.errors:
                st.fail("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
        self._resolve_lookups(states)
        self._check_required(states, inserting=True)
        self._check_references(states)
        good = [st for st in states if not st.errors]
        first = self.store.allocate(self.conn, self.obj.key_prefix, len(good)) if good else 0
        for st, new_id in zip(good, make_ids18(self.obj.key_prefix, first, len(good)), strict=True):
            st.id = new_id
        self._check_unique(good)
        for st in good:
            if st.errors:
                st.id = None  # never written: no id in its result row
        self._write_inserts([st for st in good if not st.errors])

    def _write_inserts(self, rows: list[RowState]) -> None:
        """One executemany over the columns this batch sets; constants are SQL literals, not bound values."""
        if not rows:
            return
        present: dict[Field, None] = {}
        for st in rows:
            for f in st.values:
                present.setdefault(f, None)
        bound = list(present)
        sql = self._insert_sql(bound)
        defaults = {f: make_converter(f)(f.default) for f in bound if f.default is not None}
        if defaults:
            params = [
                (st.id, *[defaults.get(f) if (v := st.values.get(f)) is None else v for f in bound])
                for st in rows
            ]
        else:
            params = [(st.id, *[st.values.get(f) for f in bound]) for st in rows]
        self.conn.executemany(sql, params)
        for st in rows:
            st.created = True

    def _write_columns(self, planned: list[tuple[Field, Sequence[Any]]], ids: list[str]) -> None:
        """Insert rows given column-wise (the clean-insert fast path) under the given new ids.

        Rows go in groups of several per statement (one multi-row VALUES): SQLite's per-statement
        overhead and the per-row work of executemany are paid once per group instead of once per row.
        A group's parameters are its slice of each column, one column after the other.
        """
        bound = [f for f, _ in planned]
        columns = [ids, *(values for _, values in planned)]
        per_statement = max(1, min(ROWS_PER_INSERT, MAX_BOUND_PER_INSERT // len(columns)))
        count = len(ids)
        grouped = count - count % per_statement
        if grouped:
            self.conn.executemany(
                self._insert_sql(bound, per_statement),
                (
                    list(chain.from_iterable([c[start : start + per_statement] for c in columns]))
                    for start in range(0, grouped, per_statement)
                ),
            )
        if grouped < count:
            self.conn.executemany(self._insert_sql(bound), zip(*(c[grouped:] for c in columns), strict=True))

    def _insert_sql(self, bound: list[Field], rows: int = 1) -> str:
        """INSERT of ``rows`` rows binding the Id and ``bound``; defaults of other fields and system fields
        are literals. Parameters are numbered column-major: row r's value of column c is ``?(1 + c*rows + r)``."""
        constants = [f for f in self.obj.data_fields if f.default is not None and f not in bound]
        cols = (
            ['"Id"']
            + [f.column for f in bound]
            + [f.column for f in constants]
            + [
                '"IsDeleted"',
                '"CreatedDate"',
                '"LastModifiedDate"',
                '"SystemModstamp"',
                '"CreatedById"',
                '"LastModifiedById"',
            ]
        )
        literals = [_sql_literal(make_converter(f)(f.default)) for f in constants] + [
            "0",
            *(_sql_literal(v) for v in (self.now, self.now, self.now, self.user_id, self.user_id)),
        ]
        values = ", ".join(
            "(" + ", ".join([f"?{1 + c * rows + r}" for c in range(1 + len(bound))] + literals) + ")"
            for r in range(rows)
        )
        return f"INSERT INTO {self.obj.table} ({', '.join(cols)}) VALUES {values}"

    def _live_targets(self, states: list[RowState]) -> list[RowState]:
        """Rows (not yet failed) whose id must name a live record, each id once per batch; others fail."""
        targets = [st for st in states if not st.errors]
        existing = self._existing([st.id for st in targets])  # type: ignore[misc]
        seen: set[str] = set()
        for st in targets:
            state = existing.get(st.id)  # type: ignore[arg-type]
            if state is None:
                st.fail("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            elif state:
                st.fail("ENTITY_IS_DELETED", "entity is deleted")
            elif st.id in seen:
                st.fail("DUPLICATE_VALUE", f"Duplicate id in list: {st.id}")
            else:
                seen.add(st.id)  # type: ignore[arg-type]
        return targets

    def _update(self, states: list[RowState], by_id: bool) -> None:
        if by_id:
            self._normalize_ids(states, "Id not specified in an update call")
        targets = self._live_targets(states)
        self._resolve_lookups(targets)
        self._check_required(targets, inserting=False)
        self._check_references(targets)
        self._check_unique(targets)
        self._write_updates([st for st in targets if not st.errors])

    def _write_updates(self, rows: list[RowState]) -> None:
        groups: dict[tuple[Field, ...], list[tuple[Any, ...]]] = {}
        for st in rows:
            fields = tuple(st.values)
            groups.setdefault(fields, []).append(
                (*st.values.values(), self.now, self.now, self.user_id, st.id)
            )
        for fields, params in groups.items():
            sets = ", ".join(f"{f.column} = ?" for f in fields)
            sep = ", " if sets else ""
            self.conn.executemany(
                f'UPDATE {self.obj.table} SET {sets}{sep}"LastModifiedDate" = ?, "SystemModstamp" = ?, '
                f'"LastModifiedById" = ? WHERE "Id" = ?',
                params,
            )

    def _upsert(self, states: list[RowState]) -> None:
        key = self.obj.field(self.external_id_field or "")
        assert key is not None  # validated when the job was created
        if key.name == "Id":
            inserts = [st for st in states if not st.errors and st.raw_id is None]
            updates = [st for st in states if not st.errors and st.raw_id is not None]
            self._update(updates, by_id=True)
            self._insert(inserts)
            return
        pending: list[RowState] = []
        for st in states:
            if st.errors:
                continue
            if st.values.get(key) is None:
                st.fail("MISSING_ARGUMENT", f"{key.name} not specified")
            else:
                pending.append(st)
        counts: dict[Any, int] = {}
        for st in pending:
            counts[st.values[key]] = counts.get(st.values[key], 0) + 1
        for st in pending:
            if counts[st.values[key]] > 1:
                st.fail("DUPLICATE_VALUE", f"Duplicate external id specified: {st.values[key]}", [key.name])
        pending = [st for st in pending if not st.errors]
        rows = _select_in(
            self.conn,
            f'SELECT {key.column}, "Id" FROM {self.obj.table} '
            f'WHERE "IsDeleted" = 0 AND {key.column} IN ({{marks}})',
            [st.values[key] for st in pending],
        )
        matches: dict[Any, list[str]] = {}
        for value, rid in rows:
            matches.setdefault(value, []).append(rid)
        inserts, updates = [], []
        for st in pending:
            found = matches.get(st.values[key], [])
            if len(found) > 1:
                st.fail(
                    "DUPLICATE_EXTERNAL_ID",
                    f"{key.name}: more than one record found for external id field: [{', '.join(found)}]",
                    [key.name],
                )
            elif found:
                if st.raw_id is not None and normalize_id(st.raw_id) != found[0]:
                    self._malformed(st, st.raw_id)
                st.id = found[0]
                updates.append(st)
            else:
                inserts.append(st)
        self._update(updates, by_id=False)
        self._insert(inserts)

    def _delete(self, states: list[RowState], hard: bool) -> None:
        self._normalize_ids(states, "Id not specified in a delete call")
        targets = self._live_targets(states)
        ids = [(st.id,) for st in targets if not st.errors]
        if hard:
            self.conn.executemany(f'DELETE FROM {self.obj.table} WHERE "Id" = ?', ids)
        else:
            self.conn.executemany(
                f'UPDATE {self.obj.table} SET "IsDeleted" = 1, "SystemModstamp" = ?, "LastModifiedDate" = ? '
                f'WHERE "Id" = ?',
                [(self.now, self.now, i) for (i,) in ids],
            )


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"
