"""Every command in README.md and docs/*.md works as written (rules: tests/docs/doc_blocks.py).

Each Markdown file's shell, console and Python blocks run in order in one bash session, in a fresh
copy of the repo, with the venv on PATH and the documented ports (see doc_session.py). Blocks that
cannot run here carry ``<!-- doc-test: skip (reason) -->``. Besides running them: every
``sfbulk <command> --option`` written anywhere in the docs names a real option, and every repo
path the docs name exists.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from doc_blocks import (
    ROOT,
    Block,
    console_commands,
    doc_files,
    output_matches,
    parse_blocks,
    rel,
    strip_comment,
)
from doc_session import (
    SESSION_TIMEOUT,
    Session,
    _click_command,
    copy_repo,
    port_is_free,
    private_network,
    run_session,
)

ALL_BLOCKS = {path: parse_blocks(path) for path in doc_files()}
# The longest sessions first, so that running a few at a time leaves no long tail.
RUNNABLE = sorted(
    (path for path, blocks in ALL_BLOCKS.items() if any(b.runs for b in blocks)),
    key=lambda path: -sum(len(b.lines) for b in ALL_BLOCKS[path] if b.runs and b.lang != "python"),
)


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _check_session(path: Path, tmp: Path, isolated: bool) -> list[str]:
    """Run one Markdown file's session; the problems found (empty: it runs as written)."""
    blocks = [b for b in ALL_BLOCKS[path] if b.runs]
    session = Session(path, blocks, tmp)
    if not isolated:
        taken = sorted(p for p in session.ports if not port_is_free(p))
        if taken:
            return [
                f"SKIP: starts servers on port(s) {taken}, taken on this machine (and unshare -rn is not available)"
            ]
    copy_repo(session.repo)
    outcome = run_session(session, isolated=isolated)
    failures = []
    if outcome.returncode is None:
        failures.append(
            f"the session did not end within {SESSION_TIMEOUT:.0f} s (a server run without &, or a program "
            f"that hangs):\n{_tail(outcome.output)}"
        )
    elif outcome.returncode != 0:
        where = [ln[len("doc-test: ") :] for ln in outcome.output.splitlines() if ln.startswith("doc-test: ")]
        headline = where[-1] if where else f"exit status {outcome.returncode}"
        failures.append(f"{headline}\n--- the session's last output:\n{_tail(outcome.output, 30)}")
    for step in session.console:
        if step.background or not step.rc.exists():
            continue
        rc = int(step.rc.read_text().strip() or "0")
        actual = step.out.read_text(encoding="utf-8", errors="replace").splitlines()
        expected = step.command.expected
        shown = [ln for ln in expected if ln.strip()]
        if shown and not output_matches(expected, actual):
            failures.append(
                f"{step.where}: `$ {step.command.command}` printed (exit {rc}):\n"
                + "\n".join(actual)
                + "\nbut the doc shows:\n"
                + "\n".join(expected)
            )
        elif not shown and rc != 0:
            failures.append(
                f"{step.where}: `$ {step.command.command}` exited {rc}:\n" + "\n".join(actual[-30:])
            )
    return failures


@pytest.mark.slow
def test_the_blocks_of_every_doc_run_as_written(tmp_path: Path) -> None:
    """One session per Markdown file, a few at a time (each has its own loopback, so they cannot clash)."""
    assert {rel(p) for p in RUNNABLE} >= {"README.md", "docs/cli.md", "docs/bulk.md", "docs/server.md"}
    isolated = private_network()
    workers = 3 if isolated else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            path: pool.submit(_check_session, path, tmp_path / rel(path).replace("/", "_"), isolated)
            for path in RUNNABLE
        }
        results = {path: future.result() for path, future in futures.items()}
    skipped = {rel(p): r[0] for p, r in results.items() if r and r[0].startswith("SKIP: ")}
    failed = {rel(p): r for p, r in results.items() if r and not r[0].startswith("SKIP: ")}
    report = "\n\n".join(f"=== {name}\n" + "\n\n".join(problems) for name, problems in failed.items())
    assert not failed, report
    if skipped:
        pytest.skip("; ".join(f"{name}: {why[6:]}" for name, why in skipped.items()))


def test_skipped_blocks_say_why_and_command_blocks_are_labelled() -> None:
    problems = []
    for blocks in ALL_BLOCKS.values():
        for block in blocks:
            if block.directive is not None and block.skip_reason is None:
                problems.append(f"{block.where}: unknown directive <!-- doc-test: {block.directive} -->")
            if block.skip_reason == "":
                problems.append(f"{block.where}: <!-- doc-test: skip --> needs a reason: skip (why)")
            if block.lang == "" and block.looks_like_commands():
                problems.append(
                    f"{block.where}: an unlabelled block of commands: label it ```console (with $ prompts), "
                    "```sh (run as written) or ```text (a synopsis, not run)"
                )
            if block.lang == "console" and block.runs:
                try:
                    if not console_commands(block):
                        problems.append(f"{block.where}: a console block without any '$ ' command")
                except ValueError as exc:
                    problems.append(str(exc))
    assert not problems, "\n".join(problems)


# --- options and paths named in the docs ------------------------------------------------------------

# `sfbulk <cmd>` where a command starts: a line's start, or after ; & | ( $( (not "from sfbulk import").
_SFBULK_COMMAND = re.compile(r"(?:^\s*|[;&|(]\s*)(?:\.venv/bin/)?sfbulk\s+(?P<cmd>[a-z]+)(?P<rest>[^\n`]*)")
_OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")


def _command_mentions(block: Block) -> list[tuple[str, str, str]]:
    """(where, command, text) for each ``sfbulk <cmd> ...`` of a block, continuation lines included."""
    found = []
    lines = block.lines
    for index, line in enumerate(lines):
        text = strip_comment(line[2:] if line.startswith("$ ") else line)
        match = _SFBULK_COMMAND.search(text)
        if match is None:
            continue
        rest = match.group("rest")
        j = index
        # synopsis/continuation lines: a trailing backslash, or the next lines indented under it
        while j + 1 < len(lines) and (
            lines[j].rstrip().endswith("\\")
            or (lines[j + 1].startswith(" ") and lines[j + 1].strip().startswith("["))
        ):
            j += 1
            rest += " " + lines[j]
        found.append((f"{rel(block.path)}:{block.line + index + 1}", match.group("cmd"), rest))
    return found


def _inline_mentions(path: Path) -> list[tuple[str, str, str]]:
    found = []
    in_fence = False
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if re.match(r"^ {0,3}(```|~~~)", line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for span in re.findall(r"`([^`]+)`", line):
            match = _SFBULK_COMMAND.match(span)
            if match is not None:
                found.append((f"{rel(path)}:{number}", match.group("cmd"), match.group("rest")))
    return found


def _options_of(name: str) -> set[str] | None:
    command = _click_command(name)
    if command is None:
        return None
    options = {"-h", "--help"}
    for param in command.params:
        options.update(getattr(param, "opts", ()))
        options.update(getattr(param, "secondary_opts", ()))
    return options


def test_every_sfbulk_option_the_docs_write_exists() -> None:
    mentions = []
    for path, blocks in ALL_BLOCKS.items():
        for block in blocks:
            if block.lang in ("yaml", "xml", "json", "python", "py"):
                continue
            mentions.extend(_command_mentions(block))
        mentions.extend(_inline_mentions(path))
    assert len(mentions) > 20  # the scan sees the docs' commands
    problems = []
    for where, name, rest in mentions:
        options = _options_of(name)
        if options is None:
            problems.append(f"{where}: `sfbulk {name}`: no such command")
            continue
        code = rest.split("#", 1)[0]
        for option in _OPTION.findall(code):
            if option.split("=", 1)[0] not in options and option not in ("-", "--"):
                problems.append(f"{where}: `sfbulk {name}` has no option {option}")
    assert not problems, "\n".join(problems)


_REPO_PATH = re.compile(r"^(?:examples|docs|tests|sfbulk|bench|operations|templates)/[\w./-]*$")


def test_every_repo_path_the_docs_name_exists() -> None:
    """`examples/...`, `docs/...` and the like, in prose, links and blocks (placeholders like <op> aside)."""
    problems = []
    checked = 0
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        candidates = re.findall(r"`@?([^`\s]+)`", text) + re.findall(r"\]\(([^)\s#]+)", text)
        for block in ALL_BLOCKS[path]:
            # blocks that run are checked by running (and may name the files they write)
            if block.lang not in ("yaml", "xml", "json") and not block.runs:
                candidates += re.findall(r"(?<![\w/.:-])@?((?:examples|docs)/[\w./-]+)", block.text)
        for candidate in candidates:
            candidate = candidate.rstrip(".,:;)")
            if not _REPO_PATH.match(candidate):
                continue
            checked += 1
            if not (ROOT / candidate).exists() and not (path.parent / candidate).exists():
                problems.append(f"{rel(path)}: `{candidate}` does not exist")
    assert checked > 30  # the scan sees the docs' paths
    assert not problems, "\n".join(sorted(set(problems)))


# --- configs shown in the docs load -----------------------------------------------------------------


def _flow_keys() -> set[str]:
    import yaml

    schema = yaml.safe_load((ROOT / "sfbulk" / "config" / "schema.yaml").read_text(encoding="utf-8"))
    return set(schema["properties"]) - {"namespaces"}


def test_yaml_and_synapse_configs_shown_in_the_docs_load(tmp_path: Path) -> None:
    """A ```yaml block shaped like a flows file (top-level keys of the YAML schema) and a ```xml
    block rooted in a Synapse element load as they are (warnings, such as a sequence defined
    elsewhere, are allowed); fragments are left alone."""
    import yaml
    from lxml import etree

    from sfbulk.config import load_paths
    from sfbulk.connector.connection import Connector
    from sfbulk.errors import ConfigError

    flow_keys = _flow_keys()
    connectors = {"salesforcebulk": Connector.load(), "salesforcebulkv2": Connector.load("salesforcebulkv2")}
    problems, loaded = [], 0
    for path, blocks in ALL_BLOCKS.items():
        for block in blocks:
            if block.skip_reason is not None:
                continue
            if block.lang in ("yaml", "yml"):
                try:
                    data = yaml.safe_load(block.text)
                except yaml.YAMLError as exc:
                    problems.append(f"{block.where}: not valid YAML: {exc}")
                    continue
                if not (
                    isinstance(data, dict)
                    and set(data) & flow_keys
                    and set(data) <= flow_keys | {"namespaces"}
                ):
                    continue  # a fragment, or another format (connector bundle)
                config = tmp_path / f"{rel(path).replace('/', '_')}-L{block.line}.yaml"
            elif block.lang == "xml":
                try:
                    root = etree.fromstring(block.text.encode())
                except etree.XMLSyntaxError:
                    continue  # an excerpt
                if not str(root.tag).startswith("{http://ws.apache.org/ns/synapse}"):
                    continue
                config = tmp_path / f"{rel(path).replace('/', '_')}-L{block.line}.xml"
            else:
                continue
            config.write_text(block.text, encoding="utf-8")
            try:
                load_paths([config], connectors=connectors)
                loaded += 1
            except ConfigError as exc:
                problems.append(f"{block.where}: does not load: {exc}".replace(str(tmp_path) + "/", ""))
    assert loaded >= 3  # README's and yaml-format.md's flows at least
    assert not problems, "\n".join(problems)
