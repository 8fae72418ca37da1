"""Shared fixtures: each area keeps its fixtures in tests/fixtures/<area>.py."""

import gc
import os
import shutil
import signal
import tempfile

import pytest
from fixtures.emulator import *  # noqa: F401,F403
from fixtures.engine import *  # noqa: F401,F403
from fixtures.grants import *  # noqa: F401,F403
from fixtures.postgres import *  # noqa: F401,F403
from fixtures.server import *  # noqa: F401,F403

_CACHE_DIR: str | None = None


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest hook
    """The connector's start-up cache goes to a private folder, never the user's ~/.cache
    (inherited by the CLI and server subprocesses the tests start)."""
    global _CACHE_DIR
    _one_garbage_collection_at_the_end(config)
    # A shell starts a background job (`make test &`, nohup) with SIGINT ignored, and an ignored
    # signal stays ignored across exec: the Ctrl-C tests' CLI processes then never saw their
    # SIGINT. A handler is reset at exec, so workers and the processes they start get the default.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if "SFBULK_CACHE_DIR" not in os.environ:
        _CACHE_DIR = tempfile.mkdtemp(prefix="sfbulk-test-cache-")
        os.environ["SFBULK_CACHE_DIR"] = _CACHE_DIR


def _one_garbage_collection_at_the_end(config: pytest.Config) -> None:
    """pytest collects garbage 2 x 5 times as each process ends, to report exceptions raised in
    finalizers; over a worker's heap that took about 1.5 s of CPU per worker, all at the same time
    at the end (4% of py-spy's samples of the suite). One pass each still finds them. The knob is pytest's
    private stash key: if a pytest release moves it, the default applies."""
    try:
        from _pytest.unraisableexception import gc_collect_iterations_key
    except ImportError:
        return
    config.stash[gc_collect_iterations_key] = 1


def pytest_unconfigure(config) -> None:  # noqa: ANN001 - pytest hook
    if _CACHE_DIR is not None:
        shutil.rmtree(_CACHE_DIR, ignore_errors=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move everything collection built (the imported modules of sfbulk, its libraries and ~2,000
    test items: about 170,000 objects per worker) out of the garbage collector's reach. They live
    until the process ends anyway, and each full collection traversed them again: 8-14 full
    collections per worker, 2-5 s of each worker's time. Objects the tests create are collected as
    before; explicit gc.collect() calls in tests still find their garbage."""
    gc.freeze()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first, in their collected order, then the rest: with `-n`, xdist hands tests out in
    this order, so the long ones start at once on every worker instead of one of them ending the run
    alone. The order within each group is kept; each test's fixtures are unchanged."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
