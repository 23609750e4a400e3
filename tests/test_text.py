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
