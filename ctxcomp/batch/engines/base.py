"""The engine protocol and the settings every engine reads."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ctxcomp.batch.work import PipelineRecipe
from ctxcomp.errors import ConfigError

#: A micro-batch: (key, payload) pairs.
Batch = list[tuple[str, Mapping[str, Any]]]


@dataclass(frozen=True)
class EngineSettings:
    """What an engine needs to run a job.

    Attributes:
        recipe: how each worker builds the pipeline.
        workers: processes (``processes``) or actors (``ray``); ``local`` runs in this process.
        timings: keep the stages' wall times in the output (False: 0.0, byte-identical reruns).
        ray_address: a Ray cluster to connect to (None: a local instance started for the job,
            or the one already initialized in this process).
        num_cpus: CPUs per Ray actor.
        num_gpus: GPUs per Ray actor (0: none).
        window: micro-batches per Ray dataset (one actor pool per window; bounds driver memory).
    """

    recipe: PipelineRecipe
    workers: int = 1
    timings: bool = True
    ray_address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    window: int = 256

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"workers must be an int >= 1, got {self.workers!r}")
        if not isinstance(self.num_cpus, (int, float)) or self.num_cpus <= 0:
            raise ConfigError(f"num_cpus must be > 0, got {self.num_cpus!r}")
        if not isinstance(self.num_gpus, (int, float)) or self.num_gpus < 0:
            raise ConfigError(f"num_gpus must be >= 0, got {self.num_gpus!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ConfigError(f"window must be an int >= 1, got {self.window!r}")


class Engine(Protocol):
    """Runs micro-batches; results come back in the order the batches went in."""

    name: str

    def map(self, batches: Iterable[Batch]) -> Iterator[list[dict[str, Any]]]:
        """The output records of each batch, in order (one per request of the batch)."""
        ...

    def close(self) -> None:
        """Release workers (idempotent)."""
        ...
