"""Stage limits coarse to fine, the default planner, and plan validation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ctxcomp.errors import ConfigError
from ctxcomp.planners.base import GeometricPlanner, check_plan, check_static_targets, schedule
from ctxcomp.tokens import get_counter
from ctxcomp.types import Budget, Chunk, ChunkPlan, Plan, StageTarget

targets = st.lists(st.one_of(
    st.builds(StageTarget, st.just("free")),
    st.builds(StageTarget, st.just("r"), ratio=st.floats(1, 8)),
    st.builds(StageTarget, st.just("m"), max_tokens=st.integers(1, 5000)),
), min_size=1, max_size=4)


@given(st.integers(1, 100_000), st.integers(1, 100_000), targets)
def test_schedule_never_rises_and_ends_within_the_budget(start: int, final: int, stages: list) -> None:
    limits = schedule(start, final, stages)
    assert len(limits) == len(stages)
    assert all(b <= a for a, b in itertools.pairwise(limits))
    assert limits[-1] <= max(final, 1) and all(x >= 1 for x in limits)


def test_free_stages_share_the_reduction_geometrically() -> None:
    assert schedule(8000, 1000, [StageTarget("a"), StageTarget("b"), StageTarget("c")]) == (4000, 2000, 1000)
    assert schedule(1000, 100, [StageTarget("a", ratio=2), StageTarget("b")]) == (500, 100)
    assert schedule(1000, 100, [StageTarget("a", max_tokens=300), StageTarget("b")]) == (300, 100)


def test_stage_ratio_below_one_and_rising_caps_are_errors() -> None:
    with pytest.raises(ConfigError, match="ratio must be a number >= 1"):
        StageTarget("a", ratio=0.5)
    with pytest.raises(ConfigError, match="must not increase"):
        check_static_targets([StageTarget("a", max_tokens=100), StageTarget("b", max_tokens=200)])


def test_geometric_planner_keeps_everything_and_passes_quotas_through() -> None:
    chunks = [Chunk("alpha beta gamma " * 20, id="a"), Chunk("delta " * 30, id="b")]
    plan = GeometricPlanner().plan("", chunks, Budget(ratio=4, quotas={"a": 7}), get_counter("gpt-4o-mini"),
                                   stages=[StageTarget("x"), StageTarget("y")])
    assert [c.keep for c in plan.chunks] == [True, True]
    assert plan.quotas() == {"a": 7}
    assert plan.stage_limits[0] > plan.stage_limits[1]


def test_check_plan_rejects_broken_plans() -> None:
    chunks = [Chunk("x", id="a")]
    good = Plan("p", (ChunkPlan("a", True),), (5,))
    assert check_plan(good, chunks, 1, 5) is good
    for bad in (Plan("p", (ChunkPlan("b", True),), (5,)), Plan("p", (ChunkPlan("a", True),), (5, 6)),
                Plan("p", (ChunkPlan("a", True),), (9,)), Plan("p", (ChunkPlan("a", True, quota=-1),), (5,))):
        with pytest.raises(ConfigError):
            check_plan(bad, chunks, 1 if len(bad.stage_limits) == 1 else 2, 5)
