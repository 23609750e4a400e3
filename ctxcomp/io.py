"""Reading chunk files (JSON lines) with errors that name the line to fix."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctxcomp.errors import InputError
from ctxcomp.types import Chunk

#: A JSONL line longer than this is refused (one request of 64 MB is not a chunk file).
MAX_LINE_CHARS = 64 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    """One query with its chunks (a line of a multi-query file).

    Attributes:
        query: the line's query (None in a file of chunk lines).
        chunks: the chunks.
        line: the 1-based line of a request line (None for a file of chunk lines).
    """

    query: str | None
    chunks: tuple[Chunk, ...]
    line: int | None = None


def _read_text(path: str | Path) -> str:
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path} is not UTF-8 (byte {exc.start}); re-encode it as UTF-8", line=line) from None


def _chunk(obj: Any, line: int, index: int) -> Chunk:
    if not isinstance(obj, dict):
        raise InputError(f"chunk {index} must be a JSON object with a 'text' field", line=line)
    text = obj.get("text")
    if not isinstance(text, str):
        raise InputError(f"chunk {index} needs a string 'text' field", line=line)
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InputError(f"chunk {index}: 'metadata' must be a JSON object", line=line)
    cid = obj.get("id")
    if cid is not None and (isinstance(cid, bool) or not isinstance(cid, (str, int))):
        raise InputError(f"chunk {index}: 'id' must be a string or an integer", line=line)
    try:
        return Chunk(text, id=str(cid) if cid is not None else str(index), metadata=metadata)
    except InputError as exc:
        raise InputError(f"chunk {index}: {exc}", line=line) from None


def _lines(text: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_CHARS:
            raise InputError(f"the line has {len(line):,} characters, over the limit of {MAX_LINE_CHARS:,}", line=number)
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"malformed JSON: {exc.msg} (column {exc.colno})", line=number) from None
        except RecursionError:
            raise InputError("JSON nested too deeply", line=number) from None
        except ValueError as exc:  # e.g. an integer of more than 4,300 digits
            raise InputError(f"unreadable JSON value: {exc}", line=number) from None


def read_requests(path: str | Path) -> list[Request]:
    """Read a JSONL file of chunks or of requests.

    Two shapes are accepted, one per file: every line a chunk (``{"text", "id"?,
    "metadata"?}``: one request, the query comes from elsewhere), or every line a request
    (``{"query", "chunks": [chunk, ...]}``).

    Raises:
        InputError: unreadable, not UTF-8, malformed JSON or a bad field; the message
            names the line.
    """
    rows = list(_lines(_read_text(path)))
    if not rows:
        raise InputError(f"{path} holds no chunks")
    is_request = [isinstance(obj, dict) and "chunks" in obj for _, obj in rows]
    if all(is_request):
        out = []
        for number, obj in rows:
            query = obj.get("query")
            if not isinstance(query, str):
                raise InputError("a request line needs a string 'query'", line=number)
            if not isinstance(obj["chunks"], list) or not obj["chunks"]:
                raise InputError("'chunks' must be a non-empty list", line=number)
            items = tuple(_chunk(c, number, i) for i, c in enumerate(obj["chunks"]))
            ids = [c.id for c in items]
            if len(set(ids)) != len(ids):
                twice = next(i for i in ids if ids.count(i) > 1)
                raise InputError(f"chunk id {twice!r} appears twice in the request", line=number)
            out.append(Request(query, items, number))
        return out
    if any(is_request):
        number = rows[is_request.index(not is_request[0])][0]
        raise InputError("mixes chunk lines and request lines; use one shape per file", line=number)
    chunks = [_chunk(obj, number, i) for i, (number, obj) in enumerate(rows)]
    seen: dict[str, int] = {}
    for (number, _), chunk in zip(rows, chunks, strict=True):
        if chunk.id in seen:
            raise InputError(f"chunk id {chunk.id!r} repeats line {seen[chunk.id]}", line=number)
        seen[chunk.id] = number
    return [Request(None, tuple(chunks))]
