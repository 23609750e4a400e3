"""The chunk planner (CORAG, arXiv 2411.00744): which chunks survive, and how many tokens
each may keep, under the budget.

Each chunk's utility comes from a scorer (:mod:`ctxcomp.planners.utility`: embedding,
BM25, the retriever's score, or your own), rescaled to [0, 1] over the request, less a
redundancy charge for its similarity to better chunks (MMR); a near-duplicate of a better
chunk is never kept beside it. Keeping chunk *i* costs ``tokens_i / r`` tokens of the
final budget, where ``r`` is the reduction the stages after the planner will apply
(by default their geometric share of the whole reduction). A solver picks the subset
(:mod:`ctxcomp.planners.solvers`): exact DP when chunks x budget is small, greedy with
a factor-2 bound otherwise, or Monte Carlo tree search of the set objective for up to 30
chunks. Utility is not monotonic: a chunk worth nothing after its charge is dropped even
when room is left.

``mode="topk"`` keeps the best chunks in rank order while they fit (the fixed top-k
baseline); ``dynamic=True`` gives the kept chunks per-chunk ratios by rank, as
LongLLMLingua does: the top chunk keeps up to ``1 + spread`` times its even share of the
budget, the last ``1 - spread`` times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ctxcomp.errors import ConfigError, InputError
from ctxcomp.inputs import input_tokens
from ctxcomp.planners.base import schedule
from ctxcomp.planners.solvers import (
    MCTS_MAX_ITEMS,
    discount_redundancy,
    solve_dp,
    solve_greedy,
    solve_mcts,
)
from ctxcomp.planners.utility import ChunkScorer, build_utility, normalize
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Budget, Chunk, ChunkPlan, Plan, StageTarget

Solver = Literal["auto", "dp", "greedy", "mcts"]
DP_MAX_CELLS = 2_000_000  # chunks x budget tokens for the exact DP under solver="auto"


@dataclass(frozen=True)
class KnapsackSettings:
    """Settings of :class:`KnapsackPlanner`.

    Attributes:
        mode: ``knapsack`` (solve for the best subset) or ``topk`` (best chunks in rank
            order while they fit).
        solver: ``auto`` (dp when chunks x budget <= 2M, else greedy), ``dp``, ``greedy``,
            ``mcts``.
        stage_ratio: the reduction the stages after the planner apply to a kept chunk;
            None: their geometric share (for one stage, the square root of the whole
            reduction).
        redundancy: the weight of the MMR charge (0: off).
        similar_above: similarity below which two chunks are not charged at all.
        duplicate_above: a chunk this similar to a better one is dropped outright.
        dynamic: per-chunk quotas by rank (top chunks keep more).
        spread: how much more the top chunk keeps than the last (0..1).
        calibration: ``minmax`` rescales scores to [0, 1]; ``none`` takes them as they
            are (then they must be finite and >= 0).
    """

    mode: Literal["knapsack", "topk"] = "knapsack"
    solver: Solver = "auto"
    stage_ratio: float | None = None
    redundancy: float = 0.5
    similar_above: float = 0.8
    duplicate_above: float = 0.95
    dynamic: bool = False
    spread: float = 0.5
    calibration: Literal["minmax", "none"] = "minmax"

    def __post_init__(self) -> None:
        if self.mode not in ("knapsack", "topk"):
            raise ConfigError(f"mode must be 'knapsack' or 'topk', got {self.mode!r}")
        if self.solver not in ("auto", "dp", "greedy", "mcts"):
            raise ConfigError(f"solver must be auto, dp, greedy or mcts, got {self.solver!r}")
        if self.stage_ratio is not None and not (isinstance(self.stage_ratio, (int, float)) and self.stage_ratio >= 1):
            raise ConfigError(f"stage_ratio must be a number >= 1 or None, got {self.stage_ratio!r}")
        if not self.redundancy >= 0:
            raise ConfigError(f"redundancy must be >= 0, got {self.redundancy}")
        if not 0 <= self.similar_above < 1 or not 0 < self.duplicate_above <= 1:
            raise ConfigError("similar_above must be in [0, 1) and duplicate_above in (0, 1]")
        if not 0 <= self.spread <= 1:
            raise ConfigError(f"spread must be in [0, 1], got {self.spread}")
        if self.calibration not in ("minmax", "none"):
            raise ConfigError(f"calibration must be 'minmax' or 'none', got {self.calibration!r}")


class KnapsackPlanner:
    """Choose the chunks (and, with ``dynamic``, a quota for each) under the budget.

    Args:
        utility: a scorer name (``embedding``, ``bm25``, ``retrieval``, ``gemfilter``), a
            mapping of a name and its settings, or a ChunkScorer.
        **settings: see :class:`KnapsackSettings`.

    Example:
        >>> pipe = Pipeline(["gemfilter"], Budget(ratio=10), planner={"name": "knapsack", "dynamic": True})  # doctest: +SKIP
    """

    name = "knapsack"
    requires_query = True

    def __init__(self, utility: str | Mapping[str, Any] | ChunkScorer = "embedding",
                 settings: KnapsackSettings | None = None,
                 **kwargs: Any) -> None:
        self.settings = settings if settings is not None else KnapsackSettings(**kwargs)
        self.scorer = build_utility(utility)

    def config(self) -> dict[str, Any]:
        scorer_config = getattr(self.scorer, "config", None)
        return {"utility": self.scorer.name, "utility_config": scorer_config() if callable(scorer_config) else None,
                **self.settings.__dict__}

    def model_revisions(self) -> list[Any]:
        method = getattr(self.scorer, "model_revisions", None)
        return list(method()) if callable(method) else []

    def _utilities(self, query: str, chunks: Sequence[Chunk]) -> tuple[np.ndarray, np.ndarray | None]:
        scores = self.scorer.score(query, chunks)
        values = np.asarray(scores.values, dtype=np.float64)
        if values.shape != (len(chunks),):
            raise InputError(f"utility {self.scorer.name!r} returned {values.shape} scores for {len(chunks)} chunks")
        if self.settings.calibration == "none":
            if not np.all(np.isfinite(values)) or np.any(values < 0):
                raise InputError(f"utility {self.scorer.name!r} returned NaN, infinite or negative utilities; "
                                 "give finite values >= 0 or use calibration='minmax'")
            return values, scores.similarity
        return normalize(values), scores.similarity

    def _select(self, values: np.ndarray, sims: np.ndarray | None, costs: list[int],
                budget: int) -> tuple[list[int], np.ndarray, list[int | None]]:
        s = self.settings
        charged, blame = discount_redundancy(values, sims, s.redundancy, s.similar_above)
        order = list(np.argsort(-values, kind="stable"))
        dupes = {i for i in order if blame[i] is not None and sims is not None
                 and sims[i, blame[i]] >= s.duplicate_above}
        charged = np.where([i in dupes for i in range(len(values))], -1.0, charged)
        if s.mode == "topk":
            chosen, used = [], 0
            for i in order:
                if i not in dupes and used + costs[i] <= budget:
                    chosen.append(int(i))
                    used += costs[i]
                elif used + costs[i] > budget:
                    break
            return sorted(chosen), charged, blame
        solver = s.solver
        if solver == "auto":
            solver = "dp" if len(costs) * (budget + 1) <= DP_MAX_CELLS else "greedy"
        if solver == "dp":
            return solve_dp(list(charged), costs, budget), charged, blame
        if solver == "greedy":
            return solve_greedy(list(charged), costs, budget), charged, blame
        if sum(1 for v in charged if v > 0) > MCTS_MAX_ITEMS:
            raise ConfigError(f"solver 'mcts' takes at most {MCTS_MAX_ITEMS} chunks; use 'dp' or 'greedy'")
        values_ok = np.where(charged > 0, values, -1.0)
        return solve_mcts(list(values_ok), costs, budget, sims, s.redundancy, s.similar_above), charged, blame

    def plan(
        self,
        query: str,
        chunks: Sequence[Chunk],
        budget: Budget,
        counter: TokenCounter,
        *,
        stages: Sequence[StageTarget] = (),
    ) -> Plan:
        """The plan for one request (see the module docstring).

        If no chunk fits (a budget smaller than the cheapest chunk), the best chunk is kept
        alone with the whole budget as its quota, so the stages can cut it down: a plan
        never keeps nothing.
        """
        tokens_in = input_tokens(chunks, counter)
        limit = budget.limit(tokens_in)
        sizes = counter.count_many([c.text for c in chunks])
        ratio = self.settings.stage_ratio or _stage_share(tokens_in, limit, len(stages))
        costs = [math.ceil(n / ratio) for n in sizes]
        values, sims = self._utilities(query, chunks)
        chosen, charged, blame = self._select(values, sims, costs, limit)
        note = ""
        if not chosen:
            chosen = [int(np.argmax(values))]
            note = "; no chunk fit at its planned size, so the best one is kept for the stages to cut"
        quotas = self._quotas(chosen, values, sizes, limit)
        rank = {i: r for r, i in enumerate(sorted(chosen, key=lambda i: (-values[i], i)))}
        plans = []
        for i, c in enumerate(chunks):
            if i in rank:
                q = quotas.get(i)
                why = f"kept: rank {rank[i] + 1} of {len(chosen)} kept, utility {values[i]:.2f}"
                if q is not None:
                    why += f", may keep {q} of {sizes[i]} tokens"
                plans.append(ChunkPlan(c.id, True, q, round(sizes[i] / q, 3) if q else None, why, sizes[i],
                                       float(values[i])))
            else:
                plans.append(ChunkPlan(c.id, False, None, None, self._why_dropped(i, charged, blame, chunks),
                                       sizes[i], float(values[i])))
        kept_tokens = input_tokens([chunks[i] for i in sorted(chosen)], counter)
        limits = schedule(kept_tokens, limit, stages)
        return Plan(self.name, tuple(plans), limits,
                    reason=f"{self.settings.mode} ({self.scorer.name} utility): kept {len(chosen)} of {len(chunks)} "
                           f"chunks, {kept_tokens} of {tokens_in} tokens, planned at {ratio:.2f}x each{note}")

    def _quotas(self, chosen: list[int], values: np.ndarray, sizes: list[int], limit: int) -> dict[int, int]:
        if not self.settings.dynamic or not chosen:
            return {}
        ranked = sorted(chosen, key=lambda i: (-values[i], i))
        k = len(ranked)
        weights = {i: sizes[i] * (1 + self.settings.spread * (1 - 2 * r / (k - 1) if k > 1 else 1.0))
                   for r, i in enumerate(ranked)}
        total = sum(weights.values()) or 1.0
        return {i: min(sizes[i], math.floor(limit * w / total)) for i, w in weights.items()}

    @staticmethod
    def _why_dropped(i: int, charged: np.ndarray, blame: list[int | None], chunks: Sequence[Chunk]) -> str:
        if blame[i] is not None and charged[i] < 0:
            return f"dropped: redundant with {chunks[blame[i]].id}"  # type: ignore[index]
        if charged[i] <= 0:
            return "dropped: utility too low to be worth its tokens"
        return "dropped: did not fit the budget beside better chunks"


def _stage_share(tokens_in: int, limit: int, n_stages: int) -> float:
    """The stages' geometric share of the whole reduction (the planner takes one step)."""
    whole = max(1.0, tokens_in / max(limit, 1))
    return float(whole ** (n_stages / (n_stages + 1))) if n_stages else 1.0
