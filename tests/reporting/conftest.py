from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ctxcomp.types import CompressedContext, StageReport


def make_ctx(tokens_in: int, tokens_out: int, model: str = "gpt-4o-mini", *, priced: bool = True,
             llm_tokens: tuple[int, int] = (0, 0), llm_cost: float | None = 0.0) -> CompressedContext:
    """A compression result with two stages; the second one may have called a model."""
    middle = (tokens_in + tokens_out) // 2
    stages = (StageReport("embedding", tokens_in, middle, 0.02),
              StageReport("summarize", middle, tokens_out, 0.05, llm_tokens_in=llm_tokens[0],
                          llm_tokens_out=llm_tokens[1], llm_cost=llm_cost))
    return CompressedContext((), "", tokens_in, tokens_out, model=model,
                             cost_before=tokens_in * 1e-6 if priced else None,
                             cost_after=tokens_out * 1e-6 if priced else None, stages=stages)


@pytest.fixture(name="make_ctx")
def make_ctx_fixture() -> Callable[..., Any]:
    return make_ctx


class Browser:
    """Headless Chromium (Debian's package) driven over the DevTools protocol."""

    def __init__(self, process: Any, page_ws: str) -> None:
        from websockets.sync.client import connect

        self.process = process
        self._connection = connect(page_ws, max_size=None, open_timeout=30, proxy=None)
        self.ws = self._connection.__enter__()
        self._id = 0
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        import json

        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        import json
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv(timeout=deadline - time.monotonic()))
            self.events.append(message)
            if message.get("method") == method:
                return message
        raise TimeoutError(method)

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and browser log errors (CSP, failed loads)."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(f"console: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                out.append(f"exception: {details.get('text')} {details.get('exception', {}).get('description', '')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, path: Any) -> None:
        import base64

        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self._connection.__exit__(None, None, None)
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import json
    import re
    import shutil
    import subprocess
    import urllib.request

    pytest.importorskip("websockets")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--remote-debugging-port=0", f"--user-data-dir={profile}",
         "--window-size=1280,2000", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    port = None
    for line in process.stderr:  # "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..."
        match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if match:
            port = int(match.group(1))
            break
    assert port is not None, "chromium did not start its DevTools endpoint"
    import threading

    # Keep draining its log, or a full pipe would stall the browser.
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()  # type: ignore[union-attr]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
        pages = [t for t in json.loads(response.read()) if t["type"] == "page"]
    session = Browser(process, pages[0]["webSocketDebuggerUrl"])
    yield session
    session.close()
