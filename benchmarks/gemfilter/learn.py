"""Fit EarlyLayerFilter's learned unit scorer on saved NQ-20 dev scores, with cross-validation.

Features per sentence (all z-scored over the request's sentences; see
``ctxcomp.compressors.early_layer_scoring.head_features`` and ``EarlyLayerFilter``):
per layer and head the sentence's and its passage's calibrated query attention, the same
over the head mean, MiniLM similarity of sentence and passage, BM25 of sentence and
passage, first-sentence and length. The model is a conditional logit (softmax over one
question's sentences, the answer-bearing ones as targets) with an L2 penalty, which
learns which heads retrieve and how much each signal counts.

Honesty: every reported recall is out-of-fold (k folds over questions, stratified by gold
position); the end-to-end number is measured by ``ctxcomp bench nq`` on questions the
shipped weights never saw (``--fit-on``).

    .venv/bin/python -m benchmarks.gemfilter.collect_scores --n 300 --qmax --out /tmp/gf300 \
        --layers 10,12,14,15,16,17,18,19,20,22
    # the shipped weights: 5-fold out-of-fold recall, then fit on all 300 dev questions
    .venv/bin/python -m benchmarks.gemfilter.learn --scores /tmp/gf300 --layers 10,12,14,16,18 \
        --rows q,l,x --l2 10 --sets text,qmean+text,attn-mean+text \
        --save ctxcomp/data/gemfilter-smollm2-135m.json --out benchmarks/results/gemfilter_learned.json
    # end to end on unseen questions: fit on half A, bench on half B
    .venv/bin/python -m benchmarks.gemfilter.learn --scores /tmp/gf300 --layers 10,12,14,16,18 \
        --rows q,l,x --l2 10 --sets attn-mean+text --cv 2 --fit-on 0 \
        --save benchmarks/results/gemfilter_weights_half_a.json --heldout-data /tmp/nq_half_b.jsonl.gz
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from benchmarks.gemfilter.collect_scores import NQ
from ctxcomp.assembly import Unit, select_units
from ctxcomp.bench.metrics import contains_answer
from ctxcomp.compressors.early_layer_scoring import (
    LinearScorer,
    attention_feature,
    head_features,
    text_features,
    unit_token_ranges,
)
from ctxcomp.inputs import input_tokens
from ctxcomp.text import split_sentences
from ctxcomp.tokens import get_counter
from ctxcomp.types import Budget, Chunk


def load_items(scores: Path, model: str, layers: list[int], calibration: float, top: int,
               cache: Path, rows: list[str]) -> list[dict]:
    from ctxcomp.compressors.embedding import EmbeddingCompressor

    emb_cache: dict[str, tuple] = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    embedder = EmbeddingCompressor(dedup_threshold=None)
    items = []
    files = sorted(scores.glob(f"{model}_*.npz"))
    for n, path in enumerate(files):
        data = dict(np.load(path))
        meta = json.loads(str(data["meta"]))
        texts = json.loads(str(data["texts"]))
        chunks = [Chunk(t, f"p{i}", metadata={"title": t.split("\n", 1)[0]}) for i, t in enumerate(texts)]
        units = [Unit(i, sp) for i, t in enumerate(texts) for sp in split_sentences(t)]
        keep = data["chunk"] >= 0
        tok = (data["chunk"][keep], data["start"][keep], data["end"][keep])
        ranges = unit_token_ranges(units, *tok)
        chunk_ranges = unit_token_ranges([Unit(i, (0, len(t))) for i, t in enumerate(texts)], *tok)
        chunk_of = np.array([u.chunk for u in units])
        feats = {}
        for key in rows:
            heads = {}
            for layer in layers:
                q = data[f"{key}{layer}"][:, keep].astype(np.float64)
                p = data[f"p{layer}"][:, keep].astype(np.float64)
                heads[layer] = q - calibration * p
            feats.update(head_features(heads, ranges, chunk_ranges, chunk_of, top, "" if key == "q" else key))
        if path.stem not in emb_cache:
            got_units, sims, chunk_sims, _ = embedder.similarities(meta["question"], chunks)
            assert [(u.chunk, u.span) for u in got_units] == [(u.chunk, u.span) for u in units]
            emb_cache[path.stem] = (sims, chunk_sims)
        feats.update(text_features(meta["question"], chunks, units, emb_cache[path.stem]))
        label = np.array([contains_answer(texts[u.chunk][u.span[0]:u.span[1]], meta["answers"]) for u in units])
        items.append(dict(stem=path.stem, meta=meta, chunks=chunks, units=units, feats=feats, label=label,
                          gold=meta["gold"]))
        if n % 50 == 0:
            print("loaded", n, path.name, flush=True)
    cache.write_bytes(pickle.dumps(emb_cache))
    return items


def matrix(item: dict, names: list[str]) -> np.ndarray:
    return np.stack([item["feats"][n] for n in names], axis=1)


def fit(items: list[dict], names: list[str], l2: float) -> np.ndarray:
    """Conditional logit: maximize sum over questions of log sum_{answer units} softmax(Xw)."""
    data = [(matrix(it, names), it["label"]) for it in items if it["label"].any()]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.5 * l2 * w @ w, l2 * w
        for x, y in data:
            s = x @ w
            s = s - s.max()
            p = np.exp(s)
            z = p.sum()
            p /= z
            zy = np.exp(s[y]).sum()
            total -= np.log(zy) - np.log(z)
            py = np.zeros_like(p)
            py[y] = np.exp(s[y]) / zy
            grad = grad - x.T @ (py - p)
        return total / len(data), grad / len(data)

    res = minimize(loss, np.zeros(len(names)), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x


def recall(items: list[dict], scores: list[np.ndarray], ratio: float, counter) -> tuple[float, list[bool]]:
    kept = []
    for it, sc in zip(items, scores, strict=True):
        limit = Budget(ratio=ratio).limit(input_tokens(it["chunks"], counter))
        scored = [Unit(u.chunk, u.span, float(v)) for u, v in zip(it["units"], sc, strict=True)]
        text = select_units(it["chunks"], scored, counter, limit).text
        kept.append(contains_answer(text, it["meta"]["answers"]))
    return float(np.mean(kept)), kept


def folds(items: list[dict], k: int) -> list[int]:
    by_gold: dict[int, int] = {}
    out = []
    for it in items:
        i = by_gold.get(it["gold"], 0)
        by_gold[it["gold"]] = i + 1
        out.append(i % k)
    return out


def is_attention(name: str) -> bool:
    return attention_feature(name) is not None


FEATURE_SETS = {
    "emb": lambda n: n.startswith("emb_"),
    "text": lambda n: not is_attention(n),
    "attn-mean+text": lambda n: not is_attention(n) or "h" not in n,
    "q+text": lambda n: not is_attention(n) or n[0] in "sc",
    "qmean+text": lambda n: not is_attention(n) or (n[0] in "sc" and "h" not in n),
    "qlmean+text": lambda n: not is_attention(n) or (n[0] in "scl" and "h" not in n),
    "qxmean+text": lambda n: not is_attention(n) or (n[0] in "scx" and "h" not in n),
    "all": lambda n: True,
}


def write_records(path: Path, questions: set[str]) -> None:
    """Write the NQ dev records of ``questions`` (for ``ctxcomp bench nq --data``)."""
    with gzip.open(NQ, "rt", encoding="utf-8") as fh:
        lines = [line for line in fh if json.loads(line)["question"] in questions]
    assert len(lines) == len(questions), (len(lines), len(questions))
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(lines)
    print(f"wrote {len(lines)} held-out records to {path}")


def layer_ok(name: str, max_layer: int, drop: str) -> bool:
    if any(name == d for d in drop.split(",") if d):
        return False
    parsed = attention_feature(name)
    return parsed is None or parsed[1] <= max_layer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scores", type=Path, default=Path("/tmp/gf300"))
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--layers", default="10,12,14,15,16,17,18,19,20,22")
    ap.add_argument("--calibration", type=float, default=1.0)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--rows", default="q", help="attention rows as features: q (query mean), l (last), x (query max)")
    ap.add_argument("--l2", default="0.01,0.1,1")
    ap.add_argument("--sets", default=",".join(FEATURE_SETS))
    ap.add_argument("--query-first", action="store_true",
                    help="the scores were collected with --query-first (recorded in the weights)")
    ap.add_argument("--max-layer", default="99",
                    help="leave out attention features above this layer; several (comma-separated) are compared")
    ap.add_argument("--drop", default="", help="feature names to leave out, comma-separated")
    ap.add_argument("--fit-on", default="", help="fit the saved weights on these folds only, e.g. 0,1,2")
    ap.add_argument("--save", type=Path)
    ap.add_argument("--heldout-data", type=Path, help="write the records the saved weights did not see here")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    layers = [int(x) for x in args.layers.split(",")]
    t0 = time.perf_counter()
    items = load_items(args.scores, args.model, layers, args.calibration, args.top,
                       args.scores / "emb_cache.pkl", args.rows.split(","))
    print(f"{len(items)} questions loaded in {time.perf_counter() - t0:.0f}s", flush=True)
    counter = get_counter("gpt-4o-mini")
    all_names = sorted(items[0]["feats"])
    fold = folds(items, args.cv)
    results = []
    max_layers = [int(x) for x in args.max_layer.split(",")]
    for set_name, max_layer in itertools.product(args.sets.split(","), max_layers):
        names = [n for n in all_names if FEATURE_SETS[set_name](n) and layer_ok(n, max_layer, args.drop)]
        for l2 in [float(x) for x in args.l2.split(",")]:
            oof: list[np.ndarray | None] = [None] * len(items)
            for f in range(args.cv):
                train = [it for it, g in zip(items, fold, strict=True) if g != f]
                w = fit(train, names, l2)
                for i, g in enumerate(fold):
                    if g == f:
                        oof[i] = matrix(items[i], names) @ w
            r4, _ = recall(items, oof, 4, counter)
            r10, _ = recall(items, oof, 10, counter)
            row = dict(features=set_name, max_layer=max_layer, n_features=len(names), l2=l2,
                       recall_r4=r4, recall_r10=r10)
            results.append(row)
            print(json.dumps(row), flush=True)
    baseline = {}
    for name in ("emb_mix", "emb_s"):
        sc = [it["feats"][name] for it in items]
        baseline[name] = dict(recall_r4=recall(items, sc, 4, counter)[0], recall_r10=recall(items, sc, 10, counter)[0])
    print("baselines", json.dumps(baseline))
    if args.save:
        # the best by out-of-fold recall; on a tie the fewer layers (a shorter forward pass)
        best = max(results, key=lambda r: (round(r["recall_r4"] + r["recall_r10"], 6), -r["max_layer"]))
        names = [n for n in all_names if FEATURE_SETS[best["features"]](n) and layer_ok(n, best["max_layer"], args.drop)]
        chosen = {int(x) for x in args.fit_on.split(",")} if args.fit_on else set(range(args.cv))
        train = [it for it, g in zip(items, fold, strict=True) if g in chosen]
        w = fit(train, names, best["l2"])
        meta = dict(model=args.model, calibration=args.calibration, top=args.top, query_first=args.query_first,
                    fit=best,
                    trained_on=f"NQ-20 dev, folds {sorted(chosen)} of {args.cv} ({len(train)} questions)",
                    script="benchmarks/gemfilter/learn.py", results="benchmarks/results/gemfilter_learned.json")
        LinearScorer(tuple(names), tuple(float(x) for x in w), meta).save(args.save)
        print("saved", args.save)
        if args.heldout_data:
            unseen = {it["meta"]["question"] for it, g in zip(items, fold, strict=True) if g not in chosen}
            write_records(args.heldout_data, unseen)
    if args.out:
        command = "python -m benchmarks.gemfilter.learn " + " ".join(sys.argv[1:])
        args.out.write_text(json.dumps(dict(suite="gemfilter_learned", command=command, cv=args.cv, layers=layers,
                                            metric="answer recall, out-of-fold (each question scored by weights "
                                                   "fit without it), real select_units at ratio 4 / 10",
                                            n_questions=len(items), results=results, baselines=baseline),
                                       indent=1) + "\n")


if __name__ == "__main__":
    main()
