"""Lock leases: a cross-process compute lock that lives only while its holder does.

A holder takes the lock for a short lease (``lock_lease_s``, default 2 s) and renews it
every third of the lease while it computes. So a crashed holder's lock is gone within one
lease and a waiter takes over (instead of waiting out a long timeout), and a computation
longer than any timeout keeps its lock (instead of letting the waiters compute again).

Renewal uses the backend's optional ``renew_lock(key, token, lease_s) -> bool`` (and
``arenew_lock``); a backend without it keeps plain expiring locks. A failed renewal is
logged once and stops the renewals (the computation goes on; at worst another process
computes the same entry too).
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
                log.warning("cannot renew the cache lock (%s); another process may compute the same entry",
                            type(exc).__name__)
                return
            if not held:
                log.warning("the cache lock was lost while computing; another process may compute the same entry")
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
                log.warning("cannot renew the cache lock (%s); another process may compute the same entry",
                            type(exc).__name__)
                return
            if not held:
                log.warning("the cache lock was lost while computing; another process may compute the same entry")
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
