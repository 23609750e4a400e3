"""The ``local`` engine: this process, micro-batched through ``Pipeline.compress_batch``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ctxcomp.batch.engines.base import Batch, EngineSettings
from ctxcomp.batch.work import compress_payloads, setup_pipeline


class LocalEngine:
    """Compress each micro-batch in this process (the pipeline is built once).

    Args:
        settings: the job's engine settings (``workers`` is ignored: one process).
        pipeline: a pipeline built from the same recipe, reused if given.
    """

    name = "local"

    def __init__(self, settings: EngineSettings, pipeline: Any = None) -> None:
        self.settings = settings
        self._pipe = pipeline

    def map(self, batches: Iterable[Batch]) -> Iterator[list[dict[str, Any]]]:
        if self._pipe is None:
            self._pipe = self.settings.recipe.build()
        setup_pipeline(self._pipe)
        for batch in batches:
            yield compress_payloads(self._pipe, batch, self.settings.timings)

    def close(self) -> None:
        self._pipe = None
