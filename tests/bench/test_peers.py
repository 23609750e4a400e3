import pytest

from ctxcomp.bench.peers import (
    LangChainEmbeddingsFilter,
    LlamaIndexSentenceOptimizer,
    locate_sentences,
    provenance_from_spans,
)
from ctxcomp.tokens import get_counter
from ctxcomp.types import CHUNK_SEPARATOR, Budget, Chunk

pytestmark = pytest.mark.filterwarnings("ignore:.*langchain-community.*:DeprecationWarning")


def test_locate_sentences_recovers_spans():
    source = "One here. Two there. Three."
    spans = [(0, 9), (10, 20), (21, 27)]
    assert locate_sentences("Three. One here.", source, spans) == [(0, 9), (21, 27)]
    assert locate_sentences("", source, spans) == []
    assert locate_sentences("Not in it.", source, spans) is None


def test_provenance_splits_at_chunk_boundaries():
    chunks = [Chunk("abc def", id="x"), Chunk("ghi jkl", id="y")]
    joined = CHUNK_SEPARATOR.join(c.text for c in chunks)
    offsets = [0, len("abc def") + len(CHUNK_SEPARATOR)]
    out = provenance_from_spans(chunks, [(4, joined.index("jkl"))], offsets, get_counter("gpt-4o-mini"))
    assert [(c.source_id, c.spans, c.text) for c in out] == [("x", ((4, 7),), "def"), ("y", ((0, 4),), "ghi ")]


@pytest.fixture(scope="module")
def example(nq_examples):
    return nq_examples[1]


def _check(outcome, example, budget):
    counter = get_counter(budget.model)
    limit = budget.limit(counter.count(CHUNK_SEPARATOR.join(c.text for c in example.chunks)))
    assert 0 < counter.count(outcome.text) <= limit
    by_id = {c.id: c for c in example.chunks}
    for kept in outcome.chunks:
        source = by_id[kept.source_id].text
        for start, end in kept.spans:
            assert source[start:end] in outcome.text


@pytest.mark.model
def test_langchain_filter_ranks_and_fits(example):
    method = LangChainEmbeddingsFilter("langchain-embeddings-filter", {})
    budget = Budget(ratio=6)
    outcome = method.run(example.query, example.chunks, budget)
    _check(outcome, example, budget)
    assert outcome.chunks and all(c.score is not None for c in outcome.chunks)
    assert method.run(example.query, example.chunks, budget).text == outcome.text  # deterministic


@pytest.mark.model
def test_llamaindex_optimizer_searches_to_budget(example):
    method = LlamaIndexSentenceOptimizer("llamaindex-sentence-optimizer", {})
    budget = Budget(ratio=6)
    outcome = method.run(example.query, example.chunks, budget)
    _check(outcome, example, budget)
    counter = get_counter(budget.model)
    loose = method.run(example.query, example.chunks, Budget(ratio=2))
    assert counter.count(loose.text) > counter.count(outcome.text)  # a looser budget keeps more
    with pytest.raises(TypeError):
        LlamaIndexSentenceOptimizer("x", {"colour": 1})
