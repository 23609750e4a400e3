"""The ``ctxcomp`` command end to end, including bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ctxcomp.cli import main
from ctxcomp.tokens import count_tokens
from ctxcomp.types import Chunk


def _write_chunks(path: Path, chunks: list[Chunk]) -> Path:
    path.write_text("\n".join(json.dumps({"id": c.id, "text": c.text, "metadata": dict(c.metadata)})
                              for c in chunks) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def chunks_file(tmp_path: Path, demo_chunks: list[Chunk]) -> Path:
    return _write_chunks(tmp_path / "chunks.jsonl", demo_chunks)


@pytest.mark.model
def test_compress_json_meets_budget_with_exact_spans(
    chunks_file: Path, demo_chunks: list[Chunk], capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(demo_chunks) == 20
    rc = main(["compress", "--query", "how many episodes are there in dragon ball z",
               "--input", str(chunks_file), "--budget", "300", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["tokens_out"] <= 300 and out["tokens_out"] == count_tokens(out["text"], "gpt-4o-mini")
    assert out["tokens_in"] > 2500 and out["ratio"] == pytest.approx(out["tokens_in"] / out["tokens_out"])
    assert out["cost_before"] > out["cost_after"] > 0
    by_id = {c.id: c.text for c in demo_chunks}
    for kept in out["chunks"]:
        for start, end in kept["spans"]:
            assert by_id[kept["source_id"]][start:end] in kept["text"]
        assert kept["metadata"]["title"]
    # the JSON holds the plan: every chunk, kept or dropped, and why
    plan = out["plan"]
    assert plan["planner"] == "geometric" and len(plan["chunks"]) == 20
    kept_ids = {c["source_id"] for c in out["chunks"]}
    assert kept_ids <= {c["chunk_id"] for c in plan["chunks"] if c["keep"]}
    assert all(c["reason"] for c in plan["chunks"])
    assert [s["name"] for s in out["stages"]] == ["gemfilter"]


def test_planner_option_with_stages(chunks_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["compress", "-q", "dragon ball episodes", "-i", str(chunks_file), "-b", "200", "--stages", "truncate",
               "--planner", "knapsack", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["plan"]["planner"] == "knapsack" and out["tokens_out"] <= 200
    assert out["stages"][0]["name"] == "plan:knapsack"
    rc = main(["compress", "-q", "x", "-i", str(chunks_file), "-b", "200", "--planner", "knapsack"])
    assert rc == 2 and "--planner goes with --stages" in capsys.readouterr().err


def test_compress_text_output_and_budget_noop(chunks_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["compress", "-q", "x", "-i", str(chunks_file), "--budget", "100000", "--stages", "truncate"])
    text = capsys.readouterr().out
    assert rc == 0
    assert text.count("\n\n") >= 19  # every chunk returned whole


def test_multi_query_input_with_stdin(demo_chunks: list[Chunk], tmp_path: Path) -> None:
    lines = [json.dumps({"query": f"q{i}", "chunks": [{"text": c.text, "id": c.id} for c in demo_chunks[:5]]})
             for i in range(3)]
    result = subprocess.run(
        [sys.executable, "-m", "ctxcomp.cli", "compress", "-i", "-", "--budget", "50", "--stages", "truncate",
         "--json"], input="\n".join(lines), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    outs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["query"] for o in outs] == ["q0", "q1", "q2"]
    assert all(o["tokens_out"] <= 50 for o in outs)
    assert "compress" in result.stderr  # the progress bar


def _fails(args: list[str], capsys: pytest.CaptureFixture[str], expect: str, code: int = 2) -> None:
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(args))
    err = capsys.readouterr().err
    assert info.value.code == code, err
    assert expect in err, err
    assert "Traceback" not in err


def test_bad_inputs(tmp_path: Path, chunks_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["compress", "-q", "what", "--stages", "truncate"]
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes('{"text": "caf\u00e9"}\n'.encode("latin-1"))
    _fails([*base, "-i", str(latin), "-b", "10"], capsys, "not UTF-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"text": "ok2"}\n{"text": broken\n', encoding="utf-8")
    _fails([*base, "-i", str(bad), "-b", "10"], capsys, "line 3: malformed JSON")
    notext = tmp_path / "notext.jsonl"
    notext.write_text('{"text": "ok"}\n{"body": "x"}\n', encoding="utf-8")
    _fails([*base, "-i", str(notext), "-b", "10"], capsys, "line 2")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    _fails([*base, "-i", str(empty), "-b", "10"], capsys, "holds no chunks")
    _fails([*base, "-i", str(tmp_path / "missing.jsonl"), "-b", "10"], capsys, "cannot read")
    _fails([*base, "-i", str(chunks_file), "-b", "10", "--model", "gpt-4o-mnii"], capsys, "gpt-4o-mini")
    _fails(["compress", "-q", "w", "-i", str(chunks_file), "-b", "10", "--stages", "embeding"], capsys,
           "unknown stage 'embeding'")
    _fails(["compress", "-q", " ", "-i", str(chunks_file), "-b", "10", "--stages", "embedding"], capsys,
           "query is empty")
    _fails(["compress", "-i", str(chunks_file), "-b", "10"], capsys, "--query is required")
    _fails([*base, "-i", str(chunks_file)], capsys, "give --budget or --ratio")
    _fails([*base, "-i", str(chunks_file), "--ratio", "0.5"], capsys, "ratio must be")


@pytest.mark.parametrize("budget", ["0", "-5", "ten"])
def test_bad_budget_is_a_usage_error(chunks_file: Path, budget: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["compress", "-q", "x", "-i", str(chunks_file), f"--budget={budget}"])
    assert info.value.code == 2
    assert "budget" in capsys.readouterr().err


def test_price_override_for_an_unlisted_model(chunks_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["compress", "-q", "x", "-i", str(chunks_file), "-b", "100", "--stages", "truncate",
               "--model", "my-private-llm", "--price-in", "2.0", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["cost_before"] == pytest.approx(out["tokens_in"] * 2e-6)
    assert out["tokens_approximate"] is True


def test_pipeline_spec_file(chunks_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("stages:\n  - truncate\nbudget:\n  max_tokens: 40\n  model: gpt-4\n", encoding="utf-8")
    assert main(["compress", "-q", "x", "-i", str(chunks_file), "--pipeline", str(spec), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["budget_tokens"] == 40 and out["tokens_out"] <= 40
    # --budget on the command line overrides the spec's
    assert main(["compress", "-q", "x", "-i", str(chunks_file), "-p", str(spec), "-b", "25", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tokens_out"] <= 25 and out["model"] == "gpt-4"  # the spec's model is kept
    assert main(["compress", "-q", "x", "-i", str(chunks_file), "-p", str(spec), "-m", "gpt-4o", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "gpt-4o" and out["budget_tokens"] == 40


@pytest.mark.model
def test_demo_prints_a_before_after_report() -> None:
    result = subprocess.run([sys.executable, "-m", "ctxcomp.cli", "demo"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "tokens" in out and "cost/request" in out and "$" in out and "kept" in out
    assert "ratio" in out


# -- issue 11: extreme lines never give a traceback ------------------------------------------
def _run(tmp_path: Path, lines: list[str], *args: str) -> tuple[int, str, str]:
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", "import sys; from ctxcomp.cli import main; sys.exit(main())",
                           "compress", "-i", str(path), *args],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize(("line", "message"), [
    ('{"text": ' + "[" * 100_000 + "]" * 100_000 + "}", "line 1: JSON nested too deeply"),
    ('{"text": "a b", "id": ' + "9" * 5000 + "}", "line 1: unreadable JSON value"),
])
def test_repro_extreme_lines_are_one_line_errors(tmp_path: Path, line: str, message: str) -> None:
    rc, _, err = _run(tmp_path, [line], "-q", "x", "-b", "5", "--stages", "truncate")
    assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_repro_a_bad_request_names_its_line_before_any_output(tmp_path: Path) -> None:
    good = json.dumps({"query": "q", "chunks": [{"text": "alpha beta gamma delta"}]})
    empty_query = json.dumps({"query": " ", "chunks": [{"text": "alpha beta gamma delta"}]})
    rc, out, err = _run(tmp_path, [good, empty_query], "-b", "1", "--stages", "embedding")
    assert rc == 2 and "line 2:" in err and out == ""


def test_repro_surrogate_escapes_in_json_are_replaced_not_a_traceback(tmp_path: Path) -> None:
    rc, out, err = _run(tmp_path, ['{"text": "alpha \\ud800 beta gamma delta epsilon"}'], "-q", "x", "-b", "3",
                        "--stages", "truncate", "--json")
    assert rc == 0 and "Traceback" not in err
    assert json.loads(out)["text"].startswith("alpha")


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_repro_price_must_be_finite(tmp_path: Path, value: str) -> None:
    rc, out, err = _run(tmp_path, ['{"text": "a b c"}'], "-q", "x", "-b", "2", "--price-in", value, "--json")
    assert rc == 2 and "finite" in err and "NaN" not in out


def test_repro_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("stages: [truncate\nbudget: {max_tokens: 5}\n")
    rc, _, err = _run(tmp_path, ['{"text": "a b c"}'], "-q", "x", "-p", str(spec))
    assert rc == 2 and "not valid yaml" in err and "line 2" in err and len(err.strip().splitlines()) == 1
