"""Messaging mediators: call, send, respond, drop, loopback and the http endpoint (synapse.md §3.5-3.7, 3.12-3.13).

HTTP goes through the engine's one pooled transport. Backend 4xx/5xx are responses (HTTP_SC set,
mediation continues); transport failures raise the transport's faults (ERROR_CODE 1015xx).
A uri-template whose scheme/host/port is not written out literally takes its host from the
message, so the resolved URL must pass the transport's outbound allow-list (``host_policy``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sfbulk.errors import ConfigError
from sfbulk.mediators.base import engine_of, mark_responded
from sfbulk.mediators.uritemplate import resolve_endpoint_url

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.context import MessageContext

log = logging.getLogger("sfbulk.mediation")

HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")
#: Never forwarded (PassThroughTransportUtils.removeUnwantedHeaders); Host is rewritten for the target.
HOP_BY_HOP = frozenset(
    h.lower() for h in ("Transfer-Encoding", "Connection", "Keep-Alive", "Content-Length", "Date", "Server", "User-Agent", "Host")
)
_NO_BODY_METHODS = ("GET", "HEAD")
_URI_VAR_PREFIXES = ("uri.var.", "query.param.")


class HttpEndpoint:
    """``<endpoint><http method uri-template/></endpoint>``.

    ``method`` None (or invalid at config level) = the inbound request's method. ``properties`` are
    the endpoint's ``<property>`` children (only ``uri.var.*``/``query.param.*`` ones feed the
    template). ``timeout`` in seconds (None = the transport's default of 60 s).
    """

    def __init__(
        self,
        uri_template: str,
        *,
        method: str | None = None,
        properties: Mapping[str, str] | None = None,
        timeout: float | None = None,
        name: str | None = None,
    ) -> None:
        if not uri_template:
            raise ConfigError("http endpoint: uri-template is required")
        method_upper = method.upper() if method else None
        if method_upper is not None and method_upper not in HTTP_METHODS:
            raise ConfigError(f"http endpoint: unknown method {method!r} (use one of {', '.join(HTTP_METHODS)})")
        self.uri_template = uri_template.removeprefix("legacy-encoding:")
        #: the host comes from variables (a message can choose it): checked against the allow-list
        self.dynamic_host = not _host_is_literal(self.uri_template)
        self.method = method_upper
        self.properties = dict(properties or {})
        self.timeout = timeout
        self.name = name

    def url(self, ctx: MessageContext) -> str:
        variables: dict[str, Any] = {
            k: v for k, v in self.properties.items() if k.startswith(_URI_VAR_PREFIXES)
        }
        for key, value in ctx.properties.items():
            if key.startswith(_URI_VAR_PREFIXES) and value is not None:
                variables[key] = value if isinstance(value, str) else _java_string(value)
        return resolve_endpoint_url(self.uri_template, variables)

    def method_for(self, ctx: MessageContext) -> str:
        if self.method:
            return self.method
        inbound = ctx.axis2.get("HTTP_METHOD")
        return str(inbound).upper() if inbound else "POST"

    def invoke(self, ctx: MessageContext) -> None:
        """Send the current message and make the backend's answer the current message."""
        from sfbulk.transport import HttpRequest

        engine = engine_of(ctx, "call/send")
        method = self.method_for(ctx)
        if self.method:
            ctx.properties["HTTP_METHOD"] = method
        url = self.url(ctx)
        headers: dict[str, str] = {}
        for name, value in ctx.headers.items():
            if value is None or name.lower() in HOP_BY_HOP:
                continue
            headers[name] = value if isinstance(value, str) else str(value)
        body: bytes | None = None
        if method not in _NO_BODY_METHODS:
            body, content_type = ctx.payload_bytes()
            for name in [n for n in headers if n.lower() == "content-type"]:
                del headers[name]
            if content_type:
                headers["Content-Type"] = content_type
        kwargs: dict[str, Any] = {}
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        if self.dynamic_host:
            from sfbulk.transport import check_host

            check_host(getattr(engine.transport, "host_policy", None), url,
                       f"the uri-template of endpoint {self.name or self.uri_template!r} (its host comes from the message)")
        log.debug("call %s %s", method, url)
        request = HttpRequest(method, url, headers, body=body, **kwargs)
        response = engine.transport.send(request)
        try:
            content = response.content
        finally:
            close = getattr(response, "close", None)
            if callable(close):
                close()
        response_headers = list(_header_items(response.headers))
        response_type = next((v for k, v in response_headers if k.lower() == "content-type"), None)
        ctx.set_response(response.status, response.reason, response_headers, content, response_type)


def _host_is_literal(template: str) -> bool:
    """True when ``scheme://host[:port]`` is written out before any ``{expression}``: the operator chose it."""
    brace = template.find("{")
    if brace < 0:
        return True
    scheme_end = template.find("://")
    if scheme_end < 0 or scheme_end > brace:
        return False
    ends = [i for i in (template.find(c, scheme_end + 3) for c in "/?#") if i >= 0]
    return bool(ends) and min(ends) < brace


def _header_items(headers: Any) -> list[tuple[str, str]]:
    if hasattr(headers, "items"):
        return list(headers.items())
    return [(k, v) for k, v in headers]


def _java_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class CallMediator:
    """``<call>``: synchronous exchange; the next mediator sees the response (blocking or not)."""

    def __init__(self, endpoint: HttpEndpoint, *, blocking: bool = False) -> None:
        self.endpoint = endpoint
        self.blocking = blocking

    def mediate(self, ctx: MessageContext) -> bool:
        self.endpoint.invoke(ctx)
        return True


class SendMediator:
    """``<send>``: with an endpoint, exchange then run the proxy's outSequence; without, answer the caller."""

    def __init__(self, endpoint: HttpEndpoint | None = None) -> None:
        self.endpoint = endpoint

    def mediate(self, ctx: MessageContext) -> bool:
        if self.endpoint is None:
            return RespondMediator().mediate(ctx)
        self.endpoint.invoke(ctx)
        engine_of(ctx, "send").run_out_sequence(ctx)
        return False


class RespondMediator:
    """``<respond/>``: the current message goes back to the caller (6.5); stops the flow."""

    def mediate(self, ctx: MessageContext) -> bool:
        ctx.to = None
        mark_responded(ctx)
        return False


class DropMediator:
    """``<drop/>``: stop; nothing written in a request flow → 202 Accepted, empty body (6.6)."""

    def mediate(self, ctx: MessageContext) -> bool:
        ctx.to = None
        ctx.dropped = True
        return False


class LoopbackMediator:
    """``<loopback/>``: turn the message into a response and run the proxy's outSequence with it."""

    def mediate(self, ctx: MessageContext) -> bool:
        if getattr(ctx, "is_response", False):
            return False
        ctx.to = None
        engine_of(ctx, "loopback").run_out_sequence(ctx)
        return False
