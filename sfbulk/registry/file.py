"""The registry: the only state shared between processes (tokens, times, user resources).

A small interface (get, put, delete, and a lock around "read, refresh if stale, write") with a
file store as the embedded default. ``FileRegistry`` keeps each resource as one file under a root
directory, MI-style: ``conf:x`` → ``<root>/config/x``, ``gov:x`` → ``<root>/governance/x``,
``local:x`` → ``<root>/local/x``, an un-prefixed key → ``<root>/<key>``.

Hardening (issue 11 point 6), because the files hold access tokens:

* **One canonical key = one file = one lock.** ``a//b/``, ``a/b``, ``conf:x`` and ``config/x`` are
  spelled differently but name the same file; :func:`canonical_key` folds them, and locks are
  taken on the canonical form, so aliases exclude each other.
* **No symlink is ever followed below the root**, reading or writing: every path component is
  opened relative to its parent directory with ``O_NOFOLLOW`` (``openat``), on every call, so a
  link swapped in after first use is refused, not followed. The root itself may be a link the
  operator set up.
* **Atomic writes**: a temporary file in the same directory, fsync, ``rename``. Temporary files
  are named ``.sfbulk-tmp.<name>.<host>.<pid>.<random>``; those of writers that died (their pid is
  gone, or older than an hour) are removed when the registry is opened and on the next write to
  that directory.
* Directories are created 0700, secret resources 0600, others 0644.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import secrets
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sfbulk.errors import RegistryError
from sfbulk.registry.base import Registry
from sfbulk.registry.crypto import RegistryCipher
from sfbulk.registry.keys import (
    IDENTITY_KEY_BYTES,
    IDENTITY_KEY_FILE,
    LOCK_DIR,
    TEMP_PREFIX,
    canonical_key,
    split_key,
)

log = logging.getLogger("sfbulk.registry")

#: Lock files: a key's canonical form picks one of this many (never nest two registry locks).
#: Enough that the few a caller can hold at once (one per worker thread, each waiting on a slow
#: grant of its own) rarely share a file with another identity's lock: 32 of 4,096 is under 1%.
LOCK_STRIPES = 4096
#: A temporary file older than this is a dead writer's even when its pid is alive again (reused).
STALE_TEMP_SECONDS = 3600.0
#: The start-up sweep looks at no more than this many directory entries (a registry is small).
SWEEP_LIMIT = 20_000

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
#: ``openat`` and friends: POSIX. Elsewhere (Windows) paths are checked component by component.
_DIR_FD = os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd and os.unlink in os.supports_dir_fd
_HOST_TAG = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _is_stale_temp(name: str, mtime: float, now: float) -> bool:
    """A temporary file whose writer is gone: its pid does not exist here, or it is over an hour old."""
    if now - mtime > STALE_TEMP_SECONDS:
        return True
    fields = name[len(TEMP_PREFIX) :].rsplit(".", 3)
    if len(fields) != 4 or fields[1] != _HOST_TAG or not fields[2].isdigit():
        return False  # another host's writer (shared volume): only age tells
    pid = int(fields[2])
    if pid == os.getpid():
        return False  # ours: a thread of this process may be writing it right now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # exists (EPERM: another user's process)
    return False


class FileRegistry(Registry):
    """Resources as files under ``root`` (default ``./registry``)."""

    def __init__(
        self,
        root: str | os.PathLike[str] = "registry",
        *,
        sweep: bool = True,
        cipher: RegistryCipher | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self.cipher = cipher
        self._key_lock = threading.Lock()
        self._identity_key: bytes | None = None
        self._joined: dict[str, str] = {}
        if sweep:
            self.sweep_temporary_files()

    def __repr__(self) -> str:
        return f"FileRegistry({str(self.root)!r})"

    def location(self, key: str) -> str:
        return str(self.path(key))

    def describe(self) -> str:
        return f"folder {self.root}" + (", secrets encrypted" if self.cipher else "")

    # -- paths ----------------------------------------------------------------------------------

    @staticmethod
    def _parts(key: str) -> list[str]:
        subdir, parts = split_key(key)
        return [subdir, *parts] if subdir else parts

    def path(self, key: str) -> Path:
        """The file holding ``key`` (for display and tests; every access re-checks the components)."""
        candidate = self.root.joinpath(*self._parts(key))
        root_real = os.path.realpath(self.root)
        if os.path.commonpath([root_real, os.path.realpath(candidate)]) != root_real:
            raise RegistryError(
                f"registry key {key!r} is illegal: it points to a location outside the registry"
            )
        return candidate

    def _symlink_error(self, key: str, component: str) -> RegistryError:
        return RegistryError(
            f"registry key {key!r} is illegal: {component!r} in its path is a symbolic link or not a folder; "
            "links below the registry root are refused (they could point outside the registry)"
        )

    def _open_dir(self, key: str, dirs: list[str], *, create: bool) -> int:
        """A descriptor of the folder ``dirs`` under the root, opened one component at a time, no links.

        FileNotFoundError when a component is missing and ``create`` is False.
        """
        if create:
            try:
                self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise RegistryError(
                    f"cannot create the registry folder {self.root}: {exc.strerror}"
                ) from None
        fd = os.open(self.root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)  # the root may be the operator's link
        try:
            for name in dirs:
                if create:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(name, 0o700, dir_fd=fd)
                try:
                    child = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                        raise self._symlink_error(key, name) from None
                    raise
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _checked_path(self, key: str, parts: list[str], *, create: bool) -> Path:
        """No ``openat``: check each component with lstat (a narrow race remains on such systems)."""
        current = self.root
        if create:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in parts[:-1]:
            current = current / name
            if create:
                with contextlib.suppress(FileExistsError):
                    current.mkdir(mode=0o700)
            st = os.lstat(current)
            if not stat.S_ISDIR(st.st_mode):
                raise self._symlink_error(key, name)
        final = current / parts[-1]
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.lstat(final).st_mode):
                raise self._symlink_error(key, parts[-1])
        return final

    # -- resources ------------------------------------------------------------------------------

    def version(self, key: str) -> object | None:
        """(inode, mtime, ctime, size) of the resource file: atomic replaces always change it.

        Only a change signal (a changed version makes the caller ``get``, which checks every
        component), so the joined path is cached per key.
        """
        path = self._joined.get(key)
        if path is None:
            path = os.path.join(self.root, *self._parts(key))
            if len(self._joined) < 4096:
                self._joined[key] = path
        try:
            st = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return ("missing",)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)

    def get(self, key: str) -> str | None:
        parts = self._parts(key)
        try:
            data = self._read(key, parts)
        except FileNotFoundError:
            return None
        except RegistryError:
            raise
        except OSError as exc:
            if exc.errno == errno.EISDIR:
                raise RegistryError(
                    f"registry key {key!r} is a collection (directory), not a resource"
                ) from None
            if exc.errno in (errno.ELOOP, errno.EMLINK):
                raise self._symlink_error(key, parts[-1]) from None
            raise RegistryError(f"cannot read registry resource {key!r}: {exc.strerror}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise RegistryError(f"registry resource {key!r} is not UTF-8 text") from None
        return self._unseal(key, "/".join(parts), text)

    def _read(self, key: str, parts: list[str]) -> bytes:
        if not _DIR_FD:
            path = self._checked_path(key, parts, create=False)
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            return path.read_bytes()
        dir_fd = self._open_dir(key, parts[:-1], create=False)
        try:
            fd = os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
        with os.fdopen(fd, "rb") as handle:
            if stat.S_ISDIR(os.fstat(handle.fileno()).st_mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            return handle.read()

    def put(self, key: str, value: str, *, secret: bool = False) -> None:
        parts = self._parts(key)
        text = value if isinstance(value, str) else str(value)
        data = self._seal("/".join(parts), text, secret).encode("utf-8")
        try:
            if _DIR_FD:
                self._write_at(key, parts, data, secret)
            else:
                self._write_checked(key, parts, data, secret)
        except RegistryError:
            raise
        except OSError as exc:
            if exc.errno == errno.EISDIR:
                raise RegistryError(
                    f"registry key {key!r} is a collection (directory), not a resource"
                ) from None
            raise RegistryError(f"cannot write registry resource {key!r}: {exc.strerror}") from None
        log.debug("registry put %s%s", key, " (secret)" if secret else "")

    def _temp_name(self, name: str) -> str:
        return f"{TEMP_PREFIX}{name[:80]}.{_HOST_TAG}.{os.getpid()}.{secrets.token_hex(6)}"

    def _write_at(self, key: str, parts: list[str], data: bytes, secret: bool) -> None:
        dir_fd = self._open_dir(key, parts[:-1], create=True)
        try:
            self._sweep_dir_fd(dir_fd)
            name = parts[-1]
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "is a directory")
            tmp = self._temp_name(name)
            fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600, dir_fd=dir_fd
            )
            try:
                try:
                    if not secret:
                        os.fchmod(fd, 0o644)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                finally:
                    os.close(fd)
                # rename replaces the directory entry itself: a link at ``name`` is replaced, not followed.
                os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dir_fd)
                raise
        finally:
            os.close(dir_fd)

    def _write_checked(self, key: str, parts: list[str], data: bytes, secret: bool) -> None:
        path = self._checked_path(key, parts, create=True)
        self._sweep_dir(path.parent)
        tmp = path.parent / self._temp_name(path.name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                if not secret:
                    os.chmod(tmp, 0o644)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def delete(self, key: str) -> None:
        parts = self._parts(key)
        try:
            if _DIR_FD:
                dir_fd = self._open_dir(key, parts[:-1], create=False)
                try:
                    os.unlink(parts[-1], dir_fd=dir_fd)  # unlink never follows a link: it removes it
                finally:
                    os.close(dir_fd)
            else:
                self._checked_path(key, parts, create=False).unlink()
        except FileNotFoundError:
            pass
        except RegistryError:
            raise
        except OSError as exc:
            raise RegistryError(f"cannot delete registry resource {key!r}: {exc.strerror}") from None

    # -- temporary files of killed writers -------------------------------------------------------

    def _sweep_dir_fd(self, dir_fd: int) -> None:
        now = time.time()
        with contextlib.suppress(OSError):
            for name in os.listdir(dir_fd):
                if not name.startswith(TEMP_PREFIX):
                    continue
                with contextlib.suppress(OSError):
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if _is_stale_temp(name, st.st_mtime, now):
                        os.unlink(name, dir_fd=dir_fd)
                        log.info("registry: removed a temporary file left by a writer that stopped")

    def _sweep_dir(self, directory: Path) -> None:
        now = time.time()
        with contextlib.suppress(OSError):
            for entry in os.scandir(directory):
                if entry.name.startswith(TEMP_PREFIX):
                    with contextlib.suppress(OSError):
                        if _is_stale_temp(entry.name, entry.stat(follow_symlinks=False).st_mtime, now):
                            os.unlink(entry.path)

    def sweep_temporary_files(self) -> int:
        """Remove the temporary files of writers that died, anywhere under the root; returns the count."""
        if not self.root.is_dir():
            return 0
        removed = seen = 0
        now = time.time()
        for directory, dirnames, filenames in os.walk(self.root, followlinks=False):
            seen += len(dirnames) + len(filenames)
            dirnames[:] = [d for d in dirnames if d != LOCK_DIR]
            for name in filenames:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    if _is_stale_temp(name, os.lstat(path).st_mtime, now):
                        os.unlink(path)
                        removed += 1
            if seen > SWEEP_LIMIT:
                break
        if removed:
            log.info(
                "registry %s: removed %d temporary file(s) left by writers that stopped", self.root, removed
            )
        return removed

    # -- the identity key ------------------------------------------------------------------------

    def identity_key(self, *, create: bool = False) -> bytes | None:
        """``<root>/.sfbulk-identity-key``: 32 random bytes, mode 0600, created once, atomically.

        Created by linking a complete temporary file into place (``link`` fails if the name exists),
        so concurrent creators agree on one key and no reader ever sees a partial one.
        """
        if self._identity_key is not None:
            return self._identity_key
        with self._key_lock:
            if self._identity_key is None:
                key = self._read_identity_key()
                if key is None and create:
                    key = self._create_identity_key()
                self._identity_key = key
            return self._identity_key

    def _read_identity_key(self) -> bytes | None:
        path = self.root / IDENTITY_KEY_FILE
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RegistryError(
                f"cannot read the registry identity key {path}: {exc.strerror} "
                "(it must be a regular file, not a link)"
            ) from None
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077:
                raise RegistryError(
                    f"the registry identity key {path} must be a regular file readable by its "
                    "owner only (chmod 600 it, or delete it: cached tokens are then refreshed once)"
                )
            data = handle.read(IDENTITY_KEY_BYTES + 1)
        if len(data) != IDENTITY_KEY_BYTES:
            raise RegistryError(
                f"the registry identity key {path} is damaged (wrong length); delete it: "
                "cached tokens are then refreshed once"
            )
        return data

    def _create_identity_key(self) -> bytes:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self.root / self._temp_name(IDENTITY_KEY_FILE)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600)
            try:
                try:
                    os.write(fd, secrets.token_bytes(IDENTITY_KEY_BYTES))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, self.root / IDENTITY_KEY_FILE, follow_symlinks=False)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        except OSError as exc:
            raise RegistryError(
                f"cannot create the registry identity key in {self.root}: {exc.strerror}"
            ) from None
        key = self._read_identity_key()
        if key is None:
            raise RegistryError(f"the registry identity key in {self.root} vanished while it was created")
        return key

    # -- locks ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float = 30) -> Iterator[None]:
        stripe = (
            int.from_bytes(hashlib.sha256(canonical_key(key).encode("utf-8")).digest()[:4], "big")
            % LOCK_STRIPES
        )
        lock_dir = self.root / LOCK_DIR
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileExistsError):
                lock_dir.mkdir(mode=0o700)
            if not stat.S_ISDIR(os.lstat(lock_dir).st_mode):
                raise RegistryError(f"the registry lock folder {lock_dir} is a link or a file; remove it")
        except OSError as exc:
            raise RegistryError(
                f"cannot create the registry lock directory {lock_dir}: {exc.strerror}"
            ) from None
        # Keys share LOCK_STRIPES lock files, so callers naming ever new keys (bogus registryPaths)
        # cannot fill the folder; one key is still one lock.
        stripe_lock = _StripeLock.for_path(str(lock_dir / f"stripe-{stripe:04d}.lock"))
        if not stripe_lock.acquire(timeout):
            raise RegistryError(
                f"registry lock for {key!r} not acquired within {timeout:g} s; another process holds it"
            )
        try:
            yield
        finally:
            stripe_lock.release()


class _StripeLock:
    """One lock file, shared by every FileRegistry of the process: re-entrant per thread, exclusive
    between threads (a ``threading.RLock``) and between processes (``filelock``, opened O_NOFOLLOW).

    Re-entrancy matters because keys share stripes: a thread holding one key's lock may try another
    key's and land on the same file (two descriptors of one file would exclude each other).
    """

    _all: dict[str, _StripeLock] = {}
    _guard = threading.Lock()

    def __init__(self, path: str) -> None:
        import filelock  # here, not at module level: most runs never lock (start-up time)

        self.thread_lock = threading.RLock()
        self.file_lock = filelock.FileLock(path, mode=0o600, thread_local=False)
        self.depth = 0

    @classmethod
    def for_path(cls, path: str) -> _StripeLock:
        with cls._guard:
            found = cls._all.get(path)
            if found is None:
                found = cls._all[path] = cls(path)
            return found

    def acquire(self, timeout: float) -> bool:
        import filelock

        started = time.monotonic()
        if not self.thread_lock.acquire(timeout=max(timeout, 0.0)):
            return False
        if self.depth == 0:
            try:
                self.file_lock.acquire(timeout=max(0.0, timeout - (time.monotonic() - started)))
            except filelock.Timeout:
                self.thread_lock.release()
                return False
            except BaseException:
                self.thread_lock.release()
                raise
        self.depth += 1
        return True

    def release(self) -> None:
        self.depth -= 1
        try:
            if self.depth == 0:
                self.file_lock.release()
        finally:
            self.thread_lock.release()

    @classmethod
    def _forget_after_fork(cls) -> None:
        cls._all = {}  # a child starts with no lock held and no inherited descriptor in use
        cls._guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_StripeLock._forget_after_fork)
