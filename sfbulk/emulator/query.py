"""Query batches: SOQL -> SQLite -> result files stored as chunks, streamed back on GET.

A result file is a sequence of stored chunks (header, row blocks, footer) so neither writing nor
reading a million-row result holds it in memory.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from .apierrors import BatchFailure
from .schema import Field, Schema, SObject
from .soql import SoqlError, SoqlQuery, parse_soql, to_sql
from .store import Store, column_type
from .wire import NS, XML_DECL, XSI, csv_quote
from .wire import xml_escape as escape

FETCH_ROWS = 2000
#: Salesforce's text for a query beyond its limits; SQLite's limits (bound values, LIKE pattern length,
#: expression depth) stand in for Salesforce's, which are not documented
QUERY_TOO_COMPLICATED = (
    "Query is either selecting too many fields or the filter conditions are too complicated."
)
_TOO_COMPLICATED = (
    "too many SQL variables",
    "Expression tree is too large",
    "LIKE or GLOB pattern too complex",
    "too many terms",
    "parser stack overflow",
    "too many columns",
)
_PRINTF_ARGS = 50
#: real Salesforce answers an empty CSV query result with this line instead of a header
CSV_NO_RECORDS = b"Records not found for this query"


class OutputColumn:
    """One selected field: its name for headers and how to render a stored value."""

    def __init__(self, path: list[str], field: Field, objects: list[SObject]):
        self.path = path  # canonical names, e.g. ["Account", "Name"]
        self.name = ".".join(path)
        self.field = field
        self.objects = objects  # the object of each path step (for JSON attributes)


def _resolver(schema: Schema, obj: SObject) -> tuple[Callable[[str], str], Callable[[str], OutputColumn]]:
    def describe(name: str) -> OutputColumn:
        parts = name.split(".")
        current = obj
        path: list[str] = []
        objects = [obj]
        for rel in parts[:-1]:
            ref = current.relationship(rel)
            target = (
                schema.get(ref.reference_to) if ref and ref.reference_to and ref.reference_to != "*" else None
            )
            if ref is None or target is None:
                raise SoqlError(
                    f"Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom "
                    f"relationship, be sure to append the '__r' after the custom relationship name.",
                    code="INVALID_FIELD",
                )
            path.append(ref.relationship_name or rel)
            current = target
            objects.append(target)
        f = current.field(parts[-1])
        if f is None:
            raise SoqlError(
                f"No such column '{parts[-1]}' on entity '{current.name}'. If you are attempting to use a "
                f"custom field, be sure to append the '__c' after the custom field name.",
                code="INVALID_FIELD",
            )
        path.append(f.name)
        return OutputColumn(path, f, objects)

    def column(name: str) -> str:
        info = describe(name)
        if len(info.path) == 1:
            return field_sql(obj, info.field, obj.table)
        # walk the reference chain with nested scalar subqueries
        expr = f"{obj.table}.{_ref_field(obj, info.path[0]).column}"
        for i, step_obj in enumerate(info.objects[1:], start=1):
            alias = f"r{i}"
            if i == len(info.objects) - 1:
                target_col = field_sql(step_obj, info.field, alias)
            else:
                target_col = f"{alias}.{_ref_field(step_obj, info.path[i]).column}"
            expr = f'(SELECT {target_col} FROM {step_obj.table} {alias} WHERE {alias}."Id" = {expr})'
        return expr

    return column, describe


def field_sql(obj: SObject, f: Field, table: str) -> str:
    """The SQL value of ``f`` in rows of ``table`` (an alias or the object's table).

    A compound field (Contact.Name) has no column: its value is computed here, from its parts' columns
    (non-empty parts joined by a space, NULL when all are empty); so is a formula field's (its arithmetic,
    NULL when a field is NULL, as SQLite computes it). A virtual generated column would do the
    same but costs every insert (~35% more SQLite time per row), while only queries need the value.
    """
    if f.formula:  # tokens checked by the schema loader: field names, numbers, + - * / ( )
        columns = {name: f"{table}.{g.column}" for name in f.formula if (g := obj.field(name)) is not None}
        sql = {
            **columns,
            "/": "* 1.0 /",
        }  # decimal division, as Salesforce formulas divide (SQLite: 7 / 2 = 3)
        return "(" + " ".join(sql.get(tok, tok) for tok in f.formula) + ")"
    if not f.compound_of:
        return f"{table}.{f.column}"
    parts = [f"{table}.{part.column}" for name in f.compound_of if (part := obj.field(name)) is not None]
    joined = " || ".join(f"coalesce(' ' || nullif({p}, ''), '')" for p in parts)
    return f"nullif(substr({joined}, 2), '')"


def _ref_field(obj: SObject, relationship: str) -> Field:
    ref = obj.relationship(relationship)
    assert ref is not None
    return ref


def compile_query(
    schema: Schema, job_object: str, soql: str
) -> tuple[SoqlQuery, SObject, list[OutputColumn], Callable[[str], str]]:
    """Parse and check a batch's SOQL; problems fail the batch with Salesforce's stateMessage shape."""
    try:
        q = parse_soql(soql)
        obj = schema.get(q.object)
        if obj is None:
            raise SoqlError(
                f"sObject type '{q.object}' is not supported. If you are attempting to use a custom "
                f"object, be sure to append the '__c' after the entity name.",
                code="INVALID_TYPE",
            )
        if obj.name.lower() != job_object.lower():
            raise BatchFailure(
                f"Failed to process query: the query object {obj.name} does not match the job "
                f"object {job_object}"
            )
        column, describe = _resolver(schema, obj)
        outputs = [describe(name) for name in q.fields]
        return q, obj, outputs, column
    except SoqlError as exc:
        raise BatchFailure(f"Failed to process query: {exc.code}: {exc.message}") from None


# ---------------------------------------------------------------------------------------------
# rendering


def _csv_value(f: Field, value: Any) -> str:
    if value is None:
        return '""'
    if f.type == "boolean":
        return '"true"' if value else '"false"'
    return csv_quote(str(value))


def _epoch_ms(text: str) -> int:
    dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _json_value(f: Field, value: Any) -> Any:
    if value is None:
        return None
    if f.type == "boolean":
        return bool(value)
    if f.type == "datetime":
        return _epoch_ms(value)
    return value


def csv_line_sql(outputs: list[OutputColumn]) -> Callable[[list[str]], str] | None:
    """A select-list builder rendering each row as one CSV line inside SQLite, or None.

    Rendering 200,000 rows value by value in Python is most of a query's cost; SQLite can quote and
    join the values itself. Only columns whose stored text *is* the rendered text qualify (TEXT
    affinity, plus booleans stored as 0/1): for them the SQL gives exactly what ``_csv_value`` gives.
    Numbers keep the Python path (``str(float)`` and SQLite's REAL-to-text differ).
    """
    kinds = []
    for o in outputs:
        if o.field.type == "boolean":
            kinds.append("boolean")
        elif column_type(o.field) == "TEXT":
            kinds.append("text")
        else:
            return None

    def build(expressions: list[str]) -> str:
        args = []
        for kind, e in zip(kinds, expressions, strict=True):
            if kind == "boolean":
                args.append(f"CASE WHEN {e} IS NULL THEN '' WHEN {e} THEN 'true' ELSE 'false' END")
            else:
                args.append(f"ifnull({e}, '')")
        # printf's %w doubles '"' (one call per row is far cheaper than chained ||); at most
        # _PRINTF_ARGS arguments per call, SQLite caps a function's argument count.
        groups = [args[i : i + _PRINTF_ARGS] for i in range(0, len(args), _PRINTF_ARGS)]
        calls = [f"""printf('{",".join(['"%w"'] * len(g))}', {", ".join(g)})""" for g in groups]
        return " || ',' || ".join(calls)

    return build


class Renderer:
    """Serialises rows in the job's format: CSV, JSON or XML."""

    def __init__(self, fmt: str, obj: SObject, outputs: list[OutputColumn], api_version: str):
        self.fmt = fmt
        self.obj = obj
        self.outputs = outputs
        self.api_version = api_version
        self.id_index = next((i for i, o in enumerate(outputs) if o.path == ["Id"]), None)

    def header(self) -> bytes:
        if self.fmt == "CSV":
            return (",".join(csv_quote(o.name) for o in self.outputs) + "\n").encode("utf-8")
        if self.fmt == "JSON":
            return b"["
        return f'{XML_DECL}<queryResult xmlns="{NS}" xmlns:xsi="{XSI}">'.encode()

    def footer(self, rows_before: int) -> bytes:
        if self.fmt == "CSV":
            return b""
        if self.fmt == "JSON":
            return b"]"
        return b"</queryResult>"

    def empty(self) -> bytes:
        if self.fmt == "CSV":
            return CSV_NO_RECORDS
        if self.fmt == "JSON":
            return b"[]"
        return f'{XML_DECL}<queryResult xmlns="{NS}" xmlns:xsi="{XSI}"/>'.encode()

    def rows(self, rows: list[tuple[Any, ...]], first_in_file: bool) -> bytes:
        if self.fmt == "CSV":
            outs = self.outputs
            lines = [",".join(_csv_value(o.field, v) for o, v in zip(outs, row, strict=True)) for row in rows]
            return ("\n".join(lines) + "\n").encode("utf-8")
        if self.fmt == "JSON":
            docs = [json.dumps(self._json_record(row), separators=(",", ":")) for row in rows]
            return (("" if first_in_file else ",") + ",".join(docs)).encode("utf-8")
        return "".join(self._xml_record(row) for row in rows).encode("utf-8")

    def _attributes(self, obj: SObject, rid: Any) -> dict[str, Any]:
        url = f"/services/data/v{self.api_version}/sobjects/{obj.name}"
        return {"type": obj.name, "url": f"{url}/{rid}" if rid else url}

    def _json_record(self, row: tuple[Any, ...]) -> dict[str, Any]:
        rid = row[self.id_index] if self.id_index is not None else None
        record: dict[str, Any] = {"attributes": self._attributes(self.obj, rid)}
        for o, value in zip(self.outputs, row, strict=True):
            target = record
            for step, step_obj in zip(o.path[:-1], o.objects[1:], strict=True):
                nested = target.get(step)
                if nested is None:
                    nested = {"attributes": self._attributes(step_obj, None)}
                    target[step] = nested
                target = nested
            target[o.path[-1]] = _json_value(o.field, value)
        return record

    def _xml_record(self, row: tuple[Any, ...]) -> str:
        parts = ['<records xsi:type="sObject">', f"<type>{self.obj.name}</type>"]
        if self.id_index is None:
            parts.append('<Id xsi:nil="true"/>')
        else:
            parts.append(
                f"<Id>{escape(str(row[self.id_index]))}</Id>"
            )  # Salesforce repeats Id (bulk-api.md §1.10)
        for o, value in zip(self.outputs, row, strict=True):
            tag = o.name.replace(".", "_") if len(o.path) > 1 else o.name
            if value is None:
                parts.append(f'<{tag} xsi:nil="true"/>')
            elif o.field.type == "boolean":
                parts.append(f"<{tag}>{'true' if value else 'false'}</{tag}>")
            else:
                parts.append(f"<{tag}>{escape(str(value))}</{tag}>")
        parts.append("</records>")
        return "".join(parts)


# ---------------------------------------------------------------------------------------------
# execution


def run_query(
    store: Store,
    schema: Schema,
    job: dict[str, Any],
    batch_id: str,
    soql: str,
    rows_per_file: int,
    *,
    render_in_sql: bool = True,
) -> int:
    """Execute one query batch into stored result files; returns the number of records.

    ``render_in_sql=False`` forces the Python renderer (the tests compare both).
    """
    q, obj, outputs, column = compile_query(schema, job["object"], soql)
    extra = None if job["operation"] == "queryAll" else f'{obj.table}."IsDeleted" = 0'
    fmt = {"ZIP_CSV": "CSV", "ZIP_JSON": "JSON", "ZIP_XML": "XML"}.get(job["contentType"], job["contentType"])
    line_sql = csv_line_sql(outputs) if fmt == "CSV" and render_in_sql else None
    try:
        sql, params = to_sql(q, obj.table, column, extra_where=extra, select=line_sql)
    except SoqlError as exc:
        raise BatchFailure(f"Failed to process query: {exc.code}: {exc.message}") from None
    renderer = Renderer(fmt, obj, outputs, job["apiVersion"])
    render = _joined_lines if line_sql is not None else renderer.rows
    reader = store.reader()
    try:
        cursor = reader.execute(sql, params)
    except sqlite3.OperationalError as exc:
        if not any(text in str(exc) for text in _TOO_COMPLICATED):
            raise
        raise BatchFailure(
            f"Failed to process query: QUERY_TOO_COMPLICATED: {QUERY_TOO_COMPLICATED}"
        ) from None
    total = 0
    file_seq = 0
    result_id: str | None = None
    chunk_seq = 0
    in_file = 0
    try:
        while True:
            block = cursor.fetchmany(FETCH_ROWS)
            if not block:
                break
            while block:
                if result_id is None:
                    result_id = _new_result(store, batch_id, file_seq)
                    file_seq += 1
                    _put_chunk(store, result_id, 0, renderer.header())
                    chunk_seq, in_file = 1, 0
                take, block = block[: rows_per_file - in_file], block[rows_per_file - in_file :]
                _put_chunk(store, result_id, chunk_seq, render(take, in_file == 0))
                chunk_seq += 1
                in_file += len(take)
                total += len(take)
                if in_file >= rows_per_file:
                    _finish_file(store, result_id, chunk_seq, renderer, in_file)
                    result_id = None
    finally:
        cursor.close()
    if result_id is not None:
        _finish_file(store, result_id, chunk_seq, renderer, in_file)
    elif file_seq == 0:
        result_id = _new_result(store, batch_id, 0)
        _put_chunk(store, result_id, 0, renderer.empty())
    return total


def _joined_lines(rows: list[tuple[Any, ...]], first_in_file: bool) -> bytes:
    """Rows already rendered as CSV lines by SQLite (see ``csv_line_sql``)."""
    return ("\n".join([row[0] for row in rows]) + "\n").encode("utf-8")


def _new_result(store: Store, batch_id: str, seq: int) -> str:
    with store.write() as conn:
        rid = store.new_id15(conn, "752")
        conn.execute(
            "INSERT INTO query_results (id, batch_id, seq, rows) VALUES (?, ?, ?, 0)", (rid, batch_id, seq)
        )
    return rid


def _put_chunk(store: Store, result_id: str, seq: int, data: bytes) -> None:
    if not data:
        return
    with store.write() as conn:
        conn.execute(
            "INSERT INTO query_chunks (result_id, seq, data) VALUES (?, ?, ?)", (result_id, seq, data)
        )


def _finish_file(store: Store, result_id: str, seq: int, renderer: Renderer, rows: int) -> None:
    _put_chunk(store, result_id, seq, renderer.footer(rows))
    _set_rows(store, result_id, rows)


def _set_rows(store: Store, result_id: str, rows: int) -> None:
    with store.write() as conn:
        conn.execute("UPDATE query_results SET rows = ? WHERE id = ?", (rows, result_id))


def result_ids(store: Store, batch_id: str) -> list[str]:
    rows = store.reader().execute("SELECT id FROM query_results WHERE batch_id = ? ORDER BY seq", (batch_id,))
    return [r[0] for r in rows]


def stream_result(store: Store, result_id: str) -> Iterator[bytes]:
    """The stored chunks of one result file, one at a time."""
    seq = 0
    while True:
        row = (
            store.reader()
            .execute(
                "SELECT seq, data FROM query_chunks WHERE result_id = ? AND seq >= ? ORDER BY seq LIMIT 1",
                (result_id, seq),
            )
            .fetchone()
        )
        if row is None:
            return
        seq = row[0] + 1
        yield bytes(row[1])


def chunk_boundaries(store: Store, obj: SObject, chunk_size: int, start_row: str | None) -> list[str | None]:
    """Lower Id bound of each PK chunk: every chunk_size-th Id from the first (or from startRow)."""
    sql = f'SELECT "Id" FROM {obj.table}'
    params: list[Any] = []
    if start_row:
        sql += ' WHERE "Id" >= ?'
        params.append(start_row)
    sql += ' ORDER BY "Id"'
    bounds: list[str | None] = []
    cursor = store.reader().execute(sql, params)
    try:
        n = 0
        while True:
            rows = cursor.fetchmany(10_000)
            if not rows:
                break
            for (rid,) in rows:
                if n % chunk_size == 0:
                    bounds.append(rid)
                n += 1
    finally:
        cursor.close()
    return bounds or [start_row]
