"""Token and cost reporting: the ledger and its sinks, Prometheus metrics, OpenTelemetry
spans, the terminal/HTML report and the usage audit.

Names are exported lazily: ``import ctxcomp.reporting`` loads nothing heavy, and
prometheus-client, opentelemetry and matplotlib (extra ``report``) load only when the
metrics, spans or charts are used.

Example:
    >>> from ctxcomp.reporting import Ledger, PrometheusMetrics, OtelTracing  # doctest: +SKIP
    >>> ledger = Ledger("ledger.jsonl", observers=[PrometheusMetrics(), OtelTracing()])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctxcomp._deps import lazy_exports

_LAZY = {
    "Ledger": "ctxcomp.reporting.ledger",
    "Observer": "ctxcomp.reporting.ledger",
    "LedgerTotals": "ctxcomp.reporting.totals",
    "CompressionRecord": "ctxcomp.reporting.records",
    "LLMUsage": "ctxcomp.reporting.usage",
    "UsageTotals": "ctxcomp.reporting.usage",
    "make_usage": "ctxcomp.reporting.usage",
    "Sink": "ctxcomp.reporting.sinks",
    "MemorySink": "ctxcomp.reporting.sinks",
    "JsonlSink": "ctxcomp.reporting.sinks",
    "SQLiteSink": "ctxcomp.reporting.sinks",
    "LedgerReader": "ctxcomp.reporting.reader",
    "LabelPolicy": "ctxcomp.reporting.labels",
    "PrometheusMetrics": "ctxcomp.reporting.metrics",
    "OtelTracing": "ctxcomp.reporting.tracing",
    "AuditConfig": "ctxcomp.reporting.audit",
    "count_prompt_tokens": "ctxcomp.reporting.audit",
    "count_text_tokens": "ctxcomp.reporting.audit",
    "ReportBuilder": "ctxcomp.reporting.aggregate",
    "build_report": "ctxcomp.reporting.aggregate",
    "render_summary": "ctxcomp.reporting.text",
    "render_compression": "ctxcomp.reporting.text",
    "render_html": "ctxcomp.reporting.html",
    "write_html": "ctxcomp.reporting.html",
    "serve_metrics": "ctxcomp.reporting.serve",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:
    from ctxcomp.reporting.aggregate import ReportBuilder, build_report
    from ctxcomp.reporting.audit import AuditConfig, count_prompt_tokens, count_text_tokens
    from ctxcomp.reporting.html import render_html, write_html
    from ctxcomp.reporting.labels import LabelPolicy
    from ctxcomp.reporting.ledger import Ledger, Observer
    from ctxcomp.reporting.metrics import PrometheusMetrics
    from ctxcomp.reporting.reader import LedgerReader
    from ctxcomp.reporting.records import CompressionRecord
    from ctxcomp.reporting.serve import serve_metrics
    from ctxcomp.reporting.sinks import JsonlSink, MemorySink, Sink, SQLiteSink
    from ctxcomp.reporting.text import render_compression, render_summary
    from ctxcomp.reporting.totals import LedgerTotals
    from ctxcomp.reporting.tracing import OtelTracing
    from ctxcomp.reporting.usage import LLMUsage, UsageTotals, make_usage

__getattr__ = lazy_exports("ctxcomp.reporting", _LAZY, globals())
