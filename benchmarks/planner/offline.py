"""Compare chunk-planning variants offline on cached sentence scores (score_cache.py).

For each question and ratio the budget is ``input_tokens / ratio``; every variant ends in
`select_units` over the same sentence scores, so the only difference is the plan:

- ``flat``: no planner (the sentence stage alone);
- ``prior:b``: each sentence's score plus ``b`` x its chunk's score (both z-scored);
- ``plan:c``: keep the best chunks, in rank order, while their total size stays under
  ``c`` x the budget, then select sentences inside them only;
- chunk score (``--agg``): the max of the chunk's sentence scores, or ``lse`` (log-sum-exp);
  ``--chunk-scorer embedding`` ranks chunks by MiniLM while sentences keep ``--scorer``'s scores.

    python -m benchmarks.planner.offline --scores /tmp/scores_nq.json --half 0
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ctxcomp.assembly import Unit, select_units
from ctxcomp.bench.metrics import contains_answer
from ctxcomp.inputs import input_tokens
from ctxcomp.tokens import get_counter
from ctxcomp.types import Chunk


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else x * 0


def chunk_scores(units: Sequence[list[float]], n: int, agg: str) -> np.ndarray:
    out = np.full(n, -np.inf)
    groups: dict[int, list[float]] = {}
    for c, _a, _b, s in units:
        groups.setdefault(int(c), []).append(s)
    for c, vals in groups.items():
        v = np.asarray(vals)
        out[c] = v.max() if agg == "max" else float(np.log(np.exp(v - v.max()).sum()) + v.max())
    finite = np.isfinite(out)
    out[~finite] = out[finite].min() if finite.any() else 0.0
    return out


def run_variant(row: dict, variant: str, ratio: float, scorer: str, agg: str, counter, sizes: list[int],
                chunk_scorer: str | None = None) -> bool:
    chunks = [Chunk(t, id=f"p{i}") for i, t in enumerate(row["chunks"])]
    units = row[scorer]
    n_in = input_tokens(chunks, counter)
    limit = max(1, int(n_in / ratio))
    s = np.asarray([u[3] for u in units])
    cs = chunk_scores(row[chunk_scorer or scorer], len(chunks), agg)
    kind, _, arg = variant.partition(":")
    if kind == "flat":
        scores = s
        allowed = set(range(len(chunks)))
    elif kind == "prior":
        z = _z(s)
        zc = _z(cs)
        scores = z + float(arg) * np.asarray([zc[int(u[0])] for u in units])
        allowed = set(range(len(chunks)))
    elif kind in ("plan", "planprior"):
        cap = float(arg.split("/")[0]) * limit
        allowed, total = set(), 0
        for c in np.argsort(-cs, kind="stable"):
            if total + sizes[c] > cap and allowed:
                break
            allowed.add(int(c))
            total += sizes[c]
        scores = s if kind == "plan" else _z(s) + float(arg.split("/")[1]) * np.asarray([_z(cs)[int(u[0])] for u in units])
    else:
        raise SystemExit(f"unknown variant {variant}")
    scored = [Unit(int(u[0]), (int(u[1]), int(u[2])), float(v)) for u, v in zip(units, scores, strict=True)
              if int(u[0]) in allowed]
    asm = select_units(chunks, scored, counter, limit)
    return contains_answer(asm.text, row["answers"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", required=True)
    ap.add_argument("--half", type=int, choices=(0, 1, -1), default=0,
                    help="0: the fit half, 1: the reporting half, -1: all questions")
    ap.add_argument("--heldout", help="a bench result whose data.ids are the reporting half (NQ: "
                    "gemfilter_nq_heldout.json, whose weights were fit on the others); default: odd lines")
    ap.add_argument("--ratios", default="4,10,20")
    ap.add_argument("--scorer", default="gemfilter")
    ap.add_argument("--agg", default="max")
    ap.add_argument("--chunk-scorer", help="rank chunks by another scorer's sentences (default: --scorer)")
    ap.add_argument("--variants", default="flat,prior:0.25,prior:0.5,prior:1,plan:1.5,plan:2,plan:3,plan:5")
    ap.add_argument("--out")
    args = ap.parse_args()
    rows = json.loads(Path(args.scores).read_text())
    if args.half >= 0 and args.heldout:
        report = set(json.loads(Path(args.heldout).read_text())["data"]["ids"])
        rows = [r for r in rows if (r["id"] in report) == bool(args.half)]
    elif args.half >= 0:
        rows = rows[args.half :: 2]
    counter = get_counter("gpt-4o-mini")
    ratios = [float(r) for r in args.ratios.split(",")]
    variants = args.variants.split(",")
    hits = {(v, r): 0 for v in variants for r in ratios}
    for row in rows:
        sizes = counter.count_many(row["chunks"])
        for v in variants:
            for r in ratios:
                hits[(v, r)] += run_variant(row, v, r, args.scorer, args.agg, counter, sizes,
                                                args.chunk_scorer)
    table = [{"variant": v, "ratio": r, "answer_recall": round(hits[(v, r)] / len(rows), 3)} for v in variants
             for r in ratios]
    print(f"n={len(rows)} scorer={args.scorer} chunks by={args.chunk_scorer or args.scorer} agg={args.agg}")
    for v in variants:
        print(f"{v:>16}", " ".join(f"{hits[(v, r)] / len(rows):.3f}" for r in ratios))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"scores": args.scores, "half": args.half, "heldout": args.heldout, "scorer": args.scorer, "chunk_scorer": args.chunk_scorer, "agg": args.agg,
                       "n": len(rows), "rows": table}, fh, indent=1)


if __name__ == "__main__":
    main()
