"""Whole words, JSON, Markdown, protected regions, CJK: the pruning core without a model.

Scores here are given directly (random or chosen), so these tests exercise segmentation,
layout and selection as they are; the LM scorers are tested in test_compressor.py.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctxcomp.compressors.attribution import layout as lay
from ctxcomp.compressors.attribution.segment import words
from ctxcomp.compressors.attribution.select import select_pieces
from ctxcomp.errors import InfeasibleBudgetError
from ctxcomp.tokens import get_counter
from ctxcomp.types import Chunk, join_spans

COUNTER = get_counter("gpt-4o-mini")
RULES = lay.Rules()
VOCAB = ["Fuel", "Dilution", "engine", "oil", "the", "of", "a", "piston", "ring", "wear", "cold", "starts",
         "x", "ünïcode", "naïve", "co-op", "it's", "(note)", "end.", "3.5", "2024-01-02", "https://a.b/c?d=1"]


def _prune(texts: list[str], limit: int, seed: int = 0, quotas=None, metadata=None):
    chunks = [Chunk(t, id=str(i), metadata=(metadata or {})) for i, t in enumerate(texts)]
    layouts = [lay.build(c.text, c.metadata, RULES) for c in chunks]
    rng = random.Random(seed)
    scores = [[rng.random() for _ in layout.pieces] for layout in layouts]
    return chunks, layouts, select_pieces(chunks, layouts, scores, COUNTER, limit, quotas)


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(any(w == b for b in it) for w in small)


prose = st.lists(st.sampled_from(VOCAB), min_size=1, max_size=60).map(" ".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(prose, min_size=1, max_size=4), frac=st.floats(0.05, 1.0), seed=st.integers(0, 99))
def test_words_are_never_fused_or_split_and_the_limit_holds(texts, frac, seed):
    total = COUNTER.count("\n\n".join(texts))
    limit = max(12, int(total * frac))  # the longest VOCAB word fits alone
    chunks, _, assembly = _prune(texts, limit, seed)
    assert assembly.tokens <= limit
    for kept in assembly.chunks:
        source = chunks[int(kept.source_id)].text
        assert kept.text == join_spans(source, kept.spans)
        assert _is_subsequence(kept.text.split(), source.split())  # every output word is a source word, in order
    # the rate is met: what is left over is less than the cheapest piece not kept (plus join slack)
    kept_words = sum(len(k.text.split()) for k in assembly.chunks)
    all_words = sum(len(t.split()) for t in texts)
    if kept_words < all_words:
        assert assembly.tokens >= limit - max(COUNTER.count(w) for w in VOCAB) - 3


def test_binary_search_meets_a_ratio_closely():
    text = " ".join(random.Random(1).choice(VOCAB) for _ in range(3000))
    total = COUNTER.count(text)
    for ratio in (2, 4, 10, 20):
        limit = total // ratio
        _, _, assembly = _prune([text], limit)
        assert limit * 0.95 <= assembly.tokens <= limit


def test_quotas_are_respected():
    texts = [" ".join(VOCAB * 4), " ".join(reversed(VOCAB * 4))]
    _, _, assembly = _prune(texts, 200, quotas=[20, None])
    by_id = {k.source_id: k for k in assembly.chunks}
    assert by_id["0"].tokens_out <= 20
    assert assembly.tokens <= 200
    assert by_id["1"].tokens_out > 20  # the free chunk takes the rest


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from(list("ab xy\"\\\n\té中文")), max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=6), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, indent=st.sampled_from([None, 2]), frac=st.floats(0.05, 1.0), seed=st.integers(0, 9))
def test_json_stays_valid(value, indent, frac, seed):
    text = json.dumps(value, indent=indent, ensure_ascii=bool(seed % 2))
    total = COUNTER.count(text)
    try:
        _, _, assembly = _prune([text], max(1, int(total * frac)), seed)
    except InfeasibleBudgetError:
        return
    for kept in assembly.chunks:
        parsed = json.loads(kept.text)
        if isinstance(value, dict):
            assert isinstance(parsed, dict) and set(parsed) <= set(value)  # keys are source keys


def test_json_drops_low_items_whole_and_keeps_keys():
    doc = {"items": [{"title": "Fuel dilution in cold starts", "id": 7}, {"title": "unrelated filler text here"}]}
    text = json.dumps(doc)
    chunk = Chunk(text, id="j")
    layout = lay.build(text, {}, RULES)
    assert layout.tree is not None
    scores = [5.0 if text[slice(*p.span)] in ("Fuel", "dilution") else 0.0 for p in layout.pieces]
    limit = COUNTER.count('{"items": [{"title": "Fuel dilution", "id": 7}]}') + 1
    assembly = select_pieces([chunk], [layout], [scores], COUNTER, limit)
    # a dropped word inside a string leaves one space (still the inside of a JSON string)
    assert json.loads(assembly.text) == {"items": [{"title": "Fuel dilution ", "id": 7}]}


def test_a_json_document_that_is_one_huge_string():
    text = json.dumps(" ".join(VOCAB * 300))
    _, _, assembly = _prune([text], 100)
    assert isinstance(json.loads(assembly.text), str) and assembly.tokens <= 100


def test_protected_regions_are_kept_verbatim_and_markers_dropped():
    inner = "Do NOT touch: the exact phrase stays, commas, and all."
    text = " ".join(VOCAB * 5) + f" {lay.KEEP_OPEN}{inner}{lay.KEEP_CLOSE} " + " ".join(VOCAB * 5)
    for seed in range(5):
        _, _, assembly = _prune([text], 40, seed)
        assert inner in assembly.text and "ctxcomp:keep" not in assembly.text
    with pytest.raises(InfeasibleBudgetError, match="protected"):
        _prune([text], 5)
    _, _, whole = _prune(["a b c d e f g"], 50, metadata={lay.PROTECT_KEY: True})
    assert whole.text == "a b c d e f g"


def test_force_keep_rules_rank_first():
    text = "filler words about nothing,\nUser: see https://x.io/a on 2024-01-02 for ticket ABC-12 and snake_case_id."
    layout = lay.build(text, {}, RULES)
    forced = {text[slice(*p.span)] for p in layout.pieces if p.tier == 1}
    assert {"User:", "https://x.io/a", "2024-01-02", "ABC-12", "snake_case_id."} <= forced
    assert "filler" not in forced
    custom = lay.build(text, {}, lay.Rules(patterns=(__import__("re").compile("about nothing"),)))
    assert {"about", "nothing,"} <= {text[slice(*p.span)] for p in custom.pieces if p.tier == 1}


def test_markdown_fences_links_and_markers_survive_whole():
    text = ("# Install guide\n\n- run the installer now\n- then reboot\n\n```bash\npip install ctxcomp\n```\n\n"
            "Read [the full docs](https://docs.example.com/install) before filing bugs about it.")
    layout = lay.build(text, {}, RULES)
    pieces = [text[slice(*p.span)] for p in layout.pieces]
    assert "```bash\npip install ctxcomp\n```" in pieces
    assert "[the full docs](https://docs.example.com/install)" in pieces
    for seed in range(10):
        _, _, assembly = _prune([text], 25, seed)
        out = assembly.text
        if "pip" in out:
            assert "```bash\npip install ctxcomp\n```" in out
        if "docs" in out:
            assert "[the full docs](https://docs.example.com/install)" in out
        assert "reboot" not in out or "- then" in out or "- reboot" in out


ZH = "我爱北京天安门，今天天气很好。自然语言处理是人工智能的一个重要方向。"
JA = "東京は日本の首都です。自然言語処理は人工知能の重要な分野です。"


@pytest.mark.parametrize("text", [ZH, JA, ZH + JA, "iPhone手机 3.5 版本"])
def test_cjk_output_is_a_subsequence_of_whole_words(text):
    source_words = [text[s:e] for s, e in words(text)]
    assert "".join(source_words) == "".join(text.split())
    for seed in range(5):
        _, _, assembly = _prune([text], max(3, COUNTER.count(text) // 3), seed)
        kept = [text[s:e] for s, e in assembly.chunks[0].spans] if assembly.chunks else []
        # each kept span is a run of whole source words
        starts = {s for s, _ in words(text)}
        ends = {e for _, e in words(text)}
        for s, e in (assembly.chunks[0].spans if assembly.chunks else ()):
            assert s in starts and e in ends
        assert all(k for k in kept)


def test_jieba_and_fugashi_give_dictionary_words():
    zh = [ZH[s:e] for s, e in words(ZH)]
    assert "北京" in zh and "天安门，" in zh
    ja = [JA[s:e] for s, e in words(JA)]
    assert "東京" in ja and "首都" in ja


def test_bad_inputs():
    counter = COUNTER
    # only punctuation, mixed scripts: whole pieces, within the limit
    for text in ["!!! ??? ... ;;;", "English 中文 日本語です ไทย Русский"]:
        _, _, assembly = _prune([text], 4)
        assert assembly.tokens <= 4
    # one giant word never gets cut: it fits whole or the budget is reported infeasible
    giant = "x" * 5000
    with pytest.raises(InfeasibleBudgetError, match="without cutting a word"):
        _prune([giant], 50)
    # 100k characters without spaces in an unspaced script: segmented, so something fits
    long_cjk = ("自然语言处理是人工智能的一个重要方向" * 6000)[:100_000]
    _, _, assembly = _prune([long_cjk], 200)
    assert 0 < assembly.tokens <= 200
    assert counter.count(assembly.text) == assembly.tokens
    # empty and whitespace-only chunks are no pieces
    assert lay.build("", {}, RULES).pieces == [] and lay.build("   \n", {}, RULES).pieces == []


@pytest.mark.parametrize("value", [[1.0000000000000002e16, '\\\n中"\n'], ["東京\\n大阪\"京都\\u00e9"], {"k": "a\\b 中文\t\"x\""}])
@pytest.mark.parametrize("frac", [0.2, 0.375, 0.6])
def test_json_escapes_are_never_cut(value, frac):
    for ensure_ascii in (True, False):
        text = json.dumps(value, ensure_ascii=ensure_ascii)
        try:
            _, _, assembly = _prune([text], max(1, int(COUNTER.count(text) * frac)), 0)
        except InfeasibleBudgetError:
            continue
        for kept in assembly.chunks:
            json.loads(kept.text)
