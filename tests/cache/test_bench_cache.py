"""``ctxcomp bench cache`` (ctxcomp/bench/cache.py), run small on the real backends."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ctxcomp.bench import cache as bench_cache


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctxcomp bench")
    bench_cache.register(parser.add_subparsers(dest="suite", required=True))
    return parser


def _run(tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "cache.json"
    args = _parser().parse_args(["cache", "--compressor", "truncate", "--requests", "2", "--hits", "30",
                                 "--entries", "50", "--out", str(out), *extra])
    assert args.func(args) == 0
    return json.loads(out.read_text())


def test_memory_only_run_writes_the_headline_numbers(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    doc = _run(tmp_path, "--redis", "none")
    assert doc["backend"] == "memory" and set(doc["backends"]) == {"memory"}
    row = doc["backends"]["memory"]
    assert doc["hit_p50_ms"] == row["hit"]["p50_ms"] > 0 and doc["hit_p99_ms"] >= doc["hit_p50_ms"]
    assert doc["miss_p50_ms"] == row["miss"]["p50_ms"] and doc["ratio"] == row["ratio"]
    assert row["stats"]["hits"] == 30 and row["stats"]["misses"] == 2
    assert max(row["context_tokens_out"]) <= 2000 < min(row["context_tokens_in"])
    per_entry = doc["memory_per_entry"]["memory"]
    assert per_entry["bytes_per_entry"] > per_entry["payload_bytes"] > 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["hit_p50_ms"] == doc["hit_p50_ms"]


@pytest.mark.redis
@pytest.mark.slow
def test_redis_run_measures_cross_process_throughput(tmp_path: Path, redis_url: str) -> None:
    doc = _run(tmp_path, "--redis", redis_url, "--procs", "1", "--clients", "2", "--seconds", "1")
    assert doc["backend"] == "redis" and set(doc["backends"]) == {"memory", "redis"}
    tp = doc["throughput"]
    assert tp["requests"] > 0 and tp["misses"] == 0 and tp["hits"] == tp["requests"]
    assert doc["memory_per_entry"]["redis"]["bytes_per_entry"] > 0


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["cache", "--hits", "0"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["cache", "--seconds", "-1"])
