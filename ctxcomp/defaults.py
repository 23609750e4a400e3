"""The default pipeline: what `ctxcomp compress` and `make demo` run when no spec is given.

The recommended planned cascade needs the shipped causal LM (SmolLM2-135M, pulled once
with ``ctxcomp models pull smollm2-135m``). Where it is not pulled yet, the default says
so in a warning and falls back to the same plan with the embedding sentence stage, which
needs only the MiniLM that installs with ctxcomp: it never fails for want of a model.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

log = logging.getLogger(__name__)

CAUSAL_MODEL = "smollm2-135m"

#: The recommended planned cascade (benchmarks/results/planned_nq.json).
CASCADE: dict[str, Any] = {
    "name": "planned",
    "planner": {"name": "knapsack", "utility": "embedding"},
    "stages": ["gemfilter"],
}
#: The fallback when the causal model is not pulled: the same plan, MiniLM sentences.
FALLBACK: dict[str, Any] = {
    "name": "planned-embedding",
    "planner": {"name": "knapsack", "utility": "embedding"},
    "stages": ["embedding"],
}


def default_spec() -> dict[str, Any]:
    """The spec of the default pipeline on this machine (the cascade, or the fallback
    with a warning when the causal model has not been pulled)."""
    from ctxcomp.models.shipped import is_pulled

    if is_pulled(CAUSAL_MODEL):
        return copy.deepcopy(CASCADE)
    log.warning("the default pipeline's model %s is not pulled (run: ctxcomp models pull %s); "
                "using the embedding plan instead", CAUSAL_MODEL, CAUSAL_MODEL)
    return copy.deepcopy(FALLBACK)


def default_pipeline(**overrides: Any) -> Any:
    """The default :class:`~ctxcomp.pipeline.Pipeline` (``overrides`` go to its
    constructor: ``budget``, ``cache``, ``ledger``, ``tenant`` ...)."""
    from ctxcomp.config import load_spec

    return load_spec(default_spec()).build(**overrides)
