"""Capped exponential backoff and an overall deadline for polling Bulk API batches.

Peers either poll forever (simple-salesforce), give up silently (salesforce-bulk's
``wait_for_batch`` returns after 10 minutes) or raise a timeout that does not say which job
(jsforce #542). Here the delay grows from ``initial`` by ``factor`` up to ``cap`` and drops back to
``initial`` whenever something progressed, and the deadline raises
:class:`~sfbulk.errors.PollTimeout` carrying the job id and the ids of the unfinished batches.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sfbulk.errors import PollTimeout


@dataclass
class Backoff:
    """Delays for one sequence of attempts: initial, initial*factor, ... capped at ``cap``."""

    initial: float = 0.1
    factor: float = 1.3
    cap: float = 5.0
    jitter: float = 0.1  # +/- fraction, so many clients do not poll in lock-step
    _next: float = field(default=0.0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.cap < self.initial:
            raise ValueError("backoff needs initial > 0, factor >= 1 and cap >= initial")
        self._next = self.initial

    def next_delay(self) -> float:
        """The delay to sleep now; the following one grows."""
        delay = self._next
        self._next = min(self.cap, self._next * self.factor)
        if self.jitter:
            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        return min(delay, self.cap)

    def reset(self) -> None:
        self._next = self.initial


class Deadline:
    """An overall time budget (monotonic clock); ``None`` seconds means no limit."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._end = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end


def poll_until(
    check: Callable[[], tuple[bool, bool, list[str]]],
    *,
    job_id: str,
    timeout: float | None,
    backoff: Backoff | None = None,
    stop: threading.Event | None = None,
    what: str = "batches",
    clock_from: threading.Event | None = None,
) -> None:
    """Call ``check()`` until it reports done, sleeping with backoff in between.

    ``check`` returns ``(done, progressed, pending_batch_ids)``. Progress resets the backoff.
    Raises PollTimeout naming ``job_id`` and the pending batch ids when the deadline passes.
    ``stop`` (optional) ends the wait early, e.g. when another worker failed.
    ``clock_from`` (optional): the deadline starts when this event is set (a load's last upload),
    so that a long upload never uses up the time given to Salesforce to process the job.
    """
    backoff = backoff or Backoff()
    deadline = Deadline(timeout) if clock_from is None or clock_from.is_set() else None
    while True:
        done, progressed, pending = check()
        if done:
            return
        if progressed:
            backoff.reset()
        if deadline is None and clock_from is not None and clock_from.is_set():
            deadline = Deadline(timeout)
        if deadline is not None and deadline.expired():
            shown = ", ".join(pending[:20]) + (f" and {len(pending) - 20} more" if len(pending) > 20 else "")
            raise PollTimeout(
                f"job {job_id}: {len(pending)} {what} not finished after {timeout:g} s "
                f"(still pending: {shown or 'none listed'}); the job keeps running in Salesforce, "
                "raise --timeout or fetch the results later",
                job_id=job_id,
                batch_ids=pending,
            )
        delay = backoff.next_delay()
        remaining = deadline.remaining() if deadline is not None else None
        if remaining is not None:
            delay = min(delay, max(remaining, 0.01))
        if stop is not None:
            if stop.wait(delay):
                return
        else:
            time.sleep(delay)


__all__ = ["Backoff", "Deadline", "poll_until"]
