"""Prometheus metrics of a ledger (extra ``report``: prometheus-client).

:class:`PrometheusMetrics` is a ledger observer. Labels: ``model``, ``tenant``,
``pipeline`` (bounded by a :class:`~ctxcomp.reporting.labels.LabelPolicy`).

==========================================  =====================================================
``ctxcomp_compressions_total``              compressions
``ctxcomp_input_tokens_total``              context tokens before compression
``ctxcomp_output_tokens_total``             context tokens after compression
``ctxcomp_saved_tokens_total``              tokens saved
``ctxcomp_net_saved_usd``                   gauge: USD saved net of the compressor's own model
                                            cost (requests where every price is known; it
                                            goes down when a compression cost more than it saved)
``ctxcomp_saved_usd_total``                 prompt USD saved before the compressor's cost
                                            (requests with a known target price)
``ctxcomp_unpriced_compressions_total``     requests whose net saving is unknown (a price is)
``ctxcomp_compressor_llm_tokens_total``      tokens the stages sent to / got from models
                                            (``direction`` = ``input`` / ``output``)
``ctxcomp_compressor_usd_total``            USD the stages spent on models
``ctxcomp_compression_seconds``             histogram of compression latency
``ctxcomp_cache_hits_total`` / ``_misses``  context-cache hits and misses
``ctxcomp_ledger_dropped_total``            records the durable sinks lost to a full queue
``ctxcomp_llm_input_tokens_total``          billed input tokens (``provider``, ``model``, ``tenant``)
``ctxcomp_llm_output_tokens_total``         billed output tokens
``ctxcomp_usage_audited_total``             billed calls checked by the audit (``provider``, ``model``)
``ctxcomp_usage_discrepancies_total``       checked calls whose billed input tokens differed
==========================================  =====================================================

Serve them with :meth:`PrometheusMetrics.serve` or ``ctxcomp serve-metrics``, or put them
on your own registry: ``PrometheusMetrics(registry=prometheus_client.REGISTRY)``.
"""

from __future__ import annotations

from typing import Any

from ctxcomp._deps import require
from ctxcomp.reporting.audit import Finding
from ctxcomp.reporting.labels import Labeler, LabelPolicy
from ctxcomp.reporting.records import CompressionRecord
from ctxcomp.reporting.usage import LLMUsage

#: Compression latency buckets, seconds: a cache hit (ms) up to a model stage on CPU.
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LABELS = ("model", "tenant", "pipeline")


class PrometheusMetrics:
    """Ledger observer that keeps Prometheus counters and a latency histogram.

    Args:
        registry: the prometheus-client ``CollectorRegistry`` to register on (default: a
            new one of its own, served by :meth:`serve`).
        namespace: metric name prefix.
        labels: label cardinality limits (tenant cap / hashing).

    Raises:
        MissingDependencyError: prometheus-client is not installed (extra ``report``).

    Example:
        >>> metrics = PrometheusMetrics(registry=prometheus_client.REGISTRY)  # doctest: +SKIP
        >>> pipe = Pipeline(["embedding"], budget, ledger=Ledger(observers=[metrics]))  # doctest: +SKIP
    """

    def __init__(self, registry: Any = None, *, namespace: str = "ctxcomp",
                 labels: LabelPolicy | None = None) -> None:
        prom = require("prometheus_client", "report", "Prometheus metrics")
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        self.labeler = Labeler(labels)

        def counter(name: str, doc: str, labelnames: tuple[str, ...] = LABELS) -> Any:
            return prom.Counter(name, doc, labelnames, namespace=namespace, registry=self.registry)

        self.compressions = counter("compressions", "Compressions accounted")
        self.input_tokens = counter("input_tokens", "Context tokens before compression")
        self.output_tokens = counter("output_tokens", "Context tokens after compression")
        self.saved_tokens = counter("saved_tokens", "Context tokens saved by compression")
        self.net_saved_usd = prom.Gauge("net_saved_usd", "USD saved net of the compressor's own model cost "
                                        "(requests where every price is known)", LABELS, namespace=namespace,
                                        registry=self.registry)
        self.saved_usd = counter("saved_usd", "Prompt USD saved before the compressor's cost (priced only)")
        self.unpriced = counter("unpriced_compressions", "Compressions whose net USD saving is unknown")
        self.llm_tokens = counter("compressor_llm_tokens", "Tokens the compressor's stages exchanged with models",
                                  (*LABELS, "direction"))
        self.llm_usd = counter("compressor_usd", "USD the compressor's stages spent on models (priced only)")
        self.cache_hits = counter("cache_hits", "Compressions served from the context cache")
        self.cache_misses = counter("cache_misses", "Compressions computed (context cache miss or no cache)")
        self.seconds = prom.Histogram("compression_seconds", "Compression latency as the caller saw it",
                                      LABELS, namespace=namespace, registry=self.registry, buckets=SECONDS_BUCKETS)
        self.dropped = counter("ledger_dropped", "Ledger records the durable sinks lost to a full queue", ())
        usage_labels = ("provider", "model", "tenant")
        self.llm_input = counter("llm_input_tokens", "Input tokens billed by the provider", usage_labels)
        self.llm_output = counter("llm_output_tokens", "Output tokens billed by the provider", usage_labels)
        self.audited = counter("usage_audited", "Billed calls checked against ctxcomp's own count",
                               ("provider", "model"))
        self.discrepancies = counter("usage_discrepancies", "Checked calls whose billed input tokens differed "
                                     "from what ctxcomp sent by more than the threshold", ("provider", "model"))

    def on_compression(self, record: CompressionRecord) -> None:
        labels = (self.labeler.model(record.model), self.labeler.tenant(record.tenant),
                  self.labeler.pipeline(record.pipeline))
        self.compressions.labels(*labels).inc()
        self.input_tokens.labels(*labels).inc(record.tokens_in)
        self.output_tokens.labels(*labels).inc(record.tokens_out)
        self.saved_tokens.labels(*labels).inc(max(0, record.tokens_saved))
        saved, net = record.cost_saved, record.net_saved
        if saved is not None:
            self.saved_usd.labels(*labels).inc(max(0.0, saved))
        if net is None:
            self.unpriced.labels(*labels).inc()
        else:  # a gauge, not a counter: a compressor that cost more than it saved lowers it
            self.net_saved_usd.labels(*labels).inc(net)
        self.llm_tokens.labels(*labels, "input").inc(record.llm_tokens_in)
        self.llm_tokens.labels(*labels, "output").inc(record.llm_tokens_out)
        if record.llm_cost:
            self.llm_usd.labels(*labels).inc(record.llm_cost)
        (self.cache_hits if record.cache_hit else self.cache_misses).labels(*labels).inc()
        self.seconds.labels(*labels).observe(record.seconds)

    def on_usage(self, usage: LLMUsage, finding: Finding | None) -> None:
        provider, model = self.labeler.provider(usage.provider), self.labeler.model(usage.model)
        tenant = self.labeler.tenant(usage.tenant)
        self.llm_input.labels(provider, model, tenant).inc(usage.input_tokens)
        self.llm_output.labels(provider, model, tenant).inc(usage.output_tokens)
        if finding is not None:
            self.audited.labels(provider, model).inc()
            if finding.flagged:
                self.discrepancies.labels(provider, model).inc()

    def on_drop(self, count: int) -> None:
        self.dropped.inc(count)

    def serve(self, port: int = 9464, addr: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` over HTTP in a daemon thread; returns the server (its
        ``server_port`` is the bound port, useful with ``port=0``)."""
        prom = require("prometheus_client", "report", "Prometheus metrics")
        server, _thread = prom.start_http_server(port, addr=addr, registry=self.registry)
        return server
