"""The start-up cache of bundle loading: results of its slow, pure steps, kept between processes.

What is stored is decided by the callers (parsed YAML documents in ``sfbulk.yamlfile``, template
variables in ``sfbulk.connector.bundle.templates``, "this document passed its JSON Schema" in
``sfbulk.connector.bundle.loader`` and, for YAML flows files, ``sfbulk.config.loader``); this module keeps JSON values keyed by a file's text, in one
file of the user's cache directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import jinja2

#: bump when what is cached, or how it is computed, changes
CACHE_FORMAT = 2
#: the two bundled connectors take about 165 entries (parsed documents, checks, templates); with 64,
#: runs that load different connectors evicted each other's entries and every start checked its
#: documents again (0.2-0.4 s of each `sfbulk run`, `serve` and `load`)
CACHE_ENTRIES = 512

#: the modules whose code computes what is cached, relative to the sfbulk package
#: (tests/unit/test_startup.py checks they exist)
CACHED_BY = (
    "connector/bundle/cache.py",
    "yamlfile.py",
    "connector/bundle/templates.py",
    "connector/bundle/schema.py",
    "connector/bundle/loader.py",
    "config/yaml_config.py",
    "config/schema.yaml",
    "config/loader.py",
)
#: the libraries whose code computes what is cached, besides Jinja (whose version is read)
LIBRARIES = ("yaml", "jsonschema")


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


def _module_origin(name: str) -> str | None:
    """The file of module ``name`` without importing it (jsonschema is not imported at start-up)."""
    module = sys.modules.get(name)
    if module is not None:
        return getattr(module, "__file__", None)
    import importlib.util

    spec = importlib.util.find_spec(name)
    return spec.origin if spec is not None else None


def _file_signature(path: str | None) -> str:
    try:
        st = os.stat(path)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return f"{path}:?"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


class ParseCache:
    """Results of the slow steps of loading that depend only on a file's text: the parsed YAML
    documents, their passed schema checks and the variables of the templates, keyed by a hash of
    the text.

    Keys also cover the files of the modules computing them (``CACHED_BY``), Jinja's version and
    PyYAML's and jsonschema's installed files, so a new release never reads an old answer; only
    successful results are stored, so every error is found again. The file lives in the user's cache directory; any problem with it
    means "no cache".
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Any] = {}
        self.used: dict[str, Any] = {}
        self.changed = False
        here = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))  # the sfbulk package
        self.salt = "|".join(
            [
                str(CACHE_FORMAT),
                jinja2.__version__,
                *(_file_signature(os.path.join(here, name)) for name in CACHED_BY),
                *(_file_signature(_module_origin(name)) for name in LIBRARIES),
            ]
        )
        stamp = _stamp(path)
        with _READ_LOCK:
            read = _READ.get(str(path))
        if stamp is not None and read is not None and read[0] == stamp:
            self.entries = dict(read[1])  # this process read (or wrote) this very file before
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if (
                isinstance(data, dict)
                and data.get("format") == CACHE_FORMAT
                and isinstance(data.get("entries"), dict)
            ):
                self.entries = data["entries"]
        except (OSError, ValueError):
            pass
        if stamp is not None:
            _remember(path, stamp, self.entries)

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
            stamp = _stamp(self.path)
            if stamp is not None:
                _remember(self.path, stamp, keep)
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


#: the entries of cache files this process read or wrote, by path: (stamp, entries). An Engine
#: loads its flows through the cache, and a test process or a server reloading makes many: each
#: decoded the whole file again (up to CACHE_ENTRIES parsed documents). A file replaced since,
#: by this process or another, has another stamp (os.replace gives it a new inode) and is read.
_READ: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}
_READ_LOCK = threading.Lock()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _remember(path: Path, stamp: tuple[int, int, int], entries: dict[str, Any]) -> None:
    with _READ_LOCK:
        _READ[str(path)] = (stamp, dict(entries))


def open_cache() -> ParseCache | None:
    path = _cache_file()
    return ParseCache(path) if path is not None else None


__all__ = ["CACHE_ENTRIES", "CACHE_FORMAT", "CACHED_BY", "LIBRARIES", "ParseCache", "open_cache"]
