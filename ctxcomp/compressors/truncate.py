"""The baseline: keep the head of the context, cut at a word boundary."""

from __future__ import annotations

from collections.abc import Sequence

from ctxcomp.assembly import Assembly, Quotas, Unit, assemble, longest_prefix
from ctxcomp.compressors.base import BaseCompressor
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Chunk


class TruncateCompressor(BaseCompressor):
    """Keep whole chunks from the start while they fit, then the longest word prefix
    of the next one that fits. Query-independent; the usual baseline.

    Example:
        >>> from ctxcomp import Budget
        >>> out = TruncateCompressor().compress("", ["one two three", "four five"], Budget(max_tokens=3))
        >>> out.text
        'one two three'
    """

    name = "truncate"
    requires_query = False

    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter, quotas: Quotas = None
    ) -> Assembly:
        kept: list[Unit] = []
        for index, chunk in enumerate(chunks):
            if not chunk.text:
                continue
            # Scores fall with position, so any trimming removes the tail first.
            unit = Unit(index, (0, len(chunk.text)), score=-float(index))
            cap = quotas[index] if quotas is not None else None
            if cap is not None and counter.count(chunk.text) > cap:
                cut = longest_prefix([chunk], Unit(0, unit.span), counter, cap) if cap else None
                if cut is None:
                    continue
                unit = Unit(index, cut.span, unit.score)
            if assemble(chunks, [*kept, unit], counter).tokens <= limit:
                kept.append(unit)
                continue
            partial = longest_prefix(chunks, unit, counter, limit, before=kept)
            if partial is not None:
                kept.append(partial)
            break
        return assemble(chunks, kept, counter)
