"""The ``ray`` engine: Ray Data ``map_batches`` over a pool of stateful actors.

Each actor builds the pipeline and loads its models once (:class:`PipelineActor`), then
compresses one micro-batch per call; ``num_cpus``/``num_gpus`` are reserved per actor.
Every row of the Ray dataset is a whole micro-batch (the same boundaries as the other
engines, so the output is the same), and the dataset keeps the input order. The input
streams through in windows of ``settings.window`` micro-batches, one dataset per window,
so the driver never holds the whole job. Ray is started for the job (and stopped after)
unless this process already runs it or ``ray_address`` names a cluster to join.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ctxcomp._deps import require
from ctxcomp.batch.engines.base import Batch, EngineSettings
from ctxcomp.batch.work import PipelineRecipe, compress_payloads, setup_pipeline

log = logging.getLogger(__name__)


class PipelineActor:
    """A Ray Data callable class: the pipeline is built (and its models loaded) once per actor."""

    def __init__(self, recipe: PipelineRecipe, timings: bool) -> None:
        self.pipe = recipe.build()
        self.timings = timings
        setup_pipeline(self.pipe)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = []
        for work in batch["work"]:
            items = [(key, payload) for key, payload in json.loads(str(work))]
            out.append(json.dumps(compress_payloads(self.pipe, items, self.timings), ensure_ascii=False))
        return {"results": np.array(out, dtype=object)}


class RayEngine:
    """Compress micro-batches on ``settings.workers`` Ray actors."""

    name = "ray"

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.ray = require("ray", "ray", "the ray batch engine")
        require("ray.data", "ray", "the ray batch engine")
        self._started = False

    def _connect(self) -> None:
        if self.ray.is_initialized():
            return
        self.ray.init(address=self.settings.ray_address, include_dashboard=False, logging_level=logging.WARNING)
        self._started = True

    def map(self, batches: Iterable[Batch]) -> Iterator[list[dict[str, Any]]]:
        import ray.data

        self._connect()
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # outputs in input order
        context.enable_progress_bars = False  # the job draws its own
        s = self.settings
        it = iter(batches)
        while window := list(itertools.islice(it, s.window)):
            rows = [{"work": json.dumps(batch, ensure_ascii=False)} for batch in window]
            dataset = ray.data.from_items(rows).map_batches(
                PipelineActor, fn_constructor_args=(s.recipe, s.timings), batch_size=1, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=s.workers), num_cpus=s.num_cpus, num_gpus=s.num_gpus or None,
            )
            for row in dataset.iter_rows():
                yield json.loads(str(row["results"]))

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False
