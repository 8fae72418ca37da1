"""The token life cycle of ``salesforcebulk.init`` (WSO2 2017 semantics, synapse.md §7.3, plus replay).

* With all four of accessToken, refreshToken, clientId, clientSecret, the token and the time it was
  obtained live in the registry at ``<registryPath>/accessToken`` (mode 0600) and ``/time`` (epoch
  ms). A stored token wins over the supplied one, which only seeds an empty registry.
* The refresh-token grant runs when the stored token is empty or older than ``intervalTime``, and
  (beyond the original) when Salesforce answers 400 ``InvalidSessionId`` or 401: the connection
  then replays the request once.
* Every check-refresh-write runs under the registry lock and re-reads the registry after taking
  it, so N processes that find the same stale token make exactly one refresh call.

Tokens and secrets are ``Secret``s; token-endpoint errors become ``AuthError`` carrying
Salesforce's ``error``/``error_description`` and nothing secret.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from sfbulk.errors import AuthError, ParameterError
from sfbulk.registry import Registry, split_key
from sfbulk.secrets import Secret, redact
from sfbulk.transport import HttpRequest, Transport

log = logging.getLogger("sfbulk.auth")

DEFAULT_API_VERSION = "62.0"
DEFAULT_INTERVAL_MS = 3_000_000
DEFAULT_REGISTRY_PATH = "connectors/SalesforceBulk"
DEFAULT_TOKEN_ENDPOINT = "https://login.salesforce.com"
DEFAULT_TIMEOUT = 60.0
TOKEN_PATH = "/services/oauth2/token"

#: init parameters, in the order of operations/init.yaml
INIT_PARAMETERS = (
    "apiUrl", "apiVersion", "accessToken", "refreshToken", "clientId", "clientSecret", "intervalTime",
    "registryPath", "tokenEndpointHostname", "timeout", "caFile",
)
SECRET_PARAMETERS = ("accessToken", "refreshToken", "clientSecret")

_VERSION = re.compile(r"^\d{1,3}(\.\d{1,2})?$")
_INVALID_SESSION = re.compile(rb"exceptionCode\W{0,8}InvalidSessionId")


def normalise_api_version(value: str) -> str:
    """``34`` → ``34.0``; ``34.0`` stays; anything else is a ParameterError."""
    text = value.strip()
    if text.lower().startswith("v"):
        text = text[1:]
    if not _VERSION.match(text):
        raise ParameterError(f"init: apiVersion {value!r} is not a version such as 62.0")
    return text if "." in text else text + ".0"


def _base_url(name: str, value: str) -> str:
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ParameterError(f"init: {name} must be an http(s) URL such as https://ap2.salesforce.com, got {value!r}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ParameterError(f"init: {name} must be a plain base URL (no credentials, query or fragment)")
    return url


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


@dataclass(frozen=True)
class InitParams:
    """Validated, normalised init parameters. Secrets stay wrapped."""

    api_url: str
    api_version: str
    access_token: Secret
    refresh_token: Secret
    client_id: str
    client_secret: Secret
    interval_ms: int
    registry_path: str
    token_endpoint: str
    timeout: float
    ca_file: str | None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> InitParams:
        unknown = sorted(set(params) - set(INIT_PARAMETERS))
        if unknown:
            raise ParameterError(f"init: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                                 f"parameters are: {', '.join(INIT_PARAMETERS)}")
        values = {name: _text(params.get(name)) for name in INIT_PARAMETERS}
        if not values["apiUrl"]:
            raise ParameterError("init: parameter 'apiUrl' is required (e.g. https://ap2.salesforce.com)")
        interval_text = values["intervalTime"] or str(DEFAULT_INTERVAL_MS)
        try:
            interval = int(interval_text)
            if interval < 0:
                raise ValueError
        except ValueError:
            raise ParameterError(f"init: intervalTime must be a whole number of milliseconds, got {interval_text!r}") from None
        timeout_text = values["timeout"] or str(DEFAULT_TIMEOUT)
        try:
            timeout = float(timeout_text)
            if not 0 < timeout <= 86400:
                raise ValueError
        except ValueError:
            raise ParameterError(f"init: timeout must be a number of seconds (0 < timeout <= 86400), got {timeout_text!r}") from None
        registry_path = values["registryPath"].rstrip("/") or DEFAULT_REGISTRY_PATH
        return cls(
            api_url=_base_url("apiUrl", values["apiUrl"]),
            api_version=normalise_api_version(values["apiVersion"] or DEFAULT_API_VERSION),
            access_token=_secret(params.get("accessToken")),
            refresh_token=_secret(params.get("refreshToken")),
            client_id=values["clientId"],
            client_secret=_secret(params.get("clientSecret")),
            interval_ms=interval,
            registry_path=registry_path,
            token_endpoint=_base_url("tokenEndpointHostname", values["tokenEndpointHostname"] or DEFAULT_TOKEN_ENDPOINT),
            timeout=timeout,
            ca_file=values["caFile"] or None,
        )

    @property
    def can_refresh(self) -> bool:
        """Registry caching and refresh need a refresh token and a client id.

        The 2017 connector demanded all four of accessToken, refreshToken, clientId and
        clientSecret; we also accept an empty accessToken (the first call then refreshes) and an
        empty clientSecret (connected apps that do not require one), as Salesforce allows.
        """
        return bool(self.refresh_token and self.client_id)

    def cache_key(self) -> tuple[Any, ...]:
        """Non-secret parameters plus a SHA-256 of the secrets: equal keys → same connection."""
        digest = hashlib.sha256()
        for secret in (self.access_token, self.refresh_token, self.client_secret):
            digest.update(secret.reveal().encode("utf-8") + b"\x00")
        return (self.api_url, self.api_version, self.client_id, self.interval_ms, self.registry_path,
                self.token_endpoint, self.timeout, self.ca_file, digest.hexdigest())


def _secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    return Secret(_text(value))


def is_auth_failure(status: int, body: bytes) -> bool:
    """401, or Bulk API 1.0's way of saying the session is invalid: 400 + InvalidSessionId."""
    return status == 401 or (status == 400 and bool(_INVALID_SESSION.search(body[:4096])))


@dataclass(frozen=True)
class Session:
    """What a request needs: the token to send and the instance URL it belongs to."""

    token: Secret
    instance_url: str


class TokenManager:
    """Owns the token of one connection: registry reads, intervalTime, refresh grant, adoption."""

    def __init__(self, params: InitParams, registry: Registry | None, transport: Transport,
                 *, clock_ms: Callable[[], int] | None = None) -> None:
        self.params = params
        self.registry = registry
        self.transport = transport
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        #: refresh-token grants this manager made (the multi-process test sums them)
        self.refresh_count = 0
        self._lock = threading.Lock()
        self._memory = Session(params.access_token, params.api_url)
        # Fast path of current(): the stored values with the registry versions they were read at.
        self._seen: tuple[object, tuple[str | None, int | None, str | None]] | None = None
        base = params.registry_path
        self.token_key = f"{base}/accessToken"
        self.time_key = f"{base}/time"
        self.instance_key = f"{base}/instanceUrl"
        #: the init apiUrl the stored token and instance URL were obtained for
        self.api_url_key = f"{base}/apiUrl"
        if params.can_refresh and registry is None:
            raise ParameterError("init: refresh credentials were given but no registry to keep the token in")
        if params.can_refresh:
            split_key(self.token_key)  # a registryPath outside the registry fails at init, not mid-flow

    @property
    def uses_registry(self) -> bool:
        return self.params.can_refresh and self.registry is not None

    # -- reading --------------------------------------------------------------------------------

    def _stored(self) -> tuple[str | None, int | None, str | None]:
        """(token, time, instance URL) from the registry.

        A token cached for another apiUrl (a different org, or an emulator restarted on another
        port) comes back without its time, so it counts as stale and is refreshed once, instead of
        sending requests to an instance this connection was never pointed at.
        """
        assert self.registry is not None
        token = self.registry.get(self.token_key)
        raw_time = self.registry.get(self.time_key)
        try:
            stamp = int(raw_time.strip()) if raw_time is not None and raw_time.strip() else None
        except ValueError:
            stamp = None
        instance = self.registry.get(self.instance_key)
        recorded_api = self.registry.get(self.api_url_key)
        if recorded_api is not None and recorded_api.strip() and recorded_api.strip() != self.params.api_url:
            return token, None, None
        return token, stamp, (instance.strip() or None) if instance else None

    def _stored_cached(self) -> tuple[str | None, int | None, str | None]:
        """``_stored()`` without re-reading files whose registry version has not changed.

        Only the unlocked fast path uses it; every decision taken under the lock re-reads.
        """
        assert self.registry is not None
        keys = (self.token_key, self.time_key, self.instance_key, self.api_url_key)
        versions = tuple(self.registry.version(k) for k in keys)
        seen = self._seen
        if seen is not None and None not in versions and seen[0] == versions:
            return seen[1]
        values = self._stored()  # read after taking the versions: a concurrent write re-reads next time
        self._seen = (versions, values)
        return values

    def _stale(self, token: str | None, stamp: int | None) -> bool:
        if not token:
            return True
        if stamp is None:
            return True
        return self.clock_ms() - stamp > self.params.interval_ms

    def _session(self, token: str, instance: str | None) -> Session:
        return Session(Secret(token), instance or self.params.api_url)

    def current(self) -> Session:
        """The session for the next request, refreshing first when the stored token is stale."""
        if not self.uses_registry:
            return self._memory
        assert self.registry is not None
        token, stamp, instance = self._stored_cached()
        if token is None:
            with self.registry.lock(self.token_key):
                token, stamp, instance = self._stored()
                if token is None and self.params.access_token:
                    # Nothing stored yet: the supplied token seeds the registry (2017 step 2d).
                    token = self.params.access_token.reveal()
                    stamp = self.clock_ms()
                    self.registry.put(self.token_key, token, secret=True)
                    self.registry.put(self.time_key, str(stamp))
                    self.registry.put(self.api_url_key, self.params.api_url)
                    log.debug("token seeded in the registry at %s", self.token_key)
        if token and not self._stale(token, stamp):
            return self._session(token, instance)
        with self._lock, self.registry.lock(self.token_key):
            token, stamp, instance = self._stored()  # someone may have refreshed while we waited
            if not self._stale(token, stamp):
                log.debug("token refreshed by another process; adopted")
                return self._session(token or "", instance)
            log.debug("token older than intervalTime (%d ms) or empty; refreshing", self.params.interval_ms)
            return self._refresh_locked()

    def refresh_after_failure(self, failed: Session) -> Session | None:
        """After an auth failure with ``failed``: a newer stored token, or a fresh one. None → no refresh possible."""
        if not self.uses_registry:
            return None
        assert self.registry is not None
        with self._lock, self.registry.lock(self.token_key):
            token, _stamp, instance = self._stored()
            if token and token != failed.token.reveal():
                log.debug("session rejected; a newer token is already stored, adopted")
                return self._session(token, instance)
            log.debug("session rejected by Salesforce; refreshing")
            return self._refresh_locked()

    # -- the grant ------------------------------------------------------------------------------

    def _refresh_locked(self) -> Session:
        """Run the refresh-token grant and store its result. Caller holds the registry lock."""
        assert self.registry is not None
        access_token, instance_url = self.grant()
        stamp = self.clock_ms()
        self.registry.put(self.token_key, access_token.reveal(), secret=True)
        self.registry.put(self.time_key, str(stamp))
        self.registry.put(self.api_url_key, self.params.api_url)
        if instance_url:
            self.registry.put(self.instance_key, instance_url)
        else:
            self.registry.delete(self.instance_key)
        return Session(access_token, instance_url or self.params.api_url)

    def grant(self) -> tuple[Secret, str | None]:
        """POST the refresh-token grant; returns (access token, instance_url)."""
        p = self.params
        url = p.token_endpoint + TOKEN_PATH
        fields = {"grant_type": "refresh_token", "refresh_token": p.refresh_token.reveal(), "client_id": p.client_id}
        if p.client_secret:
            fields["client_secret"] = p.client_secret.reveal()
        form = urlencode(fields).encode("ascii")
        request = HttpRequest("POST", url, {"Content-Type": "application/x-www-form-urlencoded",
                                            "Accept": "application/json"}, form, timeout=p.timeout,
                              verify=p.ca_file)
        self.refresh_count += 1
        response = self.transport.send(request)
        payload: Any = None
        try:
            payload = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            payload = None
        if response.status != 200 or not isinstance(payload, dict) or not payload.get("access_token"):
            error = description = None
            if isinstance(payload, dict):
                error = payload.get("error")
                description = payload.get("error_description")
            parts = [f"HTTP {response.status}"]
            if error:
                parts.append(redact(str(error)))
            if description:
                parts.append(redact(str(description)))
            if response.status == 200:
                parts.append("no access_token in the answer")
            raise AuthError(f"token refresh at {urlsplit(url).netloc} failed: {': '.join(parts)}; "
                            "check refreshToken, clientId, clientSecret and tokenEndpointHostname")
        token = Secret(str(payload["access_token"]))
        instance = payload.get("instance_url")
        instance_url = None
        if isinstance(instance, str) and instance:
            try:
                instance_url = _base_url("instance_url", instance)
            except ParameterError:
                log.warning("token endpoint returned an unusable instance_url; keeping apiUrl")
        log.debug("token refreshed (grant %d of this connection)", self.refresh_count)
        return token, instance_url


__all__ = [
    "INIT_PARAMETERS",
    "InitParams",
    "Session",
    "TokenManager",
    "is_auth_failure",
    "normalise_api_version",
]
