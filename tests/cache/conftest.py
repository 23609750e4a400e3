"""Fixtures for cache tests: counting compressors and namespaced caches on the real Redis."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence

import pytest

from ctxcomp.assembly import Assembly
from ctxcomp.compressors.base import ModelRevision
from ctxcomp.compressors.truncate import TruncateCompressor
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Chunk

REDIS_URL = os.environ.get("CTXCOMP_REDIS_URL", "redis://127.0.0.1:6379/0")


class CountingTruncate(TruncateCompressor):
    """The real truncate compressor, counting its compressions.

    ``delay_s`` stands in for a model's latency so concurrent requests overlap;
    ``mode`` is a setting (it changes the config digest), ``revision`` the weights'
    revision (it changes ``model_revisions()``).
    """

    name = "counting-truncate"

    def __init__(self, delay_s: float = 0.0, mode: str = "a", revision: str = "r1") -> None:
        super().__init__()
        self.delay_s = delay_s
        self.mode = mode
        self.revision = revision
        self.calls = 0
        self._count_lock = threading.Lock()

    def config(self) -> dict[str, str]:
        return {"mode": self.mode}

    def model_revisions(self) -> list[ModelRevision]:
        return [ModelRevision("test-weights", self.revision)]

    def _propose(self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter) -> Assembly:
        with self._count_lock:
            self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        return super()._propose(query, chunks, limit, counter)


LONG = [
    Chunk("The Eiffel Tower was completed in 1889 for the World's Fair in Paris. " * 3, id="eiffel"),
    Chunk("Mount Everest is the highest mountain above sea level, on the Nepal-China border. " * 3,
          id="everest"),
    Chunk("The Great Wall of China stretches for thousands of kilometres across northern China. " * 3,
          id="wall"),
]


@pytest.fixture
def counting() -> type[CountingTruncate]:
    """The CountingTruncate class (test modules cannot import conftest)."""
    return CountingTruncate


@pytest.fixture
def chunks() -> list[Chunk]:
    return list(LONG)


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_URL} does not answer ({exc}); start one or set CTXCOMP_REDIS_URL")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_cache(redis_url: str, namespace: str) -> Iterator:
    """A factory of ContextCaches on the real Redis, all in this test's namespace; cleared after."""
    from ctxcomp.cache import ContextCache, RedisBackend

    made: list = []

    def make(**options):
        backend_opts = {k: options.pop(k) for k in ("max_entries", "timeout_s", "breaker") if k in options}
        cache = ContextCache(RedisBackend(redis_url, **backend_opts), namespace=namespace, **options)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.backend.breaker.record_success()
        cache.clear()
        cache.close()
