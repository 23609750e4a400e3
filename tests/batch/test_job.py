"""Batch jobs on the local engine: output, resume, error file, bad input, Parquet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ctxcomp import Budget, Pipeline
from ctxcomp.batch import compress_dataset, compress_file
from ctxcomp.batch.engines import EngineSettings
from ctxcomp.batch.io import ErrorSink, open_sink, read_records
from ctxcomp.batch.job import make_recipe, run_job
from ctxcomp.errors import InputError, UnknownNameError
from ctxcomp.tokens import count_tokens

from .conftest import TRUNCATE, make_records, read_jsonl, write_jsonl

BUDGET = Budget(max_tokens=60)


def test_output_records_match_the_pipeline(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", records)
    summary = compress_file(src, tmp_path / "out.jsonl", pipeline=TRUNCATE, budget=BUDGET)
    out = read_jsonl(tmp_path / "out.jsonl")
    assert summary.compressed == len(out) == len(records) and summary.errors == 0
    assert [r["line"] for r in out] == list(range(1, len(records) + 1))
    pipe = Pipeline(["truncate"], BUDGET, cache=False)
    for record, result in zip(records, out, strict=True):
        expected = pipe.compress(record["query"], [c if isinstance(c, str) else c["text"] for c in record["chunks"]])
        assert result["text"] == expected.text and result["tokens_out"] <= 60
        assert result["tokens_out"] == count_tokens(result["text"], "gpt-4o-mini")
        assert result["cost_before"] > result["cost_after"] > 0
        ctx = result["context"]
        assert ctx["plan"]["planner"] == "geometric" and [s["name"] for s in ctx["stages"]][-1] == "truncate"
        assert all(span[1] > span[0] for c in ctx["chunks"] for span in c["spans"])
    assert summary.tokens_in == sum(r["tokens_in"] for r in out)
    assert summary.cost_saved == pytest.approx(sum(r["cost_before"] - r["cost_after"] for r in out))
    assert "saved" in summary.render() and f"{summary.tokens_saved:,}" in summary.render()


def test_bad_records_go_to_the_error_file_and_the_job_continues(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    bad = [*records[:3], {"query": "no chunks"}, {"query": "x", "chunks": []}, 17,
           {"query": "x", "chunks": [{"txt": "typo"}]}, {"query": "x", "chunks": ["a"], "budget": 0},
           {"query": "x", "chunks": ["𓀀𓀁𓀂 𓀀𓀁𓀂"], "budget": 1},  # valid, but its budget cannot be met
           *records[3:6]]
    src = write_jsonl(tmp_path / "in.jsonl", bad, tail='{"query": "cut off", "chunks": ["tru')
    summary = compress_file(src, tmp_path / "out.jsonl", pipeline=TRUNCATE, budget=BUDGET,
                            errors=tmp_path / "bad.jsonl")
    errors = sorted(read_jsonl(tmp_path / "bad.jsonl"), key=lambda e: e["line"])  # compute errors come later
    assert [e["line"] for e in errors] == [4, 5, 6, 7, 8, 9, 13]
    reasons = [e["reason"] for e in errors]
    assert "no 'chunks'" in reasons[0] and "non-empty list" in reasons[1] and "JSON object" in reasons[2]
    assert "'txt'" in reasons[3] and "max_tokens" in reasons[4] and "InfeasibleBudgetError" in reasons[5]
    assert "malformed JSON" in reasons[6]
    assert [r["line"] for r in read_jsonl(tmp_path / "out.jsonl")] == [1, 2, 3, 10, 11, 12]
    assert (summary.records, summary.compressed, summary.errors) == (13, 6, 7)


def test_resume_skips_what_is_done_and_cuts_a_torn_line(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", records)
    full = tmp_path / "full.jsonl"
    compress_file(src, full, pipeline=TRUNCATE, budget=BUDGET, timings=False)
    lines = full.read_bytes().splitlines(keepends=True)
    part = tmp_path / "part.jsonl"
    part.write_bytes(b"".join(lines[:10]) + lines[10][:37])  # killed mid-write
    summary = compress_file(src, part, pipeline=TRUNCATE, budget=BUDGET, timings=False)
    assert (summary.skipped, summary.compressed) == (10, len(records) - 10)
    assert part.read_bytes() == full.read_bytes()
    again = compress_file(src, part, pipeline=TRUNCATE, budget=BUDGET, timings=False)
    assert (again.skipped, again.compressed) == (len(records), 0) and part.read_bytes() == full.read_bytes()
    # another budget is another request: nothing is skipped
    other = compress_file(src, part, pipeline=TRUNCATE, budget=Budget(max_tokens=40))
    assert other.compressed == len(records)


class _Interrupted(Exception):
    pass


def test_resume_after_an_interrupted_run(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    out = tmp_path / "out.jsonl"
    settings = EngineSettings(make_recipe(TRUNCATE), timings=False)
    done = []

    def stop_half_way(n: int) -> None:
        done.append(n)
        if sum(done) >= len(records) // 2:
            raise _Interrupted

    with pytest.raises(_Interrupted):
        run_job(read_records(write_jsonl(tmp_path / "in.jsonl", records)), open_sink(out),
                ErrorSink(tmp_path / "e.jsonl"), settings=settings, budget=BUDGET, batch_size=4, progress=stop_half_way)
    written = len(read_jsonl(out))
    assert written == len(records) // 2  # whole micro-batches, nothing torn
    summary = compress_file(tmp_path / "in.jsonl", out, pipeline=TRUNCATE, budget=BUDGET, batch_size=4, timings=False)
    assert (summary.skipped, summary.compressed) == (written, len(records) - written)
    assert sorted(r["line"] for r in read_jsonl(out)) == list(range(1, len(records) + 1))


def test_per_record_budgets_and_duplicates(records: list[dict[str, Any]]) -> None:
    mixed = [{**records[0], "budget": 20}, {**records[1], "budget": {"ratio": 4}}, records[2], records[2]]
    result = compress_dataset(mixed, pipeline=TRUNCATE, budget=BUDGET)
    first, second, third = result.records
    assert first["context"]["budget_tokens"] == 20 and first["tokens_out"] <= 20
    assert second["context"]["budget_tokens"] == second["tokens_in"] // 4
    assert third["context"]["budget_tokens"] == 60
    assert result.summary.skipped == 1 and len({r["key"] for r in result.records}) == 3


def test_parquet_in_and_out_with_resume(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [{"query": r["query"], "chunks": [c if isinstance(c, str) else c["text"] for c in r["chunks"]]}
            for r in records]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    first = compress_file(tmp_path / "in.parquet", out, pipeline=TRUNCATE, budget=BUDGET)
    table = pq.read_table(out).to_pylist()
    assert first.compressed == len(table) == len(records)
    assert all(json.loads(r["context"])["text"] == r["text"] and r["tokens_out"] <= 60 for r in table)
    jsonl = compress_dataset(rows, pipeline=TRUNCATE, budget=BUDGET).records
    assert [r["text"] for r in table] == [r["text"] for r in jsonl]
    again = compress_file(tmp_path / "in.parquet", out, pipeline=TRUNCATE, budget=BUDGET)
    assert again.skipped == len(records) and len(pq.read_table(out)) == len(records)


def test_bad_input_files_and_settings(tmp_path: Path, records: list[dict[str, Any]]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", records[:2])
    with pytest.raises(InputError, match="cannot read"):
        compress_file(tmp_path / "missing.jsonl", tmp_path / "out.jsonl", pipeline=TRUNCATE, budget=BUDGET)
    with pytest.raises(InputError, match="cannot write"):
        compress_file(src, tmp_path / "no" / "such" / "dir.jsonl", pipeline=TRUNCATE, budget=BUDGET)
    with pytest.raises(InputError, match="cannot write"):
        compress_file(src, tmp_path, pipeline=TRUNCATE, budget=BUDGET)  # a directory
    with pytest.raises(UnknownNameError, match="known: local, processes, ray"):
        compress_file(src, tmp_path / "out.jsonl", pipeline=TRUNCATE, budget=BUDGET, engine="spark")
    with pytest.raises(InputError, match="must not be the input"):
        compress_file(src, src, pipeline=TRUNCATE, budget=BUDGET)
    assert src.read_text(encoding="utf-8").count("\n") == 2  # untouched


def test_many_records_without_a_budget_are_errors_not_a_crash(demo_chunks: list[Any]) -> None:
    result = compress_dataset(make_records(demo_chunks, 3), pipeline=TRUNCATE)
    assert len(result.errors) == 3 and "no budget" in result.errors[0]["reason"]
