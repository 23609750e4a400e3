"""Size and cost bounds of issue 11, measured: truncate scaling, hostile cache payloads,
the token-count memo.

* truncate: seconds to compress 1k, 4k and 10k short chunks at ratio 2, this code against
  the original algorithm (exact re-count of the assembled prefix after every chunk, kept
  here as ``quadratic_truncate``; 10k is skipped for it: the issue measured 166 s);
* a 300 KB zlib bomb (inflates to 300 MB) and a 200 KB ``[[[[...]]]]`` payload decoded
  against a request: seconds and peak RSS rise, and what the old unbounded decode cost;
* the token-count memo after counting 3,000 chunks of 16 KB: bytes still held.

    flock /work/.bench.lock python benchmarks/robustness/limits.py --out benchmarks/results/limits.json
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any


def quadratic_truncate(chunks: list[Any], limit: int, counter: Any) -> Any:
    from ctxcomp.assembly import Unit, assemble, longest_prefix

    kept: list[Unit] = []
    for index, chunk in enumerate(chunks):
        unit = Unit(index, (0, len(chunk.text)), score=-float(index))
        if assemble(chunks, [*kept, unit], counter).tokens <= limit:
            kept.append(unit)
            continue
        partial = longest_prefix(chunks, unit, counter, limit, before=kept)
        if partial is not None:
            kept.append(partial)
        break
    return assemble(chunks, kept, counter)


def truncate_scaling() -> dict[str, Any]:
    from ctxcomp.compressors.truncate import TruncateCompressor
    from ctxcomp.tokens import TiktokenCounter
    from ctxcomp.types import Budget, Chunk

    out: dict[str, Any] = {}
    for n in (1_000, 4_000, 10_000):
        chunks = [Chunk(f"chunk number {i} says hello world.", id=str(i)) for i in range(n)]
        started = time.perf_counter()
        ctx = TruncateCompressor().compress("", chunks, Budget(ratio=2))
        new = time.perf_counter() - started
        row = {"seconds": round(new, 3), "tokens_out": ctx.tokens_out, "budget": ctx.budget_tokens}
        if n <= 4_000:
            counter = TiktokenCounter("o200k_base")  # a fresh memo, as the first call had
            started = time.perf_counter()
            old = quadratic_truncate(chunks, ctx.budget_tokens or 0, counter)
            row["quadratic_seconds"] = round(time.perf_counter() - started, 3)
            row["same_output"] = old.text == ctx.text
        out[f"{n}_chunks"] = row
        print("truncate", n, row, file=sys.stderr)
    return out


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _peak(fn: Any) -> tuple[float, float, str]:
    """(seconds, peak RSS rise in MB, outcome) of ``fn()``, RSS sampled every 5 ms."""
    import threading

    gc.collect()
    before = peak = _rss()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.005):
            peak = max(peak, _rss())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    started = time.perf_counter()
    try:
        fn()
        outcome = "decoded"
    except Exception as exc:  # the outcome is what is measured
        outcome = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    stop.set()
    thread.join()
    return round(seconds, 4), round((max(peak, _rss()) - before) / 2**20, 1), outcome[:140]


def hostile_payloads(unbounded: bool) -> dict[str, Any]:
    from ctxcomp.cache.codec import decode
    from ctxcomp.types import Chunk

    small = [Chunk("The Eiffel Tower was completed in 1889. " * 50, id="a")]
    large = [Chunk("The Eiffel Tower was completed in 1889. " * 5000, id="a")]  # 200 KB: bound ~1.7 MB
    bomb = b"z" + zlib.compress(b"[" + b"0," * 150_000_000 + b"0]", 9)
    cases = {"zlib_bomb_300MB/2KB_request": (bomb, small), "zlib_bomb_300MB/200KB_request": (bomb, large),
             "nesting_100k/200KB_request": (b"j" + b"[" * 100_000 + b"]" * 100_000, large),
             "escaped_quotes_400KB/200KB_request": (b'j"' + b'\\"' * 200_000, large)}
    out: dict[str, Any] = {}
    for name, (data, request) in cases.items():
        seconds, rise, outcome = _peak(lambda d=data, r=request: decode(d, r))
        out[name] = {"payload_bytes": len(data), "seconds": seconds, "peak_rss_rise_mb": rise, "outcome": outcome}
        print(name, out[name], file=sys.stderr)
    if unbounded:  # what the decoder before issue 11 did with the bomb: inflate all, then parse
        seconds, rise, outcome = _peak(lambda: json.loads(zlib.decompress(bomb[1:])))
        out["zlib_bomb_300MB/unbounded_decode"] = {"seconds": seconds, "peak_rss_rise_mb": rise, "outcome": outcome}
    return out


def count_memo() -> dict[str, Any]:
    from ctxcomp.tokens import TiktokenCounter

    counter = TiktokenCounter("o200k_base")
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(3000):
        counter.count(f"{i} " + "word " * 3200)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return {"chunks": 3000, "chunk_bytes": 16_000, "bytes_held_after": held, "memo_entries": len(counter.cache),
            "memo_bound_bytes": counter.cache.max_entries * 160}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", choices=["truncate", "hostile", "memo"], help="measure one part (merged into --out)")
    parser.add_argument("--no-unbounded", action="store_true", help="skip the 20-second unbounded bomb decode")
    args = parser.parse_args()
    result = json.loads(args.out.read_text()) if args.only and args.out.exists() else {}
    result["command"] = "python benchmarks/robustness/limits.py --out benchmarks/results/limits.json"
    parts = {"truncate": truncate_scaling, "hostile_payloads": lambda: hostile_payloads(not args.no_unbounded),
             "count_memo": count_memo}
    for name, fn in parts.items():
        if args.only is None or name.startswith(args.only):
            result[name] = fn()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
