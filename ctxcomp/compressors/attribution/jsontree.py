"""JSON documents as trees of source spans, pruned so that the result stays valid JSON.

:func:`parse` reads a chunk that is a JSON document into nodes that know where each of
their parts lies in the source: brackets, ``"key":`` prefixes, commas, string quotes, and
the words inside string values. Pruning decides which words (and scalars) to keep;
:func:`render` then rebuilds the document from source spans:

- a string value keeps its quotes and its kept words (gaps become one space, which is
  still the inside of a JSON string: escapes are never cut, as words hold no whitespace);
- an object keeps a member (``"key":`` and value) whenever its value keeps anything, and
  an array keeps an item likewise; an item or member whose value keeps nothing is dropped
  whole, with the right commas;
- brackets are kept whenever their container keeps anything.

So every output parses, and its keys are source keys. Texts that ``json.loads`` rejects,
or nest deeper than :data:`MAX_DEPTH`, are not JSON here (the caller prunes them as text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ctxcomp.types import Span

MAX_DEPTH = 200
_WS = re.compile(r"[ \t\n\r]*")
_SCALAR = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")


@dataclass
class JScalar:
    """A number, ``true``/``false``/``null`` or a string with no words: one piece."""

    span: Span
    piece: int = -1


@dataclass
class JString:
    """A string value: its quotes and the word pieces inside."""

    open: int
    close: int
    words: list[Span] = field(default_factory=list)
    pieces: list[int] = field(default_factory=list)


@dataclass
class JContainer:
    """An object (``keys`` set) or array: brackets, children, the comma after each child."""

    open: Span
    close: Span
    children: list[JNode]
    commas: list[Span | None]
    keys: list[Span] | None = None  # for objects: ``"key":`` up to the value


JNode = JScalar | JString | JContainer


class _TooDeep(Exception):
    pass


def _string_end(text: str, pos: int) -> int:
    """Index just past the string that opens at ``pos`` (a quote)."""
    i = pos + 1
    while True:
        j = text.index('"', i)
        k = j - 1
        while text[k] == "\\":
            k -= 1
        if (j - 1 - k) % 2 == 0:  # an even number of backslashes: the quote closes
            return j + 1
        i = j + 1


def _whole_escapes(text: str, start: int, end: int, spans: list[Span]) -> list[Span]:
    """``spans`` (words inside the string literal ``text[start:end]``) widened so that no
    escape sequence (``\\n``, ``\\"``, ``\\u00e9``) is cut, then merged where they overlap.
    A word segmenter for unspaced scripts may put a boundary anywhere; an escape cut in two
    is invalid JSON."""
    if "\\" not in text[start:end]:
        return spans
    owner: dict[int, tuple[int, int]] = {}  # a position inside an escape -> the escape's span
    k = start
    while k < end:
        if text[k] == "\\":
            size = 6 if text[k + 1 : k + 2] == "u" else 2
            for j in range(k, min(k + size, end)):
                owner[j] = (k, min(k + size, end))
            k += size
        else:
            k += 1
    out: list[Span] = []
    for a, b in spans:
        if a in owner:
            a = owner[a][0]
        if b - 1 in owner:
            b = owner[b - 1][1]
        if out and a < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _skip(text: str, pos: int) -> int:
    m = _WS.match(text, pos)
    return m.end() if m else pos


class _Parser:
    def __init__(self, text: str, split_words: Callable[[str, int, int], list[Span]]) -> None:
        self.text = text
        self.split_words = split_words

    def value(self, pos: int, depth: int) -> tuple[JNode, int]:
        if depth > MAX_DEPTH:
            raise _TooDeep
        text = self.text
        ch = text[pos]
        if ch == '"':
            end = _string_end(text, pos)
            found = _whole_escapes(text, pos + 1, end - 1, self.split_words(text, pos + 1, end - 1))
            if not found:
                return JScalar((pos, end)), end
            return JString(pos, end - 1, found), end
        if ch in "{[":
            return self.container(pos, depth)
        m = _SCALAR.match(text, pos)
        if m is None:  # json.loads accepted it, so this does not happen
            raise ValueError(f"unexpected JSON at {pos}")
        return JScalar(m.span()), m.end()

    def container(self, pos: int, depth: int) -> tuple[JContainer, int]:
        text = self.text
        is_obj = text[pos] == "{"
        closing = "}" if is_obj else "]"
        node = JContainer((pos, pos + 1), (0, 0), [], [], [] if is_obj else None)
        pos = _skip(text, pos + 1)
        while text[pos] != closing:
            if is_obj:
                key_start = pos
                pos = _skip(text, _string_end(text, pos))
                pos = _skip(text, pos + 1)  # the colon
                assert node.keys is not None
                node.keys.append((key_start, pos))
            child, pos = self.value(pos, depth + 1)
            node.children.append(child)
            pos = _skip(text, pos)
            if text[pos] == ",":
                node.commas.append((pos, pos + 1))
                pos = _skip(text, pos + 1)
            else:
                node.commas.append(None)
        node.close = (pos, pos + 1)
        return node, pos + 1


def parse(text: str, split_words: Callable[[str, int, int], list[Span]]) -> JNode | None:
    """The tree of ``text`` if it is one JSON object, array or string; None otherwise."""
    stripped = text.strip()
    if not stripped or stripped[0] not in '{["':
        return None
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return None
    try:
        node, _ = _Parser(text, split_words).value(_skip(text, 0), 0)
    except (_TooDeep, RecursionError):
        return None
    return node


def leaves(node: JNode) -> list[JScalar | JString]:
    """Scalars and strings in document order (iteratively: no recursion limit)."""
    out: list[JScalar | JString] = []
    stack: list[JNode] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, JContainer):
            stack.extend(reversed(current.children))
        else:
            out.append(current)
    return out


def render(node: JNode, kept: Sequence[bool]) -> list[Span]:
    """Source spans of the pruned document (empty when nothing is kept)."""
    if isinstance(node, JScalar):
        return [node.span] if kept[node.piece] else []
    if isinstance(node, JString):
        words = [w for w, p in zip(node.words, node.pieces, strict=True) if kept[p]]
        return [(node.open, node.open + 1), *words, (node.close, node.close + 1)] if words else []
    out: list[Span] = []
    prev_comma: Span | None = None
    for i, child in enumerate(node.children):
        inner = render(child, kept)
        if not inner:
            continue
        if prev_comma is not None:
            out.append(prev_comma)
        if node.keys is not None:
            out.append(node.keys[i])
        out.extend(inner)
        prev_comma = node.commas[i]
    return [node.open, *out, node.close] if out else []
