"""Cache statistics: hits, misses, errors, bytes and compression seconds saved."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of one :class:`~ctxcomp.cache.ContextCache`'s counters.

    Attributes:
        hits: requests served without compressing (exact, semantic or coalesced).
        misses: requests that compressed.
        semantic_hits: hits served by a near-duplicate query (part of ``hits``).
        coalesced: hits that waited for a concurrent identical request (part of ``hits``).
        errors: backend failures (each one was handled as a miss or a skipped write).
        bypassed: backend calls skipped because the circuit breaker was open.
        corrupt: payloads that failed to decode or validate (then overwritten).
        stores: entries written.
        bytes_read: payload bytes read on hits.
        bytes_written: payload bytes written.
        seconds_saved: compression seconds the hits did not spend (as measured when the
            entries were computed).
        lock_waits: times a request waited for another process's lock.
        lock_takeovers: locks taken over from a holder that stopped renewing them.
        entries: entries held (in-process backend only; None otherwise).
        size_bytes: bytes held (in-process backend only; None otherwise).
    """

    hits: int = 0
    misses: int = 0
    semantic_hits: int = 0
    coalesced: int = 0
    errors: int = 0
    bypassed: int = 0
    corrupt: int = 0
    stores: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    seconds_saved: float = 0.0
    lock_waits: int = 0
    lock_takeovers: int = 0
    entries: int | None = None
    size_bytes: int | None = None

    @property
    def hit_rate(self) -> float:
        """hits / (hits + misses); 0.0 before any request."""
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "hit_rate": self.hit_rate}


_COUNTERS = tuple(f.name for f in fields(CacheStats) if f.name not in ("entries", "size_bytes"))


class Counters:
    """Thread-safe mutable counters behind :class:`CacheStats`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = dict.fromkeys(_COUNTERS, 0)

    def add(self, **amounts: float) -> None:
        with self._lock:
            for name, amount in amounts.items():
                self._values[name] += amount

    def snapshot(self, entries: int | None = None, size_bytes: int | None = None) -> CacheStats:
        with self._lock:
            values = dict(self._values)
        ints = {k: int(v) for k, v in values.items() if k != "seconds_saved"}
        return CacheStats(**ints, seconds_saved=float(values["seconds_saved"]),
                          entries=entries, size_bytes=size_bytes)

    def reset(self) -> None:
        with self._lock:
            self._values = dict.fromkeys(_COUNTERS, 0)
