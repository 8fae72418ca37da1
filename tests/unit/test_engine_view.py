"""The engine seams (sfbulk.message.engine_view): the Engine implements both Protocols.

mypy proves it statically (``_conforms`` in sfbulk/engine/engine.py); these checks keep a runtime
guard on the member names, so a renamed Engine method fails here rather than deep in a flow.
"""

from __future__ import annotations

from sfbulk.engine.engine import Engine
from sfbulk.message.engine_view import EngineView, ServedEngine


def test_engine_implements_both_seams(engine: Engine) -> None:
    assert isinstance(engine, EngineView)
    assert isinstance(engine, ServedEngine)


def test_an_object_missing_members_is_not_an_engine() -> None:
    class ProxiesOnly:
        proxies: dict[str, object] = {}

    assert not isinstance(ProxiesOnly(), ServedEngine)
    assert not isinstance(ProxiesOnly(), EngineView)
