"""Proxy settings, per-request budgets and switches, the CLI, and a light import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ctxcomp.errors import BudgetError, ConfigError
from ctxcomp.proxy.config import ProxyConfig, Switches, parse_budget_value


def test_config_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text("upstream: http://127.0.0.1:9/v1/\nbudget: {max_tokens: 500}\n"
                    "compress: {tools: false}\npipeline: {stages: [truncate]}\n")
    config = ProxyConfig.from_file(path)
    assert config.upstream == "http://127.0.0.1:9/v1" and config.budget.max_tokens == 500
    assert config.compress == Switches(tools=False) and config.pipeline == {"stages": ["truncate"]}
    assert ProxyConfig.from_file(path, upstream="https://api.example.com/v1").upstream == "https://api.example.com/v1"
    again = ProxyConfig.from_mapping(__import__("json").loads(config.to_json()))
    assert again == config


@pytest.mark.parametrize(("data", "needle"), [
    ({}, "upstream URL is needed"),
    ({"upstream": "ftp://x"}, "http(s) URL"),
    ({"upstream": "http://x/v1?a=1"}, "query"),
    ({"upstream": "http://x", "upsteam": 1}, "unknown keys"),
    ({"upstream": "http://x", "compress": {"tool": True}}, "unknown kinds"),
    ({"upstream": "http://x", "max_body_bytes": 0}, "max_body_bytes"),
    ({"upstream": "http://x", "budget": {"ratio": 0.5}}, "ratio"),
])
def test_bad_configs(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        ProxyConfig.from_mapping(data)
    assert needle in str(info.value)


def test_request_budgets() -> None:
    assert parse_budget_value(300, "m", where="w").max_tokens == 300
    assert parse_budget_value(" 4x ", "m", where="w").ratio == 4.0
    assert parse_budget_value("250", "gpt-4o", where="w").model == "gpt-4o"
    assert parse_budget_value({"ratio": 2}, "m", where="w").ratio == 2
    for bad in ("lots", True, 0, "0.5x", "infx", [3]):
        with pytest.raises(BudgetError):
            parse_budget_value(bad, "m", where="w")


def test_switch_header() -> None:
    base = Switches()
    assert Switches.from_header("off", base) == Switches(False, False, False, False)
    assert Switches.from_header("on", base) == base
    assert Switches.from_header("tools, system", base) == Switches(True, False, False, True)
    with pytest.raises(ConfigError):
        Switches.from_header("everything", base)


def test_serve_needs_an_upstream() -> None:
    proc = subprocess.run([sys.executable, "-m", "ctxcomp.cli", "serve"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2 and "upstream URL is needed" in proc.stderr


def test_importing_the_proxy_package_is_light() -> None:
    code = ("import sys, ctxcomp.proxy, ctxcomp.proxy.config, ctxcomp.proxy.rewrite, ctxcomp.proxy.engine\n"
            "print([m for m in ('starlette', 'uvicorn', 'httpx', 'torch') if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_workers_build_the_app_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("starlette")
    from ctxcomp.proxy.app import app_from_env

    config = ProxyConfig(upstream="http://127.0.0.1:9/v1", pipeline={"stages": ["truncate"]}, min_chars=7)
    monkeypatch.setenv("CTXCOMP_PROXY_CONFIG", config.to_json())
    state = app_from_env().state.proxy
    assert state.config == config and state.engine.pipeline.stages[0].name == "truncate"


def test_an_unreadable_or_broken_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read proxy config"):
        ProxyConfig.from_file(tmp_path / "missing.yaml")
    broken = tmp_path / "proxy.json"
    broken.write_text('{"upstream": ', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"proxy config .* is not valid json"):
        ProxyConfig.from_file(broken)
