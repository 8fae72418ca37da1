"""The public import surface (sfbulk/__init__.py): every name resolves, lazily, to the real object."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import sfbulk

PUBLIC = {
    "Engine": "sfbulk.engine.engine",
    "Connector": "sfbulk.connector.connection",
    "Connection": "sfbulk.connector.connection",
    "MessageContext": "sfbulk.message.context",
    "FileRegistry": "sfbulk.registry",
    "open_registry": "sfbulk.registry",
    "load_csv": "sfbulk.bulk.load",
    "extract": "sfbulk.bulk.extract",
    "start_server": "sfbulk.server.app",
}


@pytest.mark.parametrize("name, module", sorted(PUBLIC.items()))
def test_each_public_name_is_the_object_of_its_module(name: str, module: str) -> None:
    assert getattr(sfbulk, name) is getattr(importlib.import_module(module), name)
    assert name in sfbulk.__all__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sfbulk.nope  # noqa: B018 - the attribute access is the test


def test_import_sfbulk_loads_none_of_the_lazy_modules() -> None:
    probe = "import sys, sfbulk; print(sorted(m for m in sys.modules if m.startswith('sfbulk.')))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert all(module not in loaded for module in set(PUBLIC.values())), loaded
