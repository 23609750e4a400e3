"""``ctxcomp batch``: compress a file of requests on an engine, resumably.

Thin over :func:`ctxcomp.batch.compress_file`: it parses arguments, builds the budget and
the spec, and prints the summary on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ctxcomp.batch.engines import ENGINES
from ctxcomp.types import DEFAULT_MODEL, Budget


def _positive(kind: type) -> Any:
    def parse(value: str) -> Any:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if not number > 0 or number != number:
            raise argparse.ArgumentTypeError(f"must be > 0, got {value!r}")
        return number
    return parse


def _ratio(value: str) -> float:
    number = _positive(float)(value)
    if number < 1 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"the ratio must be a finite number >= 1, got {value!r}")
    return float(number)


def register(sub: Any) -> None:
    """Add the ``batch`` subcommand."""
    p = sub.add_parser(
        "batch", help="compress a JSONL/Parquet file of requests (resumable; local, processes or ray)",
        description="Compress every {query, chunks, budget?} record of --input into --output (JSONL or Parquet "
                    "by suffix). A re-run skips the requests already in --output; bad records go to --errors.")
    p.add_argument("--input", "-i", required=True, help="JSONL or Parquet file of requests")
    p.add_argument("--output", "-o", required=True, help="JSONL or Parquet output (appended to on resume)")
    p.add_argument("--engine", choices=ENGINES, default="local", help="where to run (default: local)")
    p.add_argument("--workers", "-w", type=_positive(int), default=1, help="processes or Ray actors (default 1)")
    p.add_argument("--batch-size", type=_positive(int), default=16, help="requests per micro-batch (default 16)")
    p.add_argument("--pipeline", "-p", help="pipeline spec (.yaml/.toml/.json); default: the default pipeline")
    p.add_argument("--stages", help="comma-separated stage names instead of --pipeline")
    p.add_argument("--planner", help="planner for --stages (default geometric)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--budget", "-b", type=_positive(int), help="max output tokens per request")
    size.add_argument("--ratio", type=_ratio, help="compression factor >= 1 per request")
    p.add_argument("--model", "-m", help=f"target model for tokens and $ (default: the spec's, or {DEFAULT_MODEL})")
    p.add_argument("--errors", help="error file (default: <output>.errors.jsonl)")
    p.add_argument("--cache", help="cache for every worker: redis://URL, memory or none (default: the spec's)")
    p.add_argument("--tenant", help="tenant for cache keys (default: the spec's)")
    p.add_argument("--no-timings", action="store_true", help="write stage seconds as 0 (byte-identical reruns)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--summary-json", help="also write the summary as JSON to this file")
    ray = p.add_argument_group("ray engine")
    ray.add_argument("--ray-address", help="join this Ray cluster (default: start a local instance)")
    ray.add_argument("--num-cpus", type=_positive(float), default=1.0, help="CPUs per actor (default 1)")
    ray.add_argument("--num-gpus", type=float, default=0.0, help="GPUs per actor (default 0)")
    ray.add_argument("--window", type=_positive(int), default=256, help="micro-batches per Ray dataset")
    p.set_defaults(func=cmd_batch)


def _spec(args: argparse.Namespace) -> Any:
    from ctxcomp.config import load_spec
    from ctxcomp.errors import ConfigError

    if args.pipeline and args.stages:
        raise ConfigError("give --pipeline or --stages, not both")
    if args.stages:
        spec: dict[str, Any] = {"stages": [s.strip() for s in args.stages.split(",") if s.strip()]}
        if args.planner:
            spec["planner"] = args.planner
        return load_spec(spec)
    if args.planner:
        raise ConfigError("--planner goes with --stages (a --pipeline spec names its own planner)")
    if args.pipeline:
        return load_spec(args.pipeline)
    from ctxcomp.defaults import default_spec

    return load_spec(default_spec())


def _cache(value: str | None) -> Any:
    if value is None:
        return None
    if value in ("none", "off"):
        return False
    if value == "memory":
        return {"backend": "memory"}
    return value  # a redis:// URL (the pipeline checks it)


def cmd_batch(args: argparse.Namespace) -> int:
    from ctxcomp.batch.api import compress_file

    spec = _spec(args)
    model = args.model or (spec.budget.model if spec.budget else DEFAULT_MODEL)
    if args.budget is not None:
        budget = Budget(max_tokens=args.budget, model=model)
    elif args.ratio is not None:
        budget = Budget(ratio=args.ratio, model=model)
    elif spec.budget is not None:
        budget = Budget(max_tokens=spec.budget.max_tokens, ratio=spec.budget.ratio, model=model)
    else:
        print("ctxcomp: error: give --budget or --ratio (or a --pipeline spec with a budget)", file=sys.stderr)
        return 2
    ray = {"ray_address": args.ray_address, "num_cpus": args.num_cpus, "num_gpus": args.num_gpus,
           "window": args.window} if args.engine == "ray" else None
    summary = compress_file(
        args.input, args.output, pipeline=spec, budget=budget, engine=args.engine, workers=args.workers,
        batch_size=args.batch_size, errors=args.errors, cache=_cache(args.cache), tenant=args.tenant,
        timings=not args.no_timings, progress=not args.no_progress, ray=ray)
    print(summary.render(), file=sys.stderr)
    if summary.errors:
        print(f"{summary.errors:,} bad records: see {args.errors or f'{args.output}.errors.jsonl'}", file=sys.stderr)
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary.to_dict(), indent=2) + "\n", encoding="utf-8")
    return 0
