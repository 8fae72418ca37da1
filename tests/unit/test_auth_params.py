"""init's grantType and its parameters (sfbulk/connector/auth.py, grants.py, jwt_assertion.py): pure checks.

What reaches Salesforce is tested against the emulator (tests/integration/test_auth_flows.py); here:
which parameters each grant needs, the errors naming them, the assertion's claims, the key checks,
and the identity a cached token is bound to.
"""

from __future__ import annotations

import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sfbulk.connector import grants
from sfbulk.connector.auth import _IDENTITY_LABEL, InitParams, _identity_label
from sfbulk.connector.jwt_assertion import (
    ASSERTION_LIFETIME,
    LOGIN_AUDIENCE,
    TEST_AUDIENCE,
    default_audience,
    load_key,
    pem_text,
)
from sfbulk.errors import AuthError, ParameterError

API = "https://acme.my.salesforce.com"


def _pem(key, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def key_file(tmp_path: Path, rsa_key) -> Path:
    path = tmp_path / "server.key"
    path.write_bytes(_pem(rsa_key))
    return path


def jwt_params(key_file: Path, **overrides: str) -> dict[str, str]:
    values = {
        "apiUrl": API,
        "grantType": "jwt_bearer",
        "clientId": "3MVG9-consumer-key",
        "username": "integration@acme.com",
        "privateKeyFile": str(key_file),
    }
    values.update(overrides)
    return values


def test_the_default_grant_is_today_s_refresh_token_grant() -> None:
    params = InitParams.from_params({"apiUrl": API, "refreshToken": "r", "clientId": "c"})
    assert params.grant_type == "refresh_token" and params.can_refresh
    # an access token alone still works without any grant (no registry use)
    assert not InitParams.from_params({"apiUrl": API, "accessToken": "t"}).can_refresh


@pytest.mark.parametrize(
    ("spelling", "grant"),
    [
        ("jwt_bearer", "jwt_bearer"),
        ("JWT-Bearer", "jwt_bearer"),
        ("urn:ietf:params:oauth:grant-type:jwt-bearer", "jwt_bearer"),
        ("clientCredentials", "client_credentials"),
        ("refresh_token", "refresh_token"),
        ("password", "password"),
    ],
)
def test_grant_type_spellings(spelling: str, grant: str) -> None:
    assert grants.normalise_grant_type(spelling) == grant


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"grantType": "saml"}, "grantType 'saml' is not one of refresh_token, jwt_bearer"),
        ({"grantType": "refresh_token"}, "grantType refresh_token needs refreshToken, clientId"),
        (
            {"grantType": "jwt_bearer", "clientId": "c"},
            "needs username, privateKeyFile (a PEM file) or privateKey",
        ),
        (
            {"grantType": "client_credentials", "clientId": "c"},
            "grantType client_credentials needs clientSecret",
        ),
        (
            {"grantType": "password", "clientId": "c", "clientSecret": "s", "username": "u"},
            "grantType password needs password",
        ),
        (
            {"refreshToken": "r", "clientId": "c", "privateKeyFile": "/k.pem"},
            "privateKeyFile is used by grantType jwt_bearer only, and grantType is refresh_token (the default)",
        ),
        (
            {"grantType": "client_credentials", "clientId": "c", "clientSecret": "s", "username": "u"},
            "username is used by grantType jwt_bearer or grantType password only",
        ),
        (
            {"grantType": "client_credentials", "clientId": "c", "clientSecret": "s", "audience": API},
            "audience is used by grantType jwt_bearer only",
        ),
        (
            {
                "grantType": "client_credentials",
                "clientId": "c",
                "clientSecret": "s",
                "tokenEndpointHostname": "https://login.salesforce.com",
            },
            "needs the org's My Domain URL as tokenEndpointHostname",
        ),
    ],
)
def test_each_grant_names_what_it_misses_or_does_not_use(params: dict[str, str], message: str) -> None:
    with pytest.raises(ParameterError, match="^init: ") as caught:
        InitParams.from_params({"apiUrl": API, **params})
    assert message in str(caught.value)


def test_client_credentials_default_to_the_instance_my_domain() -> None:
    params = InitParams.from_params(
        {"apiUrl": API, "grantType": "client_credentials", "clientId": "c", "clientSecret": "s"}
    )
    assert params.token_endpoint == API and params.can_refresh


@pytest.mark.parametrize(
    ("endpoint", "audience"),
    [
        ("https://login.salesforce.com", LOGIN_AUDIENCE),
        ("https://acme.my.salesforce.com", LOGIN_AUDIENCE),
        ("https://test.salesforce.com", TEST_AUDIENCE),
        ("https://acme--uat.sandbox.my.salesforce.com", TEST_AUDIENCE),
        ("https://acme.my.site.com/customers", "https://acme.my.site.com/customers"),
        ("http://127.0.0.1:8281", "http://127.0.0.1:8281"),
    ],
)
def test_default_audience(endpoint: str, audience: str) -> None:
    assert default_audience(endpoint) == audience


def test_the_assertion_carries_salesforce_s_claims_signed_rs256(key_file: Path, rsa_key) -> None:
    params = InitParams.from_params(jwt_params(key_file, tokenEndpointHostname="https://test.salesforce.com"))
    assert params.jwt is not None
    before = int(time.time())
    token = params.jwt.assertion().reveal()
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, rsa_key.public_key(), algorithms=["RS256"], audience=TEST_AUDIENCE)
    assert claims["iss"] == "3MVG9-consumer-key"
    assert claims["sub"] == "integration@acme.com"
    assert claims["aud"] == TEST_AUDIENCE
    assert before < claims["exp"] <= int(time.time()) + ASSERTION_LIFETIME <= time.time() + 180


def test_an_explicit_audience_wins(key_file: Path) -> None:
    params = InitParams.from_params(jwt_params(key_file, audience="https://acme.my.site.com/partners/"))
    assert params.jwt is not None and params.jwt.audience == "https://acme.my.site.com/partners"


def test_the_key_may_be_given_as_pem_text_with_escaped_newlines(rsa_key, key_file: Path) -> None:
    one_line = _pem(rsa_key).decode().strip().replace("\n", "\\n")  # as an environment variable holds it
    from_text = InitParams.from_params(jwt_params(key_file, privateKeyFile="", privateKey=one_line))
    from_file = InitParams.from_params(jwt_params(key_file))
    assert from_text.jwt is not None and from_file.jwt is not None
    assert from_text.jwt.key.fingerprint == from_file.jwt.key.fingerprint
    assert from_text.identity_fields() == from_file.identity_fields()
    with pytest.raises(ParameterError, match="privateKeyFile or privateKey, not both"):
        InitParams.from_params(jwt_params(key_file, privateKey=one_line))


def _key_error(tmp_path: Path, data: bytes, **extra: str) -> str:
    path = tmp_path / "bad.pem"
    path.write_bytes(data)
    with pytest.raises(AuthError) as caught:
        InitParams.from_params(jwt_params(path, **extra))
    text = str(caught.value)
    assert text.startswith(f"privateKeyFile {path}: "), text
    return text


def test_key_file_errors_name_the_file_and_say_what_is_wrong(tmp_path: Path, rsa_key) -> None:
    assert "not a PEM private key" in _key_error(tmp_path, b"hello")
    cert_like = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    assert "this is a certificate, not a private key" in _key_error(tmp_path, cert_like)
    assert "needs an RSA private key" in _key_error(tmp_path, _pem(ec.generate_private_key(ec.SECP256R1())))
    encrypted = _pem(rsa_key, b"open sesame")
    assert "encrypted; give its passphrase in privateKeyPassword" in _key_error(tmp_path, encrypted)
    assert "privateKeyPassword does not decrypt" in _key_error(tmp_path, encrypted, privateKeyPassword="nope")
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    assert "1024 bits" in _key_error(tmp_path, _pem(weak))
    missing = tmp_path / "missing.pem"
    with pytest.raises(AuthError, match=f"privateKeyFile {missing}: no such file"):
        InitParams.from_params(jwt_params(missing))
    with pytest.raises(AuthError, match="is a folder"):
        InitParams.from_params(jwt_params(tmp_path))


def test_an_encrypted_key_opens_with_its_passphrase(tmp_path: Path, rsa_key, key_file: Path) -> None:
    path = tmp_path / "enc.pem"
    path.write_bytes(_pem(rsa_key, b"open sesame"))
    params = InitParams.from_params(jwt_params(path, privateKeyPassword="open sesame"))
    plain = InitParams.from_params(jwt_params(key_file))
    assert params.jwt is not None and plain.jwt is not None
    assert params.jwt.key.fingerprint == plain.jwt.key.fingerprint


def test_key_errors_never_quote_the_key(rsa_key) -> None:
    pem = _pem(rsa_key).decode()
    broken = pem.replace("MII", "XXX", 1)
    with pytest.raises(AuthError) as caught:
        load_key(pem_text(broken), "privateKey")
    assert str(caught.value) == "privateKey: not a PEM private key"
    body = broken.splitlines()[1]
    assert body not in str(caught.value)


def test_the_jwt_identity_is_the_subject_and_key_fingerprint(
    tmp_path: Path, key_file: Path, other_key
) -> None:
    base = InitParams.from_params(jwt_params(key_file))
    other_subject = InitParams.from_params(jwt_params(key_file, username="etl@acme.com"))
    rotated = tmp_path / "rotated.key"
    rotated.write_bytes(_pem(other_key))
    other_key_params = InitParams.from_params(jwt_params(rotated))
    identities = {p.identity_fields() for p in (base, other_subject, other_key_params)}
    assert len(identities) == 3
    assert base.jwt is not None
    assert base.jwt.key.fingerprint in base.identity_fields()
    # the private key itself is in no identity field, no cache key and no printed form
    pem = key_file.read_text()
    for text in (repr(base), repr(base.cache_key()), repr(base.identity_fields())):
        assert "PRIVATE KEY" not in text and pem.splitlines()[1] not in text
    assert base.cache_key() != other_key_params.cache_key()


def test_replacing_the_key_file_changes_the_identity(key_file: Path, other_key) -> None:
    before = InitParams.from_params(jwt_params(key_file))
    key_file.write_bytes(_pem(other_key))  # a certificate rotation: same path, new key
    after = InitParams.from_params(jwt_params(key_file))
    assert before.identity_fields() != after.identity_fields()


def test_client_credentials_identity_includes_the_secret_and_the_endpoint() -> None:
    def cc(**overrides: str) -> tuple[str, ...]:
        values = {"apiUrl": API, "grantType": "client_credentials", "clientId": "c", "clientSecret": "s"}
        values.update(overrides)
        return InitParams.from_params(values).identity_fields()

    # the client id alone is not a secret: someone knowing it never shares the cached token
    assert cc() != cc(clientSecret="guess")
    assert cc() != cc(tokenEndpointHostname="https://other.my.salesforce.com")


def test_identity_labels_keep_grants_apart() -> None:
    assert _identity_label("refresh_token") == _IDENTITY_LABEL  # existing caches stay valid
    assert len({_identity_label(g) for g in grants.GRANT_TYPES}) == len(grants.GRANT_TYPES)


def test_secret_parameters_are_never_printed(key_file: Path) -> None:
    params = InitParams.from_params(
        {
            "apiUrl": API,
            "grantType": "password",
            "clientId": "c",
            "clientSecret": "s3cr3t-value",
            "username": "u@acme.com",
            "password": "pa55word-and-token",
        }
    )
    assert "pa55word-and-token" not in repr(params) and "s3cr3t-value" not in repr(params)


@pytest.mark.parametrize(
    ("grant", "description", "names"),
    [
        ("jwt_bearer", "invalid assertion", "privateKeyFile"),
        ("jwt_bearer", "audience is invalid", "audience"),
        ("jwt_bearer", "user hasn't approved this consumer", "username"),
        ("client_credentials", "no client credentials user enabled", "run-as user"),
        ("password", "authentication failure", "security token"),
        ("refresh_token", "expired access/refresh token", "refreshToken"),
    ],
)
def test_refusals_say_which_parameter_to_check(grant: str, description: str, names: str) -> None:
    assert names in grants.advice(grant, description)


def test_an_oversized_key_is_refused_before_parsing(tmp_path: Path) -> None:
    huge = b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 20_000 + b"\n-----END PRIVATE KEY-----\n"
    with pytest.raises(AuthError, match=r"^privateKey: 20\d+ bytes is too large for a PEM private key$"):
        load_key(huge, "privateKey")
    path = tmp_path / "huge.pem"
    path.write_bytes(huge)
    with pytest.raises(AuthError, match="too large"):
        InitParams.from_params(jwt_params(path))
