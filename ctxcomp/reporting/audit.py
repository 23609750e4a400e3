"""Usage audit: does the provider bill the input tokens ctxcomp sent?

After CoIn (arXiv 2505.13778, auditing billed tokens in opaque LLM APIs): the billed
count is compared with an independent count of what was sent. ctxcomp knows the exact
prompt it sent, so for input tokens the check is direct. The framework callbacks (and the
proxy) count the prompt with :func:`count_prompt_tokens` when the call starts and record
the provider's reported count when it ends; :class:`AuditTally` flags every call whose
difference exceeds :class:`AuditConfig`'s threshold and counts them per provider and model.

Only calls counted with the model's exact tokenizer are checked: for an approximate
tokenizer (non-OpenAI models) the call is reported as unchecked rather than guessed at.
Prompts with tools, images or other non-text parts are not counted (the providers' own
accounting of those is not public), and show as unchecked too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ctxcomp.errors import ConfigError
from ctxcomp.reporting.usage import LLMUsage

log = logging.getLogger(__name__)

# OpenAI's chat format (openai-cookbook, "How to count tokens with tiktoken"): every
# message costs 3 tokens besides its fields, a name 1 more, and the reply is primed
# with 3. The audit threshold absorbs the small per-family differences.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


@dataclass(frozen=True)
class AuditConfig:
    """When a difference between billed and sent input tokens is flagged.

    A call is flagged when ``|reported - expected| > max(min_tokens, tolerance * expected)``.

    Args:
        tolerance: the relative difference allowed (default 5%).
        min_tokens: the absolute difference always allowed (default 16 tokens).

    Raises:
        ConfigError: a negative or non-numeric setting.
    """

    tolerance: float = 0.05
    min_tokens: int = 16

    def __post_init__(self) -> None:
        if isinstance(self.tolerance, bool) or not isinstance(self.tolerance, (int, float)) or self.tolerance < 0:
            raise ConfigError(f"tolerance must be a number >= 0, got {self.tolerance!r}")
        if isinstance(self.min_tokens, bool) or not isinstance(self.min_tokens, int) or self.min_tokens < 0:
            raise ConfigError(f"min_tokens must be an int >= 0, got {self.min_tokens!r}")

    def allowed(self, expected: int) -> float:
        return max(float(self.min_tokens), self.tolerance * expected)


@dataclass(frozen=True)
class Finding:
    """One checked call: ``difference`` = reported - expected input tokens."""

    provider: str
    model: str
    reported: int
    expected: int
    flagged: bool

    @property
    def difference(self) -> int:
        return self.reported - self.expected

    @property
    def relative(self) -> float:
        return self.difference / self.expected if self.expected else float(self.difference != 0)


def check(usage: LLMUsage, config: AuditConfig) -> Finding | None:
    """The finding for one call; None when it cannot be checked (no exact count)."""
    expected = usage.expected_input_tokens
    if expected is None or usage.expected_approximate:
        return None
    flagged = abs(usage.input_tokens - expected) > config.allowed(expected)
    return Finding(usage.provider, usage.model, usage.input_tokens, expected, flagged)


@dataclass(frozen=True)
class AuditRow:
    """The audit of one provider and model.

    Attributes:
        calls: LLM calls recorded.
        checked: calls with an exact count of what was sent.
        flagged: checked calls whose difference exceeded the threshold.
        reported, expected: summed input tokens over the checked calls.
        worst: the checked call with the largest absolute difference (None: none checked).
    """

    provider: str
    model: str
    calls: int
    checked: int
    flagged: int
    reported: int
    expected: int
    worst: Finding | None

    @property
    def unchecked(self) -> int:
        return self.calls - self.checked


class AuditTally:
    """Running audit per (provider, model) (not thread-safe: the caller locks)."""

    def __init__(self, config: AuditConfig | None = None) -> None:
        self.config = config or AuditConfig()
        self._rows: dict[tuple[str, str], list[Any]] = {}

    def add(self, usage: LLMUsage) -> Finding | None:
        """Count ``usage``; its finding (None when unchecked)."""
        key = (usage.provider, usage.model)
        row = self._rows.setdefault(key, [0, 0, 0, 0, 0, None])  # calls checked flagged reported expected worst
        row[0] += 1
        finding = check(usage, self.config)
        if finding is not None:
            row[1] += 1
            row[2] += finding.flagged
            row[3] += finding.reported
            row[4] += finding.expected
            if row[5] is None or abs(finding.difference) > abs(row[5].difference):
                row[5] = finding
        return finding

    def merge(self, other: AuditTally) -> None:
        for key, theirs in other._rows.items():
            mine = self._rows.setdefault(key, [0, 0, 0, 0, 0, None])
            for i in range(5):
                mine[i] += theirs[i]
            if theirs[5] is not None and (mine[5] is None or abs(theirs[5].difference) > abs(mine[5].difference)):
                mine[5] = theirs[5]

    def rows(self) -> list[AuditRow]:
        """One row per provider and model, the most flagged first."""
        out = [AuditRow(p, m, *values) for (p, m), values in self._rows.items()]
        return sorted(out, key=lambda r: (-r.flagged, -r.calls, r.provider, r.model))

    @property
    def flagged(self) -> int:
        return sum(r[2] for r in self._rows.values())


def _text_of(content: Any) -> str | None:
    """Text of a message's content, or None when it holds a non-text part."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                return None
        return "".join(parts)
    return None


def count_prompt_tokens(messages: Sequence[Mapping[str, Any]], model: str) -> tuple[int, bool] | None:
    """ctxcomp's count of the input tokens of an OpenAI-format chat request.

    Args:
        messages: ``{"role": ..., "content": ..., "name"?: ...}`` mappings.
        model: the model the request goes to (its tokenizer counts).

    Returns:
        ``(tokens, approximate)``, or None when a message holds something that cannot be
        counted here (tool calls, images, audio).

    Example:
        >>> count_prompt_tokens([{"role": "user", "content": "hi"}], "gpt-4o-mini")
        (8, False)
    """
    from ctxcomp.tokens import get_counter

    counter = get_counter(model)
    texts: list[str] = []
    names = 0
    for message in messages:
        if not isinstance(message, Mapping) or set(message) - {"role", "content", "name"}:
            return None  # tool_calls, tool_call_id, audio ...: provider-specific accounting
        content = _text_of(message.get("content"))
        if content is None:
            return None
        texts += [str(message.get("role", "")), content]
        if message.get("name"):
            texts.append(str(message["name"]))
            names += 1
    tokens = sum(counter.count_many(texts)) if texts else 0
    total = tokens + TOKENS_PER_MESSAGE * len(messages) + TOKENS_PER_NAME * names + REPLY_PRIMING
    return total, counter.approximate


def count_text_tokens(prompt: str, model: str) -> tuple[int, bool]:
    """ctxcomp's count of a plain completion prompt: ``(tokens, approximate)``."""
    from ctxcomp.tokens import get_counter

    counter = get_counter(model)
    return counter.count(prompt), counter.approximate
