from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from ctxcomp.errors import ConfigError, InputError
from ctxcomp.reporting.ledger import Ledger
from ctxcomp.reporting.reader import LedgerReader
from ctxcomp.reporting.records import CompressionRecord, Record
from ctxcomp.reporting.sinks import JsonlSink, SQLiteSink
from ctxcomp.reporting.usage import make_usage
from ctxcomp.types import CompressedContext

Ctx = Callable[..., CompressedContext]


def test_totals_by_tenant_model_and_pipeline(tmp_path: Path, make_ctx: Ctx) -> None:
    with Ledger(tmp_path / "ledger.jsonl") as ledger:
        ledger.record(make_ctx(1000, 100), tenant="a", seconds=0.5, pipeline="p1")
        ledger.record(make_ctx(500, 250, "gpt-4o"), tenant="b", cache_hit=True, pipeline="p2")
        total = ledger.totals()
        assert (total.requests, total.tokens_in, total.tokens_out, total.cache_hits) == (2, 1500, 350, 1)
        assert total.tokens_saved == 1150 and total.cost_saved == pytest.approx(1150e-6)
        assert ledger.totals(tenant="a").tokens_out == 100
        assert ledger.totals(pipeline="p2").tokens_in == 500
        assert set(ledger.by("model")) == {"gpt-4o-mini", "gpt-4o"}
        assert set(ledger.by("pipeline")) == {"p1", "p2"}
        with pytest.raises(ValueError):
            ledger.by("colour")
        ledger.record_usage(make_usage("gpt-4o-mini", 1200, 30, tenant="a"))
        ledger.record_usage(make_usage("unpriced-llm", 10, 1))
        usage = ledger.usage_totals()
        assert (usage.calls, usage.input_tokens, usage.output_tokens, usage.unpriced) == (2, 1210, 31, 1)
        assert usage.cost == pytest.approx(1200 * 0.15e-6 + 30 * 0.6e-6)
        assert [u.model for u in ledger.usage(tenant="a")] == ["gpt-4o-mini"]
    rows = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in rows] == ["compression", "compression", "llm_usage", "llm_usage"]
    assert rows[0]["pipeline"] == "p1" and [s["name"] for s in rows[0]["stages"]] == ["embedding", "summarize"]
    assert rows[2]["input_tokens"] == 1200


def test_totals_equal_the_sum_of_the_records(tmp_path: Path, make_ctx: Ctx) -> None:
    path = tmp_path / "ledger.jsonl"
    with Ledger(path) as ledger:
        for i in range(300):
            priced = i % 7 != 0
            ledger.record(make_ctx(1000 + i, 100 + i % 50, priced=priced, llm_tokens=(i, i // 2),
                                   llm_cost=None if i % 11 == 0 else i * 1e-7),
                          tenant=f"t{i % 5}", seconds=i / 1000, cache_hit=i % 3 == 0, pipeline=f"p{i % 2}")
        totals = ledger.totals()
    records = [r for r in LedgerReader(path) if isinstance(r, CompressionRecord)]
    assert len(records) == totals.requests == 300
    assert totals.tokens_in == sum(r.tokens_in for r in records)
    assert totals.tokens_out == sum(r.tokens_out for r in records)
    assert totals.cache_hits == sum(r.cache_hit for r in records)
    assert totals.unpriced == sum(r.cost_before is None for r in records) > 0
    assert totals.cost_before == pytest.approx(sum(r.cost_before for r in records if r.cost_before is not None))
    assert totals.llm_tokens_in == sum(r.llm_tokens_in for r in records) > 0
    assert totals.net_unknown == sum(r.net_saved is None for r in records)
    assert totals.net_saved == pytest.approx(sum(r.net_saved for r in records if r.net_saved is not None))
    assert totals.seconds == pytest.approx(sum(r.seconds for r in records))


def test_cache_hit_costs_no_compressor_compute(make_ctx: Ctx) -> None:
    hit = CompressionRecord.from_context(make_ctx(1000, 100, llm_tokens=(500, 50), llm_cost=1e-4), cache_hit=True)
    miss = CompressionRecord.from_context(make_ctx(1000, 100, llm_tokens=(500, 50), llm_cost=1e-4))
    assert (hit.llm_tokens_in, hit.llm_cost, hit.compressor_seconds) == (0, 0.0, 0.0)
    assert (miss.llm_tokens_in, miss.llm_tokens_out) == (500, 50)
    assert miss.net_saved == pytest.approx(900e-6 - 1e-4)
    unknown = CompressionRecord.from_context(make_ctx(1000, 100, llm_tokens=(500, 50), llm_cost=None))
    assert unknown.llm_cost is None and unknown.net_saved is None and unknown.cost_saved == pytest.approx(900e-6)


def test_memory_is_bounded_but_totals_count_everything(make_ctx: Ctx) -> None:
    ledger = Ledger(keep=50, max_groups=3)
    for i in range(1000):
        ledger.record(make_ctx(100, 10), tenant=f"tenant-{i}")
    assert len(list(ledger)) == 50 and len(ledger) == 1000
    assert ledger.totals().requests == 1000
    by_tenant = ledger.by("tenant")
    assert len(by_tenant) == 4 and by_tenant["(other)"].requests == 997


def _record_many(ledger: Ledger, make_ctx: Ctx, threads: int, per_thread: int) -> None:
    def work(t: int) -> None:
        for i in range(per_thread):
            ledger.record(make_ctx(100 + i, 10), tenant=f"w{t}", seconds=0.001)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


@pytest.mark.parametrize("on_full, queue_size", [("drop", 20_000), ("block", 8)])
def test_concurrent_writers_lose_nothing(tmp_path: Path, make_ctx: Ctx, on_full: str, queue_size: int) -> None:
    jsonl, db = tmp_path / "l.jsonl", tmp_path / "l.sqlite"
    ledger = Ledger(sinks=[JsonlSink(jsonl), SQLiteSink(db)], queue_size=queue_size, on_full=on_full)  # type: ignore[arg-type]
    _record_many(ledger, make_ctx, threads=8, per_thread=1500)
    ledger.close()
    assert ledger.dropped == 0
    for path in (jsonl, db):
        reader = LedgerReader(path)
        records = list(reader)
        assert reader.problems == []
        assert len(records) == 12_000
        assert sum(r.tokens_in for r in records) == ledger.totals().tokens_in  # type: ignore[union-attr]
        assert {r.tenant for r in records} == {f"w{t}" for t in range(8)}


class StalledSink:
    """A sink whose disk hangs until released (a real stall, not a mock of the ledger)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.received: list[Record] = []

    def write(self, records: Sequence[Record]) -> None:
        self.entered.set()
        self.release.wait()
        self.received.extend(records)

    def close(self) -> None:
        return None


def test_full_queue_drops_and_counts_and_never_blocks(make_ctx: Ctx) -> None:
    sink = StalledSink()
    ledger = Ledger(sinks=[sink], queue_size=4)
    ledger.record(make_ctx(100, 10))
    assert sink.entered.wait(10)  # the writer holds one record inside the stalled sink
    done = threading.Event()

    def flood() -> None:
        for _ in range(200):
            ledger.record(make_ctx(100, 10))
        done.set()

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    # flood() returns while the sink is still stalled: recording never waits for it.
    assert done.wait(30), "record() blocked on a stalled sink"
    assert ledger.dropped == 200 - 4
    assert ledger.totals().requests == 201  # the totals miss nothing
    sink.release.set()
    ledger.close()
    assert len(sink.received) == 201 - ledger.dropped == 5


def test_flush_at_interpreter_exit_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "exit.jsonl"
    code = (
        "from ctxcomp.reporting.ledger import Ledger\n"
        "from ctxcomp.reporting.records import CompressionRecord\n"
        f"ledger = Ledger({str(path)!r}, queue_size=100_000)\n"
        "for i in range(20_000):\n"
        "    ledger.add(CompressionRecord(float(i), 't', 'gpt-4o-mini', 10, 5, None, None, 0.0, False))\n"
        "print(ledger.dropped)\n"  # no close(): the atexit hook must write the queue
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
    assert len(path.read_text().splitlines()) == 20_000


def test_failing_sink_is_logged_and_counted(tmp_path: Path, make_ctx: Ctx, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()  # appending to a folder fails with a real OSError
    ledger = Ledger(sinks=[JsonlSink(folder)])
    ledger.record(make_ctx(100, 10))
    assert ledger.flush(30)
    ledger.close()
    assert ledger._writer is not None and ledger._writer.failed == 1
    assert "failed" in caplog.text


def test_bad_settings() -> None:
    with pytest.raises(ConfigError):
        Ledger(on_full="wait")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Ledger(keep=0)
    with pytest.raises(ConfigError):
        Ledger(sinks=["ledger.jsonl"])  # type: ignore[list-item]
    with pytest.raises(InputError):
        make_usage("gpt-4o-mini", -1, 0)


def test_ledger_and_pipeline_import_no_exporter() -> None:
    code = ("import sys, ctxcomp, ctxcomp.reporting, ctxcomp.pipeline, ctxcomp.reporting.ledger, ctxcomp.cli\n"
            "from ctxcomp.reporting import Ledger\n"
            "ctxcomp.cli.build_parser(); Ledger().record\n"
            "print([m for m in ('prometheus_client', 'opentelemetry', 'matplotlib', 'numpy') if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
