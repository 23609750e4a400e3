"""Composing spans across stages.

Stage 2 sees stage 1's kept text, so its spans are offsets into that text. A
:class:`SpanMap` records how a kept text was built from the original (segments joined by
:data:`SPAN_SEPARATOR`) and maps offsets back, so the final spans always point into the
original source text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ctxcomp.types import SPAN_SEPARATOR, Span


@dataclass(frozen=True)
class SpanMap:
    """Maps offsets in ``join_spans(source, spans)`` back to ``source`` offsets."""

    spans: tuple[Span, ...]

    @classmethod
    def identity(cls, length: int) -> SpanMap:
        return cls(((0, length),) if length else ())

    def _segments(self) -> list[tuple[int, int, int]]:
        """(inner_start, inner_end, source_start) per source span."""
        out: list[tuple[int, int, int]] = []
        offset = 0
        prev_end: int | None = None
        for start, end in self.spans:
            if prev_end is not None and start != prev_end:
                offset += len(SPAN_SEPARATOR)
            out.append((offset, offset + end - start, start))
            offset += end - start
            prev_end = end
        return out

    def to_source(self, inner: Sequence[Span]) -> tuple[Span, ...]:
        """Source spans covering the inner spans (separators dropped, touching pieces merged)."""
        segments = self._segments()
        result: list[Span] = []
        for a, b in inner:
            for seg_start, seg_end, src in segments:
                lo, hi = max(a, seg_start), min(b, seg_end)
                if lo >= hi:
                    continue
                piece = (src + lo - seg_start, src + hi - seg_start)
                if result and result[-1][1] == piece[0]:
                    result[-1] = (result[-1][0], piece[1])
                else:
                    result.append(piece)
        return tuple(result)

