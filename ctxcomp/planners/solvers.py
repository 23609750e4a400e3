"""Choosing a subset of chunks under a token budget: exact, greedy, and tree search.

The problem (CORAG, arXiv 2411.00744): chunk *i* costs ``costs[i]`` tokens in the final
context and is worth ``values[i]``; keeping two similar chunks is worth less than the sum.
Two objectives are solved here:

- the **modular** objective ``sum(values[S])``, where redundancy was already charged to
  each value before solving (see :func:`discount_redundancy`). :func:`solve_dp` finds its
  optimum exactly (0/1 knapsack by dynamic programming over the budget) and
  :func:`solve_greedy` is within a factor 2 of it (best of the density-greedy set and
  the single most valuable chunk that fits, the classic bound).
- the **set** objective :func:`set_utility`: each kept chunk is discounted by its
  similarity to the better chunks actually kept with it (MMR), which no DP can solve
  exactly. :func:`solve_mcts` searches it by Monte Carlo tree search (UCT), as CORAG
  does, for up to 30 chunks.

Values may be negative: a chunk whose value (after its discount) is not positive is
never kept, whatever room is left. That is the non-monotonic case: adding a chunk can
make a context worse.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import numpy as np

from ctxcomp.errors import ConfigError, InputError

MCTS_MAX_ITEMS = 30


def check_instance(values: Sequence[float], costs: Sequence[int], budget: int) -> None:
    """Reject what no solver can use.

    Raises:
        InputError: NaN or infinite values, negative costs, or mismatched lengths.
        ConfigError: a negative budget.
    """
    if len(values) != len(costs):
        raise InputError(f"{len(values)} utilities for {len(costs)} chunks")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise InputError(f"chunk utilities must be finite numbers, got {bad[0]!r}; check the scorer's output")
    if any(c < 0 for c in costs):
        raise InputError("chunk costs must be >= 0")
    if budget < 0:
        raise ConfigError(f"the budget must be >= 0 tokens, got {budget}")


def discount_redundancy(values: np.ndarray, similarity: np.ndarray | None, weight: float,
                        threshold: float) -> tuple[np.ndarray, list[int | None]]:
    """Values charged for redundancy before solving, and who made each chunk redundant.

    Chunk *i* loses ``weight * max(0, sim(i, j) - threshold) / (1 - threshold)`` for the
    most similar chunk *j* of higher value (MMR against every better chunk, since which
    of them will be kept is not known yet). Returns the new values and, per chunk, the
    index of that *j* (None: no penalty).
    """
    n = len(values)
    out = values.astype(np.float64).copy()
    blame: list[int | None] = [None] * n
    if similarity is None or weight <= 0 or n < 2:
        return out, blame
    order = np.argsort(-values, kind="stable")
    for pos, i in enumerate(order):
        better = order[:pos]
        if not len(better):
            continue
        sims = similarity[i, better]
        k = int(np.argmax(sims))
        excess = max(0.0, float(sims[k]) - threshold) / max(1e-9, 1.0 - threshold)
        if excess > 0:
            out[i] -= weight * excess
            blame[i] = int(better[k])
    return out, blame


def solve_dp(values: Sequence[float], costs: Sequence[int], budget: int) -> list[int]:
    """The exact optimum of the modular objective: the subset of largest total value whose
    costs sum to at most ``budget`` (chunks of value <= 0 never kept). O(n * budget)."""
    check_instance(values, costs, budget)
    items = [i for i, v in enumerate(values) if v > 0 and costs[i] <= budget]
    best = np.zeros(budget + 1)
    take = np.zeros((len(items), budget + 1), dtype=bool)
    for row, i in enumerate(items):
        c, v = costs[i], values[i]
        if c == 0:
            best += v
            take[row, :] = True
            continue
        candidate = np.full(budget + 1, -np.inf)
        candidate[c:] = best[: budget + 1 - c] + v
        better = candidate > best + 1e-12
        take[row] = better
        best = np.where(better, candidate, best)
    chosen: list[int] = []
    room = budget
    for row in range(len(items) - 1, -1, -1):
        if take[row, room]:
            chosen.append(items[row])
            room -= costs[items[row]]
    return sorted(chosen)


def solve_greedy(values: Sequence[float], costs: Sequence[int], budget: int) -> list[int]:
    """Within a factor 2 of :func:`solve_dp`: chunks by value per token while they fit,
    or the single most valuable chunk that fits if that is worth more. O(n log n)."""
    check_instance(values, costs, budget)
    order = sorted((i for i, v in enumerate(values) if v > 0 and costs[i] <= budget),
                   key=lambda i: (-values[i] / max(costs[i], 1e-9), i))
    chosen, used = [], 0
    for i in order:
        if used + costs[i] <= budget:
            chosen.append(i)
            used += costs[i]
    single = max(order, key=lambda i: (values[i], -i), default=None)
    if single is not None and values[single] > sum(values[i] for i in chosen):
        return [single]
    return sorted(chosen)


def set_utility(subset: Sequence[int], values: Sequence[float], similarity: np.ndarray | None,
                weight: float, threshold: float) -> float:
    """The set objective: each kept chunk's value, less its redundancy with the better
    chunks kept beside it (MMR)."""
    total = 0.0
    ranked = sorted(subset, key=lambda i: (-values[i], i))
    for pos, i in enumerate(ranked):
        penalty = 0.0
        if similarity is not None and weight > 0 and pos:
            sim = max(float(similarity[i, j]) for j in ranked[:pos])
            penalty = weight * max(0.0, sim - threshold) / max(1e-9, 1.0 - threshold)
        total += values[i] - penalty
    return total


def solve_mcts(values: Sequence[float], costs: Sequence[int], budget: int, similarity: np.ndarray | None,
               weight: float, threshold: float, iterations: int = 1500, seed: int = 0) -> list[int]:
    """Monte Carlo tree search (UCT) over include/exclude decisions, best value first, for
    the set objective. Deterministic for a seed. At most :data:`MCTS_MAX_ITEMS` chunks.

    Raises:
        ConfigError: more than MCTS_MAX_ITEMS candidate chunks.
    """
    check_instance(values, costs, budget)
    items = sorted((i for i, v in enumerate(values) if v > 0 and costs[i] <= budget), key=lambda i: (-values[i], i))
    if len(items) > MCTS_MAX_ITEMS:
        raise ConfigError(f"the mcts solver searches at most {MCTS_MAX_ITEMS} chunks, got {len(items)}; "
                          "use solver='greedy' or 'dp'")
    rng = random.Random(seed)
    scale = max(1e-9, sum(values[i] for i in items))
    stats: dict[tuple[bool, ...], list[float]] = {}  # path -> [visits, total reward]
    best_set: list[int] = []
    best_value = 0.0

    def score(path: tuple[bool, ...]) -> tuple[float, list[int]]:
        chosen = [items[d] for d, keep in enumerate(path) if keep]
        return set_utility(chosen, values, similarity, weight, threshold), chosen

    for _ in range(iterations):
        path: tuple[bool, ...] = ()
        used = 0
        while len(path) < len(items):  # selection / expansion by UCT
            i = items[len(path)]
            options = [False] + ([True] if used + costs[i] <= budget else [])
            parent = stats.get(path, [1.0, 0.0])
            def uct(keep: bool, parent: list[float] = parent, path: tuple[bool, ...] = path) -> float:
                node = stats.get((*path, keep))
                if node is None:
                    return math.inf
                return node[1] / node[0] + 1.2 * math.sqrt(math.log(parent[0] + 1) / node[0])
            keep = max(options, key=lambda k: (uct(k), k, rng.random()))
            fresh = (*path, keep) not in stats
            path = (*path, keep)
            used += costs[i] if keep else 0
            if fresh:
                break
        rollout, room = list(path), used  # random feasible completion
        for i in items[len(path):]:
            keep = room + costs[i] <= budget and rng.random() < 0.5
            rollout.append(keep)
            room += costs[i] if keep else 0
        value, chosen = score(tuple(rollout))
        if value > best_value + 1e-12:
            best_value, best_set = value, chosen
        reward = value / scale
        for depth in range(len(path) + 1):
            node = stats.setdefault(path[:depth], [0.0, 0.0])
            node[0] += 1
            node[1] += reward
    return sorted(best_set)
