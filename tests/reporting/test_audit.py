from __future__ import annotations

import pytest

from ctxcomp.errors import ConfigError
from ctxcomp.reporting.audit import AuditConfig, AuditTally, check, count_prompt_tokens
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.reporting.usage import make_usage
from ctxcomp.tokens import ensure_offline_encoding

MESSAGES = [{"role": "system", "content": "You answer from the context only."},
            {"role": "user", "content": "Context: Deadpool 2 is released on May 18, 2018.\n\nWhen?", "name": "ann"},
            {"role": "assistant", "content": [{"type": "text", "text": "May 18, "}, {"type": "text", "text": "2018."}]}]


def cookbook_count(messages: list[dict[str, object]]) -> int:
    """OpenAI's published recipe (openai-cookbook, How to count tokens with tiktoken),
    written out independently of ctxcomp's counter."""
    import tiktoken

    ensure_offline_encoding("o200k_base")
    enc = tiktoken.get_encoding("o200k_base")
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            text = value if isinstance(value, str) else "".join(p["text"] for p in value)  # type: ignore[attr-defined]
            total += len(enc.encode(text))
            total += key == "name"
    return total


def test_prompt_count_matches_openais_recipe() -> None:
    assert count_prompt_tokens(MESSAGES, "gpt-4o-mini") == (cookbook_count(MESSAGES), False)  # type: ignore[arg-type]
    assert count_prompt_tokens(MESSAGES, "claude-3-5-haiku")[1] is True  # type: ignore[index]


def test_uncountable_prompts_are_none() -> None:
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]
    tool = [{"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}]
    assert count_prompt_tokens(image, "gpt-4o-mini") is None
    assert count_prompt_tokens(tool, "gpt-4o-mini") is None


def test_audit_flags_a_planted_discrepancy() -> None:
    ledger = Ledger()
    for i in range(50):
        sent = 1000 + i
        billed = sent + (600 if i == 17 else i % 3)  # call 17 was over-billed by 600 tokens
        ledger.record_usage(make_usage("gpt-4o-mini", billed, 20, provider="openai", expected_input_tokens=sent))
    ledger.record_usage(make_usage("claude-x", 999, 1, provider="anthropic", expected_input_tokens=500,
                                   expected_approximate=True))  # approximate count: not judged
    rows = {(r.provider, r.model): r for r in ledger.audit()}
    openai = rows[("openai", "gpt-4o-mini")]
    assert (openai.calls, openai.checked, openai.flagged) == (50, 50, 1)
    assert openai.worst is not None and (openai.worst.expected, openai.worst.difference) == (1017, 600)
    anthropic = rows[("anthropic", "claude-x")]
    assert (anthropic.checked, anthropic.unchecked, anthropic.flagged) == (0, 1, 0)
    assert ledger.audit()[0].flagged == 1  # flagged rows first


def test_threshold() -> None:
    config = AuditConfig(tolerance=0.1, min_tokens=5)
    usage = make_usage("gpt-4o-mini", 1099, 0, expected_input_tokens=1000)
    assert check(usage, config).flagged is False  # type: ignore[union-attr]
    assert check(make_usage("gpt-4o-mini", 1101, 0, expected_input_tokens=1000), config).flagged  # type: ignore[union-attr]
    assert check(make_usage("gpt-4o-mini", 6, 0, expected_input_tokens=0), config).flagged  # type: ignore[union-attr]
    assert check(make_usage("gpt-4o-mini", 6, 0), config) is None
    tally = AuditTally(config)
    tally.add(make_usage("gpt-4o-mini", 899, 0, expected_input_tokens=1000))  # under-billed is flagged too
    assert tally.flagged == 1
    with pytest.raises(ConfigError):
        AuditConfig(tolerance=-1)
    with pytest.raises(ConfigError):
        AuditConfig(min_tokens=1.5)  # type: ignore[arg-type]
