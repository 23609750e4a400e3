from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ctxcomp.reporting.aggregate import MAX_BUCKETS, MAX_SERIES_GROUPS, ReportBuilder, build_report
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.reporting.records import CompressionRecord
from ctxcomp.reporting.text import render_summary
from ctxcomp.types import CompressedContext


def test_report_totals_match_the_live_ledger(tmp_path: Path, make_ctx: Callable[..., CompressedContext]) -> None:
    path = tmp_path / "l.jsonl"
    with Ledger(path) as ledger:
        for i in range(200):
            ledger.record(make_ctx(1000 + i, 50 + i, llm_tokens=(20, 5), llm_cost=1e-6), tenant=f"t{i % 3}",
                          seconds=0.01 * (i % 10), cache_hit=i % 4 == 0, pipeline="p")
        live = ledger.totals()
    report = build_report(str(path))
    assert report.totals == live
    assert sum(report.ratio_counts) == 200
    assert {s.name: s.runs for s in report.stages} == {"embedding": 150, "summarize": 150}  # misses only
    assert report.latency["cache hits"].count == 50 and report.latency["all"].p50 is not None
    assert sum(report.series.requests) == 200 and sum(report.series.cache_hits) == 50
    assert sum(map(sum, report.series.tokens_saved["tenant"].values())) == live.tokens_saved


def test_series_stay_bounded_over_a_long_span() -> None:
    builder = ReportBuilder("x")
    for hour in range(24 * 90):  # 90 days, hourly, 300 tenants
        builder.add(CompressionRecord.from_counts("gpt-4o-mini", 100, 10, tenant=f"t{hour % 300}",
                                                  timestamp=1_700_000_000.0 + 3600 * hour))
    report = builder.build()
    series = report.series
    assert len(series.starts) <= MAX_BUCKETS and series.bucket_seconds >= 86400
    assert sum(series.requests) == 24 * 90
    assert len(series.tokens_saved["tenant"]) == MAX_SERIES_GROUPS + 1  # the rest under "(other)"
    assert sum(map(sum, series.tokens_saved["tenant"].values())) == report.totals.tokens_saved
    assert len(report.groups["tenant"]) == 300  # tables keep every tenant


def test_unknown_model_is_unknown_not_zero() -> None:
    builder = ReportBuilder("x")
    builder.add(CompressionRecord.from_counts("mystery-llm", 1000, 100, timestamp=1.0))
    builder.add(CompressionRecord.from_counts("gpt-4o-mini", 1000, 100, timestamp=2.0))
    text = render_summary(builder.build())
    mystery = next(line for line in text.splitlines() if line.startswith("mystery-llm"))
    cells = re.split(r"\s{2,}", mystery)  # model ... ratio, saved USD (net), compressor USD, cache hits
    assert cells[5:7] == ["10.0x", "unknown"]
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert "(+1 unpriced)" in total


def test_empty_report() -> None:
    report = ReportBuilder("empty.jsonl").build()
    assert report.empty and report.totals.requests == 0 and report.series.starts == []
    assert "no records (the ledger is empty)" in render_summary(report)
