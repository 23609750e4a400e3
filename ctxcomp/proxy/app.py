"""The ASGI app (Starlette): an OpenAI-compatible endpoint that compresses, then forwards.

Routes:

* ``POST /v1/chat/completions``: compressed (see :mod:`ctxcomp.proxy.rewrite`), then sent
  to ``{upstream}/chat/completions``; the answer (JSON, or an SSE stream relayed chunk by
  chunk) comes back with its status and headers, plus ``x-ctxcomp-*`` headers.
* ``POST /v1/responses``: the same for the Responses API (``input`` items; see
  :mod:`ctxcomp.proxy.responses`).
* any other ``/v1/...`` path: forwarded untouched (models, embeddings ...).
* ``GET /healthz`` (the process is up), ``GET /readyz`` (the pipeline is loaded),
  ``GET /metrics`` (Prometheus: the ledger's compression metrics and the proxy's counters).

Errors the proxy itself answers use the OpenAI shape ``{"error": {"message", "type",
"param", "code"}}``: 400 (bad JSON, bad request), 413 (body too large), 500 (compression
failed and the config says fail closed), 502/504 (upstream unreachable or timed out).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ctxcomp._deps import require
from ctxcomp.proxy.config import ProxyConfig
from ctxcomp.proxy.engine import CompressionFailed, Engine, Outcome
from ctxcomp.proxy.observe import ProxyCounters, SSEUsageScanner, usage_of_json
from ctxcomp.proxy.rewrite import RequestError
from ctxcomp.proxy.upstream import Upstream, UpstreamError, request_headers, response_headers
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.reporting.usage import make_usage
from ctxcomp.types import Budget, Chunk

log = logging.getLogger(__name__)

require("starlette", "server", "the proxy")
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response, StreamingResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402


class BodyTooLarge(Exception):
    """The request body passed the configured limit."""


@dataclass
class ProxyState:
    """What the routes share (one per app)."""

    config: ProxyConfig
    engine: Engine
    ledger: Ledger
    counters: ProxyCounters
    upstream: Upstream | None = None
    ready: bool = False
    problem: str | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


def error(status: int, message: str, kind: str = "invalid_request_error", *, param: str | None = None,
          code: str | None = None, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An error in the OpenAI shape."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=dict(headers or {}))


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
    return b"".join(parts)


def _state(request: Request) -> ProxyState:
    return request.app.state.proxy  # type: ignore[no-any-return]


def _too_large(state: ProxyState) -> JSONResponse:
    return error(413, f"the request body is larger than the proxy's limit of {state.config.max_body_bytes} bytes",
                 code="request_too_large")


async def chat_completions(request: Request) -> Response:
    return await _compressing(request, "chat", "/chat/completions")


async def responses(request: Request) -> Response:
    return await _compressing(request, "responses", "/responses")


async def _compressing(request: Request, api: Literal["chat", "responses"], path: str) -> Response:
    """Parse, compress, forward: the two routes that compress."""
    state = _state(request)
    try:
        raw = await read_body(request, state.config.max_body_bytes)
    except BodyTooLarge:
        return _count(state, api, _too_large(state))
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return _count(state, api, error(400, f"the request body is not valid JSON: {exc}", code="invalid_json"))
    if not isinstance(body, dict):
        return _count(state, api, error(400, "the request body must be a JSON object", code="invalid_json"))
    try:
        outcome = await state.engine.prepare(body, request.headers, api)
    except RequestError as exc:
        return _count(state, api, error(400, str(exc), param=exc.param))
    except CompressionFailed as exc:
        state.counters.compression.labels("failed-closed").inc()
        return _count(state, api, error(500, str(exc), "server_error", code="compression_failed"))
    state.counters.compression.labels(outcome.status).inc()
    content = raw if outcome.body is None else json.dumps(outcome.body, ensure_ascii=False).encode()
    response = await forward(request, state, path, content, outcome)
    return _count(state, api, response)


async def passthrough(request: Request) -> Response:
    """Any other ``/v1/...`` request, forwarded as it came."""
    state = _state(request)
    path = request.url.path[len("/v1"):]
    if any(seg in ("..", ".") for seg in path.split("/")):
        return _count(state, "other", error(400, "the path must not hold '.' or '..' segments"))
    try:
        raw = await read_body(request, state.config.max_body_bytes)
    except BodyTooLarge:
        return _count(state, "other", _too_large(state))
    return _count(state, "other", await forward(request, state, path, raw, None))


async def forward(request: Request, state: ProxyState, path: str, content: bytes, outcome: Outcome | None) -> Response:
    """Send to the upstream; relay its answer (an SSE stream chunk by chunk)."""
    assert state.upstream is not None  # set by the lifespan
    headers = request_headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw)
    extra = outcome.headers() if outcome is not None else {}
    try:
        upstream = await state.upstream.send(request.method, path, headers, content, request.url.query)
    except UpstreamError as exc:
        state.counters.upstream_errors.inc()
        return error(exc.status, str(exc), "upstream_error", code="upstream_unavailable", headers=extra)
    if upstream.headers.get("content-type", "").startswith("text/event-stream"):
        out = dict(response_headers(upstream.headers.multi_items(), decoded=False))
        return StreamingResponse(_relay(upstream, state, outcome), status_code=upstream.status_code,
                                 headers={**out, **extra})
    try:
        body = await upstream.aread()
    except Exception as exc:  # the upstream dropped the connection mid-answer
        state.counters.upstream_errors.inc()
        return error(502, f"the upstream's answer broke off: {type(exc).__name__}", "upstream_error",
                     code="upstream_unavailable", headers=extra)
    finally:
        await upstream.aclose()
    if outcome is not None and upstream.status_code < 400:
        model, usage = usage_of_json(body)
        _record_usage(state, outcome, model, usage)
    out = dict(response_headers(upstream.headers.multi_items(), decoded=True))
    return Response(body, status_code=upstream.status_code, headers={**out, **extra})


async def _relay(upstream: Any, state: ProxyState, outcome: Outcome | None) -> AsyncIterator[bytes]:
    scanner = SSEUsageScanner() if outcome is not None and not upstream.headers.get("content-encoding") else None
    recorded = False
    try:
        async for chunk in upstream.aiter_raw():
            if scanner is not None and outcome is not None and not recorded:
                scanner.feed(chunk)
                if scanner.usage is not None:  # recorded before the client sees it
                    _record_usage(state, outcome, scanner.model, scanner.usage)
                    recorded = True
            yield chunk
    except Exception as exc:  # the status line is sent; all that can be done is to stop
        state.counters.upstream_errors.inc()
        log.warning("the upstream's stream broke off: %s", type(exc).__name__)
    finally:
        await upstream.aclose()


def _record_usage(state: ProxyState, outcome: Outcome, model: str | None,
                  usage: tuple[int, int, int] | None) -> None:
    if usage is None:
        return
    try:
        state.ledger.record_usage(make_usage(model or outcome.model, *usage, tenant=outcome.tenant,
                                             provider="upstream"))
    except Exception as exc:  # accounting never fails a request
        log.warning("usage not recorded: %s", exc)


def _count(state: ProxyState, route: str, response: Response) -> Response:
    state.counters.requests.labels(route, str(response.status_code)).inc()
    return response


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state = _state(request)
    if state.ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "starting" if state.problem is None else "failed", "problem": state.problem},
                        status_code=503)


async def metrics(request: Request) -> Response:
    content, media_type = _state(request).counters.render()
    return Response(content, media_type=media_type)


async def _warm_up(state: ProxyState) -> None:
    """Load the pipeline's models off the event loop (``/readyz`` says when)."""
    pipeline = state.engine.pipeline
    try:
        if state.config.warmup and hasattr(pipeline, "compute"):
            sample = [Chunk("The proxy is warming up its compression models.", id="warmup")]
            await asyncio.to_thread(pipeline.compute, "warm up", sample, Budget(max_tokens=8))
        state.ready = True
    except Exception as exc:
        state.problem = f"{type(exc).__name__}: {exc}"
        log.error("the pipeline failed to warm up (requests are forwarded uncompressed): %s", state.problem)


def create_app(config: ProxyConfig, *, pipeline: Any = None, ledger: Ledger | None = None) -> Starlette:
    """The proxy as an ASGI app.

    Args:
        config: its settings (the upstream, what to compress, limits).
        pipeline: the compressor (default: ``config.pipeline``'s spec, else
            :func:`ctxcomp.defaults.default_pipeline`), built with ``ledger``.
        ledger: where compressions and upstream usage are accounted (default: a new one,
            on ``config.ledger`` if set). Prometheus metrics are added as an observer.

    Raises:
        ConfigError: a bad pipeline spec.
        MissingDependencyError: the ``server`` extra is not installed.

    Example:
        >>> app = create_app(ProxyConfig(upstream="http://127.0.0.1:8000/v1"))  # doctest: +SKIP
        >>> uvicorn.run(app, port=8080)  # doctest: +SKIP
    """
    prom = require("prometheus_client", "server", "the proxy's /metrics")
    from ctxcomp.reporting.metrics import PrometheusMetrics

    registry = prom.CollectorRegistry()
    if pipeline is not None and ledger is None:
        ledger = getattr(pipeline, "ledger", None)
    if ledger is None:
        ledger = Ledger(config.ledger)
    ledger.observers.append(PrometheusMetrics(registry=registry))
    if pipeline is None:
        pipeline = _build_pipeline(config, ledger)
    state = ProxyState(config, Engine(config, pipeline), ledger, ProxyCounters(registry))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.upstream = Upstream(config.upstream, connect_timeout=config.connect_timeout,
                                  read_timeout=config.upstream_timeout)
        task = asyncio.create_task(_warm_up(state))
        state.tasks.add(task)
        task.add_done_callback(state.tasks.discard)
        try:
            yield
        finally:
            await state.upstream.aclose()
            ledger.flush(5.0)

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", responses, methods=["POST"]),
        Route("/v1/{path:path}", passthrough, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.proxy = state
    return app


def _build_pipeline(config: ProxyConfig, ledger: Ledger) -> Any:
    if config.pipeline is None:
        from ctxcomp.defaults import default_pipeline

        return default_pipeline(ledger=ledger)
    from ctxcomp.pipeline import Pipeline

    return Pipeline.from_spec(config.pipeline, ledger=ledger)


def app_from_env() -> Starlette:
    """The app of the config in ``$CTXCOMP_PROXY_CONFIG`` (JSON; set by ``ctxcomp serve``
    for uvicorn's worker processes)."""
    import os

    return create_app(ProxyConfig.from_mapping(json.loads(os.environ["CTXCOMP_PROXY_CONFIG"])))
