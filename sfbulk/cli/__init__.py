"""`sfbulk` command line: a thin click group; each subcommand lives in its own module.

Subcommands are imported only when used, so `sfbulk emulator` never loads the engine and
`sfbulk --help` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from sfbulk.secrets import install_log_redaction

#: command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "emulator": "sfbulk.emulator.cli:emulator_command",
    "run": "sfbulk.cli.run:run_command",
    "validate": "sfbulk.cli.run:validate_command",
    "serve": "sfbulk.cli.serve:serve_command",
    "load": "sfbulk.cli.bulk:load_command",
    "extract": "sfbulk.cli.bulk:extract_command",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v", "--verbose", count=True, help="More logging (-v INFO, -vv DEBUG). Secrets are always masked."
)
@click.version_option(package_name="sfbulk")
def cli(verbose: int) -> None:
    """sfbulk: the Salesforce Bulk connector, its mediation engine and a local Bulk API emulator."""
    install_log_redaction()
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main() -> None:
    cli(prog_name="sfbulk")
