"""Which (layer, head) pairs retrieve: gold-passage MRR per head on the NQ dev scores.

Heads are chosen on the first half of the questions and evaluated (sentence recall proxy)
on the second half, so the reported gain is not fit on its own test questions.

    .venv/bin/python -m benchmarks.gemfilter.heads --scores /tmp/gf_scores
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np

from benchmarks.gemfilter.sweep_nq import recall
from ctxcomp.compressors.early_layer_scoring import aggregate, pool, zscore


def head_mrr(items, layers, heads, calib, top):
    out = {}
    for layer in layers:
        for h in range(heads):
            rr = []
            for it in items:
                d = it["data"]
                tok = d[f"q{layer}"][h].astype(np.float64) - calib * d[f"p{layer}"][h].astype(np.float64)
                c = aggregate(tok, it["cranges"], top)
                rank = int((c > c[it["gold"]]).sum())
                rr.append(1.0 / (1 + rank))
            out[(layer, h)] = float(np.mean(rr))
    return out


def scorer(pairs, calib, window, top, chunk_w, emb_w=0.0):
    def score(it):
        d = it["data"]
        per = []
        for layer, h in pairs:
            tok = pool(d[f"q{layer}"][h].astype(np.float64) - calib * d[f"p{layer}"][h].astype(np.float64), window)
            s = zscore(aggregate(tok, it["ranges"], top))
            if chunk_w:
                c = zscore(aggregate(tok, it["cranges"], top))
                s = (1 - chunk_w) * s + chunk_w * c[[u.chunk for u in it["units"]]]
            per.append(zscore(s))
        total = zscore(np.mean(per, axis=0))
        if emb_w:
            total = (1 - emb_w) * total + emb_w * zscore(it["emb"])
        return total
    return score


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", default="/tmp/gf_scores")
    ap.add_argument("--items", default="items_smollm2-135m_0.pkl")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    items = pickle.loads((Path(args.scores) / args.items).read_bytes())
    layers = [8, 10, 12, 14, 16, 18, 20]
    heads = items[0]["data"]["q20"].shape[0]
    half = len(items) // 2
    fit, test = items[:half], items[half:]
    report = {}
    for calib in (0.0, 1.0):
        for top in (0, 8):
            mrr = head_mrr(fit, layers, heads, calib, top)
            ranked = sorted(mrr, key=lambda k: -mrr[k])
            print(f"calib {calib} top {top}: best heads", [(k, round(mrr[k], 3)) for k in ranked[:8]])
            for k in (1, 3, 5, 8, 12):
                for chunk_w in (0.0, 0.5, 0.8):
                    f = scorer(ranked[:k], calib, 5, 8, chunk_w)
                    r = {"fit_r4": recall(fit, f, 4), "fit_r10": recall(fit, f, 10),
                         "test_r4": recall(test, f, 4), "test_r10": recall(test, f, 10)}
                    name = f"calib{calib} top{top} heads{k} cw{chunk_w}"
                    report[name] = {"heads": [list(x) for x in ranked[:k]], **r}
                    print(name, {a: round(b, 3) for a, b in r.items()}, flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
