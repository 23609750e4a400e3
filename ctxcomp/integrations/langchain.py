"""LangChain components (extra ``langchain``): thin adapters over ctxcomp's public API.

* :class:`CtxcompCompressor` — a ``BaseDocumentCompressor`` for
  ``ContextualCompressionRetriever`` and ``DocumentCompressorPipeline``.
* :func:`compress_messages` — a ``trim_messages``-style function (or Runnable) that
  compresses chat history with :mod:`ctxcomp.memory.history`.
* :class:`CompressHistoryMiddleware` / :class:`CompactHistoryMiddleware` — LangChain 1.x
  agent middleware (``wrap_model_call`` per call / ``before_model`` rewriting state).
* :class:`LedgerCallbackHandler` — records the provider's real usage (UsageMetadata).
* :class:`CtxcompRetriever` — the embedded hybrid retriever as a LangChain ``BaseRetriever``.

Documents: each Document becomes a :class:`ctxcomp.Chunk` (its ``id``, or its position
when it has none or ids repeat); the output Document keeps the input's ``id`` and every
metadata value *as the same object* (non-string values included; nothing is serialized)
and adds ``metadata["ctxcomp"]`` = ``{"source_id", "spans", "tokens_in", "tokens_out",
"ratio", "score"}`` (an existing ``"ctxcomp"`` key is replaced). A Document whose
``page_content`` is empty has nothing to compress: it passes through unchanged, in place.
Documents none of whose text fits the budget are left out, as LangChain's filters do.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal

from ctxcomp._deps import require

require("langchain_core", "langchain", "the LangChain integration")
require("langchain", "langchain", "the LangChain agent middleware")

from langchain.agents.middleware import AgentMiddleware  # noqa: E402
from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManager,
    BaseCallbackHandler,
    CallbackManager,
    CallbackManagerForRetrieverRun,
    Callbacks,
)
from langchain_core.documents import BaseDocumentCompressor, Document  # noqa: E402
from langchain_core.messages import (  # noqa: E402
    AIMessage,
    BaseMessage,
    ChatMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.outputs import ChatGeneration, LLMResult  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402
from pydantic import ConfigDict, Field, PrivateAttr  # noqa: E402

from ctxcomp.errors import InputError  # noqa: E402
from ctxcomp.integrations import check_component_settings  # noqa: E402
from ctxcomp.memory.history import HistoryCompression, HistoryConfig, Turn, compress_history  # noqa: E402
from ctxcomp.reporting.audit import count_prompt_tokens, count_text_tokens  # noqa: E402
from ctxcomp.reporting.ledger import Ledger  # noqa: E402
from ctxcomp.reporting.usage import make_usage  # noqa: E402
from ctxcomp.tokens import get_counter  # noqa: E402
from ctxcomp.types import Budget, Chunk, CompressedChunk, CompressedContext  # noqa: E402

METADATA_KEY = "ctxcomp"

# -- documents ---------------------------------------------------------------------------


def documents_to_chunks(documents: Sequence[Document]) -> list[Chunk]:
    """One Chunk per Document with text (metadata carried by reference, ids unique)."""
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise InputError("documents must be a list of langchain Document")
    ids: list[str] = []
    for i, doc in enumerate(documents):
        if not isinstance(doc, Document):
            raise InputError(f"document {i} is a {type(doc).__name__}; expected a langchain Document")
        if not isinstance(doc.page_content, str):
            raise InputError(f"document {i}: page_content must be a str")
        ids.append(str(doc.id) if doc.id else str(i))
    if len(set(ids)) != len(ids):
        ids = [str(i) for i in range(len(documents))]
    return [Chunk(d.page_content, id=cid, metadata=d.metadata, score=_score(d))
            for cid, d in zip(ids, documents, strict=True) if d.page_content]


def _score(doc: Document) -> float | None:
    value = doc.metadata.get("relevance_score", doc.metadata.get("score"))
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None  # NaN or a string from a vector store: no score
    return float(value)


def provenance(kept: CompressedChunk) -> dict[str, Any]:
    """ctxcomp's per-chunk record, JSON-ready (spans as lists)."""
    ratio = kept.tokens_in / kept.tokens_out if kept.tokens_out else math.inf
    return {"source_id": kept.source_id, "spans": [list(s) for s in kept.spans],
            "tokens_in": kept.tokens_in, "tokens_out": kept.tokens_out,
            "ratio": ratio if math.isfinite(ratio) else None, "score": kept.score,
            "kind": kept.kind,
            "generated": None if kept.generated is None else {
                "model": kept.generated.model, "method": kept.generated.method,
                "source_spans": [list(x) for x in kept.generated.source_spans],
                "faithfulness": kept.generated.faithfulness}}


def context_to_documents(documents: Sequence[Document], chunks: Sequence[Chunk],
                         ctx: CompressedContext) -> list[Document]:
    """The kept Documents, in input order; empty ones pass through unchanged."""
    by_id = {k.source_id: k for k in ctx.chunks}
    out: list[Document] = []
    text_docs = iter(chunks)
    for doc in documents:
        if not doc.page_content:
            out.append(doc)
            continue
        kept = by_id.get(next(text_docs).id)
        if kept is None:
            continue
        metadata = {**doc.metadata, METADATA_KEY: provenance(kept)}
        out.append(Document(page_content=kept.text, metadata=metadata, id=doc.id))
    return out


class CtxcompCompressor(BaseDocumentCompressor):
    """A LangChain document compressor backed by a ctxcomp :class:`~ctxcomp.Pipeline`.

    Args:
        pipeline: a ``Pipeline`` or any ctxcomp compressor (``compress(query, chunks, budget)``).
        budget: the budget; None uses the pipeline's own.
        tenant: ledger/cache tenant passed to a Pipeline.

    Example:
        >>> from langchain_classic.retrievers import ContextualCompressionRetriever
        >>> comp = CtxcompCompressor(pipeline=Pipeline(["embedding"], Budget(max_tokens=300)))  # doctest: +SKIP
        >>> retriever = ContextualCompressionRetriever(base_compressor=comp, base_retriever=base)  # doctest: +SKIP
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Any
    budget: Budget | None = None
    tenant: str | None = None
    _last: CompressedContext | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        check_component_settings(data)
        super().__init__(**data)

    @property
    def last_context(self) -> CompressedContext | None:
        """The CompressedContext of the latest call (tokens and dollars before/after)."""
        return self._last

    def _kwargs(self) -> dict[str, Any]:
        return {"tenant": self.tenant} if self.tenant and hasattr(self.pipeline, "ledger") else {}

    def _budget(self) -> Budget:
        budget = self.budget or self.pipeline.budget
        assert budget is not None  # checked in model_post_init
        return budget

    def compress_documents(self, documents: Sequence[Document], query: str,
                           callbacks: Callbacks | None = None) -> Sequence[Document]:
        """Compress ``documents`` for ``query``; callbacks see a chain run with the counts."""
        chunks = documents_to_chunks(documents)
        manager = CallbackManager.configure(inheritable_callbacks=callbacks)
        run = manager.on_chain_start(None, {"query": query, "documents": len(documents)},
                                     name=type(self).__name__)
        try:
            ctx = self._run_sync(query, chunks)
        except Exception as exc:
            run.on_chain_error(exc)
            raise
        run.on_chain_end(_summary(ctx))
        return context_to_documents(documents, chunks, ctx) if ctx is not None else list(documents)

    async def acompress_documents(self, documents: Sequence[Document], query: str,
                                  callbacks: Callbacks | None = None) -> Sequence[Document]:
        """Async twin of :meth:`compress_documents` (awaits ``pipeline.acompress``)."""
        chunks = documents_to_chunks(documents)
        manager = AsyncCallbackManager.configure(inheritable_callbacks=callbacks)
        run = await manager.on_chain_start(None, {"query": query, "documents": len(documents)},
                                           name=type(self).__name__)
        try:
            ctx = None
            if chunks:
                acompress = getattr(self.pipeline, "acompress", None)
                if acompress is not None:
                    ctx = await acompress(query, chunks, self._budget(), **self._kwargs())
                else:
                    ctx = await asyncio.to_thread(self._run_sync, query, chunks)
                self._last = ctx
        except Exception as exc:
            await run.on_chain_error(exc)
            raise
        await run.on_chain_end(_summary(ctx))
        return context_to_documents(documents, chunks, ctx) if ctx is not None else list(documents)

    def _run_sync(self, query: str, chunks: list[Chunk]) -> CompressedContext | None:
        if not chunks:
            return None
        ctx: CompressedContext = self.pipeline.compress(query, chunks, self._budget(), **self._kwargs())
        self._last = ctx
        return ctx


def _summary(ctx: CompressedContext | None) -> dict[str, Any]:
    if ctx is None:
        return {"tokens_in": 0, "tokens_out": 0}
    return {"tokens_in": ctx.tokens_in, "tokens_out": ctx.tokens_out, "model": ctx.model,
            "cost_before": ctx.cost_before, "cost_after": ctx.cost_after}


# -- chat history --------------------------------------------------------------------------

_ROLE_OF = {"system": "system", "human": "user", "user": "user", "ai": "assistant",
            "assistant": "assistant", "tool": "tool", "developer": "system"}


def message_to_turn(message: BaseMessage, model: str = "gpt-4o-mini") -> Turn:
    """A :class:`Turn` for a LangChain message (tool calls counted as payload)."""
    if isinstance(message, RemoveMessage):
        raise InputError("a RemoveMessage is a state instruction, not a chat turn")
    kind = message.role if isinstance(message, ChatMessage) else message.type
    role = _ROLE_OF.get(kind)
    if role is None:
        raise InputError(f"unsupported message type {kind!r}: expected system, human, ai or tool")
    compressible = isinstance(message.content, str)
    text = message.content if compressible else message.text
    call_ids: tuple[str, ...] = ()
    payload = 0
    if isinstance(message, AIMessage) and (message.tool_calls or message.invalid_tool_calls):
        calls = [*message.tool_calls, *message.invalid_tool_calls]
        call_ids = tuple(str(c.get("id")) for c in calls if c.get("id"))
        payload = get_counter(model).count(json.dumps(calls, default=str))
    call_id = message.tool_call_id if isinstance(message, ToolMessage) else None
    return Turn(role, text, call_ids, call_id, payload, compressible)  # type: ignore[arg-type]


def compress_chat(messages: Sequence[Any], budget: Budget | int, *, compressor: Any = None,
                  query: str | None = None, config: HistoryConfig | None = None
                  ) -> tuple[list[BaseMessage], HistoryCompression]:
    """Compressed messages and the report (see :func:`ctxcomp.memory.history.compress_history`)."""
    try:
        msgs = convert_to_messages(messages)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise InputError(f"cannot read the chat messages: {exc}") from exc
    model = budget.model if isinstance(budget, Budget) else "gpt-4o-mini"
    turns = [message_to_turn(m, model) for m in msgs]
    report = compress_history(turns, budget, compressor=compressor, query=query, config=config)
    out: list[BaseMessage] = []
    for kept in report.turns:
        original = msgs[kept.index]
        out.append(original if kept.verbatim else original.model_copy(update={"content": kept.text}))
    return out, report


def _compress_messages(messages: Sequence[Any], *, max_tokens: int, model: str = "gpt-4o-mini",
                       keep_recent: int = 4, empty: Literal["mark", "drop"] = "mark",
                       compressor: Any = None, query: str | None = None) -> list[BaseMessage]:
    config = HistoryConfig(keep_recent=keep_recent, empty=empty)
    return compress_chat(messages, Budget(max_tokens=max_tokens, model=model),
                         compressor=compressor, query=query, config=config)[0]


def compress_messages(messages: Sequence[Any] | None = None, **kwargs: Any) -> Any:
    """``trim_messages``-style: compress chat history instead of cutting it.

    Called with messages, returns the compressed list; called without, returns a
    ``Runnable`` (``compress_messages(max_tokens=500) | model``), like ``trim_messages``.

    Args:
        messages: message-likes (messages, ``(role, text)`` tuples, dicts).
        max_tokens: the limit for the whole history, counted for ``model``.
        model: target model whose tokenizer counts (default gpt-4o-mini).
        keep_recent: latest turns kept verbatim; system and the latest user turn always are.
        empty: ``"mark"`` or ``"drop"`` for older turns that lost all their text.
        compressor: a ctxcomp compressor or Pipeline (default: embedding similarity).
        query: what older turns are ranked against (default: the latest user message).
    """
    if messages is not None:
        return _compress_messages(messages, **kwargs)
    return RunnableLambda(partial(_compress_messages, **kwargs), name="compress_messages")


class _HistoryMiddleware(AgentMiddleware):
    """Shared settings of the two history middlewares."""

    def __init__(self, max_tokens: int, *, model: str = "gpt-4o-mini", keep_recent: int = 4,
                 empty: Literal["mark", "drop"] = "mark", compressor: Any = None,
                 ledger: Ledger | None = None) -> None:
        super().__init__()
        self.budget = Budget(max_tokens=max_tokens, model=model)
        self.config = HistoryConfig(keep_recent=keep_recent, empty=empty)
        self.compressor = compressor
        self.ledger = ledger if ledger is not None else Ledger()
        self.tools = []

    def _compress(self, system: SystemMessage | None, messages: Sequence[BaseMessage]
                  ) -> tuple[list[BaseMessage], HistoryCompression]:
        head = [system] if system is not None else []
        out, report = compress_chat([*head, *messages], self.budget, compressor=self.compressor,
                                    config=self.config)
        if report.tokens_out < report.tokens_in:
            self.ledger.record(report.to_context())
        return out[len(head):], report


class CompressHistoryMiddleware(_HistoryMiddleware):
    """Compress the history sent on each model call (``wrap_model_call``); the agent's
    state keeps the full history. The system message counts toward ``max_tokens``.

    Example:
        >>> agent = create_agent(model, tools, middleware=[CompressHistoryMiddleware(2000)])  # doctest: +SKIP
    """

    def wrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        messages, _ = self._compress(request.system_message, request.messages)
        return handler(request.override(messages=messages))

    async def awrap_model_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        messages, _ = await asyncio.to_thread(self._compress, request.system_message, request.messages)
        return await handler(request.override(messages=messages))


class CompactHistoryMiddleware(_HistoryMiddleware):
    """Compress the agent's stored history before each model call (``before_model``):
    the state is rewritten, so later turns build on the compressed history."""

    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        from langgraph.graph.message import REMOVE_ALL_MESSAGES

        messages = state["messages"]
        out, report = self._compress(None, messages)
        if report.tokens_out >= report.tokens_in:
            return None
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *out]}

    async def abefore_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.before_model, state, runtime)


# -- usage ---------------------------------------------------------------------------------


class LedgerCallbackHandler(BaseCallbackHandler):
    """Records each LLM call's real usage (``AIMessage.usage_metadata``, else
    ``llm_output["token_usage"]``) into a :class:`~ctxcomp.reporting.ledger.Ledger`
    (``ledger.usage()``, ``ledger.usage_totals()``), beside its compressions, and audits it:
    when the call starts, the prompt is counted with the model's tokenizer
    (:func:`ctxcomp.reporting.audit.count_prompt_tokens`), and the ledger flags a billed
    input count that differs (``ledger.audit()``, ``ctxcomp report``). Prompts with tools
    or non-text parts are recorded unaudited.

    Args:
        ledger: where records go (a new Ledger if None); pass the pipeline's ledger to
            see compressions and billed usage together.
        default_model: the model name used when the provider reports none.
        tenant: the tenant the calls are recorded for.
    """

    def __init__(self, ledger: Ledger | None = None, default_model: str = "unknown",
                 tenant: str = "default") -> None:
        super().__init__()
        self.ledger = ledger if ledger is not None else Ledger()
        self.default_model = default_model
        self.tenant = tenant
        # run id -> (model, provider, ctxcomp's count of each prompt of the batch)
        self._runs: dict[Any, tuple[str | None, str, list[tuple[int, bool] | None]]] = {}

    @staticmethod
    def _model(kwargs: dict[str, Any]) -> tuple[str | None, str]:
        params = kwargs.get("invocation_params") or {}
        meta = kwargs.get("metadata") or {}
        name = params.get("model_name") or params.get("model") or meta.get("ls_model_name")
        return (str(name) if name else None), str(meta.get("ls_provider") or "")

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *,
                            run_id: Any, **kwargs: Any) -> None:
        from langchain_core.messages import convert_to_openai_messages

        model, provider = self._model(kwargs)
        params = kwargs.get("invocation_params") or {}
        counts: list[tuple[int, bool] | None] = []
        for prompt in messages:
            if model is None or params.get("tools") or params.get("functions"):
                counts.append(None)  # tool schemas are billed in a provider-specific way
            else:
                counts.append(count_prompt_tokens(convert_to_openai_messages(prompt), model))
        self._runs[run_id] = (model, provider, counts)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: Any,
                     **kwargs: Any) -> None:
        model, provider = self._model(kwargs)
        counts = [count_text_tokens(p, model) if model else None for p in prompts]
        self._runs[run_id] = (model, provider, counts)  # type: ignore[assignment]

    def on_llm_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        self._runs.pop(run_id, None)

    def _record(self, name: str, provider: str, input_tokens: int, output_tokens: int, cached: int,
                run_id: Any, sent: tuple[int, bool] | None) -> None:
        self.ledger.record_usage(make_usage(
            name, input_tokens, output_tokens, cached, str(run_id), self.tenant, provider=provider,
            expected_input_tokens=sent[0] if sent else None, expected_approximate=bool(sent and sent[1])))

    def on_llm_end(self, response: LLMResult, *, run_id: Any, **kwargs: Any) -> None:
        invoked, provider, counts = self._runs.pop(run_id, (None, "", []))
        model = invoked or self.default_model
        llm_output = response.llm_output or {}
        found = False
        for index, generations in enumerate(response.generations):
            sent = counts[index] if index < len(counts) else None
            for generation in generations[:1]:  # candidates of one prompt share its usage
                message = generation.message if isinstance(generation, ChatGeneration) else None
                usage = getattr(message, "usage_metadata", None)
                if usage:
                    name = (message.response_metadata or {}).get("model_name") or model  # type: ignore[union-attr]
                    cached = (usage.get("input_token_details") or {}).get("cache_read", 0) or 0
                    self._record(str(name), provider, int(usage["input_tokens"]), int(usage["output_tokens"]),
                                 int(cached), run_id, sent)
                    found = True
        token_usage = llm_output.get("token_usage") or llm_output.get("usage")
        if not found and isinstance(token_usage, dict) and "prompt_tokens" in token_usage:
            name = llm_output.get("model_name") or model
            # one usage for the whole batch: audit it against the sum of the prompts
            sent = None if not counts or None in counts else (sum(c[0] for c in counts if c),
                                                               any(c[1] for c in counts if c))
            self._record(str(name), provider, int(token_usage["prompt_tokens"]),
                         int(token_usage.get("completion_tokens", 0)), 0, run_id, sent)


# -- retriever -----------------------------------------------------------------------------


class CtxcompRetriever(BaseRetriever):
    """The embedded hybrid retriever (:class:`ctxcomp.retrievers.HybridRetriever`) as a
    LangChain retriever: ``CtxcompRetriever(index=HybridRetriever.from_folder("docs"))``.

    Documents carry the chunk's metadata plus ``id`` and the fused ``score``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = Field(default=5, ge=1)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                **kwargs: Any) -> list[Document]:
        chunks = self.index.retrieve(query, k=kwargs.get("k", self.k))
        return [Document(page_content=c.text, id=c.id, metadata={**c.metadata, "score": c.score})
                for c in chunks]
