"""Shared fixtures: the NQ dev slice (if present beside the repo) and a real MiniLM."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CTXCOMP_SHARED_DIR", REPO.parent / "shared"))
NQ_DEV = SHARED / "data" / "nq20" / "dev.jsonl.gz"


@pytest.fixture(scope="session")
def nq_records() -> list[dict]:
    """The first 10 records of the NQ dev slice (skips when ../shared is absent)."""
    if not NQ_DEV.exists():
        pytest.skip(f"NQ dev data not found at {NQ_DEV}")
    with gzip.open(NQ_DEV, "rt", encoding="utf-8") as fh:
        return [json.loads(next(fh)) for _ in range(10)]


@pytest.fixture(scope="session")
def demo_chunks():
    """The 20-passage sample shipped with ctxcomp (always present)."""
    from importlib import resources

    from ctxcomp.io import read_requests

    with resources.as_file(resources.files("ctxcomp").joinpath("data/demo.jsonl")) as path:
        return list(read_requests(path)[0].chunks)


@pytest.fixture(scope="session")
def embedding_compressor():
    """The real embedding compressor on the shipped MiniLM, loaded once."""
    from ctxcomp.compressors.embedding import EmbeddingCompressor

    comp = EmbeddingCompressor()
    comp.setup()
    return comp
