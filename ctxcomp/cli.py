"""The ``ctxcomp`` command: ``compress``, ``demo``, and subcommands other modules add.

Thin by design: it parses arguments, calls the public API and prints. User errors exit
with status 2 and one line on stderr (no traceback); backend failures exit with 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

from ctxcomp.errors import ConfigError, CtxcompError, InputError, UnknownModelError
from ctxcomp.redact import redact
from ctxcomp.types import DEFAULT_MODEL, Budget

#: Modules that add a subcommand: each defines ``register(subparsers)``.
PLUGIN_COMMANDS = ("ctxcomp.bench.cli", "ctxcomp.models.cli", "ctxcomp.reporting.cli", "ctxcomp.batch.cli",
                   "ctxcomp.proxy.cli")
DEMO_BUDGET = 300


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of tokens") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"the budget must be > 0 tokens, got {number}")
    return number


def _add_compress(sub: Any) -> None:
    p = sub.add_parser("compress", help="compress chunks for a query",
                       description="Compress a JSONL file of chunks (or of {query, chunks} requests).")
    p.add_argument("--query", "-q", help="the query (required unless every line carries one)")
    p.add_argument("--input", "-i", required=True, help="JSONL file, or - for stdin")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--budget", "-b", type=_positive_int, help="max output tokens")
    size.add_argument("--ratio", type=_ratio, help="compression factor >= 1 instead of --budget")
    p.add_argument("--pipeline", "-p", help="pipeline spec (.yaml/.toml/.json)")
    p.add_argument("--stages", help="comma-separated stage names, coarse to fine (default: the planned cascade, "
                                    "see ctxcomp.defaults)")
    p.add_argument("--planner", help="planner name for --stages (default: geometric; e.g. knapsack)")
    p.add_argument("--model", "-m", default=None, help=f"target model for tokens and $ (default {DEFAULT_MODEL})")
    p.add_argument("--price-in", type=_price, help="USD per 1M input tokens for --model (overrides)")
    p.add_argument("--json", action="store_true", help="print JSON (one object per request)")
    p.add_argument("--ledger", help="append a ledger record per request to this JSONL (or .sqlite) file")
    p.add_argument("--tenant", help="tenant for the ledger and the cache (default: the spec's, or 'default')")
    p.set_defaults(func=cmd_compress)


def _add_demo(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the default pipeline on the shipped sample")
    p.add_argument("--budget", "-b", type=_positive_int, default=DEMO_BUDGET)
    p.add_argument("--model", "-m", default=DEFAULT_MODEL)
    p.set_defaults(func=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctxcomp", description="Compress LLM context; report the savings.")
    parser.add_argument("--verbose", "-v", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_compress(sub)
    _add_demo(sub)
    for module in PLUGIN_COMMANDS:
        try:
            plugin = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if not exc.name or not module.startswith(exc.name):  # a real import bug inside it
                raise
            continue
        plugin.register(sub)
    return parser


def _pipeline(args: argparse.Namespace, budget: Budget | None, ledger: Any = None) -> Any:
    from ctxcomp.pipeline import Pipeline

    extra: dict[str, Any] = {"ledger": ledger} if ledger is not None else {}
    if args.tenant:
        extra["tenant"] = args.tenant
    if args.pipeline:
        overrides = {"budget": budget} if budget is not None else {}
        return Pipeline.from_spec(args.pipeline, **overrides, **extra)
    if args.stages:
        stages = [s.strip() for s in args.stages.split(",") if s.strip()]
        return Pipeline(stages, budget, planner=args.planner, **extra)
    if args.planner:
        raise ConfigError("--planner goes with --stages (a --pipeline spec names its own planner)")
    from ctxcomp.defaults import default_pipeline

    return default_pipeline(budget=budget, **extra)


def _check_model(model: str, price_in: float | None) -> None:
    from ctxcomp.pricing import Price, price_of, set_price

    if price_in is not None:
        set_price(model, Price(price_in))
        return
    price_of(model)  # raises UnknownModelError with the closest names


def cmd_compress(args: argparse.Namespace) -> int:
    from ctxcomp.io import read_requests

    spec_budget = None
    if args.pipeline:
        from ctxcomp.config import load_spec

        spec_budget = load_spec(args.pipeline).budget
    # The model: --model, else the spec's budget model, else the default.
    model = args.model or (spec_budget.model if spec_budget else DEFAULT_MODEL)
    _check_model(model, args.price_in)
    budget = None
    if args.budget is not None:
        budget = Budget(max_tokens=args.budget, model=model)
    elif args.ratio is not None:
        budget = Budget(ratio=args.ratio, model=model)
    elif spec_budget is not None and args.model:
        budget = Budget(max_tokens=spec_budget.max_tokens, ratio=spec_budget.ratio, model=model)
    elif spec_budget is None:
        raise SystemExit(_usage_error("give --budget or --ratio (or a --pipeline spec with a budget)"))
    requests = read_requests(args.input)
    missing = [i for i, r in enumerate(requests) if r.query is None and args.query is None]
    if missing:
        raise SystemExit(_usage_error("--query is required for a file of chunks"))
    ledger = _ledger(args.ledger)
    try:
        pipe = _pipeline(args, budget, ledger)
        _check_requests(requests, args.query, pipe.requires_query)  # every line, before any output
        _compress_all(args, requests, pipe)
    finally:
        if ledger is not None:
            ledger.close()
    return 0


def _ledger(path: str | None) -> Any:
    if not path:
        return None
    from ctxcomp.reporting.ledger import Ledger

    return Ledger(path, on_full="block")  # a CLI run may wait for the disk; it must lose nothing


def _compress_all(args: argparse.Namespace, requests: Sequence[Any], pipe: Any) -> None:
    from tqdm import tqdm

    bar = tqdm(requests, desc="compress", unit="query", disable=len(requests) < 2, file=sys.stderr)
    for request in bar:
        query = request.query if request.query is not None else args.query
        try:
            ctx = pipe.compress(query, list(request.chunks))
        except InputError as exc:
            raise InputError(str(exc), line=request.line) from None
        if args.json:
            print(json.dumps({"query": query, **ctx.to_dict()}, ensure_ascii=False))
        else:
            print(ctx.text)
            if len(requests) > 1:
                print("\n" + "-" * 40)


def _check_requests(requests: Sequence[Any], default_query: str | None, needs_query: bool) -> None:
    """Validate every request's query and chunks, naming the line of a bad one."""
    from ctxcomp.inputs import check_query, coerce_chunks

    for request in requests:
        try:
            check_query(request.query if request.query is not None else default_query, needs_query)
            coerce_chunks(list(request.chunks))
        except InputError as exc:
            raise InputError(str(exc), line=request.line) from None


def _finite(minimum: float, what: str) -> Any:
    """An argparse type: a finite float >= ``minimum``."""
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if not math.isfinite(number) or number < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be a finite number >= {minimum:g}, got {value!r}")
        return number
    return parse


_price = _finite(0, "the price (USD per 1M tokens)")
_ratio = _finite(1, "the ratio")


def cmd_demo(args: argparse.Namespace) -> int:
    from ctxcomp.defaults import default_pipeline
    from ctxcomp.io import read_requests
    from ctxcomp.reporting.text import render_compression

    data = resources.files("ctxcomp").joinpath("data")
    sample = json.loads(data.joinpath("demo_query.json").read_text("utf-8"))
    with resources.as_file(data.joinpath("demo.jsonl")) as path:
        chunks = read_requests(path)[0].chunks
    _check_model(args.model, None)
    pipe = default_pipeline(budget=Budget(max_tokens=args.budget, model=args.model))
    print(f"loading the default pipeline ({pipe.name}: {', '.join(s.name for s in pipe.stages)}) ...", file=sys.stderr)
    for part in (pipe.planner, *pipe.stages):
        getattr(part, "setup", lambda: None)()
    started = time.perf_counter()
    ctx = pipe.compress(sample["query"], list(chunks))
    seconds = time.perf_counter() - started
    titles = {c.id: str(c.metadata.get("title", "")) for c in chunks}
    print(render_compression(sample["query"], ctx, seconds, titles))
    kept = [a for a in sample["answers"] if a.lower() in ctx.text.lower()]
    print(f"gold answer {sample['answers'][0]!r} {'kept' if kept else 'LOST'} in the compressed context")
    return 0


def _usage_error(message: str) -> int:
    print(f"ctxcomp: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except UnknownModelError as exc:
        return _usage_error(f"{exc} (or pass --price-in for it)")
    except CtxcompError as exc:
        print(f"ctxcomp: error: {redact(exc)}", file=sys.stderr)
        return 1 if exc.is_retryable else 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
