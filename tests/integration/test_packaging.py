"""A non-editable install carries the connector bundle, and setup.cfg lists every sub-package."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _declared_packages() -> set[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return {line.strip() for line in parser["options"]["packages"].splitlines() if line.strip()}


def test_setup_cfg_lists_every_subpackage() -> None:
    on_disk = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "sfbulk").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    declared = {name for name in _declared_packages() if not name.startswith("sfbulk.bundle")}
    assert on_disk == declared, f"add/remove in setup.cfg [options] packages: {on_disk ^ declared}"


@pytest.mark.slow
def test_non_editable_install_finds_the_bundle_from_another_directory(tmp_path: Path) -> None:
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    for name in ("connector.yaml", "operations/createJob.yaml", "templates"):
        assert (target / "sfbulk" / "bundle" / name).exists(), name

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import sfbulk, sfbulk.connector.connection as c\n"
        "conn = c.Connector.load()\n"
        "print(sfbulk.__file__)\n"
        "print(sorted(conn.operations))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=elsewhere, capture_output=True, text=True, env=env, timeout=60
    )
    assert run.returncode == 0, run.stderr[-2000:]
    module_file, operations = run.stdout.splitlines()[:2]
    assert module_file.startswith(str(target)), "the probe must import the installed copy, not the checkout"
    for operation in ("init", "createJob", "getJob", "updateJob"):
        assert f"'{operation}'" in operations

    cli = subprocess.run(
        [sys.executable, "-m", "sfbulk", "--help"], cwd=elsewhere, capture_output=True, text=True, env=env, timeout=60
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "emulator" in cli.stdout and "serve" in cli.stdout
