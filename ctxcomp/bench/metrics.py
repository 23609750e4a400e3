"""Model-free metrics: answer recall (SQuAD-style normalization), gold recall through
provenance, evidence recall, and the aggregation of one method x setting into a row.

Definitions (the README's results tables use exactly these):

- ``answer_recall``: share of examples where some normalized gold answer occurs, as a
  whole-word substring, in the normalized compressed text.
- ``gold_recall``: the same, but looking only at the text kept *from the gold chunk(s)*
  according to the method's provenance; ``None`` for methods without provenance.
- ``evidence_recall``: mean share of gold chunks of which at least half of the characters
  survived (provenance); ``None`` without provenance.
- ``ratio_achieved``: median of tokens_in / tokens_out (target tokenizer).
- ``budget_violations``: examples whose output has more tokens than the budget.
- ``latency_s``: p50 and p90 of wall seconds per compression; ``latency_per_1k_tokens``:
  total seconds / total input tokens x 1000.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ctxcomp.types import CompressedChunk

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower case, drop punctuation and articles, squeeze spaces.

    >>> normalize_answer("The  Eiffel-Tower!")
    'eiffeltower'
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """Whether some normalized answer occurs in the normalized ``text`` as whole words."""
    haystack = f" {normalize_answer(text)} "
    for answer in answers:
        needle = normalize_answer(str(answer))
        if needle and f" {needle} " in haystack:
            return True
    return False


def covered_fraction(chunk: CompressedChunk, source_length: int) -> float:
    """Share of the source chunk's characters that ``chunk``'s spans keep."""
    if source_length <= 0:
        return 0.0
    return sum(end - start for start, end in chunk.spans) / source_length


@dataclass(frozen=True)
class Record:
    """The outcome of one method on one example at one setting."""

    tokens_in: int
    tokens_out: int
    limit: int
    seconds: float
    answer_hit: bool
    gold_hit: bool | None
    evidence: float | None

    @property
    def ratio(self) -> float:
        return self.tokens_in / self.tokens_out if self.tokens_out else math.inf


def score(
    text: str,
    chunks: Sequence[CompressedChunk] | None,
    answers: Sequence[str],
    gold: Mapping[str, int],
) -> tuple[bool, bool | None, float | None]:
    """(answer hit, gold hit, evidence share) of one compressed output.

    Args:
        text: the compressed text the LLM would see.
        chunks: the method's provenance (None: it has none).
        answers: acceptable answers (may be empty: then the answer hit is False).
        gold: gold chunk id -> length of its source text.
    """
    answer_hit = contains_answer(text, answers)
    if chunks is None:
        return answer_hit, None, None
    gold_text = " ".join(c.text for c in chunks if c.source_id in gold)
    gold_hit = contains_answer(gold_text, answers)
    if not gold:
        return answer_hit, gold_hit, None
    kept = {c.source_id: covered_fraction(c, gold[c.source_id]) for c in chunks if c.source_id in gold}
    evidence = sum(1.0 for g in gold if kept.get(g, 0.0) >= 0.5) / len(gold)
    return answer_hit, gold_hit, evidence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of an empty sequence")
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate(records: Sequence[Record]) -> dict[str, Any]:
    """The metrics of one (method, setting) cell; see the module docstring."""
    n = len(records)
    if n == 0:
        return {"n": 0}
    golds = [float(r.gold_hit) for r in records if r.gold_hit is not None]
    evidence = [r.evidence for r in records if r.evidence is not None]
    ratios = [r.ratio for r in records]
    median_ratio = percentile([x if math.isfinite(x) else 1e9 for x in ratios], 50)
    seconds = [r.seconds for r in records]
    tokens = sum(r.tokens_in for r in records)
    return {
        "n": n,
        "answer_recall": sum(r.answer_hit for r in records) / n,
        "gold_recall": _mean(golds) if len(golds) == n else None,
        "evidence_recall": _mean(evidence) if len(evidence) == n else None,
        "ratio_achieved": median_ratio if median_ratio < 1e9 else None,
        "tokens_in_mean": tokens / n,
        "tokens_out_mean": sum(r.tokens_out for r in records) / n,
        "budget_violations": sum(r.tokens_out > r.limit for r in records),
        "latency_s": {"p50": percentile(seconds, 50), "p90": percentile(seconds, 90)},
        "latency_per_1k_tokens": sum(seconds) / tokens * 1000 if tokens else None,
    }
