"""``ctxcomp report`` and ``ctxcomp serve-metrics`` (thin: parse, call, print).

Importing this module is light (argparse only); the commands import what they use.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any


def _number(cast: Callable[[str], float], minimum: float, *, strict: bool = False) -> Callable[[str], Any]:
    """An argparse type: ``cast(text)`` that is >= ``minimum`` (> with ``strict``)."""
    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if cast is int else ''}number") from None
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum:g}, got {text}")
        return value

    return parse


_fraction = _number(float, 0)
_count = _number(int, 0)


def _audit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--audit-tolerance", type=_fraction, default=0.05,
                   help="relative difference of billed vs sent input tokens allowed (default 0.05)")
    p.add_argument("--audit-min-tokens", type=_count, default=16,
                   help="absolute difference always allowed, in tokens (default 16)")


def register(subparsers: Any) -> None:
    """Add ``ctxcomp report`` and ``ctxcomp serve-metrics`` to the top-level parser."""
    report = subparsers.add_parser(
        "report", help="summarize a ledger file (terminal, or a self-contained HTML page)",
        description="Savings, latency, cache and usage audit of a ledger written with --ledger or a Ledger sink.")
    report.add_argument("--ledger", "-l", required=True, help="ledger file (JSONL or SQLite)")
    report.add_argument("--html", help="also write a self-contained HTML report here")
    report.add_argument("--since", help="only records after this: a duration (30m, 24h, 7d, 2w) "
                                        "or an ISO date/time (UTC unless it has an offset)")
    report.add_argument("--by", choices=("model", "tenant", "pipeline"), default="model",
                        help="group the terminal table by (default model)")
    _audit_options(report)
    report.set_defaults(func=cmd_report)

    serve = subparsers.add_parser(
        "serve-metrics", help="serve Prometheus metrics of a ledger file over HTTP",
        description="Read a ledger file, follow what is appended, serve /metrics (Ctrl-C stops).")
    serve.add_argument("--ledger", "-l", required=True, help="ledger file (JSONL or SQLite; may not exist yet)")
    serve.add_argument("--port", type=_count, default=9464, help="TCP port (default 9464; 0: any free port)")
    serve.add_argument("--addr", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--poll", type=_number(float, 0, strict=True), default=1.0, help="seconds between reads of the file (default 1)")
    serve.add_argument("--max-tenants", type=_number(int, 1), default=100, help="distinct tenant labels (default 100)")
    serve.add_argument("--hash-tenants", action="store_true", help="label tenants by a hash, not their name")
    _audit_options(serve)
    serve.set_defaults(func=cmd_serve_metrics)


def _audit(args: argparse.Namespace) -> Any:
    from ctxcomp.reporting.audit import AuditConfig

    return AuditConfig(tolerance=args.audit_tolerance, min_tokens=args.audit_min_tokens)


def cmd_report(args: argparse.Namespace) -> int:
    from ctxcomp.reporting.aggregate import build_report
    from ctxcomp.reporting.reader import parse_since
    from ctxcomp.reporting.text import render_summary

    since = parse_since(args.since) if args.since else None
    report = build_report(args.ledger, since, _audit(args))
    for problem in report.problems:
        print(f"ctxcomp: warning: {problem}", file=sys.stderr)
    print(render_summary(report, args.by))
    if args.html:
        from ctxcomp.reporting.html import write_html

        print(f"html report: {write_html(report, args.html)}", file=sys.stderr)
    return 0


def cmd_serve_metrics(args: argparse.Namespace) -> int:
    from ctxcomp.reporting.labels import LabelPolicy
    from ctxcomp.reporting.serve import serve_metrics

    labels = LabelPolicy(max_tenants=args.max_tenants, hash_tenants=args.hash_tenants)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
        signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def ready(port: int) -> None:
        print(f"serving metrics of {args.ledger} on http://{args.addr}:{port}/metrics", file=sys.stderr, flush=True)

    serve_metrics(args.ledger, port=args.port, addr=args.addr, poll=args.poll, labels=labels, audit=_audit(args),
                  stop=stop, on_ready=ready)
    return 0
