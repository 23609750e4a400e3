"""Spans checked with OpenTelemetry's in-memory exporter: attributes and parent links."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ctxcomp.pipeline import Pipeline
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.reporting.tracing import SPAN_COMPRESS, OtelTracing
from ctxcomp.types import Budget

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

CHUNKS = [f"Passage {i} talks about topic {i} at some length, with several more words." for i in range(12)]


@pytest.fixture
def traced() -> Iterator[tuple[Any, InMemorySpanExporter, Pipeline]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    pipe = Pipeline(["truncate", "truncate"], Budget(max_tokens=40),
                    ledger=Ledger(observers=[OtelTracing(provider)]), tenant="acme")
    yield provider.get_tracer("app"), exporter, pipe
    provider.shutdown()


def test_spans_are_children_of_the_callers_span(traced: tuple[Any, InMemorySpanExporter, Pipeline]) -> None:
    tracer, exporter, pipe = traced
    with tracer.start_as_current_span("answer-question") as parent:
        ctx = pipe.compress("", CHUNKS)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    compress = spans[SPAN_COMPRESS]
    stages = [s for s in exporter.get_finished_spans() if s.name.startswith("ctxcomp.stage")]
    assert compress.parent is not None and compress.parent.span_id == parent.get_span_context().span_id
    assert compress.context.trace_id == parent.get_span_context().trace_id
    assert [s.name for s in stages] == ["ctxcomp.stage truncate"] * 2
    assert all(s.parent is not None and s.parent.span_id == compress.context.span_id for s in stages)
    assert compress.start_time <= stages[0].start_time <= stages[1].start_time <= compress.end_time
    attrs = compress.attributes
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini" and attrs["gen_ai.operation.name"] == "compress"
    assert attrs["gen_ai.usage.input_tokens"] == 0  # extractive stages call no model
    assert attrs["ctxcomp.tokens_in"] == ctx.tokens_in and attrs["ctxcomp.tokens_out"] == ctx.tokens_out
    assert attrs["ctxcomp.tokens_saved"] == ctx.tokens_saved
    assert attrs["ctxcomp.ratio"] == pytest.approx(ctx.ratio)
    assert attrs["ctxcomp.cache_hit"] is False and attrs["ctxcomp.tenant"] == "acme"
    assert attrs["ctxcomp.pipeline"] == pipe.config_digest()
    assert attrs["ctxcomp.saved_usd"] == pytest.approx(ctx.cost_saved)
    assert stages[0].attributes["ctxcomp.tokens_in"] == ctx.stages[0].tokens_in


def test_cache_hit_has_no_stage_spans_and_no_parent_starts_a_trace(
        traced: tuple[Any, InMemorySpanExporter, Pipeline]) -> None:
    _, exporter, pipe = traced
    pipe.compress("", CHUNKS)
    exporter.clear()
    pipe.compress("", CHUNKS)  # served by the pipeline's context cache
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == [SPAN_COMPRESS]
    assert spans[0].attributes["ctxcomp.cache_hit"] is True and spans[0].parent is None


def test_unknown_price_is_absent_not_zero() -> None:
    from ctxcomp.reporting.records import CompressionRecord

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ledger = Ledger(observers=[OtelTracing(provider, hash_tenants=True)])
    ledger.add(CompressionRecord.from_counts("mystery-llm", 100, 10, tenant="secret"))
    attrs = exporter.get_finished_spans()[0].attributes
    assert "ctxcomp.saved_usd" not in attrs and "ctxcomp.cost_before_usd" not in attrs
    assert attrs["ctxcomp.tenant"].startswith("t-") and "secret" not in attrs["ctxcomp.tenant"]
