"""Summarization compression (TCRA-LLM, arXiv 2310.15556): a model rewrites chunks shorter.

The chunks most similar to the query (MiniLM, as the ``embedding`` compressor ranks them)
are taken best first, as many as fit at ``summary_tokens`` each within the stage's limit
(and each chunk's quota); each is summarized for the query by an LLM from
:mod:`ctxcomp.llm` (all of them in one batched ``generate_many``). A chunk that already fits
its share is kept whole (copied, not rewritten).

Abstractive output is never passed off as the source's text: each summary is a
:class:`~ctxcomp.types.CompressedChunk` with ``generated`` set (the model, the source spans
it read, its faithfulness) and no spans, and by default its text starts with a label
(``[summary] ``). Faithfulness: the share of the summary's sentences that some sentence of
the source supports (MiniLM cosine >= ``support_threshold``).

Fallback: when the LLM raises, times out, returns nothing, or returns more than fits the
chunk's share even when cut at its last whole sentence, that chunk is compressed
extractively instead (its best sentences by embedding score). Every fallback is logged
and counted in the StageReport's note. The LLM's tokens and dollars go to the
StageReport (``llm_tokens_in``/``llm_tokens_out``/``llm_cost``), so the ledger's net
savings subtract them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctxcomp.assembly import Assembly, Quotas, Unit, assemble, select_units
from ctxcomp.compressors.base import BaseCompressor, ModelRevision
from ctxcomp.compressors.embedding import EmbeddingCompressor
from ctxcomp.errors import ConfigError, InfeasibleBudgetError
from ctxcomp.text import split_sentences
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import CHUNK_SEPARATOR, Chunk, CompressedChunk, Generated

log = logging.getLogger(__name__)

PROMPT = (
    "Summarize the passage in at most {words} words. Keep every name, number and date that "
    "helps answer the question. Write only the summary.\n\n"
    "Question: {query}\n\nPassage: {passage}"
)


@dataclass(frozen=True)
class SummarizeConfig:
    """Settings of :class:`SummarizeCompressor`.

    Attributes:
        summary_tokens: the target length of one summary, in target-model tokens.
        label: put before each summary (``{id}`` and ``{title}`` are filled in); None or
            "" for none. The ``generated`` provenance says the text is generated either way.
        support_threshold: MiniLM cosine at which a source sentence supports a summary sentence.
        faithfulness: measure faithfulness (embeds summary and source sentences).
        max_passage_chars: the most characters of a chunk put in a prompt.
        prompt: the prompt template (``{words}``, ``{query}``, ``{passage}``).
    """

    summary_tokens: int = 60
    label: str | None = "[summary] "
    support_threshold: float = 0.6
    faithfulness: bool = True
    max_passage_chars: int = 4000
    prompt: str = PROMPT

    def __post_init__(self) -> None:
        if isinstance(self.summary_tokens, bool) or not isinstance(self.summary_tokens, int) or self.summary_tokens < 4:
            raise ConfigError(f"summary_tokens must be an int >= 4, got {self.summary_tokens!r}")
        if not 0.0 < self.support_threshold <= 1.0:
            raise ConfigError(f"support_threshold must be in (0, 1], got {self.support_threshold}")
        for key in ("{query}", "{passage}", "{words}"):
            if key not in self.prompt:
                raise ConfigError(f"the prompt template needs {key}")


@dataclass
class _Piece:
    index: int
    share: int
    score: float
    kept: CompressedChunk | None = None


class SummarizeCompressor(BaseCompressor):
    """Query-focused summaries of the most relevant chunks, within the budget.

    Args:
        llm: an LLM spec for :func:`ctxcomp.llm.build_llm` (``"local"``: SmolLM2-135M-
            Instruct; ``"openai"``; a dict; an LLM; a LangChain/LlamaIndex model; a function).
        embedder: the EmbeddingCompressor that ranks chunks and sentences (one is made).
        **settings: :class:`SummarizeConfig` fields.
    """

    name = "summarize"

    def __init__(self, llm: Any = "local", embedder: EmbeddingCompressor | None = None, config: SummarizeConfig | None = None,
                 **settings: Any) -> None:
        super().__init__()
        from ctxcomp.llm import build_llm

        self.settings = config if config is not None else SummarizeConfig(**settings)
        self.llm = build_llm(llm)
        self.embedder = embedder or EmbeddingCompressor()

    def config(self) -> dict[str, Any]:
        from dataclasses import asdict

        llm_config = getattr(self.llm, "config", None)
        return {**asdict(self.settings), "llm": llm_config() if callable(llm_config) else self.llm.model,
                "embedder": self.embedder.config()}

    def model_revisions(self) -> list[ModelRevision]:
        return [*self.embedder.model_revisions(), ModelRevision(f"llm:{self.llm.model}", str(self.config()["llm"]))]

    def _setup(self) -> None:
        self.embedder.setup()

    # -- planning ----------------------------------------------------------------------
    def _pieces(self, query: str, chunks: Sequence[Chunk], limit: int, quotas: Quotas) -> list[_Piece]:
        """The chunks to keep, best first, each with its share of the limit."""
        present = [i for i, c in enumerate(chunks) if c.text.strip()]
        if not present:
            return []
        vectors = self.embedder.embed([query, *(chunks[i].text for i in present)])
        sims = vectors[1:] @ vectors[0]
        ranked = [present[j] for j in np.argsort(-sims, kind="stable")]
        score = {present[j]: float(sims[j]) for j in range(len(present))}
        target = self.settings.summary_tokens
        room = max(1, limit // (target + 2))
        share = min(limit, target if room < len(ranked) else max(4, limit // len(ranked) - 2))
        pieces = []
        for i in ranked[:room]:
            cap = quotas[i] if quotas is not None else None
            own = share if cap is None else min(share, cap)
            if own >= 1:
                pieces.append(_Piece(i, own, score[i]))
        return pieces

    def _label(self, chunk: Chunk) -> str:
        label = self.settings.label or ""
        title = chunk.metadata.get("title") if isinstance(chunk.metadata.get("title"), str) else ""
        return label.replace("{id}", chunk.id).replace("{title}", str(title))

    def _prompt(self, query: str, chunk: Chunk, share: int) -> str:
        passage = chunk.text[: self.settings.max_passage_chars]
        words = max(5, int(share * 0.6))
        return self.settings.prompt.replace("{words}", str(words)).replace("{query}", query).replace(
            "{passage}", passage)

    # -- summaries -----------------------------------------------------------------------
    def _fit(self, text: str, share: int, counter: TokenCounter) -> str | None:
        """``text`` if it fits ``share`` tokens, else cut at its last whole sentence that
        does; None when not even its first sentence fits."""
        text = text.strip()
        for prefix in ("Summary:", "summary:", "SUMMARY:"):
            text = text.removeprefix(prefix).strip()
        if not text:
            return None
        if counter.count(text) <= share:
            return text
        spans = split_sentences(text)
        for k in range(len(spans) - 1, 0, -1):
            cut = text[: spans[k - 1][1]].strip()
            if counter.count(cut) <= share:
                return cut
        return None

    def _extract(self, query: str, chunks: Sequence[Chunk], piece: _Piece, counter: TokenCounter) -> CompressedChunk | None:
        """The chunk's best sentences within its share (the fallback)."""
        one = [chunks[piece.index]]
        units, _ = self.embedder.score_units(query, one)
        if not units:
            return None
        try:
            got = select_units(one, units, counter, piece.share)
        except InfeasibleBudgetError:
            return None
        return got.chunks[0] if got.chunks else None

    def _faithfulness(self, pairs: list[tuple[str, str]]) -> list[float | None]:
        """For each (summary, source): the share of summary sentences a source sentence supports."""
        if not self.settings.faithfulness or not pairs:
            return [None] * len(pairs)
        out: list[float | None] = []
        for summary, source in pairs:
            said = [summary[a:b] for a, b in split_sentences(summary)]
            known = [source[a:b] for a, b in split_sentences(source)]
            if not said or not known:
                out.append(None)
                continue
            vectors = self.embedder.embed([*said, *known])
            support = (vectors[: len(said)] @ vectors[len(said):].T).max(axis=1)
            out.append(float(np.mean(support >= self.settings.support_threshold)))
        return out

    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter, quotas: Quotas = None
    ) -> Assembly:
        pieces = self._pieces(query, chunks, limit, quotas)
        todo: list[_Piece] = []
        for piece in pieces:
            chunk = chunks[piece.index]
            tokens = counter.count(chunk.text)
            if tokens <= piece.share:  # fits whole: copied, not rewritten
                piece.kept = assemble(chunks, [Unit(piece.index, (0, len(chunk.text)), piece.score)], counter).chunks[0]
            else:
                todo.append(piece)
        prompts = [self._prompt(query, chunks[p.index], p.share) for p in todo]
        results = self.llm.generate_many(prompts, max_tokens=max(8, int(max(p.share for p in todo) * 1.2))) if todo else []
        llm_in = llm_out = 0
        llm_cost: float | None = 0.0
        failures: dict[str, int] = {}
        made: list[tuple[_Piece, str, str]] = []  # piece, label, summary
        for piece, result in zip(todo, results, strict=True):
            chunk = chunks[piece.index]
            reason = None
            if isinstance(result, Exception):
                reason = "timeout" if "within" in str(result) else "error"
                log.warning("summarize: chunk %r: the LLM failed (%s); extracting instead", chunk.id, result)
            else:
                llm_in += result.tokens_in
                llm_out += result.tokens_out
                llm_cost = None if llm_cost is None or result.cost_usd is None else llm_cost + result.cost_usd
                label = self._label(chunk)
                fitted = self._fit(result.text, piece.share - counter.count(label) if label else piece.share, counter)
                if not result.text.strip():
                    reason = "empty"
                elif fitted is None:
                    reason = "too long"
                else:
                    made.append((piece, label, fitted))
                if reason:
                    log.warning("summarize: chunk %r: the LLM's answer was %s; extracting instead", chunk.id, reason)
            if reason:
                failures[reason] = failures.get(reason, 0) + 1
                piece.kept = self._extract(query, chunks, piece, counter)
        faithful = self._faithfulness([(text, chunks[p.index].text) for p, _, text in made])
        for (piece, label, summary), score in zip(made, faithful, strict=True):
            chunk = chunks[piece.index]
            text = label + summary
            piece.kept = CompressedChunk(
                text=text, source_id=chunk.id, spans=(), tokens_in=counter.count(chunk.text),
                tokens_out=counter.count(text), score=piece.score, metadata=chunk.metadata,
                generated=Generated(self.llm.model, self.name, ((0, min(len(chunk.text), self.settings.max_passage_chars)),),
                                    score))
        assembly = self._join([p for p in pieces if p.kept is not None], limit, counter)
        generated = sum(1 for c in assembly.chunks if c.generated is not None)
        scores = [c.generated.faithfulness for c in assembly.chunks
                  if c.generated is not None and c.generated.faithfulness is not None]
        note = f"{generated} chunk(s) summarized by {self.llm.model}"
        if scores:
            note += f", faithfulness {np.mean(scores):.2f}"
        if failures:
            note += "; fell back to extraction: " + ", ".join(f"{n} {why}" for why, n in sorted(failures.items()))
        from dataclasses import replace

        return replace(assembly, llm_tokens_in=llm_in, llm_tokens_out=llm_out, llm_cost=llm_cost, note=note)

    @staticmethod
    def _join(pieces: list[_Piece], limit: int, counter: TokenCounter) -> Assembly:
        """The kept pieces in source order; the weakest dropped while over ``limit``."""
        kept = sorted(pieces, key=lambda p: p.index)
        while True:
            chunks = tuple(p.kept for p in kept if p.kept is not None)
            text = CHUNK_SEPARATOR.join(c.text for c in chunks)
            tokens = counter.count(text) if text else 0
            if tokens <= limit or len(kept) <= 1:
                if tokens > limit:
                    raise InfeasibleBudgetError(f"no summary fits in {limit} tokens", limit=limit, needed=tokens)
                return Assembly(chunks, text, tokens)
            kept.remove(min(kept, key=lambda p: p.score))
