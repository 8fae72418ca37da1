"""Header names (sfbulk.httpheaders): the hop-by-hop sets, canonical names, WSGI keys, lookups."""

from __future__ import annotations

import subprocess
import sys

import pytest
from requests.structures import CaseInsensitiveDict

from sfbulk.httpheaders import (
    HOP_BY_HOP,
    NOT_RELAYED,
    SERVER_COMPUTED,
    canonical_name,
    environ_key,
    header_value,
    join_repeated,
    name_from_environ_key,
)


def test_the_derived_sets_extend_the_one_hop_by_hop_list() -> None:
    assert HOP_BY_HOP == {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "transfer-encoding",
        "upgrade",
    }
    assert NOT_RELAYED - HOP_BY_HOP == {"content-length", "date", "server", "user-agent", "host"}
    assert SERVER_COMPUTED - HOP_BY_HOP == {
        "trailer",
        "trailers",
        "proxy-authenticate",
        "content-length",
        "date",
        "server",
    }
    for names in (HOP_BY_HOP, NOT_RELAYED, SERVER_COMPUTED):
        assert all(name == name.lower() for name in names)
    # The inbound side keeps what sizes and types the body; a mediator may read Host and User-Agent.
    assert not {"content-length", "content-type", "host", "user-agent"} & HOP_BY_HOP


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("content-type", "Content-Type"),
        ("CONTENT_TYPE", "Content-Type"),
        ("x-custom-thing", "X-Custom-Thing"),
        ("SOAPACTION", "SOAPAction"),
        ("soapaction", "SOAPAction"),
        ("X_SFDC_SESSION", "X-SFDC-Session"),
        ("etag", "ETag"),
        ("www-authenticate", "WWW-Authenticate"),
        ("content-md5", "Content-MD5"),
    ],
)
def test_canonical_name(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("HTTP_ACCEPT", "Accept"),
        ("HTTP_SOAPACTION", "SOAPAction"),
        ("HTTP_X_SFDC_SESSION", "X-SFDC-Session"),
        ("CONTENT_TYPE", "Content-Type"),
        ("CONTENT_LENGTH", "Content-Length"),
        ("PATH_INFO", None),
        ("QUERY_STRING", None),
        ("wsgi.input", None),
    ],
)
def test_name_from_environ_key(key: str, name: str | None) -> None:
    assert name_from_environ_key(key) == name


@pytest.mark.parametrize("name", ["Content-Type", "Content-Length", "X-SFDC-Session", "SOAPAction", "Accept"])
def test_environ_key_round_trips(name: str) -> None:
    key = environ_key(name)
    assert key == ("" if name.startswith("Content-") else "HTTP_") + name.upper().replace("-", "_")
    assert name_from_environ_key(key) == name


def test_header_value_is_case_insensitive_over_pairs_and_mappings() -> None:
    pairs = [("content-type", "a/b"), ("Content-Type", "c/d"), ("X-A", "1")]
    assert header_value(pairs, "CONTENT-TYPE") == "a/b"  # the first one
    assert header_value({"X-A": "1"}, "x-a") == "1"
    assert header_value(pairs, "Missing") is None
    assert header_value([], "X-A") is None


def test_join_repeated_joins_values_in_order() -> None:
    into: CaseInsensitiveDict = CaseInsensitiveDict()
    join_repeated([("Accept", "a"), ("accept", "b"), ("X-One", "1")], into)
    assert into["ACCEPT"] == "a, b" and into["x-one"] == "1"
    join_repeated({"Accept": "c"}, into)
    assert into["Accept"] == "a, b, c"


def test_it_imports_nothing_heavy() -> None:
    code = "import sys, sfbulk.httpheaders; print(sorted({'requests', 'lxml'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
