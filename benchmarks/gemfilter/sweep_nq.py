"""Offline sweep of EarlyLayerFilter scoring recipes over scores saved by collect_scores.py.

Selection here is a fast proxy of select_units (greedy by score with per-sentence
tiktoken costs + 1 separator token); final numbers come from the real compressor.

    .venv/bin/python benchmarks/gemfilter/sweep_nq.py --scores /tmp/gf_scores --out benchmarks/results/gemfilter_recipe.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import re
import string
import time
from pathlib import Path

import numpy as np

from ctxcomp.assembly import Unit
from ctxcomp.compressors.early_layer_scoring import aggregate, pool, token_scores, unit_token_ranges, zscore
from ctxcomp.text import split_sentences
from ctxcomp.tokens import get_counter
from ctxcomp.types import Chunk


def normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def load(scores_dir: Path, model: str, with_emb: bool) -> list[dict]:
    from benchmarks.gemfilter.collect_scores import chunk_texts, load_nq

    files = sorted(scores_dir.glob(f"{model}_*.npz"))
    records = load_nq(len(files))
    counter = get_counter("gpt-4o-mini")
    items = []
    from ctxcomp.compressors.embedding import EmbeddingCompressor

    emb = EmbeddingCompressor(dedup_threshold=None)  # its defaults: title-aware, chunk_weight 0.5
    for path, rec in zip(files, records, strict=True):
        t00 = time.perf_counter()
        data = dict(np.load(path))
        texts = chunk_texts(rec)
        units = [Unit(i, sp) for i, t in enumerate(texts) for sp in split_sentences(t)]
        chunk_units = [Unit(i, (0, len(t))) for i, t in enumerate(texts)]
        utexts = [texts[u.chunk][u.span[0]:u.span[1]] for u in units]
        costs = np.array(counter.count_many(utexts)) + 1
        total = counter.count("\n\n".join(texts))
        answers = [normalize(a) for a in rec["answers"]]
        has = np.array([any(a in normalize(t) for a in answers) for t in utexts])
        ranges = unit_token_ranges(units, data["chunk"], data["start"], data["end"])
        cranges = unit_token_ranges(chunk_units, data["chunk"], data["start"], data["end"])
        t0 = time.perf_counter()
        if with_emb:
            chunks = [Chunk(t, str(i), metadata={"title": c["title"]}) for i, (t, c) in enumerate(zip(texts, rec["ctxs"], strict=True))]
            escore, _ = emb.score_units(rec["question"], chunks)
            escore = np.array([u.score for u in escore])
        else:
            escore = np.zeros(len(units))
        t1 = time.perf_counter()
        items.append(dict(data=data, units=units, costs=costs, total=total, has=has, ranges=ranges,
                          cranges=cranges, emb=escore,
                          gold=rec["gold_index"]))
        print("loaded", path.name, f"emb {t1 - t0:.1f}s total {time.perf_counter() - t00:.1f}s", flush=True)
    return items


def unit_scores(item: dict, layers, rows: str, calib: float, window: int, top: int, chunk_w: float,
                emb_w: float, heads=None) -> np.ndarray:
    data = item["data"]
    per_layer = []
    for layer in layers:
        q = data[f"{rows}{layer}"].astype(np.float64)
        p = data[f"p{layer}"].astype(np.float64)
        tok = pool(token_scores(q, p, calib, heads), window)
        s = zscore(aggregate(tok, item["ranges"], top))
        if chunk_w:
            c = zscore(aggregate(tok, item["cranges"], 0))
            s = (1 - chunk_w) * s + chunk_w * c[[u.chunk for u in item["units"]]]
        per_layer.append(zscore(s))
    score = np.mean(per_layer, axis=0)
    if emb_w:
        e = zscore(item["emb"])
        score = (1 - emb_w) * zscore(score) + emb_w * zscore(e)
    return score


def recall(items: list[dict], scorer, ratio: float) -> float:
    hits = 0
    for item in items:
        score = scorer(item)
        limit = item["total"] // ratio
        used = 0
        kept = False
        for i in np.argsort(-score, kind="stable"):
            c = item["costs"][i]
            if used + c <= limit:
                used += c
                kept |= bool(item["has"][i])
        hits += kept
    return hits / len(items)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", default="/tmp/gf_scores")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--out", default="")
    ap.add_argument("--grid", default="basic")
    ap.add_argument("--emb", action="store_true", help="also compute MiniLM scores (slow under CPU contention)")
    args = ap.parse_args()
    cache = Path(args.scores) / f"items_{args.model}_{int(args.emb)}.pkl"
    if cache.exists():
        items = pickle.loads(cache.read_bytes())
    else:
        items = load(Path(args.scores), args.model, args.emb)
        cache.write_bytes(pickle.dumps(items))
    layers_avail = sorted(set.intersection(*({int(k[1:]) for k in it["data"] if k[0] == "q" and k[1:].isdigit()}
                                             for it in items)))
    print(f"{len(items)} questions, layers {layers_avail}")
    results = []

    def run(name, **kw):
        r4 = recall(items, lambda it: unit_scores(it, **kw), 4)
        r10 = recall(items, lambda it: unit_scores(it, **kw), 10)
        results.append({"name": name, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()},
                        "recall_r4": r4, "recall_r10": r10})
        print(f"{name:60} r4={r4:.3f} r10={r10:.3f}", flush=True)

    base = dict(rows="q", calib=0.0, window=1, top=0, chunk_w=0.0, emb_w=0.0)
    if args.emb:
        run("embedding only (EmbeddingCompressor defaults)", **{**base, "layers": (layers_avail[0],), "emb_w": 1.0})
    for layer in layers_avail:
        run(f"naive L{layer} last-row sum-ish", **{**base, "layers": (layer,), "rows": "l"})
        run(f"L{layer} query rows mean", **{**base, "layers": (layer,)})
        run(f"L{layer} q calib1 w5 top5 chunk.3", **{**base, "layers": (layer,), "calib": 1.0, "window": 5,
                                                     "top": 5, "chunk_w": 0.3})
    if args.grid == "full":
        for layers, calib, window, top, chunk_w in itertools.product(
            [(14,), (16,), (18,), (20,), (14, 20), (16, 20), (12, 16, 20)], [0.0, 0.5, 1.0], [1, 5],
            [0, 3, 8], [0.0, 0.3, 0.6, 0.9]
        ):
            run(f"L{layers} c{calib} w{window} top{top} cw{chunk_w}", **{**base, "layers": layers, "calib": calib,
                                                                      "window": window, "top": top, "chunk_w": chunk_w})
    if args.out:
        Path(args.out).write_text(json.dumps({"questions": len(items), "results": results}, indent=1))


if __name__ == "__main__":
    main()
