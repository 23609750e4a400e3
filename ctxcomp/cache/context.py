"""ContextCache: the cache of compressed contexts that a Pipeline consults.

``get_or_compute`` (and ``aget_or_compute``) builds the content-addressed key, serves a
hit (exact, or semantic when enabled), and otherwise computes exactly once: concurrent
identical requests in this process wait for one leader (single-flight) and, on a shared
backend, other processes wait on a Redis lock (``SET NX PX``) and then read the entry.

A backend failure is never a failed compression: it is counted, logged at most once per
interval, and handled as a miss (or a skipped write). A payload that fails to decode or
validate is a miss and is overwritten by the fresh result.

Every stage report of a returned context says hit or miss in ``cache_hit``: on a hit they
are the stored reports with ``cache_hit=True`` (their seconds are those of the original
computation, which the hit saved), on a miss the reports of the stages that just ran with
``cache_hit=False``. (An input that already fits its budget runs no stage, so it has no
report either way.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ctxcomp.cache import keys
from ctxcomp.cache.base import CacheBackend, CircuitOpen, check_ttl
from ctxcomp.cache.codec import DEFAULT_COMPRESS_THRESHOLD, CorruptPayload, Decoded, decode, encode
from ctxcomp.cache.faults import LogThrottle
from ctxcomp.cache.flight import AsyncSingleFlight, SingleFlight
from ctxcomp.cache.memory import MemoryBackend
from ctxcomp.cache.semantic import QueryEncoder, SemanticConfig
from ctxcomp.cache.semantic_ops import SemanticOps
from ctxcomp.cache.stats import CacheStats, Counters
from ctxcomp.errors import CacheError, ConfigError
from ctxcomp.types import Budget, Chunk, CompressedContext

log = logging.getLogger(__name__)
T = TypeVar("T")
_FAILED: Any = object()
_POLL_S = (0.005, 0.01, 0.02, 0.05)


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must be a non-empty string, got {value!r}")
    return value


def mark_stages(ctx: CompressedContext, hit: bool) -> CompressedContext:
    """``ctx`` with every stage report's ``cache_hit`` set to ``hit``."""
    return dataclasses.replace(ctx, stages=tuple(dataclasses.replace(s, cache_hit=hit) for s in ctx.stages))


class ContextCache:
    """A cache of compressed contexts over a :class:`~ctxcomp.cache.base.CacheBackend`.

    Args:
        backend: where payloads live; an in-process :class:`MemoryBackend` if None.
        namespace: the key namespace (``ctxcomp:{namespace}:...``); :meth:`clear` drops it.
        ttl_s: seconds an entry lives (None: until evicted).
        semantic: a :class:`SemanticConfig` (or True for the defaults) to reuse entries
            of near-duplicate queries over the same chunk set; off by default.
        lock_timeout_s: the cross-process lock's expiry, and the longest a request waits
            for another process's computation before computing itself.
        compress_threshold: payloads above this many bytes are zlib-compressed.
        log_interval_s: a recurring backend error is logged at most once per interval.

    Example:
        >>> from ctxcomp import Budget, Pipeline
        >>> pipe = Pipeline(["truncate"], Budget(max_tokens=5), cache=ContextCache())
        >>> pipe.compress("", ["one two three four five six seven"]).stages[0].cache_hit
        False
        >>> pipe.compress("", ["one two three four five six seven"]).stages[0].cache_hit
        True
    """

    def __init__(
        self,
        backend: CacheBackend | None = None,
        *,
        namespace: str = "default",
        ttl_s: float | None = None,
        semantic: SemanticConfig | bool | None = None,
        lock_timeout_s: float = 30.0,
        compress_threshold: int = DEFAULT_COMPRESS_THRESHOLD,
        log_interval_s: float = 30.0,
    ) -> None:
        self.backend: CacheBackend = backend if backend is not None else MemoryBackend()
        self.namespace = _name(namespace, "namespace")
        self.ttl_s = check_ttl(ttl_s)
        if semantic is True:
            semantic = SemanticConfig()
        self.semantic: SemanticConfig | None = semantic or None
        if not lock_timeout_s > 0:
            raise ConfigError(f"lock_timeout_s must be > 0, got {lock_timeout_s!r}")
        self.lock_timeout_s = float(lock_timeout_s)
        self.compress_threshold = int(compress_threshold)
        self._counters = Counters()
        self._throttle = LogThrottle(log, log_interval_s)
        self._flights = SingleFlight()
        self._aflights = AsyncSingleFlight()
        self._sem = SemanticOps(self, QueryEncoder(self.semantic.model)) if self.semantic else None

    def __repr__(self) -> str:
        return f"ContextCache(backend={self.backend.name!r}, namespace={self.namespace!r}, ttl_s={self.ttl_s})"

    # -- keys and stats -------------------------------------------------------------------
    def key_for(
        self, pipeline: Any, query: str, chunks: Sequence[Chunk], budget: Budget, *, tenant: str = "default"
    ) -> keys.RequestKey:
        """The key of a request (see :mod:`ctxcomp.cache.keys`)."""
        return keys.request_key(pipeline, query, chunks, budget, namespace=self.namespace,
                                tenant=_name(tenant, "tenant"))

    def stats(self) -> CacheStats:
        """Counters so far (plus entries and bytes held, for the in-process backend)."""
        if isinstance(self.backend, MemoryBackend):
            return self._counters.snapshot(len(self.backend), self.backend.size_bytes)
        return self._counters.snapshot()

    def reset_stats(self) -> None:
        self._counters.reset()

    # -- backend calls that never raise ---------------------------------------------------
    def _error(self, op: str, exc: CacheError) -> None:
        if isinstance(exc, CircuitOpen):  # skipped without touching the network
            self._counters.add(bypassed=1)
            self._throttle.warning(f"{self.backend.name}:open", "cache %s is bypassed: %s", self.backend.name, exc)
            return
        self._counters.add(errors=1)
        self._throttle.warning(f"{self.backend.name}:{op}", "cache %s on %s failed, compressing without it: %s",
                               op, self.backend.name, exc)

    def _safe(self, op: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except CacheError as exc:
            self._error(op, exc)
            return _FAILED  # type: ignore[no-any-return]

    async def _asafe(self, op: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except CacheError as exc:
            self._error(op, exc)
            return _FAILED  # type: ignore[no-any-return]

    def _decode(self, data: Any, chunks: Sequence[Chunk], *, recheck: bool = False) -> Decoded | None:
        if data is _FAILED or data is None:
            return None
        try:
            found = decode(data, chunks)
        except CorruptPayload as exc:
            if recheck:  # already counted and logged by the first lookup
                return None
            self._counters.add(corrupt=1)
            self._throttle.warning("corrupt", "ignoring a corrupt cache entry (it will be overwritten): %s", exc)
            return None
        self._counters.add(bytes_read=len(data))
        return found

    def _hit(self, found: Decoded, **extra: int) -> tuple[CompressedContext, bool]:
        self._counters.add(hits=1, seconds_saved=found.compute_s, **extra)
        return mark_stages(found.context, True), True

    def _payload(self, ctx: CompressedContext, compute_s: float) -> bytes:
        return encode(ctx, compute_s, compress_threshold=self.compress_threshold)

    def _tags(self, rk: keys.RequestKey) -> list[str]:
        return [keys.index_key(self.namespace, cid) for cid in rk.chunk_ids]

    # -- sync path ------------------------------------------------------------------------
    def peek(
        self, pipeline: Any, query: str, chunks: Sequence[Chunk], budget: Budget, *, tenant: str = "default"
    ) -> CompressedContext | None:
        """The cached context for this request, if one is stored; never computes.

        A hit is counted (and marked in the stage reports); a miss is not, since the
        caller's :meth:`get_or_compute` that follows counts it. Batches use this to find
        the requests they must compute.
        """
        rk = self.key_for(pipeline, query, chunks, budget, tenant=tenant)
        data = self._safe("get", lambda: self.backend.get(rk.key))
        found = self._decode(data, chunks)
        if found is None and self._sem is not None and data is not _FAILED:
            found = self._sem.lookup(rk, query, chunks, tenant)
        return self._hit(found)[0] if found is not None else None

    def get_or_compute(
        self,
        pipeline: Any,
        query: str,
        chunks: Sequence[Chunk],
        budget: Budget,
        compute: Callable[[], CompressedContext],
        *,
        tenant: str = "default",
    ) -> tuple[CompressedContext, bool]:
        """The cached context for this request, or ``compute()``'s result (then stored).

        Returns:
            (the context, its stage reports marked hit or miss; whether it was a hit).
        """
        rk = self.key_for(pipeline, query, chunks, budget, tenant=tenant)
        data = self._safe("get", lambda: self.backend.get(rk.key))
        online = data is not _FAILED  # when not, skip every other backend call of this request
        found = self._decode(data, chunks)
        if found is not None:
            return self._hit(found)
        if self._sem is not None and online:
            found = self._sem.lookup(rk, query, chunks, tenant)
            if found is not None:
                return self._hit(found, semantic_hits=1)
        with self._flights.join(rk.key) as (flight, leader):
            if not leader:
                flight.done.wait(self.lock_timeout_s)
                if flight.result is not None:
                    return self._hit(flight.result, coalesced=1)
            else:
                flight.result, hit = self._lead(rk, query, chunks, tenant, compute, online)
                if hit:
                    return self._hit(flight.result)
                return self._missed(flight.result)
        # The leader failed or is stuck: compute without the cache.
        return self._missed(self._compute(compute))

    def _missed(self, found: Decoded) -> tuple[CompressedContext, bool]:
        self._counters.add(misses=1)
        return mark_stages(found.context, False), False

    @staticmethod
    def _compute(compute: Callable[[], CompressedContext]) -> Decoded:
        t0 = time.perf_counter()
        ctx = compute()
        return Decoded(ctx, time.perf_counter() - t0)

    def _lead(
        self, rk: keys.RequestKey, query: str, chunks: Sequence[Chunk], tenant: str,
        compute: Callable[[], CompressedContext], online: bool,
    ) -> tuple[Decoded, bool]:
        if not online:
            return self._compute(compute), False
        # Re-check: a previous leader may have stored it between our miss and our flight.
        found = self._decode(self._safe("get", lambda: self.backend.get(rk.key)), chunks, recheck=True)
        if found is not None:
            return found, True
        lock = keys.lock_key(rk.key)
        token = self._acquire(rk, lock, chunks)
        if isinstance(token, Decoded):  # another process computed it while we waited
            return token, True
        try:
            result = self._compute(compute)
            payload = self._payload(result.context, result.compute_s)
            stored = self._safe("set", lambda: self.backend.set(rk.key, payload, ttl_s=self.ttl_s,
                                                                 tags=self._tags(rk)))
            if stored is not _FAILED:
                self._counters.add(stores=1, bytes_written=len(payload))
                if self._sem is not None:
                    self._sem.record(rk, query, tenant)
            return result, False
        finally:
            if token:
                self._release(lock, token)

    def _release(self, lock: str, token: str) -> None:
        self._safe("unlock", lambda: self.backend.release_lock(lock, token))

    def _acquire(self, rk: keys.RequestKey, lock: str, chunks: Sequence[Chunk]) -> str | Decoded | None:
        """A lock token (None: proceed unlocked), or the entry another process stored meanwhile."""
        if not self.backend.shared:
            return None
        deadline = time.monotonic() + self.lock_timeout_s
        waited = 0
        while True:
            token = self._safe("lock", lambda: self.backend.acquire_lock(lock, self.lock_timeout_s))
            if token is _FAILED:
                return None
            if token is not None:
                # Re-check: a holder may have stored the entry and released just before we got the lock.
                found = self._decode(self._safe("get", lambda: self.backend.get(rk.key)), chunks, recheck=True)
                if found is not None:
                    self._release(lock, token)
                    return found
                return token
            if waited == 0:
                self._counters.add(lock_waits=1)
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL_S[min(waited, len(_POLL_S) - 1)])
            waited += 1
            found = self._decode(self._safe("get", lambda: self.backend.get(rk.key)), chunks)
            if found is not None:
                return found

    # -- async path -----------------------------------------------------------------------
    async def aget_or_compute(
        self,
        pipeline: Any,
        query: str,
        chunks: Sequence[Chunk],
        budget: Budget,
        compute: Callable[[], Awaitable[CompressedContext]],
        *,
        tenant: str = "default",
    ) -> tuple[CompressedContext, bool]:
        """Async :meth:`get_or_compute`: the backend's async client, ``await compute()``."""
        rk = self.key_for(pipeline, query, chunks, budget, tenant=tenant)
        data = await self._asafe("get", lambda: self.backend.aget(rk.key))
        online = data is not _FAILED
        found = self._decode(data, chunks)
        if found is not None:
            return self._hit(found)
        if self._sem is not None and online:
            found = await asyncio.to_thread(self._sem.lookup, rk, query, chunks, tenant)
            if found is not None:
                return self._hit(found, semantic_hits=1)
        fut, leader = self._aflights.join(rk.key)
        if not leader:
            try:
                shared = await asyncio.wait_for(asyncio.shield(fut), self.lock_timeout_s)
            except asyncio.TimeoutError:
                shared = None
            if shared is not None:
                return self._hit(shared, coalesced=1)
            t0 = time.perf_counter()
            ctx = await compute()
            return self._missed(Decoded(ctx, time.perf_counter() - t0))
        result: Decoded | None = None
        try:
            result, hit = await self._alead(rk, query, chunks, tenant, compute, online)
        finally:
            self._aflights.finish(rk.key, fut, result)
        return self._hit(result) if hit else self._missed(result)

    async def _alead(
        self, rk: keys.RequestKey, query: str, chunks: Sequence[Chunk], tenant: str,
        compute: Callable[[], Awaitable[CompressedContext]], online: bool,
    ) -> tuple[Decoded, bool]:
        if not online:
            t0 = time.perf_counter()
            ctx = await compute()
            return Decoded(ctx, time.perf_counter() - t0), False
        found = self._decode(await self._asafe("get", lambda: self.backend.aget(rk.key)), chunks, recheck=True)
        if found is not None:
            return found, True
        lock = keys.lock_key(rk.key)
        token = await self._aacquire(rk, lock, chunks)
        if isinstance(token, Decoded):
            return token, True
        try:
            t0 = time.perf_counter()
            ctx = await compute()
            result = Decoded(ctx, time.perf_counter() - t0)
            payload = self._payload(ctx, result.compute_s)
            stored = await self._asafe("set", lambda: self.backend.aset(  # type: ignore[func-returns-value]
                rk.key, payload, ttl_s=self.ttl_s, tags=self._tags(rk)))
            if stored is not _FAILED:
                self._counters.add(stores=1, bytes_written=len(payload))
                if self._sem is not None:
                    await asyncio.to_thread(self._sem.record, rk, query, tenant)
            return result, False
        finally:
            if token:
                await self._arelease(lock, token)

    async def _arelease(self, lock: str, token: str) -> None:
        await self._asafe("unlock", lambda: self.backend.arelease_lock(lock, token))

    async def _aacquire(self, rk: keys.RequestKey, lock: str, chunks: Sequence[Chunk]) -> str | Decoded | None:
        if not self.backend.shared:
            return None
        deadline = time.monotonic() + self.lock_timeout_s
        waited = 0
        while True:
            token = await self._asafe("lock", lambda: self.backend.aacquire_lock(lock, self.lock_timeout_s))
            if token is _FAILED:
                return None
            if token is not None:
                found = self._decode(await self._asafe("get", lambda: self.backend.aget(rk.key)), chunks,
                                     recheck=True)
                if found is not None:
                    await self._arelease(lock, token)
                    return found
                return token
            if waited == 0:
                self._counters.add(lock_waits=1)
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(_POLL_S[min(waited, len(_POLL_S) - 1)])
            waited += 1
            found = self._decode(await self._asafe("get", lambda: self.backend.aget(rk.key)), chunks)
            if found is not None:
                return found

    # -- lifecycle ------------------------------------------------------------------------
    def invalidate(self, chunk_ids: Sequence[str] | str) -> int:
        """Drop every entry built from any of ``chunk_ids`` (all tenants of the namespace).

        Raises:
            CacheError: the backend failed (invalidation must not fail silently).
        """
        ids = [chunk_ids] if isinstance(chunk_ids, str) else list(chunk_ids)
        return self.backend.invalidate([keys.index_key(self.namespace, c) for c in ids])

    async def ainvalidate(self, chunk_ids: Sequence[str] | str) -> int:
        """Async :meth:`invalidate`."""
        ids = [chunk_ids] if isinstance(chunk_ids, str) else list(chunk_ids)
        return await self.backend.ainvalidate([keys.index_key(self.namespace, c) for c in ids])

    def clear(self) -> int:
        """Drop every key of this namespace (entries, indexes, locks); returns the count.

        Raises:
            CacheError: the backend failed.
        """
        return self.backend.clear(keys.namespace_prefix(self.namespace))

    async def aclear(self) -> int:
        """Async :meth:`clear`."""
        return await self.backend.aclear(keys.namespace_prefix(self.namespace))

    def close(self) -> None:
        """Close the backend's connections."""
        self.backend.close()
