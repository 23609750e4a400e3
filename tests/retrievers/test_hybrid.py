"""The embedded hybrid retriever on the real MiniLM: fusion, persistence, staleness."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ctxcomp import ConfigError, InputError
from ctxcomp.retrievers.hybrid import HybridConfig, HybridRetriever

pytestmark = pytest.mark.model


def test_lexical_match_wins_for_a_rare_code(small_index) -> None:
    best = small_index.retrieve("XJ-42", k=2)[0]
    assert best.id == "t3" and best.metadata["bm25_rank"] == 1
    assert best.metadata["n"] == 3  # the caller's metadata is carried


def test_dense_match_wins_for_a_paraphrase(small_index) -> None:
    best = small_index.retrieve("how much is the yearly fee to join", k=3)[0]
    assert best.id == "t1" and best.metadata["dense_rank"] == 1


def test_scores_are_reciprocal_rank_fusion(small_index) -> None:
    out = small_index.retrieve("telescope dome", k=6)
    scores = [c.score for c in out]
    assert scores == sorted(scores, reverse=True)
    top = out[0]
    expected = sum(1 / (60 + r) for r in (top.metadata["bm25_rank"], top.metadata["dense_rank"]) if r)
    assert top.score == pytest.approx(expected)


def test_save_load_round_trip(small_index, tmp_path) -> None:
    small_index.save(tmp_path / "idx")
    loaded = HybridRetriever.load(tmp_path / "idx")
    assert np.array_equal(loaded.vectors, small_index.vectors)
    q = "when is the meteor watch"
    assert [(c.id, c.score) for c in loaded.retrieve(q, 3)] == [(c.id, c.score) for c in small_index.retrieve(q, 3)]
    with pytest.raises(ConfigError):
        HybridRetriever.load(tmp_path / "idx", config=HybridConfig(chunk_words=7))


def test_folder_index_is_reused_then_rebuilt_on_change(tmp_path, caplog) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("The library opens at nine. It closes at five.", encoding="utf-8")
    (docs / "b.txt").write_text("Parking is free on Sundays. Bikes go in the yard.", encoding="utf-8")
    idx = tmp_path / "index"
    first = HybridRetriever.from_folder(docs, index_dir=idx)
    assert set(first.files) == {"a.md", "b.txt"} and (idx / "manifest.json").exists()
    with caplog.at_level(logging.INFO, logger="ctxcomp.retrievers.hybrid"):
        HybridRetriever.from_folder(docs, index_dir=idx)
    assert any("is current" in r.message for r in caplog.records)
    caplog.clear()
    (docs / "b.txt").write_text("Parking costs two euros on Sundays.", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="ctxcomp.retrievers.hybrid"):
        third = HybridRetriever.from_folder(docs, index_dir=idx)
    assert any("embedded 1 of 2 chunks" in r.message for r in caplog.records)
    assert third.retrieve("parking price", k=1)[0].text.startswith("Parking costs")
    assert HybridRetriever.load(idx).files == third.files


async def test_async_equals_sync(small_index) -> None:
    q = "can kids come at night"
    assert [c.id for c in await small_index.aretrieve(q, 2)] == [c.id for c in small_index.retrieve(q, 2)]


def test_bad_input(small_index, tmp_path) -> None:
    with pytest.raises(InputError):
        small_index.retrieve("  ")
    with pytest.raises(InputError):
        small_index.retrieve("dome", k=0)
    with pytest.raises(InputError):
        HybridRetriever.from_texts(["", "   "])
    with pytest.raises(InputError):
        HybridRetriever.from_texts("one text")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        HybridRetriever.load(tmp_path / "nothing")
    with pytest.raises(ConfigError):
        HybridConfig(depth=0)
