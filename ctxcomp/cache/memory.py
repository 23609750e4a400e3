"""The in-process LRU backend: the default cache, bounded by entries and by bytes.

Entries are the encoded payload bytes (so a hit pays the same decode as with Redis and
the byte bound is exact). Thread-safe; nothing is shared between processes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from ctxcomp.cache.base import LocalAsyncMixin, check_ttl
from ctxcomp.errors import ConfigError

DEFAULT_MAX_ENTRIES = 1024
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Rough per-entry overhead of the Python objects around the payload (key str, entry, dict slots).
ENTRY_OVERHEAD_BYTES = 256


@dataclass
class _Entry:
    value: bytes
    expires_at: float | None
    tags: tuple[str, ...]


class MemoryBackend(LocalAsyncMixin):
    """An LRU map of payloads with optional TTL, bounded by count and by bytes.

    Args:
        max_entries: at most this many entries; the least recently used go first.
        max_bytes: at most this many bytes of keys + payloads (+ a small per-entry
            overhead); an entry larger than this on its own is not stored.

    Example:
        >>> b = MemoryBackend(max_entries=2)
        >>> b.set("a", b"1"); b.set("b", b"2"); b.set("c", b"3")
        >>> b.get("a") is None, b.get("c")
        (True, b'3')
    """

    name = "memory"
    shared = False

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        for label, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{label} must be a positive int, got {value!r}")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._lock = threading.RLock()
        self._data: OrderedDict[str, _Entry] = OrderedDict()
        self._tags: dict[str, set[str]] = {}
        self._bytes = 0
        self.evictions = 0

    # -- sizes ---------------------------------------------------------------------------
    @staticmethod
    def _cost(key: str, entry: _Entry) -> int:
        return len(key) + len(entry.value) + ENTRY_OVERHEAD_BYTES

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size_bytes(self) -> int:
        """Bytes held (keys + payloads + per-entry overhead)."""
        return self._bytes

    # -- store ---------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        """The payload under ``key`` (and mark it recently used), or None."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry.expires_at is not None and time.monotonic() >= entry.expires_at:
                self._drop(key)
                return None
            self._data.move_to_end(key)
            return entry.value

    def set(self, key: str, value: bytes, *, ttl_s: float | None = None, tags: Sequence[str] = ()) -> None:
        """Store ``value`` under ``key``, evicting least recently used entries to fit."""
        ttl = check_ttl(ttl_s)
        entry = _Entry(bytes(value), None if ttl is None else time.monotonic() + ttl, tuple(tags))
        with self._lock:
            self._drop(key)
            if self._cost(key, entry) > self.max_bytes:
                return
            self._data[key] = entry
            self._bytes += self._cost(key, entry)
            for tag in entry.tags:
                self._tags.setdefault(tag, set()).add(key)
            while len(self._data) > self.max_entries or self._bytes > self.max_bytes:
                oldest = next(iter(self._data))
                self._drop(oldest)
                self.evictions += 1

    def _drop(self, key: str) -> bool:
        entry = self._data.pop(key, None)
        if entry is None:
            return False
        self._bytes -= self._cost(key, entry)
        for tag in entry.tags:
            members = self._tags.get(tag)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._tags[tag]
        return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    def invalidate(self, tags: Sequence[str]) -> int:
        """Drop every entry stored under any of ``tags``."""
        with self._lock:
            keys = set().union(*(self._tags.get(t, ()) for t in tags)) if tags else set()
            return sum(self._drop(k) for k in keys)

    def clear(self, prefix: str) -> int:
        """Drop every entry whose key starts with ``prefix``."""
        with self._lock:
            keys = [k for k in self._data if k.startswith(prefix)]
            return sum(self._drop(k) for k in keys)

    # -- locks: threads are already coalesced by ContextCache; nothing else shares this map.
    def acquire_lock(self, key: str, timeout_s: float) -> str | None:
        return uuid.uuid4().hex

    def release_lock(self, key: str, token: str) -> None:
        return None

    def close(self) -> None:
        return None
