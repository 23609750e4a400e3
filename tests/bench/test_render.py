import json

import pytest

from ctxcomp.bench.render import END, START, update_readme
from ctxcomp.errors import InputError


def _results(folder):
    folder.mkdir()
    row = {"method": "truncate", "ratio_target": 4, "n": 3, "answer_recall": 0.5, "gold_recall": 0.25,
           "ratio_achieved": 4.0, "budget_violations": 0, "latency_s": {"p50": 0.01, "p90": 0.02},
           "latency_per_1k_tokens": 0.001, "peak_rss_mb": 100.0}
    doc = {"suite": "nq", "data": {"path": "dev.jsonl.gz", "examples": 3}, "settings": {},
           "results": [row], "env": {"command": "ctxcomp bench nq --limit 3", "finished": True}}
    (folder / "nq.json").write_text(json.dumps(doc))
    (folder / "nq.png").write_bytes(b"\x89PNG")
    cache = {"suite": "cache", "settings": {"compressor": "truncate", "budget": 2000},
             "backends": {"redis": {"miss": {"p50_ms": 12.1}, "hit": {"p50_ms": 0.68, "p99_ms": 7.9},
                                    "payload_bytes": 4627}},
             "memory_per_entry": {"redis": {"bytes_per_entry": 8575}}, "throughput": {"requests_per_s": 450.6}}
    (folder / "cache.json").write_text(json.dumps(cache))
    (folder / "other.json").write_text(json.dumps({"suite": "unknown"}))  # unknown suites: skipped


def test_render_fills_only_the_marked_region(tmp_path):
    _results(tmp_path / "results")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{START}\nSTALE TABLE\n{END}\nafter\n")
    assert update_readme(readme, tmp_path / "results") is True
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith(f"{END}\nafter\n")
    assert "| truncate | 4 | 3 | 0.500 | 0.250 |" in text and "STALE TABLE" not in text
    assert "| redis | 12.10 | 0.68 | 7.90 | 4,627 | 8,575 |" in text and "450.60 requests/s" in text
    assert text.index("Multi-document QA") < text.index("Context cache")  # known suites first
    assert "unknown" not in text
    assert "![nq results](results/nq.png)" in text and "ctxcomp bench nq --limit 3" in text
    assert update_readme(readme, tmp_path / "results") is False  # idempotent
    assert update_readme(readme, tmp_path / "results", check=True) is False


def test_render_needs_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(InputError, match="results:start"):
        update_readme(readme, tmp_path)
