"""LlamaIndex components (extra ``llamaindex``): thin adapters over ctxcomp's public API.

* :class:`CtxcompPostprocessor` — a ``BaseNodePostprocessor`` that compresses the
  retrieved nodes for the query and returns **one node per kept node**, each with its own
  metadata and score (unlike LongLLMLinguaPostprocessor, which merges every node's
  metadata into one node). ctxcomp's provenance is added as ``metadata["ctxcomp"]`` and
  excluded from what the LLM and the embedder see. Nodes without text (image nodes, empty
  text) pass through unchanged; nodes none of whose text fits the budget are left out.
* :class:`CompressedHistoryBlock` — a ``BaseMemoryBlock`` that stores the messages
  ``Memory`` ejects from short-term memory and serves them compressed
  (:mod:`ctxcomp.memory.history`: roles kept, tool calls paired with their results).
* :class:`MiniLMEmbedding` — a ``BaseEmbedding`` on the shipped all-MiniLM-L6-v2, so
  ``Settings.embed_model`` never reaches a model hub.
* :class:`CtxcompLlamaRetriever` — the embedded hybrid retriever as a LlamaIndex retriever.
* :class:`LedgerEventHandler` — records the provider's billed usage of every LLM call
  (instrumentation events) in a ctxcomp Ledger, audited against the prompt sent.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any, Literal

from ctxcomp._deps import require

require("llama_index.core", "llamaindex", "the LlamaIndex integration")

from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ToolCallBlock  # noqa: E402
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr  # noqa: E402
from llama_index.core.instrumentation.event_handlers import BaseEventHandler  # noqa: E402
from llama_index.core.instrumentation.events.llm import (  # noqa: E402
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.memory.memory import BaseMemoryBlock  # noqa: E402
from llama_index.core.postprocessor.types import BaseNodePostprocessor  # noqa: E402
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode  # noqa: E402

from ctxcomp.errors import ConfigError, InputError  # noqa: E402
from ctxcomp.integrations import check_component_settings  # noqa: E402
from ctxcomp.memory.history import HistoryConfig, Turn, compress_history, latest_user_text  # noqa: E402
from ctxcomp.models.sentence import DEFAULT_EMBEDDING_MODEL, load_encoder  # noqa: E402
from ctxcomp.reporting.audit import count_prompt_tokens, count_text_tokens  # noqa: E402
from ctxcomp.reporting.ledger import Ledger  # noqa: E402
from ctxcomp.reporting.usage import make_usage, parse_provider_usage  # noqa: E402
from ctxcomp.tokens import ensure_offline_encoding, get_counter  # noqa: E402
from ctxcomp.types import Budget, Chunk, CompressedChunk, CompressedContext  # noqa: E402

METADATA_KEY = "ctxcomp"

# LlamaIndex's default tokenizer (Memory, PromptHelper) is tiktoken's cl100k_base, which
# tiktoken would download: put ctxcomp's offline copy in tiktoken's cache first.
ensure_offline_encoding("cl100k_base")

# -- nodes -------------------------------------------------------------------------------


def node_text(node: Any) -> str:
    """The text of a node as the LLM would get it without metadata ('' if it has none)."""
    try:
        text = node.get_content(metadata_mode=MetadataMode.NONE)
    except (AttributeError, NotImplementedError, ValueError):
        return ""
    return text if isinstance(text, str) else ""


def nodes_to_chunks(nodes: Sequence[NodeWithScore]) -> list[Chunk]:
    """One Chunk per node with text: id = node_id (position if ids repeat), the node's
    metadata by reference, its score."""
    if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Sequence):
        raise InputError("nodes must be a list of NodeWithScore")
    for i, item in enumerate(nodes):
        if not isinstance(item, NodeWithScore):
            raise InputError(f"node {i} is a {type(item).__name__}; expected NodeWithScore")
    ids = [str(n.node.node_id) for n in nodes]
    if len(set(ids)) != len(ids):
        ids = [str(i) for i in range(len(nodes))]
    return [Chunk(text, id=cid, metadata=n.node.metadata, score=finite_score(n.score))
            for cid, n in zip(ids, nodes, strict=True) if (text := node_text(n.node))]


def finite_score(value: object) -> float | None:
    """A retriever's score as a Chunk takes it: a finite number, else None (some stores
    return NaN or a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _provenance(kept: CompressedChunk) -> dict[str, Any]:
    ratio = kept.tokens_in / kept.tokens_out if kept.tokens_out else math.inf
    return {"source_id": kept.source_id, "spans": [list(s) for s in kept.spans],
            "tokens_in": kept.tokens_in, "tokens_out": kept.tokens_out,
            "ratio": ratio if math.isfinite(ratio) else None,
            "kind": kept.kind,
            "generated": None if kept.generated is None else {
                "model": kept.generated.model, "method": kept.generated.method,
                "source_spans": [list(x) for x in kept.generated.source_spans],
                "faithfulness": kept.generated.faithfulness}}


def context_to_nodes(nodes: Sequence[NodeWithScore], chunks: Sequence[Chunk],
                     ctx: CompressedContext) -> list[NodeWithScore]:
    """One node per kept node, input order, own metadata and score; textless nodes pass."""
    by_id = {k.source_id: k for k in ctx.chunks}
    text_chunks = iter(chunks)
    out: list[NodeWithScore] = []
    for item in nodes:
        if not node_text(item.node):
            out.append(item)
            continue
        kept = by_id.get(next(text_chunks).id)
        if kept is None:
            continue
        node = item.node.model_copy()
        node.set_content(kept.text)
        node.metadata = {**item.node.metadata, METADATA_KEY: _provenance(kept)}
        for keys in ("excluded_llm_metadata_keys", "excluded_embed_metadata_keys"):
            setattr(node, keys, [*getattr(item.node, keys), METADATA_KEY])
        out.append(NodeWithScore(node=node, score=item.score))
    return out


class CtxcompPostprocessor(BaseNodePostprocessor):
    """Compress retrieved nodes with a ctxcomp ``Pipeline`` (or compressor) and budget.

    Example:
        >>> post = CtxcompPostprocessor(pipeline=Pipeline(["embedding"], Budget(max_tokens=300)))  # doctest: +SKIP
        >>> engine = RetrieverQueryEngine.from_args(retriever, llm=llm, node_postprocessors=[post])  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Any
    budget: Budget | None = None
    tenant: str | None = None
    _last: CompressedContext | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        check_component_settings(data)
        super().__init__(**data)

    @classmethod
    def class_name(cls) -> str:
        return "CtxcompPostprocessor"

    @property
    def last_context(self) -> CompressedContext | None:
        """The CompressedContext of the latest call (tokens and dollars before/after)."""
        return self._last

    def _args(self, nodes: Sequence[NodeWithScore], query_bundle: QueryBundle | None
              ) -> tuple[str, list[Chunk], Budget, dict[str, Any]]:
        query = query_bundle.query_str if query_bundle is not None else ""
        budget = self.budget or self.pipeline.budget
        kwargs = {"tenant": self.tenant} if self.tenant and hasattr(self.pipeline, "ledger") else {}
        return query, nodes_to_chunks(nodes), budget, kwargs

    def _postprocess_nodes(self, nodes: list[NodeWithScore],
                           query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        query, chunks, budget, kwargs = self._args(nodes, query_bundle)
        if not chunks:
            return list(nodes)
        ctx: CompressedContext = self.pipeline.compress(query, chunks, budget, **kwargs)
        self._last = ctx
        return context_to_nodes(nodes, chunks, ctx)

    async def _apostprocess_nodes(self, nodes: list[NodeWithScore],
                                  query_bundle: QueryBundle | None = None) -> list[NodeWithScore]:
        query, chunks, budget, kwargs = self._args(nodes, query_bundle)
        if not chunks:
            return list(nodes)
        acompress = getattr(self.pipeline, "acompress", None)
        if acompress is not None:
            ctx: CompressedContext = await acompress(query, chunks, budget, **kwargs)
        else:
            ctx = await asyncio.to_thread(self.pipeline.compress, query, chunks, budget)
        self._last = ctx
        return context_to_nodes(nodes, chunks, ctx)


# -- memory ------------------------------------------------------------------------------

_ROLE_OF = {MessageRole.SYSTEM: "system", MessageRole.DEVELOPER: "system", MessageRole.USER: "user",
            MessageRole.ASSISTANT: "assistant", MessageRole.CHATBOT: "assistant",
            MessageRole.MODEL: "assistant", MessageRole.TOOL: "tool", MessageRole.FUNCTION: "tool"}


def chat_message_to_turn(message: ChatMessage, model: str = "gpt-4o-mini") -> Turn:
    """A :class:`Turn` for a LlamaIndex ChatMessage (tool calls counted as payload)."""
    if not isinstance(message, ChatMessage):
        raise InputError(f"expected a llama_index ChatMessage, got {type(message).__name__}")
    text_only = all(isinstance(b, TextBlock) for b in message.blocks)
    text = "".join(b.text for b in message.blocks if isinstance(b, TextBlock))
    calls = [b for b in message.blocks if isinstance(b, ToolCallBlock)]
    legacy = message.additional_kwargs.get("tool_calls") or []
    call_ids = [str(b.tool_call_id) for b in calls if b.tool_call_id]
    call_ids += [str(_get(c, "id")) for c in legacy if _get(c, "id")]
    payload = 0
    if calls or legacy:
        dumped = json.dumps([b.model_dump() for b in calls] + [_dump(c) for c in legacy], default=str)
        payload = get_counter(model).count(dumped)
    call_id = message.additional_kwargs.get("tool_call_id")
    return Turn(_ROLE_OF.get(message.role, "user"), text, tuple(call_ids),  # type: ignore[arg-type]
                str(call_id) if call_id else None, payload, text_only)


def _get(call: Any, key: str) -> Any:
    return call.get(key) if isinstance(call, dict) else getattr(call, key, None)


def _dump(call: Any) -> Any:
    return call if isinstance(call, dict) else getattr(call, "model_dump", lambda: str(call))()


class CompressedHistoryBlock(BaseMemoryBlock[list[ChatMessage]]):
    """Serves older chat history compressed, as chat messages with their roles.

    Add it to ``Memory.from_defaults(memory_blocks=[...])``: messages that overflow the
    short-term token limit are put here; on ``get`` they come back compressed to
    ``max_tokens`` for relevance to the latest user message.

    Attributes:
        max_tokens: limit for the messages this block returns.
        model: target model whose tokenizer counts.
        empty: ``"mark"`` or ``"drop"`` for messages none of whose text survives.
        compressor: a ctxcomp compressor or Pipeline (default: embedding similarity).
    """

    name: str = "compressed_history"
    max_tokens: int = Field(default=800, gt=0)
    model: str = "gpt-4o-mini"
    empty: Literal["mark", "drop"] = "mark"
    compressor: Any = None
    messages: list[ChatMessage] = Field(default_factory=list)

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> list[ChatMessage]:
        if not self.messages:
            return []
        return await asyncio.to_thread(self.compressed, latest_user_text(
            [chat_message_to_turn(m, self.model) for m in messages or []]) or None)

    def compressed(self, query: str | None = None, max_tokens: int | None = None) -> list[ChatMessage]:
        """The stored messages compressed to ``max_tokens`` (default: the block's)."""
        turns = [chat_message_to_turn(m, self.model) for m in self.messages]
        budget = Budget(max_tokens=max_tokens or self.max_tokens, model=self.model)
        report = compress_history(turns, budget, compressor=self.compressor, query=query,
                                  config=HistoryConfig(keep_recent=0, empty=self.empty,
                                                      keep_latest_user=False))
        out = []
        for kept in report.turns:
            original = self.messages[kept.index]
            if kept.verbatim:
                out.append(original)
            else:
                out.append(ChatMessage(role=original.role, content=kept.text,
                                       additional_kwargs=dict(original.additional_kwargs)))
        return out

    async def _aput(self, messages: list[ChatMessage]) -> None:
        self.messages.extend(messages)

    async def atruncate(self, content: list[ChatMessage], tokens_to_truncate: int) -> list[ChatMessage] | None:
        """Compress harder instead of dropping the whole block (the default)."""
        counter = get_counter(self.model)
        current = sum(counter.count(m.content or "") for m in content)
        target = current - tokens_to_truncate
        if target <= 0:
            return None
        return await asyncio.to_thread(self.compressed, None, target)


# -- usage -------------------------------------------------------------------------------

_open_chats: ContextVar[tuple[list[Any], ...]] = ContextVar("ctxcomp_open_llm_chats", default=())


def _openai_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]] | None:
    """The messages as OpenAI-format dicts for counting; None if one is not plain text."""
    out = []
    for message in messages:
        if any(not isinstance(block, TextBlock) for block in message.blocks):
            return None
        if message.additional_kwargs.get("tool_calls") or message.role == MessageRole.TOOL:
            return None
        out.append({"role": message.role.value, "content": message.content or ""})
    return out


class LedgerEventHandler(BaseEventHandler):
    """Records each LLM call's billed usage into a :class:`~ctxcomp.reporting.ledger.Ledger`
    and audits it, through LlamaIndex's instrumentation (``LLMChatStartEvent`` ... ``EndEvent``):
    the prompt sent is counted when the call starts, the provider's usage (from the
    response's ``raw`` or ``additional_kwargs``) is read when it ends. A chat that a
    completion-only LLM serves by a nested ``complete`` is recorded once, for the prompt
    actually sent.

    Args:
        ledger: where records go (a new Ledger if None).
        tenant: the tenant the calls are recorded for.

    Example:
        >>> from llama_index.core.instrumentation import get_dispatcher  # doctest: +SKIP
        >>> get_dispatcher().add_event_handler(LedgerEventHandler(ledger=pipe.ledger))  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    ledger: Any = Field(default=None, exclude=True)
    tenant: str = "default"
    _starts: dict[str, tuple[str, str, tuple[int, bool] | None]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any) -> None:
        if self.ledger is None:
            self.ledger = Ledger()

    @classmethod
    def class_name(cls) -> str:
        return "CtxcompLedgerEventHandler"

    @staticmethod
    def _model(model_dict: dict[str, Any]) -> tuple[str, str]:
        provider = str(model_dict.get("class_name") or "").removesuffix("_llm")
        return str(model_dict.get("model_name") or model_dict.get("model") or "unknown"), provider

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, LLMChatStartEvent):
            model, provider = self._model(event.model_dict)
            messages = _openai_messages(event.messages)
            sent = count_prompt_tokens(messages, model) if messages is not None else None
            self._starts[str(event.span_id)] = (model, provider, sent)
            _open_chats.set((*_open_chats.get(), [False]))
        elif isinstance(event, LLMCompletionStartEvent):
            model, provider = self._model(event.model_dict)
            self._starts[str(event.span_id)] = (model, provider, count_text_tokens(event.prompt, model))
        elif isinstance(event, LLMCompletionEndEvent):
            self._end(str(event.span_id), event.response)
            if _open_chats.get():
                _open_chats.get()[-1][0] = True  # the enclosing chat is accounted by this call
        elif isinstance(event, LLMChatEndEvent):
            stack = _open_chats.get()
            covered = bool(stack) and stack[-1][0]
            _open_chats.set(stack[:-1])
            if covered:
                self._starts.pop(str(event.span_id), None)
            else:
                self._end(str(event.span_id), event.response)

    def _end(self, span_id: str, response: Any) -> None:
        model, provider, sent = self._starts.pop(span_id, ("unknown", "", None))
        if response is None:
            return
        usage = parse_provider_usage(response.raw, response.additional_kwargs)
        if usage is None:
            return  # the provider reported nothing to record
        reported = _get(response.raw, "model") if response.raw is not None else None
        self.ledger.record_usage(make_usage(
            str(reported or model), usage[0], usage[1], usage[2], span_id, self.tenant, provider=provider,
            expected_input_tokens=sent[0] if sent else None, expected_approximate=bool(sent and sent[1])))


# -- embeddings and retriever -----------------------------------------------------------


class MiniLMEmbedding(BaseEmbedding):
    """LlamaIndex embeddings from a sentence-transformers model (default: the shipped
    all-MiniLM-L6-v2), loaded once per process; no model hub needed."""

    model_name: str = DEFAULT_EMBEDDING_MODEL
    device: str | None = None

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def _encode(self, texts: list[str]) -> list[list[float]]:
        model = load_encoder(self.model_name, self.device).model
        vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        return [v.tolist() for v in vectors]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encode([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return (await asyncio.to_thread(self._encode, [query]))[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encode(list(texts))


class CtxcompLlamaRetriever(BaseRetriever):
    """The embedded :class:`~ctxcomp.retrievers.HybridRetriever` as a LlamaIndex retriever."""

    def __init__(self, index: Any, k: int = 5, **kwargs: Any) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be an int >= 1, got {k!r}")
        self.index = index
        self.k = k
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(c) for c in self.index.retrieve(query_bundle.query_str, k=self.k)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [_node(c) for c in await self.index.aretrieve(query_bundle.query_str, k=self.k)]


def _node(chunk: Chunk) -> NodeWithScore:
    meta = dict(chunk.metadata)
    excluded = [k for k in meta if k != "source"]
    node = TextNode(id_=chunk.id, text=chunk.text, metadata=meta,
                    excluded_llm_metadata_keys=excluded, excluded_embed_metadata_keys=excluded)
    return NodeWithScore(node=node, score=chunk.score)
