"""Smoke tests of ``ctxcomp bench``: the CI guard that keeps the harness from rotting."""

import json
import subprocess
import sys

import pytest

from ctxcomp.cli import main


def test_importing_bench_cli_is_light():
    code = ("import sys, ctxcomp.bench.cli, ctxcomp.cli; ctxcomp.cli.build_parser(); "
            "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'langchain_core', "
            "'llama_index', 'llmlingua', 'matplotlib') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bench_nq_smoke(nq_path, tmp_path, capsys):
    out, png = tmp_path / "nq.json", tmp_path / "nq.png"
    rc = main(["bench", "nq", "--data", str(nq_path), "--methods", "none,truncate,random:seed=3",
               "--ratio", "4", "--limit", "3", "--out", str(out), "--plot", str(png), "--no-progress"])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["suite"] == "nq" and doc["data"]["examples"] == 3 and doc["env"]["finished"] is True
    rows = {r["method"]: r for r in doc["results"]}
    assert set(rows) == {"none", "truncate", "random:seed=3"}
    assert rows["none"]["answer_recall"] == 1.0 and rows["none"]["ratio_achieved"] == 1.0
    for name in ("truncate", "random:seed=3"):
        assert rows[name]["budget_violations"] == 0 and rows[name]["ratio_achieved"] >= 3.9
        assert rows[name]["n"] == 3 and rows[name]["gold_recall"] is not None
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "| random:seed=3 | 4 | 3 |" in capsys.readouterr().out


@pytest.mark.model
def test_bench_nq_embedding_smoke(nq_path, tmp_path):
    out = tmp_path / "nq.json"
    assert main(["bench", "nq", "--data", str(nq_path), "--methods", "embedding:unit=chunk",
                 "--ratio", "10", "--limit", "2", "--out", str(out), "--no-progress"]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["method"] == "embedding:unit=chunk" and row["budget_violations"] == 0


def test_bench_needle_and_locomo_smoke(haystack_dir, needles_path, locomo_path, tmp_path):
    out = tmp_path / "needle.json"
    assert main(["bench", "needle", "--haystack", str(haystack_dir), "--needles", str(needles_path),
                 "--lengths", "500,1000", "--depths", "2", "--ratio", "5", "--methods", "none,truncate",
                 "--out", str(out), "--no-progress"]) == 0
    rows = json.loads(out.read_text())["results"]
    assert [(r["method"], r["length"], r["n"]) for r in rows] == [
        ("none", 500, 2), ("none", 1000, 2), ("truncate", 500, 2), ("truncate", 1000, 2)]
    # truncation keeps the head: the needle at depth 0 survives, the one at 100% does not
    assert all(r["answer_recall"] == 0.5 for r in rows if r["method"] == "truncate")
    out = tmp_path / "locomo.json"
    assert main(["bench", "locomo", "--data", str(locomo_path), "--limit", "4", "--methods", "none",
                 "--out", str(out), "--no-progress"]) == 0
    (row,) = json.loads(out.read_text())["results"]
    assert row["n"] == 4 and row["evidence_recall"] == 1.0


def test_bad_input_is_a_clean_error(tmp_path, capsys):
    assert main(["bench", "nq", "--data", str(tmp_path / "missing.jsonl"), "--methods", "none"]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "d.jsonl").write_text('{"question": "q", "answers": ["a"], "ctxs": [{"text": "a"}]}\n')
    assert main(["bench", "nq", "--data", str(tmp_path / "d.jsonl"), "--methods", "bogus",
                 "--out", str(tmp_path / "o.json")]) == 2
    assert "unknown method 'bogus'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "nq", "--data", "x", "--ratio", "0.5"])


def test_render_subcommand(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:start -->\n<!-- results:end -->\n")
    (tmp_path / "results").mkdir()
    assert main(["bench", "render", "--readme", str(readme), "--results", str(tmp_path / "results")]) == 0
    assert "No results yet" in readme.read_text()
    assert main(["bench", "render", "--readme", str(readme), "--results", str(tmp_path / "results"),
                 "--check"]) == 0


def test_merge_runs_on_the_same_examples(nq_path, tmp_path, capsys):
    base = ["bench", "nq", "--data", str(nq_path), "--ratio", "4", "--limit", "2", "--no-progress"]
    assert main([*base, "--methods", "none", "--out", str(tmp_path / "a.json")]) == 0
    assert main([*base, "--methods", "truncate", "--out", str(tmp_path / "b.json")]) == 0
    merged = tmp_path / "m.json"
    assert main(["bench", "merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(merged),
                 "--plot", str(tmp_path / "m.png")]) == 0
    doc = json.loads(merged.read_text())
    assert [r["method"] for r in doc["results"]] == ["none", "truncate"] and len(doc["env"]["runs"]) == 2
    assert (tmp_path / "m.png").exists()
    assert main(["bench", "merge", str(tmp_path / "a.json"), str(tmp_path / "a.json"), "--out", str(merged)]) == 2
    assert "in two runs" in capsys.readouterr().err
    assert main([*base[:-3], "--limit", "3", "--no-progress", "--methods", "random",
                 "--out", str(tmp_path / "c.json")]) == 0
    assert main(["bench", "merge", str(tmp_path / "a.json"), str(tmp_path / "c.json"), "--out", str(merged)]) == 2
    assert "data differs" in capsys.readouterr().err


def test_bench_ledger_records_every_compression(nq_path, tmp_path):
    from ctxcomp.reporting.reader import LedgerReader

    ledger = tmp_path / "bench-ledger.jsonl"
    assert main(["bench", "nq", "--data", str(nq_path), "--methods", "none,truncate", "--ratio", "4,10",
                 "--limit", "2", "--out", str(tmp_path / "nq.json"), "--no-progress", "--ledger", str(ledger)]) == 0
    records = list(LedgerReader(ledger))
    assert len(records) == 2 * 2 * 2  # methods x ratios x questions
    assert {r.pipeline for r in records} == {"none", "truncate"} and {r.tenant for r in records} == {"bench"}
    truncated = [r for r in records if r.pipeline == "truncate"]
    assert all(r.tokens_out < r.tokens_in and r.cost_before > r.cost_after for r in truncated)
    assert "ledger" not in json.loads((tmp_path / "nq.json").read_text())["settings"]
