"""Hostile input gets Salesforce-style errors: never a 500, never a message naming a Python exception.

Over-deep JSON and XML, numbers with thousands of digits, lone surrogates and pathological SOQL,
in job documents, headers and batches; then hypothesis over SOQL text and batch payloads.
"""

from __future__ import annotations

import builtins
import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Bulk, job_xml, parse  # type: ignore[import-not-found]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_PYTHON_NAMES = sorted(
    {
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    | {
        "JSONDecodeError",
        "XMLSyntaxError",
        "BadZipFile",
        "OperationalError",
        "IntegrityError",
        "Traceback",
        "InvalidOperation",
        "set_int_max_str_digits",
        "<string>",
    }
)
PYTHON_WORDS = re.compile("|".join(rf"(?<![A-Za-z_]){re.escape(n)}(?![A-Za-z_])" for n in _PYTHON_NAMES))


def assert_no_python(text: str) -> None:
    found = PYTHON_WORDS.search(text)
    assert found is None, f"Python name {found.group(0)!r} in: {text[:500]}"


@pytest.fixture(scope="module")
def bulk() -> Iterator[Bulk]:
    """A private emulator (worker threads): the fuzzing below writes rows other tests must not see."""
    from sfbulk.emulator import start_emulator

    emu = start_emulator(port=0)
    try:
        yield Bulk(emu.base_url, emu.issue_token())
    finally:
        emu.stop()


def _error(resp: Any, code: str, status: int = 400) -> str:
    assert resp.status_code == status, resp.text[:500]
    assert_no_python(resp.text)
    doc = resp.json() if resp.headers["Content-Type"] == "application/json" else parse(resp.content)
    assert doc["exceptionCode"] == code, doc
    return str(doc["exceptionMessage"])


def _run_batch(bulk: Bulk, job: str, body: bytes, media: str, as_json: bool) -> dict[str, Any]:
    resp = bulk.post(f"/job/{job}/batch", body, media)
    assert resp.status_code == 201, resp.text[:500]
    doc = resp.json() if as_json else parse(resp.content)
    assert doc["state"] == "Queued"
    info = bulk.wait(job, doc["id"], as_json=as_json)
    assert_no_python(str(info.get("stateMessage")))
    return info


def _ingest(bulk: Bulk, content_type: str, body: bytes, obj: str = "Contact") -> dict[str, Any]:
    media = {"CSV": "text/csv", "JSON": "application/json", "XML": "application/xml", "ZIP_CSV": "zip/csv"}
    job = bulk.create_job("insert", obj, content_type)
    info = _run_batch(bulk, job, body, media[content_type], content_type == "JSON")
    if info["state"] == "Completed":
        result = bulk.get(f"/job/{job}/batch/{info['id']}/result")
        assert result.status_code == 200
        assert_no_python(result.text)
    return info


def _query(bulk: Bulk, soql: str, obj: str = "Contact") -> dict[str, Any]:
    job = bulk.create_job("query", obj)
    info = _run_batch(bulk, job, (soql or " ").encode("utf-8", "surrogatepass"), "text/csv", False)  # "": 400
    if info["state"] == "Completed":
        listing = bulk.get(f"/job/{job}/batch/{info['id']}/result")
        assert listing.status_code == 200
        for result_id in [el.text for el in _xml(listing.content)]:
            assert bulk.get(f"/job/{job}/batch/{info['id']}/result/{result_id}").status_code == 200
    return info


def _xml(body: bytes) -> Any:
    from lxml import etree

    return etree.fromstring(body)


def _failed(info: dict[str, Any], text: str) -> None:
    assert info["state"] == "Failed", info
    assert info["stateMessage"].startswith("InvalidBatch : "), info
    assert text in info["stateMessage"], info


# ------------------------------------------------------------------------------------ job documents


def test_pk_chunk_sizes_of_thousands_of_digits_are_invalid_job(bulk: Bulk) -> None:
    for value in ("9" * 5000, "0" * 5000 + "1000000", "²", "١٠٠", "-5", "250001", "1e3"):
        resp = bulk.post(
            "/job",
            job_xml(operation="query", object="Contact", contentType="CSV"),
            **{"Sforce-Enable-PKChunking": f"chunkSize={value}".encode()},
        )
        message = _error(resp, "InvalidJob")
        assert message.startswith("Invalid chunkSize for PK chunking: ") and len(message) < 100
    resp = bulk.post(
        "/job",
        job_xml(operation="query", object="Contact", contentType="CSV"),
        **{"Sforce-Enable-PKChunking": "chunkSize=" + "0" * 50 + "2000"},
    )
    assert resp.status_code == 201  # leading zeros are still a number in range


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"operation": "insert", "object": "Contact", "concurrencyMode": ' + "9" * 5000 + "}",
        '{"operation": "insert", "object": "\\ud800", "contentType": "JSON"}',
        '{"operation": "insert", "object": "Contact", "contentType": NaN}',
        '{"operation": "insert", "object": "Contact", "x": ' + '{"a": ' * 5000 + "1" + "}" * 5000 + "}",
    ],
)
def test_hostile_json_job_documents_are_invalid_job(bulk: Bulk, body: str) -> None:
    message = _error(bulk.post("/job", body, "application/json"), "InvalidJob")
    assert message.startswith("Unable to parse Job")


def test_over_deep_xml_job_document_is_invalid_xml(bulk: Bulk) -> None:
    message = _error(
        bulk.post("/job", "<jobInfo>" + "<a>" * 100_000 + "</a>" * 100_000 + "</jobInfo>"), "InvalidXml"
    )
    assert "Excessive depth" in message and "XML_PARSE_HUGE" not in message


# ------------------------------------------------------------------------------------------ batches


def test_hostile_json_batches_fail_with_invalid_batch(bulk: Bulk) -> None:
    _failed(_ingest(bulk, "JSON", b"[" * 1_000_000 + b"]" * 1_000_000), "nested too deeply")
    _failed(_ingest(bulk, "JSON", b'[{"LastName": ' + b"9" * 5000 + b"}]"), "a number is too large")
    _failed(_ingest(bulk, "JSON", b'[{"LastName": "\\ud800"}]'), "unpaired surrogate")
    _failed(_ingest(bulk, "JSON", b'[{"LastName": "x", "Title": "\\udc00\\ud800"}]'), "unpaired surrogate")
    _failed(_ingest(bulk, "JSON", b'[{"LastName": Infinity}]'), "Infinity is not a JSON value")
    _failed(_ingest(bulk, "JSON", b"[" + b"{}," * 20_000 + b"{}]"), "Records in a batch exceeds 10000")
    # a surrogate pair is one valid character, not an error
    info = _ingest(bulk, "JSON", b'[{"LastName": "\\ud83d\\ude00"}]')
    assert info["state"] == "Completed" and info["numberRecordsFailed"] == 0


def test_huge_numbers_in_fields_are_row_errors(bulk: Bulk) -> None:
    body = (
        b'[{"LastName": "n1", "Company": "c", "NumberOfEmployees": 1e400},'
        b' {"LastName": "n2", "Company": "c", "NumberOfEmployees": 100000000000000000000},'
        b' {"LastName": "n3", "Company": "c", "AnnualRevenue": ' + b"9" * 400 + b"},"
        b' {"LastName": "n4", "Company": "c", "NumberOfEmployees": 2147483647}]'
    )
    job = bulk.create_job("insert", "Lead", "JSON")
    info = _run_batch(bulk, job, body, "application/json", True)
    assert info["state"] == "Completed" and info["numberRecordsFailed"] == 3
    rows = bulk.get(f"/job/{job}/batch/{info['id']}/result", "application/json").json()
    codes = [r["errors"][0]["statusCode"] if r["errors"] else None for r in rows]
    assert codes == [
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        None,
    ]


def test_dates_past_the_calendar_are_row_errors(bulk: Bulk) -> None:
    job = bulk.create_job("insert", "Contact")
    info = _run_batch(
        bulk,
        job,
        b"LastName,Birthdate\nx,0001-01-01T00:00:00+01:00\ny,\xd9\xa2024-01-01\n",
        "text/csv",
        False,
    )
    assert info["state"] == "Completed" and int(info["numberRecordsFailed"]) == 2


def test_hostile_xml_batches_fail_with_invalid_batch(bulk: Bulk) -> None:
    info = _ingest(bulk, "XML", b"<sObjects>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</sObjects>")
    _failed(info, "Excessive depth")
    assert "XML_PARSE_HUGE" not in info["stateMessage"]
    _failed(
        _ingest(bulk, "XML", b"<sObjects><sObject><LastName>&#xD800;</LastName></sObject></sObjects>"),
        "Failed to parse XML",
    )


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


REQUEST = b"Name,ParentId,Body\nx,001000000000001AAA,#a.bin\n"


def test_zip_batches_are_bounded_by_unzipped_size_file_count_and_names(bulk: Bulk) -> None:
    _failed(
        _ingest(bulk, "ZIP_CSV", _zip({"request.txt": REQUEST, "a.bin": b"\0" * (21 << 20)}), "Attachment"),
        "unzipped content of the zip file exceeds the maximum of 20971520 bytes",
    )
    many = {"request.txt": REQUEST, **{f"f{i}": b"" for i in range(1001)}}
    _failed(_ingest(bulk, "ZIP_CSV", _zip(many), "Attachment"), "more than the maximum of 1000")
    _failed(
        _ingest(bulk, "ZIP_CSV", _zip({"request.txt": b"Name\n" + b"x\n" * (5 << 20)}), "Attachment"),
        "request.txt exceeds the maximum size of 10485760 bytes",
    )
    _failed(
        _ingest(bulk, "ZIP_CSV", _zip({"request.txt": REQUEST, "n" * 513: b""}), "Attachment"),
        "longer than 512 bytes",
    )
    rows = b"".join(b"n%d,001000000000001AAA,#a.bin\n" % i for i in range(6))
    _failed(
        _ingest(
            bulk,
            "ZIP_CSV",
            _zip({"request.txt": b"Name,ParentId,Body\n" + rows, "a.bin": b"z" * (4 << 20)}),
            "Attachment",
        ),
        "referenced by the batch exceed 20971520 bytes",
    )
    _failed(_ingest(bulk, "ZIP_CSV", b"PK\x03\x04" + b"\0" * 100, "Attachment"), "Failed to read zip file")
    corrupt = bytearray(_zip({"request.txt": REQUEST, "a.bin": b"abc" * 1000}))
    corrupt[60:80] = b"\xff" * 20
    _failed(_ingest(bulk, "ZIP_CSV", bytes(corrupt), "Attachment"), "")
    # within every limit: 1,000 files (directories not counted), 20 MB unzipped, processed
    ok = {"request.txt": REQUEST, "a.bin": b"\0" * (8 << 20), **{f"d/f{i}": b"" for i in range(998)}}
    info = _ingest(bulk, "ZIP_CSV", _zip(ok), "Attachment")
    assert info["state"] == "Completed", info


# ------------------------------------------------------------------------------------------- SOQL


@pytest.mark.parametrize(
    ("soql", "text"),
    [
        (
            "SELECT Id FROM Contact LIMIT 100000000000000000000000",
            "LIMIT must be an integer from 0 to 2147483647",
        ),
        ("SELECT Id FROM Contact LIMIT " + "9" * 5000, "LIMIT must be an integer"),
        (
            "SELECT Id FROM Contact WHERE " + "(" * 5000 + "LastName = 'a'" + ")" * 5000,
            "Too many nested parentheses",
        ),
        (
            "SELECT Id FROM Contact WHERE " + "NOT (" * 3000 + "LastName = 'a'" + ")" * 3000,
            "Too many nested parentheses",
        ),
        ("SELECT Id FROM Contact WHERE LastName = '\\ud800'", "unpaired surrogate"),
        ("SELECT Id FROM Contact WHERE LastName = '\\udc00\\ud800'", "unpaired surrogate"),
        ("SELECT Id FROM Contact WHERE CreatedDate > 9999-12-31T23:59:59-10:00", "invalid date/time literal"),
        ("SELECT Id FROM Contact WHERE CreatedDate > 0001-01-01T00:00:00+10:00", "invalid date/time literal"),
        ("SELECT Id FROM Contact LIMIT \u0663", "unexpected token"),
    ],
)
def test_pathological_soql_fails_as_malformed_query(bulk: Bulk, soql: str, text: str) -> None:
    info = _query(bulk, soql)
    _failed(info, "Failed to process query: MALFORMED_QUERY: ")
    assert text in info["stateMessage"]


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Lead WHERE NumberOfEmployees > 100000000000000000000000",
        "SELECT Id FROM Lead WHERE AnnualRevenue < " + "9" * 5000,
        "SELECT Id FROM Lead WHERE NumberOfEmployees IN (" + ",".join(["1"] * 20_000) + ")",
        "SELECT Id FROM Lead WHERE LastName = 'a' OR " + " OR ".join(["LastName = 'b'"] * 2000),
        "SELECT Id FROM Lead WHERE " + " AND ".join(["LastName != 'b'"] * 2000),
        "SELECT Id FROM Lead WHERE LastName LIKE '" + "%a" * 30_000 + "'",
        "SELECT Id FROM Lead WHERE LastName = '\\ud83d\\ude00' LIMIT 2147483647",
        "SELECT Id FROM Lead WHERE " + "(" * 100 + "LastName = 'a'" + ")" * 100,
    ],
)
def test_large_but_valid_soql_runs_or_is_too_complicated(bulk: Bulk, soql: str) -> None:
    """2,000 OR terms are past SQLite's expression depth of 1,000 unless the SQL groups them as a tree;
    a 60,000-byte LIKE pattern is past SQLite's limit: QUERY_TOO_COMPLICATED, as Salesforce would say."""
    info = _query(bulk, soql, "Lead")
    if info["state"] == "Failed":
        _failed(info, "Failed to process query: QUERY_TOO_COMPLICATED: ")
    else:
        assert info["state"] == "Completed"


# ------------------------------------------------------------------------------------- hypothesis

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)

_SOQL_WORDS = st.sampled_from(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "LIMIT",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "null",
        "true",
        "false",
        "Id",
        "LastName",
        "Email",
        "CreatedDate",
        "Account.Name",
        "Account.Parent.Name",
        "Bogus__c",
        "Contact",
        "Lead",
        "COUNT(",
        "(",
        ")",
        ",",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "<>",
        ":",
        "GROUP",
        "OFFSET",
        "TYPEOF",
        "'",
        "\\",
        "2024-01-31",
        "2024-01-31T10:00:00Z",
        "9999-12-31T23:59:59-14:00",
        "0000-00-00",
        "'\\ud800'",
        "'\\udfff\\ud800'",
        "'\\u0000'",
        "'%_\\%'",
        "100000000000000000000000",
        "1" * 400,
        "-0",
        ".5",
        "1.",
        "+7",
        "\u0663",
        "\ufeff",
        "\x00",
    ]
)
_SOQL = st.one_of(
    st.lists(_SOQL_WORDS | st.text(max_size=8), max_size=30).map(" ".join),
    st.tuples(
        st.integers(0, 400),
        st.sampled_from(["LastName = 'a'", "Id != null", "Email LIKE '%'"]),
        st.integers(0, 400),
    ).map(lambda t: "SELECT Id FROM Contact WHERE " + "(" * t[0] + t[1] + ")" * t[2]),
    st.lists(_SOQL_WORDS, max_size=20).map(
        lambda ws: "SELECT Id, LastName FROM Contact WHERE " + " ".join(ws)
    ),
    st.integers(0, 10**30).map(lambda n: f"SELECT Id FROM Contact ORDER BY LastName LIMIT {n}"),
)


@FUZZ
@given(soql=_SOQL)
def test_fuzzed_soql_never_fails_with_a_python_error(bulk: Bulk, soql: str) -> None:
    info = _query(bulk, soql)
    assert info["state"] in ("Completed", "Failed"), info
    if info["state"] == "Failed":
        assert info["stateMessage"].startswith("InvalidBatch : Failed to "), info


def _json_text() -> st.SearchStrategy[str]:
    """JSON-ish text, valid or not: huge numbers, NaN, escapes of lone surrogates, deep nesting."""
    scalar = st.one_of(
        st.sampled_from(
            [
                "null",
                "true",
                "false",
                "NaN",
                "-Infinity",
                "1e400",
                "-0",
                "1.5e-400",
                '"\\ud800"',
                '"\\udc00"',
                '"\\ud83d\\ude00"',
                '"\\u0000"',
                '""',
                '"#N/A"',
                "01",
                "[",
                "}",
                ",",
            ]
        ),
        st.integers(1, 6000).map(lambda n: "9" * n),
        st.text(max_size=10).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    )
    keys = st.sampled_from(
        [
            '"LastName"',
            '"FirstName"',
            '"Email"',
            '"Birthdate"',
            '"HasOptedOutOfEmail"',
            '"Account"',
            '"attributes"',
            '"Bogus"',
            '"\\ud800"',
        ]
    )

    def containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(children, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
            st.lists(st.tuples(keys, children), max_size=4).map(
                lambda kv: "{" + ",".join(f"{k}:{v}" for k, v in kv) + "}"
            ),
        )

    nested = st.recursive(scalar, containers, max_leaves=12)
    deep = st.tuples(st.integers(0, 3000), nested).map(lambda t: "[" * t[0] + t[1] + "]" * t[0])
    return st.one_of(nested.map(lambda x: f'[{{"LastName": "fuzz", "Title": {x}}}]'), nested, deep)


@FUZZ
@given(text=_json_text())
def test_fuzzed_json_batches_never_fail_with_a_python_error(bulk: Bulk, text: str) -> None:
    info = _ingest(bulk, "JSON", text.encode("utf-8", "surrogatepass"))
    if info["state"] == "Failed":
        assert info["stateMessage"].startswith("InvalidBatch : "), info
    else:
        assert info["state"] == "Completed", info


_XML_PIECES = st.sampled_from(
    [
        "<sObject>",
        "</sObject>",
        "<LastName>",
        "</LastName>",
        "<Account><sObject><Email>a@b.c</Email></sObject></Account>",
        '<Title xsi:nil="true"/>',
        "&#xD800;",
        "&#0;",
        "&amp;",
        "&bogus;",
        "<!DOCTYPE x [<!ENTITY a 'b'>]>",
        "<![CDATA[x]]>",
        "x" * 50,
        "<",
        ">",
        "<a>" * 300,
        "</a>" * 300,
        '<?xml version="1.0"?>',
    ]
)


@FUZZ
@given(pieces=st.lists(_XML_PIECES | st.text(max_size=6), max_size=25))
def test_fuzzed_xml_batches_never_fail_with_a_python_error(bulk: Bulk, pieces: list[str]) -> None:
    body = (
        '<sObjects xmlns="http://www.force.com/2009/06/asyncapi/dataload" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">' + "".join(pieces) + "</sObjects>"
    )
    info = _ingest(bulk, "XML", body.encode("utf-8", "surrogatepass"))
    assert info["state"] in ("Completed", "Failed"), info


@FUZZ
@given(
    data=st.binary(max_size=300)
    | st.lists(
        st.sampled_from(
            [
                "LastName",
                "Email",
                "Birthdate",
                ",",
                "\n",
                "\r\n",
                '"',
                '""',
                "#N/A",
                "x" * 100,
                "9" * 5000,
                "\ufeff",
                "2024-13-45",
                "0001-01-01T00:00:00+01:00",
                "Account.Email",
                "CreatedDate",
                "a@b.c",
            ]
        ),
        max_size=30,
    ).map(lambda xs: "".join(xs).encode())
)
def test_fuzzed_csv_batches_never_fail_with_a_python_error(bulk: Bulk, data: bytes) -> None:
    info = _ingest(bulk, "CSV", data or b"\n")
    assert info["state"] in ("Completed", "Failed"), info


@FUZZ
# (no NEL or NBSP: requests refuses a header value that starts with Unicode whitespace, before sending)
@given(
    body=_json_text(),
    header=st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x85\xa0"), max_size=40
    )
    | st.sampled_from(["chunkSize=" + "9" * 5000, "true;;", "startRow=\u00ff", "parent=x; chunkSize=1"]),
)
def test_fuzzed_job_documents_and_pk_headers_never_answer_500(bulk: Bulk, body: str, header: str) -> None:
    headers = {"Sforce-Enable-PKChunking": header}
    for data, media in (
        (body.encode("utf-8", "surrogatepass"), "application/json"),
        (job_xml(operation="query", object="Contact").encode(), "application/xml"),
    ):
        resp = bulk.post("/job", data, media, **headers)
        assert resp.status_code in (201, 400), resp.text[:300]
        assert_no_python(resp.text)
        if resp.status_code == 400:
            assert "UnknownException" not in resp.text


@settings(max_examples=300, deadline=None)
@given(soql=_SOQL)
def test_the_soql_parser_raises_only_soql_errors(soql: str) -> None:
    """The parser and the SQL translator, without HTTP: many more examples than the round trips above."""
    from sfbulk.emulator.soql import SoqlError, parse_soql, to_sql

    try:
        query = parse_soql(soql)
        to_sql(query, '"t"', lambda name: f'"t"."{name}"')
        query.to_soql()
    except SoqlError as exc:
        assert_no_python(exc.message)


def test_a_negative_content_length_is_refused(bulk: Bulk) -> None:
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(bulk.base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            f"POST {url.path}/job HTTP/1.1\r\nHost: x\r\nX-SFDC-Session: {bulk.token}\r\n"
            "Content-Type: application/xml\r\nContent-Length: -5\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert_no_python(answer.decode("latin-1"))


def test_a_bug_in_the_emulator_fails_the_batch_without_python_details(
    bulk: Bulk, monkeypatch, caplog
) -> None:
    from sfbulk.emulator import service

    def broken(data: bytes, content_type: str) -> None:
        raise ZeroDivisionError("division by zero in a parser")

    monkeypatch.setattr(service, "parse_payload", broken)  # stands in for any bug a payload could reach
    info = _ingest(bulk, "CSV", b"LastName\nBug\n")
    assert info["state"] == "Failed"
    assert info["stateMessage"] == service.UNEXPECTED_FAILURE
    assert "ZeroDivisionError" in caplog.text  # the details are in the log, for the emulator's user
