"""Early-layer attention mixed with MiniLM similarity (EmbeddingCompressor.score_units).

    .venv/bin/python -m benchmarks.gemfilter.sweep_nq --scores /tmp/gf_scores --emb --grid none  # caches items
    .venv/bin/python -m benchmarks.gemfilter.mix_sweep --scores /tmp/gf_scores
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

from benchmarks.gemfilter.sweep_nq import recall, unit_scores


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", default="/tmp/gf_scores")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    items = pickle.loads((Path(args.scores) / "items_smollm2-135m_1.pkl").read_bytes())
    results = []
    for layers in [(14,), (18,), (20,), (18, 20), (14, 18)]:
        for chunk_w in (0.0, 0.3):
            for emb_w in (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 1.0):
                kw = dict(layers=layers, rows="q", calib=1.0, window=1, top=8, chunk_w=chunk_w, emb_w=emb_w)
                r4 = recall(items, lambda it, kw=kw: unit_scores(it, **kw), 4)
                r10 = recall(items, lambda it, kw=kw: unit_scores(it, **kw), 10)
                results.append({**kw, "layers": list(layers), "recall_r4": r4, "recall_r10": r10})
                print(layers, chunk_w, emb_w, f"r4={r4:.3f} r10={r10:.3f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"questions": len(items), "results": results}, indent=1))


if __name__ == "__main__":
    main()
