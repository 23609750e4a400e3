"""Keep the best whole pieces, in original order, so that the text meets a token limit.

Pieces are ranked by tier (protected, force-kept, the rest), then by score. Costs are
counted once per piece (one ``count_many`` call; estimated per character past
:data:`EXACT_COST_PIECES` pieces); a greedy pass takes pieces in rank order
while the estimated total and the chunk's quota allow. BPE counts are not additive across
joins and structure (JSON brackets, keys, Markdown markers) costs tokens too, so the
greedy sequence is then cut by **binary search on its length with the real token
counter** (each probe counts the assembled text once): the longest prefix whose text fits
the limit and every chunk's quota. Up to :data:`FILL_ROUNDS` greedy passes spend the exact
room left on the next-ranked pieces, each verified by binary search. The result is at or under the limit,
usually within a word of it; O(log n) full counts, never one per candidate.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctxcomp.assembly import Assembly, Quotas, Unit, assemble
from ctxcomp.compressors.attribution.layout import Layout
from ctxcomp.errors import InfeasibleBudgetError
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Chunk

Ref = tuple[int, int]  # (chunk index, piece index)


class _Builder:
    def __init__(self, chunks: Sequence[Chunk], layouts: Sequence[Layout], scores: Sequence[Sequence[float]],
                 counter: TokenCounter, limit: int, quotas: Quotas) -> None:
        self.chunks, self.layouts, self.scores = chunks, layouts, scores
        self.counter, self.limit, self.quotas = counter, limit, quotas

    def assemble(self, refs: Sequence[Ref]) -> Assembly:
        kept = [[False] * len(layout.pieces) for layout in self.layouts]
        for c, i in refs:
            kept[c][i] = True
        units: list[Unit] = []
        for c, layout in enumerate(self.layouts):
            if not any(kept[c]):
                continue
            best = max((s for s, k in zip(self.scores[c], kept[c], strict=True) if k), default=0.0)
            units.extend(Unit(c, span, best) for span in layout.spans(kept[c]))
        return assemble(self.chunks, units, self.counter)

    def fits(self, assembly: Assembly) -> bool:
        if assembly.tokens > self.limit:
            return False
        if self.quotas is None:
            return True
        index = {c.id: i for i, c in enumerate(self.chunks)}
        for kept in assembly.chunks:
            cap = self.quotas[index[kept.source_id]]
            if cap is not None and kept.tokens_out > cap:
                return False
        return True

    def longest(self, base: list[Ref], extra: list[Ref]) -> tuple[int, Assembly]:
        """The most of ``extra`` (a prefix) that fits beside ``base``, and its assembly."""
        lo, hi = 0, len(extra)
        best = self.assemble(base)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            candidate = self.assemble(base + extra[:mid])
            if self.fits(candidate):
                lo, best = mid, candidate
            else:
                hi = mid - 1
        return lo, best


def _greedy(ranked: Sequence[tuple[Ref, int]], room: int, caps: list[int | None]) -> tuple[list[Ref], list[tuple[Ref, int]]]:
    """Pieces in rank order while their estimated cost fits ``room`` and their chunk's cap."""
    chosen: list[Ref] = []
    rest: list[tuple[Ref, int]] = []
    for ref, cost in ranked:
        cap = caps[ref[0]]
        if cost <= room and (cap is None or cost <= cap):
            chosen.append(ref)
            room -= cost
            if cap is not None:
                caps[ref[0]] = cap - cost
        else:
            rest.append((ref, cost))
    return chosen, rest


#: Up to this many pieces, each is counted exactly (once, cached); beyond it, costs are
#: estimated from the chunk's tokens per character (the binary search counts exactly anyway).
EXACT_COST_PIECES = 4096
FILL_ROUNDS = 3


def _costs(chunks: Sequence[Chunk], layouts: Sequence[Layout], ranked: Sequence[Ref], counter: TokenCounter) -> list[int]:
    """Estimated tokens each piece adds to the text (with the space that joins it on)."""
    texts = [chunks[c].text[slice(*layouts[c].pieces[i].span)] for c, i in ranked]
    if len(texts) <= EXACT_COST_PIECES:
        return counter.count_many([" " + t for t in texts])
    per_char = [counter.count(c.text) / max(1, len(c.text)) for c in chunks]
    return [max(1, round(len(t) * per_char[c])) for t, (c, _) in zip(texts, ranked, strict=True)]


def select_pieces(
    chunks: Sequence[Chunk],
    layouts: Sequence[Layout],
    scores: Sequence[Sequence[float]],
    counter: TokenCounter,
    limit: int,
    quotas: Quotas = None,
) -> Assembly:
    """The pruned context: whole pieces by rank, in original order, within ``limit``.

    Raises:
        InfeasibleBudgetError: the protected pieces alone do not fit, or pieces exist but
            not even the cheapest one fits (a word is never cut to make it fit).
    """
    refs = [(c, i) for c, layout in enumerate(layouts) for i in range(len(layout.pieces))]
    ranked = sorted(refs, key=lambda r: (-layouts[r[0]].pieces[r[1]].tier, -scores[r[0]][r[1]], r))
    costs = _costs(chunks, layouts, ranked, counter)
    build = _Builder(chunks, layouts, scores, counter, limit, quotas)
    protected = [r for r in ranked if layouts[r[0]].pieces[r[1]].tier == 2]
    assembly = build.assemble(protected)
    if protected and not build.fits(assembly):
        raise InfeasibleBudgetError(
            f"the protected regions alone take {assembly.tokens} tokens (or exceed a chunk's quota); "
            f"the limit is {limit}: raise the budget or protect less", limit=limit, needed=assembly.tokens)
    caps: list[int | None] = list(quotas) if quotas is not None else [None] * len(chunks)
    pairs = [(r, cost) for r, cost in zip(ranked, costs, strict=True) if layouts[r[0]].pieces[r[1]].tier != 2]
    order = {r: k for k, (r, _) in enumerate(pairs)}
    kept = list(protected)
    rest = pairs
    for _ in range(FILL_ROUNDS):
        more, rest = _greedy(rest, limit - assembly.tokens, _room_caps(assembly, chunks, caps))
        if not more:
            break
        n, assembly = build.longest(kept, more)
        kept.extend(more[:n])
        cost_of = dict(pairs)
        rest = sorted([(r, cost_of[r]) for r in more[n:]] + rest, key=lambda item: order[item[0]])
    if not assembly.chunks and pairs:
        cheapest = min(cost for _, cost in pairs)
        raise InfeasibleBudgetError(
            f"nothing fits in {limit} tokens without cutting a word: the cheapest piece costs "
            f"about {cheapest}; raise the budget", limit=limit, needed=cheapest)
    return assembly


def _room_caps(assembly: Assembly, chunks: Sequence[Chunk], caps: list[int | None]) -> list[int | None]:
    used = {kept.source_id: kept.tokens_out for kept in assembly.chunks}
    return [None if cap is None else cap - used.get(chunk.id, 0) for chunk, cap in zip(chunks, caps, strict=True)]
