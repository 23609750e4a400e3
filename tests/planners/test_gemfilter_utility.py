"""The gemfilter utility: the planner and the gemfilter stage share one forward pass."""

from __future__ import annotations

import pytest

from ctxcomp.assembly import Unit
from ctxcomp.errors import ConfigError, UnknownNameError
from ctxcomp.planners.utility import build_utility
from ctxcomp.score_memo import ScoreMemo, current_memo, memo_scope
from ctxcomp.types import Budget, Chunk


def test_memo_serves_a_subset_of_a_scored_request_only() -> None:
    memo = ScoreMemo(size=2)
    chunks = [Chunk("a b. c d.", id="x"), Chunk("e f.", id="y"), Chunk("g h.", id="z")]
    units = [Unit(0, (0, 4), 1.0), Unit(0, (5, 9), 2.0), Unit(1, (0, 4), 3.0), Unit(2, (0, 4), 4.0)]
    memo.put("owner", "q", chunks, units)
    got = memo.get("owner", "q", [chunks[2], chunks[0]])
    assert got == [Unit(0, (0, 4), 4.0), Unit(1, (0, 4), 1.0), Unit(1, (5, 9), 2.0)]
    assert memo.get("owner", "other query", chunks[:1]) is None
    assert memo.get("other owner", "q", chunks[:1]) is None
    assert memo.get("owner", "q", [Chunk("never scored")]) is None
    memo.put("owner", "q2", chunks[:1], units[:2])
    memo.put("owner", "q3", chunks[:1], units[:2])  # size 2: the first entry is gone
    assert memo.get("owner", "q", chunks[1:2]) is None


def test_memo_records_a_repeated_text_once() -> None:
    memo = ScoreMemo()
    same = [Chunk("one. two.", id="a"), Chunk("one. two.", id="b")]
    memo.put("o", "q", same, [Unit(0, (0, 4), 1.0), Unit(1, (0, 4), 9.0)])
    assert memo.get("o", "q", same[:1]) == [Unit(0, (0, 4), 1.0)]


def test_the_memo_lives_only_inside_a_scope() -> None:
    assert current_memo() is None
    with memo_scope() as outer:
        assert current_memo() is outer
        with memo_scope() as inner:  # a nested pipeline shares its parent's memo
            assert inner is outer
        assert current_memo() is outer
    assert current_memo() is None


def test_utility_mappings_are_checked() -> None:
    with pytest.raises(UnknownNameError, match="gemfilter"):
        build_utility({"name": "nope"})
    with pytest.raises(ConfigError, match="needs a 'name'"):
        build_utility({"scorer": "x.json"})
    with pytest.raises(ConfigError, match="bm25"):
        build_utility({"name": "bm25", "k1": 2})


@pytest.mark.model
def test_the_stage_reuses_the_planners_forward_pass(monkeypatch, tmp_path) -> None:
    pytest.importorskip("torch")
    from ctxcomp.compressors.early_layer import EarlyLayerFilter
    from ctxcomp.models.testing import build_tiny_lm
    from ctxcomp.pipeline import Pipeline

    words = ["alpha", "beta", "gamma", "delta", "river", "mountain", "city", "forest", "music", "bridge", "train", "garden"]
    chunks = [Chunk(f"Doc {i}. " + " ".join(
        " ".join(words[(i * 5 + j * 3 + k) % len(words)] for k in range(8)).capitalize() + "." for j in range(4)),
        id=f"d{i}") for i in range(8)]
    model = str(build_tiny_lm(tmp_path, [c.text for c in chunks]))
    settings = {"model": model, "layer": [1, 2], "device": "cpu", "dtype": "fp32"}
    calls = []
    real_run = EarlyLayerFilter._run
    monkeypatch.setattr(EarlyLayerFilter, "_run", lambda self, prompts: calls.append(len(prompts)) or real_run(self, prompts))
    pipe = Pipeline([{"name": "gemfilter", **settings}], Budget(ratio=6), cache=False,
                    planner={"name": "knapsack", "utility": {"name": "gemfilter", **settings}})
    ctx = pipe.compress("river mountain", chunks)
    assert len(calls) == 1  # the planner's pass; the stage reused its scores
    kept = [p for p in ctx.plan.chunks if p.keep]
    assert 0 < len(kept) < len(chunks)
    assert ctx.stages[-1].tokens_out < ctx.stages[-1].tokens_in
    # outside a pipeline run nothing is remembered: a second call computes again
    alone = EarlyLayerFilter(**settings)
    units = alone.score_units("river mountain", chunks)
    assert len(calls) == 2
    assert {u.chunk for u in units} == set(range(len(chunks)))
    pipe.compress("river mountain", chunks)  # a new run: the planner scores again, once
    assert len(calls) == 3
