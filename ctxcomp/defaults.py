"""The default pipeline: what `ctxcomp compress` and `make demo` run when no spec is given.

The default is the best pipeline measured on the dev data, not the most elaborate one: the
early-layer filter (``gemfilter``) alone. A chunk planner in front of it (``knapsack`` with
the embedding or the gemfilter utility) kept less of the answer at 10x and 20x on NQ-20 and
MuSiQue (benchmarks/results/planned_replay_*.json), so the planned cascade is not the
default; it stays one spec away (``planner: {name: knapsack, utility: gemfilter}``).

``gemfilter`` needs the shipped causal LM (SmolLM2-135M, pulled once with ``ctxcomp models
pull smollm2-135m``). Where it is not pulled yet, the default says so in a warning and falls
back to the ``embedding`` sentence stage, which needs only the MiniLM that installs with
ctxcomp: it never fails for want of a model.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

log = logging.getLogger(__name__)

CAUSAL_MODEL = "smollm2-135m"

#: The recommended pipeline (benchmarks/results/planned_replay_*.json, gemfilter_nq_heldout.json).
RECOMMENDED: dict[str, Any] = {
    "name": "default",
    "stages": ["gemfilter"],
}
#: The fallback when the causal model is not pulled: MiniLM sentence selection.
FALLBACK: dict[str, Any] = {
    "name": "default-embedding",
    "stages": ["embedding"],
}


def default_spec() -> dict[str, Any]:
    """The spec of the default pipeline on this machine (the recommended one, or the
    fallback with a warning when the causal model has not been pulled)."""
    from ctxcomp.models.shipped import is_pulled

    if is_pulled(CAUSAL_MODEL):
        return copy.deepcopy(RECOMMENDED)
    log.warning("the default pipeline's model %s is not pulled (run: ctxcomp models pull %s); "
                "using the embedding stage instead", CAUSAL_MODEL, CAUSAL_MODEL)
    return copy.deepcopy(FALLBACK)


def default_pipeline(**overrides: Any) -> Any:
    """The default :class:`~ctxcomp.pipeline.Pipeline` (``overrides`` go to its
    constructor: ``budget``, ``cache``, ``ledger``, ``tenant`` ...)."""
    from ctxcomp.config import load_spec

    return load_spec(default_spec()).build(**overrides)
