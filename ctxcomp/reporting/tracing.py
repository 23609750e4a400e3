"""OpenTelemetry spans for compressions (extra ``report``: opentelemetry-api).

:class:`OtelTracing` is a ledger observer. For each compression it emits a span
``ctxcomp.compress`` and, when the stages ran (not a cache hit), one child span
``ctxcomp.stage <name>`` per stage, laid end to end inside it. Observers run on the
caller's thread when the compression is recorded, so the compression span is a child of
the caller's current span when there is one (or of the context passed by the caller's
framework); otherwise it starts a trace.

Attributes follow the GenAI semantic conventions where they apply:
``gen_ai.operation.name`` (``"compress"``), ``gen_ai.request.model`` (the target model)
and ``gen_ai.usage.input_tokens`` / ``gen_ai.usage.output_tokens``, which count only the
tokens the compressor itself exchanged with a model (a summarizing stage; 0 for extractive
stages), so tools that add up ``gen_ai.usage.*`` for billing do not count a compression as
an LLM call. The context sizes and savings are ``ctxcomp.*`` attributes:
``ctxcomp.tokens_in``, ``ctxcomp.tokens_out``, ``ctxcomp.tokens_saved``, ``ctxcomp.ratio``,
``ctxcomp.cache_hit``, ``ctxcomp.tenant``, ``ctxcomp.pipeline``, and, when the prices are
known, ``ctxcomp.cost_before_usd``, ``ctxcomp.cost_after_usd``, ``ctxcomp.saved_usd``
(net) and ``ctxcomp.compressor_usd``.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from ctxcomp._deps import require
from ctxcomp.reporting.audit import Finding
from ctxcomp.reporting.records import CompressionRecord
from ctxcomp.reporting.usage import LLMUsage
from ctxcomp.types import StageReport

SPAN_COMPRESS = "ctxcomp.compress"
SPAN_STAGE = "ctxcomp.stage"


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class OtelTracing:
    """Ledger observer that emits OpenTelemetry spans.

    Args:
        tracer_provider: the provider to get a tracer from (default: the global one set
            with ``opentelemetry.trace.set_tracer_provider``).
        hash_tenants: put ``"t-" + sha256(tenant)[:10]`` in ``ctxcomp.tenant`` instead
            of the name.

    Raises:
        MissingDependencyError: opentelemetry-api is not installed (extra ``report``).

    Example:
        >>> ledger = Ledger(observers=[OtelTracing()])  # doctest: +SKIP
        >>> with tracer.start_as_current_span("answer"):  # doctest: +SKIP
        ...     pipe.compress(query, chunks)  # its span is a child of "answer"
    """

    def __init__(self, tracer_provider: Any = None, *, hash_tenants: bool = False) -> None:
        trace = require("opentelemetry.trace", "report", "OpenTelemetry spans")
        from ctxcomp import __version__

        self._trace = trace
        self.tracer = trace.get_tracer("ctxcomp", __version__, tracer_provider=tracer_provider)
        self.hash_tenants = hash_tenants

    def _tenant(self, tenant: str) -> str:
        if self.hash_tenants:
            return "t-" + hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:10]
        return tenant

    def on_compression(self, record: CompressionRecord) -> None:
        end = _ns(record.timestamp)
        start = end - _ns(record.seconds)
        span = self.tracer.start_span(SPAN_COMPRESS, kind=self._trace.SpanKind.INTERNAL, start_time=start,
                                      attributes=self._compression_attributes(record))
        if not record.cache_hit:
            context = self._trace.set_span_in_context(span)
            at = start
            for stage in record.stages:
                at = self._stage_span(stage, context, at, end)
        span.end(end_time=end)

    def _stage_span(self, stage: StageReport, context: Any, start: int, limit: int) -> int:
        stop = min(limit, start + _ns(stage.seconds))
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "compress", "ctxcomp.stage": stage.name,
            "ctxcomp.tokens_in": stage.tokens_in, "ctxcomp.tokens_out": stage.tokens_out,
            "ctxcomp.tokens_saved": stage.tokens_in - stage.tokens_out,
            "gen_ai.usage.input_tokens": stage.llm_tokens_in, "gen_ai.usage.output_tokens": stage.llm_tokens_out,
        }
        if stage.limit is not None:
            attributes["ctxcomp.limit"] = stage.limit
        if stage.llm_cost is not None:
            attributes["ctxcomp.compressor_usd"] = stage.llm_cost
        if stage.note:
            attributes["ctxcomp.note"] = stage.note
        span = self.tracer.start_span(f"{SPAN_STAGE} {stage.name}", context=context, start_time=start,
                                      attributes=attributes)
        span.end(end_time=stop)
        return stop

    def _compression_attributes(self, record: CompressionRecord) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "compress",
            "gen_ai.request.model": record.model,
            "gen_ai.usage.input_tokens": record.llm_tokens_in,
            "gen_ai.usage.output_tokens": record.llm_tokens_out,
            "ctxcomp.tokens_in": record.tokens_in,
            "ctxcomp.tokens_out": record.tokens_out,
            "ctxcomp.tokens_saved": record.tokens_saved,
            "ctxcomp.cache_hit": record.cache_hit,
            "ctxcomp.tenant": self._tenant(record.tenant),
            "ctxcomp.pipeline": record.pipeline,
            "ctxcomp.stages": len(record.stages),
        }
        if math.isfinite(record.ratio):
            attributes["ctxcomp.ratio"] = record.ratio
        money = {"ctxcomp.cost_before_usd": record.cost_before, "ctxcomp.cost_after_usd": record.cost_after,
                 "ctxcomp.saved_usd": record.net_saved, "ctxcomp.compressor_usd": record.llm_cost}
        attributes.update({k: v for k, v in money.items() if v is not None})  # unknown stays absent, not 0
        return attributes

    def on_usage(self, usage: LLMUsage, finding: Finding | None) -> None:
        """Billed calls get no span of their own (the LLM client's instrumentation makes
        one); a flagged audit finding is an event on the caller's current span."""
        if finding is None or not finding.flagged:
            return
        span = self._trace.get_current_span()
        if span.is_recording():
            span.add_event("ctxcomp.usage_discrepancy", {
                "gen_ai.provider.name": usage.provider, "gen_ai.response.model": usage.model,
                "gen_ai.usage.input_tokens": usage.input_tokens, "ctxcomp.expected_input_tokens": finding.expected,
            })

    def on_drop(self, count: int) -> None:
        return None
