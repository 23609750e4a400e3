"""Prompts for early-layer scoring: context pieces, then a probe, then the question.

A prompt is ``HEADER + piece_1 + SEP + piece_2 + ... + PROBE + QUESTION_PREFIX + query +
QUESTION_SUFFIX``. Every context token maps back to ``(chunk, char offset)`` through the
tokenizer's offsets, so token scores land on exact source spans. Three sets of rows score:

- ``query_rows``: the tokens of the query text itself (not the template around it);
- ``last_row``: the final token (what the GemFilter reference uses);
- ``probe_rows``: a content-free question placed *before* the real one. Causal attention
  means its rows see the context but not the query, so their attention is the
  position/salience prior that "Found in the Middle" (arXiv 2406.16008) calibrates out.

Inputs longer than the model's window are split into windows of whole pieces (a chunk,
or a sentence of a chunk too long for one window), each window its own prompt carrying
the probe and the query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ctxcomp.errors import InputError
from ctxcomp.text import split_sentences

HEADER = "Documents:\n\n"  # absorbs the attention sink of the first positions
SEP = "\n\n"
QUERY_HEADER = "Question: {query}\n\nDocuments:\n\n"
PROBE = "\n\nQuestion: what is this about?"
QUESTION_PREFIX = "\nQuestion: "
QUESTION_SUFFIX = "\nAnswer:"


@dataclass(frozen=True)
class Piece:
    """``chunks[chunk][start:end]``: a run of context placed in a prompt."""

    chunk: int
    start: int
    end: int


@dataclass(frozen=True)
class Prompt:
    """One tokenized prompt and the maps from its tokens back to the source.

    Attributes:
        input_ids: token ids (1-D numpy int64).
        token_chunk: per token, the chunk index it came from (-1: template).
        token_start: per token, its start offset in that chunk's text.
        token_end: per token, its end offset in that chunk's text.
        query_rows / probe_rows: positions of the query's and the probe's own tokens.
    """

    input_ids: np.ndarray
    token_chunk: np.ndarray
    token_start: np.ndarray
    token_end: np.ndarray
    query_rows: np.ndarray
    probe_rows: np.ndarray

    @property
    def last_row(self) -> int:
        return len(self.input_ids) - 1


def _rows(offsets: np.ndarray, start: int, end: int) -> np.ndarray:
    inside = (offsets[:, 0] < end) & (offsets[:, 1] > start) & (offsets[:, 1] > offsets[:, 0])
    return np.nonzero(inside)[0].astype(np.int64)


def _header(query: str, query_first: bool) -> str:
    return QUERY_HEADER.format(query=query) if query_first else HEADER


def build_prompt(tokenizer: object, texts: Sequence[str], pieces: Sequence[Piece], query: str,
                 query_first: bool = False) -> Prompt:
    """Tokenize the pieces, probe and query as one prompt (see module docs).

    ``query_first`` also states the query before the context (``QUERY_HEADER``), so the
    context tokens are read knowing the question.
    """
    head = _header(query, query_first)
    parts = [head]
    bounds: list[tuple[int, int]] = []  # char range of each piece in the prompt
    pos = len(head)
    for i, piece in enumerate(pieces):
        if i:
            parts.append(SEP)
            pos += len(SEP)
        text = texts[piece.chunk][piece.start : piece.end]
        parts.append(text)
        bounds.append((pos, pos + len(text)))
        pos += len(text)
    probe_at = pos
    parts += [PROBE, QUESTION_PREFIX]
    query_at = probe_at + len(PROBE) + len(QUESTION_PREFIX)
    parts += [query, QUESTION_SUFFIX]
    enc = tokenizer("".join(parts), return_offsets_mapping=True, add_special_tokens=True)  # type: ignore[operator]
    ids = np.asarray(enc["input_ids"], dtype=np.int64)
    offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    chunk = np.full(len(ids), -1, dtype=np.int64)
    start = np.zeros(len(ids), dtype=np.int64)
    end = np.zeros(len(ids), dtype=np.int64)
    for piece, (lo, hi) in zip(pieces, bounds, strict=True):
        rows = _rows(offsets, lo, hi)
        chunk[rows] = piece.chunk
        start[rows] = np.clip(offsets[rows, 0], lo, hi) - lo + piece.start
        end[rows] = np.clip(offsets[rows, 1], lo, hi) - lo + piece.start
    query_rows = _rows(offsets, query_at, query_at + len(query))
    probe_rows = _rows(offsets, probe_at + len("\n\nQuestion: "), probe_at + len(PROBE))
    if not len(query_rows):
        raise InputError("the query has no tokens")
    return Prompt(ids, chunk, start, end, query_rows, probe_rows)


def overhead_tokens(tokenizer: object, query: str, query_first: bool = False) -> int:
    """Tokens a prompt spends on everything but context (header, probe, query)."""
    text = _header(query, query_first) + PROBE + QUESTION_PREFIX + query + QUESTION_SUFFIX
    return len(tokenizer(text, add_special_tokens=True)["input_ids"]) + 2  # type: ignore[operator]


def plan_windows(
    texts: Sequence[str], lengths: Sequence[int], room: int, sep_tokens: int = 1
) -> list[list[Piece]]:
    """Group the chunks into windows of at most ``room`` context tokens (estimated).

    ``lengths`` are the chunks' token counts under the scoring model's tokenizer. A chunk
    longer than ``room`` is cut at sentence boundaries (a sentence longer than the room at
    a proportional character offset). Returns the pieces of each window, in source order.
    """
    pieces: list[tuple[Piece, int]] = []
    for index, (text, n) in enumerate(zip(texts, lengths, strict=True)):
        if not text:
            continue
        if n <= room:
            pieces.append((Piece(index, 0, len(text)), n))
            continue
        per_char = n / max(len(text), 1)
        for s, e in split_sentences(text, max_chars=max(int(room / per_char * 0.9), 1)):
            pieces.append((Piece(index, s, e), int((e - s) * per_char) + 1))
    windows: list[list[Piece]] = []
    current: list[Piece] = []
    used = 0
    for piece, n in pieces:
        if current and used + n + sep_tokens > room:
            windows.append(current)
            current, used = [], 0
        current.append(piece)
        used += n + sep_tokens
    if current:
        windows.append(current)
    return windows
