"""Agent memory: chat-history compression (framework-neutral; see ``ctxcomp.integrations``).

Names are exported lazily so importing this package loads no model.
"""

from __future__ import annotations

from typing import Any

from ctxcomp._deps import lazy_exports

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


__getattr__ = lazy_exports("ctxcomp.memory", _LAZY, globals())
