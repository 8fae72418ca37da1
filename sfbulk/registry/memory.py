"""An in-process registry for tests and one-off scripts: the same key rules, nothing shared."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator

from sfbulk.errors import RegistryError
from sfbulk.registry.base import Registry
from sfbulk.registry.crypto import RegistryCipher
from sfbulk.registry.keys import IDENTITY_KEY_BYTES, canonical_key


class MemoryRegistry(Registry):
    """An in-process registry (tests, one-off scripts). Same key rules as the file registry."""

    def __init__(self, *, cipher: RegistryCipher | None = None) -> None:
        self.cipher = cipher
        self._data: dict[str, str] = {}
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()
        self._identity_key = secrets.token_bytes(IDENTITY_KEY_BYTES)

    def get(self, key: str) -> str | None:
        canonical = canonical_key(key)
        stored = self._data.get(canonical)
        return None if stored is None else self._unseal(key, canonical, stored)

    def put(self, key: str, value: str, *, secret: bool = False) -> None:
        canonical = canonical_key(key)
        self._data[canonical] = self._seal(canonical, str(value), secret)

    def delete(self, key: str) -> None:
        self._data.pop(canonical_key(key), None)

    def identity_key(self, *, create: bool = False) -> bytes | None:
        return self._identity_key

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float = 30) -> Iterator[None]:
        canonical = canonical_key(key)
        with self._guard:
            lock = self._locks.setdefault(canonical, threading.RLock())
        if not lock.acquire(timeout=timeout):
            raise RegistryError(f"registry lock for {key!r} not acquired within {timeout:g} s")
        try:
            yield
        finally:
            lock.release()
