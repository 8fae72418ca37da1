"""The registry interface every store implements (files, PostgreSQL, memory).

Small on purpose (get, put, delete, a lock around "read, refresh if stale, write", the identity key):
the token life cycle (sfbulk.connector.auth) needs nothing more, so a store is easy to add and the
same contract tests run against each one.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod

from sfbulk.errors import RegistryError
from sfbulk.registry.crypto import SEALED_PREFIX, RegistryCipher


class Registry(ABC):
    """Key → text resources plus an inter-process lock per key."""

    #: Encrypts ``secret`` resources at rest when set (sfbulk.registry.crypto); None: stored as given.
    cipher: RegistryCipher | None = None

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

    @abstractmethod
    def identity_key(self, *, create: bool = False) -> bytes | None:
        """The registry's secret HMAC key (identity hashes of cached tokens); None if not created yet."""

    def version(self, key: str) -> object | None:
        """A cheap signature that changes whenever ``key`` is written, or None ("unknown: read it").

        Lets hot paths (the token check before every call) skip re-reading unchanged resources.
        """
        return None

    def location(self, key: str) -> str:
        """Where ``key`` is kept, for messages to the operator (never a secret)."""
        return f"{self!r} key {key}"

    def describe(self) -> str:
        """The store in one line for start-up banners (no password)."""
        return repr(self)

    def close(self) -> None:
        """Release connections (stores without any have nothing to do)."""
        return None

    # -- encryption at rest (shared by the stores) ----------------------------------------------

    def _seal(self, canonical: str, value: str, secret: bool) -> str:
        """The text to store: ``secret`` values are encrypted when a cipher is configured."""
        if secret and self.cipher is not None:
            return self.cipher.seal(canonical, value)
        return value

    def _unseal(self, key: str, canonical: str, stored: str) -> str:
        """The value of a stored text; encrypted ones need the key (a clear RegistryError otherwise)."""
        if not stored.startswith(SEALED_PREFIX):
            return stored  # plain (written before a key was configured, or not secret)
        if self.cipher is None:
            raise RegistryError(
                f"registry resource {key!r} is encrypted, and no registry key is configured: give the "
                "key file with --registry-key-file (or SFBULK_REGISTRY_KEY_FILE / SFBULK_REGISTRY_KEY)"
            )
        return self.cipher.unseal(key, canonical, stored)
