"""Optional semantic reuse: a near-duplicate query over the same chunk set reuses an entry.

Off by default. For every stored entry the cache also appends ``(entry key, query
embedding)`` to a small candidate list kept under the *context digest* (everything in the
key but the query: chunks, pipeline, models, tokenizer, budget) for that tenant. On an
exact miss, the new query is embedded and compared with the candidates by cosine (numpy:
this Redis has no vector search); the best one at or above ``threshold`` is served.

Candidate lists are stored in the same backend as the entries (JSON with base64 float32
vectors), indexed under the same chunk ids, so invalidation drops them too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctxcomp.errors import ConfigError
from ctxcomp.models.sentence import DEFAULT_EMBEDDING_MODEL
from ctxcomp.settings import check_types

_VERSION = 1


@dataclass(frozen=True)
class SemanticConfig:
    """Settings of semantic reuse.

    Attributes:
        threshold: the least cosine similarity (of normalized embeddings) to reuse an entry.
        model: the sentence-transformers model that embeds queries.
        max_candidates: queries remembered per chunk set and tenant (oldest dropped).
    """

    threshold: float = 0.95
    model: str = DEFAULT_EMBEDDING_MODEL
    max_candidates: int = 32

    def __post_init__(self) -> None:
        check_types(self)
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"semantic threshold must be in (0, 1], got {self.threshold!r}")
        if self.max_candidates < 1:
            raise ConfigError(f"max_candidates must be >= 1, got {self.max_candidates!r}")


class QueryEncoder:
    """Embeds queries with the configured model (loaded on first use, shared per process)."""

    def __init__(self, model: str) -> None:
        self.model = model

    def __call__(self, query: str) -> np.ndarray:
        from ctxcomp.models.sentence import load_encoder

        encoder = load_encoder(self.model)
        vec = encoder.model.encode([query], normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False)
        return np.asarray(vec[0], dtype=np.float32)


#: A candidate list larger than this is ignored (32 candidates of 384 floats take ~70 KB).
MAX_CANDIDATES_BYTES = 4 * 1024 * 1024


def parse_candidates(raw: bytes | None) -> list[tuple[str, np.ndarray]]:
    """The (entry key, vector) list in ``raw``; empty when absent, malformed or oversized."""
    if not raw or len(raw) > MAX_CANDIDATES_BYTES:
        return []
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != _VERSION:
            return []
        out = []
        for key, b64 in data["items"]:
            vec = np.frombuffer(base64.b64decode(b64), dtype=np.float32)
            if isinstance(key, str) and vec.size:
                out.append((key, vec))
        return out
    except (ValueError, TypeError, KeyError, RecursionError):
        return []


def dump_candidates(items: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """The stored form of a candidate list."""
    rows = [[key, base64.b64encode(np.asarray(vec, dtype=np.float32).tobytes()).decode()]
            for key, vec in items]
    return json.dumps({"v": _VERSION, "items": rows}, separators=(",", ":")).encode()


def best_match(
    candidates: Sequence[tuple[str, np.ndarray]], query_vec: np.ndarray, threshold: float, exclude: str = ""
) -> tuple[str, float] | None:
    """The candidate key most similar to ``query_vec`` with cosine >= ``threshold``, and its cosine."""
    usable = [(k, v) for k, v in candidates if k != exclude and v.shape == query_vec.shape]
    if not usable:
        return None
    matrix = np.stack([v for _, v in usable])
    sims = matrix @ query_vec  # vectors are unit-normalized
    best = int(np.argmax(sims))
    score = float(sims[best])
    return (usable[best][0], score) if score >= threshold else None


def add_candidate(
    candidates: list[tuple[str, np.ndarray]], key: str, vec: np.ndarray, limit: int
) -> list[tuple[str, np.ndarray]]:
    """``candidates`` with (key, vec) appended (replacing the same key), oldest trimmed to ``limit``."""
    kept: list[tuple[str, Any]] = [(k, v) for k, v in candidates if k != key]
    kept.append((key, vec))
    return kept[-limit:]
