"""Chunk utilities for planners: how much each chunk is worth to the query, and how alike
two chunks are (for the redundancy charge).

A scorer is anything with ``name`` and ``score(query, chunks) -> ChunkScores``. Built in:

- ``embedding``: cosine of the chunk's MiniLM embedding with the query's (the chunk text
  includes its title line); similarity between chunks from the same vectors;
- ``bm25``: Okapi BM25 over the request's chunks (no model); similarity is word-set
  Jaccard;
- ``retrieval``: the ``score`` the retriever gave each chunk (all chunks must have one);
  similarity is word-set Jaccard;
- ``gemfilter``: the early-layer filter's score of the chunk's best sentence (its learned
  scorer reads the whole request in one forward pass); similarity is word-set Jaccard. A
  ``gemfilter`` stage after the planner reuses these sentence scores instead of running the
  model again (:mod:`ctxcomp.score_memo`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ctxcomp.errors import ConfigError, InputError, UnknownNameError
from ctxcomp.types import Chunk


@dataclass(frozen=True)
class ChunkScores:
    """Raw relevance per chunk (higher is better) and pairwise similarity in [0, 1]."""

    values: np.ndarray
    similarity: np.ndarray | None = None


@runtime_checkable
class ChunkScorer(Protocol):
    name: str

    def score(self, query: str, chunks: Sequence[Chunk]) -> ChunkScores: ...


_WORD = re.compile(r"\w+")


def jaccard_matrix(texts: Sequence[str]) -> np.ndarray:
    """Word-set Jaccard similarity of every pair of texts (1 on the diagonal)."""
    sets = [set(_WORD.findall(t.lower())) for t in texts]
    n = len(sets)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            union = len(sets[i] | sets[j])
            out[i, j] = out[j, i] = len(sets[i] & sets[j]) / union if union else 0.0
    return out


class EmbeddingUtility:
    """MiniLM cosine of each chunk with the query (see :class:`EmbeddingCompressor`)."""

    name = "embedding"

    def __init__(self, model: str | None = None, device: str | None = None) -> None:
        from ctxcomp.compressors.embedding import EmbeddingCompressor

        settings: dict[str, Any] = {"unit": "chunk", "dedup_threshold": None}
        if model is not None:
            settings["model"] = model
        self.encoder = EmbeddingCompressor(device=device, **settings)

    def config(self) -> dict[str, Any]:
        return {"model": self.encoder.settings.model}

    def model_revisions(self) -> list[Any]:
        return self.encoder.model_revisions()

    def score(self, query: str, chunks: Sequence[Chunk]) -> ChunkScores:
        vectors = self.encoder.embed([query, *(c.text for c in chunks)])
        q, docs = vectors[0], vectors[1:]
        return ChunkScores((docs @ q).astype(np.float64), np.clip(docs @ docs.T, 0.0, 1.0).astype(np.float64))


class BM25Utility:
    """Okapi BM25 of each chunk for the query, statistics taken over the request."""

    name = "bm25"

    def config(self) -> dict[str, Any]:
        return {}

    def score(self, query: str, chunks: Sequence[Chunk]) -> ChunkScores:
        from ctxcomp.lexical import bm25_scores

        texts = [c.text for c in chunks]
        return ChunkScores(np.asarray(bm25_scores(query, texts), dtype=np.float64), jaccard_matrix(texts))


class RetrievalUtility:
    """The retriever's own score of each chunk (``Chunk.score``)."""

    name = "retrieval"

    def config(self) -> dict[str, Any]:
        return {}

    def score(self, query: str, chunks: Sequence[Chunk]) -> ChunkScores:
        missing = [c.id for c in chunks if c.score is None]
        if missing:
            raise InputError(f"the retrieval utility needs a score on every chunk; chunk {missing[0]!r} has none")
        values = np.asarray([c.score for c in chunks], dtype=np.float64)
        return ChunkScores(values, jaccard_matrix([c.text for c in chunks]))


class GemfilterUtility:
    """The early-layer filter's best sentence score in each chunk (see the module docs).

    Args:
        **settings: the filter's settings (``model``, ``scorer`` ...), as for the stage;
            the stage reuses the scores only when its settings are the same.
    """

    name = "gemfilter"

    def __init__(self, **settings: Any) -> None:
        from ctxcomp.compressors.early_layer import EarlyLayerFilter

        self.filter = EarlyLayerFilter(**settings)

    def config(self) -> dict[str, Any]:
        return dict(self.filter.config())

    def model_revisions(self) -> list[Any]:
        return list(self.filter.model_revisions())

    def score(self, query: str, chunks: Sequence[Chunk]) -> ChunkScores:
        units = self.filter.score_units(query, chunks)
        best = np.full(len(chunks), -np.inf)
        for u in units:
            best[u.chunk] = max(best[u.chunk], float(u.score if u.score is not None else -np.inf))
        finite = np.isfinite(best)
        floor = float(best[finite].min()) if finite.any() else 0.0
        best[~finite] = floor  # an empty chunk, or one cut by max_input_tokens: worth the least
        return ChunkScores(best, jaccard_matrix([c.text for c in chunks]))


_SCORERS = {"embedding": EmbeddingUtility, "bm25": BM25Utility, "retrieval": RetrievalUtility,
            "gemfilter": GemfilterUtility}


def build_utility(spec: str | Mapping[str, Any] | ChunkScorer) -> ChunkScorer:
    """A chunk scorer from a name (``embedding``, ``bm25``, ``retrieval``, ``gemfilter``), a
    mapping of a name and its settings (``{"name": "gemfilter", "scorer": "w.json"}``), or an
    instance.

    Raises:
        UnknownNameError: an unknown name.
        ConfigError: neither a name nor a scorer, or bad settings.
    """
    if isinstance(spec, Mapping):
        settings = dict(spec)
        name = settings.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"a utility mapping needs a 'name' (one of {', '.join(sorted(_SCORERS))})")
        if name not in _SCORERS:
            raise UnknownNameError("utility", name, _SCORERS)
        try:
            return _SCORERS[name](**settings)  # type: ignore[no-any-return]
        except TypeError as exc:
            raise ConfigError(f"utility {name!r}: {exc}") from None
    if isinstance(spec, str):
        if spec not in _SCORERS:
            raise UnknownNameError("utility", spec, _SCORERS)
        return _SCORERS[spec]()  # type: ignore[no-any-return]
    if isinstance(spec, ChunkScorer):
        return spec
    raise ConfigError(f"utility must be a scorer name or a ChunkScorer, got {type(spec).__name__}")


def normalize(values: np.ndarray) -> np.ndarray:
    """Scores to utilities in [0, 1] over the request (min-max; all equal -> all 1).

    Raises:
        InputError: NaN or infinite scores.
    """
    if not np.all(np.isfinite(values)):
        raise InputError("chunk scores must be finite numbers; the scorer returned NaN or inf")
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return np.ones_like(values)
    return (values - lo) / (hi - lo)
