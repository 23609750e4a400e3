"""The callable, LangChain and LlamaIndex backends, and the registry."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ctxcomp import registry
from ctxcomp.errors import InputError, LLMError, LLMTimeoutError
from ctxcomp.llm import build_llm
from ctxcomp.llm.base import Completion, to_messages
from ctxcomp.llm.function import CallableLLM
from ctxcomp.pricing import Price


def test_registry_kind():
    assert {"local", "openai", "langchain", "llamaindex", "callable"} <= set(registry.llms.known_names())
    assert "llm" in registry.KINDS


def test_callable_counts_and_prices():
    llm = build_llm(lambda prompt: prompt.upper())
    gen = llm.generate("abc def", max_tokens=5)
    assert gen.text == "ABC DEF" and gen.tokens_in == gen.tokens_out > 0 and gen.cost_usd == 0.0
    priced = CallableLLM(lambda p: "x", model="gpt-4o-mini")
    assert priced.generate("hello").cost_usd > 0


def test_callable_may_return_a_completion_with_counts():
    llm = CallableLLM(lambda p: Completion("ok", 100, 2), price=Price(1.0, 1.0))
    gen = llm.generate("x")
    assert (gen.tokens_in, gen.tokens_out) == (100, 2) and gen.cost_usd == pytest.approx(102 / 1e6)


def test_a_raising_callable_is_wrapped_and_not_retried():
    calls = []

    def boom(prompt: str) -> str:
        calls.append(prompt)
        raise RuntimeError("kaput")

    llm = CallableLLM(boom, max_retries=3, backoff=0)
    with pytest.raises(LLMError, match="kaput"):
        llm.generate("x")
    assert len(calls) == 1 and llm.usage_snapshot().failures == 1


def test_a_hanging_callable_times_out():
    release = threading.Event()
    llm = CallableLLM(lambda p: release.wait(5) and "late", timeout=0.2, max_retries=1, backoff=0)
    started = time.perf_counter()
    with pytest.raises(LLMTimeoutError):
        llm.generate("x")
    release.set()
    assert time.perf_counter() - started < 2
    assert llm.usage_snapshot().retries == 1  # a timeout is retryable


def test_a_non_string_answer_is_an_error():
    with pytest.raises(LLMError, match="not a str"):
        CallableLLM(lambda p: 42).generate("x")


async def test_async_callable_and_timeout():
    async def fn(prompt: str) -> str:
        await asyncio.sleep(0.01)
        return prompt[::-1]

    assert (await CallableLLM(fn).agenerate("abc")).text == "cba"

    async def hang(prompt: str) -> str:
        await asyncio.sleep(10)
        return ""

    with pytest.raises(LLMTimeoutError):
        await CallableLLM(hang, timeout=0.1, max_retries=0).agenerate("x")


def test_messages():
    assert to_messages("hi", "be brief") == [{"role": "system", "content": "be brief"},
                                             {"role": "user", "content": "hi"}]
    with pytest.raises(InputError):
        to_messages("  ")
    with pytest.raises(InputError):
        to_messages([{"role": "user"}])
    seen = []
    CallableLLM(lambda m: seen.append(m) or "ok", messages=True).generate([{"role": "user", "content": "q"}])
    assert seen == [[{"role": "user", "content": "q"}]]


def test_langchain_chat_model():
    pytest.importorskip("langchain_core")
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    chat = GenericFakeChatModel(messages=iter([AIMessage(content="a summary",
                                                         usage_metadata={"input_tokens": 30, "output_tokens": 3,
                                                                         "total_tokens": 33})]))
    llm = build_llm(chat)
    assert llm.name == "langchain"
    gen = llm.generate("summarize this", max_tokens=10)
    assert gen.text == "a summary" and (gen.tokens_in, gen.tokens_out) == (30, 3)


def test_llamaindex_llm():
    pytest.importorskip("llama_index.core")
    from llama_index.core.llms import MockLLM

    llm = build_llm(MockLLM(max_tokens=4))
    assert llm.name == "llamaindex"
    gen = llm.generate("one two three four five six", max_tokens=4)
    assert gen.text.strip() and gen.tokens_out > 0
    assert asyncio.run(llm.agenerate("hello world")).text
