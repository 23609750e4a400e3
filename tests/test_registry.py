from __future__ import annotations

import pytest

from ctxcomp import registry
from ctxcomp.compressors.truncate import TruncateCompressor
from ctxcomp.errors import ConfigError, UnknownNameError
from ctxcomp.planners.base import GeometricPlanner


def test_builtin_names_resolve_lazily() -> None:
    assert {"truncate", "embedding", "gemfilter"} <= set(registry.compressors.known_names())
    assert registry.compressors.get_factory("truncate") is TruncateCompressor
    assert {"geometric", "knapsack"} <= set(registry.planners.known_names())
    assert registry.planners.get_factory("geometric") is GeometricPlanner


def test_unknown_name_lists_the_known_ones_of_that_kind() -> None:
    with pytest.raises(UnknownNameError) as info:
        registry.compressors.get_factory("truncat")
    assert info.value.kind == "stage" and "truncate" in info.value.known
    assert "known:" in str(info.value) and "knapsack" not in info.value.known
    with pytest.raises(UnknownNameError) as info:
        registry.planners.get_factory("knapsak")
    assert info.value.kind == "planner" and "knapsack" in info.value.known and "truncate" not in info.value.known


def test_register_a_third_party_compressor_and_planner() -> None:
    registry.register("my-truncate", TruncateCompressor)
    registry.register("my-truncate-path", "ctxcomp.compressors.truncate:TruncateCompressor")
    assert isinstance(registry.compressors.create("my-truncate"), TruncateCompressor)
    assert isinstance(registry.compressors.create("my-truncate-path"), TruncateCompressor)
    registry.register("my-planner", GeometricPlanner, kind="planner")
    assert isinstance(registry.planners.create("my-planner"), GeometricPlanner)
    assert "my-planner" not in registry.compressors.known_names()
    with pytest.raises(ConfigError):
        registry.register("", TruncateCompressor)
    with pytest.raises(UnknownNameError):
        registry.register("x", TruncateCompressor, kind="retriever")
    registry.register("my-llm", "ctxcomp.llm.function:CallableLLM", kind="llm")  # "llm" is a kind (issue 14)
    assert "my-llm" in registry.llms.known_names()


def test_bad_settings_name_the_kind() -> None:
    with pytest.raises(ConfigError, match="bad settings for planner 'geometric'"):
        registry.planners.create("geometric", nonsense=1)
