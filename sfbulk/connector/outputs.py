"""Generic request-input and response-output features of an operation (docs/connector.md).

* ``input_body``: a body ``from: input`` is a parameter's text (INLINE) or a file named by a
  parameter (FILE), streamed in chunks and re-opened for a replay;
* ``header_properties``: response headers copied into properties (``Sforce-Locator``);
* ``apply_output``: a successful body goes to a file (streamed, the message becomes a small JSON
  receipt) or stays in the message, optionally converted from CSV to a JSON array of row objects.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sfbulk.connector.bundle.definitions import OperationDef
from sfbulk.connector.files import FileRoot
from sfbulk.errors import ParameterError
from sfbulk.transport import HttpResponse

#: Salesforce's columnDelimiter names (bulk-api.md §8.1)
DELIMITERS = {"COMMA": ",", "TAB": "\t", "SEMICOLON": ";", "PIPE": "|", "CARET": "^", "BACKQUOTE": "`"}
JSON_TYPE = "application/json; charset=UTF-8"


def _is_file_mode(value: str) -> bool:
    return value.upper() == "FILE"


def input_body(op: OperationDef, bound: Mapping[str, str], caller_body: Any, files: FileRoot) -> Any:
    """The body of a ``from: input`` operation: text, a re-openable file stream, or the caller's body."""
    assert op.request is not None
    spec = op.request.body
    mode = bound.get(spec.mode, "") if spec.mode else ""
    inline = bound.get(spec.inline, "") if spec.inline else ""
    path = bound.get(spec.file, "") if spec.file else ""
    use_file = _is_file_mode(mode) if mode else (path != "" and inline == "")
    if use_file:
        if not path:
            raise ParameterError(
                f"{op.name}: {spec.mode or 'the input'} is FILE but {spec.file or 'filePath'} "
                f"is empty; give the path of the file to upload"
            )
        if caller_body is not None:
            raise ParameterError(
                f"{op.name}: a body= was given and {spec.file} names a file; pass one of them"
            )
        source = f"{op.name}.{spec.file}"
        files.resolve(path, source)  # refused paths fail before the first byte is sent
        factory: Callable[[], Iterator[bytes]] = lambda: files.reader(path, source)  # noqa: E731
        return factory
    if inline != "":
        if caller_body is not None:
            raise ParameterError(f"{op.name}: a body= was given and {spec.inline} is set; pass one of them")
        return inline.encode("utf-8")
    return caller_body if caller_body is not None else b""


def header_properties(op: OperationDef, response: HttpResponse) -> dict[str, str]:
    """``response.headers``: property name -> the header's value, for the headers present."""
    found = {}
    for prop, header in op.response.headers:
        value = response.headers.get(header)
        if value is not None:
            found[prop] = value
    return found


def check_output(op: OperationDef, bound: Mapping[str, str], files: FileRoot) -> str | None:
    """The output file path when the operation writes to a file (checked before the call), else None."""
    spec = op.response.output
    if spec is None or spec.file is None:
        return None
    mode = bound.get(spec.mode, "") if spec.mode else ""
    path = bound.get(spec.file, "")
    if not (_is_file_mode(mode) if spec.mode else path != ""):
        return None
    if not path:
        raise ParameterError(
            f"{op.name}: {spec.mode} is FILE but {spec.file} is empty; "
            f"give the path of the file to write the result to"
        )
    files.resolve(path, f"{op.name}.{spec.file}")
    return path


def apply_output(
    op: OperationDef, bound: Mapping[str, str], response: HttpResponse, files: FileRoot, file_path: str | None
) -> HttpResponse:
    """The response the caller sees: written to ``file_path`` or converted; errors pass through as is."""
    spec = op.response.output
    if spec is None or not 200 <= response.status < 300:
        return response
    if file_path is not None:
        try:
            written = files.write(file_path, f"{op.name}.{spec.file}", response.iter_content(256 * 1024))
        finally:
            response.close()
        receipt = {"success": True, "filePath": file_path, "bytes": written}
        return _replace_body(response, json.dumps(receipt).encode("utf-8"))
    if spec.convert == "csvToJson":
        delimiter_name = bound.get(spec.delimiter, "") if spec.delimiter else ""
        delimiter = DELIMITERS.get((delimiter_name or "COMMA").upper())
        if delimiter is None:
            raise ParameterError(
                f"{op.name}: {spec.delimiter} must be one of {', '.join(DELIMITERS)}, got {delimiter_name!r}"
            )
        content = response.content
        return _replace_body(response, csv_to_json(content, delimiter, response.charset or "utf-8"))
    return response


def csv_to_json(content: bytes, delimiter: str = ",", charset: str = "utf-8") -> bytes:
    """A CSV with a header row as a JSON array of objects (all values strings); empty CSV -> ``[]``."""
    text = content.decode(charset, errors="replace").lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return b"[]"
    rows = [dict(zip(header, row + [""] * (len(header) - len(row)), strict=False)) for row in reader if row]
    return json.dumps(rows, ensure_ascii=False).encode("utf-8")


def _replace_body(response: HttpResponse, body: bytes) -> HttpResponse:
    headers = {
        k: v
        for k, v in response.headers.items()
        if k.lower() not in ("content-type", "content-length", "content-encoding", "transfer-encoding")
    }
    headers["Content-Type"] = JSON_TYPE
    return HttpResponse(response.status, response.reason, headers, body, url=response.url)


__all__ = ["DELIMITERS", "apply_output", "check_output", "csv_to_json", "header_properties", "input_body"]
