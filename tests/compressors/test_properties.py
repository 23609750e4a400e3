"""Invariants of every registered compressor on hostile-but-valid input (issue 11).

For any chunks (every script, structure and size: ``tests/strategies.py``) and any budget:
the output is within budget and its token count is exact; every kept piece is exactly the
source text at its spans, spans in order and chunks in order; nothing is invented (the
text is the kept pieces joined); input that fits comes back whole; and the output is never
empty when the input has text, unless not one character fits, which raises
InfeasibleBudgetError.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctxcomp import registry
from ctxcomp.errors import InfeasibleBudgetError
from ctxcomp.tokens import get_counter
from ctxcomp.types import CHUNK_SEPARATOR, Budget, Chunk, join_spans
from tests.strategies import chunk_lists, scripts, sized, structures

QUERY = "what is this about?"
SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large]


def check_invariants(compressor, texts: list[str], budget: Budget) -> None:  # type: ignore[no-untyped-def]
    chunks = [Chunk(t, id=f"c{i}") for i, t in enumerate(texts)]
    counter = get_counter(budget.model)
    try:
        ctx = compressor.compress(QUERY, chunks, budget)
    except InfeasibleBudgetError as exc:
        assert exc.needed is not None and exc.limit is not None and exc.needed > exc.limit
        return
    limit = ctx.budget_tokens
    assert limit is not None
    assert ctx.tokens_out == (counter.count(ctx.text) if ctx.text else 0)
    by_id = {c.id: (i, c) for i, c in enumerate(chunks)}
    last = -1
    for kept in ctx.chunks:
        position, source = by_id[kept.source_id]
        assert position > last  # original chunk order, each chunk once
        last = position
        prev = 0
        for start, end in kept.spans:
            assert prev <= start < end <= len(source.text)  # in order, inside the source
            prev = end
        assert kept.text == join_spans(source.text, kept.spans)  # exactly the source's text
    assert ctx.text == CHUNK_SEPARATOR.join(k.text for k in ctx.chunks)  # nothing invented
    if ctx.tokens_in <= limit:
        assert ctx.text == CHUNK_SEPARATOR.join(t for t in texts if t)  # a documented no-op
    else:
        assert ctx.tokens_out <= limit
        if any(t.strip() for t in texts):
            assert ctx.text.strip(), "empty output for non-empty input"


def _budgets() -> st.SearchStrategy[Budget]:
    return st.one_of(st.builds(Budget, max_tokens=st.integers(1, 300)),
                     st.builds(Budget, ratio=st.floats(1.0, 60.0)))


@pytest.fixture(scope="module")
def tiny_gemfilter(tmp_path_factory):  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    from ctxcomp.compressors.early_layer import EarlyLayerFilter
    from ctxcomp.models.testing import build_tiny_lm

    path = build_tiny_lm(tmp_path_factory.mktemp("props"), ["東京は日本の首都です。", "กรุงเทพ", "{\"a\": 1}"])
    comp = EarlyLayerFilter(model=str(path), layer=(1, 2), embedding_weight=0.0, device="cpu", dtype="fp32")
    comp.setup()
    return comp


def test_every_registered_compressor_is_covered() -> None:
    assert {"truncate", "embedding", "gemfilter"} <= set(registry.compressors.known_names())


@settings(max_examples=120, deadline=None, suppress_health_check=SLOW)
@given(texts=chunk_lists(), budget=_budgets())
def test_truncate_invariants(texts: list[str], budget: Budget) -> None:
    check_invariants(registry.compressors.create("truncate"), texts, budget)


@settings(max_examples=12, deadline=None, suppress_health_check=SLOW)
@given(text=sized(max_chars=1_000_000), budget=_budgets())
def test_truncate_invariants_up_to_a_megabyte(text: str, budget: Budget) -> None:
    check_invariants(registry.compressors.create("truncate"), [text], budget)


@pytest.mark.model
@settings(max_examples=25, deadline=None, suppress_health_check=SLOW)
@given(texts=chunk_lists(max_chunks=5), budget=_budgets())
def test_embedding_invariants(embedding_compressor, texts: list[str], budget: Budget) -> None:  # type: ignore[no-untyped-def]
    check_invariants(embedding_compressor, texts, budget)


@pytest.mark.model
@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=SLOW)
@given(text=sized(max_chars=20_000), budget=st.builds(Budget, ratio=st.floats(2.0, 20.0)))
def test_embedding_invariants_on_large_inputs(embedding_compressor, text: str, budget: Budget) -> None:  # type: ignore[no-untyped-def]
    check_invariants(embedding_compressor, [text], budget)


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW)
@given(texts=chunk_lists(max_chunks=5), budget=_budgets())
def test_gemfilter_invariants(tiny_gemfilter, texts: list[str], budget: Budget) -> None:  # type: ignore[no-untyped-def]
    check_invariants(tiny_gemfilter, texts, budget)


@settings(max_examples=30, deadline=None, suppress_health_check=SLOW)
@given(text=st.one_of(scripts(), structures()))
def test_strategies_produce_text_every_compressor_accepts(text: str) -> None:
    Chunk(text)  # no surrogates, no type errors: valid input by construction
    assert isinstance(text, str)
