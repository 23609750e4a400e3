"""Fault handling for remote caches: a circuit breaker and a log-once-per-interval throttle.

A dead or slow Redis must never make compression slower than no cache at all. The
backend uses short socket timeouts, and after ``failure_threshold`` consecutive failures
the breaker opens: every cache call is skipped (a miss) without touching the network for
``reset_s`` seconds. Then one trial call is let through (half-open); success closes the
breaker, failure opens it again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Literal

from ctxcomp.redact import redact

State = Literal["closed", "open", "half-open"]


@dataclass
class CircuitBreaker:
    """Thread-safe consecutive-failure circuit breaker.

    Args:
        failure_threshold: consecutive failures that open the circuit.
        reset_s: seconds the circuit stays open before one trial call.

    Example:
        >>> b = CircuitBreaker(failure_threshold=1, reset_s=60)
        >>> b.allow(), b.record_failure(), b.allow()
        (True, None, False)
    """

    failure_threshold: int = 3
    reset_s: float = 5.0

    def __post_init__(self) -> None:
        from ctxcomp.cache.base import positive

        self.failure_threshold = positive(self.failure_threshold, "failure_threshold", integer=True, minimum=1)
        self.reset_s = positive(self.reset_s, "reset_s")
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self.opened = 0  # how many times the circuit opened

    @property
    def state(self) -> State:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if time.monotonic() - self._opened_at >= self.reset_s:
                return "half-open"
            return "open"

    def allow(self) -> bool:
        """Whether a call may go to the backend now."""
        with self._lock:
            if self._opened_at is None:
                return True
            if time.monotonic() - self._opened_at < self.reset_s or self._trial_running:
                return False
            self._trial_running = True  # exactly one trial call while half-open
            return True

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.failure_threshold:
                if self._opened_at is None or self._trial_running:
                    self.opened += 1
                self._opened_at = time.monotonic()
            self._trial_running = False


class LogThrottle:
    """Log a recurring warning at most once per ``interval_s`` per topic.

    The next message after a quiet interval says how many were suppressed. Lines are
    redacted (:func:`ctxcomp.redact.redact`): no password or key reaches the log.
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 30.0) -> None:
        from ctxcomp.cache.base import positive

        self.logger = logger
        self.interval_s = positive(interval_s, "log_interval_s", minimum=0)
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, topic: str, message: str, *args: object) -> bool:
        """Log ``message % args`` unless ``topic`` was logged within the interval.

        Returns:
            True when the message was logged.
        """
        now = time.monotonic()
        with self._lock:
            last = self._last.get(topic)
            if last is not None and now - last < self.interval_s:
                self._suppressed[topic] = self._suppressed.get(topic, 0) + 1
                return False
            self._last[topic] = now
            skipped = self._suppressed.pop(topic, 0)
        suffix = f" ({skipped} similar messages suppressed)" if skipped else ""
        # Backend errors may quote URLs or credentials: redact the rendered line.
        self.logger.warning("%s", redact(message % args if args else message) + suffix)
        return True
