"""The backend side of semantic reuse: read and update candidate lists for a ContextCache."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ctxcomp.cache import keys
from ctxcomp.cache.codec import Decoded
from ctxcomp.cache.semantic import add_candidate, best_match, dump_candidates, parse_candidates
from ctxcomp.types import Chunk

if TYPE_CHECKING:
    from ctxcomp.cache.context import ContextCache

_VECTOR_MEMO = 256


class SemanticOps:
    """Candidate lookup and recording for one cache (sync; the async path runs it in a thread)."""

    def __init__(self, cache: ContextCache, encoder: Callable[[str], np.ndarray]) -> None:
        assert cache.semantic is not None
        self.cache = cache
        self.config = cache.semantic
        self._encoder = encoder
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, query: str) -> np.ndarray:
        """The query's unit vector (memoized: lookup and record embed the same query)."""
        with self._lock:
            vec = self._memo.get(query)
            if vec is not None:
                self._memo.move_to_end(query)
                return vec
        vec = self._encoder(query)
        with self._lock:
            self._memo[query] = vec
            while len(self._memo) > _VECTOR_MEMO:
                self._memo.popitem(last=False)
        return vec

    def _key(self, rk: keys.RequestKey, tenant: str) -> str:
        return keys.semantic_key(self.cache.namespace, tenant, rk.context_digest)

    def lookup(self, rk: keys.RequestKey, query: str, chunks: Sequence[Chunk], tenant: str) -> Decoded | None:
        """An entry of a near-duplicate query over the same chunk set, or None."""
        backend = self.cache.backend
        raw = self.cache._safe("semantic-get", lambda: backend.get(self._key(rk, tenant)))
        candidates = parse_candidates(raw if isinstance(raw, bytes) else None)
        if not candidates:
            return None  # nothing to compare with: skip embedding the query
        # A candidate list is read from a store others may write: only this tenant's entries count.
        own = keys.entry_prefix(self.cache.namespace, tenant)
        candidates = [(key, vec) for key, vec in candidates if key.startswith(own)]
        match = best_match(candidates, self.embed(query), self.config.threshold, exclude=rk.key)
        if match is None:
            return None
        return self.cache._decode(self.cache._safe("get", lambda: backend.get(match[0])), chunks, rk, key=match[0])

    def record(self, rk: keys.RequestKey, query: str, tenant: str) -> None:
        """Remember ``query``'s vector as a candidate for its entry."""
        backend = self.cache.backend
        skey = self._key(rk, tenant)
        vec = self.embed(query)
        raw = self.cache._safe("semantic-get", lambda: backend.get(skey))
        candidates = parse_candidates(raw if isinstance(raw, bytes) else None)
        updated = add_candidate(candidates, rk.key, vec, self.config.max_candidates)
        self.cache._safe("semantic-set", lambda: backend.set(skey, dump_candidates(updated),
                                                             ttl_s=self.cache.ttl_s, tags=self.cache._tags(rk)))
