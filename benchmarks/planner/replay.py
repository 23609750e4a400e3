"""Answer recall of real pipelines on cached gemfilter scores (score_cache.py): no model pass.

Each pipeline below is the real `Pipeline` (planner, stages, assembly); the early-layer
filter's score memo is filled from the cache first, so the gemfilter utility and stage read
the cached sentence scores instead of running SmolLM2 (the outputs are the ones a live run
with the same weights gives; its latency is not measured here: see the live
`ctxcomp bench` run with `pipeline:spec=benchmarks/planner/gemfilter_planned.yaml`). The embedding utility and
stage run MiniLM live.

    python -m benchmarks.planner.replay --scores /tmp/scores_nq.json --weights benchmarks/results/gemfilter_weights_half_a.json --out benchmarks/results/planned_replay_nq.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ctxcomp.assembly import Unit
from ctxcomp.bench.metrics import contains_answer
from ctxcomp.compressors.early_layer import EarlyLayerFilter
from ctxcomp.pipeline import Pipeline
from ctxcomp.score_memo import memo_scope
from ctxcomp.types import Budget, Chunk


def pipelines(weights: str | None) -> dict[str, Pipeline]:
    gem: dict[str, Any] = {"name": "gemfilter", **({"scorer": weights} if weights else {})}
    util = dict(gem)
    return {
        "gemfilter": Pipeline([gem], cache=False, name="gemfilter"),
        "embedding": Pipeline(["embedding"], cache=False, name="embedding"),
        "topk": Pipeline(["truncate"], cache=False, name="topk",
                         planner={"name": "knapsack", "mode": "topk", "stage_ratio": 1, "redundancy": 0}),
        "knapsack(embedding)>gemfilter": Pipeline([gem], cache=False, planner={"name": "knapsack"}),
        "knapsack(gemfilter)>gemfilter": Pipeline([gem], cache=False, planner={"name": "knapsack", "utility": util}),
        "knapsack(gemfilter,dynamic)>gemfilter": Pipeline(
            [gem], cache=False, planner={"name": "knapsack", "utility": util, "dynamic": True}),
        "knapsack(gemfilter,stage_ratio=4)>gemfilter": Pipeline(
            [gem], cache=False, planner={"name": "knapsack", "utility": util, "stage_ratio": 4}),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", required=True)
    ap.add_argument("--weights", help="the gemfilter weights the scores were made with (default: shipped)")
    ap.add_argument("--heldout", help="bench result whose data.ids are the questions to report (default: all)")
    ap.add_argument("--ratios", default="4,10,20")
    ap.add_argument("--methods", help="a ';'-separated subset of the pipelines")
    ap.add_argument("--out", required=True)
    ap.add_argument("--plot", help="PNG: answer recall against tokens kept, one line per pipeline")
    args = ap.parse_args()
    rows = json.loads(Path(args.scores).read_text())
    if args.heldout:
        keep = set(json.loads(Path(args.heldout).read_text())["data"]["ids"])
        rows = [r for r in rows if r["id"] in keep]
    pipes = pipelines(args.weights)
    if args.methods:
        pipes = {k: v for k, v in pipes.items() if k in args.methods.split(";")}
    owner = EarlyLayerFilter(**({"scorer": args.weights} if args.weights else {}))._memo_owner
    ratios = [float(r) for r in args.ratios.split(",")]
    hits = {(m, r): 0 for m in pipes for r in ratios}
    tokens = {(m, r): 0 for m in pipes for r in ratios}
    started = time.perf_counter()
    for row in rows:
        chunks = [Chunk(t, id=f"p{i}") for i, t in enumerate(row["chunks"])]
        units = [Unit(int(c), (int(a), int(b)), float(s)) for c, a, b, s in row["gemfilter"]]
        with memo_scope() as memo:  # every pipeline run below reads the cached scores
            memo.put(owner, row["query"], chunks, units)
            for name, pipe in pipes.items():
                for r in ratios:
                    ctx = pipe.compress(row["query"], chunks, Budget(ratio=r))
                    hits[(name, r)] += contains_answer(ctx.text, row["answers"])
                    tokens[(name, r)] += ctx.tokens_out
    n = len(rows)
    table = [{"method": m, "ratio": r, "ratio_target": r, "answer_recall": round(hits[(m, r)] / n, 3),
              "tokens_out_mean": round(tokens[(m, r)] / n, 1)} for m in pipes for r in ratios]
    if args.plot:
        from ctxcomp.bench.report import plot

        plot(table, args.plot, f"{Path(args.scores).stem}: planned pipelines on cached gemfilter scores (n={n})",
             x="tokens_out_mean")
    print(f"n={n} ({time.perf_counter() - started:.0f} s)")
    for m in pipes:
        print(f"{m:>46}", " ".join(f"{hits[(m, r)] / n:.3f}" for r in ratios))
    with open(args.out, "w") as fh:
        json.dump({"scores": args.scores, "weights": args.weights, "heldout": args.heldout, "n": n,
                   "ids": [r["id"] for r in rows], "ratios": ratios, "rows": table,
                   "command": "python -m benchmarks.planner.replay " + " ".join(
                       f"--{k} {v}" for k, v in vars(args).items() if v)}, fh, indent=1)


if __name__ == "__main__":
    main()
