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


#: Metadata deeper than this, or past this many nodes, is keyed by its shape only (no
#: compressor reads that deep; the bounds keep hostile metadata from costing unbounded time).
METADATA_MAX_DEPTH = 32
METADATA_MAX_NODES = 100_000


def _leaf(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return [type(value).__name__, repr(value)]
    if isinstance(value, (str, bytes, bytearray)):
        raw = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
        return [type(value).__name__, hashlib.sha256(raw).hexdigest() if len(raw) > 64 else raw.hex()]
    return None


def canonical(value: Any) -> Any:
    """A JSON-ready, order-independent form of any metadata (iterative, bounded).

    Mapping keys may be of any type and are never compared with each other: items are
    sorted by the canonical JSON of their key. Strings and bytes longer than 64 bytes
    appear as their SHA-256. Other objects appear as their type and ``repr``.
    """
    root: list[Any] = []
    stack: list[tuple[Any, list[Any], int]] = [(value, root, 0)]
    nodes = 0
    while stack:
        obj, out, depth = stack.pop()
        nodes += 1
        leaf = _leaf(obj)
        if leaf is not None:
            out.append(leaf)
        elif depth >= METADATA_MAX_DEPTH or nodes > METADATA_MAX_NODES:
            out.append(["<bounded>", type(obj).__name__])
        elif isinstance(obj, Mapping):
            items: list[Any] = ["map"]
            out.append(items)
            for key, item in obj.items():
                pair: list[Any] = []
                items.append(pair)
                stack.append((item, pair, depth + 1))
                stack.append((key, pair, depth + 1))  # popped first: the key comes first
        elif isinstance(obj, (list, tuple, set, frozenset)):
            seq: list[Any] = [type(obj).__name__]
            out.append(seq)
            members = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
            for item in reversed(list(members)):  # popped in order
                stack.append((item, seq, depth + 1))
        else:
            out.append([type(obj).__name__, repr(obj)[:1000]])
    return _sort_maps(root[0])


def _sort_maps(value: Any) -> Any:
    """Sort every ``["map", [k, v], ...]`` by the JSON of its pairs, inner maps first."""
    maps, todo = [], [value]
    while todo:  # pre-order: a map is listed before the maps inside it
        node = todo.pop()
        if isinstance(node, list):
            todo.extend(node)
            if node and node[0] == "map":
                maps.append(node)
    for node in reversed(maps):
        node[1:] = sorted(node[1:], key=lambda pair: json.dumps(pair, ensure_ascii=False))
    return value


def metadata_digest(metadata: Mapping[str, Any]) -> str:
    """A digest of a chunk's metadata ("" when empty); any keys, any values, any size."""
    if not metadata:
        return ""
    raw = json.dumps(canonical(metadata), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def chunk_fingerprint(chunks: Sequence[Chunk]) -> list[list[Any]]:
    """Per chunk: id, SHA-256 of the text, score and a metadata digest."""
    return [
        [c.id, hashlib.sha256(c.text.encode("utf-8")).hexdigest(), c.score, metadata_digest(c.metadata)]
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
    model: str = ""


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
    return RequestKey(key, context_digest, tuple(c.id for c in chunks), budget.model)


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
