"""Keep access/refresh tokens, client secrets and passwords out of logs, errors and faults.

Two mechanisms, because secrets reach us two ways:

* ``Secret`` wraps a value we hold (in a connection, in the auth layer). Its ``str``/``repr`` are
  masked; code that must send it calls ``reveal()`` at the last moment.
* ``Redactor`` masks secrets inside text we did not build (a logged payload, a backend body): it
  knows the values of the secrets alive (and of the ones released last) and the names under which secrets travel
  (``<accessToken>``, ``"refresh_token"``, ``X-SFDC-Session:``, ``client_secret=``...).
  ``install_log_redaction()`` puts it on the sfbulk logger's records, so even DEBUG output is clean.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterable

MASK = "***"

#: Names (element, JSON key, form field, header, property) whose values are always secret.
SECRET_NAMES: tuple[str, ...] = (
    "accessToken",
    "access_token",
    "refreshToken",
    "refresh_token",
    "clientSecret",
    "client_secret",
    "password",
    "privateKey",
    "privateKeyPassword",
    "assertion",
    "sessionId",
    "X-SFDC-Session",
    "Authorization",
    "signature",
    "uri.var.accessToken",
    "uri.var.accessToken.reg",
    "uri.var.refreshToken",
    "uri.var.clientSecret",
)

_SECRET_NAMES_LOWER = frozenset(n.lower() for n in SECRET_NAMES)


def is_secret_name(name: str) -> bool:
    """True when a property/header/element called ``name`` holds a secret."""
    return name.lower() in _SECRET_NAMES_LOWER


class Secret:
    """A secret value whose printed forms are masked. Compare and hash by value."""

    __slots__ = ("_value", "__weakref__")

    def __init__(self, value: str) -> None:
        self._value = value
        if default_redactor.hold(value):
            weakref.finalize(self, default_redactor.release, value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return MASK


def reveal(value: Secret | str | None) -> str | None:
    """The plain value of a ``Secret`` or string (``None`` stays ``None``)."""
    if isinstance(value, Secret):
        return value.reveal()
    return value


_names_alt = "|".join(re.escape(n) for n in sorted(SECRET_NAMES, key=len, reverse=True))
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # <accessToken>value</accessToken>, with an optional prefix: <ns:accessToken ...>value</ns:accessToken>
    re.compile(rf"(<(?:[\w.-]+:)?(?:{_names_alt})(?:\s[^>]*)?>)([^<]+)(</)", re.IGNORECASE),
    # "access_token": "value"
    re.compile(rf'("(?:{_names_alt})"\s*:\s*")((?:[^"\\]|\\.)+)(")', re.IGNORECASE),
    # access_token=value (form bodies, query strings)
    re.compile(rf"((?:^|[?&\s])(?:{_names_alt})=)([^&\s]+)()", re.IGNORECASE),
    # X-SFDC-Session: value / Authorization: Bearer value (header dumps)
    re.compile(rf"((?:^|\n|\s|')(?:{_names_alt})'?\s*[:=]\s*'?)([^\s',}}]+)()", re.IGNORECASE),
)


class Redactor:
    """Masks known secret values and values stored under secret names in arbitrary text.

    Known values are bounded: a ``Secret`` holds its value here while it is alive (``hold``), and
    when it is gone the value stays masked among the ``recent_limit`` most recently released ones
    (a message built while the secret lived may be logged just after). It used to keep every value
    ever seen in one regular expression, compiled again after each new one: a server shown 3,000
    requests with distinct client secrets spent minutes of CPU compiling, and kept them all.
    Matching is plain substring search, longest value first, so nothing is compiled.
    """

    #: Values shorter than this are not masked by value (too likely to collide with normal text).
    min_length = 6
    #: Released values still masked (most recent first out of the window).
    recent_limit = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}  # value -> live holders (``add`` holds for ever)
        self._recent: OrderedDict[str, None] = OrderedDict()  # released values, oldest first
        self._ordered: tuple[str, ...] | None = ()  # every masked value, longest first; None: stale
        # Releases come from finalizers, which the garbage collector may run in any thread at any
        # allocation, also inside this class's locked code: they are queued (deque.append is
        # atomic) and applied under the lock, never waiting for it.
        self._released: deque[str] = deque()

    def add(self, value: str | None) -> None:
        """Mask ``value`` for the life of this redactor."""
        self.hold(value)

    def add_all(self, values: Iterable[str | None]) -> None:
        for value in values:
            self.add(value)

    def hold(self, value: str | None) -> bool:
        """Mask ``value`` until as many ``release`` calls; False when it is too short to mask."""
        if not value or len(value) < self.min_length:
            return False
        with self._lock:
            self._apply_releases()
            count = self._held.get(value, 0)
            self._held[value] = count + 1
            if count == 0:
                self._recent.pop(value, None)
                self._ordered = None
        return True

    def release(self, value: str) -> None:
        """One holder of ``value`` is gone; the last one moves it to the recent window."""
        self._released.append(value)
        if self._lock.acquire(blocking=False):  # held (maybe by this very thread): applied later
            try:
                self._apply_releases()
            finally:
                self._lock.release()

    def _apply_releases(self) -> None:
        """The queued releases (the lock is held)."""
        while self._released:
            value = self._released.popleft()
            count = self._held.get(value, 0)
            if count > 1:
                self._held[value] = count - 1
                continue
            if count == 0:
                continue
            del self._held[value]
            self._recent[value] = None
            while len(self._recent) > self.recent_limit:
                self._recent.popitem(last=False)
                self._ordered = None

    def __len__(self) -> int:
        """How many values are masked now (held plus recently released)."""
        with self._lock:
            self._apply_releases()
            return len(self._held) + len(self._recent)

    def _values(self) -> tuple[str, ...]:
        with self._lock:
            self._apply_releases()
            if self._ordered is None:
                self._ordered = tuple(sorted((*self._held, *self._recent), key=len, reverse=True))
            return self._ordered

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        if not text:
            return text
        for value in self._values():
            if value in text:
                text = text.replace(value, MASK)
        for named in _PATTERNS:
            text = named.sub(lambda m: m.group(1) + MASK + m.group(3), text)
        return text


#: Process-wide redactor: every ``Secret`` registers itself here.
default_redactor = Redactor()


def redact(text: str) -> str:
    """Mask secrets in ``text`` with the process-wide redactor."""
    return default_redactor.redact(text)


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites records so their message holds no secret."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or default_redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redactor.redact(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = self.redactor.redact(logging.Formatter().formatException(record.exc_info))
        return True


_installed = False
_install_lock = threading.Lock()


def install_log_redaction() -> None:
    """Make every record of the ``sfbulk`` logger tree pass through the redactor.

    A filter on a logger only sees records logged to that very logger, so the filter is attached
    through the record factory instead: it applies to records created by any ``sfbulk.*`` logger,
    whatever handler (ours, pytest's caplog, the user's) finally emits them. Idempotent.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()
        redacting = RedactingFilter()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            name = record.name or ""  # logging.makeLogRecord() starts a record with no name
            if name == "sfbulk" or name.startswith("sfbulk."):
                redacting.filter(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
