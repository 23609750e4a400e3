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
import contextlib
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


def hostile_payloads() -> dict[str, Any]:
    from ctxcomp.cache.codec import CorruptPayload, decode
    from ctxcomp.types import Chunk

    request = [Chunk("The Eiffel Tower was completed in 1889. " * 50, id="a")]
    cases = {"zlib_bomb_300MB": b"z" + zlib.compress(b"[" + b"0," * 150_000_000 + b"0]", 9),
             "nesting_100k": b"j" + b"[" * 100_000 + b"]" * 100_000}
    out: dict[str, Any] = {}
    for name, data in cases.items():
        gc.collect()
        before = _rss()
        started = time.perf_counter()
        try:
            decode(data, request)
            outcome = "decoded"
        except CorruptPayload as exc:
            outcome = f"CorruptPayload: {exc}"
        out[name] = {"payload_bytes": len(data), "seconds": round(time.perf_counter() - started, 4),
                     "rss_rise_mb": round((_rss() - before) / 2**20, 1), "outcome": outcome[:120]}
        print(name, out[name], file=sys.stderr)
    gc.collect()
    before = _rss()
    started = time.perf_counter()
    with contextlib.suppress(ValueError, RecursionError, MemoryError):
        json.loads(zlib.decompress(cases["zlib_bomb_300MB"][1:]))
    out["zlib_bomb_300MB"]["unbounded_decode_seconds"] = round(time.perf_counter() - started, 2)
    out["zlib_bomb_300MB"]["unbounded_decode_rss_rise_mb"] = round((_rss() - before) / 2**20, 1)
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
    args = parser.parse_args()
    result = {"command": "python benchmarks/robustness/limits.py --out benchmarks/results/limits.json",
              "truncate": truncate_scaling(), "hostile_payloads": hostile_payloads(), "count_memo": count_memo()}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
