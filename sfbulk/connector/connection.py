"""The connector's Python API: load the bundle, open a connection (init), invoke operations.

The code here is generic: it runs any operation definition of the bundle (see
docs/connector.md). ``Connection.invoke`` binds and checks parameters, renders the request, adds
the session header, sends it over the transport and, when Salesforce says the session is invalid
(400 InvalidSessionId or 401), refreshes the token and replays the request exactly once.

    connector = Connector.load()
    conn = connector.connection(apiUrl=..., accessToken=..., refreshToken=..., clientId=...,
                                clientSecret=..., registry=FileRegistry("registry"))
    resp = conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV")
    resp.status, resp.headers, resp.content, resp.properties["jobId"]
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sfbulk import xmlsafe
from sfbulk.connector import outputs
from sfbulk.connector.auth import INIT_PARAMETERS, InitParams, Session, TokenManager, is_auth_failure
from sfbulk.connector.bundle.definitions import ConnectorDef, OperationDef
from sfbulk.connector.bundle.loader import load_bundle
from sfbulk.connector.files import FileRoot
from sfbulk.errors import ConfigError, ConnectionClosedError, ParameterError, PayloadError
from sfbulk.registry import FileRegistry, Registry, open_registry
from sfbulk.transport import HostPolicy, HttpRequest, HttpResponse, RequestsTransport, Transport, check_host

log = logging.getLogger("sfbulk.connector.connection")

SESSION_HEADER = "X-SFDC-Session"
#: response bodies larger than this are not parsed for ``extract``
EXTRACT_LIMIT = 1024 * 1024


#: the bundles shipped with sfbulk: the 1.0 one at the repo root, the others under connectors/<name>/
BUNDLED = ("salesforcebulk", "salesforcebulkv2")


def bundle_root(name: str = "salesforcebulk") -> Path:
    """Where a bundled connector lives: the repo root (or connectors/<name>) in a checkout, else package data."""
    checkout = Path(__file__).resolve().parents[2]
    if name != "salesforcebulk":
        if name not in BUNDLED:
            raise ConfigError(f"no bundled connector named {name!r}; bundled: {', '.join(BUNDLED)}")
        if (checkout / "connectors" / name / "connector.yaml").is_file():
            return checkout / "connectors" / name
    elif (checkout / "connector.yaml").is_file() and (checkout / "operations").is_dir():
        return checkout
    import importlib.resources  # only for an installed package: start-up time in a checkout

    package = "sfbulk.bundle" if name == "salesforcebulk" else f"sfbulk.bundle.connectors.{name}"
    try:
        files = importlib.resources.files(package)
    except ModuleNotFoundError:
        raise ConfigError(
            "the connector bundle is not installed (package sfbulk.bundle missing); "
            "reinstall sfbulk or pass Connector.load(path)"
        ) from None
    # sfbulk.bundle has no __init__.py: files() may be a MultiplexedPath, whose children are real paths.
    manifest = files.joinpath("connector.yaml")
    if not manifest.is_file():
        raise ConfigError(
            f"the connector bundle {name} is incomplete: its connector.yaml was not found; reinstall sfbulk"
        )
    return Path(str(manifest)).parent


def bundled_connectors() -> dict[str, Connector]:
    """Every bundled connector by name and by alias (``salesforce_bulkapi_v2``), for the engine and CLI."""
    found: dict[str, Connector] = {}
    for name in BUNDLED:
        connector = Connector.load(name)
        for key in (connector.name, *connector.definition.aliases):
            found[key] = connector
    return found


class OperationResponse:
    """What an operation returns: the HTTP response plus the values named in ``response.extract``."""

    def __init__(self, operation: str, response: HttpResponse, properties: dict[str, str]) -> None:
        self.operation = operation
        self.http = response
        self.properties = properties

    status = property(lambda self: self.http.status)
    reason = property(lambda self: self.http.reason)
    headers = property(lambda self: self.http.headers)
    content = property(lambda self: self.http.content)
    text = property(lambda self: self.http.text)
    content_type = property(lambda self: self.http.content_type)

    def iter_content(self, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        return self.http.iter_content(chunk_size)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> OperationResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OperationResponse {self.operation} {self.status} {self.reason}>"


class Connector:
    """A loaded bundle: its operations and a cache of connections."""

    #: Cached connections kept (least recently used dropped first): a server's callers choose the
    #: init parameters, so without a bound every made-up refresh token or client secret kept a
    #: connection, its token manager and its secrets for the life of the process.
    cache_limit = 256

    def __init__(self, definition: ConnectorDef) -> None:
        self.definition = definition
        self._cache: OrderedDict[tuple[Any, ...], Connection] = OrderedDict()
        self._cache_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path | None = None) -> Connector:
        """Load a bundle directory, or a bundled connector by name (default: salesforcebulk).

        A bare name in ``BUNDLED`` (``"salesforcebulkv2"``) is the bundled connector, not a folder.
        """
        if path is None:
            return cls(load_bundle(bundle_root()))
        if isinstance(path, str) and path in BUNDLED:
            return cls(load_bundle(bundle_root(path)))
        return cls(load_bundle(Path(path), str(path)))

    name = property(lambda self: self.definition.name)
    version = property(lambda self: self.definition.version)
    description = property(lambda self: self.definition.description)

    @property
    def operations(self) -> Mapping[str, OperationDef]:
        return self.definition.operations

    @functools.cached_property
    def init(self) -> OperationDef | None:
        return next((op for op in self.operations.values() if op.kind == "init"), None)

    @functools.cached_property
    def _init_names(self) -> tuple[dict[str, str], frozenset[str]]:
        """The init aliases (name -> the name it stands for) and the declared names nothing uses."""
        init = self.init
        if init is None:
            return {}, frozenset()
        aliases = {p.name: p.alias_of for p in init.parameters if p.alias_of}
        unused = frozenset(
            p.name for p in init.parameters if not p.alias_of and p.name not in INIT_PARAMETERS
        )
        return aliases, unused

    def operation(self, name: str) -> OperationDef:
        try:
            return self.operations[name]
        except KeyError:
            raise ParameterError(
                f"connector {self.name} has no operation {name!r}; operations: {', '.join(self.operations)}"
            ) from None

    def connection(
        self,
        *,
        registry: Registry | str | os.PathLike[str] | None = None,
        transport: Transport | None = None,
        cache: bool = False,
        allow_hosts: HostPolicy | Iterable[str] | None = None,
        file_root: str | os.PathLike[str] | None | FileRoot = ".",
        **init_params: Any,
    ) -> Connection:
        """Run init: validate the parameters and set up the token life cycle.

        ``cache=True`` returns the connection already opened with the same parameters, registry
        and transport (keyed by the non-secret parameters and a hash of the secrets).
        ``allow_hosts`` (a HostPolicy or host patterns) restricts which hosts apiUrl,
        tokenEndpointHostname and a returned instance_url may name; without it the transport's
        ``host_policy`` applies, and without that nothing is checked: the programmer wrote the URLs.
        ``file_root`` is the directory file paths of operations are confined to (default: the
        current directory; ``None`` refuses every file, as ``sfbulk serve`` does by default).
        """
        params = InitParams.from_params(self._init_aliases(init_params))
        files = file_root if isinstance(file_root, FileRoot) else FileRoot.of(file_root)
        # a Registry as is; a folder or a postgresql:// URL (None: ./registry) through the one factory
        registry = open_registry(registry)
        policy = (
            allow_hosts
            if allow_hosts is None or isinstance(allow_hosts, HostPolicy)
            else HostPolicy(allow_hosts)
        )
        if not cache:
            return Connection(self, params, registry, transport, host_policy=policy, files=files)
        registry_id: Any = (
            ("file", str(registry.root)) if isinstance(registry, FileRegistry) else id(registry)
        )
        key = (
            params.cache_key(),
            registry_id,
            id(transport) if transport is not None else None,
            id(policy),
            str(files.base),
        )
        with self._cache_lock:
            conn = self._cache.get(key)
            if conn is None or conn.closed:
                conn = Connection(self, params, registry, transport, host_policy=policy, files=files)
                self._cache[key] = conn
                # Dropped, not closed: a request may still be using it (it is freed after that one).
                while len(self._cache) > self.cache_limit:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            return conn

    def _init_aliases(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Init parameters under the names the token life cycle knows (``aliasOf`` in init.yaml).

        ``instanceUrl`` -> ``apiUrl``; a token URL alias may name the full
        ``.../services/oauth2/token`` URL (WSO2 v2's ``tokenUrl``): the suffix is dropped, since the
        token life cycle appends it; given both, the alias wins. An init parameter the bundle declares but the life cycle does
        not use (WSO2 v2's ``name``) is accepted and ignored; undeclared names stay errors.
        """
        aliases, unused = self._init_names
        if not aliases and not unused:
            return dict(params)
        out = {name: value for name, value in params.items() if name not in aliases and name not in unused}
        for name, target in aliases.items():
            value = params.get(name)
            if value in (None, ""):
                continue
            text = str(value).strip()
            if target == "tokenEndpointHostname" and text.rstrip("/").endswith("/services/oauth2/token"):
                text = text.rstrip("/")[: -len("/services/oauth2/token")]
            out[target] = text  # the WSO2 name wins, as a flow's value wins over the engine's defaults
        return out

    def close_cached(self) -> None:
        """Close every cached connection (and the sessions they own)."""
        with self._cache_lock:
            connections, self._cache = list(self._cache.values()), OrderedDict()
        for conn in connections:
            conn.close()

    def __repr__(self) -> str:
        return f"<Connector {self.name} {self.version}: {', '.join(self.operations)}>"


class _Body:
    """The caller's body and, when possible, a way to produce it again for a replay."""

    def __init__(self, body: Any) -> None:
        self.factory: Callable[[], Any] | None = None
        if body is None or isinstance(body, (bytes, str)):
            self.first: Any = body
            self.factory = lambda: body
        elif isinstance(body, (bytearray, memoryview)):
            data = bytes(body)
            self.first = data
            self.factory = lambda: data
        elif callable(body):
            self.first = body()
            self.factory = body
        elif hasattr(body, "read"):
            self.first = body
            try:
                position = body.tell()
                if body.seekable():

                    def rewind() -> Any:
                        body.seek(position)
                        return body

                    self.factory = rewind
            except (AttributeError, OSError, io.UnsupportedOperation):
                self.factory = None
        elif isinstance(body, Iterable):
            self.first = body
        else:
            raise ParameterError(
                f"body must be bytes, str, a binary file, an iterator of bytes or a callable, "
                f"not {type(body).__name__}"
            )
        self.used = False

    def take(self) -> Any:
        if not self.used:
            self.used = True
            return self.first
        assert self.factory is not None
        return self.factory()

    @property
    def replayable(self) -> bool:
        return self.factory is not None


class Connection:
    """An initialised connection: parameters, token manager and one pooled transport. Thread-safe."""

    def __init__(
        self,
        connector: Connector,
        params: InitParams,
        registry: Registry,
        transport: Transport | None = None,
        *,
        host_policy: HostPolicy | None = None,
        files: FileRoot | None = None,
    ) -> None:
        self.connector = connector
        #: where file paths of operations are confined to (docs/security.md)
        self.files = files if files is not None else FileRoot(".")
        self.params = params
        self.registry = registry
        #: the allow-list for URLs taken from the init parameters (None: the transport's, or none)
        self.host_policy = host_policy if host_policy is not None else getattr(transport, "host_policy", None)
        # Refused hosts fail at init, before any connection is made.
        check_host(self.host_policy, params.api_url, "apiUrl")
        if params.can_refresh:
            check_host(self.host_policy, params.token_endpoint, "tokenEndpointHostname")
        self._owns_transport = transport is None
        self.transport = transport or RequestsTransport(verify=params.ca_file or True)
        self.auth = TokenManager(params, registry, self.transport, host_policy=self.host_policy)
        self.closed = False
        self._last_instance = params.api_url
        self._checked_instance = params.api_url

    @property
    def api_url(self) -> str:
        """The Bulk base URL in use: ``<instance>/services/async/<version>`` (the bundle's basePath)."""
        return f"{self._last_instance}{self.connector.definition.base(self.params.api_version)}"

    def _url(self, session: Session, path: str, query: tuple[tuple[str, str], ...]) -> str:
        if session.instance_url != self._checked_instance:
            # e.g. an instance URL stored in the registry by a token grant
            check_host(self.host_policy, session.instance_url, "the instance URL of the session")
            self._checked_instance = session.instance_url
        self._last_instance = session.instance_url
        url = f"{session.instance_url}{self.connector.definition.base(self.params.api_version)}{path}"
        return url + ("?" + urlencode(query) if query else "")

    def invoke(
        self,
        name: str,
        *,
        body: Any = None,
        stream: bool | None = None,
        timeout: float | None = None,
        body_content_type: str | None = None,
        **params: Any,
    ) -> OperationResponse:
        """Run operation ``name`` with ``params``; the response comes back whatever its status.

        ``body_content_type`` is the Content-Type the caller's ``body`` came with: an operation that
        relays it (``body.callerContentType`` in its definition) sends it unless ``params`` set one.
        """
        if self.closed:
            raise ConnectionClosedError(
                "the connection is closed; open a new one with connector.connection(...)"
            )
        op = self.connector.operation(name)
        if op.kind == "init":
            raise ParameterError("init is not invoked on a connection: connector.connection(...) runs it")
        relay = op.request.body.caller_content_type if op.request is not None else None
        if relay is not None and body_content_type and params.get(relay) in (None, ""):
            params = {**params, relay: body_content_type}
        bound = op.bind(params)
        rendered = op.render(bound)
        output_file = outputs.check_output(op, bound, self.files)
        if op.request is not None and op.request.body.kind == "input":
            caller_body = _Body(outputs.input_body(op, bound, body, self.files))
        elif rendered.body_from_caller:
            if body is None and rendered.body_required:
                raise ParameterError(f"{name}: a request body is required (body=...)")
            caller_body = _Body(body)
        elif body is not None:
            raise ParameterError(f"{name} builds its own request body; body= is not accepted")
        else:
            caller_body = _Body(rendered.body)
        want_stream = op.response.stream if stream is None else stream
        if output_file is not None:
            if stream:
                raise ParameterError(
                    f"{name}: stream=True reads the body yourself; it cannot also go to a file"
                )
            want_stream = True  # written to the file chunk by chunk
        use_session = op.request is not None and op.request.auth == "session"
        session = self.auth.current() if use_session else None
        response = self._send(rendered, session, caller_body, want_stream, timeout)
        if session is not None and not (
            response.status in (400, 401) and is_auth_failure(response.status, response.content)
        ):
            self.auth.confirm(session)  # the supplied token worked: now it may be stored
        elif session is not None:
            fresh = self.auth.refresh_after_failure(session)
            if fresh is None:
                log.debug("%s: session rejected and no refresh credentials; returning the answer", name)
            elif not caller_body.replayable:
                log.debug(
                    "%s: session rejected; token refreshed but the body is a one-shot iterator, "
                    "so the request is not replayed",
                    name,
                )
            else:
                log.debug("%s: session rejected; replaying once with the refreshed token", name)
                response.close()
                response = self._send(rendered, fresh, caller_body, want_stream, timeout)
        if op.response.output is not None and not (want_stream and output_file is None):
            response = outputs.apply_output(op, bound, response, self.files, output_file)
            properties = self._extract(op, response)
        else:
            properties = {} if want_stream else self._extract(op, response)
        properties.update(outputs.header_properties(op, response))
        return OperationResponse(name, response, properties)

    def _send(
        self, rendered: Any, session: Session | None, body: _Body, stream: bool, timeout: float | None
    ) -> HttpResponse:
        headers = dict(rendered.headers)
        if session is not None:
            if session.token and self.connector.definition.session == "bearer":
                headers["Authorization"] = f"Bearer {session.token.reveal()}"
            elif session.token:
                headers[SESSION_HEADER] = session.token.reveal()
            url = self._url(session, rendered.path, rendered.query)
        else:
            url = self._url(
                Session(self.params.access_token, self._last_instance), rendered.path, rendered.query
            )
        request = HttpRequest(
            rendered.method,
            url,
            headers,
            body.take(),
            timeout=self.params.timeout if timeout is None else timeout,
            stream=stream,
            verify=self.params.ca_file,
        )
        return self.transport.send(request)

    @staticmethod
    def _extract(op: OperationDef, response: HttpResponse) -> dict[str, str]:
        if not op.response.extract:
            return {}
        content = response.content
        if not content or len(content) > EXTRACT_LIMIT:
            return {}
        found: dict[str, str] = {}
        stripped = content.lstrip()
        if stripped.startswith(b"{"):
            try:
                data = json.loads(content.decode(response.charset or "utf-8"))
            except (ValueError, UnicodeDecodeError):
                return {}
            if isinstance(data, dict):
                for prop, key in op.response.extract:
                    value = data.get(key)
                    if value is not None:
                        found[prop] = value if isinstance(value, str) else json.dumps(value)
            return found
        if stripped.startswith(b"<"):
            from lxml import etree

            try:
                root = xmlsafe.parse(content, what="the response")
            except PayloadError:
                return {}
            for prop, local in op.response.extract:
                for child in root:
                    if isinstance(child.tag, str) and etree.QName(child).localname == local:
                        found[prop] = child.text or ""
                        break
        return found

    def close(self) -> None:
        self.closed = True
        if self._owns_transport:
            self.transport.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Connection {self.connector.name} {self.api_url}>"


__all__ = [
    "BUNDLED",
    "Connection",
    "Connector",
    "INIT_PARAMETERS",
    "OperationResponse",
    "bundle_root",
    "bundled_connectors",
]
