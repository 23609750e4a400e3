"""One batch record: validation, its content key, and the payload a worker compresses.

A record is ``{"query": str, "chunks": [str | {"text", "id"?, "metadata"?}], "budget"?}``
where ``budget`` is a token count or ``{"max_tokens": N}`` / ``{"ratio": R}`` (the job's
default budget otherwise). Everything is checked here, in the process that reads the
input, so a bad record is reported with its line before any worker sees it. Payloads are
plain dicts of JSON values: they cross process and Ray boundaries unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ctxcomp.errors import CtxcompError, InputError
from ctxcomp.inputs import check_query
from ctxcomp.types import Budget, Chunk

#: Bumped when the key's recipe changes (old outputs are then recomputed, never misread).
KEY_VERSION = 1


@dataclass(frozen=True)
class Pending:
    """A valid record, ready for a worker.

    Attributes:
        line: the 1-based line (JSONL) or row (Parquet) of the input.
        key: the content hash that identifies the request in the output (resume key).
        payload: what the worker needs: query, chunks and budget as JSON values.
    """

    line: int
    key: str
    payload: dict[str, Any]


def _chunk(item: Any, index: int) -> dict[str, Any]:
    if isinstance(item, str):
        chunk = Chunk(item, id=str(index))
    elif isinstance(item, Mapping):
        unknown = set(item) - {"text", "id", "metadata"}
        if unknown:
            raise InputError(f"chunk {index}: unknown fields {sorted(unknown)}; allowed: text, id, metadata")
        text = item.get("text")
        if not isinstance(text, str):
            raise InputError(f"chunk {index} needs a string 'text' field")
        cid = item.get("id")
        metadata = item.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise InputError(f"chunk {index}: 'metadata' must be an object")
        try:
            chunk = Chunk(text, id=cid if cid is not None else str(index), metadata=dict(metadata or {}))
        except InputError as exc:
            raise InputError(f"chunk {index}: {exc}") from None
    else:
        raise InputError(f"chunk {index} is a {type(item).__name__}; expected a string or an object with 'text'")
    return {"text": chunk.text, "id": chunk.id, "metadata": dict(chunk.metadata)}


def _budget(value: Any, default: Budget | None) -> Budget:
    model = default.model if default is not None else Budget(max_tokens=1).model
    if value is None:
        if default is None:
            raise InputError("no budget: the record has none and the job gives none (--budget or --ratio)")
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return Budget(max_tokens=value, model=model)
    if isinstance(value, Mapping):
        unknown = set(value) - {"max_tokens", "ratio", "model"}
        if unknown:
            raise InputError(f"unknown budget fields {sorted(unknown)}; allowed: max_tokens, ratio, model")
        return Budget(max_tokens=value.get("max_tokens"), ratio=value.get("ratio"), model=value.get("model", model))
    raise InputError(f"'budget' must be a token count or an object with max_tokens or ratio, got {value!r}")


def parse_record(
    raw: Any, line: int, *, default_budget: Budget | None, digest: str, needs_query: bool
) -> Pending:
    """Validate one input record and key it.

    Args:
        raw: the decoded record (a dict).
        line: its 1-based line or row, for messages.
        default_budget: the job's budget, for records without their own.
        digest: the pipeline's config digest (part of the key).
        needs_query: whether an empty query is an error (the pipeline ranks by it).

    Raises:
        InputError: a missing or bad field; the message names the line.
    """
    try:
        if not isinstance(raw, Mapping):
            raise InputError(f"a record must be a JSON object with 'query' and 'chunks', got {type(raw).__name__}")
        unknown = set(raw) - {"query", "chunks", "budget", "id"}
        if unknown:
            raise InputError(f"unknown fields {sorted(unknown)}; allowed: query, chunks, budget, id")
        if "chunks" not in raw or raw["chunks"] is None:
            raise InputError("the record has no 'chunks'")
        chunks = raw["chunks"]
        if isinstance(chunks, (str, bytes)) or not isinstance(chunks, (list, tuple)) or not chunks:
            raise InputError("'chunks' must be a non-empty list")
        query = check_query(raw.get("query"), needs_query)
        items = [_chunk(c, i) for i, c in enumerate(chunks)]
        ids = [c["id"] for c in items]
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise InputError(f"chunk id {twice!r} appears twice in the record")
        budget = _budget(raw.get("budget"), default_budget)
    except InputError as exc:
        raise InputError(str(exc), line=line) from None
    except CtxcompError as exc:  # a BudgetError: the record's budget is invalid
        raise InputError(str(exc), line=line) from None
    payload = {"line": line, "query": query, "chunks": items,
               "budget": {"max_tokens": budget.max_tokens, "ratio": budget.ratio, "model": budget.model}}
    if "id" in raw:
        payload["id"] = raw["id"]
    return Pending(line, request_key(payload, digest), payload)


def request_key(payload: Mapping[str, Any], digest: str) -> str:
    """The content hash of a request: query, chunks (ids, text, metadata), budget and the
    pipeline's config digest. Two records with the same key get the same output."""
    content = {"v": KEY_VERSION, "query": payload["query"], "chunks": payload["chunks"],
               "budget": payload["budget"], "pipeline": digest}
    blob = json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def payload_request(payload: Mapping[str, Any]) -> tuple[str, list[Chunk], Budget]:
    """The (query, chunks, budget) of a payload, as the pipeline takes them."""
    chunks = [Chunk(c["text"], id=c["id"], metadata=c["metadata"]) for c in payload["chunks"]]
    b = payload["budget"]
    return payload["query"], chunks, Budget(max_tokens=b["max_tokens"], ratio=b["ratio"], model=b["model"])
