"""Everything ``ctxcomp report`` shows, built in one pass over a ledger's records.

:class:`ReportBuilder` streams records (a million-record file is never held in memory):
totals per model, tenant and pipeline, per stage, latency percentiles, the compression
ratio distribution, time series of savings and cache hits, LLM usage and its audit. The
time series coarsen as the covered span grows (at most :data:`MAX_BUCKETS` buckets) and
follow at most :data:`MAX_SERIES_GROUPS` names per dimension (later ones are "(other)").
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ctxcomp.reporting.audit import AuditConfig, AuditRow, AuditTally
from ctxcomp.reporting.records import CompressionRecord, Record
from ctxcomp.reporting.totals import CappedGroups, LedgerTotals, TotalsAccumulator, UsageAccumulator
from ctxcomp.reporting.usage import LLMUsage, UsageTotals

DIMENSIONS = ("model", "tenant", "pipeline")
MAX_GROUPS = 10_000
MAX_BUCKETS = 240
MAX_SERIES_GROUPS = 200
#: Bucket widths tried in turn as the span grows: 1 min ... 30 days.
RESOLUTIONS = (60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400, 30 * 86400)
RATIO_EDGES = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 64.0, math.inf)
QUANTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class Percentiles:
    """Latency percentiles in seconds (None when there were no requests)."""

    count: int
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


def percentiles(values: array) -> Percentiles:  # type: ignore[type-arg]
    if not values:
        return Percentiles(0)
    data = np.frombuffer(values, dtype=np.float64)
    p50, p90, p95, p99 = (float(v) for v in np.percentile(data, QUANTILES))
    return Percentiles(len(data), p50, p90, p95, p99, float(data.max()))


@dataclass(frozen=True)
class StageRow:
    """One stage over the cache misses that ran it."""

    name: str
    runs: int
    tokens_in: int
    tokens_out: int
    seconds: float
    llm_tokens_in: int
    llm_tokens_out: int
    llm_cost: float
    llm_unpriced: int


@dataclass(frozen=True)
class Series:
    """Savings per time bucket.

    Attributes:
        bucket_seconds: the width of a bucket.
        starts: each bucket's start, epoch seconds (contiguous, empty buckets included).
        requests, cache_hits: per bucket.
        tokens_saved, usd_saved: per dimension ("model", "tenant"), per name, per bucket
            (USD net of the compressor's cost, over the requests whose prices are known).
    """

    bucket_seconds: int
    starts: list[float]
    requests: list[int]
    cache_hits: list[int]
    tokens_saved: dict[str, dict[str, list[float]]]
    usd_saved: dict[str, dict[str, list[float]]]


@dataclass(frozen=True)
class Report:
    """A ledger summarized (see :class:`ReportBuilder`)."""

    source: str
    since: float | None
    first: float | None
    last: float | None
    totals: LedgerTotals
    groups: dict[str, dict[str, LedgerTotals]]
    latency: dict[str, Percentiles]
    latency_by: dict[str, dict[str, Percentiles]]
    ratio_edges: tuple[float, ...]
    ratio_counts: list[int]
    series: Series
    stages: list[StageRow]
    usage: UsageTotals
    audit: list[AuditRow]
    audit_config: AuditConfig
    problems: list[str] = field(default_factory=list)
    skipped: int = 0

    @property
    def empty(self) -> bool:
        return self.totals.requests == 0 and self.usage.calls == 0


class _Bucket:
    __slots__ = ("cells", "hits", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.hits = 0
        # dimension -> name -> [tokens saved, net USD saved]
        self.cells: dict[str, dict[str, list[float]]] = {"model": {}, "tenant": {}}

    def merge(self, other: _Bucket) -> None:
        self.requests += other.requests
        self.hits += other.hits
        for dim, cells in other.cells.items():
            for name, (tokens, usd) in cells.items():
                cell = self.cells[dim].setdefault(name, [0.0, 0.0])
                cell[0] += tokens
                cell[1] += usd


class _SeriesBuilder:
    def __init__(self) -> None:
        self.level = 0
        self.buckets: dict[int, _Bucket] = {}
        self.names: dict[str, set[str]] = {"model": set(), "tenant": set()}

    @property
    def width(self) -> int:
        return RESOLUTIONS[self.level]

    def _name(self, dim: str, name: str) -> str:
        seen = self.names[dim]
        if name not in seen:
            if len(seen) >= MAX_SERIES_GROUPS:
                return "(other)"
            seen.add(name)
        return name

    def add(self, record: CompressionRecord) -> None:
        index = int(record.timestamp // self.width)
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = self.buckets[index] = _Bucket()
            if len(self.buckets) > MAX_BUCKETS:
                self._coarsen()
                bucket = self.buckets[int(record.timestamp // self.width)]
        bucket.requests += 1
        bucket.hits += bool(record.cache_hit)
        net = record.net_saved
        for dim, name in (("model", record.model), ("tenant", record.tenant)):
            cell = bucket.cells[dim].setdefault(self._name(dim, name), [0.0, 0.0])
            cell[0] += record.tokens_saved
            cell[1] += net or 0.0

    def _coarsen(self) -> None:
        while len(self.buckets) > MAX_BUCKETS and self.level + 1 < len(RESOLUTIONS):
            old_width = self.width
            self.level += 1
            merged: dict[int, _Bucket] = {}
            for index, bucket in self.buckets.items():
                merged.setdefault(index * old_width // self.width, _Bucket()).merge(bucket)
            self.buckets = merged

    def build(self) -> Series:
        if not self.buckets:
            return Series(self.width, [], [], [], {"model": {}, "tenant": {}}, {"model": {}, "tenant": {}})
        indices = range(min(self.buckets), max(self.buckets) + 1)
        rows = [self.buckets.get(i) or _Bucket() for i in indices]
        tokens: dict[str, dict[str, list[float]]] = {}
        usd: dict[str, dict[str, list[float]]] = {}
        for dim in ("model", "tenant"):
            names = sorted({n for row in rows for n in row.cells[dim]})
            tokens[dim] = {n: [row.cells[dim].get(n, [0.0, 0.0])[0] for row in rows] for n in names}
            usd[dim] = {n: [row.cells[dim].get(n, [0.0, 0.0])[1] for row in rows] for n in names}
        return Series(self.width, [float(i * self.width) for i in indices], [r.requests for r in rows],
                      [r.hits for r in rows], tokens, usd)


class ReportBuilder:
    """Accumulates records into a :class:`Report`.

    Args:
        source: what the records came from (shown in the report).
        since: only records at or after this time were read (shown in the report).
        audit: the usage audit's threshold.

    Example:
        >>> builder = ReportBuilder("ledger.jsonl")
        >>> builder.add_all(LedgerReader("ledger.jsonl"))  # doctest: +SKIP
        >>> report = builder.build()  # doctest: +SKIP
    """

    def __init__(self, source: str = "", since: float | None = None, audit: AuditConfig | None = None) -> None:
        self.source = source
        self.since = since
        self._total = TotalsAccumulator()
        self._groups = {d: CappedGroups(TotalsAccumulator, MAX_GROUPS) for d in DIMENSIONS}
        self._latency = {"all": array("d"), "cache hits": array("d"), "cache misses": array("d")}
        self._latency_by = {d: CappedGroups(lambda: array("d"), MAX_GROUPS) for d in DIMENSIONS}
        self._ratios = array("d")
        self._series = _SeriesBuilder()
        self._stages: dict[str, list[float]] = {}
        self._usage = UsageAccumulator()
        self._audit = AuditTally(audit)
        self.first: float | None = None
        self.last: float | None = None

    def add(self, record: Record) -> None:
        self.first = record.timestamp if self.first is None else min(self.first, record.timestamp)
        self.last = record.timestamp if self.last is None else max(self.last, record.timestamp)
        if isinstance(record, LLMUsage):
            self._usage.add(record)
            self._audit.add(record)
            return
        cost = record.compressor_cost()
        self._total.add(record, cost)
        keys = {"model": record.model, "tenant": record.tenant, "pipeline": record.pipeline or "(none)"}
        for dim, name in keys.items():
            self._groups[dim].get((name,)).add(record, cost)
            self._latency_by[dim].get((name,)).append(record.seconds)
        self._latency["all"].append(record.seconds)
        self._latency["cache hits" if record.cache_hit else "cache misses"].append(record.seconds)
        self._ratios.append(min(record.ratio, 1e9))
        self._series.add(record)
        if not record.cache_hit:
            for stage in record.stages:
                row = self._stages.setdefault(stage.name, [0, 0, 0, 0.0, 0, 0, 0.0, 0])
                row[0] += 1
                row[1] += stage.tokens_in
                row[2] += stage.tokens_out
                row[3] += stage.seconds
                row[4] += stage.llm_tokens_in
                row[5] += stage.llm_tokens_out
                if stage.llm_cost is None:
                    row[7] += 1
                else:
                    row[6] += stage.llm_cost

    def add_all(self, records: Iterable[Record]) -> None:
        for record in records:
            self.add(record)

    def build(self, problems: list[str] | None = None, skipped: int = 0) -> Report:
        groups = {d: {k[0]: acc.freeze() for k, acc in g.groups.items()} for d, g in self._groups.items()}
        latency_by = {d: {k[0]: percentiles(v) for k, v in g.groups.items()} for d, g in self._latency_by.items()}
        counts = [0] * (len(RATIO_EDGES) - 1)
        if self._ratios:
            hist, _ = np.histogram(np.frombuffer(self._ratios, dtype=np.float64), bins=[*RATIO_EDGES[:-1], 2e9])
            counts = [int(c) for c in hist]
        stages = [StageRow(name, int(r[0]), int(r[1]), int(r[2]), float(r[3]), int(r[4]), int(r[5]), float(r[6]),
                           int(r[7])) for name, r in self._stages.items()]
        return Report(
            source=self.source, since=self.since, first=self.first, last=self.last, totals=self._total.freeze(),
            groups=groups, latency={k: percentiles(v) for k, v in self._latency.items()}, latency_by=latency_by,
            ratio_edges=RATIO_EDGES, ratio_counts=counts, series=self._series.build(), stages=stages,
            usage=self._usage.freeze(), audit=self._audit.rows(), audit_config=self._audit.config,
            problems=list(problems or []), skipped=skipped,
        )


def build_report(path: str, since: float | None = None, audit: AuditConfig | None = None) -> Report:
    """Read the ledger file ``path`` and summarize it (bad lines skipped and listed).

    Raises:
        InputError: the file is missing or unreadable.
    """
    from ctxcomp.reporting.reader import LedgerReader

    reader = LedgerReader(path, since)
    builder = ReportBuilder(str(path), since, audit)
    builder.add_all(reader)
    return builder.build(reader.problems, reader.skipped)
