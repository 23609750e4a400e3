"""The Redis backend (redis-py, sync and asyncio), for caches shared across processes.

* URL: the ``url`` argument, else ``CTXCOMP_REDIS_URL``, else ``redis://127.0.0.1:6379/0``.
* Writes are one Lua script: SET with PX, SADD into each chunk's reverse-index set (the
  set's TTL follows its longest-lived entry), and ZADD into the namespace's LRU sorted set,
  trimmed to ``max_entries`` (least recently used first). Hits refresh the LRU score. An
  entry without TTL records its index tags in the namespace's ``#tags`` hash, so that when
  the LRU evicts it, it leaves its index sets too (an emptied set is deleted): index sets
  never outgrow the entries they index.
* Namespace clearing uses SCAN + UNLINK, never KEYS.
* Locks: ``SET lock token NX PX`` with a token naming its owner (host:pid:uuid); release
  and renewal (``PEXPIRE``, for leases: :mod:`ctxcomp.cache.lease`) compare the token (Lua).
* Secrets: the URL's password never appears in a log line or an error (:mod:`ctxcomp.redact`).
* Faults: short socket timeouts, no client-side retries, and a
  :class:`~ctxcomp.cache.faults.CircuitBreaker`; every failure raises
  :class:`~ctxcomp.cache.base.CacheUnavailable` quickly so the caller can compress instead.

The scripts touch keys they were not passed (evicted and indexed entries), so this
backend targets a standalone Redis (or a single cluster slot), not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from ctxcomp._deps import require
from ctxcomp.cache.base import CacheUnavailable, CircuitOpen, check_ttl, positive
from ctxcomp.cache.faults import CircuitBreaker
from ctxcomp.cache.keys import namespace_of
from ctxcomp.errors import CacheError, ConfigError
from ctxcomp.redact import redact, safe_url

DEFAULT_URL = "redis://127.0.0.1:6379/0"
URL_ENV = "CTXCOMP_REDIS_URL"
T = TypeVar("T")

_SET = """
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else redis.call('SET', KEYS[1], ARGV[1]) end
local tags = {}
for i = 4, #KEYS do
  tags[#tags + 1] = KEYS[i]
  redis.call('SADD', KEYS[i], KEYS[1])
  local cur = redis.call('PTTL', KEYS[i])
  if ttl == 0 then redis.call('PERSIST', KEYS[i])
  elseif cur >= 0 and cur < ttl then redis.call('PEXPIRE', KEYS[i], ttl)
  elseif cur == -1 and redis.call('SCARD', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ttl) end
end
local max = tonumber(ARGV[4])
if max > 0 then
  -- An entry without TTL leaves the index sets only when evicted: remember its tags.
  if ttl == 0 and #tags > 0 then redis.call('HSET', KEYS[3], KEYS[1], table.concat(tags, '\\n'))
  else redis.call('HDEL', KEYS[3], KEYS[1]) end
  redis.call('ZADD', KEYS[2], ARGV[3], KEYS[1])
  local over = redis.call('ZCARD', KEYS[2]) - max
  if over > 0 then
    local old = redis.call('ZPOPMIN', KEYS[2], over)
    for i = 1, #old, 2 do
      redis.call('UNLINK', old[i])
      local held = redis.call('HGET', KEYS[3], old[i])
      if held then
        for tag in string.gmatch(held, '[^\\n]+') do
          redis.call('SREM', tag, old[i])
          if redis.call('SCARD', tag) == 0 then redis.call('UNLINK', tag) end
        end
        redis.call('HDEL', KEYS[3], old[i])
      end
    end
  end
end
return 1
"""

_INVALIDATE = """
local n = 0
for i = 3, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for j = 1, #members do
    n = n + redis.call('UNLINK', members[j])
    if #KEYS[1] > 0 then redis.call('ZREM', KEYS[1], members[j]) end
    if #KEYS[2] > 0 then redis.call('HDEL', KEYS[2], members[j]) end
  end
  redis.call('UNLINK', KEYS[i])
end
return n
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_STEAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def resolve_url(url: str | None) -> str:
    """``url``, else ``$CTXCOMP_REDIS_URL``, else the local default."""
    return url or os.environ.get(URL_ENV) or DEFAULT_URL


class RedisBackend:
    """Payloads in Redis, with a reverse index, LRU bound, locks and a circuit breaker.

    Args:
        url: a ``redis://`` URL (see :func:`resolve_url`).
        max_entries: per-namespace entry bound (LRU); None: only TTL and Redis' own
            ``maxmemory`` policy bound the cache.
        timeout_s: socket connect and read timeout; keep it short (a cache must be fast
            or skipped).
        breaker: the circuit breaker (default: open after 3 failures, retry after 5 s).

    Raises:
        MissingDependencyError: redis-py is not installed (extra ``redis``).

    Example:
        >>> backend = RedisBackend("redis://127.0.0.1:6379/0")  # doctest: +SKIP
        >>> backend.set("ctxcomp:demo:t:1:ab", b"j{}", ttl_s=60)  # doctest: +SKIP
    """

    name = "redis"
    shared = True

    def __init__(
        self,
        url: str | None = None,
        *,
        max_entries: int | None = 100_000,
        timeout_s: float = 0.1,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if max_entries is not None and (isinstance(max_entries, bool) or not isinstance(max_entries, int)
                                        or max_entries < 1):
            raise ConfigError(f"max_entries must be a positive int or None, got {max_entries!r}")
        if url is not None and not isinstance(url, str):
            raise ConfigError(f"url must be a redis:// URL string, got {type(url).__name__}")
        if breaker is not None and not isinstance(breaker, CircuitBreaker):
            raise ConfigError(f"breaker must be a CircuitBreaker, got {type(breaker).__name__}")
        self._redis = require("redis", "redis", "the Redis cache backend")
        self.url = resolve_url(url)
        self.max_entries = max_entries
        self.timeout_s = positive(timeout_s, "timeout_s")
        self.breaker = breaker or CircuitBreaker()
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _options(self) -> dict[str, Any]:
        retry_mod = require("redis.retry", "redis")
        backoff = require("redis.backoff", "redis")
        # No client retries: the breaker decides, and a retry only adds latency to a miss.
        return {"socket_timeout": self.timeout_s, "socket_connect_timeout": self.timeout_s,
                "retry": retry_mod.Retry(backoff.NoBackoff(), 0), "health_check_interval": 0}

    @property
    def client(self) -> Any:
        """The sync ``redis.Redis`` client (created on first use)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    try:
                        self._client = self._redis.Redis.from_url(self.url, **self._options())
                    except ValueError as exc:
                        raise ConfigError(f"bad Redis URL {safe_url(self.url)!r}: {redact(exc)}") from None
                    self._scripts = {n: self._client.register_script(s) for n, s in _SCRIPTS.items()}
        return self._client

    def _script(self, name: str) -> Any:
        _ = self.client  # creates the client and registers the scripts
        return self._scripts[name]

    def _aclient(self) -> tuple[Any, dict[str, Any]]:
        # redis.asyncio connections belong to one event loop: one client per loop.
        loop = asyncio.get_running_loop()
        pair = self._aclients.get(loop)
        if pair is None:
            aio = require("redis.asyncio", "redis")
            retry_mod = require("redis.asyncio.retry", "redis")
            backoff = require("redis.backoff", "redis")
            options = {**self._options(), "retry": retry_mod.Retry(backoff.NoBackoff(), 0)}
            client = aio.Redis.from_url(self.url, **options)
            pair = (client, {n: client.register_script(s) for n, s in _SCRIPTS.items()})
            self._aclients[loop] = pair
        return pair

    # -- fault wrapper ---------------------------------------------------------------------
    def _call(self, fn: Callable[[], T]) -> T:
        if not self.breaker.allow():
            raise CircuitOpen(f"Redis at {safe_url(self.url)} is unavailable (circuit open)")
        try:
            result = fn()
        except self._redis.RedisError as exc:
            return self._failed(exc)
        except OSError as exc:
            return self._failed(exc)
        self.breaker.record_success()
        return result

    async def _acall(self, fn: Callable[[], Awaitable[T]]) -> T:
        if not self.breaker.allow():
            raise CircuitOpen(f"Redis at {safe_url(self.url)} is unavailable (circuit open)")
        try:
            result = await fn()
        except (self._redis.RedisError, OSError, asyncio.TimeoutError) as exc:
            return self._failed(exc)
        self.breaker.record_success()
        return result

    def _failed(self, exc: BaseException) -> Any:
        is_down = isinstance(exc, (self._redis.ConnectionError, self._redis.TimeoutError, OSError,
                                   asyncio.TimeoutError))
        if is_down:
            self.breaker.record_failure()
            raise CacheUnavailable(f"Redis at {safe_url(self.url)} failed: {type(exc).__name__}: {redact(exc)}") from None
        self.breaker.record_success()  # the server answered (with an error): it is up
        raise CacheError(f"Redis command failed: {type(exc).__name__}: {redact(exc)}") from None

    # -- argument helpers ------------------------------------------------------------------
    def _set_args(self, key: str, value: bytes, ttl_s: float | None, tags: Sequence[str]) -> tuple[list[str], list[Any]]:
        ttl = check_ttl(ttl_s)
        ttl_ms = 0 if ttl is None else max(1, int(ttl * 1000))
        keys = [key, lru_key_of(key), tags_key_of(key), *tags]
        return keys, [value, ttl_ms, int(time.time() * 1000), self.max_entries or 0]

    # -- sync API --------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        """The payload under ``key`` (refreshing its LRU position), or None."""
        def run() -> Any:
            client = self.client
            if not self.max_entries:
                return client.get(key)
            pipe = client.pipeline(transaction=False)
            pipe.get(key)
            pipe.zadd(lru_key_of(key), {key: int(time.time() * 1000)}, xx=True)
            return pipe.execute()[0]
        return self._call(run)  # type: ignore[no-any-return]

    def set(self, key: str, value: bytes, *, ttl_s: float | None = None, tags: Sequence[str] = ()) -> None:
        """Store ``value`` (PX ttl), index it under ``tags`` and trim the namespace LRU."""
        keys, args = self._set_args(key, value, ttl_s, tags)
        self._call(lambda: self._script("set")(keys=keys, args=args))

    def delete(self, key: str) -> None:
        def run() -> Any:
            pipe = self.client.pipeline(transaction=False)
            pipe.unlink(key)
            pipe.zrem(lru_key_of(key), key)
            pipe.hdel(tags_key_of(key), key)
            return pipe.execute()
        self._call(run)

    def invalidate(self, tags: Sequence[str]) -> int:
        """Drop every entry indexed under ``tags`` (and the index sets themselves)."""
        if not tags:
            return 0
        keys = [lru_key_of(tags[0]) if self.max_entries else "", tags_key_of(tags[0]) if self.max_entries else "",
                *tags]
        return int(self._call(lambda: self._script("invalidate")(keys=keys)))

    def clear(self, prefix: str) -> int:
        """UNLINK every key starting with ``prefix``, found with SCAN (never KEYS)."""
        pattern = _glob_escape(prefix) + "*"

        def run() -> int:
            removed, batch = 0, []
            for key in self.client.scan_iter(match=pattern, count=500):
                batch.append(key)
                if len(batch) >= 500:
                    removed += self.client.unlink(*batch)
                    batch = []
            if batch:
                removed += self.client.unlink(*batch)
            return removed
        return self._call(run)

    def acquire_lock(self, key: str, timeout_s: float) -> str | None:
        token = lock_token()
        ok = self._call(lambda: self.client.set(key, token, nx=True, px=max(1, int(timeout_s * 1000))))
        return token if ok else None

    def release_lock(self, key: str, token: str) -> None:
        self._call(lambda: self._script("release")(keys=[key], args=[token]))

    def lock_state(self, key: str) -> tuple[str, int] | None:
        """(value, TTL in ms) of the lock ``key``, or None when it is free."""
        def run() -> Any:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(key)
            pipe.pttl(key)
            return pipe.execute()
        return _state(self._call(run))

    def steal_lock(self, key: str, value: str, timeout_s: float) -> str | None:
        """Take the lock over if it still holds ``value`` (a holder that stopped renewing)."""
        token = lock_token()
        px = max(1, int(timeout_s * 1000))
        ok = self._call(lambda: self._script("steal")(keys=[key], args=[value, token, px]))
        return token if ok else None

    def renew_lock(self, key: str, token: str, timeout_s: float) -> bool:
        """Extend the lock to ``timeout_s`` from now if ``token`` still holds it."""
        px = max(1, int(timeout_s * 1000))
        return bool(self._call(lambda: self._script("renew")(keys=[key], args=[token, px])))

    def ping(self) -> bool:
        """True when the server answers now (ignores the breaker)."""
        try:
            return bool(self.client.ping())
        except (self._redis.RedisError, OSError):
            return False

    def close(self) -> None:
        """Close the sync client's connections (async clients close with their loops)."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- async API -------------------------------------------------------------------------
    async def aget(self, key: str) -> bytes | None:
        async def run() -> Any:
            client, _ = self._aclient()
            if not self.max_entries:
                return await client.get(key)
            pipe = client.pipeline(transaction=False)
            pipe.get(key)
            pipe.zadd(lru_key_of(key), {key: int(time.time() * 1000)}, xx=True)
            return (await pipe.execute())[0]
        return await self._acall(run)  # type: ignore[no-any-return]

    async def aset(
        self, key: str, value: bytes, *, ttl_s: float | None = None, tags: Sequence[str] = ()
    ) -> None:
        keys, args = self._set_args(key, value, ttl_s, tags)
        await self._acall(lambda: self._aclient()[1]["set"](keys=keys, args=args))

    async def adelete(self, key: str) -> None:
        await self._acall(lambda: self._aclient()[0].unlink(key))

    async def ainvalidate(self, tags: Sequence[str]) -> int:
        if not tags:
            return 0
        keys = [lru_key_of(tags[0]) if self.max_entries else "", tags_key_of(tags[0]) if self.max_entries else "",
                *tags]
        return int(await self._acall(lambda: self._aclient()[1]["invalidate"](keys=keys)))

    async def aclear(self, prefix: str) -> int:
        pattern = _glob_escape(prefix) + "*"

        async def run() -> int:
            client, _ = self._aclient()
            removed = 0
            keys = [k async for k in client.scan_iter(match=pattern, count=500)]
            for i in range(0, len(keys), 500):
                removed += await client.unlink(*keys[i : i + 500])
            return removed
        return await self._acall(run)

    async def aacquire_lock(self, key: str, timeout_s: float) -> str | None:
        token = lock_token()
        px = max(1, int(timeout_s * 1000))
        ok = await self._acall(lambda: self._aclient()[0].set(key, token, nx=True, px=px))
        return token if ok else None

    async def arelease_lock(self, key: str, token: str) -> None:
        await self._acall(lambda: self._aclient()[1]["release"](keys=[key], args=[token]))

    async def alock_state(self, key: str) -> tuple[str, int] | None:
        async def run() -> Any:
            pipe = self._aclient()[0].pipeline(transaction=False)
            pipe.get(key)
            pipe.pttl(key)
            return await pipe.execute()
        return _state(await self._acall(run))

    async def asteal_lock(self, key: str, value: str, timeout_s: float) -> str | None:
        token = lock_token()
        px = max(1, int(timeout_s * 1000))
        ok = await self._acall(lambda: self._aclient()[1]["steal"](keys=[key], args=[value, token, px]))
        return token if ok else None

    async def arenew_lock(self, key: str, token: str, timeout_s: float) -> bool:
        px = max(1, int(timeout_s * 1000))
        return bool(await self._acall(lambda: self._aclient()[1]["renew"](keys=[key], args=[token, px])))

    async def aclose(self) -> None:
        """Close the async client of the running loop."""
        pair = self._aclients.pop(asyncio.get_running_loop(), None)
        if pair is not None:
            await pair[0].aclose()


_SCRIPTS = {"set": _SET, "invalidate": _INVALIDATE, "release": _RELEASE, "renew": _RENEW, "steal": _STEAL}


def lru_key_of(key: str) -> str:
    """The LRU sorted set of the namespace ``key`` belongs to."""
    return namespace_of(key) + "#lru"


def tags_key_of(key: str) -> str:
    """The hash (entry key -> its index tags) of the namespace's entries without TTL."""
    return namespace_of(key) + "#tags"


def _state(reply: Any) -> tuple[str, int] | None:
    value, ttl = reply
    if value is None:
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text, int(ttl) if ttl is not None and int(ttl) >= 0 else 0


def lock_token() -> str:
    """A lock value that names its owner (host, pid) for whoever inspects a stuck lock."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


def _glob_escape(text: str) -> str:
    # Keys are percent-encoded (keys.py), but escape anyway: a prefix is matched literally.
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


__all__ = ["DEFAULT_URL", "URL_ENV", "RedisBackend", "resolve_url"]
