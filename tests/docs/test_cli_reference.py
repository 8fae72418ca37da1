"""docs/cli.md documents every command and option of the click tree, and its tables are up to date."""

from __future__ import annotations

import re

import cli_reference
import click
from cli_reference import CLI_MD, GLOBAL, region_names, regions, render, update


def _walk() -> list[tuple[str, click.Parameter]]:
    """(command name, parameter) for the group and every subcommand."""
    group, commands = cli_reference._commands()  # noqa: SLF001 - the harness's own helper
    params = [(GLOBAL, p) for p in group.params]
    for name, command in commands.items():
        params += [(name, p) for p in command.params]
    return params


def test_every_command_has_a_section_and_a_generated_region() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    names = region_names()
    assert {"emulator", "serve", "run", "validate", "load", "extract"} <= set(names)
    found = regions(text)
    missing = [n for n in names if n not in found]
    assert not missing, f"docs/cli.md has no <!-- cli-reference: NAME --> region for {missing}"
    headings = set(re.findall(r"^## `sfbulk (\w+)", text, re.M))
    assert set(names) - {GLOBAL} <= headings, (
        f"no '## `sfbulk NAME`' section for {set(names) - {GLOBAL} - headings}"
    )


def test_every_option_of_the_click_tree_is_in_docs_cli_md() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    found = regions(text)
    problems = []
    for name, param in _walk():
        if isinstance(param, click.Argument):
            usage = found.get(name, "")
            if param.human_readable_name not in usage:
                problems.append(
                    f"sfbulk {name}: argument {param.human_readable_name} is not in its usage line"
                )
            continue
        for opt in [*param.opts, *param.secondary_opts]:
            if not re.search(rf"`[^`]*(?<![\w-]){re.escape(opt)}(?![\w-])[^`]*`", found.get(name, "")):
                problems.append(f"sfbulk {name}: option {opt} is not in docs/cli.md")
    assert len(_walk()) > 50  # the walk sees the whole tree
    assert not problems, "\n".join(problems) + "\nrun: .venv/bin/python tests/docs/cli_reference.py"


def test_the_generated_tables_are_up_to_date() -> None:
    text = CLI_MD.read_text(encoding="utf-8")
    assert update(text) == text, (
        "docs/cli.md is out of date: run .venv/bin/python tests/docs/cli_reference.py"
    )
    assert cli_reference.main(["--check"]) == 0


def test_the_generator_restores_a_stale_table() -> None:
    """A table missing a row (an option added to the code, not to the doc) is detected and regenerated."""
    text = CLI_MD.read_text(encoding="utf-8")
    row = next(line for line in render("serve").splitlines() if line.startswith("| `--threads"))
    stale = text.replace(row + "\n", "", 1)
    assert stale != text
    assert update(stale) == text
    assert "--threads" in row and "[default: 32" in row
