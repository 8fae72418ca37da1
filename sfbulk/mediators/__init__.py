"""Mediators: one small class per Synapse mediator, shared by every config front-end.

Front-ends build these once with already-compiled expressions (``sfbulk.expressions.expression``), compiled
regexes and child mediator lists; ``mediate(ctx) -> bool`` never parses configuration
(False stops the whole current flow). See docs/architecture.md, "Mediators".
"""

from sfbulk.mediators.base import Mediator, run_mediators
from sfbulk.mediators.connector import ConnectorOperationMediator
from sfbulk.mediators.core import (
    EnrichMediator,
    EnrichSource,
    EnrichTarget,
    HeaderMediator,
    LogMediator,
    LogProperty,
    PayloadArg,
    PayloadFactoryMediator,
    PropertyMediator,
)
from sfbulk.mediators.flow import (
    FilterMediator,
    Proxy,
    Sequence,
    SequenceReference,
    SwitchCase,
    SwitchMediator,
)
from sfbulk.mediators.http import (
    CallMediator,
    DropMediator,
    HttpEndpoint,
    LoopbackMediator,
    RespondMediator,
    SendMediator,
)

__all__ = [
    "CallMediator",
    "ConnectorOperationMediator",
    "DropMediator",
    "EnrichMediator",
    "EnrichSource",
    "EnrichTarget",
    "FilterMediator",
    "HeaderMediator",
    "HttpEndpoint",
    "LogMediator",
    "LogProperty",
    "LoopbackMediator",
    "Mediator",
    "PayloadArg",
    "PayloadFactoryMediator",
    "PropertyMediator",
    "Proxy",
    "RespondMediator",
    "SendMediator",
    "Sequence",
    "SequenceReference",
    "SwitchCase",
    "SwitchMediator",
    "run_mediators",
]
