"""``--registry`` → a store: a folder (the default, ``registry``) or a ``postgresql://`` URL.

One function so that ``serve``, ``run``, ``load``, ``extract`` and the Python API (``Engine``,
``Connector.connection``) read the option the same way, with the same errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from sfbulk.errors import RegistryError
from sfbulk.registry.base import Registry
from sfbulk.registry.crypto import RegistryCipher, load_cipher
from sfbulk.registry.file import FileRegistry

#: URL schemes of the shared stores (the rest of a URL is the store's own business).
POSTGRES_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def is_registry_url(spec: object) -> bool:
    """Whether ``spec`` is a URL (``scheme://...``) rather than a folder."""
    return isinstance(spec, str) and _URL.match(spec) is not None


def display_spec(spec: str | os.PathLike[str]) -> str:
    """``spec`` fit for a banner or an error: a URL's password masked."""
    text = os.fspath(spec)
    if not is_registry_url(text):
        return text
    from sfbulk.registry.postgres import mask_url

    return mask_url(text)


def open_registry(
    spec: str | os.PathLike[str] | Registry | None = None,
    *,
    key_file: str | os.PathLike[str] | None = None,
    cipher: RegistryCipher | None = None,
    environ: Mapping[str, str] | None = None,
    option: str = "--registry",
) -> Registry:
    """The store ``spec`` names (None: the ``registry`` folder); an existing Registry is returned as is.

    Secrets are encrypted at rest with ``cipher``, else the keys of ``key_file``, else those named by
    SFBULK_REGISTRY_KEY_FILE / SFBULK_REGISTRY_KEY in ``environ`` (default: the process environment).
    A shared store is connected to (and its table created) here, so a wrong URL fails at start-up.
    """
    if isinstance(spec, Registry):
        return spec
    if cipher is None:
        cipher = load_cipher(key_file, environ=environ)
    text = os.fspath(spec) if spec is not None else "registry"
    if not text.strip():
        raise RegistryError(f"{option} is empty; give a folder or a postgresql:// URL")
    match = _URL.match(text)
    if match is None:
        return FileRegistry(text, cipher=cipher)
    scheme = match.group(1).lower()
    if scheme in POSTGRES_SCHEMES:
        from sfbulk.registry.postgres import PostgresRegistry

        registry = PostgresRegistry(text, cipher=cipher, option=option)
        registry.setup()
        return registry
    raise RegistryError(
        f"{option} {display_spec(text)}: the {scheme}:// scheme is not a registry store; give a folder "
        "or a postgresql://user@host:port/database URL (docs/registry.md)"
    )
