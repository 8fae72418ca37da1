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
    out = []
    for start in (0, 5, 10):
        bits = 0
        for i, ch in enumerate(id15[start : start + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX_ALPHABET[bits])
    return "".join(out)


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
