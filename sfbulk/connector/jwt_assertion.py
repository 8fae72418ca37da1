"""The RS256 assertion of the OAuth 2.0 JWT bearer flow, and the private key that signs it.

Salesforce checks an assertion against the certificate uploaded to the connected app (or External
Client App): ``iss`` = its consumer key, ``sub`` = the user's username, ``aud`` = the authorization
server (``https://login.salesforce.com``, ``https://test.salesforce.com`` or an Experience Cloud
site URL), ``exp`` at most 3 minutes ahead. No client secret and no refresh token take part.

A key is read once per file version (path, size, mtime) or PEM text, and is known by its
fingerprint: the SHA-256 of its public key (SubjectPublicKeyInfo DER), which is what binds a
cached token to the key (``sfbulk.connector.auth``). Replacing the key file therefore starts a new
identity at the next init, as a rotated certificate must. Neither the key nor an assertion is ever
logged or put in an error.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sfbulk.errors import AuthError
from sfbulk.secrets import Secret

#: seconds from now to the assertion's ``exp``: Salesforce wants it within 3 minutes
ASSERTION_LIFETIME = 180
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LOGIN_AUDIENCE = "https://login.salesforce.com"
TEST_AUDIENCE = "https://test.salesforce.com"
#: a larger PEM is refused before parsing: an RSA 8192-bit key is about 6.3 KiB, and checking a
#: huge key (which a caller of the seed proxy could send as privateKey) would cost seconds
MAX_KEY_BYTES = 12 * 1024


class PrivateKeyError(AuthError):
    """The private key given for the JWT bearer grant cannot be used: bad input, found before any request."""


class SigningKey:
    """An RSA private key and its public-key fingerprint; printed forms never show the key."""

    __slots__ = ("_key", "fingerprint")

    def __init__(self, key: Any, fingerprint: str) -> None:
        self._key = key
        #: hex SHA-256 of the public key's DER (SubjectPublicKeyInfo): not secret
        self.fingerprint = fingerprint

    def __repr__(self) -> str:
        return f"SigningKey(sha256:{self.fingerprint[:16]}...)"

    def sign(self, claims: dict[str, Any]) -> Secret:
        """The compact RS256 JWS of ``claims`` (a Secret: it is a credential for 3 minutes)."""
        import jwt

        return Secret(jwt.encode(claims, self._key, algorithm="RS256"))


def load_key(data: bytes, source: str, password: Secret | None = None) -> SigningKey:
    """Parse a PEM RSA private key; ``source`` names what the user wrote (``privateKeyFile /x.pem``).

    Raises AuthError saying what is wrong with it, never quoting it.
    """
    if len(data) > MAX_KEY_BYTES:
        raise PrivateKeyError(f"{source}: {len(data)} bytes is too large for a PEM private key")
    return _load_cached(hashlib.sha256(data).hexdigest(), data, source, password.reveal() if password else "")


@functools.lru_cache(maxsize=32)
def _load_cached(digest: str, data: bytes, source: str, password: str) -> SigningKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if b"-----BEGIN" not in data:
        hint = (
            " (it looks like a certificate: give the private key, not the .crt)"
            if b"CERTIFICATE" in data
            else ""
        )
        raise PrivateKeyError(f"{source}: not a PEM private key{hint}")
    if b"-----BEGIN CERTIFICATE" in data and b"PRIVATE KEY" not in data:
        raise PrivateKeyError(
            f"{source}: this is a certificate, not a private key: the certificate goes to the connected "
            "app in Salesforce, the private key that signed it to sfbulk"
        )
    try:
        key = serialization.load_pem_private_key(data, password=password.encode("utf-8") or None)
    except TypeError:  # a passphrase missing, or given for a key that has none
        if password:
            raise PrivateKeyError(
                f"{source}: the private key is not encrypted; leave privateKeyPassword empty"
            ) from None
        raise PrivateKeyError(
            f"{source}: the private key is encrypted; give its passphrase in privateKeyPassword"
        ) from None
    except ValueError:
        if password:
            raise PrivateKeyError(f"{source}: privateKeyPassword does not decrypt this private key") from None
        raise PrivateKeyError(f"{source}: not a PEM private key") from None
    except Exception:  # cryptography's UnsupportedAlgorithm and friends
        raise PrivateKeyError(f"{source}: not a PEM private key this system can read") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PrivateKeyError(
            f"{source}: a {type(key).__name__.removeprefix('_').replace('PrivateKey', '')} key; the JWT "
            "bearer flow signs with RS256, which needs an RSA private key"
        )
    if key.key_size < 2048:
        raise PrivateKeyError(
            f"{source}: an RSA key of {key.key_size} bits; Salesforce needs 2048 bits or more"
        )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SigningKey(key, hashlib.sha256(der).hexdigest())


def load_key_file(path: str, source: str = "privateKeyFile", password: Secret | None = None) -> SigningKey:
    """Read and parse the key file at ``path`` (re-read only when its size or mtime changed)."""
    label = f"{source} {path}"
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise PrivateKeyError(f"{label}: no such file") from None
    except OSError as exc:
        raise PrivateKeyError(f"{label}: cannot be read ({exc.strerror})") from None
    if os.path.isdir(path):
        raise PrivateKeyError(f"{label}: is a folder, not a PEM private key file")
    if stat.st_size > MAX_KEY_BYTES:
        raise PrivateKeyError(f"{label}: {stat.st_size} bytes is too large for a PEM private key")
    return _read_key_file(os.path.realpath(path), stat.st_size, stat.st_mtime_ns, label, password)


def _read_key_file(real: str, size: int, mtime_ns: int, label: str, password: Secret | None) -> SigningKey:
    try:
        with open(real, "rb") as fh:
            data = fh.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise PrivateKeyError(f"{label}: cannot be read ({exc.strerror})") from None
    return load_key(data, label, password)


def pem_text(value: str) -> bytes:
    """A PEM given as text (an environment variable, a vault entry): literal ``\\n`` become newlines."""
    text = value.strip()
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    return text.encode("utf-8")


def default_audience(token_endpoint: str) -> str:
    """The ``aud`` Salesforce expects for assertions posted to ``token_endpoint``.

    login.salesforce.com and production My Domains: the login URL; test.salesforce.com and sandbox
    My Domains: the test URL; anything else (an Experience Cloud site, the emulator): itself.
    """
    host = (urlsplit(token_endpoint).hostname or "").lower()
    if host == "test.salesforce.com" or host.endswith(".sandbox.my.salesforce.com"):
        return TEST_AUDIENCE
    if host == "login.salesforce.com" or host.endswith(".my.salesforce.com"):
        return LOGIN_AUDIENCE
    return token_endpoint


def claims(client_id: str, username: str, audience: str, now: float | None = None) -> dict[str, Any]:
    """``iss``, ``sub``, ``aud`` and ``exp`` (whole seconds, at most ASSERTION_LIFETIME ahead)."""
    issued = int(time.time() if now is None else now)
    return {"iss": client_id, "sub": username, "aud": audience, "exp": issued + ASSERTION_LIFETIME}


@dataclass(frozen=True)
class JwtBearer:
    """What the JWT bearer grant needs, resolved at init."""

    client_id: str
    username: str
    audience: str
    key: SigningKey

    def assertion(self, now: float | None = None) -> Secret:
        return self.key.sign(claims(self.client_id, self.username, self.audience, now))


__all__ = [
    "ASSERTION_LIFETIME",
    "PrivateKeyError",
    "JWT_BEARER_GRANT",
    "JwtBearer",
    "SigningKey",
    "claims",
    "default_audience",
    "load_key",
    "load_key_file",
    "pem_text",
]
