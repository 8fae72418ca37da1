"""The ``--workers`` supervisor's pure parts: the replacement backoff and how an exit is described."""

from __future__ import annotations

import os
import signal

import pytest

from sfbulk.server.workers import (
    FIRST_BACKOFF,
    MAX_BACKOFF,
    Supervisor,
    backoff_delay,
    bind_listener,
    describe_status,
)


def test_a_worker_that_had_served_for_a_while_is_replaced_at_once():
    assert backoff_delay(0) == 0.0


def test_young_deaths_double_the_wait_up_to_the_cap():
    delays = [backoff_delay(n) for n in range(1, 12)]
    assert delays[:4] == [FIRST_BACKOFF, FIRST_BACKOFF * 2, FIRST_BACKOFF * 4, FIRST_BACKOFF * 8]
    assert delays == sorted(delays)
    assert delays[-1] == MAX_BACKOFF
    assert backoff_delay(10_000) == MAX_BACKOFF  # no overflow however long it keeps dying
    assert backoff_delay(3, first=0.1, most=0.3) == 0.3


def _status(code: int = 0, sig: int = 0) -> int:
    """A waitpid status as the kernel encodes it (low 7 bits: signal; next byte: exit code)."""
    return sig if sig else code << 8


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (_status(code=0), "exit status 0"),
        (_status(code=3), "exit status 3"),
        (_status(sig=signal.SIGKILL), "killed by SIGKILL"),
        (_status(sig=signal.SIGSEGV), "killed by SIGSEGV"),
    ],
)
def test_exits_are_described_as_an_operator_reads_them(status, text):
    assert os.WIFEXITED(status) or os.WIFSIGNALED(status)
    assert describe_status(status) == text


def test_the_supervisor_refuses_fewer_than_one_worker():
    sock = bind_listener("127.0.0.1", 0)
    try:
        with pytest.raises(ValueError, match="workers must be >= 1"):
            Supervisor(sock=sock, workers=0, serve=lambda context: 0, shutdown_timeout=1)
    finally:
        sock.close()


def test_the_listener_is_bound_and_listening_on_a_free_port():
    sock = bind_listener("127.0.0.1", 0)
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1" and port > 0
        with pytest.raises(OSError):
            bind_listener("127.0.0.1", port).close()  # the address is taken
    finally:
        sock.close()
