"""Token-level pruning compressors: ``attribution`` and ``selfinfo``.

Both split every chunk into whole words and structure (:mod:`.layout`), score the words
with a small causal LM (:mod:`.scoring`), and keep the best words in their original order
within the stage's token limit and per-chunk quotas (:mod:`.select`). They differ only
in the token signal:

- :class:`AttributionCompressor` (``attribution``): gradient x input (or integrated
  gradients) of log p(query | context), or of log p(reference answer | context, query)
  through :meth:`~AttributionCompressor.compress_for_answer`. Query-aware.
- :class:`SelfInfoCompressor` (``selfinfo``): self-information -log p(token | prefix),
  Selective Context's signal; forward only, query-agnostic, the cheap baseline.

Example:
    >>> comp = AttributionCompressor()  # SmolLM2-135M: ctxcomp models pull smollm2-135m
    >>> ctx = comp.compress("who wrote Hamlet?", chunks, Budget(ratio=4))  # doctest: +SKIP
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ctxcomp.assembly import Assembly, Quotas
from ctxcomp.compressors.attribution import layout as layout_mod
from ctxcomp.compressors.attribution.scoring import (
    TokenScores,
    aggregate,
    attribution_scores,
    selfinfo_scores,
)
from ctxcomp.compressors.attribution.select import select_pieces
from ctxcomp.compressors.base import BaseCompressor, ModelRevision
from ctxcomp.errors import ConfigError
from ctxcomp.inputs import ChunkLike
from ctxcomp.models.causal import LoadedLM, load_causal_lm, resolve
from ctxcomp.settings import check_types
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Budget, Chunk, CompressedContext

_answer: contextvars.ContextVar[str | None] = contextvars.ContextVar("ctxcomp_reference_answer", default=None)


@dataclass(frozen=True)
class PruneConfig:
    """Settings shared by the token-pruning compressors.

    Attributes:
        model: causal LM spec (shipped name, folder, ``.gguf`` or hub id).
        aggregate: how token scores make a word's score (``sum``, ``max`` or ``mean``).
        force_keep: force-keep rules (:data:`~.layout.FORCE_RULES`): ``numbers``, ``urls``,
            ``ids``, ``roles``, ``entities``.
        keep_patterns: regexes whose matches are force-kept (whole words).
        structure: JSON, Markdown and code-fence awareness (False: every chunk is prose).
        window: context tokens per model row.
        batch_size: rows per forward (and backward) pass.
        max_tokens: context tokens scored per request (later ones score 0).
        device: torch device; None picks cuda > mps > cpu.
        dtype: ``bf16``/``fp16``/``fp32``; None picks per device.
    """

    model: str = "smollm2-135m"
    aggregate: Literal["sum", "max", "mean"] = "sum"
    force_keep: tuple[str, ...] = layout_mod.DEFAULT_FORCE
    keep_patterns: tuple[str, ...] = ()
    structure: bool = True
    window: int = 1024
    batch_size: int = 4
    max_tokens: int = 16384
    device: str | None = None
    dtype: str | None = None

    def __post_init__(self) -> None:
        check_types(self)
        object.__setattr__(self, "force_keep", tuple(self.force_keep))
        object.__setattr__(self, "keep_patterns", tuple(self.keep_patterns))
        unknown = sorted(set(self.force_keep) - set(layout_mod.FORCE_RULES))
        if unknown:
            raise ConfigError(f"unknown force_keep rules {unknown}; known: {list(layout_mod.FORCE_RULES)}")
        for pattern in self.keep_patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"keep_patterns: bad regex {pattern!r}: {exc}") from exc
        for name in ("window", "batch_size", "max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    def rules(self) -> layout_mod.Rules:
        return layout_mod.Rules(self.force_keep, tuple(re.compile(p) for p in self.keep_patterns), self.structure)


@dataclass(frozen=True)
class AttributionConfig(PruneConfig):
    """:class:`PruneConfig` plus ``steps``: 0 for gradient x input (one backward pass per
    batch), >0 for integrated gradients with that many steps (all in the same batch)."""

    steps: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.steps <= 64:
            raise ConfigError(f"steps must be in 0..64, got {self.steps}")


class TokenPruner(BaseCompressor):
    """Shared machinery: layout, scoring hook, whole-word selection."""

    name = "token-pruner"
    config_class: type[PruneConfig] = PruneConfig

    def __init__(self, config: PruneConfig | None = None, **settings: Any) -> None:
        super().__init__()
        self.settings = config if config is not None else self.config_class(**settings)
        self._rules = self.settings.rules()
        self._lm: LoadedLM | None = None

    def config(self) -> dict[str, Any]:
        data = asdict(self.settings)
        for key in ("batch_size", "device"):
            data.pop(key)
        return data

    def model_revisions(self) -> list[ModelRevision]:
        return [ModelRevision(self.settings.model, resolve(self.settings.model)[2])]

    def _setup(self) -> None:
        self._lm = load_causal_lm(self.settings.model, self.settings.device, self.settings.dtype)

    @property
    def lm(self) -> LoadedLM:
        self.setup()
        assert self._lm is not None
        return self._lm

    def _token_scores(self, query: str, texts: Sequence[str]) -> list[TokenScores]:
        raise NotImplementedError

    def layouts(self, chunks: Sequence[Chunk]) -> list[layout_mod.Layout]:
        """The layout (pieces, markers, JSON tree) of each chunk."""
        return [layout_mod.build(c.text, c.metadata, self._rules) for c in chunks]

    def word_scores(self, query: str, chunks: Sequence[Chunk], layouts: Sequence[layout_mod.Layout]) -> list[list[float]]:
        """One score per piece of each layout."""
        scored = self._token_scores(query, [c.text for c in chunks])
        return [aggregate(s, [p.span for p in lay.pieces], [p.words for p in lay.pieces], self.settings.aggregate)
                for s, lay in zip(scored, layouts, strict=True)]

    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter, quotas: Quotas = None
    ) -> Assembly:
        layouts = self.layouts(chunks)
        scores = self.word_scores(query, chunks, layouts)
        return select_pieces(chunks, layouts, scores, counter, limit, quotas)


class AttributionCompressor(TokenPruner):
    """Query-conditioned gradient x input (or integrated gradients) on a causal LM; keeps
    the most salient whole words in order, within the budget."""

    name = "attribution"
    config_class = AttributionConfig
    settings: AttributionConfig

    def _token_scores(self, query: str, texts: Sequence[str]) -> list[TokenScores]:
        s = self.settings
        return attribution_scores(self.lm, texts, query, answer=_answer.get(), steps=s.steps, window=s.window,
                                  batch_size=s.batch_size, max_tokens=s.max_tokens)

    def compress_for_answer(
        self, query: str, chunks: Sequence[ChunkLike], budget: Budget, answer: str
    ) -> CompressedContext:
        """Like :meth:`compress`, attributing log p(``answer`` | context, query) instead of
        the query's likelihood (for when a reference answer is known, e.g. distillation)."""
        token = _answer.set(answer)
        try:
            return self.compress(query, chunks, budget)
        finally:
            _answer.reset(token)


class SelfInfoCompressor(TokenPruner):
    """Selective Context: keep the words with the most self-information under the LM."""

    name = "selfinfo"
    requires_query = False

    def _token_scores(self, query: str, texts: Sequence[str]) -> list[TokenScores]:
        s = self.settings
        return selfinfo_scores(self.lm, texts, window=s.window, batch_size=s.batch_size, max_tokens=s.max_tokens)
