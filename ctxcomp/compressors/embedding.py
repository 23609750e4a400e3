"""Relevance by embedding similarity: keep the sentences (or chunks) closest to the query.

Each sentence is scored by a mix of its own cosine similarity to the query and its
chunk's (a sentence inside a relevant passage is worth more than a look-alike elsewhere).
A sentence is embedded together with its chunk's title (``metadata["title"]`` or a short
first line), so "it ran for 291 episodes" is found for a question about the show named in
the title: on 50 NQ dev questions this raised answer recall at ratio 10 from 0.56 to 0.70.
Near-duplicates of a better-scored unit are dropped. Kept text is verbatim, in original
order, with exact source spans. Model: all-MiniLM-L6-v2 by default (shipped offline).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ctxcomp.assembly import Assembly, Quotas, Unit, select_units
from ctxcomp.compressors.base import BaseCompressor, ModelRevision
from ctxcomp.compressors.bounds import best_by_bm25
from ctxcomp.errors import ConfigError, InputError
from ctxcomp.models.sentence import DEFAULT_EMBEDDING_MODEL, LoadedEncoder, load_encoder, resolve
from ctxcomp.settings import check_types
from ctxcomp.text import split_sentences, title_of
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Chunk

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddingConfig:
    """Settings of :class:`EmbeddingCompressor`.

    Attributes:
        model: a sentence-transformers spec (shipped name, hub id or folder).
        unit: ``"sentence"`` keeps sentences; ``"chunk"`` keeps whole chunks.
        chunk_weight: share of the chunk's similarity in a sentence's score (0..1).
        title_context: embed each sentence as "title: sentence" when its chunk has a title.
        dedup_threshold: drop a unit whose cosine to a better one is >= this (None: off).
        batch_size: texts per encoder call.
        device: torch device; None picks cuda > mps > cpu.
        max_units: the most units (sentences or chunks) one request embeds; MiniLM embeds
            about 230 sentences/s on 2 CPU cores, so 2,048 is ~9 s. None: no limit.
        oversize: what a request with more units does: ``bm25`` (default) embeds only the
            ``max_units`` units that best match the query by BM25 (the others cannot be
            kept; cost stays bounded whatever the input size); ``error`` raises InputError.
    """

    model: str = DEFAULT_EMBEDDING_MODEL
    unit: Literal["sentence", "chunk"] = "sentence"
    chunk_weight: float = 0.5  # 0.3 / 0.5 measured: 0.5 better at ratio 4, same at 10
    title_context: bool = True
    dedup_threshold: float | None = 0.95
    batch_size: int = 16  # fastest on 2 CPU cores (measured 8..128)
    device: str | None = None
    max_units: int | None = 2048
    oversize: Literal["bm25", "error"] = "bm25"

    def __post_init__(self) -> None:
        check_types(self)
        if self.unit not in ("sentence", "chunk"):
            raise ConfigError(f"unit must be 'sentence' or 'chunk', got {self.unit!r}")
        if not 0.0 <= self.chunk_weight <= 1.0:
            raise ConfigError(f"chunk_weight must be in [0, 1], got {self.chunk_weight}")
        if self.dedup_threshold is not None and not 0.0 < self.dedup_threshold <= 1.0:
            raise ConfigError(f"dedup_threshold must be in (0, 1] or None, got {self.dedup_threshold}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_units is not None and self.max_units < 1:
            raise ConfigError(f"max_units must be >= 1 or None, got {self.max_units}")


def drop_near_duplicates(
    order: Sequence[int], vectors: np.ndarray, threshold: float | None
) -> list[int]:
    """Indices from ``order`` (best first) whose cosine to every earlier kept one < threshold."""
    if threshold is None:
        return list(order)
    kept: list[int] = []
    for i in order:
        if kept and float(np.max(vectors[kept] @ vectors[i])) >= threshold:
            continue
        kept.append(i)
    return kept


class EmbeddingCompressor(BaseCompressor):
    """Keep the sentences (or chunks) most similar to the query, within the budget.

    Example:
        >>> comp = EmbeddingCompressor(unit="sentence")
        >>> ctx = comp.compress("who wrote Hamlet?", chunks, Budget(max_tokens=200))  # doctest: +SKIP
    """

    name = "embedding"

    def __init__(self, config: EmbeddingConfig | None = None, **settings: Any) -> None:
        super().__init__()
        self.settings = config if config is not None else EmbeddingConfig(**settings)
        self._encoder: LoadedEncoder | None = None

    def config(self) -> dict[str, Any]:
        data = asdict(self.settings)
        data.pop("batch_size")
        data.pop("device")
        if data["max_units"] == EmbeddingConfig.max_units and data["oversize"] == EmbeddingConfig.oversize:
            del data["max_units"], data["oversize"]  # the defaults: cache keys stay as they were
        return data

    def model_revisions(self) -> list[ModelRevision]:
        # Resolved without loading weights, so a cache hit in a fresh process stays cheap.
        return [ModelRevision(self.settings.model, resolve(self.settings.model)[1])]

    def _setup(self) -> None:
        self._encoder = load_encoder(self.settings.model, self.settings.device)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-normalized embeddings of ``texts`` (float32, one row each)."""
        self.setup()
        assert self._encoder is not None
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        vectors = self._encoder.model.encode(
            list(texts),
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def _units(self, chunks: Sequence[Chunk]) -> list[Unit]:
        units: list[Unit] = []
        for index, chunk in enumerate(chunks):
            if self.settings.unit == "chunk":
                spans = [(0, len(chunk.text))] if chunk.text.strip() else []
            else:
                spans = split_sentences(chunk.text)
            units.extend(Unit(index, span) for span in spans)
        return units

    def _bounded(self, query: str, chunks: Sequence[Chunk], units: list[Unit]) -> list[Unit]:
        """``units``, or the ``max_units`` best by BM25 (in order) when there are more."""
        cap = self.settings.max_units
        if cap is None or len(units) <= cap:
            return units
        if self.settings.oversize == "error":
            raise InputError(f"{len(units):,} {self.settings.unit}s to embed, over max_units={cap:,}; raise "
                             "max_units, or set oversize='bm25' to embed only the best BM25 matches")
        best = best_by_bm25(query, [chunks[u.chunk].text[u.span[0] : u.span[1]] for u in units], cap)
        log.info("embedding: %d units over max_units=%d; embedding the %d best BM25 matches", len(units), cap, cap)
        return [units[i] for i in best]

    def _unit_text(self, chunk: Chunk, span: tuple[int, int]) -> str:
        text = chunk.text[span[0] : span[1]]
        if not self.settings.title_context or self.settings.unit == "chunk":
            return text
        title = chunk.metadata.get("title") if isinstance(chunk.metadata.get("title"), str) else None
        title = title or title_of(chunk.text)
        if not title:
            return text
        return f"{title}: {text.removeprefix(title).lstrip()}"

    def similarities(
        self, query: str, chunks: Sequence[Chunk], chunk_level: bool = True
    ) -> tuple[list[Unit], np.ndarray, np.ndarray | None, np.ndarray]:
        """Units, their cosine similarity to ``query``, their chunk's (None unless
        ``chunk_level`` and unit is ``sentence``), and the units' embeddings."""
        units = self._bounded(query, chunks, self._units(chunks))
        texts = [self._unit_text(chunks[u.chunk], u.span) for u in units]
        # Two calls: mixing long chunks into the sentence batches pads them all (2x slower).
        vectors = self.embed([query, *texts])
        q, unit_vecs = vectors[0], vectors[1:]
        sims = (unit_vecs @ q).astype(np.float64)
        if not (chunk_level and self.settings.unit == "sentence"):
            return units, sims, None, unit_vecs
        chunk_sims = (self.embed([c.text for c in chunks]) @ q).astype(np.float64)
        return units, sims, chunk_sims[[u.chunk for u in units]], unit_vecs

    def score_units(self, query: str, chunks: Sequence[Chunk]) -> tuple[list[Unit], np.ndarray]:
        """Units with their relevance scores, and the units' embeddings."""
        w = self.settings.chunk_weight
        units, scores, chunk_scores, unit_vecs = self.similarities(query, chunks, chunk_level=w > 0)
        if chunk_scores is not None:
            scores = (1 - w) * scores + w * chunk_scores
        scored = [Unit(u.chunk, u.span, float(s)) for u, s in zip(units, scores, strict=True)]
        return scored, unit_vecs

    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter, quotas: Quotas = None
    ) -> Assembly:
        units, vectors = self.score_units(query, chunks)
        order = sorted(range(len(units)), key=lambda i: -units[i].score)
        keep = drop_near_duplicates(order, vectors, self.settings.dedup_threshold)
        return select_units(chunks, [units[i] for i in keep], counter, limit, quotas)
