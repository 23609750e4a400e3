"""Cache keys: ``ctxcomp:{namespace}:{tenant}:{schema_version}:{sha256}``.

The SHA-256 covers everything that can change a compression's output:

* the query;
* every chunk's id, a hash of its text, its upstream score and a digest of its metadata
  (in order);
* the pipeline's config digest (each stage's type and settings);
* each stage's model revisions (``model_revisions()``, when a stage has it);
* the target tokenizer (:func:`ctxcomp.tokens.tokenizer_info`) and the budget.

So a changed chunk, config, model or tokenizer is a different key: a stale entry is never
served, it simply ages out. Namespace and tenant are percent-encoded, so they can hold any
character without clashing with the ``:`` separators or with SCAN glob patterns; the
auxiliary keys (reverse index, LRU order, locks, semantic candidates) carry a ``#`` segment
that an encoded tenant can never produce.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ctxcomp.cache.codec import SCHEMA_VERSION
from ctxcomp.tokens import tokenizer_info
from ctxcomp.types import Budget, Chunk

PREFIX = "ctxcomp"


def _seg(value: str) -> str:
    # quote(safe="") escapes ':', '*', '?', '[', ']', '#', '%' and '/': injective and glob-safe.
    return quote(value, safe="")


def _metadata_digest(metadata: Mapping[str, Any]) -> str:
    if not metadata:
        return ""
    # default=repr keeps odd values hashable; an unstable repr only ever causes a miss.
    raw = json.dumps(metadata, sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def chunk_fingerprint(chunks: Sequence[Chunk]) -> list[list[Any]]:
    """Per chunk: id, SHA-256 of the text, score and a metadata digest."""
    return [
        [c.id, hashlib.sha256(c.text.encode("utf-8")).hexdigest(), c.score, _metadata_digest(c.metadata)]
        for c in chunks
    ]


def pipeline_fingerprint(pipeline: Any) -> dict[str, Any]:
    """The pipeline's config digest (planner, stages and their targets) and the model
    revisions of its planner and stages."""
    revisions = [[r.name, r.revision] for r in pipeline.model_revisions()]
    return {"config": pipeline.config_digest(), "models": revisions}


@dataclass(frozen=True)
class RequestKey:
    """The key of one request and the digest of everything in it but the query.

    ``context_digest`` (chunks, pipeline, models, tokenizer, budget) groups the entries
    that semantic reuse may choose between.
    """

    key: str
    context_digest: str
    chunk_ids: tuple[str, ...]


def request_key(
    pipeline: Any, query: str, chunks: Sequence[Chunk], budget: Budget, *, namespace: str, tenant: str
) -> RequestKey:
    """The cache key of compressing ``chunks`` for ``query`` with ``pipeline`` under ``budget``."""
    info = tokenizer_info(budget.model)
    context = {
        "chunks": chunk_fingerprint(chunks),
        "pipeline": pipeline_fingerprint(pipeline),
        "tokenizer": [info.model, info.tokenizer, info.approximate],
        "budget": [budget.max_tokens, budget.ratio, budget.model],
    }
    raw = json.dumps(context, sort_keys=True, ensure_ascii=False, default=repr).encode("utf-8")
    context_digest = hashlib.sha256(raw).hexdigest()
    full = hashlib.sha256(context_digest.encode() + b"\0" + query.encode("utf-8")).hexdigest()
    key = f"{entry_prefix(namespace, tenant)}{SCHEMA_VERSION}:{full}"
    return RequestKey(key, context_digest, tuple(c.id for c in chunks))


def namespace_prefix(namespace: str) -> str:
    """``ctxcomp:{namespace}:`` — every key of the namespace starts with it."""
    return f"{PREFIX}:{_seg(namespace)}:"


def entry_prefix(namespace: str, tenant: str) -> str:
    """``ctxcomp:{namespace}:{tenant}:`` — every entry of one tenant starts with it."""
    return f"{namespace_prefix(namespace)}{_seg(tenant)}:"


def index_key(namespace: str, chunk_id: str) -> str:
    """The reverse-index set of the entries built from ``chunk_id`` (all tenants)."""
    return f"{namespace_prefix(namespace)}#idx:{_seg(chunk_id)}"


def lru_key(namespace: str) -> str:
    """The sorted set (key -> last use, ms) that bounds a namespace's entry count."""
    return f"{namespace_prefix(namespace)}#lru"


def lock_key(key: str) -> str:
    """The cross-process compute lock of an entry key."""
    ns_end = key.index(":", len(PREFIX) + 1) + 1
    return f"{key[:ns_end]}#lock:{key[ns_end:]}"


def semantic_key(namespace: str, tenant: str, context_digest: str) -> str:
    """The candidate list (query vectors -> entry keys) of one chunk set for one tenant."""
    return f"{namespace_prefix(namespace)}#sem:{_seg(tenant)}:{SCHEMA_VERSION}:{context_digest}"


def namespace_of(key: str) -> str:
    """The ``ctxcomp:{namespace}:`` prefix of any key built here."""
    ns_end = key.index(":", len(PREFIX) + 1) + 1
    return key[:ns_end]
