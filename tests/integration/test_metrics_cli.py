"""`sfbulk load` / `extract` against the emulator: API usage in the summary, and `--json-summary`."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import requests
from click.testing import CliRunner
from fixtures.emulator import cli_env

from sfbulk.cli import cli


def write_contacts(path: Path, n: int, missing_last_name: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(["FirstName", "LastName", "Email"])
        for i in range(n):
            w.writerow([f"F{i}", "" if i in missing_last_name else f"L{i}", f"s{i}@example.com"])


def emulator_api_count(emu: Any) -> int:
    """The API requests the emulator counted before this call (read from its Sforce-Limit-Info)."""
    answer = requests.get(f"{emu.base_url}/services/async/62.0/job/750000000000000AAA", timeout=10)
    return int(answer.headers["Sforce-Limit-Info"].removeprefix("api-usage=").split("/")[0]) - 1


def test_load_and_extract_print_api_usage_and_write_the_json_summary(emulator_factory: Any, tmp_path: Path):
    emu = emulator_factory()
    src = tmp_path / "contacts.csv"
    write_contacts(src, 250, missing_last_name={7, 42})
    summary_path = tmp_path / "load.json"
    runner = CliRunner()
    env = cli_env(emu, tmp_path)
    result = runner.invoke(
        cli,
        [
            "load",
            str(src),
            "--object",
            "Contact",
            "--batch-size",
            "100",
            "--no-progress",
            "--json-summary",
            str(summary_path),
        ],
        env=env,
    )
    assert result.exit_code == 1, result.output  # two rows failed
    used = emulator_api_count(emu)
    assert f"API usage: {used:,} of 15,000 API requests used" in result.output
    doc = json.loads(summary_path.read_text())
    job_id = doc["job_ids"][0]
    assert len(doc["job_ids"]) == 1 and job_id.startswith("750")
    assert {
        k: doc[k] for k in ("version", "command", "status", "exit_code", "bulk_api", "object", "operation")
    } == {
        "version": 1,
        "command": "load",
        "status": "rows_failed",
        "exit_code": 1,
        "bulk_api": "1",
        "object": "Contact",
        "operation": "insert",
    }
    assert (doc["rows"], doc["succeeded"], doc["failed"], doc["batches"], doc["unsent_rows"]) == (
        250,
        248,
        2,
        3,
        0,
    )
    assert doc["input_file"] == str(src)
    assert doc["success_file"] == str(tmp_path / "contacts.success.csv")
    assert doc["error_file"] == str(tmp_path / "contacts.error.csv")
    assert Path(doc["success_file"]).exists() and Path(doc["error_file"]).exists()
    assert doc["top_errors"] and doc["top_errors"][0]["count"] == 2
    assert doc["top_errors"][0]["reason"].startswith("REQUIRED_FIELD_MISSING")
    assert doc["api_usage"] == {"host": "127.0.0.1", "used": used, "limit": 15000}
    assert 0 < doc["job_seconds"] <= doc["elapsed_seconds"] < 120
    assert doc["started_at"] <= doc["finished_at"] and doc["resumed"] is False
    assert emu.credentials["client_secret"] not in summary_path.read_text()

    out = tmp_path / "out.csv"
    extract_summary = tmp_path / "extract.json"
    result = runner.invoke(
        cli,
        [
            "extract",
            "SELECT Id, Email FROM Contact",
            "--out",
            str(out),
            "--no-progress",
            "--json-summary",
            str(extract_summary),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    used = emulator_api_count(emu)
    assert f"API usage: {used:,} of 15,000 API requests used" in result.output
    doc = json.loads(extract_summary.read_text())
    assert (doc["command"], doc["status"], doc["exit_code"], doc["records"], doc["out_file"]) == (
        "extract",
        "succeeded",
        0,
        248,
        str(out),
    )
    assert doc["query"] == "SELECT Id, Email FROM Contact" and doc["job_ids"][0].startswith("750")
    assert doc["result_files"] >= 1 and doc["bytes_written"] == out.stat().st_size
    assert doc["api_usage"] == {"host": "127.0.0.1", "used": used, "limit": 15000}


def test_a_failed_run_writes_a_failure_summary(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "contacts.csv"
    write_contacts(src, 5)
    summary_path = tmp_path / "s.json"
    env = {**cli_env(emu, tmp_path), "SFBULK_CLIENT_SECRET": "not-the-secret"}
    result = CliRunner().invoke(
        cli,
        ["load", str(src), "--object", "Contact", "--no-progress", "--json-summary", str(summary_path)],
        env=env,
    )
    assert result.exit_code == 3, result.output
    doc = json.loads(summary_path.read_text())
    assert (doc["command"], doc["status"], doc["exit_code"], doc["job_ids"]) == ("load", "failed", 3, [])
    assert "token refresh" in doc["error"] and "not-the-secret" not in summary_path.read_text()
    assert doc["error"] in result.output


def test_an_unwritable_summary_path_is_refused_before_any_work(emulator: Any, tmp_path: Path) -> None:
    src = tmp_path / "contacts.csv"
    write_contacts(src, 5)
    missing = tmp_path / "no-such-folder" / "s.json"
    result = CliRunner().invoke(
        cli,
        ["load", str(src), "--object", "Contact", "--json-summary", str(missing)],
        env=cli_env(emulator, tmp_path),
    )
    assert result.exit_code == 2
    assert f"--json-summary {missing}: the folder {missing.parent} does not exist" in result.output
    assert not (tmp_path / "contacts.success.csv").exists()


def test_a_usage_error_is_in_the_summary_too(emulator: Any, tmp_path: Path) -> None:
    summary_path = tmp_path / "s.json"
    result = CliRunner().invoke(
        cli,
        ["load", "--object", "Contact", "--json-summary", str(summary_path)],
        env=cli_env(emulator, tmp_path),
    )
    assert result.exit_code == 2
    doc = json.loads(summary_path.read_text())
    assert (doc["status"], doc["exit_code"], doc["job_ids"], doc["journal"]) == ("failed", 2, [], None)
    assert doc["error"] == "give either CSV_FILE or --retry-failed ERROR_FILE (exactly one)"
    assert doc["error"] in result.output
