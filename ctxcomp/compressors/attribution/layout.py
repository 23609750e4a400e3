"""What of a chunk may be pruned, and what must stay: its pieces, tiers and structure.

A chunk becomes a :class:`Layout`: the **pieces** pruning chooses among (whole words,
and atoms that are kept or dropped whole), each with a tier, plus the structure that
follows the pieces:

- **protected** (tier 2, hard): text between ``<ctxcomp:keep>`` and ``</ctxcomp:keep>``
  (the markers themselves are left out of the output; an unclosed marker protects to the
  end of the chunk), and whole chunks whose ``metadata["ctxcomp.protect"]`` is true. Kept
  verbatim, or the compression fails with InfeasibleBudgetError.
- **force-kept** (tier 1, ranked before every other piece, so they survive whenever the
  budget holds them all): numbers and dates (any digit), URLs and e-mail addresses, IDs
  and codes (``snake_case``, ``#123``, ``ABC-12``, all-caps acronyms), speaker roles at the
  start of a line ("User:", "Agent:"), optionally capitalized words inside a sentence
  (``entities``), and matches of the caller's regexes.
- **atoms** (kept or dropped whole): Markdown code fences, inline code and links
  ``[text](target)`` (widened to whole words).
- **markers** (kept when any piece of their line is): Markdown headings ``#``, list
  bullets and numbers, block quotes.
- **JSON**: a chunk that is a JSON document prunes through :mod:`.jsontree`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ctxcomp.assembly import merge_spans
from ctxcomp.compressors.attribution import jsontree
from ctxcomp.compressors.attribution.segment import words
from ctxcomp.types import Span, join_spans

KEEP_OPEN = "<ctxcomp:keep>"
KEEP_CLOSE = "</ctxcomp:keep>"
PROTECT_KEY = "ctxcomp.protect"
FORCE_RULES = ("numbers", "urls", "ids", "roles", "entities")
DEFAULT_FORCE = ("numbers", "urls", "ids", "roles")

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
_INLINE = re.compile(r"!?\[[^\]\n]*\]\([^)\s]*(?:\s+\"[^\"\n]*\")?\)|`[^`\n]+`")
_LINE_MARK = re.compile(r"^[ \t]*(#{1,6}(?=\s)|[-*+](?=\s)|\d{1,3}[.)](?=\s)|>)", re.M)
_RULES = {
    "numbers": re.compile(r"\d"),
    "urls": re.compile(r"^\W*(?:https?://|www\.|[\w.+-]+@[\w-]+\.\w)", re.I),
    "ids": re.compile(r"^\W*(?:\w+_\w+|#\w+|[A-Z]{2,}(?:[-_][A-Z0-9]+)*)\W*$"),
}
_ROLE = re.compile(r"^[ \t]*([A-Z][\w ]{0,19}):(?=\s|$)", re.M)
_SENTENCE_END = frozenset(".!?:\n")


@dataclass(frozen=True)
class Piece:
    """A unit pruning keeps or drops whole: ``span`` of the chunk, its tier (0 normal,
    1 force-kept, 2 protected) and how many words it holds (atoms hold several)."""

    span: Span
    tier: int = 0
    words: int = 1


@dataclass
class Layout:
    """A chunk's pieces, its line markers (kept when one of their pieces is) and, for a
    JSON document, its tree (whose leaves refer to pieces by index)."""

    pieces: list[Piece] = field(default_factory=list)
    markers: list[tuple[Span, tuple[int, ...]]] = field(default_factory=list)
    tree: jsontree.JNode | None = None

    def spans(self, kept: Sequence[bool]) -> list[Span]:
        """Source spans of the chunk's pruned text, in order."""
        if self.tree is not None:
            return jsontree.render(self.tree, kept)
        out = [p.span for p, k in zip(self.pieces, kept, strict=True) if k]
        out.extend(span for span, owners in self.markers if any(kept[i] for i in owners))
        return sorted(out)

    def text(self, source: str, kept: Sequence[bool]) -> str:
        return join_spans(source, self.spans(kept))


@dataclass(frozen=True)
class Rules:
    """Force-keep settings: rule names from :data:`FORCE_RULES` and caller regexes."""

    force: tuple[str, ...] = DEFAULT_FORCE
    patterns: tuple[re.Pattern[str], ...] = ()
    structure: bool = True


def _protected(text: str, metadata: Mapping[str, object]) -> tuple[list[Span], list[Span]]:
    """(protected spans, marker spans) of ``text``."""
    if metadata.get(PROTECT_KEY) is True:
        return ([(0, len(text))] if text.strip() else []), []
    regions: list[Span] = []
    marks: list[Span] = []
    pos = 0
    while (start := text.find(KEEP_OPEN, pos)) >= 0:
        inner = start + len(KEEP_OPEN)
        end = text.find(KEEP_CLOSE, inner)
        stop = len(text) if end < 0 else end
        marks.append((start, inner))
        if end >= 0:
            marks.append((end, end + len(KEEP_CLOSE)))
        if text[inner:stop].strip():
            regions.append(_strip(text, inner, stop))
        pos = len(text) if end < 0 else end + len(KEEP_CLOSE)
    return regions, marks


def _strip(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _widen(text: str, start: int, end: int, lo: int, hi: int) -> Span:
    """``[start, end)`` widened to whole whitespace-separated runs, within ``[lo, hi)``."""
    while start > lo and not text[start - 1].isspace():
        start -= 1
    while end < hi and not text[end].isspace():
        end += 1
    return start, end


def _gaps(taken: Iterable[Span], start: int, end: int) -> list[Span]:
    out, pos = [], start
    for s, e in sorted(taken):
        if s > pos:
            out.append((pos, s))
        pos = max(pos, e)
    if pos < end:
        out.append((pos, end))
    return out


def _tier(text: str, span: Span, rules: Rules) -> int:
    word = text[span[0] : span[1]]
    for name in rules.force:
        rule = _RULES.get(name)
        if rule is not None and rule.search(word):
            return 1
    if "entities" in rules.force and word[:1].isupper():
        pos = span[0] - 1
        while pos >= 0 and text[pos] in " \t":
            pos -= 1
        if pos >= 0 and text[pos] not in _SENTENCE_END:
            return 1
    return 0


def _forced_spans(text: str, rules: Rules) -> list[Span]:
    spans = [m.span() for p in rules.patterns for m in p.finditer(text) if m.end() > m.start()]
    if "roles" in rules.force:
        spans.extend(m.span(1) for m in _ROLE.finditer(text))
    return spans


class _Intervals:
    """Sorted, merged spans with an O(log n) overlap test."""

    def __init__(self, spans: Iterable[Span] = ()) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for s, e in merge_spans(list(spans)):
            self.starts.append(s)
            self.ends.append(e)

    def overlaps(self, span: Span) -> bool:
        i = bisect.bisect_left(self.ends, span[0] + 1)  # the first interval ending after span starts
        return i < len(self.starts) and self.starts[i] < span[1]

    def add(self, span: Span) -> None:
        i = bisect.bisect_left(self.starts, span[0])
        self.starts.insert(i, span[0])
        self.ends.insert(i, span[1])


def build(text: str, metadata: Mapping[str, object], rules: Rules) -> Layout:
    """The layout of one chunk."""
    regions, marks = _protected(text, metadata)
    layout = Layout()
    if not regions and not marks and rules.structure:
        tree = jsontree.parse(text, words)
        if tree is not None:
            return _json_layout(text, tree, rules)
    forced = _Intervals(_forced_spans(text, rules))
    atoms: list[Span] = []
    if rules.structure:
        for lo, hi in _gaps(regions + marks, 0, len(text)):
            fences = [_strip(text, *m.span()) for m in _FENCE.finditer(text, lo, hi)]
            taken = _Intervals(fences)
            atoms.extend(fences)
            for m in _INLINE.finditer(text, lo, hi):
                span = _widen(text, m.start(), m.end(), lo, hi)
                if not taken.overlaps(span):
                    atoms.append(span)
                    taken.add(span)
    pieces = [Piece(r, 2, max(1, len(text[r[0]:r[1]].split()))) for r in regions]
    for a in atoms:
        tier = 1 if forced.overlaps(a) else _tier(text, a, rules)
        pieces.append(Piece(a, tier, max(1, len(text[a[0]:a[1]].split()))))
    lines: list[Span] = []
    if rules.structure:
        for lo, hi in _gaps(regions + marks + atoms, 0, len(text)):
            lines.extend(m.span(1) for m in _LINE_MARK.finditer(text, lo, hi))
    for lo, hi in _gaps(regions + marks + atoms + lines, 0, len(text)):
        for w in words(text, lo, hi):
            pieces.append(Piece(w, 1 if forced.overlaps(w) else _tier(text, w, rules)))
    pieces.sort(key=lambda p: p.span)
    layout.pieces = pieces
    layout.markers = _attach(text, lines, pieces)
    return layout


def _attach(text: str, lines: Sequence[Span], pieces: Sequence[Piece]) -> list[tuple[Span, tuple[int, ...]]]:
    """Each line marker with the pieces of its line."""
    out = []
    starts = [p.span[0] for p in pieces]
    for start, end in lines:
        eol = text.find("\n", end)
        eol = len(text) if eol < 0 else eol
        owners = tuple(range(bisect.bisect_left(starts, end), bisect.bisect_left(starts, eol)))
        if owners:
            out.append(((start, end), owners))
    return out


def _json_layout(text: str, tree: jsontree.JNode, rules: Rules) -> Layout:
    layout = Layout(tree=tree)
    forced = _Intervals(_forced_spans(text, rules))
    for leaf in jsontree.leaves(tree):
        if isinstance(leaf, jsontree.JScalar):
            leaf.piece = len(layout.pieces)
            layout.pieces.append(Piece(leaf.span, 1 if forced.overlaps(leaf.span) else _tier(text, leaf.span, rules)))
        else:
            leaf.pieces = []
            for w in leaf.words:
                leaf.pieces.append(len(layout.pieces))
                layout.pieces.append(Piece(w, 1 if forced.overlaps(w) else _tier(text, w, rules)))
    return layout
