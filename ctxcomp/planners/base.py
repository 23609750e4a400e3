"""What every planner shares: stage limits spread coarse to fine, the default planner, and
the checks a plan must pass before stages run on it.

Stages cascade only when each gets its own limit: a stage whose input already fits does
nothing, so if every stage got the final budget, every stage after the first would be a
no-op. :func:`schedule` gives stage *i* a limit between the input size and the final
budget: stages whose spec names a ``ratio`` or ``max_tokens`` take it, and the reduction
left over is spread geometrically (equal ratios) over the others, coarse to fine.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from ctxcomp.errors import ConfigError
from ctxcomp.inputs import input_tokens
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import Budget, Chunk, ChunkPlan, Plan, StageTarget


def schedule(start: int, final: int, stages: Sequence[StageTarget]) -> tuple[int, ...]:
    """The token limit of each stage, coarse to fine, for an input of ``start`` tokens.

    A stage with its own ``max_tokens`` keeps at most that; one with its own ``ratio``
    divides what it reads by it; the others share the reduction that is left equally
    (geometric spread). Limits never rise, and the last one is at most ``final``.

    >>> schedule(1000, 10, [StageTarget("a"), StageTarget("b")])
    (100, 10)
    >>> schedule(1000, 10, [StageTarget("a", ratio=2), StageTarget("b"), StageTarget("c")])
    (500, 70, 10)
    """
    limits: list[int] = []
    current = float(max(start, final, 1))
    for i, stage in enumerate(stages):
        later = stages[i + 1 :]
        if stage.max_tokens is not None:
            limit = float(stage.max_tokens)
        elif stage.ratio is not None:
            limit = current / stage.ratio
        else:
            free = 1 + sum(1 for s in later if s.ratio is None and s.max_tokens is None)
            fixed = math.prod(s.ratio for s in later if s.ratio is not None)
            needed = max(1.0, current / max(final, 1) / fixed)
            limit = current / needed ** (1.0 / free)
        limit = min(limit, current)
        if not later:
            limit = min(limit, final)
        limits.append(max(1, math.floor(limit + 1e-9)))
        current = float(limits[-1])
    return tuple(limits)


def check_static_targets(stages: Sequence[StageTarget]) -> None:
    """Reject stage specs whose own caps rise from coarse to fine.

    Raises:
        ConfigError: a later stage's ``max_tokens`` exceeds an earlier one's.
    """
    caps = [(s.name, s.max_tokens) for s in stages if s.max_tokens is not None]
    for (a, ca), (b, cb) in itertools.pairwise(caps):
        if cb is not None and ca is not None and cb > ca:
            raise ConfigError(
                f"stage limits must not increase from coarse to fine: {a!r} keeps {ca} tokens, "
                f"the later {b!r} {cb}; give the finer stage the smaller max_tokens"
            )


def check_plan(plan: Plan, chunks: Sequence[Chunk], n_stages: int, limit: int) -> Plan:
    """Validate a planner's output against its request.

    Raises:
        ConfigError: the plan does not cover the chunks in order, has the wrong number of
            stage limits, limits that rise or end above the budget, or a negative quota.
    """
    if tuple(c.chunk_id for c in plan.chunks) != tuple(c.id for c in chunks):
        raise ConfigError(f"planner {plan.planner!r} returned a plan that does not list every chunk in order")
    if len(plan.stage_limits) != n_stages:
        raise ConfigError(f"planner {plan.planner!r} gave {len(plan.stage_limits)} stage limits for {n_stages} stages")
    limits = plan.stage_limits
    if any(b > a for a, b in itertools.pairwise(limits)) or (limits and limits[-1] > limit):
        raise ConfigError(
            f"planner {plan.planner!r}: stage limits {list(limits)} must not increase and must end at or "
            f"under the budget's {limit} tokens"
        )
    if any(x < 1 for x in limits):
        raise ConfigError(f"planner {plan.planner!r}: every stage limit must be >= 1, got {list(limits)}")
    if any(c.quota is not None and c.quota < 0 for c in plan.chunks):
        raise ConfigError(f"planner {plan.planner!r}: quotas must be >= 0")
    return plan


def stage_quotas(plan: Plan, stage: int, chunk_tokens: dict[str, int]) -> dict[str, int]:
    """The per-chunk caps for ``stage``: the final quotas scaled by the stage's limit."""
    final = plan.stage_limits[-1]
    scale = plan.stage_limits[stage] / final if final else 1.0
    return {cid: min(chunk_tokens.get(cid, q), math.ceil(q * scale)) for cid, q in plan.quotas().items()}


class GeometricPlanner:
    """The default planner: keep every chunk and spread the reduction over the stages.

    It drops no chunk (that is for a chunk planner such as
    :class:`~ctxcomp.planners.knapsack.KnapsackPlanner`) and passes any per-chunk quotas
    of the budget it is given through to the stages (as a nested pipeline receives them).

    Example:
        >>> from ctxcomp.tokens import get_counter
        >>> plan = GeometricPlanner().plan("q", [Chunk("a b c d " * 50, id="x")], Budget(ratio=4),
        ...                                get_counter("gpt-4o-mini"), stages=[StageTarget("a"), StageTarget("b")])
        >>> plan.stage_limits
        (100, 50)
    """

    name = "geometric"
    requires_query = False

    def config(self) -> dict[str, object]:
        return {}

    def plan(
        self,
        query: str,
        chunks: Sequence[Chunk],
        budget: Budget,
        counter: TokenCounter,
        *,
        stages: Sequence[StageTarget] = (),
    ) -> Plan:
        tokens_in = input_tokens(chunks, counter)
        limit = budget.limit(tokens_in)
        limits = schedule(tokens_in, limit, stages)
        sizes = counter.count_many([c.text for c in chunks])
        plans = tuple(
            ChunkPlan(c.id, True, budget.quota(c.id), None,
                      "kept (the geometric planner drops no chunk)"
                      + (", quota from the caller's budget" if budget.quota(c.id) is not None else ""), n)
            for c, n in zip(chunks, sizes, strict=True)
        )
        ratios = [f"{a / b:.2g}x" for a, b in zip((tokens_in, *limits), limits, strict=False)]
        return Plan(self.name, plans, limits,
                    reason=f"{tokens_in} -> {limit} tokens; stage ratios {', '.join(ratios) or 'none'}")
