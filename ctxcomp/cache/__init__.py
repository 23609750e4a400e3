"""The cache of compressed contexts: in-process LRU by default, Redis for production.

A :class:`ContextCache` sits in front of a :class:`CacheBackend`:

* :class:`MemoryBackend`: an in-process LRU bounded by entries and bytes (the default);
* :class:`RedisBackend`: redis-py sync and asyncio clients (extra ``redis``); the URL
  comes from the config or ``CTXCOMP_REDIS_URL``.

Keys are ``ctxcomp:{namespace}:{tenant}:{schema_version}:{sha256}`` over the query, the
chunks (ids and content hashes), the pipeline config digest, the model revisions, the
target tokenizer and the budget (:mod:`ctxcomp.cache.keys`). Payloads are versioned JSON,
zlib-compressed when large, never pickle (:mod:`ctxcomp.cache.codec`).

Example:
    >>> from ctxcomp import Budget, Pipeline
    >>> from ctxcomp.cache import build_cache
    >>> cache = build_cache(backend="memory", max_entries=100)
    >>> pipe = Pipeline(["truncate"], Budget(max_tokens=50), cache=cache)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ctxcomp._deps import lazy_exports
from ctxcomp.errors import ConfigError

_LAZY = {
    "CacheBackend": "ctxcomp.cache.base",
    "CacheUnavailable": "ctxcomp.cache.base",
    "CircuitOpen": "ctxcomp.cache.base",
    "CacheStats": "ctxcomp.cache.stats",
    "CircuitBreaker": "ctxcomp.cache.faults",
    "ContextCache": "ctxcomp.cache.context",
    "CorruptPayload": "ctxcomp.cache.codec",
    "MemoryBackend": "ctxcomp.cache.memory",
    "RedisBackend": "ctxcomp.cache.redis_backend",
    "SemanticConfig": "ctxcomp.cache.semantic",
    "SCHEMA_VERSION": "ctxcomp.cache.codec",
}

__all__ = [
    "SCHEMA_VERSION", "CacheBackend", "CacheStats", "CacheUnavailable", "CircuitBreaker", "CircuitOpen", "ContextCache",
    "CorruptPayload", "MemoryBackend", "RedisBackend", "SemanticConfig", "build_cache", "default_cache",
    "resolve_cache",
]

if TYPE_CHECKING:
    from ctxcomp.cache.base import CacheBackend, CacheUnavailable, CircuitOpen
    from ctxcomp.cache.codec import SCHEMA_VERSION, CorruptPayload
    from ctxcomp.cache.context import ContextCache
    from ctxcomp.cache.faults import CircuitBreaker
    from ctxcomp.cache.memory import MemoryBackend
    from ctxcomp.cache.redis_backend import RedisBackend
    from ctxcomp.cache.semantic import SemanticConfig
    from ctxcomp.cache.stats import CacheStats


__getattr__ = lazy_exports("ctxcomp.cache", _LAZY, globals())


_KEYS = {"backend", "url", "namespace", "ttl_s", "max_entries", "max_bytes", "semantic",
         "lock_timeout_s", "lock_lease_s", "timeout_s", "compress_threshold", "log_interval_s",
         "failure_threshold", "reset_s", "hmac_key", "max_payload_bytes"}
#: The environment variable an HMAC key for a shared (Redis) cache may come from.
HMAC_ENV = "CTXCOMP_CACHE_HMAC_KEY"


def _semantic(value: Any) -> Any:
    from ctxcomp.cache.semantic import SemanticConfig

    if value is None or value is False:
        return None
    if value is True:
        return SemanticConfig()
    if isinstance(value, SemanticConfig):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"threshold", "model", "max_candidates"}
        if unknown:
            raise ConfigError(f"unknown semantic cache keys: {sorted(unknown)}")
        return SemanticConfig(**value)
    raise ConfigError(f"'semantic' must be a bool or a mapping, got {value!r}")


def build_cache(**settings: Any) -> ContextCache | None:
    """A :class:`ContextCache` from config settings (a pipeline spec's ``cache:`` mapping).

    Keys: ``backend`` (``memory`` | ``redis`` | ``none``; default ``memory``), ``url``
    (Redis; default ``$CTXCOMP_REDIS_URL``), ``namespace``, ``ttl_s``, ``max_entries``,
    ``max_bytes`` (memory), ``semantic`` (bool or ``{threshold, model, max_candidates}``),
    ``lock_timeout_s``, ``lock_lease_s``, ``timeout_s`` (Redis socket timeout),
    ``failure_threshold`` and ``reset_s`` (circuit breaker), ``compress_threshold``,
    ``log_interval_s``, ``hmac_key`` (sign and verify payloads; for Redis it defaults to
    ``$CTXCOMP_CACHE_HMAC_KEY``), ``max_payload_bytes``. Every value's type is checked
    here, so a mistyped setting (``log_interval_s: "30"``) fails when the cache is built,
    never during a compression.

    Returns:
        the cache, or None for ``backend: none`` (caching disabled).

    Raises:
        ConfigError: an unknown key or backend, or a bad value.
        MissingDependencyError: ``redis`` without redis-py installed.
    """
    from ctxcomp.cache.context import ContextCache
    from ctxcomp.cache.faults import CircuitBreaker
    from ctxcomp.cache.memory import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, MemoryBackend

    unknown = set(settings) - _KEYS
    if unknown:
        raise ConfigError(f"unknown cache keys: {sorted(unknown)}; allowed: {sorted(_KEYS)}")
    kind = settings.get("backend", "memory")
    if kind is not None and not isinstance(kind, (str, bool)):
        raise ConfigError(f"cache backend must be a name (memory, redis, none), got {kind!r}")
    backend: Any
    if kind in ("none", "off", None, False):
        return None
    if kind == "memory":
        if "url" in settings:
            raise ConfigError("'url' applies to backend: redis, not memory")
        backend = MemoryBackend(max_entries=settings.get("max_entries", DEFAULT_MAX_ENTRIES),
                                max_bytes=settings.get("max_bytes", DEFAULT_MAX_BYTES))
    elif kind == "redis":
        from ctxcomp.cache.redis_backend import RedisBackend

        if "max_bytes" in settings:
            raise ConfigError("'max_bytes' applies to backend: memory; bound Redis with maxmemory")
        breaker = CircuitBreaker(settings.get("failure_threshold", 3), settings.get("reset_s", 5.0))
        backend = RedisBackend(settings.get("url"), max_entries=settings.get("max_entries", 100_000),
                               timeout_s=settings.get("timeout_s", 0.1), breaker=breaker)
    else:
        raise ConfigError(f"unknown cache backend {kind!r}; known: memory, redis, none")
    options = {k: settings[k] for k in ("namespace", "ttl_s", "lock_timeout_s", "lock_lease_s", "compress_threshold",
                                        "log_interval_s", "hmac_key", "max_payload_bytes") if k in settings}
    if kind == "redis" and "hmac_key" not in options and os.environ.get(HMAC_ENV):
        options["hmac_key"] = os.environ[HMAC_ENV]
    return ContextCache(backend, semantic=_semantic(settings.get("semantic")), **options)


def default_cache() -> ContextCache:
    """The default: a fresh in-process LRU cache (1,024 entries, 64 MiB)."""
    from ctxcomp.cache.context import ContextCache

    return ContextCache()


def resolve_cache(cache: Any) -> ContextCache | None:
    """What a Pipeline's ``cache`` argument means.

    * None (or True): a new in-process LRU cache (:func:`default_cache`);
    * False: no cache;
    * a :class:`ContextCache` (or anything with ``get_or_compute``): used as is;
    * a :class:`CacheBackend`: wrapped in a :class:`ContextCache`;
    * a mapping: :func:`build_cache` settings; a ``redis://`` URL string: a Redis cache.

    Raises:
        ConfigError: anything else.
    """
    from ctxcomp.cache.base import CacheBackend
    from ctxcomp.cache.context import ContextCache

    if cache is None or cache is True:
        return default_cache()
    if cache is False:
        return None
    if hasattr(cache, "get_or_compute"):
        return cache  # type: ignore[no-any-return]
    if isinstance(cache, CacheBackend):
        return ContextCache(cache)
    if isinstance(cache, Mapping):
        return build_cache(**cache)
    if isinstance(cache, str) and cache.startswith(("redis://", "rediss://", "unix://")):
        return build_cache(backend="redis", url=cache)
    raise ConfigError(f"cache must be None, False, a ContextCache, a CacheBackend, a mapping or a "
                      f"redis:// URL, got {type(cache).__name__}")
