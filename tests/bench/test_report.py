import json

from ctxcomp.bench.report import document, environment, markdown_table, plot, write_json

ROWS = [
    {"method": "none", "ratio_target": 4, "n": 2, "answer_recall": 1.0, "gold_recall": 1.0,
     "ratio_achieved": 1.0, "budget_violations": 2, "latency_s": {"p50": 0.001, "p90": 0.002},
     "latency_per_1k_tokens": 0.0004, "peak_rss_mb": 123.4},
    {"method": "llmlingua", "ratio_target": 4, "n": 2, "answer_recall": 0.5, "gold_recall": None,
     "ratio_achieved": 3.7, "budget_violations": 1, "latency_s": {"p50": 10.0, "p90": 12.0},
     "latency_per_1k_tokens": 4.0, "peak_rss_mb": 1500.0},
]


def test_markdown_table_has_every_metric():
    table = markdown_table(ROWS).splitlines()
    assert table[0].startswith("| method | target | n | answer recall | gold recall | ratio achieved")
    assert table[2] == "| none | 4 | 2 | 1.000 | 1.000 | 1.0 | 2 | 0.001 | 0.002 | 0.000 | 123 |"
    assert "| – |" in table[3]  # no provenance: no gold recall
    assert "length" in markdown_table([{**ROWS[0], "length": 2000}], ["length"]).splitlines()[0]


def test_json_document_and_environment(tmp_path):
    env = environment(["bench", "nq"])
    assert env["command"] == "ctxcomp bench nq" and env["packages"]["ctxcomp"]
    path = tmp_path / "out" / "r.json"
    write_json(path, document("nq", {"path": "x"}, ROWS, env, {"ratio": [4]}))
    doc = json.loads(path.read_text())
    assert set(doc) == {"suite", "data", "settings", "results", "env"}
    assert doc["results"][1]["gold_recall"] is None


def test_plot_writes_png(tmp_path):
    path = tmp_path / "p.png"
    plot(ROWS, path, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
