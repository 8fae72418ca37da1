"""Registry keys: the one validation and canonical spelling every store shares.

A key is a relative path, optionally MI-prefixed (``conf:``, ``gov:``, ``local:``). Every store
(files, PostgreSQL, memory) refuses the same keys with the same messages and folds aliases
(``a//b/``, ``conf:x`` = ``config/x``) to the same canonical key, so a resource, its lock and
its confinement do not depend on the backend.
"""

from __future__ import annotations

from sfbulk.errors import RegistryError

#: key prefix → sub-directory of the root (synapse.md §7.1, MI layout).
PREFIXES: dict[str, str] = {"conf:": "config", "gov:": "governance", "local:": "local"}

#: Directory (under the root) holding the lock files, kept apart from the resources.
LOCK_DIR = ".locks"
#: Bounds of a key (a caller can choose registryPath): longer or deeper keys are refused, not walked.
MAX_KEY_LENGTH = 1024
MAX_KEY_SEGMENTS = 64
MAX_SEGMENT_BYTES = 255
#: Names starting with this are the registry's own (temporary files, the identity key): never keys.
RESERVED_PREFIX = ".sfbulk-"
TEMP_PREFIX = RESERVED_PREFIX + "tmp."
#: The per-registry secret that keys the identity hashes of cached tokens (sfbulk.connector.auth).
IDENTITY_KEY_FILE = RESERVED_PREFIX + "identity-key"
IDENTITY_KEY_BYTES = 32


def split_key(key: str) -> tuple[str, list[str]]:
    """(sub-directory, path parts) of a registry key; raises RegistryError for unsafe keys.

    Rejected: empty keys, NUL, backslashes, absolute paths (after the optional prefix, a single
    leading ``/`` is allowed as in Synapse: ``gov:/x`` = ``gov:x``), ``..`` and ``.`` segments,
    and the registry's own names (``.locks``, ``.sfbulk-*``).
    """
    if not isinstance(key, str) or not key.strip():
        raise RegistryError(
            "registry key is empty; give a path such as connectors/SalesforceBulk/accessToken"
        )
    if len(key) > MAX_KEY_LENGTH:
        raise RegistryError(f"registry key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}")
    if "\x00" in key:
        raise RegistryError("registry key contains a NUL character; keys are relative paths like a/b/c")
    if "\\" in key:
        raise RegistryError(f"registry key {key!r} contains a backslash; use '/' between path segments")
    subdir = ""
    rest = key
    for prefix, directory in PREFIXES.items():
        if key.startswith(prefix):
            subdir, rest = directory, key[len(prefix) :]
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
    if len(parts) > MAX_KEY_SEGMENTS:
        raise RegistryError(
            f"registry key {key[:60]!r}... has {len(parts)} path segments; the limit is {MAX_KEY_SEGMENTS}"
        )
    for part in parts:
        if part in ("..", "."):
            raise RegistryError(
                f"registry key {key!r} is illegal: it points to a location outside the registry "
                "('.' and '..' segments are not allowed)"
            )
        if len(part.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
            raise RegistryError(
                f"registry key {key[:60]!r}... has a path segment longer than {MAX_SEGMENT_BYTES} bytes"
            )
        if part == LOCK_DIR or part.startswith(RESERVED_PREFIX):
            raise RegistryError(
                f"registry key {key!r} uses a name reserved for the registry itself ({part!r})"
            )
    return subdir, parts


def canonical_key(key: str) -> str:
    """The one spelling of ``key``: its file's path relative to the root (``conf:x`` → ``config/x``).

    Keys with equal canonical forms are the same resource, the same file and the same lock.
    """
    subdir, parts = split_key(key)
    return "/".join([subdir, *parts] if subdir else parts)
