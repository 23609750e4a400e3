"""Cache sentence scores (gemfilter and embedding) per question, so planner variants can be
compared offline without re-running the models.

    python -m benchmarks.planner.score_cache --data ../shared/data/nq20/dev.jsonl.gz --out /tmp/scores_nq.json

Each record: id, answers, chunk texts, and for each scorer the units (chunk, start, end, score).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from ctxcomp.bench.data import load_nq
from ctxcomp.compressors.early_layer import EarlyLayerFilter, _Request
from ctxcomp.compressors.embedding import EmbeddingCompressor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--scorer", help="gemfilter scorer (a weights file; default: the shipped one)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    examples = load_nq(args.data)[: args.limit]
    gem = EarlyLayerFilter(scorer=args.scorer) if args.scorer else EarlyLayerFilter()
    emb = EmbeddingCompressor()
    gem.setup()
    rows = []
    started = time.perf_counter()
    for n, ex in enumerate(examples):
        chunks = list(ex.chunks)
        req = _Request(ex.query, chunks)
        gem._score_requests([req])
        units = gem._units(req.chunks)
        g = gem._unit_scores(req, units)
        keep = req.keep if req.keep is not None else list(range(len(chunks)))
        e_units, _ = emb.score_units(ex.query, chunks)
        rows.append({
            "id": ex.id, "query": ex.query, "answers": list(ex.answers), "chunks": [c.text for c in chunks],
            "gold": [i for i, c in enumerate(chunks) if c.id in set(ex.gold_ids)],
            "gemfilter": [[keep[u.chunk], u.span[0], u.span[1], float(v)] for u, v in zip(units, g, strict=True)],
            "embedding": [[u.chunk, u.span[0], u.span[1], float(u.score)] for u in e_units],
        })
        if n % 20 == 0 or n == len(examples) - 1:  # saved as it goes: a partial run is usable
            print(n, round(time.perf_counter() - started, 1), flush=True)
            with open(args.out + ".tmp", "w") as fh:
                json.dump(rows, fh)
            os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()
