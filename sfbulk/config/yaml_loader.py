"""Read YAML into plain data while remembering the line of every key and item.

Config errors must name the line a user has to fix, and plain ``yaml.safe_load`` forgets where
things were. We compose the node graph (which carries marks) and build the data ourselves,
recording ``path -> line`` on the way. Duplicate keys are errors (PyYAML silently keeps the last).
"""

from __future__ import annotations

from typing import Any

import yaml

from sfbulk.config.document import Document, Path, format_path
from sfbulk.errors import ConfigError

try:  # the C loader is several times faster; same behaviour
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader


def load_yaml(text: str, filename: str) -> Document:
    """Parse one YAML document; syntax errors become ConfigError with file and line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        doc = Document(data=None, filename=filename)
        if node is not None:
            doc.data = _build(loader, node, (), doc)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        if exc.context:
            problem = f"{exc.context}, {problem}"
        raise ConfigError(f"invalid YAML: {problem}", file=filename, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=filename) from None
    finally:
        loader.dispose()


def _build(loader: Any, node: yaml.Node, path: Path, doc: Document) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<:` merge keys like safe_load does
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ConfigError(
                    "mapping keys must be plain scalars",
                    file=doc.filename,
                    line=key_node.start_mark.line + 1,
                    field=format_path(path) or None,
                )
            if key in result:
                raise ConfigError(
                    f"duplicate key {key!r}",
                    file=doc.filename,
                    line=key_node.start_mark.line + 1,
                    field=format_path(path) or None,
                )
            key_path = (*path, str(key))
            doc.lines[key_path] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, key_path, doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            items.append(_build(loader, item, (*path, index), doc))
        return items
    return loader.construct_object(node, deep=True)
