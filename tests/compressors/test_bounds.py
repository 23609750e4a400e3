"""BM25 cuts for oversized requests."""

from __future__ import annotations

from ctxcomp.compressors.bounds import best_by_bm25, fit_by_bm25

TEXTS = ["the river bridge", "a quiet garden", "the vault code is 7421", "vault doors", "東京の首都"]


def test_best_by_bm25_keeps_input_order() -> None:
    assert best_by_bm25("vault code", TEXTS, 2) == [2, 3]
    assert best_by_bm25("首都", TEXTS, 1) == [4]
    assert best_by_bm25("", TEXTS, 2) == [0, 1]  # no query words: the head


def test_fit_by_bm25_skips_what_does_not_fit() -> None:
    assert fit_by_bm25("vault code", TEXTS, [5, 5, 50, 5, 5], 20) == [0, 1, 3, 4]
    assert fit_by_bm25("vault code", TEXTS, [5, 5, 10, 5, 5], 15) == [2, 3]
    assert fit_by_bm25("x", TEXTS, [50] * 5, 10) == []
