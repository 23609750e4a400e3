from __future__ import annotations

from ctxcomp.compressors.truncate import TruncateCompressor
from ctxcomp.tokens import get_counter
from ctxcomp.types import Budget, Chunk


def test_keeps_the_head_and_cuts_at_a_word() -> None:
    chunks = [Chunk("one two three four", id="a"), Chunk("five six seven eight nine", id="b")]
    out = TruncateCompressor().compress("", chunks, Budget(max_tokens=6))
    assert out.text == "one two three four\n\nfive"
    assert out.tokens_out == get_counter("gpt-4o-mini").count(out.text) <= 6
    assert out.chunks[1].spans == ((0, 4),)


def test_fits_within_five_percent_of_the_budget(demo_chunks: list[Chunk]) -> None:
    for limit in (50, 137, 300, 1000):
        out = TruncateCompressor().compress("", demo_chunks, Budget(max_tokens=limit))
        assert limit * 0.95 <= out.tokens_out <= limit


def test_query_is_optional() -> None:
    out = TruncateCompressor().compress("", ["a b c"], Budget(max_tokens=100))
    assert out.text == "a b c" and out.tokens_in == out.tokens_out
