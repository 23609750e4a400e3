"""Compressor names → classes, imported lazily.

A pipeline spec says ``"embedding"`` or ``"gemfilter"``; the registry maps the name to an
import path and imports it only when the stage is built, so heavy dependencies load on
demand. Third-party compressors register through the ``ctxcomp.compressors`` entry-point
group (``name = "package.module:Class"``) or :func:`register`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from ctxcomp.errors import ConfigError, UnknownNameError

ENTRY_POINT_GROUP = "ctxcomp.compressors"

_BUILTIN: dict[str, str] = {
    "truncate": "ctxcomp.compressors.truncate:TruncateCompressor",
    "embedding": "ctxcomp.compressors.embedding:EmbeddingCompressor",
    "gemfilter": "ctxcomp.compressors.early_layer:EarlyLayerFilter",
}
_registered: dict[str, str | Callable[..., Any]] = {}
_lock = threading.Lock()


def register(name: str, target: str | Callable[..., Any]) -> None:
    """Register a compressor factory (a class, a callable, or ``"module:attr"``)."""
    if not name or not isinstance(name, str):
        raise ConfigError("a compressor name must be a non-empty string")
    with _lock:
        _registered[name] = target


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_names() -> list[str]:
    """Every name :func:`get_factory` accepts."""
    with _lock:
        names = set(_BUILTIN) | set(_registered)
    return sorted(names | set(_entry_points()))


def _load(path: str) -> Callable[..., Any]:
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


def get_factory(name: str) -> Callable[..., Any]:
    """The factory registered as ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered; the message lists the known names.
        MissingDependencyError: the compressor needs an extra that is not installed.
    """
    with _lock:
        target = _registered.get(name) or _BUILTIN.get(name)
    if target is None:
        target = _entry_points().get(name)
    if target is None:
        raise UnknownNameError("stage", name, known_names())
    return _load(target) if isinstance(target, str) else target


def create(name: str, **config: Any) -> Any:
    """Build the compressor registered as ``name`` with ``config``."""
    factory = get_factory(name)
    try:
        return factory(**config)
    except TypeError as exc:
        raise ConfigError(f"bad settings for stage {name!r}: {exc}") from exc
