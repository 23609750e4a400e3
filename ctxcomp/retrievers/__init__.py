"""Retrieval without a service: the embedded hybrid retriever (BM25 + dense, fused by
reciprocal rank) and :class:`CompressingRetriever` (retrieve-then-compress in one call,
around any LangChain or LlamaIndex retriever). Names load lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "HybridRetriever": "ctxcomp.retrievers.hybrid",
    "HybridConfig": "ctxcomp.retrievers.hybrid",
    "CompressingRetriever": "ctxcomp.retrievers.adapters",
    "chunk_text": "ctxcomp.retrievers.corpus",
    "scan_folder": "ctxcomp.retrievers.corpus",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ctxcomp.retrievers' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
