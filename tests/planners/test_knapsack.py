"""The knapsack planner on a fake scorer: budget, duplicates, quotas, explanations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctxcomp.errors import ConfigError, InputError
from ctxcomp.planners.knapsack import KnapsackPlanner
from ctxcomp.planners.utility import ChunkScores, jaccard_matrix
from ctxcomp.tokens import get_counter
from ctxcomp.types import Budget, Chunk, StageTarget

COUNTER = get_counter("gpt-4o-mini")
ONE_STAGE = [StageTarget("s")]


class Fixed:
    """A scorer that returns given values (and word-overlap similarity)."""

    name = "fixed"

    def __init__(self, values: Sequence[float]) -> None:
        self.values = np.asarray(values, dtype=float)

    def score(self, query: str, chunks: Sequence[Chunk]) -> ChunkScores:
        return ChunkScores(self.values[: len(chunks)], jaccard_matrix([c.text for c in chunks]))


def _chunks(n: int, words: int = 30) -> list[Chunk]:
    return [Chunk(" ".join(f"w{i}x{j}" for j in range(words)) + ".", id=f"d{i}") for i in range(n)]


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=12), st.integers(1, 400),
       st.sampled_from(["dp", "greedy", "auto"]), st.booleans())
@settings(max_examples=80, deadline=None)
def test_no_plan_exceeds_the_budget(values: list[float], tokens: int, solver: str, dynamic: bool) -> None:
    chunks = _chunks(len(values))
    planner = KnapsackPlanner(Fixed(values), solver=solver, dynamic=dynamic, stage_ratio=2)
    plan = planner.plan("q", chunks, Budget(max_tokens=tokens), COUNTER, stages=ONE_STAGE)
    kept = plan.kept()
    assert kept, "a plan never keeps nothing"
    assert plan.stage_limits == (min(tokens, sum(c.tokens_in for c in kept) + 2 * (len(kept) - 1)),) or \
        plan.stage_limits[-1] <= tokens
    costs = sum(-(-c.tokens_in // 2) for c in kept)
    assert costs <= tokens or len(kept) == 1  # one chunk over budget: the documented fallback
    if dynamic:
        assert sum(c.quota or 0 for c in kept) <= tokens


def test_duplicates_are_not_both_selected() -> None:
    base = _chunks(3)
    dup = Chunk(base[0].text, id="copy")  # same words, another id
    planner = KnapsackPlanner(Fixed([0.9, 0.5, 0.4, 0.85]), stage_ratio=1)
    plan = planner.plan("q", [*base, dup], Budget(max_tokens=10_000), COUNTER, stages=ONE_STAGE)
    kept = {c.chunk_id for c in plan.kept()}
    assert "d0" in kept and "copy" not in kept
    dropped = next(c for c in plan.chunks if c.chunk_id == "copy")
    assert "redundant with d0" in dropped.reason


def test_negative_marginal_utility_stops_selection_even_with_room_left() -> None:
    planner = KnapsackPlanner(Fixed([1.0, 0.6, 0.0]), stage_ratio=1)
    plan = planner.plan("q", _chunks(3), Budget(max_tokens=10_000), COUNTER, stages=ONE_STAGE)
    assert [c.chunk_id for c in plan.kept()] == ["d0", "d1"]
    assert "utility too low" in plan.chunks[2].reason


def test_dynamic_quotas_favour_the_top_ranked_chunk() -> None:
    planner = KnapsackPlanner(Fixed([0.2, 1.0, 0.6, 0.0]), dynamic=True, stage_ratio=3)
    plan = planner.plan("q", _chunks(4), Budget(max_tokens=200), COUNTER, stages=ONE_STAGE)
    quotas = {c.chunk_id: c.quota for c in plan.kept()}
    assert set(quotas) == {"d0", "d1", "d2"}  # d3 is worth nothing: dropped
    assert quotas["d1"] > quotas["d2"] > quotas["d0"]
    assert sum(quotas.values()) <= 200
    assert all(c.ratio and c.ratio > 1 for c in plan.kept())


def test_budget_smaller_than_the_smallest_chunk_keeps_the_best_one_for_the_stages() -> None:
    planner = KnapsackPlanner(Fixed([0.1, 0.9]), stage_ratio=1)
    plan = planner.plan("q", _chunks(2), Budget(max_tokens=3), COUNTER, stages=ONE_STAGE)
    assert [c.chunk_id for c in plan.kept()] == ["d1"]
    assert "best one is kept" in plan.reason and plan.stage_limits == (3,)


def test_topk_keeps_rank_order_until_full() -> None:
    planner = KnapsackPlanner(Fixed([0.3, 0.9, 0.6, 0.1]), mode="topk", stage_ratio=1, redundancy=0)
    one = COUNTER.count(_chunks(1)[0].text)
    plan = planner.plan("q", _chunks(4), Budget(max_tokens=2 * one + 5), COUNTER, stages=ONE_STAGE)
    assert [c.chunk_id for c in plan.kept()] == ["d1", "d2"]


def test_mcts_solver_plans_within_budget() -> None:
    planner = KnapsackPlanner(Fixed(list(np.linspace(0.1, 1, 10))), solver="mcts", stage_ratio=2)
    plan = planner.plan("q", _chunks(10), Budget(max_tokens=100), COUNTER, stages=ONE_STAGE)
    assert sum(-(-c.tokens_in // 2) for c in plan.kept()) <= 100


@pytest.mark.parametrize("bad", [[0.5, float("nan")], [0.5, -0.2]])
def test_nan_or_negative_utilities_are_a_clear_error(bad: list[float]) -> None:
    planner = KnapsackPlanner(Fixed(bad), calibration="none")
    with pytest.raises(InputError, match="NaN, infinite or negative"):
        planner.plan("q", _chunks(2), Budget(max_tokens=10), COUNTER, stages=ONE_STAGE)
    with pytest.raises(InputError, match="finite"):
        KnapsackPlanner(Fixed([0.5, float("nan")])).plan("q", _chunks(2), Budget(max_tokens=10), COUNTER,
                                                        stages=ONE_STAGE)


def test_retrieval_utility_needs_scores() -> None:
    with pytest.raises(InputError, match="needs a score on every chunk"):
        KnapsackPlanner("retrieval").plan("q", _chunks(2), Budget(max_tokens=10), COUNTER, stages=ONE_STAGE)
    scored = [Chunk(c.text, id=c.id, score=s) for c, s in zip(_chunks(3), [0.1, 0.8, 0.5], strict=True)]
    plan = KnapsackPlanner("retrieval", stage_ratio=1).plan("q", scored, Budget(max_tokens=60), COUNTER,
                                                            stages=ONE_STAGE)
    assert plan.kept()[0].chunk_id == "d1"


@pytest.mark.parametrize("settings_", [{"mode": "x"}, {"solver": "ilp"}, {"stage_ratio": 0.5}, {"spread": 2},
                                       {"calibration": "z"}, {"similar_above": 1.0}])
def test_bad_settings_are_config_errors(settings_: dict) -> None:
    with pytest.raises(ConfigError):
        KnapsackPlanner("bm25", **settings_)
