"""Batch fixtures: request records built from the shipped sample (always present)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: A pipeline with no model: fast, deterministic, still planned and batched.
TRUNCATE = {"stages": ["truncate"]}
QUERIES = ["dragon ball episodes", "who created dragon ball", "anime series length", "when did it air",
           "voice actors of goku", "manga chapters", "video games", "movies of the series"]


def make_records(demo_chunks: list[Any], n: int) -> list[dict[str, Any]]:
    """``n`` distinct requests: a query and a rotating window of the sample's chunks."""
    out = []
    for i in range(n):
        window = [demo_chunks[(i + j) % len(demo_chunks)] for j in range(3 + i % 4)]
        chunks: list[Any] = [{"text": c.text, "id": c.id, "metadata": dict(c.metadata)} for c in window]
        if i % 5 == 0:
            chunks = [c["text"] for c in chunks]  # plain strings are records too
        out.append({"query": f"{QUERIES[i % len(QUERIES)]} ({i})", "chunks": chunks})
    return out


def write_jsonl(path: Path, records: list[Any], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def records(demo_chunks: list[Any]) -> list[dict[str, Any]]:
    return make_records(demo_chunks, 24)
