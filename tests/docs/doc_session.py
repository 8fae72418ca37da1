"""Run the blocks of one Markdown file as a user would: one bash session, in a fresh copy of the repo.

The docs use the documented ports (the emulator on 8281, `sfbulk serve` on 8280) and paths from
the repo root. To run them exactly as written, whatever else runs on this machine, the session
gets a private network namespace (``unshare -rn``: its own loopback, so 8280/8281 are always free
and sessions never see each other). Where user namespaces are not available, the session uses the
host's loopback, and is skipped (with the reason) if a port it needs is taken.

A block's ``cmd &`` (a server in the background) is run with its output in a log file, and the
session waits until it listens on its port (``--port`` or the click default of that ``sfbulk``
command) before the next command. Whatever a session started is stopped when it ends (an EXIT
trap, then the whole process group).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from doc_blocks import (
    CONSOLE_LANGS,
    PYTHON_LANGS,
    ROOT,
    Block,
    ConsoleCommand,
    console_commands,
    is_background,
    is_compound,
    logical_lines,
    rel,
    strip_comment,
)

SESSION_TIMEOUT = 120.0  # a page takes 5-20 s; more means a command that never returns

# Bring the namespace's loopback up (it starts down), then exec the rest of argv. Pure Python
# (SIOCGIFFLAGS/SIOCSIFFLAGS), so iproute2 is not needed.
_LO_UP_AND_EXEC = """
import fcntl, os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0)))[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 0x1 | 0x40))
os.execvp(sys.argv[1], sys.argv[1:])
"""

_PRELUDE = r"""
set -e
__doc_where="(start)"
__doc_fail() { printf 'doc-test: %s: %s\n' "$__doc_where" "$*" >&2; exit 97; }
trap '__doc_rc=$?; printf "doc-test: %s: exit status %s\n" "$__doc_where" "$__doc_rc" >&2' ERR
__doc_stop() {  # EXIT: stop what the session started in the background (servers), keep the exit status
  local rc=$? jobs
  trap - ERR
  jobs=$(jobs -p)
  if [ -n "$jobs" ]; then kill $jobs 2>/dev/null || true; wait 2>/dev/null || true; fi
  exit $rc
}
trap __doc_stop EXIT
__doc_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
__doc_free() {
  if __doc_open "$1"; then __doc_fail "port $1 is taken before this command starts a server on it (started twice?)"; fi
}
__doc_started() {  # pid port log: wait until the background command listens (or died)
  local i
  for i in $(seq 1 300); do
    kill -0 "$1" 2>/dev/null || __doc_fail "the background command exited: $(tail -n 20 "$3")"
    if [ "$2" = 0 ]; then
      sleep 1; kill -0 "$1" 2>/dev/null || __doc_fail "the background command exited: $(tail -n 20 "$3")"
      return 0
    fi
    if __doc_open "$2"; then return 0; fi
    sleep 0.1
  done
  __doc_fail "nothing listens on port $2 after 30 s: $(tail -n 20 "$3")"
}
"""


@cache
def private_network() -> bool:
    """True when ``unshare -rn`` gives this process a private network namespace with a working loopback.

    ``DOC_TEST_HOST_NETWORK=1`` forces the host's loopback (the fallback), to try it where unshare works.
    """
    if os.environ.get("DOC_TEST_HOST_NETWORK") == "1":
        return False
    if shutil.which("unshare") is None or not sys.platform.startswith("linux"):
        return False
    probe = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 8281)); s.listen(); socket.create_connection(('127.0.0.1', 8281)).close()"
    try:
        result = subprocess.run(
            ["unshare", "-rn", sys.executable, "-c", _LO_UP_AND_EXEC, sys.executable, "-c", probe],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


# --- the ports a background command will listen on ------------------------------------------------


@cache
def _click_command(name: str):  # noqa: ANN202 - click.Command, imported lazily
    import click

    from sfbulk.cli import cli

    ctx = click.Context(cli)
    return cli.get_command(ctx, name)


def server_port(command: str) -> int:
    """The port an ``sfbulk <cmd> ... &`` will listen on (``--port`` or the click default); 0 if unknown."""
    try:
        words = shlex.split(strip_comment(command.replace("\\\n", " ")).rstrip("&"))
    except ValueError:
        return 0
    for index, word in enumerate(words):
        if Path(word).name != "sfbulk":
            continue
        rest = [w for w in words[index + 1 :] if w not in ("-v", "-vv", "--verbose")]
        if not rest:
            return 0
        command_obj = _click_command(rest[0])
        if command_obj is None:
            return 0
        port_param = next((p for p in command_obj.params if p.name == "port"), None)
        if port_param is None:
            return 0
        for i, word2 in enumerate(rest):
            if word2 == "--port" and i + 1 < len(rest):
                return int(rest[i + 1])
            if word2.startswith("--port="):
                return int(word2.split("=", 1)[1])
        return int(port_param.default) if port_param.default is not None else 0
    return 0


# --- the script --------------------------------------------------------------------------------------


@dataclass
class ConsoleStep:
    where: str
    command: ConsoleCommand
    out: Path
    rc: Path
    background: bool


@dataclass
class Session:
    """The bash script for one Markdown file's runnable blocks, and where its results land."""

    path: Path
    blocks: list[Block]
    tmp: Path
    console: list[ConsoleStep] = field(default_factory=list)
    ports: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.repo = self.tmp / "repo"
        self.logs = self.tmp / "logs"
        self.code = self.tmp / "blocks"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.code.mkdir(parents=True, exist_ok=True)
        self.script = self.tmp / "session.sh"
        parts = [_PRELUDE]
        for block in self.blocks:
            parts.append(f"\n# --- {block.where} ({block.lang})\n")
            if block.lang in PYTHON_LANGS:
                source = self.code / f"{rel(block.path).replace('/', '_')}-L{block.line}.py"
                source.write_text(block.text, encoding="utf-8")
                parts.append(f"__doc_where={shlex.quote(block.where)}\npython {shlex.quote(str(source))}\n")
            elif block.lang in CONSOLE_LANGS:
                parts.extend(self._console(block))
            else:
                parts.extend(self._shell(block))
        parts.append("\n__doc_where='(end)'\n")
        self.script.write_text("".join(parts), encoding="utf-8")

    def _where(self, line: int) -> str:
        return f"{rel(self.path)}:{line}"

    def _background(self, line: int, command: str) -> str:
        """``cmd &`` -> cmd with its output in a log, then wait until it listens."""
        port = server_port(command)
        code_lines = command.split("\n")
        code_lines[-1] = strip_comment(code_lines[-1]).rstrip().removesuffix("&").rstrip()
        log = shlex.quote(str(self.logs / f"bg-L{line}.log"))
        text = ""
        if port:
            self.ports.add(port)
            text += f"__doc_free {port}\n"
        text += "\n".join(code_lines) + f" > {log} 2>&1 &\n__doc_started $! {port} {log}\n"
        return text

    def _shell(self, block: Block) -> list[str]:
        where = f"__doc_where={shlex.quote(block.where)}\n"
        if is_compound(block.text):
            return [where, block.text]
        parts = []
        for line, command in logical_lines(block.lines, block.line + 1):
            if not strip_comment(command.split("\n")[0]) and "\n" not in command:
                continue  # blank or comment only
            parts.append(f"__doc_where={shlex.quote(self._where(line))}\n")
            parts.append(self._background(line, command) if is_background(command) else command + "\n")
        return parts

    def _console(self, block: Block) -> list[str]:
        parts = []
        for command in console_commands(block):
            where = self._where(command.line)
            out = self.logs / f"out-L{command.line}.txt"
            rc = self.logs / f"rc-L{command.line}.txt"
            background = is_background(command.command)
            self.console.append(ConsoleStep(where, command, out, rc, background))
            parts.append(f"__doc_where={shlex.quote(where)}\n")
            if background:
                parts.append(self._background(command.line, command.command))
                parts.append(f"echo 0 > {shlex.quote(str(rc))}\n")
            else:
                parts.append(
                    f"{{ {command.command}\n}} > {shlex.quote(str(out))} 2>&1 < /dev/null "
                    f"&& echo 0 > {shlex.quote(str(rc))} || echo $? > {shlex.quote(str(rc))}\n"
                )
        return parts


# --- running --------------------------------------------------------------------------------------------


def copy_repo(dst: Path) -> None:
    """The repo as a user's checkout: sources, docs, examples; no VCS, caches or registry contents."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory)
        skipped = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        if here == ROOT:
            # dot folders, and the build output the packaging test leaves (git ignores it)
            skipped |= {n for n in names if n.startswith(".") or n in ("build", "dist")}
        if here == ROOT / "registry":
            skipped |= {n for n in names if n != ".gitkeep"}
        if here == ROOT / "bench":
            skipped |= {"out"}
        return skipped

    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=True)
    if sys.prefix != sys.base_prefix:  # running in a venv: the docs' .venv/bin/... paths resolve to it
        (dst / ".venv").symlink_to(sys.prefix, target_is_directory=True)


def session_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFBULK_") and k not in ("PYTHONPATH",)}
    if "SFBULK_CACHE_DIR" in os.environ:
        env["SFBULK_CACHE_DIR"] = os.environ["SFBULK_CACHE_DIR"]
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PATH=bin_dir + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
        HOME=str(home),
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="100",
    )
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    return env


@dataclass
class Outcome:
    returncode: int | None  # None: timed out
    output: str


def port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run_session(session: Session, *, isolated: bool) -> Outcome:
    argv = ["bash", str(session.script)]
    if isolated:
        argv = ["unshare", "-rn", sys.executable, "-c", _LO_UP_AND_EXEC, *argv]
    proc = subprocess.Popen(
        argv,
        cwd=session.repo,
        env=session_env(session.tmp),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=SESSION_TIMEOUT)
        returncode: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        output, _ = proc.communicate()
        returncode = None
    finally:
        _kill_group(proc)
    return Outcome(returncode, output.decode("utf-8", "replace"))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:
            # the leader is gone; give the rest of the group a moment, then make sure
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return
