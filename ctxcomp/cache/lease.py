"""Lock leases: a cross-process compute lock that lives only while its holder does.

A holder takes the lock for a short lease (``lock_lease_s``, default 2 s) and renews it
every third of the lease while it computes. So a crashed holder's lock is gone within one
lease and a waiter takes over (instead of waiting out a long timeout), and a computation
longer than any timeout keeps its lock (instead of letting the waiters compute again).

Renewal uses the backend's optional ``renew_lock(key, token, lease_s) -> bool`` (and
``arenew_lock``); a backend without it keeps plain expiring locks. A failed renewal is
logged once and stops the renewals (the computation goes on; at worst another process
computes the same entry too).

A waiter also watches the lock (the backend's optional ``lock_state(key) -> (value,
ttl_ms)`` and ``steal_lock(key, value, lease_s) -> token``): a lock whose value stays the
same while its TTL only falls for a whole lease is not being renewed, whatever its TTL
(a crashed holder, or a lock set by hand with ``PX 30000``), and the waiter takes it over
(:class:`StaleWatch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_LEASE_S = 2.0


def _renewed(held: object) -> bool:
    """Whether a renewal's outcome (True, False: lost, an exception: failed) keeps the lease."""
    if isinstance(held, Exception):
        log.warning("cannot renew the cache lock (%s); another process may compute the same entry",
                    type(held).__name__)
        return False
    if not held:
        log.warning("the cache lock was lost while computing; another process may compute the same entry")
        return False
    return True


class Lease:
    """Renew ``token``'s hold on ``lock`` in a daemon thread while the block runs.

    Example:
        >>> from ctxcomp.cache.memory import MemoryBackend
        >>> with Lease(MemoryBackend(), "lock", "token", 2.0):
        ...     pass
    """

    def __init__(self, backend: Any, lock: str, token: str | None, lease_s: float) -> None:
        self._renew = getattr(backend, "renew_lock", None) if token else None
        self._args = (lock, token, lease_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewals = 0

    def _run(self) -> None:
        lock, token, lease_s = self._args
        while not self._stop.wait(lease_s / 3):
            try:
                held = self._renew(lock, token, lease_s)  # type: ignore[misc]
            except Exception as exc:  # a cache outage must not fail the computation
                held = exc
            if not _renewed(held):
                return
            self.renewals += 1

    def __enter__(self) -> Lease:
        if self._renew is not None:
            self._thread = threading.Thread(target=self._run, name="ctxcomp-lock-lease", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class AsyncLease:
    """:class:`Lease` for coroutines: renews with ``arenew_lock`` in a task."""

    def __init__(self, backend: Any, lock: str, token: str | None, lease_s: float) -> None:
        self._renew = getattr(backend, "arenew_lock", None) if token else None
        self._args = (lock, token, lease_s)
        self._task: asyncio.Task[None] | None = None
        self.renewals = 0

    async def _run(self) -> None:
        lock, token, lease_s = self._args
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                held = await self._renew(lock, token, lease_s)  # type: ignore[misc]
            except Exception as exc:
                held = exc
            if not _renewed(held):
                return
            self.renewals += 1

    async def __aenter__(self) -> AsyncLease:
        if self._renew is not None:
            self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class StaleWatch:
    """Decides, from successive looks at a lock, whether its holder has stopped renewing it.

    A live holder renews every third of a lease, so its lock's TTL goes back up at least
    twice a lease. A lock seen with the same value and a TTL that never rose for a whole
    lease has no live holder.

    Example:
        >>> w = StaleWatch(lease_s=2.0)
        >>> w.stale(("x", 30_000), now=0.0), w.stale(("x", 29_000), now=1.0), w.stale(("x", 28_000), now=2.0)
        (False, False, True)
        >>> w.stale(("x", 29_990), now=2.5)  # renewed (the TTL rose): alive again
        False
    """

    def __init__(self, lease_s: float) -> None:
        self.lease_s = lease_s
        self._value: str | None = None
        self._ttl = 0
        self._since = 0.0

    def stale(self, state: tuple[str, int] | None, now: float) -> bool:
        """Whether the lock in ``state`` ((value, TTL in ms), None: no lock) is stale at ``now``."""
        if state is None:
            self._value = None
            return False
        value, ttl = state
        if value != self._value or ttl > self._ttl:  # a new holder, or a renewal
            self._value, self._ttl, self._since = value, ttl, now
            return False
        self._ttl = ttl
        return now - self._since >= self.lease_s
