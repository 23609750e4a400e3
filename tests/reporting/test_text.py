from __future__ import annotations

from collections.abc import Callable

from ctxcomp.reporting.text import known_money, money, render_compression
from ctxcomp.types import CompressedChunk, CompressedContext


def test_money_formats() -> None:
    assert money(None) == "n/a" and money(0.0) == "$0.00" and money(1234.5) == "$1,234.50"
    assert money(0.000123) == "$0.000123" and money(-0.5) == "-$0.500000"
    assert known_money(0.0, 3, 3) == "unknown" and known_money(1.5, 1, 3) == "$1.50 (+1 unpriced)"


def test_render_compression(make_ctx: Callable[..., CompressedContext]) -> None:
    ctx = make_ctx(1000, 100)
    chunk = CompressedChunk("kept text", "doc-1", ((0, 9),), 500, 100, score=0.5)
    ctx = CompressedContext((chunk,), "kept text", 1000, 100, cost_before=1e-3, cost_after=1e-4, stages=ctx.stages)
    text = render_compression("who?", ctx, 0.25, {"doc-1": "A title"})
    assert "query: who?" in text and "ratio 10.0x, saved 900 tokens" in text
    assert "[doc-1] A title" in text and "embedding 0.02 s" in text and "kept text" in text
