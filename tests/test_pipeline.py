from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctxcomp.assembly import Assembly, Unit, select_units
from ctxcomp.compressors.base import BaseCompressor
from ctxcomp.errors import ConfigError, InfeasibleBudgetError, InputError, UnknownNameError
from ctxcomp.pipeline import Pipeline
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.text import split_sentences
from ctxcomp.tokens import TokenCounter, get_counter
from ctxcomp.types import Budget, Chunk, CompressedChunk, CompressedContext

COUNTER = get_counter("gpt-4o-mini")


class LongestSentences(BaseCompressor):
    """A deterministic query-free test stage: keeps the longest sentences."""

    name = "longest"
    requires_query = False

    def _propose(self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter) -> Assembly:
        units = [Unit(i, s, float(s[1] - s[0])) for i, c in enumerate(chunks) for s in split_sentences(c.text)]
        return select_units(chunks, units, counter, limit)


class Overshoot:
    """A third-party stage (protocol only) that ignores the budget."""

    name = "overshoot"

    def compress(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> CompressedContext:
        kept = tuple(CompressedChunk(c.text, c.id, ((0, len(c.text)),), 0, 0) for c in chunks)
        return CompressedContext(kept, "\n\n".join(c.text for c in chunks), 0, 0)


def _assert_provenance(ctx: CompressedContext, chunks: Sequence[Chunk]) -> None:
    by_id = {c.id: c.text for c in chunks}
    for kept in ctx.chunks:
        source = by_id[kept.source_id]
        assert kept.spans == tuple(sorted(kept.spans))
        pieces = [source[s:e] for s, e in kept.spans]
        assert all(p for p in pieces)
        # The kept text is exactly the pieces joined (adjacent spans run on, gaps get a space).
        rebuilt = pieces[0]
        for (_, prev_end), (start, _), piece in zip(kept.spans, kept.spans[1:], pieces[1:], strict=False):
            rebuilt += ("" if start == prev_end else " ") + piece
        assert rebuilt == kept.text


def test_two_stages_compose_spans_into_the_original(demo_chunks: list[Chunk]) -> None:
    pipe = Pipeline([LongestSentences(), "truncate"], Budget(max_tokens=120), cache=False)
    ctx = pipe.compress("", demo_chunks)
    assert ctx.tokens_out <= 120 and ctx.tokens_out == COUNTER.count(ctx.text)
    assert [s.name for s in ctx.stages] == ["longest", "truncate"]
    assert ctx.stages[0].tokens_in == ctx.tokens_in
    _assert_provenance(ctx, demo_chunks)


def test_budget_larger_than_input_is_a_no_op() -> None:
    chunks = [Chunk("alpha beta.", id="a"), Chunk("gamma.", id="b")]
    ctx = Pipeline(["truncate"], cache=False).compress("", chunks, Budget(max_tokens=1000))
    assert ctx.text == "alpha beta.\n\ngamma." and ctx.tokens_in == ctx.tokens_out
    assert [c.spans for c in ctx.chunks] == [((0, 11),), ((0, 6),)]
    assert ctx.stages == ()


def test_pipeline_enforces_the_budget_on_a_stage_that_overshoots(demo_chunks: list[Chunk]) -> None:
    ctx = Pipeline([Overshoot()], Budget(max_tokens=200)).compress("q", demo_chunks)
    assert ctx.tokens_out <= 200
    _assert_provenance(ctx, demo_chunks)


def test_ledger_and_costs(demo_chunks: list[Chunk]) -> None:
    ledger = Ledger()
    pipe = Pipeline(["truncate"], Budget(max_tokens=100), ledger=ledger, tenant="acme", cache=False)
    ctx = pipe.compress("", demo_chunks)
    pipe.compress("", demo_chunks, Budget(ratio=2), tenant="other")
    assert ctx.cost_before == pytest.approx(ctx.tokens_in * 0.15e-6)
    assert ctx.cost_after == pytest.approx(ctx.tokens_out * 0.15e-6)
    totals = ledger.totals(tenant="acme")
    assert totals.requests == 1 and totals.tokens_in == ctx.tokens_in and totals.tokens_out == ctx.tokens_out
    assert set(ledger.by("tenant")) == {"acme", "other"}


def test_unpriced_model_reports_no_cost_but_counts_tokens() -> None:
    ctx = Pipeline(["truncate"]).compress("", ["a b c d e f"], Budget(max_tokens=2, model="my-own-llm"))
    assert ctx.cost_before is None and ctx.tokens_approximate and ctx.tokens_out <= 2


def test_errors() -> None:
    with pytest.raises(ConfigError):
        Pipeline([])
    with pytest.raises(UnknownNameError) as info:
        Pipeline(["embeding"])
    assert "embedding" in str(info.value) and "truncate" in str(info.value)
    with pytest.raises(ConfigError, match="no budget"):
        Pipeline(["truncate"]).compress("", ["x"])
    with pytest.raises(InputError, match="no chunks"):
        Pipeline(["truncate"], Budget(max_tokens=5)).compress("", [])
    with pytest.raises(InputError, match="twice"):
        Pipeline(["truncate"], Budget(max_tokens=5)).compress("", [Chunk("a", id="1"), Chunk("b", id="1")])
    with pytest.raises(InputError, match="query is empty"):
        Pipeline([LongestSentences(), "embedding"], Budget(max_tokens=5)).compress("", ["x"])
    with pytest.raises(ConfigError, match="bad settings"):
        Pipeline([{"name": "truncate", "nonsense": 1}])


async def test_async_equals_sync(demo_chunks: list[Chunk]) -> None:
    pipe = Pipeline(["truncate"], Budget(max_tokens=77))
    assert (await pipe.acompress("", demo_chunks)).text == pipe.compress("", demo_chunks).text


def test_config_digest_changes_with_settings() -> None:
    a = Pipeline([{"name": "embedding", "chunk_weight": 0.3}]).config_digest()
    b = Pipeline([{"name": "embedding", "chunk_weight": 0.5}]).config_digest()  # the default
    assert a != b and b == Pipeline(["embedding"]).config_digest()


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(texts, min_size=1, max_size=8), limit=st.integers(1, 400), use_two=st.booleans())
def test_budget_property(chunks: list[str], limit: int, use_two: bool) -> None:
    """Any chunks, any budget: tokens <= budget, spans are real text of the right source."""
    items = [Chunk(t, id=f"s{i}") for i, t in enumerate(chunks)]
    stages = [LongestSentences(), "truncate"] if use_two else ["truncate"]
    try:
        ctx = Pipeline(stages, Budget(max_tokens=limit), cache=False).compress("", items)
    except InfeasibleBudgetError as exc:  # allowed only when not one character fits
        assert exc.needed is not None and exc.needed > limit
        return
    assert ctx.tokens_out <= limit
    assert ctx.text.strip() or not any(t.strip() for t in chunks) or ctx.tokens_in <= limit
    assert ctx.tokens_out == (COUNTER.count(ctx.text) if ctx.text else 0)
    _assert_provenance(ctx, items)
    if not use_two and ctx.tokens_in > limit and any(t.strip() for t in chunks):
        # truncate cuts at word granularity: it lands within 5% below the budget unless a
        # single word is larger than the remaining room.
        longest_word = max((COUNTER.count(w) for t in chunks for w in t.split()), default=0)
        assert ctx.tokens_out >= min(0.95 * limit, limit - longest_word - 2)


@pytest.mark.model
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(texts, min_size=1, max_size=5), limit=st.integers(1, 200))
def test_budget_property_embedding(embedding_compressor, chunks: list[str], limit: int) -> None:  # type: ignore[no-untyped-def]
    items = [Chunk(t, id=f"s{i}") for i, t in enumerate(chunks)]
    try:
        ctx = Pipeline([embedding_compressor], Budget(max_tokens=limit), cache=False).compress(
            "what is this about?", items)
    except InfeasibleBudgetError as exc:  # allowed only when not one character fits
        assert exc.needed is not None and exc.needed > limit
        return
    assert ctx.tokens_out <= limit
    assert ctx.text.strip() or not any(t.strip() for t in chunks) or ctx.tokens_in <= limit
    _assert_provenance(ctx, items)
