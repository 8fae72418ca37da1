"""The registry: the only state shared between processes (tokens, times, user resources).

A small interface (:class:`Registry`: get, put, delete, and a lock around "read, refresh if stale,
write") with several stores behind it:

* :class:`FileRegistry` (``sfbulk.registry.file``), the embedded default: one file per resource
  under a root folder, in the WSO2 MI layout; one host.
* :class:`PostgresRegistry` (``sfbulk.registry.postgres``): one table, advisory locks; several
  hosts share it (needs ``pip install 'sfbulk[postgresql]'``).
* :class:`MemoryRegistry`: in-process, for tests and scripts.

:func:`open_registry` picks the store from what the user wrote (``--registry``: a folder or a
``postgresql://`` URL). Keys are validated and folded to one canonical spelling by
``sfbulk.registry.keys`` for every store alike; secret resources are encrypted at rest when a key is
configured (``sfbulk.registry.crypto``). docs/registry.md is the operator's guide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sfbulk.registry.base import Registry
from sfbulk.registry.crypto import RegistryCipher, load_cipher
from sfbulk.registry.factory import is_registry_url, open_registry
from sfbulk.registry.file import LOCK_STRIPES, FileRegistry
from sfbulk.registry.keys import (
    IDENTITY_KEY_BYTES,
    IDENTITY_KEY_FILE,
    LOCK_DIR,
    MAX_KEY_LENGTH,
    MAX_KEY_SEGMENTS,
    MAX_SEGMENT_BYTES,
    PREFIXES,
    RESERVED_PREFIX,
    TEMP_PREFIX,
    canonical_key,
    split_key,
)
from sfbulk.registry.memory import MemoryRegistry

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.registry.postgres import PostgresRegistry


def __getattr__(name: str) -> Any:
    if name == "PostgresRegistry":  # imported on use: most runs never need psycopg
        from sfbulk.registry.postgres import PostgresRegistry

        return PostgresRegistry
    raise AttributeError(f"module 'sfbulk.registry' has no attribute {name!r}")


__all__ = [
    "IDENTITY_KEY_BYTES",
    "IDENTITY_KEY_FILE",
    "LOCK_DIR",
    "LOCK_STRIPES",
    "MAX_KEY_LENGTH",
    "MAX_KEY_SEGMENTS",
    "MAX_SEGMENT_BYTES",
    "PREFIXES",
    "RESERVED_PREFIX",
    "TEMP_PREFIX",
    "FileRegistry",
    "MemoryRegistry",
    "PostgresRegistry",
    "Registry",
    "RegistryCipher",
    "canonical_key",
    "is_registry_url",
    "load_cipher",
    "open_registry",
    "split_key",
]
