"""ctxcomp: compress the context going into an LLM, and account for what it saved.

The public API is re-exported here lazily, so ``import ctxcomp`` stays light (it does
not import torch, transformers or sentence-transformers).

Example:
    >>> from ctxcomp import Budget, Pipeline
    >>> pipe = Pipeline(["embedding"], Budget(max_tokens=300))  # doctest: +SKIP
    >>> ctx = pipe.compress("when was deadpool 2 released", passages)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ctxcomp._deps import lazy_exports
from ctxcomp.errors import (
    BackendError,
    BudgetError,
    CacheError,
    ConfigError,
    CtxcompError,
    InfeasibleBudgetError,
    InputError,
    MissingDependencyError,
    ModelLoadError,
    UnknownModelError,
    UnknownNameError,
)
from ctxcomp.types import Budget, Chunk, CompressedChunk, CompressedContext, StageReport

__version__ = "0.1.0"

_LAZY = {
    "Pipeline": "ctxcomp.pipeline",
    "load_spec": "ctxcomp.config",
    "Compressor": "ctxcomp.protocols",
    "BaseCompressor": "ctxcomp.compressors.base",
    "TruncateCompressor": "ctxcomp.compressors.truncate",
    "EmbeddingCompressor": "ctxcomp.compressors.embedding",
    "count_tokens": "ctxcomp.tokens",
    "get_counter": "ctxcomp.tokens",
    "Price": "ctxcomp.pricing",
    "cost": "ctxcomp.pricing",
    "set_price": "ctxcomp.pricing",
    "Ledger": "ctxcomp.reporting.ledger",
    "register": "ctxcomp.registry",
    "ContextCache": "ctxcomp.cache.context",
    "build_cache": "ctxcomp.cache",
    "HybridRetriever": "ctxcomp.retrievers.hybrid",
    "CompressingRetriever": "ctxcomp.retrievers.adapters",
}

__all__ = [
    "BackendError", "Budget", "BudgetError", "CacheError", "Chunk", "CompressedChunk",
    "CompressedContext", "ConfigError", "CtxcompError", "InfeasibleBudgetError", "InputError",
    "MissingDependencyError", "ModelLoadError", "StageReport", "UnknownModelError",
    "UnknownNameError", "__version__", *_LAZY,
]

if TYPE_CHECKING:
    from ctxcomp.cache import build_cache
    from ctxcomp.cache.context import ContextCache
    from ctxcomp.compressors.base import BaseCompressor
    from ctxcomp.compressors.embedding import EmbeddingCompressor
    from ctxcomp.compressors.truncate import TruncateCompressor
    from ctxcomp.config import load_spec
    from ctxcomp.pipeline import Pipeline
    from ctxcomp.pricing import Price, cost, set_price
    from ctxcomp.protocols import Compressor
    from ctxcomp.registry import register
    from ctxcomp.reporting.ledger import Ledger
    from ctxcomp.retrievers.adapters import CompressingRetriever
    from ctxcomp.retrievers.hybrid import HybridRetriever
    from ctxcomp.tokens import count_tokens, get_counter


__getattr__ = lazy_exports("ctxcomp", _LAZY, globals())
