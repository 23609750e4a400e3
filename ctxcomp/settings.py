"""Type checks for config dataclasses, from their own annotations.

A setting of the wrong type (``{"name": "embedding", "model": [1, 2]}``, a cache's
``log_interval_s: "30"``) must fail when the config is built, with a message naming the
field, not later inside a compression. Config classes call :func:`check_types` first in
``__post_init__``; it reads the dataclass's annotations (``int``, ``float``, ``str``,
``bool``, ``Literal``, ``X | None``, ``tuple[int, ...]``) and checks every init field.
"""

from __future__ import annotations

import math
import types
from dataclasses import fields
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from ctxcomp.errors import ConfigError

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = get_type_hints(cls)
    return hints


def _matches(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return any(value == option and type(value) is type(option) for option in get_args(hint))
    if origin in (Union, types.UnionType):
        return any(_matches(value, option) for option in get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple:  # a list is accepted too: configs turn it into a tuple
        args = get_args(hint)
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args, strict=True))
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this checker does not know: leave it to the class


def _describe(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(o) for o in get_args(hint))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(o) for o in get_args(hint))
    if hint is type(None):
        return "None"
    if origin is tuple:
        return "a list of " + _describe(get_args(hint)[0])
    return {bool: "a bool", int: "an int", float: "a number", str: "a string"}.get(hint, getattr(hint, "__name__",
                                                                                                 str(hint)))


def check_types(config: Any) -> None:
    """Check every init field of the dataclass ``config`` against its annotation.

    Raises:
        ConfigError: a field's value does not match its annotation; the message names the
            class, the field, what it must be and what it got.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class C:
        ...     n: int = 1
        ...     def __post_init__(self) -> None:
        ...         check_types(self)
        >>> C(n="2")
        Traceback (most recent call last):
        ...
        ctxcomp.errors.ConfigError: C.n must be an int, got '2' (str)
    """
    hints = _hints(type(config))
    for f in fields(config):
        if not f.init or f.name not in hints:
            continue
        value = getattr(config, f.name)
        if not _matches(value, hints[f.name]):
            raise ConfigError(f"{type(config).__name__}.{f.name} must be {_describe(hints[f.name])}, "
                              f"got {value!r} ({type(value).__name__})")


__all__ = ["check_types"]
