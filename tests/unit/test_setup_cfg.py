"""setup.cfg stays clean: every package-data glob ships a file, and no section is for a tool we do not run."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser


def _package_folder(package: str, package_dir: dict[str, str]) -> Path:
    """Where setuptools takes `package` from: the package_dir entry of it or of its nearest mapped
    parent (``sfbulk.bundle = .`` puts ``sfbulk.bundle.connectors.x`` in ``connectors/x``), else the
    dotted path."""
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in package_dir:
            return (ROOT / package_dir[prefix]).joinpath(*parts[cut:])
    return ROOT.joinpath(*parts)


def test_every_package_data_glob_matches_a_file() -> None:
    cfg = _setup_cfg()
    package_dir = {}
    for line in cfg["options"]["package_dir"].splitlines():
        if line.strip():
            name, _, folder = line.partition("=")
            package_dir[name.strip()] = folder.strip()
    empty = []
    for package, globs in cfg["options.package_data"].items():
        folder = _package_folder(package, package_dir)
        for pattern in (p.strip() for p in globs.split(",")):
            if pattern and not any(path.is_file() for path in folder.glob(pattern)):
                empty.append(f"{package} = {pattern} (in {folder.relative_to(ROOT)})")
    assert not empty, f"setup.cfg [options.package_data] globs that match no file: {empty}"


def test_only_sections_of_tools_the_project_runs() -> None:
    """Linting is configured in ruff.toml; a [flake8] or [isort] section here would be read by nothing."""
    known_prefixes = ("metadata", "options", "tool:pytest", "mypy")
    stale = [name for name in _setup_cfg().sections() if not name.startswith(known_prefixes)]
    assert not stale, f"setup.cfg sections no tool of this project reads: {stale}"
