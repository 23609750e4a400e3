"""Batch throughput of the engines (local, processes, ray) on NQ dev records.

Every configuration runs ``ctxcomp batch`` in a fresh process (end to end: start-up,
model loading, compression, writing), twice: on ``--limit`` requests and on ``--small``
requests. The difference gives the per-request cost, the small run the fixed start-up
cost (for ray: starting Ray and its actors). Peak RSS is sampled for every process of the
tree (psutil). Outputs are written with --no-timings, so engines can be compared byte for
byte. With --resume-check, a local run is killed once half of its output is written and
then resumed; the report says how many requests the resumed run recomputed.

Usage (under the bench lock):
    flock /work/.bench.lock python benchmarks/batch/throughput.py --limit 24 --small 2 \
        --configs local:1,processes:2,ray:1,ray:2 --out benchmarks/results/batch.json
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "nq20" / "dev.jsonl.gz"


def write_requests(data: Path, limit: int, path: Path) -> int:
    """The first ``limit`` NQ records as batch requests; returns their input tokens (approx. words)."""
    with gzip.open(data, "rt", encoding="utf-8") as fh, path.open("w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            if i >= limit:
                break
            r = json.loads(line)
            chunks = [{"text": c["text"], "id": str(c.get("id") or j), "metadata": {"title": c.get("title", "")}}
                      for j, c in enumerate(r["ctxs"])]
            out.write(json.dumps({"query": r["question"], "chunks": chunks}) + "\n")
    return limit


def run(cmd: list[str], out: Path, kill_at_lines: int | None = None) -> dict[str, Any]:
    """Run ``cmd``; sample every process's RSS; optionally kill it once ``out`` has that many lines."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    peaks: dict[int, tuple[str, int]] = {}
    killed = False
    while proc.poll() is None:
        try:
            for p in [parent, *parent.children(recursive=True)]:
                try:
                    rss = p.memory_info().rss
                    name = " ".join(p.cmdline()[:3])[-60:]
                except psutil.Error:
                    continue
                if rss > peaks.get(p.pid, ("", 0))[1]:
                    peaks[p.pid] = (name, rss)
        except psutil.Error:
            pass
        if kill_at_lines and out.exists() and out.read_bytes().count(b"\n") >= kill_at_lines:
            for p in [*parent.children(recursive=True), parent]:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            killed = True
            break
        time.sleep(0.2)
    _, err = proc.communicate()
    seconds = time.perf_counter() - started
    if proc.returncode != 0 and not killed:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    mb = sorted((rss / 2**20 for _, rss in peaks.values()), reverse=True)
    return {"seconds": seconds, "killed": killed, "peak_rss_mb_top": [round(m) for m in mb[:4]],
            "peak_rss_mb_sum": round(sum(mb))}


def batch_cmd(inp: Path, out: Path, engine: str, workers: int, args: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "ctxcomp.cli", "batch", "-i", str(inp), "-o", str(out), "--engine", engine,
            "--workers", str(workers), "--stages", args.stage, "--ratio", str(args.ratio), "--batch-size",
            str(args.batch_size), "--no-timings", "--no-progress", "--summary-json", f"{out}.summary.json"]


def measure(tmp: Path, engine: str, workers: int, args: argparse.Namespace, big: Path, small: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"engine": engine, "workers": workers}
    for label, inp, n in (("small", small, args.small), ("full", big, args.limit)):
        out = tmp / f"{engine}-{workers}-{label}.jsonl"
        stats = run(batch_cmd(inp, out, engine, workers, args), out)
        summary = json.loads(Path(f"{out}.summary.json").read_text())
        row[label] = {**stats, "requests": n, "compressed": summary["compressed"], "tokens_in": summary["tokens_in"],
                      "tokens_out": summary["tokens_out"], "cost_saved_usd": summary["cost_saved"],
                      "output_sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
        print(f"{engine} x{workers} {label}: {stats['seconds']:.1f} s", file=sys.stderr, flush=True)
    full, small_run = row["full"], row["small"]
    extra = full["seconds"] - small_run["seconds"]
    row["requests_per_s_end_to_end"] = args.limit / full["seconds"]
    row["fixed_startup_s"] = small_run["seconds"]
    row["steady_requests_per_s"] = (args.limit - args.small) / extra if extra > 0 else None
    row["steady_input_tokens_per_s"] = (full["tokens_in"] - small_run["tokens_in"]) / extra if extra > 0 else None
    return row


def resume_check(tmp: Path, args: argparse.Namespace, big: Path) -> dict[str, Any]:
    out = tmp / "resume.jsonl"
    first = run(batch_cmd(big, out, "local", 1, args), out, kill_at_lines=args.limit // 2)
    written = out.read_bytes().count(b"\n")
    second = run(batch_cmd(big, out, "local", 1, args), out)
    summary = json.loads(Path(f"{out}.summary.json").read_text())
    return {"killed_after_lines": written, "killed": first["killed"], "resumed_skipped": summary["skipped"],
            "resumed_compressed": summary["compressed"], "batch_size": args.batch_size,
            "recomputed_beyond_missing": summary["compressed"] - (args.limit - written),
            "output_sha256": hashlib.sha256(out.read_bytes()).hexdigest(), "resume_seconds": second["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--small", type=int, default=2)
    parser.add_argument("--stage", default="embedding")
    parser.add_argument("--ratio", type=float, default=4.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--configs", default="local:1,processes:2,ray:2")
    parser.add_argument("--resume-check", action="store_true")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "batch.json")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    resume: dict[str, Any] | None = None

    def save() -> None:  # after every configuration: a run cut short keeps what it measured
        digests = {r["full"]["output_sha256"] for r in rows}
        result = {
            "command": "python " + " ".join([str(Path(sys.argv[0]).relative_to(REPO)
                                                 if Path(sys.argv[0]).is_absolute() else sys.argv[0]), *sys.argv[1:]]),
            "machine": f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), shared with "
                       "other jobs: load average before/after below; no GPU",
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "stage": args.stage, "ratio": args.ratio, "batch_size": args.batch_size, "requests": args.limit,
            "outputs_identical_across_engines": len(digests) == 1 and (resume is None or
                                                                       resume["output_sha256"] in digests),
            "runs": rows, "failed": failed, "resume": resume,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        big, small = tmp / "requests.jsonl", tmp / "small.jsonl"
        write_requests(args.data, args.limit, big)
        write_requests(args.data, args.small, small)
        for config in args.configs.split(","):
            engine, _, workers = config.partition(":")
            try:
                rows.append(measure(tmp, engine, int(workers or 1), args, big, small))
            except RuntimeError as exc:  # e.g. Ray's raylet timing out on an overloaded machine
                failed.append({"engine": engine, "workers": int(workers or 1), "error": str(exc)[-1500:]})
            save()
        if args.resume_check:
            resume = resume_check(tmp, args, big)
            save()
    print(json.dumps({r["engine"] + f"x{r['workers']}": round(r["requests_per_s_end_to_end"], 3) for r in rows}))


if __name__ == "__main__":
    main()
