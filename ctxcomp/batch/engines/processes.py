"""The ``processes`` engine: a pool of spawned processes, each building the pipeline once.

Spawn (not fork): a forked child would inherit torch's thread pool and any open Redis
connection of the parent. At most two micro-batches per worker are in flight, so a huge
input never sits in memory, and results are yielded in input order.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from ctxcomp.batch.engines.base import Batch, EngineSettings
from ctxcomp.batch.work import PipelineRecipe, compress_payloads, setup_pipeline

_PIPE: Any = None
_TIMINGS = True


def _init_worker(recipe: PipelineRecipe, timings: bool) -> None:
    global _PIPE, _TIMINGS
    _PIPE = recipe.build()
    _TIMINGS = timings
    setup_pipeline(_PIPE)


def _run(batch: Batch) -> list[dict[str, Any]]:
    return compress_payloads(_PIPE, batch, _TIMINGS)


class ProcessEngine:
    """Compress micro-batches in ``settings.workers`` spawned processes."""

    name = "processes"

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None

    def map(self, batches: Iterable[Batch]) -> Iterator[list[dict[str, Any]]]:
        s = self.settings
        self._pool = ProcessPoolExecutor(max_workers=s.workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(s.recipe, s.timings))
        in_flight: deque[Future[list[dict[str, Any]]]] = deque()
        for batch in batches:
            in_flight.append(self._pool.submit(_run, batch))
            if len(in_flight) >= 2 * s.workers:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
