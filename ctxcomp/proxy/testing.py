"""A real OpenAI-shaped HTTP server to test and measure the proxy against (extra ``server``):
Starlette under uvicorn in a thread, on a free loopback port. It records every request
it gets. ``python -m ctxcomp.proxy.testing --port P`` runs it in a process of its own.

Behaviour by the request's ``model``: ``error-429`` answers 429 in the OpenAI error shape
with a ``retry-after`` header; anything else answers a chat completion (an SSE stream when
``stream`` is true) whose text is ``"echo: "`` and the latest user message, with ``usage``;
``/v1/responses`` answers a Responses object the same way (not streamed). A request
with ``tools`` gets a tool call. A stream waits for ``gate`` (a threading.Event, when set
on the server) after its first chunk, so a test can see that chunks arrive one by one.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ctxcomp._deps import require

uvicorn = require("uvicorn", "server", "the test upstream")
require("starlette", "server", "the test upstream")
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response, StreamingResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class FakeUpstream:
    received: list[Received] = field(default_factory=list)
    gate: threading.Event | None = None

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/responses", self.responses, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
        ])

    async def models(self, request: Request) -> Response:
        self.received.append(Received(request.url.path, dict(request.headers), b""))
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0,
                                                         "owned_by": "test"}]})

    async def responses(self, request: Request) -> Response:
        raw = await request.body()
        self.received.append(Received(request.url.path, dict(request.headers), raw))
        body = json.loads(raw)
        items = body["input"] if isinstance(body["input"], list) else [{"role": "user", "content": body["input"]}]
        last = next((i for i in reversed(items) if i.get("role") == "user"), {"content": ""})
        text = last["content"] if isinstance(last["content"], str) else json.dumps(last["content"])
        usage = {"input_tokens": len(raw) // 4, "output_tokens": 3, "total_tokens": len(raw) // 4 + 3}
        message = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
                   "content": [{"type": "output_text", "text": "echo: " + text, "annotations": []}]}
        return JSONResponse({"id": "resp_1", "object": "response", "created_at": int(time.time()),
                             "status": "completed", "model": body.get("model", ""), "output": [message],
                             "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "usage": usage})

    async def chat(self, request: Request) -> Response:
        raw = await request.body()
        self.received.append(Received(request.url.path, dict(request.headers), raw))
        body = json.loads(raw)
        model = body.get("model", "")
        if model == "error-429":
            return JSONResponse({"error": {"message": "slow down", "type": "rate_limit_error", "param": None,
                                           "code": "rate_limit"}}, status_code=429, headers={"retry-after": "7"})
        last = next((m for m in reversed(body["messages"]) if m.get("role") == "user"), {"content": ""})
        text = last["content"] if isinstance(last["content"], str) else json.dumps(last["content"])
        prompt_tokens = len(raw) // 4
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 3, "total_tokens": prompt_tokens + 3}
        if body.get("stream"):
            return StreamingResponse(self._stream(model, body, usage), media_type="text/event-stream")
        message: dict[str, Any] = {"role": "assistant", "content": "echo: " + text}
        finish = "stop"
        if body.get("tools"):
            name = body["tools"][0]["function"]["name"]
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": name, "arguments": '{"q": "x"}'}}]}
            finish = "tool_calls"
        return JSONResponse({"id": "chatcmpl-1", "object": "chat.completion", "created": int(time.time()),
                             "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                             "usage": usage}, headers={"x-upstream": "fake"})

    async def _stream(self, model: str, body: dict[str, Any], usage: dict[str, int]) -> Any:
        def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(chunk)}\n\n".encode()

        yield event({"role": "assistant", "content": "Hel"})
        if self.gate is not None:
            await asyncio.to_thread(self.gate.wait, 10)
        yield event({"content": "lo"})
        yield event({}, "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            yield f'data: {json.dumps({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [], "usage": usage})}\n\n'.encode()
        yield b"data: [DONE]\n\n"


class ServerThread:
    """An ASGI app served by uvicorn in a daemon thread on a free loopback port."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


def free_port() -> int:
    """A loopback port with nothing listening on it (for 'upstream down')."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    """Serve the fake upstream on ``--port`` until killed."""
    import argparse

    parser = argparse.ArgumentParser(description="an OpenAI-shaped test upstream on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with ServerThread(FakeUpstream().app(), args.port) as server:
        print(server.port, flush=True)
        server.thread.join()


if __name__ == "__main__":
    main()
