"""The in-process LRU backend: bounds, recency, TTL, tags and prefixes."""

from __future__ import annotations

import asyncio
import time

import pytest

from ctxcomp.cache.memory import ENTRY_OVERHEAD_BYTES, MemoryBackend
from ctxcomp.errors import ConfigError


def test_entry_bound_evicts_least_recently_used() -> None:
    b = MemoryBackend(max_entries=3)
    for k in "abc":
        b.set(k, k.encode())
    assert b.get("a") == b"a"  # now "b" is the least recently used
    b.set("d", b"d")
    assert b.get("b") is None
    assert [b.get(k) for k in "acd"] == [b"a", b"c", b"d"]
    assert len(b) == 3 and b.evictions == 1


def test_byte_bound_holds_and_oversize_entries_are_skipped() -> None:
    per = 1 + 100 + ENTRY_OVERHEAD_BYTES
    b = MemoryBackend(max_entries=100, max_bytes=per * 3)
    for k in "abcde":
        b.set(k, b"x" * 100)
    assert len(b) == 3 and b.size_bytes == per * 3 <= b.max_bytes
    assert b.get("a") is None and b.get("e") is not None
    b.set("huge", b"x" * (per * 4))
    assert b.get("huge") is None and len(b) == 3


def test_replacing_an_entry_keeps_the_byte_count_exact() -> None:
    b = MemoryBackend()
    b.set("k", b"x" * 10)
    b.set("k", b"y" * 30)
    assert b.size_bytes == 1 + 30 + ENTRY_OVERHEAD_BYTES
    b.delete("k")
    assert b.size_bytes == 0 and len(b) == 0


def test_ttl_expires_entries() -> None:
    b = MemoryBackend()
    b.set("short", b"1", ttl_s=0.05)
    b.set("long", b"2", ttl_s=60)
    assert b.get("short") == b"1"
    time.sleep(0.08)
    assert b.get("short") is None
    assert b.get("long") == b"2"


def test_invalidate_by_tag_and_clear_by_prefix() -> None:
    b = MemoryBackend()
    b.set("ns1:a", b"1", tags=["idx:c1", "idx:c2"])
    b.set("ns1:b", b"2", tags=["idx:c2"])
    b.set("ns2:c", b"3", tags=["idx:c3"])
    assert b.invalidate(["idx:c1"]) == 1
    assert b.get("ns1:a") is None and b.get("ns1:b") == b"2"
    assert b.invalidate(["idx:c1"]) == 0
    assert b.clear("ns1:") == 1
    assert b.get("ns2:c") == b"3" and len(b) == 1


def test_async_twins_and_locks() -> None:
    b = MemoryBackend()

    async def run() -> tuple:
        await b.aset("k", b"v", tags=["t"])
        got = await b.aget("k")
        dropped = await b.ainvalidate(["t"])
        return got, dropped, await b.aacquire_lock("lock", 1.0)

    got, dropped, token = asyncio.run(run())
    assert got == b"v" and dropped == 1 and token


@pytest.mark.parametrize("kwargs", [{"max_entries": 0}, {"max_bytes": -1}, {"max_entries": 1.5}])
def test_bad_bounds_are_config_errors(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        MemoryBackend(**kwargs)


def test_bad_ttl_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ttl_s"):
        MemoryBackend().set("k", b"v", ttl_s=0)
