"""The LangChain components, inside the real langchain-core / langchain-classic / langchain classes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

pytest.importorskip("langchain_classic")

from langchain.agents import create_agent
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import DocumentCompressorPipeline
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from langchain_text_splitters import CharacterTextSplitter
from pydantic import Field

from ctxcomp import Budget, ConfigError, InputError, Pipeline
from ctxcomp.integrations.langchain import (
    CompactHistoryMiddleware,
    CompressHistoryMiddleware,
    CtxcompCompressor,
    LedgerCallbackHandler,
    compress_messages,
)
from ctxcomp.memory.history import ELISION
from ctxcomp.tokens import count_tokens

LONG = " ".join(f"Filler sentence number {i} says nothing in particular." for i in range(40))


def docs() -> list[Document]:
    meta = {"page": 3, "tags": ["a", "b"], "nested": {"x": 1.5}, "when": dt.date(2024, 1, 2), "none": None}
    return [
        Document(page_content="Paris is the capital of France. " + LONG, metadata={**meta, "i": 0}, id="d0"),
        Document(page_content="", metadata={"i": 1, "empty": True}, id="d1"),
        Document(page_content="Berlin is the capital of Germany. " + LONG, metadata={"i": 2}, id="d2"),
    ]


def truncating(max_tokens: int = 60) -> CtxcompCompressor:
    return CtxcompCompressor(pipeline=Pipeline(["truncate"], Budget(max_tokens=max_tokens)))


class StaticRetriever(BaseRetriever):
    """A base retriever returning fixed documents (the retriever is not under test)."""

    documents: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return list(self.documents)


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.events.append(("start", kwargs.get("name")))

    def on_chain_end(self, outputs: Any, **kwargs: Any) -> None:
        self.events.append(("end", outputs))


def test_metadata_round_trip_and_provenance() -> None:
    inputs = docs()
    out = truncating(60).compress_documents(inputs, "capital of France")
    assert out[0].id == "d0"
    for key, value in inputs[0].metadata.items():
        assert out[0].metadata[key] is value  # same objects, non-string values untouched
    info = out[0].metadata["ctxcomp"]
    assert info["source_id"] == "d0"
    start, end = info["spans"][0]
    assert inputs[0].page_content[start:end] == out[0].page_content
    assert info["tokens_out"] < info["tokens_in"] and info["ratio"] > 1
    assert "ctxcomp" not in inputs[0].metadata  # the input is not mutated


def test_empty_page_content_passes_through() -> None:
    out = truncating(60).compress_documents(docs(), "capital")
    assert out[1].page_content == "" and out[1].metadata == {"i": 1, "empty": True}
    assert [d.id for d in out] == ["d0", "d1"]  # d2 did not fit: left out, like LangChain filters
    assert truncating().compress_documents([Document(page_content="")], "q")[0].page_content == ""


def test_bad_input_and_config() -> None:
    with pytest.raises(InputError):
        truncating().compress_documents(["not a document"], "q")  # type: ignore[list-item]
    with pytest.raises(ConfigError):
        CtxcompCompressor(pipeline=Pipeline(["truncate"]))
    with pytest.raises(ConfigError):
        CtxcompCompressor(pipeline="truncate", budget=Budget(max_tokens=10))


def test_contextual_compression_retriever_and_callbacks() -> None:
    recorder = Recorder()
    retriever = ContextualCompressionRetriever(
        base_compressor=truncating(60), base_retriever=StaticRetriever(documents=docs())
    )
    out = retriever.invoke("capital", config={"callbacks": [recorder]})
    assert [d.id for d in out] == ["d0", "d1"]
    assert ("start", "CtxcompCompressor") in recorder.events
    ends = [e[1] for e in recorder.events if e[0] == "end" and isinstance(e[1], dict) and "tokens_in" in e[1]]
    assert ends and ends[0]["tokens_out"] <= 60 < ends[0]["tokens_in"]


def test_document_compressor_pipeline() -> None:
    splitter = CharacterTextSplitter(chunk_size=200, chunk_overlap=0, separator=". ")
    pipe = DocumentCompressorPipeline(transformers=[splitter, truncating(80)])
    out = pipe.compress_documents(docs(), "capital")
    assert out and sum(count_tokens(d.page_content) for d in out) <= 80
    assert all("ctxcomp" in d.metadata for d in out if d.page_content)


async def test_async_equals_sync() -> None:
    comp = truncating(70)
    sync = comp.compress_documents(docs(), "capital")
    asynced = await comp.acompress_documents(docs(), "capital")
    assert [(d.page_content, d.metadata) for d in sync] == [(d.page_content, d.metadata) for d in asynced]
    retriever = ContextualCompressionRetriever(base_compressor=comp, base_retriever=StaticRetriever(documents=docs()))
    assert [d.page_content for d in await retriever.ainvoke("capital")] == [d.page_content for d in sync]


@pytest.mark.model
async def test_embedding_pipeline_keeps_the_relevant_document(embedding_compressor) -> None:
    comp = CtxcompCompressor(pipeline=Pipeline([embedding_compressor], Budget(max_tokens=40)))
    out = comp.compress_documents(docs(), "What is the capital of Germany?")
    by_id = {d.id: d.page_content for d in out}
    assert by_id["d2"].startswith("Berlin is the capital of Germany.")
    assert comp.last_context is not None and comp.last_context.tokens_out <= 40
    again = await comp.acompress_documents(docs(), "What is the capital of Germany?")
    assert [d.page_content for d in again] == [d.page_content for d in out]


# -- chat history ----------------------------------------------------------------------------

def history() -> list[Any]:
    return [
        SystemMessage("You are terse."),
        HumanMessage("Tell me a long story. " + LONG),
        AIMessage("Once upon a time. " + LONG),
        AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "c1", "type": "tool_call"}]),
        ToolMessage("Lookup result. " + LONG, tool_call_id="c1"),
        AIMessage("Here is what I found. " + LONG),
        HumanMessage("Thanks, now a short answer please."),
    ]


def test_compress_messages_keeps_roles_pairs_and_recent() -> None:
    msgs = history()
    out = compress_messages(msgs, max_tokens=150, keep_recent=1, compressor=Pipeline(["truncate"]))
    assert [m.type for m in out] == [m.type for m in msgs]  # no role dropped
    assert out[0].content == msgs[0].content and out[-1].content == msgs[-1].content
    assert out[3].tool_calls == msgs[3].tool_calls and out[4].tool_call_id == "c1"
    assert out[1].content != msgs[1].content or out[2].content == ELISION
    assert all(o.id == m.id for o, m in zip(out, msgs, strict=True))


def test_compress_messages_runnable_form() -> None:
    runnable = compress_messages(max_tokens=150, keep_recent=1, compressor=Pipeline(["truncate"]))
    assert isinstance(runnable, Runnable)
    out = runnable.invoke(history())
    assert len(out) == len(history())
    full = sum(count_tokens(m.text) for m in history())
    assert sum(count_tokens(m.text) for m in out) < full


def test_compress_messages_bad_input() -> None:
    with pytest.raises(InputError):
        compress_messages([{"role": "narrator", "content": "x"}], max_tokens=10)
    with pytest.raises(ConfigError):
        compress_messages(history(), max_tokens=10, keep_recent=-2)


class RecordingChatModel(BaseChatModel):
    """Scripted replies; records every message list it receives (the model is not under test)."""

    replies: list[AIMessage]
    received: list[list[Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def bind_tools(self, tools: Any, **kwargs: Any) -> RecordingChatModel:
        return self

    def _generate(self, messages: list[Any], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        self.received.append(list(messages))
        reply = self.replies[min(len(self.received) - 1, len(self.replies) - 1)]
        tokens = sum(count_tokens(m.text) for m in messages)
        reply = reply.model_copy(update={"usage_metadata": {
            "input_tokens": tokens, "output_tokens": 5, "total_tokens": tokens + 5}})
        return ChatResult(generations=[ChatGeneration(message=reply)])


@tool
def lookup(q: str) -> str:
    """Look something up."""
    return "Lookup says: " + LONG


def run_agent(middleware: list[Any]) -> tuple[int, list[Any]]:
    model = RecordingChatModel(replies=[
        AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "c9", "type": "tool_call"}]),
        AIMessage("Done."),
    ], received=[])
    agent = create_agent(model, [lookup], system_prompt="You are terse.", middleware=middleware)
    result = agent.invoke({"messages": history()[1:]})
    assert result["messages"][-1].content == "Done."
    sent = sum(count_tokens(m.text) for call in model.received for m in call)
    return sent, model.received


def test_agent_middleware_sends_fewer_tokens() -> None:
    baseline, _ = run_agent([])
    middleware = CompressHistoryMiddleware(250, keep_recent=2, compressor=Pipeline(["truncate"]))
    compressed, received = run_agent([middleware])
    assert compressed < baseline
    last = received[-1]
    assert isinstance(last[0], SystemMessage)
    assert last[-1].type == "tool" and last[-2].tool_calls  # the newest tool pair is verbatim
    assert middleware.ledger.totals().tokens_saved > 0


def test_compact_middleware_rewrites_state() -> None:
    middleware = CompactHistoryMiddleware(250, keep_recent=2, compressor=Pipeline(["truncate"]))
    model = RecordingChatModel(replies=[AIMessage("Done.")], received=[])
    agent = create_agent(model, [], middleware=[middleware])
    result = agent.invoke({"messages": history()})
    stored = sum(count_tokens(m.text) for m in result["messages"])
    assert stored < sum(count_tokens(m.text) for m in history())
    assert [m.type for m in result["messages"]][:7] == [m.type for m in history()]


def test_ledger_callback_records_usage_metadata() -> None:
    usage = {"input_tokens": 1200, "output_tokens": 30, "total_tokens": 1230,
             "input_token_details": {"cache_read": 200}}
    model = GenericFakeChatModel(messages=iter([
        AIMessage("hi", usage_metadata=usage, response_metadata={"model_name": "gpt-4o-mini"})]))
    handler = LedgerCallbackHandler()
    model.invoke("hello", config={"callbacks": [handler]})
    (record,) = handler.ledger.usage()
    assert (record.model, record.input_tokens, record.output_tokens, record.cached_tokens) == (
        "gpt-4o-mini", 1200, 30, 200)
    assert record.cost == pytest.approx((1200 * 0.15 + 30 * 0.60) / 1e6)
    assert handler.ledger.usage_totals().input_tokens == 1200


def openai_billed_tokens(messages: list[Any]) -> int:
    """What an OpenAI-style provider bills for a chat prompt: its published recipe
    (openai-cookbook), computed here with tiktoken directly, not with ctxcomp."""
    import tiktoken

    from ctxcomp.tokens import ensure_offline_encoding

    ensure_offline_encoding("o200k_base")
    enc = tiktoken.get_encoding("o200k_base")
    roles = {"human": "user", "ai": "assistant", "system": "system"}
    return 3 + sum(3 + len(enc.encode(roles[m.type])) + len(enc.encode(m.text)) for m in messages)


class BillingChatModel(BaseChatModel):
    """A chat model that reports usage like an OpenAI provider and over-bills one call."""

    model_name: str = "gpt-4o-mini"
    overbill: dict[int, int] = Field(default_factory=dict)
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "billing"

    def _get_ls_params(self, stop: Any = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        return {**params, "ls_provider": "openai", "ls_model_name": self.model_name}

    def _generate(self, messages: list[Any], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        billed = openai_billed_tokens(messages) + self.overbill.get(self.calls, 0)
        self.calls += 1
        reply = AIMessage("ok", usage_metadata={"input_tokens": billed, "output_tokens": 1, "total_tokens": billed + 1},
                          response_metadata={"model_name": self.model_name})
        return ChatResult(generations=[ChatGeneration(message=reply)])


def test_ledger_callback_audit_flags_a_planted_discrepancy() -> None:
    model = BillingChatModel(overbill={3: 250})
    handler = LedgerCallbackHandler(tenant="acme")
    for i in range(6):
        model.invoke([SystemMessage("Answer from the context."), HumanMessage(f"Context: {LONG[: 200 * (i + 1)]}\nQ?")],
                     config={"callbacks": [handler]})
    usages = handler.ledger.usage()
    assert [u.provider for u in usages] == ["openai"] * 6 and all(u.tenant == "acme" for u in usages)
    assert [u.input_tokens - (u.expected_input_tokens or 0) for u in usages] == [0, 0, 0, 250, 0, 0]
    (row,) = handler.ledger.audit()
    assert (row.provider, row.model, row.calls, row.checked, row.flagged) == ("openai", "gpt-4o-mini", 6, 6, 1)
    assert row.worst is not None and row.worst.difference == 250


def test_non_string_metadata_survives_a_cache_hit() -> None:
    cache_mod = pytest.importorskip("ctxcomp.cache")
    pipe = Pipeline(["truncate"], Budget(max_tokens=60), cache=cache_mod.build_cache(backend="memory"))
    comp = CtxcompCompressor(pipeline=pipe)
    first = comp.compress_documents(docs(), "capital")
    second = comp.compress_documents(docs(), "capital")
    assert pipe.ledger.totals().cache_hits == 1
    assert [d.page_content for d in second] == [d.page_content for d in first]
    assert second[0].metadata["when"] == dt.date(2024, 1, 2) and second[0].metadata["tags"] == ["a", "b"]


def test_repro_metadata_with_non_string_keys_under_the_default_cache() -> None:
    """Issue 11: the cache key sorted metadata keys, so {"a": 1, 1: 2} raised TypeError."""
    doc = Document(page_content="Paris is the capital of France. " + LONG, metadata={"a": 1, 1: 2}, id="m")
    out = truncating(40).compress_documents([doc], "capital of France")
    assert out[0].page_content and out[0].metadata[1] == 2
