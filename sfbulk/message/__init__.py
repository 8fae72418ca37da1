"""The message: one mutable context per message, its payload forms and its HTTP in/out (synapse.md §1)."""

from sfbulk.message.context import MessageContext
from sfbulk.message.formatters import HttpResult

__all__ = ["HttpResult", "MessageContext"]
