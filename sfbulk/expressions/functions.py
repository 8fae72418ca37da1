"""The XPath function library: XPath 1.0's names, and Synapse's extension functions bound into lxml (synapse.md §4.4).

lxml calls an extension function without the message, so the evaluating thread's message context
is kept in ``current`` (set by ``XPathExpression.evaluate``) for ``get-property`` to read.
"""

from __future__ import annotations

import base64
import threading
from typing import Any
from urllib.parse import quote_plus

from sfbulk.errors import ExpressionError
from sfbulk.expressions.values import to_xpath_value, xpath_string
from sfbulk.expressions.variables import get_property
from sfbulk.message.context import MessageContext

#: XPath 1.0 core functions plus the Jaxen extras Synapse's function context inherits.
XPATH_FUNCTIONS = frozenset(
    "last position count id local-name namespace-uri name string concat starts-with contains "
    "substring-before substring-after substring string-length normalize-space translate boolean not "
    "true false lang number sum floor ceiling round".split()
)
SYNAPSE_FUNCTIONS = frozenset(
    ["get-property", "base64Encode", "base64Decode", "url-encode", "ends-with", "lower-case", "upper-case"]
)
#: Functions whose zero-argument form reads the context node.
CONTEXT_FUNCTIONS = frozenset(
    [
        "last",
        "position",
        "id",
        "local-name",
        "namespace-uri",
        "name",
        "string",
        "normalize-space",
        "string-length",
        "number",
        "lang",
    ]
)
#: The message context of the XPath evaluation running on this thread.
current = threading.local()


def _ctx() -> MessageContext:
    ctx: MessageContext | None = getattr(current, "ctx", None)
    if ctx is None:
        raise ExpressionError("Synapse functions need a message context")
    return ctx


def _guard(label: str, func: Any) -> Any:
    """Run an extension function; lxml re-raises what it raises, so errors leave as ExpressionError."""

    def wrapper(_context: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except ExpressionError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported with the function name
            raise ExpressionError(f"{label}(): {exc}") from None

    return wrapper


def _get_property(*args: Any) -> Any:
    value = get_property(_ctx(), [xpath_string(a) for a in args])
    return to_xpath_value(value)


def _charset(args: tuple[Any, ...]) -> str:
    return xpath_string(args[0]) if args else "UTF-8"


def _base64_encode(value: Any, *charset: Any) -> str:
    return base64.b64encode(xpath_string(value).encode(_charset(charset))).decode("ascii")


def _base64_decode(value: Any, *charset: Any) -> str:
    return base64.b64decode(xpath_string(value)).decode(_charset(charset))


def _url_encode(value: Any, *charset: Any) -> str:
    # java.net.URLEncoder.encode(value, charset): space -> "+", "*-._" kept.
    return quote_plus(xpath_string(value), safe="*", encoding=_charset(charset)).replace("~", "%7E")


def _ends_with(value: Any, suffix: Any) -> bool:
    return xpath_string(value).endswith(xpath_string(suffix))


def _lower_case(value: Any, *_locale: Any) -> str:
    return xpath_string(value).lower()


def _upper_case(value: Any, *_locale: Any) -> str:
    return xpath_string(value).upper()


EXTENSIONS = {
    (None, "get-property"): _guard("get-property", _get_property),
    (None, "base64Encode"): _guard("base64Encode", _base64_encode),
    (None, "base64Decode"): _guard("base64Decode", _base64_decode),
    (None, "url-encode"): _guard("url-encode", _url_encode),
    (None, "ends-with"): _guard("ends-with", _ends_with),
    (None, "lower-case"): _guard("lower-case", _lower_case),
    (None, "upper-case"): _guard("upper-case", _upper_case),
}

__all__ = ["CONTEXT_FUNCTIONS", "EXTENSIONS", "SYNAPSE_FUNCTIONS", "XPATH_FUNCTIONS", "current"]
