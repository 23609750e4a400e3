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
from ctxcomp.cache.base import CacheBackend, CircuitOpen, check_ttl, positive
from ctxcomp.cache.codec import (
    DEFAULT_COMPRESS_THRESHOLD,
    DEFAULT_MAX_PAYLOAD_BYTES,
    CorruptPayload,
    Decoded,
    decode,
    encode,
    sign,
)
from ctxcomp.cache.faults import LogThrottle
from ctxcomp.cache.flight import AsyncSingleFlight, SingleFlight
from ctxcomp.cache.lease import DEFAULT_LEASE_S, AsyncLease, Lease, StaleWatch
from ctxcomp.cache.memory import MemoryBackend
from ctxcomp.cache.semantic import QueryEncoder, SemanticConfig
from ctxcomp.cache.semantic_ops import SemanticOps
from ctxcomp.cache.stats import CacheStats, Counters
from ctxcomp.errors import CacheError, ConfigError
from ctxcomp.redact import redact
from ctxcomp.tokens import get_counter
from ctxcomp.types import Budget, Chunk, CompressedContext

log = logging.getLogger(__name__)
T = TypeVar("T")
_FAILED: Any = object()
_POLL_S = (0.005, 0.01, 0.02, 0.05)


def _hmac_key(value: bytes | str | None) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, bytes) or len(value) < 16:
        raise ConfigError("hmac_key must be a str or bytes of at least 16 bytes (a random secret shared by "
                          "every process that uses the cache)")
    return value


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
        lock_timeout_s: the longest a request waits for another process's computation
            before computing itself.
        lock_lease_s: the cross-process lock's lease: the lock expires this long after its
            holder last renewed it (renewed every third of it while computing), so a
            crashed holder's lock is taken over within a lease, and a long computation
            keeps its lock.
        compress_threshold: payloads above this many bytes are zlib-compressed.
        log_interval_s: a recurring backend error is logged at most once per interval.
        hmac_key: a secret (>= 16 bytes) to sign payloads with and to require on every
            read: for a Redis shared with writers you do not trust. None: unsigned.
        max_payload_bytes: no payload, or its decompressed body, is read past this size.

    Raises:
        ConfigError: a setting of the wrong type or out of range.

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
        lock_lease_s: float = DEFAULT_LEASE_S,
        compress_threshold: int = DEFAULT_COMPRESS_THRESHOLD,
        log_interval_s: float = 30.0,
        hmac_key: bytes | str | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        if backend is not None and not isinstance(backend, CacheBackend):
            raise ConfigError(f"backend must be a CacheBackend, got {type(backend).__name__}")
        self.backend: CacheBackend = backend if backend is not None else MemoryBackend()
        self.namespace = _name(namespace, "namespace")
        self.ttl_s = check_ttl(ttl_s)
        if semantic is True:
            semantic = SemanticConfig()
        if semantic not in (None, False) and not isinstance(semantic, SemanticConfig):
            raise ConfigError(f"semantic must be a SemanticConfig, a bool or None, got {semantic!r}")
        self.semantic: SemanticConfig | None = semantic or None
        self.lock_timeout_s = positive(lock_timeout_s, "lock_timeout_s")
        self.lock_lease_s = positive(lock_lease_s, "lock_lease_s")
        self.compress_threshold = positive(compress_threshold, "compress_threshold", integer=True, minimum=0)
        self.max_payload_bytes = positive(max_payload_bytes, "max_payload_bytes", integer=True)
        self.hmac_key = _hmac_key(hmac_key)
        self._counters = Counters()
        self._throttle = LogThrottle(log, positive(log_interval_s, "log_interval_s", minimum=0))
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

    def _decode(
        self, data: Any, chunks: Sequence[Chunk], rk: keys.RequestKey, *, recheck: bool = False, key: str = ""
    ) -> Decoded | None:
        if data is _FAILED or data is None:
            return None
        try:
            # A signed payload's counts are ours; an unsigned one's are recounted (~0.25 ms per
            # 1k output tokens the first time a process sees that text).
            recount = rk.model and self.hmac_key is None
            found = decode(data, chunks, key=key or rk.key, hmac_key=self.hmac_key,
                           counter=get_counter(rk.model) if recount else None, model=rk.model or None,
                           max_bytes=self.max_payload_bytes)
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

    def _payload(self, ctx: CompressedContext, compute_s: float, key: str) -> bytes:
        payload = encode(ctx, compute_s, compress_threshold=self.compress_threshold)
        return sign(payload, key, self.hmac_key) if self.hmac_key is not None else payload

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
        found = self._decode(data, chunks, rk)
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
        found = self._decode(data, chunks, rk)
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
        found = self._decode(self._safe("get", lambda: self.backend.get(rk.key)), chunks, rk, recheck=True)
        if found is not None:
            return found, True
        lock = keys.lock_key(rk.key)
        token = self._acquire(rk, lock, chunks)
        if isinstance(token, Decoded):  # another process computed it while we waited
            return token, True
        try:
            with Lease(self.backend, lock, token, self.lock_lease_s):
                result = self._compute(compute)
            payload = self._payload(result.context, result.compute_s, rk.key)
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
            token = self._safe("lock", lambda: self.backend.acquire_lock(lock, self.lock_lease_s))
            if token is _FAILED:
                return None
            if token is not None:
                # Re-check: a holder may have stored the entry and released just before we got the lock.
                found = self._decode(self._safe("get", lambda: self.backend.get(rk.key)), chunks, rk, recheck=True)
                if found is not None:
                    self._release(lock, token)
                    return found
                return token
            if waited == 0:
                self._counters.add(lock_waits=1)
                watch = StaleWatch(self.lock_lease_s)
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL_S[min(waited, len(_POLL_S) - 1)])
            waited += 1
            found = self._decode(self._safe("get", lambda: self.backend.get(rk.key)), chunks, rk)
            if found is not None:
                return found
            stolen = self._take_stale(lock, watch)
            if stolen is not None:
                return stolen

    def _take_stale(self, lock: str, watch: StaleWatch) -> str | None:
        """A token for ``lock`` if its holder is gone (see :class:`StaleWatch`), else None."""
        state_of, steal = getattr(self.backend, "lock_state", None), getattr(self.backend, "steal_lock", None)
        if state_of is None or steal is None:
            return None
        state = self._safe("lock", lambda: state_of(lock))
        if state is _FAILED or not watch.stale(state, time.monotonic()):
            return None
        token = self._safe("lock", lambda: steal(lock, state[0], self.lock_lease_s))
        if token is _FAILED or token is None:
            return None
        self._counters.add(lock_takeovers=1)
        log.warning("took over a cache lock its holder stopped renewing (held by %s)", redact(state[0])[:80])
        return str(token)

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
        """Async :meth:`get_or_compute`: the backend's async client, ``await compute()``.

        The key (a hash over every chunk's text and metadata: milliseconds for large
        requests) is computed in a worker thread, so the event loop never waits on it.
        """
        rk = await asyncio.to_thread(self.key_for, pipeline, query, chunks, budget, tenant=tenant)
        data = await self._asafe("get", lambda: self.backend.aget(rk.key))
        online = data is not _FAILED
        found = self._decode(data, chunks, rk)
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
        found = self._decode(await self._asafe("get", lambda: self.backend.aget(rk.key)), chunks, rk, recheck=True)
        if found is not None:
            return found, True
        lock = keys.lock_key(rk.key)
        token = await self._aacquire(rk, lock, chunks)
        if isinstance(token, Decoded):
            return token, True
        try:
            t0 = time.perf_counter()
            async with AsyncLease(self.backend, lock, token, self.lock_lease_s):
                ctx = await compute()
            result = Decoded(ctx, time.perf_counter() - t0)
            payload = self._payload(ctx, result.compute_s, rk.key)
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
            token = await self._asafe("lock", lambda: self.backend.aacquire_lock(lock, self.lock_lease_s))
            if token is _FAILED:
                return None
            if token is not None:
                found = self._decode(await self._asafe("get", lambda: self.backend.aget(rk.key)), chunks, rk,
                                     recheck=True)
                if found is not None:
                    await self._arelease(lock, token)
                    return found
                return token
            if waited == 0:
                self._counters.add(lock_waits=1)
                watch = StaleWatch(self.lock_lease_s)
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(_POLL_S[min(waited, len(_POLL_S) - 1)])
            waited += 1
            found = self._decode(await self._asafe("get", lambda: self.backend.aget(rk.key)), chunks, rk)
            if found is not None:
                return found
            stolen = await self._atake_stale(lock, watch)
            if stolen is not None:
                return stolen

    async def _atake_stale(self, lock: str, watch: StaleWatch) -> str | None:
        state_of, steal = getattr(self.backend, "alock_state", None), getattr(self.backend, "asteal_lock", None)
        if state_of is None or steal is None:
            return None
        state = await self._asafe("lock", lambda: state_of(lock))
        if state is _FAILED or not watch.stale(state, time.monotonic()):
            return None
        token = await self._asafe("lock", lambda: steal(lock, state[0], self.lock_lease_s))
        if token is _FAILED or token is None:
            return None
        self._counters.add(lock_takeovers=1)
        log.warning("took over a cache lock its holder stopped renewing (held by %s)", redact(state[0])[:80])
        return str(token)

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
