from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ctxcomp.text import split_sentences, word_spans


def _texts(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_sentences_respect_abbreviations_and_initials() -> None:
    text = "Dr. Smith met J. R. R. Tolkien in the U.S. Army. They talked! Why? Because e.g. books."
    assert _texts(text) == [
        "Dr. Smith met J. R. R. Tolkien in the U.S. Army.", "They talked!", "Why?", "Because e.g. books."
    ]


def test_paragraphs_and_bullets_split() -> None:
    text = "Title line\n\nFirst para. Second sentence\n- item one\n- item two"
    assert _texts(text) == ["Title line", "First para.", "Second sentence", "- item one", "- item two"]


def test_long_sentences_are_cut_at_clauses() -> None:
    text = "word, " * 200 + "end."
    spans = split_sentences(text, max_chars=100)
    assert all(e - s <= 100 for s, e in spans)
    assert "".join(text[s:e] for s, e in spans).replace(" ", "") == text.replace(" ", "")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab. !?\n,;:Z\u2019\"")), max_size=300), st.integers(5, 80))
def test_spans_are_ordered_stripped_and_cover_every_visible_char(text: str, max_chars: int) -> None:
    spans = split_sentences(text, max_chars=max_chars)
    prev = 0
    for start, end in spans:
        assert prev <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        assert end - start <= max_chars
        prev = end
    covered = "".join(text[s:e] for s, e in spans)
    assert covered.replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_word_spans() -> None:
    assert word_spans(" ab  c\nd ") == [(1, 3), (5, 6), (7, 8)]


# -- every script, every size (issue 11) -----------------------------------------------------
import base64  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from ctxcomp.text import MAX_WORD_CHARS, cut_points, is_cut_point, segmenter  # noqa: E402

SAMPLES = {
    "zh": "北京是中华人民共和国的首都，也是全国的政治、文化和国际交往中心。长城总长度超过两万公里。",
    "ja": "東京は日本の首都です。人口は約1400万人！「吾輩は猫である」は夏目漱石の小説である。",
    "th": "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย แม่น้ำเจ้าพระยาไหลผ่านกลางเมือง",
    "ar": "القاهرة هي عاصمة مصر. يبلغ عدد سكانها أكثر من عشرين مليون نسمة؟ نعم.",
    "emoji": "I 👍🏽 this 👨\u200d👩\u200d👧 family! e\u0301\u0301 ok.",
    "json": json.dumps({"k": list(range(60)), "url": "https://example.com/" + "a/" * 40}, separators=(",", ":")),
    "b64": base64.b64encode(bytes(range(256)) * 8).decode(),
}


def _covers_every_visible_char(text: str, spans: list[tuple[int, int]]) -> None:
    prev = 0
    for start, end in spans:
        assert prev <= start < end <= len(text)
        prev = end
    kept = "".join(text[s:e] for s, e in spans)
    assert "".join(kept.split()) == "".join(text.split())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_script_gives_bounded_covering_units(name: str) -> None:
    text = SAMPLES[name] * 3
    sentences = split_sentences(text, max_chars=120)
    words = word_spans(text)
    _covers_every_visible_char(text, sentences)
    _covers_every_visible_char(text, words)
    assert all(e - s <= 120 for s, e in sentences)
    assert all(e - s <= MAX_WORD_CHARS for s, e in words)
    assert all(is_cut_point(text, s) and is_cut_point(text, e) for s, e in words)  # no split grapheme


def test_cjk_sentences_end_at_full_stops_without_spaces() -> None:
    t = "東京は日本の首都です。人口は約1400万人！北京是中国的首都。"
    assert _texts(t) == ["東京は日本の首都です。", "人口は約1400万人！", "北京是中国的首都。"]


@pytest.mark.skipif(segmenter() != "icu", reason="ICU (ctxcomp[text]) segments words by dictionary")
def test_icu_segments_chinese_japanese_and_thai_into_words() -> None:
    t = "東京は日本の首都です。北京是中华人民共和国的首都。กรุงเทพมหานครเป็นเมืองหลวง"
    words = [t[s:e] for s, e in word_spans(t)]
    assert {"東京", "日本", "首都", "北京", "กรุงเทพมหานคร", "เมือง"} <= set(words)


def test_fallback_segmenter_is_bounded_without_icu(monkeypatch: pytest.MonkeyPatch) -> None:
    from ctxcomp import text as text_module

    monkeypatch.setattr(text_module, "_icu", lambda: None)
    t = SAMPLES["zh"] + SAMPLES["th"] + SAMPLES["ja"]
    words = [t[s:e] for s, e in word_spans(t)]
    assert "北" in words and "京" in words  # one Han character per unit
    assert max(len(w) for w in words) <= text_module.FALLBACK_RUN_CHARS + 2  # + attached punctuation
    _covers_every_visible_char(t, word_spans(t))


def test_repro_long_runs_split_iteratively() -> None:
    # Issue 11: split_sentences("x" * 500_000) raised RecursionError.
    for text in ("x" * 500_000, base64.b64encode(bytes(300_000)).decode(), "北" * 200_000):
        spans = split_sentences(text)
        assert all(e - s <= 400 for s, e in spans)
        assert sum(e - s for s, e in spans) == len(text)
    assert sys.getrecursionlimit() < 500_000 // 400 * 2  # the old recursion would not have fit


def test_cut_points_never_split_a_grapheme() -> None:
    t = "e\u0301a👍🏽b"
    assert cut_points(t, 0, len(t)) == [2, 3, 5, 6]


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab 。、，！東京กข\u0e31\u0301\u200d👍. \n,;:")), max_size=400),
       st.integers(1, 80))
def test_any_script_mix_is_bounded_and_covered(text: str, max_chars: int) -> None:
    spans = split_sentences(text, max_chars=max_chars)
    assert all(e - s <= max_chars for s, e in spans)
    _covers_every_visible_char(text, spans)
    _covers_every_visible_char(text, word_spans(text))
    assert all(e - s <= MAX_WORD_CHARS for s, e in word_spans(text))


@pytest.mark.slow
def test_english_spans_unchanged_on_every_dev_passage() -> None:
    """The learned gemfilter scorer was fit with today's splitter: sentence spans and titles
    must be identical on every NQ-20 / MuSiQue / haystack dev passage (word spans too, when
    ICU segments; they differ from the old splitter only where CJK text or a run over 64
    characters is, see benchmarks/results/splitter_identity.json)."""
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "benchmarks" / "robustness"))
    try:
        import splitter_identity as ident
    finally:
        sys.path.pop(0)
    import os

    data = Path(os.environ.get("CTXCOMP_SHARED_DIR", root.parent / "shared")) / "data"
    if not (data / "nq20" / "dev.jsonl.gz").exists():
        pytest.skip("dev data not found beside the repository")
    found, _ = ident.digests(data)
    reference = json.loads(ident.RESULT.read_text())["datasets"]
    parts = ["sentences", "title"] + (["words"] if segmenter() == "icu" else [])
    for name, digest in found.items():
        for part in parts:
            assert digest[part] == reference[name][part], f"{name} {part} changed"


def test_random_unicode_never_breaks_the_splitter() -> None:
    rng = random.Random(11)
    for _ in range(50):
        text = "".join(chr(rng.randrange(0x20, 0x30000)) for _ in range(rng.randrange(0, 600)))
        text = "".join(ch for ch in text if not 0xD800 <= ord(ch) <= 0xDFFF)
        _covers_every_visible_char(text, split_sentences(text, max_chars=50))
        _covers_every_visible_char(text, word_spans(text))


_PLAIN_BOUNDARY = re.compile(r"""[.!?\u2026\u061f\u06d4\u0964\u0965]+["'\u201d\u2019)\]]*(?=\s)""")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(".!?…\"')] a\n")), max_size=200))
def test_boundary_pattern_matches_like_the_plain_one(text: str) -> None:
    from ctxcomp.text import _BOUNDARY

    plain = [m.span() for m in _PLAIN_BOUNDARY.finditer(text)]
    ours = [m.span() for m in _BOUNDARY.finditer(text) if text[m.start()] not in "\u3002\uff01\uff1f\uff61"
            and m.end() > m.start()]
    assert ours == plain


@pytest.mark.parametrize("text", ["!" * 200_000, "." * 200_000 + " end", "?!" * 100_000, "Table ....... 5\n" * 5000])
def test_punctuation_runs_are_linear(text: str) -> None:
    """A run of stops was retried from every position inside it: 40,000 "!" took 38 s."""
    spans = split_sentences(text)
    _covers_every_visible_char(text, spans)
