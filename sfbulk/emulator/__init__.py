"""Local Salesforce Bulk API 1.0 and 2.0 + OAuth emulator, persistent in SQLite. Imports nothing else of sfbulk.

from sfbulk.emulator import start_emulator
with start_emulator() as emu:
    print(emu.base_url, emu.credentials)

The exports are resolved on first use (PEP 562): a batch worker process imports
``sfbulk.emulator.workers`` and must not pay for the HTTP server (cheroot, the app) it never runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .oauth import DEMO_CREDENTIALS
    from .server import Emulator, start_emulator

__all__ = ["DEMO_CREDENTIALS", "Emulator", "start_emulator"]

_HOMES = {"DEMO_CREDENTIALS": ".oauth", "Emulator": ".server", "start_emulator": ".server"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value
