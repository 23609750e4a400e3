"""The base class every built-in compressor extends.

A compressor (:class:`ctxcomp.protocols.Compressor`) is anything with a ``name`` and
``compress(query, chunks, budget) -> CompressedContext``. :class:`BaseCompressor` adds
input validation, the no-op when the input already fits, exact token accounting, costs,
lazy ``setup()`` of weights (once, thread-safe), ``acompress`` via a worker thread and a
batch form. Subclasses implement one hook, :meth:`BaseCompressor._propose`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ctxcomp.assembly import Assembly, Quotas, assemble, make_context, whole_units
from ctxcomp.errors import InputError
from ctxcomp.inputs import ChunkLike, check_query, coerce_chunks, input_tokens
from ctxcomp.tokens import TokenCounter, get_counter
from ctxcomp.types import Budget, Chunk, CompressedContext, StageReport

log = logging.getLogger(__name__)


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
        self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter,
        quotas: Quotas = None,
    ) -> Assembly:
        """Choose what to keep of ``chunks`` within ``limit`` tokens (input exceeds it).

        ``quotas`` (one entry per chunk, None for no cap) are per-chunk token caps from
        the budget; :func:`~ctxcomp.assembly.select_units` honours them. A subclass whose
        ``_propose`` takes no ``quotas`` argument still works: it ignores them, and its
        output still meets ``limit``.
        """

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
        quotas = chunk_quotas(items, budget, counter)
        if tokens_in <= limit and quotas is None:
            assembly = assemble(items, whole_units(items), counter)
        else:
            self.setup()
            assembly = self._call_propose(query, items, limit, counter, quotas)
        report = StageReport(self.name, tokens_in, assembly.tokens, time.perf_counter() - started, limit=limit,
                             llm_tokens_in=assembly.llm_tokens_in, llm_tokens_out=assembly.llm_tokens_out,
                             llm_cost=assembly.llm_cost, note=assembly.note)
        return make_context(items, assembly, tokens_in, budget, limit, counter, (report,))

    def _call_propose(
        self, query: str, items: Sequence[Chunk], limit: int, counter: TokenCounter, quotas: Quotas
    ) -> Assembly:
        if quotas is not None and _takes_quotas(type(self)):
            return self._propose(query, items, limit, counter, quotas=quotas)
        return self._propose(query, items, limit, counter)

    async def acompress(
        self, query: str, chunks: Sequence[ChunkLike], budget: Budget
    ) -> CompressedContext:
        """Async form of :meth:`compress` (runs in a worker thread)."""
        return await asyncio.to_thread(self.compress, query, chunks, budget)

    def compress_batch(
        self, requests: Sequence[tuple[str, Sequence[ChunkLike]]], budget: Budget | Sequence[Budget]
    ) -> list[CompressedContext]:
        """Compress several (query, chunks) pairs under one budget or one each;
        subclasses may batch model calls."""
        return [self.compress(q, c, b) for (q, c), b in zip(requests, per_request(budget, len(requests)), strict=True)]


def per_request(budget: Budget | Sequence[Budget], n: int) -> list[Budget]:
    """One budget per request from a shared budget or a list of them.

    Raises:
        InputError: a list of the wrong length, or something that is not a Budget.
    """
    budgets = [budget] * n if isinstance(budget, Budget) else list(budget)
    if len(budgets) != n:
        raise InputError(f"got {len(budgets)} budgets for {n} requests; give one, or one per request")
    for b in budgets:
        if not isinstance(b, Budget):
            raise InputError(f"budget must be a Budget, got {type(b).__name__}")
    return budgets


def chunk_quotas(items: Sequence[Chunk], budget: Budget, counter: TokenCounter) -> Quotas:
    """Per-chunk caps (by chunk index) from ``budget.quotas``; None when no chunk of
    ``items`` has a cap it exceeds (then quotas cannot change the result)."""
    if not budget.quotas:
        return None
    caps = [budget.quota(c.id) for c in items]
    binding = [q is not None and counter.count(c.text) > q for c, q in zip(items, caps, strict=True)]
    return caps if any(binding) else None


@functools.cache
def _takes_quotas(cls: type[BaseCompressor]) -> bool:
    return "quotas" in inspect.signature(cls._propose).parameters

