"""``ctxcomp report`` / ``serve-metrics`` / ``compress --ledger`` end to end."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ctxcomp.cli import main
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.reporting.records import CompressionRecord, to_row
from ctxcomp.reporting.usage import make_usage

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "import sys; from ctxcomp.cli import main; sys.exit(main())"]


def _write(path: Path, records: list[CompressionRecord], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(to_row(r)) + "\n" for r in records) + tail)
    return path


def _records(n: int = 4, model: str = "gpt-4o-mini", start: float | None = None) -> list[CompressionRecord]:
    start = time.time() - 60 if start is None else start
    return [CompressionRecord.from_counts(model, 1000, 250, tenant=f"t{i % 2}", seconds=0.1, pipeline="p",
                                          timestamp=start + i) for i in range(n)]


def test_report_with_a_truncated_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "l.jsonl", _records(4), tail='{"kind": "compression", "v": 2, "times')
    assert main(["report", "--ledger", str(path), "--by", "tenant", "--html", str(tmp_path / "r.html")]) == 0
    out, err = capsys.readouterr()
    assert "warning: " in err and "l.jsonl:5: truncated last line" in err
    assert "4 compressions" in out and "skipped 1 bad line(s)" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("t0", "t1", "total"))}
    assert set(rows) == {"t0", "t1", "total"} and "3,000" in rows["total"]
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")


def test_report_of_an_unknown_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "l.jsonl", _records(2, model="not-a-real-model"))
    assert main(["report", "--ledger", str(path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("not-a-real-model"))
    assert re.split(r"\s{2,}", row)[5:7] == ["4.0x", "unknown"]  # ratio, saved USD (net)


def test_report_of_an_empty_ledger_and_an_empty_period(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["report", "--ledger", str(empty), "--html", str(tmp_path / "e.html")]) == 0
    assert "no records (the ledger is empty)" in capsys.readouterr().out
    old = _write(tmp_path / "old.jsonl", _records(2, start=1_000_000.0))
    assert main(["report", "--ledger", str(old), "--since", "7d"]) == 0
    assert "no records in this period" in capsys.readouterr().out


def test_report_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--ledger", str(tmp_path / "missing.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    path = _write(tmp_path / "l.jsonl", _records(1))
    assert main(["report", "--ledger", str(path), "--since", "last tuesday"]) == 2
    assert "--since 'last tuesday'" in capsys.readouterr().err


def test_compress_appends_ledger_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chunks = tmp_path / "chunks.jsonl"
    chunks.write_text("".join(json.dumps({"id": str(i), "text": f"Passage {i} says a number of things. " * 4}) + "\n"
                              for i in range(12)))
    ledger = tmp_path / "ledger.sqlite"
    for tenant in ("acme", "globex"):
        assert main(["compress", "-q", "x", "-i", str(chunks), "-b", "60", "--stages", "truncate",
                     "--ledger", str(ledger), "--tenant", tenant]) == 0
    capsys.readouterr()
    assert main(["report", "--ledger", str(ledger), "--by", "pipeline"]) == 0
    out = capsys.readouterr().out
    assert "2 compressions" in out
    from ctxcomp.reporting.reader import LedgerReader

    records = list(LedgerReader(ledger))
    assert [r.tenant for r in records] == ["acme", "globex"]
    assert all(r.tokens_out <= 60 and len(r.pipeline) == 16 and r.stages[0].name == "truncate" for r in records)


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_serve_metrics_follows_the_ledger_over_http(tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    path = tmp_path / "ledger.jsonl"
    _write(path, _records(4))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([*CLI, "serve-metrics", "--ledger", str(path), "--port", "0", "--poll", "0.05"],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving metrics" in line, line
        port = int(line.rsplit(":", 1)[1].split("/")[0])
        labels = (("model", "gpt-4o-mini"), ("pipeline", "p"), ("tenant", "t0"))
        assert _scrape(port)[("ctxcomp_compressions_total", labels)] == 2  # the history is served at once
        with Ledger(path) as ledger:  # a service appends
            ledger.add(_records(1)[0])
            ledger.record_usage(make_usage("gpt-4o-mini", 900, 10, provider="openai", expected_input_tokens=500))
        deadline = time.monotonic() + 30
        while _scrape(port)[("ctxcomp_compressions_total", labels)] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        samples = _scrape(port)
        assert samples[("ctxcomp_compressions_total", labels)] == 3
        assert samples[("ctxcomp_input_tokens_total", labels)] == 3000
        assert samples[("ctxcomp_usage_discrepancies_total", (("model", "gpt-4o-mini"), ("provider", "openai")))] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
