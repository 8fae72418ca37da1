"""Cut SOQL text into tokens, scanning its literals (quoted strings, dates, datetimes, signed numbers).

Each token keeps its text as written and its 0-based ``start``/``end`` offsets, so the parser's errors can
point at a column and ``SoqlQuery.with_id_range`` can splice the user's own text. Literal values are
decoded here: string escapes (keeping which characters were escaped, for LIKE) and dates/datetimes
(datetimes normalised to UTC); numbers are converted by the parser, which knows SQLite's integer range.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any

from .nodes import SoqlError

__all__ = ["Token", "scan_string", "tokenize"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
# re.ASCII: \d is 0-9 only (SOQL has no other digits; int() would take them)
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2}))?(?![A-Za-z0-9_.:])",
    re.ASCII,
)
_DATETIME_START = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?![A-Za-z_])", re.ASCII)
_OPERATORS = ("!=", "<>", "<=", ">=", "=", "<", ">", "(", ")", ",", ":")
_STRING_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}


@dataclass(frozen=True)
class Token:
    """One token. ``value`` is the decoded literal: (char, was_escaped) pairs for a string, the ISO text
    for a date or datetime, None otherwise."""

    kind: str  # ident | string | number | date | datetime | op | eof
    text: str  # as written (strings include their quotes)
    start: int
    end: int
    value: Any = None

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text``, ending with one ``eof`` token; SoqlError at the first character that is none."""
    tokens: list[Token] = []
    pos, size = 0, len(text)
    while pos < size:
        ch = text[pos]
        if ch.isspace() or ch == "\ufeff":  # a byte-order mark may lead a text/csv batch body
            pos += 1
            continue
        if ch == "'":
            end, value = scan_string(text, pos)
            tokens.append(Token("string", text[pos:end], pos, end, value))
            pos = end
            continue
        m = _DATETIME.match(text, pos)
        if m:
            kind = "datetime" if m.group(4) else "date"
            tokens.append(Token(kind, m.group(0), pos, m.end(), _date_value(m)))
            pos = m.end()
            continue
        if _DATETIME_START.match(text, pos):
            raise SoqlError(
                f"invalid date/time literal at column {pos + 1}: use 2024-01-31 or 2024-01-31T10:00:00Z "
                "(a datetime needs seconds and a time zone: Z or +hh:mm)",
                position=pos,
            )
        m = _NUMBER.match(text, pos)
        if m and (ch not in "+-" or _sign_allowed(tokens)):
            tokens.append(Token("number", m.group(0), pos, m.end()))
            pos = m.end()
            continue
        m = _IDENT.match(text, pos)
        if m:
            tokens.append(Token("ident", m.group(0), pos, m.end()))
            pos = m.end()
            continue
        for op in _OPERATORS:
            if text.startswith(op, pos):
                tokens.append(Token("op", op, pos, pos + len(op)))
                pos += len(op)
                break
        else:
            raise SoqlError(f"unexpected token: '{ch}'", position=pos)
    tokens.append(Token("eof", "<EOF>", size, size))
    return tokens


def _sign_allowed(tokens: list[Token]) -> bool:
    """A leading +/- belongs to a number only where a value is expected (after an operator)."""
    return bool(tokens) and tokens[-1].kind == "op" and tokens[-1].text not in (")",)


def scan_string(text: str, start: int) -> tuple[int, list[tuple[str, bool]]]:
    """Scan a quoted literal; return its end and its characters as (char, was_escaped) pairs.

    Keeping the escaped flag lets LIKE tell a literal ``\\%`` from the ``%`` wildcard.
    """
    chars: list[tuple[str, bool]] = []
    pos = start + 1
    while pos < len(text):
        ch = text[pos]
        if ch == "'":
            return pos + 1, chars
        if ch == "\\":
            if pos + 1 >= len(text):
                break
            esc = text[pos + 1]
            if esc in _STRING_ESCAPES:
                chars.append((_STRING_ESCAPES[esc], True))
                pos += 2
            elif esc in "%_":
                chars.append((esc, True))
                pos += 2
            elif esc == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", text[pos + 2 : pos + 6]):
                code = int(text[pos + 2 : pos + 6], 16)
                pos += 6
                if (
                    0xD800 <= code <= 0xDBFF
                    and text[pos : pos + 2] == "\\u"
                    and re.fullmatch(r"[dD][c-fC-F][0-9A-Fa-f]{2}", text[pos + 2 : pos + 6])
                ):
                    low = int(text[pos + 2 : pos + 6], 16)  # a UTF-16 pair: one character
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    pos += 6
                elif 0xD800 <= code <= 0xDFFF:
                    raise SoqlError(
                        f"Invalid string literal: unpaired surrogate escape '{text[pos - 6 : pos]}'",
                        position=pos - 6,
                    )
                chars.append((chr(code), True))
            else:
                raise SoqlError(f"Invalid string literal: illegal escape sequence '\\{esc}'", position=pos)
            continue
        chars.append((ch, False))
        pos += 1
    raise SoqlError("unterminated string literal: missing closing quote (')", position=start)


def _date_value(m: re.Match[str]) -> str:
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    try:
        if not m.group(4):
            return _dt.date(year, month, day).isoformat()
        fraction = (m.group(7) or ".0")[1:]
        micros = int(fraction[:6].ljust(6, "0"))
        zone = m.group(8)
        if zone == "Z":
            tz = _dt.UTC
        else:
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            offset = _dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            tz = _dt.timezone(sign * offset)
        moment = _dt.datetime(
            year, month, day, int(m.group(4)), int(m.group(5)), int(m.group(6)), micros, tzinfo=tz
        ).astimezone(_dt.UTC)
    except (
        ValueError,
        OverflowError,
    ) as exc:  # OverflowError: 9999-12-31T23:59:59-10:00 is past year 9999 in UTC
        raise SoqlError(f"invalid date/time literal: '{m.group(0)}' ({exc})", position=m.start()) from exc
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
