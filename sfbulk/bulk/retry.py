"""Retrying transient failures: only where a second attempt cannot do harm.

Idempotent calls (GET status, list, results, downloads; closing a job) are retried on connection
failures and on 429/500/502/503/504 with capped exponential backoff. A batch POST is never blindly
re-sent: the caller (:mod:`sfbulk.bulk.client`) first checks ``listBatches`` for the batch, so a
POST that reached Salesforce but whose answer was lost is not loaded twice (peers.md pain 12,
jsforce's rule). Token expiry (400 InvalidSessionId / 401) is handled one layer down, by the
connection's refresh-and-replay.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sfbulk.bulk.poll import Backoff
from sfbulk.errors import ApiError, TransportError

log = logging.getLogger("sfbulk.bulk.retry")

T = TypeVar("T")

#: HTTP statuses worth another try: rate limiting and server-side hiccups.
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry may cure: no response at all, or a transient HTTP status."""
    if isinstance(exc, TransportError):
        return True
    if not isinstance(exc, ApiError):
        return False
    # InvalidSessionId reaching us means the token expired again right after the connection's own
    # refresh-and-replay (tokens revoked twice in a row): the request was rejected before Salesforce
    # did anything, so another round (which refreshes again) is safe.
    # (Bulk 1.0 says InvalidSessionId, Bulk API 2.0 and REST say INVALID_SESSION_ID.)
    return exc.status in TRANSIENT_STATUSES or exc.exception_code in (
        "InvalidSessionId",
        "INVALID_SESSION_ID",
    )


@dataclass
class RetryPolicy:
    attempts: int = 8  # total tries, the first included
    initial: float = 0.05
    factor: float = 2.0
    cap: float = 5.0

    def backoff(self) -> Backoff:
        return Backoff(initial=self.initial, factor=self.factor, cap=self.cap)


class RetryStats:
    """Counts retries, for the end-of-run summary (thread-safe enough: int += under the GIL is not atomic,
    so callers add under their own lock when exactness matters; this is informational)."""

    def __init__(self) -> None:
        self.retries = 0


def call_with_retry(
    fn: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy | None = None,
    stats: RetryStats | None = None,
) -> T:
    """Run ``fn`` (an idempotent call) and retry it on transient failures; re-raise the last one."""
    policy = policy or RetryPolicy()
    backoff = policy.backoff()
    attempt = 1
    while True:
        try:
            return fn()
        except (TransportError, ApiError) as exc:
            if not is_transient(exc) or attempt >= policy.attempts:
                raise
            delay = backoff.next_delay()
            log.info("%s failed (%s); retry %d/%d in %.2f s", what, exc, attempt, policy.attempts - 1, delay)
            if stats is not None:
                stats.retries += 1
            time.sleep(delay)
            attempt += 1


__all__ = ["TRANSIENT_STATUSES", "RetryPolicy", "RetryStats", "call_with_retry", "is_transient"]
