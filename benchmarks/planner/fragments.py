"""How large must a kept piece be? Answer recall and fragment counts against the fragment rule.

`select_units` joins fragments (pieces under ``min_unit_tokens`` tokens of their own text,
and the cut-off last words of a passage) to their neighbours. This sweeps the threshold
on `embedding` scores (computed once per question) at several ratios, on every other
question of a data file (``--half 0`` even lines for choosing, ``--half 1`` odd lines for
reporting), and counts the kept pieces that are still short or cut off.

    python -m benchmarks.planner.fragments --data ../shared/data/nq20/dev.jsonl.gz --half 0 --out /tmp/frag_nq0.json
"""

from __future__ import annotations

import argparse
import json

from ctxcomp.assembly import select_units
from ctxcomp.bench.data import load_nq
from ctxcomp.bench.metrics import contains_answer
from ctxcomp.compressors.embedding import EmbeddingCompressor, drop_near_duplicates
from ctxcomp.inputs import input_tokens
from ctxcomp.tokens import get_counter

SHORT = 8  # a kept piece with fewer own tokens than this is reported as short


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--half", type=int, choices=(0, 1), default=0)
    ap.add_argument("--ratios", default="4,10,20")
    ap.add_argument("--mins", default="0,4,6,8,10,12")
    ap.add_argument("--policy", default="fill", choices=("drop", "fill", "merge", "keep"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    examples = load_nq(args.data)[args.half :: 2]
    ratios = [float(r) for r in args.ratios.split(",")]
    mins = [int(m) for m in args.mins.split(",")]
    counter = get_counter("gpt-4o-mini")
    emb = EmbeddingCompressor()
    tallies = {(m, r): {"recall": 0, "short": 0, "pieces": 0} for m in mins for r in ratios}
    for ex in examples:
        chunks = list(ex.chunks)
        units, vectors = emb.score_units(ex.query, chunks)
        order = sorted(range(len(units)), key=lambda i: -units[i].score)
        kept_units = [units[i] for i in drop_near_duplicates(order, vectors, emb.settings.dedup_threshold)]
        n = input_tokens(chunks, counter)
        for m in mins:
            for r in ratios:
                asm = select_units(chunks, kept_units, counter, max(1, int(n / r)), min_unit_tokens=m, fragments=args.policy)
                t = tallies[(m, r)]
                t["recall"] += contains_answer(asm.text, ex.answers)
                for kept in asm.chunks:
                    for _span in kept.spans:
                        t["pieces"] += 1
                        t["short"] += counter.count(chunks[0].text[:0] + kept.text) < SHORT if len(kept.spans) == 1 else 0
    rows = []
    for (m, r), t in sorted(tallies.items()):
        rows.append({"min_unit_tokens": m, "ratio": r, "answer_recall": round(t["recall"] / len(examples), 3),
                     "pieces": t["pieces"], "short_chunks": t["short"]})
        print(f"min {m:2d} ratio {r:4.0f}: recall {rows[-1]['answer_recall']:.3f} pieces {t['pieces']} short {t['short']}")
    with open(args.out, "w") as f:
        json.dump({"data": args.data, "half": args.half, "n": len(examples), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
