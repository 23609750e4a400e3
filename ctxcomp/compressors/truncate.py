"""The baseline: keep the head of the context, cut at a word boundary."""

from __future__ import annotations

from collections.abc import Sequence

from ctxcomp.assembly import Assembly, Quotas, Unit, assemble, infeasible, longest_prefix
from ctxcomp.compressors.base import BaseCompressor
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import CHUNK_SEPARATOR, Chunk


class TruncateCompressor(BaseCompressor):
    """Keep whole chunks from the start while they fit, then the longest word prefix
    of the next one that fits. Query-independent; the usual baseline.

    O(n log n) in the input (see :func:`_whole_prefix`); the output is the same as keeping
    chunks one by one while the exact count of the assembled text fits. Chunks of only
    whitespace are skipped. When not one word fits, the longest prefix of the first word
    that fits is kept. Per-chunk ``quotas`` (by index; a planner's caps) cut each chunk to
    its longest word prefix within its quota first.

    Raises:
        InfeasibleBudgetError: not even one character of the first non-blank chunk fits.

    Example:
        >>> from ctxcomp import Budget
        >>> out = TruncateCompressor().compress("", ["one two three", "four five"], Budget(max_tokens=3))
        >>> out.text
        'one two three'
    """

    name = "truncate"
    requires_query = False

    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter,
        quotas: Quotas = None,
    ) -> Assembly:
        units = _heads(chunks, counter, quotas)
        whole = _whole_prefix(chunks, units, counter, limit)
        kept = units[:whole]
        if whole < len(units):
            partial = longest_prefix(chunks, units[whole], counter, limit, before=kept)
            if partial is not None:
                kept.append(partial)
            elif not kept:
                raise infeasible(chunks, units[whole], counter, limit)
        return assemble(chunks, kept, counter)


def _heads(chunks: Sequence[Chunk], counter: TokenCounter, quotas: Quotas) -> list[Unit]:
    """One unit per non-blank chunk: the whole chunk, or its longest word prefix within the
    chunk's quota (``quotas[i]``; a chunk whose quota fits nothing is left out)."""
    units = []
    for index, chunk in enumerate(chunks):
        if not chunk.text.strip():
            continue
        # Scores fall with position, so any trimming removes the tail first.
        unit = Unit(index, (0, len(chunk.text)), score=-float(index))
        cap = quotas[index] if quotas is not None else None
        if cap is not None and counter.count(chunk.text) > cap:
            cut = longest_prefix([chunk], Unit(0, unit.span), counter, cap) if cap > 0 else None
            if cut is None:
                continue
            unit = Unit(index, cut.span, unit.score)
        units.append(unit)
    return units


def _whole_prefix(chunks: Sequence[Chunk], units: Sequence[Unit], counter: TokenCounter, limit: int) -> int:
    """How many of ``units`` fit whole, in order, within ``limit`` (exact count).

    The sum of the units' own counts plus one separator each bounds the count of their
    joined text from above (a join can only merge tokens), so it gives a lower bound; a
    binary search over exact counts of joined prefixes finishes: O(n log n), not O(n^2).
    """
    texts = [chunks[u.chunk].text[u.span[0] : u.span[1]] for u in units]
    costs = counter.count_many(texts)
    separator = counter.count(CHUNK_SEPARATOR)
    lo, used = 0, 0
    for cost in costs:
        if used + cost + (separator if lo else 0) > limit:
            break
        used += cost + (separator if lo else 0)
        lo += 1
    ends, pos = [], 0  # ends[k - 1]: length of the first k texts joined
    for text in texts:
        pos += len(text)
        ends.append(pos)
        pos += len(CHUNK_SEPARATOR)
    joined = CHUNK_SEPARATOR.join(texts)
    hi = len(texts)
    while lo < hi:  # invariant: the first lo fit; more than hi do not
        mid = (lo + hi + 1) // 2
        if counter.count(joined[: ends[mid - 1]]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo
