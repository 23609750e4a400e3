"""Needle-in-a-haystack inputs from the dev essays (sorted order, as the data README says).

The haystack is the concatenated essays cut to about ``tokens`` tokens (tiktoken
cl100k), split into ~400-token chunks at paragraph/sentence boundaries; the needle is
inserted at a sentence boundary at ``depth`` (0..1).
"""

from __future__ import annotations

import json
from pathlib import Path

from ctxcomp.text import split_sentences
from ctxcomp.tokens import get_counter
from ctxcomp.types import Chunk

HAYSTACK = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "haystack"


def needle() -> tuple[str, str, str]:
    """(needle sentence, question, a phrase that must survive)."""
    data = json.loads((HAYSTACK / "needles.json").read_text(encoding="utf-8"))["single_needle"]
    return data["needle"].strip(), data["retrieval_question"], "Dolores Park"


def haystack_chunks(tokens: int, depth: float, chunk_tokens: int = 400) -> list[Chunk]:
    counter = get_counter("gpt-4o-mini")
    text = "\n\n".join(p.read_text(encoding="utf-8") for p in sorted((HAYSTACK / "PaulGrahamEssays").glob("*.txt")))
    sents = [text[s:e] for s, e in split_sentences(text)]
    costs = counter.count_many(sents)
    kept, used = [], 0
    for s, c in zip(sents, costs, strict=True):
        if used + c > tokens:
            break
        kept.append((s, c))
        used += c
    at = int(len(kept) * depth)
    sentence, _, _ = needle()
    kept.insert(at, (sentence, counter.count(sentence)))
    chunks, cur, n = [], [], 0
    for s, c in kept:
        if cur and n + c > chunk_tokens:
            chunks.append(Chunk(" ".join(cur), id=str(len(chunks))))
            cur, n = [], 0
        cur.append(s)
        n += c
    if cur:
        chunks.append(Chunk(" ".join(cur), id=str(len(chunks))))
    return chunks
