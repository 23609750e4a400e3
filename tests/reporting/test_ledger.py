from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxcomp.reporting.ledger import Ledger
from ctxcomp.reporting.usage import make_usage
from ctxcomp.types import CompressedContext


def _ctx(tokens_in: int, tokens_out: int, model: str = "gpt-4o-mini") -> CompressedContext:
    return CompressedContext((), "", tokens_in, tokens_out, model=model,
                             cost_before=tokens_in * 1e-6, cost_after=tokens_out * 1e-6)


def test_totals_by_tenant_and_model(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.record(_ctx(1000, 100), tenant="a", seconds=0.5)
    ledger.record(_ctx(500, 250, "gpt-4o"), tenant="b", cache_hit=True)
    total = ledger.totals()
    assert (total.requests, total.tokens_in, total.tokens_out, total.cache_hits) == (2, 1500, 350, 1)
    assert total.tokens_saved == 1150 and total.cost_saved == pytest.approx(1150e-6)
    assert ledger.totals(tenant="a").tokens_out == 100
    assert set(ledger.by("model")) == {"gpt-4o-mini", "gpt-4o"}
    with pytest.raises(ValueError):
        ledger.by("colour")
    ledger.record_usage(make_usage("gpt-4o-mini", 1200, 30, tenant="a"))
    ledger.record_usage(make_usage("unpriced-llm", 10, 1))
    usage = ledger.usage_totals()
    assert (usage.calls, usage.input_tokens, usage.output_tokens) == (2, 1210, 31)
    assert usage.cost == pytest.approx(1200 * 0.15e-6 + 30 * 0.6e-6)
    assert [u.model for u in ledger.usage(tenant="a")] == ["gpt-4o-mini"]
    rows = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["compression", "compression", "llm_usage", "llm_usage"]
    assert rows[2]["input_tokens"] == 1200


def test_bad_usage_numbers() -> None:
    from ctxcomp.errors import InputError

    with pytest.raises(InputError):
        make_usage("gpt-4o-mini", -1, 0)
