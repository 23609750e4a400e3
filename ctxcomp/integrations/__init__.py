"""Framework components: ``ctxcomp.integrations.langchain`` (extra ``langchain``) and
``ctxcomp.integrations.llamaindex`` (extra ``llamaindex``).

Import the submodule you need; nothing here imports a framework. Each submodule is a
thin adapter over ctxcomp's public API (the logic lives in ``ctxcomp.memory``,
``ctxcomp.retrievers`` and the pipeline); the callbacks record real LLM usage in
:class:`ctxcomp.reporting.ledger.Ledger`.
"""

from __future__ import annotations

from typing import Any

from ctxcomp.errors import ConfigError


def check_component_settings(data: dict[str, Any]) -> None:
    """Validate a component's ``pipeline``/``budget`` before pydantic runs, so a mistake is
    a ctxcomp ConfigError rather than a pydantic ValidationError."""
    pipeline = data.get("pipeline")
    if not callable(getattr(pipeline, "compress", None)):
        raise ConfigError("pipeline must be a ctxcomp Pipeline or compressor")
    if data.get("budget") is None and getattr(pipeline, "budget", None) is None:
        raise ConfigError("no budget: pass budget= or build the Pipeline with one")
