from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctxcomp.config import load_spec
from ctxcomp.errors import BudgetError, ConfigError, UnknownNameError
from ctxcomp.pipeline import Pipeline

SPEC = {"stages": ["truncate"], "budget": {"max_tokens": 50, "model": "gpt-4o"}, "tenant": "t1"}


@pytest.mark.parametrize("suffix", [".yaml", ".toml", ".json"])
def test_spec_files(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"spec{suffix}"
    if suffix == ".yaml":
        path.write_text("stages:\n  - truncate\nbudget:\n  max_tokens: 50\n  model: gpt-4o\ntenant: t1\n")
    elif suffix == ".toml":
        path.write_text('stages = ["truncate"]\ntenant = "t1"\n[budget]\nmax_tokens = 50\nmodel = "gpt-4o"\n')
    else:
        path.write_text(json.dumps(SPEC))
    pipe = Pipeline.from_spec(path)
    assert pipe.budget is not None and pipe.budget.max_tokens == 50 and pipe.budget.model == "gpt-4o"
    assert pipe.tenant == "t1" and [s.name for s in pipe.stages] == ["truncate"]


def test_dict_spec_with_stage_settings() -> None:
    pipe = Pipeline.from_spec({"stages": [{"name": "embedding", "unit": "chunk"}], "budget": {"ratio": 4}})
    assert pipe.stages[0].settings.unit == "chunk"  # type: ignore[attr-defined]
    assert pipe.budget is not None and pipe.budget.ratio == 4


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"stages": []}, ConfigError),
        ({"stage": ["truncate"]}, ConfigError),
        ({"stages": ["truncate"], "budget": {"max_tokens": 0}}, BudgetError),
        ({"stages": ["truncate"], "budget": {"tokens": 10}}, BudgetError),
        ({"stages": ["truncate"], "budget": 10}, BudgetError),
        ({"stages": [{"unit": "x"}]}, ConfigError),
        ({"stages": ["nope"]}, UnknownNameError),
    ],
)
def test_bad_specs(spec: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        Pipeline.from_spec(spec)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.toml"
    bad.write_text("stages = [")
    with pytest.raises(ConfigError, match="not valid toml"):
        load_spec(bad)


# -- issue 11: settings are type-checked when the pipeline is built --------------------------
@pytest.mark.parametrize("stage", [
    {"name": "embedding", "model": [1, 2]},
    {"name": "embedding", "batch_size": "16"},
    {"name": "embedding", "unit": "paragraph"},
    {"name": "embedding", "title_context": "yes"},
    {"name": "gemfilter", "layer": "5"},
    {"name": "gemfilter", "max_input_tokens": 10.5},
])
def test_repro_stage_settings_fail_at_build_time(stage: dict) -> None:
    from ctxcomp.pipeline import Pipeline

    with pytest.raises(ConfigError, match=stage["name"].capitalize()[:3] + "|layer|must"):
        Pipeline([stage])


def test_repro_cache_settings_fail_at_build_time() -> None:
    spec = {"stages": ["truncate"], "cache": {"backend": "memory", "log_interval_s": "30"}}
    with pytest.raises(ConfigError, match="log_interval_s"):
        load_spec(spec).build()
