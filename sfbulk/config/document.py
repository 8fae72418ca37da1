"""A config file read into plain data, with where each piece came from.

Both front-ends meet here: YAML is read straight into this shape, Synapse XML is translated into
it (sfbulk/config/synapse.py), and one builder turns it into mediators (sfbulk/config/build.py).
Every error the builder raises can therefore name the file, the line and the field, whichever
syntax the user wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from sfbulk.yamlfile import LineDict, LineList, field_path, parse_yaml_located

Path = tuple[str | int, ...]
_T = TypeVar("_T")


@dataclass
class Document:
    """Plain data (dicts, lists, scalars) plus, per path, its 1-based line, XPath namespaces and label.

    ``namespaces`` and ``labels`` are looked up at the nearest ancestor path: a YAML file declares
    its namespaces once at the root, an XML file has them on each element. ``labels`` name a path the
    way the user wrote it (``property@expression`` for XML); without one the dotted data path is used.
    """

    data: Any
    filename: str
    lines: dict[Path, int] = field(default_factory=dict)
    namespaces: dict[Path, dict[str | None, str]] = field(default_factory=dict)
    labels: dict[Path, str] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, text: str, filename: str) -> Document:
        """Parse one YAML document (sfbulk.yamlfile, the loader the connector bundle uses too).

        Syntax errors, duplicate keys and keys that are not plain scalars are ConfigErrors with
        file and line. ``data`` is plain dicts and lists; ``lines`` maps each path to its line.
        """
        data, line = parse_yaml_located(text, filename)
        doc = cls(data=None, filename=filename)
        if line is not None:
            doc.lines[()] = line
            doc.data = _plain(data, (), doc.lines)
        return doc

    def line_of(self, path: Path) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        return _nearest(self.lines, tuple(path))

    def namespaces_at(self, path: Path) -> dict[str | None, str]:
        return _nearest(self.namespaces, tuple(path)) or {}

    def field_of(self, path: Path) -> str | None:
        path = tuple(path)
        if self.labels:
            return self.labels.get(path) or _nearest(self.labels, path)
        return field_path(path) or None


def _plain(value: Any, path: Path, lines: dict[Path, int]) -> Any:
    """``value`` as plain dicts and lists, recording the line of every key and item under ``path``."""
    if isinstance(value, LineDict):
        result: dict[Any, Any] = {}
        for key, item in value.items():
            key_path = (*path, str(key))
            lines.setdefault(key_path, value.lines[key])
            result[key] = _plain(item, key_path, lines)
        return result
    if isinstance(value, LineList):
        items = []
        for index, item in enumerate(value):
            item_path = (*path, index)
            lines.setdefault(item_path, value.lines[index])
            items.append(_plain(item, item_path, lines))
        return items
    return value


def _nearest(table: dict[Path, _T], path: Path) -> _T | None:
    while True:
        value = table.get(path)
        if value is not None or not path:
            return value
        path = path[:-1]
