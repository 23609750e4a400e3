"""The LlamaIndex components inside real llama-index-core classes (query engine, Memory)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.llms.types import ChatResponse, CompletionResponse, LLMMetadata
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.llms import ChatMessage, CustomLLM, MockLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.memory import Memory
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import Document, ImageNode, MetadataMode, NodeWithScore, QueryBundle, TextNode

from ctxcomp import Budget, ConfigError, InputError, Pipeline
from ctxcomp.integrations.llamaindex import (
    CompressedHistoryBlock,
    CtxcompPostprocessor,
    LedgerEventHandler,
    MiniLMEmbedding,
    chat_message_to_turn,
)
from ctxcomp.memory.history import ELISION
from ctxcomp.tokens import count_tokens

LONG = " ".join(f"Filler sentence number {i} says nothing in particular." for i in range(40))


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(id_="n0", text="Mars has two moons, Phobos and Deimos. " + LONG,
                                    metadata={"file": "mars.md", "page": 1}), score=0.9),
        NodeWithScore(node=ImageNode(id_="img", image="aGVsbG8=", metadata={"kind": "image"}), score=0.5),
        NodeWithScore(node=TextNode(id_="n2", text="Jupiter has ninety-five moons. " + LONG,
                                    metadata={"file": "jupiter.md", "tags": ["gas", "giant"]}), score=0.7),
        NodeWithScore(node=TextNode(id_="empty", text="", metadata={"note": "no text"}), score=0.1),
    ]


def truncating(max_tokens: int = 60) -> CtxcompPostprocessor:
    return CtxcompPostprocessor(pipeline=Pipeline(["truncate"], Budget(max_tokens=max_tokens)))


class FixedRetriever(BaseRetriever):
    """Returns the same nodes for any query (the retriever is not under test)."""

    def __init__(self, items: list[NodeWithScore]) -> None:
        self.items = items
        super().__init__()

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return list(self.items)


def test_each_node_keeps_its_own_metadata_and_score() -> None:
    inputs = nodes()
    out = truncating(60).postprocess_nodes(inputs, query_str="moons of Mars")
    ids = [n.node.node_id for n in out]
    assert ids == ["n0", "img", "empty"]  # n2 did not fit; textless nodes pass through
    first = out[0]
    assert first.score == 0.9
    assert first.node.metadata["file"] == "mars.md" and first.node.metadata["page"] == 1
    info = first.node.metadata["ctxcomp"]
    s, e = info["spans"][0]
    assert inputs[0].node.get_content()[s:e] == first.node.get_content(metadata_mode=MetadataMode.NONE)
    assert "ctxcomp" not in first.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "ctxcomp" not in inputs[0].node.metadata  # inputs are not mutated
    assert out[1] is inputs[1] and out[2] is inputs[3]


def test_no_text_at_all_and_bad_input() -> None:
    only_image = [nodes()[1]]
    assert truncating().postprocess_nodes(only_image, query_str="q") == only_image
    with pytest.raises(InputError):
        truncating().postprocess_nodes(["not a node"], query_str="q")  # type: ignore[list-item]
    with pytest.raises(ConfigError):
        CtxcompPostprocessor(pipeline=Pipeline(["truncate"]))


async def test_async_equals_sync() -> None:
    post = truncating(80)
    sync = post.postprocess_nodes(nodes(), query_str="moons")
    asynced = await post.apostprocess_nodes(nodes(), query_str="moons")
    assert [(n.node.node_id, n.node.get_content(), n.score) for n in sync] == [
        (n.node.node_id, n.node.get_content(), n.score) for n in asynced]


def test_query_engine_receives_the_compressed_nodes() -> None:
    post = truncating(40)
    engine = RetrieverQueryEngine.from_args(FixedRetriever(nodes()), llm=MockLLM(), node_postprocessors=[post])
    response = engine.query("How many moons does Mars have?")
    prompt = str(response)  # MockLLM answers with the prompt it was given
    assert "Phobos and Deimos" in prompt
    assert "Jupiter" not in prompt and "Filler sentence number 30" not in prompt
    kept = next(n for n in response.source_nodes if n.node.node_id == "n0")
    assert kept.node.metadata["ctxcomp"]["tokens_out"] <= 40
    assert post.last_context is not None and post.last_context.tokens_saved > 0


@pytest.mark.model
@pytest.mark.filterwarnings("ignore:.*langchain-community.*:DeprecationWarning")  # llama_index's langchain bridge
def test_vector_index_with_shipped_embeddings_and_embedding_pipeline(embedding_compressor) -> None:
    docs = [Document(text="Mars has two moons, Phobos and Deimos. " + LONG, metadata={"planet": "mars"}),
            Document(text="Jupiter has ninety-five moons. " + LONG, metadata={"planet": "jupiter"})]
    index = VectorStoreIndex.from_documents(docs, embed_model=MiniLMEmbedding())
    post = CtxcompPostprocessor(pipeline=Pipeline([embedding_compressor], Budget(max_tokens=30)))
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=2, node_postprocessors=[post])
    response = engine.query("What are the names of the moons of Mars?")
    assert "Phobos" in str(response)
    assert sum(count_tokens(n.node.get_content()) for n in response.source_nodes) <= 30
    assert {n.node.metadata["planet"] for n in response.source_nodes} <= {"mars", "jupiter"}


def test_memory_block_serves_compressed_history_with_roles() -> None:
    block = CompressedHistoryBlock(max_tokens=150, compressor=Pipeline(["truncate"]))
    memory = Memory.from_defaults(token_limit=300, chat_history_token_ratio=0.5, token_flush_size=100,
                                  memory_blocks=[block])
    for i in range(5):
        memory.put(ChatMessage(role="user", content=f"Question {i}. " + LONG))
        memory.put(ChatMessage(role="assistant", content=f"Answer {i}. " + LONG))
    memory.put(ChatMessage(role="user", content="What was my first question?"))
    assert block.messages, "Memory must have ejected older messages into the block"
    served = block.compressed("first question")
    assert [m.role for m in served] == [m.role for m in block.messages]  # roles kept, none dropped
    stored = sum(count_tokens(m.content or "") for m in block.messages)
    assert sum(count_tokens(m.content or "") for m in served) < stored
    assert any(m.content not in (ELISION, "") for m in served)
    history = memory.get()
    assert history[-1].content == "What was my first question?"
    assert sum(count_tokens(m.content or "") for m in history) < stored + 200


def test_tool_messages_become_paired_turns() -> None:
    call = ChatMessage(role="assistant", content="",
                       additional_kwargs={"tool_calls": [{"id": "t1", "name": "f", "arguments": "{}"}]})
    result = ChatMessage(role="tool", content="42", additional_kwargs={"tool_call_id": "t1"})
    assert chat_message_to_turn(call).tool_call_ids == ("t1",)
    assert chat_message_to_turn(call).payload_tokens > 0
    assert chat_message_to_turn(result).tool_call_id == "t1"
    with pytest.raises(InputError):
        chat_message_to_turn("hello")  # type: ignore[arg-type]


# -- usage audit ----------------------------------------------------------------------------

def _o200k(text: str) -> int:
    """Token count with tiktoken directly (not through ctxcomp)."""
    import tiktoken

    from ctxcomp.tokens import ensure_offline_encoding

    ensure_offline_encoding("o200k_base")
    return len(tiktoken.get_encoding("o200k_base").encode(text))


class BillingLLM(CustomLLM):
    """Reports usage like OpenAI's API (chat natively; the cookbook's counting) and
    over-bills the calls listed in ``overbill``."""

    model: str = "gpt-4o-mini"
    overbill: dict[int, int] = Field(default_factory=dict)
    calls: int = 0

    @classmethod
    def class_name(cls) -> str:
        return "openai_llm"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model, is_chat_model=True)

    def _bill(self, tokens: int) -> dict[str, Any]:
        billed = tokens + self.overbill.get(self.calls, 0)
        self.calls += 1
        return {"model": self.model, "usage": {"prompt_tokens": billed, "completion_tokens": 2}}

    @llm_chat_callback()
    def chat(self, messages: Any, **kwargs: Any) -> ChatResponse:
        tokens = 3 + sum(3 + _o200k(m.role.value) + _o200k(m.content or "") for m in messages)
        return ChatResponse(message=ChatMessage(role="assistant", content="ok"), raw=self._bill(tokens))

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="ok", raw=self._bill(_o200k(prompt)))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> Any:
        raise NotImplementedError


class CompletionOnlyLLM(BillingLLM):
    """Chat served by CustomLLM's default: the messages become one prompt for complete()."""

    chat = CustomLLM.chat  # type: ignore[assignment]

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model, is_chat_model=False)


@pytest.fixture
def handler() -> Any:
    handler = LedgerEventHandler(tenant="acme")
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(handler)
    yield handler
    dispatcher.event_handlers.remove(handler)


def test_event_handler_audit_flags_a_planted_discrepancy(handler: Any) -> None:
    llm = BillingLLM(overbill={2: 300})
    for i in range(4):
        llm.chat([ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="word " * (20 * i))])
    llm.complete("Summarize: " + "text " * 50)
    usages = handler.ledger.usage()
    assert len(usages) == 5 and {u.provider for u in usages} == {"openai"} and usages[0].tenant == "acme"
    assert [u.input_tokens - u.expected_input_tokens for u in usages] == [0, 0, 300, 0, 0]
    (row,) = handler.ledger.audit()
    assert (row.model, row.calls, row.checked, row.flagged) == ("gpt-4o-mini", 5, 5, 1)


def test_chat_served_by_complete_is_recorded_once(handler: Any) -> None:
    CompletionOnlyLLM().chat([ChatMessage(role="user", content="hello there")])
    (usage,) = handler.ledger.usage()
    assert usage.input_tokens == usage.expected_input_tokens  # counted as the prompt complete() sent
