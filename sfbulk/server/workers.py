"""Pre-fork workers for ``sfbulk serve --workers N``: one listening socket, N serving processes.

Why pre-fork: the parent binds the port once and forks; every worker accepts from that one
socket's queue, so there is one port, no per-worker address and no connection lost when a worker
dies (SO_REUSEPORT gives each process its own queue, and a dead process's queue is dropped). Each
worker runs the hardened waitress server (``sfbulk.server.serving``) with its own thread pool and
its own interpreter lock: CPU-bound mediation scales with the cores.

The parent serves nothing and starts no thread (forking a threaded process is unsafe). It

* forks the workers and prints nothing secret (it logs worker starts and exits, with pids);
* replaces a worker that exits or is killed: at once if it had run for ``STABLE_AFTER`` seconds,
  else after an exponential backoff that grows while its replacements keep dying young, so a
  worker that crashes at start-up cannot turn into a fork loop; after ``START_FAILURE_LIMIT``
  workers in a row die before serving, it gives up (exit status 1) instead of retrying for ever;
* on SIGTERM or SIGINT closes its copy of the socket, sends SIGTERM to every worker (each drains:
  no new connections, in-flight requests finish) and exits 0 once they all have; a worker still
  running after the shutdown timeout plus ``KILL_GRACE`` seconds is killed (exit status 1).

A worker whose parent disappears (``kill -9`` on the parent) drains and exits by itself.

Metrics (the contract with ``sfbulk.server.metrics``, used when that module exists): before the
first fork the supervisor calls ``prepare_multiprocess(directory)`` with a fresh private
directory that it removes at exit, and after reaping each worker ``worker_exited(pid)``. The
first call comes after the configuration was loaded, so ``sfbulk.server.app`` (and whatever it
imports) is already imported by then: metrics created at import time must still end up backed
by the multiprocess directory in the workers.
"""

from __future__ import annotations

import errno
import importlib
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

log = logging.getLogger("sfbulk.server.workers")

#: A worker that lived less than this (seconds) died "young": its replacement waits (backoff).
STABLE_AFTER = 10.0
#: First backoff delay (seconds); doubled for every further young death, up to ``MAX_BACKOFF``.
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
#: Workers dying in a row before they ever served: the supervisor gives up (exit status 1).
START_FAILURE_LIMIT = 5
#: Seconds past the shutdown timeout before a worker that has not drained is killed: more than a
#: worker's own worst case after its drain (``ServingThread.stop`` waits up to 5 s for the I/O
#: loop, then 5 s for the request threads), so only a wedged worker is killed.
KILL_GRACE = 15.0
#: Seconds the parent waits for the first workers to listen before it reports the server as up.
READY_TIMEOUT = 60.0
#: How often the parent looks at its workers when nothing happens (seconds).
_TICK = 0.5
#: The signals that stop the server (the supervisor passes them on as SIGTERM).
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
#: The module that exposes the multiprocess metrics hooks (issue 15 point 4), when installed.
METRICS_MODULE = "sfbulk.server.metrics"


def backoff_delay(young_deaths: int, first: float = FIRST_BACKOFF, most: float = MAX_BACKOFF) -> float:
    """Seconds before a worker is replaced, after ``young_deaths`` deaths in a row before ``STABLE_AFTER``.

    0 deaths in a row (the worker had served for a while): replaced at once.
    """
    if young_deaths <= 0:
        return 0.0
    return float(min(most, first * 2 ** min(young_deaths - 1, 30)))


def describe_status(status: int) -> str:
    """``os.waitpid`` status as a person reads it: "exit status 3", "killed by SIGKILL"."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"killed by {name}"
    if os.WIFEXITED(status):
        return f"exit status {os.WEXITSTATUS(status)}"
    return f"status {status}"


def bind_listener(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on ``host:port`` (0 = a free port), as waitress would bind it.

    Raises ``OSError`` when the address cannot be bound (in use, permission denied, unknown host).
    """
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    if not infos:
        raise OSError(errno.EADDRNOTAVAIL, f"no address for {host}")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class WorkerContext:
    """What one worker process gets: its slot number, the shared socket, and how to stop."""

    slot: int
    sock: socket.socket
    parent_pid: int
    #: Set when the worker must drain and exit (SIGTERM/SIGINT to the worker, or the parent is gone).
    stop: threading.Event
    _ready_fd: int = -1

    def ready(self) -> None:
        """Tell the parent this worker listens (it reports the server as up once all do)."""
        if self._ready_fd >= 0:
            try:
                os.write(self._ready_fd, f"{os.getpid()}\n".encode("ascii"))
            except OSError:
                pass  # the parent is gone: parent_alive() will say so
            os.close(self._ready_fd)
            self._ready_fd = -1

    def parent_alive(self) -> bool:
        return os.getppid() == self.parent_pid


#: ``serve(context) -> exit status``: runs in each forked worker until ``context.stop`` is set.
WorkerMain = Callable[[WorkerContext], int]


@dataclass
class _Worker:
    slot: int
    pid: int
    started: float
    ready: bool = False


@dataclass
class _Slot:
    young_deaths: int = 0
    due: float | None = None  # when a replacement is due (monotonic), None when one is running


def metrics_hooks() -> tuple[Callable[[str], None] | None, Callable[[int], None] | None]:
    """(prepare_multiprocess, worker_exited) from ``sfbulk.server.metrics`` when that module exists."""
    try:
        metrics = importlib.import_module(METRICS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != METRICS_MODULE:
            raise  # the module exists but a dependency of it is missing: say so
        return None, None
    return getattr(metrics, "prepare_multiprocess", None), getattr(metrics, "worker_exited", None)


@dataclass
class Supervisor:
    """Forks ``workers`` processes running ``serve`` on ``sock``, replaces dead ones, drains on SIGTERM."""

    sock: socket.socket
    workers: int
    serve: WorkerMain
    shutdown_timeout: float
    #: Called once, before the first fork, with a fresh private directory (removed at exit):
    #: where the workers keep shared state (prometheus_client's multiprocess files).
    on_before_fork: Callable[[str], None] | None = None
    #: Called with the pid of every worker that exited (after it was reaped).
    on_worker_exit: Callable[[int], None] | None = None
    #: Called once, when every first worker listens (the CLI prints its banner there).
    on_ready: Callable[[list[int]], None] | None = None
    #: the replacement policy (module constants by default; the tests shorten them)
    first_backoff: float = FIRST_BACKOFF
    max_backoff: float = MAX_BACKOFF
    stable_after: float = STABLE_AFTER
    start_failure_limit: int = START_FAILURE_LIMIT
    _children: dict[int, _Worker] = field(default_factory=dict)
    _slots: list[_Slot] = field(default_factory=list)
    _pid: int = 0
    _stopping: bool = False
    _stop_deadline: float = 0.0
    _start_failures: int = 0
    _gave_up: bool = False
    _killed: bool = False
    _announced: bool = False
    _child_stop: threading.Event | None = None
    _wake_r: int = -1
    _wake_w: int = -1
    _ready_r: int = -1
    _ready_w: int = -1
    _ready_buffer: bytes = b""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be >= 1")
        if not hasattr(os, "fork"):
            raise OSError(errno.ENOSYS, "--workers above 1 needs fork() (Linux, macOS); use --workers 1")

    # --- the parent ----------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT (exit status 0 when every worker drained) or until giving up (1)."""
        self._pid = os.getpid()
        self._slots = [_Slot(due=0.0) for _ in range(self.workers)]
        state_dir = tempfile.mkdtemp(prefix="sfbulk-workers-")
        self._wake_r, self._wake_w = os.pipe()
        self._ready_r, self._ready_w = os.pipe()
        for fd in (self._wake_r, self._wake_w, self._ready_r):
            os.set_blocking(fd, False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        previous_chld = signal.signal(signal.SIGCHLD, self._on_sigchld)
        previous_wakeup = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        try:
            if self.on_before_fork is not None:
                try:
                    self.on_before_fork(state_dir)
                except Exception as exc:  # noqa: BLE001 - reported as a start-up failure, not a traceback
                    log.error("preparing the workers' shared state failed: %s: %s", type(exc).__name__, exc)
                    return 1
            self._loop()
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            signal.signal(signal.SIGCHLD, previous_chld)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (self._wake_r, self._wake_w, self._ready_r, self._ready_w):
                _close_quietly(fd)
            self._kill_all()  # only if the loop failed: normally none is left
            shutil.rmtree(state_dir, ignore_errors=True)
        if self._gave_up or self._killed:
            return 1
        return 0

    def _loop(self) -> None:
        started = time.monotonic()
        while True:
            now = time.monotonic()
            if not self._stopping:
                self._spawn_due(now)
                if not self._announced and now - started > READY_TIMEOUT:
                    log.error("the workers did not start listening within %g s; stopping", READY_TIMEOUT)
                    self._gave_up = True
                    self._begin_stop()
            self._reap()
            if self._stopping:
                if not self._children:
                    return
                if time.monotonic() >= self._stop_deadline:
                    self._kill_all()
                    continue
            self._wait(self._next_wake())
            self._read_ready()

    def _next_wake(self) -> float:
        if self._stopping:
            return max(0.0, min(_TICK, self._stop_deadline - time.monotonic()))
        dues = [slot.due for slot in self._slots if slot.due is not None]
        if dues:
            return max(0.0, min(_TICK, min(dues) - time.monotonic()))
        return _TICK

    def _wait(self, timeout: float) -> None:
        try:
            readable, _, _ = select.select([self._wake_r, self._ready_r], [], [], timeout)
        except InterruptedError:
            return
        if self._wake_r in readable:
            try:
                while os.read(self._wake_r, 512):
                    pass
            except (BlockingIOError, InterruptedError):
                pass

    def _read_ready(self) -> None:
        try:
            while True:
                chunk = os.read(self._ready_r, 4096)
                if not chunk:
                    break
                self._ready_buffer += chunk
        except (BlockingIOError, InterruptedError):
            pass
        *lines, self._ready_buffer = self._ready_buffer.split(b"\n")
        for line in lines:
            try:
                pid = int(line)
            except ValueError:
                continue
            worker = self._children.get(pid)
            if worker is not None:
                worker.ready = True
                self._start_failures = 0
        if not self._announced and not self._stopping:
            running = list(self._children.values())
            if len(running) == self.workers and all(worker.ready for worker in running):
                self._announced = True
                if self.on_ready is not None:
                    self.on_ready(sorted(self._children))

    def _spawn_due(self, now: float) -> None:
        for slot_number, slot in enumerate(self._slots):
            if slot.due is not None and slot.due <= now:
                slot.due = None
                self._spawn(slot_number)

    def _spawn(self, slot: int) -> None:
        if threading.active_count() > 1:  # a library started one: the fork may inherit a held lock
            log.warning(
                "forking worker %d while %d threads run in the supervisor (%s)",
                slot + 1,
                threading.active_count(),
                ", ".join(sorted(t.name for t in threading.enumerate())),
            )
        sys.stdout.flush()
        sys.stderr.flush()
        # SIGTERM/SIGINT stay pending in the new worker until it has its own handlers (a stop
        # sent in between is not lost), and in the parent until the worker is on the books.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            state = self._slots[slot]
            state.young_deaths += 1
            delay = backoff_delay(state.young_deaths, self.first_backoff, self.max_backoff)
            state.due = time.monotonic() + delay
            log.error(
                "cannot start worker %d: fork failed: %s; retrying in %g s",
                slot + 1,
                exc.strerror or exc,
                delay,
            )
            return
        if pid == 0:  # the worker: never returns into the parent's code
            self._run_worker(slot, blocked)
        self._children[pid] = _Worker(slot=slot, pid=pid, started=time.monotonic())
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        log.info("worker %d started (pid %d)", slot + 1, pid)

    def _reap(self) -> None:
        while self._children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self._children.clear()
                return
            if pid == 0:
                return
            worker = self._children.pop(pid, None)
            if worker is None:
                continue
            if self.on_worker_exit is not None:
                try:
                    self.on_worker_exit(pid)
                except Exception as exc:  # noqa: BLE001 - a metrics hook must not stop the supervisor
                    log.error("the worker-exit hook failed for pid %d: %s", pid, exc)
            self._worker_exited(worker, status)

    def _worker_exited(self, worker: _Worker, status: int) -> None:
        what = describe_status(status)
        if self._stopping:
            clean = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            (log.info if clean else log.warning)(
                "worker %d (pid %d) stopped: %s", worker.slot + 1, worker.pid, what
            )
            if not clean:
                self._killed = True
            return
        slot = self._slots[worker.slot]
        lived = time.monotonic() - worker.started
        slot.young_deaths = slot.young_deaths + 1 if lived < self.stable_after else 0
        if not worker.ready:
            self._start_failures += 1
            if self._start_failures >= self.start_failure_limit:
                log.error(
                    "worker %d (pid %d) exited before serving (%s): %d workers in a row died at start-up; "
                    "stopping (see the errors above)",
                    worker.slot + 1,
                    worker.pid,
                    what,
                    self._start_failures,
                )
                self._gave_up = True
                self._begin_stop()
                return
        delay = backoff_delay(slot.young_deaths, self.first_backoff, self.max_backoff)
        slot.due = time.monotonic() + delay
        log.warning(
            "worker %d (pid %d) exited unexpectedly (%s) after %.1f s; starting a new one%s",
            worker.slot + 1,
            worker.pid,
            what,
            lived,
            f" in {delay:g} s" if delay else "",
        )

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if os.getpid() != self._pid:  # inherited by a worker that has not installed its own yet
            if self._child_stop is not None:
                self._child_stop.set()
            return
        if self._stopping:
            log.info("%s again: the workers are already draining", signal.Signals(signum).name)
            return
        log.info(
            "%s: stopping %d workers (finishing in-flight requests)",
            signal.Signals(signum).name,
            len(self._children),
        )
        self._begin_stop()

    def _on_sigchld(self, signum: int, frame: FrameType | None) -> None:
        pass  # its only job is to wake select() through the wake-up fd

    def _begin_stop(self) -> None:
        self._stopping = True
        self._stop_deadline = time.monotonic() + self.shutdown_timeout + KILL_GRACE
        for slot in self._slots:
            slot.due = None
        try:
            self.sock.close()  # with every worker's copy closed too, new clients are refused
        except OSError:
            pass
        for pid in list(self._children):
            _signal_quietly(pid, signal.SIGTERM)

    def _kill_all(self) -> None:
        for pid, worker in list(self._children.items()):
            log.warning("worker %d (pid %d) did not drain in time; killing it", worker.slot + 1, pid)
            _signal_quietly(pid, signal.SIGKILL)
            self._killed = True
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self._children.pop(pid, None)
            if self.on_worker_exit is not None:
                try:
                    self.on_worker_exit(pid)
                except Exception as exc:  # noqa: BLE001 - a metrics hook must not stop the supervisor
                    log.error("the worker-exit hook failed for pid %d: %s", pid, exc)

    # --- a worker ------------------------------------------------------------------------------

    def _run_worker(self, slot: int, mask: Iterable[int]) -> None:
        """The forked worker: its own signal handling, then ``serve``; exits the process, never returns.

        ``mask``: the signal mask to restore once the worker's handlers are in place.
        """
        status = 1
        try:
            stop = threading.Event()
            self._child_stop = stop
            signal.set_wakeup_fd(-1)
            for sig in _STOP_SIGNALS:
                signal.signal(sig, lambda signum, frame: stop.set())
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for fd in (self._wake_r, self._wake_w, self._ready_r):
                _close_quietly(fd)
            _tag_worker_logs(slot + 1)
            context = WorkerContext(
                slot=slot, sock=self.sock, parent_pid=self._pid, stop=stop, _ready_fd=self._ready_w
            )
            status = self.serve(context)
        except BaseException as exc:  # noqa: BLE001 - a worker reports and exits, never unwinds into the parent
            log.error("worker %d failed: %s: %s", slot + 1, type(exc).__name__, str(exc)[:300])
            status = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(status)


class _WorkerTag(logging.Filter):
    """Prefixes a worker's log lines with its number and pid, so the shared stderr says who logged."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "sfbulk_worker_tagged", False):
            record.msg, record.args = f"{self.tag} {record.getMessage()}", None
            record.sfbulk_worker_tagged = True
        return True


def _tag_worker_logs(number: int) -> None:
    tag = _WorkerTag(f"[worker {number} pid {os.getpid()}]")
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, _WorkerTag)]:
            handler.removeFilter(old)
        handler.addFilter(tag)


def _signal_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _close_quietly(fd: int) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def serve_in_workers(
    sock: socket.socket,
    workers: int,
    serve: WorkerMain,
    *,
    shutdown_timeout: float,
    on_ready: Callable[[list[int]], None] | None = None,
    **policy: Any,
) -> int:
    """Run a ``Supervisor`` with the metrics hooks of ``sfbulk.server.metrics`` (when that module
    exists); ``policy``: other ``Supervisor`` fields (hooks, backoff)."""
    prepare, exited = metrics_hooks()
    policy.setdefault("on_before_fork", prepare)
    policy.setdefault("on_worker_exit", exited)
    supervisor = Supervisor(
        sock=sock,
        workers=workers,
        serve=serve,
        shutdown_timeout=shutdown_timeout,
        on_ready=on_ready,
        **policy,
    )
    return supervisor.run()


__all__ = [
    "FIRST_BACKOFF",
    "KILL_GRACE",
    "MAX_BACKOFF",
    "START_FAILURE_LIMIT",
    "STABLE_AFTER",
    "Supervisor",
    "WorkerContext",
    "WorkerMain",
    "backoff_delay",
    "bind_listener",
    "describe_status",
    "metrics_hooks",
    "serve_in_workers",
]
