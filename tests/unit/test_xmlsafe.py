"""The hardened XML parser: DTDs, entities, depth, malformed input, serialization."""

from __future__ import annotations

import time

import pytest

from sfbulk import xmlsafe
from sfbulk.errors import PayloadError

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<r>&xxe;</r>"""

XXE_PARAMETER = b"""<!-- c --><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]><r/>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE, XXE_PARAMETER, b"\xef\xbb\xbf<!doctype r><r/>"])
def test_dtds_are_rejected_fast(data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(PayloadError, match="DTDs are not allowed"):
        xmlsafe.parse(data, what="request body")
    assert time.perf_counter() - started < 1.0


def test_dtd_in_utf16_is_rejected_too() -> None:
    with pytest.raises(PayloadError, match="DTDs are not allowed"):
        xmlsafe.parse(
            XXE.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"').encode("utf-16")
        )


def test_undefined_entity_is_a_clear_error() -> None:
    with pytest.raises(PayloadError, match=r"Entity 'x' not defined \(line 1, column \d+\)"):
        xmlsafe.parse(b"<a>&x;</a>")


def test_predefined_and_character_entities_work() -> None:
    assert xmlsafe.parse(b"<a>&lt;&amp;&#65;</a>").text == "<&A"


def test_malformed_xml_reports_line_and_column() -> None:
    with pytest.raises(PayloadError) as info:
        xmlsafe.parse(b"<a>\n<b></a>", what="request body")
    message = str(info.value)
    assert message.startswith("request body is not well-formed XML")
    assert "(line 2, column" in message


def test_empty_input_is_an_error() -> None:
    with pytest.raises(PayloadError, match="is empty"):
        xmlsafe.parse(b"  ")


def test_deep_nesting_is_rejected() -> None:
    depth = xmlsafe.MAX_DEPTH + 50
    started = time.perf_counter()
    with pytest.raises(PayloadError, match="nested too deeply"):
        xmlsafe.parse(b"<a>" * depth + b"</a>" * depth)
    assert time.perf_counter() - started < 1.0
    ok = 100
    assert xmlsafe.parse(b"<a>" * ok + b"</a>" * ok).tag == "a"


def test_str_input_with_encoding_declaration() -> None:
    root = xmlsafe.parse('<?xml version="1.0" encoding="ISO-8859-1"?><a>é</a>')
    assert root.text == "é"


def test_serialize_drops_inherited_unused_namespaces_and_tail() -> None:
    root = xmlsafe.parse(
        b'<s:Envelope xmlns:s="urn:s" xmlns:u="urn:u"><s:Body><x>1<u:y/></x>tail</s:Body></s:Envelope>'
    )
    x = root[0][0]
    assert xmlsafe.serialize(x) == '<x xmlns:u="urn:u">1<u:y/></x>'
    assert xmlsafe.serialize_bytes(x) == b'<x xmlns:u="urn:u">1<u:y/></x>'
    # The tree itself is untouched.
    assert x.tail == "tail" and x.nsmap["s"] == "urn:s"


def test_serialize_keeps_default_namespace_in_use() -> None:
    root = xmlsafe.parse(b'<r xmlns="urn:a"><c><d/></c></r>')
    assert xmlsafe.serialize(root[0]) == '<c xmlns="urn:a"><d/></c>'
