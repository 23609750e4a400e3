"""The compressor protocol and the base class every built-in compressor extends.

A compressor is anything with a ``name`` and
``compress(query, chunks, budget) -> CompressedContext``. :class:`BaseCompressor` adds
input validation, the no-op when the input already fits, exact token accounting, costs,
lazy ``setup()`` of weights (once, thread-safe), ``acompress`` via a worker thread and a
batch form. Subclasses implement one hook, :meth:`BaseCompressor._propose`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from ctxcomp.compressors.selection import Assembly, Unit, assemble
from ctxcomp.errors import InputError, UnknownModelError
from ctxcomp.pricing import cost
from ctxcomp.tokens import TokenCounter, get_counter
from ctxcomp.types import CHUNK_SEPARATOR, Budget, Chunk, CompressedContext, StageReport

log = logging.getLogger(__name__)


@runtime_checkable
class Compressor(Protocol):
    """What a pipeline stage must provide."""

    name: str

    def compress(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> CompressedContext: ...


ChunkLike = Chunk | str


def to_chunk(item: object, index: int, label: str = "chunk") -> Chunk:
    """``item`` as a Chunk: a Chunk as is, a string with its ``index`` as id.

    Raises:
        InputError: ``item`` is neither (the message names it as ``label index``).
    """
    if isinstance(item, Chunk):
        return item
    if isinstance(item, str):
        return Chunk(item, id=str(index))
    raise InputError(f"{label} {index} is a {type(item).__name__}; expected Chunk or str")


def coerce_chunks(chunks: Sequence[ChunkLike]) -> list[Chunk]:
    """Validate chunks; plain strings become Chunks with their index as id.

    Raises:
        InputError: no chunks, an item that is neither Chunk nor str, or a repeated id.
    """
    if isinstance(chunks, (str, bytes)) or not isinstance(chunks, Sequence):
        raise InputError("chunks must be a list of Chunk or str")
    if not chunks:
        raise InputError("no chunks to compress: pass at least one Chunk or string")
    out = [to_chunk(item, i) for i, item in enumerate(chunks)]
    seen: set[str] = set()
    for chunk in out:
        if chunk.id in seen:
            raise InputError(f"chunk id {chunk.id!r} appears twice; ids must be unique")
        seen.add(chunk.id)
    return out


def check_query(query: object, required: bool) -> str:
    """Validate the query; an empty one is an error when the compressor needs it."""
    if not isinstance(query, str):
        raise InputError(f"query must be a str, got {type(query).__name__}")
    if required and not query.strip():
        raise InputError("the query is empty; this compressor ranks text by relevance to the query")
    return query


_unpriced: set[str] = set()


def prompt_costs(model: str, tokens_in: int, tokens_out: int) -> tuple[float | None, float | None]:
    """USD of sending tokens_in and tokens_out prompt tokens; (None, None) with no known price."""
    try:
        return cost(model, tokens_in), cost(model, tokens_out)
    except UnknownModelError:
        if model not in _unpriced:
            _unpriced.add(model)
            log.warning("no price known for model %r; costs are reported as None", model)
        return None, None


def make_context(
    chunks: Sequence[Chunk],
    assembly: Assembly,
    tokens_in: int,
    budget: Budget,
    limit: int,
    counter: TokenCounter,
    stages: tuple[StageReport, ...] = (),
) -> CompressedContext:
    before, after = prompt_costs(budget.model, tokens_in, assembly.tokens)
    return CompressedContext(
        chunks=assembly.chunks,
        text=assembly.text,
        tokens_in=tokens_in,
        tokens_out=assembly.tokens,
        model=budget.model,
        cost_before=before,
        cost_after=after,
        stages=stages,
        budget_tokens=limit,
        tokens_approximate=counter.approximate,
    )


def whole_units(chunks: Sequence[Chunk]) -> list[Unit]:
    """One unit per non-empty chunk covering all of its text."""
    return [Unit(i, (0, len(c.text))) for i, c in enumerate(chunks) if c.text]


def input_tokens(chunks: Sequence[Chunk], counter: TokenCounter) -> int:
    text = CHUNK_SEPARATOR.join(c.text for c in chunks if c.text)
    return counter.count(text) if text else 0


@dataclass(frozen=True)
class ModelRevision:
    """Identifies the weights a compressor used (for cache keys and reports)."""

    name: str
    revision: str


class BaseCompressor(ABC):
    """Shared machinery; subclasses implement :meth:`_propose` (and maybe :meth:`_setup`).

    Class attributes:
        name: the registry name.
        requires_query: whether an empty query is an error.
    """

    name: ClassVar[str] = "base"
    requires_query: ClassVar[bool] = True

    def __init__(self) -> None:
        self._setup_lock = threading.Lock()
        self._ready = False

    # -- hooks -------------------------------------------------------------------------
    @abstractmethod
    def _propose(
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter
    ) -> Assembly:
        """Choose what to keep of ``chunks`` within ``limit`` tokens (input exceeds it)."""

    def _setup(self) -> None:  # noqa: B027  (optional hook, not abstract)
        """Load weights; called once, on first use."""

    def config(self) -> dict[str, Any]:
        """Settings that change the output (for digests and cache keys)."""
        return {}

    def model_revisions(self) -> list[ModelRevision]:
        """The weights this compressor depends on."""
        return []

    # -- public API ----------------------------------------------------------------------
    def setup(self) -> None:
        """Load what the compressor needs now rather than on the first call."""
        if self._ready:
            return
        with self._setup_lock:
            if not self._ready:
                self._setup()
                self._ready = True

    def config_digest(self) -> str:
        payload = {"name": self.name, "config": self.config()}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def compress(
        self, query: str, chunks: Sequence[ChunkLike], budget: Budget
    ) -> CompressedContext:
        """Compress ``chunks`` for ``query`` to fit ``budget``.

        Returns the input unchanged (every chunk whole) when it already fits: a
        documented no-op. Otherwise the output has at most the budget's token limit,
        kept text in original order, and exact source spans.

        Raises:
            InputError: empty query (for query-aware compressors), no chunks, bad chunks.
            BudgetError: an invalid budget (raised when the Budget is built).
        """
        query = check_query(query, self.requires_query)
        items = coerce_chunks(chunks)
        if not isinstance(budget, Budget):
            raise InputError(f"budget must be a Budget, got {type(budget).__name__}")
        counter = get_counter(budget.model)
        started = time.perf_counter()
        tokens_in = input_tokens(items, counter)
        limit = budget.limit(tokens_in)
        if tokens_in <= limit:
            assembly = assemble(items, whole_units(items), counter)
        else:
            self.setup()
            assembly = self._propose(query, items, limit, counter)
        report = StageReport(self.name, tokens_in, assembly.tokens, time.perf_counter() - started)
        return make_context(items, assembly, tokens_in, budget, limit, counter, (report,))

    async def acompress(
        self, query: str, chunks: Sequence[ChunkLike], budget: Budget
    ) -> CompressedContext:
        """Async form of :meth:`compress` (runs in a worker thread)."""
        return await asyncio.to_thread(self.compress, query, chunks, budget)

    def compress_batch(
        self, requests: Sequence[tuple[str, Sequence[ChunkLike]]], budget: Budget
    ) -> list[CompressedContext]:
        """Compress several (query, chunks) pairs; subclasses may batch model calls."""
        return [self.compress(q, c, budget) for q, c in requests]

