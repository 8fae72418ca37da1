"""sfbulk load/extract messages name what the user wrote: flags, variables, their own files."""

from __future__ import annotations

import os
import time

import pytest
from click.testing import CliRunner

from sfbulk.cli import cli
from sfbulk.cli.bulk import cached_token_note, cli_message, user_path
from sfbulk.registry import FileRegistry

ENV = {
    "SFBULK_API_URL": "http://127.0.0.1:9",
    "SFBULK_ACCESS_TOKEN": "x",
    "SFBULK_REFRESH_TOKEN": "",
    "SFBULK_HTTP_TIMEOUT": "",
    "SFBULK_CA_FILE": "",
    "SFBULK_CONFIG": "",
}


@pytest.mark.parametrize(
    "args, wanted",
    [
        (["--timeout", "-5"], "'--timeout': -5.0 is not in the range x>0"),
        (["--timeout", "0"], "'--timeout'"),
        (["--http-timeout", "0"], "'--http-timeout': 0.0 is not in the range 0<x<=86400"),
        (["--concurrency", "0"], "'--concurrency': 0 is not in the range 1<=x<=32"),
        (["--batch-size", "10001"], "'--batch-size'"),
    ],
)
def test_out_of_range_flags_are_usage_errors(tmp_path, args: list[str], wanted: str) -> None:
    src = tmp_path / "c.csv"
    src.write_text("LastName\nLee\n")
    result = CliRunner().invoke(cli, ["load", str(src), "--object", "Contact", *args], env=ENV)
    assert result.exit_code == 2 and wanted in result.output, result.output
    out = tmp_path / "o.csv"
    if args[0] != "--batch-size":
        result = CliRunner().invoke(
            cli, ["extract", "SELECT Id FROM Contact", "--out", str(out), *args], env=ENV
        )
        assert result.exit_code == 2 and wanted in result.output, result.output


def test_settings_from_the_environment_and_config_name_their_origin(tmp_path) -> None:
    src = tmp_path / "c.csv"
    src.write_text("LastName\nLee\n")
    run = CliRunner().invoke
    result = run(cli, ["load", str(src), "--object", "Contact"], env={**ENV, "SFBULK_HTTP_TIMEOUT": "0"})
    assert (
        result.exit_code == 2 and "SFBULK_HTTP_TIMEOUT must be a number of seconds above 0" in result.output
    )
    result = run(cli, ["load", str(src), "--object", "Contact"], env={**ENV, "SFBULK_CA_FILE": str(tmp_path)})
    assert result.exit_code == 2 and f"SFBULK_CA_FILE {tmp_path} is a folder" in result.output
    result = run(
        cli, ["load", str(src), "--object", "Contact", "--ca-file", str(tmp_path / "none.pem")], env=ENV
    )
    assert result.exit_code == 2 and "--ca-file" in result.output and "does not exist" in result.output
    cfg = tmp_path / "sf.yaml"
    cfg.write_text("http_timeout: -1\n")
    result = run(cli, ["load", str(src), "--object", "Contact", "--config", str(cfg)], env=ENV)
    assert result.exit_code == 2 and f"http_timeout in --config {cfg} must be" in result.output
    cfg.write_text("http_timeout: 30\nhttp_timeout: 5\n")  # the last one must not silently win
    result = run(cli, ["load", str(src), "--object", "Contact", "--config", str(cfg)], env=ENV)
    assert result.exit_code == 2, result.output
    assert (
        f"--config {cfg} is not valid YAML" in result.output
        and "duplicate key 'http_timeout'" in result.output
    )
    # a value only the connector checks: still exit 2, named by its flag, not its init parameter
    result = run(cli, ["load", str(src), "--object", "Contact", "--api-version", "abc"], env=ENV)
    assert result.exit_code == 2, result.output
    assert "--api-version 'abc' is not a version" in result.output and "apiVersion" not in result.output
    result = run(cli, ["load", str(src), "--object", "Contact"], env={**ENV, "SFBULK_API_URL": "ftp://x"})
    assert result.exit_code == 2 and "SFBULK_API_URL must be an http(s) URL" in result.output


def test_connector_parameter_names_become_flags_or_variables() -> None:
    assert cli_message(
        "init: timeout must be a number of seconds (0 < timeout <= 86400), got '0'",
        {"timeout": "SFBULK_HTTP_TIMEOUT"},
    ).startswith("SFBULK_HTTP_TIMEOUT must be")
    msg = cli_message(
        "TLS handshake with x failed; pass the server's CA bundle (caFile) if it uses a private CA"
    )
    assert "(--ca-file / SFBULK_CA_FILE)" in msg and "caFile" not in msg
    msg = cli_message(
        "token refresh failed: invalid_grant; check refreshToken, clientId, clientSecret and "
        "tokenEndpointHostname",
        {"clientId": "--client-id"},
    )
    assert msg.endswith(
        "check --refresh-token / SFBULK_REFRESH_TOKEN, --client-id, --client-secret / "
        "SFBULK_CLIENT_SECRET and --token-endpoint / SFBULK_TOKEN_ENDPOINT"
    )
    assert (
        cli_message("init: parameter 'apiUrl' is required")
        == "parameter --api-url / SFBULK_API_URL is required"
    )
    assert cli_message("the job timed out") == "the job timed out"  # plain words are left alone


def test_file_system_errors_name_the_users_path() -> None:
    assert user_path(os.path.join("out", "contacts.csv.part")) == os.path.join("out", "contacts.csv")
    assert user_path(os.path.join("/data", ".sfbulk-x1y2", "3.csv")).startswith("/data (the output folder")
    assert user_path("/data/contacts.csv") == "/data/contacts.csv"
    assert user_path("/nonexist/tmpl17k3akf").startswith("/nonexist (the output folder")
    assert user_path(None) == ""


def test_cached_token_note_says_when_the_given_credentials_are_not_used(tmp_path) -> None:
    from sfbulk.connector.auth import InitParams, TokenManager
    from sfbulk.transport import RequestsTransport

    reg = str(tmp_path / "reg")
    params = {"apiUrl": "https://x.example", "refreshToken": "r", "clientId": "c", "accessToken": "given"}
    assert cached_token_note(params, reg) is None  # nothing cached: the given token seeds it

    def cache(stamp_ms: int) -> None:  # what a connection with these credentials stores
        with RequestsTransport() as unused:
            TokenManager(InitParams.from_params(params), FileRegistry(reg), unused).store(
                "cached-secret", stamp_ms=stamp_ms
            )

    cache(int(time.time() * 1000) - 90_000)
    note = cached_token_note(params, reg, {"accessToken": "--access-token"})
    assert note is not None and "stored 90 s ago" in note and "given with --access-token is not used" in note
    assert "cached-secret" not in note and "given" in note
    seeded = cached_token_note({**params, "accessToken": "-"}, reg)
    assert seeded is not None and "used only when Salesforce rejects it" in seeded
    assert cached_token_note({**params, "apiUrl": "https://other.example"}, reg) is None
    assert cached_token_note({**params, "refreshToken": "another"}, reg) is None  # another identity's token
    assert cached_token_note({"apiUrl": "https://x.example", "accessToken": "a"}, reg) is None
    cache(int(time.time() * 1000) - 4_000_000)  # older than intervalTime
    assert cached_token_note(params, reg) is None


def test_soql_header_for_an_empty_result() -> None:
    from sfbulk.bulk.extract import soql_header

    assert soql_header("SELECT Id, Email FROM Contact WHERE Email = 'x'") == b'"Id","Email"\n'
    assert (
        soql_header("select Id,\n  Account.Name , toLabel(Status__c) from Case")
        == b'"Id","Account.Name","toLabel(Status__c)"\n'
    )
    assert soql_header("SELECT FROM Contact") is None and soql_header("Id FROM Contact") is None
