"""sfbulk: the Salesforce Bulk connector, a small Synapse-compatible mediation engine, and an emulator.

The public face is small; implementation modules stay private to their layer:

    from sfbulk import Engine, Connector, MessageContext, FileRegistry, open_registry
    from sfbulk import load_csv, extract, start_server   # the bulk pipeline and the server
    from sfbulk import errors            # the exception tree
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sfbulk import errors
from sfbulk.errors import ApiError, ConfigError, MediationFault, SfBulkError

__version__ = "0.1.0"

# name -> module; imported on first access so `import sfbulk` stays cheap (the emulator and the
# CLI import only what they use).
_LAZY = {
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

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.bulk.extract import extract
    from sfbulk.bulk.load import load_csv
    from sfbulk.connector.connection import Connection, Connector
    from sfbulk.engine.engine import Engine
    from sfbulk.message.context import MessageContext
    from sfbulk.registry import FileRegistry, open_registry
    from sfbulk.server.app import start_server


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sfbulk' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "ApiError",
    "ConfigError",
    "Connection",
    "Connector",
    "Engine",
    "FileRegistry",
    "MediationFault",
    "MessageContext",
    "SfBulkError",
    "errors",
    "open_registry",
    "extract",
    "load_csv",
    "start_server",
]
