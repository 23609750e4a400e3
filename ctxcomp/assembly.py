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
from typing import Literal

from ctxcomp.errors import InfeasibleBudgetError
from ctxcomp.pricing import prompt_costs
from ctxcomp.text import cut_points, title_of, word_spans
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
    """Kept chunks, the assembled text and its exact token count; a stage that called a
    generative model adds what the calls cost and a note (both go to its StageReport)."""

    chunks: tuple[CompressedChunk, ...]
    text: str
    tokens: int
    llm_tokens_in: int = 0
    llm_tokens_out: int = 0
    llm_cost: float | None = 0.0
    note: str | None = None


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
FragmentPolicy = Literal["drop", "fill", "merge", "keep"]
#: A unit with fewer tokens than this (not counting its chunk's title line) is a fragment:
#: a passage's cut-off first words ("manga."), a trailing stub ("Both versions of the"),
#: an exclamation ("Break!"). :func:`select_units` drops them (unless nothing else is
#: left), which spends their room on whole sentences: on 150 NQ dev questions (embedding
#: scores) answer recall rose from 0.773/0.593/0.487 to 0.800/0.627/0.520 at 4x/10x/20x, and
#: no kept piece was under 8 tokens (benchmarks/results/fragments_*.json).
MIN_UNIT_TOKENS = 8


def _own_start(chunk: Chunk, span: Span) -> int:
    """Where the unit's own text starts: after the chunk's title line if it opens the unit."""
    title = title_of(chunk.text)
    start = span[0]
    if title is not None and start == 0 and chunk.text.startswith(title):
        start = len(title)
    return start


_TERMINAL = frozenset(".!?\u2026\u3002\uff01\uff1f\"'\u201d\u2019)]")


def _cut_off(text: str, span: Span) -> bool:
    """True when ``span`` runs to the end of ``text`` without ending a sentence, as the
    last words of a passage that retrieval cut mid-sentence do."""
    return not text[span[1] :].strip() and text[span[0] : span[1]].rstrip()[-1:] not in _TERMINAL


def _gap_is_space(text: str, a: Span, b: Span) -> bool:
    return a[1] <= b[0] and not text[a[1] : b[0]].strip()


def fragment_flags(
    chunks: Sequence[Chunk], units: Sequence[Unit], counter: TokenCounter, min_tokens: int = MIN_UNIT_TOKENS
) -> list[bool]:
    """For each unit, whether it is a fragment: the cut-off end of a passage that stops
    mid-sentence (when the passage has other units), or a piece of fewer than
    ``min_tokens`` tokens of its own text (its chunk's title line not counted) that is not
    a sentence of its own: it starts in lower case (a passage's cut-off start, "manga.")
    or has fewer than three words ("Break!", "61 episodes."). A short whole sentence
    ("Zanzibar harbour opens at dawn.") is no fragment. ``min_tokens <= 0``: none is."""
    if min_tokens <= 0 or not units:
        return [False] * len(units)
    own = [chunks[u.chunk].text[_own_start(chunks[u.chunk], u.span) : u.span[1]].strip() for u in units]
    sizes = counter.count_many(own)
    per_chunk: dict[int, int] = {}
    for unit in units:
        per_chunk[unit.chunk] = per_chunk.get(unit.chunk, 0) + 1
    return [(per_chunk[u.chunk] > 1 and _cut_off(chunks[u.chunk].text, u.span))
            or (size < min_tokens and (text[:1].islower() or len(text.split()) < 3))
            for u, size, text in zip(units, sizes, own, strict=True)]


def merge_fragments(chunks: Sequence[Chunk], units: Sequence[Unit], flags: Sequence[bool]) -> list[Unit]:
    """``units`` with every fragment (``flags``) joined to an adjacent unit of the same
    chunk: the previous one when only whitespace separates them, else the next. The joined
    unit spans both and keeps the higher score. A fragment with no adjacent unit stays as
    it is. Units of one chunk must not overlap."""
    by_chunk: dict[int, list[tuple[Unit, bool]]] = {}
    for unit, flag in zip(units, flags, strict=True):
        by_chunk.setdefault(unit.chunk, []).append((unit, flag))
    out: list[Unit] = []
    for index, group in by_chunk.items():
        text = chunks[index].text
        merged: list[Unit] = []
        pending: Unit | None = None  # a fragment waiting to join the next unit
        for unit, flag in sorted(group, key=lambda item: item[0].span):
            if pending is not None:
                unit = Unit(index, (pending.span[0], unit.span[1]), max(pending.score, unit.score))
                pending = None
            elif flag:
                if merged and _gap_is_space(text, merged[-1].span, unit.span):
                    prev = merged.pop()
                    unit = Unit(index, (prev.span[0], unit.span[1]), max(prev.score, unit.score))
                else:
                    pending = unit
                    continue
            merged.append(unit)
        if pending is not None:
            merged.append(pending)
        out.extend(merged)
    return out


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
    min_unit_tokens: int = MIN_UNIT_TOKENS,
    fragments: FragmentPolicy = "drop",
) -> Assembly:
    """The best-scored units whose assembled text has at most ``limit`` tokens.

    Fragments are dropped first (see ``fragments``). Then greedy by score with per-unit
    token costs, exact verification of the whole text (dropping the weakest unit while it
    is over), a fill pass that spends the spare room on the next-best skipped units, and a
    last exact check. If no unit fits at all, the best unit is cut to the longest word
    prefix that fits (or, failing that, the longest prefix of its first word; or the next
    unit's, when not one character of it fits): never an empty result when the first
    character of some unit fits.

    Args:
        quotas: per chunk (by index), the most tokens its kept text may hold; None: no caps.
        min_unit_tokens: units with fewer tokens are fragments (0: no unit is).
        fragments: ``"drop"`` (default): a fragment is never kept (unless nothing else is left);
            ``"fill"``: kept only on its own merit, never to fill spare room;
            ``"merge"``: joined to a neighbour first; ``"keep"``: treated like any unit.

    Token counts are taken once per unit and once per assembly, never per candidate, so
    thousands of units (words, for token-level pruning) stay fast.

    Raises:
        InfeasibleBudgetError: ``units`` is not empty but not even the first character of
            any unit fits in ``limit`` tokens (or in its chunk's quota).
    """
    flags = fragment_flags(chunks, units, counter, min_unit_tokens) if fragments != "keep" else [False] * len(units)
    if fragments == "merge":
        units, flags = merge_fragments(chunks, units, flags), []
    small = {(u.chunk, u.span) for u, f in zip(units, flags, strict=False) if f}
    if fragments == "drop" and len(small) < len(units):
        units = [u for u in units if (u.chunk, u.span) not in small]
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
        if not cost or used + cost + 1 > limit or (unit.chunk, unit.span) in small:
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
        for unit in ranked:  # the best unit's prefix nearly always fits: this loop is short
            cap = caps[unit.chunk]
            if cap == 0:
                continue
            partial = longest_prefix(chunks, unit, counter, limit if cap is None else min(limit, cap))
            if partial is not None:
                return assemble(chunks, [partial], counter)
        raise infeasible(chunks, ranked[0], counter, limit)
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


def infeasible(chunks: Sequence[Chunk], unit: Unit, counter: TokenCounter, limit: int) -> InfeasibleBudgetError:
    """The error for a limit that not even the first character of ``unit`` fits in (the
    message and ``needed`` describe ``unit``)."""
    text = chunks[unit.chunk].text[unit.span[0] : unit.span[1]].lstrip()
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
    words = word_spans(text[start:end])
    if words and words[0][0]:  # leading whitespace is never kept on its own
        unit = Unit(unit.chunk, (start + words[0][0], end), unit.score)
        start, words = unit.span[0], [(a - words[0][0], b - words[0][0]) for a, b in words]
    ends = [start + e for _, e in words]
    best = _longest(chunks, unit, ends, counter, limit, before)
    if best is None and words:
        first_start, first_end = words[0]  # cut inside the first word, never before it (whitespace only)
        inner = [start + p for p in cut_points(text[start:end], 0, first_end)[:-1] if p > first_start]
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
