"""The import rules in .importlinter hold for sfbulk, and they can fail.

`lint-imports` (import-linter) reads the source, it imports nothing, so this is fast (well under a
second a run). The failing cases run it on a copy of the package with one import added that breaks
one rule, so a contract that could never fail (a typo in a module name, a wildcard matching
nothing) would show here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CONTRACTS = REPO / ".importlinter"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(package_root: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports with the project's contracts on the `sfbulk` found below `package_root`."""
    env = dict(os.environ, PYTHONPATH=str(package_root))
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(CONTRACTS)],
        cwd=package_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_rules_hold() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    assert "BROKEN" not in result.stdout


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the sfbulk sources (Python files only) to add a bad import to."""
    shutil.copytree(
        REPO / "sfbulk",
        tmp_path / "sfbulk",
        ignore=lambda folder, names: [n for n in names if n == "__pycache__" or n.endswith((".pyc", ".so"))],
    )
    return tmp_path


# (file that gets the import, the import, the contract that must break, what the report names,
#  how many contracts break: a connector importing the message layer also breaks the bulk contract,
#  since the bulk pipeline imports the connector)
VIOLATIONS = [
    ("errors.py", "import sfbulk.cli", "Layers", "sfbulk.errors -> sfbulk.cli", 1),
    ("message/__init__.py", "import sfbulk.server", "Layers", "sfbulk.message -> sfbulk.server", 1),
    ("registry/base.py", "import sfbulk.transport", "Layers", "sfbulk.registry.base -> sfbulk.transport", 1),
    (
        "connector/auth.py",
        "import sfbulk.message",
        "The connector uses",
        "sfbulk.connector.auth -> sfbulk.message",
        2,
    ),
    ("bulk/load.py", "import sfbulk.engine", "The bulk pipeline", "sfbulk.bulk.load -> sfbulk.engine", 1),
    (
        "emulator/ids.py",
        "import sfbulk.errors",
        "The emulator imports nothing",
        "sfbulk.emulator.ids -> sfbulk.errors",
        1,
    ),
    (
        "server/app.py",
        "import sfbulk.emulator.ids",
        "No library layer",
        "sfbulk.server.app -> sfbulk.emulator.ids",
        1,
    ),
    # the Airflow provider is the top layer: nothing of sfbulk imports it (the core needs no Airflow)
    (
        "cli/bulk.py",
        "import sfbulk.airflow.settings",
        "Layers",
        "sfbulk.cli.bulk -> sfbulk.airflow.settings",
        1,
    ),
]


@pytest.mark.parametrize(
    ("where", "statement", "contract", "edge", "count"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS]
)
def test_a_forbidden_import_breaks_its_contract(
    package_copy: Path, where: str, statement: str, contract: str, edge: str, count: int
) -> None:
    target = package_copy / "sfbulk" / where
    target.write_text(
        target.read_text(encoding="utf-8") + f"\n{statement}  # added by the test\n", encoding="utf-8"
    )
    result = _lint(package_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{count} broken" in result.stdout, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.startswith(contract)]
    assert broken, result.stdout
    assert edge in result.stdout, result.stdout


def test_a_new_top_level_module_needs_a_layer(package_copy: Path) -> None:
    """The layers contract is exhaustive: a new module at sfbulk/ must be given its row in .importlinter."""
    (package_copy / "sfbulk" / "stray.py").write_text('"""A module no layer names."""\n', encoding="utf-8")
    result = _lint(package_copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sfbulk.stray" in result.stdout + result.stderr
