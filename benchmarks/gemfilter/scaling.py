"""Latency and peak memory of EarlyLayerFilter vs input length (one fresh process per length).

Each length runs in its own process: load the model, build a needle haystack of N tokens
(dev essays), compress once to warm up on a short input, then time one compression at
ratio 50 while a thread samples RSS every 10 ms. Reported: seconds, peak RSS above the
loaded-model baseline, the scoring model's token count and windows, and (lengths within
the model's window) one full forward pass of the same model over the same tokens.

    .venv/bin/python -m benchmarks.gemfilter.scaling --lengths 2000,8000,32000 \
        --out benchmarks/results/gemfilter_scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil


def one(length: int, model: str, max_window: int | None) -> dict:
    import torch

    from benchmarks.gemfilter.needle_data import haystack_chunks
    from ctxcomp.compressors.early_layer import EarlyLayerFilter
    from ctxcomp.types import Budget

    gf = EarlyLayerFilter(model=model, max_window=max_window)
    gf.setup()
    question = "What is the best thing to do in San Francisco?"
    gf.compress(question, haystack_chunks(1000, 0.5), Budget(ratio=50))  # warm-up
    chunks = haystack_chunks(length, 0.5)
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    ctx = gf.compress(question, chunks, Budget(ratio=50))
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    prompts = gf._prompts(question, chunks)
    out = {"length": length, "tokens_in": ctx.tokens_in, "tokens_out": ctx.tokens_out, "seconds": seconds,
           "peak_rss_above_loaded_mb": (peak[0] - base) / 2**20, "scoring_tokens": int(sum(len(p.input_ids) for p in prompts)),
           "windows": len(prompts), "needle_kept": "Dolores Park" in ctx.text, "layers": list(gf._layers)}
    lm = gf._lm
    ids = torch.from_numpy(prompts[0].input_ids)[None]
    if len(prompts) == 1:
        started = time.perf_counter()
        with torch.inference_mode():
            lm.model.model(input_ids=ids, use_cache=False)
        out["full_forward_seconds"] = time.perf_counter() - started
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lengths", default="2000,8000,32000")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--max-window", type=int, default=0, help="scoring window in tokens (0: the model's)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.model, args.max_window or None)))
        return
    rows = []
    for n in [int(x) for x in args.lengths.split(",")]:
        done = subprocess.run([sys.executable, "-m", "benchmarks.gemfilter.scaling", "--one", str(n),
                               "--model", args.model, "--max-window", str(args.max_window)],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    by = {r["length"]: r for r in rows}
    summary = {}
    if 8000 in by and 32000 in by:
        summary["time_32k_over_8k"] = by[32000]["seconds"] / by[8000]["seconds"]
        summary["mem_32k_over_8k"] = by[32000]["peak_rss_above_loaded_mb"] / max(by[8000]["peak_rss_above_loaded_mb"], 1e-9)
    result = {"suite": "gemfilter_scaling", "model": args.model, "device": "cpu", "cpu_count": os.cpu_count(),
              "machine": platform.machine(), "note": "shared 2-core CPU; other jobs ran at the same time",
              "max_window": args.max_window or None,
              "command": f"python -m benchmarks.gemfilter.scaling --lengths {args.lengths} --max-window {args.max_window}",
              "rows": rows, "summary": summary}
    print(json.dumps(summary))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
