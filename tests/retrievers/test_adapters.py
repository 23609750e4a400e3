"""CompressingRetriever: retrieve-then-compress in one call around every kind of retriever."""

from __future__ import annotations

import pytest

from ctxcomp import Budget, Chunk, ConfigError, InputError, Pipeline
from ctxcomp.retrievers.adapters import CompressingRetriever, retriever_kind

PASSAGES = ["Tea was first drunk in China. " * 8, "Coffee came from Ethiopia. " * 8, "Cocoa is from Mexico. " * 8]


def pipe(max_tokens: int = 30) -> Pipeline:
    return Pipeline(["truncate"], Budget(max_tokens=max_tokens))


def test_callable_retriever() -> None:
    crr = CompressingRetriever(lambda q: PASSAGES, pipe(30))
    assert crr.kind == "callable"
    ctx = crr.retrieve("where is tea from")
    assert ctx.tokens_out <= 30 < ctx.tokens_in and ctx.text.startswith("Tea was first")
    assert ctx.cost_saved is not None and ctx.cost_saved > 0


def test_empty_retrieval_gives_an_empty_context() -> None:
    ctx = CompressingRetriever(lambda q: [], pipe()).retrieve("anything")
    assert ctx.tokens_in == ctx.tokens_out == 0 and ctx.text == ""


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        CompressingRetriever(42, pipe())
    with pytest.raises(ConfigError):
        CompressingRetriever(lambda q: PASSAGES, Pipeline(["truncate"]))
    with pytest.raises(InputError):
        CompressingRetriever(lambda q: "not a list", pipe()).retrieve("q")
    with pytest.raises(InputError):
        CompressingRetriever(lambda q: [1, 2], pipe()).retrieve("q")


@pytest.mark.model
async def test_hybrid_retriever_sync_and_async(small_index) -> None:
    crr = CompressingRetriever(small_index, pipe(25), k=3)
    assert crr.kind == "ctxcomp"
    ctx = crr.retrieve("error XJ-42 on the mount")
    assert ctx.chunks[0].source_id == "t3" and ctx.tokens_out <= 25
    assert ctx.chunks[0].metadata["bm25_rank"] == 1
    again = await crr.aretrieve("error XJ-42 on the mount")
    assert again.text == ctx.text


@pytest.mark.model
async def test_langchain_retriever(small_index) -> None:
    pytest.importorskip("langchain_core")
    from ctxcomp.integrations.langchain import CtxcompRetriever

    lc = CtxcompRetriever(index=small_index, k=4)
    crr = CompressingRetriever(lc, pipe(40))
    assert retriever_kind(lc) == "langchain"
    ctx = crr.retrieve("price of a yearly membership")
    assert "40 euros" in ctx.text and ctx.tokens_out <= 40
    assert (await crr.aretrieve("price of a yearly membership")).text == ctx.text


@pytest.mark.model
async def test_llamaindex_retriever(small_index) -> None:
    pytest.importorskip("llama_index.core")
    from ctxcomp.integrations.llamaindex import CtxcompLlamaRetriever

    li = CtxcompLlamaRetriever(small_index, k=4)
    crr = CompressingRetriever(li, pipe(40))
    assert crr.kind == "llamaindex"
    ctx = crr.retrieve("when do the Perseids peak")
    assert "August" in ctx.text and ctx.chunks[0].metadata["n"] == 5
    assert (await crr.aretrieve("when do the Perseids peak")).text == ctx.text


def test_chunks_pass_through_with_ids() -> None:
    chunks = [Chunk("alpha " * 20, id="a", metadata={"x": 1}), Chunk("", id="b")]
    ctx = CompressingRetriever(lambda q: chunks, pipe(10)).retrieve("q")
    assert [c.source_id for c in ctx.chunks] == ["a"] and ctx.chunks[0].metadata == {"x": 1}
