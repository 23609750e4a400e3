"""In-process single-flight: concurrent misses on one key compute once.

The first caller of a key becomes the leader and computes; later callers wait for its
result. Threads use :class:`SingleFlight`; coroutines of one event loop use
:class:`AsyncSingleFlight`. Across processes the Redis lock takes over.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Flight:
    """One in-progress computation; ``result`` is None when the leader failed."""

    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None


class SingleFlight:
    """Coalesce concurrent work per key among threads.

    Example:
        >>> sf = SingleFlight()
        >>> with sf.join("k") as (flight, leader):
        ...     flight.result = 42 if leader else None
        >>> leader
        True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, Flight] = {}

    @contextmanager
    def join(self, key: str) -> Iterator[tuple[Flight, bool]]:
        """Yield (flight, is_leader); the leader sets ``flight.result`` before leaving."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Flight()
        if not leader:
            yield flight, False
            return
        try:
            yield flight, True
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._flights)


class AsyncSingleFlight:
    """Coalesce concurrent work per key among the coroutines of each event loop."""

    def __init__(self) -> None:
        self._flights: dict[tuple[int, str], asyncio.Future[Any]] = {}

    def join(self, key: str) -> tuple[asyncio.Future[Any], bool]:
        """(future, is_leader); the leader must call :meth:`finish` exactly once."""
        loop = asyncio.get_running_loop()
        slot = (id(loop), key)
        fut = self._flights.get(slot)
        if fut is not None and not fut.done():
            return fut, False
        fut = loop.create_future()
        self._flights[slot] = fut
        return fut, True

    def finish(self, key: str, fut: asyncio.Future[Any], result: Any) -> None:
        """Hand ``result`` (None: failed) to the waiters and forget the flight."""
        slot = (id(asyncio.get_running_loop()), key)
        if self._flights.get(slot) is fut:
            del self._flights[slot]
        if not fut.done():
            fut.set_result(result)
