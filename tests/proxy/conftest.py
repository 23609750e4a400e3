"""Fixtures: a real upstream HTTP server, and proxies served by uvicorn in front of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")

from ctxcomp.pipeline import Pipeline
from ctxcomp.proxy.app import create_app
from ctxcomp.proxy.config import ProxyConfig
from ctxcomp.proxy.testing import FakeUpstream, ServerThread


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[FakeUpstream, ServerThread]]:
    fake = FakeUpstream()
    with ServerThread(fake.app()) as server:
        yield fake, server


@pytest.fixture
def fake(upstream: tuple[FakeUpstream, ServerThread]) -> FakeUpstream:
    upstream[0].received.clear()
    upstream[0].gate = None
    return upstream[0]


@pytest.fixture
def start_proxy(upstream: tuple[FakeUpstream, ServerThread]) -> Iterator[Callable[..., tuple[Any, str]]]:
    """``start_proxy(pipeline=..., **config)`` -> (app, base URL ending in /v1)."""
    started: list[ServerThread] = []

    def start(pipeline: Any = None, **settings: Any) -> tuple[Any, str]:
        settings.setdefault("upstream", upstream[1].url + "/v1")
        settings.setdefault("min_chars", 40)
        pipe = pipeline if pipeline is not None else Pipeline(["truncate"], cache=False)
        app = create_app(ProxyConfig(**settings), pipeline=pipe)
        server = ServerThread(app).__enter__()
        started.append(server)
        return app, server.url + "/v1"

    yield start
    for server in started:
        server.__exit__()
