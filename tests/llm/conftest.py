"""A real OpenAI-compatible HTTP server (stdlib ``http.server`` in a thread) for the tests.

It answers ``POST /chat/completions`` like the OpenAI API does. A scenario per model name
drives failures: ``flaky-429`` fails twice with 429 then answers, ``bad-400`` always 400,
``slow`` sleeps 2 s, ``down-500`` always 500, ``no-usage`` answers without ``usage``.
It records every request and the most requests it had in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.counts: dict[str, int] = {}


def _handler(rec: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            model = body["model"]
            with rec.lock:
                rec.requests.append(body)
                rec.headers.append(dict(self.headers))
                rec.counts[model] = rec.counts.get(model, 0) + 1
                n = rec.counts[model]
                rec.in_flight += 1
                rec.max_in_flight = max(rec.max_in_flight, rec.in_flight)
            try:
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                if model == "flaky-429" and n <= 2:
                    return self._send(429, {"error": {"message": "rate limited"}})
                if model == "bad-400":
                    return self._send(400, {"error": {"message": "bad request"}})
                if model == "down-500":
                    return self._send(500, {"error": {"message": "server error"}})
                if model == "slow":
                    time.sleep(2.0)
                if model == "gate":
                    time.sleep(0.2)
                prompt = body["messages"][-1]["content"]
                text = f"echo: {prompt[:40]}"[: 4 * body["max_tokens"]]
                answer = {"id": "x", "object": "chat.completion", "model": model,
                          "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                       "finish_reason": "stop"}]}
                if model != "no-usage":
                    answer["usage"] = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
                return self._send(200, answer)
            finally:
                with rec.lock:
                    rec.in_flight -= 1

    return Handler


@pytest.fixture()
def openai_server():
    rec = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(rec))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield url, rec
    finally:
        server.shutdown()
        server.server_close()
