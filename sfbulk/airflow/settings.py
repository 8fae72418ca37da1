"""An Airflow connection of type ``sfbulk`` -> our connector's ``init`` parameters (no Airflow import).

Why a table: the connection form, the docs and the mapping to ``init`` must never drift apart, and
the auth flows added to ``init`` later (JWT bearer, client credentials, password) must work by
adding or renaming one row here. ``FIELDS`` is that one table; everything else derives from it:
``conn_fields()`` (the form Airflow shows), ``ui_field_behaviour()`` and ``resolve()``.

A connection's standard attributes hold the instance URL (host), the connected app's consumer
key (login) and secret (password); everything else is in its ``extra`` JSON under the names of
the ``extra`` column below. ``extra.init`` may hold further ``init`` parameters by their own
names (the connector checks them), for settings this table does not name yet.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sfbulk.errors import ConfigError

#: the connection type, and the default connection id of the hook and the operators
CONN_TYPE = "sfbulk"
DEFAULT_CONN_ID = "sfbulk_default"


@dataclass(frozen=True)
class Field:
    """One setting of the connection: where it is written and which ``init`` parameter it sets."""

    name: str  # the key in ``extra`` ("" for a standard attribute)
    attribute: str  # the standard Connection attribute holding it ("" for an extra key)
    init: str  # the init parameter it sets ("" when it is not an init parameter)
    label: str
    secret: bool = False
    description: str = ""


#: Every setting of an ``sfbulk`` connection (docs/airflow.md shows this table).
FIELDS: tuple[Field, ...] = (
    Field("", "host", "apiUrl", "Instance URL", description="e.g. https://example.my.salesforce.com"),
    Field("", "login", "clientId", "Client id", description="the connected app's consumer key"),
    Field("", "password", "clientSecret", "Client secret", True, "the connected app's consumer secret"),
    Field(
        "auth_flow",
        "",
        "grantType",
        "Auth flow",
        description="refresh_token (default with a refresh token), access_token, jwt_bearer, "
        "client_credentials or password (deprecated by Salesforce)",
    ),
    Field("refresh_token", "", "refreshToken", "Refresh token", True, "for auth_flow refresh_token"),
    Field("access_token", "", "accessToken", "Access token", True, "a session id, used as given"),
    Field("username", "", "username", "Username", description="for auth_flow jwt_bearer and password"),
    Field("user_password", "", "password", "User password", True, "password + security token"),
    Field("private_key", "", "privateKey", "JWT private key", True, "PEM text, for auth_flow jwt_bearer"),
    Field("private_key_file", "", "privateKeyFile", "JWT private key file", description="a PEM file"),
    Field(
        "private_key_password",
        "",
        "privateKeyPassword",
        "JWT key passphrase",
        True,
        "if the key is encrypted",
    ),
    Field("audience", "", "audience", "JWT audience", description="login, test or community URL"),
    Field(
        "token_endpoint",
        "",
        "tokenEndpointHostname",
        "Token endpoint",
        description="default https://login.salesforce.com; https://test.salesforce.com for a sandbox",
    ),
    Field("api_version", "", "apiVersion", "API version", description="default 62.0"),
    Field(
        "registry",
        "",
        "",
        "Registry",
        description="token registry: a folder, or postgresql://... shared by every worker host",
    ),
    Field(
        "registry_key_file",
        "",
        "",
        "Registry key file",
        description="keys that encrypt the registry's tokens at rest (docs/registry.md)",
    ),
    Field("registry_path", "", "registryPath", "Registry path", description="key prefix in the registry"),
    Field("interval_time", "", "intervalTime", "Token refresh interval (ms)"),
    Field("timeout", "", "timeout", "HTTP timeout (s)", description="seconds per HTTP call, default 60"),
    Field("ca_file", "", "caFile", "CA bundle", description="PEM file to verify TLS"),
)

#: auth flows the connector picks itself from the credentials it is given (no ``grantType`` sent:
#: ``access_token`` is not a grant, and ``refresh_token`` is the connector's default grant)
IMPLICIT_FLOWS = ("refresh_token", "access_token")
AUTH_FLOWS = ("refresh_token", "access_token", "jwt_bearer", "client_credentials", "password")

_BY_EXTRA = {f.name: f for f in FIELDS if f.name}
_EXTRA_PREFIX = f"extra__{CONN_TYPE}__"  # how Airflow's form used to store extra fields


@dataclass
class Resolved:
    """What the hook needs to open a Connection or an Engine."""

    init: dict[str, str]
    registry: str
    #: init parameter -> how the user wrote it ("extra.refresh_token", "host"), for messages
    labels: dict[str, str] = field(default_factory=dict)
    #: the keys that encrypt the registry's tokens at rest ("" for none, or SFBULK_REGISTRY_KEY_FILE)
    registry_key_file: str = ""


def label_of(f: Field) -> str:
    return f.attribute if f.attribute else f"extra.{f.name}"


def default_registry() -> str:
    """A folder every task on this worker host shares (so a token is fetched once per host)."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    return os.path.join(home, "sfbulk", "registry")


def resolve(
    conn_id: str,
    *,
    host: str | None,
    login: str | None,
    password: str | None,
    port: int | None = None,
    extra: Mapping[str, Any] | None = None,
    known_init: tuple[str, ...] | None = None,
) -> Resolved:
    """The init parameters of connection ``conn_id``; ConfigError naming the field for anything wrong.

    ``known_init`` is the connector's list of init parameters (``sfbulk.connector.auth.INIT_PARAMETERS``
    by default): a setting whose parameter this sfbulk does not have is an error, never dropped.
    """
    if known_init is None:
        from sfbulk.connector.auth import INIT_PARAMETERS

        known_init = tuple(INIT_PARAMETERS)
    where = f"Airflow connection {conn_id!r}"
    values: dict[str, Any] = {}
    for name, value in (extra or {}).items():
        key = name[len(_EXTRA_PREFIX) :] if name.startswith(_EXTRA_PREFIX) else name
        if key != "init" and key not in _BY_EXTRA:
            raise ConfigError(
                f"{where}: unknown extra field {name!r}; known: {', '.join(sorted([*_BY_EXTRA, 'init']))}"
            )
        if value not in (None, ""):
            values[key] = value
    flow = str(values.get("auth_flow") or "")
    if flow and flow not in AUTH_FLOWS:
        raise ConfigError(f"{where}: extra.auth_flow {flow!r} is not one of {', '.join(AUTH_FLOWS)}")
    init: dict[str, str] = {}
    labels: dict[str, str] = {}
    standard = {"host": host, "login": login, "password": password}
    for f in FIELDS:
        value = standard.get(f.attribute) if f.attribute else values.get(f.name)
        if value in (None, "") or not f.init:
            continue
        if f.init == "grantType" and value in IMPLICIT_FLOWS:
            continue  # the connector chooses these flows from the credentials it is given
        if f.init not in known_init:
            raise ConfigError(
                f"{where}: {label_of(f)} needs the init parameter {f.init!r}, which this sfbulk "
                f"version does not have (its auth flows: {', '.join(IMPLICIT_FLOWS)})"
            )
        init[f.init] = _text(value, where, label_of(f))
        labels[f.init] = label_of(f)
    raw = values.get("init", {})
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: extra.init must be a JSON object of init parameters")
    for name, value in raw.items():
        if name not in known_init:
            raise ConfigError(
                f"{where}: extra.init.{name} is not an init parameter; known: {', '.join(known_init)}"
            )
        if name in init:
            raise ConfigError(f"{where}: extra.init.{name} repeats {labels[name]}: give it once")
        init[name] = _text(value, where, f"extra.init.{name}")
        labels[name] = f"extra.init.{name}"
    if "apiUrl" in init:
        init["apiUrl"] = _url(init["apiUrl"], port)
    else:
        raise ConfigError(f"{where}: no instance URL: set its host, e.g. https://example.my.salesforce.com")
    if flow in ("", *IMPLICIT_FLOWS):
        if not init.get("accessToken") and not init.get("refreshToken"):
            raise ConfigError(
                f"{where}: no credentials: set extra.refresh_token with login (client id) and password "
                "(client secret), or extra.access_token"
            )
        if init.get("refreshToken") and not init.get("clientId"):
            raise ConfigError(f"{where}: extra.refresh_token needs the client id in login")
        if init.get("refreshToken") and not init.get("accessToken"):
            init["accessToken"] = "-"  # a seed: the first answer is InvalidSessionId, then the grant
    registry = str(values.get("registry") or default_registry())
    key_file = str(values.get("registry_key_file") or "")
    return Resolved(init=init, registry=registry, labels=labels, registry_key_file=key_file)


def _text(value: Any, where: str, label: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(f"{where}: {label} must be a string, got {type(value).__name__}")
    return str(value)


def _url(host: str, port: int | None) -> str:
    """The instance URL: ``https://`` added to a bare host name, the connection's port appended."""
    url = host.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    if port:
        scheme, _, rest = url.partition("://")
        name, slash, path = rest.partition("/")
        if ":" not in name.rsplit("]", 1)[-1]:
            url = f"{scheme}://{name}:{port}{slash}{path}"
    return url


def conn_fields() -> dict[str, dict[str, Any]]:
    """The extra fields of the connection form (the ``conn-fields`` of the provider info)."""
    fields: dict[str, dict[str, Any]] = {}
    for f in FIELDS:
        if not f.name:
            continue
        schema: dict[str, Any] = {"type": ["string", "null"]}
        if f.secret:
            schema["format"] = "password"
        if f.name == "auth_flow":
            schema["enum"] = [*AUTH_FLOWS, None]
        fields[f.name] = {"label": f.label, "description": f.description, "schema": schema}
    return fields


def ui_field_behaviour() -> dict[str, Any]:
    """Standard attributes relabelled as what they hold; the unused ones hidden."""
    return {
        "hidden-fields": ["schema", "port"],
        "relabeling": {f.attribute: f.label for f in FIELDS if f.attribute},
        "placeholders": {"host": "https://example.my.salesforce.com", "extra": '{"refresh_token": "..."}'},
    }
