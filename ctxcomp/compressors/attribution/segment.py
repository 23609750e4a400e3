"""Whole words with exact spans, in every script, for token-level pruning.

A pruning unit must be a whole word: keeping half of "Dilution" or gluing two words
together is the failure LLMLingua is known for. Words here are whitespace-separated runs,
never cut however long they are (a 300-character URL is one word). A run that contains a
script written without spaces is segmented by a real segmenter:

- Japanese (any kana in the clause): fugashi with unidic-lite (``pip install "ctxcomp[segment]"``);
- Chinese (Han, no kana in the clause): jieba (same extra);
- otherwise, or without those packages: the ICU word breaks of :func:`ctxcomp.text.word_spans`.

Adjacent pieces of a run are merged back together when neither holds a character of an
unspaced script (so "iPhone手机" is ``iPhone | 手机`` but "3.5" stays whole), and a
piece of punctuation only ("，", "。") is joined to the word before it.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from typing import Any

from ctxcomp.text import word_spans
from ctxcomp.types import Span

log = logging.getLogger(__name__)

_RUN = re.compile(r"\S+")
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f]"
)
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_lock = threading.Lock()


@functools.cache
def _jieba() -> Any:
    try:
        import jieba
    except ImportError:
        return None
    jieba.setLogLevel(logging.WARNING)
    return jieba


@functools.cache
def _tagger() -> Any:
    try:
        import fugashi

        return fugashi.Tagger()
    except Exception as exc:  # ImportError, or a missing dictionary (RuntimeError)
        log.debug("fugashi unavailable: %s", exc)
        return None


def segmenters() -> dict[str, str]:
    """Which segmenter each script uses here (for reports)."""
    return {"ja": "fugashi" if _tagger() is not None else "icu/fallback",
            "zh": "jieba" if _jieba() is not None else "icu/fallback"}


def _pieces_ja(run: str) -> list[Span] | None:
    tagger = _tagger()
    if tagger is None:
        return None
    with _lock:  # MeCab taggers are not thread-safe
        nodes = [(n.surface, n.white_space) for n in tagger(run)]
    out: list[Span] = []
    pos = 0
    for surface, space in nodes:
        pos += len(space)
        if run[pos : pos + len(surface)] != surface:
            return None  # the tagger normalized something: do not trust its offsets
        out.append((pos, pos + len(surface)))
        pos += len(surface)
    return out if pos == len(run) else None


def _pieces_zh(run: str) -> list[Span] | None:
    jieba = _jieba()
    if jieba is None:
        return None
    with _lock:  # jieba builds its dictionary lazily, once
        spans = [(s, e) for _, s, e in jieba.tokenize(run)]
    return spans if spans and spans[-1][1] == len(run) else None


def _is_punct(piece: str) -> bool:
    return all(unicodedata.category(ch)[0] in "PS" for ch in piece)


_CLAUSE_END = re.compile("[。！？，、!?;；]")


def _segment_run(run: str) -> list[Span]:
    """Words of ``run`` (no whitespace), one clause at a time (so that a Chinese clause
    next to a Japanese one gets the Chinese segmenter)."""
    out: list[Span] = []
    start = 0
    for m in _CLAUSE_END.finditer(run):
        out.extend((start + a, start + b) for a, b in _segment_clause(run[start : m.end()]))
        start = m.end()
    if start < len(run):
        out.extend((start + a, start + b) for a, b in _segment_clause(run[start:]))
    return out


def _segment_clause(run: str) -> list[Span]:
    pieces = (_pieces_ja(run) if _KANA.search(run) else _pieces_zh(run) if _HAN.search(run) else None)
    if pieces is None:
        pieces = word_spans(run)
    merged: list[Span] = []
    for start, end in pieces:
        if merged and merged[-1][1] == start and (
            _is_punct(run[start:end])
            or not (_UNSPACED.search(run, *merged[-1]) or _UNSPACED.search(run, start, end))
        ):
            merged[-1] = (merged[-1][0], end)
            continue
        merged.append((start, end))
    return merged


def words(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Spans of the whole words of ``text[start:end]`` (offsets into ``text``).

    >>> t = "Fuel Dilution 北京天安门"
    >>> [t[s:e] for s, e in words(t)]  # doctest: +SKIP
    ['Fuel', 'Dilution', '北京', '天安门']
    """
    stop = len(text) if end is None else end
    out: list[Span] = []
    for m in _RUN.finditer(text, start, stop):
        s, e = m.span()
        if not _UNSPACED.search(text, s, e):
            out.append((s, e))
            continue
        out.extend((s + a, s + b) for a, b in _segment_run(text[s:e]))
    return out
