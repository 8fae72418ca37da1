"""Messaging mediators: call, send, respond, drop, loopback; http, address and named endpoints (synapse.md §3.5-3.7, 3.12-3.13).

HTTP goes through the engine's one pooled transport. Backend 4xx/5xx are responses (HTTP_SC set,
mediation continues); transport failures raise the transport's faults (ERROR_CODE 1015xx).
A uri-template whose scheme/host/port is not written out literally takes its host from the
message, so the resolved URL must pass the transport's outbound allow-list (``host_policy``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sfbulk.errors import ConfigError, MediationFault, TimeoutError_
from sfbulk.httpheaders import NOT_RELAYED
from sfbulk.javatext import java_string
from sfbulk.mediators.base import engine_of, mark_responded, relay_response
from sfbulk.mediators.uritemplate import resolve_endpoint_url

if TYPE_CHECKING:  # pragma: no cover
    from sfbulk.message.context import MessageContext

log = logging.getLogger("sfbulk.mediation")

HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")
_NO_BODY_METHODS = ("GET", "HEAD")
_URI_VAR_PREFIXES = ("uri.var.", "query.param.")
#: ``<timeout><responseAction>``: fault (raise 101504, the fault sequence runs), discard (drop the
#: message: nothing more runs), never (no action of Synapse's own; the transport timeout still faults).
RESPONSE_ACTIONS = ("fault", "discard", "never")


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
        response_action: str | None = None,
    ) -> None:
        if not uri_template:
            raise ConfigError("http endpoint: uri-template is required")
        method_upper = method.upper() if method else None
        if method_upper is not None and method_upper not in HTTP_METHODS:
            raise ConfigError(
                f"http endpoint: unknown method {method!r} (use one of {', '.join(HTTP_METHODS)})"
            )
        if response_action is not None and response_action not in RESPONSE_ACTIONS:
            raise ConfigError(
                f"endpoint timeout: responseAction {response_action!r} is not one of {', '.join(RESPONSE_ACTIONS)}"
            )
        self.uri_template = uri_template.removeprefix("legacy-encoding:")
        #: the host comes from variables (a message can choose it): checked against the allow-list
        self.dynamic_host = not _host_is_literal(self.uri_template)
        self.method = method_upper
        self.properties = dict(properties or {})
        self.timeout = timeout
        self.name = name
        self.response_action = response_action

    def url(self, ctx: MessageContext) -> str:
        variables: dict[str, Any] = {
            k: v for k, v in self.properties.items() if k.startswith(_URI_VAR_PREFIXES)
        }
        for key, value in ctx.properties.items():
            if key.startswith(_URI_VAR_PREFIXES) and value is not None:
                variables[key] = java_string(value)
        return resolve_endpoint_url(self.uri_template, variables)

    def method_for(self, ctx: MessageContext) -> str:
        if self.method:
            return self.method
        inbound = ctx.axis2.get("HTTP_METHOD")
        return str(inbound).upper() if inbound else "POST"

    def invoke(self, ctx: MessageContext) -> bool:
        """Send the current message and make the backend's answer the current message.

        False when a timeout with ``responseAction`` discard dropped the message (nothing more runs).
        """
        try:
            self._exchange(ctx)
        except TimeoutError_:
            if self.response_action != "discard":
                raise
            log.warning(
                "endpoint %s timed out; the message is discarded (responseAction discard)", self.name or ""
            )
            ctx.to = None
            ctx.dropped = True
            return False
        return True

    def _exchange(self, ctx: MessageContext) -> None:
        from sfbulk.transport import HttpRequest

        engine = engine_of(ctx, "call/send")
        method = self.method_for(ctx)
        if self.method:
            ctx.properties["HTTP_METHOD"] = method
        url = self.url(ctx)
        headers: dict[str, str] = {}
        for name, value in ctx.headers.items():
            if value is None or name.lower() in NOT_RELAYED:  # Host is rewritten for the target
                continue
            headers[name] = java_string(value)
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

            check_host(
                engine.transport.host_policy,
                url,
                f"the uri-template of endpoint {self.name or self.uri_template!r} (its host comes from the message)",
            )
        log.debug("call %s %s", method, url)
        request = HttpRequest(method, url, headers, body=body, **kwargs)
        relay_response(ctx, engine.transport.send(request))


class AddressEndpoint(HttpEndpoint):
    """``<endpoint><address uri [format]/></endpoint>``: a fixed URI plus the inbound ``REST_URL_POSTFIX``.

    Synapse appends the request's postfix (the path below ``/services/<proxy>`` or below an API's
    context, with the query) to address endpoints, never to http ones (synapse.md §3.7 step 2). The
    method is the inbound one. ``format`` re-serializes the message: soap11, soap12, pox, json, or
    get (send as GET); rest and none leave it as it is.
    """

    FORMATS = {
        "soap11": "text/xml",
        "soap12": "application/soap+xml",
        "pox": "application/xml",
        "json": "application/json",
    }

    def __init__(
        self,
        uri: str,
        *,
        format: str | None = None,
        properties: Mapping[str, str] | None = None,
        timeout: float | None = None,
        name: str | None = None,
        response_action: str | None = None,
    ) -> None:
        if not uri:
            raise ConfigError("address endpoint: uri is required")
        if format is not None and format not in (*self.FORMATS, "get", "rest"):
            raise ConfigError(
                f"address endpoint: format {format!r} is not one of {', '.join((*self.FORMATS, 'get', 'rest'))}"
            )
        super().__init__(
            uri, properties=properties, timeout=timeout, name=name, response_action=response_action
        )
        self.uri = uri
        self.format = format

    def url(self, ctx: MessageContext) -> str:
        postfix = str(ctx.axis2.get("REST_URL_POSTFIX") or "")
        if not postfix:
            return self.uri
        if self.uri.endswith("/") and postfix.startswith("/"):
            return self.uri + postfix[1:]
        if not self.uri.endswith("/") and not postfix.startswith(("/", "?")):
            return self.uri + "/" + postfix
        return self.uri + postfix

    def method_for(self, ctx: MessageContext) -> str:
        if self.format == "get":
            return "GET"
        return super().method_for(ctx)

    def _exchange(self, ctx: MessageContext) -> None:
        message_type = self.FORMATS.get(self.format or "")
        if message_type is not None:
            ctx.set_property("messageType", message_type, "axis2")
        super()._exchange(ctx)


class EndpointReference:
    """``<endpoint key="name"/>``: a named endpoint, resolved when the message is sent (IndirectEndpoint)."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ConfigError("an endpoint reference needs a key (the name of an endpoint)")
        self.key = key

    def invoke(self, ctx: MessageContext) -> bool:
        engine = engine_of(ctx, "an endpoint reference")
        endpoint = engine.endpoint(self.key)
        if endpoint is None:
            raise MediationFault(f"Reference to non-existent endpoint for key : {self.key}")
        return endpoint.invoke(ctx) is not False


Endpoint = HttpEndpoint | EndpointReference


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


class CallMediator:
    """``<call>``: synchronous exchange; the next mediator sees the response (blocking or not)."""

    def __init__(self, endpoint: Endpoint, *, blocking: bool = False) -> None:
        self.endpoint = endpoint
        self.blocking = blocking

    def mediate(self, ctx: MessageContext) -> bool:
        return self.endpoint.invoke(ctx) is not False


class SendMediator:
    """``<send>``: with an endpoint, exchange then run the proxy's outSequence; without, answer the caller."""

    def __init__(self, endpoint: Endpoint | None = None) -> None:
        self.endpoint = endpoint

    def mediate(self, ctx: MessageContext) -> bool:
        if self.endpoint is None:
            return RespondMediator().mediate(ctx)
        if self.endpoint.invoke(ctx) is False:
            return False
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
        if ctx.is_response:
            return False
        ctx.to = None
        engine_of(ctx, "loopback").run_out_sequence(ctx)
        return False
