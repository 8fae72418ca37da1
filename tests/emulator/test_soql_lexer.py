"""The SOQL lexer alone: token kinds, texts and offsets, decoded literals, and where its errors point."""

from __future__ import annotations

import pytest

from sfbulk.emulator.soql import SoqlError
from sfbulk.emulator.soql.lexer import Token, scan_string, tokenize


def spans(text: str) -> list[tuple[str, str, int, int]]:
    return [(t.kind, t.text, t.start, t.end) for t in tokenize(text)]


def test_keywords_dotted_names_and_operators_keep_their_offsets() -> None:
    assert spans("select Owner.Name FROM Contact WHERE a<>b") == [
        ("ident", "select", 0, 6),
        ("ident", "Owner.Name", 7, 17),
        ("ident", "FROM", 18, 22),
        ("ident", "Contact", 23, 30),
        ("ident", "WHERE", 31, 36),
        ("ident", "a", 37, 38),
        ("op", "<>", 38, 40),
        ("ident", "b", 40, 41),
        ("eof", "<EOF>", 41, 41),
    ]
    assert Token("ident", "select", 0, 6).is_kw("SELECT") and not Token("string", "'select'", 0, 8).is_kw(
        "SELECT"
    )


def test_a_byte_order_mark_and_any_whitespace_are_skipped_but_counted() -> None:
    assert spans("\ufeff\r\n\tId") == [("ident", "Id", 4, 6), ("eof", "<EOF>", 6, 6)]


def test_string_escapes_decode_and_remember_which_characters_were_escaped() -> None:
    text = "X = 'a\\'b\\%_\\n\\\\\\u00e9'"
    string = tokenize(text)[2]
    assert (string.kind, string.text, string.start, string.end) == ("string", text[4:], 4, len(text))
    assert string.value == [
        ("a", False), ("'", True), ("b", False), ("%", True), ("_", False), ("\n", True), ("\\", True),
        ("é", True),
    ]  # fmt: skip


def test_a_utf16_surrogate_pair_escape_is_one_character() -> None:
    end, chars = scan_string("'\\ud83d\\ude00' rest", 0)
    assert (end, chars) == (14, [("\U0001f600", True)])


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("X = 'abc", "unterminated string literal", 4),
        ("X = 'a\\qb'", "illegal escape sequence '\\q'", 6),
        ("X = '\\ud83d'", "unpaired surrogate escape '\\ud83d'", 5),
        ("X = 'ab\\", "unterminated string literal", 4),
    ],
)
def test_bad_strings_point_at_the_literal(text: str, message: str, position: int) -> None:
    with pytest.raises(SoqlError, match=message.replace("\\", "\\\\")) as info:
        tokenize(text)
    assert info.value.position == position and info.value.code == "MALFORMED_QUERY"


@pytest.mark.parametrize(
    ("literal", "kind", "value"),
    [
        ("2024-02-29", "date", "2024-02-29"),
        ("2024-01-31T10:00:00Z", "datetime", "2024-01-31T10:00:00.000Z"),
        ("2024-01-31T10:00:00.5+02:00", "datetime", "2024-01-31T08:00:00.500Z"),
        ("2024-01-01T01:30:00.123456789-0130", "datetime", "2024-01-01T03:00:00.123Z"),
    ],
)
def test_dates_and_datetimes_decode_to_utc_iso(literal: str, kind: str, value: str) -> None:
    token = tokenize(f"D >= {literal} AND")[2]
    assert (token.kind, token.text, token.start, token.end, token.value) == (
        kind, literal, 5, 5 + len(literal), value,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("D = 2024-01-31T10:00", "invalid date/time literal at column 5", 4),  # no seconds, no zone
        ("D = 2024-02-30", "invalid date/time literal: '2024-02-30'", 4),
        ("D = 9999-12-31T23:59:59-10:00", "invalid date/time literal: '9999-12-31T23:59:59-10:00'", 4),
    ],
)
def test_bad_dates_point_at_the_literal(text: str, message: str, position: int) -> None:
    with pytest.raises(SoqlError, match=message) as info:
        tokenize(text)
    assert info.value.position == position


def test_a_sign_belongs_to_a_number_only_where_a_value_is_expected() -> None:
    assert spans("X>-5,+.5 (-1.") == [
        ("ident", "X", 0, 1),
        ("op", ">", 1, 2),
        ("number", "-5", 2, 4),
        ("op", ",", 4, 5),
        ("number", "+.5", 5, 8),
        ("op", "(", 9, 10),
        ("number", "-1.", 10, 13),
        ("eof", "<EOF>", 13, 13),
    ]
    for text, position in (("A -5", 2), (") -5", 2), ("-5", 0)):  # after a name, a ')' or nothing
        with pytest.raises(SoqlError, match="unexpected token: '-'") as info:
            tokenize(text)
        assert info.value.position == position


def test_a_number_run_into_a_name_is_not_a_number() -> None:
    with pytest.raises(SoqlError, match="unexpected token: '5'") as info:
        tokenize("X = 5x")
    assert info.value.position == 4
    assert spans("X = 5.5")[2] == ("number", "5.5", 4, 7)
