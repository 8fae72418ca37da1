"""The sfbulk exception tree: one base, then a branch per layer, so callers catch at the right level.

    SfBulkError
    ├── ConfigError ── ConfigErrors                     config files (YAML, Synapse XML, bundles)
    ├── MediationFault                                  a message flow failed (Synapse's SynapseException)
    │   ├── ExpressionError, PayloadError
    │   └── ParameterError ── HostNotAllowedError (sfbulk.transport)
    ├── TransportError                                  no HTTP response (sfbulk.transport)
    │   └── ConnectError, TransportTimeout, ConnectionClosedError
    ├── AuthError ── TokenEndpointUnavailable (sfbulk.connector.auth)
    ├── RegistryError
    ├── ApiError                                        Salesforce (or the emulator) answered an error status
    ├── BulkError ── BulkInputError, PollTimeout, BulkInterrupted
    └── UnknownProxyError (also a LookupError)

The Synapse ERROR_CODE an error gets when it interrupts a message flow is an attribute, never the
class parent: ``error_code`` on every class, and on errors raised with a code and detail of their
own (``CodedError``: mediation faults and transport errors) the instance's ``code``/``detail``. So
a bulk user catching ``TransportError`` catches transport failures only, and the engine still gives
each error its code (docs/connector.md, "Fault codes").

Messages say what went wrong and what to do about it. They never carry secrets (access or refresh
tokens, client secrets, passwords): build messages from names and ids, never from request bodies.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import ClassVar


class SfBulkError(Exception):
    """Base of every error sfbulk raises on purpose."""

    #: ERROR_CODE this error gets when it interrupts a message flow; 0 is Synapse's generic code.
    error_code: ClassVar[int] = 0


class CodedError(Exception):
    """Mixin of the errors raised with an ERROR_CODE (and optionally an ERROR_DETAIL) of their own.

    ``code`` is the class's ``error_code`` unless the raiser gives one; the engine copies ``message``,
    ``code`` and ``detail`` to ERROR_MESSAGE, ERROR_CODE and ERROR_DETAIL. It is a mixin, not a
    layer: ``MediationFault`` and ``TransportError`` carry it side by side.
    """

    error_code: ClassVar[int] = 0

    def __init__(self, message: str, *, code: int | str | None = None, detail: str | None = None) -> None:
        self.message = message
        self.code: int | str = type(self).error_code if code is None else code
        self.detail = detail
        super().__init__(message)


# --- configuration ---------------------------------------------------------------------------


class ConfigError(SfBulkError):
    """A config file (YAML, Synapse XML, connector bundle) is invalid.

    Carries the file, 1-based line and the field (element/attribute/key path) when known, as jinja's
    TemplateSyntaxError carries its location.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        elif self.line:
            where = f"line {self.line}: "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}"


class ConfigErrors(ConfigError):
    """Several config problems found in one load; the server refuses to start half-configured."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors) or "configuration is invalid")

    def __str__(self) -> str:
        if len(self.errors) == 1:
            return str(self.errors[0])
        return f"{len(self.errors)} configuration errors:\n" + "\n".join(f"  {e}" for e in self.errors)


# --- mediation faults --------------------------------------------------------------------------


class MediationFault(SfBulkError, CodedError):
    """A fault raised while mediating a message (Synapse's SynapseException).

    The engine catches it, sets ERROR_CODE / ERROR_MESSAGE / ERROR_DETAIL on the message context
    (unless ERROR_CODE is already set) and runs the fault handler on top of the fault stack.
    """


class ExpressionError(MediationFault):
    """An expression failed to evaluate (or to compile, when raised at load time as ConfigError)."""


class PayloadError(MediationFault):
    """The message body could not be parsed: malformed XML/JSON, a DTD, entity expansion, too deep."""

    error_code = 601000  # MI's code for message-build errors


class ParameterError(MediationFault):
    """A required operation/template parameter is missing, or a value is not allowed."""

    error_code = 500101  # MI's code for a missing mandatory template parameter


class UnknownProxyError(SfBulkError, LookupError):
    """No proxy of that name is loaded (the server answers 404)."""

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        self.name = name
        hint = f"; loaded proxies: {', '.join(sorted(known))}" if known else "; no proxy is loaded"
        super().__init__(f"no proxy named {name!r}{hint}")


# --- transport (sfbulk.transport maps the HTTP client's exceptions to these) -------------------


class TransportError(SfBulkError, CodedError):
    """An HTTP exchange failed below the HTTP level (no response). Synapse 1015xx codes."""

    error_code = 101500  # sender I/O error


class ConnectError(TransportError):
    """The connection could not be established (refused, DNS, TLS handshake, an invalid URL)."""

    error_code = 101503


class TransportTimeout(TransportError):
    """No response (or no more of it) within the configured timeout."""

    error_code = 101504


#: The former name of ``TransportTimeout``, kept for callers that import it.
TimeoutError_ = TransportTimeout


class ConnectionClosedError(TransportError):
    """The peer closed the connection before a full response arrived, or the Connection was closed."""

    error_code = 101505


# --- Salesforce and auth -----------------------------------------------------------------------


class ApiError(SfBulkError):
    """Salesforce (or the emulator) answered with an error status: the API client's error.

    ``exception_code``/``exception_message`` come from the Bulk API ``<error>`` body (or the OAuth
    ``error``/``error_description`` JSON) when there is one.
    """

    error_code = 700301

    def __init__(
        self,
        status: int,
        exception_code: str | None = None,
        exception_message: str | None = None,
        *,
        context: str | None = None,
    ) -> None:
        self.status = status
        self.exception_code = exception_code
        self.exception_message = exception_message
        self.context = context
        parts = [f"HTTP {status}"]
        if exception_code:
            parts.append(exception_code)
        if exception_message:
            parts.append(exception_message)
        text = ": ".join(parts)
        super().__init__(f"{context}: {text}" if context else text)


class AuthError(SfBulkError):
    """Obtaining or refreshing an access token failed (bad client id/secret, revoked refresh token...)."""

    error_code = 700101


class RegistryError(SfBulkError):
    """A registry key is invalid (outside the root, absolute, '..') or a resource cannot be read/written."""

    error_code = 700201


# --- bulk load / extract -----------------------------------------------------------------------


class BulkError(SfBulkError):
    """A bulk load or extract could not complete."""


class BulkInputError(BulkError):
    """The input of a load (CSV file, encoding, options) is unusable; nothing was sent for it."""


class PollTimeout(BulkError):
    """Polling gave up: the job/batch did not reach a final state within the overall timeout."""

    def __init__(self, message: str, *, job_id: str, batch_ids: list[str] | None = None) -> None:
        self.job_id = job_id
        self.batch_ids = list(batch_ids or [])
        super().__init__(message)


class BulkInterrupted(BulkError):
    """The run was stopped by a signal (Ctrl-C, SIGTERM) after finishing its in-flight requests.

    ``job_id`` is the job (None when none was created yet); the journal kept next to the result
    files lets the same command resume it.
    """

    def __init__(self, message: str, *, job_id: str | None, signum: int = 2) -> None:
        self.job_id = job_id
        self.signum = signum
        super().__init__(message)


#: Longest error text (characters) put in a log line, a fault's ERROR_MESSAGE or a fault body.
MESSAGE_LIMIT = 1000


def clip(text: object, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters: a caller's value never floods a log or a fault."""
    one_line = " ".join(str(text).split("\n")).replace("\r", " ")
    if len(one_line) <= limit:
        return one_line
    return f"{one_line[:limit]}... ({len(one_line) - limit} more characters)"


def bounded_traceback(exc: BaseException, mask: Callable[[str], str], limit: int = 8 * MESSAGE_LIMIT) -> str:
    """``exc``'s traceback (chained causes included), ``mask``-ed, then cut to ``limit`` characters."""
    text = mask("".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=40)))
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... ({len(text) - limit} characters left out) ...\n{text[-half:]}"


__all__ = [
    "MESSAGE_LIMIT",
    "bounded_traceback",
    "clip",
    "ApiError",
    "AuthError",
    "BulkError",
    "BulkInputError",
    "BulkInterrupted",
    "CodedError",
    "ConfigError",
    "ConfigErrors",
    "ConnectError",
    "ConnectionClosedError",
    "ExpressionError",
    "MediationFault",
    "ParameterError",
    "PayloadError",
    "PollTimeout",
    "RegistryError",
    "SfBulkError",
    "TimeoutError_",
    "TransportError",
    "TransportTimeout",
    "UnknownProxyError",
]
