from __future__ import annotations

import pytest

from ctxcomp import registry
from ctxcomp.compressors.truncate import TruncateCompressor
from ctxcomp.errors import ConfigError, UnknownNameError


def test_builtin_names_resolve_lazily() -> None:
    assert {"truncate", "embedding", "gemfilter"} <= set(registry.known_names())
    assert registry.get_factory("truncate") is TruncateCompressor


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownNameError) as info:
        registry.get_factory("truncat")
    assert info.value.kind == "stage" and "truncate" in info.value.known
    assert "known:" in str(info.value)


def test_register_a_third_party_compressor() -> None:
    registry.register("my-truncate", TruncateCompressor)
    registry.register("my-truncate-path", "ctxcomp.compressors.truncate:TruncateCompressor")
    assert isinstance(registry.create("my-truncate"), TruncateCompressor)
    assert isinstance(registry.create("my-truncate-path"), TruncateCompressor)
    with pytest.raises(ConfigError):
        registry.register("", TruncateCompressor)
