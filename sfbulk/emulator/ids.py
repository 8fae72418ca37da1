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
_PAIR_SPAN = 62 * 62
#: the last two base-62 digits of a counter, and their upper-case bits (positions 3 and 4 of the chunk)
_PAIRS = [a + b for a in BASE62 for b in BASE62]
_PAIR_BITS = [_UPPER_BIT[i] << 3 | _UPPER_BIT[j] << 4 for i in range(62) for j in range(62)]
_TAILS: dict[tuple[str, int], list[str]] = {}


def _tails(chunk_chars: str, mid_bits: int) -> list[str]:
    """The 3,844 id endings (two digits + the three suffix characters) of one block of counters.

    ``chunk_chars`` are the suffix characters of the first two 5-character chunks, ``mid_bits`` the
    upper-case bits of the block's first three digits of the last chunk.
    """
    key = (chunk_chars, mid_bits)
    tails = _TAILS.get(key)
    if tails is None:
        if len(_TAILS) >= 256:
            _TAILS.clear()  # bounded: only a handful of (prefix, high digits) pairs are ever in use
        suffix = _SUFFIX_ALPHABET
        tails = [
            pair + chunk_chars + suffix[mid_bits | bits]
            for pair, bits in zip(_PAIRS, _PAIR_BITS, strict=True)
        ]
        _TAILS[key] = tails
    return tails


def make_ids18(prefix: str, first: int, count: int) -> list[str]:
    """``count`` consecutive 18-char ids, equal to ``make_id18`` for each counter (fast path for bulk inserts).

    Counters are taken in blocks of 3,844 that share all but the last two base-62 digits: the block's
    common head is built once and joined to precomputed endings, so an id costs one string concatenation.
    """
    if len(prefix) != 3 or first < 0:
        return [make_id18(prefix, c) for c in range(first, first + count)]
    head = prefix + POD
    head_char = _chunk_char(head)
    b, up = BASE62, _UPPER_BIT
    out: list[str] = []
    counter, end = first, first + count
    while counter < end:
        hi, lo = divmod(counter, _FIVE_DIGITS)
        high = encode_counter(hi, 5)  # OverflowError past the end of the id space, as make_id18
        block, pos = divmod(lo, _PAIR_SPAN)
        d0, rest = divmod(block, _PAIR_SPAN)
        d1, d2 = divmod(rest, 62)
        start = head + high + b[d0] + b[d1] + b[d2]
        tails = _tails(head_char + _chunk_char(high), up[d0] | up[d1] << 1 | up[d2] << 2)
        n = min(end - counter, _PAIR_SPAN - pos)
        out += map(start.__add__, tails[pos : pos + n])
        counter += n
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
