"""Fault injection for reliability tests: 503 answers, connections cut mid-request, added latency.

Off by default. The OAuth endpoint is spared unless ``include_oauth`` is set.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class FaultSettings:
    error_rate: float = 0.0
    reset_rate: float = 0.0
    latency_ms: float = 0.0
    include_oauth: bool = False


class Faults:
    """What to do with the next request. Thread-safe; ``configure`` may be called while serving."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self._random = random.Random()
        self.injected = {"error": 0, "reset": 0}

    def configure(
        self,
        error_rate: float = 0.0,
        reset_rate: float = 0.0,
        latency_ms: float = 0.0,
        seed: int | None = None,
        include_oauth: bool = False,
    ) -> None:
        for name, rate in (("error_rate", error_rate), ("reset_rate", reset_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}")
        if error_rate + reset_rate > 1.0:
            raise ValueError("error_rate + reset_rate must not exceed 1")
        if latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        with self._lock:
            self.settings = FaultSettings(error_rate, reset_rate, latency_ms, include_oauth)
            self._random = random.Random(seed)

    def reset(self) -> None:
        self.configure()

    def draw(self, is_oauth: bool) -> tuple[str | None, float]:
        """(fault, latency seconds): fault is None, "error" (answer 503) or "reset-before"/"reset-after"
        (cut the connection before handling the request or after handling it, losing the response)."""
        with self._lock:
            s = self.settings
            if is_oauth and not s.include_oauth:
                return None, 0.0
            latency = s.latency_ms / 1000.0
            roll = self._random.random()
            if roll < s.error_rate:
                self.injected["error"] += 1
                return "error", latency
            if roll < s.error_rate + s.reset_rate:
                self.injected["reset"] += 1
                return ("reset-before" if self._random.random() < 0.5 else "reset-after"), latency
            return None, latency
