"""Validation of what callers pass in: chunks, queries, and the size of an input.

Every entry point (a compressor, a pipeline, the integrations, the retrievers) turns its
input into a list of :class:`~ctxcomp.types.Chunk` here, so the same mistakes get the
same typed error wherever they are made.
"""

from __future__ import annotations

from collections.abc import Sequence

from ctxcomp.errors import InputError
from ctxcomp.tokens import TokenCounter
from ctxcomp.types import CHUNK_SEPARATOR, Chunk, replace_surrogates

ChunkLike = Chunk | str


def to_chunk(item: object, index: int, label: str = "chunk") -> Chunk:
    """``item`` as a Chunk: a Chunk as is, a string with its ``index`` as id.

    Raises:
        InputError: ``item`` is neither (the message names it as ``label index``).
    """
    if isinstance(item, Chunk):
        return item
    if isinstance(item, str):
        return Chunk(item, id=str(index))
    raise InputError(f"{label} {index} is a {type(item).__name__}; expected Chunk or str")


def coerce_chunks(chunks: Sequence[ChunkLike]) -> list[Chunk]:
    """Validate chunks; plain strings become Chunks with their index as id.

    Raises:
        InputError: no chunks, an item that is neither Chunk nor str, or a repeated id.
    """
    if isinstance(chunks, (str, bytes)) or not isinstance(chunks, Sequence):
        raise InputError("chunks must be a list of Chunk or str")
    if not chunks:
        raise InputError("no chunks to compress: pass at least one Chunk or string")
    out = [to_chunk(item, i) for i, item in enumerate(chunks)]
    seen: set[str] = set()
    for chunk in out:
        if chunk.id in seen:
            raise InputError(f"chunk id {chunk.id!r} appears twice; ids must be unique")
        seen.add(chunk.id)
    return out


def check_query(query: object, required: bool) -> str:
    """Validate the query; an empty one is an error when the compressor needs it.

    Lone surrogates are replaced by U+FFFD, as in chunk text (see :class:`Chunk`).
    """
    if not isinstance(query, str):
        raise InputError(f"query must be a str, got {type(query).__name__}")
    if required and not query.strip():
        raise InputError("the query is empty; this compressor ranks text by relevance to the query")
    return replace_surrogates(query)  # the same policy as chunk text (see Chunk)


def input_tokens(chunks: Sequence[Chunk], counter: TokenCounter) -> int:
    """Tokens of the chunks assembled as one context (the size a budget ratio divides)."""
    text = CHUNK_SEPARATOR.join(c.text for c in chunks if c.text)
    return counter.count(text) if text else 0
