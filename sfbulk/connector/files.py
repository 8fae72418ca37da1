"""Confinement of the files an operation reads or writes (``filePath`` of uploadJobData, result sinks).

A file path in an operation usually comes from a message, i.e. from whoever can reach the proxy,
so it is a trust issue like a URL (docs/security.md). Every path is resolved under one base
directory, the connection's ``file_root``: a relative path is taken from it, an absolute one must
lie inside it, and symbolic links are resolved before the check, so neither ``../`` nor a link
leads out. Without a base directory (``sfbulk serve`` unless ``--file-root`` is given) every file
access is refused. Refusals raise ``FileNotAllowedError`` (ERROR_CODE 700404) before any I/O.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from sfbulk.errors import ParameterError

FILE_NOT_ALLOWED_CODE = 700404
#: bytes read from a source file per chunk of a streamed upload
CHUNK = 256 * 1024


class FileNotAllowedError(ParameterError):
    """A file path from an operation is outside the connection's file root (or files are off)."""

    error_code = FILE_NOT_ALLOWED_CODE


class FileRoot:
    """The directory operations may read and write files under; ``None`` refuses every path."""

    def __init__(self, base: str | os.PathLike[str] | None) -> None:
        self.base = Path(os.path.realpath(base)) if base is not None else None

    @classmethod
    def of(cls, base: str | os.PathLike[str] | None) -> FileRoot:
        """The FileRoot of ``base``, reused while the working directory stays the same (every message
        opens its connection through here: resolving the root each time was a tenth of a message)."""
        return _file_root(os.fspath(base) if base is not None else None, os.getcwd())

    def __repr__(self) -> str:
        return f"FileRoot({str(self.base) if self.base else None!r})"

    def resolve(self, path: str, source: str) -> Path:
        """The real path of ``path`` (named by parameter ``source``), or FileNotAllowedError."""
        if self.base is None:
            raise FileNotAllowedError(
                f"{source}: file access is turned off here; {path!r} was not opened "
                f"(start `sfbulk serve` with --file-root DIR to allow files under DIR)"
            )
        if "\x00" in path:
            raise FileNotAllowedError(f"{source}: the file path contains a NUL character")
        candidate = Path(path).expanduser() if path.startswith("~") else Path(path)
        if not candidate.is_absolute():
            candidate = self.base / candidate
        real = Path(os.path.realpath(candidate))
        if real != self.base and self.base not in real.parents:
            raise FileNotAllowedError(
                f"{source}: {path!r} is outside the file root {str(self.base)!r}; "
                f"use a path under it (or change --file-root / file_root=)"
            )
        if real == self.base:
            raise FileNotAllowedError(f"{source}: {path!r} is the file root directory itself, not a file")
        return real

    def reader(self, path: str, source: str) -> Iterator[bytes]:
        """The file's bytes in chunks (never read whole); the file is opened before the first chunk."""
        real = self.resolve(path, source)
        try:
            handle = open(real, "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise ParameterError(f"{source}: file {path!r} not found") from None
        except IsADirectoryError:
            raise ParameterError(f"{source}: {path!r} is a directory, not a file") from None
        except OSError as exc:
            raise ParameterError(f"{source}: cannot read {path!r}: {exc.strerror}") from None
        return _chunks(handle)

    def write(self, path: str, source: str, chunks: Iterable[bytes]) -> int:
        """Stream ``chunks`` to the file (``path.part`` first, renamed when complete); the byte count."""
        real = self.resolve(path, source)
        if real.is_dir():
            raise ParameterError(f"{source}: {path!r} is a directory, not a file")
        try:
            real.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ParameterError(f"{source}: cannot create the folder of {path!r}: {exc.strerror}") from None
        part = real.with_name(real.name + ".part")
        written = 0
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(part, flags, 0o600)
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
            os.replace(part, real)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise ParameterError(f"{source}: cannot write {path!r}: {exc.strerror}") from None
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        return written


def _chunks(handle: object) -> Iterator[bytes]:
    with handle:  # type: ignore[attr-defined]
        while True:
            chunk = handle.read(CHUNK)  # type: ignore[attr-defined]
            if not chunk:
                return
            yield chunk


__all__ = ["FILE_NOT_ALLOWED_CODE", "FileNotAllowedError", "FileRoot"]


@functools.lru_cache(maxsize=64)
def _file_root(base: str | None, cwd: str) -> FileRoot:
    return FileRoot(base)  # cwd is part of the key only: a relative base means another folder elsewhere
