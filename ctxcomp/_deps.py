"""The one place optional dependencies are imported."""

from __future__ import annotations

import importlib
from types import ModuleType

from ctxcomp.errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``ctxcomp[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and module.split(".")[0] != exc.name.split(".")[0]:
            raise  # the module exists but one of *its* imports is broken: show that
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
