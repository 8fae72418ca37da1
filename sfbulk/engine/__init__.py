"""The engine: owns proxies, APIs, sequences, local entries, connectors, the registry and the transport."""

from sfbulk.engine.engine import Engine

__all__ = ["Engine"]
