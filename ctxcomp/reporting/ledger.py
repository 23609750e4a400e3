"""A ledger of compressions (tokens and dollars before/after) and of the real LLM usage
that followed, per model and tenant."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ctxcomp.reporting.usage import LLMUsage, UsageTotals
from ctxcomp.types import CompressedContext


@dataclass(frozen=True)
class LedgerEntry:
    """One compression as accounted."""

    timestamp: float
    tenant: str
    model: str
    tokens_in: int
    tokens_out: int
    cost_before: float | None
    cost_after: float | None
    seconds: float
    cache_hit: bool


@dataclass(frozen=True)
class LedgerTotals:
    """Sums over entries (costs sum only the priced entries)."""

    requests: int
    tokens_in: int
    tokens_out: int
    cost_before: float
    cost_after: float
    seconds: float
    cache_hits: int

    @property
    def tokens_saved(self) -> int:
        return self.tokens_in - self.tokens_out

    @property
    def cost_saved(self) -> float:
        return self.cost_before - self.cost_after


class Ledger:
    """Thread-safe, in-memory record of compressions; optionally appended to a JSONL file.

    Args:
        path: if given, every entry is also appended to this JSON-lines file.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._entries: list[LedgerEntry] = []
        self._usage: list[LLMUsage] = []
        self._lock = threading.Lock()
        self.path = Path(path) if path is not None else None

    def record(self, ctx: CompressedContext, *, tenant: str = "default", seconds: float = 0.0,
               cache_hit: bool = False) -> LedgerEntry:
        entry = LedgerEntry(time.time(), tenant, ctx.model, ctx.tokens_in, ctx.tokens_out,
                            ctx.cost_before, ctx.cost_after, seconds, cache_hit)
        with self._lock:
            self._entries.append(entry)
            if self.path is not None:
                self._append({"kind": "compression", **asdict(entry)})
        return entry

    def _append(self, row: dict[str, Any]) -> None:
        assert self.path is not None
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")

    def record_usage(self, usage: LLMUsage) -> LLMUsage:
        """Record one LLM call's billed usage (see :func:`ctxcomp.reporting.usage.make_usage`)."""
        with self._lock:
            self._usage.append(usage)
            if self.path is not None:
                self._append({"kind": "llm_usage", **asdict(usage)})
        return usage

    def usage(self, *, tenant: str | None = None, model: str | None = None) -> list[LLMUsage]:
        """The recorded LLM calls, optionally for one tenant or model."""
        with self._lock:
            records = list(self._usage)
        return [r for r in records if (tenant is None or r.tenant == tenant)
                and (model is None or r.model == model)]

    def usage_totals(self, *, tenant: str | None = None, model: str | None = None) -> UsageTotals:
        """Sums over the recorded LLM calls (cost sums only the priced ones)."""
        records = self.usage(tenant=tenant, model=model)
        return UsageTotals(
            calls=len(records),
            input_tokens=sum(r.input_tokens for r in records),
            output_tokens=sum(r.output_tokens for r in records),
            cost=sum(r.cost or 0.0 for r in records),
        )

    def __iter__(self) -> Iterator[LedgerEntry]:
        with self._lock:
            return iter(list(self._entries))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def totals(self, *, tenant: str | None = None, model: str | None = None) -> LedgerTotals:
        entries = [e for e in self if (tenant is None or e.tenant == tenant)
                   and (model is None or e.model == model)]
        return LedgerTotals(
            requests=len(entries),
            tokens_in=sum(e.tokens_in for e in entries),
            tokens_out=sum(e.tokens_out for e in entries),
            cost_before=sum(e.cost_before or 0.0 for e in entries),
            cost_after=sum(e.cost_after or 0.0 for e in entries),
            seconds=sum(e.seconds for e in entries),
            cache_hits=sum(e.cache_hit for e in entries),
        )

    def by(self, key: str) -> dict[str, LedgerTotals]:
        """Totals grouped by ``"tenant"`` or ``"model"``."""
        if key not in ("tenant", "model"):
            raise ValueError("group by 'tenant' or 'model'")
        groups: dict[str, Any] = defaultdict(list)
        for e in self:
            groups[getattr(e, key)].append(e)
        return {name: self.totals(**{key: name}) for name in groups}
