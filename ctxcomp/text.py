"""Sentence and word segmentation with exact character spans, for every script.

Compressors select whole sentences (or words) and must report where each kept piece came
from, so segmentation returns ``(start, end)`` offsets into the original string, never
rewritten text. Spans exclude surrounding whitespace.

* **Sentences** end at ``. ! ? …`` followed by whitespace (with the abbreviation and
  initial rules below), at the full stops of Chinese and Japanese (``。！？``, no space
  needed), at ``؟ ۔ । ॥`` followed by whitespace, and at a space between two Thai phrases.
  Over-long sentences are split again, iteratively (never recursively), at clause marks
  (``; : ,`` plus a space, or ``， ； ： 、``), else at whitespace, else between word units,
  else hard, so that every sentence span is at most ``max_chars`` long.
* **Words** are whitespace-separated runs, except that a run containing a script written
  without spaces (Chinese, Japanese, Thai, Lao, Khmer, Myanmar) is segmented by ICU's
  dictionary-based word breaker (``pip install "ctxcomp[text]"``; measured against
  jieba, fugashi+unidic-lite and pythainlp: ``benchmarks/results/segmenters.json``), or,
  without ICU, one Han character or up to :data:`FALLBACK_RUN_CHARS` characters of another
  unspaced script per unit. A run longer than :data:`MAX_WORD_CHARS` (base64, minified
  JSON, a URL) is cut into pieces of at most that many characters, preferring the place
  after a ``, ; & / ? = } ]`` and never inside a grapheme cluster. So a word is never
  larger than :data:`MAX_WORD_CHARS` characters, whatever the input.

On English prose the output is identical to the splitter the shipped gemfilter scorer was
fit with (checked over every NQ-20, MuSiQue and haystack dev passage by
``benchmarks/robustness/splitter_identity.py``).
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from ctxcomp.types import Span

_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "no", "vs", "etc", "e.g", "i.e", "cf", "al", "fig", "figs", "vol", "eq", "approx", "inc", "ltd", "co", "corp", "dept", "est", "gen", "gov", "lt", "col", "sgt", "capt", "rev", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "ph.d"]
)
_THAI = "\u0e00-\u0e7f"
# A sentence ends at . ! ? … (or Arabic/Devanagari stops) plus closing quotes/brackets,
# followed by whitespace; at a CJK full stop whatever follows; between two Thai phrases.
# A match of the first kind may only start at the first stop of a run (the lookbehind): the
# plain pattern retried from every position inside a run, so 40,000 "!" took 38 s (O(n^2));
# now a run is tried once, O(n). The matches are the same: one starting inside a run would
# need the same run end as one starting at its first stop.
_BOUNDARY = re.compile(
    r"""(?<![.!?\u2026\u061f\u06d4\u0964\u0965])[.!?\u2026\u061f\u06d4\u0964\u0965]+["'\u201d\u2019)\]]*(?=\s)"""
    r"""|[\u3002\uff01\uff1f\uff61]+["'\u201d\u2019)\]\u300d\u300f\uff09\u300b\u3009]*"""
    rf"""|(?<=[{_THAI}])(?=\s+[{_THAI}])"""
)
_PARAGRAPH = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*\u2022]|\d+[.)])\s)")
_CLAUSE = re.compile(r"[;:,]\s|[\uff0c\uff1b\uff1a\u3001]")
_WORD = re.compile(r"\S+")
# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, kana, CJK
# ideographs (and their punctuation / fullwidth forms).
_UNSPACED_RANGES = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f"
)
_UNSPACED = re.compile(f"[{_UNSPACED_RANGES}]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_SOFT_BREAK_AFTER = frozenset(",;&/?=}]>|")

DEFAULT_MAX_CHARS = 400
#: No word unit is longer than this many characters (long runs are cut into pieces).
MAX_WORD_CHARS = 64
#: Without ICU, an unspaced-script run other than Han is cut into pieces this long.
FALLBACK_RUN_CHARS = 8


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


# -- graphemes ---------------------------------------------------------------------------
def _joins_previous(ch: str) -> bool:
    """True when ``ch`` belongs to the grapheme before it (a cut before it would split one)."""
    code = ord(ch)
    if code < 0x300:
        return False
    return (unicodedata.category(ch) in ("Mn", "Mc", "Me") or code == 0x200D or 0xFE00 <= code <= 0xFE0F
            or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F or 0xE0100 <= code <= 0xE01EF)


def is_cut_point(text: str, pos: int) -> bool:
    """True when ``text`` may be cut at ``pos`` without splitting a grapheme cluster."""
    if pos <= 0 or pos >= len(text):
        return True
    return not (_joins_previous(text[pos]) or text[pos - 1] == "\u200d")


def _safe_cut(text: str, start: int, cut: int) -> int:
    """``cut`` moved back to a grapheme boundary (but never to ``start``)."""
    pos = cut
    while pos > start + 1 and not is_cut_point(text, pos):
        pos -= 1
    return pos if is_cut_point(text, pos) else cut


def cut_points(text: str, start: int, end: int) -> list[int]:
    """Every grapheme boundary in ``(start, end]``: the finest place a prefix may end."""
    return [p for p in range(start + 1, end + 1) if is_cut_point(text, p)]


# -- words ---------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _icu() -> Any:
    """The ICU module (PyICU), or None when it is not installed."""
    try:
        import icu
    except ImportError:
        return None
    return icu


def segmenter() -> str:
    """The word segmenter in use for unspaced scripts: ``"icu"`` or ``"fallback"``."""
    return "icu" if _icu() is not None else "fallback"


def _icu_bounds(text: str, start: int, end: int) -> list[int]:
    icu = _icu()
    piece = text[start:end]
    breaker = icu.BreakIterator.createWordInstance(icu.Locale.getRoot())
    breaker.setText(piece)
    # ICU reports UTF-16 offsets; map them back to code points.
    if piece.isascii() or all(ord(ch) < 0x10000 for ch in piece):
        return [start + b for b in breaker if 0 < b <= len(piece)]
    utf16_to_cp: dict[int, int] = {}
    unit = 0
    for i, ch in enumerate(piece):
        utf16_to_cp[unit] = i
        unit += 2 if ord(ch) >= 0x10000 else 1
    utf16_to_cp[unit] = len(piece)
    return [start + utf16_to_cp[b] for b in breaker if b in utf16_to_cp and b > 0]


def _fallback_bounds(text: str, start: int, end: int) -> list[int]:
    """Dictionary-free units: one Han character; short runs of other unspaced scripts."""
    bounds: list[int] = []
    run_start = start
    for pos in range(start + 1, end + 1):
        if pos < end and not is_cut_point(text, pos):
            continue
        prev, cur = text[pos - 1], text[pos] if pos < end else ""
        han = bool(_HAN.match(prev)) or bool(cur and _HAN.match(cur))
        unspaced = bool(_UNSPACED.match(prev)) != bool(cur and _UNSPACED.match(cur))
        if pos == end or han or unspaced or pos - run_start >= FALLBACK_RUN_CHARS:
            bounds.append(pos)
            run_start = pos
    return bounds


def _is_punct(text: str, start: int, end: int) -> bool:
    return not any(ch.isalnum() for ch in text[start:end])


def _is_opening(text: str, start: int, end: int) -> bool:
    return all(unicodedata.category(ch) in ("Ps", "Pi") for ch in text[start:end])


def _merge_punctuation(text: str, pieces: list[Span]) -> list[Span]:
    """Attach punctuation-only pieces to the word before them (opening brackets and
    quotes, and punctuation that starts the run, to the word after them)."""
    out: list[Span] = []
    pending: int | None = None  # start of leading punctuation waiting for a word
    for s, e in pieces:
        if pending is not None:
            s, pending = pending, None
        if _is_punct(text, s, e) and e - s < MAX_WORD_CHARS:
            if out and not _is_opening(text, s, e) and e - out[-1][0] <= MAX_WORD_CHARS:
                out[-1] = (out[-1][0], e)
                continue
            if e - s < MAX_WORD_CHARS // 2:
                pending = s
                continue
        out.append((s, e))
    if pending is not None:
        out.append((pending, pieces[-1][1]))
    return out


def _bounded(text: str, start: int, end: int) -> Iterator[Span]:
    """``[start, end)`` in pieces of at most MAX_WORD_CHARS, cut after soft breaks if any."""
    pos = start
    while end - pos > MAX_WORD_CHARS:
        limit = pos + MAX_WORD_CHARS
        cut = next((i + 1 for i in range(limit - 1, pos, -1) if text[i] in _SOFT_BREAK_AFTER
                    and is_cut_point(text, i + 1)), None)
        cut = cut if cut is not None else _safe_cut(text, pos, limit)
        yield pos, cut
        pos = cut
    if pos < end:
        yield pos, end


def _subdivide(text: str, start: int, end: int) -> list[Span]:
    """The word units of the whitespace-free run ``[start, end)``."""
    if _UNSPACED.search(text, start, end):
        bounds = _icu_bounds(text, start, end) if _icu() is not None else _fallback_bounds(text, start, end)
        pieces, prev = [], start
        for b in bounds:
            if b > prev:
                pieces.append((prev, b))
                prev = b
        if prev < end:
            pieces.append((prev, end))
        pieces = _merge_punctuation(text, pieces)
    else:
        pieces = [(start, end)]
    return [p for s, e in pieces for p in _bounded(text, s, e)]


def word_spans(text: str) -> list[Span]:
    """Spans of the words of ``text``, each at most :data:`MAX_WORD_CHARS` characters.

    Whitespace-separated words, with unspaced scripts segmented into words and long runs
    cut into bounded pieces (see the module docstring).

    >>> [e - s for s, e in word_spans("a " + "x" * 100)]
    [1, 64, 36]
    """
    out: list[Span] = []
    for m in _WORD.finditer(text):
        s, e = m.span()
        if e - s <= MAX_WORD_CHARS and not _UNSPACED.search(text, s, e):
            out.append((s, e))
        else:
            out.extend(_subdivide(text, s, e))
    return out


# -- sentences ---------------------------------------------------------------------------
def _nearest(cuts: list[int], start: int, end: int, mid: int) -> int | None:
    """The cut in ``(start, end)`` closest to ``mid`` (the lower one on a tie)."""
    i = bisect.bisect_right(cuts, mid)
    below = cuts[i - 1] if i > 0 and cuts[i - 1] > start else None
    above = cuts[i] if i < len(cuts) and cuts[i] < end else None
    if below is None or (above is not None and above - mid < mid - below):
        return above
    return below


def _split_long(text: str, span: Span, max_chars: int) -> list[Span]:
    """``span`` cut into pieces of at most ``max_chars``: at the clause mark closest to the
    middle, else the whitespace-word start closest to it, else (in unspaced scripts) the
    closest start of a word unit (:func:`word_spans`), else hard; repeated on both halves."""
    start, end = span
    if end - start <= max_chars:
        return [span]
    # Cut candidates, found once per sentence (cost n log n, not n per cut).
    tiers: list[list[int] | None] = [[m.end() for m in _CLAUSE.finditer(text, start, end)],
                                     [m.start() for m in _WORD.finditer(text, start, end)]]
    if _UNSPACED.search(text, start, end):
        tiers.append(None)  # word units of unspaced scripts, segmented only when needed
    out: list[Span] = []
    stack = [span]
    while stack:
        s, e = stack.pop()
        if e - s <= max_chars:
            out.append((s, e))
            continue
        mid = (s + e) // 2
        cut = None
        for tier, cuts in enumerate(tiers):
            if cuts is None:
                cuts = tiers[tier] = [start + ws for ws, _ in word_spans(text[start:end])]
            cut = _nearest(cuts, s, e, mid)
            if cut is not None:
                break
        if cut is None:  # one giant unit: cut it at max_chars (on a grapheme boundary)
            cut = _safe_cut(text, s, s + max_chars)
        right, left = _strip(text, cut, e), _strip(text, s, cut)
        if right:
            stack.append(right)
        if left:
            stack.append(left)
    return out


def split_sentences(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Span]:
    """Sentence spans of ``text`` in order, each at most ``max_chars`` long.

    >>> t = "Dr. Smith arrived. He sat down! Then: what?"
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['Dr. Smith arrived.', 'He sat down!', 'Then: what?']
    >>> t = "東京は日本の首都です。人口は約1400万人です。"
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['東京は日本の首都です。', '人口は約1400万人です。']
    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be an int >= 1, got {max_chars!r}")
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
