import math

import pytest

from ctxcomp.bench.metrics import Record, aggregate, contains_answer, normalize_answer, percentile, score
from ctxcomp.types import CompressedChunk


def test_normalize_is_squad_style():
    assert normalize_answer("The  Eiffel Tower, in Paris!") == "eiffel tower in paris"
    assert normalize_answer("An apple a day") == "apple day"


def test_contains_answer_needs_whole_words():
    assert contains_answer("Released on May 18, 2018.", ["may 18 2018"])
    assert not contains_answer("in 1990 it was", ["199"])
    assert contains_answer("x", ["nope", "X"])
    assert not contains_answer("anything", [])
    assert not contains_answer("the", ["the"])  # normalizes to empty: never a hit


def _chunk(source_id, text, spans):
    return CompressedChunk(text=text, source_id=source_id, spans=tuple(spans), tokens_in=10, tokens_out=2)


def test_score_gold_uses_only_gold_provenance():
    chunks = (_chunk("p0", "Paris is nice", [(0, 13)]), _chunk("p1", "capital", [(0, 7)]))
    hit, gold_hit, evidence = score("Paris is nice\n\ncapital", chunks, ["Paris"], {"p1": 20})
    assert hit is True and gold_hit is False
    assert evidence == 0.0  # 7 of 20 characters < half
    hit, gold_hit, evidence = score("Paris is nice", chunks, ["Paris"], {"p0": 20})
    assert gold_hit is True and evidence == 1.0


def test_score_without_provenance_is_none():
    assert score("Paris", None, ["paris"], {"p0": 5}) == (True, None, None)


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 90) == 5
    with pytest.raises(ValueError):
        percentile([], 50)


def test_aggregate_counts_violations_and_medians():
    records = [
        Record(100, 25, 25, 0.1, True, True, 1.0),
        Record(100, 50, 25, 0.3, False, None, None),
        Record(200, 40, 50, 0.2, True, False, 0.0),
    ]
    row = aggregate(records)
    assert row["n"] == 3
    assert row["answer_recall"] == pytest.approx(2 / 3)
    assert row["gold_recall"] is None  # one record without provenance
    assert row["budget_violations"] == 1
    assert row["ratio_achieved"] == 4.0  # median of 4, 2, 5
    assert row["latency_s"]["p50"] == pytest.approx(0.2)
    assert row["latency_per_1k_tokens"] == pytest.approx(0.6 / 400 * 1000)


def test_aggregate_empty_output_ratio():
    row = aggregate([Record(100, 0, 10, 0.0, False, False, 0.0)])
    assert row["ratio_achieved"] is None
    assert math.isinf(Record(100, 0, 10, 0.0, False, False, 0.0).ratio)
