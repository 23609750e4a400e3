"""The OpenAI-compatible backend against a real HTTP server started in the test."""

from __future__ import annotations

import asyncio

import pytest

from ctxcomp.errors import ConfigError, LLMError, LLMRetryableError, LLMTimeoutError
from ctxcomp.llm import build_llm
from ctxcomp.llm.openai_compat import OpenAICompatLLM
from ctxcomp.pricing import Price


def test_generate_counts_tokens_and_dollars(openai_server):
    url, rec = openai_server
    llm = OpenAICompatLLM("gpt-4o-mini", base_url=url, api_key="sk-test", backoff=0)
    gen = llm.generate("hello there", max_tokens=32, stop=["\n"])
    assert gen.text == "echo: hello there"
    assert (gen.tokens_in, gen.tokens_out) == (11, 7)
    # genai-prices: gpt-4o-mini $0.15 in, $0.60 out per million tokens
    assert gen.cost_usd == pytest.approx((11 * 0.15 + 7 * 0.60) / 1e6)
    assert gen.seconds > 0 and gen.attempts == 1
    sent = rec.requests[0]
    assert sent["messages"] == [{"role": "user", "content": "hello there"}]
    assert sent["max_tokens"] == 32 and sent["stop"] == ["\n"] and sent["temperature"] == 0.0
    assert rec.headers[0]["Authorization"] == "Bearer sk-test"
    assert "sk-test" not in repr(llm.config())
    usage = llm.usage_snapshot()
    assert (usage.calls, usage.tokens_in, usage.tokens_out, usage.failures) == (1, 11, 7, 0)


def test_environment_configures_the_endpoint(openai_server, monkeypatch):
    url, rec = openai_server
    monkeypatch.setenv("CTXCOMP_LLM_BASE_URL", url)
    monkeypatch.setenv("CTXCOMP_LLM_MODEL", "no-usage")
    monkeypatch.setenv("CTXCOMP_LLM_API_KEY", "sk-env")
    llm = build_llm({"name": "openai", "price": Price(1.0, 2.0)})
    gen = llm.generate("count me", max_tokens=8)
    assert rec.headers[0]["Authorization"] == "Bearer sk-env"
    # no usage in the answer: counted with the tokenizer, priced with the override
    assert gen.tokens_in > 0 and gen.tokens_out > 0
    assert gen.cost_usd == pytest.approx((gen.tokens_in * 1.0 + gen.tokens_out * 2.0) / 1e6)


def test_429_is_retried_with_backoff(openai_server):
    url, rec = openai_server
    llm = OpenAICompatLLM("flaky-429", base_url=url, max_retries=2, backoff=0.01, price=Price(0, 0))
    gen = llm.generate("retry me")
    assert gen.attempts == 3 and rec.counts["flaky-429"] == 3
    assert llm.usage_snapshot().retries == 2


def test_400_is_not_retried(openai_server):
    url, rec = openai_server
    llm = OpenAICompatLLM("bad-400", base_url=url, max_retries=3, backoff=0, price=Price(0, 0))
    with pytest.raises(LLMError) as info:
        llm.generate("no")
    assert not isinstance(info.value, LLMRetryableError) and info.value.status == 400
    assert rec.counts["bad-400"] == 1
    assert llm.usage_snapshot().failures == 1


def test_500_retries_then_fails(openai_server):
    url, rec = openai_server
    llm = OpenAICompatLLM("down-500", base_url=url, max_retries=1, backoff=0, price=Price(0, 0))
    with pytest.raises(LLMRetryableError):
        llm.generate("no")
    assert rec.counts["down-500"] == 2


def test_timeout(openai_server):
    url, _ = openai_server
    llm = OpenAICompatLLM("slow", base_url=url, timeout=0.3, max_retries=0, price=Price(0, 0))
    with pytest.raises(LLMTimeoutError):
        llm.generate("wait")


def test_unreachable_server_is_retryable():
    llm = OpenAICompatLLM("m", base_url="http://127.0.0.1:9/v1", max_retries=1, backoff=0, price=Price(0, 0))
    with pytest.raises(LLMRetryableError):
        llm.generate("anyone?")
    assert llm.usage_snapshot().retries == 1


async def test_async_respects_the_concurrency_limit(openai_server):
    url, rec = openai_server
    llm = OpenAICompatLLM("gate", base_url=url, max_concurrency=2, price=Price(0, 0))
    gens = await asyncio.gather(*(llm.agenerate(f"q{i}") for i in range(6)))
    assert [g.text for g in gens] == [f"echo: q{i}" for i in range(6)]
    assert rec.max_in_flight == 2
    assert llm.usage_snapshot().calls == 6


def test_generate_many_threads_under_the_limit(openai_server):
    url, rec = openai_server
    llm = OpenAICompatLLM("gate", base_url=url, max_concurrency=3, price=Price(0, 0))
    out = llm.generate_many([f"p{i}" for i in range(7)])
    assert [g.text for g in out] == [f"echo: p{i}" for i in range(7)]
    assert 1 < rec.max_in_flight <= 3


def test_bad_settings():
    with pytest.raises(ConfigError):
        OpenAICompatLLM("m", base_url="ftp://x")
    with pytest.raises(ConfigError):
        OpenAICompatLLM("m", base_url="http://x", max_concurrency=0)
