"""The doc-test harness's own rules (tests/docs/doc_blocks.py, doc_session.py): pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from doc_blocks import (
    ROOT,
    Block,
    console_commands,
    is_background,
    logical_lines,
    output_matches,
    parse_blocks,
    strip_comment,
)
from doc_session import server_port


def test_output_matching_with_wildcards() -> None:
    actual = [
        "HTTP 201 Created",
        "",
        "<jobInfo>",
        "  <id>7505g0000000003AAA</id>",
        "  <state>Open</state>",
        "</jobInfo>",
    ]
    assert output_matches(["HTTP 201 Created", "<jobInfo>", "  <id>750...</id>", "..."], actual)
    assert output_matches(["HTTP 201 Created", "...", "  <state>Open</state>", "..."], actual)
    assert output_matches(actual, actual)
    assert not output_matches(["HTTP 200 OK", "..."], actual)  # a wrong line
    assert not output_matches(["HTTP 201 Created", "<jobInfo>"], actual)  # lines left over without '...'
    assert not output_matches(["...", "<state>Closed</state>", "..."], actual)
    assert not output_matches(["HTTP 201 Created", "extra", "..."], actual)
    assert output_matches(["a", "", "b"], ["a", "b", ""])  # blank lines never count
    assert not output_matches(["a ... c"], ["a b"])


def test_console_commands_outputs_and_continuations() -> None:
    block = Block(
        ROOT / "README.md",
        10,
        "console",
        ["$ sfbulk emulator &", "$ sfbulk run x \\", "      --proxy p", "HTTP 200 OK", "", "<a/>", "$ true"],
    )
    commands = console_commands(block)
    assert [(c.line, c.command) for c in commands] == [
        (11, "sfbulk emulator &"),
        (12, "sfbulk run x \\\n      --proxy p"),
        (17, "true"),
    ]
    assert commands[1].expected == ["HTTP 200 OK", "", "<a/>"] and commands[2].expected == []
    with pytest.raises(ValueError, match="output before any"):
        console_commands(Block(ROOT / "README.md", 1, "console", ["no prompt"]))


def test_comments_continuations_and_background_jobs() -> None:
    assert strip_comment("sfbulk emulator &   # a local Salesforce") == "sfbulk emulator &"
    assert strip_comment("echo '# not a comment' \"#nor\" x#y") == "echo '# not a comment' \"#nor\" x#y"
    assert strip_comment("# only a comment") == ""
    assert is_background("sfbulk emulator &   # on :8281") and is_background("a \\\n  b &")
    assert not is_background("a && b") and not is_background("echo '&'")
    lines = ["sfbulk run a \\", "    --proxy p", "# a comment \\", "echo done"]
    assert logical_lines(lines, 5) == [
        (5, "sfbulk run a \\\n    --proxy p"),
        (7, "# a comment \\"),
        (8, "echo done"),
    ]


def test_server_ports_come_from_the_click_definitions() -> None:
    assert server_port("sfbulk emulator &") == 8281
    assert server_port(".venv/bin/sfbulk -v serve examples/ --port 9001 &") == 9001
    assert (
        server_port("sfbulk serve examples/synapse/ --token-endpoint http://127.0.0.1:8281 &  # :8280")
        == 8280
    )
    assert server_port("sfbulk emulator --port=0 &") == 0
    assert server_port("python -m http.server &") == 0  # not ours: no port known


def test_directives_attach_to_the_next_fence(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "# t\n\n<!-- doc-test: skip (needs Salesforce) -->\n\n```sh\nsfbulk load a.csv\n```\n\n"
        "text\n<!-- doc-test: skip -->\n```python\nprint(1)\n```\n\n```console\n$ true\n```\n",
        encoding="utf-8",
    )
    blocks = parse_blocks(doc)
    assert [(b.line, b.lang, b.skip_reason, b.runs) for b in blocks] == [
        (5, "sh", "needs Salesforce", False),
        (11, "python", "", False),  # a skip without a reason: the labelling test rejects it
        (15, "console", None, True),
    ]
