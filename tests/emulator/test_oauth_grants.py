"""The emulator's token endpoint for the demo app: JWT bearer, client credentials, rotation (oauth.py).

Straight HTTP to a real emulator: every refusal is Salesforce's error JSON, 400.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sfbulk.emulator.oauth import DEMO_USERS

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _token(emu, **fields: str) -> requests.Response:
    return requests.post(f"{emu.base_url}/services/oauth2/token", data=fields, timeout=10)


def _assertion(emu, key=None, **claims) -> str:
    body = {
        "iss": emu.credentials["client_id"],
        "sub": "demo@sfbulk.local",
        "aud": emu.base_url,
        "exp": int(time.time()) + 180,
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    if key is None:
        key = serialization.load_pem_private_key(Path(emu.jwt_private_key_file).read_bytes(), None)
    return jwt.encode(body, key, algorithm="RS256")


def _refused(resp: requests.Response, error: str, description: str) -> None:
    assert resp.status_code == 400, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == {"error": error, "error_description": description}


def test_a_valid_assertion_gets_a_session_and_no_refresh_token(emulator) -> None:
    resp = _token(emulator, grant_type=JWT_GRANT, assertion=_assertion(emulator))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["instance_url"] == emulator.base_url and "refresh_token" not in doc
    assert doc["id"].endswith("/" + DEMO_USERS["demo@sfbulk.local"])
    # the session works on the Bulk API
    job = requests.get(
        f"{emulator.base_url}/services/async/62.0/job/750000000000000AAA",
        headers={"X-SFDC-Session": doc["access_token"]},
        timeout=10,
    )
    assert "InvalidSessionId" not in job.text


def test_the_login_url_is_an_accepted_audience(emulator) -> None:
    resp = _token(
        emulator, grant_type=JWT_GRANT, assertion=_assertion(emulator, aud="https://login.salesforce.com")
    )
    assert resp.status_code == 200


@pytest.mark.parametrize(
    ("claims", "error", "description"),
    [
        ({"aud": "https://test.salesforce.com"}, "invalid_grant", "audience is invalid"),
        ({"exp": int(time.time()) - 60}, "invalid_grant", "expired authorization code"),
        ({"sub": "nobody@sfbulk.local"}, "invalid_grant", "user hasn't approved this consumer"),
        ({"iss": "some-other-app"}, "invalid_client_id", "client identifier invalid"),
        ({"exp": None}, "invalid_grant", "invalid assertion"),
    ],
)
def test_assertion_refusals(emulator, claims, error, description) -> None:
    _refused(
        _token(emulator, grant_type=JWT_GRANT, assertion=_assertion(emulator, **claims)), error, description
    )


def test_a_signature_by_another_key_is_an_invalid_assertion(emulator) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    resp = _token(emulator, grant_type=JWT_GRANT, assertion=_assertion(emulator, key=stranger))
    _refused(resp, "invalid_grant", "invalid assertion")


def test_garbage_and_unsigned_assertions_are_invalid(emulator) -> None:
    _refused(
        _token(emulator, grant_type=JWT_GRANT, assertion="not.a.jwt"), "invalid_grant", "invalid assertion"
    )
    _refused(_token(emulator, grant_type=JWT_GRANT), "invalid_grant", "invalid assertion")
    unsigned = jwt.encode(
        {
            "iss": emulator.credentials["client_id"],
            "sub": "demo@sfbulk.local",
            "aud": emulator.base_url,
            "exp": int(time.time()) + 60,
        },
        emulator.credentials["client_secret"] * 2,
        algorithm="HS256",  # a shared-secret MAC is not the app's certificate
    )
    _refused(_token(emulator, grant_type=JWT_GRANT, assertion=unsigned), "invalid_grant", "invalid assertion")


def test_the_certificate_is_the_private_key_s(emulator) -> None:
    cert = x509.load_pem_x509_certificate(Path(emulator.jwt_certificate_file).read_bytes())
    key = serialization.load_pem_private_key(Path(emulator.jwt_private_key_file).read_bytes(), None)
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert cert.public_key().public_bytes(*der) == key.public_key().public_bytes(*der)
    assert os.stat(emulator.jwt_private_key_file).st_mode & 0o077 == 0


def test_client_credentials_run_as_the_app_user(emulator) -> None:
    creds = emulator.credentials
    resp = requests.post(
        f"{emulator.base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["client_id"], creds["client_secret"]),
        timeout=10,
    )
    assert resp.status_code == 200 and "refresh_token" not in resp.json()
    assert resp.json()["id"].endswith("/" + DEMO_USERS[creds["client_credentials_user"]])
    wrong = requests.post(
        f"{emulator.base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(creds["client_id"], "guess"),
        timeout=10,
    )
    _refused(wrong, "invalid_client", "invalid client credentials")


def test_client_credentials_without_a_run_as_user(emulator_factory) -> None:
    from sfbulk.emulator import DEMO_CREDENTIALS

    emu = emulator_factory(credentials={**DEMO_CREDENTIALS, "client_credentials_user": ""})
    resp = _token(
        emu,
        grant_type="client_credentials",
        client_id=emu.credentials["client_id"],
        client_secret=emu.credentials["client_secret"],
    )
    _refused(resp, "invalid_grant", "no client credentials user enabled")


def _refresh(emu, refresh_token: str) -> requests.Response:
    creds = emu.credentials
    return _token(
        emu,
        grant_type="refresh_token",
        refresh_token=refresh_token,
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
    )


def test_rotation_answers_a_new_refresh_token_and_retires_the_used_one(emulator_factory) -> None:
    emu = emulator_factory(rotate_refresh_tokens=True)
    first = _refresh(emu, emu.credentials["refresh_token"])
    assert first.status_code == 200
    successor = first.json()["refresh_token"]
    assert successor != emu.credentials["refresh_token"]
    _refused(_refresh(emu, emu.credentials["refresh_token"]), "invalid_grant", "expired access/refresh token")
    second = _refresh(emu, successor)
    assert second.status_code == 200 and second.json()["refresh_token"] not in (successor, None)
    assert emu.oauth.valid_refresh_tokens() == {second.json()["refresh_token"]}


def test_without_rotation_the_refresh_token_stays(emulator) -> None:
    resp = _refresh(emulator, emulator.credentials["refresh_token"])
    assert resp.status_code == 200 and "refresh_token" not in resp.json()


def test_json_output_prints_the_demo_app_key_and_certificate_paths() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "emulator",
            "--port",
            "0",
            "--json",
            "--worker-threads",
            "--rotate-refresh-tokens",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        key = Path(info["jwt_private_key_file"])
        cert = Path(info["jwt_certificate_file"])
        assert b"PRIVATE KEY" in key.read_bytes() and b"CERTIFICATE" in cert.read_bytes()
        assert info["rotate_refresh_tokens"] is True
        assert "demo@sfbulk.local" in info["jwt_users"]
        assert info["client_credentials_user"] == "demo@sfbulk.local"
    finally:
        proc.terminate()
        proc.wait(15)
    assert proc.returncode == 0
    assert not key.exists()  # the demo app's files go with the emulator


def test_a_demo_app_dir_keeps_the_key_pair_across_restarts(emulator_factory, tmp_path: Path) -> None:
    folder = tmp_path / "demo-app"
    first = emulator_factory(demo_app_dir=folder)
    key_before = Path(first.jwt_private_key_file).read_bytes()
    assert Path(first.jwt_private_key_file).parent == folder
    assert os.stat(folder).st_mode & 0o077 == 0 and os.stat(first.jwt_private_key_file).st_mode & 0o077 == 0
    first.stop()
    assert Path(folder / "private_key.pem").read_bytes() == key_before  # kept after the emulator stops
    second = emulator_factory(demo_app_dir=folder)
    assert Path(second.jwt_private_key_file).read_bytes() == key_before
    # and the restarted emulator verifies assertions signed with the kept key
    resp = _token(second, grant_type=JWT_GRANT, assertion=_assertion(second))
    assert resp.status_code == 200, resp.text
