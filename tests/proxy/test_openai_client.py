"""The official ``openai`` client pointed at the proxy: plain, streaming, tools, errors."""

from __future__ import annotations

import pytest

from ctxcomp.proxy.testing import FakeUpstream
from tests.proxy.test_app import QUESTION, rag_messages

openai = pytest.importorskip("openai")


def client(url: str):
    return openai.OpenAI(base_url=url, api_key="sk-test-key", max_retries=0, timeout=30)


def test_chat_through_the_proxy(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    raw = client(url).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=rag_messages(), extra_headers={"X-Ctxcomp-Budget": "100"})
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("echo:")
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    assert raw.headers["x-ctxcomp-status"] == "compressed"
    sent = fake.received[-1]
    assert sent.headers["authorization"] == "Bearer sk-test-key"
    assert sent.json["messages"][1]["content"].endswith(QUESTION)
    assert int(raw.headers["x-ctxcomp-tokens-after"]) < int(raw.headers["x-ctxcomp-tokens-before"])


def test_streaming_through_the_proxy(fake: FakeUpstream, start_proxy) -> None:
    app, url = start_proxy()
    stream = client(url).chat.completions.create(model="gpt-4o-mini", messages=rag_messages(), stream=True,
                                                 stream_options={"include_usage": True},
                                                 extra_headers={"X-Ctxcomp-Budget": "100"})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3
    usage = app.state.proxy.ledger.usage()
    assert len(usage) == 1 and usage[0].output_tokens == 3


def test_tools_through_the_proxy(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object", "properties": {}}}}]
    completion = client(url).chat.completions.create(model="gpt-4o-mini", messages=rag_messages(), tools=tools)
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "search" and completion.choices[0].finish_reason == "tool_calls"
    assert fake.received[-1].json["tools"] == tools


def test_errors_through_the_proxy(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    with pytest.raises(openai.RateLimitError) as info:
        client(url).chat.completions.create(model="error-429", messages=rag_messages())
    assert info.value.status_code == 429 and "slow down" in str(info.value)
    with pytest.raises(openai.BadRequestError) as bad:
        client(url).chat.completions.create(model="gpt-4o-mini", messages=rag_messages(),
                                            extra_body={"ctxcomp": {"budget": "lots"}})
    assert "budget" in str(bad.value)
    assert len(fake.received) == 1  # the bad request never reached the upstream


def test_responses_through_the_proxy(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    response = client(url).responses.create(model="gpt-4o-mini", input=QUESTION, instructions="Be brief.")
    assert response.output_text == "echo: " + QUESTION
    assert fake.received[-1].json["input"] == QUESTION
