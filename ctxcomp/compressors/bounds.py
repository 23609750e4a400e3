"""Input-size bounds for model stages: cut an oversized request down with BM25, at no model cost.

A model stage's cost grows with its input (MiniLM embeds ~230 sentences/s, SmolLM2 reads
~1,700 tokens/s on 2 CPU cores), so each has a configurable bound; past it, the request is
cut down to what the query's words match best, by BM25 over the request's own pieces
(:mod:`ctxcomp.lexical`; character bigrams in unspaced scripts). Ties keep input order.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctxcomp.lexical import bm25_scores


def best_by_bm25(query: str, texts: Sequence[str], count: int) -> list[int]:
    """Indices of the ``count`` texts that best match ``query`` by BM25, in input order."""
    scores = bm25_scores(query, texts)
    return sorted(sorted(range(len(texts)), key=lambda i: (-scores[i], i))[:count])


def fit_by_bm25(query: str, texts: Sequence[str], lengths: Sequence[int], limit: int) -> list[int]:
    """Indices of texts, best BM25 match first, taken while their ``lengths`` add up to at
    most ``limit`` (a text too long to fit is skipped); in input order. Empty when none fits."""
    scores = bm25_scores(query, texts)
    keep, used = [], 0
    for i in sorted(range(len(texts)), key=lambda i: (-scores[i], i)):
        if used + lengths[i] <= limit:
            keep.append(i)
            used += lengths[i]
    return sorted(keep)
