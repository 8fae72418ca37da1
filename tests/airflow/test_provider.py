"""The provider as Airflow sees it: found through the entry point, the ``sfbulk`` connection type and
its form, and a hook that reads its connection from an ``AIRFLOW_CONN_…`` variable (JSON form)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import connection_json


def test_airflow_finds_the_provider_its_connection_type_and_form() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    from sfbulk.airflow.settings import FIELDS

    manager = ProvidersManager()  # the API server's: the connection form
    assert "sfbulk" in manager.providers
    hook = ProvidersManagerTaskRuntime().hooks["sfbulk"]  # the task runtime's: the hook
    assert hook is not None
    assert hook.hook_class_name == "sfbulk.airflow.hooks.SfBulkHook"
    assert hook.connection_id_attribute_name == "sfbulk_conn_id"
    widgets = {name for name in manager.connection_form_widgets if name.startswith("extra__sfbulk__")}
    assert widgets == {f"extra__sfbulk__{f.name}" for f in FIELDS if f.name}
    secret = manager.connection_form_widgets["extra__sfbulk__refresh_token"]
    assert secret.is_sensitive
    behaviour = manager.field_behaviours["sfbulk"]
    assert behaviour["relabeling"] == {
        "host": "Instance URL",
        "login": "Client id",
        "password": "Client secret",
    }


def test_import_sfbulk_imports_no_airflow() -> None:
    """The core keeps no Airflow dependency: the library, the pipeline and the CLI load without it."""
    code = (
        "import sys, sfbulk\n"
        "sfbulk.load_csv, sfbulk.extract, sfbulk.Engine, sfbulk.Connector\n"
        "import sfbulk.cli, sfbulk.server.app, sfbulk.bulk.v2.load\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith(('airflow.', 'sfbulk.airflow'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_hook_reads_its_connection_from_an_airflow_conn_variable(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sfbulk.airflow.hooks import SfBulkHook
    from sfbulk.bulk.load import LoadOptions, load_csv

    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_PROD", connection_json(emulator, tmp_path / "registry"))
    src = tmp_path / "accounts.csv"
    src.write_text("Name\nHook A\nHook B\n", encoding="utf-8")
    hook = SfBulkHook("salesforce_prod")
    assert hook.settings().init["apiUrl"] == emulator.base_url
    for api in (1, 2):
        with hook.get_conn(api) as conn:
            options = LoadOptions(object="Account", success_path=str(tmp_path / f"ok{api}.csv"))
            if api == 2:
                from sfbulk.bulk.v2.load import load_csv_v2

                summary = load_csv_v2(conn, str(src), options)
            else:
                summary = load_csv(conn, str(src), options)
        assert (summary.rows, summary.succeeded) == (2, 2)
    # the token the grant obtained is cached in the connection's registry, shared by later tasks
    assert any((tmp_path / "registry").rglob("accessToken"))


def test_a_connection_of_another_type_or_with_a_misspelt_field_is_refused_by_name(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sfbulk.airflow.hooks import SfBulkHook
    from sfbulk.errors import ConfigError

    wrong = json.loads(connection_json(emulator, tmp_path / "registry"))
    wrong["conn_type"] = "http"
    monkeypatch.setenv("AIRFLOW_CONN_WRONG_TYPE", json.dumps(wrong))
    with pytest.raises(ConfigError, match="'wrong_type' is of type 'http'"):
        SfBulkHook("wrong_type").get_conn()

    typo = json.loads(connection_json(emulator, tmp_path / "registry"))
    typo["extra"]["refresh_tokn"] = typo["extra"].pop("refresh_token")
    monkeypatch.setenv("AIRFLOW_CONN_TYPO", json.dumps(typo))
    with pytest.raises(ConfigError, match="unknown extra field 'refresh_tokn'"):
        SfBulkHook("typo").get_conn()


def test_a_missing_connection_is_airflows_own_not_found_error() -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    from sfbulk.airflow.hooks import SfBulkHook

    with pytest.raises(AirflowNotFoundException, match="no_such_connection"):
        SfBulkHook("no_such_connection").get_conn()


def test_the_connection_test_button_reports_good_and_bad_credentials(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sfbulk.airflow.hooks import SfBulkHook

    monkeypatch.setenv("AIRFLOW_CONN_GOOD", connection_json(emulator, tmp_path / "r1"))
    assert SfBulkHook("good").test_connection() == (True, "Salesforce accepted the connection's credentials")
    bad = json.loads(connection_json(emulator, tmp_path / "r2"))
    bad["extra"]["refresh_token"] = "revoked-token"
    monkeypatch.setenv("AIRFLOW_CONN_BAD", json.dumps(bad))
    ok, message = SfBulkHook("bad").test_connection()
    assert not ok and "invalid_grant" in message and "revoked-token" not in message
