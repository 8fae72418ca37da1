"""A config file read into plain data, with where each piece came from.

Both front-ends meet here: YAML is read straight into this shape, Synapse XML is translated into
it (sfbulk/config/synapse.py), and one builder turns it into mediators (sfbulk/config/build.py).
Every error the builder raises can therefore name the file, the line and the field, whichever
syntax the user wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``("proxies", "createJob", "inSequence", 3, "property")`` -> ``proxies.createJob.inSequence[3].property``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


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

    def line_of(self, path: Path) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        return _nearest(self.lines, tuple(path))

    def namespaces_at(self, path: Path) -> dict[str | None, str]:
        return _nearest(self.namespaces, tuple(path)) or {}

    def field_of(self, path: Path) -> str | None:
        path = tuple(path)
        if self.labels:
            return self.labels.get(path) or _nearest(self.labels, path)
        return format_path(path) or None


_T = TypeVar("_T")


def _nearest(table: dict[Path, _T], path: Path) -> _T | None:
    while True:
        value = table.get(path)
        if value is not None or not path:
            return value
        path = path[:-1]
