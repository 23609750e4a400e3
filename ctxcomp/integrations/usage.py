"""Real LLM usage (what the provider billed), recorded beside the compression ledger.

Framework callbacks (``ctxcomp.integrations.langchain.LedgerCallbackHandler``) turn a
provider's usage report into :class:`LLMUsage` and append it to a :class:`UsageLog`.
Paired with a :class:`ctxcomp.reporting.ledger.Ledger` of compressions, it answers
"what did the LLM really receive, and what did compression save of it".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from ctxcomp.compressors.base import prompt_costs
from ctxcomp.errors import InputError, UnknownModelError
from ctxcomp.pricing import cost


@dataclass(frozen=True)
class LLMUsage:
    """One LLM call as the provider reported it.

    Attributes:
        model: the model name the provider reported (or the one invoked).
        input_tokens / output_tokens: billed token counts.
        cached_tokens: input tokens served from the provider's prompt cache, if reported.
        cost: USD for the call (None: no known price for ``model``).
        run_id: the framework's id of the call.
        timestamp: seconds since the epoch.
    """

    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    cost: float | None = None
    run_id: str = ""
    timestamp: float = 0.0


@dataclass(frozen=True)
class UsageTotals:
    """Sums over :class:`LLMUsage` records (cost sums only the priced ones)."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost: float


def make_usage(model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0,
               run_id: str = "") -> LLMUsage:
    """An :class:`LLMUsage` with its cost looked up (None when the model has no price)."""
    for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{name} must be an int >= 0, got {value!r}")
    try:
        usd: float | None = cost(model, input_tokens, output_tokens)
    except UnknownModelError:
        usd = prompt_costs(model, 0, 0)[0]  # logs the unpriced model once; None
    return LLMUsage(model, input_tokens, output_tokens, cached_tokens, usd, run_id, time.time())


class UsageLog:
    """Thread-safe list of :class:`LLMUsage`; optionally appended to a JSON-lines file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._records: list[LLMUsage] = []
        self._lock = threading.Lock()
        self.path = Path(path) if path is not None else None

    def add(self, usage: LLMUsage) -> None:
        with self._lock:
            self._records.append(usage)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(asdict(usage)) + "\n")

    def __iter__(self) -> Iterator[LLMUsage]:
        with self._lock:
            return iter(list(self._records))

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def totals(self, *, model: str | None = None) -> UsageTotals:
        records = [r for r in self if model is None or r.model == model]
        return UsageTotals(
            calls=len(records),
            input_tokens=sum(r.input_tokens for r in records),
            output_tokens=sum(r.output_tokens for r in records),
            cost=sum(r.cost or 0.0 for r in records),
        )
