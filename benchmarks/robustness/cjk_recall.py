"""Answer recall on Chinese and Japanese passages (benchmarks/data/cjk_qa): is the CJK path
measured, not just non-empty?

Each of the 30 questions gets its gold passage among 9 distractors of the same language
(see the data README). Every method compresses the 10 chunks to ``tokens_in / ratio``
o200k tokens; *answer recall* is the share of questions whose answer string (NFKC,
case-folded, spaces removed) is still in the kept context, *gold recall* the share whose
answer is in the text kept from the gold passage (through provenance).

    python benchmarks/robustness/cjk_recall.py --methods truncate,embedding,gemfilter \\
        --ratio 4,10 --out benchmarks/results/cjk_recall.json [--label after]

Run it with ``PYTHONPATH`` pointing at another checkout to measure that code on the same
examples (``--label before``); ``--merge`` adds a run to an existing result file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "benchmarks" / "data" / "cjk_qa" / "passages.jsonl"


def normalize(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def examples(path: Path = DATA) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    out = []
    for lang in ("zh", "ja"):
        pool = [r for r in rows if r["lang"] == lang]
        for i, gold in enumerate(pool):
            others = [pool[(i + k) % len(pool)] for k in range(1, 10)]
            position = (3 * i) % 10
            passages = [*others[:position], gold, *others[position:]]
            out.append({"id": gold["id"], "lang": lang, "question": gold["question"], "answers": gold["answers"],
                        "gold": position, "chunks": [f"{p['title']}\n{p['text']}" for p in passages]})
    return out


def build(name: str) -> Any:
    from ctxcomp import registry

    comp = registry.compressors.create(name)
    comp.setup()
    return comp


def measure(methods: list[str], ratios: list[float]) -> dict[str, Any]:
    from ctxcomp.errors import CtxcompError
    from ctxcomp.tokens import get_counter
    from ctxcomp.types import Budget, Chunk

    counter = get_counter("gpt-4o-mini")
    data = examples()
    rows: dict[str, Any] = {}
    comps = {m: build(m) for m in methods}
    for ratio in ratios:
        for method, comp in comps.items():
            hits, gold_hits, ratios_got, seconds, errors, empty = {}, 0, [], [], 0, 0
            for ex in data:
                chunks = [Chunk(t, id=f"p{i}") for i, t in enumerate(ex["chunks"])]
                started = time.perf_counter()
                try:
                    ctx = comp.compress(ex["question"], chunks, Budget(ratio=ratio))
                except CtxcompError as exc:
                    errors += 1
                    print(f"{method} {ex['id']}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    hits[ex["id"]] = False
                    continue
                seconds.append(time.perf_counter() - started)
                kept = normalize(ctx.text)
                hits[ex["id"]] = any(normalize(a) in kept for a in ex["answers"])
                gold = [c for c in ctx.chunks if c.source_id == f"p{ex['gold']}"]
                gold_hits += bool(gold and any(normalize(a) in normalize(gold[0].text) for a in ex["answers"]))
                tokens_out = counter.count(ctx.text) if ctx.text else 0
                empty += not ctx.text.strip()
                ratios_got.append(ctx.tokens_in / tokens_out if tokens_out else float("inf"))
            n = len(data)
            by_lang = {lang: sum(v for k, v in hits.items() if k.startswith(lang)) / sum(1 for k in hits if
                                                                                        k.startswith(lang))
                       for lang in ("zh", "ja")}
            rows[f"{method}@{ratio:g}"] = {
                "method": method, "ratio": ratio, "n": n, "answer_recall": round(sum(hits.values()) / n, 3),
                "answer_recall_zh": round(by_lang["zh"], 3), "answer_recall_ja": round(by_lang["ja"], 3),
                "gold_recall": round(gold_hits / n, 3), "empty_outputs": empty, "errors": errors,
                "ratio_achieved_median": round(statistics.median(ratios_got), 2) if ratios_got else None,
                "latency_s_p50": round(statistics.median(seconds), 4) if seconds else None, "hits": hits}
            print(f"{method} @{ratio:g}: recall {rows[f'{method}@{ratio:g}']['answer_recall']} "
                  f"(zh {by_lang['zh']:.2f}, ja {by_lang['ja']:.2f}), empty {empty}, errors {errors}", file=sys.stderr)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="truncate,embedding,gemfilter")
    parser.add_argument("--ratio", default="4,10")
    parser.add_argument("--label", default="after")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--merge", action="store_true", help="add this run to an existing --out file")
    args = parser.parse_args()
    import torch

    import ctxcomp

    torch.set_num_threads(2)
    from ctxcomp.tokens import get_counter

    data = examples()
    tokens = [get_counter("gpt-4o-mini").count("\n\n".join(ex["chunks"])) for ex in data]
    run = {"label": args.label, "ctxcomp": str(Path(ctxcomp.__file__).parent.parent.name),
           "command": "python benchmarks/robustness/cjk_recall.py --methods " + args.methods + " --ratio "
                      + args.ratio + f" --label {args.label}",
           "examples": len(data), "tokens_in_median": statistics.median(tokens),
           "results": measure(args.methods.split(","), [float(r) for r in args.ratio.split(",")])}
    existing = json.loads(args.out.read_text()) if args.merge and args.out.exists() else {"runs": []}
    existing["runs"] = [r for r in existing["runs"] if r["label"] != args.label] + [run]
    existing["data"] = "benchmarks/data/cjk_qa/passages.jsonl (CC0, see its README)"
    args.out.write_text(json.dumps(existing, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
