"""Needle kept at ratio 50 per scoring recipe, from scores saved by collect_scores.py --needle.

    .venv/bin/python -m benchmarks.gemfilter.needle_sweep --scores /tmp/gf_needle
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ctxcomp.assembly import Unit
from ctxcomp.compressors.early_layer_scoring import aggregate, pool, token_scores, unit_token_ranges, zscore
from ctxcomp.text import split_sentences
from ctxcomp.tokens import get_counter


def load(scores: Path) -> list[dict]:
    counter = get_counter("gpt-4o-mini")
    items = []
    for path in sorted(scores.glob("needle_*.npz")):
        data = dict(np.load(path))
        texts = json.loads(str(data["texts"]))
        units = [Unit(i, sp) for i, t in enumerate(texts) for sp in split_sentences(t)]
        utexts = [texts[u.chunk][u.span[0]:u.span[1]] for u in units]
        items.append(dict(data=data, units=units, costs=np.array(counter.count_many(utexts)) + 1,
                          total=counter.count("\n\n".join(texts)), has=np.array(["Dolores Park" in t for t in utexts]),
                          ranges=unit_token_ranges(units, data["chunk"], data["start"], data["end"]),
                          cranges=unit_token_ranges([Unit(i, (0, len(t))) for i, t in enumerate(texts)],
                                                    data["chunk"], data["start"], data["end"]),
                          name=path.stem))
    return items


def kept(item: dict, score: np.ndarray, ratio: float) -> bool:
    limit, used, hit = item["total"] // ratio, 0, False
    for i in np.argsort(-score, kind="stable"):
        if used + item["costs"][i] <= limit:
            used += item["costs"][i]
            hit |= bool(item["has"][i])
    return hit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", default="/tmp/gf_needle")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    items = load(Path(args.scores))
    results = []
    for layers in [(8,), (10,), (12,), (14,), (16,), (18,), (20,), (14, 20), (18, 20)]:
        for calib in (0.0, 1.0):
            for top, chunk_w in ((0, 0.0), (8, 0.0), (8, 0.3), (8, 0.5)):
                hits = []
                for it in items:
                    per = []
                    for layer in layers:
                        tok = pool(token_scores(it["data"][f"q{layer}"], it["data"][f"p{layer}"], calib), 5)
                        s = zscore(aggregate(tok, it["ranges"], top))
                        if chunk_w:
                            c = zscore(aggregate(tok, it["cranges"], top))
                            s = (1 - chunk_w) * s + chunk_w * c[[u.chunk for u in it["units"]]]
                        per.append(zscore(s))
                    hits.append(kept(it, np.mean(per, axis=0), 50))
                results.append({"layers": list(layers), "calibration": calib, "top": top, "chunk_weight": chunk_w,
                                "kept": float(np.mean(hits)), "n": len(hits)})
                print(layers, calib, top, chunk_w, f"{np.mean(hits):.2f}", "".join("x" if h else "." for h in hits),
                      flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
