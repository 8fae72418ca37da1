"""The bundle's Jinja templates: their environments, what variables they use, compiled when first rendered.

Loading a bundle checks every template (syntax, and that each variable is a declared parameter)
but compiles none: compiling is deferred to the first render (``LazyTemplate``), inline templates
of the form ``text{{ name }}text`` are analysed without Jinja, and the variables of a body
template are kept in the start-up cache (tests/unit/test_startup.py proves each shortcut gives
what Jinja gives).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

if TYPE_CHECKING:
    from sfbulk.connector.bundle.cache import ParseCache


# --- environments -----------------------------------------------------------------------------


def _path_segment(value: Any) -> str:
    """Every value in a path is one percent-encoded segment: '../x' → '..%2Fx'."""
    return quote("" if value is None else str(value), safe="")


def _xml_autoescape(name: str | None) -> bool:
    return bool(name) and name.endswith((".xml.j2", ".xml"))  # type: ignore[union-attr]


#: query values, header values and the content type
INLINE_ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
#: the URL path: each value becomes one percent-encoded segment
PATH_ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False,
                                                 finalize=_path_segment)


def body_environment(templates_dir: Path) -> jinja2.Environment:
    """The environment of the body templates in ``templates_dir`` (XML ones autoescaped)."""
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=_xml_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )


# --- templates compiled on first render -------------------------------------------------------


class LazyTemplate:
    """A template compiled on its first render (thread-safe).

    Load-time analysis has already found every error the compilation could report (syntax errors
    from the parse, the rest from the code generation ``find_undeclared_variables`` runs), so
    compiling later changes nothing but when the work is done.
    """

    __slots__ = ("_compile", "description", "_template", "_lock")

    def __init__(self, compile_: Callable[[], jinja2.Template], description: str) -> None:
        self._compile = compile_
        self.description = description
        self._template: jinja2.Template | None = None
        self._lock = threading.Lock()

    @classmethod
    def inline(cls, environment: jinja2.Environment, source: str) -> LazyTemplate:
        """``environment.from_string(source)``, later."""
        return cls(lambda: environment.from_string(source), source)

    @classmethod
    def from_loader(cls, environment: jinja2.Environment, name: str) -> LazyTemplate:
        """``environment.get_template(name)`` with the file as it is now, compiled later.

        The source is read at once (as the loader reads it), so the template is the file's
        content at load time, not at first render.
        """
        assert environment.loader is not None
        source, filename, uptodate = environment.loader.get_source(environment, name)

        def compile_() -> jinja2.Template:
            code = environment.compile(source, name, filename)
            return environment.template_class.from_code(environment, code, environment.make_globals(None), uptodate)

        return cls(compile_, name)

    @property
    def template(self) -> jinja2.Template:
        template = self._template
        if template is None:
            with self._lock:
                if self._template is None:
                    self._template = self._compile()
                template = self._template
        return template

    def render(self, *args: Any, **kwargs: Any) -> str:
        return self.template.render(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<LazyTemplate {self.description!r}>"


#: a compiled template, or one compiled when first rendered
Renderable = jinja2.Template | LazyTemplate


# --- analysis: the variables a template uses --------------------------------------------------


_SIMPLE_VARIABLE = re.compile(r"\{\{[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}")

#: names that are not (or not always) a plain context variable inside ``{{ }}``; kept out of the fast path
_JINJA_SPECIAL_NAMES = frozenset({
    "true", "false", "none", "True", "False", "None", "self", "loop", "super", "caller", "varargs", "kwargs",
    "not", "and", "or", "in", "is", "if", "else", "elif", "endif", "for", "endfor", "block", "endblock",
    "extends", "include", "import", "from", "as", "with", "endwith", "without", "context", "ignore", "missing",
    "set", "endset", "macro", "endmacro", "call", "endcall", "filter", "endfilter", "raw", "endraw",
    "autoescape", "endautoescape", "recursive", "scoped", "required", "do", "break", "continue", "pass",
    "trans", "pluralize", "endtrans",
})


def simple_template_variables(source: str) -> frozenset[str] | None:
    """The variables of a template that is only text and ``{{ name }}``, without Jinja; else None.

    For the sources it accepts the answer is what Jinja's ``find_undeclared_variables`` says, and
    they compile: text without braces or line breaks is output as is, and each ``{{ name }}`` is
    a plain variable lookup (names Jinja treats specially are refused).
    """
    pieces = _SIMPLE_VARIABLE.split(source)
    for text in pieces[0::2]:
        if "{" in text or "}" in text or "\n" in text or "\r" in text:
            return None
    names = pieces[1::2]
    if any(name in _JINJA_SPECIAL_NAMES for name in names):
        return None
    return frozenset(names)


def inline_template(environment: jinja2.Environment, source: str) -> tuple[Renderable, frozenset[str]]:
    """An inline template and its variables; raises ``jinja2.TemplateSyntaxError``.

    Simple sources (see ``simple_template_variables``) are compiled when first rendered, the
    others at once.
    """
    simple = simple_template_variables(source)
    if simple is not None:
        return LazyTemplate.inline(environment, source), simple
    ast = environment.parse(source)
    variables = frozenset(jinja2.meta.find_undeclared_variables(ast))
    return environment.from_string(source), variables


def body_template(environment: jinja2.Environment, name: str, filename: str, source: str,
                  cache: ParseCache | None) -> tuple[LazyTemplate, Iterable[str]]:
    """The body template ``name`` (text ``source``) and its variables; raises ``jinja2.TemplateSyntaxError``.

    The variables of a text analysed without error before come from the start-up cache.
    """
    cached = cache.get("body", source) if cache is not None else None
    if isinstance(cached, list) and all(type(variable) is str for variable in cached):
        variables: Iterable[str] = cached  # this very text was analysed without error before
    else:
        ast = environment.parse(source, name, filename)
        # The code generation run here raises what compiling would (unknown filters, ...).
        variables = jinja2.meta.find_undeclared_variables(ast)
        if cache is not None:
            cache.put("body", source, sorted(variables))
    return LazyTemplate.from_loader(environment, name), variables


__all__ = [
    "INLINE_ENVIRONMENT",
    "PATH_ENVIRONMENT",
    "LazyTemplate",
    "Renderable",
    "body_environment",
    "body_template",
    "inline_template",
    "simple_template_variables",
]
