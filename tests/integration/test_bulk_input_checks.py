"""Odd input and bad headers through the real CLI against the emulator: every row loaded, or refused
before a job exists with a message naming the file, the column and the flag."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from fixtures.emulator import cli_env

from sfbulk.cli import cli


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def jobs(emu: Any) -> int:
    return int(emu.store.reader().execute("SELECT COUNT(*) FROM jobs").fetchone()[0])


def contacts(emu: Any) -> list[tuple[str, ...]]:
    table = emu.schema.get("Contact").table
    return list(
        emu.store.reader().execute(
            f'SELECT "LastName", "Email" FROM {table} WHERE "IsDeleted" = 0 ORDER BY "Email"'
        )
    )


def load(emu: Any, tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["load", *args, "--no-progress"], env=cli_env(emu, tmp_path))


def test_cr_only_file_loads_every_row(emulator_factory: Any, tmp_path: Path) -> None:
    """Excel's "CSV (Macintosh)": 1,000 rows, CR line ends, a quoted CR/LF kept as data."""
    emu = emulator_factory()
    src = tmp_path / "mac.csv"
    rows = [f'L{i},mac{i:04d}@example.com,"line one\rline two, {i}"' for i in range(1_000)]
    src.write_bytes(("LastName,Email,Description\r" + "\r".join(rows) + "\r").encode())
    result = load(emu, tmp_path, str(src), "--object", "Contact", "--batch-size", "300")
    assert result.exit_code == 0, result.output
    assert "1,000 rows in 4 batches, 1,000 succeeded, 0 failed" in result.output
    assert len(contacts(emu)) == 1_000
    ok = read_csv(tmp_path / "mac.success.csv")
    assert ok[0][:3] == ["LastName", "Email", "Description"] and len(ok) == 1_001
    assert [r[1] for r in ok[1:]] == [f"mac{i:04d}@example.com" for i in range(1_000)]  # input order
    assert ok[1][2] == "line one\rline two, 0"  # the quoted CR is data, copied as it was


def test_mixed_line_ends_load_every_row(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "mixed.csv"
    ends = ["\r\n", "\n", "\r"]
    src.write_bytes(
        (
            "LastName,Email\r\n" + "".join(f"L{i},mix{i:03d}@example.com{ends[i % 3]}" for i in range(300))
        ).encode()
    )
    result = load(emu, tmp_path, str(src), "--object", "Contact", "--batch-size", "70")
    assert result.exit_code == 0, result.output
    assert "300 rows in 5 batches, 300 succeeded" in result.output
    assert [e for _, e in contacts(emu)] == [f"mix{i:03d}@example.com" for i in range(300)]


def test_bad_headers_are_refused_before_any_job(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    src = tmp_path / "c.csv"
    cases = [
        (
            ["--operation", "update"],
            "LastName,Email\nLee,a@x\n",
            ["c.csv", "--operation update needs an Id column", "LastName, Email"],
        ),
        (["--operation", "delete"], "Email\na@x\n", ["c.csv", "--operation delete needs an Id column"]),
        (
            ["--operation", "upsert", "--external-id", "Email"],
            "LastName\nLee\n",
            ["c.csv", "--external-id Email needs a Email column"],
        ),
        (
            [],
            "LastName,Email,lastname\nLee,a@x,Lee\n",
            ["c.csv", "columns 1 and 3 are 'LastName' and 'lastname'", "ignore case"],
        ),
        ([], "LastName,,Email\nLee,,a@x\n", ["c.csv", "column 2 of the header has no name"]),
        (["--success", str(src)], "LastName\nLee\n", ["is the input file", "--success"]),
    ]
    for args, text, wanted in cases:
        src.write_text(text)
        result = load(emu, tmp_path, str(src), "--object", "Contact", *args)
        assert result.exit_code == 2, (args, result.output)
        assert all(w in result.output for w in wanted), (args, result.output)
        assert "Traceback" not in result.output
    assert jobs(emu) == 0 and contacts(emu) == []
    assert src.read_text() == "LastName\nLee\n"  # the input named as --success was not touched


def test_load_then_update_then_delete_what_was_loaded(emulator_factory: Any, tmp_path: Path) -> None:
    """A success file is a valid input: sf__Id becomes Id, the sf__ columns are not sent."""
    emu = emulator_factory()
    src = tmp_path / "c.csv"
    src.write_text("LastName,Email\n" + "".join(f'"L, {i}",wf{i:02d}@example.com\n' for i in range(25)))
    assert load(emu, tmp_path, str(src), "--object", "Contact", "--batch-size", "10").exit_code == 0
    success = tmp_path / "c.success.csv"
    # the user edits the success file, then sends it back as an update
    rows = read_csv(success)
    rows[1:] = [[f"Renamed{n}", *r[1:]] for n, r in enumerate(rows[1:])]
    with success.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    result = load(
        emu, tmp_path, str(success), "--object", "Contact", "--operation", "update", "--batch-size", "10"
    )
    assert result.exit_code == 0, result.output
    assert "25 rows in 3 batches, 25 succeeded, 0 failed" in result.output
    assert "sf__Id is sent as Id" in result.output and "not sent: sf__Created, sf__Error" in result.output
    assert [n for n, _ in contacts(emu)] == [f"Renamed{n}" for n in range(25)]
    upd = read_csv(tmp_path / "c.success.success.csv")
    assert upd[0] == ["LastName", "Email", "Id", "sf__Id", "sf__Created", "sf__Error"]
    assert all(r[2] == r[3] and r[2].startswith("003") for r in upd[1:])
    # and delete them, straight from the update's success file (only Id is sent)
    result = load(
        emu, tmp_path, str(tmp_path / "c.success.success.csv"), "--object", "Contact", "--operation", "delete"
    )
    assert result.exit_code == 0, result.output
    assert "25 succeeded" in result.output, result.output
    assert contacts(emu) == []
    assert read_csv(tmp_path / "c.success.success.success.csv")[0] == [
        "Id",
        "sf__Id",
        "sf__Created",
        "sf__Error",
    ]


def test_extract_with_no_records_writes_the_header(emulator_factory: Any, tmp_path: Path) -> None:
    emu = emulator_factory()
    out = tmp_path / "none.csv"
    for extra in ([], ["--pk-chunking", "1000"]):
        result = CliRunner().invoke(
            cli,
            [
                "extract",
                "SELECT Id, Email FROM Contact WHERE Email = 'nobody'",
                "--out",
                str(out),
                "--no-progress",
                *extra,
            ],
            env=cli_env(emu, tmp_path),
        )
        assert result.exit_code == 0, result.output
        assert "0 records" in result.output
        assert out.read_bytes() == b'"Id","Email"\n'


def test_verbose_says_when_a_cached_token_made_the_given_one_irrelevant(
    emulator_factory: Any, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    emu = emulator_factory()
    src = tmp_path / "v.csv"
    src.write_text("LastName\nLee\n")
    env = {**os.environ, **cli_env(emu, tmp_path)}
    assert load(emu, tmp_path, str(src), "--object", "Contact").exit_code == 0  # caches a token
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "-v",
            "load",
            str(src),
            "--object",
            "Contact",
            "--no-progress",
            "--access-token",
            "a-token-of-mine",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "using the access token cached for these credentials in" in proc.stderr
    assert "the access token given with --access-token is not used" in proc.stderr
    assert "a-token-of-mine" not in proc.stderr
    # other credentials never get that token (identity-bound cache), so -v must not claim they do
    other = subprocess.run(
        [
            sys.executable,
            "-m",
            "sfbulk",
            "-v",
            "load",
            str(src),
            "--object",
            "Contact",
            "--no-progress",
            "--client-secret",
            "not-the-demo-secret",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert other.returncode == 3, other.stderr
    assert "using the access token cached" not in other.stderr
    assert "invalid_client" in other.stderr
