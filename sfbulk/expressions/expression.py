"""Compile Synapse expressions once, evaluate them per message (synapse.md §4).

XPath 1.0 runs on lxml with the SOAP envelope as context node. Synapse's variables (``$ctx:x``,
``$trp:x``...) are rewritten at compile time into plain lxml variables and bound per evaluation;
Synapse's functions (``get-property``, ``base64Encode``...) are lxml extension functions. A missing
value is bound as an empty node-set, which gives Jaxen's null rules for free (``=``/``!=`` false,
``string()`` empty, ``boolean()`` false). The commonest shapes, a bare ``$ctx:x`` or
``get-property('x')``, are recognised at compile time and evaluated directly in Python: that is
faster and keeps their top-level ``null`` (None) distinct from ``""``.

The pieces live beside this module: the ``Expression`` base (``base``), variables and
``get-property`` (``variables``), the XPath function library (``functions``) and value conversions
(``values``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from lxml import etree

from sfbulk.errors import ConfigError, ExpressionError
from sfbulk.expressions.base import Expression
from sfbulk.expressions.functions import (
    CONTEXT_FUNCTIONS,
    EXTENSIONS,
    SYNAPSE_FUNCTIONS,
    XPATH_FUNCTIONS,
    current,
)
from sfbulk.expressions.jsonpath import NOT_FOUND, JsonPath, json_string
from sfbulk.expressions.values import boolean_value_of, to_xpath_value
from sfbulk.expressions.variables import BARE_VARIABLES, VARIABLE_PREFIXES, get_property, variable_value
from sfbulk.message.context import MessageContext

# lxml's compiler, behind a name so a test can count compilations.
_XPath = etree.XPath

_NODE_TESTS = frozenset(["node", "text", "comment", "processing-instruction"])
_OPERATOR_NAMES = frozenset(["and", "or", "div", "mod"])
_XPATH_FUNCTIONS_NS = "http://www.w3.org/2005/xpath-functions"

# An NCName: a letter or "_", then letters, digits, ".", "-", "_" (so ``a-b`` is one name, as in XPath).
_NAME = r"[^\W\d][\w.\-]*"
_TOKEN = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<str>"[^"]*"|'[^']*')
  | \$(?P<var>{_NAME}(?::{_NAME})?)
  | (?P<num>\d+(?:\.\d*)?|\.\d+)
  | (?P<name>(?:(?P<prefix>{_NAME}):(?!:))?(?P<local>{_NAME}|\*))
  | (?P<symbol>//|::|\.\.|!=|<=|>=|[/|+\-=<>@,\[\]().])
  | (?P<other>.)
    """,
    re.X | re.S,
)
# After one of these tokens XPath expects an operand (§3.7); after any other an operator.
_BEFORE_OPERAND = frozenset(
    ["@", "::", "(", "[", ",", "/", "//", "|", "+", "-", "=", "!=", "<", "<=", ">", ">="]
)
# Symbols that read the context node (location paths, predicates, unions).
_READS_DOCUMENT = frozenset(["/", "//", "@", ".", "..", "|", "["])
_FOLLOWED_BY = re.compile(r"\s*(\(|::)?")
_STRING = r"""(?:'[^']*'|"[^"]*")"""
_GET_PROPERTY_SHAPE = re.compile(
    rf"^(?:[A-Za-z_][\w.\-]*:)?get-property\s*\(\s*({_STRING}(?:\s*,\s*{_STRING}){{0,2}})\s*\)$"
)
_STRING_LITERAL = re.compile(_STRING)
_VARIABLE_SHAPE = re.compile(r"^\$([A-Za-z_][\w.\-]*)(?::([A-Za-z_][\w.\-]*))?$")


# --- expression objects --------------------------------------------------------------------------


class VariableExpression(Expression):
    """A bare ``$ctx:name`` (or ``$trp:``, ``$body``...): looked up directly, None when missing."""

    __slots__ = ("kind", "name")

    def __init__(self, text: str, kind: str, name: str) -> None:
        super().__init__(text)
        self.kind = kind
        self.name = name

    def evaluate(self, ctx: MessageContext) -> Any:
        return variable_value(ctx, self.kind, self.name)


class GetPropertyExpression(Expression):
    """``get-property('...'[, '...'[, '...']])`` with literal arguments, evaluated in Python."""

    __slots__ = ("args",)

    def __init__(self, text: str, args: tuple[str, ...]) -> None:
        super().__init__(text)
        self.args = args

    def evaluate(self, ctx: MessageContext) -> Any:
        return get_property(ctx, self.args)


class XPathExpression(Expression):
    """A general XPath 1.0 expression, compiled by lxml once per thread that evaluates it.

    An ``etree.XPath`` object serialises its calls on an internal lock, and an evaluation gives the
    GIL up and takes it back (and again for each extension function such as ``get-property``) while
    holding that lock. One object shared by every worker thread of ``sfbulk serve`` made the threads
    queue on it: at 50 concurrent clients the seed proxy served 173 req/s with a shared evaluator and
    295 req/s with one per thread (docs/benchmarks.md, server section).
    """

    __slots__ = ("rewritten", "_namespaces", "_variables", "_needs_document", "_per_thread")

    def __init__(
        self,
        text: str,
        rewritten: str,
        xpath: etree.XPath,
        variables: tuple[tuple[str, str, str], ...],
        needs_document: bool,
        namespaces: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(text)
        self.rewritten = rewritten
        self._namespaces = dict(namespaces or {})
        self._variables = variables
        self._needs_document = needs_document
        self._per_thread = threading.local()
        self._per_thread.xpath = xpath  # the compiling thread reuses the evaluator that validated the text

    def _evaluator(self) -> etree.XPath:
        xpath = getattr(self._per_thread, "xpath", None)
        if xpath is None:
            xpath = _XPath(
                self.rewritten, namespaces=self._namespaces, extensions=EXTENSIONS, smart_strings=False
            )
            self._per_thread.xpath = xpath
        return xpath

    def evaluate(self, ctx: MessageContext) -> Any:
        bindings = {
            lxml_name: to_xpath_value(variable_value(ctx, kind, name))
            for lxml_name, kind, name in self._variables
        }
        node = ctx.envelope if self._needs_document else _NO_DOCUMENT
        xpath = self._evaluator()
        previous = getattr(current, "ctx", None)
        current.ctx = ctx
        try:
            return xpath(node, **bindings)
        except etree.XPathError as exc:
            raise ExpressionError(f"cannot evaluate XPath expression '{self.text}': {exc}") from None
        finally:
            current.ctx = previous


class JsonPathExpression(Expression):
    """``json-eval(<JSONPath>)`` over the JSON payload (an XML payload is converted first)."""

    __slots__ = ("path",)

    def __init__(self, text: str, path: JsonPath) -> None:
        super().__init__(text)
        self.path = path

    def _find(self, ctx: MessageContext) -> Any:
        document = ctx.json_value()
        if document is None and ctx.payload_kind == "empty":
            return NOT_FOUND
        return self.path.find(document)

    def evaluate(self, ctx: MessageContext) -> Any:
        found = self._find(ctx)
        return None if found is NOT_FOUND else found

    def string_value(self, ctx: MessageContext) -> str | None:
        if self.path.whole:
            return ctx.json_text() if ctx.payload_kind != "empty" else ""
        return json_string(self._find(ctx))

    def boolean_value(self, ctx: MessageContext) -> bool:
        found = self._find(ctx)
        return found is not NOT_FOUND and boolean_value_of(found)


# A context node for expressions that never look at the message (``concat($ctx:a, '/x')``): binding
# the envelope would force the body to be parsed for nothing.
_NO_DOCUMENT = etree.Element("none")


# --- compiling ---------------------------------------------------------------------------------------


def compile_expression(text: str, namespaces: Mapping[str | None, str] | None = None) -> Expression:
    """Compile an expression once (at config load). Raises ConfigError naming the expression."""
    if text is None or not str(text).strip():
        raise ConfigError("an expression is required but the text is empty")
    source = str(text).strip()
    if source.startswith("json-eval("):
        if not source.endswith(")"):
            raise ConfigError(f"invalid expression '{text}': json-eval( is not closed")
        return JsonPathExpression(source, JsonPath(source[len("json-eval(") : -1]))
    shape = _VARIABLE_SHAPE.match(source)
    if shape is not None:
        kind, name = _variable_kind(shape.group(1), shape.group(2), source)
        return VariableExpression(source, kind, name)
    shape = _GET_PROPERTY_SHAPE.match(source)
    if shape is not None:
        args = tuple(lit[1:-1] for lit in _STRING_LITERAL.findall(shape.group(1)))
        _check_get_property_args(args, source)
        return GetPropertyExpression(source, args)
    return _compile_xpath(source, namespaces or {})


def _variable_kind(first: str, second: str | None, text: str) -> tuple[str, str]:
    if second is None:
        if first in BARE_VARIABLES:
            return first, ""
        raise ConfigError(
            f"invalid expression '{text}': unknown variable ${first}; use $ctx:, $axis2:, $trp:, $func:, "
            "$operation:, $url:, $sys:, $body, $header or $env"
        )
    if first in VARIABLE_PREFIXES:
        return first, second
    raise ConfigError(
        f"invalid expression '{text}': unknown variable prefix ${first}:; use $ctx:, $axis2:, $trp:, $func:, "
        "$operation:, $url: or $sys:"
    )


def _check_get_property_args(args: tuple[str, ...], text: str) -> None:
    if len(args) >= 2 and args[0] == "file":
        raise ConfigError(f"invalid expression '{text}': get-property scope 'file' is not supported")
    if len(args) >= 2 and args[0] == "registry" and "@" in args[1]:
        raise ConfigError(
            f"invalid expression '{text}': registry resource properties (key@property) are not supported; "
            "read the resource itself"
        )


def _compile_xpath(source: str, namespaces: Mapping[str | None, str]) -> XPathExpression:
    """Rewrite Synapse's variables and function names into plain XPath, then let lxml compile it.

    lxml (libxml2) implements XPath 1.0 in full; what the rewriter must get right is which names it
    touches. It tokenizes by XPath 1.0 §3.7: after a token other than ``@ :: ( [ ,`` or an operator,
    ``*`` is multiplication and an NCName is an operator name, so in ``(a) or (b)`` the ``or`` is
    the operator, never a function call, and in ``div div div`` the middle one is.
    """
    ns = {k: v for k, v in namespaces.items() if k}
    out: list[str] = []
    variables: dict[tuple[str, str], str] = {}
    needs_document = False
    expect_operand = True  # no preceding token yet
    previous = ""
    for match in _TOKEN.finditer(source):
        group = match.lastgroup
        token = match.group(0)
        if group == "ws":
            out.append(token)
            continue
        if group == "var":
            first, _, second = match.group("var").partition(":")
            kind, name = _variable_kind(first, second or None, source)
            key = (kind, name)
            if key not in variables:
                variables[key] = f"sv{len(variables)}"
            out.append("$" + variables[key])
            if kind in BARE_VARIABLES:
                needs_document = True
            expect_operand = False
        elif group == "name":
            prefix, local = match.group("prefix"), match.group("local")
            if not expect_operand:
                if prefix is None and (local in _OPERATOR_NAMES or local == "*"):
                    out.append(token)  # and / or / div / mod / multiply
                    expect_operand = True
                    previous = token
                    continue
                raise ConfigError(
                    f"invalid XPath expression '{source}': expected an operator (and, or, div, mod, *, =, |...) "
                    f"after '{previous}', found '{token}'"
                )
            following = _FOLLOWED_BY.match(source, match.end())  # always matches (all optional)
            after = following.group(1) if following else None
            if after == "(" and local not in _NODE_TESTS and local != "*":
                args_start = following.end() if following else match.end()
                out.append(_function_name(source, prefix, local, ns, args_start))
                if local in CONTEXT_FUNCTIONS:
                    needs_document = True
            else:  # a name test, a node type test (text()...) or an axis name (child::)
                out.append(token)
                needs_document = True
            expect_operand = False
        else:
            if token in _READS_DOCUMENT:
                needs_document = True
            out.append(token)
            expect_operand = group == "other" or token in _BEFORE_OPERAND
        previous = token
    rewritten = "".join(out)
    try:
        xpath = _XPath(rewritten, namespaces=ns, extensions=EXTENSIONS, smart_strings=False)
    except etree.XPathSyntaxError as exc:
        raise ConfigError(f"invalid XPath expression '{source}': {exc}") from None
    except (etree.XPathError, ValueError, TypeError) as exc:
        raise ConfigError(f"invalid XPath expression '{source}': {exc}") from None
    bound = tuple((lxml_name, kind, name) for (kind, name), lxml_name in variables.items())
    return XPathExpression(source, rewritten, xpath, bound, needs_document, ns)


def _function_name(
    source: str, prefix: str | None, local: str, ns: Mapping[str, str], args_start: int
) -> str:
    """The name lxml is given for a function call; ConfigError for a function neither XPath nor Synapse has.

    Jaxen ignores an unbound prefix (``fn:concat`` is ``concat``); we also drop one bound to the XPath
    functions namespace. Other bound prefixes (EXSLT...) stay for lxml to resolve.
    """
    if prefix and prefix in ns and ns[prefix] != _XPATH_FUNCTIONS_NS:
        return f"{prefix}:{local}"
    if local not in XPATH_FUNCTIONS and local not in SYNAPSE_FUNCTIONS:
        raise ConfigError(f"invalid expression '{source}': unknown function {local}()")
    if local == "get-property":
        _check_literal_get_property(source, args_start)
    return local


def _check_literal_get_property(source: str, args_start: int) -> None:
    literal_args = re.match(rf"\s*({_STRING}(?:\s*,\s*{_STRING}){{0,2}})\s*\)", source[args_start:])
    if literal_args:
        args = tuple(lit[1:-1] for lit in _STRING_LITERAL.findall(literal_args.group(1)))
        _check_get_property_args(args, source)


# --- {...} values ---------------------------------------------------------------------------------------


class Value:
    """A config value that is either literal text or ``{expression}`` (synapse.md §2.4 step 2)."""

    __slots__ = ("text", "expression", "literal")

    def __init__(self, text: str, expression: Expression | None, literal: str | None) -> None:
        self.text = text
        self.expression = expression
        self.literal = literal

    @classmethod
    def parse(cls, text: str, namespaces: Mapping[str | None, str] | None = None) -> Value:
        """Classify ``text``: ``{expr}`` is dynamic (no surrounding whitespace), ``{{expr}}`` is the
        escaped literal ``{expr}``, anything else is literal and kept untrimmed."""
        text = "" if text is None else str(text)
        trimmed = text.strip()
        if len(trimmed) > 3 and trimmed.startswith("{{") and trimmed.endswith("}}"):
            return cls(text, None, trimmed[1:-1])
        if len(text) >= 2 and text[0] == "{" and text[-1] == "}":
            inner = text[1:-1]
            try:
                expression = compile_expression(inner, namespaces)
            except ConfigError as exc:
                raise ConfigError(f"invalid value '{text}': {exc.message}") from None
            return cls(text, expression, None)
        return cls(text, None, text)

    @property
    def is_dynamic(self) -> bool:
        return self.expression is not None

    def evaluate(self, ctx: MessageContext) -> str | None:
        """The literal, or the expression's string value (None when it yields null)."""
        if self.expression is None:
            return self.literal
        return self.expression.string_value(ctx)

    def __repr__(self) -> str:
        return f"Value({self.text!r})"


__all__ = [
    "Expression",
    "GetPropertyExpression",
    "JsonPathExpression",
    "Value",
    "VariableExpression",
    "XPathExpression",
    "compile_expression",
]
