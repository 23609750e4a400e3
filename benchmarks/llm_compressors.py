"""summarize / semantic on a few NQ-20 dev questions: answer recall, tokens, the LLM's own
tokens and seconds per summarized chunk, faithfulness, fallbacks (net of the summarizer).

Run under the bench lock (slow on CPU: SmolLM2-135M decodes every summary):
    flock /work/.bench.lock python benchmarks/llm_compressors.py --limit 5 --ratio 4,10 \
        --methods summarize,semantic --out benchmarks/results/llm_abstractive.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from ctxcomp.bench.data import load_nq, stratified
from ctxcomp.bench.metrics import contains_answer
from ctxcomp.pricing import prompt_costs
from ctxcomp.types import Budget


def build(name: str, embedder):
    if name == "summarize":
        from ctxcomp.compressors.summarize import SummarizeCompressor

        return SummarizeCompressor("local", embedder=embedder)
    if name == "semantic":
        from ctxcomp.compressors.semantic import SemanticCompressor

        return SemanticCompressor(embedder=embedder)
    if name == "embedding":
        return embedder
    raise SystemExit(f"unknown method {name}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/nq20/dev.jsonl.gz"))
    ap.add_argument("--limit", type=int, default=5)
    ap.add_argument("--ratio", default="4,10")
    ap.add_argument("--methods", default="summarize,semantic")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from ctxcomp.compressors.embedding import EmbeddingCompressor

    embedder = EmbeddingCompressor()
    embedder.setup()
    examples = stratified(load_nq(args.data), args.limit)
    rows = []
    for name in args.methods.split(","):
        comp = build(name, embedder)
        for ratio in (float(r) for r in args.ratio.split(",")):
            hits, toks_in, toks_out, secs, llm_in, llm_out, faith, summaries, fallbacks, notes = (
                [], [], [], [], 0, 0, [], 0, 0, [])
            for ex in examples:
                started = time.perf_counter()
                ctx = comp.compress(ex.query, list(ex.chunks), Budget(ratio=ratio))
                secs.append(time.perf_counter() - started)
                hits.append(contains_answer(ctx.text, ex.answers))
                toks_in.append(ctx.tokens_in)
                toks_out.append(ctx.tokens_out)
                stage = ctx.stages[0]
                llm_in += stage.llm_tokens_in
                llm_out += stage.llm_tokens_out
                gen = [c for c in ctx.chunks if c.generated is not None]
                summaries += len(gen)
                faith += [c.generated.faithfulness for c in gen if c.generated.faithfulness is not None]
                if stage.note and "fell back" in stage.note:
                    fallbacks += 1
                    notes.append(stage.note)
                print(name, ratio, ex.id, ctx.tokens_out, round(secs[-1], 1), stage.note, file=sys.stderr, flush=True)
            n = len(examples)
            saved = sum(toks_in) - sum(toks_out)
            before, after = prompt_costs("gpt-4o-mini", sum(toks_in), sum(toks_out))
            rows.append({
                "method": name, "ratio": ratio, "n": n,
                "answer_recall": sum(hits) / n,
                "tokens_in_mean": sum(toks_in) / n, "tokens_out_mean": sum(toks_out) / n,
                "seconds_p50": statistics.median(secs), "seconds_mean": sum(secs) / n,
                "llm_tokens_in": llm_in, "llm_tokens_out": llm_out,
                "target_tokens_saved": saved,
                # net: every summarizer token counted as if it were a target-model token
                # (a local model costs $0, but its tokens are not free compute)
                "net_tokens_saved": saved - llm_in - llm_out,
                "usd_saved_gpt4o_mini": None if before is None else before - after,
                "summaries": summaries,
                "seconds_per_summary": (sum(secs) / summaries) if summaries else None,
                "faithfulness_mean": statistics.mean(faith) if faith else None,
                "requests_with_fallback": fallbacks, "fallback_notes": notes[:5],
            })
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    out = {"command": " ".join(["python", *sys.argv]), "data": args.data, "limit": args.limit,
           "target_model": "gpt-4o-mini", "rows": rows}
    Path(args.out).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
