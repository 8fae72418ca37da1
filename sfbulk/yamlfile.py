"""The one YAML loader: documents that remember their line numbers, for every config sfbulk reads.

Errors in a connector bundle, a flows file or a settings file are reported with file and line, so
every mapping and sequence keeps the line of each of its entries (``LineDict``/``LineList``); the
config front-end turns them into its ``Document`` (sfbulk/config/document.py). Duplicate keys and
keys that are not plain scalars are errors (PyYAML silently keeps the last duplicate).

One policy for what a text means: PyYAML's pure-Python loader decides, because that is the YAML
reference behaviour users read about (``a:\tb`` is an error there, libyaml accepts it). libyaml is
used for speed only where it provably reads the same; whatever it fails on, or may read
differently, is parsed by the pure-Python loader, whose documents and errors are the answer
(tests/unit/test_startup.py compares the two).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sfbulk.errors import ConfigError

if TYPE_CHECKING:
    import yaml

    from sfbulk.connector.bundle.cache import ParseCache


class LineDict(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers its own line and the line of each key (1-based)."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}


class LineList(list):  # type: ignore[type-arg]
    """A YAML sequence that remembers its own line and the line of each item (1-based)."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


#: the Python types a mapping key may have: what a config key can mean
_PLAIN_KEYS = (str, int, float, bool, type(None))


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)  # resolves `<<:` merge keys like safe_load does
    result = LineDict()
    result.line = node.start_mark.line + 1
    path: list[Any] = loader.node_path
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key_line = key_node.start_mark.line + 1
        if not isinstance(key, _PLAIN_KEYS):
            raise ConfigError(
                "mapping keys must be plain scalars",
                file=loader.source_name,
                line=key_line,
                field=field_path(path) or None,
            )
        if key in result:
            raise ConfigError(
                f"duplicate key {key!r}",
                file=loader.source_name,
                line=key_line,
                field=field_path(path) or None,
            )
        path.append(str(key))
        try:
            result[key] = loader.construct_object(value_node, deep=True)
        finally:
            path.pop()
        result.lines[key] = key_line
    return result


def _construct_sequence(loader: Any, node: yaml.SequenceNode) -> LineList:
    result = LineList()
    result.line = node.start_mark.line + 1
    path: list[Any] = loader.node_path
    for index, child in enumerate(node.value):
        path.append(index)
        try:
            result.append(loader.construct_object(child, deep=True))
        finally:
            path.pop()
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

        class CLineLoader(yaml.CSafeLoader):
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
    loader.node_path = []  # the path of the node being constructed, for error messages
    return loader


def _single_document(loader: Any) -> tuple[Any, int | None]:
    """What ``get_single_data`` returns, and the line of the document's root node."""
    node = loader.get_single_node()
    if node is None:
        return None, None
    return loader.construct_document(node), node.start_mark.line + 1


def parse_yaml_located(text: str, display: str, *, fast: bool = True) -> tuple[Any, int | None]:
    """One YAML document with line numbers, and the line of its root (None for an empty document).

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
                return _single_document(loader)
            finally:
                loader.dispose()
        except Exception:  # noqa: BLE001 - the general loader below decides what the error is
            pass
    loader = _new_loader(text, display, pure_loader)
    try:
        return _single_document(loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        if exc.context:
            problem = f"{exc.context}, {problem}"
        raise ConfigError(f"invalid YAML: {problem}", file=display, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=display) from None
    finally:
        loader.dispose()


def parse_yaml(text: str, display: str, *, fast: bool = True) -> Any:
    """One YAML document with line numbers (``LineDict``/``LineList``); see ``parse_yaml_located``."""
    return parse_yaml_located(text, display, fast=fast)[0]


def read_text(path: Path, display: str) -> str:
    """A config file's text; a missing or unreadable file is a ConfigError naming ``display``."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=display) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", file=display) from None


def load_yaml(path: Path, display: str, cache: ParseCache | None = None) -> Any:
    """Parse one YAML file keeping line numbers; syntax errors become ConfigError with the line."""
    return parse_cached(read_text(path, display), display, cache)


def parse_cached(text: str, display: str, cache: ParseCache | None) -> Any:
    """``parse_yaml``, answered from the start-up cache when this very text was parsed before."""
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


# --- the JSON form kept in the start-up cache -------------------------------------------------


def _encode_document(value: Any) -> Any:
    """A JSON form of a parsed document, line numbers included; TypeError for anything else than plain data."""
    if isinstance(value, LineDict):
        return [
            "m",
            value.line,
            [[_encode_document(k), value.lines[k], _encode_document(v)] for k, v in value.items()],
        ]
    if isinstance(value, LineList):
        return [
            "l",
            value.line,
            [[line, _encode_document(v)] for line, v in zip(value.lines, value, strict=True)],
        ]
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


# --- locating a node for error messages -------------------------------------------------------


def field_path(path: Iterable[Any]) -> str:
    """A node's path as error messages show it: ``request.headers.X``, ``parameters[2].name``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(document: Any, path: Iterable[Any]) -> int | None:
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


__all__ = [
    "LineDict",
    "LineList",
    "field_path",
    "line_of",
    "load_yaml",
    "parse_cached",
    "parse_yaml",
    "parse_yaml_located",
    "read_text",
]
