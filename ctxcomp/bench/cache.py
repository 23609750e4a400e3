"""``ctxcomp bench cache``: hit vs miss latency, cross-process throughput, memory per entry.

For each backend (the in-process LRU, and Redis unless ``--redis none``):

* ``miss_*``: full ``Pipeline.compress`` of a cold request (key, compression with a real
  model, encode, store), one per distinct request;
* ``hit_*``: full ``Pipeline.compress`` of a warm request (key, get, decode and validate,
  reports), measured in the same run, so ``ratio = miss_p50 / hit_p50``;
* ``get_decode_*``: the backend read plus payload decode alone.

Throughput: worker processes (not the one that filled the cache) run concurrent client
threads on the warm Redis entries for a fixed time. Memory per entry: tracemalloc delta
of the in-process backend, and Redis ``used_memory`` delta, for real payloads stored with
their reverse-index and LRU bookkeeping.

The contexts are ~2k tokens (budget 2,000 over the 20 passages of an NQ record, about
2.7k tokens in), from ``--data`` (NQ JSONL), else ``$CTXCOMP_SHARED_DIR`` or
``../shared``'s NQ dev slice, else the demo passages shipped with ctxcomp.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ctxcomp.types import Budget, Chunk

log = logging.getLogger(__name__)
TARGET_HIT_P50_MS = 2.0
Request = tuple[str, tuple[Chunk, ...]]


def _ms(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 4), "p99_ms": round(p99 * 1000, 4),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 4), "n": len(ordered)}


def load_requests(data: str | None, count: int) -> tuple[list[Request], str]:
    """``count`` distinct (query, chunks) requests and a description of their source."""
    shared = Path(os.environ.get("CTXCOMP_SHARED_DIR", "../shared")) / "data" / "nq20" / "dev.jsonl.gz"
    path = Path(data) if data else shared
    if path.exists():
        from ctxcomp.bench.data import load_nq

        examples = load_nq(path)[:count]
        return [(e.query, e.chunks) for e in examples], str(path)
    if data:
        from ctxcomp.errors import InputError

        raise InputError(f"no data at {data}")
    from importlib import resources

    from ctxcomp.io import read_requests

    with resources.as_file(resources.files("ctxcomp").joinpath("data/demo.jsonl")) as demo:
        request = read_requests(demo)[0]
    chunks = tuple(request.chunks)
    base = request.query or "when was the film released"
    return [(f"{base} (variant {i})" if i else base, chunks) for i in range(count)], "ctxcomp/data/demo.jsonl"


def _pipeline(compressor: str, budget: Budget, cache: Any) -> Any:
    from ctxcomp.pipeline import Pipeline

    return Pipeline([compressor], budget, cache=cache)


def _expect(ctx: Any, *, hit: bool) -> None:
    if not ctx.stages or any(s.cache_hit is not hit for s in ctx.stages):
        raise RuntimeError(f"benchmark expected a cache {'hit' if hit else 'miss'}, got {ctx.stages}")


def measure_backend(backend: Any, requests: list[Request], compressor: str, budget: Budget,
                    hits: int) -> dict[str, Any]:
    """Miss, hit and get+decode latencies of one backend, in one run."""
    from ctxcomp.cache import ContextCache
    from ctxcomp.cache.codec import decode

    cache = ContextCache(backend, namespace=f"bench-{uuid.uuid4().hex[:8]}")
    pipe = _pipeline(compressor, budget, cache)
    misses, hit_times, decode_times = [], [], []
    contexts = []
    for query, chunks in requests:
        started = time.perf_counter()
        ctx = pipe.compress(query, list(chunks))
        misses.append(time.perf_counter() - started)
        _expect(ctx, hit=False)
        contexts.append(ctx)
    request_keys = [cache.key_for(pipe, q, list(c), budget).key for q, c in requests]
    for i in range(hits):
        query, chunks = requests[i % len(requests)]
        started = time.perf_counter()
        ctx = pipe.compress(query, list(chunks))
        hit_times.append(time.perf_counter() - started)
        _expect(ctx, hit=True)
        started = time.perf_counter()
        decode(backend.get(request_keys[i % len(requests)]), chunks)
        decode_times.append(time.perf_counter() - started)
    payload = backend.get(request_keys[0])
    miss, hit = _ms(misses), _ms(hit_times)
    return {
        "backend": backend.name,
        "miss": miss, "hit": hit, "get_decode": _ms(decode_times),
        "ratio": round(miss["p50_ms"] / hit["p50_ms"], 1),
        "context_tokens_out": [c.tokens_out for c in contexts],
        "context_tokens_in": [c.tokens_in for c in contexts],
        "payload_bytes": len(payload), "payload_format": payload[:1].decode(),
        "stats": cache.stats().to_dict(),
        "_namespace": cache.namespace, "_payload": payload,
    }


def _throughput_worker(url: str, namespace: str, compressor: str, budget_tokens: int, requests: list[Request],
                       clients: int, seconds: float, ready: Any, start: Any, results: Any) -> None:
    """One worker process: ``clients`` threads compressing warm requests for ``seconds``."""
    from ctxcomp.cache import ContextCache, RedisBackend

    cache = ContextCache(RedisBackend(url), namespace=namespace)
    pipe = _pipeline(compressor, Budget(max_tokens=budget_tokens), cache)
    for query, chunks in requests:  # warm the key path (tokenizer, model revision) and check hits
        pipe.compress(query, list(chunks))
    cache.reset_stats()
    ready.put(os.getpid())
    start.wait()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    deadline = time.perf_counter() + seconds

    def client(i: int) -> None:
        n = i
        while time.perf_counter() < deadline:
            query, chunks = requests[n % len(requests)]
            t0 = time.perf_counter()
            pipe.compress(query, list(chunks))
            latencies[i].append(time.perf_counter() - t0)
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = cache.stats()
    results.put({"requests": sum(map(len, latencies)), "hits": stats.hits, "misses": stats.misses,
                 "errors": stats.errors, "latencies": [x for lat in latencies for x in lat]})


def measure_throughput(url: str, namespace: str, compressor: str, budget: Budget, requests: list[Request],
                       procs: int, clients: int, seconds: float) -> dict[str, Any]:
    """Requests/s of ``procs`` worker processes x ``clients`` threads on warm Redis entries."""
    ctx = mp.get_context("spawn")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=_throughput_worker,
                           args=(url, namespace, compressor, budget.max_tokens, requests, clients, seconds,
                                 ready, start, results)) for _ in range(procs)]
    for w in workers:
        w.start()
    try:
        for _ in workers:
            ready.get(timeout=300)
        start.set()
        outs = [results.get(timeout=seconds + 120) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=30)
            if w.is_alive():
                w.kill()
    total = sum(o["requests"] for o in outs)
    latencies = [x for o in outs for x in o["latencies"]]
    return {"processes": procs, "clients_per_process": clients, "seconds": seconds, "requests": total,
            "requests_per_s": round(total / seconds, 1), "hits": sum(o["hits"] for o in outs),
            "misses": sum(o["misses"] for o in outs), "errors": sum(o["errors"] for o in outs),
            "latency_under_load": _ms(latencies) if latencies else None}


def memory_per_entry_local(payload: bytes, chunk_ids: Sequence[str], entries: int) -> dict[str, Any]:
    """Bytes per entry held by the in-process backend (tracemalloc), real payload size."""
    from ctxcomp.cache import keys
    from ctxcomp.cache.memory import MemoryBackend

    backend = MemoryBackend(max_entries=entries + 1, max_bytes=2**40)
    tags = [keys.index_key("bench", c) for c in chunk_ids]
    copies = [bytes(bytearray(payload)) for _ in range(entries)]  # one buffer per entry, as in real use
    names = [f"ctxcomp:bench:t:1:{uuid.uuid4().hex}{uuid.uuid4().hex}" for _ in range(entries)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for name, value in zip(names, copies, strict=True):
        backend.set(name, value, tags=tags)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    overhead = (after - before) / entries
    return {"entries": entries, "payload_bytes": len(payload),
            "bytes_per_entry": round(overhead + len(payload)),
            "bookkeeping_bytes_per_entry": round(overhead),
            "accounted_bytes_per_entry": round(backend.size_bytes / entries)}


def memory_per_entry_redis(url: str, payload: bytes, chunk_ids: Sequence[str], entries: int) -> dict[str, Any]:
    """Redis ``used_memory`` growth per entry (payload + index sets + LRU set)."""
    from ctxcomp.cache import RedisBackend, keys

    backend = RedisBackend(url, max_entries=entries * 2)
    namespace = f"bench-mem-{uuid.uuid4().hex[:8]}"
    tags = [keys.index_key(namespace, c) for c in chunk_ids]
    client = backend.client
    try:
        before = int(client.info("memory")["used_memory"])
        first = ""
        for _ in range(entries):
            key = f"{keys.entry_prefix(namespace, 't')}1:{uuid.uuid4().hex}{uuid.uuid4().hex}"
            first = first or key
            backend.set(key, payload, ttl_s=3600, tags=tags)
        after = int(client.info("memory")["used_memory"])
        usage = client.memory_usage(first)
    finally:
        backend.clear(keys.namespace_prefix(namespace))
        backend.close()
    return {"entries": entries, "payload_bytes": len(payload), "bytes_per_entry": round((after - before) / entries),
            "memory_usage_of_one_key": usage}


def run(args: argparse.Namespace, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark and return the results document."""
    from ctxcomp.cache import MemoryBackend, RedisBackend

    budget = Budget(max_tokens=args.budget)
    requests, source = load_requests(args.data, args.requests)
    say(f"data: {source}; {len(requests)} requests; compressor {args.compressor}; budget {args.budget}")
    query, chunks = requests[0]
    _pipeline(args.compressor, budget, False).compress(query, list(chunks))  # load models and tokenizer first
    results: dict[str, Any] = {"backends": {}}
    backends: list[Any] = [MemoryBackend()]
    if args.redis != "none":
        redis_backend = RedisBackend(args.redis)
        if not redis_backend.ping():
            raise SystemExit(f"ctxcomp bench cache: Redis at {redis_backend.url} does not answer (--redis none skips it)")
        backends.append(redis_backend)
    for backend in backends:
        row = measure_backend(backend, requests, args.compressor, budget, args.hits)
        say(f"{backend.name}: hit p50 {row['hit']['p50_ms']:.3f} ms, p99 {row['hit']['p99_ms']:.3f} ms; "
            f"miss p50 {row['miss']['p50_ms']:.1f} ms; ratio {row['ratio']}x")
        results["backends"][backend.name] = row
    main = results["backends"].get("redis") or results["backends"]["memory"]
    payload, chunk_ids = main.pop("_payload"), [c.id for c in requests[0][1]]
    results["backends"]["memory"].pop("_payload", None)
    results["memory_per_entry"] = {"memory": memory_per_entry_local(payload, chunk_ids, args.entries)}
    if args.redis != "none":
        redis_row = results["backends"]["redis"]
        results["throughput"] = measure_throughput(
            backends[1].url, redis_row["_namespace"], args.compressor, budget, requests, args.procs,
            args.clients, args.seconds)
        say(f"throughput: {results['throughput']['requests_per_s']} req/s from {args.procs} other process(es) "
            f"x {args.clients} clients")
        results["memory_per_entry"]["redis"] = memory_per_entry_redis(backends[1].url, payload, chunk_ids,
                                                                      args.entries)
        backends[1].clear(f"ctxcomp:{redis_row['_namespace']}:")
    for row in results["backends"].values():
        row.pop("_namespace", None)
    results.update({
        "backend": main["backend"], "hit_p50_ms": main["hit"]["p50_ms"], "hit_p99_ms": main["hit"]["p99_ms"],
        "miss_p50_ms": main["miss"]["p50_ms"], "ratio": main["ratio"],
        "target_hit_p50_ms": TARGET_HIT_P50_MS, "meets_target": main["hit"]["p50_ms"] <= TARGET_HIT_P50_MS,
        "context_tokens": statistics.median(main["context_tokens_out"]), "data": source,
    })
    return results


def _environment() -> dict[str, Any]:
    try:
        from ctxcomp.bench.report import environment

        return environment()
    except ImportError:  # the report module is optional here
        return {"cpu_count": os.cpu_count(), "argv": sys.argv}


def cmd_cache(args: argparse.Namespace) -> int:
    """Entry point of ``ctxcomp bench cache``."""
    import json

    started = time.perf_counter()
    env = _environment()
    results = run(args, say=lambda line: print(line, file=sys.stderr))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    doc = {"suite": "cache", "environment": {**env, "load_average_1m_end": load},
           "settings": {k: v for k, v in vars(args).items() if k not in ("func", "command", "suite", "verbose")},
           "seconds": round(time.perf_counter() - started, 1), **results}
    out = Path(args.out) if args.out else (Path("benchmarks/results/cache.json") if Path("benchmarks/results").is_dir()
                                           else Path("bench-cache.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    summary = {k: results[k] for k in ("backend", "hit_p50_ms", "hit_p99_ms", "miss_p50_ms", "ratio", "meets_target")}
    print(json.dumps(summary))
    print(f"results: {out}", file=sys.stderr)
    return 0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def register(subparsers: Any) -> None:
    """Add the ``cache`` suite to ``ctxcomp bench``'s sub-parsers."""
    from ctxcomp.cache.redis_backend import resolve_url

    p = subparsers.add_parser("cache", help="cache hit/miss latency, throughput and memory per entry",
                              description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--redis", default=resolve_url(None),
                   help="Redis URL (default $CTXCOMP_REDIS_URL or redis://127.0.0.1:6379/0); 'none' skips Redis")
    p.add_argument("--out", help="results JSON (default benchmarks/results/cache.json if that folder exists)")
    p.add_argument("--data", help="NQ JSONL(.gz) (default: the shared NQ dev slice, else the demo passages)")
    p.add_argument("--compressor", default="embedding", help="the compressor whose misses are measured")
    p.add_argument("--budget", type=_count, default=2000, help="token budget = cached context size (default 2000)")
    p.add_argument("--requests", type=_count, default=6, help="distinct requests (= misses) per backend (default 6)")
    p.add_argument("--hits", type=_count, default=1000, help="hits measured per backend (default 1000)")
    p.add_argument("--procs", type=_count, default=2, help="worker processes for throughput (default 2)")
    p.add_argument("--clients", type=_count, default=4, help="client threads per worker process (default 4)")
    p.add_argument("--seconds", type=_seconds, default=5.0, help="throughput window (default 5)")
    p.add_argument("--entries", type=_count, default=1000, help="entries stored to measure memory (default 1000)")
    p.set_defaults(func=cmd_cache)
