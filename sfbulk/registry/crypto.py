"""Encryption at rest of secret registry resources (access and refresh tokens, the identity key).

AES-256-GCM (``cryptography``) with the resource's canonical key as associated data, so a sealed
value copied to another key (another identity's slot) does not decrypt. A stored value reads
``sfbulk-enc:v1:<key id>:<base64url(nonce + ciphertext)>``; the key id (8 hex digits of a hash of
the key) names which configured key sealed it, which makes "wrong key" an exact diagnosis.

Several keys may be configured for rotation: the first seals, every one opens (docs/registry.md).
Without a key nothing changes: resources are stored as given, as the WSO2 layout expects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sfbulk.errors import RegistryError

#: Every sealed value starts with this; anything else is plain text.
SEALED_PREFIX = "sfbulk-enc:v1:"
KEY_BYTES = 32
NONCE_BYTES = 12
#: The environment variables the CLI and open_registry() read (the file wins over the inline keys).
ENV_KEY = "SFBULK_REGISTRY_KEY"
ENV_KEY_FILE = "SFBULK_REGISTRY_KEY_FILE"
_HELP = (
    "a key is 32 random bytes in URL-safe base64 (44 characters), e.g. from "
    '`python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`'
)


def generate_key() -> str:
    """A new key in the configured form (URL-safe base64 of 32 random bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def key_id(key: bytes) -> str:
    """8 hex digits naming a key in sealed values and messages (a hash: reveals nothing of the key)."""
    return hashlib.sha256(b"sfbulk-registry-key\x00" + key).hexdigest()[:8]


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise RegistryError(f"{where} is not a registry key: {_HELP}")
    return raw


class RegistryCipher:
    """Seals and opens secret resources with the configured keys (the first one seals)."""

    def __init__(self, keys: Sequence[bytes], *, source: str) -> None:
        if not keys:
            raise RegistryError(f"{source} holds no registry key: {_HELP}")
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:
            raise RegistryError(
                f"encrypting the registry ({source}) needs the 'cryptography' package: "
                "pip install cryptography"
            ) from None
        self.source = source
        self._ciphers: dict[str, Any] = {}
        for key in keys:
            self._ciphers.setdefault(key_id(key), AESGCM(key))
        self.primary_id = key_id(keys[0])

    def __repr__(self) -> str:
        return f"RegistryCipher(key {self.primary_id} from {self.source}, {len(self._ciphers)} key(s))"

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    def seal(self, canonical: str, value: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[self.primary_id].encrypt(nonce, value.encode("utf-8"), canonical.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        return f"{SEALED_PREFIX}{self.primary_id}:{body}"

    def unseal(self, key: str, canonical: str, stored: str) -> str:
        from cryptography.exceptions import InvalidTag

        kid, _, body = stored[len(SEALED_PREFIX) :].partition(":")
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise RegistryError(
                f"registry resource {key!r} was encrypted with key {kid}, which is not among the "
                f"configured keys ({', '.join(self._ciphers)} from {self.source}); add the old key "
                "after the new one while rotating (docs/registry.md)"
            )
        try:
            data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], canonical.encode())
            return bytes(plain).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError):
            raise RegistryError(
                f"registry resource {key!r} does not decrypt with key {kid}: it was altered, or "
                "copied from another key; delete it (a token is then obtained again)"
            ) from None

    def is_current(self, stored: str) -> bool:
        """Whether ``stored`` is sealed with the first (current) key; plain text is not."""
        return stored.startswith(f"{SEALED_PREFIX}{self.primary_id}:")

    # -- configuration --------------------------------------------------------------------------

    @classmethod
    def from_text(cls, text: str, *, source: str) -> RegistryCipher:
        """Keys one per line (or separated by commas); blank lines and ``#`` comments are ignored."""
        keys: list[bytes] = []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            for item in filter(None, (part.strip() for part in line.split(","))):
                keys.append(_decode_key(item, f"line {number} of {source}"))
        return cls(keys, source=source)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, option: str = "--registry-key-file"
    ) -> RegistryCipher:
        where = f"{option} {path}"
        try:
            file = Path(path)
            st = file.stat()
            text = file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise RegistryError(f"cannot read the registry key file ({where}): {reason}") from None
        if os.name == "posix" and stat.S_IMODE(st.st_mode) & 0o077:
            raise RegistryError(f"the registry key file ({where}) is readable by other users; chmod 600 it")
        return cls.from_text(text, source=where)


def load_cipher(
    key_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    option: str = "--registry-key-file",
) -> RegistryCipher | None:
    """The cipher configured by ``key_file``, else SFBULK_REGISTRY_KEY_FILE, else SFBULK_REGISTRY_KEY."""
    env = os.environ if environ is None else environ
    if key_file:
        return RegistryCipher.from_file(key_file, option=option)
    if env.get(ENV_KEY_FILE):
        return RegistryCipher.from_file(env[ENV_KEY_FILE], option=ENV_KEY_FILE)
    if env.get(ENV_KEY):
        return RegistryCipher.from_text(env[ENV_KEY], source=ENV_KEY)
    return None
