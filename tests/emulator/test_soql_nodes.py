"""SoqlQuery built by hand: its PK-chunk text equals that of the same query parsed from its canonical text."""

from __future__ import annotations

import pytest

from sfbulk.emulator.soql import SoqlQuery, parse_soql

QUERIES = [
    "SELECT Id FROM Account",
    "SELECT Id, Name FROM Account LIMIT 3",
    "SELECT Id FROM Account ORDER BY Name DESC NULLS FIRST, Id",
    "SELECT Id FROM Account WHERE Name = 'a\\'b' ORDER BY Name LIMIT 5",
    "SELECT Id FROM Account WHERE NOT (Name LIKE 'x%' OR Industry IN ('a', null))",
    "SELECT Id FROM Account WHERE (A = 1 OR B != null) AND C NOT IN ('x', 'y') AND (NOT D = 2024-01-31)",
]
RANGES = [("001A", "001B"), ("0'1", None), (None, "001B"), (None, None)]


@pytest.mark.parametrize("soql", QUERIES)
def test_hand_built_with_id_range_equals_the_reparsed_canonical_text(soql: str) -> None:
    parsed = parse_soql(soql)
    hand = SoqlQuery(parsed.object, parsed.fields, parsed.where, parsed.order_by, parsed.limit)
    canonical = parse_soql(hand.to_soql())
    for lo, hi in RANGES:
        chunk = hand.with_id_range(lo, hi)
        assert chunk == canonical.with_id_range(lo, hi)
        assert parse_soql(chunk).object == "Account"  # still valid SOQL
    assert hand.with_id_range("1", None).count("Id >= '1'") == 1
