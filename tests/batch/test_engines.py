"""The engines give the same output: local, a spawned process pool, and real Ray."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ctxcomp import Budget
from ctxcomp.batch import compress_dataset

from .conftest import TRUNCATE, make_records

BUDGET = Budget(max_tokens=60)


def _texts(records: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r, sort_keys=True) for r in records]


def _rounded(value: Any) -> Any:
    """``value`` with every float rounded to 6 significant digits."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def test_processes_equal_local(records: list[dict[str, Any]]) -> None:
    local = compress_dataset(records, pipeline=TRUNCATE, budget=BUDGET, batch_size=4, timings=False)
    pool = compress_dataset(records, pipeline=TRUNCATE, budget=BUDGET, batch_size=4, timings=False,
                            engine="processes", workers=2)
    assert pool.summary.engine == "processes" and pool.summary.workers == 2
    assert _texts(pool.records) == _texts(local.records) and len(local.records) == len(records)


@pytest.mark.slow
def test_ray_equals_local_on_200_requests(demo_chunks: list[Any]) -> None:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    records = make_records(demo_chunks, 200)
    local = compress_dataset(records, pipeline=TRUNCATE, budget=BUDGET, batch_size=8, timings=False)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        distributed = compress_dataset(records, pipeline=TRUNCATE, budget=BUDGET, batch_size=8, timings=False,
                                       engine="ray", workers=2, ray={"window": 10})
        assert ray.is_initialized()  # the job used this instance and left it running
    finally:
        ray.shutdown()
    assert distributed.summary.compressed == 200 and distributed.summary.engine == "ray"
    assert _texts(distributed.records) == _texts(local.records)


@pytest.mark.model
@pytest.mark.slow
def test_embedding_stage_same_output_in_processes(demo_chunks: list[Any]) -> None:
    records = make_records(demo_chunks, 4)
    spec = {"stages": ["embedding"]}
    local = compress_dataset(records, pipeline=spec, budget=Budget(ratio=4), batch_size=2, timings=False)
    pool = compress_dataset(records, pipeline=spec, budget=Budget(ratio=4), batch_size=2, timings=False,
                            engine="processes", workers=2)
    assert [r["text"] for r in pool.records] == [r["text"] for r in local.records]
    # the same output; model scores may differ in their last bits (workers use fewer threads,
    # so float sums run in another order)
    assert _texts(_rounded(pool.records)) == _texts(_rounded(local.records))
