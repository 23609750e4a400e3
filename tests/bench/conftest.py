"""Fixtures for the bench tests: paths of the shared dev data (skip when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("CTXCOMP_SHARED_DIR", REPO.parent / "shared")) / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared dev data not found at {path}")
    return path


@pytest.fixture(scope="session")
def nq_path() -> Path:
    return _need(SHARED_DATA / "nq20" / "dev.jsonl.gz")


@pytest.fixture(scope="session")
def locomo_path() -> Path:
    return _need(SHARED_DATA / "locomo" / "dev.json")


@pytest.fixture(scope="session")
def haystack_dir() -> Path:
    return _need(SHARED_DATA / "haystack" / "PaulGrahamEssays")


@pytest.fixture(scope="session")
def needles_path() -> Path:
    return _need(SHARED_DATA / "haystack" / "needles.json")


@pytest.fixture(scope="session")
def nq_examples(nq_path: Path) -> list:
    from ctxcomp.bench.data import load_nq

    return load_nq(nq_path)
