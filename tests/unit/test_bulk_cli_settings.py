"""Connection settings for sfbulk load/extract: flags > SFBULK_* environment > --config file."""

from __future__ import annotations

import click
import pytest

from sfbulk.bulk.extract import object_of, pk_chunking_header
from sfbulk.cli.bulk import resolve_settings
from sfbulk.errors import BulkInputError


def test_precedence_flags_env_config(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "sf.yaml"
    cfg.write_text(
        "api_url: https://from-config.example\nclient_id: cfg-id\nclient_secret: cfg-secret\n"
        "refresh_token: cfg-refresh\nregistry: /tmp/reg\n"
    )
    monkeypatch.setenv("SFBULK_CLIENT_ID", "env-id")
    kwargs = {"config_file": str(cfg), "api_url": "https://from-flag.example", "client_id": None}
    params = resolve_settings(kwargs)
    assert params["apiUrl"] == "https://from-flag.example"
    assert params["clientId"] == "env-id"
    assert params["clientSecret"] == "cfg-secret" and params["refreshToken"] == "cfg-refresh"
    assert kwargs["registry_dir"] == "/tmp/reg"


def test_clear_errors_for_missing_or_unknown_settings(tmp_path, monkeypatch) -> None:
    for var in ("SFBULK_API_URL", "SFBULK_ACCESS_TOKEN", "SFBULK_REFRESH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(click.UsageError, match="no Salesforce URL"):
        resolve_settings({})
    with pytest.raises(click.UsageError, match="no credentials"):
        resolve_settings({"api_url": "https://x.example"})
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("api_url: https://x.example\npasswd: nope\n")
    with pytest.raises(click.UsageError, match="unknown setting.*passwd"):
        resolve_settings({"config_file": str(cfg)})


def test_extract_helpers() -> None:
    assert object_of("select Id from Invoice__c where x = 1") == "Invoice__c"
    assert pk_chunking_header(None) is None
    assert pk_chunking_header("true") == "true"
    assert pk_chunking_header("50000") == "chunkSize=50000"
    with pytest.raises(BulkInputError):
        pk_chunking_header("300000")
    with pytest.raises(BulkInputError, match="FROM"):
        object_of("SELECT Id")
