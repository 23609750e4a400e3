"""The default pipeline: gemfilter, or a warned embedding fallback without the causal model."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ctxcomp import defaults
from ctxcomp.types import Budget


def test_fallback_when_the_causal_model_is_not_pulled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CTXCOMP_CACHE_DIR", str(tmp_path))  # an empty cache: nothing pulled
    with caplog.at_level(logging.WARNING, logger="ctxcomp.defaults"):
        spec = defaults.default_spec()
    assert spec == defaults.FALLBACK
    assert "ctxcomp models pull smollm2-135m" in caplog.text
    pipe = defaults.default_pipeline(budget=Budget(max_tokens=50), cache=False)
    assert pipe.name == "default-embedding" and [s.name for s in pipe.stages] == ["embedding"]


@pytest.mark.model
def test_gemfilter_when_the_model_is_pulled(caplog: pytest.LogCaptureFixture) -> None:
    from ctxcomp.models.shipped import is_pulled

    if not is_pulled(defaults.CAUSAL_MODEL):
        pytest.skip("smollm2-135m is not pulled here")
    with caplog.at_level(logging.WARNING, logger="ctxcomp.defaults"):
        pipe = defaults.default_pipeline(cache=False)
    assert not caplog.text
    assert pipe.name == "default" and [s.name for s in pipe.stages] == ["gemfilter"]
    # the module constant is never mutated by building from it
    assert defaults.default_spec() == defaults.RECOMMENDED
