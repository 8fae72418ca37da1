"""The OAuth 2.0 token endpoint of the demo connected app, and the sessions it issues.

Grants: refresh_token (with Salesforce's refresh-token rotation when asked), password, the JWT
bearer grant (RS256 assertions verified against the demo app's certificate, ``demo_app.py``) and
client_credentials (issued for the app's run-as user). Refusals are Salesforce's error JSON:
``{"error": "invalid_grant", "error_description": "..."}`` with the descriptions Salesforce gives.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from typing import Any
from urllib.parse import unquote

from .demo_app import DemoAppKeys
from .ids import make_id18

#: The emulator's public demo connected app. Printed on purpose: they unlock nothing but the emulator.
DEMO_CREDENTIALS: dict[str, str] = {
    "client_id": "sfbulk-demo-client-id",
    "client_secret": "sfbulk-demo-client-secret",
    "refresh_token": "sfbulk-demo-refresh-token",
    "username": "demo@sfbulk.local",
    "password": "sfbulk-demo-password",
    #: the user client_credentials tokens are issued for (the connected app's "Run As" user)
    "client_credentials_user": "demo@sfbulk.local",
}
ORG_ID = make_id18("00D", 1)
USER_ID = make_id18("005", 1)
#: users of the demo org, pre-authorized for the demo app (JWT subjects): username → user id
DEMO_USERS: dict[str, str] = {
    "demo@sfbulk.local": USER_ID,
    "integration@sfbulk.local": make_id18("005", 2),
}
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: audiences an assertion may name besides the emulator's own URL (a My Domain accepts the login URL)
EXTRA_AUDIENCES = ("https://login.salesforce.com",)
GRANTS = ("refresh_token", "password", JWT_BEARER, "client_credentials")


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> bytes:
        return json.dumps({"error": self.error, "error_description": self.description}).encode("utf-8")


class Sessions:
    """Access tokens and their issue times; a token is valid for ``ttl`` seconds (changeable at run time)."""

    def __init__(self, ttl: float):
        self.ttl = float(ttl)
        self._issued: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = f"{ORG_ID[:15]}!" + secrets.token_urlsafe(72)
        with self._lock:
            self._issued[token] = time.monotonic()
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            issued = self._issued.get(token)
        return issued is not None and time.monotonic() - issued < self.ttl

    def expire_all(self) -> None:
        with self._lock:
            self._issued.clear()

    def revoke(self, token: str) -> None:
        with self._lock:
            self._issued.pop(token, None)


class OAuthServer:
    """The demo app's token endpoint: checks a grant, issues a session, counts what it did."""

    def __init__(
        self,
        sessions: Sessions,
        credentials: dict[str, str],
        *,
        rotate_refresh_tokens: bool = False,
        demo_app_dir: str | os.PathLike[str] | None = None,
    ):
        self.sessions = sessions
        self.credentials = credentials
        #: Salesforce's refresh-token rotation: each refresh answers a new refresh token, the used one dies
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.keys = DemoAppKeys(demo_app_dir)
        self.users = dict(DEMO_USERS)
        self._lock = threading.Lock()
        self._refresh_tokens = {credentials["refresh_token"]}
        #: successful grants by grant type ("jwt_bearer" for the URN), and JWT grants by subject
        self.grant_counts: collections.Counter[str] = collections.Counter()
        self.subject_counts: collections.Counter[str] = collections.Counter()

    def revoke_refresh_token(self, token: str) -> None:
        """``/services/oauth2/revoke`` with a refresh token: it stops working."""
        with self._lock:
            self._refresh_tokens.discard(token)

    def valid_refresh_tokens(self) -> set[str]:
        with self._lock:
            return set(self._refresh_tokens)

    def token_response(
        self, params: dict[str, str], authorization: str | None, base_url: str
    ) -> dict[str, Any]:
        """Answer one token request or raise OAuthError with Salesforce's error and description."""
        client_id = params.get("client_id")
        client_secret = params.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", "invalid client credentials") from None
            user, _, password = decoded.partition(":")
            client_id, client_secret = unquote(user), unquote(password)
        grant = params.get("grant_type")
        if grant not in GRANTS:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        creds = self.credentials
        rotated = None
        user_id = USER_ID
        if grant == JWT_BEARER:
            user_id = self._check_assertion(params.get("assertion") or "", base_url)
        elif client_id != creds["client_id"]:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        elif grant == "refresh_token":
            if client_secret is not None and client_secret != creds["client_secret"]:
                raise OAuthError("invalid_client", "invalid client credentials")
            rotated = self._use_refresh_token(params.get("refresh_token") or "")
        elif grant == "client_credentials":
            if client_secret != creds["client_secret"]:
                raise OAuthError("invalid_client", "invalid client credentials")
            run_as = creds.get("client_credentials_user") or ""
            if run_as not in self.users:
                raise OAuthError("invalid_grant", "no client credentials user enabled")
            user_id = self.users[run_as]
        else:
            if client_secret != creds["client_secret"]:
                raise OAuthError("invalid_client", "invalid client credentials")
            if params.get("username") != creds["username"] or params.get("password") != creds["password"]:
                raise OAuthError("invalid_grant", "authentication failure")
        with self._lock:
            self.grant_counts["jwt_bearer" if grant == JWT_BEARER else str(grant)] += 1
        issued_at = str(int(time.time() * 1000))
        identity = f"{base_url}/id/{ORG_ID}/{user_id}"
        signature = base64.b64encode(
            hmac.new(
                creds["client_secret"].encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode("ascii")
        doc: dict[str, Any] = {
            "access_token": self.sessions.issue(),
            "signature": signature,
            "scope": "refresh_token api id" if grant in ("refresh_token", "password") else "api id",
            "instance_url": base_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
        if rotated:
            doc["refresh_token"] = rotated
        return doc

    def _use_refresh_token(self, token: str) -> str | None:
        """Check a refresh token; with rotation, retire it and return its successor."""
        with self._lock:
            if token not in self._refresh_tokens:
                raise OAuthError("invalid_grant", "expired access/refresh token")
            if not self.rotate_refresh_tokens:
                return None
            self._refresh_tokens.discard(token)
            successor = "5Aep861" + secrets.token_urlsafe(60)
            self._refresh_tokens.add(successor)
            return successor

    def _check_assertion(self, assertion: str, base_url: str) -> str:
        """The user id of a valid assertion, or Salesforce's refusal of it."""
        import jwt

        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if unverified.get("iss") != self.credentials["client_id"]:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        try:
            claims = jwt.decode(
                assertion,
                self.keys.public_key,
                algorithms=["RS256"],
                audience=[base_url, *EXTRA_AUDIENCES],
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise OAuthError("invalid_grant", "expired authorization code") from None
        except jwt.InvalidAudienceError:
            raise OAuthError("invalid_grant", "audience is invalid") from None
        except jwt.PyJWTError:  # a bad signature, another algorithm, a claim missing
            raise OAuthError("invalid_grant", "invalid assertion") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or subject not in self.users:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        with self._lock:
            self.subject_counts[subject] += 1
        return self.users[subject]

    def close(self) -> None:
        self.keys.close()
