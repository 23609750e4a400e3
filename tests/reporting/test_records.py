from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest

from ctxcomp.errors import InputError
from ctxcomp.reporting.records import CompressionRecord, from_row, to_row
from ctxcomp.reporting.usage import make_usage
from ctxcomp.types import CompressedContext


def test_rows_round_trip(make_ctx: Callable[..., CompressedContext]) -> None:
    record = CompressionRecord.from_context(make_ctx(900, 90, llm_tokens=(10, 2), llm_cost=None), tenant="t",
                                            seconds=0.3, pipeline="abc")
    usage = make_usage("gpt-4o-mini", 100, 5, provider="openai", expected_input_tokens=98)
    for original in (record, usage):
        assert from_row(json.loads(json.dumps(to_row(original)))) == original


def test_version_1_rows_still_read() -> None:
    old = {"kind": "compression", "timestamp": 1.0, "tenant": "a", "model": "gpt-4o-mini", "tokens_in": 10,
           "tokens_out": 5, "cost_before": None, "cost_after": None, "seconds": 0.1, "cache_hit": False}
    record = from_row(old)
    assert isinstance(record, CompressionRecord) and record.pipeline == "" and record.stages == ()
    old_usage = {"kind": "llm_usage", "model": "m", "input_tokens": 3, "output_tokens": 1, "cached_tokens": 0,
                 "cost": None, "run_id": "", "timestamp": 2.0, "tenant": "default"}
    assert from_row(old_usage).provider == ""  # type: ignore[union-attr]


@pytest.mark.parametrize("row, message", [
    ([1, 2], "JSON object"),
    ({"kind": "nope"}, "unknown row kind"),
    ({"kind": "compression", "v": 99}, "newer"),
    ({"kind": "compression", "timestamp": 1.0, "model": "m", "tokens_in": "10", "tokens_out": 1,
      "seconds": 0.1}, "tokens_in"),
    ({"kind": "compression", "timestamp": 1.0, "model": "m", "tokens_in": 10, "tokens_out": 1, "seconds": 0.1,
      "stages": [{"name": "x", "bogus": 1, "tokens_in": 1}]}, "bad compression row"),
])
def test_bad_rows_say_what_is_wrong(row: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        from_row(row)


def test_unknown_model_costs_are_none_not_zero() -> None:
    record = CompressionRecord.from_counts("surely-not-a-model", 1000, 100)
    assert record.cost_before is None and record.cost_saved is None and record.net_saved is None
    assert record.ratio == 10 and CompressionRecord.from_counts("gpt-4o-mini", 10, 0).ratio == math.inf
