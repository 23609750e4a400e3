"""One request through the library: what to compress, the budget, the tenant, the pipeline
call (bounded by a timeout, failing open), and the response headers that report it.

The HTTP layer (:mod:`ctxcomp.proxy.app`) calls :meth:`Engine.prepare` with the parsed
body and the request headers and forwards :attr:`Outcome.body`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ctxcomp.errors import ConfigError, CtxcompError
from ctxcomp.proxy.config import (
    BUDGET_HEADER,
    COMPRESS_HEADER,
    TENANT_HEADER,
    ProxyConfig,
    Switches,
    key_digest,
    parse_budget_value,
)
from ctxcomp.proxy.responses import chat_view
from ctxcomp.proxy.rewrite import Extraction, RequestError, extract
from ctxcomp.types import DEFAULT_MODEL, Budget, CompressedContext

log = logging.getLogger(__name__)

Status = Literal["compressed", "unchanged", "off", "failed-open"]
#: Response headers (all prefixed ``x-ctxcomp-``).
HEADER_PREFIX = "x-ctxcomp-"


class CompressionFailed(CtxcompError):
    """Compression failed or timed out and the proxy is set to fail closed."""

    is_retryable = True


@dataclass(frozen=True)
class Outcome:
    """What the proxy does with one request.

    Attributes:
        body: the body to forward (None: the original bytes, unchanged).
        status: ``compressed``; ``unchanged`` (nothing worth compressing); ``off``
            (compression switched off for the request); ``failed-open`` (compression
            failed, the request went as it came).
        tenant, model: who the request is for and the model it names.
        context: the compression result (None when none ran).
        seconds: time spent compressing.
        notes: what was left alone and why.
    """

    body: dict[str, Any] | None
    status: Status
    tenant: str
    model: str
    context: CompressedContext | None = None
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def tokens_before(self) -> int:
        return self.context.tokens_in if self.context else 0

    @property
    def tokens_after(self) -> int:
        return self.context.tokens_out if self.context else 0

    def headers(self) -> dict[str, str]:
        """The ``x-ctxcomp-*`` response headers (ASCII: notes are shortened)."""
        out = {f"{HEADER_PREFIX}status": self.status, f"{HEADER_PREFIX}tenant": self.tenant}
        if self.context is not None:
            ratio = self.context.ratio
            out.update({
                f"{HEADER_PREFIX}tokens-before": str(self.tokens_before),
                f"{HEADER_PREFIX}tokens-after": str(self.tokens_after),
                f"{HEADER_PREFIX}tokens-saved": str(self.tokens_before - self.tokens_after),
                f"{HEADER_PREFIX}ratio": f"{ratio:.2f}" if math.isfinite(ratio) else "inf",
                f"{HEADER_PREFIX}seconds": f"{self.seconds:.4f}",
            })
        if self.notes:
            out[f"{HEADER_PREFIX}notes"] = "; ".join(self.notes)[:1000]
        return {k: v.encode("ascii", "replace").decode() for k, v in out.items()}


def bearer_key(headers: Mapping[str, str]) -> str | None:
    """The API key of an ``Authorization: Bearer`` (or ``api-key``) header."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("api-key") or None


class Engine:
    """Compresses one chat request with a pipeline, as the config and the request say.

    Args:
        config: the proxy's settings.
        pipeline: any object with ``acompress(query, chunks, budget, tenant=...)`` and
            ``requires_query`` (a :class:`~ctxcomp.pipeline.Pipeline`).
    """

    def __init__(self, config: ProxyConfig, pipeline: Any) -> None:
        self.config = config
        self.pipeline = pipeline
        self.failures = 0

    def tenant(self, headers: Mapping[str, str]) -> str:
        """The tenant header, else the tenant mapped from the API key, else the default."""
        named = headers.get(TENANT_HEADER, "").strip()
        if named:
            return named[:200]
        key = bearer_key(headers)
        if key and self.config.api_key_tenants:
            return self.config.api_key_tenants.get(key_digest(key), self.config.tenant)
        return self.config.tenant

    def switches(self, extension: Mapping[str, Any] | None, headers: Mapping[str, str]) -> Switches:
        """The config's switches, then the extension's ``compress``, then the header."""
        switches = self.config.compress
        try:
            if extension is not None and extension.get("compress") is not None:
                switches = Switches.from_mapping(extension["compress"], switches, where="ctxcomp.compress")
            if headers.get(COMPRESS_HEADER):
                switches = Switches.from_header(headers[COMPRESS_HEADER], switches)
        except ConfigError as exc:
            raise RequestError(str(exc), "ctxcomp.compress") from None
        return switches

    def budget(self, extension: Mapping[str, Any] | None, headers: Mapping[str, str], model: str) -> Budget:
        """The extension's budget, else the header's, else the config's (counted for ``model``)."""
        try:
            if extension is not None and extension.get("budget") is not None:
                return parse_budget_value(extension["budget"], model, where="ctxcomp.budget")
            if headers.get(BUDGET_HEADER):
                return parse_budget_value(headers[BUDGET_HEADER], model, where=BUDGET_HEADER)
        except ConfigError as exc:
            raise RequestError(str(exc), "ctxcomp.budget") from None
        b = self.config.budget
        return Budget(max_tokens=b.max_tokens, ratio=b.ratio, model=model)

    async def prepare(self, body: Mapping[str, Any], headers: Mapping[str, str],
                      api: Literal["chat", "responses"] = "chat") -> Outcome:
        """What to forward for a ``/chat/completions`` (or ``/responses``) request.

        Raises:
            RequestError: a malformed request (missing ``messages``, bad extension, bad budget).
            CompressionFailed: compression failed and the config says fail closed.
        """
        model = body.get("model") if isinstance(body.get("model"), str) and body.get("model") else DEFAULT_MODEL
        tenant = self.tenant(headers)
        extension = body.get("ctxcomp") if isinstance(body.get("ctxcomp"), Mapping) else None
        switches = self.switches(extension, headers)
        budget = self.budget(extension, headers, str(model))
        if api == "responses":
            view, back = chat_view(body)
            found = extract(view, switches, min_chars=self.config.min_chars)
            found.finish = back
        else:
            found = extract(body, switches, min_chars=self.config.min_chars)
        changed = found.extension is not None or "ctxcomp" in body
        if not found.pieces:
            status: Status = "unchanged" if switches.any() else "off"
            return Outcome(found.apply({}) if changed else None, status, tenant, str(model),
                           notes=tuple(found.notes))
        if not found.query and getattr(self.pipeline, "requires_query", False):
            notes = (*found.notes, "no user question to rank the context by; nothing compressed")
            return Outcome(found.apply({}) if changed else None, "unchanged", tenant, str(model), notes=notes)
        return await self._compress(found, budget, tenant, str(model))

    async def _compress(self, found: Extraction, budget: Budget, tenant: str, model: str) -> Outcome:
        started = time.perf_counter()
        try:
            ctx = await asyncio.wait_for(
                self.pipeline.acompress(found.query, [p.chunk() for p in found.pieces], budget, tenant=tenant),
                timeout=self.config.compress_timeout,
            )
        except Exception as exc:  # fail open: any failure of the library forwards the original
            self.failures += 1
            reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            log.warning("compression failed (%s); %s", reason,
                        "forwarding the original request" if self.config.fail_open else "answering 500")
            if not self.config.fail_open:
                raise CompressionFailed(f"compression failed: {reason}") from exc
            return Outcome(found.apply({}), "failed-open", tenant, model, seconds=time.perf_counter() - started,
                           notes=(*found.notes, f"compression failed ({reason}); forwarded uncompressed"))
        seconds = time.perf_counter() - started
        kept: dict[str, str | None] = {p.id: None for p in found.pieces}
        kept.update({c.source_id: c.text for c in ctx.chunks})
        notes = list(found.notes)
        body = found.apply(kept)
        notes += found.notes[len(notes):]  # edits may add notes (JSON that would not round-trip)
        return Outcome(body, "compressed", tenant, model, ctx, seconds, tuple(dict.fromkeys(notes)))
