"""Import boundaries: the emulator stands alone (DESIGN.md), and the SOQL package imports one way."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / "sfbulk" / "emulator"
#: a module of sfbulk.emulator.soql may import only the modules listed for it
SOQL_LAYERS = {"nodes": set(), "lexer": {"nodes"}, "parser": {"nodes", "lexer"}, "compiler": {"nodes"},
               "__init__": {"nodes", "parser", "compiler"}}  # fmt: skip


def _imports(path: Path) -> list[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    else:
        package = package.removesuffix(".__init__")
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            names.append(module)
    return names


def test_the_emulator_imports_nothing_of_sfbulk_outside_it() -> None:
    outside = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in EMULATOR.rglob("*.py")
        for name in _imports(path)
        if (name == "sfbulk" or name.startswith("sfbulk.")) and not name.startswith("sfbulk.emulator")
    }
    assert not outside


def test_soql_modules_import_in_one_direction() -> None:
    for path in sorted((EMULATOR / "soql").glob("*.py")):
        inside = {
            name.rpartition(".")[2] for name in _imports(path) if name.startswith("sfbulk.emulator.soql.")
        }
        assert path.stem in SOQL_LAYERS, f"new module {path.name}: add it to SOQL_LAYERS"
        assert inside <= SOQL_LAYERS[path.stem], (
            f"{path.name} imports {sorted(inside - SOQL_LAYERS[path.stem])}"
        )
        leaving = {
            n for n in _imports(path) if n.startswith("sfbulk.") and not n.startswith("sfbulk.emulator.soql")
        }
        assert not leaving, f"{path.name} imports {sorted(leaving)}"


def test_importing_the_emulator_loads_no_other_sfbulk_module() -> None:
    """Beyond what ``import sfbulk`` itself loads (its errors module), the running emulator loads none."""
    probe = (
        "import sys, sfbulk\n"
        "parent = set(sys.modules)\n"
        "import sfbulk.emulator.server, sfbulk.emulator.service, sfbulk.emulator.cli, sfbulk.emulator.soql\n"
        "print(sorted(m for m in set(sys.modules) - parent\n"
        "             if m.startswith('sfbulk.') and not m.startswith('sfbulk.emulator')))"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
