"""How well cheap chunk-level scores keep the evidence: gold recall@k on NQ-20 and MuSiQue.

The planned cascade drops whole chunks before a model reads them, so the coarse score
must keep the answer passage in its top k. This measures, per scorer, the share of
questions whose answer-bearing passage (NQ: the gold one; MuSiQue: every passage holding
the answer string, and all supporting passages) is ranked in the top k.

    python -m benchmarks.planner.chunk_recall --data ../shared/data/nq20/dev.jsonl.gz --out /tmp/nq_rank.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ctxcomp.bench.data import load_nq
from ctxcomp.bench.metrics import contains_answer
from ctxcomp.compressors.embedding import EmbeddingCompressor
from ctxcomp.lexical import bm25_scores


def z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else x * 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    examples = load_nq(args.data)
    if args.limit:
        examples = examples[: args.limit]
    emb = EmbeddingCompressor()
    emb.setup()
    ks = list(range(1, 11))
    rows = []
    started = time.perf_counter()
    for ex in examples:
        chunks = list(ex.chunks)
        units, sims, chunk_sims, _ = emb.similarities(ex.query, chunks, chunk_level=True)
        n = len(chunks)
        sent_max = np.full(n, -1.0)
        for u, s in zip(units, sims, strict=True):
            sent_max[u.chunk] = max(sent_max[u.chunk], s)
        csim = np.zeros(n)
        for u, c in zip(units, chunk_sims, strict=True):
            csim[u.chunk] = c
        bm = bm25_scores(ex.query, [c.text for c in chunks])
        scores = {
            "chunk": csim,
            "sent_max": sent_max,
            "bm25": bm,
            "chunk+sent": z(csim) + z(sent_max),
            "chunk+sent+bm25": z(csim) + z(sent_max) + 0.5 * z(bm),
            "chunk+sent+bm25x1": z(csim) + z(sent_max) + z(bm),
        }
        gold = {i for i, c in enumerate(chunks) if c.id in ex.gold_ids}
        ans = {i for i, c in enumerate(chunks) if contains_answer(c.text, ex.answers)}
        row = {"id": ex.id, "gold": sorted(gold), "ans": sorted(ans), "ranks": {}}
        for name, s in scores.items():
            row["ranks"][name] = [int(i) for i in np.argsort(-s, kind="stable")]
        rows.append(row)
    summary = {}
    for name in rows[0]["ranks"]:
        res = {}
        for k in ks:
            any_ans = np.mean([bool(set(r["ranks"][name][:k]) & set(r["ans"] or r["gold"])) for r in rows])
            all_gold = np.mean([set(r["gold"]) <= set(r["ranks"][name][:k]) for r in rows])
            res[k] = {"answer_passage": round(float(any_ans), 3), "all_gold": round(float(all_gold), 3)}
        summary[name] = res
    out = {"data": args.data, "n": len(rows), "seconds": round(time.perf_counter() - started, 1), "recall_at_k": summary}
    with open(args.out, "w") as f:
        json.dump({**out, "rows": rows}, f)
    for name, res in summary.items():
        print(f"{name:20s}", " ".join(f"{k}:{res[k]['answer_passage']:.2f}/{res[k]['all_gold']:.2f}" for k in ks))


if __name__ == "__main__":
    main()
