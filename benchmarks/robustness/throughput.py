"""Throughput and peak memory of each compressor on 10 KB, 100 KB and 1 MB of prose, CJK,
JSON and base64 (the robustness table in the README).

Inputs (deterministic): *prose* = the haystack essays (../shared/data/haystack), *cjk* =
the Chinese and Japanese passages of benchmarks/data/cjk_qa, *json* = generated records,
*base64* = seeded random bytes; each repeated to the size in UTF-8 bytes and cut into
chunks of about 2 KB (at whitespace where there is some). The query is a fixed question;
the budget is ratio 4 (o200k). Per (kind, size): wall seconds of one ``compress`` call
(median of 3 below 100 KB; the token-count memo is emptied before each, as for new text), MB/s and s/MB, peak RSS sampled every 10 ms during the call and
its rise over the RSS before it, tokens in/out, whether the output is non-empty and within
budget. Models are loaded (and warmed up) before measuring; a size over a stage's own bound
uses its documented fallback (embedding: BM25 picks ``max_units`` sentences; gemfilter:
whole chunks by BM25 up to ``max_input_tokens``).

    flock /work/.bench.lock python benchmarks/robustness/throughput.py --compressor truncate \\
        --out benchmarks/results/robustness.json
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"
SIZES = {"10KB": 10_000, "100KB": 100_000, "1MB": 1_000_000}
KINDS = ("prose", "cjk", "json", "base64")
CHUNK_BYTES = 2_000
QUERY = {"prose": "What did the author learn about startups?", "cjk": "日本の首都はどこですか",
         "json": "which item has the tag urgent?", "base64": "what is encoded here?"}


def base_text(kind: str) -> str:
    if kind == "prose":
        essays = sorted((SHARED / "haystack" / "PaulGrahamEssays").glob("*.txt"))
        return "\n\n".join(p.read_text("utf-8") for p in essays)
    if kind == "cjk":
        rows = [json.loads(line) for line in (REPO / "benchmarks/data/cjk_qa/passages.jsonl").read_text("utf-8")
                .splitlines() if line.strip()]
        return "\n\n".join(f"{r['title']}\n{r['text']}" for r in rows)
    rng = random.Random(11)
    if kind == "json":
        records = [{"id": i, "name": f"item-{i}", "price": round(rng.uniform(1, 500), 2),
                    "tags": rng.sample(["new", "sale", "urgent", "blue", "large", "eco"], 2),
                    "owner": {"name": rng.choice(["ana", "bo", "cy"]), "verified": rng.random() < 0.5}}
                   for i in range(20_000)]
        return json.dumps(records, separators=(",", ":"))
    return base64.b64encode(rng.randbytes(800_000)).decode()


def make_input(kind: str, size: int) -> list[str]:
    """About ``size`` UTF-8 bytes of ``kind``, in chunks of about CHUNK_BYTES."""
    base = base_text(kind)
    text = ""
    while len(text.encode("utf-8")) < size:
        text += base + "\n\n"
    raw = text.encode("utf-8")[:size].decode("utf-8", "ignore")
    chunks, pos = [], 0
    per_char = max(1, len(raw.encode("utf-8")) // max(len(raw), 1))
    step = CHUNK_BYTES // per_char
    while pos < len(raw):
        end = min(len(raw), pos + step)
        space = raw.rfind(" ", pos + step // 2, end) if end < len(raw) else -1
        end = space + 1 if space > pos else end
        chunks.append(raw[pos:end])
        pos = end
    return chunks


class PeakRSS:
    """Highest RSS of this process, sampled every 10 ms while the block runs."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self.before = self.proc.memory_info().rss
        self.peak = self.before
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def run_one(comp: Any, kind: str, label: str, size: int) -> dict[str, Any]:
    from ctxcomp.errors import CtxcompError
    from ctxcomp.tokens import get_counter
    from ctxcomp.types import Budget, Chunk

    texts = make_input(kind, size)
    chunks = [Chunk(t, id=f"k{i}") for i, t in enumerate(texts)]
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    times, error, ctx = [], None, None
    counter = get_counter("gpt-4o-mini")
    for _ in range(3 if size < 100_000 else 1):
        counter.cache._data.clear()  # every call counts its text afresh, as a first call does
        with PeakRSS() as rss:
            started = time.perf_counter()
            try:
                ctx = comp.compress(QUERY[kind], chunks, Budget(ratio=4))
            except CtxcompError as exc:
                error = f"{type(exc).__name__}: {exc}"
            times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    row: dict[str, Any] = {
        "kind": kind, "size": label, "bytes": nbytes, "chunks": len(chunks), "seconds": round(seconds, 4),
        "mb_per_s": round(nbytes / 1e6 / seconds, 3), "s_per_mb": round(seconds / (nbytes / 1e6), 3),
        "peak_rss_mb": round(rss.peak / 2**20, 1), "rss_rise_mb": round((rss.peak - rss.before) / 2**20, 1),
        "error": error}
    if ctx is not None:
        row.update(tokens_in=ctx.tokens_in, tokens_out=ctx.tokens_out, budget_tokens=ctx.budget_tokens,
                   within_budget=ctx.tokens_out <= (ctx.budget_tokens or 0), non_empty=bool(ctx.text.strip()))
    print(json.dumps(row), file=sys.stderr)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compressor", required=True)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    from ctxcomp import registry
    from ctxcomp.text import segmenter
    from ctxcomp.types import Budget, Chunk

    comp = registry.compressors.create(args.compressor)
    comp.setup()
    comp.compress(QUERY["prose"], [Chunk(t) for t in make_input("prose", 5_000)], Budget(ratio=4))  # warm-up
    for kind in args.kinds.split(","):
        for label in args.sizes.split(","):
            save(args.out, args.compressor, run_one(comp, kind, label, SIZES[label]), segmenter())
    return 0


def save(out: Path, compressor: str, row: dict[str, Any], segmenter_name: str) -> None:
    """Merge one row into ``out`` (written after every row: a run cut short keeps its rows)."""
    import os

    result = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    result.setdefault("runs", {}).setdefault(compressor, {})[f"{row['kind']}/{row['size']}"] = {
        **row, "load_avg_1min": round(os.getloadavg()[0], 1)}
    result["command"] = "python benchmarks/robustness/throughput.py --compressor NAME --out benchmarks/results/robustness.json"
    result["settings"] = {"budget": "ratio 4 (o200k)", "chunk_bytes": CHUNK_BYTES, "segmenter": segmenter_name,
                          "torch_threads": 2, "cpu": "2 cores with avx512_bf16, shared with other jobs (flock held)"}
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.exit(main())
