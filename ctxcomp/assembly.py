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

from ctxcomp.pricing import prompt_costs
from ctxcomp.text import word_spans
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


Quotas = Sequence[int | None] | None
#: The fill pass (spare room after the best units) skips pieces shorter than this many
#: tokens: a passage's cut-off first words ("manga."), a clause stub, an exclamation.
#: Measured on NQ dev (benchmarks/results/fill_min_tokens.json): see select_units.
MIN_FILL_TOKENS = 6


def _over_quota(assembly: Assembly, chunks: Sequence[Chunk], quotas: Quotas) -> int | None:
    """The index of a chunk whose kept text exceeds its quota, if any."""
    if quotas is None:
        return None
    index = {c.id: i for i, c in enumerate(chunks)}
    for kept in assembly.chunks:
        i = index[kept.source_id]
        cap = quotas[i]
        if cap is not None and kept.tokens_out > cap:
            return i
    return None


def select_units(
    chunks: Sequence[Chunk],
    units: Sequence[Unit],
    counter: TokenCounter,
    limit: int,
    quotas: Quotas = None,
    min_fill_tokens: int = MIN_FILL_TOKENS,
) -> Assembly:
    """The best-scored units whose assembled text has at most ``limit`` tokens.

    Greedy by score with per-unit token costs, then exact verification of the whole
    text (dropping the weakest unit while it is over), then a fill pass that spends the
    spare room on the next-best skipped units of at least ``min_fill_tokens`` tokens, and
    a last exact check. If no unit fits at all, the best unit is cut to the longest word
    prefix that fits (never an empty result when a single word fits).

    Args:
        quotas: per chunk (by index), the most tokens its kept text may hold; None: no caps.
        min_fill_tokens: the smallest piece the fill pass may add (0: any).

    Token counts are taken once per unit and once per assembly, never per candidate, so
    thousands of units (words, for token-level pruning) stay fast.
    """
    ranked = sorted(units, key=lambda u: (-u.score, u.chunk, u.span))
    costs = counter.count_many([chunks[u.chunk].text[u.span[0] : u.span[1]] for u in ranked])
    caps = list(quotas) if quotas is not None else [None] * len(chunks)
    per_chunk = [0] * len(chunks)
    chosen: list[Unit] = []
    skipped: list[tuple[Unit, int]] = []
    used = 0
    for unit, cost in zip(ranked, costs, strict=True):
        cap = caps[unit.chunk]
        if used + cost + 1 <= limit and (cap is None or per_chunk[unit.chunk] + cost + 1 <= cap + 1):
            chosen.append(unit)
            used += cost + 1  # +1: the separator joining it on
            per_chunk[unit.chunk] += cost + 1
        else:
            skipped.append((unit, cost))
    assembly = _trim(chunks, chosen, skipped, counter, limit, quotas)
    used = assembly.tokens
    per_chunk = _chunk_tokens(assembly, chunks)
    added = False
    for unit, cost in sorted(skipped, key=lambda item: (-item[0].score, item[0].chunk, item[0].span)):
        cap = caps[unit.chunk]
        if not cost or cost < min_fill_tokens or used + cost + 1 > limit:
            continue
        if cap is not None and per_chunk[unit.chunk] + cost + 1 > cap:
            continue
        chosen.append(unit)
        used += cost + 1
        per_chunk[unit.chunk] += cost + 1
        added = True
    if added:
        assembly = _trim(chunks, chosen, [], counter, limit, quotas)
    if not chosen and ranked:
        partial = longest_prefix(chunks, ranked[0], counter, min(limit, caps[ranked[0].chunk] or limit))
        if partial is not None:
            return assemble(chunks, [partial], counter)
    return assembly


def _chunk_tokens(assembly: Assembly, chunks: Sequence[Chunk]) -> list[int]:
    index = {c.id: i for i, c in enumerate(chunks)}
    out = [0] * len(chunks)
    for kept in assembly.chunks:
        out[index[kept.source_id]] = kept.tokens_out
    return out


def _trim(
    chunks: Sequence[Chunk], chosen: list[Unit], skipped: list[tuple[Unit, int]],
    counter: TokenCounter, limit: int, quotas: Quotas,
) -> Assembly:
    """Assemble ``chosen`` exactly; drop the weakest unit (of an over-quota chunk first)
    while the text is over ``limit`` or a chunk over its quota. ``chosen`` is in score
    order (greedy, then fill) and is trimmed in place; dropped units go to ``skipped``."""
    assembly = assemble(chunks, chosen, counter)
    while chosen:
        over = _over_quota(assembly, chunks, quotas)
        if over is None and assembly.tokens <= limit:
            break
        candidates = [i for i, u in enumerate(chosen) if over is None or u.chunk == over]
        victim = min(candidates, key=lambda i: (chosen[i].score, -i))
        skipped.append((chosen.pop(victim), 0))
        assembly = assemble(chunks, chosen, counter)
    return assembly


def longest_prefix(
    chunks: Sequence[Chunk],
    unit: Unit,
    counter: TokenCounter,
    limit: int,
    before: Sequence[Unit] = (),
) -> Unit | None:
    """The longest word-prefix of ``unit`` that fits beside ``before`` within ``limit``."""
    start, end = unit.span
    text = chunks[unit.chunk].text
    ends = [start + e for _, e in word_spans(text[start:end])]
    lo, hi, best = 0, len(ends) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = Unit(unit.chunk, (start, ends[mid]), unit.score)
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
