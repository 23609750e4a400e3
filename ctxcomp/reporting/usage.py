"""Real LLM usage (what the provider billed), recorded in the ledger beside compressions.

Framework callbacks (``ctxcomp.integrations.langchain.LedgerCallbackHandler``) turn a
provider's usage report into :class:`LLMUsage` and record it with
:meth:`ctxcomp.reporting.ledger.Ledger.record_usage`, so one ledger answers "what did the
LLM really receive, and what did compression save of it".
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ctxcomp.errors import InputError, UnknownModelError
from ctxcomp.pricing import cost, prompt_costs


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
        tenant: who the call was for.
    """

    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    cost: float | None = None
    run_id: str = ""
    timestamp: float = 0.0
    tenant: str = "default"


@dataclass(frozen=True)
class UsageTotals:
    """Sums over :class:`LLMUsage` records (cost sums only the priced ones)."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost: float


def make_usage(model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0,
               run_id: str = "", tenant: str = "default") -> LLMUsage:
    """An :class:`LLMUsage` with its cost looked up (None when the model has no price)."""
    for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{name} must be an int >= 0, got {value!r}")
    try:
        usd: float | None = cost(model, input_tokens, output_tokens)
    except UnknownModelError:
        usd = prompt_costs(model, 0, 0)[0]  # logs the unpriced model once; None
    return LLMUsage(model, input_tokens, output_tokens, cached_tokens, usd, run_id, time.time(), tenant)
