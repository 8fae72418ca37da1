"""Loading and validating the connector bundle (connector.yaml + operations/*.yaml + templates/).

Everything here is data handling: YAML read with line numbers, validated with JSON Schema plus
cross-checks (templates exist and compile, every template variable is a declared parameter),
turned into frozen dataclasses whose templates are compiled once. ``OperationDef.bind`` checks
parameter values and ``OperationDef.render`` turns them into the pieces of one HTTP request.
The format is documented in docs/connector.md.

Loading is on the start-up path of every ``sfbulk load``/``extract``, so each step has a fast
path that gives the same result as the general one (tests/unit/test_startup.py proves it): YAML
is parsed with libyaml when PyYAML has it (any failure is re-parsed by the pure-Python loader,
whose errors are the ones reported), documents are checked by a small validator for the schema
keywords used here (jsonschema is imported only to explain a document that fails it), templates
are compiled on their first render (the inline ones of the form ``text{{ name }}text`` are even
analysed without Jinja).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import numbers
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

if TYPE_CHECKING:
    import yaml

from sfbulk.errors import ConfigError, ConfigErrors, ParameterError

log = logging.getLogger("sfbulk.connector")

IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_SCALAR = {"type": ["string", "number", "boolean"]}

CONNECTOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "version", "operations"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": IDENTIFIER},
        "version": {"type": ["string", "number"]},
        "description": {"type": "string"},
        "operations": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": IDENTIFIER},
            "additionalProperties": {"type": "string", "minLength": 1},
        },
    },
}

PARAMETER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": IDENTIFIER},
        "required": {"type": "boolean"},
        "default": _SCALAR,
        "description": {"type": "string"},
        "allowed": {"type": "array", "minItems": 1, "items": _SCALAR},
        "strict": {"type": "boolean"},
    },
}

OPERATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": IDENTIFIER},
        "kind": {"enum": ["http", "init"]},
        "description": {"type": "string"},
        "parameters": {"type": "array", "items": PARAMETER_SCHEMA},
        "request": {
            "type": "object",
            "required": ["method", "path"],
            "additionalProperties": False,
            "properties": {
                "method": {"enum": list(METHODS)},
                "path": {"type": "string", "pattern": "^/"},
                "query": {"type": "object", "additionalProperties": {"type": "string"}},
                "headers": {
                    "type": "object",
                    "propertyNames": {"pattern": HEADER_NAME},
                    "additionalProperties": {"type": "string"},
                },
                "contentType": {"type": "string"},
                "body": {
                    "oneOf": [
                        {
                            "type": "object",
                            "required": ["template"],
                            "additionalProperties": False,
                            "properties": {"template": {"type": "string", "minLength": 1}},
                        },
                        {
                            "type": "object",
                            "required": ["from"],
                            "additionalProperties": False,
                            "properties": {"from": {"const": "caller"}, "required": {"type": "boolean"}},
                        },
                    ]
                },
                "auth": {"enum": ["session", "none"]},
            },
        },
        "response": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "stream": {"type": "boolean"},
                "extract": {
                    "type": "object",
                    "propertyNames": {"pattern": IDENTIFIER},
                    "additionalProperties": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}


# --- YAML with line numbers -------------------------------------------------------------------


class LineDict(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}


class LineList(list):  # type: ignore[type-arg]
    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise ConfigError(
                f"duplicate key {key!r} (first at line {result.lines[key]})",
                file=getattr(loader, "source_name", None), line=key_node.start_mark.line + 1, field=str(key),
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: Any, node: yaml.SequenceNode) -> LineList:
    result = LineList()
    result.line = node.start_mark.line + 1
    for child in node.value:
        result.append(loader.construct_object(child, deep=True))
        result.lines.append(child.start_mark.line + 1)
    return result


@functools.cache
def _loaders() -> tuple[type[Any], type[Any] | None]:
    """(pure-Python loader, libyaml loader or None); yaml is imported on first use (start-up time)."""
    import yaml

    class LineLoader(yaml.SafeLoader):
        pass

    loaders: list[type[Any]] = [LineLoader]
    if getattr(yaml, "__with_libyaml__", False):
        class CLineLoader(yaml.CSafeLoader):  # type: ignore[misc]
            """libyaml parser, same constructors and resolver: the nodes carry the same marks."""

        loaders.append(CLineLoader)
    for loader in loaders:
        loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
        loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
    return loaders[0], (loaders[1] if len(loaders) > 1 else None)


#: where libyaml reads differently from PyYAML (it accepts some texts PyYAML refuses, or gives
#: another value): tabs, tags, ``?`` (flow context), a byte-order mark after the start, a block
#: scalar header followed by something else than a chomping/indentation indicator. Texts with any
#: of them go straight to the pure-Python loader (fuzzed in tests/unit/test_startup.py).
_LIBYAML_DIFFERS = re.compile(r"[\t!?\ufeff]|(?:^|(?<=[\s\[{,:]))[|>][-+0-9]*[^\s\-+0-9]", re.MULTILINE)


def _new_loader(text: str, display: str, loader_class: type[Any]) -> Any:
    loader = loader_class(text)
    loader.source_name = display
    return loader


def parse_yaml(text: str, display: str, *, fast: bool = True) -> Any:
    """One YAML document with line numbers (``LineDict``/``LineList``).

    The libyaml loader only ever answers with a document: whenever it fails for any reason, the
    text is parsed again by the pure-Python loader, so errors (and their wording) are its own.
    ``fast=False`` is the pure-Python loader alone (tests compare the two).
    """
    import yaml

    pure_loader, fast_loader = _loaders()
    if fast and fast_loader is not None and not _LIBYAML_DIFFERS.search(text):
        try:
            loader = _new_loader(text, display, fast_loader)
            try:
                return loader.get_single_data()
            finally:
                loader.dispose()
        except Exception:  # noqa: BLE001 - the general loader below decides what the error is
            pass
    loader = _new_loader(text, display, pure_loader)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {exc.problem or exc.context}", file=display, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=display) from None
    finally:
        loader.dispose()


def load_yaml(path: Path, display: str, cache: ParseCache | None = None) -> Any:
    """Parse one YAML file keeping line numbers; syntax errors become ConfigError with the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=display) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", file=display) from None
    if cache is not None:
        found = cache.get("yaml", text)
        if found is not None:
            try:
                return _decode_document(found)
            except (TypeError, ValueError, KeyError, IndexError):
                pass
    document = parse_yaml(text, display)
    if cache is not None:
        try:
            cache.put("yaml", text, _encode_document(document))
        except (TypeError, RecursionError):
            pass  # not plain data (a date, a recursive alias, ...): parsed every time
    return document


# --- start-up cache of the pure, slow steps ---------------------------------------------------

#: bump when what is cached, or how it is computed, changes
CACHE_FORMAT = 1
CACHE_ENTRIES = 64


def _encode_document(value: Any) -> Any:
    """A JSON form of a parsed document, line numbers included; TypeError for anything else than plain data."""
    if isinstance(value, LineDict):
        return ["m", value.line, [[_encode_document(k), value.lines[k], _encode_document(v)] for k, v in value.items()]]
    if isinstance(value, LineList):
        return ["l", value.line, [[line, _encode_document(v)] for line, v in zip(value.lines, value, strict=True)]]
    kind = type(value)
    if kind is str:
        return ["s", value]
    if kind is bool:
        return ["b", value]
    if kind is int:
        return ["i", value]
    if kind is float:
        return ["f", repr(value)]
    if value is None:
        return ["n"]
    raise TypeError(f"not cacheable: {kind.__name__}")


def _decode_document(data: Any) -> Any:
    tag = data[0]
    if tag == "m":
        mapping = LineDict()
        mapping.line = int(data[1])
        for key, line, item in data[2]:
            decoded = _decode_document(key)
            mapping[decoded] = _decode_document(item)
            mapping.lines[decoded] = int(line)
        return mapping
    if tag == "l":
        sequence = LineList()
        sequence.line = int(data[1])
        for line, item in data[2]:
            sequence.append(_decode_document(item))
            sequence.lines.append(int(line))
        return sequence
    if tag == "s" and type(data[1]) is str:
        return data[1]
    if tag == "b" and type(data[1]) is bool:
        return data[1]
    if tag == "i" and type(data[1]) is int:
        return data[1]
    if tag == "f":
        return float(data[1])
    if tag == "n":
        return None
    raise ValueError(f"bad cache entry {tag!r}")


def _cache_file() -> Path | None:
    """``$SFBULK_CACHE_DIR`` (empty: no cache), else ``$XDG_CACHE_HOME/sfbulk`` or ``~/.cache/sfbulk``."""
    configured = os.environ.get("SFBULK_CACHE_DIR")
    if configured is not None:
        return Path(configured) / "bundle-cache.json" if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None  # no home directory: no cache (never one relative to the working directory)
        base = os.path.join(home, ".cache")
    if not os.path.isabs(base):
        return None
    return Path(base) / "sfbulk" / "bundle-cache.json"


def _file_signature(path: str | None) -> str:
    try:
        st = os.stat(path)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return f"{path}:?"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


class ParseCache:
    """Results of the slow steps of loading that depend only on a file's text: the parsed YAML
    documents and the variables of the body templates, keyed by a hash of the text.

    Keys also cover this module's file, PyYAML's and Jinja's versions, so a new release never
    reads an old answer; only successful results are stored, so every error is found again.
    The file lives in the user's cache directory; any problem with it means "no cache".
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Any] = {}
        self.used: dict[str, Any] = {}
        self.changed = False
        yaml_module = sys.modules.get("yaml")
        if yaml_module is not None:
            yaml_origin = getattr(yaml_module, "__file__", None)
        else:
            import importlib.util

            spec = importlib.util.find_spec("yaml")
            yaml_origin = spec.origin if spec is not None else None
        self.salt = "|".join([str(CACHE_FORMAT), jinja2.__version__, _file_signature(__file__),
                              _file_signature(yaml_origin)])
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("format") == CACHE_FORMAT and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]
        except (OSError, ValueError):
            pass

    def _key(self, kind: str, text: str) -> str:
        return hashlib.sha256(f"{self.salt}|{kind}|{text}".encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, kind: str, text: str) -> Any:
        key = self._key(kind, text)
        value = self.entries.get(key)
        if value is not None:
            self.used[key] = value
        return value

    def put(self, kind: str, text: str, value: Any) -> None:
        key = self._key(kind, text)
        self.used[key] = self.entries[key] = value
        self.changed = True

    def save(self) -> None:
        """Write the entries if new ones were added (the ones used now first); errors are ignored."""
        if not self.changed:
            return
        keep = dict(self.used)
        for key, value in self.entries.items():
            if len(keep) >= CACHE_ENTRIES:
                break
            keep.setdefault(key, value)
        tmp = None
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            import tempfile

            fd, tmp = tempfile.mkstemp(prefix=".bundle-cache-", dir=str(self.path.parent))
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": CACHE_FORMAT, "entries": keep}, fh, separators=(",", ":"))
            os.replace(tmp, self.path)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def open_cache() -> ParseCache | None:
    path = _cache_file()
    return ParseCache(path) if path is not None else None


def _field_path(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(document: Any, path: Iterable[Any]) -> int | None:
    """The line of the deepest node on ``path`` that we can locate."""
    node = document
    line = getattr(document, "line", None) or None
    for part in path:
        if isinstance(node, LineDict) and part in node:
            line = node.lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and part < len(node):
            line = node.lines[part]
            node = node[part]
        else:
            break
    return line


class _Undecided(Exception):
    """The fast validator cannot tell: let jsonschema decide."""


#: Python types whose equality with a ``str`` is always False (``enum``/``const`` of strings)
_PLAIN_TYPES = (type(None), bool, int, float, bytes, list, dict)


def _is_type(value: Any, name: str) -> bool:
    """jsonschema's Draft 2020-12 type checks, for the types the schemas here use."""
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "number":
        if isinstance(value, bool):
            return False
        if isinstance(value, (int, float)):
            return True
        if isinstance(value, numbers.Number):
            raise _Undecided
        return False
    raise _Undecided


def _equals_text(value: Any, options: Iterable[Any]) -> bool:
    """``value in options`` with jsonschema's notion of equality, when every option is a string."""
    options = list(options)
    if not all(type(option) is str for option in options):
        raise _Undecided
    if isinstance(value, str):
        return value in options
    if isinstance(value, _PLAIN_TYPES):
        return False
    raise _Undecided


def _conforms(value: Any, schema: Mapping[str, Any]) -> bool:
    """True when ``value`` is valid against ``schema``, exactly as Draft202012Validator decides.

    Knows only the keywords the bundle schemas use; anything else raises ``_Undecided``.
    """
    if not isinstance(schema, dict):
        raise _Undecided
    for keyword, arg in schema.items():
        if keyword == "type":
            names = arg if isinstance(arg, list) else [arg]
            if not any(_is_type(value, name) for name in names):
                return False
        elif keyword == "enum":
            if not _equals_text(value, arg):
                return False
        elif keyword == "const":
            if not _equals_text(value, [arg]):
                return False
        elif keyword == "pattern":
            if isinstance(value, str) and re.search(arg, value) is None:
                return False
        elif keyword == "minLength":
            if isinstance(value, str) and len(value) < arg:
                return False
        elif keyword == "minItems":
            if isinstance(value, list) and len(value) < arg:
                return False
        elif keyword == "minProperties":
            if isinstance(value, dict) and len(value) < arg:
                return False
        elif keyword == "required":
            if isinstance(value, dict) and any(name not in value for name in arg):
                return False
        elif keyword == "properties":
            if isinstance(value, dict) and not all(
                    _conforms(value[name], sub) for name, sub in arg.items() if name in value):
                return False
        elif keyword == "additionalProperties":
            if isinstance(value, dict):
                known = schema.get("properties", {})
                if "patternProperties" in schema:
                    raise _Undecided
                extras = [key for key in value if key not in known]
                if arg is False:
                    if extras:
                        return False
                elif arg is not True and not all(_conforms(value[key], arg) for key in extras):
                    return False
        elif keyword == "propertyNames":
            if isinstance(value, dict) and not all(_conforms(key, arg) for key in value):
                return False
        elif keyword == "items":
            if "prefixItems" in schema:
                raise _Undecided
            if isinstance(value, list) and not all(_conforms(item, arg) for item in value):
                return False
        elif keyword == "oneOf":
            if sum(1 for sub in arg if _conforms(value, sub)) != 1:
                return False
        elif keyword not in ("description", "title"):
            raise _Undecided
    return True


def is_valid(document: Any, schema: Mapping[str, Any]) -> bool:
    """Whether jsonschema's Draft 2020-12 validator finds no error; without jsonschema when it can."""
    try:
        return _conforms(document, schema)
    except _Undecided:
        import jsonschema

        return bool(jsonschema.Draft202012Validator(schema).is_valid(document))


def validate(document: Any, schema: Mapping[str, Any], display: str) -> None:
    """JSON-Schema validation; every problem becomes a ConfigError with file, line and field.

    Valid documents (the normal case) never import jsonschema: it is only needed to explain errors.
    """
    if is_valid(document, schema):
        return
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if not errors:
        return
    problems: list[ConfigError] = []
    for error in errors:
        # For oneOf failures, report the most specific sub-error when there is one.
        best = jsonschema.exceptions.best_match([error]) if error.context else error
        path = list(best.absolute_path)
        problems.append(ConfigError(best.message, file=display, line=_line_of(document, path),
                                    field=_field_path(path) or None))
    if len(problems) == 1:
        raise problems[0]
    raise ConfigErrors(problems)


# --- definitions ------------------------------------------------------------------------------


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class ParameterDef:
    name: str
    required: bool = False
    default: str | None = None
    description: str = ""
    allowed: tuple[str, ...] | None = None
    strict: bool = True


@dataclass(frozen=True)
class BodyDef:
    #: "none", "template" (rendered from templates/) or "caller" (the caller's body relayed as is)
    kind: str = "none"
    template: str | None = None
    required: bool = False


@dataclass(frozen=True)
class RequestDef:
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None
    body: BodyDef = BodyDef()
    auth: str = "session"


@dataclass(frozen=True)
class ResponseDef:
    stream: bool = False
    extract: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RenderedRequest:
    """The operation-specific part of an HTTP request (auth and base URL are added by the connection)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes | None
    body_from_caller: bool
    body_required: bool


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


@dataclass(frozen=True)
class _Compiled:
    path: Renderable | None = None
    query: tuple[tuple[str, Renderable], ...] = ()
    headers: tuple[tuple[str, Renderable], ...] = ()
    content_type: Renderable | None = None
    body: Renderable | None = None
    path_variables: frozenset[str] = frozenset()


@dataclass(frozen=True)
class OperationDef:
    name: str
    kind: str  # "http" or "init"
    description: str
    parameters: tuple[ParameterDef, ...]
    request: RequestDef | None
    response: ResponseDef
    source: str
    compiled: _Compiled = field(default_factory=_Compiled, compare=False, repr=False)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def parameter(self, name: str) -> ParameterDef | None:
        for param in self.parameters:
            if param.name == name:
                return param
        return None

    def bind(self, values: Mapping[str, Any]) -> dict[str, str]:
        """Apply defaults, check required and allowed values; unknown names are errors (typos)."""
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ParameterError(
                f"{self.name}: unknown parameter{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(u) for u in unknown)}; parameters are: {', '.join(known) or '(none)'}"
            )
        bound: dict[str, str] = {}
        for name, param in known.items():
            raw = values.get(name)
            if raw is not None and not isinstance(raw, (str, int, float, bool)):
                raise ParameterError(f"{self.name}: parameter {name!r} must be text, got {type(raw).__name__}")
            value = "" if raw is None else _to_text(raw)
            if value == "" and param.default is not None:
                value = param.default
            if value == "" and param.required:
                raise ParameterError(f"{self.name}: parameter {name!r} is required"
                                     + (f" ({param.description})" if param.description else ""))
            if value != "" and param.allowed is not None and value not in param.allowed:
                allowed = ", ".join(param.allowed)
                if param.strict:
                    raise ParameterError(
                        f"{self.name}: parameter {name!r} must be one of {allowed} (case-sensitive), got {value!r}"
                    )
                log.debug("%s: %s=%r is not a documented value (%s); passed through", self.name, name, value, allowed)
            bound[name] = value
        return bound

    def render(self, bound: Mapping[str, str]) -> RenderedRequest:
        """The request pieces for bound parameter values (see ``bind``)."""
        if self.request is None or self.compiled.path is None:
            raise ParameterError(f"{self.name} is not an HTTP operation")
        for name in self.compiled.path_variables:
            if bound.get(name, "") == "":
                raise ParameterError(f"{self.name}: parameter {name!r} is needed in the URL path and is empty")
        path = self.compiled.path.render(bound)
        query = []
        for name, template in self.compiled.query:
            value = template.render(bound)
            if value != "":
                _no_newlines(self.name, name, value)
                query.append((name, value))
        headers: dict[str, str] = {}
        for name, template in self.compiled.headers:
            value = template.render(bound).strip()
            if value != "":
                _no_newlines(self.name, name, value)
                headers[name] = value
        if self.compiled.content_type is not None:
            content_type = self.compiled.content_type.render(bound).strip()
            if content_type:
                _no_newlines(self.name, "contentType", content_type)
                headers["Content-Type"] = content_type
        body: bytes | None = None
        if self.compiled.body is not None:
            body = self.compiled.body.render(bound).encode("utf-8")
        return RenderedRequest(
            method=self.request.method,
            path=path,
            query=tuple(query),
            headers=headers,
            body=body,
            body_from_caller=self.request.body.kind == "caller",
            body_required=self.request.body.required,
        )


def _no_newlines(operation: str, name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ParameterError(f"{operation}: the value for {name!r} must not contain line breaks")


@dataclass(frozen=True)
class ConnectorDef:
    name: str
    version: str
    description: str
    root: Path
    operations: Mapping[str, OperationDef]


# --- Jinja environments -----------------------------------------------------------------------


def _path_segment(value: Any) -> str:
    """Every value in a path is one percent-encoded segment: '../x' → '..%2Fx'."""
    return quote("" if value is None else str(value), safe="")


def _xml_autoescape(name: str | None) -> bool:
    return bool(name) and name.endswith((".xml.j2", ".xml"))  # type: ignore[union-attr]


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


_INLINE = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
_PATH = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, finalize=_path_segment)


def _body_environment(templates_dir: Path) -> jinja2.Environment:
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=_xml_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )


# --- loading ----------------------------------------------------------------------------------


class _Builder:
    """Turns one validated operation document into an OperationDef, collecting cross-check errors."""

    def __init__(self, doc: LineDict, display: str, templates_dir: Path, templates_display: str,
                 body_env: jinja2.Environment, cache: ParseCache | None = None) -> None:
        self.doc = doc
        self.cache = cache
        self.display = display
        self.templates_dir = templates_dir
        self.templates_display = templates_display
        self.body_env = body_env
        self.errors: list[ConfigError] = []

    def error(self, message: str, path: list[Any], *, file: str | None = None, line: int | None = None) -> None:
        self.errors.append(ConfigError(message, file=file or self.display,
                                       line=line if line is not None else _line_of(self.doc, path),
                                       field=_field_path(path) or None))

    def inline(self, env: jinja2.Environment, source: str, path: list[Any], declared: set[str]
               ) -> tuple[Renderable | None, frozenset[str]]:
        simple = simple_template_variables(source)
        template: Renderable
        if simple is not None:
            variables = simple
            template = LazyTemplate.inline(env, source)
        else:
            try:
                ast = env.parse(source)
                variables = frozenset(jinja2.meta.find_undeclared_variables(ast))
                template = env.from_string(source)
            except jinja2.TemplateSyntaxError as exc:
                self.error(f"template syntax error: {exc.message}", path)
                return None, frozenset()
        for name in sorted(variables - declared):
            self.error(f"uses {name!r}, which is not a declared parameter", path)
        return template, variables

    def build(self) -> OperationDef:
        doc = self.doc
        name = doc["name"]
        kind = doc.get("kind", "http")
        params: list[ParameterDef] = []
        seen: set[str] = set()
        for index, raw in enumerate(doc.get("parameters", [])):
            pname = raw["name"]
            if pname in seen:
                self.error(f"duplicate parameter {pname!r}", ["parameters", index, "name"])
            seen.add(pname)
            allowed = tuple(_to_text(v) for v in raw["allowed"]) if "allowed" in raw else None
            default = _to_text(raw["default"]) if "default" in raw else None
            if default and allowed and raw.get("strict", True) and default not in allowed:
                self.error(f"default {default!r} is not one of the allowed values", ["parameters", index, "default"])
            params.append(ParameterDef(
                name=pname, required=bool(raw.get("required", False)), default=default,
                description=str(raw.get("description", "")).strip(), allowed=allowed,
                strict=bool(raw.get("strict", True)),
            ))
        declared = set(seen)
        raw_response = doc.get("response", {})
        response = ResponseDef(
            stream=bool(raw_response.get("stream", False)),
            extract=tuple((k, v) for k, v in raw_response.get("extract", {}).items()),
        )
        if kind == "init":
            for key in ("request", "response"):
                if key in doc:
                    self.error(f"an init operation has no {key!r}: its behaviour is the auth code", [key])
            return OperationDef(name, kind, str(doc.get("description", "")).strip(), tuple(params), None,
                                response, self.display)
        if "request" not in doc:
            self.error("'request' is required (or declare 'kind: init')", [])
            return OperationDef(name, kind, "", tuple(params), None, response, self.display)
        raw_req = doc["request"]
        path_template, path_vars = self.inline(_PATH, raw_req["path"], ["request", "path"], declared)
        query = []
        for qname, source in raw_req.get("query", {}).items():
            template, _ = self.inline(_INLINE, source, ["request", "query", qname], declared)
            if template is not None:
                query.append((qname, template))
        headers = []
        lowered = set()
        for hname, source in raw_req.get("headers", {}).items():
            if hname.lower() in ("x-sfdc-session", "content-type", "content-length", "host", "authorization"):
                self.error(f"header {hname!r} is set by the connector itself"
                           + (" (use request.contentType)" if hname.lower() == "content-type" else ""),
                           ["request", "headers", hname])
            if hname.lower() in lowered:
                self.error(f"header {hname!r} is declared twice (header names are case-insensitive)",
                           ["request", "headers", hname])
            lowered.add(hname.lower())
            template, _ = self.inline(_INLINE, source, ["request", "headers", hname], declared)
            if template is not None:
                headers.append((hname, template))
        content_type = None
        if "contentType" in raw_req:
            content_type, _ = self.inline(_INLINE, raw_req["contentType"], ["request", "contentType"], declared)
        body_def = BodyDef()
        body_template = None
        raw_body = raw_req.get("body")
        if raw_body is not None and "template" in raw_body:
            template_name = raw_body["template"]
            body_def = BodyDef("template", template_name)
            body_template = self.load_body_template(template_name, declared)
        elif raw_body is not None:
            body_def = BodyDef("caller", None, bool(raw_body.get("required", False)))
        request = RequestDef(
            method=raw_req["method"], path=raw_req["path"],
            query=tuple((k, v) for k, v in raw_req.get("query", {}).items()),
            headers=tuple((k, v) for k, v in raw_req.get("headers", {}).items()),
            content_type=raw_req.get("contentType"), body=body_def, auth=raw_req.get("auth", "session"),
        )
        compiled = _Compiled(path=path_template, query=tuple(query), headers=tuple(headers),
                             content_type=content_type, body=body_template, path_variables=path_vars)
        return OperationDef(name, kind, str(doc.get("description", "")).strip(), tuple(params), request,
                            response, self.display, compiled)

    def load_body_template(self, template_name: str, declared: set[str]) -> Renderable | None:
        path = ["request", "body", "template"]
        display = f"{self.templates_display}/{template_name}"
        if "/" in template_name or "\\" in template_name or template_name.startswith("."):
            self.error("template must be a file name inside templates/", path)
            return None
        file = self.templates_dir / template_name
        if not file.is_file():
            self.error(f"template {display} not found", path)
            return None
        source = file.read_text(encoding="utf-8")
        cached = self.cache.get("body", source) if self.cache is not None else None
        try:
            if isinstance(cached, list) and all(type(name) is str for name in cached):
                variables: Iterable[str] = cached  # this very text was analysed without error before
            else:
                ast = self.body_env.parse(source, template_name, str(file))
                # The code generation run here raises what compiling would (unknown filters, ...).
                variables = jinja2.meta.find_undeclared_variables(ast)
                if self.cache is not None:
                    self.cache.put("body", source, sorted(variables))
            template = LazyTemplate.from_loader(self.body_env, template_name)
        except jinja2.TemplateSyntaxError as exc:
            self.error(f"template syntax error: {exc.message}", path, file=display, line=exc.lineno)
            return None
        for name in sorted(set(variables) - declared):
            self.error(f"uses {name!r}, which is not a declared parameter of the operation", path,
                       file=display, line=_first_line_mentioning(source, name))
        return template


def _first_line_mentioning(source: str, name: str) -> int | None:
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, text in enumerate(source.splitlines(), 1):
        if pattern.search(text):
            return number
    return None


def load_bundle(root: Path, display_root: str | None = None) -> ConnectorDef:
    """Load and validate a bundle directory; all problems found are raised together."""
    cache = open_cache()
    try:
        return _load_bundle(root, display_root, cache)
    finally:
        if cache is not None:
            cache.save()


def _load_bundle(root: Path, display_root: str | None, cache: ParseCache | None) -> ConnectorDef:
    root = Path(root)
    shown = (display_root or str(root)).rstrip("/")

    def show(rel: str) -> str:
        return f"{shown}/{rel}" if shown else rel

    manifest_display = show("connector.yaml")
    manifest = load_yaml(root / "connector.yaml", manifest_display, cache)
    validate(manifest, CONNECTOR_SCHEMA, manifest_display)
    templates_dir = root / "templates"
    body_env = _body_environment(templates_dir)
    operations: dict[str, OperationDef] = {}
    errors: list[ConfigError] = []
    for op_name, rel in manifest["operations"].items():
        rel_path = Path(rel)
        display = show(rel)
        if rel_path.is_absolute() or ".." in rel_path.parts:
            errors.append(ConfigError("operation files must be inside the bundle", file=manifest_display,
                                      line=manifest["operations"].lines.get(op_name), field=f"operations.{op_name}"))
            continue
        try:
            doc = load_yaml(root / rel_path, display, cache)
            validate(doc, OPERATION_SCHEMA, display)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        except ConfigError as exc:
            if exc.message == "file not found":
                exc = ConfigError(f"operation file {rel} not found", file=manifest_display,
                                  line=manifest["operations"].lines.get(op_name), field=f"operations.{op_name}")
            errors.append(exc)
            continue
        if doc["name"] != op_name:
            errors.append(ConfigError(f"operation is listed as {op_name!r} in connector.yaml but named "
                                      f"{doc['name']!r} here", file=display, line=doc.lines.get("name"), field="name"))
            continue
        builder = _Builder(doc, display, templates_dir, show("templates"), body_env, cache)
        operation = builder.build()
        if builder.errors:
            errors.extend(builder.errors)
            continue
        operations[op_name] = operation
    inits = [op for op in operations.values() if op.kind == "init"]
    if len(inits) > 1:
        errors.append(ConfigError("only one operation may have kind: init", file=manifest_display))
    if errors:
        raise errors[0] if len(errors) == 1 else ConfigErrors(errors)
    return ConnectorDef(
        name=manifest["name"], version=_to_text(manifest["version"]),
        description=str(manifest.get("description", "")).strip(), root=root, operations=operations,
    )


__all__ = [
    "BodyDef",
    "ConnectorDef",
    "ParseCache",
    "OperationDef",
    "ParameterDef",
    "RenderedRequest",
    "RequestDef",
    "ResponseDef",
    "is_valid",
    "load_bundle",
    "load_yaml",
    "parse_yaml",
    "simple_template_variables",
    "validate",
]
