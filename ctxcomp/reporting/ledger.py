"""The ledger: every compression (tokens and dollars before/after, per stage, the
compressor's own cost, latency, cache hit) and every billed LLM call, with bounded memory.

On the request path :meth:`Ledger.record` only builds the record, adds it to the running
totals, keeps it in a bounded window of recent records, tells the observers (Prometheus
metrics, OpenTelemetry spans: in-memory and non-blocking) and queues it for the durable
sinks (JSONL, SQLite), which a writer thread feeds. A full queue drops the record and
counts the drop; nothing on the request path blocks or raises because of the ledger.
Records still queued at interpreter exit are written before it exits.

Public API for callers outside the pipeline (the proxy, batch jobs, benchmarks):

* ``ledger.record(ctx, tenant=..., seconds=..., cache_hit=..., pipeline=...)`` — a compression;
* ``ledger.add(CompressionRecord.from_counts(model, tokens_in, tokens_out, ...))`` — one
  known only by its counts;
* ``ledger.record_usage(make_usage(model, input_tokens, output_tokens, provider=...,
  tenant=..., expected_input_tokens=...))`` — a billed LLM call, audited.

Example:
    >>> ledger = Ledger("ledger.jsonl", observers=[PrometheusMetrics()])  # doctest: +SKIP
    >>> pipe = Pipeline(["embedding"], Budget(max_tokens=300), ledger=ledger)  # doctest: +SKIP
    >>> ledger.totals().net_saved  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from ctxcomp.errors import ConfigError
from ctxcomp.reporting.audit import AuditConfig, AuditRow, AuditTally, Finding
from ctxcomp.reporting.records import CompressionRecord, Record
from ctxcomp.reporting.sinks import MemorySink, Sink, sink_for
from ctxcomp.reporting.totals import (
    CappedGroups,
    LedgerTotals,
    TotalsAccumulator,
    UsageAccumulator,
)
from ctxcomp.reporting.usage import LLMUsage, UsageTotals
from ctxcomp.reporting.writer import BackgroundWriter
from ctxcomp.types import CompressedContext

log = logging.getLogger(__name__)

GroupKey = Literal["model", "tenant", "pipeline"]
_GROUP_INDEX = {"model": 0, "tenant": 1, "pipeline": 2}


@runtime_checkable
class Observer(Protocol):
    """Sees every record as it is made, on the caller's thread (so a tracer can attach
    spans to the caller's current span). It must be fast and must not block."""

    def on_compression(self, record: CompressionRecord) -> None: ...

    def on_usage(self, usage: LLMUsage, finding: Finding | None) -> None: ...

    def on_drop(self, count: int) -> None: ...


_open_ledgers: weakref.WeakSet[Ledger] = weakref.WeakSet()


@atexit.register
def _close_open_ledgers() -> None:
    for ledger in list(_open_ledgers):
        ledger.close()


class Ledger:
    """Running totals, a bounded window of recent records, and durable sinks.

    Args:
        path: shorthand for one durable sink: a ``.sqlite``/``.db`` file gets a
            :class:`~ctxcomp.reporting.sinks.SQLiteSink`, anything else a JSONL file.
        sinks: more durable sinks (written off the request path).
        observers: live observers (:class:`~ctxcomp.reporting.metrics.PrometheusMetrics`,
            :class:`~ctxcomp.reporting.tracing.OtelTracing`, or your own).
        keep: how many recent records to keep in memory (``iter(ledger)``, ``usage()``).
        queue_size: capacity of the queue to the durable sinks, in records.
        on_full: ``"drop"`` (default: count and drop, never block a request) or
            ``"block"`` (wait for room: for batch jobs and CLIs).
        max_groups: distinct (model, tenant, pipeline) keys with their own totals; later
            keys are summed under ``"(other)"`` (overall totals stay exact).
        audit: when billed input tokens count as a discrepancy.

    Raises:
        ConfigError: a bad setting.
    """

    def __init__(self, path: str | Path | None = None, *, sinks: Sequence[Sink] = (),
                 observers: Sequence[Observer] = (), keep: int = 10_000, queue_size: int = 10_000,
                 on_full: Literal["drop", "block"] = "drop", max_groups: int = 10_000,
                 audit: AuditConfig | None = None) -> None:
        if on_full not in ("drop", "block"):
            raise ConfigError(f"on_full must be 'drop' or 'block', got {on_full!r}")
        if isinstance(max_groups, bool) or not isinstance(max_groups, int) or max_groups <= 0:
            raise ConfigError(f"max_groups must be an int > 0, got {max_groups!r}")
        for sink in sinks:
            if not isinstance(sink, Sink):
                raise ConfigError(f"{sink!r} is not a ledger sink (needs write() and close())")
        for observer in observers:
            if not isinstance(observer, Observer):
                raise ConfigError(f"{observer!r} is not a ledger observer "
                                  "(needs on_compression(), on_usage() and on_drop())")
        self.path = Path(path) if path is not None else None
        durable = ([sink_for(path)] if path is not None else []) + list(sinks)
        self.recent = MemorySink(keep)
        self.observers = list(observers)
        self._lock = threading.Lock()
        self._total = TotalsAccumulator()
        self._groups: CappedGroups[TotalsAccumulator] = CappedGroups(TotalsAccumulator, max_groups)
        self._usage_total = UsageAccumulator()
        self._usage_groups: CappedGroups[UsageAccumulator] = CappedGroups(UsageAccumulator, max_groups)
        self._audit = AuditTally(audit)
        self._writer: BackgroundWriter | None = None
        if durable:
            self._writer = BackgroundWriter(durable, maxsize=queue_size, block=on_full == "block",
                                            on_drop=self._dropped)
            _open_ledgers.add(self)

    # -- recording (the request path) ----------------------------------------------------
    def record(self, ctx: CompressedContext, *, tenant: str = "default", seconds: float = 0.0,
               cache_hit: bool = False, pipeline: str = "") -> CompressionRecord:
        """Account one compression; returns its record.

        Args:
            ctx: the compression's result.
            tenant: who it was for.
            seconds: the latency the caller saw.
            cache_hit: whether the context cache served it.
            pipeline: the pipeline's config digest (``Pipeline.config_digest()``).
        """
        return self.add(CompressionRecord.from_context(ctx, tenant=tenant, seconds=seconds,
                                                       cache_hit=cache_hit, pipeline=pipeline))

    def add(self, record: CompressionRecord) -> CompressionRecord:
        """Account a prebuilt compression record (see :meth:`CompressionRecord.from_counts`)."""
        key = (record.model, record.tenant, record.pipeline)
        cost = record.compressor_cost()
        with self._lock:
            self._total.add(record, cost)
            self._groups.get(key).add(record, cost)
        self._publish(record, lambda o: o.on_compression(record))
        return record

    def record_usage(self, usage: LLMUsage) -> LLMUsage:
        """Account one billed LLM call (see :func:`ctxcomp.reporting.usage.make_usage`);
        audits it when it carries ctxcomp's own count of the prompt sent."""
        with self._lock:
            self._usage_total.add(usage)
            self._usage_groups.get((usage.provider, usage.model, usage.tenant)).add(usage)
            finding = self._audit.add(usage)
        if finding is not None and finding.flagged:
            log.warning("usage audit: %s %s billed %d input tokens, ctxcomp sent %d (%+d)",
                        usage.provider or "?", usage.model, finding.reported, finding.expected, finding.difference)
        self._publish(usage, lambda o: o.on_usage(usage, finding))
        return usage

    def _publish(self, record: Record, notify: Any) -> None:
        self.recent.write((record,))
        for observer in self.observers:
            try:
                notify(observer)
            except Exception:  # an exporter bug must not fail the request
                log.exception("ledger observer %r failed", observer)
        if self._writer is not None:
            self._writer.submit(record)

    def _dropped(self, count: int) -> None:
        for observer in self.observers:
            try:
                observer.on_drop(count)
            except Exception:
                log.exception("ledger observer %r failed", observer)

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Records the durable sinks never got because the queue was full (or closed)."""
        return self._writer.dropped if self._writer is not None else 0

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the sinks have every record queued so far; False on timeout."""
        return self._writer.flush(timeout) if self._writer is not None else True

    def close(self) -> None:
        """Write everything queued and close the sinks (also done at interpreter exit)."""
        if self._writer is not None:
            self._writer.close()
        _open_ledgers.discard(self)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[CompressionRecord]:
        """The recent compression records kept in memory (at most ``keep`` records)."""
        return iter([r for r in self.recent.snapshot() if isinstance(r, CompressionRecord)])

    def __len__(self) -> int:
        """Compressions recorded since the ledger was made (not only those kept)."""
        with self._lock:
            return self._total.requests

    def totals(self, *, tenant: str | None = None, model: str | None = None,
               pipeline: str | None = None) -> LedgerTotals:
        """Sums over every compression recorded (or those of one tenant/model/pipeline)."""
        wanted = (model, tenant, pipeline)
        with self._lock:
            if wanted == (None, None, None):
                return self._total.freeze()
            return self._groups.merged(wanted, TotalsAccumulator()).freeze()

    def by(self, key: str) -> dict[str, LedgerTotals]:
        """Totals grouped by ``"model"``, ``"tenant"`` or ``"pipeline"``.

        Raises:
            ValueError: another key.
        """
        if key not in _GROUP_INDEX:
            raise ValueError(f"group by 'model', 'tenant' or 'pipeline', not {key!r}")
        index = _GROUP_INDEX[key]
        merged: dict[str, TotalsAccumulator] = {}
        with self._lock:
            for group_key, group in self._groups.groups.items():
                merged.setdefault(group_key[index], TotalsAccumulator()).merge(group)
            return {name: acc.freeze() for name, acc in merged.items()}

    def usage(self, *, tenant: str | None = None, model: str | None = None) -> list[LLMUsage]:
        """The recent LLM calls kept in memory, optionally for one tenant or model."""
        return [r for r in self.recent.snapshot() if isinstance(r, LLMUsage)
                and (tenant is None or r.tenant == tenant) and (model is None or r.model == model)]

    def usage_totals(self, *, tenant: str | None = None, model: str | None = None,
                     provider: str | None = None) -> UsageTotals:
        """Sums over every LLM call recorded (cost sums only the priced ones)."""
        wanted = (provider, model, tenant)
        with self._lock:
            if wanted == (None, None, None):
                return self._usage_total.freeze()
            return self._usage_groups.merged(wanted, UsageAccumulator()).freeze()

    def audit(self) -> list[AuditRow]:
        """The usage audit per provider and model (flagged discrepancies first)."""
        with self._lock:
            return self._audit.rows()
