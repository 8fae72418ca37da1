"""The OAuth 2.0 grants ``init`` can make, chosen by its ``grantType`` parameter.

=====================  ==========================================  =================================
grantType              sends                                       needs
=====================  ==========================================  =================================
refresh_token          refresh_token, client_id (, client_secret)  refreshToken, clientId
jwt_bearer             assertion (RS256 JWT)                       clientId, username, privateKey(File)
client_credentials     client_id, client_secret (HTTP Basic)       clientId, clientSecret, My Domain
password (deprecated)  username, password, client_id, secret       clientId, clientSecret, username,
                                                                   password
=====================  ==========================================  =================================

This module builds the request fields and the advice given when Salesforce refuses one; the token
life cycle around them (registry, locking, replay) is ``sfbulk.connector.auth``.
"""

from __future__ import annotations

import base64
from urllib.parse import quote, urlsplit

from sfbulk.connector.jwt_assertion import JWT_BEARER_GRANT, JwtBearer
from sfbulk.secrets import Secret

REFRESH_TOKEN = "refresh_token"
JWT_BEARER = "jwt_bearer"
CLIENT_CREDENTIALS = "client_credentials"
PASSWORD = "password"
GRANT_TYPES = (REFRESH_TOKEN, JWT_BEARER, CLIENT_CREDENTIALS, PASSWORD)
#: other spellings accepted for grantType (the OAuth grant_type values, WSO2-style camel case)
GRANT_ALIASES = {
    JWT_BEARER_GRANT: JWT_BEARER,
    "jwt": JWT_BEARER,
    "jwtbearer": JWT_BEARER,
    "refreshtoken": REFRESH_TOKEN,
    "clientcredentials": CLIENT_CREDENTIALS,
    "username_password": PASSWORD,
    "usernamepassword": PASSWORD,
}
#: the init parameters each grant requires (beyond apiUrl)
REQUIRED = {
    REFRESH_TOKEN: ("refreshToken", "clientId"),
    JWT_BEARER: ("clientId", "username"),
    CLIENT_CREDENTIALS: ("clientId", "clientSecret"),
    PASSWORD: ("clientId", "clientSecret", "username", "password"),
}
#: parameters that only one grant uses: given with another grantType, they are a mistake
ONLY_FOR = {
    "refreshToken": REFRESH_TOKEN,
    "privateKey": JWT_BEARER,
    "privateKeyFile": JWT_BEARER,
    "privateKeyPassword": JWT_BEARER,
    "audience": JWT_BEARER,
    "password": PASSWORD,
}
#: hosts that do not issue client-credentials tokens (only a My Domain does)
SHARED_LOGIN_HOSTS = frozenset({"login.salesforce.com", "test.salesforce.com"})


def normalise_grant_type(value: str) -> str | None:
    """``jwt_bearer`` / ``JWT-Bearer`` / the OAuth URN → ``jwt_bearer``; None when unknown."""
    text = value.strip()
    if text == JWT_BEARER_GRANT:
        return JWT_BEARER
    key = text.lower().replace("-", "_")
    if key in GRANT_TYPES:
        return key
    return GRANT_ALIASES.get(key.replace("_", "")) or GRANT_ALIASES.get(key)


def is_shared_login_host(url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() in SHARED_LOGIN_HOSTS


def basic_auth(client_id: str, client_secret: Secret) -> str:
    """``Authorization: Basic`` of RFC 6749 2.3.1 (each part form-encoded, then base64)."""
    pair = f"{quote(client_id, safe='')}:{quote(client_secret.reveal(), safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


def refresh_fields(client_id: str, client_secret: Secret, refresh_token: Secret) -> dict[str, str]:
    fields = {"grant_type": "refresh_token", "refresh_token": refresh_token.reveal(), "client_id": client_id}
    if client_secret:
        fields["client_secret"] = client_secret.reveal()
    return fields


def jwt_fields(bearer: JwtBearer) -> dict[str, str]:
    return {"grant_type": JWT_BEARER_GRANT, "assertion": bearer.assertion().reveal()}


def password_fields(client_id: str, client_secret: Secret, username: str, password: Secret) -> dict[str, str]:
    return {
        "grant_type": "password",
        "client_id": client_id,
        "client_secret": client_secret.reveal(),
        "username": username,
        "password": password.reveal(),
    }


#: What to check when Salesforce refuses a grant: (grant, error_description lower-cased) → advice.
_ADVICE = {
    (JWT_BEARER, "invalid assertion"): "the assertion's signature does not verify against the certificate "
    "uploaded to the connected app: check privateKeyFile / privateKey (the key the certificate was made from) "
    "and clientId",
    (JWT_BEARER, "audience is invalid"): "check audience (https://login.salesforce.com, "
    "https://test.salesforce.com for a sandbox, or the Experience Cloud site URL)",
    (JWT_BEARER, "expired authorization code"): "the assertion had expired when it arrived: check this "
    "machine's clock (exp is 3 minutes ahead)",
    (JWT_BEARER, "user hasn't approved this consumer"): "check username, and that the user's profile or a "
    "permission set is pre-authorized for the connected app (Admin approved users are pre-authorized)",
    (CLIENT_CREDENTIALS, "no client credentials user enabled"): "choose a run-as user in the connected "
    "app's client credentials flow settings",
    (CLIENT_CREDENTIALS, "request not supported on this domain"): "tokenEndpointHostname must be the org's "
    "My Domain URL (https://<domain>.my.salesforce.com)",
}
_DEFAULT_ADVICE = {
    REFRESH_TOKEN: "check refreshToken, clientId and clientSecret",
    JWT_BEARER: "check clientId, username, audience and the key (privateKeyFile / privateKey)",
    CLIENT_CREDENTIALS: "check clientId, clientSecret and the app's run-as user",
    PASSWORD: "check username, password (with the security token appended), clientId and clientSecret",
}


def advice(grant: str, description: object) -> str:
    """What to check, naming the init parameters, when Salesforce refused the credentials."""
    return _ADVICE.get((grant, str(description or "").strip().lower()), _DEFAULT_ADVICE[grant])


__all__ = [
    "CLIENT_CREDENTIALS",
    "GRANT_TYPES",
    "JWT_BEARER",
    "PASSWORD",
    "REFRESH_TOKEN",
    "REQUIRED",
    "advice",
    "basic_auth",
    "is_shared_login_host",
    "jwt_fields",
    "normalise_grant_type",
    "password_fields",
    "refresh_fields",
]
