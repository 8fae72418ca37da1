"""The start-up cache holds every bundled connector at once: runs that load different connectors
(``sfbulk load`` one, ``sfbulk run`` both) must not evict each other's entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sfbulk.connector import connection
from sfbulk.connector.bundle import loader


def test_loading_one_connector_keeps_the_other_connectors_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SFBULK_CACHE_DIR", str(tmp_path))
    roots = [connection.bundle_root(name) for name in connection.BUNDLED]
    assert len(roots) >= 2
    for root in roots:  # a run that loads every connector fills the cache
        loader.load_bundle(root)
    loader.load_bundle(roots[0])  # then one that loads only the first (sfbulk load)

    checked: list[str] = []
    real_validate = loader.validate

    def counting(document: Any, schema: Any, display: str) -> None:
        checked.append(display)
        real_validate(document, schema, display)

    monkeypatch.setattr(loader, "validate", counting)
    for root in roots:
        loader.load_bundle(root)
    assert checked == []  # every document was found in the cache: nothing checked again
