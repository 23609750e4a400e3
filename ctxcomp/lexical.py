"""Lexical relevance (BM25) over the pieces of one request, with no index and no dependency.

Compressors score a few hundred sentences or passages at a time; the statistics BM25
needs (document frequencies, average length) come from those pieces themselves, so a
query word that every retrieved passage shares counts for little and a rare one that
only the right passage repeats counts for much.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves"]
)


# Scripts written without spaces: a "word" found by _TOKEN is a whole clause there.
_UNSPACED = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
                       "\uf900-\ufaff]")


def _bigrams(token: str) -> list[str]:
    return [token] if len(token) == 1 else [token[i : i + 2] for i in range(len(token) - 1)]


def terms(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` without English stopwords.

    A token in a script written without spaces (Chinese, Japanese, Thai ...) becomes its
    character bigrams, the usual index terms for such text (no dictionary needed).
    """
    out: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        if token in STOPWORDS:
            continue
        if _UNSPACED.search(token):
            out.extend(_bigrams(token))
        else:
            out.append(token)
    return out


def bm25_scores(query: str, docs: Sequence[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """BM25 score of each of ``docs`` for ``query``, statistics taken over ``docs``.

    Uses the non-negative IDF ``log(1 + (N - df + 0.5) / (df + 0.5))``. Returns float64
    zeros when the query has no content words or ``docs`` is empty.
    """
    out = np.zeros(len(docs), dtype=np.float64)
    query_terms = set(terms(query))
    if not docs or not query_terms:
        return out
    bags = [Counter(terms(d)) for d in docs]
    lengths = np.array([sum(bag.values()) for bag in bags], dtype=np.float64)
    avg = float(lengths.mean()) or 1.0
    n = len(docs)
    for term in query_terms:
        df = sum(1 for bag in bags if term in bag)
        if not df:
            continue
        idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        tf = np.array([bag.get(term, 0) for bag in bags], dtype=np.float64)
        out += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths / avg))
    return out


_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})s?\b")
_NUMBER = re.compile(
    r"\b\d[\d,.]*\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|hundred|thousand|"
    r"million|billion)\b",
    re.IGNORECASE,
)
_CAPITALIZED = re.compile(r"\b[A-Z][\w'-]+")
_HOW_MUCH = re.compile(r"how (?:many|much|long|old|far|tall|big|high|large)\b|what (?:number|percentage|age)\b")


def question_kind(query: str) -> dict[str, bool]:
    """Which kind of answer an English factoid question asks for (all False otherwise)."""
    q = query.strip().lower()
    return {
        "when": q.startswith("when") or "what year" in q or "what date" in q,
        "number": bool(_HOW_MUCH.search(q)),
        "who": q.startswith(("who", "whom")) or " who " in q[:20],
        "where": q.startswith("where"),
    }


def answer_cues(query: str, texts: Sequence[str], contexts: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Per text, the answer candidates it holds that the query does not already name.

    ``new_caps``: log(1 + capitalized words absent from the query and from the text's
    ``contexts`` entry, e.g. its passage title); ``new_year`` / ``new_num``: holds a year
    / a number the query lacks (0/1). ``when_year``, ``num_num``, ``who_caps`` and
    ``where_caps`` are the same gated by :func:`question_kind`, so they are 0 for queries
    that are not such questions.
    """
    kind = question_kind(query)
    seen = set(_TOKEN.findall(query.lower()))
    ctx = list(contexts) or [""] * len(texts)
    known = {c: seen | set(_TOKEN.findall(c.lower())) for c in set(ctx)}  # a title repeats per sentence
    caps = np.array([
        math.log1p(len({w.lower() for w in _CAPITALIZED.findall(t)} - known[c]))
        for t, c in zip(texts, ctx, strict=True)
    ])
    years = np.array([float(bool(set(_YEAR.findall(t)) - seen)) for t in texts])
    nums = np.array([float(bool({m.group(0).lower() for m in _NUMBER.finditer(t)} - seen)) for t in texts])
    return {
        "new_caps": caps, "new_year": years, "new_num": nums,
        "when_year": years * kind["when"], "num_num": nums * kind["number"],
        "who_caps": caps * kind["who"], "where_caps": caps * kind["where"],
    }
