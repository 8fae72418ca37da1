"""Connector operation mediator: ``<salesforcebulk.createJob>`` and friends (synapse.md §2.4).

Parameters are bound like Synapse binds template parameters: values are evaluated in the
caller's context when the operation is entered, a null result leaves the parameter unbound, and
names the operation does not declare are ignored (``sfbulk validate`` and the loaders report them
as typos first, see ``undeclared_parameters``). Only a missing value the request URL needs (the
``required`` parameters: jobId, batchId, resultId, init's apiUrl) is a local ``ParameterError``
fault, code 500101 as MI's mandatory template parameters; a missing body value goes to
Salesforce, whose answer comes back as WSO2 relays it. ``init`` creates (or reuses, through the engine's cache) a
``Connection``; it lives in the operation scope under ``connector:<name>``, never in a
user-visible property or header. The other operations invoke it and the HTTP answer becomes
the current message (4xx/5xx included, HTTP_SC set).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from sfbulk import observe
from sfbulk.errors import ConfigError, MediationFault, ParameterError
from sfbulk.mediators.base import engine_of, relay_response

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.connector.connection import Connector
    from sfbulk.expressions.expression import Value
    from sfbulk.message.context import MessageContext

log = logging.getLogger("sfbulk.mediation")

INIT_OPERATION = "init"


def connection_key(connector: str) -> str:
    """Operation-scope key holding the message flow's connection for ``connector``."""
    return f"connector:{connector}"


def operation_parameters(connector: Connector, operation: str) -> list[tuple[str, bool]] | None:
    """(name, required) for each declared parameter of ``operation``; None when it has no such operation."""
    op = connector.operations.get(operation)
    if op is None:
        return None
    # Required without a default: the caller must bind it.
    return [(p.name, p.required and p.default is None) for p in op.parameters]


def undeclared_parameters(
    connector: Connector, operation: str, names: Iterable[str], label: str | None = None
) -> list[tuple[str, str]]:
    """(name, message) for each of ``names`` that ``operation`` does not declare: likely a typo.

    Synapse ignores such names, so a misspelt ``<resultsId>`` silently passes nothing; the
    message names the operation and the closest declared name (``difflib``) so the user can fix it.
    Empty when every name is declared or the connector has no such operation. ``label`` names the operation
    in the message (default ``operation``; the loaders pass ``salesforcebulk.getJob``).
    """
    declared = operation_parameters(connector, operation)
    if declared is None:
        return []
    known = [name for name, _ in declared]
    problems = []
    for name in names:
        if name in known:
            continue
        same_case = [k for k in known if k.lower() == name.lower()]
        close = same_case or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(
            (
                name,
                f"{label or operation} has no parameter {name!r}{hint} "
                f"(parameters: {', '.join(known) or 'none'})",
            )
        )
    return problems


class ConnectorOperationMediator:
    """``<connector.operation>`` with child parameters already classified into ``Value`` objects."""

    def __init__(self, connector: str, operation: str, params: Mapping[str, Value] | None = None) -> None:
        if not connector or not operation:
            raise ConfigError("connector operation: both the connector name and the operation are required")
        self.connector = connector
        self.operation = operation
        self.params = dict(params or {})

    @property
    def tag(self) -> str:
        return f"{self.connector}.{self.operation}"

    def bind(
        self, ctx: MessageContext, connector: Connector, defaults: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Evaluate the parameters in the caller's context; apply declared/required rules.

        ``defaults`` (the engine's ``init_defaults`` of an init) count as given: the engine fills them in.
        """
        declared = operation_parameters(connector, self.operation)
        if declared is None:
            raise MediationFault(
                f"Sequence template {self.tag} cannot be found: connector {self.connector!r} has no "
                f"operation {self.operation!r}"
            )
        names = {name for name, _ in declared}
        bound: dict[str, str] = {}
        for name, value in self.params.items():
            if name not in names:
                continue  # undeclared names are ignored, as Synapse ignores them
            result = value.evaluate(ctx)
            if result is not None:
                bound[name] = result
        defaults = defaults or {}
        missing = [
            name for name, required in declared if required and not bound.get(name) and not defaults.get(name)
        ]
        if missing:
            raise ParameterError(
                f"{self.tag}: missing required parameter(s) {', '.join(missing)}; "
                f"add <{missing[0]}>...</{missing[0]}> (or the YAML key) to the operation"
            )
        return bound

    def mediate(self, ctx: MessageContext) -> bool:
        engine = engine_of(ctx, f"connector operation {self.tag}")
        connector = engine.connector(self.connector)
        defaults: Mapping[str, str] | None = None
        if self.operation == INIT_OPERATION:  # an alias (salesforce_bulkapi_v2) shares its connector's
            all_defaults = getattr(engine, "init_defaults", None) or {}
            defaults = all_defaults.get(self.connector) or all_defaults.get(connector.name)
        params = self.bind(ctx, connector, defaults)
        key = connection_key(self.connector)
        if self.operation == INIT_OPERATION:
            ctx.operation[key] = engine.connection(self.connector, params)
            return True
        connection = ctx.operation.get(key)
        if connection is None:
            raise MediationFault(
                f"{self.tag} was invoked before {self.connector}.init: put <{self.connector}.init> "
                f"(with apiUrl, accessToken, ...) earlier in the same message flow"
            )
        op = connector.operation(self.operation)
        rendered_from_caller = op.request is not None and op.request.body.kind == "caller"
        if rendered_from_caller:
            # Operations that relay the caller's body (uploadBatchFile, createJobToUploadBatchFile): the
            # current payload, with its Content-Type as WSO2 relays it (an explicit contentType wins).
            body, body_type = ctx.payload_bytes()
            response = connection.invoke(
                self.operation, body=body, body_content_type=body_type or None, **params
            )
        else:
            response = connection.invoke(self.operation, **params)
        relay_response(ctx, response.http)
        observe.operation_answer(self.operation, response.properties, lambda: response.content)
        # Values an operation declares under response.headers (Sforce-Locator -> locator) become
        # properties of the flow, so a loop can pass get-property('locator') to the next call.
        for name, _header in op.response.headers:
            value = response.properties.get(name)
            if value is not None:
                ctx.properties[name] = value
        return True
