"""From per-token attention to unit scores: calibration, pooling, aggregation.

Raw early-layer attention mixes relevance with a position prior (recency, sinks,
separators). The recipe here, each step measured on the NQ-20 dev slice
(benchmarks/results/gemfilter_recipe.json):

1. mean the query rows' attention over the chosen heads, per layer;
2. calibrate: subtract ``calibration`` x the content-free probe's attention at the same
   positions (the probe sees the same context but not the query);
3. smooth with a moving average of ``window`` tokens (GemFilter's pooling);
4. a unit (sentence, chunk or token) scores the mean of its top tokens' scores;
   sentences mix in their chunk's score (``chunk_weight``), because a sentence inside a
   relevant passage is worth more than a look-alike elsewhere;
5. several layers: z-scored unit scores are averaged.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctxcomp.assembly import Unit


def pool(scores: np.ndarray, window: int) -> np.ndarray:
    """Centered moving average of ``window`` tokens (1 = none); same length as ``scores``."""
    if window <= 1 or len(scores) < 2:
        return scores
    kernel = np.ones(window, dtype=np.float64) / window
    padded = np.pad(scores, (window // 2, window - 1 - window // 2), mode="edge")
    return np.convolve(padded, kernel, mode="valid")


def token_scores(query_att: np.ndarray, probe_att: np.ndarray | None, calibration: float,
                 heads: Sequence[int] | None = None) -> np.ndarray:
    """Per-token relevance from (heads, n) query and probe attention (rows already averaged)."""
    sel = list(heads) if heads else slice(None)
    score = query_att[sel].mean(axis=0).astype(np.float64)
    if probe_att is not None and calibration:
        score = score - calibration * probe_att[sel].mean(axis=0)
    return score


def zscore(values: np.ndarray) -> np.ndarray:
    """(x - mean) / std; zeros when constant or empty."""
    if values.size == 0:
        return values
    std = float(values.std())
    return (values - values.mean()) / std if std > 0 else np.zeros_like(values)


def unit_token_ranges(units: Sequence[Unit], token_chunk: np.ndarray, token_start: np.ndarray,
                      token_end: np.ndarray) -> list[np.ndarray]:
    """For each unit, the positions of the prompt tokens that overlap its span."""
    out: list[np.ndarray] = []
    by_chunk: dict[int, np.ndarray] = {}
    for unit in units:
        rows = by_chunk.get(unit.chunk)
        if rows is None:
            rows = np.nonzero(token_chunk == unit.chunk)[0]
            by_chunk[unit.chunk] = rows
        s, e = unit.span
        hit = rows[(token_start[rows] < e) & (token_end[rows] > s)]
        out.append(hit)
    return out


def aggregate(scores: np.ndarray, ranges: Sequence[np.ndarray], top: int) -> np.ndarray:
    """Mean of each range's ``top`` highest token scores (all of them when top <= 0).

    ``scores`` is (n,) or (rows, n); the result is (units,) or (rows, units). A range
    with no tokens takes the lowest score of the others (0 when none has any).
    """
    flat = scores.ndim == 1
    grid = np.atleast_2d(scores)
    out = np.full((grid.shape[0], len(ranges)), -np.inf)
    for i, rows in enumerate(ranges):
        if len(rows) == 0:
            continue
        vals = grid[:, rows]
        if 0 < top < vals.shape[1]:
            vals = np.partition(vals, vals.shape[1] - top, axis=1)[:, -top:]
        out[:, i] = vals.mean(axis=1)
    finite = np.isfinite(out[0])
    if finite.any() and not finite.all():
        out[:, ~finite] = out[:, finite].min(axis=1, keepdims=True)
    elif not finite.any():
        out[:] = 0.0
    return out[0] if flat else out


#: Names of attention features (see :func:`head_features`): row set (``""`` query mean, ``l``
#: last token, ``x`` query max), ``s`` unit or ``c`` chunk, layer, optional head.
ATTENTION_FEATURE = re.compile(r"([lx]?)[sc](\d+)(?:h\d+)?")


def attention_feature(name: str) -> tuple[str, int] | None:
    """(row set, layer) of an attention feature name (row set ``q`` for the query mean), else None."""
    m = ATTENTION_FEATURE.fullmatch(name)
    return (m.group(1) or "q", int(m.group(2))) if m else None


def head_features(head_scores: Mapping[int, np.ndarray], ranges: Sequence[np.ndarray],
                  chunk_ranges: Sequence[np.ndarray], chunk_of: np.ndarray, top: int,
                  prefix: str = "") -> dict[str, np.ndarray]:
    """Per-unit attention features of a learned scorer, each z-scored over the request's units.

    ``head_scores`` maps a layer to its calibrated (heads, n) token scores. For each layer
    and head: ``s{layer}h{head}`` is the unit's top-``top`` mean, ``c{layer}h{head}`` its
    chunk's mean; ``s{layer}`` and ``c{layer}`` are the same over the head-mean. Names
    start with ``prefix`` (rows other than the query's mean: ``l`` last token, ``x`` the
    max over query rows).
    """
    out: dict[str, np.ndarray] = {}
    for layer, per_head in sorted(head_scores.items()):
        grid = np.vstack([per_head, per_head.mean(axis=0, keepdims=True)])
        suffixes = [f"h{h}" for h in range(per_head.shape[0])] + [""]
        units = aggregate(grid, ranges, top)
        chunks = aggregate(grid, chunk_ranges, 0)
        for row, suffix in enumerate(suffixes):
            out[f"{prefix}s{layer}{suffix}"] = zscore(units[row])
            out[f"{prefix}c{layer}{suffix}"] = zscore(chunks[row])[chunk_of]
    return out


@dataclass(frozen=True)
class LinearScorer:
    """A linear unit scorer over named, request-z-scored features (fit offline, shipped as JSON).

    ``score = features @ weights`` over ``names``; a feature the caller lacks counts as 0
    (its mean), so a scorer stays usable when, e.g., the embedding model is turned off.
    """

    names: tuple[str, ...]
    weights: tuple[float, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> LinearScorer:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(tuple(data["names"]), tuple(float(w) for w in data["weights"]), data.get("meta", {}))

    def save(self, path: str | Path) -> None:
        body = {"names": list(self.names), "weights": [round(w, 6) for w in self.weights], "meta": dict(self.meta)}
        Path(path).write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")

    @property
    def layers(self) -> tuple[int, ...]:
        """The attention layers the features come from."""
        return tuple(sorted({parsed[1] for n in self.names if (parsed := attention_feature(n))}))

    @property
    def row_sets(self) -> tuple[str, ...]:
        """Attention row sets the features use: ``q`` (query mean), ``l`` (last), ``x`` (query max)."""
        return tuple(sorted({parsed[0] for n in self.names if (parsed := attention_feature(n))}))

    @property
    def digest(self) -> str:
        """Content hash of the weights (for cache keys)."""
        body = json.dumps([self.names, self.weights, dict(self.meta)], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def without(self, prefix: str) -> LinearScorer:
        """The same scorer with the features named ``prefix...`` dropped."""
        kept = [(n, w) for n, w in zip(self.names, self.weights, strict=True) if not n.startswith(prefix)]
        return LinearScorer(tuple(n for n, _ in kept), tuple(w for _, w in kept), self.meta)

    def score(self, features: Mapping[str, np.ndarray], size: int) -> np.ndarray:
        out = np.zeros(size, dtype=np.float64)
        for name, weight in zip(self.names, self.weights, strict=True):
            values = features.get(name)
            if values is not None and weight:
                out += weight * values
        return out


def text_features(query: str, chunks: Sequence[Any], units: Sequence[Unit],
                  similarity: tuple[np.ndarray, np.ndarray | None] | None) -> dict[str, np.ndarray]:
    """Per-unit features beside attention, z-scored over the request's units.

    ``emb_s`` / ``emb_c``: MiniLM similarity of the sentence (title-aware) and of its
    chunk (``similarity``: from EmbeddingCompressor.similarities; None leaves them out);
    ``emb_mix``: their 50/50 mix (EmbeddingCompressor's own score); ``bm25_s`` /
    ``bm25_c``: BM25 of the sentence and of its chunk within the request; ``first``: the
    chunk's first unit; ``len``: log length in characters; and the answer cues of
    :func:`ctxcomp.lexical.answer_cues` (candidates the query does not name, gated by the
    kind of question).
    """
    from ctxcomp.lexical import answer_cues, bm25_scores
    from ctxcomp.text import title_of

    chunk_of = np.array([u.chunk for u in units], dtype=np.int64)
    texts = [chunks[u.chunk].text[u.span[0] : u.span[1]] for u in units]
    out = {
        "bm25_s": zscore(bm25_scores(query, texts)),
        "bm25_c": zscore(bm25_scores(query, [c.text for c in chunks]))[chunk_of] if len(units) else np.zeros(0),
        "first": zscore(np.array([i == 0 or chunk_of[i - 1] != c for i, c in enumerate(chunk_of)], dtype=np.float64)),
        "len": zscore(np.log1p(np.array([len(t) for t in texts], dtype=np.float64))),
    }
    titles = {i: c.metadata.get("title") or title_of(c.text) or "" for i, c in enumerate(chunks)}
    cues = answer_cues(query, texts, [titles[u.chunk] for u in units])
    out.update({name: zscore(values) for name, values in cues.items()})
    if similarity is not None:
        sims, chunk_sims = similarity
        out["emb_s"] = zscore(np.asarray(sims, dtype=np.float64))
        if chunk_sims is not None:
            out["emb_c"] = zscore(np.asarray(chunk_sims, dtype=np.float64))
            out["emb_mix"] = zscore(0.5 * np.asarray(sims) + 0.5 * np.asarray(chunk_sims))
    return out
