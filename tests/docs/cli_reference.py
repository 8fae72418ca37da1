"""The option tables of docs/cli.md, generated from the click definitions.

docs/cli.md holds, for every command, a region

    <!-- cli-reference: serve -->
    ...generated: usage line and option table...
    <!-- /cli-reference -->

and hand-written prose around it. ``python tests/docs/cli_reference.py`` rewrites the regions
(adding an option to a command is then one command away from documented);
``--check`` only reports whether they are up to date (tests/docs/test_cli_reference.py runs it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[2]
CLI_MD = ROOT / "docs" / "cli.md"
_REGION = re.compile(
    r"(<!-- cli-reference: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /cli-reference -->)", re.S
)
GLOBAL = "sfbulk"  # the region name of the group's own options


def _commands() -> tuple[click.Group, dict[str, click.Command]]:
    from sfbulk.cli import cli

    ctx = click.Context(cli, info_name="sfbulk")
    commands = {}
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None, name
        commands[name] = command
    return cli, commands


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|").strip()


def render(name: str) -> str:
    """The generated Markdown of one region: the usage line and a table of every option."""
    group, commands = _commands()
    command: click.Command = group if name == GLOBAL else commands[name]
    parent = click.Context(group, info_name="sfbulk", **group.context_settings)
    ctx = parent if name == GLOBAL else click.Context(command, info_name=name, parent=parent)
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = ["```text", f"Usage: {ctx.command_path} {usage}", "```", ""]
    lines += ["| option | meaning |", "|---|---|"]
    for param in command.get_params(ctx):
        if isinstance(param, click.Argument):
            continue  # in the usage line; the prose says what it is
        record = param.get_help_record(ctx)
        if record is None:
            continue
        opts, help_text = record
        lines.append(f"| `{_cell(opts)}` | {_cell(help_text)} |")
    return "\n".join(lines) + "\n"


def region_names() -> list[str]:
    _, commands = _commands()
    return [GLOBAL, *sorted(commands)]


def update(text: str) -> str:
    """``text`` with every region regenerated (regions for unknown commands are left as they are)."""
    known = set(region_names())

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in known:
            return match.group(0)
        return match.group(1) + render(name) + match.group(4)

    return _REGION.sub(replace, text)


def regions(text: str) -> dict[str, str]:
    return {m.group("name"): m.group("body") for m in _REGION.finditer(text)}


def main(argv: list[str]) -> int:
    text = CLI_MD.read_text(encoding="utf-8")
    new = update(text)
    missing = [n for n in region_names() if n not in regions(text)]
    if "--check" in argv:
        if new != text or missing:
            print(
                f"{CLI_MD.relative_to(ROOT)} is out of date: run .venv/bin/python tests/docs/cli_reference.py"
            )
            if missing:
                print(f"no <!-- cli-reference: NAME --> region for: {', '.join(missing)}")
            return 1
        return 0
    CLI_MD.write_text(new, encoding="utf-8")
    if missing:
        print(f"add a region for: {', '.join(missing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
