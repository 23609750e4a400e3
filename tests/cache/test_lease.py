"""Lock leases and stale-lock detection."""

from __future__ import annotations

import threading
import time

from ctxcomp.cache.lease import Lease, StaleWatch


class _Renewals:
    """A store of one lock, as a backend's renew_lock sees it."""

    def __init__(self) -> None:
        self.calls = 0
        self.held = True
        self.lock = threading.Lock()

    def renew_lock(self, key: str, token: str, lease_s: float) -> bool:
        with self.lock:
            self.calls += 1
            return self.held


def test_lease_renews_while_the_block_runs_and_stops_after() -> None:
    store = _Renewals()
    with Lease(store, "lock", "token", 0.06) as lease:
        time.sleep(0.25)
    after = store.calls
    time.sleep(0.1)
    assert lease.renewals >= 3 and store.calls == after  # stopped at exit


def test_lease_stops_when_the_lock_is_lost() -> None:
    store = _Renewals()
    store.held = False
    with Lease(store, "lock", "token", 0.03):
        time.sleep(0.1)
    assert store.calls == 1


def test_no_token_or_no_renew_method_means_no_thread() -> None:
    with Lease(object(), "lock", "token", 0.01) as lease:
        time.sleep(0.03)
    assert lease.renewals == 0


def test_stale_watch() -> None:
    w = StaleWatch(lease_s=1.0)
    assert not w.stale(None, 0.0)
    assert not w.stale(("a", 900), 0.0)
    assert not w.stale(("a", 700), 0.4)
    assert not w.stale(("a", 950), 0.9)  # renewed: the clock restarts
    assert not w.stale(("a", 500), 1.5)
    assert w.stale(("a", 100), 1.95)
    assert not w.stale(("b", 30_000), 2.0)  # a new holder
