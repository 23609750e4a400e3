"""The planned cascade: every stage under its own limit, quotas, nesting and batches."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from ctxcomp.assembly import Assembly, Unit, select_units
from ctxcomp.compressors.base import BaseCompressor
from ctxcomp.errors import ConfigError, InputError
from ctxcomp.pipeline import Pipeline
from ctxcomp.planners.knapsack import KnapsackPlanner
from ctxcomp.planners.utility import ChunkScores
from ctxcomp.text import split_sentences
from ctxcomp.tokens import TokenCounter, get_counter
from ctxcomp.types import Budget, Chunk

COUNTER = get_counter("gpt-4o-mini")


class Longest(BaseCompressor):
    """Query-free test stage that honours quotas: keeps the longest sentences."""

    name = "longest"
    requires_query = False

    def _propose(self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter,
                 quotas: Sequence[int | None] | None = None) -> Assembly:
        units = [Unit(i, s, float(s[1] - s[0])) for i, c in enumerate(chunks) for s in split_sentences(c.text)]
        return select_units(chunks, units, counter, limit, quotas)


class LegacyFirst(BaseCompressor):
    """A third-party stage written before quotas existed (no ``quotas`` argument)."""

    name = "legacy"
    requires_query = False

    def _propose(self, query: str, chunks: Sequence[Chunk], limit: int, counter: TokenCounter) -> Assembly:  # type: ignore[override]
        units = [Unit(i, s, -float(i)) for i, c in enumerate(chunks) for s in split_sentences(c.text)]
        return select_units(chunks, units, counter, limit)


class ByLength:
    """A model-free chunk scorer for the planner: longer chunks are worth more."""

    name = "by-length"

    def score(self, query: str, chunks: Sequence[Chunk]) -> ChunkScores:
        return ChunkScores(np.array([len(c.text) for c in chunks], dtype=float), None)


def test_every_stage_reduces_under_its_own_limit(demo_chunks: list[Chunk]) -> None:
    ctx = Pipeline([Longest(), "truncate"], Budget(max_tokens=120), cache=False).compress("", demo_chunks)
    names = [s.name for s in ctx.stages]
    assert names == ["longest", "truncate"]
    for stage in ctx.stages:
        assert stage.tokens_out < stage.tokens_in, stage
        assert stage.tokens_out <= (stage.limit or 0)
    assert ctx.stages[0].limit > ctx.stages[1].limit == 120 >= ctx.tokens_out
    assert ctx.plan is not None and ctx.plan.stage_limits == (ctx.stages[0].limit, 120)


def test_a_stage_spec_may_set_its_own_ratio(demo_chunks: list[Chunk]) -> None:
    pipe = Pipeline([{"name": "truncate", "ratio": 2}, "truncate"], Budget(ratio=10), cache=False)
    ctx = pipe.compress("", demo_chunks)
    assert ctx.stages[0].limit == ctx.tokens_in // 2
    assert ctx.stages[1].limit == ctx.budget_tokens


def test_quotas_from_the_budget_are_honoured() -> None:
    chunks = [Chunk("One two three four five six seven. " * 6, id="a"),
              Chunk("Eight nine ten eleven twelve thirteen fourteen. " * 6, id="b")]
    ctx = Pipeline([Longest()], cache=False).compress("", chunks, Budget(max_tokens=60, quotas={"a": 20}))
    kept = {c.source_id: c.tokens_out for c in ctx.chunks}
    assert kept["a"] <= 20 and ctx.tokens_out <= 60 and kept.get("b", 0) > 0


def test_planner_quotas_reach_the_stage_and_are_reported(demo_chunks: list[Chunk]) -> None:
    planner = KnapsackPlanner(ByLength(), dynamic=True)
    ctx = Pipeline([Longest()], Budget(max_tokens=200), planner=planner, cache=False).compress("q", demo_chunks)
    assert ctx.plan is not None and ctx.stages[0].name == "plan:knapsack"
    for chunk_plan in ctx.plan.chunks:
        if chunk_plan.keep:
            assert chunk_plan.quota is not None and chunk_plan.tokens_kept is not None
            assert chunk_plan.tokens_kept <= chunk_plan.quota
            assert "rank" in chunk_plan.reason
        else:
            assert chunk_plan.tokens_kept == 0 and chunk_plan.reason.startswith("dropped")
    assert ctx.tokens_out <= 200


def test_a_stage_that_ignores_quotas_still_meets_its_limit(demo_chunks: list[Chunk]) -> None:
    planner = KnapsackPlanner(ByLength(), dynamic=True)
    ctx = Pipeline([LegacyFirst()], Budget(max_tokens=150), planner=planner, cache=False).compress("q", demo_chunks)
    assert ctx.tokens_out <= 150 and ctx.text


def test_nested_pipeline_and_batch_equal_single_calls(demo_chunks: list[Chunk]) -> None:
    inner = Pipeline([Longest(), "truncate"], cache=False, name="inner")
    outer = Pipeline([inner], Budget(ratio=6), cache=False)
    flat = Pipeline([Longest(), "truncate"], Budget(ratio=6), cache=False)
    requests = [("", demo_chunks), ("", demo_chunks[:7]), ("", demo_chunks[5:])]
    singles = [flat.compress(q, c) for q, c in requests]
    assert [c.text for c in outer.compress_batch(requests)] == [c.text for c in singles]
    assert [c.text for c in flat.compress_batch(requests)] == [c.text for c in singles]
    cached = Pipeline([Longest(), "truncate"], Budget(ratio=6))
    first = cached.compress_batch(requests)
    again = cached.compress_batch(requests)
    assert [c.text for c in first] == [c.text for c in again] == [c.text for c in singles]
    assert all(s.cache_hit for c in again for s in c.stages)
    assert not any(s.cache_hit for c in first for s in c.stages)


def test_plan_is_in_to_dict_and_json(demo_chunks: list[Chunk]) -> None:
    planner = KnapsackPlanner(ByLength())
    ctx = Pipeline([Longest()], Budget(max_tokens=100), planner=planner, cache=False).compress("q", demo_chunks)
    data = json.loads(json.dumps(ctx.to_dict()))
    assert data["plan"]["planner"] == "knapsack"
    assert len(data["plan"]["chunks"]) == len(demo_chunks)
    assert {"chunk_id", "keep", "quota", "reason", "tokens_kept"} <= set(data["plan"]["chunks"][0])


def test_the_planner_is_part_of_the_config_digest() -> None:
    a = Pipeline(["truncate"], planner={"name": "knapsack", "utility": "bm25"})
    b = Pipeline(["truncate"], planner={"name": "knapsack", "utility": "bm25", "dynamic": True})
    c = Pipeline([{"name": "truncate", "ratio": 2}])
    assert len({a.config_digest(), b.config_digest(), c.config_digest(), Pipeline(["truncate"]).config_digest()}) == 4


def test_bad_pipeline_input() -> None:
    with pytest.raises(InputError, match="no chunks"):
        Pipeline(["truncate"], Budget(max_tokens=5)).compress("", [])
    with pytest.raises(ConfigError, match="ratio must be a number >= 1"):
        Pipeline([{"name": "truncate", "ratio": 0.5}])
    with pytest.raises(ConfigError, match="must not increase"):
        Pipeline([{"name": "truncate", "max_tokens": 50}, {"name": "truncate", "max_tokens": 80}])
    with pytest.raises(ConfigError, match="planner"):
        Pipeline(["truncate"], planner=42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="3 requests"):
        Pipeline(["truncate"]).compress_batch([("", ["a"])] * 3, [Budget(max_tokens=1)] * 2)
