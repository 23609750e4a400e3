"""The baseline: keep the head of the context, cut at a word boundary."""

from __future__ import annotations

from collections.abc import Sequence

from ctxcomp.assembly import Assembly, Unit, assemble, infeasible, longest_prefix
from ctxcomp.compressors.base import BaseCompressor
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import CHUNK_SEPARATOR, Chunk


class TruncateCompressor(BaseCompressor):
    """Keep whole chunks from the start while they fit, then the longest word prefix
    of the next one that fits. Query-independent; the usual baseline.

    O(n log n) in the input (see :func:`_whole_prefix`); the output is the same as keeping
    chunks one by one while the exact count of the assembled text fits. Chunks of only
    whitespace are skipped. When not one word fits, the longest prefix of the first word
    that fits is kept.

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
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter
    ) -> Assembly:
        indices = [i for i, c in enumerate(chunks) if c.text.strip()]
        whole = _whole_prefix(chunks, indices, counter, limit)
        # Scores fall with position, so any trimming removes the tail first.
        kept = [Unit(i, (0, len(chunks[i].text)), score=-float(i)) for i in indices[:whole]]
        if whole < len(indices):
            nxt = indices[whole]
            unit = Unit(nxt, (0, len(chunks[nxt].text)), score=-float(nxt))
            partial = longest_prefix(chunks, unit, counter, limit, before=kept)
            if partial is not None:
                kept.append(partial)
            elif not kept:
                raise infeasible(chunks, unit, counter, limit)
        return assemble(chunks, kept, counter)


def _whole_prefix(chunks: Sequence[Chunk], indices: list[int], counter: TokenCounter, limit: int) -> int:
    """How many of the chunks ``indices`` fit whole, in order, within ``limit`` (exact count).

    The sum of the chunks' own counts plus one separator each bounds the count of their
    joined text from above (a join can only merge tokens), so it gives a lower bound; a
    binary search over exact counts of joined prefixes finishes: O(n log n), not O(n^2).
    """
    texts = [chunks[i].text for i in indices]
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
