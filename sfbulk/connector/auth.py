"""The token life cycle of ``salesforcebulk.init``: WSO2 2017 semantics, bound to the caller's identity.

* With credentials for a grant (refreshToken + clientId, or those of the grantType given), the
  token and the time it was obtained live in the registry at ``<registryPath>/accessToken`` (mode
  0600) and ``/time`` (epoch ms), the WSO2 layout, plus ``/identity``: an HMAC-SHA256, keyed by the
  registry's own secret (``Registry.identity_key``), of the grant's credentials (client id,
  refresh token, client secret for the default grant) and the instance (apiUrl) and token
  endpoint the token belongs to. A stored token is used
  only by a caller whose identity hashes the same; nothing secret is on disk in the clear.
* The first identity to store a token under a registryPath owns ``<registryPath>/``; any other
  identity keeps its own entry in ``<registryPath>/identities/<hash>/``. Nobody can read or
  overwrite another identity's entry (issue 11: session hijack, registry poisoning).
* The supplied accessToken is used while nothing is stored for the identity, and stored (WSO2's
  "seed") only once Salesforce accepted it; a failed grant writes nothing.
* The grant of ``grantType`` (``sfbulk.connector.grants``: the refresh-token grant by default, JWT
  bearer, client credentials or password) runs when the stored token is empty or older than
  ``intervalTime``, and (beyond the original) when Salesforce answers 400 ``InvalidSessionId`` or
  401: the connection then replays the request once. The identity of the JWT grant is its subject
  and key fingerprint, of the others their credentials (``InitParams.identity_fields``).
* A refresh answer carrying a new ``refresh_token`` (Salesforce's rotation) is stored first, in
  ``<entry>/refreshToken`` (0600), and every later refresh of the identity, by any process sharing
  the registry, sends it instead of the configured one, which Salesforce has retired. Token-endpoint 5xx/429/408 and connection failures are retried
  with capped backoff; only the OAuth errors Salesforce documents for bad credentials say so.
* Every check-refresh-write runs under a registry lock per identity and ``<registryPath>`` and
  re-reads the registry after taking it, so N processes that find the same stale token make
  exactly one grant, and other identities (bogus callers, slow token endpoints) never wait on it.

Tokens and secrets are ``Secret``s; token-endpoint errors become ``AuthError`` carrying
Salesforce's ``error``/``error_description`` and nothing secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from sfbulk.connector import grants
from sfbulk.connector.jwt_assertion import (
    JwtBearer,
    SigningKey,
    default_audience,
    load_key,
    load_key_file,
    pem_text,
)
from sfbulk.errors import AuthError, ParameterError, RegistryError
from sfbulk.javatext import java_string
from sfbulk.registry import Registry, canonical_key
from sfbulk.secrets import Secret, redact
from sfbulk.transport import (
    TRANSIENT_STATUSES,
    HostPolicy,
    HttpRequest,
    RetryPolicy,
    Transport,
    check_host,
    send_with_retry,
)

log = logging.getLogger("sfbulk.connector.auth")

DEFAULT_API_VERSION = "62.0"
DEFAULT_INTERVAL_MS = 3_000_000
DEFAULT_REGISTRY_PATH = "connectors/SalesforceBulk"
DEFAULT_TOKEN_ENDPOINT = "https://login.salesforce.com"
DEFAULT_TIMEOUT = 60.0
TOKEN_PATH = "/services/oauth2/token"

#: init parameters, in the order of operations/init.yaml
INIT_PARAMETERS = (
    "apiUrl",
    "apiVersion",
    "accessToken",
    "refreshToken",
    "clientId",
    "clientSecret",
    "intervalTime",
    "registryPath",
    "tokenEndpointHostname",
    "timeout",
    "caFile",
    "grantType",
    "username",
    "password",
    "privateKeyFile",
    "privateKey",
    "privateKeyPassword",
    "audience",
)
SECRET_PARAMETERS = (
    "accessToken",
    "refreshToken",
    "clientSecret",
    "password",
    "privateKey",
    "privateKeyPassword",
)
#: The registry folder (under registryPath) of every identity but the first one to store a token.
IDENTITIES_DIR = "identities"
_IDENTITY_LABEL = b"sfbulk token identity v1 (refresh_token grant)"


def _identity_label(grant: str) -> bytes:
    """The HMAC label of a grant's identities: a JWT identity never hashes like a refresh-token one."""
    return (
        _IDENTITY_LABEL
        if grant == grants.REFRESH_TOKEN
        else f"sfbulk token identity v1 ({grant} grant)".encode()
    )


#: OAuth errors Salesforce documents for bad or unusable credentials: no retry can cure them.
CREDENTIAL_ERRORS = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "invalid_client_id",
        "invalid_client_credentials",
        "unauthorized_client",
        "inactive_user",
        "inactive_org",
        "invalid_request",
        "unsupported_grant_type",
    }
)

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
        raise ParameterError(
            f"init: {name} must be an http(s) URL such as https://ap2.salesforce.com, got {value!r}"
        )
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ParameterError(f"init: {name} must be a plain base URL (no credentials, query or fragment)")
    return url


def _text(value: Any) -> str:
    if isinstance(value, Secret):
        return value.reveal()  # a secret is used exactly as given, never trimmed
    return java_string(value, null="").strip()


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
    #: the grant that obtains tokens (``sfbulk.connector.grants``): refresh_token unless grantType says
    grant_type: str = grants.REFRESH_TOKEN
    username: str = ""
    password: Secret = Secret("")
    #: the JWT bearer grant's claims and signing key (grantType jwt_bearer only)
    jwt: JwtBearer | None = None
    private_key_file: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> InitParams:
        unknown = sorted(set(params) - set(INIT_PARAMETERS))
        if unknown:
            raise ParameterError(
                f"init: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                f"parameters are: {', '.join(INIT_PARAMETERS)}"
            )
        values = {name: _text(params.get(name)) for name in INIT_PARAMETERS}
        if not values["apiUrl"]:
            raise ParameterError("init: parameter 'apiUrl' is required (e.g. https://ap2.salesforce.com)")
        interval_text = values["intervalTime"] or str(DEFAULT_INTERVAL_MS)
        try:
            interval = int(interval_text)
            if interval < 0:
                raise ValueError
        except ValueError:
            raise ParameterError(
                f"init: intervalTime must be a whole number of milliseconds, got {interval_text!r}"
            ) from None
        timeout_text = values["timeout"] or str(DEFAULT_TIMEOUT)
        try:
            timeout = float(timeout_text)
            if not 0 < timeout <= 86400:
                raise ValueError
        except ValueError:
            raise ParameterError(
                f"init: timeout must be a number of seconds (0 < timeout <= 86400), got {timeout_text!r}"
            ) from None
        registry_path = values["registryPath"].rstrip("/") or DEFAULT_REGISTRY_PATH
        api_url = _base_url("apiUrl", values["apiUrl"])
        grant = _grant_type(values)
        endpoint_text = values["tokenEndpointHostname"]
        if not endpoint_text:
            # client credentials are issued by the org's My Domain only: the instance URL is one
            endpoint_text = api_url if grant == grants.CLIENT_CREDENTIALS else DEFAULT_TOKEN_ENDPOINT
        token_endpoint = _base_url("tokenEndpointHostname", endpoint_text)
        if grant == grants.CLIENT_CREDENTIALS and grants.is_shared_login_host(token_endpoint):
            raise ParameterError(
                f"init: grantType client_credentials needs the org's My Domain URL as tokenEndpointHostname "
                f"(https://<domain>.my.salesforce.com); {token_endpoint} does not issue client-credentials tokens"
            )
        jwt = None
        if grant == grants.JWT_BEARER:
            audience = (
                _base_url("audience", values["audience"])
                if values["audience"]
                else default_audience(token_endpoint)
            )
            jwt = JwtBearer(values["clientId"], values["username"], audience, _signing_key(params, values))
        return cls(
            api_url=api_url,
            api_version=normalise_api_version(values["apiVersion"] or DEFAULT_API_VERSION),
            access_token=_secret(params.get("accessToken")),
            refresh_token=_secret(params.get("refreshToken")),
            client_id=values["clientId"],
            client_secret=_secret(params.get("clientSecret")),
            interval_ms=interval,
            registry_path=registry_path,
            token_endpoint=token_endpoint,
            timeout=timeout,
            ca_file=values["caFile"] or None,
            grant_type=grant,
            username=values["username"],
            password=_secret(params.get("password")),
            jwt=jwt,
            private_key_file=values["privateKeyFile"] or None,
        )

    @property
    def can_refresh(self) -> bool:
        """Registry caching and grants need credentials for one: a refresh token and a client id, or
        the parameters of the grantType given (checked by ``from_params``).

        The 2017 connector demanded all four of accessToken, refreshToken, clientId and
        clientSecret; we also accept an empty accessToken (the first call then refreshes) and an
        empty clientSecret (connected apps that do not require one), as Salesforce allows.
        """
        if self.grant_type != grants.REFRESH_TOKEN:
            return True
        return bool(self.refresh_token and self.client_id)

    def cache_key(self) -> tuple[Any, ...]:
        """Non-secret parameters plus a SHA-256 of the secrets: equal keys → same connection."""
        digest = hashlib.sha256()
        for secret in (self.access_token, self.refresh_token, self.client_secret, self.password):
            digest.update(secret.reveal().encode("utf-8") + b"\x00")
        return (
            self.api_url,
            self.api_version,
            self.client_id,
            self.interval_ms,
            self.registry_path,
            self.token_endpoint,
            self.timeout,
            self.ca_file,
            digest.hexdigest(),
            self.grant_type,
            self.username,
            (self.jwt.audience, self.jwt.key.fingerprint) if self.jwt else None,
        )

    def identity_fields(self) -> tuple[str, ...]:
        """What a cached token is bound to: the grant's credentials, the instance, the token endpoint.

        refresh_token: client id, refresh token and secret as given (not a rotated one: every process
        configured with the same credentials shares the entry and the refresh token stored in it);
        jwt_bearer: client id, subject, the key's public fingerprint and the audience;
        client_credentials: client id and secret; password: those plus username and password.
        Secret values: only ever fed to an HMAC (``TokenManager.identity``), never stored or logged.
        """
        if self.grant_type == grants.JWT_BEARER:
            assert self.jwt is not None
            return (
                self.client_id,
                self.jwt.username,
                self.jwt.key.fingerprint,
                self.jwt.audience,
                self.api_url,
                self.token_endpoint,
            )
        if self.grant_type == grants.CLIENT_CREDENTIALS:
            return (self.client_id, self.client_secret.reveal(), self.api_url, self.token_endpoint)
        if self.grant_type == grants.PASSWORD:
            return (
                self.client_id,
                self.client_secret.reveal(),
                self.username,
                self.password.reveal(),
                self.api_url,
                self.token_endpoint,
            )
        return (
            self.client_id,
            self.refresh_token.reveal(),
            self.client_secret.reveal(),
            self.api_url,
            self.token_endpoint,
        )


def _grant_type(values: Mapping[str, str]) -> str:
    """grantType, checked against the parameters given: each grant's required ones, and none of another's."""
    given = values["grantType"]
    grant = grants.normalise_grant_type(given) if given else grants.REFRESH_TOKEN
    if grant is None:
        raise ParameterError(f"init: grantType {given!r} is not one of {', '.join(grants.GRANT_TYPES)}")
    for name, owner in grants.ONLY_FOR.items():
        if values[name] and owner != grant:
            raise ParameterError(
                f"init: {name} is used by grantType {owner} only, and grantType is {grant}"
                f"{'' if given else ' (the default)'}: set grantType to {owner}, or remove {name}"
            )
    if values["username"] and grant not in (grants.JWT_BEARER, grants.PASSWORD):
        raise ParameterError(
            f"init: username is used by grantType jwt_bearer or grantType password only, and grantType is {grant}"
            f"{'' if given else ' (the default)'}: set grantType, or remove username"
        )
    if grant == grants.REFRESH_TOKEN and not given:
        return grant  # today's behaviour: without refresh credentials, the access token alone is used
    missing = [name for name in grants.REQUIRED[grant] if not values[name]]
    if grant == grants.JWT_BEARER and not (values["privateKeyFile"] or values["privateKey"]):
        missing.append("privateKeyFile (a PEM file) or privateKey (the PEM text)")
    if missing:
        raise ParameterError(f"init: grantType {grant} needs {', '.join(missing)}")
    if grant == grants.JWT_BEARER and values["privateKeyFile"] and values["privateKey"]:
        raise ParameterError("init: give privateKeyFile or privateKey, not both")
    return grant


def _signing_key(params: Mapping[str, Any], values: Mapping[str, str]) -> SigningKey:
    password = _secret(params.get("privateKeyPassword")) if values["privateKeyPassword"] else None
    if values["privateKeyFile"]:
        return load_key_file(values["privateKeyFile"], "privateKeyFile", password)
    return load_key(pem_text(values["privateKey"]), "privateKey", password)


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


class TokenEndpointUnavailable(AuthError):
    """The token endpoint kept answering 5xx/429/408 through every retry: not a credentials problem."""


@dataclass(frozen=True)
class _Entry:
    """The registry keys of one identity's token: ``<prefix>/accessToken``, ``/time``, ..."""

    prefix: str

    @property
    def token(self) -> str:
        return f"{self.prefix}/accessToken"

    @property
    def time(self) -> str:
        return f"{self.prefix}/time"

    @property
    def instance(self) -> str:
        return f"{self.prefix}/instanceUrl"

    @property
    def api_url(self) -> str:
        return f"{self.prefix}/apiUrl"

    @property
    def identity(self) -> str:
        return f"{self.prefix}/identity"

    @property
    def refresh(self) -> str:
        """The refresh token Salesforce rotated to (refresh-token rotation), when it did."""
        return f"{self.prefix}/refreshToken"

    def keys(self) -> tuple[str, str, str, str]:
        return (self.identity, self.token, self.time, self.instance)


#: (token, time, instance URL) as stored, or all None when nothing is stored for the identity
_Stored = tuple[str | None, int | None, str | None]
_NOTHING: _Stored = (None, None, None)


class TokenManager:
    """Owns the token of one connection: registry reads, intervalTime, refresh grant, adoption."""

    def __init__(
        self,
        params: InitParams,
        registry: Registry | None,
        transport: Transport,
        *,
        clock_ms: Callable[[], int] | None = None,
        host_policy: HostPolicy | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.params = params
        self.registry = registry
        self.transport = transport
        self.host_policy = host_policy
        self.retry = retry or RetryPolicy()
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        #: token grants this manager made (the multi-process tests sum them)
        self.refresh_count = 0
        #: refresh tokens Salesforce rotated to that this manager stored
        self.rotations = 0
        self._lock = threading.Lock()
        self._memory = Session(params.access_token, params.api_url)
        #: the supplied accessToken while nothing is stored for this identity; stored once it worked
        self._pending: Session | None = None
        self._pending_stamp = 0
        self._supplied_rejected = False
        self._identity: str | None = None
        # Fast path of current(): the entry, its files' registry versions and the values read then.
        self._seen: tuple[_Entry, tuple[object, ...], _Stored] | None = None
        if params.can_refresh and registry is None:
            raise ParameterError("init: refresh credentials were given but no registry to keep the token in")
        # a registryPath outside the registry fails at init, not mid-flow; aliases (a//b, conf:x) fold
        base = canonical_key(params.registry_path) if params.can_refresh else params.registry_path
        self.base = _Entry(base)
        # One lock per identity and registryPath: a caller with other credentials (bogus ones, or a
        # slow token endpoint of its own) never waits for, or holds up, this identity's refresh.
        # The name only picks a lock file (never stored); an unkeyed hash, as no key may exist yet.
        fields = hashlib.sha256(_identity_label(params.grant_type))
        for field in params.identity_fields():
            data = field.encode("utf-8")
            fields.update(len(data).to_bytes(4, "big") + data)
        self.lock_key = f"{base}/{IDENTITIES_DIR}/{fields.hexdigest()[:40]}/lock"
        #: claims of the unowned WSO2 folder are serialised on this (tried, never waited for)
        self.claim_key = self.base.token

    @property
    def uses_registry(self) -> bool:
        return self.params.can_refresh and self.registry is not None

    # -- identity -------------------------------------------------------------------------------

    def identity(self, *, create: bool = False) -> str | None:
        """Hex HMAC of ``params.identity_fields()`` under the registry's key; None before any key exists.

        Without a key nothing verifiable is stored, so readers need not create one: a caller whose
        grant fails leaves the registry untouched.
        """
        if self._identity is None:
            assert self.registry is not None
            key = self.registry.identity_key(create=create)
            if key is None:
                return None
            mac = hmac.new(key, _identity_label(self.params.grant_type), hashlib.sha256)
            for field in self.params.identity_fields():
                data = field.encode("utf-8")
                mac.update(len(data).to_bytes(4, "big") + data)
            self._identity = mac.hexdigest()
        return self._identity

    def _own_entry(self, digest: str) -> _Entry:
        return _Entry(f"{self.base.prefix}/{IDENTITIES_DIR}/{digest[:40]}")

    def _is_mine(self, entry: _Entry, digest: str) -> bool:
        assert self.registry is not None
        stored = self.registry.get(entry.identity)
        return stored is not None and hmac.compare_digest(stored.strip(), digest)

    # -- reading --------------------------------------------------------------------------------

    def _find(self) -> tuple[_Entry | None, _Stored]:
        """This identity's entry (the registryPath's own or the identity-suffixed one) and its values."""
        digest = self.identity()
        if digest is None:
            return None, _NOTHING
        for entry in (self.base, self._own_entry(digest)):
            if self._is_mine(entry, digest):
                return entry, self._read(entry)
        return None, _NOTHING

    def _read(self, entry: _Entry) -> _Stored:
        assert self.registry is not None
        token = self.registry.get(entry.token)
        raw_time = self.registry.get(entry.time)
        try:
            stamp = int(raw_time.strip()) if raw_time is not None and raw_time.strip() else None
        except ValueError:
            stamp = None
        instance = self.registry.get(entry.instance)
        return token, stamp, (instance.strip() or None) if instance else None

    def _stored_cached(self) -> _Stored:
        """``_find()`` without re-reading files whose registry version has not changed.

        Only the unlocked fast path uses it; every decision taken under the lock re-reads.
        """
        assert self.registry is not None
        seen = self._seen
        if seen is not None:
            entry, versions, values = seen
            now = tuple(self.registry.version(k) for k in entry.keys())
            if None not in now and now == versions:
                return values
        digest = self.identity()
        for entry in (self.base, self._own_entry(digest)) if digest else ():
            versions = tuple(self.registry.version(k) for k in entry.keys())
            if self._is_mine(entry, digest or ""):
                values = self._read(entry)  # read after taking the versions: a concurrent write re-reads
                self._seen = (entry, versions, values)
                return values
        self._seen = None
        return _NOTHING

    def cached(self) -> tuple[str, int] | None:
        """(registry key, stamp in ms) of a fresh token cached for *this* identity, or None.

        Read-only (no key is created, nothing is written): lets a CLI say that the credentials it
        was given will not be sent because this identity's own cached token is used instead.
        """
        if not self.uses_registry:
            return None
        entry, (token, stamp, _instance) = self._find()
        if entry is None or token is None or stamp is None or self._stale(token, stamp):
            return None
        return entry.token, stamp

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
        if token and not self._stale(token, stamp):
            return self._session(token, instance)
        if token is None and self.params.access_token and not self._supplied_rejected:
            # Nothing stored for this identity: use the supplied token (2017 step 2d); it is stored
            # by confirm() once Salesforce accepted it, so a bogus one never reaches the registry.
            with self._lock:
                if self._pending is None:
                    self._pending = Session(self.params.access_token, self.params.api_url)
                    self._pending_stamp = self.clock_ms()
                if not self._stale(self._pending.token.reveal(), self._pending_stamp):
                    return self._pending
        with self._lock, self.registry.lock(self.lock_key):
            _entry, (token, stamp, instance) = self._find()  # someone may have refreshed while we waited
            if not self._stale(token, stamp):
                log.debug("token refreshed by another process; adopted")
                return self._session(token or "", instance)
            log.debug("token older than intervalTime (%d ms) or empty; refreshing", self.params.interval_ms)
            return self._refresh_locked()

    def confirm(self, session: Session) -> None:
        """Salesforce accepted ``session``: if it is the supplied token, store it for this identity."""
        if session is not self._pending or self.registry is None:
            return
        with self._lock, self.registry.lock(self.lock_key):
            if self._pending is not session:
                return
            self._pending = None
            entry, (token, _stamp, _instance) = self._find()
            if token is None:
                self._write_locked(session.token, self._pending_stamp, None)
                log.debug("supplied token accepted by Salesforce; stored in the registry")

    def refresh_after_failure(self, failed: Session) -> Session | None:
        """After an auth failure with ``failed``: a newer stored token, or a fresh one. None → no refresh possible."""
        if not self.uses_registry:
            return None
        assert self.registry is not None
        with self._lock, self.registry.lock(self.lock_key):
            if failed is self._pending:
                self._pending = None
                self._supplied_rejected = True  # never stored, never sent again
            _entry, (token, _stamp, instance) = self._find()
            if token and token != failed.token.reveal():
                log.debug("session rejected; a newer token is already stored, adopted")
                return self._session(token, instance)
            log.debug("session rejected by Salesforce; refreshing")
            return self._refresh_locked()

    # -- the grant ------------------------------------------------------------------------------

    def _refresh_locked(self) -> Session:
        """Run the grant and store its result. Caller holds the registry lock.

        The refresh-token grant uses the refresh token stored by the last rotation, if any: once
        Salesforce rotated it, the configured one is void. Nothing is written when the grant fails.
        """
        refresh_token = None
        entry = None
        if self.params.grant_type == grants.REFRESH_TOKEN:
            assert self.registry is not None
            entry, _stored = self._find()
            rotated = self.registry.get(entry.refresh) if entry is not None else None
            if rotated:
                refresh_token = Secret(rotated)
        try:
            result = self.grant(refresh_token)
        except TokenEndpointUnavailable:
            raise
        except AuthError as exc:
            if refresh_token is None or entry is None:
                raise
            raise AuthError(
                f"{exc} (the refresh token sent was the one Salesforce last rotated to, kept in the registry "
                f"at {entry.refresh}: after authorising the app again, configure its new refreshToken)"
            ) from None
        self._write_locked(result.access_token, self.clock_ms(), result.instance_url, result.refresh_token)
        return Session(result.access_token, result.instance_url or self.params.api_url)

    def store(
        self, token: Secret | str, *, stamp_ms: int | None = None, instance_url: str | None = None
    ) -> None:
        """Store a token obtained elsewhere as this identity's (time: now unless given)."""
        if not self.uses_registry:
            raise ParameterError("init: storing a token needs refresh credentials (refreshToken, clientId)")
        assert self.registry is not None
        secret = token if isinstance(token, Secret) else Secret(token)
        with self._lock, self.registry.lock(self.lock_key):
            self._write_locked(secret, self.clock_ms() if stamp_ms is None else stamp_ms, instance_url)

    def _write_locked(
        self, token: Secret, stamp: int, instance_url: str | None, refresh_token: Secret | None = None
    ) -> None:
        """Store a token for this identity (caller holds the identity's lock).

        Into the identity's existing entry; else into the registryPath's own files if no identity
        owns them yet (WSO2's layout, for the first identity); else into its identity-suffixed entry.
        """
        assert self.registry is not None
        digest = self.identity(create=True)
        assert digest is not None
        own = self._own_entry(digest)
        values = (token, stamp, instance_url, refresh_token)
        if self._is_mine(self.base, digest):
            self._put_entry(self.base, digest, *values)
        elif self._is_mine(own, digest) or self.registry.get(self.base.identity) is not None:
            self._put_entry(own, digest, *values)
        else:
            try:
                # Two identities may claim at once: the claim lock is only tried (timeout 0), so no
                # lock is ever waited for while the identity lock is held; the loser uses its own entry.
                with self.registry.lock(self.claim_key, timeout=0):
                    unowned = self.registry.get(self.base.identity) is None
                    self._put_entry(self.base if unowned else own, digest, *values)
            except RegistryError:
                self._put_entry(own, digest, *values)
        self._seen = None

    def _put_entry(
        self,
        entry: _Entry,
        digest: str,
        token: Secret,
        stamp: int,
        instance_url: str | None,
        refresh_token: Secret | None = None,
    ) -> None:
        assert self.registry is not None
        if refresh_token:
            # First: the old refresh token is void once Salesforce rotated it, so the new one must
            # not be lost if anything below fails.
            self.registry.put(entry.refresh, refresh_token.reveal(), secret=True)
            self.rotations += 1
            log.info(
                "Salesforce rotated the refresh token; the new one is stored in the registry (%s)",
                entry.refresh,
            )
        elif (self.registry.get(entry.identity) or "").strip() != digest:
            # a new entry (or one taken over): no rotated refresh token of another identity is kept
            self.registry.delete(entry.refresh)
        self.registry.put(entry.token, token.reveal(), secret=True)
        self.registry.put(entry.time, str(stamp))
        self.registry.put(entry.api_url, self.params.api_url)
        if instance_url:
            self.registry.put(entry.instance, instance_url)
        else:
            self.registry.delete(entry.instance)
        # Written last: until it matches, no reader takes the entry's other files for its own.
        self.registry.put(entry.identity, digest)

    def grant(self, refresh_token: Secret | None = None) -> GrantResult:
        """POST the grant of ``grantType``; returns the access token, instance_url and a rotated refresh token.

        ``refresh_token`` (refresh_token grant) replaces the configured one: the one Salesforce
        rotated to. Transient failures (no answer, 408/429/5xx) are retried with capped backoff;
        a refusal of the credentials is an ``AuthError`` at once.
        """
        p = self.params
        url = p.token_endpoint + TOKEN_PATH
        host = urlsplit(url).netloc
        check_host(self.host_policy, url, "tokenEndpointHostname")
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        sent_refresh = refresh_token or p.refresh_token
        if p.grant_type == grants.JWT_BEARER:
            assert p.jwt is not None
            fields = grants.jwt_fields(p.jwt)
        elif p.grant_type == grants.CLIENT_CREDENTIALS:
            fields = {"grant_type": "client_credentials"}
            headers["Authorization"] = grants.basic_auth(p.client_id, p.client_secret)
        elif p.grant_type == grants.PASSWORD:
            fields = grants.password_fields(p.client_id, p.client_secret, p.username, p.password)
        else:
            fields = grants.refresh_fields(p.client_id, p.client_secret, sent_refresh)
        form = urlencode(fields).encode("ascii")
        request = HttpRequest("POST", url, headers, form, timeout=p.timeout, verify=p.ca_file)
        self.refresh_count += 1
        what = _grant_what(p.grant_type, host)
        response = send_with_retry(self.transport, request, what=what, policy=self.retry)
        payload: Any = None
        try:
            payload = json.loads(response.content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            payload = None
        if response.status != 200 or not isinstance(payload, dict) or not payload.get("access_token"):
            raise _grant_error(p.grant_type, host, response.status, payload, self.retry.attempts)
        token = Secret(str(payload["access_token"]))
        instance = payload.get("instance_url")
        instance_url = None
        if isinstance(instance, str) and instance:
            try:
                instance_url = _base_url("instance_url", instance)
            except ParameterError:
                log.warning("token endpoint returned an unusable instance_url; keeping apiUrl")
        if instance_url:
            check_host(
                self.host_policy, instance_url, f"the instance_url returned by the token endpoint {host}"
            )
        rotated = None
        new_refresh = payload.get("refresh_token")
        if (
            p.grant_type == grants.REFRESH_TOKEN
            and isinstance(new_refresh, str)
            and new_refresh
            and new_refresh != sent_refresh.reveal()
        ):
            rotated = Secret(new_refresh)
        log.debug(
            "token obtained by the %s grant (grant %d of this connection)", p.grant_type, self.refresh_count
        )
        return GrantResult(token, instance_url, rotated)


@dataclass(frozen=True)
class GrantResult:
    """A token answer: the access token, the instance it is for, and a refresh token Salesforce rotated to."""

    access_token: Secret
    instance_url: str | None
    refresh_token: Secret | None = None


def _grant_what(grant: str, host: str) -> str:
    """How messages name a grant request: WSO2's "token refresh" for the refresh grant."""
    if grant == grants.REFRESH_TOKEN:
        return f"token refresh at {host}"
    return f"token request (grantType {grant}) at {host}"


def _grant_error(grant: str, host: str, status: int, payload: Any, attempts: int) -> AuthError:
    """The error for a token answer without a token: transient, bad credentials, or something else."""
    error = description = None
    if isinstance(payload, dict):
        error = payload.get("error")
        description = payload.get("error_description")
    parts = [f"HTTP {status}"]
    if error:
        parts.append(redact(str(error)))
    if description:
        parts.append(redact(str(description)))
    if status == 200:
        parts.append("no access_token in the answer")
    detail = ": ".join(parts)
    if status in TRANSIENT_STATUSES:
        return TokenEndpointUnavailable(
            f"{_grant_what(grant, host)} failed: {detail}, still after {attempts} attempts; the token endpoint "
            "is unavailable or rate-limiting (not a credentials problem): try again later"
        )
    if status in (400, 401, 403) and str(error) in CREDENTIAL_ERRORS:
        return AuthError(f"{_grant_what(grant, host)} failed: {detail}; {grants.advice(grant, description)}")
    return AuthError(
        f"{_grant_what(grant, host)} failed: {detail}; "
        "check tokenEndpointHostname (it must be a Salesforce login or My Domain URL)"
    )


__all__ = [
    "GrantResult",
    "INIT_PARAMETERS",
    "InitParams",
    "Session",
    "TokenEndpointUnavailable",
    "TokenManager",
    "is_auth_failure",
    "normalise_api_version",
]
