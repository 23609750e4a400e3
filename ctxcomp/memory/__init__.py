"""Agent memory: chat-history compression (framework-neutral; see ``ctxcomp.integrations``).

Names are exported lazily so importing this package loads no model.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Turn": "ctxcomp.memory.history",
    "KeptTurn": "ctxcomp.memory.history",
    "HistoryConfig": "ctxcomp.memory.history",
    "HistoryCompression": "ctxcomp.memory.history",
    "compress_history": "ctxcomp.memory.history",
    "tool_groups": "ctxcomp.memory.history",
    "ELISION": "ctxcomp.memory.history",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ctxcomp.memory' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
