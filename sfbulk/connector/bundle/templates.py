"""The bundle's Jinja templates: their environments, what variables they use, compiled when first rendered.

Loading a bundle checks every template (syntax, and that each variable is a declared parameter)
but compiles none: compiling is deferred to the first render (``LazyTemplate``), and the
variables Jinja finds in a template's text are kept in the start-up cache, so a bundle loaded
before parses no template (tests/unit/test_startup.py proves both give what Jinja gives).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
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
PATH_ENVIRONMENT = ImmutableSandboxedEnvironment(
    undefined=jinja2.StrictUndefined, autoescape=False, finalize=_path_segment
)


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
            return environment.template_class.from_code(
                environment, code, environment.make_globals(None), uptodate
            )

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


def template_variables(
    environment: jinja2.Environment,
    kind: str,
    source: str,
    cache: ParseCache | None,
    name: str | None = None,
    filename: str | None = None,
) -> frozenset[str]:
    """The variables ``source`` uses, as Jinja finds them; raises ``jinja2.TemplateSyntaxError``.

    Jinja's analysis runs the code generation, so it raises what compiling would (unknown
    filters, ...). The answer for a text analysed without error before comes from the start-up
    cache (``kind`` names the environment's syntax: "inline" or "body").
    """
    cached = cache.get(kind, source) if cache is not None else None
    if isinstance(cached, list) and all(type(variable) is str for variable in cached):
        return frozenset(cached)  # this very text was analysed without error before
    ast = environment.parse(source, name, filename)
    variables = frozenset(jinja2.meta.find_undeclared_variables(ast))
    if cache is not None:
        cache.put(kind, source, sorted(variables))
    return variables


def inline_template(
    environment: jinja2.Environment, source: str, cache: ParseCache | None = None
) -> tuple[LazyTemplate, frozenset[str]]:
    """An inline template (compiled when first rendered) and its variables; raises ``jinja2.TemplateSyntaxError``."""
    return LazyTemplate.inline(environment, source), template_variables(environment, "inline", source, cache)


def body_template(
    environment: jinja2.Environment, name: str, filename: str, source: str, cache: ParseCache | None
) -> tuple[LazyTemplate, frozenset[str]]:
    """The body template ``name`` (text ``source``) and its variables; raises ``jinja2.TemplateSyntaxError``."""
    variables = template_variables(environment, "body", source, cache, name, filename)
    return LazyTemplate.from_loader(environment, name), variables


__all__ = [
    "INLINE_ENVIRONMENT",
    "PATH_ENVIRONMENT",
    "LazyTemplate",
    "Renderable",
    "body_environment",
    "body_template",
    "inline_template",
    "template_variables",
]
