"""``ctxcomp serve``: run the compressing proxy under uvicorn (thin: parse, build, run).

Importing this module is light (argparse only).
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a whole number 0..65535, got {text!r}")
    return int(text)


def _workers(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"workers must be a whole number >= 1, got {text!r}")
    return int(text)


def register(subparsers: Any) -> None:
    """Add ``ctxcomp serve`` to the top-level parser."""
    p = subparsers.add_parser(
        "serve", help="run the OpenAI-compatible compressing proxy",
        description="Compress chat requests (tool results, <documents>, the ctxcomp extension) and "
                    "forward them to one OpenAI-compatible upstream. Point OPENAI_BASE_URL at http://HOST:PORT/v1.")
    p.add_argument("--upstream", help="the upstream's OpenAI base URL, e.g. https://api.openai.com/v1 "
                                      "(overrides the config's)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8080, help="TCP port (default 8080)")
    p.add_argument("--config", help="proxy config file (.yaml/.toml/.json; see ctxcomp.proxy.config)")
    p.add_argument("--pipeline", help="pipeline spec file (overrides the config's; default: ctxcomp.defaults)")
    p.add_argument("--ledger", help="also write the ledger to this JSONL/SQLite file")
    p.add_argument("--workers", type=_workers, default=1, help="uvicorn worker processes (default 1)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from ctxcomp._deps import require
    from ctxcomp.proxy.config import ProxyConfig

    uvicorn = require("uvicorn", "server", "ctxcomp serve")
    overrides = {"upstream": args.upstream, "pipeline": args.pipeline, "ledger": args.ledger}
    config = (ProxyConfig.from_file(args.config, **overrides) if args.config
              else ProxyConfig.from_mapping({}, **overrides))
    if args.workers > 1:  # each worker builds its own app from the config
        os.environ["CTXCOMP_PROXY_CONFIG"] = config.to_json()
        uvicorn.run("ctxcomp.proxy.app:app_from_env", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level="info")
        return 0
    from ctxcomp.proxy.app import create_app

    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info")
    return 0
