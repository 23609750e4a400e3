"""Sentence segmentation with exact character spans.

Compressors select whole sentences and must report where each kept piece came from, so
segmentation returns ``(start, end)`` offsets into the original string, never rewritten
text. Spans exclude surrounding whitespace. Over-long sentences are split again at clause
boundaries (``;``, ``:``, ``,``) and, as a last resort, at whitespace, so that a budget can
be met at a fine granularity.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ctxcomp.types import Span

_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "no", "vs", "etc", "e.g", "i.e", "cf", "al", "fig", "figs", "vol", "eq", "approx", "inc", "ltd", "co", "corp", "dept", "est", "gen", "gov", "lt", "col", "sgt", "capt", "rev", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "ph.d"]
)
# A sentence ends at . ! ? (or …) plus closing quotes/brackets, followed by whitespace.
_BOUNDARY = re.compile(r"""[.!?\u2026]+["'\u201d\u2019)\]]*(?=\s)""")
_PARAGRAPH = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*\u2022]|\d+[.)])\s)")
_CLAUSE = re.compile(r"[;:,]\s")
_WORD = re.compile(r"\S+")

DEFAULT_MAX_CHARS = 400


def _is_abbreviation(text: str, end: int) -> bool:
    """True when the period ending at ``end`` closes an abbreviation or an initial."""
    start = end - 1
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start:end].rstrip(".").lower()
    if len(word) == 1 and word.isalpha():  # an initial: "J. R. R. Tolkien"
        return True
    return word in _ABBREVIATIONS


def _strip(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _raw_sentences(text: str, start: int, end: int) -> Iterator[Span]:
    pos = start
    for m in _BOUNDARY.finditer(text, start, end):
        stop = m.end()
        if text[m.start()] == "." and m.end() - m.start() == 1 and _is_abbreviation(text, m.start() + 1):
            continue
        # Next non-space char: a lowercase letter usually continues the sentence.
        nxt = stop
        while nxt < end and text[nxt].isspace():
            nxt += 1
        if nxt < end and text[nxt].islower():
            continue
        span = _strip(text, pos, stop)
        if span:
            yield span
        pos = stop
    span = _strip(text, pos, end)
    if span:
        yield span


def _split_long(text: str, span: Span, max_chars: int) -> Iterator[Span]:
    start, end = span
    if end - start <= max_chars:
        yield span
        return
    # Prefer the clause boundary closest to the middle; else the whitespace closest to it.
    mid = (start + end) // 2
    cuts = [m.end() for m in _CLAUSE.finditer(text, start, end) if start < m.end() < end]
    if not cuts:
        cuts = [m.start() for m in _WORD.finditer(text, start, end) if start < m.start()]
    if not cuts:  # one giant token: split it at max_chars
        cuts = [start + max_chars]
    cut = min(cuts, key=lambda c: abs(c - mid))
    for part in ((start, cut), (cut, end)):
        stripped = _strip(text, *part)
        if stripped:
            yield from _split_long(text, stripped, max_chars)


def split_sentences(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Span]:
    """Sentence spans of ``text`` in order, each at most ``max_chars`` long.

    >>> t = "Dr. Smith arrived. He sat down! Then: what?"
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['Dr. Smith arrived.', 'He sat down!', 'Then: what?']
    """
    spans: list[Span] = []
    pos = 0
    bounds = [m.start() for m in _PARAGRAPH.finditer(text)] + [len(text)]
    for stop in bounds:
        for sentence in _raw_sentences(text, pos, stop):
            spans.extend(_split_long(text, sentence, max_chars))
        pos = stop
    return spans


def title_of(text: str, max_chars: int = 120) -> str | None:
    """The first line of ``text`` when it looks like a title (short, no final period).

    Retrieved passages are often ``"Title\ntext"``; a sentence like "it ran for 291
    episodes" only matches a query about *Dragon Ball Z* once its title is known.
    """
    newline = text.find("\n")
    if newline <= 0:
        return None
    line = text[:newline].strip()
    if not line or len(line) > max_chars or line[-1] in ".!?,;:" or not text[newline:].strip():
        return None
    return line


def word_spans(text: str) -> list[Span]:
    """Spans of the whitespace-separated words of ``text``."""
    return [m.span() for m in _WORD.finditer(text)]
