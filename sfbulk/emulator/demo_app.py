"""The demo connected app's key pair and certificate, for the JWT bearer flow against the emulator.

Made fresh for each emulator (RSA 2048, a self-signed certificate valid for a year) in a private
temporary folder, or kept in a folder of the user's choice (``--demo-app-dir``: made there once,
reused on the next start so scripts and configs can name the files): ``private_key.pem`` (mode
0600) is what a client signs assertions with, and ``certificate.pem`` is what a Salesforce admin
would upload to the connected app. Like the demo
client secret they unlock nothing but this emulator; they are printed on purpose.
"""

from __future__ import annotations

import datetime
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

CERTIFICATE_NAME = "sfbulk emulator demo connected app"


class DemoAppKeys:
    """Created on first use (key generation takes a few tens of milliseconds); ``close()`` deletes the files."""

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._folder = Path(folder).absolute() if folder is not None else None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._public_key: Any = None

    def _ensure(self) -> Path:
        with self._lock:
            if self._folder is not None:
                if self._public_key is None:
                    self._public_key = _reuse_or_write(self._folder)
                return self._folder
            if self._dir is None:
                self._dir = tempfile.TemporaryDirectory(prefix="sfbulk-emulator-demo-app-")
                self._public_key = _write_key_pair(Path(self._dir.name))
            return Path(self._dir.name)

    @property
    def private_key_file(self) -> str:
        return str(self._ensure() / "private_key.pem")

    @property
    def certificate_file(self) -> str:
        return str(self._ensure() / "certificate.pem")

    @property
    def public_key(self) -> Any:
        """The key assertions are verified with (the certificate's)."""
        self._ensure()
        return self._public_key

    def close(self) -> None:
        with self._lock:
            if self._dir is not None:
                self._dir.cleanup()
                self._dir = None


def _reuse_or_write(folder: Path) -> Any:
    """The public key of the pair kept in ``folder``, made there first if it holds none."""
    from cryptography import x509

    cert_file = folder / "certificate.pem"
    if (folder / "private_key.pem").is_file() and cert_file.is_file():
        return x509.load_pem_x509_certificate(cert_file.read_bytes()).public_key()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return _write_key_pair(folder)


def _write_key_pair(folder: Path) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CERTIFICATE_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(folder / "private_key.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    (folder / "certificate.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert.public_key()
