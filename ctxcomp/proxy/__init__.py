"""An OpenAI-compatible compressing proxy (extra ``server``): ``ctxcomp serve --upstream URL``.

Point ``OPENAI_BASE_URL`` at it and chat requests are compressed (tool results, tagged
documents, the ``ctxcomp`` body extension) before they go to the one configured upstream.
Names are exported lazily: importing this package loads neither Starlette nor a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ctxcomp._deps import lazy_exports

_LAZY = {
    "ProxyConfig": "ctxcomp.proxy.config",
    "Switches": "ctxcomp.proxy.config",
    "create_app": "ctxcomp.proxy.app",
    "Engine": "ctxcomp.proxy.engine",
    "extract": "ctxcomp.proxy.rewrite",
}

__all__ = list(_LAZY)

if TYPE_CHECKING:
    from ctxcomp.proxy.app import create_app
    from ctxcomp.proxy.config import ProxyConfig, Switches
    from ctxcomp.proxy.engine import Engine
    from ctxcomp.proxy.rewrite import extract

__getattr__ = lazy_exports("ctxcomp.proxy", _LAZY, globals())
