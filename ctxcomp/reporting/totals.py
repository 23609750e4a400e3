"""Running sums over ledger records, shared by the live ledger and the offline report.

Money sums only what is known: a record whose price is unknown is counted in
``unpriced`` (or ``net_unknown``), never added as 0, so "$0.00 saved" and "unknown"
stay different things.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ctxcomp.reporting.records import CompressionRecord, ratio_of
from ctxcomp.reporting.usage import LLMUsage, UsageTotals


@dataclass(frozen=True)
class LedgerTotals:
    """Sums over compression records.

    Attributes:
        requests: compressions counted.
        tokens_in, tokens_out: context tokens before and after.
        cost_before, cost_after: USD over the priced requests only.
        seconds: summed compression latency.
        cache_hits: requests served from the context cache.
        unpriced: requests whose target model has no known price.
        llm_tokens_in, llm_tokens_out: tokens the stages sent to / got from models.
        llm_cost: USD of those calls, over the calls with a known price.
        llm_unpriced: requests whose stages called a model with no known price.
        net_saved: USD saved net of the compressor's cost, over the requests where every
            price is known (``net_unknown`` counts the others).
        compressor_seconds: seconds the stages ran (cache hits run none).
    """

    requests: int
    tokens_in: int
    tokens_out: int
    cost_before: float
    cost_after: float
    seconds: float
    cache_hits: int
    unpriced: int = 0
    llm_tokens_in: int = 0
    llm_tokens_out: int = 0
    llm_cost: float = 0.0
    llm_unpriced: int = 0
    net_saved: float = 0.0
    net_unknown: int = 0
    compressor_seconds: float = 0.0

    @property
    def tokens_saved(self) -> int:
        return self.tokens_in - self.tokens_out

    @property
    def cost_saved(self) -> float:
        """Prompt USD saved over the priced requests (before the compressor's cost)."""
        return self.cost_before - self.cost_after

    @property
    def cache_misses(self) -> int:
        return self.requests - self.cache_hits

    @property
    def ratio(self) -> float:
        """tokens_in / tokens_out over all requests."""
        return ratio_of(self.tokens_in, self.tokens_out)

    @property
    def priced(self) -> bool:
        """Whether any request had a known price (else every dollar figure is unknown)."""
        return self.requests > self.unpriced


class TotalsAccumulator:
    """Mutable running sums of compression records (not thread-safe: the caller locks)."""

    __slots__ = ("cache_hits", "compressor_seconds", "cost_after", "cost_before", "llm_cost", "llm_tokens_in",
                 "llm_tokens_out", "llm_unpriced", "net_saved", "net_unknown", "requests", "seconds",
                 "tokens_in", "tokens_out", "unpriced")

    def __init__(self) -> None:
        self.requests = self.tokens_in = self.tokens_out = self.cache_hits = 0
        self.unpriced = self.llm_tokens_in = self.llm_tokens_out = self.llm_unpriced = self.net_unknown = 0
        self.cost_before = self.cost_after = self.seconds = self.llm_cost = 0.0
        self.net_saved = self.compressor_seconds = 0.0

    def add(self, record: CompressionRecord, cost: tuple[int, int, float | None, float] | None = None) -> None:
        """Add ``record``; ``cost`` is its :meth:`~CompressionRecord.compressor_cost` when
        the caller already has it (adding one record to several accumulators)."""
        llm_in, llm_out, llm_cost, spent = cost if cost is not None else record.compressor_cost()
        self.requests += 1
        self.tokens_in += record.tokens_in
        self.tokens_out += record.tokens_out
        self.seconds += record.seconds
        self.cache_hits += bool(record.cache_hit)
        before, after = record.cost_before, record.cost_after
        if before is None or after is None:
            self.unpriced += 1
        else:
            self.cost_before += before
            self.cost_after += after
        self.llm_tokens_in += llm_in
        self.llm_tokens_out += llm_out
        if llm_cost is None:
            self.llm_unpriced += 1
        else:
            self.llm_cost += llm_cost
        if before is None or after is None or llm_cost is None:
            self.net_unknown += 1
        else:
            self.net_saved += before - after - llm_cost
        self.compressor_seconds += spent

    def merge(self, other: TotalsAccumulator) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def freeze(self) -> LedgerTotals:
        return LedgerTotals(**{name: getattr(self, name) for name in self.__slots__})


class UsageAccumulator:
    """Mutable running sums of :class:`LLMUsage` records (the caller locks)."""

    __slots__ = ("calls", "cost", "input_tokens", "output_tokens", "unpriced")

    def __init__(self) -> None:
        self.calls = self.input_tokens = self.output_tokens = self.unpriced = 0
        self.cost = 0.0

    def add(self, usage: LLMUsage) -> None:
        self.calls += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        if usage.cost is None:
            self.unpriced += 1
        else:
            self.cost += usage.cost

    def merge(self, other: UsageAccumulator) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def freeze(self) -> UsageTotals:
        return UsageTotals(self.calls, self.input_tokens, self.output_tokens, self.cost, self.unpriced)


T = TypeVar("T")
Merging = TypeVar("Merging", TotalsAccumulator, UsageAccumulator)


class CappedGroups(Generic[T]):
    """Accumulators by key, at most ``cap`` distinct keys; later keys share ``OTHER``.

    Bounded memory for a long-running service with unbounded tenants: the overall sums
    stay exact, only the per-key breakdown folds new keys into one bucket.
    """

    OTHER = "(other)"

    def __init__(self, factory: Callable[[], T], cap: int) -> None:
        self._factory = factory
        self.cap = cap
        self.groups: dict[tuple[str, ...], T] = {}

    def merged(self: CappedGroups[Merging], wanted: tuple[str | None, ...], into: Merging) -> Merging:
        """Merge every group whose key matches ``wanted`` (None matches anything) into ``into``."""
        for key, group in self.groups.items():
            if all(w is None or w == k for w, k in zip(wanted, key, strict=True)):
                into.merge(group)
        return into

    def get(self, key: tuple[str, ...]) -> T:
        acc = self.groups.get(key)
        if acc is None:
            if len(self.groups) >= self.cap:
                key = tuple(self.OTHER for _ in key)
                acc = self.groups.get(key)
            if acc is None:
                acc = self.groups[key] = self._factory()
        return acc
