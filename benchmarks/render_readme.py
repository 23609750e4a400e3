"""Render benchmarks/results/*.json into README.md (same as `ctxcomp bench render`)."""

import sys

from ctxcomp.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "render", *sys.argv[1:]]))
