"""The Engine: one object holding proxies, sequences, local entries, connectors, the registry and the
HTTP transport, and running messages through them (synapse.md §2.2, §5, §6.5-6.6).

Nothing is global: tests and servers build their own Engine. One transport (one connection pool)
serves every message; connector connections are cached per parameter set.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sfbulk.errors import (
    MESSAGE_LIMIT,
    AuthError,
    CodedError,
    ConfigError,
    MediationFault,
    ParameterError,
    PayloadError,
    RegistryError,
    SfBulkError,
    UnknownProxyError,
    bounded_traceback,
    clip,
)
from sfbulk.faults import render_fault
from sfbulk.mediators.api import Api, ApiMatch, select_api
from sfbulk.mediators.builtin import mask_secrets
from sfbulk.mediators.flow import Proxy, Sequence
from sfbulk.message.context import MessageContext
from sfbulk.message.formatters import HttpResult
from sfbulk.registry import Registry, open_registry
from sfbulk.secrets import install_log_redaction, redact

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.connector.connection import Connection, Connector
    from sfbulk.mediators.base import Mediator
    from sfbulk.mediators.http import Endpoint
    from sfbulk.message.engine_view import EngineView, ServedEngine
    from sfbulk.transport import Transport

log = logging.getLogger("sfbulk.engine.engine")

#: Name of the global fault sequence a proxy falls back to (synapse.md §2.2).
GLOBAL_FAULT_SEQUENCE = "fault"
RUNTIME_ERROR = "Runtime error occurred while mediating the message"


class _DefaultFaultHandler:
    """Bottom of every fault stack when neither the proxy nor the config defines one: answer a clear fault."""

    def mediate(self, ctx: MessageContext) -> bool:
        ctx.operation[_DEFAULT_FAULT_KEY] = True
        return False

    def __repr__(self) -> str:
        return "DefaultFaultHandler()"


_DEFAULT_FAULT_KEY = "sfbulk:default-fault"
DEFAULT_FAULT_HANDLER = _DefaultFaultHandler()


def fault_response(code: Any, message: str, status: int = 500) -> HttpResult:
    """``<fault><code>..</code><message>..</message></fault>``: no traceback, no secret (sfbulk.faults)."""
    fault = render_fault(code, redact(message), status)
    return HttpResult(fault.status, fault.reason, fault.headers, fault.body)


class Engine:
    """Owns what a message flow needs; ``handle`` mediates one HTTP request through a proxy."""

    def __init__(
        self,
        registry: Registry | str | os.PathLike[str] | None = None,
        *,
        connectors: Mapping[str, Connector] | None = None,
        transport: Transport | None = None,
        verify: bool | str = True,
        init_defaults: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """``init_defaults`` maps a connector name to init parameters used when a flow's init does not
        pass them, e.g. ``{"salesforcebulk": {"tokenEndpointHostname": "https://test.salesforce.com"}}``
        points unmodified proxies at a sandbox's (or the emulator's) token endpoint."""
        install_log_redaction()
        self.init_defaults: dict[str, dict[str, str]] = {
            name: dict(values) for name, values in (init_defaults or {}).items()
        }
        # a Registry as is; a folder or a postgresql:// URL through the one factory (sfbulk.registry)
        self.registry: Registry = open_registry(registry)
        if transport is None:
            from sfbulk.transport import RequestsTransport

            transport = RequestsTransport(verify=verify)
        self.transport: Transport = transport
        self._connectors: dict[str, Connector] | None = dict(connectors) if connectors is not None else None
        #: the directory connector operations' file paths are confined to (None: files refused)
        self.file_root: str | os.PathLike[str] | None = "."
        self.proxies: dict[str, Proxy] = {}
        self.sequences: dict[str, Sequence] = {}
        self.local_entries: dict[str, Any] = {}
        self.apis: dict[str, Api] = {}  # by key: name, or name:v<version>
        self.endpoints: dict[str, Endpoint] = {}  # named endpoints (<endpoint name=...>)

    # --- configuration ---------------------------------------------------------------------------

    def load(self, *paths: str | os.PathLike[str], **options: Any) -> None:
        """Load YAML / Synapse XML files or folders; all-or-nothing (raises ConfigError(s))."""
        from sfbulk.config import load_paths

        if "connectors" not in options:
            self.connector("salesforcebulk") if self._connectors is None else None
            options["connectors"] = dict(self._connectors or {})  # connector operations checked at load
        loaded = load_paths([os.fspath(p) for p in paths], **options)
        for warning in loaded.warnings:
            log.warning("%s", warning)
        proxies = dict(loaded.proxies)
        sequences = dict(loaded.sequences)
        entries = loaded.local_entries
        apis = dict(loaded.apis)
        endpoints = dict(loaded.endpoints)
        clashes = sorted(set(proxies) & set(self.proxies)) + sorted(set(sequences) & set(self.sequences))
        clashes += sorted(set(apis) & set(self.apis)) + sorted(set(endpoints) & set(self.endpoints))
        served = {api.full_context: key for key, api in self.apis.items()}
        clashes += sorted(
            f"{key} (at {api.full_context}, as {served[api.full_context]})"
            for key, api in apis.items()
            if api.full_context in served and key not in self.apis
        )
        if clashes:
            raise ConfigError(
                f"already loaded: {', '.join(clashes)}; each proxy, sequence, API and endpoint name, "
                "and each API's context, must be unique"
            )
        self.proxies.update(proxies)
        self.sequences.update(sequences)
        self.local_entries.update(dict(entries))
        self.apis.update(apis)
        self.endpoints.update(endpoints)

    def add_proxy(self, proxy: Proxy) -> Proxy:
        self.proxies[proxy.name] = proxy
        return proxy

    def add_sequence(self, sequence: Sequence) -> Sequence:
        if not sequence.name:
            raise ConfigError("a named sequence needs a name")
        self.sequences[sequence.name] = sequence
        return sequence

    def add_local_entry(self, key: str, value: Any) -> None:
        self.local_entries[key] = value

    def add_api(self, api: Api) -> Api:
        self.apis[api.key] = api
        return api

    def add_endpoint(self, name: str, endpoint: Endpoint) -> Endpoint:
        self.endpoints[name] = endpoint
        return endpoint

    # --- lookups mediators use --------------------------------------------------------------------

    def sequence(self, name: str) -> Sequence | None:
        return self.sequences.get(name)

    def local_entry(self, key: str) -> Any | None:
        return self.local_entries.get(key)

    def endpoint(self, name: str) -> Endpoint | None:
        """The named endpoint ``name`` (``<endpoint key=...>`` resolves through this at run time)."""
        return self.endpoints.get(name)

    def proxy(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise UnknownProxyError(name, list(self.proxies))
        return proxy

    def connector(self, name: str) -> Connector:
        """The loaded connector called ``name`` (the bundled ``salesforcebulk`` by default)."""
        if self._connectors is None:
            from sfbulk.connector.connection import bundled_connectors

            self._connectors = dict(bundled_connectors())
        connector = self._connectors.get(name)
        if connector is None:
            raise MediationFault(
                f"no connector named {name!r} is loaded (loaded: {', '.join(sorted(self._connectors)) or 'none'})"
            )
        return connector

    def connection(self, connector_name: str, params: Mapping[str, str]) -> Connection:
        """A Connection for these init parameters, reused across messages (one pool, one token life cycle).

        The connector's cache keys it by the non-secret parameters and a hash of the secrets. Parameters
        the flow passes (non-empty) win over the engine's ``init_defaults``.
        """
        connector = self.connector(connector_name)
        defaults = self.init_defaults.get(connector_name)
        if defaults is None:  # an alias (salesforce_bulkapi_v2) shares its connector's defaults
            defaults = self.init_defaults.get(connector.name, {})
        merged = dict(defaults)
        merged.update((name, value) for name, value in params.items() if value != "" or name not in merged)
        return connector.connection(
            registry=self.registry, transport=self.transport, cache=True, file_root=self.file_root, **merged
        )

    # --- running ------------------------------------------------------------------------------------

    def handle(
        self,
        proxy: str,
        *,
        method: str,
        uri: str,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        body: bytes = b"",
        rest_url_postfix: str | None = None,
    ) -> HttpResult:
        """Mediate one inbound HTTP request through ``proxy``; UnknownProxyError if there is none."""
        target = self.proxy(proxy)
        ctx = MessageContext.from_http(
            method=method, uri=uri, headers=headers, body=body, rest_url_postfix=rest_url_postfix, engine=self
        )
        return self._mediate_proxy(target, ctx)

    def mediate(self, proxy: str, ctx: MessageContext) -> HttpResult:
        """Run ``ctx`` through the proxy named ``proxy`` and return the caller's response (UnknownProxyError if none)."""
        return self._mediate_proxy(self.proxy(proxy), ctx)

    def _mediate_proxy(self, proxy: Proxy, ctx: MessageContext) -> HttpResult:
        """Run ``ctx`` through ``proxy`` (in flow, target endpoint, faults) and return the caller's response."""
        if ctx.engine is None:
            ctx.engine = self
        ctx.properties["proxy.name"] = proxy.name
        ctx.fault_stack.append(self._proxy_fault_handler(proxy))
        try:
            in_sequence = self._resolve(proxy.in_sequence, proxy, "inSequence")
            result = in_sequence.mediate(ctx) if in_sequence is not None else True
            if result and proxy.endpoint is not None and not ctx.response_ready:
                if proxy.endpoint.invoke(ctx) is not False:  # False: a timeout discarded the message
                    self.run_out_sequence(ctx)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a fault, never a traceback
            return self._handle_fault(ctx, exc)
        return self._result(ctx)

    def run_out_sequence(self, ctx: MessageContext) -> bool:
        """The response path (send with an endpoint, loopback): run the proxy's (or resource's) outSequence."""
        ctx.is_response = True
        match = ctx.operation.get(_API_MATCH_KEY)
        if isinstance(match, ApiMatch):
            out = self._resolve_api_slot(match.resource.out_sequence, match, "outSequence")
            return out.mediate(ctx) if out is not None else True
        proxy = self.proxies.get(str(ctx.properties.get("proxy.name") or ""))
        if proxy is None:
            return True
        out_sequence = self._resolve(proxy.out_sequence, proxy, "outSequence")
        return out_sequence.mediate(ctx) if out_sequence is not None else True

    def _resolve(self, sequence: Sequence | str | None, proxy: Proxy, role: str) -> Sequence | None:
        return self._sequence(sequence, f"{role} of proxy {proxy.name!r}")

    def _sequence(self, sequence: Sequence | str | None, where: str) -> Sequence | None:
        """An inline sequence, or the named one (Synapse's fault if no such sequence is deployed)."""
        if sequence is None or isinstance(sequence, Sequence):
            return sequence
        found = self.sequences.get(sequence)
        if found is None:
            raise MediationFault(
                f"Sequence named Value {{name ='null', keyValue ='{sequence}'}} cannot be found ({where})"
            )
        return found

    def _proxy_fault_handler(self, proxy: Proxy) -> Mediator:
        return self._fault_handler(proxy.fault_sequence, f"proxy {proxy.name!r}")

    def _fault_handler(self, fault: Sequence | str | None, owner: str) -> Mediator:
        """Named faultSequence if it resolves, else inline, else the global ``fault``, else the default."""
        if isinstance(fault, str):
            named = self.sequences.get(fault)
            if named is not None:
                return named
            log.warning("faultSequence %r of %s cannot be found; using the global one", fault, owner)
        elif isinstance(fault, Sequence):
            return fault
        return self.sequences.get(GLOBAL_FAULT_SEQUENCE) or DEFAULT_FAULT_HANDLER

    # --- REST APIs -------------------------------------------------------------------------------------

    def api_match(self, method: str, uri: str) -> ApiMatch:
        """The API and resource ``method uri`` (raw path + query) goes to; ``NoApiMatch`` (404/405) if none."""
        return select_api(tuple(self.apis.values()), method, uri)

    def handle_api(
        self,
        *,
        method: str,
        uri: str,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = (),
        body: bytes = b"",
        match: ApiMatch | None = None,
    ) -> HttpResult:
        """Mediate one inbound HTTP request through the API resource its path selects (``NoApiMatch`` if none).

        ``match``: the outcome of ``api_match`` for this request, when the caller already has it.
        """
        match = match or self.api_match(method, uri)
        ctx = MessageContext.from_http(
            method=method,
            uri=uri,
            headers=headers,
            body=body,
            rest_url_postfix=match.rest_url_postfix,
            engine=self,
        )
        return self.mediate_api(match, ctx)

    def mediate_api(self, match: ApiMatch, ctx: MessageContext) -> HttpResult:
        """Run ``ctx`` through the matched resource (in sequence, faults) as MI's API dispatch does."""
        if ctx.engine is None:
            ctx.engine = self
        if match.options_only:
            return HttpResult(200, "OK", [("Allow", ", ".join(match.allow))], b"")
        _set_api_properties(match, ctx)
        ctx.fault_stack.append(self._api_fault_handler(match))
        try:
            in_sequence = self._resolve_api_slot(match.resource.in_sequence, match, "inSequence")
            if in_sequence is not None:
                in_sequence.mediate(ctx)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a fault, never a traceback
            return self._handle_fault(ctx, exc)
        return self._result(ctx)

    def _resolve_api_slot(
        self, sequence: Sequence | str | None, match: ApiMatch, role: str
    ) -> Sequence | None:
        return self._sequence(sequence, f"{role} of resource {match.resource.label} of API {match.api.key!r}")

    def _api_fault_handler(self, match: ApiMatch) -> Mediator:
        return self._fault_handler(match.resource.fault_sequence, f"API {match.api.key!r}")

    # --- faults ---------------------------------------------------------------------------------------

    def _record_fault(self, ctx: MessageContext, exc: BaseException) -> None:
        """ERROR_CODE / ERROR_MESSAGE / ERROR_DETAIL / ERROR_EXCEPTION, only when ERROR_CODE is unset.

        An error a caller can cause (any ``SfBulkError``: a refused grant, a bad registry key, a bad
        parameter, a malformed payload, an unreachable host) logs one WARNING line; anything else
        (a bug) one ERROR line. Tracebacks only at DEBUG, and every logged value is clipped, so one
        request writes a bounded amount of log whatever it carries.
        """
        api = ctx.properties.get("SYNAPSE_REST_API")
        proxy = (
            f"API {clip(api, 200)}"
            if api and not ctx.properties.get("proxy.name")
            else (f"proxy {clip(ctx.properties.get('proxy.name'), 200)}")
        )
        # Besides known secrets, mask the values of the flow's secret-named properties: a caller's
        # clientSecret echoed by a validation message ("apiVersion '<it>' is not...") stays hidden.
        code, message, detail = fault_fields(exc, lambda text: mask_secrets(ctx, text))
        if isinstance(exc, SfBulkError):
            log.warning("mediation fault in %s: %s (ERROR_CODE %s)", proxy, message, code)
        else:
            log.error(
                "unexpected error in %s: %s: %s (ERROR_CODE 0; the traceback is logged at DEBUG level)",
                proxy,
                type(exc).__name__,
                clip(mask_secrets(ctx, str(exc)), 300),
            )
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "traceback of the fault in %s:\n%s",
                proxy,
                bounded_traceback(exc, lambda text: mask_secrets(ctx, text)),
            )
        if ctx.properties.get("ERROR_CODE") is None:
            ctx.properties["ERROR_CODE"] = code
            ctx.properties["ERROR_MESSAGE"] = message
            ctx.properties["ERROR_DETAIL"] = detail
            ctx.properties["ERROR_EXCEPTION"] = f"{type(exc).__name__}: {message}"

    def _handle_fault(self, ctx: MessageContext, exc: BaseException) -> HttpResult:
        """Pop and run fault handlers until one completes (synapse.md §5)."""
        first = exc
        while True:
            self._record_fault(ctx, exc)
            if not ctx.fault_stack:
                return self._default_fault(ctx, first)
            handler = ctx.fault_stack.pop()
            if handler is DEFAULT_FAULT_HANDLER:
                return self._default_fault(ctx, first)
            try:
                handler.mediate(ctx)
            except Exception as nested:  # noqa: BLE001 - the next handler on the stack runs
                exc = nested
                continue
            return self._result(ctx, fault=first)

    def _default_fault(self, ctx: MessageContext, exc: BaseException) -> HttpResult:
        code = ctx.properties.get("ERROR_CODE", 0)
        message = clip(ctx.properties.get("ERROR_MESSAGE") or RUNTIME_ERROR)
        return fault_response(code, message, default_fault_status(exc))

    def _result(self, ctx: MessageContext, fault: BaseException | None = None) -> HttpResult:
        if ctx.operation.get(_DEFAULT_FAULT_KEY):
            return self._default_fault(ctx, fault or MediationFault(RUNTIME_ERROR))
        if not ctx.response_ready:
            return HttpResult(202, "Accepted", [], b"")
        try:
            return ctx.to_http_response()
        except SfBulkError as exc:
            log.warning("the response cannot be serialized: %s", clip(redact(str(exc))))
            code = exc.code if isinstance(exc, CodedError) else 0
            return fault_response(code, clip(f"the response cannot be serialized: {exc}"))

    def close(self) -> None:
        """Release the connection pool (and the connectors' cached connections)."""
        for connector in (self._connectors or {}).values():
            connector.close_cached()
        self.transport.close()
        self.registry.close()  # idle database connections (a later use opens new ones)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_API_MATCH_KEY = "sfbulk:api-match"


def _set_api_properties(match: ApiMatch, ctx: MessageContext) -> None:
    """What MI's API dispatch puts on the message: REST_* properties, uri.var.*, query.param.*."""
    api = match.api
    props = ctx.properties
    ctx.operation[_API_MATCH_KEY] = match
    props["SYNAPSE_REST_API"] = api.key
    props["REST_API_CONTEXT"] = api.context
    if api.version:
        props["SYNAPSE_REST_API_VERSION"] = api.version
    props["REST_METHOD"] = str(ctx.axis2.get("HTTP_METHOD") or "")
    props["REST_SUB_REQUEST_PATH"] = match.rest_url_postfix
    props["REST_FULL_REQUEST_PATH"] = ctx.to or ""
    props["API_ELECTED_RESOURCE"] = match.resource.label
    for name, value in match.query_params.items():
        props[f"query.param.{name}"] = value
    for name, value in match.uri_vars.items():
        props[f"uri.var.{name}"] = value


def fault_fields(exc: BaseException, mask: Callable[[str], str] = redact) -> tuple[Any, str, str]:
    """(ERROR_CODE, ERROR_MESSAGE, ERROR_DETAIL) for ``exc``: masked (then cut, so no half secret), one line."""
    if isinstance(exc, CodedError):  # mediation faults and transport errors carry code and detail
        text = str(exc.message) if exc.message else type(exc).__name__
        message = clip(mask(text.splitlines()[0] if text.strip() else type(exc).__name__))
        detail = clip(mask(exc.detail), 4 * MESSAGE_LIMIT) if exc.detail else message
        return exc.code, message, detail
    if isinstance(exc, SfBulkError):  # the other layers' errors: their class's error_code
        text = str(exc).strip() or type(exc).__name__
        message = clip(mask(text.splitlines()[0]))
        return exc.error_code, message, message
    return 0, RUNTIME_ERROR, f"{RUNTIME_ERROR}: {type(exc).__name__}"


def default_fault_status(exc: BaseException) -> int:
    """The HTTP status of the engine's own fault answer (a proxy without a fault sequence).

    400 for what the request got wrong (payload, parameter, registry key), 401 for credentials the
    token endpoint refused, 503 when the token endpoint stayed unavailable through every retry (the
    caller may try again; its credentials are not in question), 500 for the rest.
    """
    from sfbulk.connector.auth import TokenEndpointUnavailable

    if isinstance(exc, (PayloadError, ParameterError)):
        return 400
    if isinstance(exc, RegistryError) and str(exc).startswith("registry key"):
        return 400
    if isinstance(exc, TokenEndpointUnavailable):
        return 503
    if isinstance(exc, AuthError):
        return 401
    return 500


if TYPE_CHECKING:  # pragma: no cover

    def _conforms(engine: Engine) -> tuple[EngineView, ServedEngine]:
        """mypy proves here that the Engine implements both seams (sfbulk.message.engine_view)."""
        return engine, engine


__all__ = [
    "DEFAULT_FAULT_HANDLER",
    "Engine",
    "GLOBAL_FAULT_SEQUENCE",
    "default_fault_status",
    "fault_fields",
    "fault_response",
]
