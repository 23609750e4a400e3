"""Semantic compression (TCRA-LLM, arXiv 2310.15556): drop the words that move the
chunk's embedding least, until the budget is met.

Query-agnostic word dropping. Each chunk gets a share of the limit in proportion to its
size (capped by its quota); its words are dropped lowest impact first, where a word's
impact is how far the chunk's MiniLM embedding turns when the word is left out
(``1 - cos(e, e_without_word)``).

Fast and batched: the model is run once per window of text (up to ``window_words`` words)
per round, not once per candidate word. MiniLM's embedding is the mean of its token
vectors, so every leave-one-word-out embedding of a window comes from that one forward
pass (the pooled sum minus the word's own token vectors): one matrix product scores all
the words of a window. This holds the other tokens' vectors fixed (they would shift a
little with the word gone), so the removal is done in ``rounds``: each round drops part of
what is still over the share, then re-encodes the shortened text and re-scores. Kept text
is verbatim, in order, with exact source spans (runs of kept words are one span).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ctxcomp.assembly import Assembly, Quotas, Unit, assemble
from ctxcomp.compressors.base import BaseCompressor, ModelRevision
from ctxcomp.compressors.embedding import EmbeddingCompressor
from ctxcomp.errors import ConfigError
from ctxcomp.text import word_spans
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Chunk


@dataclass(frozen=True)
class SemanticConfig:
    """Settings of :class:`SemanticCompressor`.

    Attributes:
        rounds: re-encode and re-score this many times (1: score once, drop all at once).
        window_words: words per encoded window (MiniLM reads up to 256 word pieces).
        batch_size: windows per forward pass.
    """

    rounds: int = 2
    window_words: int = 150
    batch_size: int = 16

    def __post_init__(self) -> None:
        for name in ("rounds", "window_words", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")


class SemanticCompressor(BaseCompressor):
    """Word dropping by embedding impact (query-agnostic), within the budget.

    Example:
        >>> SemanticCompressor().compress("", chunks, Budget(ratio=1.25))  # doctest: +SKIP
    """

    name = "semantic"
    requires_query = False

    def __init__(self, embedder: EmbeddingCompressor | None = None, config: SemanticConfig | None = None,
                 **settings: Any) -> None:
        super().__init__()
        self.settings = config if config is not None else SemanticConfig(**settings)
        self.embedder = embedder or EmbeddingCompressor()

    def config(self) -> dict[str, Any]:
        data = asdict(self.settings)
        data.pop("batch_size")
        return {**data, "model": self.embedder.settings.model}

    def model_revisions(self) -> list[ModelRevision]:
        return self.embedder.model_revisions()

    def _setup(self) -> None:
        self.embedder.setup()

    # -- word impacts ----------------------------------------------------------------------
    def _window_impacts(self, texts: list[str], words: list[list[tuple[int, int]]]) -> list[np.ndarray]:
        """For each window text, the impact of each of its words (spans into the text)."""
        import torch

        assert self.embedder._encoder is not None
        st = self.embedder._encoder.model
        tok = st.tokenizer
        out: list[np.ndarray] = []
        size = self.settings.batch_size
        for at in range(0, len(texts), size):
            batch = texts[at : at + size]
            enc = tok(batch, padding=True, truncation=True, max_length=st.max_seq_length,
                      return_offsets_mapping=True, return_tensors="pt")
            offsets = enc.pop("offset_mapping").numpy()
            features = {k: v.to(st.device) for k, v in enc.items()}
            with torch.inference_mode():
                vectors = st[0](features)["token_embeddings"].float().cpu().numpy()  # the transformer only
            mask = enc["attention_mask"].numpy().astype(bool)
            for row, spans in enumerate(words[at : at + size]):
                out.append(_impacts(vectors[row][mask[row]], offsets[row][mask[row]], spans))
        return out

    def _impacts(self, chunks: Sequence[Chunk], spans: list[list[tuple[int, int]]],
                 alive: list[np.ndarray]) -> list[np.ndarray]:
        """Impact of every word of every chunk (inf for dropped words), in one batched pass
        over windows of the chunks' current (shortened) text."""
        texts: list[str] = []
        window_words: list[list[tuple[int, int]]] = []
        owners: list[tuple[int, np.ndarray]] = []
        w = self.settings.window_words
        for i, chunk in enumerate(chunks):
            idx = np.flatnonzero(alive[i])
            for at in range(0, len(idx), w):
                part = idx[at : at + w]
                pieces = [chunk.text[spans[i][j][0] : spans[i][j][1]] for j in part]
                text, local, pos = " ".join(pieces), [], 0
                for piece in pieces:
                    local.append((pos, pos + len(piece)))
                    pos += len(piece) + 1
                texts.append(text)
                window_words.append(local)
                owners.append((i, part))
        result = [np.full(len(s), np.inf) for s in spans]
        for (i, part), scores in zip(owners, self._window_impacts(texts, window_words), strict=True):
            result[i][part] = scores
        return result

    # -- selection ---------------------------------------------------------------------------
    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter, quotas: Quotas = None
    ) -> Assembly:
        spans = [word_spans(c.text) for c in chunks]
        costs = [np.array(counter.count_many([c.text[a:b] for a, b in s]) if s else [], dtype=np.int64)
                 for c, s in zip(chunks, spans, strict=True)]
        alive = [np.ones(len(s), dtype=bool) for s in spans]
        total = sum(int(c.sum()) for c in costs) or 1
        room = max(0, limit - 2 * len(chunks))  # separators between chunks
        targets = []
        for i, c in enumerate(costs):
            share = int(room * int(c.sum()) / total)
            if quotas is not None and quotas[i] is not None:
                share = min(share, int(quotas[i] or 0))
            targets.append(share)
        rounds = self.settings.rounds
        impacts = [np.zeros(len(s)) for s in spans]
        for r in range(rounds):
            impacts = self._impacts(chunks, spans, alive)
            for i in range(len(chunks)):
                kept = int(costs[i][alive[i]].sum())
                over = kept - targets[i]
                if over <= 0:
                    continue
                goal = over if r == rounds - 1 else max(1, over * (r + 1) // rounds)
                _drop(alive[i], impacts[i], costs[i], goal)
        assembly = assemble(chunks, _units(spans, alive), counter)
        while assembly.tokens > limit:  # BPE counts are not additive: drop a few more
            excess = assembly.tokens - limit
            worst = max(range(len(chunks)), key=lambda i: int(costs[i][alive[i]].sum()) - targets[i])
            if not alive[worst].any():
                worst = max(range(len(chunks)), key=lambda i: int(alive[i].sum()))
                if not alive[worst].any():
                    break
            _drop(alive[worst], impacts[worst], costs[worst], max(1, excess))
            assembly = assemble(chunks, _units(spans, alive), counter)
        return assembly


def _impacts(tokens: np.ndarray, offsets: np.ndarray, words: list[tuple[int, int]]) -> np.ndarray:
    """1 - cos(mean of all token vectors, mean without the word's tokens), per word."""
    total = tokens.sum(axis=0)
    n = len(tokens)
    full = total / np.linalg.norm(total)
    starts = offsets[:, 0]
    ends = offsets[:, 1]
    real = ends > starts  # special tokens have empty offsets
    member = np.zeros((len(words), n), dtype=np.float32)
    for w, (a, b) in enumerate(words):
        member[w] = real & (starts >= a) & (ends <= b)
    counts = member.sum(axis=1)
    without = total[None, :] - member @ tokens
    norms = np.linalg.norm(without, axis=1)
    cos = (without @ full) / np.maximum(norms, 1e-9)
    impact = 1.0 - cos
    unseen = counts == 0  # cut off by the encoder's window: score like an average word
    if unseen.any():
        impact[unseen] = float(np.mean(impact[~unseen])) if (~unseen).any() else 0.0
    _ = n
    return impact


def _drop(alive: np.ndarray, impact: np.ndarray, cost: np.ndarray, goal: int) -> None:
    """Drop alive words, lowest impact first, until ``goal`` tokens are gone."""
    order = [j for j in np.argsort(impact, kind="stable") if alive[j]]
    gone = 0
    for j in order:
        if gone >= goal:
            break
        alive[j] = False
        gone += int(cost[j])


def _units(spans: list[list[tuple[int, int]]], alive: list[np.ndarray]) -> list[Unit]:
    """Runs of kept words as units (a run spans the gaps between its words)."""
    units: list[Unit] = []
    for i, (s, a) in enumerate(zip(spans, alive, strict=True)):
        run: tuple[int, int] | None = None
        for j, keep in enumerate(a):
            if keep:
                run = (run[0], s[j][1]) if run is not None else s[j]
            elif run is not None:
                units.append(Unit(i, run))
                run = None
        if run is not None:
            units.append(Unit(i, run))
    return units
