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
    for name in (
        "connector.yaml",
        "operations/createJob.yaml",
        "templates",
        "connectors/salesforcebulkv2/connector.yaml",
        "connectors/salesforcebulkv2/operations/uploadJobData.yaml",
        "connectors/salesforcebulkv2/templates/createJob.json.j2",
    ):
        assert (target / "sfbulk" / "bundle" / name).exists(), name

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import sfbulk, sfbulk.connector.connection as c\n"
        "conn = c.Connector.load()\n"
        "print(sfbulk.__file__)\n"
        "print(sorted(conn.operations))\n"
        "v2 = c.Connector.load('salesforcebulkv2')\n"
        "print(v2.definition.root, len(v2.operations), sorted(c.bundled_connectors()))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=elsewhere, capture_output=True, text=True, env=env, timeout=60
    )
    assert run.returncode == 0, run.stderr[-2000:]
    module_file, operations, v2_line = run.stdout.splitlines()[:3]
    assert v2_line.startswith(str(target)) and " 18 " in v2_line, (
        v2_line
    )  # init, the 16 WSO2 v2 operations, getQueryJobResultPages
    assert "'salesforce_bulkapi_v2', 'salesforcebulk', 'salesforcebulkv2'" in v2_line
    assert module_file.startswith(str(target)), "the probe must import the installed copy, not the checkout"
    for operation in ("init", "createJob", "getJob", "updateJob"):
        assert f"'{operation}'" in operations

    cli = subprocess.run(
        [sys.executable, "-m", "sfbulk", "--help"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "emulator" in cli.stdout and "serve" in cli.stdout
