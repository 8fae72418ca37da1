"""The OAuth 2.0 token endpoint (refresh_token and password grants) and the sessions it issues."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from typing import Any

from .ids import make_id18

#: The emulator's public demo connected app. Printed on purpose: they unlock nothing but the emulator.
DEMO_CREDENTIALS: dict[str, str] = {
    "client_id": "sfbulk-demo-client-id",
    "client_secret": "sfbulk-demo-client-secret",
    "refresh_token": "sfbulk-demo-refresh-token",
    "username": "demo@sfbulk.local",
    "password": "sfbulk-demo-password",
}
ORG_ID = make_id18("00D", 1)
USER_ID = make_id18("005", 1)


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


def token_response(
    params: dict[str, str],
    authorization: str | None,
    sessions: Sessions,
    base_url: str,
    credentials: dict[str, str],
) -> dict[str, Any]:
    """Answer one token request or raise OAuthError with Salesforce's error and description."""
    client_id = params.get("client_id")
    client_secret = params.get("client_secret")
    if authorization and authorization.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
            client_id, _, client_secret = decoded.partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "invalid client credentials") from None
    grant = params.get("grant_type")
    if grant not in ("refresh_token", "password"):
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    if client_id != credentials["client_id"]:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if grant == "refresh_token":
        if client_secret is not None and client_secret != credentials["client_secret"]:
            raise OAuthError("invalid_client", "invalid client credentials")
        if params.get("refresh_token") != credentials["refresh_token"]:
            raise OAuthError("invalid_grant", "expired access/refresh token")
    else:
        if client_secret != credentials["client_secret"]:
            raise OAuthError("invalid_client", "invalid client credentials")
        if (
            params.get("username") != credentials["username"]
            or params.get("password") != credentials["password"]
        ):
            raise OAuthError("invalid_grant", "authentication failure")
    issued_at = str(int(time.time() * 1000))
    identity = f"{base_url}/id/{ORG_ID}/{USER_ID}"
    signature = base64.b64encode(
        hmac.new(
            credentials["client_secret"].encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
    ).decode("ascii")
    return {
        "access_token": sessions.issue(),
        "signature": signature,
        "scope": "refresh_token api id",
        "instance_url": base_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
    }
