"""Redis outages and cross-process stampedes, on redis-servers these tests start themselves.

The outage tests use the real embedding compressor (a real model cost per request) and
compare latency percentiles of a cached pipeline whose Redis died (or hangs) against a
pipeline without cache, interleaving the two so machine load affects both alike.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from ctxcomp.cache import CircuitBreaker, ContextCache, RedisBackend
from ctxcomp.pipeline import Pipeline
from ctxcomp.types import Budget, Chunk

pytestmark = [pytest.mark.redis, pytest.mark.slow]
BUDGET = Budget(max_tokens=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_redis() -> Iterator[tuple[str, subprocess.Popen]]:
    """A private redis-server on a free port (stopped or killed by the test, reaped here)."""
    import redis

    port = _free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--daemonize", "no", "--bind", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=0.5)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the test's redis-server did not start")
    client.close()
    yield url, proc
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.wait(timeout=10)


#: A request must never wait anything like a lock's life (30 s) on a dead or hung server.
HANG_GUARD_S = 5.0


@pytest.fixture(scope="module")
def chunk_embedder():
    from ctxcomp.compressors.embedding import EmbeddingCompressor

    comp = EmbeddingCompressor(unit="chunk")
    comp.setup()
    return comp


def _paired_latencies(cached: Pipeline, plain: Pipeline, chunks: list[Chunk], n: int) -> tuple[list, list]:
    with_cache, without = [], []
    for i in range(n):
        query = f"what happened in year {1800 + i} near landmark number {i}?"
        order = ((cached, with_cache), (plain, without)) if i % 2 else ((plain, without), (cached, with_cache))
        for pipe, sink in order:
            started = time.perf_counter()
            ctx = pipe.compress(query, chunks)
            sink.append(time.perf_counter() - started)
            assert ctx.tokens_out <= BUDGET.max_tokens and ctx.text
    return with_cache, without


@pytest.mark.model
def test_redis_killed_mid_run_requests_still_served_at_no_cache_speed(own_redis, chunk_embedder,
                                                                     chunks: list[Chunk]) -> None:
    url, proc = own_redis
    cache = ContextCache(RedisBackend(url, breaker=CircuitBreaker(3, reset_s=0.5)), namespace="outage")
    cached = Pipeline([chunk_embedder], BUDGET, cache=cache)
    plain = Pipeline([chunk_embedder], BUDGET, cache=False)
    cached.compress("warm up", chunks)
    assert cached.compress("warm up", chunks).stages[0].cache_hit is True
    proc.kill()
    proc.wait(timeout=10)
    with_cache, without = _paired_latencies(cached, plain, chunks, 10)
    stats = cache.stats()
    assert stats.errors >= 1 and stats.misses == 11
    # Every lookup failed fast (refused) or was skipped by the open breaker, and nothing
    # waited on the dead server. (Speed itself is a benchmark's business: bench cache.)
    assert stats.errors + stats.bypassed >= 10, stats
    assert max(with_cache) < max(without) + HANG_GUARD_S, (with_cache, without)


@pytest.mark.model
def test_hung_redis_trips_the_breaker_and_recovers(own_redis, chunk_embedder, chunks: list[Chunk]) -> None:
    url, proc = own_redis
    breaker = CircuitBreaker(3, reset_s=0.5)
    cache = ContextCache(RedisBackend(url, timeout_s=0.1, breaker=breaker), namespace="hang")
    cached = Pipeline([chunk_embedder], BUDGET, cache=cache)
    plain = Pipeline([chunk_embedder], BUDGET, cache=False)
    cached.compress("warm up", chunks)
    os.kill(proc.pid, signal.SIGSTOP)  # accepts connections, never answers: every call times out
    try:
        with_cache, without = _paired_latencies(cached, plain, chunks, 10)
        assert breaker.opened >= 1 and cache.stats().errors >= 3
        assert max(with_cache) < max(without) + HANG_GUARD_S, (with_cache, without)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    time.sleep(0.6)  # past reset_s: the next call is the half-open trial, and it succeeds
    assert cached.compress("warm up", chunks).stages[0].cache_hit is True
    assert breaker.state == "closed"


def test_unreachable_redis_costs_little_once_the_breaker_is_open(counting, chunks: list[Chunk],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ctxcomp.cache.context")
    backend = RedisBackend(f"redis://127.0.0.1:{_free_port()}/0", breaker=CircuitBreaker(2, reset_s=60))
    cache = ContextCache(backend, namespace="down")
    comp = counting()
    pipe = Pipeline([comp], BUDGET, cache=cache)
    for _ in range(5):
        assert pipe.compress("q", chunks).stages[0].cache_hit is False
    assert comp.calls == 5 and backend.breaker.state == "open"
    before = cache.stats()
    assert before.errors == 2 and before.bypassed == 3  # two failures opened it: later gets are skipped
    started = time.perf_counter()
    hit, _ = cache.get_or_compute(pipe, "q", chunks, BUDGET, lambda: pipe.compute("q", chunks, BUDGET))
    after = cache.stats()
    assert after.errors == 2 and after.bypassed == before.bypassed + 1  # the get; then no other call
    assert time.perf_counter() - started < 1.0 and hit.tokens_out <= BUDGET.max_tokens
    failures = [r for r in caplog.records if "cache get on redis failed" in r.getMessage()]
    assert len(failures) == 1  # two failed gets, logged once per interval


_WORKER = textwrap.dedent('''
    import sys, threading, time
    from ctxcomp.cache import ContextCache, RedisBackend
    from ctxcomp.compressors.truncate import TruncateCompressor
    from ctxcomp.pipeline import Pipeline
    from ctxcomp.types import Budget, Chunk

    class SlowTruncate(TruncateCompressor):
        name = "slow-truncate"
        calls = 0
        def _propose(self, query, chunks, limit, counter):
            SlowTruncate.calls += 1
            time.sleep(0.5)
            return super()._propose(query, chunks, limit, counter)

    url, namespace = sys.argv[1], sys.argv[2]
    pipe = Pipeline([SlowTruncate()], Budget(max_tokens=20),
                    cache=ContextCache(RedisBackend(url), namespace=namespace))
    chunks = [Chunk("alpha beta gamma delta " * 20, id="a"), Chunk("epsilon zeta eta " * 20, id="b")]
    pipe.cache.key_for(pipe, "q", chunks, pipe.budget)  # load the tokenizer before the race
    print("ready", flush=True)
    sys.stdin.readline()
    threads = [threading.Thread(target=pipe.compress, args=("q", chunks)) for _ in range(10)]
    for t in threads: t.start()
    for t in threads: t.join()
    print("calls", SlowTruncate.calls, "hits", pipe.cache.stats().hits, flush=True)
''')


def test_two_processes_on_one_cold_key_compress_once(redis_url: str, namespace: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, redis_url, namespace], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=60)[0].split() for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        ContextCache(RedisBackend(redis_url), namespace=namespace).clear()
    calls = [int(out[out.index("calls") + 1]) for out in outputs]
    hits = [int(out[out.index("hits") + 1]) for out in outputs]
    assert sum(calls) == 1 and sum(hits) == 19
