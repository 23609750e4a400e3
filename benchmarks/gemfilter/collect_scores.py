"""Collect per-layer, per-head query/probe/last-row attention over NQ-20 dev prompts.

Used to choose the scoring recipe of EarlyLayerFilter offline (see sweep_nq.py): one
forward per question, every variant evaluated from the saved scores.

    .venv/bin/python benchmarks/gemfilter/collect_scores.py --n 80 --out /tmp/gf_scores
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
import torch

from ctxcomp.compressors.early_layer_prompt import Piece, build_prompt
from ctxcomp.models.attention import capture, decoder_layers, rows_attention
from ctxcomp.models.causal import load_causal_lm

NQ = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "nq20" / "dev.jsonl.gz"


def load_nq(n: int) -> list[dict]:
    with gzip.open(NQ, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    by_pos: dict[int, list[dict]] = {}
    for r in records:
        by_pos.setdefault(r["gold_index"], []).append(r)
    out = []
    i = 0
    while len(out) < n:  # stratified: round-robin over gold positions
        for pos in sorted(by_pos):
            if i < len(by_pos[pos]) and len(out) < n:
                out.append(by_pos[pos][i])
        i += 1
    return out


def chunk_texts(record: dict) -> list[str]:
    return [f"{c['title']}\n{c['text']}" for c in record["ctxs"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--layers", default="6,8,10,12,13,14,15,16,18,20,22,24,26")
    ap.add_argument("--out", default="/tmp/gf_scores")
    ap.add_argument("--query-first", action="store_true", help="also state the question before the context")
    ap.add_argument("--qmax", action="store_true", help="also save the max over query rows (key x<layer>)")
    ap.add_argument("--needle", action="store_true", help="needle prompts (2k/4k tokens, 5 depths) instead of NQ")
    args = ap.parse_args()
    layers = [int(x) for x in args.layers.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lm = load_causal_lm(args.model)
    stack = decoder_layers(lm.model)
    if args.needle:
        from benchmarks.gemfilter.needle_data import haystack_chunks, needle

        _, question, _ = needle()
        jobs = [(f"needle_{args.model}_{n}_{d}", [c.text for c in haystack_chunks(n, d / 10)],
                 {"question": question, "answers": ["Dolores Park"], "gold": d, "tokens": n})
                for n in (2000, 4000) for d in (0, 2, 5, 7, 10)]
    else:
        jobs = [(f"{args.model}_{qi:03d}", chunk_texts(rec),
                 {"question": rec["question"], "answers": rec["answers"], "gold": rec["gold_index"]})
                for qi, rec in enumerate(load_nq(args.n))]
    for qi, (stem, texts, meta) in enumerate(jobs):
        path = out / f"{stem}.npz"
        if path.exists():
            continue
        rec = meta
        prompt = build_prompt(lm.tokenizer, texts, [Piece(i, 0, len(t)) for i, t in enumerate(texts)], rec["question"],
                              query_first=args.query_first)
        t0 = time.perf_counter()
        ids = torch.from_numpy(prompt.input_ids)[None]
        got = capture(lm.model, ids, layers)
        rows = {"q": prompt.query_rows, "p": prompt.probe_rows, "l": np.array([prompt.last_row])}
        arrays = {}
        for layer in layers:
            for key, r in rows.items():
                att = rows_attention(stack[layer].self_attn, got[layer], 0, torch.from_numpy(r))
                arrays[f"{key}{layer}"] = att.mean(dim=1).numpy().astype(np.float16)  # (H, n)
                if key == "q" and args.qmax:  # strongest query row per head and token
                    arrays[f"x{layer}"] = att.amax(dim=1).numpy().astype(np.float16)
        np.savez_compressed(path, chunk=prompt.token_chunk, start=prompt.token_start, end=prompt.token_end,
                            meta=json.dumps(meta), texts=json.dumps(texts), **arrays)
        print(qi, len(prompt.input_ids), f"{time.perf_counter() - t0:.1f}s", flush=True)


if __name__ == "__main__":
    main()
