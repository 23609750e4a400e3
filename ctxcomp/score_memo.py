"""Sentence scores shared inside one pipeline run, so that one forward pass serves twice.

A planner whose utility is a model stage's own scores (``knapsack`` with
``utility="gemfilter"``) scores every sentence of the request; the stage after it then
gets the chunks the planner kept. Scoring them again would double the model's cost and
score each sentence against a smaller context than the planner saw. The stage looks its
chunks up in the run's memo first: when every one of them was scored for the same query
by a scorer with the same configuration, those scores are reused.

The memo lives only as long as one pipeline call (:func:`memo_scope`, entered by
:func:`ctxcomp.cascade.run_jobs`): outside a pipeline nothing is remembered, so a
compressor called twice computes twice (and benchmarks time real work). Entries hold spans
and scores only (no text; chunks are matched by a digest of their text), at most ``size``
requests, least recently used first out.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from ctxcomp.assembly import Unit
from ctxcomp.types import Chunk

Entry = dict[bytes, list[tuple[tuple[int, int], float]]]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class ScoreMemo:
    """A bounded, thread-safe memo of scored units per (scorer, query)."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, str, int], Entry] = OrderedDict()
        self._serial = 0
        self._lock = threading.Lock()

    def put(self, owner: str, query: str, chunks: Sequence[Chunk], units: Sequence[Unit]) -> None:
        """Remember ``units`` (indices into ``chunks``) as scored by ``owner`` for ``query``."""
        keys = [_digest(c.text) for c in chunks]
        entry: Entry = {k: [] for k in keys}
        first: dict[bytes, int] = {}
        for i, k in enumerate(keys):
            first.setdefault(k, i)
        for u in units:  # a text that occurs twice is recorded once, from its first chunk
            if first[keys[u.chunk]] == u.chunk:
                entry[keys[u.chunk]].append((u.span, float(u.score if u.score is not None else 0.0)))
        with self._lock:
            self._serial += 1
            self._entries[(owner, query, self._serial)] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def get(self, owner: str, query: str, chunks: Sequence[Chunk]) -> list[Unit] | None:
        """The units of ``chunks`` from the latest entry that scored all of them, or None."""
        keys = [_digest(c.text) for c in chunks]
        with self._lock:
            for key in reversed(self._entries):
                if key[0] != owner or key[1] != query:
                    continue
                entry = self._entries[key]
                if all(k in entry for k in keys):
                    self._entries.move_to_end(key)
                    return [Unit(i, span, score) for i, k in enumerate(keys) for span, score in entry[k]]
        return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_current: ContextVar[ScoreMemo | None] = ContextVar("ctxcomp_score_memo", default=None)


@contextmanager
def memo_scope(size: int = 256) -> Iterator[ScoreMemo]:
    """A memo for the calls inside the ``with`` block (the enclosing one, if a scope is
    already open: a nested pipeline shares its parent's)."""
    memo = _current.get()
    if memo is not None:
        yield memo
        return
    memo = ScoreMemo(size)
    token = _current.set(memo)
    try:
        yield memo
    finally:
        _current.reset(token)


def current_memo() -> ScoreMemo | None:
    """The open scope's memo, or None outside a pipeline run."""
    return _current.get()
