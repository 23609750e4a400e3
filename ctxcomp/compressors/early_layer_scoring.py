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

from collections.abc import Sequence

import numpy as np

from ctxcomp.compressors.selection import Unit


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
    """Mean of each range's ``top`` highest token scores (all of them when top <= 0)."""
    out = np.full(len(ranges), -np.inf)
    for i, rows in enumerate(ranges):
        if len(rows) == 0:
            continue
        vals = scores[rows]
        if 0 < top < len(vals):
            vals = np.partition(vals, len(vals) - top)[-top:]
        out[i] = float(vals.mean())
    finite = np.isfinite(out)
    if finite.any() and not finite.all():
        out[~finite] = out[finite].min()
    elif not finite.any():
        out[:] = 0.0
    return out
