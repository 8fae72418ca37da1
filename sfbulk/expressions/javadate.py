"""Java ``SimpleDateFormat`` patterns for ``get-property('SYSTEM_DATE', pattern)`` (synapse.md §4.4)."""

from __future__ import annotations

import re
import time

from sfbulk.errors import ConfigError

_DATE_TOKEN = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|.", re.S)
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

#: ``new SimpleDateFormat()`` default pattern (en_US).
DEFAULT_DATE_PATTERN = "M/d/yy h:mm a"


def format_java_date(pattern: str | None, epoch_ms: int) -> str:
    """Format an epoch-millisecond time with a Java ``SimpleDateFormat`` pattern (common letters)."""
    pattern = pattern or DEFAULT_DATE_PATTERN
    seconds, millis = divmod(epoch_ms, 1000)
    tm = time.localtime(seconds)
    out: list[str] = []
    for match in _DATE_TOKEN.finditer(pattern):
        token = match.group(0)
        if token.startswith("'"):
            out.append(token[1:-1].replace("''", "'") if token != "''" else "'")
            continue
        letter = match.group(1)
        if letter is None:
            out.append(token)
            continue
        n = len(token)
        if letter == "y":
            out.append(f"{tm.tm_year % 100:02d}" if n == 2 else f"{tm.tm_year:0{n}d}")
        elif letter == "M":
            out.append(
                _MONTHS[tm.tm_mon - 1]
                if n >= 4
                else _MONTHS[tm.tm_mon - 1][:3]
                if n == 3
                else f"{tm.tm_mon:0{n}d}"
            )
        elif letter == "d":
            out.append(f"{tm.tm_mday:0{n}d}")
        elif letter == "H":
            out.append(f"{tm.tm_hour:0{n}d}")
        elif letter == "k":
            out.append(f"{tm.tm_hour or 24:0{n}d}")
        elif letter == "h":
            out.append(f"{(tm.tm_hour % 12) or 12:0{n}d}")
        elif letter == "K":
            out.append(f"{tm.tm_hour % 12:0{n}d}")
        elif letter == "m":
            out.append(f"{tm.tm_min:0{n}d}")
        elif letter == "s":
            out.append(f"{tm.tm_sec:0{n}d}")
        elif letter == "S":
            out.append(f"{millis:0{max(n, 3)}d}"[: max(n, 3)] if n >= 3 else f"{millis:0{n}d}")
        elif letter == "a":
            out.append("AM" if tm.tm_hour < 12 else "PM")
        elif letter == "E":
            out.append(_DAYS[tm.tm_wday] if n >= 4 else _DAYS[tm.tm_wday][:3])
        elif letter == "D":
            out.append(f"{tm.tm_yday:0{n}d}")
        elif letter in ("Z", "X", "z"):
            offset = tm.tm_gmtoff or 0
            sign = "+" if offset >= 0 else "-"
            hours, minutes = divmod(abs(offset) // 60, 60)
            if letter == "z":
                out.append(tm.tm_zone or f"GMT{sign}{hours:02d}:{minutes:02d}")
            elif letter == "X" and offset == 0:
                out.append("Z")
            elif letter == "X" and n >= 3:
                out.append(f"{sign}{hours:02d}:{minutes:02d}")
            elif letter == "X" and n == 1:
                out.append(f"{sign}{hours:02d}")
            else:
                out.append(f"{sign}{hours:02d}{minutes:02d}")
        else:
            raise ConfigError(f"unsupported date pattern letter '{letter}' in '{pattern}'")
    return "".join(out)


__all__ = ["DEFAULT_DATE_PATTERN", "format_java_date"]
