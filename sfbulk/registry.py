"""The registry: the only state shared between processes (tokens, times, user resources).

A small interface (get, put, delete, and a lock around "read, refresh if stale, write") with a
file store as the embedded default. ``FileRegistry`` keeps each resource as one file under a root
directory, MI-style: ``conf:x`` → ``<root>/config/x``, ``gov:x`` → ``<root>/governance/x``,
``local:x`` → ``<root>/local/x``, an un-prefixed key → ``<root>/<key>``. Writes are atomic (temp
file in the same directory + ``os.replace``) so a reader never sees half a token, and the lock is
an OS file lock (``filelock``) so it holds across processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

from sfbulk.errors import RegistryError

log = logging.getLogger("sfbulk.registry")

#: key prefix → sub-directory of the root (synapse.md §7.1, MI layout).
PREFIXES: dict[str, str] = {"conf:": "config", "gov:": "governance", "local:": "local"}

#: Directory (under the root) holding the lock files, kept apart from the resources.
LOCK_DIR = ".locks"


class Registry(ABC):
    """Key → text resources plus an inter-process lock per key."""

    @abstractmethod
    def get(self, key: str) -> str | None:
        """The resource's text, or None when it does not exist."""

    @abstractmethod
    def put(self, key: str, value: str, *, secret: bool = False) -> None:
        """Create or replace a resource; ``secret`` resources are readable by the owner only."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a resource (no error when it does not exist)."""

    @abstractmethod
    def lock(self, key: str, timeout: float = 30) -> contextlib.AbstractContextManager[None]:
        """A lock for ``key`` held across threads and processes sharing this registry."""

    def version(self, key: str) -> object | None:
        """A cheap signature that changes whenever ``key`` is written, or None ("unknown: read it").

        Lets hot paths (the token check before every call) skip re-reading unchanged resources.
        """
        return None


def split_key(key: str) -> tuple[str, list[str]]:
    """(sub-directory, path parts) of a registry key; raises RegistryError for unsafe keys.

    Rejected: empty keys, NUL, backslashes, absolute paths (after the optional prefix, a single
    leading ``/`` is allowed as in Synapse: ``gov:/x`` = ``gov:x``), ``..`` and ``.`` segments.
    """
    if not isinstance(key, str) or not key.strip():
        raise RegistryError("registry key is empty; give a path such as connectors/SalesforceBulk/accessToken")
    if "\x00" in key:
        raise RegistryError("registry key contains a NUL character; keys are relative paths like a/b/c")
    if "\\" in key:
        raise RegistryError(f"registry key {key!r} contains a backslash; use '/' between path segments")
    subdir = ""
    rest = key
    for prefix, directory in PREFIXES.items():
        if key.startswith(prefix):
            subdir, rest = directory, key[len(prefix):]
            if rest.startswith("/") and not rest.startswith("//"):
                rest = rest[1:]
            break
    if rest.startswith("/") or (len(rest) > 1 and rest[1] == ":"):
        raise RegistryError(
            f"registry key {key!r} is an absolute path; keys are relative to the registry root "
            "(e.g. connectors/SalesforceBulk/accessToken)"
        )
    parts = [p for p in rest.split("/") if p != ""]
    if not parts:
        raise RegistryError(f"registry key {key!r} names no resource")
    for part in parts:
        if part in ("..", "."):
            raise RegistryError(
                f"registry key {key!r} is illegal: it points to a location outside the registry "
                "('.' and '..' segments are not allowed)"
            )
        if part == LOCK_DIR:
            raise RegistryError(f"registry key {key!r} uses the reserved name {LOCK_DIR!r}")
    return subdir, parts


class FileRegistry(Registry):
    """Resources as files under ``root`` (default ``./registry``)."""

    def __init__(self, root: str | os.PathLike[str] = "registry") -> None:
        self.root = Path(root).absolute()
        # Keys are validated (syntax, then symlinks) once; the root holds tokens, so it must be
        # private to the sfbulk user anyway, and re-resolving on every read cost more than the read.
        self._paths: dict[str, Path] = {}

    def __repr__(self) -> str:
        return f"FileRegistry({str(self.root)!r})"

    def path(self, key: str) -> Path:
        """The file holding ``key``; guaranteed to lie inside the root (symlinks included)."""
        cached = self._paths.get(key)
        if cached is not None:
            return cached
        subdir, parts = split_key(key)
        base = self.root / subdir if subdir else self.root
        candidate = base.joinpath(*parts)
        root_real = os.path.realpath(self.root)
        real = os.path.realpath(candidate)
        if os.path.commonpath([root_real, real]) != root_real:
            raise RegistryError(f"registry key {key!r} is illegal: it points to a location outside the registry")
        if len(self._paths) < 4096:
            self._paths[key] = candidate
        return candidate

    def version(self, key: str) -> object | None:
        """(inode, mtime, size) of the resource file: atomic replaces always change it."""
        try:
            st = os.stat(self.path(key))
        except FileNotFoundError:
            return ("missing",)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)

    def get(self, key: str) -> str | None:
        path = self.path(key)
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise RegistryError(f"registry key {key!r} is a collection (directory), not a resource") from None
        except OSError as exc:
            raise RegistryError(f"cannot read registry resource {key!r}: {exc.strerror}") from None

    def put(self, key: str, value: str, *, secret: bool = False) -> None:
        path = self.path(key)
        if not isinstance(value, str):
            value = str(value)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise RegistryError(f"cannot write registry resource {key!r}: {exc.strerror}") from None
        try:
            # mkstemp creates the file 0600 (right for secrets); other resources get the usual 0644.
            if not secret:
                os.fchmod(fd, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(value)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise RegistryError(f"cannot write registry resource {key!r}: {exc.strerror}") from None
            raise
        log.debug("registry put %s%s", key, " (secret)" if secret else "")

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise RegistryError(f"cannot delete registry resource {key!r}: {exc.strerror}") from None

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float = 30) -> Iterator[None]:
        self.path(key)  # validate the key the same way resources are validated
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
        lock_dir = self.root / LOCK_DIR
        try:
            lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot create the registry lock directory {lock_dir}: {exc.strerror}") from None
        import filelock  # here, not at module level: most runs never lock (start-up time)

        file_lock = filelock.FileLock(str(lock_dir / f"{digest}.lock"), timeout=timeout)
        try:
            file_lock.acquire()
        except filelock.Timeout:
            raise RegistryError(
                f"registry lock for {key!r} not acquired within {timeout:g} s; another process holds it"
            ) from None
        try:
            yield
        finally:
            file_lock.release()


class MemoryRegistry(Registry):
    """An in-process registry (tests, one-off scripts). Same key rules as the file registry."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, tuple[str, ...]], str] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def get(self, key: str) -> str | None:
        subdir, parts = split_key(key)
        return self._data.get((subdir, tuple(parts)))

    def put(self, key: str, value: str, *, secret: bool = False) -> None:
        subdir, parts = split_key(key)
        self._data[(subdir, tuple(parts))] = str(value)

    def delete(self, key: str) -> None:
        subdir, parts = split_key(key)
        self._data.pop((subdir, tuple(parts)), None)

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float = 30) -> Iterator[None]:
        split_key(key)
        with self._guard:
            lock = self._locks.setdefault(key, threading.RLock())
        if not lock.acquire(timeout=timeout):
            raise RegistryError(f"registry lock for {key!r} not acquired within {timeout:g} s")
        try:
            yield
        finally:
            lock.release()


__all__ = ["FileRegistry", "MemoryRegistry", "Registry", "split_key"]
