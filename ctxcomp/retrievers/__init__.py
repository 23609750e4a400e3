"""Retrieval without a service: the embedded hybrid retriever (BM25 + dense, fused by
reciprocal rank) and :class:`CompressingRetriever` (retrieve-then-compress in one call,
around any LangChain or LlamaIndex retriever). Names load lazily.
"""

from __future__ import annotations

from typing import Any

from ctxcomp._deps import lazy_exports

_LAZY = {
    "HybridRetriever": "ctxcomp.retrievers.hybrid",
    "HybridConfig": "ctxcomp.retrievers.hybrid",
    "CompressingRetriever": "ctxcomp.retrievers.adapters",
    "chunk_text": "ctxcomp.retrievers.corpus",
    "scan_folder": "ctxcomp.retrievers.corpus",
}

__all__ = list(_LAZY)


__getattr__ = lazy_exports("ctxcomp.retrievers", _LAZY, globals())
