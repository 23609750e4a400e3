"""Ledger memory over 1M records: resident memory (RSS) as records accumulate.

Each mode runs in its own fresh Python process, records N compressions (two stages each,
1,000 tenants, three models, one of them unpriced) as fast as it can through the ledger's
public API, and samples the process's RSS at checkpoints:

* ``baseline``: the ledger before issue 16 (every entry kept in a Python list), loaded
  from git (``--baseline-rev``) and run on the same records;
* ``drop``: ``Ledger(path)``, the production default: JSONL sink, 10k-record queue that
  drops (and counts) when the writer falls behind;
* ``block``: ``Ledger(path, on_full="block")``, lossless (CLI and batch jobs);
* ``sqlite``: ``Ledger("x.sqlite", on_full="block")``;
* ``report``: ``build_report`` over the file the ``block`` mode wrote (``ctxcomp report``
  streaming a 1M-record ledger), peak RSS and seconds.

Usage (each mode under the shared lock; results merge into one file)::

    for m in baseline drop block sqlite report; do
        flock /work/.bench.lock python benchmarks/reporting/ledger_memory.py --mode $m \\
            --out benchmarks/results/ledger_memory.json
    done
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BASELINE_REV = "d6023e4"  # main before issue 16: reporting/ledger.py kept a list
CHECKPOINTS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def contexts() -> list[Any]:
    """A few result shapes, reused: building contexts is not what is measured."""
    from ctxcomp.pricing import prompt_costs
    from ctxcomp.types import CompressedContext, StageReport

    out = []
    for model in ("gpt-4o-mini", "gpt-4.1", "in-house-llm"):
        for tokens_in in (1800, 2600, 3400):
            tokens_out = tokens_in // 4
            before, after = prompt_costs(model, tokens_in, tokens_out)
            stages = (StageReport("embedding", tokens_in, tokens_out * 2, 0.05),
                      StageReport("gemfilter", tokens_out * 2, tokens_out, 0.8))
            out.append(CompressedContext((), "", tokens_in, tokens_out, model=model, cost_before=before,
                                         cost_after=after, stages=stages))
    return out


def baseline_ledger(rev: str) -> Any:
    """The pre-issue-16 Ledger class, from git, run against today's types."""
    source = subprocess.run(["git", "show", f"{rev}:ctxcomp/reporting/ledger.py"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType("ledger_before_issue16")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{rev}:ctxcomp/reporting/ledger.py", "exec"), module.__dict__)
    return module.Ledger()


def run_ledger(mode: str, n: int, folder: Path, rev: str) -> dict[str, Any]:
    from ctxcomp.reporting.ledger import Ledger

    if mode == "baseline":
        ledger = baseline_ledger(rev)
    elif mode == "sqlite":
        ledger = Ledger(folder / "ledger.sqlite", on_full="block")
    else:
        ledger = Ledger(folder / "ledger.jsonl", on_full="block" if mode == "block" else "drop")
    shapes = contexts()
    marks = {int(n * c) for c in CHECKPOINTS}
    samples = []
    gc.collect()
    started = time.perf_counter()
    for i in range(n + 1):
        if i in marks:
            samples.append({"records": i, "rss_mb": round(rss_mb(), 1),
                            "seconds": round(time.perf_counter() - started, 2)})
        if i < n:
            ledger.record(shapes[i % len(shapes)], tenant=f"tenant-{i % 1000}", seconds=0.9, cache_hit=i % 5 == 0,
                          **({} if mode == "baseline" else {"pipeline": f"p{i % 3}"}))
    record_seconds = time.perf_counter() - started
    closed = None
    if mode != "baseline":
        ledger.close()
        closed = round(time.perf_counter() - started, 2)
    totals = ledger.totals()
    return {
        "records": n, "rss_mb": samples, "rss_growth_mb": round(samples[-1]["rss_mb"] - samples[1]["rss_mb"], 1),
        "record_us": round(record_seconds / n * 1e6, 2), "closed_after_s": closed,
        "dropped": getattr(ledger, "dropped", None), "totals_requests": totals.requests,
        "written": _written(folder, mode), "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _written(folder: Path, mode: str) -> int | None:
    if mode in ("drop", "block"):
        with (folder / "ledger.jsonl").open("rb") as fh:
            return sum(1 for _ in fh)
    if mode == "sqlite":
        import sqlite3

        db = sqlite3.connect(folder / "ledger.sqlite")
        count = db.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
        db.close()
        return int(count)
    return None


def run_report(path: Path) -> dict[str, Any]:
    from ctxcomp.reporting.aggregate import build_report

    before = rss_mb()
    started = time.perf_counter()
    report = build_report(str(path))
    seconds = time.perf_counter() - started
    return {"records": report.totals.requests, "seconds": round(seconds, 1), "rss_before_mb": round(before, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1), "file_mb": round(path.stat().st_size / 2**20, 1),
            "skipped": report.skipped}


def environment() -> dict[str, Any]:
    flags = Path("/proc/cpuinfo").read_text(encoding="ascii")
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "avx512_bf16": "avx512_bf16" in flags, "load_average_1m": os.getloadavg()[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", required=True, choices=("baseline", "drop", "block", "sqlite", "report"))
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "ctxcomp-ledger-bench"),
                        help="folder for the ledger files (the report mode reads the block mode's file)")
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--out", required=True, help="results JSON (modes merge into it)")
    args = parser.parse_args()
    folder = Path(args.work) / args.mode
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("ledger.*"):
        stale.unlink()
    if args.mode == "report":
        result = run_report(Path(args.work) / "block" / "ledger.jsonl")
    else:
        result = run_ledger(args.mode, args.records, folder, args.baseline_rev)
    result["environment"] = environment()
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    doc.setdefault("benchmark", "ledger memory over 1M records (benchmarks/reporting/ledger_memory.py)")
    doc.setdefault("command", "python benchmarks/reporting/ledger_memory.py --mode MODE "
                              "--out benchmarks/results/ledger_memory.json  (one process per mode)")
    doc.setdefault("modes", {})[args.mode] = result
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({args.mode: result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
