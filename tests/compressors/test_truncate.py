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


# -- issue 11: every script, every size, never silently empty, never quadratic ----------------
import base64  # noqa: E402
import json  # noqa: E402

import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ctxcomp.assembly import Unit as _Unit  # noqa: E402
from ctxcomp.assembly import assemble, longest_prefix  # noqa: E402
from ctxcomp.errors import InfeasibleBudgetError  # noqa: E402
from ctxcomp.pipeline import Pipeline  # noqa: E402
from ctxcomp.tokens import TiktokenCounter  # noqa: E402

SCRIPTS = {
    "japanese": "東京は日本の首都です。" * 100,
    "chinese": "北京是中华人民共和国的首都，也是全国的政治中心。" * 60,
    "thai": "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย" * 40,
    "minified_json": json.dumps([{"id": i, "name": f"item{i}", "tags": ["a", "b"]} for i in range(80)],
                                separators=(",", ":")),
    "base64": base64.b64encode(bytes(range(256)) * 6).decode(),
    "emoji": "😀👍🎉" * 200,
}


def test_repro_japanese_is_not_truncated_to_nothing() -> None:
    out = Pipeline(["truncate"], Budget(ratio=2), cache=False).compress("q", ["東京は日本の首都です。" * 100])
    assert out.text and out.tokens_out <= out.budget_tokens


@pytest.mark.parametrize("name", sorted(SCRIPTS))
@pytest.mark.parametrize("budget", [Budget(ratio=2), Budget(ratio=50), Budget(max_tokens=3)])
def test_every_script_keeps_a_head_within_budget(name: str, budget: Budget) -> None:
    text = SCRIPTS[name]
    out = TruncateCompressor().compress("", [text], budget)
    assert out.text, name
    assert text.startswith(out.text) and out.tokens_out <= out.budget_tokens


def test_a_word_larger_than_the_budget_is_cut_on_a_grapheme() -> None:
    out = TruncateCompressor().compress("", ["Pneumonoultramicroscopicsilicovolcanoconiosis is long"],
                                        Budget(max_tokens=2))
    assert out.text and "Pneumonoultramicroscopicsilicovolcanoconiosis".startswith(out.text)
    family = "👨\u200d👩\u200d👧" * 3
    out = TruncateCompressor().compress("", [family], Budget(max_tokens=12))
    assert out.text and len(out.text) % 5 == 0  # whole families only (5 code points each)


def test_nothing_fits_raises_infeasible_budget() -> None:
    with pytest.raises(InfeasibleBudgetError) as info:
        TruncateCompressor().compress("", ["\U0001f9d1\u200d\U0001f9b0 " * 20], Budget(max_tokens=1))
    assert info.value.limit == 1 and info.value.needed is not None and info.value.needed > 1


class _CountingCounter(TiktokenCounter):
    """The real o200k counter, adding up the characters it encodes."""

    def __init__(self) -> None:
        super().__init__("o200k_base")
        self.encoded_chars = 0

    def _count(self, text: str) -> int:
        self.encoded_chars += len(text)
        return super()._count(text)

    def count_many(self, texts):  # type: ignore[no-untyped-def]
        self.encoded_chars += sum(len(t) for t in texts)
        return [len(ids) for ids in self._enc.encode_ordinary_batch(list(texts))]


def test_repro_truncate_is_not_quadratic() -> None:
    """10k chunks took 166 s (every step re-encoded the whole prefix). Counted in encoded
    characters, not seconds: O(n log n) encodes at most ~log2(n) times the input."""
    chunks = [Chunk(f"chunk number {i} says hello world.", id=str(i)) for i in range(4000)]
    counter = _CountingCounter()
    comp = TruncateCompressor()
    limit = 16_000
    assembly = comp._propose("", chunks, limit, counter)
    size = sum(len(c.text) for c in chunks)
    assert assembly.tokens == counter.count(assembly.text) <= limit
    assert counter.encoded_chars < 20 * size  # the quadratic version encoded ~1000x the input


def _reference_truncate(chunks: list[Chunk], limit: int) -> str:
    """The original quadratic algorithm (exact count after each chunk): the spec."""
    counter = get_counter("gpt-4o-mini")
    kept: list[_Unit] = []
    for index, chunk in enumerate(chunks):
        if not chunk.text.strip():
            continue
        unit = _Unit(index, (0, len(chunk.text)), score=-float(index))
        if assemble(chunks, [*kept, unit], counter).tokens <= limit:
            kept.append(unit)
            continue
        partial = longest_prefix(chunks, unit, counter, limit, before=kept)
        if partial is not None:
            kept.append(partial)
        break
    return assemble(chunks, kept, counter).text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(list("ab .\n,東")), max_size=60), min_size=1, max_size=12),
       st.integers(2, 80))
def test_same_output_as_the_quadratic_algorithm(texts: list[str], limit: int) -> None:
    chunks = [Chunk(t, id=str(i)) for i, t in enumerate(texts)]
    counter = get_counter("gpt-4o-mini")
    if sum(counter.count(t) for t in texts) <= limit:
        return
    try:
        got = TruncateCompressor()._propose("", chunks, limit, counter).text
    except InfeasibleBudgetError:
        got = ""
    assert got == _reference_truncate(chunks, limit) or not _reference_truncate(chunks, limit)


def test_quotas_cut_each_chunk_first() -> None:
    chunks = [Chunk("one two three four five", id="a"), Chunk("six seven eight nine", id="b"), Chunk("ten", id="c")]
    counter = get_counter("gpt-4o-mini")
    out = TruncateCompressor()._propose("", chunks, 100, counter, quotas=[2, 0, None])
    assert out.text == "one two\n\nten"
