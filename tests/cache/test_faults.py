"""Circuit breaker transitions and the once-per-interval log throttle."""

from __future__ import annotations

import logging
import time

import pytest

from ctxcomp.cache.faults import CircuitBreaker, LogThrottle
from ctxcomp.errors import ConfigError


def test_breaker_opens_after_threshold_and_half_opens_after_reset() -> None:
    b = CircuitBreaker(failure_threshold=2, reset_s=0.05)
    b.record_failure()
    assert b.allow() and b.state == "closed"
    b.record_failure()
    assert not b.allow() and b.state == "open" and b.opened == 1
    time.sleep(0.06)
    assert b.state == "half-open"
    assert b.allow()          # the one trial call
    assert not b.allow()      # nobody else while it runs
    b.record_failure()        # trial failed: open again
    assert not b.allow() and b.opened == 2
    time.sleep(0.06)
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow() and b.allow()


def test_success_resets_the_failure_count() -> None:
    b = CircuitBreaker(failure_threshold=2, reset_s=10)
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state == "closed"


@pytest.mark.parametrize("kwargs", [{"failure_threshold": 0}, {"reset_s": 0}])
def test_breaker_validates(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        CircuitBreaker(**kwargs)


def test_throttle_logs_once_per_interval_and_counts_suppressed(caplog: pytest.LogCaptureFixture) -> None:
    throttle = LogThrottle(logging.getLogger("ctxcomp.test.throttle"), interval_s=0.1)
    with caplog.at_level(logging.WARNING, logger="ctxcomp.test.throttle"):
        results = [throttle.warning("redis", "down: %s", i) for i in range(5)]
        assert throttle.warning("other", "another topic")
        time.sleep(0.12)
        assert throttle.warning("redis", "down: %s", "again")
    assert results == [True, False, False, False, False]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["down: 0", "another topic", "down: again (4 similar messages suppressed)"]
