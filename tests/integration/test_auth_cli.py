"""`sfbulk load` / `sfbulk extract` choose the grant from flags, SFBULK_* variables or --config (docs/auth.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sfbulk.cli import cli

ENV_CLEAN = {name: "" for name in ("SFBULK_ACCESS_TOKEN", "SFBULK_REFRESH_TOKEN", "SFBULK_CONFIG")}


def extract(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    out = tmp_path / "out.csv"
    base = ["extract", "SELECT Id FROM Contact", "--out", str(out), "--no-progress"]
    base += ["--registry", str(tmp_path / "registry")]
    return CliRunner().invoke(cli, [*base, *args], env={**ENV_CLEAN, **(env or {})}, catch_exceptions=False)


def test_extract_with_the_jwt_grant_from_environment_variables(emulator, tmp_path: Path) -> None:
    env = {
        "SFBULK_API_URL": emulator.base_url,
        "SFBULK_TOKEN_ENDPOINT": emulator.base_url,
        "SFBULK_GRANT_TYPE": "jwt_bearer",
        "SFBULK_CLIENT_ID": emulator.credentials["client_id"],
        "SFBULK_USERNAME": "integration@sfbulk.local",
        "SFBULK_PRIVATE_KEY": Path(emulator.jwt_private_key_file).read_text().replace("\n", "\\n"),
    }
    before = emulator.oauth.subject_counts["integration@sfbulk.local"]
    result = extract(tmp_path, env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.csv").is_file()
    assert emulator.oauth.subject_counts["integration@sfbulk.local"] == before + 1
    assert "PRIVATE KEY" not in result.output


def test_extract_with_client_credentials_from_flags_and_config(emulator, tmp_path: Path) -> None:
    config = tmp_path / "sf.yaml"
    config.write_text(
        f"api_url: {emulator.base_url}\ngrant_type: client_credentials\n"
        f"client_id: {emulator.credentials['client_id']}\nclient_secret: {emulator.credentials['client_secret']}\n"
    )
    config.chmod(0o600)
    before = emulator.oauth.grant_counts["client_credentials"]
    result = extract(tmp_path, "--config", str(config))
    assert result.exit_code == 0, result.output
    assert emulator.oauth.grant_counts["client_credentials"] == before + 1
    assert emulator.credentials["client_secret"] not in result.output


def test_load_with_the_password_grant_from_flags(emulator, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("LastName\nAda\n")
    creds = emulator.credentials
    args = [
        "load",
        str(src),
        "--object",
        "Contact",
        "--no-progress",
        "--registry",
        str(tmp_path / "registry"),
    ]
    args += [
        "--api-url",
        emulator.base_url,
        "--token-endpoint",
        emulator.base_url,
        "--grant-type",
        "password",
    ]
    args += ["--client-id", creds["client_id"], "--username", creds["username"]]
    env = {**ENV_CLEAN, "SFBULK_CLIENT_SECRET": creds["client_secret"], "SFBULK_PASSWORD": creds["password"]}
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert creds["password"] not in result.output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {
                "SFBULK_GRANT_TYPE": "jwt_bearer",
                "SFBULK_CLIENT_ID": "c",
                "SFBULK_USERNAME": "u",
                "SFBULK_PRIVATE_KEY_FILE": "/nonexistent/key.pem",
            },
            "SFBULK_PRIVATE_KEY_FILE /nonexistent/key.pem: no such file",
        ),
        (
            {"SFBULK_GRANT_TYPE": "jwt_bearer", "SFBULK_CLIENT_ID": "c"},
            "SFBULK_GRANT_TYPE jwt_bearer needs --username / SFBULK_USERNAME",
        ),
        ({"SFBULK_GRANT_TYPE": "saml"}, "SFBULK_GRANT_TYPE 'saml' is not one of"),
        (
            {
                "SFBULK_GRANT_TYPE": "jwt_bearer",
                "SFBULK_CLIENT_ID": "c",
                "SFBULK_USERNAME": "u",
                "SFBULK_PRIVATE_KEY": "not a key",
            },
            "SFBULK_PRIVATE_KEY: not a PEM private key",
        ),
    ],
)
def test_bad_grant_settings_name_the_variable(emulator, tmp_path: Path, env, message) -> None:
    result = extract(tmp_path, env={"SFBULK_API_URL": emulator.base_url, **env})
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_a_refused_assertion_exits_3_naming_the_setting(emulator, tmp_path: Path) -> None:
    env = {
        "SFBULK_API_URL": emulator.base_url,
        "SFBULK_TOKEN_ENDPOINT": emulator.base_url,
        "SFBULK_GRANT_TYPE": "jwt_bearer",
        "SFBULK_CLIENT_ID": emulator.credentials["client_id"],
        "SFBULK_USERNAME": "nobody@sfbulk.local",
        "SFBULK_PRIVATE_KEY_FILE": emulator.jwt_private_key_file,
    }
    result = extract(tmp_path, env=env)
    assert result.exit_code == 3, result.output
    assert "user hasn't approved this consumer" in result.output
    assert "check SFBULK_USERNAME" in result.output


def test_the_cached_token_note_speaks_of_the_grant(emulator, tmp_path: Path) -> None:
    from sfbulk.cli.bulk import cached_token_note
    from sfbulk.connector.connection import Connector
    from sfbulk.registry import FileRegistry

    params = {
        "apiUrl": emulator.base_url,
        "tokenEndpointHostname": emulator.base_url,
        "grantType": "jwt_bearer",
        "clientId": emulator.credentials["client_id"],
        "username": "demo@sfbulk.local",
        "privateKeyFile": emulator.jwt_private_key_file,
    }
    registry = tmp_path / "registry"
    assert cached_token_note(params, str(registry)) is None  # nothing cached yet: the grant will run
    with Connector.load().connection(registry=FileRegistry(registry), **params) as conn:
        assert conn.invoke("createJob", operation="insert", object="Contact", contentType="CSV").status == 201
    note = cached_token_note(params, str(registry))
    assert (
        note is not None
        and "the given jwt_bearer credentials are used only when Salesforce rejects it" in note
    )
    other_user = {**params, "username": "integration@sfbulk.local"}
    assert cached_token_note(other_user, str(registry)) is None  # another subject: not its token
