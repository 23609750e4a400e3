"""The summarize compressor with real functions as LLMs, and abstractive provenance."""

from __future__ import annotations

import threading

import pytest

from ctxcomp.cache import codec
from ctxcomp.compressors.summarize import SummarizeCompressor
from ctxcomp.errors import InputError
from ctxcomp.llm.base import Completion
from ctxcomp.llm.function import CallableLLM
from ctxcomp.pipeline import Pipeline
from ctxcomp.pricing import Price
from ctxcomp.tokens import get_counter
from ctxcomp.types import Budget, Chunk

pytestmark = pytest.mark.model  # the real MiniLM ranks chunks and measures faithfulness

CHUNKS = [
    Chunk("The Eiffel Tower is a wrought-iron lattice tower in Paris. It was designed by the company of "
          "Gustave Eiffel. It was built from 1887 to 1889 for the World's Fair. Many artists criticised "
          "its design at first, but it became a global icon of France.", id="eiffel"),
    Chunk("Bananas are berries, botanically speaking. They grow in clusters on large herbaceous plants. "
          "Most bananas sold today are of the Cavendish variety, which replaced Gros Michel in the 1950s "
          "after a fungal disease spread.", id="banana"),
    Chunk("The Statue of Liberty was a gift from France to the United States. Its metal framework was "
          "built by Gustave Eiffel. It was dedicated in 1886 on Liberty Island in New York Harbor.",
          id="liberty"),
]
QUERY = "who designed the eiffel tower?"


def first_sentence(prompt: str) -> str:
    passage = prompt.split("Passage: ", 1)[1]
    return passage.split(". ")[0] + "."


def make(fn, embedding_compressor, **settings) -> SummarizeCompressor:
    llm = CallableLLM(fn, model="gpt-4o-mini", timeout=settings.pop("timeout", 5.0), max_retries=0)
    return SummarizeCompressor(llm, embedder=embedding_compressor, **settings)


def test_summaries_are_marked_generated(embedding_compressor):
    comp = make(first_sentence, embedding_compressor, summary_tokens=20)
    ctx = comp.compress(QUERY, CHUNKS, Budget(max_tokens=50))
    assert ctx.tokens_out <= 50 and ctx.chunks
    for kept in ctx.chunks:
        assert kept.kind == "generated" and kept.spans == ()
        assert kept.text.startswith("[summary] ")
        assert kept.generated.model == "gpt-4o-mini" and kept.generated.method == "summarize"
        source = next(c for c in CHUNKS if c.id == kept.source_id)
        assert kept.generated.source_spans == ((0, len(source.text)),)
        assert kept.generated.faithfulness == 1.0  # the first sentence is in the source
    assert "eiffel" in [c.source_id for c in ctx.chunks]
    stage = ctx.stages[0]
    assert stage.llm_tokens_in > 0 and stage.llm_tokens_out > 0
    assert stage.llm_cost == pytest.approx((stage.llm_tokens_in * 0.15 + stage.llm_tokens_out * 0.60) / 1e6)
    assert "summarized" in stage.note and "fell back" not in stage.note
    data = ctx.to_dict()["chunks"][0]
    assert data["kind"] == "generated" and data["generated"]["model"] == "gpt-4o-mini"


def _hang(prompt: str) -> str:
    threading.Event().wait(3)
    return "late"


def _raise(prompt: str) -> str:
    raise RuntimeError("model down")


@pytest.mark.parametrize(("fn", "why"), [
    (_raise, "error"),
    (_hang, "timeout"),
    (lambda p: "Eiffel. " * 200, "too long"),  # ~10x the target, and no sentence fits whole
    (lambda p: "", "empty"),
])
def test_falls_back_to_extraction(embedding_compressor, fn, why):
    if why == "too long":
        fn = lambda p: "Eiffel tower words " * 100  # noqa: E731  (one sentence, 10x the target)
    comp = make(fn, embedding_compressor, summary_tokens=30, timeout=0.3)
    ctx = comp.compress(QUERY, CHUNKS, Budget(max_tokens=64))
    assert ctx.tokens_out <= 64 and ctx.chunks
    for kept in ctx.chunks:
        assert kept.generated is None and kept.spans  # extracted, verbatim
        source = next(c for c in CHUNKS if c.id == kept.source_id).text
        assert all(source[a:b] in kept.text for a, b in kept.spans)
    assert f"fell back to extraction: {len(ctx.chunks)} {why}" in ctx.stages[0].note


def test_a_chunk_that_fits_is_copied(embedding_compressor):
    comp = make(first_sentence, embedding_compressor, summary_tokens=200)
    ctx = comp.compress(QUERY, CHUNKS, Budget(max_tokens=150))
    assert all(k.generated is None for k in ctx.chunks)  # each fits its share whole


SUMMARY = "Gustave Eiffel's company designed the tower. It stands in Paris. Artists criticised it at first."


def test_pipeline_carries_generated_text(embedding_compressor):
    comp = make(lambda p: SUMMARY if "Eiffel Tower" in p else "Bananas are berries. They grow on plants.",
                embedding_compressor, summary_tokens=40, label="")
    pipe = Pipeline([comp, {"name": "embedding", "max_tokens": 14}], cache=False)
    ctx = pipe.compress(QUERY, CHUNKS, Budget(max_tokens=60))
    assert ctx.tokens_out <= 14
    eiffel = next(k for k in ctx.chunks if k.source_id == "eiffel")
    # the second stage extracted a sentence of the summary: still generated text, no spans
    assert eiffel.kind == "generated" and eiffel.spans == ()
    assert eiffel.text in SUMMARY and len(eiffel.text) < len(SUMMARY)
    assert eiffel.generated.source_spans == ((0, len(CHUNKS[0].text)),)
    assert [s.name for s in ctx.stages][-2:] == ["summarize", "embedding"]
    assert ctx.stages[-2].llm_tokens_in > 0


def test_cache_round_trip_and_old_schema(embedding_compressor):
    comp = make(first_sentence, embedding_compressor, summary_tokens=20)
    ctx = comp.compress(QUERY, CHUNKS, Budget(max_tokens=50))
    counter = get_counter("gpt-4o-mini")
    data = codec.encode(ctx, 1.5)
    back = codec.decode(data, CHUNKS, counter=counter, model="gpt-4o-mini").context
    assert back.chunks == ctx.chunks and back.text == ctx.text
    assert [c.generated for c in back.chunks] == [c.generated for c in ctx.chunks]
    old = data.replace(b'"v":3', b'"v":2') if data[:1] == b"j" else None
    if old is not None:
        with pytest.raises(codec.CorruptPayload):
            codec.decode(old, CHUNKS)
    # a generated chunk that claims spans, or source spans outside its source, is refused
    tampered = codec.encode(ctx, 1.0).replace(b'"summarize",[[0,', b'"summarize",[[0,9999') \
        if data[:1] == b"j" else None
    if tampered is not None and tampered != data:
        with pytest.raises(codec.CorruptPayload):
            codec.decode(tampered, CHUNKS)


def test_pipeline_cache_hit_keeps_generated(embedding_compressor):
    comp = make(first_sentence, embedding_compressor, summary_tokens=20)
    pipe = Pipeline([comp], Budget(max_tokens=50))
    first = pipe.compress(QUERY, CHUNKS)
    second = pipe.compress(QUERY, CHUNKS)
    assert second.stages[0].cache_hit is True or second.chunks == first.chunks
    assert [c.generated for c in second.chunks] == [c.generated for c in first.chunks]


def test_net_savings_subtract_the_summarizer(embedding_compressor):
    llm = CallableLLM(lambda p: Completion("Gustave Eiffel's company designed it.", 1000, 10),
                      model="summarizer", price=Price(100.0, 200.0))
    pipe = Pipeline([SummarizeCompressor(llm, embedder=embedding_compressor, summary_tokens=20)],
                    Budget(max_tokens=50), cache=False)
    ctx = pipe.compress(QUERY, CHUNKS)
    calls = len([c for c in ctx.chunks if c.generated is not None])
    spent = calls * (1000 * 100.0 + 10 * 200.0) / 1e6
    assert ctx.stages[-1].llm_cost == pytest.approx(spent)
    by_hand = (ctx.tokens_in - ctx.tokens_out) * 0.15 / 1e6 - spent
    totals = pipe.ledger.totals()
    assert totals.net_saved == pytest.approx(by_hand)
    assert totals.net_saved < 0  # the summaries cost more than they saved: a loss


def test_bad_input(embedding_compressor):
    comp = make(first_sentence, embedding_compressor, summary_tokens=20)
    with pytest.raises(InputError):
        comp.compress(QUERY, [], Budget(max_tokens=10))
    long = Chunk("word " * 20000, id="long")  # 100k characters, no punctuation
    ctx = comp.compress(QUERY, [long], Budget(max_tokens=30))
    assert ctx.tokens_out <= 30 and ctx.chunks
    tiny = comp.compress(QUERY, CHUNKS, Budget(max_tokens=3))  # smaller than any summary
    assert tiny.tokens_out <= 3 and all(c.generated is None for c in tiny.chunks)


@pytest.mark.redis
def test_generated_chunks_round_trip_through_redis(embedding_compressor):
    import os
    import uuid

    redis = pytest.importorskip("redis")
    url = os.environ.get("CTXCOMP_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_timeout=1).ping()
    except Exception:
        pytest.skip(f"no Redis at {url}")
    comp = make(first_sentence, embedding_compressor, summary_tokens=20)
    pipe = Pipeline([comp], Budget(max_tokens=50), cache=url, tenant=f"t{uuid.uuid4().hex[:8]}")
    first = pipe.compress(QUERY, CHUNKS)
    second = pipe.compress(QUERY, CHUNKS)
    assert all(s.cache_hit for s in second.stages)
    assert second.chunks == first.chunks and second.text == first.text
    assert [c.generated for c in second.chunks] == [c.generated for c in first.chunks]
    assert any(c.generated is not None for c in second.chunks)
