import gzip
import json
from collections import Counter

import pytest

from ctxcomp.bench.data import (
    build_haystack,
    evenly_spaced_depths,
    haystack_sentences,
    load_locomo,
    load_needle,
    load_nq,
    needle_examples,
    stratified,
)
from ctxcomp.errors import InputError
from ctxcomp.tokens import get_counter


def test_nq_passages_become_titled_chunks(nq_examples):
    assert len(nq_examples) == 300
    first = nq_examples[0]
    assert len(first.chunks) == 20
    assert [c.id for c in first.chunks][:3] == ["p0", "p1", "p2"]
    (gold,) = first.gold_ids
    assert first.stratum == gold[1:]
    gold_chunk = next(c for c in first.chunks if c.id == gold)
    assert "\n" in gold_chunk.text and gold_chunk.metadata["title"] == gold_chunk.text.split("\n")[0]
    assert "isgold" not in gold_chunk.metadata and "hasanswer" not in gold_chunk.metadata


def test_stratified_limit_is_balanced_and_deterministic(nq_examples):
    picked = stratified(nq_examples, 40)
    assert len(picked) == 40
    assert set(Counter(e.stratum for e in picked).values()) == {8}
    assert [e.id for e in picked] == [e.id for e in stratified(nq_examples, 40)]
    assert stratified(nq_examples, 7) == stratified(nq_examples, 7)
    assert len(stratified(nq_examples, 7)) == 7
    assert stratified(nq_examples, None) == nq_examples
    ids = [e.id for e in nq_examples]
    assert max(ids.index(e.id) for e in picked) > 250  # spread over the file, not its head
    five = stratified(nq_examples, 5)
    assert {e.id for e in five} <= {e.id for e in picked}  # the first pick of each stratum
    assert sorted(e.stratum for e in five) == sorted({e.stratum for e in nq_examples})


def test_bad_nq_line_reports_its_number(tmp_path):
    path = tmp_path / "bad.jsonl.gz"
    good = {"question": "q", "answers": ["a"], "ctxs": [{"title": "t", "text": "a b", "isgold": True}]}
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps(good) + "\n" + json.dumps({"question": "q"}) + "\n")
    with pytest.raises(InputError, match="line 2"):
        load_nq(path)
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match="line 1"):
        load_nq(tmp_path / "broken.jsonl")
    with pytest.raises(InputError, match="not found"):
        load_nq(tmp_path / "missing.jsonl")


def test_locomo_turns_and_evidence(locomo_path):
    examples = load_locomo(locomo_path)
    assert examples and all(e.stratum in {"1", "2", "3", "4"} for e in examples)
    first = examples[0]
    assert first.chunks[0].id == "D1:1" and first.chunks[0].text.startswith("[")
    assert first.gold_ids <= {c.id for c in first.chunks}
    assert first.answers == ("7 May 2023",)
    with_adversarial = load_locomo(locomo_path, categories=(5,))
    assert with_adversarial and all(e.answers == () for e in with_adversarial)


def test_locomo_rejects_other_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"qa": []}))
    with pytest.raises(InputError, match="not a LoCoMo file"):
        load_locomo(path)


def test_depths_are_evenly_spaced():
    assert evenly_spaced_depths(5) == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert evenly_spaced_depths(1) == [0.0]
    with pytest.raises(InputError):
        evenly_spaced_depths(0)


def test_haystack_has_needle_at_depth(haystack_dir, needles_path):
    counter = get_counter("gpt-4o-mini")
    needle, question = load_needle(needles_path)
    assert "Dolores Park" in needle and question.endswith("?")
    sentences = haystack_sentences(haystack_dir)
    for depth, where in ((0.0, 0), (100.0, -1)):
        chunks, gold = build_haystack(sentences, needle, 2000, depth, counter)
        assert chunks[where].id == gold and needle in chunks[where].text
        total = counter.count("\n\n".join(c.text for c in chunks))
        assert 1900 <= total <= 2050
    chunks, gold = build_haystack(sentences, needle, 4000, 50.0, counter)
    index = [c.id for c in chunks].index(gold)
    assert 0.3 < index / len(chunks) < 0.7


def test_needle_examples_grid(haystack_dir, needles_path):
    examples = needle_examples(haystack_dir, needles_path, [1000, 2000], 3, get_counter("gpt-4o-mini"))
    assert [e.setting for e in examples][:3] == [{"length": 1000, "depth": d} for d in (0.0, 50.0, 100.0)]
    assert len(examples) == 6 and all(len(e.gold_ids) == 1 for e in examples)
