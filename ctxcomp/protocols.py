"""The small protocols that stages and planners implement.

A :class:`Compressor` is anything with a ``name`` and ``compress(query, chunks, budget)``;
a :class:`~ctxcomp.pipeline.Pipeline` is one too, so pipelines nest. This module imports
only the core types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ctxcomp.types import Budget, Chunk, CompressedContext


@runtime_checkable
class Compressor(Protocol):
    """What a pipeline stage must provide."""

    name: str

    def compress(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> CompressedContext: ...
