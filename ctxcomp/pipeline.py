"""Pipeline: cache → stages (coarse to fine) → assemble → ledger.

Stages are compressors given by name (resolved through the registry), by ``{"name": ...,
**settings}`` dicts, or as instances. Each stage sees the previous stage's kept text;
spans are composed back to the original chunks, so the result's provenance always points
into the caller's text. The final output is re-assembled from the original text and
re-counted, and it always meets the budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ctxcomp import registry
from ctxcomp.assembly import Unit, assemble, make_context, select_units, whole_units
from ctxcomp.errors import ConfigError, InputError
from ctxcomp.inputs import ChunkLike, check_query, coerce_chunks, input_tokens
from ctxcomp.protocols import Compressor
from ctxcomp.provenance import SpanMap
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.tokens import TokenCounter, get_counter
from ctxcomp.types import Budget, Chunk, CompressedContext, StageReport, join_spans

StageSpec = str | Mapping[str, Any] | Compressor


def build_stage(spec: StageSpec) -> Compressor:
    """A compressor from a name, a ``{"name": ..., **settings}`` dict, or an instance."""
    if isinstance(spec, str):
        return registry.create(spec)  # type: ignore[no-any-return]
    if isinstance(spec, Mapping):
        settings = dict(spec)
        name = settings.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"a stage dict needs a 'name' string, got {spec!r}")
        return registry.create(name, **settings)  # type: ignore[no-any-return]
    if isinstance(spec, Compressor):
        return spec
    raise ConfigError(f"a stage must be a name, a dict or a Compressor, got {type(spec).__name__}")


def _fingerprint(stage: Compressor) -> dict[str, Any]:
    config = getattr(stage, "config", None)
    return {"name": stage.name, "type": type(stage).__qualname__,
            "config": config() if callable(config) else None}


class Pipeline:
    """Compress retrieved chunks for a query through a list of stages.

    Args:
        stages: compressors, registry names, or ``{"name": ..., **settings}`` dicts.
        budget: the default budget (a call may pass another).
        cache: where compressed contexts are cached (see :mod:`ctxcomp.cache`). None (the
            default) gives this pipeline its own in-process LRU cache (1,024 entries,
            64 MiB); False disables caching; a ``ContextCache``, a ``CacheBackend``, a
            settings mapping (``{"backend": "redis", "url": ...}``) or a ``redis://`` URL
            selects another. A repeated request is served from the cache, and every
            StageReport's ``cache_hit`` says whether it was (True) or was just computed
            (False). A cache outage never fails a compression (it is logged and counted).
        ledger: where each compression is accounted; a new in-memory Ledger if None.
        tenant: the default tenant for cache keys and the ledger.

    Example:
        >>> pipe = Pipeline(["embedding"], Budget(max_tokens=300))  # doctest: +SKIP
        >>> ctx = pipe.compress("who wrote Hamlet?", passages)  # doctest: +SKIP
        >>> ctx.tokens_out <= 300  # doctest: +SKIP
        True
    """

    def __init__(
        self,
        stages: Sequence[StageSpec],
        budget: Budget | None = None,
        cache: Any = None,  # None: in-process LRU; False: off (see the docstring)
        ledger: Ledger | None = None,
        *,
        tenant: str = "default",
    ) -> None:
        if isinstance(stages, (str, Mapping)) or not stages:
            raise ConfigError("a pipeline needs a non-empty list of stages")
        self.stages: list[Compressor] = [build_stage(s) for s in stages]
        self.budget = budget
        from ctxcomp.cache import resolve_cache

        self.cache = resolve_cache(cache)
        self.ledger = ledger if ledger is not None else Ledger()
        self.tenant = tenant

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | str | Path, **overrides: Any) -> Pipeline:
        """Build from a dict or a YAML/TOML/JSON file (see :mod:`ctxcomp.config`)."""
        from ctxcomp.config import load_spec

        return load_spec(spec).build(**overrides)

    def config_digest(self) -> str:
        """A digest of every stage's type and settings (part of cache keys)."""
        payload = json.dumps([_fingerprint(s) for s in self.stages], sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def requires_query(self) -> bool:
        return any(getattr(s, "requires_query", True) for s in self.stages)

    # -- compression -------------------------------------------------------------------
    def compress(
        self,
        query: str,
        chunks: Sequence[ChunkLike],
        budget: Budget | None = None,
        *,
        tenant: str | None = None,
    ) -> CompressedContext:
        """Compress ``chunks`` for ``query`` to fit ``budget`` (or the pipeline's).

        Raises:
            InputError: empty query (when a stage needs one), no chunks, bad chunks.
            ConfigError: no budget given here or at construction.
        """
        query, items, budget, tenant = self._prepare(query, chunks, budget, tenant)
        started = time.perf_counter()
        if self.cache is not None:
            ctx, hit = self.cache.get_or_compute(
                self, query, items, budget, lambda: self._run(query, items, budget), tenant=tenant
            )
        else:
            ctx, hit = self._run(query, items, budget), False
        self.ledger.record(ctx, tenant=tenant, seconds=time.perf_counter() - started, cache_hit=hit,
                           pipeline=self.config_digest())
        return ctx

    async def acompress(
        self,
        query: str,
        chunks: Sequence[ChunkLike],
        budget: Budget | None = None,
        *,
        tenant: str | None = None,
    ) -> CompressedContext:
        """Async form of :meth:`compress` (the model work runs in a worker thread; the
        cache is consulted with its backend's async client)."""
        if self.cache is None or not hasattr(self.cache, "aget_or_compute"):
            return await asyncio.to_thread(self.compress, query, chunks, budget, tenant=tenant)
        query, items, budget, tenant = self._prepare(query, chunks, budget, tenant)
        started = time.perf_counter()
        ctx, hit = await self.cache.aget_or_compute(
            self, query, items, budget, lambda: asyncio.to_thread(self._run, query, items, budget), tenant=tenant
        )
        self.ledger.record(ctx, tenant=tenant, seconds=time.perf_counter() - started, cache_hit=hit,
                           pipeline=self.config_digest())
        return ctx

    def _prepare(
        self, query: str, chunks: Sequence[ChunkLike], budget: Budget | None, tenant: str | None
    ) -> tuple[str, list[Chunk], Budget, str]:
        budget = budget or self.budget
        if budget is None:
            raise ConfigError("no budget: pass one to compress() or to Pipeline(...)")
        if not isinstance(budget, Budget):
            raise InputError(f"budget must be a Budget, got {type(budget).__name__}")
        return check_query(query, self.requires_query()), coerce_chunks(chunks), budget, tenant or self.tenant

    def _run(self, query: str, chunks: list[Chunk], budget: Budget) -> CompressedContext:
        counter = get_counter(budget.model)
        tokens_in = input_tokens(chunks, counter)
        limit = budget.limit(tokens_in)
        stage_budget = Budget(max_tokens=limit, model=budget.model)
        maps = {c.id: SpanMap.identity(len(c.text)) for c in chunks}
        current = list(chunks)
        reports: list[StageReport] = []
        # Input that already fits is a documented no-op: no stage runs.
        for stage in self.stages if tokens_in > limit else ():
            if not current:
                break
            started = time.perf_counter()
            out = stage.compress(query, current, stage_budget)
            seconds = time.perf_counter() - started
            reports.append(StageReport(stage.name, out.tokens_in, out.tokens_out, seconds))
            current, maps = self._carry(chunks, out, maps)
        return self._finish(chunks, maps, current, counter, budget, tokens_in, limit, tuple(reports))

    @staticmethod
    def _carry(
        originals: list[Chunk], out: CompressedContext, maps: dict[str, SpanMap]
    ) -> tuple[list[Chunk], dict[str, SpanMap]]:
        """The next stage's input (kept text re-derived from the source) and span maps."""
        by_id = {c.id: c for c in originals}
        nxt: list[Chunk] = []
        new_maps: dict[str, SpanMap] = {}
        for kept in out.chunks:
            source = by_id[kept.source_id]
            spans = maps[kept.source_id].to_source(kept.spans)
            new_maps[kept.source_id] = SpanMap(spans)
            text = join_spans(source.text, spans)
            nxt.append(Chunk(text, id=source.id, metadata=source.metadata, score=kept.score))
        return nxt, new_maps

    @staticmethod
    def _finish(
        chunks: list[Chunk],
        maps: dict[str, SpanMap],
        current: list[Chunk],
        counter: TokenCounter,
        budget: Budget,
        tokens_in: int,
        limit: int,
        reports: tuple[StageReport, ...],
    ) -> CompressedContext:
        index = {c.id: i for i, c in enumerate(chunks)}
        units = [
            Unit(index[c.id], span, c.score if c.score is not None else 0.0)
            for c in current
            for span in maps[c.id].spans
        ]
        if tokens_in <= limit:
            units = whole_units(chunks)
        assembly = assemble(chunks, units, counter)
        if assembly.tokens > limit:  # a third-party stage overshot: enforce the budget
            assembly = select_units(chunks, units, counter, limit)
        return make_context(chunks, assembly, tokens_in, budget, limit, counter, reports)

