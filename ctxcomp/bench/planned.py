"""Planned pipelines as benchmark methods.

- ``planned``: the recommended planned cascade, the default pipeline
  (:func:`ctxcomp.defaults.default_pipeline`);
- ``pipeline:spec=PATH``: any pipeline spec file (YAML/TOML/JSON);
- ``topk``: the best chunks by embedding utility, kept whole while they fit (no sentence
  stage): the fixed top-k baseline;
- ``knapsack``, ``knapsack-dynamic``: the knapsack planner (CORAG) then one sentence stage
  (``stage=gemfilter`` by default; any registry name); every other setting goes to the
  planner (``utility=bm25``, ``solver=mcts``, ``redundancy=0`` ...). ``knapsack-dynamic``
  gives the kept chunks per-chunk quotas by rank.

Every one runs with caching off, so each question is computed.
"""

from __future__ import annotations

from typing import Any

from ctxcomp.errors import ConfigError

PIPELINE_METHODS = ("planned", "pipeline", "topk", "knapsack", "knapsack-dynamic")


def build_pipeline(name: str, settings: dict[str, Any]) -> Any:
    """The :class:`~ctxcomp.pipeline.Pipeline` a planned method runs.

    Raises:
        ConfigError: a missing ``spec`` for ``pipeline``, or bad settings.
    """
    from ctxcomp.pipeline import Pipeline

    settings = dict(settings)
    if name == "planned":
        from ctxcomp.defaults import default_pipeline

        return default_pipeline(cache=False, **settings)
    if name == "pipeline":
        spec = settings.pop("spec", None)
        if not isinstance(spec, str) or settings:
            raise ConfigError("method 'pipeline' takes exactly one setting: spec=PATH")
        return Pipeline.from_spec(spec, cache=False)
    if name == "topk":
        planner = {"name": "knapsack", "mode": "topk", "stage_ratio": 1, "redundancy": 0, **settings}
        return Pipeline(["truncate"], planner=planner, cache=False, name="topk")
    stage = settings.pop("stage", "gemfilter")
    if name == "knapsack-dynamic":
        settings.setdefault("dynamic", True)
    return Pipeline([stage], planner={"name": "knapsack", **settings}, cache=False, name=name)
