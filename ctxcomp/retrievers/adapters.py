"""Retrieve-then-compress in one call, around any retriever.

``CompressingRetriever(retriever, pipeline)`` accepts a LangChain ``BaseRetriever``, a
LlamaIndex ``BaseRetriever``, the embedded :class:`~ctxcomp.retrievers.HybridRetriever`
(anything with ``retrieve(query) -> list[Chunk | str]``) or a plain callable
``query -> list[Chunk | str]``. The framework is recognised without importing it (a
framework retriever's module is already loaded), so no extra is needed for the others.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import Any, Literal

from ctxcomp.errors import ConfigError, InputError
from ctxcomp.inputs import to_chunk
from ctxcomp.pricing import prompt_costs
from ctxcomp.types import Budget, Chunk, CompressedContext

Kind = Literal["langchain", "llamaindex", "ctxcomp", "callable"]


def retriever_kind(retriever: Any) -> Kind:
    """Which protocol ``retriever`` speaks.

    Raises:
        ConfigError: it is none of the supported kinds.
    """
    lc = sys.modules.get("langchain_core.retrievers")
    if lc is not None and isinstance(retriever, lc.BaseRetriever):
        return "langchain"
    li = sys.modules.get("llama_index.core.base.base_retriever")
    if li is not None and isinstance(retriever, li.BaseRetriever):
        return "llamaindex"
    if callable(getattr(retriever, "retrieve", None)):
        return "ctxcomp"
    if callable(retriever):
        return "callable"
    raise ConfigError(
        f"cannot retrieve with a {type(retriever).__name__}: pass a LangChain or LlamaIndex "
        "retriever, a HybridRetriever, or a callable query -> list of Chunk/str"
    )


def as_chunks(items: Any) -> list[Chunk]:
    """Chunks from what a ctxcomp retriever or callable returned (str gets its index as id)."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InputError(f"a retriever must return a list, got {type(items).__name__}")
    out = [to_chunk(item, i, "retrieved item") for i, item in enumerate(items)]
    return [c for c in out if c.text]


class CompressingRetriever:
    """Retrieve for a query, then compress what came back: one call.

    Args:
        retriever: a LangChain or LlamaIndex retriever, a HybridRetriever, or a callable.
        pipeline: a ctxcomp ``Pipeline`` or compressor.
        budget: the budget; None uses the pipeline's own.
        k: passed to a ctxcomp retriever's ``retrieve(query, k=)`` (framework retrievers
            keep their own setting).

    Example:
        >>> crr = CompressingRetriever(index, Pipeline(["embedding"], Budget(max_tokens=400)))  # doctest: +SKIP
        >>> ctx = crr.retrieve("who founded the observatory?")  # doctest: +SKIP
        >>> ctx.text, ctx.tokens_saved, ctx.cost_saved  # doctest: +SKIP
    """

    def __init__(self, retriever: Any, pipeline: Any, budget: Budget | None = None, *, k: int = 5) -> None:
        self.kind = retriever_kind(retriever)
        if not callable(getattr(pipeline, "compress", None)):
            raise ConfigError("pipeline must be a ctxcomp Pipeline or compressor")
        if budget is None and getattr(pipeline, "budget", None) is None:
            raise ConfigError("no budget: pass budget= or build the Pipeline with one")
        self.retriever = retriever
        self.pipeline = pipeline
        self.budget: Budget = budget or pipeline.budget
        self.k = k

    # -- fetching ------------------------------------------------------------------------
    def fetch(self, query: str) -> list[Chunk]:
        """The retrieved chunks, uncompressed."""
        if self.kind == "langchain":
            from ctxcomp.integrations.langchain import documents_to_chunks

            return documents_to_chunks(self.retriever.invoke(query))
        if self.kind == "llamaindex":
            from ctxcomp.integrations.llamaindex import nodes_to_chunks

            return nodes_to_chunks(self.retriever.retrieve(query))
        if self.kind == "ctxcomp":
            return as_chunks(self.retriever.retrieve(query, k=self.k))
        return as_chunks(self.retriever(query))

    async def afetch(self, query: str) -> list[Chunk]:
        """Async form of :meth:`fetch` (native async for framework retrievers)."""
        if self.kind == "langchain":
            from ctxcomp.integrations.langchain import documents_to_chunks

            return documents_to_chunks(await self.retriever.ainvoke(query))
        if self.kind == "llamaindex":
            from ctxcomp.integrations.llamaindex import nodes_to_chunks

            return nodes_to_chunks(await self.retriever.aretrieve(query))
        aretrieve = getattr(self.retriever, "aretrieve", None)
        if self.kind == "ctxcomp" and aretrieve is not None:
            return as_chunks(await aretrieve(query, k=self.k))
        return await asyncio.to_thread(self.fetch, query)

    # -- retrieve and compress ---------------------------------------------------------
    def retrieve(self, query: str) -> CompressedContext:
        """Retrieve for ``query`` and compress the result to the budget.

        Returns an empty context (0 tokens) when nothing was retrieved.
        """
        chunks = self.fetch(query)
        if not chunks:
            return self._empty()
        return self.pipeline.compress(query, chunks, self.budget)  # type: ignore[no-any-return]

    async def aretrieve(self, query: str) -> CompressedContext:
        """Async form of :meth:`retrieve`."""
        chunks = await self.afetch(query)
        if not chunks:
            return self._empty()
        acompress = getattr(self.pipeline, "acompress", None)
        if acompress is not None:
            return await acompress(query, chunks, self.budget)  # type: ignore[no-any-return]
        return await asyncio.to_thread(self.pipeline.compress, query, chunks, self.budget)

    __call__ = retrieve

    def _empty(self) -> CompressedContext:
        before, after = prompt_costs(self.budget.model, 0, 0)
        return CompressedContext((), "", 0, 0, self.budget.model, before, after)
