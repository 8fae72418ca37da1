"""Salesforce-shaped record ids: key prefix, base-62 counter and the case-safe 3-character suffix.

Ids are allocated from a per-prefix counter so that they sort in creation order (SQLite's binary
collation orders ``0-9 < A-Z < a-z``, the same order as our base-62 digits); PK chunking relies on it.
"""

from __future__ import annotations

import re

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
#: two "pod" characters after the key prefix, as real ids carry (e.g. 003D0..., 7509H...)
POD = "5g"
_ID15 = re.compile(r"^[0-9A-Za-z]{15}$")
_ID18 = re.compile(r"^[0-9A-Za-z]{18}$")


def checksum_suffix(id15: str) -> str:
    """The 3-character suffix Salesforce appends to turn a 15-char id into the case-insensitive 18-char form.

    Each 5-character chunk gives one character: bit i is set when character i is an upper-case letter.
    """
    return _chunk_char(id15[0:5]) + _chunk_char(id15[5:10]) + _chunk_char(id15[10:15])


def _chunk_char(chunk: str) -> str:
    bits = 0
    bit = 1
    for ch in chunk:
        if "A" <= ch <= "Z":
            bits |= bit
        bit <<= 1
    return _SUFFIX_ALPHABET[bits]


def encode_counter(value: int, width: int) -> str:
    digits = []
    while value:
        value, rem = divmod(value, 62)
        digits.append(BASE62[rem])
    text = "".join(reversed(digits)) or "0"
    if len(text) > width:
        raise OverflowError("id counter exhausted")
    return text.rjust(width, "0")


def make_id15(prefix: str, counter: int) -> str:
    return prefix + POD + encode_counter(counter, 15 - len(prefix) - len(POD))


def make_id18(prefix: str, counter: int) -> str:
    id15 = make_id15(prefix, counter)
    return id15 + checksum_suffix(id15)


_UPPER_BIT = [1 if "A" <= c <= "Z" else 0 for c in BASE62]
_FIVE_DIGITS = 62**5


def make_ids18(prefix: str, first: int, count: int) -> list[str]:
    """``count`` consecutive 18-char ids, equal to ``make_id18`` for each counter (fast path for bulk inserts)."""
    if len(prefix) != 3:
        return [make_id18(prefix, c) for c in range(first, first + count)]
    head = prefix + POD
    head_char = _chunk_char(head)
    b, up, suffix = BASE62, _UPPER_BIT, _SUFFIX_ALPHABET
    out = []
    high_cache: tuple[int, str, str] = (-1, "", "")
    for counter in range(first, first + count):
        hi, lo = divmod(counter, _FIVE_DIGITS)
        if hi != high_cache[0]:
            high = encode_counter(hi, 5)
            high_cache = (hi, high, _chunk_char(high))
        lo, d4 = divmod(lo, 62)
        lo, d3 = divmod(lo, 62)
        lo, d2 = divmod(lo, 62)
        d0, d1 = divmod(lo, 62)
        bits = up[d0] | up[d1] << 1 | up[d2] << 2 | up[d3] << 3 | up[d4] << 4
        out.append(head + high_cache[1] + b[d0] + b[d1] + b[d2] + b[d3] + b[d4] + head_char + high_cache[2]
                   + suffix[bits])
    return out


def normalize_id(value: str) -> str | None:
    """Return the 18-char form of a 15- or 18-char id, or None when the value is not a well-formed id.

    An 18-char id whose suffix does not match its first 15 characters is malformed, as in Salesforce.
    """
    if _ID18.match(value):
        if checksum_suffix(value[:15]).lower() != value[15:].lower():
            return None
        return value[:15] + checksum_suffix(value[:15])
    if _ID15.match(value):
        return value + checksum_suffix(value)
    return None
