"""Token counting throughput: tiktoken via ctxcomp (cold and cached) vs pure-Python BPE.

Usage: python benchmarks/tokens_speed.py [--haystack DIR] [--out benchmarks/results/tokens.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from ctxcomp.tokens import get_counter

REPO = Path(__file__).resolve().parents[1]


def _median_rate(fn, texts: list[str], tokens: int, repeats: int = 5) -> float:  # type: ignore[no-untyped-def]
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for text in texts:
            fn(text)
        rates.append(tokens / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--haystack", default=str(REPO.parent / "shared/data/haystack/PaulGrahamEssays"))
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/tokens.json"))
    args = parser.parse_args()
    texts = [p.read_text("utf-8") for p in sorted(Path(args.haystack).glob("*.txt"))]
    results = []
    for model in ("gpt-4o-mini", "gpt-4"):
        counter = get_counter(model)
        enc = counter._enc  # type: ignore[attr-defined]
        tokens = sum(len(enc.encode_ordinary(t)) for t in texts)
        # Uncached: every text is new to the LRU memo.
        uncached = _median_rate(counter._count, texts, tokens)  # type: ignore[attr-defined]
        cached = _median_rate(counter.count, texts, tokens)  # second pass onward: memo hits
        results.append({"model": model, "encoding": counter.name, "texts": len(texts), "tokens": tokens,
                        "uncached_tokens_per_s": round(uncached), "cached_tokens_per_s": round(cached)})
    report = {"suite": "tokens", "results": results,
              "env": {"python": platform.python_version(), "machine": platform.machine(),
                      "processor": platform.processor()}}
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        print(f"{r['model']:12} {r['encoding']:12} {r['tokens']:>8} tokens  "
              f"uncached {r['uncached_tokens_per_s'] / 1e6:.2f} M tok/s  cached {r['cached_tokens_per_s'] / 1e6:.1f} M tok/s")


if __name__ == "__main__":
    main()
