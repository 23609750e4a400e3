"""Turning scored spans into a context that fits a token budget, with provenance.

Every compressor ends here: it proposes :class:`Unit`\\ s (a span of one chunk with a
score), and :func:`select_units` keeps the best ones that fit, verifies the exact token
count of the assembled text (BPE counts are not additive across joins), drops the
lowest-scored unit while it is over, and then fills any spare room with the next-best
units that still fit. The output keeps original order and exact source spans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ctxcomp.errors import InfeasibleBudgetError
from ctxcomp.pricing import prompt_costs
from ctxcomp.text import cut_points, word_spans
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import (
    CHUNK_SEPARATOR,
    Budget,
    Chunk,
    CompressedChunk,
    CompressedContext,
    Span,
    StageReport,
    join_spans,
)


@dataclass(frozen=True, order=True)
class Unit:
    """A candidate piece of context: ``chunks[chunk].text[span[0]:span[1]]``."""

    chunk: int
    span: Span
    score: float = 0.0


@dataclass(frozen=True)
class Assembly:
    """Kept chunks, the assembled text and its exact token count."""

    chunks: tuple[CompressedChunk, ...]
    text: str
    tokens: int


def merge_spans(spans: Sequence[Span]) -> list[Span]:
    """Sort spans and merge the ones that overlap (touching spans stay separate)."""
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def assemble(chunks: Sequence[Chunk], units: Sequence[Unit], counter: TokenCounter) -> Assembly:
    """Build the context from ``units``: chunks in original order, spans in source order."""
    by_chunk: dict[int, list[Unit]] = {}
    for unit in units:
        by_chunk.setdefault(unit.chunk, []).append(unit)
    kept: list[CompressedChunk] = []
    for index in sorted(by_chunk):
        chunk = chunks[index]
        group = by_chunk[index]
        spans = merge_spans([u.span for u in group])
        text = join_spans(chunk.text, spans)
        kept.append(
            CompressedChunk(
                text=text,
                source_id=chunk.id,
                spans=tuple(spans),
                tokens_in=counter.count(chunk.text),
                tokens_out=counter.count(text),
                score=max(u.score for u in group),
                metadata=chunk.metadata,
            )
        )
    text = CHUNK_SEPARATOR.join(c.text for c in kept)
    return Assembly(tuple(kept), text, counter.count(text) if text else 0)


def _fits(chunks: Sequence[Chunk], chosen: list[Unit], counter: TokenCounter, limit: int) -> Assembly | None:
    assembly = assemble(chunks, chosen, counter)
    return assembly if assembly.tokens <= limit else None


def select_units(
    chunks: Sequence[Chunk],
    units: Sequence[Unit],
    counter: TokenCounter,
    limit: int,
) -> Assembly:
    """The best-scored units whose assembled text has at most ``limit`` tokens.

    Greedy by score with per-unit token costs, then exact verification of the whole
    text, then a fill pass over the units that were skipped. If no unit fits at all, the
    best unit is cut to the longest word prefix that fits (or, failing that, the longest
    prefix of its first word; or the next unit's, when not one character of it fits):
    never an empty result when the first character of some unit fits.

    Raises:
        InfeasibleBudgetError: ``units`` is not empty but not even the first character of
            any unit fits in ``limit`` tokens.
    """
    ranked = sorted(units, key=lambda u: (-u.score, u.chunk, u.span))
    costs = counter.count_many([chunks[u.chunk].text[u.span[0] : u.span[1]] for u in ranked])
    chosen: list[Unit] = []
    used = 0
    skipped: list[tuple[Unit, int]] = []
    for unit, cost in zip(ranked, costs, strict=True):
        if used + cost + 1 <= limit:  # +1: the separator joining it on
            chosen.append(unit)
            used += cost + 1
        else:
            skipped.append((unit, cost))
    assembly = assemble(chunks, chosen, counter)
    while assembly.tokens > limit and chosen:
        skipped.append((chosen.pop(), 0))  # chosen is in score order: drop the weakest
        assembly = assemble(chunks, chosen, counter)
    for unit, cost in sorted(skipped, key=lambda item: (-item[0].score, item[0].chunk)):
        if cost and assembly.tokens + cost > limit:
            continue
        trial = _fits(chunks, [*chosen, unit], counter, limit)
        if trial is not None:
            chosen.append(unit)
            assembly = trial
    if not chosen and ranked:
        for unit in ranked:  # the best unit's prefix nearly always fits: this loop is short
            partial = longest_prefix(chunks, unit, counter, limit)
            if partial is not None:
                return assemble(chunks, [partial], counter)
        raise infeasible(chunks, ranked[0], counter, limit)
    return assembly


def infeasible(chunks: Sequence[Chunk], unit: Unit, counter: TokenCounter, limit: int) -> InfeasibleBudgetError:
    """The error for a limit that not even the first character of ``unit`` fits in (the
    message and ``needed`` describe ``unit``)."""
    text = chunks[unit.chunk].text[unit.span[0] : unit.span[1]]
    ends = cut_points(text, 0, min(len(text), 16))
    needed = counter.count(text[: ends[0]]) if ends else None
    return InfeasibleBudgetError(
        f"nothing fits in {limit} tokens: the first character of the best piece of chunk "
        f"{chunks[unit.chunk].id!r} alone costs {needed}; raise the budget", limit=limit, needed=needed)


def longest_prefix(
    chunks: Sequence[Chunk],
    unit: Unit,
    counter: TokenCounter,
    limit: int,
    before: Sequence[Unit] = (),
) -> Unit | None:
    """The longest word-prefix of ``unit`` that fits beside ``before`` within ``limit``.

    When not even the first word fits, the longest prefix of that word that ends on a
    grapheme boundary (so a budget of a few tokens still keeps something). None when not
    even one character fits.
    """
    start, end = unit.span
    text = chunks[unit.chunk].text
    ends = [start + e for _, e in word_spans(text[start:end])]
    best = _longest(chunks, unit, ends, counter, limit, before)
    if best is None and ends:
        first = ends[0] - start
        inner = [start + p for p in cut_points(text[start:end], 0, first)[:-1]]
        best = _longest(chunks, unit, inner, counter, limit, before)
    return best


def _longest(
    chunks: Sequence[Chunk], unit: Unit, ends: Sequence[int], counter: TokenCounter, limit: int,
    before: Sequence[Unit],
) -> Unit | None:
    """Binary search: the unit ending at the last of ``ends`` that still fits."""
    lo, hi, best = 0, len(ends) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = Unit(unit.chunk, (unit.span[0], ends[mid]), unit.score)
        if _fits(chunks, [*before, candidate], counter, limit) is not None:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best


def make_context(
    chunks: Sequence[Chunk],
    assembly: Assembly,
    tokens_in: int,
    budget: Budget,
    limit: int,
    counter: TokenCounter,
    stages: tuple[StageReport, ...] = (),
) -> CompressedContext:
    before, after = prompt_costs(budget.model, tokens_in, assembly.tokens)
    return CompressedContext(
        chunks=assembly.chunks,
        text=assembly.text,
        tokens_in=tokens_in,
        tokens_out=assembly.tokens,
        model=budget.model,
        cost_before=before,
        cost_after=after,
        stages=stages,
        budget_tokens=limit,
        tokens_approximate=counter.approximate,
    )


def whole_units(chunks: Sequence[Chunk]) -> list[Unit]:
    """One unit per non-empty chunk covering all of its text."""
    return [Unit(i, (0, len(c.text))) for i, c in enumerate(chunks) if c.text]
