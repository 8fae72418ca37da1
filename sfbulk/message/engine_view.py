"""The typed seams to the engine: what mediators, expressions, the message context and the server use of it.

``EngineView`` is the mediation side (a message flow's view of its engine); ``ServedEngine`` is
what the WSGI server dispatches to. Both are structural ``Protocol``s so that these layers name
their needs without importing ``sfbulk.engine`` (which imports the mediators: a cycle), and test
doubles state plainly what they stand in for. ``sfbulk.engine.engine.Engine`` implements both;
``_conforms`` in that module makes mypy prove it; both are ``runtime_checkable`` so tests
also check their doubles with ``isinstance``.

Every import here is for types only, so importing this module costs nothing at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.connector.connection import Connection, Connector
    from sfbulk.mediators.api import Api, ApiMatch
    from sfbulk.mediators.flow import Proxy, Sequence
    from sfbulk.mediators.http import Endpoint
    from sfbulk.message.context import MessageContext
    from sfbulk.message.formatters import HttpResult
    from sfbulk.registry import Registry
    from sfbulk.transport import Transport


@runtime_checkable
class EngineView(Protocol):
    """What a message flow needs of its engine (``MessageContext.engine``)."""

    @property
    def registry(self) -> Registry:
        """The registry behind ``get-property('registry', ...)`` and registry-scope properties."""
        ...

    @property
    def transport(self) -> Transport:
        """The one pooled HTTP transport call/send use (its ``host_policy`` checks dynamic hosts)."""
        ...

    def local_entry(self, key: str) -> Any | None:
        """A ``<localEntry>`` value: the fallback of a default-scope ``get-property``."""
        ...

    def sequence(self, name: str) -> Sequence | None:
        """The named sequence (``<sequence key>``, ``onError``, filter branches by key), or None."""
        ...

    def endpoint(self, name: str) -> Endpoint | None:
        """The named endpoint an ``<endpoint key>`` resolves to when the message is sent, or None."""
        ...

    def connector(self, name: str) -> Connector:
        """The loaded connector ``name``; MediationFault when there is none."""
        ...

    def connection(self, connector_name: str, params: Mapping[str, str]) -> Connection:
        """The (cached) connection ``<connector.init>`` opens with these parameters."""
        ...

    def run_out_sequence(self, ctx: MessageContext) -> bool:
        """Run the proxy's (or API resource's) outSequence on the response (send, loopback)."""
        ...


@runtime_checkable
class ServedEngine(Protocol):
    """What the WSGI server (``sfbulk.server.app``) needs of the engine it serves."""

    @property
    def proxies(self) -> Mapping[str, Proxy]:
        """Deployed proxies by name (routing, /health)."""
        ...

    @property
    def apis(self) -> Mapping[str, Api]:
        """Deployed REST APIs by key (routing, /health)."""
        ...

    def handle(
        self,
        proxy: str,
        *,
        method: str,
        uri: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        rest_url_postfix: str | None,
    ) -> HttpResult:
        """Mediate one request through ``proxy``; UnknownProxyError when no proxy has that name."""
        ...

    def api_match(self, method: str, uri: str) -> ApiMatch:
        """The API resource ``method uri`` selects; NoApiMatch (404/405) when none."""
        ...

    def handle_api(
        self,
        *,
        method: str,
        uri: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        match: ApiMatch | None,
    ) -> HttpResult:
        """Mediate one request through the matched API resource."""
        ...


__all__ = ["EngineView", "ServedEngine"]
