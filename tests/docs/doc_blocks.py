"""Fenced code blocks of the Markdown docs, and what the doc test does with each.

The rules (also in docs/cli.md, "The docs are tested"):

* ```` ```sh ````, ```` ```bash ```` and ```` ```shell ```` blocks are run as written, in order, one
  bash session per Markdown file (so an ``export`` or a ``sfbulk emulator &`` of one block serves
  the next); every command must succeed.
* ```` ```console ```` blocks: lines starting with ``$ `` are commands (a trailing ``\\`` continues
  one); the lines after a command are its expected output: compared line by line (blank lines
  ignored), ``...`` on a line of its own stands for any number of lines and ``...`` inside a line
  for any text. A command with no output shown must exit 0.
* ```` ```python ```` blocks are run with the venv's python, in the same session.
* ``<!-- doc-test: skip (reason) -->`` on the line before a fence skips that block; the reason is
  required. Other languages (yaml, xml, text...) are not run; an unlabelled fence that holds
  commands is an error (label it ``console``, ``sh`` or ``text``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SHELL_LANGS = frozenset(["sh", "bash", "shell"])
PYTHON_LANGS = frozenset(["python", "py"])
CONSOLE_LANGS = frozenset(["console"])
RUN_LANGS = SHELL_LANGS | PYTHON_LANGS | CONSOLE_LANGS

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)[^`]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*doc-test:\s*(?P<body>.*?)\s*-->\s*$")
_SKIP = re.compile(r"^skip\s*(?:\((?P<reason>.*)\))?\s*$")
# An unlabelled block that looks like commands someone will paste.
_LOOKS_LIKE_COMMANDS = re.compile(r"^\s*(?:\$ |sfbulk |\.venv/bin/|curl |make |export |python )")


def doc_files() -> list[Path]:
    """README.md and every docs/*.md, in a stable order."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@dataclass
class Block:
    """One fenced block: ``line`` is the 1-based line of its opening fence."""

    path: Path
    line: int
    lang: str
    lines: list[str]
    directive: str | None = None
    directive_line: int | None = None

    @property
    def where(self) -> str:
        return f"{rel(self.path)}:{self.line}"

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def skip_reason(self) -> str | None:
        """The reason of a ``skip`` directive ("" when the directive gives none); None if not skipped."""
        if self.directive is None:
            return None
        match = _SKIP.match(self.directive)
        if match is None:
            return None
        return (match.group("reason") or "").strip()

    @property
    def runs(self) -> bool:
        return self.lang in RUN_LANGS and self.skip_reason is None

    def looks_like_commands(self) -> bool:
        first = next((ln for ln in self.lines if ln.strip()), "")
        return bool(_LOOKS_LIKE_COMMANDS.match(first))


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with the ``doc-test`` directive just before it."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence = match.group("fence")
        indent = len(match.group("indent"))
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not re.match(
            rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]
        ):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1  # the closing fence
        block = Block(path, start + 1, match.group("lang").lower(), body)
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0:
            directive = _DIRECTIVE.match(lines[j])
            if directive is not None:
                block.directive = directive.group("body")
                block.directive_line = j + 1
        blocks.append(block)
    return blocks


# --- console transcripts ---------------------------------------------------------------------------


@dataclass
class ConsoleCommand:
    """A ``$ command`` of a console block, its Markdown line and the output shown under it."""

    line: int
    command: str
    expected: list[str] = field(default_factory=list)


def console_commands(block: Block) -> list[ConsoleCommand]:
    commands: list[ConsoleCommand] = []
    continuing = False
    for offset, text in enumerate(block.lines, start=1):
        if continuing:
            commands[-1].command += "\n" + text
            continuing = text.rstrip().endswith("\\")
            continue
        if text.startswith("$ ") or text == "$":
            commands.append(ConsoleCommand(block.line + offset, text[2:]))
            continuing = text.rstrip().endswith("\\")
        elif commands:
            commands[-1].expected.append(text)
        elif text.strip():
            raise ValueError(f"{block.where}: console output before any '$ ' command: {text!r}")
    return commands


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Blank lines ignored; a ``...`` line matches any lines, ``...`` in a line any text."""
    want = [ln.rstrip() for ln in expected if ln.strip()]
    got = [ln.rstrip() for ln in actual if ln.strip()]
    patterns: list[re.Pattern[str] | None] = []
    for ln in want:
        if ln.strip() == "...":
            patterns.append(None)
        else:
            patterns.append(re.compile(".*".join(re.escape(part) for part in ln.split("...")) + r"\Z"))

    def match(p: int, g: int) -> bool:
        if p == len(patterns):
            return g == len(got)
        pattern = patterns[p]
        if pattern is None:
            return any(match(p + 1, k) for k in range(g, len(got) + 1))
        return g < len(got) and pattern.match(got[g]) is not None and match(p + 1, g + 1)

    return match(0, 0)


# --- shell lines -------------------------------------------------------------------------------------


def strip_comment(line: str) -> str:
    """The line without a trailing ``# comment`` (quote-aware, enough for documentation commands)."""
    quote: str | None = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
            elif char == "\\" and quote == '"':
                continue
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def logical_lines(lines: list[str], first_line: int) -> list[tuple[int, str]]:
    """Lines joined over trailing backslashes, each with its Markdown line number."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = first_line
    for offset, text in enumerate(lines):
        if not pending:
            start = first_line + offset
        pending.append(text)
        code = strip_comment(text)
        if code == text.rstrip() and code.endswith("\\"):  # a backslash inside a comment continues nothing
            continue
        out.append((start, "\n".join(pending)))
        pending = []
    if pending:
        out.append((start, "\n".join(pending)))
    return out


def is_background(command: str) -> bool:
    code = strip_comment(command.split("\n")[-1])
    return code.endswith("&") and not code.endswith("&&")


_COMPOUND = re.compile(r"<<|^\s*(?:for|while|until|if|case|function)\b|[{(]\s*$|\b(?:do|then)\s*$", re.M)


def is_compound(text: str) -> bool:
    """Heredocs, loops, conditionals: such a block is run whole, not line by line."""
    return bool(_COMPOUND.search(text))
