"""``ctxcomp bench``: the nq, needle and locomo suites, and ``render`` for the README.

Importing this module is light (argparse only); the suites import what they need when
they run. If :mod:`ctxcomp.bench.cache` exists, its ``register`` adds the ``cache`` suite.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_NQ_METHODS = "none,truncate,random,embedding"


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"ratios must be numbers >= 1, got {text!r}")
    return [int(v) if v.is_integer() else v for v in values]  # type: ignore[misc]


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"values must be > 0, got {text!r}")
    return values


def _positive(text: str) -> int:
    return _ints(text)[0]


def _common(p: argparse.ArgumentParser, methods: str, ratio: str) -> None:
    p.add_argument("--methods", default=methods,
                   help=f"comma-separated methods; name or name:key=value,... (default {methods})")
    p.add_argument("--ratio", type=_floats, default=_floats(ratio), help=f"target ratios (default {ratio})")
    p.add_argument("--model", default="gpt-4o-mini", help="target model whose tokenizer counts (default gpt-4o-mini)")
    p.add_argument("--out", help="results JSON (default benchmarks/results/<suite>.json if that folder exists)")
    p.add_argument("--plot", help="PNG plot of answer recall vs achieved ratio")
    p.add_argument("--plot-tokens", help="PNG plot of answer recall vs tokens kept")
    p.add_argument("--plot-latency", help="PNG plot of answer recall vs p50 latency")
    p.add_argument("--seed", type=int, default=0, help="seed of the random baseline (default 0)")
    p.add_argument("--peers-dir", help="folder with llmlingua_compat.py (default: benchmarks/peers of the checkout)")
    p.add_argument("--llmlingua-model", default="smollm2-135m",
                   help="model folder or shipped name for the llmlingua peers (default smollm2-135m)")
    p.add_argument("--interleave", action="store_true",
                   help="methods take turns on each example (latencies comparable on a shared machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--ledger", help="append a ledger record per compression to this JSONL (or .sqlite) file "
                                    "(tenant 'bench', pipeline = the method spec)")


def register(subparsers: Any) -> None:
    """Add ``ctxcomp bench`` to the top-level parser."""
    bench = subparsers.add_parser("bench", help="evaluate compressors and peers on real data",
                                  description="Model-free benchmarks; every method runs to the same budget.")
    sub = bench.add_subparsers(dest="suite", required=True)

    nq = sub.add_parser("nq", help="multi-document QA (20 passages per question)")
    nq.add_argument("--data", required=True, help="JSONL(.gz) in the Lost-in-the-Middle format")
    nq.add_argument("--limit", type=_positive, help="at most N questions, equally many per gold position")
    _common(nq, DEFAULT_NQ_METHODS, "4,10")
    nq.set_defaults(func=cmd_nq)

    needle = sub.add_parser("needle", help="needle in a haystack")
    needle.add_argument("--haystack", required=True, help="folder of .txt files")
    needle.add_argument("--needles", required=True, help="needles.json (single_needle is used)")
    needle.add_argument("--lengths", type=_ints, default=[2000, 4000, 8000, 16000], help="context lengths in tokens")
    needle.add_argument("--depths", type=_positive, default=10, help="number of evenly spaced depths (default 10)")
    needle.add_argument("--chunk-tokens", type=_positive, default=200, help="haystack chunk size (default 200)")
    _common(needle, DEFAULT_NQ_METHODS, "50")
    needle.set_defaults(func=cmd_needle)

    locomo = sub.add_parser("locomo", help="long-conversation memory QA (LoCoMo format)")
    locomo.add_argument("--data", required=True, help="LoCoMo JSON (a list of conversations)")
    locomo.add_argument("--limit", type=_positive, help="at most N questions, equally many per category")
    locomo.add_argument("--categories", type=_ints, default=[1, 2, 3, 4], help="QA categories (default 1,2,3,4)")
    _common(locomo, DEFAULT_NQ_METHODS, "10")
    locomo.set_defaults(func=cmd_locomo)

    render = sub.add_parser("render", help="render benchmarks/results/*.json into README.md's results region")
    render.add_argument("--results", default="benchmarks/results", help="results folder")
    render.add_argument("--readme", default="README.md", help="README with the results markers")
    render.add_argument("--check", action="store_true", help="exit 1 if the README is not up to date")
    render.set_defaults(func=cmd_render)

    merge = sub.add_parser("merge", help="merge results files of separate runs on the same examples")
    merge.add_argument("inputs", nargs="+", help="results JSON files (same suite, data and model)")
    merge.add_argument("--out", required=True, help="merged results JSON")
    merge.add_argument("--plot", help="PNG plot of the merged results")
    merge.add_argument("--plot-tokens", help="PNG plot of answer recall vs tokens kept")
    merge.add_argument("--plot-latency", help="PNG plot of answer recall vs p50 latency")
    merge.set_defaults(func=cmd_merge)

    try:
        cache = importlib.import_module("ctxcomp.bench.cache")
    except ModuleNotFoundError as exc:
        if exc.name != "ctxcomp.bench.cache":
            raise
    else:
        cache.register(sub)


def _default_out(args: argparse.Namespace, suite: str) -> Path:
    if args.out:
        return Path(args.out)
    folder = Path("benchmarks/results")
    return folder / f"{suite}.json" if folder.is_dir() else Path(f"bench-{suite}.json")


def _run(args: argparse.Namespace, suite: str, data: Any, examples: list[Any],
         group_by: tuple[str, ...] = (), plot_x: str = "ratio_achieved") -> int:
    from ctxcomp.bench.methods import build_method, split_specs
    from ctxcomp.bench.report import document, environment, markdown_table, plot, write_json
    from ctxcomp.bench.runner import run_suite

    options = {"peers_dir": args.peers_dir, "llmlingua_model": args.llmlingua_model, "seed": args.seed}
    methods = [build_method(spec, options) for spec in split_specs(args.methods)]
    out = _default_out(args, suite)
    settings = {k: v for k, v in vars(args).items() if k not in ("func", "command", "suite", "verbose", "ledger")}
    env = environment()

    def save(rows: list[dict[str, Any]]) -> None:
        write_json(out, document(suite, data, rows, {**env, "finished": False}, settings))

    ledger = None
    if args.ledger:
        from ctxcomp.reporting.ledger import Ledger

        ledger = Ledger(args.ledger, on_full="block")
    try:
        rows = run_suite(methods, examples, args.ratio, args.model, group_by, not args.no_progress, save,
                         interleave=args.interleave, ledger=ledger)
    finally:
        if ledger is not None:
            ledger.close()
    env["load_average_1m_end"] = environment()["load_average_1m"]
    write_json(out, document(suite, data, rows, {**env, "finished": True}, settings))
    print(markdown_table(rows, group_by))
    print(f"results: {out}", file=sys.stderr)
    for path, x in ((args.plot, plot_x), (getattr(args, "plot_tokens", None), "tokens_out_mean"),
                    (getattr(args, "plot_latency", None), "latency_p50")):
        if path:
            plot(rows, path, f"ctxcomp bench {suite}", x)
            print(f"plot: {path}", file=sys.stderr)
    return 0


def cmd_nq(args: argparse.Namespace) -> int:
    from ctxcomp.bench.data import load_nq, stratified

    examples = stratified(load_nq(args.data), args.limit)
    return _run(args, "nq", {"path": str(args.data), "examples": len(examples),
                             "ids": [e.id for e in examples]}, examples)


def cmd_needle(args: argparse.Namespace) -> int:
    from ctxcomp.bench.data import needle_examples
    from ctxcomp.tokens import get_counter

    examples = needle_examples(args.haystack, args.needles, args.lengths, args.depths,
                               get_counter(args.model), args.chunk_tokens)
    data = {"haystack": str(args.haystack), "needles": str(args.needles), "lengths": args.lengths,
            "depths": args.depths}
    return _run(args, "needle", data, examples, group_by=("length",), plot_x="length")


def cmd_locomo(args: argparse.Namespace) -> int:
    from ctxcomp.bench.data import load_locomo, stratified

    examples = stratified(load_locomo(args.data, args.categories), args.limit)
    return _run(args, "locomo", {"path": str(args.data), "examples": len(examples),
                                 "ids": [e.id for e in examples]}, examples)


def cmd_merge(args: argparse.Namespace) -> int:
    import json

    from ctxcomp.bench.render import GROUP_BY
    from ctxcomp.bench.report import markdown_table, merge, plot, write_json
    from ctxcomp.errors import InputError

    docs = []
    for path in args.inputs:
        try:
            docs.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read results file {path}: {exc}") from exc
    doc = merge(docs)
    write_json(args.out, doc)
    group_by = GROUP_BY.get(doc["suite"], ())
    print(markdown_table(doc["results"], group_by))
    for path, x in ((args.plot, "length" if group_by else "ratio_achieved"), (args.plot_tokens, "tokens_out_mean"),
                    (args.plot_latency, "latency_p50")):
        if path:
            plot(doc["results"], path, f"ctxcomp bench {doc['suite']}", x)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from ctxcomp.bench.render import update_readme

    changed = update_readme(Path(args.readme), Path(args.results), check=args.check)
    if args.check and changed:
        print(f"{args.readme} is not up to date; run: ctxcomp bench render", file=sys.stderr)
        return 1
    print(f"{args.readme}: {'updated' if changed else 'up to date'}", file=sys.stderr)
    return 0
