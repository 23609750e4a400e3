"""The CacheBackend protocol: a byte store with TTL, tags (reverse index) and locks.

A backend knows nothing about compression. It stores opaque payload bytes under string
keys, remembers which *tags* (reverse-index keys, one per chunk id) each entry was
stored under so that :meth:`CacheBackend.invalidate` can drop every entry built from a
chunk, deletes by key prefix (a namespace) and offers a lock with a timeout for
cross-process single-flight. Every method has an ``a``-prefixed async twin.

Backends raise :class:`ctxcomp.errors.CacheError` (or a subclass) when the store fails;
:class:`ctxcomp.cache.ContextCache` turns those into counted, logged misses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ctxcomp.errors import CacheError, ConfigError


class CacheUnavailable(CacheError):
    """The backend is not reachable (or its circuit breaker is open)."""


class CircuitOpen(CacheUnavailable):
    """The call was skipped without touching the network: the circuit breaker is open."""


@runtime_checkable
class CacheBackend(Protocol):
    """What :class:`~ctxcomp.cache.ContextCache` needs from a store.

    Attributes:
        name: a short label (``"memory"``, ``"redis"``).
        shared: True when other processes see the same entries (then its locks matter).
    """

    name: str
    shared: bool

    def get(self, key: str) -> bytes | None:
        """The payload under ``key``, or None."""

    def set(self, key: str, value: bytes, *, ttl_s: float | None = None, tags: Sequence[str] = ()) -> None:
        """Store ``value`` (replacing any entry) and add ``key`` to every tag's index."""

    def delete(self, key: str) -> None:
        """Drop one entry (no error when absent)."""

    def invalidate(self, tags: Sequence[str]) -> int:
        """Drop every entry stored under any of ``tags``; returns how many were dropped."""

    def clear(self, prefix: str) -> int:
        """Drop every key starting with ``prefix``; returns how many were dropped."""

    def acquire_lock(self, key: str, timeout_s: float) -> str | None:
        """A token if the lock ``key`` was free (it expires after ``timeout_s``), else None."""

    def release_lock(self, key: str, token: str) -> None:
        """Release the lock if ``token`` still holds it.

        A backend may also offer ``renew_lock(key, token, timeout_s) -> bool`` (and
        ``arenew_lock``): extend the lock if ``token`` still holds it, used to keep a lease
        alive while computing (:mod:`ctxcomp.cache.lease`).
        """

    async def aget(self, key: str) -> bytes | None: ...

    async def aset(
        self, key: str, value: bytes, *, ttl_s: float | None = None, tags: Sequence[str] = ()
    ) -> None: ...

    async def adelete(self, key: str) -> None: ...

    async def ainvalidate(self, tags: Sequence[str]) -> int: ...

    async def aclear(self, prefix: str) -> int: ...

    async def aacquire_lock(self, key: str, timeout_s: float) -> str | None: ...

    async def arelease_lock(self, key: str, token: str) -> None: ...

    def close(self) -> None:
        """Release connections (the backend may be used again afterwards)."""


class LocalAsyncMixin:
    """Async twins for a backend whose sync methods never block on I/O."""

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)  # type: ignore[attr-defined,no-any-return]

    async def aset(
        self, key: str, value: bytes, *, ttl_s: float | None = None, tags: Sequence[str] = ()
    ) -> None:
        self.set(key, value, ttl_s=ttl_s, tags=tags)  # type: ignore[attr-defined]

    async def adelete(self, key: str) -> None:
        self.delete(key)  # type: ignore[attr-defined]

    async def ainvalidate(self, tags: Sequence[str]) -> int:
        return self.invalidate(tags)  # type: ignore[attr-defined,no-any-return]

    async def aclear(self, prefix: str) -> int:
        return self.clear(prefix)  # type: ignore[attr-defined,no-any-return]

    async def aacquire_lock(self, key: str, timeout_s: float) -> str | None:
        return self.acquire_lock(key, timeout_s)  # type: ignore[attr-defined,no-any-return]

    async def arelease_lock(self, key: str, token: str) -> None:
        self.release_lock(key, token)  # type: ignore[attr-defined]


def positive(value: object, what: str, *, integer: bool = False, minimum: float | None = None) -> Any:
    """``value`` checked as a number (an int when ``integer``) > 0 (or >= ``minimum``).

    Raises:
        ConfigError: a wrong type (a string such as ``"30"`` included) or a value out of range.
    """
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value != value:  # NaN != NaN
        kind = "an int" if integer else "a number"
        raise ConfigError(f"{what} must be {kind}, got {value!r} ({type(value).__name__})")
    number = float(value)  # type: ignore[arg-type]
    ok = number >= minimum if minimum is not None else number > 0
    if not ok or number == float("inf"):
        bound = f">= {minimum}" if minimum is not None else "> 0"
        raise ConfigError(f"{what} must be finite and {bound}, got {value!r}")
    return value if integer else number


def check_ttl(ttl_s: float | None) -> float | None:
    """Validate a TTL: None (no expiry) or a positive number of seconds."""
    if ttl_s is None:
        return None
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, (int, float)) or not ttl_s > 0:
        raise ConfigError(f"ttl_s must be a positive number of seconds or None, got {ttl_s!r}")
    return float(ttl_s)
