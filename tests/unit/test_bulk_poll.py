"""poll_until's deadline: with ``clock_from`` it starts when the event is set (a load's last upload)."""

from __future__ import annotations

import threading
import time

import pytest

from sfbulk.bulk.poll import Backoff, poll_until
from sfbulk.errors import PollTimeout


def _never_done() -> tuple[bool, bool, list[str]]:
    return False, False, ["751x"]


def test_the_deadline_waits_for_the_clock_event_then_expires() -> None:
    uploads_done = threading.Event()
    timer = threading.Timer(0.3, uploads_done.set)
    started = time.monotonic()
    timer.start()
    with pytest.raises(PollTimeout) as info:
        poll_until(
            _never_done,
            job_id="750x",
            timeout=0.05,
            backoff=Backoff(initial=0.01, factor=1.0, cap=0.01),
            clock_from=uploads_done,
        )
    elapsed = time.monotonic() - started
    assert elapsed >= 0.3  # not before the event, although the timeout is 0.05 s
    assert info.value.batch_ids == ["751x"] and "750x" in str(info.value)


def test_without_the_clock_event_the_deadline_starts_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(PollTimeout):
        poll_until(
            _never_done, job_id="750x", timeout=0.05, backoff=Backoff(initial=0.01, factor=1.0, cap=0.01)
        )
    assert time.monotonic() - started < 5


def test_an_event_set_before_polling_starts_the_deadline_at_once() -> None:
    done = threading.Event()
    done.set()
    with pytest.raises(PollTimeout):
        poll_until(
            _never_done,
            job_id="750x",
            timeout=0.05,
            backoff=Backoff(initial=0.01, factor=1.0, cap=0.01),
            clock_from=done,
        )
