"""What a batch worker does, the same in every engine: build the pipeline once, then
compress micro-batches of payloads into output records.

Every engine (in-process, process pool, Ray actors) calls :func:`compress_payloads` on the
same micro-batches, so the output does not depend on the engine.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ctxcomp.config import PipelineSpec
from ctxcomp.errors import BackendError, CacheError
from ctxcomp.types import CompressedContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineRecipe:
    """How to build the job's pipeline in any process (it pickles: a validated spec and
    constructor overrides, never a loaded model).

    Attributes:
        spec: the validated pipeline spec (:func:`ctxcomp.config.load_spec`).
        overrides: keyword arguments for :meth:`PipelineSpec.build` (``cache``, ``tenant``).
        threads: torch threads per worker (None: leave torch's default).
    """

    spec: PipelineSpec
    overrides: Mapping[str, Any] = field(default_factory=dict)
    threads: int | None = None

    def build(self) -> Any:
        """The pipeline (models load on first use, in the process that calls this)."""
        if self.threads is not None:
            _set_threads(self.threads)
        return self.spec.build(**dict(self.overrides))


def _set_threads(threads: int) -> None:
    try:
        import torch
    except ImportError:  # a pipeline without model stages
        return
    torch.set_num_threads(threads)


def setup_pipeline(pipe: Any) -> None:
    """Load every model of the pipeline now (once per worker, before the first batch)."""
    for part in (pipe.planner, *pipe.stages):
        getattr(part, "setup", lambda: None)()


def result_record(payload: Mapping[str, Any], key: str, ctx: CompressedContext, timings: bool) -> dict[str, Any]:
    """The output record of one compressed request."""
    context = ctx.to_dict()
    if not timings:  # stage wall times are the only field that differs between runs
        context["stages"] = [{**s, "seconds": 0.0} for s in context["stages"]]
    record: dict[str, Any] = {"key": key, "line": payload["line"]}
    if "id" in payload:
        record["id"] = payload["id"]
    record.update({
        "query": payload["query"], "text": ctx.text, "model": ctx.model,
        "tokens_in": ctx.tokens_in, "tokens_out": ctx.tokens_out,
        "cost_before": ctx.cost_before, "cost_after": ctx.cost_after,
        "context": context,
    })
    return record


def _error_record(payload: Mapping[str, Any], key: str, exc: BaseException) -> dict[str, Any]:
    return {"key": key, "line": payload["line"], "error": f"{type(exc).__name__}: {exc}"}


def compress_payloads(
    pipe: Any, items: Sequence[tuple[str, Mapping[str, Any]]], timings: bool = True
) -> list[dict[str, Any]]:
    """Compress one micro-batch of ``(key, payload)`` pairs with ``pipe.compress_batch``.

    When the batch fails, each request is compressed alone, so one bad request becomes an
    error record (``{"key", "line", "error"}``) and the others still succeed.

    Raises:
        BackendError: a model or service failed (not the request's fault): the job stops
            and can be resumed.
    """
    from ctxcomp.batch.records import payload_request

    requests = [payload_request(p) for _, p in items]
    try:
        contexts = pipe.compress_batch([(q, c) for q, c, _ in requests], [b for _, _, b in requests])
        return [result_record(p, k, ctx, timings) for (k, p), ctx in zip(items, contexts, strict=True)]
    except Exception as exc:  # find the request(s) at fault
        if _is_backend_failure(exc):
            raise
        log.info("a batch of %d failed (%s); compressing its requests one by one", len(items), exc)
    out: list[dict[str, Any]] = []
    for (key, payload), (query, chunks, budget) in zip(items, requests, strict=True):
        try:
            out.append(result_record(payload, key, pipe.compress(query, chunks, budget), timings))
        except Exception as exc:
            if _is_backend_failure(exc):
                raise
            out.append(_error_record(payload, key, exc))
    return out


def _is_backend_failure(exc: BaseException) -> bool:
    return isinstance(exc, BackendError) and not isinstance(exc, CacheError)


def summable(value: Any) -> float:
    """A cost for a sum (None, the unknown price, counts as 0)."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0
