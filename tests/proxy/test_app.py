"""The proxy end to end over real HTTP: httpx -> proxy (uvicorn) -> a real upstream server."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import httpx
import pytest

from ctxcomp.pipeline import Pipeline
from ctxcomp.proxy.testing import FakeUpstream, free_port
from ctxcomp.types import Budget, Chunk, CompressedContext

LONG = "The river rises in the northern hills and flows south for many miles. " * 12
DOCS = "".join(f'<document id="d{i}">\n{LONG}\n</document>\n' for i in range(3))
QUESTION = "Where does the river rise?"


def chat(messages: list[dict], **extra: object) -> dict:
    return {"model": "gpt-4o-mini", "messages": messages, **extra}


def rag_messages() -> list[dict]:
    return [{"role": "system", "content": "Answer from the documents."},
            {"role": "user", "content": f"<documents>\n{DOCS}</documents>\n\n{QUESTION}"}]


def post(url: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(url + "/chat/completions", json=body, headers=headers, timeout=30)


def test_documents_are_compressed_and_the_rest_passes_through(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    body = chat(rag_messages(), temperature=0.2, custom_field={"keep": [1, 2]})
    r = post(url, body, **{"x-ctxcomp-budget": "120", "authorization": "Bearer sk-secret", "x-custom": "yes"})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"].startswith("echo:")
    assert r.headers["x-upstream"] == "fake"  # the upstream's headers come back
    before, after = int(r.headers["x-ctxcomp-tokens-before"]), int(r.headers["x-ctxcomp-tokens-after"])
    assert r.headers["x-ctxcomp-status"] == "compressed"
    assert after <= 120 < before and int(r.headers["x-ctxcomp-tokens-saved"]) == before - after
    sent = fake.received[-1]
    got = sent.json
    assert got["temperature"] == 0.2 and got["custom_field"] == {"keep": [1, 2]}
    assert sent.headers["authorization"] == "Bearer sk-secret" and sent.headers["x-custom"] == "yes"
    assert "x-ctxcomp-budget" not in sent.headers
    assert got["messages"][0] == body["messages"][0]  # the system prompt is never touched
    user = got["messages"][1]["content"]
    assert user.endswith(QUESTION) and user.startswith("<documents>\n") and len(user) < len(body["messages"][1]["content"])
    assert user.count("<document ") == user.count("</document>")  # dropped documents go with their tags


def test_switched_off_forwards_the_exact_bytes(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    raw = json.dumps(chat(rag_messages(), extra={"z": None})).encode()
    r = httpx.post(url + "/chat/completions", content=raw, timeout=30,
                   headers={"content-type": "application/json", "x-ctxcomp-compress": "off"})
    assert r.status_code == 200 and r.headers["x-ctxcomp-status"] == "off"
    assert fake.received[-1].raw == raw


def test_system_documents_only_when_asked(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    messages = [{"role": "system", "content": f"Context:\n{DOCS}"}, {"role": "user", "content": QUESTION}]
    r = post(url, chat(messages), **{"x-ctxcomp-budget": "60"})
    assert r.headers["x-ctxcomp-status"] == "unchanged"
    assert "switched off" in r.headers["x-ctxcomp-notes"]
    assert fake.received[-1].json["messages"] == messages
    r = post(url, chat(messages), **{"x-ctxcomp-budget": "60", "x-ctxcomp-compress": "documents,system"})
    assert r.headers["x-ctxcomp-status"] == "compressed"
    system = fake.received[-1].json["messages"][0]["content"]
    assert system.startswith("Context:\n<document id=") and len(system) < len(messages[0]["content"])


def test_json_tool_results_stay_valid_json(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    result = {"results": [{"title": f"t{i}", "body": LONG, "score": 0.5 + i} for i in range(3)], "count": 3}
    small = {"ids": list(range(400))}  # big, but no string to compress
    messages = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "search", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "ids", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": json.dumps(result, indent=2)},
        {"role": "tool", "tool_call_id": "c2", "content": json.dumps(small)},
    ]
    r = post(url, chat(messages), **{"x-ctxcomp-budget": "80"})
    assert r.status_code == 200 and r.headers["x-ctxcomp-status"] == "compressed"
    got = fake.received[-1].json["messages"]
    assert got[1] == messages[1] and got[2]["tool_call_id"] == "c1"  # tool calls stay paired
    parsed = json.loads(got[2]["content"])
    assert parsed["count"] == 3 and [r["title"] for r in parsed["results"]] == ["t0", "t1", "t2"]
    assert [r["score"] for r in parsed["results"]] == [0.5, 1.5, 2.5]
    assert sum(len(r["body"]) for r in parsed["results"]) < 3 * len(LONG)
    assert got[3]["content"] == messages[3]["content"]
    assert "passed through unchanged" in r.headers["x-ctxcomp-notes"]


def test_extension_documents_are_compressed_and_removed(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    ext = {"documents": [LONG, {"id": "wiki-7", "text": LONG}], "budget": 50}
    r = post(url, chat([{"role": "user", "content": QUESTION}], ctxcomp=ext))
    assert r.status_code == 200 and r.headers["x-ctxcomp-status"] == "compressed"
    assert int(r.headers["x-ctxcomp-tokens-after"]) <= 50
    got = fake.received[-1].json
    assert "ctxcomp" not in got
    content = got["messages"][0]["content"]
    assert content.startswith("<documents>\n<document id=") and content.endswith("\n\n" + QUESTION)
    r = post(url, chat([{"role": "user", "content": QUESTION}], ctxcomp={**ext, "compress": {"extension": False}}))
    assert r.headers["x-ctxcomp-status"] == "unchanged"
    content = fake.received[-1].json["messages"][0]["content"]
    assert 'id="wiki-7"' in content and content.count(LONG) == 2


def test_images_and_unknown_roles_pass_untouched(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    messages = [{"role": "critic", "content": DOCS},
                {"role": "user", "content": [image, {"type": "text", "text": f"{DOCS}\n{QUESTION}"}]}]
    r = post(url, chat(messages), **{"x-ctxcomp-budget": "100"})
    assert r.status_code == 200, r.text
    got = fake.received[-1].json["messages"]
    assert got[0] == messages[0]
    assert got[1]["content"][0] == image
    assert got[1]["content"][1]["text"].endswith(QUESTION) and len(got[1]["content"][1]["text"]) < len(DOCS)


@pytest.mark.parametrize(("raw", "needle", "param"), [
    (b'{"model": "x", "messages": [', "not valid JSON", None),
    (b'[1, 2]', "must be a JSON object", None),
    (b'{"model": "x"}', "messages", "messages"),
    (b'{"model": "x", "messages": [], "ctxcomp": {"budgett": 3}}', "unknown keys", "ctxcomp"),
    (b'{"model": "x", "messages": [{"role": "user", "content": "q"}], "ctxcomp": {"budget": "lots"}}',
     "budget", "ctxcomp.budget"),
])
def test_bad_requests_get_openai_shaped_400(fake: FakeUpstream, start_proxy, raw: bytes, needle: str,
                                            param: str | None) -> None:
    _, url = start_proxy()
    r = httpx.post(url + "/chat/completions", content=raw, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 400
    err = r.json()["error"]
    assert needle in err["message"] and err["type"] == "invalid_request_error" and err["param"] == param
    assert fake.received == []


def test_bad_budget_header_is_400(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    r = post(url, chat(rag_messages()), **{"x-ctxcomp-budget": "-5"})
    assert r.status_code == 400 and "budget" in r.json()["error"]["message"]


def test_body_over_the_limit_is_413(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy(max_body_bytes=4096)
    r = post(url, chat([{"role": "user", "content": "x" * 5000}]))
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert fake.received == []
    assert post(url, chat([{"role": "user", "content": "x" * 100}])).status_code == 200


def test_upstream_errors_reach_the_client_unchanged(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    r = post(url, {"model": "error-429", "messages": rag_messages()})
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert r.json() == {"error": {"message": "slow down", "type": "rate_limit_error", "param": None,
                                  "code": "rate_limit"}}


def test_upstream_down_is_502(start_proxy) -> None:
    _, url = start_proxy(upstream=f"http://127.0.0.1:{free_port()}/v1", connect_timeout=2)
    r = post(url, chat(rag_messages()))
    assert r.status_code == 502
    err = r.json()["error"]
    assert err["type"] == "upstream_error" and "cannot be reached" in err["message"]


class Raising:
    name = "raising"
    requires_query = False

    def compress(self, query: str, chunks: Sequence[Chunk], budget: Budget) -> CompressedContext:
        raise RuntimeError("the model fell over")


def test_fail_open_forwards_the_original(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy(pipeline=Pipeline([Raising()], cache=False))
    body = chat(rag_messages())
    r = post(url, body, **{"x-ctxcomp-budget": "50"})
    assert r.status_code == 200 and r.headers["x-ctxcomp-status"] == "failed-open"
    assert "the model fell over" in r.headers["x-ctxcomp-notes"]
    assert fake.received[-1].json == body
    metrics = httpx.get(url.removesuffix("/v1") + "/metrics").text
    assert 'ctxcomp_proxy_compression_total{status="failed-open"} 1.0' in metrics


def test_fail_closed_answers_500(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy(pipeline=Pipeline([Raising()], cache=False), fail_open=False)
    r = post(url, chat(rag_messages()), **{"x-ctxcomp-budget": "50"})
    assert r.status_code == 500 and r.json()["error"]["code"] == "compression_failed"
    assert fake.received == []


def test_streaming_passes_chunk_by_chunk(fake: FakeUpstream, start_proxy) -> None:
    app, url = start_proxy()
    fake.gate = threading.Event()
    body = chat(rag_messages(), stream=True, stream_options={"include_usage": True})
    with httpx.stream("POST", url + "/chat/completions", json=body, timeout=30,
                      headers={"x-ctxcomp-budget": "100", "x-ctxcomp-tenant": "team-a"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-ctxcomp-status"] == "compressed"
        lines = r.iter_lines()
        first = next(line for line in lines if line)
        assert '"Hel"' in first  # arrived while the upstream still holds back the rest
        fake.gate.set()
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]" and any('"lo"' in line for line in rest)
    usage = app.state.proxy.ledger.usage(tenant="team-a")
    assert len(usage) == 1 and usage[0].input_tokens == fake.received[-1].raw.__len__() // 4


def test_ledger_metrics_and_tenants(fake: FakeUpstream, start_proxy) -> None:
    app, url = start_proxy()
    r = post(url, chat(rag_messages()), **{"x-ctxcomp-budget": "100", "x-ctxcomp-tenant": "team-b"})
    assert r.status_code == 200
    ledger = app.state.proxy.ledger
    records = list(ledger)
    assert len(records) == 1 and records[0].tenant == "team-b" and records[0].model == "gpt-4o-mini"
    assert records[0].tokens_in == int(r.headers["x-ctxcomp-tokens-before"])
    assert records[0].tokens_out == int(r.headers["x-ctxcomp-tokens-after"])
    assert ledger.usage(tenant="team-b")[0].output_tokens == 3
    metrics = httpx.get(url.removesuffix("/v1") + "/metrics").text
    assert 'ctxcomp_saved_tokens_total{model="gpt-4o-mini",pipeline=' in metrics and 'tenant="team-b"' in metrics
    assert 'ctxcomp_proxy_requests_total{route="chat",status="200"} 1.0' in metrics


def test_tenant_from_the_api_key(fake: FakeUpstream, start_proxy) -> None:
    from ctxcomp.proxy.config import key_digest

    app, url = start_proxy(api_key_tenants={key_digest("sk-team-c"): "team-c"})
    r = post(url, chat(rag_messages()), **{"authorization": "Bearer sk-team-c", "x-ctxcomp-budget": "100"})
    assert r.headers["x-ctxcomp-tenant"] == "team-c"
    assert next(iter(app.state.proxy.ledger)).tenant == "team-c"


def test_other_paths_pass_through_and_health(fake: FakeUpstream, start_proxy) -> None:
    _, url = start_proxy()
    r = httpx.get(url + "/models", headers={"authorization": "Bearer k"})
    assert r.status_code == 200 and r.json()["data"][0]["id"] == "fake-model"
    assert fake.received[-1].headers["authorization"] == "Bearer k"
    root = url.removesuffix("/v1")
    assert httpx.get(root + "/healthz").json() == {"status": "ok"}
    for _ in range(200):  # the warm-up runs in the background
        ready = httpx.get(root + "/readyz")
        if ready.status_code == 200:
            break
        threading.Event().wait(0.05)
    assert ready.status_code == 200


def test_responses_api(fake: FakeUpstream, start_proxy) -> None:
    app, url = start_proxy()
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
    items = [
        {"role": "user", "content": [image, {"type": "input_text", "text": f"{DOCS}\n{QUESTION}"}]},
        {"type": "function_call", "call_id": "c1", "name": "search", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": json.dumps({"hits": [LONG, LONG]})},
    ]
    body = {"model": "gpt-4o-mini", "instructions": f"Be brief. {DOCS}", "input": items, "store": False}
    r = httpx.post(url + "/responses", json=body, headers={"x-ctxcomp-budget": "150"}, timeout=30)
    assert r.status_code == 200 and r.headers["x-ctxcomp-status"] == "compressed", r.text
    got = fake.received[-1].json
    assert got["instructions"] == body["instructions"] and got["store"] is False
    user, call, output = got["input"]
    assert user["content"][0] == image and user["content"][1]["type"] == "input_text"
    assert user["content"][1]["text"].endswith(QUESTION) and len(user["content"][1]["text"]) < len(DOCS)
    assert call == items[1] and output["call_id"] == "c1" and output["type"] == "function_call_output"
    assert len(json.loads(output["output"])["hits"]) == 2
    assert app.state.proxy.ledger.usage()[0].output_tokens == 3
    r = httpx.post(url + "/responses", json={"model": "m", "input": QUESTION,
                                             "ctxcomp": {"documents": [LONG], "budget": 30}}, timeout=30)
    assert r.status_code == 200
    sent = fake.received[-1].json
    assert "ctxcomp" not in sent and isinstance(sent["input"], str) and sent["input"].endswith(QUESTION)
    assert sent["input"].startswith("<documents>") and len(sent["input"]) < len(LONG)
    r = httpx.post(url + "/responses", json={"model": "m"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
