"""Pipeline: cache → planner → stages (coarse to fine) → assemble → ledger.

Stages are compressors given by name (resolved through the registry), by ``{"name": ...,
**settings}`` dicts (which may carry the stage's own ``ratio`` or ``max_tokens``), or as
instances, a nested :class:`Pipeline` included. Before any stage runs, a planner
(:mod:`ctxcomp.planners`) decides which chunks go on, how many tokens each may keep, and
the limit of every stage; each stage then runs under its own limit and sees the previous
stage's kept text. Spans are composed back to the original chunks, so the result's
provenance always points into the caller's text, and the final output is re-assembled
from the original text, re-counted and always within the budget.
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
from ctxcomp.cascade import Job, run_jobs
from ctxcomp.errors import ConfigError, InputError
from ctxcomp.inputs import ChunkLike, check_query, coerce_chunks
from ctxcomp.planners.base import GeometricPlanner, check_static_targets
from ctxcomp.protocols import Compressor, Planner
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.types import Budget, Chunk, CompressedContext, StageTarget

StageSpec = str | Mapping[str, Any] | Compressor
PlannerSpec = str | Mapping[str, Any] | Planner
_TARGET_KEYS = ("ratio", "max_tokens")


def build_stage(spec: StageSpec) -> tuple[Compressor, StageTarget]:
    """A compressor and its target from a name, a ``{"name": ..., **settings}`` dict (whose
    ``ratio``/``max_tokens`` are the stage's own limit, not a compressor setting), or an
    instance."""
    if isinstance(spec, str):
        stage = registry.compressors.create(spec)
        return stage, StageTarget(stage.name)
    if isinstance(spec, Mapping):
        settings = dict(spec)
        name = settings.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"a stage dict needs a 'name' string, got {spec!r}")
        target = StageTarget(name, **{k: settings.pop(k) for k in _TARGET_KEYS if k in settings})
        return registry.compressors.create(name, **settings), target
    if isinstance(spec, Compressor):
        return spec, StageTarget(spec.name)
    raise ConfigError(f"a stage must be a name, a dict or a Compressor, got {type(spec).__name__}")


def build_planner(spec: PlannerSpec | None) -> Planner:
    """A planner from None (the default :class:`GeometricPlanner`), a name, a
    ``{"name": ..., **settings}`` dict, or an instance."""
    if spec is None:
        return GeometricPlanner()
    if isinstance(spec, str):
        return registry.planners.create(spec)  # type: ignore[no-any-return]
    if isinstance(spec, Mapping):
        settings = dict(spec)
        name = settings.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"a planner dict needs a 'name' string, got {spec!r}")
        return registry.planners.create(name, **settings)  # type: ignore[no-any-return]
    if isinstance(spec, Planner):
        return spec
    raise ConfigError(f"a planner must be a name, a dict or a Planner, got {type(spec).__name__}")


def _fingerprint(component: Any) -> dict[str, Any]:
    config = getattr(component, "config", None)
    return {"name": component.name, "type": type(component).__qualname__,
            "config": config() if callable(config) else None}


class Pipeline:
    """Compress retrieved chunks for a query: plan, then run the stages coarse to fine.

    A Pipeline is itself a :class:`~ctxcomp.protocols.Compressor` (``name``, ``compress``,
    ``acompress``, ``compress_batch``), so it can be a stage of another pipeline or of any
    integration.

    Args:
        stages: compressors, registry names, or ``{"name": ..., **settings}`` dicts; a dict
            may give the stage its own ``ratio`` (its reduction of what it reads) or
            ``max_tokens``: ``{"name": "embedding", "unit": "chunk", "ratio": 2}``.
        budget: the default budget (a call may pass another).
        cache: where compressed contexts are cached (see :mod:`ctxcomp.cache`). None (the
            default) gives this pipeline its own in-process LRU cache (1,024 entries,
            64 MiB); False disables caching; a ``ContextCache``, a ``CacheBackend``, a
            settings mapping (``{"backend": "redis", "url": ...}``) or a ``redis://`` URL
            selects another. Every StageReport's ``cache_hit`` says whether the result was
            served from the cache. A cache outage never fails a compression.
        ledger: where each compression is accounted; a new in-memory Ledger if None.
        planner: decides which chunks go on, their token quotas and every stage's limit:
            None (the geometric default: all chunks, the reduction spread evenly over the
            stages), a name (``"knapsack"``), a ``{"name": ..., **settings}`` dict or a
            :class:`~ctxcomp.protocols.Planner`.
        tenant: the default tenant for cache keys and the ledger.
        name: the pipeline's name as a stage (default: ``pipeline(<stage>>...)``).

    Example:
        >>> pipe = Pipeline(["embedding", "gemfilter"], Budget(ratio=10), planner="knapsack")  # doctest: +SKIP
        >>> ctx = pipe.compress("who wrote Hamlet?", passages)  # doctest: +SKIP
        >>> [(s.name, s.tokens_in, s.tokens_out) for s in ctx.stages]  # doctest: +SKIP
        [('plan:knapsack', 2700, 1100), ('embedding', 1100, 600), ('gemfilter', 600, 270)]
    """

    def __init__(
        self,
        stages: Sequence[StageSpec],
        budget: Budget | None = None,
        cache: Any = None,  # None: in-process LRU; False: off (see the docstring)
        ledger: Ledger | None = None,
        *,
        planner: PlannerSpec | None = None,
        tenant: str = "default",
        name: str | None = None,
    ) -> None:
        if isinstance(stages, (str, Mapping)) or not isinstance(stages, Sequence) or not stages:
            raise ConfigError("a pipeline needs a non-empty list of stages")
        built = [build_stage(s) for s in stages]
        self.stages: list[Compressor] = [stage for stage, _ in built]
        self.targets: tuple[StageTarget, ...] = tuple(target for _, target in built)
        check_static_targets(self.targets)
        self.planner: Planner = build_planner(planner)
        if budget is not None and not isinstance(budget, Budget):
            raise ConfigError(f"budget must be a Budget, got {type(budget).__name__}")
        self.budget = budget
        from ctxcomp.cache import resolve_cache

        self.cache = resolve_cache(cache)
        self.ledger = ledger if ledger is not None else Ledger()
        self.tenant = tenant
        self.name = name or "pipeline(" + ">".join(s.name for s in self.stages) + ")"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | str | Path, **overrides: Any) -> Pipeline:
        """Build from a dict or a YAML/TOML/JSON file (see :mod:`ctxcomp.config`)."""
        from ctxcomp.config import load_spec

        return load_spec(spec).build(**overrides)

    def config(self) -> dict[str, Any]:
        """Every setting that changes the output: the planner, each stage and its target."""
        return {
            "planner": _fingerprint(self.planner),
            "stages": [{**_fingerprint(s), "ratio": t.ratio, "max_tokens": t.max_tokens}
                       for s, t in zip(self.stages, self.targets, strict=True)],
        }

    def config_digest(self) -> str:
        """A digest of :meth:`config` (part of cache keys)."""
        payload = json.dumps(self.config(), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def model_revisions(self) -> list[Any]:
        """The weights the planner and every stage depend on (for cache keys)."""
        revisions: list[Any] = []
        for part in (self.planner, *self.stages):
            method = getattr(part, "model_revisions", None)
            if callable(method):
                revisions.extend(method())
        return revisions

    @property
    def requires_query(self) -> bool:
        """Whether an empty query is an error (some stage or the planner ranks by it)."""
        return any(getattr(s, "requires_query", True) for s in (*self.stages, self.planner))

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
            ConfigError: no budget given here or at construction; a planner broke its rules.
        """
        query, items, budget, tenant = self._prepare(query, chunks, budget, tenant)
        started = time.perf_counter()
        if self.cache is not None:
            ctx, hit = self.cache.get_or_compute(
                self, query, items, budget, lambda: self.compute(query, items, budget), tenant=tenant
            )
        else:
            ctx, hit = self.compute(query, items, budget), False
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
            self, query, items, budget, lambda: asyncio.to_thread(self.compute, query, items, budget), tenant=tenant
        )
        self.ledger.record(ctx, tenant=tenant, seconds=time.perf_counter() - started, cache_hit=hit,
                           pipeline=self.config_digest())
        return ctx

    def compress_batch(
        self,
        requests: Sequence[tuple[str, Sequence[ChunkLike]]],
        budget: Budget | Sequence[Budget] | None = None,
        *,
        tenant: str | None = None,
    ) -> list[CompressedContext]:
        """Compress many (query, chunks) pairs; each stage sees the whole batch at once
        (its own ``compress_batch``), so model stages batch their forward passes.

        Args:
            requests: (query, chunks) pairs.
            budget: one budget for all, or one per request (default: the pipeline's).

        Returns:
            One context per request, equal to what :meth:`compress` returns for it.
        """
        budgets = self._budgets(budget, len(requests))
        prepared = [self._prepare(q, c, b, tenant) for (q, c), b in zip(requests, budgets, strict=True)]
        started = time.perf_counter()
        results: list[CompressedContext | None] = [None] * len(prepared)
        if self.cache is not None:
            for i, (q, items, b, t) in enumerate(prepared):
                results[i] = self.cache.peek(self, q, items, b, tenant=t)
        todo = [i for i, r in enumerate(results) if r is None]
        computed = dict(zip(todo, self.compute_batch([prepared[i][:3] for i in todo]), strict=True))
        seconds = (time.perf_counter() - started) / max(len(prepared), 1)
        digest = self.config_digest()
        out: list[CompressedContext] = []
        for i, (q, items, b, t) in enumerate(prepared):
            found = results[i]
            if found is not None:
                ctx, hit = found, True
            elif self.cache is not None:  # store it (or take what another worker stored)
                ctx, hit = self.cache.get_or_compute(self, q, items, b, lambda i=i: computed[i], tenant=t)  # type: ignore[misc]
            else:
                ctx, hit = computed[i], False
            self.ledger.record(ctx, tenant=t, seconds=seconds, cache_hit=hit, pipeline=digest)
            out.append(ctx)
        return out

    def compute(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> CompressedContext:
        """Plan and run the stages for one request, bypassing the cache and the ledger
        (what :meth:`compress` does on a miss; a pipeline nested as a stage runs this)."""
        return self.compute_batch([(query, chunks, budget)])[0]

    def compute_batch(self, requests: Sequence[tuple[str, Sequence[Chunk], Budget]]) -> list[CompressedContext]:
        """:meth:`compute` for many requests, each stage batched across them."""
        jobs = [Job.start(q, list(c), b) for q, c, b in requests]
        return run_jobs(jobs, self.planner, self.stages, self.targets)

    def _budgets(self, budget: Budget | Sequence[Budget] | None, n: int) -> list[Budget | None]:
        if budget is None or isinstance(budget, Budget):
            return [budget] * n
        budgets: list[Budget | None] = list(budget)
        if len(budgets) != n:
            raise InputError(f"got {len(budgets)} budgets for {n} requests; give one, or one per request")
        return budgets

    def _prepare(
        self, query: str, chunks: Sequence[ChunkLike], budget: Budget | None, tenant: str | None
    ) -> tuple[str, list[Chunk], Budget, str]:
        budget = budget or self.budget
        if budget is None:
            raise ConfigError("no budget: pass one to compress() or to Pipeline(...)")
        if not isinstance(budget, Budget):
            raise InputError(f"budget must be a Budget, got {type(budget).__name__}")
        return check_query(query, self.requires_query), coerce_chunks(chunks), budget, tenant or self.tenant
