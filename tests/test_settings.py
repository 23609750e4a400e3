"""check_types: config dataclasses are type-checked from their own annotations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from ctxcomp.errors import ConfigError
from ctxcomp.settings import check_types


@dataclass(frozen=True)
class Sample:
    name: str = "a"
    count: int = 1
    weight: float = 0.5
    flag: bool = True
    mode: Literal["x", "y"] = "x"
    limit: int | None = None
    layers: tuple[int, ...] = ()
    derived: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        check_types(self)


def test_valid_values_pass() -> None:
    Sample(name="b", count=3, weight=1, flag=False, mode="y", limit=4, layers=[1, 2])  # type: ignore[arg-type]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": [1, 2]}, "Sample.name must be a string"),
    ({"count": "3"}, "Sample.count must be an int"),
    ({"count": True}, "Sample.count must be an int"),
    ({"weight": "0.5"}, "Sample.weight must be a number"),
    ({"weight": float("nan")}, "Sample.weight must be a number"),
    ({"flag": 1}, "Sample.flag must be a bool"),
    ({"mode": "z"}, "Sample.mode must be one of 'x', 'y'"),
    ({"limit": 1.5}, "Sample.limit must be an int or None"),
    ({"layers": (1, "2")}, "Sample.layers must be a list of an int"),
])
def test_wrong_types_are_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Sample(**kwargs)
