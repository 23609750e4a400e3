"""Real LLM usage (what the provider billed), recorded in the ledger beside compressions.

Framework callbacks (``ctxcomp.integrations.langchain.LedgerCallbackHandler``,
``ctxcomp.integrations.llamaindex.LedgerEventHandler``) and the proxy turn a provider's
usage report into :class:`LLMUsage` and record it with
:meth:`ctxcomp.reporting.ledger.Ledger.record_usage`, so one ledger answers "what did the
LLM really receive, and what did compression save of it". When the caller also counted
the prompt it sent (``expected_input_tokens``), the usage audit
(:mod:`ctxcomp.reporting.audit`) compares the two.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ctxcomp.errors import InputError, UnknownModelError
from ctxcomp.pricing import cost, prompt_costs


@dataclass(frozen=True, slots=True)
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
        provider: who served the call (``"openai"``, ``"anthropic"``, ...; "" if unknown).
        expected_input_tokens: ctxcomp's own count of the prompt it sent (None: not
            counted, e.g. the prompt held tools or images); the audit compares it with
            ``input_tokens``.
        expected_approximate: the count used an approximate tokenizer (the audit then
            reports the call as unchecked rather than guess).
    """

    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    cost: float | None = None
    run_id: str = ""
    timestamp: float = 0.0
    tenant: str = "default"
    provider: str = ""
    expected_input_tokens: int | None = None
    expected_approximate: bool = False


@dataclass(frozen=True)
class UsageTotals:
    """Sums over :class:`LLMUsage` records (cost sums only the priced ones).

    Attributes:
        unpriced: calls whose cost is unknown (not counted in ``cost``).
    """

    calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    unpriced: int = 0


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{name} must be an int >= 0, got {value!r}")
    return value


def make_usage(model: str, input_tokens: int, output_tokens: int, cached_tokens: int = 0,
               run_id: str = "", tenant: str = "default", *, provider: str = "",
               expected_input_tokens: int | None = None, expected_approximate: bool = False,
               timestamp: float | None = None) -> LLMUsage:
    """An :class:`LLMUsage` with its cost looked up (None when the model has no price).

    Args:
        model: the model the provider reported.
        input_tokens, output_tokens, cached_tokens: the provider's counts.
        run_id: the caller's id of the call.
        tenant: who the call was for.
        provider: who served it (``"openai"``, ...).
        expected_input_tokens: ctxcomp's own count of the prompt sent (see
            :func:`ctxcomp.reporting.audit.count_prompt_tokens`), for the audit.
        expected_approximate: that count used an approximate tokenizer.
        timestamp: seconds since the epoch (default: now).

    Raises:
        InputError: a count that is not an int >= 0.

    Example:
        >>> make_usage("gpt-4o-mini", 1200, 30, provider="openai").cost > 0
        True
    """
    for name, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens),
                        ("cached_tokens", cached_tokens)):
        _count(name, value)
    if expected_input_tokens is not None:
        _count("expected_input_tokens", expected_input_tokens)
    try:
        usd: float | None = cost(model, input_tokens, output_tokens)
    except UnknownModelError:
        usd = prompt_costs(model, 0, 0)[0]  # logs the unpriced model once; None
    return LLMUsage(model, input_tokens, output_tokens, cached_tokens, usd, run_id,
                    time.time() if timestamp is None else timestamp, tenant, provider,
                    expected_input_tokens, expected_approximate)


_INPUT_KEYS = ("prompt_tokens", "input_tokens", "prompt_eval_count")
_OUTPUT_KEYS = ("completion_tokens", "output_tokens", "eval_count")


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _first_int(obj: Any, keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = _get(obj, key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def parse_provider_usage(*candidates: Any) -> tuple[int, int, int] | None:
    """``(input, output, cached input)`` tokens from a provider's usage report, or None.

    Reads the shapes the common APIs return, as dicts or SDK objects: OpenAI
    (``usage.prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details.cached_tokens``),
    Anthropic (``usage.input_tokens``, ``output_tokens``, ``cache_read_input_tokens``) and
    Ollama (``prompt_eval_count``, ``eval_count``). Each candidate may be the response
    itself or its ``usage``; the first that carries counts wins.

    Example:
        >>> parse_provider_usage({"usage": {"prompt_tokens": 12, "completion_tokens": 3}})
        (12, 3, 0)
    """
    for candidate in candidates:
        if candidate is None:
            continue
        for obj in (_get(candidate, "usage"), candidate):
            if obj is None:
                continue
            tokens_in = _first_int(obj, _INPUT_KEYS)
            if tokens_in is None:
                continue
            tokens_out = _first_int(obj, _OUTPUT_KEYS) or 0
            details = _get(obj, "prompt_tokens_details")
            cached = (_first_int(details, ("cached_tokens",)) if details is not None else None) \
                or _first_int(obj, ("cache_read_input_tokens",)) or 0
            return tokens_in, tokens_out, cached
    return None
