"""Synapse expressions: compiled once at config load, evaluated per message (synapse.md §4)."""

from sfbulk.expressions.expression import Expression, Value, compile_expression

__all__ = ["Expression", "Value", "compile_expression"]
