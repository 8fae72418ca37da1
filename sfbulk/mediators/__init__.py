"""Mediators: one small class per Synapse mediator, shared by every config front-end.

Front-ends build these once with already-compiled expressions (``sfbulk.expressions.expression``), compiled
regexes and child mediator lists; ``mediate(ctx) -> bool`` never parses configuration
(False stops the whole current flow). See docs/architecture.md, "Mediators".

Modules by family, as Synapse groups them: ``builtin`` (property, log), ``transform`` (header,
payloadFactory, enrich), ``filters`` (filter, switch), ``flow`` (Sequence, Proxy, sequence
references, in/out), ``http`` (call, send, respond, drop, loopback and the endpoints),
``connector`` (connector operations), ``api`` (REST API definitions and MI's resource dispatch).
"""

from sfbulk.mediators.base import Mediator, run_mediators
from sfbulk.mediators.builtin import LogMediator, LogProperty, PropertyMediator
from sfbulk.mediators.connector import ConnectorOperationMediator
from sfbulk.mediators.filters import FilterMediator, SwitchCase, SwitchMediator
from sfbulk.mediators.flow import Proxy, Sequence, SequenceReference
from sfbulk.mediators.http import (
    CallMediator,
    DropMediator,
    HttpEndpoint,
    LoopbackMediator,
    RespondMediator,
    SendMediator,
)
from sfbulk.mediators.transform import (
    EnrichMediator,
    EnrichSource,
    EnrichTarget,
    HeaderMediator,
    PayloadArg,
    PayloadFactoryMediator,
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
