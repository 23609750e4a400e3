"""Where a batch job's micro-batches run: ``local`` (this process), ``processes`` (a
process pool on this machine) or ``ray`` (Ray Data, an actor pool on a local Ray instance
or a cluster). Each engine yields the results of the micro-batches in input order.
"""

from __future__ import annotations

from typing import Any

from ctxcomp.batch.engines.base import Engine, EngineSettings
from ctxcomp.errors import UnknownNameError

ENGINES = ("local", "processes", "ray")


def make_engine(name: str, settings: EngineSettings, pipeline: Any = None) -> Engine:
    """The engine called ``name``.

    Args:
        name: ``local``, ``processes`` or ``ray``.
        settings: the recipe, workers and per-actor resources.
        pipeline: an already built pipeline the ``local`` engine may use.

    Raises:
        UnknownNameError: another name.
        MissingDependencyError: ``ray`` without Ray installed (extra ``ray``).
    """
    if name == "local":
        from ctxcomp.batch.engines.local import LocalEngine

        return LocalEngine(settings, pipeline)
    if name == "processes":
        from ctxcomp.batch.engines.processes import ProcessEngine

        return ProcessEngine(settings)
    if name == "ray":
        from ctxcomp.batch.engines.ray_engine import RayEngine

        return RayEngine(settings)
    raise UnknownNameError("engine", name, ENGINES)


__all__ = ["ENGINES", "Engine", "EngineSettings", "make_engine"]
