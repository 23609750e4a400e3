"""The small protocols that stages and planners implement.

A :class:`Compressor` is anything with a ``name`` and ``compress(query, chunks, budget)``;
a :class:`~ctxcomp.pipeline.Pipeline` is one too, so pipelines nest. A :class:`Planner`
decides, before any stage runs, which chunks go on, how many tokens each may keep and the
limit of each stage. This module imports only the core types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Budget, Chunk, CompressedContext, Plan, StageTarget


@runtime_checkable
class Compressor(Protocol):
    """What a pipeline stage must provide."""

    name: str

    def compress(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> CompressedContext: ...


@runtime_checkable
class Planner(Protocol):
    """What a pipeline's planner must provide.

    ``plan`` sees the whole request and the pipeline's stages (coarse to fine, with the
    limits their specs ask for) and returns a :class:`~ctxcomp.types.Plan`: one
    :class:`~ctxcomp.types.ChunkPlan` per chunk, in input order, and one limit per stage,
    non-increasing, the last at most ``budget.limit(tokens_in)``. The pipeline checks the
    plan and raises :class:`~ctxcomp.errors.ConfigError` if it breaks these rules.
    """

    name: str

    def plan(
        self,
        query: str,
        chunks: Sequence[Chunk],
        budget: Budget,
        counter: TokenCounter,
        *,
        stages: Sequence[StageTarget] = (),
    ) -> Plan: ...


@runtime_checkable
class BatchCompressor(Compressor, Protocol):
    """A compressor that takes many requests at once (one budget, or one per request)."""

    def compress_batch(
        self, requests: Sequence[tuple[str, Sequence[Chunk]]], budget: Budget | Sequence[Budget]
    ) -> list[CompressedContext]: ...
